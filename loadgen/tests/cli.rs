//! End-to-end tests of the `loadgen` binary's foundation commands.

use std::path::{Path, PathBuf};
use std::process::Output;

mod common;

use common::{assert_ok, loadgen, manifest, repo, stderr, Summary};

/// `loadgen simulate --topology <topo> --out <out>` with `args` (split at white space).
fn simulate(topo: &str, out: &Path, args: &str) -> Output {
    let out = out.display().to_string();
    let mut all = vec!["simulate", "--topology", topo, "--out", &out];
    all.extend(args.split_whitespace());
    loadgen(&all)
}

/// A fresh directory and `loadgen simulate` of [`symmetric`] with `args` into its `name`;
/// asserts success and returns the directory, the results path and the output.
fn simulated(name: &str, args: &str) -> (tempfile::TempDir, PathBuf, Output) {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join(name);
    let o = simulate(&symmetric(), &out, args);
    assert_ok(&o);
    (tmp, out, o)
}

/// The shipped five-site topology the simulations here run on.
fn symmetric() -> String {
    repo("topologies/local-symmetric-10mbps.toml")
}

/// `loadgen campaign` of `protocol` with `args`; asserts its final line reports `seeds` seeds
/// without a safety or liveness failure.
fn assert_clean_campaign(protocol: &str, seeds: &str, args: &[&str]) {
    let mut all = vec!["campaign", "--protocol", protocol, "--seeds", seeds];
    all.extend(args);
    let o = loadgen(&all);
    assert_ok(&o);
    let last = format!("seeds={seeds} safety_violations=0 liveness_failures=0");
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).lines().last(),
        Some(last.as_str())
    );
}

#[test]
fn keygen_writes_a_deployment_and_refuses_to_overwrite() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("dep");
    let out_s = out.display().to_string();
    let topo = symmetric();
    let args = [
        "keygen",
        "--topology",
        &topo,
        "--out",
        &out_s,
        "--seed",
        "1",
        "--clients",
        "4",
    ];
    let o = loadgen(&args);
    assert_ok(&o);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("20 Steward servers, 16 PBFT replicas, 4 clients"),
        "{stdout}"
    );
    assert!(out.join("steward/s4.3/threshold.share.json").exists());
    assert!(out.join("public/steward/site-4.threshold.json").exists());
    assert!(out.join("pbft/r15/signing.key.json").exists());
    let manifest = manifest(&out);
    assert_eq!(manifest["scheme"], "ed25519");
    assert_eq!(manifest["steward_sites"][0]["threshold_k"], 3);

    let again = loadgen(&args);
    assert!(!again.status.success());
    let err = stderr(&again);
    assert!(err.contains("--force"), "{err}");

    let mut forced = args.to_vec();
    forced.push("--force");
    assert!(loadgen(&forced).status.success());
}

#[test]
fn keygen_reports_bad_topology_with_file_and_field() {
    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("bad.toml");
    std::fs::write(
        &bad,
        "name = \"x\"\n[lan]\nlatency_ms = -1\nbandwidth = \"1Gbps\"\n[[site]]\nname = \"a\"\nf = 0\n",
    )
    .unwrap();
    let out = tmp.path().join("dep").display().to_string();
    let o = loadgen(&[
        "keygen",
        "--topology",
        &bad.display().to_string(),
        "--out",
        &out,
    ]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains("bad.toml") && err.contains("latency_ms"),
        "{err}"
    );
    assert!(
        !tmp.path().join("dep").exists(),
        "nothing is written on error"
    );
}

