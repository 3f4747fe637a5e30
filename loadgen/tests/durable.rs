//! Crash-restart of real replica processes (#12 item 9): `loadgen local --restart` SIGKILLs a
//! non-representative Steward server and a PBFT backup mid-run and starts each again on the
//! same durable log and address. The run must complete with no bad replies, clients must keep
//! completing operations issued after the restart, the restarted replica must have replayed
//! its log, and no vote it made durable (the `STEWARD_DURABLE_AUDIT` lines of both
//! incarnations) may be contradicted by another.

use std::collections::BTreeMap;
use std::path::Path;

mod common;

use common::{loadgen_cmd, two_sites, write_topology, Summary};

/// The `stopped: {...}` stats line of a replica's last incarnation in its log.
fn last_stats(log: &str) -> serde_json::Value {
    let line = log
        .lines()
        .rev()
        .find_map(|l| l.split_once("stopped: ").map(|(_, rest)| rest))
        .unwrap_or_else(|| panic!("no stats line in\n{log}"));
    // Human log lines end with the event's fields after the JSON object.
    let end = line.rfind('}').unwrap() + 1;
    serde_json::from_str(&line[..end]).unwrap()
}

/// Every audited vote of `node` (`<dir>/<node>.votes`): key -> the values seen for it.
fn audited_votes(dir: &Path, node: &str) -> BTreeMap<String, Vec<String>> {
    let mut votes: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let Ok(text) = std::fs::read_to_string(dir.join(format!("{node}.votes"))) else {
        return votes;
    };
    for line in text.lines() {
        let (key, value) = line
            .split_once(' ')
            .unwrap_or_else(|| panic!("bad audit line {line:?}"));
        assert!(key.starts_with("76"), "not a vote key: {line}");
        let seen = votes.entry(key.to_string()).or_default();
        if !seen.iter().any(|v| v == value) {
            seen.push(value.to_string());
        }
    }
    votes
}

