//! One test per validation rule: the error names the file, the field and the reason.

use std::time::Duration;

use steward_config::{ClientPlacement, ServerId, SiteId, Topology};

/// A valid three-site topology with a WAN default and one override.
const BASE: &str = r#"
name = "base"
description = "three sites"

[lan]
latency_ms = 0.1
bandwidth = "1Gbps"

[wan.default]
latency_ms = 50
bandwidth = "10Mbps"

[[wan.link]]
between = ["us", "brazil"]
latency_ms = 150
bandwidth = "600kbps"

[[site]]
name = "us"
f = 1

[[site]]
name = "brazil"
f = 1
servers = 5

[[site]]
name = "korea"
f = 0

[pbft]
servers_per_site = { us = 2, brazil = 1, korea = 1 }
"#;

fn parse(text: &str) -> Result<Topology, steward_config::ConfigError> {
    Topology::from_toml_str(text, "topologies/x.toml")
}

/// Asserts that `text` is rejected with exactly this message.
#[track_caller]
fn rejects(text: &str, expected: &str) {
    match parse(text) {
        Ok(_) => panic!("accepted, expected error: {expected}"),
        Err(e) => assert_eq!(e.to_string(), expected),
    }
}

/// `BASE` with `from` replaced by `to` (which must occur).
#[track_caller]
fn edit(from: &str, to: &str) -> String {
    assert!(BASE.contains(from), "{from:?} not in BASE");
    BASE.replacen(from, to, 1)
}

#[test]
fn base_resolves() {
    let t = parse(BASE).unwrap();
    assert_eq!(t.name, "base");
    assert_eq!(t.description, "three sites");
    assert_eq!(t.sites.len(), 3);
    assert_eq!((t.sites[0].f, t.sites[0].servers), (1, 4));
    assert_eq!((t.sites[1].f, t.sites[1].servers), (1, 5));
    assert_eq!((t.sites[2].f, t.sites[2].servers), (0, 1));
    assert_eq!(t.site_by_name("korea").unwrap().id, SiteId(2));
    assert!(t.site_by_name("mars").is_none());
    assert_eq!(t.site(SiteId(1)).name, "brazil");
    assert_eq!(t.total_steward_servers(), 10);
    let ids: Vec<String> = t.steward_servers().map(|s| s.to_string()).collect();
    assert_eq!(ids[0], "s0.0");
    assert_eq!(ids[4], "s1.0");
    assert_eq!(ids[9], "s2.0");
    assert!(t.has_server(ServerId::new(SiteId(1), 4)));
    assert!(!t.has_server(ServerId::new(SiteId(1), 5)));
    assert!(!t.has_server(ServerId::new(SiteId(3), 0)));

    let (us, br, kr) = (SiteId(0), SiteId(1), SiteId(2));
    assert_eq!(t.link(us, us).latency, Duration::from_micros(100));
    assert_eq!(t.link(us, us).bandwidth_bps, 1_000_000_000);
    assert_eq!(t.link(br, us).latency, Duration::from_millis(150));
    assert_eq!(t.link(us, br).bandwidth_bps, 600_000);
    assert_eq!(t.link(us, kr).latency, Duration::from_millis(50));
    assert_eq!(t.link(kr, br).bandwidth_bps, 10_000_000);
    assert_eq!(t.link(kr, br).jitter, Duration::ZERO);
    assert_eq!(t.link(kr, br).loss, 0.0);
    let pairs: Vec<(u16, u16)> = t.wan_pairs().map(|(a, b, _)| (a.0, b.0)).collect();
    assert_eq!(pairs, vec![(0, 1), (0, 2), (1, 2)]);

    assert_eq!(t.clients, ClientPlacement::Weights(vec![1.0, 1.0, 1.0]));
    assert_eq!(t.place_clients(4), vec![us, br, kr, us]);
    assert_eq!(t.pbft.replicas, vec![us, us, br, kr]);
    assert_eq!((t.pbft.f, t.pbft.primary, t.pbft.n()), (1, 0, 4));
    assert_eq!(t.pbft.replicas_at(us).collect::<Vec<_>>(), vec![0, 1]);
}

