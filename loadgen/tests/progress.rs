//! Progress output when stderr is not a terminal.

mod common;

use common::{piped, repo, stderr, stdout};

/// Asserts `text` (what loadgen wrote on `what`) holds no terminal escape sequence.
fn assert_no_escape_codes(text: &str, what: &str) {
    assert!(!text.contains("\x1b["), "escape codes on {what}:\n{text:?}");
}

#[test]
fn campaign_progress_on_a_pipe_is_plain_lines() {
    let o = piped(&["campaign", "--protocol", "pbft", "--seeds", "3"]);
    let err = stderr(&o);
    assert_no_escape_codes(&err, "stderr");
    // The last seed's line: seeds done out of the total and the failures so far.
    assert!(
        err.lines().any(|l| l
            .starts_with("campaign: 3/3 seeds, 0 safety violations, 0 liveness failures, ")
            && l.contains(" seeds/hour, ETA ")),
        "{err}"
    );
    // stdout keeps its one summary line.
    assert_eq!(
        stdout(&o),
        "seeds=3 safety_violations=0 liveness_failures=0\n"
    );
}

#[test]
fn simulate_sweep_on_a_pipe_has_no_escape_codes() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("sim").display().to_string();
    let topo = repo("topologies/local-symmetric-10mbps.toml");
    let o = piped(&[
        "simulate",
        "--protocol",
        "both",
        "--topology",
        &topo,
        "--clients",
        "1,2",
        "--duration",
        "2s",
        "--warmup",
        "1s",
        "--out",
        &out,
    ]);
    let err = stderr(&o);
    assert_no_escape_codes(&err, "stderr");
    assert_no_escape_codes(&stdout(&o), "stdout");
    // Today's line per configuration, four of them.
    let lines = err.lines().filter(|l| l.starts_with("simulate: ")).count();
    assert_eq!(lines, 4, "{err}");
}
