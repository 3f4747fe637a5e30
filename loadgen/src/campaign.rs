//! `loadgen campaign`: many randomized fault runs in the simulator with the safety checker on.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Result};
use clap::Args;
use steward::simulation::{campaign_seed_with_tail, CampaignOutcome};
use steward_config::{Protocol, Topology};

use crate::progress::CampaignProgress;
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
    /// Topology for every seed (default: each seed picks one of the shipped topologies from
    /// its number: 19 seeds in 20 one of the five f = 1 topologies, 1 in 20 one of the five
    /// f = 5 ones; a seed replays on the same topology).
    #[arg(long)]
    topology: Option<PathBuf>,
    /// Seeds run in parallel (default: the number of cores).
    #[arg(long)]
    jobs: Option<usize>,
    /// Steward: after a seed is served, run it on this long and judge it again from there
    /// (every client served and every correct server caught up within the liveness bound),
    /// to catch stalls that set in long after the faults. Each seed costs more. 0s: off.
    #[arg(long, default_value = "0s", value_parser = crate::results::parse_duration)]
    tail: Duration,
}

/// The shipped topologies the campaign rotates through: (file name, contents).
const LOCAL_TOPOLOGIES: [(&str, &str); 5] = [
    (
        "local-symmetric-10mbps.toml",
        include_str!("../../topologies/local-symmetric-10mbps.toml"),
    ),
    (
        "local-symmetric-5mbps.toml",
        include_str!("../../topologies/local-symmetric-5mbps.toml"),
    ),
    (
        "local-symmetric-2500kbps.toml",
        include_str!("../../topologies/local-symmetric-2500kbps.toml"),
    ),
    (
        "local-planetlab.toml",
        include_str!("../../topologies/local-planetlab.toml"),
    ),
    (
        "local-cairn.toml",
        include_str!("../../topologies/local-cairn.toml"),
    ),
];
const PAPER_TOPOLOGIES: [(&str, &str); 5] = [
    (
        "paper-symmetric-10mbps.toml",
        include_str!("../../topologies/paper-symmetric-10mbps.toml"),
    ),
    (
        "paper-symmetric-5mbps.toml",
        include_str!("../../topologies/paper-symmetric-5mbps.toml"),
    ),
    (
        "paper-symmetric-2500kbps.toml",
        include_str!("../../topologies/paper-symmetric-2500kbps.toml"),
    ),
    (
        "paper-planetlab.toml",
        include_str!("../../topologies/paper-planetlab.toml"),
    ),
    (
        "paper-cairn.toml",
        include_str!("../../topologies/paper-cairn.toml"),
    ),
];

/// Which topologies the seeds run on.
enum Topologies {
    /// One topology for every seed (`--topology`).
    One(Box<Topology>),
    /// The shipped ones: f = 1 sites (4 servers) and f = 5 sites (16 servers).
    Shipped {
        local: Vec<Topology>,
        paper: Vec<Topology>,
    },
}

impl Topologies {
    fn load(path: Option<&PathBuf>) -> Result<Topologies> {
        if let Some(p) = path {
            return Ok(Topologies::One(Box::new(Topology::load(p)?)));
        }
        let parse = |list: &[(&str, &str)]| -> Result<Vec<Topology>> {
            list.iter()
                .map(|(name, text)| Ok(Topology::from_toml_str(text, name)?))
                .collect()
        };
        Ok(Topologies::Shipped {
            local: parse(&LOCAL_TOPOLOGIES)?,
            paper: parse(&PAPER_TOPOLOGIES)?,
        })
    }

    /// The topology of `seed`: 1 seed in 20 runs at f = 5 (such a seed costs as much as
    /// five f = 1 ones), the others at f = 1, rotating through each group's topologies.
    fn for_seed(&self, seed: u64) -> &Topology {
        match self {
            Topologies::One(t) => t,
            Topologies::Shipped { local, paper } => {
                let turn = (seed / 20) as usize;
                if seed % 20 == 0 {
                    &paper[turn % paper.len()]
                } else {
                    &local[turn % local.len()]
                }
            }
        }
    }
}

