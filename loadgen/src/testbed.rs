//! `loadgen testbed emulab|cloudlab --topology <file>`: an experiment description for a
//! testbed whose delay nodes shape the links (Emulab NS file, CloudLab geni-lib `profile.py`).
//!
//! Shape: one host per site, `<site>-0`, that runs all of the site's Steward servers and PBFT
//! replicas (the inventory's per-site placement); a client host `<site>-client0` at every
//! site the topology places clients in, on a LAN with its site's host (the topology's LAN
//! parameters); and one shaped link per pair of sites with the pair's one-way latency,
//! bandwidth and loss. Routing is static, so traffic between a client host and another site
//! goes through its site's host. Node names follow what `loadgen inventory` reads from the
//! experiment's /etc/hosts or manifest (`_` in site names becomes `-`, which Emulab needs).
//!
//! Not expressible there: jitter (the delay nodes add none) and the `site-uplink` model
//! (each pair gets its own link at the pair's bandwidth); the file says so in a comment.

use std::fmt::Write as _;
use std::fs;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use steward_config::{LinkParams, SiteId, Topology, WanModel};

/// Arguments of `loadgen testbed`.
#[derive(Args, Debug)]
pub struct TestbedArgs {
    /// emulab (an NS file) or cloudlab (a geni-lib profile.py).
    kind: Kind,
    /// Topology file (TOML).
    #[arg(long)]
    topology: PathBuf,
    /// Output file (default: stdout).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Disk image of every node.
    #[arg(long, default_value = "UBUNTU22-64-STD")]
    image: String,
    /// Hardware type of every node (e.g. d430); default: the testbed chooses.
    #[arg(long)]
    hardware: Option<String>,
}

/// Which testbed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Kind {
    /// Emulab NS file (Tcl).
    Emulab,
    /// CloudLab / Emulab portal geni-lib profile.
    Cloudlab,
}

/// The experiment's nodes and links.
#[derive(Debug, PartialEq)]
pub struct Experiment {
    /// Replica host of each site, in site order.
    pub site_hosts: Vec<String>,
    /// (site, client host) for each site with clients.
    pub client_hosts: Vec<(SiteId, String)>,
    /// One link per pair of sites: (a, b, parameters).
    pub wan: Vec<(SiteId, SiteId, LinkParams)>,
}

/// The node name of a site (Emulab allows letters, digits and `-`).
fn dns(site: &str) -> String {
    site.replace('_', "-").to_ascii_lowercase()
}

/// The experiment for `t`.
pub fn experiment(t: &Topology) -> Result<Experiment> {
    let mut names = std::collections::HashSet::new();
    for s in &t.sites {
        let n = dns(&s.name);
        if !n.starts_with(|c: char| c.is_ascii_alphabetic()) || !names.insert(n.clone()) {
            bail!(
                "topology {}: site {} cannot be an Emulab node name ({n}-0): it must start with a letter and be unique without case and with - for _",
                t.name,
                s.name
            );
        }
    }
    let site_hosts = t
        .sites
        .iter()
        .map(|s| format!("{}-0", dns(&s.name)))
        .collect();
    let mut client_sites: Vec<SiteId> = t.place_clients(t.sites.len() as u32 * 8);
    client_sites.sort();
    client_sites.dedup();
    let client_hosts = client_sites
        .into_iter()
        .map(|s| (s, format!("{}-client0", dns(&t.site(s).name))))
        .collect();
    let wan = t.wan_pairs().map(|(a, b, l)| (a, b, *l)).collect();
    Ok(Experiment {
        site_hosts,
        client_hosts,
        wan,
    })
}

fn ms(l: &LinkParams) -> String {
    format!("{}", l.latency.as_secs_f64() * 1e3)
}

fn kbps(l: &LinkParams) -> u64 {
    l.bandwidth_bps.div_ceil(1000)
}

fn caveats(t: &Topology) -> Vec<String> {
    let mut v = Vec::new();
    if t.wan_pairs().any(|(_, _, l)| !l.jitter.is_zero()) || !t.lan.jitter.is_zero() {
        v.push("the topology's jitter is not expressible here (delay nodes add none)".into());
    }
    if t.wan_model == WanModel::SiteUplink {
        v.push("the topology's site-uplink model (one shared rate per site's egress) is approximated by one link per pair of sites at the pair's bandwidth".into());
    }
    v
}

