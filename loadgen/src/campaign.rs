//! `loadgen campaign`: many randomized fault runs in the simulator with the safety checker on.

use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::Args;
use steward::simulation::{campaign_seed, CampaignOutcome};
use steward_config::{Protocol, Topology};

use crate::protocols::ProtocolSelection;

/// Arguments of `loadgen campaign`.
#[derive(Args, Debug)]
pub struct CampaignArgs {
    /// Protocol to test.
    #[arg(long, value_enum, default_value = "steward")]
    protocol: ProtocolSelection,
    /// Number of seeds.
    #[arg(long, default_value_t = 100)]
    seeds: u64,
    /// First seed.
    #[arg(long, default_value_t = 1)]
    start_seed: u64,
    /// Topology (default: the embedded local-symmetric-10mbps, 5 sites of 4 servers).
    #[arg(long)]
    topology: Option<PathBuf>,
    /// Seeds run in parallel (default: the number of cores).
    #[arg(long)]
    jobs: Option<usize>,
}

const DEFAULT_TOPOLOGY: &str = include_str!("../../topologies/local-symmetric-10mbps.toml");

/// Run `loadgen campaign`. Prints one line per failing seed and a final summary line; fails if
/// any seed violated safety or liveness.
pub fn run(a: CampaignArgs) -> Result<()> {
    match a.protocol.single() {
        Some(Protocol::Steward) => {}
        Some(Protocol::Pbft) => return run_pbft(&a),
        None => bail!("campaign runs one protocol at a time: --protocol steward or pbft"),
    }
    let topology = match &a.topology {
        Some(p) => Topology::load(p)?,
        None => Topology::from_toml_str(DEFAULT_TOPOLOGY, "local-symmetric-10mbps.toml")?,
    };
    let jobs = a
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    let started = std::time::Instant::now();
    let out = parallel_campaign(&topology, a.start_seed, a.seeds, jobs)?;
    let hours = started.elapsed().as_secs_f64() / 3600.0;
    if hours > 0.0 {
        eprintln!(
            "campaign: {} seeds in {:.1} s on {jobs} workers ({:.0} seeds/hour)",
            out.seeds,
            hours * 3600.0,
            out.seeds as f64 / hours
        );
    }
    for (seed, v) in &out.safety_violations {
        eprintln!("safety violation at seed {seed}: {v}");
    }
    if !out.liveness_failures.is_empty() {
        eprintln!("liveness failures at seeds {:?}", out.liveness_failures);
    }
    println!(
        "seeds={} safety_violations={} liveness_failures={}",
        out.seeds,
        out.safety_violations.len(),
        out.liveness_failures.len()
    );
    if !out.safety_violations.is_empty() || !out.liveness_failures.is_empty() {
        std::process::exit(1);
    }
    Ok(())
}

/// Run the Steward campaign's seeds on `jobs` threads (each seed is an independent,
/// deterministic world, so the outcome does not depend on the number of threads).
fn parallel_campaign(
    topology: &Topology,
    start: u64,
    count: u64,
    jobs: usize,
) -> Result<CampaignOutcome> {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Mutex;
    let next = AtomicU64::new(0);
    let done = AtomicU64::new(0);
    let results: Mutex<Vec<(u64, String, bool)>> = Mutex::new(Vec::new());
    let error: Mutex<Option<String>> = Mutex::new(None);
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count || error.lock().expect("lock").is_some() {
                    break;
                }
                let seed = start + i;
                match campaign_seed(topology, seed) {
                    Ok((world, live)) => {
                        let verdict = world.checker().verdict();
                        if verdict != "ok" || !live {
                            let kind = if verdict != "ok" { "safety" } else { "liveness" };
                            eprintln!("campaign: seed {seed}: {kind} failure (replay: loadgen campaign --seeds 1 --start-seed {seed})");
                        }
                        results.lock().expect("lock").push((seed, verdict, live));
                        let d = done.fetch_add(1, Ordering::Relaxed) + 1;
                        if d % 50 == 0 {
                            eprintln!("campaign: {d}/{count} seeds");
                        }
                    }
                    Err(e) => *error.lock().expect("lock") = Some(e),
                }
            });
        }
    });
    if let Some(e) = error.into_inner().expect("lock") {
        bail!(e);
    }
    let mut results = results.into_inner().expect("lock");
    results.sort_by_key(|r| r.0);
    let mut out = CampaignOutcome::default();
    for (seed, verdict, live) in results {
        out.seeds += 1;
        if verdict != "ok" {
            out.safety_violations.push((seed, verdict));
        }
        if !live {
            out.liveness_failures.push(seed);
        }
    }
    Ok(out)
}

/// The PBFT campaign (baseline-bft's randomized fault scenarios), same output contract.
fn run_pbft(a: &CampaignArgs) -> Result<()> {
    let mut safety = Vec::new();
    let mut liveness = Vec::new();
    let mut done = 0u64;
    for seed in a.start_seed..a.start_seed + a.seeds {
        for run in pbft::simulation::campaign([seed]) {
            if run.safety != "ok" {
                eprintln!(
                    "campaign: seed {seed} ({}): safety failure: {} (replay: loadgen campaign --protocol pbft --seeds 1 --start-seed {seed})",
                    run.scenario, run.safety
                );
                safety.push(seed);
            } else if !run.ok() {
                eprintln!(
                    "campaign: seed {seed} ({}): liveness failure (replay: loadgen campaign --protocol pbft --seeds 1 --start-seed {seed})",
                    run.scenario
                );
                liveness.push(seed);
            }
        }
        done += 1;
        if done % 100 == 0 {
            eprintln!("campaign: {done}/{} seeds", a.seeds);
        }
    }
    println!(
        "seeds={} safety_violations={} liveness_failures={}",
        a.seeds,
        safety.len(),
        liveness.len()
    );
    if !safety.is_empty() || !liveness.is_empty() {
        std::process::exit(1);
    }
    Ok(())
}
