//! A point whose host CPU is saturated is labelled `cpu_bound` (it measures the host, not the
//! emulated WAN). Its own test binary: the busy loops must not slow other tests' clusters.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod common;

use common::{assert_ok, loadgen_with, topology, write_topology, Summary};

/// Busy loops on every core until dropped (and at most two minutes, whatever happens).
struct Hog {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Hog {
    fn start() -> Hog {
        let stop = Arc::new(AtomicBool::new(false));
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let threads = (0..cores)
            .map(|_| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let deadline = Instant::now() + Duration::from_secs(120);
                    let mut x = 0u64;
                    while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                        for i in 0..100_000u64 {
                            x = x.wrapping_add(i.wrapping_mul(i));
                        }
                        std::hint::black_box(x);
                    }
                })
            })
            .collect();
        Hog { stop, threads }
    }
}

impl Drop for Hog {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

#[test]
fn a_run_on_a_saturated_host_is_labelled_cpu_bound() {
    let tmp = tempfile::tempdir().unwrap();
    let topo = write_topology(
        tmp.path(),
        "two.toml",
        &topology("two-sites-f1", 5, &["a", "b"], "{ a = 2, b = 2 }"),
    );
    let out = tmp.path().join("out");
    let hog = Hog::start();
    let result = loadgen_with(
        "local --protocol pbft --clients 2 --duration 3s --warmup 1s --wan off",
        &[("--topology", &topo), ("--out", &out)],
    )
    .output()
    .unwrap();
    drop(hog);
    assert_ok(&result);
    let summary = Summary::read(&out);
    let col = |name: &str| summary.col(0, name).to_string();
    let host: f64 = col("host_cpu_util").parse().unwrap();
    assert!(
        host >= 0.85,
        "host CPU {host} under busy loops on every core"
    );
    assert_eq!(col("cpu_bound"), "true", "{}", summary.text);
    let replica: f64 = col("replica_cpu_util").parse().unwrap();
    assert!(replica > 0.0 && replica <= 1.0, "{replica}");
    let stdout = String::from_utf8_lossy(&result.stdout);
    assert!(stdout.contains("CPU-BOUND"), "{stdout}");
    assert!(stdout.contains("measure the host's CPU"), "{stdout}");
}
