//! Property tests: the parser never panics, random valid topologies resolve to the values
//! written, random invalid ones are rejected naming the right field, and client placement keeps
//! its prefix and exactness guarantees.

use std::fmt::Write as _;
use std::time::Duration;

use proptest::prelude::*;
use steward_config::{LinkParams, ServerId, SiteId, Topology};

// ---------------------------------------------------------------------------------------------
// A model of a topology file, rendered to TOML text.

#[derive(Debug, Clone)]
struct Bandwidth {
    /// Number as written (with `decimals` implied decimal places).
    digits: u64,
    decimals: u32,
    unit: usize,
}

const UNITS: [(&str, u64); 4] = [
    ("bps", 1),
    ("kbps", 1_000),
    ("Mbps", 1_000_000),
    ("Gbps", 1_000_000_000),
];

impl Bandwidth {
    fn text(&self) -> String {
        let scale = 10u64.pow(self.decimals);
        let number = if self.decimals == 0 {
            self.digits.to_string()
        } else {
            format!(
                "{}.{:0width$}",
                self.digits / scale,
                self.digits % scale,
                width = self.decimals as usize
            )
        };
        format!("{number}{}", UNITS[self.unit].0)
    }

    fn bps(&self) -> u64 {
        self.digits * UNITS[self.unit].1 / 10u64.pow(self.decimals)
    }
}

/// Link fields; `None` means "not written".
#[derive(Debug, Clone, Default)]
struct Link {
    /// Microseconds; may be negative for invalid mutations.
    latency_us: Option<i64>,
    jitter_us: Option<i64>,
    bandwidth: Option<Bandwidth>,
    /// Thousandths of a percent.
    loss_milli_pct: Option<u32>,
}

fn ms_text(us: i64) -> String {
    let sign = if us < 0 { "-" } else { "" };
    let us = us.unsigned_abs();
    format!("{sign}{}.{:03}", us / 1000, us % 1000)
}

fn pct_text(milli: u32) -> String {
    format!("{}.{:03}", milli / 1000, milli % 1000)
}

impl Link {
    fn render(&self, out: &mut String) {
        if let Some(us) = self.latency_us {
            writeln!(out, "latency_ms = {}", ms_text(us)).unwrap();
        }
        if let Some(us) = self.jitter_us {
            writeln!(out, "jitter_ms = {}", ms_text(us)).unwrap();
        }
        if let Some(bw) = &self.bandwidth {
            writeln!(out, "bandwidth = \"{}\"", bw.text()).unwrap();
        }
        if let Some(milli) = self.loss_milli_pct {
            writeln!(out, "loss_pct = {}", pct_text(milli)).unwrap();
        }
    }

    /// The expected resolution, inheriting missing fields from `base`.
    fn resolve(&self, base: Option<&LinkParams>) -> LinkParams {
        let us = |v: i64| Duration::from_micros(v as u64);
        LinkParams {
            latency: self.latency_us.map(us).or(base.map(|b| b.latency)).unwrap(),
            jitter: self
                .jitter_us
                .map(us)
                .or(base.map(|b| b.jitter))
                .unwrap_or_default(),
            bandwidth_bps: self
                .bandwidth
                .as_ref()
                .map(Bandwidth::bps)
                .or(base.map(|b| b.bandwidth_bps))
                .unwrap(),
            loss: self
                .loss_milli_pct
                .map(|m| pct_text(m).parse::<f64>().unwrap() / 100.0)
                .or(base.map(|b| b.loss))
                .unwrap_or(0.0),
        }
    }
}

#[derive(Debug, Clone)]
enum Clients {
    Default,
    Weights(Vec<u32>),
    PerSite(Vec<u32>),
}

#[derive(Debug, Clone)]
struct Model {
    /// (f, servers if written)
    sites: Vec<(u32, Option<u32>)>,
    lan: Link,
    wan_default: Option<Link>,
    /// (a, b, swap the order in `between`, fields)
    links: Vec<(usize, usize, bool, Link)>,
    clients: Clients,
    pbft_counts: Vec<u32>,
    pbft_f: Option<u32>,
    /// Index into the sites with PBFT replicas.
    pbft_primary: Option<usize>,
}

fn site_name(i: usize) -> String {
    format!("site-{i}")
}