#[test]
fn link_fields_inherit_from_default() {
    let t = parse(&edit(
        "latency_ms = 50\nbandwidth = \"10Mbps\"",
        "latency_ms = 50\nbandwidth = \"10Mbps\"\njitter_ms = 2.5\nloss_pct = 1",
    ))
    .unwrap();
    let l = t.link(SiteId(0), SiteId(1));
    assert_eq!(l.jitter, Duration::from_micros(2500));
    assert_eq!(l.loss, 0.01);
    assert_eq!(l.latency, Duration::from_millis(150));
    let t = parse(&edit("latency_ms = 150\n", "")).unwrap();
    assert_eq!(
        t.link(SiteId(0), SiteId(1)).latency,
        Duration::from_millis(50)
    );
    assert_eq!(t.link(SiteId(0), SiteId(1)).bandwidth_bps, 600_000);
}

#[test]
fn syntax_error_names_file_and_line() {
    let text = edit("f = 0", "f = = 0");
    let e = parse(&text).unwrap_err();
    let line = text.lines().position(|l| l.contains("f = = 0")).unwrap() + 1;
    assert_eq!(e.line(), Some(line));
    assert!(
        e.to_string()
            .starts_with(&format!("topologies/x.toml: line {line}, column ")),
        "{e}"
    );
    assert!(e.to_string().contains("invalid TOML"), "{e}");
    // Duplicate keys are syntax errors too.
    let e = parse(&edit("f = 0", "f = 0\nf = 1")).unwrap_err();
    assert!(e.line().is_some(), "{e}");
}

#[test]
fn load_names_the_file() {
    let e = Topology::load(std::path::Path::new("/nonexistent/t.toml")).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("/nonexistent/t.toml: cannot read topology file: "),
        "{e}"
    );
    let dir = std::env::temp_dir().join(format!("steward-config-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bad.toml");
    std::fs::write(&path, edit("f = 0", "f = -1")).unwrap();
    let e = Topology::load(&path).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("{}: site[2].f: must be >= 0, got -1", path.display())
    );
    std::fs::write(&path, BASE).unwrap();
    assert_eq!(Topology::load(&path).unwrap().name, "base");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn unknown_fields() {
    rejects(
        &format!("colour = 1\n{BASE}"),
        "topologies/x.toml: colour: unknown field (expected one of: name, description, lan, wan, site, clients, pbft)",
    );
    rejects(
        &edit("f = 0", "f = 0\nfx = 1"),
        "topologies/x.toml: site[2].fx: unknown field (expected one of: name, f, servers)",
    );
    rejects(
        &edit("latency_ms = 0.1", "latency_ms = 0.1\nlatency = 1"),
        "topologies/x.toml: lan.latency: unknown field (expected one of: latency_ms, jitter_ms, bandwidth, loss_pct)",
    );
    rejects(
        &edit("latency_ms = 150", "latency_ms = 150\nqueue = 3"),
        "topologies/x.toml: wan.link[0].queue: unknown field (expected one of: between, latency_ms, jitter_ms, bandwidth, loss_pct)",
    );
    rejects(
        &edit("[wan.default]", "[wan.defaults]"),
        "topologies/x.toml: wan.defaults: unknown field (expected one of: default, link, model)",
    );
    rejects(
        &edit("latency_ms = 50\n", "latency_ms = 50\nbetween = [\"us\", \"korea\"]\n"),
        "topologies/x.toml: wan.default.between: unknown field (expected one of: latency_ms, jitter_ms, bandwidth, loss_pct)",
    );
    rejects(
        &edit("[pbft]", "[pbft]\nprimary = 0"),
        "topologies/x.toml: pbft.primary: unknown field (expected one of: servers_per_site, primary_site, f)",
    );
    rejects(
        &format!("{BASE}\n[clients]\nweight = {{ us = 1 }}\n"),
        "topologies/x.toml: clients.weight: unknown field (expected one of: weights, per_site)",
    );
}

