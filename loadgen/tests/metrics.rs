//! Live metrics (#17): a replica started with `--metrics 127.0.0.1:0` announces its endpoint,
//! answers `GET /metrics` with OpenMetrics text whose `bft_executed_updates_total` grows as
//! clients' updates are ordered; `loadgen local` samples every replica into `timeseries.csv`
//! and records its faults in `events.csv`.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::Stdio;
use std::time::{Duration, Instant};

mod common;

use common::{
    assert_ok, await_ready, loadgen_cmd, loadgen_with, local_deployment, two_sites, write_topology,
    Children,
};

/// `bft_executed_updates_total` of `pbft-r0` in exposition text, checking the labels.
fn executed(text: &str) -> f64 {
    let line = text
        .lines()
        .find(|l| l.starts_with("bft_executed_updates_total{"))
        .unwrap_or_else(|| panic!("no bft_executed_updates_total in\n{text}"));
    assert!(line.contains("node=\"pbft-r0\""), "{line}");
    assert!(line.contains("protocol=\"pbft\""), "{line}");
    line.rsplit_once(' ').unwrap().1.parse().unwrap()
}

fn agent() -> ureq::Agent {
    ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(5)))
            .http_status_as_error(false)
            .build(),
    )
}

/// GET `url`: (status, content type, body).
fn get(url: &str) -> (u16, String, String) {
    let mut r = agent().get(url).call().unwrap();
    let ctype = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let status = r.status().as_u16();
    (status, ctype, r.body_mut().read_to_string().unwrap())
}

#[test]
fn a_replica_serves_metrics_whose_executed_updates_grow_as_updates_are_ordered() {
    let tmp = tempfile::tempdir().unwrap();
    let dep = local_deployment(tmp.path(), 2);
    // r0 (the primary) with an endpoint on its own address's port number (TCP; as the Ansible
    // playbooks start replicas with steward_metrics), the others without.
    let addresses: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dep.join("addresses.json")).unwrap())
            .unwrap();
    let r0_addr: SocketAddr = addresses["pbft-r0"].as_str().unwrap().parse().unwrap();
    let mut r0 = loadgen_cmd()
        .args([
            "replica",
            "--protocol",
            "pbft",
            "--wan",
            "off",
            "--id",
            "r0",
        ])
        .args(["--metrics", &r0_addr.to_string()])
        .arg("--deployment")
        .arg(&dep)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(r0.stdout.take().unwrap()).lines();
    let mut replicas = Children(vec![r0]);
    let ready = lines.next().unwrap().unwrap();
    assert!(ready.starts_with("ready pbft-r0 "), "{ready}");
    let announced = lines.next().unwrap().unwrap();
    let addr: SocketAddr = announced
        .strip_prefix("metrics pbft-r0 ")
        .unwrap_or_else(|| panic!("not a metrics line: {announced}"))
        .parse()
        .unwrap();
    assert_eq!(addr, r0_addr);
    for id in ["r1", "r2", "r3"] {
        let mut c = common::spawn_pbft_replica(&dep, id, Stdio::null());
        await_ready(&mut c, id);
        replicas.0.push(c);
    }
    let url = format!("http://{addr}/metrics");
    let (status, ctype, before) = get(&url);
    assert_eq!(status, 200);
    assert!(ctype.starts_with("application/openmetrics-text"), "{ctype}");
    assert!(before.ends_with("# EOF\n"), "{before}");
    assert!(before.contains("# TYPE bft_view gauge"), "{before}");
    assert!(before.contains("process_cpu_seconds_total{"), "{before}");
    let executed_before = executed(&before);
    let (status, _, _) = get(&format!("http://{addr}/other"));
    assert_eq!(status, 404);

    let out = tmp.path().join("out");
    let args = "run --protocol pbft --clients 2 --wan off --duration 3s --warmup 1s \
                --bind-ip 127.0.0.1 --metrics-port-offset 0";
    let r = loadgen_with(args, &[("--deployment", &dep), ("--out", &out)])
        .output()
        .unwrap();
    assert_ok(&r);
    let completed: f64 = common::Summary::read(&out)
        .col(0, "completed")
        .parse()
        .unwrap();
    assert!(completed > 0.0);
    // The replica thread publishes every 250 ms: poll (bounded) until the snapshot shows the
    // run's updates.
    let deadline = Instant::now() + Duration::from_secs(10);
    let after = loop {
        let (_, _, text) = get(&url);
        if executed(&text) >= executed_before + completed {
            break text;
        }
        assert!(
            Instant::now() < deadline,
            "executed {} after {completed} completed updates:\n{text}",
            executed(&text)
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    // The clients' traffic is counted in their class, and the primary's crypto work too.
    let line = |prefix: &str| {
        after
            .lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix} in\n{after}"))
            .rsplit_once(' ')
            .unwrap()
            .1
            .parse::<f64>()
            .unwrap()
    };
    assert!(
        line("bft_messages_received_total{node=\"pbft-r0\",protocol=\"pbft\",class=\"client\"}")
            > 0.0
    );
    assert!(
        line("bft_messages_sent_total{node=\"pbft-r0\",protocol=\"pbft\",class=\"lan\"}") > 0.0
    );
    assert!(
        line("bft_crypto_operations_total{node=\"pbft-r0\",protocol=\"pbft\",kind=\"verify\"}")
            > 0.0
    );

    // `loadgen run --metrics-port-offset 0` sampled r0 (the others serve no metrics) once a
    // second: its executed updates grow over the run.
    let series = read_series(&out);
    let nodes: BTreeSet<&str> = series.iter().map(|p| p.node.as_str()).collect();
    assert_eq!(nodes, ["pbft-r0"].into());
    let values = executed_over_time(&series, "pbft-r0");
    assert!(values.len() >= 3, "{values:?}");
    assert!(values.last() > values.first(), "{values:?}");
}