impl Model {
    fn render(&self) -> String {
        let mut out =
            String::from("name = \"generated\"\ndescription = \"property test\"\n\n[lan]\n");
        self.lan.render(&mut out);
        if let Some(d) = &self.wan_default {
            out.push_str("\n[wan.default]\n");
            d.render(&mut out);
        }
        for (a, b, swap, link) in &self.links {
            let (x, y) = if *swap { (b, a) } else { (a, b) };
            writeln!(
                out,
                "\n[[wan.link]]\nbetween = [\"{}\", \"{}\"]",
                site_name(*x),
                site_name(*y)
            )
            .unwrap();
            link.render(&mut out);
        }
        for (i, (f, servers)) in self.sites.iter().enumerate() {
            writeln!(out, "\n[[site]]\nname = \"{}\"\nf = {f}", site_name(i)).unwrap();
            if let Some(s) = servers {
                writeln!(out, "servers = {s}").unwrap();
            }
        }
        match &self.clients {
            Clients::Default => {}
            Clients::Weights(w) => writeln!(out, "\n[clients]\nweights = {}", inline(w)).unwrap(),
            Clients::PerSite(c) => writeln!(out, "\n[clients]\nper_site = {}", inline(c)).unwrap(),
        }
        writeln!(
            out,
            "\n[pbft]\nservers_per_site = {}",
            inline(&self.pbft_counts)
        )
        .unwrap();
        if let Some(f) = self.pbft_f {
            writeln!(out, "f = {f}").unwrap();
        }
        if let Some(p) = self.pbft_primary {
            writeln!(
                out,
                "primary_site = \"{}\"",
                site_name(self.primary_site(p))
            )
            .unwrap();
        }
        out
    }

    fn primary_site(&self, p: usize) -> usize {
        let with: Vec<usize> = (0..self.pbft_counts.len())
            .filter(|&i| self.pbft_counts[i] > 0)
            .collect();
        with[p % with.len()]
    }

    fn parse(&self) -> Result<Topology, steward_config::ConfigError> {
        Topology::from_toml_str(&self.render(), "gen.toml")
    }
}

// ---------------------------------------------------------------------------------------------
// Strategies.

fn bandwidth() -> impl Strategy<Value = Bandwidth> {
    (0u32..=2, 0usize..4).prop_flat_map(|(decimals, unit)| {
        // At least 1 bps after scaling, whole bps, and far from u64 overflow.
        let scale = 10u64.pow(decimals);
        let min = if unit == 0 { scale } else { 1 };
        (min..=1_000_000 * scale).prop_map(move |d| {
            let digits = if unit == 0 { d / scale * scale } else { d };
            Bandwidth {
                digits,
                decimals,
                unit,
            }
        })
    })
}

fn latency_us() -> impl Strategy<Value = i64> {
    prop_oneof![0i64..1_000, 0i64..1_000_000, 0i64..=3_600_000_000]
}

/// A link with every field chosen independently (present or not).
fn partial_link() -> impl Strategy<Value = Link> {
    (
        proptest::option::of(latency_us()),
        proptest::option::of(0i64..100_000),
        proptest::option::of(bandwidth()),
        proptest::option::of(0u32..=100_000),
    )
        .prop_map(|(latency_us, jitter_us, bandwidth, loss_milli_pct)| Link {
            latency_us,
            jitter_us,
            bandwidth,
            loss_milli_pct,
        })
}

/// A link with the required fields present.
fn full_link() -> impl Strategy<Value = Link> {
    (partial_link(), latency_us(), bandwidth()).prop_map(|(mut l, lat, bw)| {
        l.latency_us = Some(lat);
        l.bandwidth = Some(bw);
        l
    })
}

fn valid_model() -> impl Strategy<Value = Model> {
    (1usize..=6).prop_flat_map(|n| {
        let pairs: Vec<(usize, usize)> = (0..n)
            .flat_map(|a| (a + 1..n).map(move |b| (a, b)))
            .collect();
        let npairs = pairs.len();
        (
            proptest::collection::vec((0u32..6, proptest::option::of(0u32..4)), n),
            full_link(),
            proptest::option::of(full_link()),
            proptest::collection::vec(
                (any::<bool>(), any::<bool>(), partial_link(), full_link()),
                npairs,
            ),
            prop_oneof![Just(0u8), Just(1u8), Just(2u8)],
            proptest::collection::vec(0u32..5, n),
            proptest::collection::vec(0u32..5, n),
            any::<(bool, bool, usize, u32)>(),
        )
            .prop_map(
                move |(
                    sites,
                    lan,
                    wan_default,
                    link_choices,
                    client_kind,
                    client_values,
                    pbft,
                    (has_f, has_primary, primary, f_pick),
                )| {
                    let sites = sites
                        .into_iter()
                        .map(|(f, extra)| (f, extra.map(|e| 3 * f + 1 + e)))
                        .collect();
                    // With a default, each pair is overridden or not; without, every pair is
                    // given with all required fields.
                    let links = pairs
                        .iter()
                        .zip(link_choices)
                        .filter(|(_, (keep, ..))| wan_default.is_none() || *keep)
                        .map(|(&(a, b), (_, swap, partial, full))| {
                            (
                                a,
                                b,
                                swap,
                                if wan_default.is_some() { partial } else { full },
                            )
                        })
                        .collect();
                    let mut client_values = client_values;
                    if client_values.iter().all(|&v| v == 0) {
                        client_values[0] = 1;
                    }
                    let clients = match client_kind {
                        0 => Clients::Default,
                        1 => Clients::Weights(client_values),
                        _ => Clients::PerSite(client_values),
                    };
                    let mut pbft_counts = pbft;
                    if pbft_counts.iter().all(|&c| c == 0) {
                        pbft_counts[n - 1] = 1;
                    }
                    let total: u32 = pbft_counts.iter().sum();
                    Model {
                        sites,
                        lan,
                        wan_default,
                        links,
                        clients,
                        pbft_f: has_f.then_some(f_pick % ((total - 1) / 3 + 1)),
                        pbft_primary: has_primary.then_some(primary),
                        pbft_counts,
                    }
                },
            )
    })
}