/// The Emulab NS file.
pub fn ns_file(t: &Topology, image: &str, hardware: Option<&str>) -> Result<String> {
    let e = experiment(t)?;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# Emulab experiment for topology {} (written by loadgen testbed emulab).",
        t.name
    );
    let _ = writeln!(
        s,
        "# One host per site runs the site's replicas; client hosts sit on their site's LAN;"
    );
    let _ = writeln!(
        s,
        "# delay nodes shape each pair of sites with its one-way latency, bandwidth and loss."
    );
    for c in caveats(t) {
        let _ = writeln!(s, "# Note: {c}.");
    }
    let _ = writeln!(s, "set ns [new Simulator]\nsource tb_compat.tcl\n");
    let all: Vec<&String> = e
        .site_hosts
        .iter()
        .chain(e.client_hosts.iter().map(|(_, n)| n))
        .collect();
    for n in &all {
        let _ = writeln!(s, "set {{{n}}} [$ns node]");
        let _ = writeln!(s, "tb-set-node-os ${{{n}}} {image}");
        if let Some(h) = hardware {
            let _ = writeln!(s, "tb-set-hardware ${{{n}}} {h}");
        }
    }
    s.push('\n');
    for (site, client) in &e.client_hosts {
        let host = &e.site_hosts[site.index()];
        let _ = writeln!(
            s,
            "set {{lan-{}}} [$ns make-lan \"${{{host}}} ${{{client}}}\" {}kb {}ms]",
            dns(&t.site(*site).name),
            kbps(&t.lan),
            ms(&t.lan)
        );
        if t.lan.loss > 0.0 {
            let _ = writeln!(
                s,
                "tb-set-lan-loss ${{lan-{}}} {}",
                dns(&t.site(*site).name),
                t.lan.loss
            );
        }
    }
    for (a, b, l) in &e.wan {
        let (ha, hb) = (&e.site_hosts[a.index()], &e.site_hosts[b.index()]);
        let name = format!("wan-{}-{}", dns(&t.site(*a).name), dns(&t.site(*b).name));
        let _ = writeln!(
            s,
            "set {{{name}}} [$ns duplex-link ${{{ha}}} ${{{hb}}} {}kb {}ms DropTail]",
            kbps(l),
            ms(l)
        );
        if l.loss > 0.0 {
            let _ = writeln!(s, "tb-set-link-loss ${{{name}}} {}", l.loss);
        }
    }
    let _ = writeln!(s, "\n$ns rtproto Static\n$ns run");
    Ok(s)
}

fn py(text: &str) -> String {
    serde_json::Value::String(text.to_string()).to_string()
}

/// The CloudLab geni-lib profile.
pub fn profile_py(t: &Topology, image: &str, hardware: Option<&str>) -> Result<String> {
    let e = experiment(t)?;
    let urn = if image.starts_with("urn:") {
        image.to_string()
    } else {
        format!("urn:publicid:IDN+emulab.net+image+emulab-ops//{image}")
    };
    let mut s = String::new();
    let _ = writeln!(
        s,
        "\"\"\"Steward benchmark testbed for topology {}: one host per site, client hosts on their",
        t.name
    );
    let _ = writeln!(
        s,
        "site's LAN, shaped links between sites (written by loadgen testbed cloudlab)."
    );
    for c in caveats(t) {
        let _ = writeln!(s, "Note: {c}.");
    }
    let _ = writeln!(s, "\"\"\"\n");
    let _ = writeln!(
        s,
        "import geni.portal as portal\nimport geni.rspec.pg as pg\n"
    );
    let _ = writeln!(s, "pc = portal.Context()\nrequest = pc.makeRequestRSpec()\nIMAGE = {}\nHARDWARE = {}\nnodes = {{}}\n", py(&urn), hardware.map(py).unwrap_or("None".into()));
    let _ = writeln!(s, "\ndef add_node(name):\n    node = request.RawPC(name)\n    node.disk_image = IMAGE\n    if HARDWARE:\n        node.hardware_type = HARDWARE\n    nodes[name] = node\n\n");
    let _ = writeln!(s, "def shaped(link, kbps, ms, plr):\n    link.bandwidth = kbps\n    link.latency = ms\n    link.plr = plr\n\n");
    for n in e
        .site_hosts
        .iter()
        .chain(e.client_hosts.iter().map(|(_, n)| n))
    {
        let _ = writeln!(s, "add_node({})", py(n));
    }
    s.push('\n');
    for (site, client) in &e.client_hosts {
        let host = &e.site_hosts[site.index()];
        let name = format!("lan-{}", dns(&t.site(*site).name));
        let _ = writeln!(s, "lan = request.LAN({})", py(&name));
        for n in [host, client] {
            let _ = writeln!(
                s,
                "lan.addInterface(nodes[{}].addInterface({}))",
                py(n),
                py(&format!("if-{name}"))
            );
        }
        let _ = writeln!(
            s,
            "shaped(lan, {}, {}, {})",
            kbps(&t.lan),
            ms(&t.lan),
            t.lan.loss
        );
    }
    for (a, b, l) in &e.wan {
        let (ha, hb) = (&e.site_hosts[a.index()], &e.site_hosts[b.index()]);
        let name = format!("wan-{}-{}", dns(&t.site(*a).name), dns(&t.site(*b).name));
        let _ = writeln!(s, "link = request.Link({})", py(&name));
        for n in [ha, hb] {
            let _ = writeln!(
                s,
                "link.addInterface(nodes[{}].addInterface({}))",
                py(n),
                py(&format!("if-{name}"))
            );
        }
        let _ = writeln!(s, "shaped(link, {}, {}, {})", kbps(l), ms(l), l.loss);
    }
    let _ = writeln!(
        s,
        "\nrequest.setRoutingStyle(\"static\")\npc.printRequestRSpec(request)"
    );
    Ok(s)
}