#[test]
fn required_fields() {
    rejects(
        &edit("name = \"base\"", ""),
        "topologies/x.toml: name: missing required field",
    );
    rejects(
        &edit("name = \"us\"\nf = 1\n", "f = 1\n"),
        "topologies/x.toml: site[0].name: missing required field",
    );
    rejects(
        &edit("f = 0", "servers = 1"),
        "topologies/x.toml: site[2].f: missing required field",
    );
    rejects(
        &edit("[lan]\nlatency_ms = 0.1\nbandwidth = \"1Gbps\"", ""),
        "topologies/x.toml: lan: missing required table [lan]",
    );
    rejects(
        &edit("[lan]\nlatency_ms = 0.1", "[lan]"),
        "topologies/x.toml: lan.latency_ms: missing required field",
    );
    rejects(
        &edit("bandwidth = \"1Gbps\"", ""),
        "topologies/x.toml: lan.bandwidth: missing required field",
    );
    rejects(
        &edit("latency_ms = 50\n", ""),
        "topologies/x.toml: wan.default.latency_ms: missing required field",
    );
    rejects(
        &edit(
            "[pbft]\nservers_per_site = { us = 2, brazil = 1, korea = 1 }\n",
            "",
        ),
        "topologies/x.toml: pbft: missing required table [pbft]",
    );
    rejects(
        &edit(
            "servers_per_site = { us = 2, brazil = 1, korea = 1 }",
            "f = 1",
        ),
        "topologies/x.toml: pbft.servers_per_site: missing required field",
    );
    rejects(
        &edit("between = [\"us\", \"brazil\"]\n", ""),
        "topologies/x.toml: wan.link[0].between: missing required field",
    );
}

#[test]
fn wrong_types() {
    rejects(
        &edit("name = \"base\"", "name = 5"),
        "topologies/x.toml: name: expected a string, got integer 5",
    );
    rejects(
        &edit("f = 0", "f = \"0\""),
        "topologies/x.toml: site[2].f: expected a non-negative integer, got string \"0\"",
    );
    rejects(
        &edit("f = 0", "f = 0.5"),
        "topologies/x.toml: site[2].f: expected a non-negative integer, got float 0.5",
    );
    rejects(
        &edit("latency_ms = 0.1", "latency_ms = \"0.1ms\""),
        "topologies/x.toml: lan.latency_ms: expected a number, got string \"0.1ms\"",
    );
    rejects(
        &edit("bandwidth = \"1Gbps\"", "bandwidth = 1000000000"),
        "topologies/x.toml: lan.bandwidth: expected a string with a unit, such as \"10Mbps\", got integer 1000000000",
    );
    rejects(
        &edit("[lan]\nlatency_ms = 0.1\nbandwidth = \"1Gbps\"", "lan = 3"),
        "topologies/x.toml: lan: expected a table, got integer 3",
    );
    rejects(
        "name = \"x\"\n[site]\nname = \"a\"\nf = 0\n",
        "topologies/x.toml: site: expected an array of tables ([[site]]), got a table",
    );
    rejects(
        &edit("between = [\"us\", \"brazil\"]", "between = \"us-brazil\""),
        "topologies/x.toml: wan.link[0].between: expected an array of two site names, got string \"us-brazil\"",
    );
    rejects(
        &edit("between = [\"us\", \"brazil\"]", "between = [\"us\", 1]"),
        "topologies/x.toml: wan.link[0].between: expected an array of two site names, got an array",
    );
    rejects(
        &edit("description = \"three sites\"", "description = true"),
        "topologies/x.toml: description: expected a string, got boolean true",
    );
}

#[test]
fn names() {
    rejects(
        &edit("name = \"base\"", "name = \"\""),
        "topologies/x.toml: name: invalid name \"\": use 1 to 64 ASCII letters, digits, `-`, `_`, `.`",
    );
    rejects(
        &edit("name = \"korea\"", "name = \"south korea\""),
        "topologies/x.toml: site[2].name: invalid name \"south korea\": use 1 to 64 ASCII letters, digits, `-`, `_`",
    );
    rejects(
        &edit("name = \"korea\"", "name = \"us\""),
        "topologies/x.toml: site[2].name: duplicate site name \"us\" (also site[0].name)",
    );
}

#[test]
fn sites() {
    rejects(
        &edit("servers = 5", "servers = 3"),
        "topologies/x.toml: site[1].servers: 3 servers cannot tolerate f = 1 (need at least 3f+1 = 4)",
    );
    rejects(
        &edit("f = 0", "f = 0\nservers = 0"),
        "topologies/x.toml: site[2].servers: 0 servers cannot tolerate f = 0 (need at least 3f+1 = 1)",
    );
    rejects(
        &edit("f = 0", "f = -1"),
        "topologies/x.toml: site[2].f: must be >= 0, got -1",
    );
    rejects(
        &edit("f = 0", "f = 4294967296"),
        "topologies/x.toml: site[2].f: must be <= 4294967295, got 4294967296",
    );
    rejects(
        &edit("f = 0", "f = 2000000000"),
        "topologies/x.toml: site[2].f: f = 2000000000 is too large: 3f+1 servers do not fit in 32 bits",
    );
    rejects(
        &edit("servers = 5", "servers = 4294967295"),
        "topologies/x.toml: site[1].servers: the total number of servers exceeds 4294967295",
    );
    // f = 0 with a single server is allowed.
    let t = parse(&edit("f = 0", "f = 0\nservers = 1")).unwrap();
    assert_eq!(t.sites[2].servers, 1);
}

