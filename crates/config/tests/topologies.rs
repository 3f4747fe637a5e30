//! Every file in the repository's `topologies/` directory loads, and the paper's files have
//! exactly the shape the paper (steward.md section 13) describes.

use std::path::PathBuf;
use std::time::Duration;

use steward_config::{ClientPlacement, SiteId, Topology};

fn dir() -> PathBuf {
    // Canonicalize so that a symlinked crate directory still finds the repository's files.
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let manifest = manifest.canonicalize().unwrap_or(manifest);
    manifest.join("../../topologies")
}

fn load(name: &str) -> Topology {
    let path = dir().join(format!("{name}.toml"));
    Topology::load(&path).unwrap_or_else(|e| panic!("{e}"))
}

const NAMED: &[&str] = &[
    "paper-symmetric-10mbps",
    "paper-symmetric-5mbps",
    "paper-symmetric-2500kbps",
    "paper-planetlab",
    "paper-cairn",
    "local-symmetric-10mbps",
    "local-symmetric-5mbps",
    "local-symmetric-2500kbps",
];

#[test]
fn every_file_in_topologies_loads() {
    let mut seen = Vec::new();
    for entry in std::fs::read_dir(dir()).expect("topologies/ directory") {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("toml") {
            continue;
        }
        let t = Topology::load(&path).unwrap_or_else(|e| panic!("{e}"));
        let stem = path.file_stem().unwrap().to_str().unwrap().to_string();
        assert_eq!(
            t.name,
            stem,
            "{}: name should equal the file name",
            path.display()
        );
        assert!(
            !t.description.is_empty(),
            "{}: no description",
            path.display()
        );
        // Every pair of sites resolves, symmetrically.
        for a in t.site_ids() {
            for b in t.site_ids() {
                assert_eq!(t.link(a, b), t.link(b, a));
            }
        }
        assert!(t.pbft.n() > 3 * t.pbft.f);
        assert!(!t.place_clients(30).is_empty());
        seen.push(stem);
    }
    for name in NAMED {
        assert!(
            seen.iter().any(|s| s == name),
            "topologies/{name}.toml is missing"
        );
    }
}

/// PBFT with 16 replicas, 4 at site 0 (the primary's site) and 3 at each other site.
fn assert_paper_pbft(t: &Topology) {
    let expected: Vec<SiteId> = [0u16, 0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4]
        .into_iter()
        .map(SiteId)
        .collect();
    assert_eq!(t.pbft.replicas, expected);
    assert_eq!((t.pbft.n(), t.pbft.f, t.pbft.primary), (16, 5, 0));
}

/// All clients at site 0.
fn assert_clients_at_leader_site(t: &Topology) {
    let mut weights = vec![0.0; 5];
    weights[0] = 1.0;
    assert_eq!(t.clients, ClientPlacement::Weights(weights));
    assert_eq!(t.place_clients(30), vec![SiteId(0); 30]);
}

fn assert_cluster_lan(t: &Topology) {
    assert_eq!(t.lan.latency, Duration::from_micros(100));
    assert_eq!(t.lan.bandwidth_bps, 1_000_000_000);
    assert_eq!(t.lan.jitter, Duration::ZERO);
    assert_eq!(t.lan.loss, 0.0);
}

fn assert_sites(t: &Topology, names: &[&str], f: u32, servers: u32) {
    let got: Vec<(&str, u32, u32)> = t
        .sites
        .iter()
        .map(|s| (s.name.as_str(), s.f, s.servers))
        .collect();
    let want: Vec<(&str, u32, u32)> = names.iter().map(|n| (*n, f, servers)).collect();
    assert_eq!(got, want);
    for (i, s) in t.sites.iter().enumerate() {
        assert_eq!(s.id, SiteId(i as u16));
    }
}

#[test]
fn symmetric_topologies() {
    let sites = ["site0", "site1", "site2", "site3", "site4"];
    for (suffix, bps) in [
        ("10mbps", 10_000_000),
        ("5mbps", 5_000_000),
        ("2500kbps", 2_500_000),
    ] {
        for (kind, f, servers) in [("paper", 5, 16), ("local", 1, 4)] {
            let t = load(&format!("{kind}-symmetric-{suffix}"));
            assert_sites(&t, &sites, f, servers);
            assert_eq!(t.total_steward_servers(), 5 * servers);
            assert_cluster_lan(&t);
            assert_eq!(t.wan_pairs().count(), 10);
            for (_, _, link) in t.wan_pairs() {
                assert_eq!(link.latency, Duration::from_millis(50));
                assert_eq!(link.bandwidth_bps, bps);
                assert_eq!(link.jitter, Duration::ZERO);
                assert_eq!(link.loss, 0.0);
            }
            assert_paper_pbft(&t);
            assert_clients_at_leader_site(&t);
        }
    }
}

