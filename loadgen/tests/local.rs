//! End to end: `loadgen local` starts a real 3-site Steward cluster (12 replica processes on
//! 127.0.0.x, WAN emulated in userspace) and then a 4-replica PBFT cluster, runs 2 closed-loop
//! clients against each for a few seconds, and stops every process it started.

use std::path::Path;
use std::process::Command;

const TOPOLOGY: &str = r#"
name = "three-sites-f1"
description = "3 sites of 4 servers (f = 1), 20 ms one-way at 10 Mbit/s"

[lan]
latency_ms = 0.1
bandwidth = "1Gbps"

[wan.default]
latency_ms = 20
bandwidth = "10Mbps"

[[site]]
name = "a"
f = 1
servers = 4

[[site]]
name = "b"
f = 1
servers = 4

[[site]]
name = "c"
f = 1
servers = 4

[clients]
weights = { a = 1 }

[pbft]
servers_per_site = { a = 2, b = 1, c = 1 }
"#;

fn loadgen() -> Command {
    Command::new(env!("CARGO_BIN_EXE_loadgen"))
}

#[test]
fn local_run_completes_updates_for_both_protocols_and_stops_every_replica() {
    let tmp = tempfile::tempdir().unwrap();
    let topo = tmp.path().join("three.toml");
    std::fs::write(&topo, TOPOLOGY).unwrap();
    let out = tmp.path().join("out");
    let result = loadgen()
        .args(["local", "--protocol", "both", "--clients", "2"])
        .args(["--duration", "3s", "--warmup", "2s", "--wan", "emulate"])
        .arg("--topology")
        .arg(&topo)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&result.stdout);
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(result.status.success(), "{stdout}\n{stderr}");

    let summary = std::fs::read_to_string(out.join("summary.csv")).unwrap();
    let mut lines = summary.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 2, "{summary}");
    for (row, protocol) in rows.iter().zip(["steward", "pbft"]) {
        let col = |name: &str| row[header.iter().position(|h| *h == name).unwrap()];
        assert_eq!(col("protocol"), protocol);
        assert_eq!(col("mode"), "local");
        assert_eq!(col("safety"), "ok");
        let completed: u64 = col("completed").parse().unwrap();
        assert!(completed > 0, "{summary}\n{stderr}");
        let cpu: f64 = col("cpu_ms_per_update").parse().unwrap();
        assert!(cpu > 0.0, "{summary}");
        // Every update crosses the 20 ms WAN at least once each way.
        let p50: f64 = col("lat_p50_ms").parse().unwrap();
        assert!(p50 >= 40.0, "{protocol}: p50 {p50} ms\n{summary}");
        assert!(out
            .join(format!(
                "hdr/{protocol}-three-sites-f1-c2-w100-b1-local.hlog"
            ))
            .is_file());
    }

    // Every replica process is gone (and reaped).
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap();
    let pids = manifest["replica_pids"].as_array().unwrap();
    assert_eq!(pids.len(), 12 + 4);
    for pid in pids {
        let pid = pid.as_u64().unwrap();
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "replica process {pid} still exists"
        );
    }
}

#[test]
fn bad_options_are_refused_with_a_one_line_error() {
    let tmp = tempfile::tempdir().unwrap();
    let r = loadgen()
        .args(["local", "--clients", "0"])
        .arg("--out")
        .arg(tmp.path().join("o"))
        .output()
        .unwrap();
    assert!(!r.status.success());
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(err.contains("--clients"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");

    let r = loadgen()
        .args(["local", "--topology"])
        .arg(tmp.path().join("missing.toml"))
        .arg("--out")
        .arg(tmp.path().join("o2"))
        .output()
        .unwrap();
    assert!(!r.status.success());
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(err.contains("missing.toml"), "{err}");
}

/// Killing the leader site's representative process stalls ordering until the site elects a
/// new representative (a local view change); then updates issued after the kill complete.
#[test]
fn killing_the_leader_representative_triggers_a_local_view_change() {
    let tmp = tempfile::tempdir().unwrap();
    let topo = tmp.path().join("three.toml");
    std::fs::write(&topo, TOPOLOGY).unwrap();
    let out = tmp.path().join("out");
    let result = loadgen()
        .args(["local", "--protocol", "steward", "--clients", "2"])
        .args(["--duration", "10s", "--warmup", "2s", "--kill", "s0.0@1s"])
        .arg("--topology")
        .arg(&topo)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&result.stdout);
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(result.status.success(), "{stdout}\n{stderr}");
    let summary = std::fs::read_to_string(out.join("summary.csv")).unwrap();
    let mut lines = summary.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let row: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |name: &str| row[header.iter().position(|h| *h == name).unwrap()];
    assert_eq!(col("safety"), "ok");
    assert_eq!(col("scenario"), "kill-s0.0@1s");
    let lvc: u64 = col("local_view_changes").parse().unwrap();
    assert!(lvc >= 1, "no local view change\n{summary}\n{stderr}");
    let recovery: f64 = col("recovery_ms").parse().unwrap_or_else(|_| {
        panic!("no update issued after the kill completed\n{summary}\n{stderr}")
    });
    assert!(recovery > 0.0, "{summary}");
}
