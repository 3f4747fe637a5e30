//! `loadgen campaign`: many randomized fault runs in the simulator with the safety checker on.

use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::Args;
use steward::simulation::campaign;
use steward_config::Topology;

use crate::simulate::Protocol;

/// Arguments of `loadgen campaign`.
#[derive(Args, Debug)]
pub struct CampaignArgs {
    /// Protocol to test.
    #[arg(long, value_enum, default_value = "steward")]
    protocol: Protocol,
    /// Number of seeds.
    #[arg(long, default_value_t = 100)]
    seeds: u64,
    /// First seed.
    #[arg(long, default_value_t = 1)]
    start_seed: u64,
    /// Topology (default: the embedded local-symmetric-10mbps, 5 sites of 4 servers).
    #[arg(long)]
    topology: Option<PathBuf>,
}

const DEFAULT_TOPOLOGY: &str = include_str!("../../topologies/local-symmetric-10mbps.toml");

/// Run `loadgen campaign`. Prints one line per failing seed and a final summary line; fails if
/// any seed violated safety or liveness.
pub fn run(a: CampaignArgs) -> Result<()> {
    match a.protocol {
        Protocol::Steward => {}
        Protocol::Pbft => return run_pbft(&a),
        Protocol::Both => bail!("campaign runs one protocol at a time: --protocol steward or pbft"),
    }
    let topology = match &a.topology {
        Some(p) => Topology::load(p)?,
        None => Topology::from_toml_str(DEFAULT_TOPOLOGY, "local-symmetric-10mbps.toml")?,
    };
    let mut done = 0u64;
    let out = campaign(&topology, a.start_seed, a.seeds, &mut |seed, verdict| {
        done += 1;
        if verdict != "ok" {
            eprintln!("campaign: seed {seed}: {verdict} failure (replay: loadgen campaign --seeds 1 --start-seed {seed})");
        } else if done % 50 == 0 {
            eprintln!("campaign: {done}/{} seeds", a.seeds);
        }
    })
    .map_err(anyhow::Error::msg)?;
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