// ---------------------------------------------------------------------------------------------
// Properties.

/// Fragments that make random text look like a topology often enough to reach deep code.
fn tomlish() -> impl Strategy<Value = String> {
    let fragment = prop_oneof![
        Just("name = \"x\"\n".to_string()),
        Just("[lan]\n".to_string()),
        Just("[wan.default]\n".to_string()),
        Just("[[wan.link]]\n".to_string()),
        Just("[[site]]\n".to_string()),
        Just("[clients]\n".to_string()),
        Just("[pbft]\n".to_string()),
        Just("between = [\"a\", \"b\"]\n".to_string()),
        Just("servers_per_site = { a = 1 }\n".to_string()),
        Just("weights = { a = 1, b = 0 }\n".to_string()),
        Just("per_site = { b = 2 }\n".to_string()),
        Just("primary_site = \"b\"\n".to_string()),
        "(name|f|servers|latency_ms|jitter_ms|loss_pct) = -?[0-9]{1,12}(\\.[0-9]{0,3})?\n",
        "name = \"[a-c]\"\n",
        "bandwidth = \"[0-9.]{0,25} ?[kMG]?bps\"\n",
        "f = (nan|inf|-inf|1e400|9223372036854775807)\n",
        "[a-z_\\[\\]\\.\"=]{0,12}\n",
    ];
    proptest::collection::vec(fragment, 0..24).prop_map(|parts| parts.concat())
}

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        // Integration tests have no lib.rs next to them to persist regressions into.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn arbitrary_text_never_panics(text in any::<String>()) {
        let _ = Topology::from_toml_str(&text, "fuzz.toml");
    }

    #[test]
    fn toml_like_text_never_panics(text in tomlish()) {
        if let Ok(t) = Topology::from_toml_str(&text, "fuzz.toml") {
            // Whatever is accepted is consistent.
            for a in t.site_ids() {
                for b in t.site_ids() {
                    prop_assert_eq!(t.link(a, b), t.link(b, a));
                }
            }
            let _ = t.place_clients(50);
        }
    }

    #[test]
    fn server_ids_round_trip(site in any::<u16>(), index in any::<u32>()) {
        let id = ServerId::new(SiteId(site), index);
        prop_assert_eq!(ServerId::parse(&id.to_string()), Ok(id));
    }
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn valid_topologies_resolve_to_the_written_values(model in valid_model()) {
        let t = model.parse().map_err(|e| TestCaseError::fail(format!("{e}\n{}", model.render())))?;
        let n = model.sites.len();
        prop_assert_eq!(t.sites.len(), n);
        for (i, (f, servers)) in model.sites.iter().enumerate() {
            let site = &t.sites[i];
            prop_assert_eq!(site.id, SiteId(i as u16));
            prop_assert_eq!(&site.name, &site_name(i));
            prop_assert_eq!(site.f, *f);
            prop_assert_eq!(site.servers, servers.unwrap_or(3 * f + 1));
        }
        let servers: u32 = t.sites.iter().map(|s| s.servers).sum();
        prop_assert_eq!(t.total_steward_servers(), servers);
        prop_assert_eq!(t.steward_servers().count() as u32, servers);

        let lan = model.lan.resolve(None);
        prop_assert_eq!(t.link(SiteId(0), SiteId(0)), &lan);
        let default = model.wan_default.as_ref().map(|d| d.resolve(None));
        for a in 0..n {
            for b in a + 1..n {
                let explicit = model.links.iter().find(|(x, y, ..)| (*x, *y) == (a, b));
                let expected = match explicit {
                    Some((.., link)) => link.resolve(default.as_ref()),
                    None => default.unwrap(),
                };
                let (sa, sb) = (SiteId(a as u16), SiteId(b as u16));
                prop_assert_eq!(t.link(sa, sb), &expected);
                prop_assert_eq!(t.link(sb, sa), &expected);
            }
        }

        let total: u32 = model.pbft_counts.iter().sum();
        prop_assert_eq!(t.pbft.n(), total);
        prop_assert_eq!(t.pbft.f, model.pbft_f.unwrap_or((total - 1) / 3));
        for (i, &c) in model.pbft_counts.iter().enumerate() {
            prop_assert_eq!(t.pbft.replicas_at(SiteId(i as u16)).count() as u32, c);
        }
        let primary_site = match model.pbft_primary {
            Some(p) => model.primary_site(p),
            None => model.pbft_counts.iter().position(|&c| c > 0).unwrap(),
        };
        let first: u32 = model.pbft_counts[..primary_site].iter().sum();
        prop_assert_eq!(t.pbft.primary, first);
        prop_assert_eq!(t.pbft.replicas[first as usize], SiteId(primary_site as u16));
    }

    #[test]
    fn servers_below_3f_plus_1_are_rejected(model in valid_model(), pick in any::<usize>(), f in 1u32..6, short in any::<u32>()) {
        let mut model = model;
        let i = pick % model.sites.len();
        model.sites[i] = (f, Some(short % (3 * f + 1)));
        let e = model.parse().unwrap_err();
        let path = format!("site[{i}].servers");
        prop_assert_eq!(e.field_path(), Some(path.as_str()), "{}", e);
        prop_assert!(e.to_string().starts_with(&format!("gen.toml: {path}: ")), "{}", e);
    }

    #[test]
    fn unknown_site_in_link_is_rejected(model in valid_model(), pick in any::<usize>(), side in any::<bool>()) {
        let mut model = model;
        if model.links.is_empty() {
            // Make sure there is a link to corrupt: with one site, add a second one.
            if model.sites.len() == 1 {
                model.sites.push((0, None));
            }
            let full = Link {
                latency_us: Some(1_000),
                bandwidth: Some(Bandwidth { digits: 5, decimals: 0, unit: 2 }),
                ..Link::default()
            };
            model.links.push((0, 1, false, full));
        }
        let k = pick % model.links.len();
        let text = model.render();
        // Rename one end of the k-th link to a site that does not exist.
        let (a, b, swap, _) = &model.links[k];
        let (x, y) = if *swap { (b, a) } else { (a, b) };
        let between = format!("between = [\"{}\", \"{}\"]", site_name(*x), site_name(*y));
        let mars = if side {
            format!("between = [\"mars\", \"{}\"]", site_name(*y))
        } else {
            format!("between = [\"{}\", \"mars\"]", site_name(*x))
        };
        let text = text.replacen(&between, &mars, 1);
        let e = Topology::from_toml_str(&text, "gen.toml").unwrap_err();
        let path = format!("wan.link[{k}].between");
        prop_assert_eq!(e.field_path(), Some(path.as_str()), "{}", e);
        prop_assert!(e.reason().contains("unknown site \"mars\""), "{}", e);
    }

    #[test]
    fn negative_latency_is_rejected(model in valid_model(), pick in any::<usize>(), us in 1i64..10_000_000) {
        let mut model = model;
        // Candidates: the LAN, the WAN default, and every link that writes latency_ms.
        let mut candidates = vec!["lan".to_string()];
        if model.wan_default.is_some() {
            candidates.push("wan.default".to_string());
        }
        for (k, (.., link)) in model.links.iter().enumerate() {
            if link.latency_us.is_some() {
                candidates.push(format!("wan.link[{k}]"));
            }
        }
        let choice = pick % candidates.len();
        let target = candidates[choice].clone();
        match target.as_str() {
            "lan" => model.lan.latency_us = Some(-us),
            "wan.default" => model.wan_default.as_mut().unwrap().latency_us = Some(-us),
            link => {
                let k: usize = link["wan.link[".len()..link.len() - 1].parse().unwrap();
                model.links[k].3.latency_us = Some(-us);
            }
        }
        let e = model.parse().unwrap_err();
        let path = format!("{target}.latency_ms");
        prop_assert_eq!(e.field_path(), Some(path.as_str()), "{}", e);
        prop_assert!(e.reason().starts_with("must be >= 0, got -"), "{}", e);
    }

    #[test]
    fn missing_link_in_matrix_is_rejected(model in valid_model(), pick in any::<usize>()) {
        let mut model = model;
        if model.sites.len() == 1 {
            model.sites.push((0, None));
        }
        model.wan_default = None;
        // Complete the matrix, then drop one pair.
        let n = model.sites.len();
        let full = Link {
            latency_us: Some(1),
            bandwidth: Some(Bandwidth { digits: 1, decimals: 0, unit: 2 }),
            ..Link::default()
        };
        model.links = (0..n)
            .flat_map(|a| (a + 1..n).map(move |b| (a, b)))
            .map(|(a, b)| (a, b, false, full.clone()))
            .collect();
        let (a, b, ..) = model.links.remove(pick % model.links.len());
        let e = model.parse().unwrap_err();
        prop_assert_eq!(e.field_path(), Some("wan"), "{}", e);
        let expected = format!(
            "no link between \"{}\" and \"{}\" and no wan.default",
            site_name(a),
            site_name(b)
        );
        prop_assert_eq!(e.reason(), expected.as_str());
    }
}