#[test]
fn site_list() {
    let no_sites: String = BASE.split("[[site]]").next().unwrap().replace(
        "[[wan.link]]\nbetween = [\"us\", \"brazil\"]\nlatency_ms = 150\nbandwidth = \"600kbps\"\n",
        "",
    );
    rejects(
        &format!("{no_sites}[pbft]\nservers_per_site = {{}}\n"),
        "topologies/x.toml: site: missing: at least one [[site]] is required",
    );
    rejects(
        &format!("site = []\n{no_sites}[pbft]\nservers_per_site = {{}}\n"),
        "topologies/x.toml: site: at least one [[site]] is required",
    );
    let mut many = String::from("name = \"many\"\nsite = [");
    for i in 0..=65535 {
        many.push_str(&format!("{{name = \"s{i}\", f = 0}},"));
    }
    many.push_str("]\n");
    rejects(
        &many,
        "topologies/x.toml: site: 65536 sites given, at most 65535 are supported",
    );
}

#[test]
fn link_values() {
    rejects(
        &edit("latency_ms = 0.1", "latency_ms = -1"),
        "topologies/x.toml: lan.latency_ms: must be >= 0, got -1",
    );
    rejects(
        &edit("latency_ms = 0.1", "latency_ms = -0.5"),
        "topologies/x.toml: lan.latency_ms: must be >= 0, got -0.5",
    );
    rejects(
        &edit("latency_ms = 0.1", "latency_ms = nan"),
        "topologies/x.toml: lan.latency_ms: must be a finite number, got NaN",
    );
    rejects(
        &edit("latency_ms = 0.1", "latency_ms = 3600001"),
        "topologies/x.toml: lan.latency_ms: must be <= 3600000, got 3600001",
    );
    rejects(
        &edit("latency_ms = 50", "latency_ms = 50\njitter_ms = -2"),
        "topologies/x.toml: wan.default.jitter_ms: must be >= 0, got -2",
    );
    rejects(
        &edit("latency_ms = 150", "latency_ms = 150\nloss_pct = 100.5"),
        "topologies/x.toml: wan.link[0].loss_pct: must be <= 100, got 100.5",
    );
    rejects(
        &edit("latency_ms = 150", "latency_ms = 150\nloss_pct = -1"),
        "topologies/x.toml: wan.link[0].loss_pct: must be >= 0, got -1",
    );
    rejects(
        &edit("bandwidth = \"600kbps\"", "bandwidth = \"0kbps\""),
        "topologies/x.toml: wan.link[0].bandwidth: bandwidth must be > 0, got \"0kbps\"",
    );
    rejects(
        &edit("bandwidth = \"600kbps\"", "bandwidth = \"600 kilobits\""),
        "topologies/x.toml: wan.link[0].bandwidth: invalid bandwidth \"600 kilobits\": expected a number followed by a unit bps, kbps, Mbps or Gbps, for example \"10Mbps\" or \"2500kbps\"",
    );
    let t = parse(&edit(
        "latency_ms = 150",
        "latency_ms = 150\nloss_pct = 100",
    ))
    .unwrap();
    assert_eq!(t.link(SiteId(0), SiteId(1)).loss, 1.0);
}

