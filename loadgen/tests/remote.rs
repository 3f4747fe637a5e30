//! `loadgen run` against replicas started by hand (as on real hosts): keygen, an address map,
//! four `loadgen replica --protocol pbft` processes, then closed-loop clients from `loadgen run`.

use std::process::Stdio;

mod common;

use common::{
    await_ready, loadgen_with, local_deployment, refused, spawn_pbft_replica, Children, Summary,
};

#[test]
fn run_drives_clients_against_a_running_deployment() {
    let tmp = tempfile::tempdir().unwrap();
    let dep = local_deployment(tmp.path(), 2);

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
    let args =
        "run --protocol pbft --clients 2 --wan off --duration 2s --warmup 1s --bind-ip 127.0.0.1";
    let r = loadgen_with(args, &[("--deployment", &dep), ("--out", &out)])
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
    let paths = [
        ("--deployment", dep.as_path()),
        ("--out", &tmp.path().join("o2")),
    ];
    let r = loadgen_with("run --protocol pbft --clients 3", &paths)
        .output()
        .unwrap();
    let err = refused(&r);
    assert!(err.contains("keys for 2 clients"), "{err}");
}