fn placement_topology(sites: usize, clients: &str) -> Topology {
    let mut text = String::from(
        "name = \"p\"\n[lan]\nlatency_ms = 0\nbandwidth = \"1Gbps\"\n[wan.default]\nlatency_ms = 1\nbandwidth = \"1Mbps\"\n",
    );
    for i in 0..sites {
        writeln!(text, "[[site]]\nname = \"{}\"\nf = 0", site_name(i)).unwrap();
    }
    writeln!(
        text,
        "[clients]\n{clients}\n[pbft]\nservers_per_site = {{ {} = 1 }}",
        site_name(0)
    )
    .unwrap();
    Topology::from_toml_str(&text, "p.toml").unwrap_or_else(|e| panic!("{e}\n{text}"))
}

/// `{ s0 = v0, s1 = v1, ... }`: an inline table of a value per site.
fn inline(values: &[impl std::fmt::Display]) -> String {
    let entries: Vec<String> = values
        .iter()
        .enumerate()
        .map(|(i, v)| format!("{} = {v}", site_name(i)))
        .collect();
    format!("{{ {} }}", entries.join(", "))
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn per_site_counts_are_exact_and_placement_is_a_prefix(
        counts in proptest::collection::vec(0u32..12, 1..7),
        cycles in 1u32..4,
        extra in 0u32..40,
    ) {
        let mut counts = counts;
        if counts.iter().all(|&c| c == 0) {
            counts[0] = 1;
        }
        let values: Vec<String> = counts.iter().map(u32::to_string).collect();
        let t = placement_topology(counts.len(), &format!("per_site = {}", inline(&values)));
        let total: u32 = counts.iter().sum();
        prop_assert_eq!(t.clients.fixed_total(), Some(total));
        let long = t.place_clients(cycles * total + extra);
        for m in 1..=cycles {
            let placed = t.place_clients(m * total);
            prop_assert_eq!(&placed[..], &long[..placed.len()]);
            for (i, &c) in counts.iter().enumerate() {
                let at = placed.iter().filter(|s| **s == SiteId(i as u16)).count() as u32;
                prop_assert_eq!(at, m * c, "site {} after {} cycles", i, m);
            }
        }
        for k in 0..=long.len() as u32 {
            prop_assert_eq!(&t.place_clients(k)[..], &long[..k as usize]);
        }
    }

    #[test]
    fn weighted_placement_is_a_prefix_and_skips_zero_weights(
        weights in proptest::collection::vec(prop_oneof![Just(0u32), 1u32..1000], 1..7),
        n in 0u32..60,
    ) {
        let mut weights = weights;
        if weights.iter().all(|&w| w == 0) {
            weights[0] = 1;
        }
        // Weights with two decimals, e.g. 3.75.
        let values: Vec<String> = weights.iter().map(|w| format!("{}.{:02}", w / 100, w % 100)).collect();
        let t = placement_topology(weights.len(), &format!("weights = {}", inline(&values)));
        let long = t.place_clients(n + 10);
        let short = t.place_clients(n);
        prop_assert_eq!(&short[..], &long[..n as usize]);
        for site in &long {
            prop_assert!(weights[site.index()] > 0);
        }
        // Each site's share stays within one client of its proportional share.
        let total: u32 = weights.iter().sum();
        for (i, &w) in weights.iter().enumerate() {
            let at = short.iter().filter(|s| s.index() == i).count() as f64;
            let ideal = f64::from(n) * f64::from(w) / f64::from(total);
            prop_assert!((at - ideal).abs() < 1.0 + 1e-9, "site {}: {} vs {}", i, at, ideal);
        }
    }
}