#[test]
fn wan_links() {
    rejects(
        &edit(
            "between = [\"us\", \"brazil\"]",
            "between = [\"us\", \"mars\"]",
        ),
        "topologies/x.toml: wan.link[0].between: unknown site \"mars\"",
    );
    rejects(
        &edit("between = [\"us\", \"brazil\"]", "between = [\"us\", \"us\"]"),
        "topologies/x.toml: wan.link[0].between: links site \"us\" to itself; links within a site are set by [lan]",
    );
    rejects(
        &edit(
            "between = [\"us\", \"brazil\"]",
            "between = [\"us\", \"brazil\", \"korea\"]",
        ),
        "topologies/x.toml: wan.link[0].between: expected two site names, got 3",
    );
    rejects(
        &edit(
            "[[site]]\nname = \"us\"",
            "[[wan.link]]\nbetween = [\"brazil\", \"us\"]\n\n[[site]]\nname = \"us\"",
        ),
        "topologies/x.toml: wan.link[1].between: duplicate link between \"us\" and \"brazil\" (already given by wan.link[0])",
    );
    // Matrix mode: without wan.default, every pair needs a link with all required fields.
    let matrix = edit(
        "[wan.default]\nlatency_ms = 50\nbandwidth = \"10Mbps\"\n",
        "",
    );
    rejects(
        &matrix,
        "topologies/x.toml: wan: no link between \"us\" and \"korea\" and no wan.default",
    );
    rejects(
        &matrix.replace("bandwidth = \"600kbps\"\n", ""),
        "topologies/x.toml: wan.link[0].bandwidth: missing required field (there is no wan.default to inherit it from)",
    );
    let full = matrix.replace(
        "[[site]]\nname = \"us\"",
        "[[wan.link]]\nbetween = [\"korea\", \"us\"]\nlatency_ms = 59\nbandwidth = \"1Mbps\"\n\n\
         [[wan.link]]\nbetween = [\"brazil\", \"korea\"]\nlatency_ms = 289\nbandwidth = \"405kbps\"\n\n\
         [[site]]\nname = \"us\"",
    );
    let t = parse(&full).unwrap();
    assert_eq!(
        t.link(SiteId(2), SiteId(1)).latency,
        Duration::from_millis(289)
    );
    assert_eq!(t.link(SiteId(0), SiteId(2)).bandwidth_bps, 1_000_000);
    // A single site needs no WAN at all.
    let single = "name = \"one\"\n[lan]\nlatency_ms = 0\nbandwidth = \"1Gbps\"\n[[site]]\nname = \"a\"\nf = 1\n\
                  [pbft]\nservers_per_site = { a = 4 }\n";
    let t = parse(single).unwrap();
    assert_eq!(t.wan_pairs().count(), 0);
    assert_eq!(t.link(SiteId(0), SiteId(0)).latency, Duration::ZERO);
}

#[test]
fn clients() {
    rejects(
        &format!("{BASE}\n[clients]\nweights = {{ mars = 1 }}\n"),
        "topologies/x.toml: clients.weights.mars: unknown site \"mars\"",
    );
    rejects(
        &format!("{BASE}\n[clients]\nweights = {{ us = -1 }}\n"),
        "topologies/x.toml: clients.weights.us: must be >= 0, got -1",
    );
    rejects(
        &format!("{BASE}\n[clients]\nweights = {{ us = 0, korea = 0.0 }}\n"),
        "topologies/x.toml: clients.weights: at least one weight must be > 0",
    );
    rejects(
        &format!("{BASE}\n[clients]\nweights = {{ us = 1e300, korea = 1e300 }}\n"),
        "topologies/x.toml: clients.weights: the weights add up to more than 10^15",
    );
    rejects(
        &format!("{BASE}\n[clients]\nper_site = {{ us = 0 }}\n"),
        "topologies/x.toml: clients.per_site: at least one count must be > 0",
    );
    rejects(
        &format!("{BASE}\n[clients]\nper_site = {{ us = 1.5 }}\n"),
        "topologies/x.toml: clients.per_site.us: expected a non-negative integer, got float 1.5",
    );
    rejects(
        &format!("{BASE}\n[clients]\nper_site = {{ us = 4294967295, korea = 1 }}\n"),
        "topologies/x.toml: clients.per_site: the counts add up to more than 4294967295",
    );
    rejects(
        &format!("{BASE}\n[clients]\nper_site = {{ us = 1 }}\nweights = {{ us = 1 }}\n"),
        "topologies/x.toml: clients: give either weights or per_site, not both",
    );
    rejects(
        &format!("{BASE}\n[clients]\n"),
        "topologies/x.toml: clients: expected weights = { site = weight, .. } or per_site = { site = count, .. }",
    );
    let t = parse(&format!("{BASE}\n[clients]\nweights = {{ korea = 0.5 }}\n")).unwrap();
    assert_eq!(t.clients, ClientPlacement::Weights(vec![0.0, 0.0, 0.5]));
    assert_eq!(t.place_clients(2), vec![SiteId(2); 2]);
    assert_eq!(t.clients.fixed_total(), None);
    let t = parse(&format!(
        "{BASE}\n[clients]\nper_site = {{ us = 3, korea = 1 }}\n"
    ))
    .unwrap();
    assert_eq!(t.clients, ClientPlacement::PerSite(vec![3, 0, 1]));
    assert_eq!(t.clients.fixed_total(), Some(4));
    let (us, kr) = (SiteId(0), SiteId(2));
    assert_eq!(t.place_clients(4), vec![us, us, kr, us]);
    assert_eq!(t.place_clients(8), vec![us, us, kr, us, us, us, kr, us]);
}

