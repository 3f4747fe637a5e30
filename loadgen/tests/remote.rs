//! `loadgen run` against replicas started by hand (as on real hosts): keygen, an address map,
//! four `loadgen replica --protocol pbft` processes, then closed-loop clients from `loadgen run`.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

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

/// Kills the replicas it holds when dropped (also when an assertion fails).
struct Replicas(Vec<Child>);

impl Drop for Replicas {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[test]
fn run_drives_clients_against_a_running_deployment() {
    let tmp = tempfile::tempdir().unwrap();
    let topo = tmp.path().join("two.toml");
    std::fs::write(&topo, TOPOLOGY).unwrap();
    let dep = tmp.path().join("dep");
    let st = loadgen()
        .args(["keygen", "--clients", "2", "--topology"])
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

    // Free ports on 127.0.0.1 for the four replicas.
    let mut map = serde_json::Map::new();
    for r in 0..4 {
        let probe = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        map.insert(
            format!("pbft-r{r}"),
            probe.local_addr().unwrap().to_string().into(),
        );
    }
    std::fs::write(
        dep.join("addresses.json"),
        serde_json::Value::Object(map).to_string(),
    )
    .unwrap();

    let mut replicas = Replicas(Vec::new());
    for r in 0..4 {
        let child = loadgen()
            .args(["replica", "--protocol", "pbft", "--wan", "off", "--id"])
            .arg(format!("r{r}"))
            .arg("--deployment")
            .arg(&dep)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        replicas.0.push(child);
    }
    for c in &mut replicas.0 {
        let mut line = String::new();
        BufReader::new(c.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert!(line.starts_with("ready pbft-r"), "{line}");
    }

    let out = tmp.path().join("out");
    let r = loadgen()
        .args([
            "run",
            "--protocol",
            "pbft",
            "--clients",
            "2",
            "--wan",
            "off",
        ])
        .args([
            "--duration",
            "2s",
            "--warmup",
            "1s",
            "--bind-ip",
            "127.0.0.1",
        ])
        .arg("--deployment")
        .arg(&dep)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert!(r.status.success(), "{stderr}");
    let summary = std::fs::read_to_string(out.join("summary.csv")).unwrap();
    let mut lines = summary.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let row: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |name: &str| row[header.iter().position(|h| *h == name).unwrap()];
    assert_eq!(col("mode"), "remote");
    assert_eq!(col("safety"), "ok");
    assert!(col("completed").parse::<u64>().unwrap() > 0, "{summary}");

    // Asking for more clients than the deployment has keys for is a one-line error.
    let r = loadgen()
        .args(["run", "--protocol", "pbft", "--clients", "3"])
        .arg("--deployment")
        .arg(&dep)
        .arg("--out")
        .arg(tmp.path().join("o2"))
        .output()
        .unwrap();
    assert!(!r.status.success());
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(err.contains("keys for 2 clients"), "{err}");
}