#[test]
fn crypto_bench_prints_the_promised_csv() {
    let o = loadgen(&["crypto-bench", "--time-ms", "1", "--min-samples", "1"]);
    assert_ok(&o);
    let stdout = String::from_utf8_lossy(&o.stdout);
    let mut lines = stdout.lines();
    assert_eq!(lines.next(), Some("op,bits,l,k,median_us"));
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    let keys: Vec<String> = rows
        .iter()
        .map(|r| format!("{},{},{},{}", r[0], r[1], r[2], r[3]))
        .collect();
    let mut expected = Vec::new();
    for (bits, l, k) in [(1024, 16, 11), (1024, 4, 3), (2048, 4, 3)] {
        for op in [
            "share_sign",
            "share_sign_unproven",
            "prove_share",
            "share_verify",
            "combine",
            "combine_unproven",
            "verify",
            "jacobi",
        ] {
            expected.push(format!("{op},{bits},{l},{k}"));
        }
    }
    for op in ["ed25519_sign", "ed25519_verify"] {
        expected.push(format!("{op},0,0,0"));
    }
    for op in ["rsa_sign", "rsa_verify"] {
        expected.push(format!("{op},1024,0,0"));
    }
    assert_eq!(keys, expected);
    for r in &rows {
        let us: f64 = r[4].parse().unwrap();
        assert!(us > 0.0, "{r:?}");
    }
}

#[test]
fn topology_command_validates_every_shipped_file() {
    let files: Vec<String> = std::fs::read_dir(repo("topologies"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .map(|p| p.display().to_string())
        .collect();
    assert_eq!(files.len(), 10);
    let mut args = vec!["topology"];
    args.extend(files.iter().map(String::as_str));
    let o = loadgen(&args);
    assert_ok(&o);
    assert_eq!(String::from_utf8_lossy(&o.stdout).lines().count(), 10);
}

#[test]
fn simulate_writes_summary_manifest_and_histograms() {
    let (tmp, out, o) = simulated(
        "res",
        "--protocol steward --clients 1,4 --duration 3s --warmup 1s --seed 5",
    );
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("steward"), "{stdout}");
    let csv = std::fs::read_to_string(out.join("summary.csv")).unwrap();
    let mut lines = csv.lines();
    let header = lines.next().unwrap();
    assert!(
        header.starts_with(
            "protocol,mode,topology,clients,write_pct,batch,duration_s,completed,throughput_ops_s,\
         lat_mean_ms,lat_p50_ms,lat_p99_ms,lat_max_ms,lat_bound_ms,wan_msgs_per_update,\
         wan_bytes_per_update,safety"
        ),
        "{header}"
    );
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 2);
    for r in &rows {
        let f: Vec<&str> = r.split(',').collect();
        assert_eq!(f[0], "steward");
        assert_eq!(f[1], "sim");
        assert_eq!(f[16], "ok");
        assert!(f[7].parse::<u64>().unwrap() > 0, "{r}");
    }
    let manifest = manifest(&out);
    assert_eq!(manifest["mode"], "sim");
    assert_eq!(manifest["seed"], 5);
    let hlog = out.join("hdr/steward-local-symmetric-10mbps-c4-w100-b1.hlog");
    assert!(std::fs::read_to_string(hlog).unwrap().contains("Tag=all"));
    // Same seed, same numbers.
    let out2 = tmp.path().join("res2");
    let o = simulate(
        &symmetric(),
        &out2,
        "--clients 1,4 --duration 3s --warmup 1s --seed 5",
    );
    assert!(o.status.success());
    // Everything but the wall-clock column must match.
    let strip = |s: String| -> Vec<String> {
        let wall = s
            .lines()
            .next()
            .unwrap()
            .split(',')
            .position(|h| h == "wall_s")
            .unwrap();
        s.lines()
            .map(|l| {
                let mut f: Vec<&str> = l.split(',').collect();
                f.remove(wall);
                f.join(",")
            })
            .collect()
    };
    assert_eq!(
        strip(csv),
        strip(std::fs::read_to_string(out2.join("summary.csv")).unwrap())
    );
}

#[test]
fn simulate_rejects_bad_arguments() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path();
    let topo = symmetric();
    let o = simulate(&topo, out, "--write-pct 101");
    assert!(!o.status.success());
    assert!(stderr(&o).contains("--write-pct"));
    let o = simulate("/nonexistent.toml", out, "");
    assert!(!o.status.success());
    assert!(stderr(&o).contains("nonexistent.toml"));
    let o = simulate(&topo, out, "--duration 5h");
    assert!(!o.status.success());
}