/// Run `loadgen testbed`.
pub fn run(a: TestbedArgs) -> Result<()> {
    let t = Topology::load(&a.topology)?;
    let text = match a.kind {
        Kind::Emulab => ns_file(&t, &a.image, a.hardware.as_deref())?,
        Kind::Cloudlab => profile_py(&t, &a.image, a.hardware.as_deref())?,
    };
    match &a.out {
        Some(p) => fs::write(p, text).with_context(|| format!("{}: cannot write", p.display()))?,
        None => print!("{text}"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hosts;
    use crate::inventory::{place, Placement};

    fn shipped(name: &str) -> Topology {
        let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../topologies")
            .join(name);
        Topology::load(&p).unwrap()
    }

    #[test]
    fn ns_file_has_a_shaped_link_per_pair_and_the_site_lans() {
        let t = shipped("paper-planetlab.toml");
        let ns = ns_file(&t, "UBUNTU22-64-STD", Some("d430")).unwrap();
        assert!(ns.contains("set {us-0} [$ns node]\ntb-set-node-os ${us-0} UBUNTU22-64-STD\ntb-set-hardware ${us-0} d430\n"), "{ns}");
        assert!(ns.contains("set {wan-brazil-korea} [$ns duplex-link ${brazil-0} ${korea-0} 405kb 289ms DropTail]"), "{ns}");
        assert!(ns.contains("set {wan-us-australia} [$ns duplex-link ${us-0} ${australia-0} 1300kb 95ms DropTail]"), "{ns}");
        assert_eq!(ns.matches("duplex-link").count(), 10);
        assert!(
            ns.contains("set {lan-us} [$ns make-lan \"${us-0} ${us-client0}\" 1000000kb 0.1ms]"),
            "{ns}"
        );
        assert_eq!(ns.matches("make-lan").count(), 1, "clients only at us");
        assert!(ns.contains("$ns rtproto Static"));
        let sym = ns_file(&shipped("local-symmetric-10mbps.toml"), "X", None).unwrap();
        assert!(
            sym.contains("# Note: the topology's site-uplink model"),
            "{sym}"
        );
        assert!(
            sym.contains("${site0-0} ${site4-0} 10000kb 50ms DropTail"),
            "{sym}"
        );
    }

    #[test]
    fn loss_is_exported() {
        let t = Topology::from_toml_str(
            "name = \"l\"\n[lan]\nlatency_ms = 0.1\nbandwidth = \"1Gbps\"\n[wan.default]\nlatency_ms = 30\nbandwidth = \"2Mbps\"\nloss_pct = 2\n[[site]]\nname = \"a_x\"\nf = 0\n[[site]]\nname = \"b\"\nf = 0\n[pbft]\nservers_per_site = { a_x = 1 }\n",
            "l.toml",
        )
        .unwrap();
        let ns = ns_file(&t, "I", None).unwrap();
        assert!(ns.contains("tb-set-link-loss ${wan-a-x-b} 0.02"), "{ns}");
        let py = profile_py(&t, "I", None).unwrap();
        assert!(py.contains("shaped(link, 2000, 30, 0.02)"), "{py}");
    }

    #[test]
    fn exported_names_are_what_inventory_reads() {
        for name in [
            "paper-cairn.toml",
            "local-planetlab.toml",
            "paper-symmetric-5mbps.toml",
        ] {
            let t = shipped(name);
            let e = experiment(&t).unwrap();
            // The experiment's /etc/hosts as Emulab writes it: IP, link alias, short name.
            let mut etc = String::from("127.0.0.1\tlocalhost loghost\n");
            for (i, n) in e
                .site_hosts
                .iter()
                .chain(e.client_hosts.iter().map(|(_, n)| n))
                .enumerate()
            {
                etc += &format!("10.1.{i}.2\t{n}-link-0 {n}-0 {n}\n");
            }
            let hs = hosts::parse(&etc, "hosts", &t).unwrap();
            let plan = place(&t, hs, "hosts", &Placement::PerSite, 4, 7000).unwrap();
            assert_eq!(
                plan.addresses().len() as u32,
                t.total_steward_servers() + t.pbft.n() + 4,
                "{name}"
            );
        }
    }

    #[test]
    fn profile_is_python_with_the_same_links() {
        let t = shipped("paper-cairn.toml");
        let py = profile_py(&t, "UBUNTU22-64-STD", None).unwrap();
        assert_eq!(py.matches("request.Link(").count(), 10);
        assert!(py
            .contains("IMAGE = \"urn:publicid:IDN+emulab.net+image+emulab-ops//UBUNTU22-64-STD\""));
        assert!(py.contains("request.setRoutingStyle(\"static\")"));
        // It parses as Python (the geni-lib modules are only on the portal).
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("profile.py");
        fs::write(&f, &py).unwrap();
        let o = std::process::Command::new("python3")
            .args(["-c", "import ast, sys; ast.parse(open(sys.argv[1]).read())"])
            .arg(&f)
            .output()
            .expect("python3 runs");
        assert!(
            o.status.success(),
            "{}\n{py}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
}