/// Run `loadgen campaign`. Prints one line per failing seed and a final summary line; fails if
/// any seed violated safety or liveness.
pub fn run(a: CampaignArgs) -> Result<()> {
    let protocol = match a.protocol.single() {
        Some(p) => p,
        None => bail!("campaign runs one protocol at a time: --protocol steward or pbft"),
    };
    let jobs = a
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    let started = std::time::Instant::now();
    let out = match protocol {
        Protocol::Steward => {
            let topologies = Topologies::load(a.topology.as_ref())?;
            steward_campaign(&topologies, a.start_seed, a.seeds, jobs, a.tail)?
        }
        Protocol::Pbft => {
            if a.topology.is_some() {
                bail!("--topology: the PBFT campaign draws its own cluster sizes (omit it)");
            }
            if !a.tail.is_zero() {
                bail!("--tail: the PBFT campaign runs its seeds to a fixed end (omit it)");
            }
            pbft_campaign(a.start_seed, a.seeds, jobs)?
        }
    };
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

/// One seed's judgement.
struct SeedVerdict {
    /// "ok" or the first safety violation.
    safety: String,
    /// Every client served (and, Steward, every correct server caught up) after the faults.
    live: bool,
}

/// Runs `judge(seed)` for `count` seeds from `start` on `jobs` threads (each seed is an
/// independent, deterministic world, so the outcome does not depend on the number of
/// threads) and tallies the verdicts in seed order. The first error stops the campaign.
fn parallel_seeds(
    start: u64,
    count: u64,
    jobs: usize,
    judge: impl Fn(u64) -> Result<SeedVerdict, String> + Sync,
) -> Result<CampaignOutcome> {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Mutex;
    let next = AtomicU64::new(0);
    let results: Mutex<Vec<(u64, SeedVerdict)>> = Mutex::new(Vec::new());
    let error: Mutex<Option<String>> = Mutex::new(None);
    let progress = CampaignProgress::new(count, 50);
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count || error.lock().expect("lock").is_some() {
                    break;
                }
                let seed = start + i;
                match judge(seed) {
                    Ok(v) => {
                        progress.seed_done(v.safety != "ok", !v.live);
                        results.lock().expect("lock").push((seed, v));
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
    for (seed, v) in results {
        out.seeds += 1;
        if v.safety != "ok" {
            out.safety_violations.push((seed, v.safety));
        }
        if !v.live {
            out.liveness_failures.push(seed);
        }
    }
    Ok(out)
}

/// The Steward campaign: `campaign_seed` on each seed's topology.
fn steward_campaign(
    topologies: &Topologies,
    start: u64,
    count: u64,
    jobs: usize,
    tail: Duration,
) -> Result<CampaignOutcome> {
    let replay_tail = if tail.is_zero() {
        String::new()
    } else {
        format!(" --tail {}ms", tail.as_millis())
    };
    parallel_seeds(start, count, jobs, |seed| {
        let topology = topologies.for_seed(seed);
        let (world, liveness) = campaign_seed_with_tail(topology, seed, tail)?;
        let safety = world.checker().verdict();
        let live = liveness.ok();
        if safety != "ok" {
            eprintln!(
                "campaign: seed {seed} on {}: safety failure: {safety} (replay: loadgen campaign --seeds 1 --start-seed {seed}{replay_tail})",
                topology.name
            );
        } else if !live {
            eprintln!(
                "campaign: seed {seed} on {}: liveness failure: {} (replay: loadgen campaign --seeds 1 --start-seed {seed}{replay_tail})",
                topology.name,
                liveness.describe()
            );
        }
        Ok(SeedVerdict { safety, live })
    })
}

/// The PBFT campaign (baseline-bft's randomized fault scenarios), same output contract.
fn pbft_campaign(start: u64, count: u64, jobs: usize) -> Result<CampaignOutcome> {
    parallel_seeds(start, count, jobs, |seed| {
        let mut verdict = SeedVerdict {
            safety: "ok".into(),
            live: true,
        };
        for run in pbft::simulation::campaign([seed]) {
            if run.safety != "ok" {
                eprintln!(
                    "campaign: seed {seed} ({}): safety failure: {} (replay: loadgen campaign --protocol pbft --seeds 1 --start-seed {seed})",
                    run.scenario, run.safety
                );
                verdict.safety = run.safety.clone();
            } else if !run.ok() {
                eprintln!(
                    "campaign: seed {seed} ({}): liveness failure (replay: loadgen campaign --protocol pbft --seeds 1 --start-seed {seed})",
                    run.scenario
                );
                verdict.live = false;
            }
        }
        Ok(verdict)
    })
}
