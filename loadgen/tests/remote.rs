//! `loadgen run` against replicas started by hand (as on real hosts): keygen, an address map,
//! four `loadgen replica --protocol pbft` processes, then closed-loop clients from `loadgen run`.

use std::process::Stdio;

mod common;

use common::{
    await_ready, keygen, loadgen_cmd, refused, spawn_pbft_replica, two_sites,
    write_local_addresses, write_topology, Children, Summary,
};

#[test]
fn run_drives_clients_against_a_running_deployment() {
    let tmp = tempfile::tempdir().unwrap();
    let topo = write_topology(tmp.path(), "two.toml", &two_sites());
    let dep = tmp.path().join("dep");
    keygen(&topo, &dep, 2);
    write_local_addresses(&dep);

    let ids: Vec<String> = (0..4).map(|r| format!("r{r}")).collect();
    let mut replicas = Children(
        ids.iter()
            .map(|id| spawn_pbft_replica(&dep, id, Stdio::null()))
            .collect(),
    );
    for (c, id) in replicas.0.iter_mut().zip(&ids) {
        await_ready(c, id);
    }

    let out = tmp.path().join("out");
    let r = loadgen_cmd()
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
    let summary = Summary::read(&out);
    assert_eq!(summary.col(0, "mode"), "remote");
    assert_eq!(summary.col(0, "safety"), "ok");
    let completed: u64 = summary.col(0, "completed").parse().unwrap();
    assert!(completed > 0, "{}", summary.text);

    // Asking for more clients than the deployment has keys for is a one-line error.
    let r = loadgen_cmd()
        .args(["run", "--protocol", "pbft", "--clients", "3"])
        .arg("--deployment")
        .arg(&dep)
        .arg("--out")
        .arg(tmp.path().join("o2"))
        .output()
        .unwrap();
    let err = refused(&r);
    assert!(err.contains("keys for 2 clients"), "{err}");
}
