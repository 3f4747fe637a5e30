//! Simulated Steward runs with fixed seeds. Each failure message names the seed; rerun a single
//! case with the same seed to replay it exactly.

use std::path::PathBuf;
use std::time::Duration;

use steward_config::{ServerId, SiteId, Topology};

use super::*;

fn topology(name: &str) -> Topology {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../topologies")
        .join(name);
    Topology::load(&path).expect("shipped topology")
}

fn run(cfg: WorldConfig, secs: u64) -> (World, RunReport) {
    let seed = cfg.sim.seed;
    let mut w = World::build(cfg).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
    w.run_until(Duration::from_secs(secs))
        .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
    let r = w.report();
    (w, r)
}

fn assert_ok(r: &RunReport, seed: u64, what: &str) {
    assert_eq!(r.safety, "ok", "{what}: seed {seed}: safety violation");
    assert!(r.updates > 0, "{what}: seed {seed}: no progress");
}

#[test]
fn one_client_symmetric_f1() {
    let seed = 1;
    let mut cfg = WorldConfig::new(topology("local-symmetric-10mbps.toml"), 1, seed);
    cfg.sim.warmup = Duration::from_secs(1);
    let (w, r) = run(cfg, 10);
    assert_ok(&r, seed, "1 client");
    // Latency: one WAN round trip (100 ms) plus LAN hops and crypto.
    assert!(r.lat_p50_ms > r.lat_bound_ms, "seed {seed}: {r:?}");
    assert!(
        r.lat_p50_ms < r.lat_bound_ms + 30.0,
        "seed {seed}: p50 {}",
        r.lat_p50_ms
    );
    assert!((r.lat_bound_ms - 100.3).abs() < 0.01, "{}", r.lat_bound_ms);
    // Every correct server executed the same prefix.
    let arus: Vec<u64> = w
        .cfg
        .topology
        .steward_servers()
        .map(|s| w.replica(s).unwrap().global_aru())
        .collect();
    let max = *arus.iter().max().unwrap();
    assert!(arus.iter().all(|a| max - a <= 2), "seed {seed}: {arus:?}");
}