#[test]
fn scenarios_are_listed_and_reported() {
    let o = loadgen(&["simulate", "--list-scenarios"]);
    assert!(o.status.success());
    let list = String::from_utf8_lossy(&o.stdout);
    for name in [
        "leader-rep-crash",
        "leader-site-partition",
        "site-partition",
        "minority-sites",
        "byzantine-mix",
    ] {
        assert!(list.contains(name), "{list}");
    }
    let (_tmp, out, _) = simulated(
        "sc",
        "--clients 5 --duration 12s --warmup 1s --scenario leader-rep-crash",
    );
    let summary = Summary::read(&out);
    let col = |name: &str| summary.col(0, name);
    assert_eq!(col("scenario"), "leader-rep-crash");
    assert_eq!(col("safety"), "ok");
    assert_eq!(col("local_view_changes"), "1");
    assert_eq!(col("global_view_changes"), "0");
    let recovery: f64 = col("recovery_ms").parse().unwrap();
    assert!(recovery > 0.0 && recovery < 10_000.0, "{recovery}");
    let o = simulate(&symmetric(), &out, "--scenario nope");
    assert!(!o.status.success());
    assert!(stderr(&o).contains("unknown --scenario"));
}

/// The attack catalog: each attack row carries the fault-free reference of the same
/// configuration and the ratio; fault rows and the reference row do not.
#[test]
fn attack_rows_carry_the_fault_free_reference_and_the_ratio() {
    let (_tmp, out, o) = simulated(
        "attacks",
        "--clients 4 --duration 6s --warmup 2s --scenario none,flooding-client,silent-servers,leader-rep-crash",
    );
    let summary = Summary::read(&out);
    let rows: Vec<usize> = (0..4).collect();
    let col = |row: usize, name: &str| summary.col(row, name).to_string();
    let fault_free: f64 = col(0, "throughput_ops_s").parse().unwrap();
    assert!(fault_free > 0.0);
    for &row in &rows {
        let scenario = col(row, "scenario");
        if scenario == "none" || scenario == "leader-rep-crash" {
            assert_eq!(col(row, "attack_ratio"), "", "{scenario}");
            assert_eq!(col(row, "reference_ops_s"), "", "{scenario}");
            continue;
        }
        let reference: f64 = col(row, "reference_ops_s").parse().unwrap();
        assert_eq!(
            reference, fault_free,
            "{scenario}: the reference is the none row"
        );
        let ratio: f64 = col(row, "attack_ratio").parse().unwrap();
        let under: f64 = col(row, "throughput_ops_s").parse().unwrap();
        assert!((ratio - under / reference).abs() < 1e-9, "{scenario}");
    }
    let table = String::from_utf8_lossy(&o.stdout);
    assert!(
        table.contains("under attack") && table.contains("silent-servers"),
        "{table}"
    );
    // `attacks` expands to the catalog, and PBFT takes no Steward scenario.
    let listed =
        String::from_utf8_lossy(&loadgen(&["simulate", "--list-scenarios"]).stdout).to_string();
    assert!(
        listed.lines().filter(|l| l.contains(" attack ")).count() >= 10,
        "{listed}"
    );
    let o = simulate(&symmetric(), &out, "--protocol pbft --scenario attacks");
    assert!(!o.status.success());
    assert!(stderr(&o).contains("Steward scenarios"), "{}", stderr(&o));
}

#[test]
fn campaign_prints_the_final_line() {
    assert_clean_campaign("steward", "2", &["--start-seed", "7"]);
}

#[test]
fn simulate_both_protocols_and_pbft_campaign() {
    let (_tmp, out, _) = simulated(
        "both",
        "--protocol both --clients 2 --duration 3s --warmup 1s",
    );
    let csv = std::fs::read_to_string(out.join("summary.csv")).unwrap();
    let protocols: Vec<&str> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap())
        .collect();
    assert_eq!(protocols, ["steward", "pbft"]);
    let wan = |row: &str| -> f64 { row.split(',').nth(14).unwrap().parse().unwrap() };
    let rows: Vec<&str> = csv.lines().skip(1).collect();
    // Flat PBFT sends far more WAN messages per update than Steward (paper: over 20x).
    assert!(wan(rows[1]) > 10.0 * wan(rows[0]), "{csv}");
    assert_clean_campaign("pbft", "3", &[]);
}
