//! Process handling of `loadgen local` and of replicas: a SIGINT outside a measurement window
//! ends the run with an error and stops every replica; a replica whose stdout is closed
//! stops cleanly instead of panicking on its final stats line.

use std::io::{BufRead, BufReader};
use std::process::{Child, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

mod common;

use common::{
    await_ready, loadgen_with, local_deployment, spawn_pbft_replica, two_sites, write_topology,
    Children,
};

/// Processes whose command line mentions `needle` (our temporary directory).
fn processes_mentioning(needle: &str) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
            if String::from_utf8_lossy(&cmdline).contains(needle) {
                found.push(pid);
            }
        }
    }
    found
}

fn signal(child: &Child, signal: libc::c_int) {
    // SAFETY: kill with the pid of our own unreaped child.
    unsafe {
        libc::kill(child.id() as libc::pid_t, signal);
    }
}

/// Waits for `child` to exit; fails with `what()` if it still runs after `limit`.
fn wait_for_exit(child: &mut Child, limit: Duration, what: impl Fn() -> String) -> ExitStatus {
    let since = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(since.elapsed() < limit, "{}", what());
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// SIGINT after the first of three configurations finished, outside any measurement window:
/// before the fix tokio's handler (installed by the first window) swallowed it and the run
/// completed with exit 0.
#[test]
fn sigint_outside_a_measurement_window_ends_the_run_and_stops_the_replicas() {
    let tmp = tempfile::tempdir().unwrap();
    let topo = write_topology(tmp.path(), "two.toml", &two_sites());
    let out = tmp.path().join("out");
    let args = "local --protocol pbft --clients 1,1,1 --duration 1s --warmup 1s --wan off";
    let child = loadgen_with(args, &[("--topology", &topo), ("--out", &out)])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut guard = Children(vec![child]);
    let stderr = guard.0[0].stderr.take().unwrap();
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut log = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    // The first configuration's result line: its window is over, the next not begun.
    loop {
        let line = lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|_| panic!("no result line:\n{}", log.join("\n")));
        let done = line.starts_with("local: [1/3]") && line.contains("ops/s");
        log.push(line);
        if done {
            break;
        }
    }
    signal(&guard.0[0], libc::SIGINT);
    let interrupted_at = Instant::now();
    let status = wait_for_exit(&mut guard.0[0], Duration::from_secs(30), || {
        format!(
            "loadgen still running 30 s after SIGINT:\n{}",
            log.join("\n")
        )
    });
    log.extend(lines.try_iter());
    let log = log.join("\n");
    eprintln!("loadgen exited {:?} after SIGINT", interrupted_at.elapsed());
    assert!(!status.success(), "exit 0 after SIGINT:\n{log}");
    assert!(log.contains("interrupted"), "{log}");
    assert!(!log.contains("local: [3/3]"), "the run went on:\n{log}");
    let left = processes_mentioning(tmp.path().to_str().unwrap());
    assert!(left.is_empty(), "processes left: {left:?}\n{log}");
}

/// A replica whose launcher closed its stdout logs the stats line instead of panicking.
#[test]
fn a_replica_with_a_closed_stdout_stops_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    let dep = local_deployment(tmp.path(), 1);
    let log_path = tmp.path().join("r0.log");
    let child = spawn_pbft_replica(&dep, "r0", std::fs::File::create(&log_path).unwrap().into());
    let mut guard = Children(vec![child]);
    await_ready(&mut guard.0[0], "r0");
    // The launcher is gone.
    drop(guard.0[0].stdout.take());
    signal(&guard.0[0], libc::SIGTERM);
    let status = wait_for_exit(&mut guard.0[0], Duration::from_secs(20), || {
        "replica did not stop".to_owned()
    });
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(status.success(), "{status}\n{log}");
    assert!(!log.contains("panicked"), "{log}");
    assert!(log.contains("cannot print the stats line"), "{log}");
    assert!(log.contains("net_connect_failures"), "{log}");
}