/// `timeseries.csv` of a results directory, its header checked.
fn read_series(out: &std::path::Path) -> Vec<Point> {
    let series = std::fs::read_to_string(out.join("timeseries.csv")).unwrap();
    let mut reader = csv::Reader::from_reader(series.as_bytes());
    assert_eq!(
        reader.headers().unwrap().iter().collect::<Vec<_>>(),
        ["protocol", "clients", "batch", "scenario", "time_s", "node", "metric", "value"]
    );
    reader
        .records()
        .map(|rec| {
            let rec = rec.unwrap();
            let time = &rec[4];
            assert_eq!(
                time.split_once('.').map(|(_, d)| d.len()),
                Some(3),
                "{time}"
            );
            Point {
                protocol: rec[0].to_string(),
                clients: rec[1].to_string(),
                batch: rec[2].to_string(),
                scenario: rec[3].to_string(),
                time_s: time.parse().unwrap(),
                node: rec[5].to_string(),
                metric: rec[6].to_string(),
                value: rec[7].parse().unwrap(),
            }
        })
        .collect()
}

/// `node`'s `bft_executed_updates_total` in time order, checked never to go down.
fn executed_over_time(series: &[Point], node: &str) -> Vec<f64> {
    let by_time: BTreeMap<i64, f64> = series
        .iter()
        .filter(|p| p.node == node && p.metric == "bft_executed_updates_total")
        .map(|p| ((p.time_s * 1000.0) as i64, p.value))
        .collect();
    let values: Vec<f64> = by_time.values().copied().collect();
    assert!(values.windows(2).all(|w| w[0] <= w[1]), "{values:?}");
    values
}

/// One `timeseries.csv` row.
struct Point {
    protocol: String,
    clients: String,
    batch: String,
    scenario: String,
    time_s: f64,
    node: String,
    metric: String,
    value: f64,
}

#[test]
fn local_run_samples_every_replica_into_a_time_series_and_records_its_kill() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let topo = write_topology(tmp.path(), "two.toml", &two_sites());
    // r3 is a backup: PBFT goes on without it.
    let args = "local --protocol pbft --clients 2 --duration 4s --warmup 1s --wan off \
                --kill r3@1s";
    let r = loadgen_with(args, &[("--topology", &topo), ("--out", &out)])
        .output()
        .unwrap();
    assert_ok(&r);
    let points = read_series(&out);
    for p in &points {
        let run = [&p.protocol, &p.clients, &p.batch, &p.scenario];
        assert_eq!(run, ["pbft", "2", "1", "kill-r3@1s"]);
    }
    let nodes: BTreeSet<&str> = points.iter().map(|p| p.node.as_str()).collect();
    assert_eq!(nodes, ["pbft-r0", "pbft-r1", "pbft-r2", "pbft-r3"].into());
    assert!(points
        .iter()
        .any(|p| p.metric == "bft_messages_sent_total{class=\"lan\"}"));
    // The primary's executed updates over time: sampled about once a second, growing.
    let values = executed_over_time(&points, "pbft-r0");
    assert!(values.len() >= 4, "{values:?}");
    assert!(values.last() > values.first(), "{values:?}");
    // events.csv: the kill, about 1 s into the window; r3 has no sample after it.
    let events = std::fs::read_to_string(out.join("events.csv")).unwrap();
    let mut lines = events.lines();
    assert_eq!(
        lines.next(),
        Some("protocol,clients,batch,scenario,time_s,event,node")
    );
    let kill: Vec<&str> = lines.next().expect("a kill row").split(',').collect();
    assert_eq!(kill[..4], ["pbft", "2", "1", "kill-r3@1s"], "{events}");
    assert_eq!(kill[5..], ["kill", "pbft-r3"], "{events}");
    let at: f64 = kill[4].parse().unwrap();
    assert!((0.9..2.0).contains(&at), "{events}");
    assert!(lines.next().is_none(), "{events}");
    let last_r3 = points
        .iter()
        .filter(|p| p.node == "pbft-r3")
        .map(|p| p.time_s)
        .fold(f64::MIN, f64::max);
    assert!(
        last_r3 < at,
        "r3 sampled at {last_r3} s after its kill at {at} s"
    );
}