#[test]
fn pbft() {
    rejects(
        &edit("korea = 1 }", "mars = 1 }"),
        "topologies/x.toml: pbft.servers_per_site.mars: unknown site \"mars\"",
    );
    rejects(
        &edit("{ us = 2, brazil = 1, korea = 1 }", "{ us = 0 }"),
        "topologies/x.toml: pbft.servers_per_site: the total number of PBFT replicas must be >= 1",
    );
    rejects(
        &edit("{ us = 2, brazil = 1, korea = 1 }", "{}"),
        "topologies/x.toml: pbft.servers_per_site: the total number of PBFT replicas must be >= 1",
    );
    rejects(
        &edit("{ us = 2, brazil = 1, korea = 1 }", "{ us = -2 }"),
        "topologies/x.toml: pbft.servers_per_site.us: must be >= 0, got -2",
    );
    rejects(
        &edit("{ us = 2, brazil = 1, korea = 1 }", "{ us = 4000000000, korea = 4000000000 }"),
        "topologies/x.toml: pbft.servers_per_site: 8000000000 PBFT replicas given, at most 16777216 are supported",
    );
    rejects(
        &edit("[pbft]", "[pbft]\nf = 2"),
        "topologies/x.toml: pbft.f: 4 replicas cannot tolerate f = 2 (need at least 3f+1 = 7)",
    );
    rejects(
        &edit("[pbft]", "[pbft]\nprimary_site = \"mars\""),
        "topologies/x.toml: pbft.primary_site: unknown site \"mars\"",
    );
    rejects(
        &edit("{ us = 2, brazil = 1, korea = 1 }", "{ us = 2, brazil = 0, korea = 2 }\nprimary_site = \"brazil\""),
        "topologies/x.toml: pbft.primary_site: site \"brazil\" has no PBFT replicas in pbft.servers_per_site",
    );
    let t = parse(&edit("[pbft]", "[pbft]\nprimary_site = \"korea\"\nf = 0")).unwrap();
    assert_eq!(t.pbft.primary, 3);
    assert_eq!(t.pbft.f, 0);
    // Default primary: first site (in file order) with replicas; default f = floor((n-1)/3).
    let t = parse(&edit(
        "{ us = 2, brazil = 1, korea = 1 }",
        "{ korea = 3, brazil = 4 }",
    ))
    .unwrap();
    assert_eq!(
        t.pbft.replicas,
        [vec![SiteId(1); 4], vec![SiteId(2); 3]].concat()
    );
    assert_eq!((t.pbft.primary, t.pbft.f), (0, 2));
}

#[test]
fn error_accessors() {
    let e = parse(&edit("servers = 5", "servers = 3")).unwrap_err();
    assert_eq!(e.origin(), "topologies/x.toml");
    assert_eq!(e.field_path(), Some("site[1].servers"));
    assert_eq!(e.line(), None);
    assert_eq!(
        e.reason(),
        "3 servers cannot tolerate f = 1 (need at least 3f+1 = 4)"
    );
}

#[test]
fn wan_model_parses_and_rejects_unknown_values() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../topologies/paper-symmetric-10mbps.toml"
    ))
    .unwrap();
    let t = Topology::from_toml_str(&text, "p.toml").unwrap();
    assert_eq!(t.wan_model, steward_config::WanModel::SiteUplink);
    let pairwise = text.replace("model = \"site-uplink\"\n", "");
    let t = Topology::from_toml_str(&pairwise, "p.toml").unwrap();
    assert_eq!(t.wan_model, steward_config::WanModel::Pairwise);
    let bad = text.replace("model = \"site-uplink\"", "model = \"mesh\"");
    let err = Topology::from_toml_str(&bad, "p.toml")
        .unwrap_err()
        .to_string();
    assert!(err.contains("wan.model") && err.contains("mesh"), "{err}");
}
