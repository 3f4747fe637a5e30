//! Process handling of `loadgen local` and of replicas: a SIGINT outside a measurement window
//! ends the run with an error and stops every replica; a replica whose stdout is closed
//! stops cleanly instead of panicking on its final stats line.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const TOPOLOGY: &str = r#"
name = "two-sites"
[lan]
latency_ms = 0.1
bandwidth = "1Gbps"
[wan.default]
latency_ms = 5
bandwidth = "10Mbps"
[[site]]
name = "a"
f = 1
servers = 4
[[site]]
name = "b"
f = 1
servers = 4
[clients]
weights = { a = 1 }
[pbft]
servers_per_site = { a = 2, b = 2 }
"#;

fn loadgen() -> Command {
    Command::new(env!("CARGO_BIN_EXE_loadgen"))
}

/// Kills (by pid) and reaps the child when dropped, also when an assertion fails.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

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

fn sigint(pid: u32) {
    // SAFETY: kill with the pid of our own unreaped child.
    unsafe {
        libc::kill(pid as libc::pid_t, libc::SIGINT);
    }
}

/// SIGINT after the first of three configurations finished, outside any measurement window:
/// before the fix tokio's handler (installed by the first window) swallowed it and the run
/// completed with exit 0.
#[test]
fn sigint_outside_a_measurement_window_ends_the_run_and_stops_the_replicas() {
    let tmp = tempfile::tempdir().unwrap();
    let topo = tmp.path().join("two.toml");
    std::fs::write(&topo, TOPOLOGY).unwrap();
    let out = tmp.path().join("out");
    let child = loadgen()
        .args(["local", "--protocol", "pbft", "--clients", "1,1,1"])
        .args(["--duration", "1s", "--warmup", "1s", "--wan", "off"])
        .arg("--topology")
        .arg(&topo)
        .arg("--out")
        .arg(&out)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut guard = Guard(child);
    let pid = guard.0.id();
    let stderr = guard.0.stderr.take().unwrap();
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
    sigint(pid);
    let interrupted_at = Instant::now();
    let status = loop {
        if let Some(status) = guard.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            interrupted_at.elapsed() < Duration::from_secs(30),
            "loadgen still running 30 s after SIGINT:\n{}",
            log.join("\n")
        );
        std::thread::sleep(Duration::from_millis(50));
    };
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
    let topo = tmp.path().join("two.toml");
    std::fs::write(&topo, TOPOLOGY).unwrap();
    let dep = tmp.path().join("dep");
    let st = loadgen()
        .args(["keygen", "--clients", "1", "--topology"])
        .arg(&topo)
        .arg("--out")
        .arg(&dep)
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    write_addresses(&dep);
    let log_path = tmp.path().join("r0.log");
    let child = loadgen()
        .args([
            "replica",
            "--protocol",
            "pbft",
            "--wan",
            "off",
            "--id",
            "r0",
        ])
        .arg("--deployment")
        .arg(&dep)
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .unwrap();
    let mut guard = Guard(child);
    let mut stdout = BufReader::new(guard.0.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert!(line.starts_with("ready pbft-r0"), "{line}");
    drop(stdout); // the launcher is gone
                  // SAFETY: kill with the pid of our own unreaped child.
    unsafe {
        libc::kill(guard.0.id() as libc::pid_t, libc::SIGTERM);
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = guard.0.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "replica did not stop");
        std::thread::sleep(Duration::from_millis(20));
    };
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(status.success(), "{status}\n{log}");
    assert!(!log.contains("panicked"), "{log}");
    assert!(log.contains("cannot print the stats line"), "{log}");
    assert!(log.contains("net_connect_failures"), "{log}");
}

/// Four PBFT replicas on distinct 127.0.0.1 ports (chosen by binding port 0).
fn write_addresses(dep: &Path) {
    let mut map = serde_json::Map::new();
    let probes: Vec<std::net::UdpSocket> = (0..4)
        .map(|_| std::net::UdpSocket::bind("127.0.0.1:0").unwrap())
        .collect();
    for (r, probe) in probes.iter().enumerate() {
        map.insert(
            format!("pbft-r{r}"),
            probe.local_addr().unwrap().to_string().into(),
        );
    }
    drop(probes);
    std::fs::write(
        dep.join("addresses.json"),
        serde_json::Value::Object(map).to_string(),
    )
    .unwrap();
}