/// Checks the WAN matrix against `(a, b, one-way ms, bps)` rows covering every pair.
fn assert_matrix(t: &Topology, rows: &[(&str, &str, f64, u64)]) {
    assert_eq!(rows.len(), t.wan_pairs().count());
    for &(a, b, ms, bps) in rows {
        let a = t.site_by_name(a).unwrap().id;
        let b = t.site_by_name(b).unwrap().id;
        let link = t.link(a, b);
        assert_eq!(
            link.latency,
            Duration::from_micros((ms * 1000.0).round() as u64),
            "{a}-{b}"
        );
        assert_eq!(link.bandwidth_bps, bps, "{a}-{b}");
        assert_eq!((link.jitter, link.loss), (Duration::ZERO, 0.0));
    }
}

#[test]
fn planetlab() {
    let t = load("paper-planetlab");
    assert_sites(&t, &["us", "brazil", "sweden", "korea", "australia"], 5, 16);
    assert_cluster_lan(&t);
    assert_paper_pbft(&t);
    assert_clients_at_leader_site(&t);
    assert_matrix(
        &t,
        &[
            ("us", "brazil", 120.0, 800_000),
            ("us", "sweden", 86.0, 1_200_000),
            ("us", "korea", 59.0, 1_100_000),
            ("us", "australia", 95.0, 1_300_000),
            ("brazil", "sweden", 150.0, 600_000),
            ("brazil", "korea", 289.0, 405_000),
            ("brazil", "australia", 220.0, 500_000),
            ("sweden", "korea", 145.0, 700_000),
            ("sweden", "australia", 165.0, 750_000),
            ("korea", "australia", 150.0, 900_000),
        ],
    );
    // The published extremes hold exactly, at the named pairs only.
    let latencies: Vec<Duration> = t.wan_pairs().map(|(_, _, l)| l.latency).collect();
    let bandwidths: Vec<u64> = t.wan_pairs().map(|(_, _, l)| l.bandwidth_bps).collect();
    assert_eq!(latencies.iter().min(), Some(&Duration::from_millis(59)));
    assert_eq!(latencies.iter().max(), Some(&Duration::from_millis(289)));
    assert_eq!(bandwidths.iter().min(), Some(&405_000));
    assert_eq!(bandwidths.iter().max(), Some(&1_300_000));
    for (a, b, l) in t.wan_pairs() {
        let pair = (t.site(a).name.as_str(), t.site(b).name.as_str());
        assert_eq!(
            l.latency == Duration::from_millis(59),
            pair == ("us", "korea")
        );
        assert_eq!(
            l.latency == Duration::from_millis(289),
            pair == ("brazil", "korea")
        );
        assert_eq!(l.bandwidth_bps == 405_000, pair == ("brazil", "korea"));
        assert_eq!(l.bandwidth_bps == 1_300_000, pair == ("us", "australia"));
    }
}

#[test]
fn cairn() {
    let t = load("paper-cairn");
    assert_sites(
        &t,
        &["los-angeles", "san-jose", "virginia", "boston", "delaware"],
        5,
        16,
    );
    assert_cluster_lan(&t);
    assert_paper_pbft(&t);
    assert_clients_at_leader_site(&t);
    assert_matrix(
        &t,
        &[
            ("los-angeles", "san-jose", 1.4, 1_470_000),
            ("los-angeles", "virginia", 38.8, 1_860_000),
            ("los-angeles", "boston", 43.7, 1_860_000),
            ("los-angeles", "delaware", 42.4, 1_420_000),
            ("san-jose", "virginia", 40.2, 1_470_000),
            ("san-jose", "boston", 45.1, 1_470_000),
            ("san-jose", "delaware", 43.8, 1_420_000),
            ("virginia", "boston", 4.9, 9_810_000),
            ("virginia", "delaware", 3.6, 1_420_000),
            ("boston", "delaware", 8.5, 1_420_000),
        ],
    );
}
