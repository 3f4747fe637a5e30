//! End to end: `loadgen local` starts a real 3-site Steward cluster (12 replica processes on
//! 127.0.0.x, WAN emulated in userspace) and then a 4-replica PBFT cluster, runs 2 closed-loop
//! clients against each for a few seconds, and stops every process it started.

use std::path::{Path, PathBuf};

mod common;

use common::{
    assert_ok, loadgen_with, manifest, refused, stderr, topology, write_topology, Summary,
};

/// Three sites of 4 (f = 1), 20 ms one-way at 10 Mbit/s.
fn three_sites() -> String {
    topology(
        "three-sites-f1",
        20,
        &["a", "b", "c"],
        "{ a = 2, b = 1, c = 1 }",
    )
}

/// A finished `loadgen local` run.
struct LocalRun {
    /// Holds the topology and the results (deleted with the run).
    _tmp: tempfile::TempDir,
    /// The results directory.
    out: PathBuf,
    /// loadgen's stderr.
    stderr: String,
    /// The run's summary CSV.
    summary: Summary,
}

/// `loadgen local` of [`three_sites`] with `args` (split at white space) into a fresh directory;
/// asserts success.
fn local(args: &str) -> LocalRun {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let topo = write_topology(tmp.path(), "three.toml", &three_sites());
    let result = loadgen_with(
        &format!("local {args}"),
        &[("--topology", &topo), ("--out", &out)],
    )
    .output()
    .unwrap();
    assert_ok(&result);
    LocalRun {
        _tmp: tmp,
        stderr: stderr(&result),
        summary: Summary::read(&out),
        out,
    }
}

#[test]
fn local_run_completes_updates_for_both_protocols_and_stops_every_replica() {
    let run = local("--protocol both --clients 2 --duration 3s --warmup 2s --wan emulate");
    let (out, stderr, summary) = (&run.out, &run.stderr, &run.summary);
    let text = &summary.text;
    assert_eq!(summary.len(), 2, "{text}");
    for (row, protocol) in ["steward", "pbft"].into_iter().enumerate() {
        let col = |name: &str| summary.col(row, name);
        assert_eq!(col("protocol"), protocol);
        assert_eq!(col("mode"), "local");
        assert_eq!(col("safety"), "ok");
        let completed: u64 = col("completed").parse().unwrap();
        assert!(completed > 0, "{text}\n{stderr}");
        let cpu: f64 = col("cpu_ms_per_update").parse().unwrap();
        assert!(cpu > 0.0, "{text}");
        let host: f64 = col("host_cpu_util").parse().unwrap();
        assert!((0.0..=1.0).contains(&host), "{text}");
        assert_eq!(col("cpu_bound"), (host >= 0.85).to_string(), "{text}");
        // Every update crosses the 20 ms WAN at least once each way.
        let p50: f64 = col("lat_p50_ms").parse().unwrap();
        assert!(p50 >= 40.0, "{protocol}: p50 {p50} ms\n{text}");
        assert!(out
            .join(format!(
                "hdr/{protocol}-three-sites-f1-c2-w100-b1-local.hlog"
            ))
            .is_file());
    }

    // Every replica process is gone (and reaped).
    let manifest = manifest(out);
    assert_eq!(manifest["replica_threads"], "one");
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

/// The replicas' earlier thread layout (core on its own thread, transport on two workers)
/// still runs, for A/B comparisons with the default single thread.
#[test]
fn replicas_with_the_split_thread_layout_complete_updates() {
    let run = local(
        "--protocol steward --clients 2 --duration 2s --warmup 1s --wan off --replica-threads split",
    );
    let completed: u64 = run.summary.col(0, "completed").parse().unwrap();
    assert!(completed > 0, "{}\n{}", run.summary.text, run.stderr);
    assert_eq!(manifest(&run.out)["replica_threads"], "split");
}

#[test]
fn bad_options_are_refused_with_a_one_line_error() {
    let tmp = tempfile::tempdir().unwrap();
    let r = loadgen_with("local --clients 0", &[("--out", &tmp.path().join("o"))])
        .output()
        .unwrap();
    let err = refused(&r);
    assert!(err.contains("--clients"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");

    let missing = tmp.path().join("missing.toml");
    let paths = [
        ("--topology", missing.as_path()),
        ("--out", &tmp.path().join("o2")),
    ];
    let r = loadgen_with("local", &paths).output().unwrap();
    let err = refused(&r);
    assert!(err.contains("missing.toml"), "{err}");
}

/// Killing the leader site's representative process stalls ordering until the site elects a
/// new representative (a local view change); then updates issued after the kill complete.
#[test]
fn killing_the_leader_representative_triggers_a_local_view_change() {
    let run = local("--protocol steward --clients 2 --duration 10s --warmup 2s --kill s0.0@1s");
    let (stderr, summary) = (&run.stderr, &run.summary);
    let text = &summary.text;
    let col = |name: &str| summary.col(0, name);
    assert_eq!(col("safety"), "ok");
    assert_eq!(col("scenario"), "kill-s0.0@1s");
    let lvc: u64 = col("local_view_changes").parse().unwrap();
    assert!(lvc >= 1, "no local view change\n{text}\n{stderr}");
    let recovery: f64 = col("recovery_ms")
        .parse()
        .unwrap_or_else(|_| panic!("no update issued after the kill completed\n{text}\n{stderr}"));
    assert!(recovery > 0.0, "{text}");
}