#[test]
fn restarted_replicas_recover_their_log_and_never_contradict_a_durable_vote() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let audit = tmp.path().join("audit");
    let topo = write_topology(tmp.path(), "two.toml", &two_sites());
    // Two sites of 4 (the leader site is site 0); s1.1 is a non-representative server of the
    // other site, r1 a PBFT backup (the primary is r0).
    let result = loadgen_cmd()
        .args([
            "local",
            "--protocol",
            "both",
            "--clients",
            "2",
            "--warmup",
            "1s",
            "--duration",
            "5s",
            "--wan",
            "off",
            "--restart",
            "s1.1@1s+1s,r1@1s+1s",
        ])
        .arg("--topology")
        .arg(&topo)
        .arg("--out")
        .arg(&out)
        .env("STEWARD_DURABLE_AUDIT", &audit)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(result.status.success(), "{stderr}");
    assert!(stderr.contains("restarted replica s1.1"), "{stderr}");
    assert!(stderr.contains("restarted replica r1"), "{stderr}");

    let summary = Summary::read(&out);
    let text = &summary.text;
    assert_eq!(summary.len(), 2, "{text}");
    for (row, (protocol, replica, node)) in [
        ("steward", "s1.1", "steward-s1.1"),
        ("pbft", "r1", "pbft-r1"),
    ]
    .into_iter()
    .enumerate()
    {
        let col = |name: &str| summary.col(row, name);
        assert_eq!(col("protocol"), protocol);
        assert_eq!(col("safety"), "ok", "bad replies\n{text}");
        assert_eq!(col("scenario"), format!("restart-{replica}@1s+1s"));
        // Operations issued after the restart completed.
        let recovery: f64 = col("recovery_ms").parse().unwrap_or_else(|_| {
            panic!("{protocol}: no operation issued after the restart completed\n{text}\n{stderr}")
        });
        assert!(recovery >= 0.0);

        // The log of both incarnations: each opened the durable log; the second replayed it.
        let log_path = out
            .join("logs")
            .join(format!("{protocol}-c2"))
            .join(format!("{replica}.log"));
        let log = std::fs::read_to_string(&log_path).unwrap();
        assert_eq!(log.matches("listening on").count(), 2, "{log}");
        let wal = out
            .join("data")
            .join(format!("{protocol}-c2"))
            .join(format!("{node}.wal"));
        assert!(wal.is_file(), "{}", wal.display());
        let recovered = log
            .lines()
            .find_map(|l| {
                let rest = l.split_once("recovered ")?.1;
                rest.split_once(' ')?.0.parse::<u64>().ok()
            })
            .unwrap_or(0);
        assert!(recovered > 0, "{protocol}: nothing recovered\n{log}");
        let stats = last_stats(&log);
        assert_eq!(stats["persist_failures"], 0, "{stats}");
        assert_eq!(stats["persist_dropped"], 0, "{stats}");
        assert!(stats["persist_syncs"].as_u64() > Some(0), "{stats}");

        // Never contradicts: across both incarnations, one value per durable vote key.
        let votes = audited_votes(&audit, node);
        let conflicts: Vec<_> = votes.iter().filter(|(_, v)| v.len() > 1).collect();
        assert!(
            conflicts.is_empty(),
            "{node} made contradicting votes durable: {conflicts:?}"
        );
        assert!(!votes.is_empty(), "{node}: no vote audited");

        // events.csv: the kill, then the restart; timeseries.csv: the replica is sampled
        // before the kill and, from its new endpoint, after the restart, never in between.
        let events = std::fs::read_to_string(out.join("events.csv")).unwrap();
        let rows: Vec<Vec<&str>> = events
            .lines()
            .map(|l| l.split(',').collect::<Vec<_>>())
            .filter(|r| r[0] == protocol)
            .collect();
        assert_eq!(rows.len(), 2, "{events}");
        assert_eq!(rows[0][5..], ["kill", node], "{events}");
        assert_eq!(rows[1][5..], ["restart", node], "{events}");
        let killed: f64 = rows[0][4].parse().unwrap();
        let restarted: f64 = rows[1][4].parse().unwrap();
        assert!(killed < restarted, "{events}");
        let series = std::fs::read_to_string(out.join("timeseries.csv")).unwrap();
        let times: Vec<f64> = series
            .lines()
            .filter(|l| {
                l.starts_with(&format!("{protocol},"))
                    && l.contains(&format!(",{node},bft_executed_updates_total,"))
            })
            .map(|l| l.split(',').nth(4).unwrap().parse().unwrap())
            .collect();
        assert!(times.iter().any(|t| *t < killed), "{node}: {times:?}");
        assert!(times.iter().any(|t| *t > restarted), "{node}: {times:?}");
        assert!(
            !times.iter().any(|t| *t > killed && *t < restarted),
            "{node} sampled while down: {times:?}"
        );
    }
}

#[test]
fn restart_options_are_checked_before_anything_starts() {
    let tmp = tempfile::tempdir().unwrap();
    let topo = write_topology(tmp.path(), "two.toml", &two_sites());
    let run = |args: &[&str]| {
        let r = loadgen_cmd()
            .arg("local")
            .args(args)
            .arg("--topology")
            .arg(&topo)
            .arg("--out")
            .arg(tmp.path().join("o"))
            .output()
            .unwrap();
        common::refused(&r)
    };
    let err = run(&["--duration", "5s", "--restart", "s1.1@4s+2s"]);
    assert!(err.contains("--restart s1.1"), "{err}");
    let err = run(&["--kill", "s1.1@1s", "--restart", "s1.2@1s+1s"]);
    assert!(err.contains("at most one fault"), "{err}");
    let err = run(&["--restart", "s9.1@1s+1s"]);
    assert!(err.contains("no replica s9.1"), "{err}");
    assert!(!tmp.path().join("o").join("deployment").exists());
}
