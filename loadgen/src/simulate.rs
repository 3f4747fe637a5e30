//! `loadgen simulate`: run protocols in the deterministic simulator over a sweep of client
//! counts and write a results directory.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use bft_harness::CostTable;
use clap::{Args, ValueEnum};
use pbft::simulation::{PbftWorld, PbftWorldConfig};
use steward::simulation::{
    apply_scenario, CryptoMode, RunReport, ScenarioStats, World, WorldConfig, SCENARIOS,
};
use steward_config::{Protocol, Topology};
use steward_crypto::signature::Scheme;

use crate::progress::{Sweep, Window};
use crate::protocols::ProtocolSelection;
use crate::results::{self, parse_duration, Row};

/// Crypto cost table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Costs {
    /// This machine's crypto-bench figures (Ed25519, 1024-bit threshold).
    Measured,
    /// The paper's 2006 figures (RSA-1024: sign 1.3 ms, verify 0.07 ms; share 3.9 ms, combine 5.6 ms).
    Paper,
    /// Free crypto (protocol logic only).
    Zero,
}

/// Crypto implementation inside the simulation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum CryptoArg {
    /// Keyed-hash double with the real schemes' sizes and behaviour.
    Fast,
    /// The real schemes.
    Real,
}

/// Arguments of `loadgen simulate`.
#[derive(Args, Debug, Clone)]
pub struct SimulateArgs {
    /// Protocol(s) to run.
    #[arg(long, value_enum, default_value = "steward")]
    pub protocol: ProtocolSelection,
    /// Topology file.
    #[arg(long, required_unless_present = "list_scenarios")]
    pub topology: Option<PathBuf>,
    /// Client counts to sweep, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,10,30")]
    pub clients: Vec<u32>,
    /// Measured virtual time per configuration (after the warm-up).
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Virtual warm-up excluded from measurements.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub warmup: Duration,
    /// Seed of all randomness.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Crypto cost table.
    #[arg(long, value_enum, default_value = "measured")]
    pub costs: Costs,
    /// Crypto implementation.
    #[arg(long, value_enum, default_value = "fast")]
    pub crypto: CryptoArg,
    /// Updates per Proposal (1 = the paper).
    #[arg(long, default_value_t = 1)]
    pub batch: usize,
    /// Percentage of operations that are updates (the rest are read-only queries).
    #[arg(long, default_value_t = 100)]
    pub write_pct: u32,
    /// Built-in fault scenarios, comma-separated (see --list-scenarios); a fault strikes at a
    /// quarter of the measured run, an attack from the start. `attacks` names the whole
    /// attack catalog. Each attack row gets the throughput of the same run without the attack
    /// (`reference_ops_s`) and the ratio (`attack_ratio`).
    #[arg(long, default_value = "none", value_delimiter = ',')]
    pub scenario: Vec<String>,
    /// List the built-in scenarios and exit.
    #[arg(long)]
    pub list_scenarios: bool,
    /// Steward without the combine deadline (an ablation: leader-site servers then never
    /// vote against a representative for holding its combines; see the README's "Combine
    /// deadline").
    #[arg(long)]
    pub no_combine_deadline: bool,
    /// Steward without forwarding around a slow representative (an ablation: only the
    /// representatives then send their site's Proposals and Accepts abroad; see the README's
    /// "Forwarding").
    #[arg(long)]
    pub no_forwarding: bool,
    /// Drop-tail limit of each WAN queue in KiB (a router buffer); the default is deep.
    #[arg(long, default_value_t = 1024)]
    pub wan_queue_kib: u64,
    /// Results directory.
    #[arg(long, required_unless_present = "list_scenarios")]
    pub out: Option<PathBuf>,
}

/// Sets what Steward's `WorldConfig` and PBFT's `PbftWorldConfig` share (two types with the
/// same fields) from the arguments, the cost table, the signature scheme and the crypto mode.
macro_rules! configure {
    ($cfg:ident, $a:expr, $costs:expr, $scheme:expr, $crypto:expr) => {
        $cfg.costs = $costs.clone();
        $cfg.scheme = $scheme;
        $cfg.batch = $a.batch;
        $cfg.write_pct = $a.write_pct;
        $cfg.crypto = $crypto;
        $cfg.sim.warmup = $a.warmup;
        $cfg.sim.wan_queue_limit_bytes = $a.wan_queue_kib * 1024;
    };
}

/// Run `loadgen simulate`.
pub fn run(a: SimulateArgs) -> Result<()> {
    if a.list_scenarios {
        for s in SCENARIOS {
            let kind = if s.attack { "attack" } else { "fault" };
            println!("{:<22} {:<6} {}", s.name, kind, s.description);
        }
        return Ok(());
    }
    let (Some(topology_path), Some(out)) = (a.topology.clone(), a.out.clone()) else {
        bail!("--topology and --out are required");
    };
    let scenarios = expand_scenarios(&a.scenario)?;
    if a.write_pct > 100 {
        bail!("--write-pct must be 0..=100, got {}", a.write_pct);
    }
    if a.batch == 0 {
        bail!("--batch must be at least 1");
    }
    if a.clients.is_empty() || a.clients.contains(&0) {
        bail!("--clients needs positive counts, e.g. 1,10,30");
    }
    let protocols = a.protocol.protocols();
    if protocols != [Protocol::Steward] && scenarios != ["none"] {
        bail!(
            "--scenario {} names Steward scenarios; PBFT runs take --scenario none",
            scenarios.join(",")
        );
    }
    let topology = Topology::load(&topology_path)?;
    std::fs::create_dir_all(&out).with_context(|| format!("{}", out.display()))?;
    let (costs, scheme, costs_name) = match a.costs {
        Costs::Measured => (CostTable::measured(), Scheme::Ed25519, "measured"),
        Costs::Paper => (CostTable::paper(), Scheme::RSA1024, "paper"),
        Costs::Zero => (CostTable::zero(), Scheme::Ed25519, "zero"),
    };
    let mut rows = Vec::new();
    let sweep = Sweep::new(
        "simulate",
        (protocols.len() * a.clients.len() * scenarios.len()) as u64,
        "configurations",
    );
    for protocol in protocols {
        for &clients in &a.clients {
            // Fault-free throughput of this configuration, for the attack rows' ratios.
            let mut reference: Option<f64> = None;
            for scenario in &scenarios {
                sweep.begin(&format!("{protocol} clients={clients} {scenario}"));
                let attack = is_attack(scenario);
                if attack && reference.is_none() {
                    eprintln!("simulate: fault-free reference for the attacks...");
                    let (r, _) = run_one(
                        &a, &topology, protocol, clients, "none", &costs, scheme, None,
                    )?;
                    reference = Some(r.throughput);
                }
                let window = sweep.virtual_window(a.warmup + a.duration);
                let start = Instant::now();
                let (r, sc) = run_one(
                    &a,
                    &topology,
                    protocol,
                    clients,
                    scenario,
                    &costs,
                    scheme,
                    Some(&window),
                )?;
                if scenario == "none" {
                    reference = Some(r.throughput);
                }
                let mut name = format!(
                    "{protocol}-{}-c{clients}-w{}-b{}",
                    topology.name, a.write_pct, a.batch
                );
                if scenario != "none" {
                    name = format!("{name}-{scenario}");
                }
                results::write_hdr_log(&out, &name, &r.histogram, a.warmup, a.duration)?;
                let reference_ops_s = reference.filter(|_| attack);
                rows.push(Row {
                    protocol,
                    mode: "sim".into(),
                    topology: topology.name.clone(),
                    clients,
                    write_pct: a.write_pct,
                    batch: a.batch,
                    duration_s: r.measured_s,
                    completed: r.completed,
                    throughput_ops_s: r.throughput,
                    lat_mean_ms: r.lat_mean_ms,
                    lat_p50_ms: r.lat_p50_ms,
                    lat_p99_ms: r.lat_p99_ms,
                    lat_max_ms: r.lat_max_ms,
                    lat_bound_ms: r.lat_bound_ms,
                    wan_msgs_per_update: r.wan_msgs_per_update,
                    wan_bytes_per_update: r.wan_bytes_per_update,
                    safety: r.safety.clone(),
                    seed: a.seed,
                    costs: costs_name.into(),
                    wall_s: start.elapsed().as_secs_f64(),
                    scenario: sc.scenario.clone(),
                    local_view_changes: sc.local_view_changes,
                    global_view_changes: sc.global_view_changes,
                    recovery_ms: sc.recovery_ms,
                    reference_ops_s,
                    attack_ratio: reference_ops_s
                        .map(|f| if f > 0.0 { r.throughput / f } else { 0.0 }),
                });
                drop(window);
                sweep.item_done();
            }
        }
    }
    drop(sweep);
    let manifest = serde_json::json!({
        "command": "simulate",
        "mode": "sim",
        "topology": { "name": topology.name, "file": topology_path.display().to_string() },
        "scenario": scenarios,
        "protocols": rows.iter().map(|r| r.protocol.name()).collect::<std::collections::BTreeSet<_>>(),
        "clients": a.clients,
        "duration_s": a.duration.as_secs_f64(),
        "warmup_s": a.warmup.as_secs_f64(),
        "seed": a.seed,
        "costs": costs_name,
        "crypto": format!("{:?}", a.crypto).to_lowercase(),
        "signature_scheme": scheme.to_string(),
        "batch": a.batch,
        "write_pct": a.write_pct,
        "combine_deadline": !a.no_combine_deadline,
        "forwarding": !a.no_forwarding,
        "emulation": "deterministic simulator (virtual time)",
        "machine": results::environment(),
    });
    std::fs::write(
        out.join("manifest.json"),
        serde_json::to_string_pretty(&manifest)? + "\n",
    )?;
    results::write_summary(&out, &rows)?;
    results::print_table(&rows);
    print_damage(&rows);
    if let Some(bad) = rows.iter().find(|r| r.safety != "ok") {
        bail!("safety violation (seed {}): {}", bad.seed, bad.safety);
    }
    Ok(())
}

/// The scenario names of `--scenario`, checked, with `attacks` expanded to the catalog.
fn expand_scenarios(given: &[String]) -> Result<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for name in given {
        let names: Vec<&str> = if name == "attacks" {
            SCENARIOS
                .iter()
                .filter(|s| s.attack)
                .map(|s| s.name)
                .collect()
        } else if SCENARIOS.iter().any(|s| s.name == name) {
            vec![name.as_str()]
        } else {
            let known: Vec<&str> = SCENARIOS.iter().map(|s| s.name).collect();
            bail!(
                "unknown --scenario {name:?} (one of: attacks, {})",
                known.join(", ")
            );
        };
        for n in names {
            if !out.iter().any(|o| o == n) {
                out.push(n.to_string());
            }
        }
    }
    if out.is_empty() {
        bail!("--scenario names no scenario");
    }
    Ok(out)
}

fn is_attack(name: &str) -> bool {
    SCENARIOS.iter().any(|s| s.name == name && s.attack)
}

/// The attack rows as a damage table: throughput under attack against fault-free.
fn print_damage(rows: &[Row]) {
    let attacks: Vec<&Row> = rows.iter().filter(|r| r.attack_ratio.is_some()).collect();
    if attacks.is_empty() {
        return;
    }
    println!();
    println!(
        "{:<8} {:>7} {:<22} {:>12} {:>12} {:>7}  safety",
        "protocol", "clients", "attack", "fault-free", "under attack", "ratio"
    );
    for r in attacks {
        println!(
            "{:<8} {:>7} {:<22} {:>12.1} {:>12.1} {:>7.2}  {}",
            r.protocol,
            r.clients,
            r.scenario,
            r.reference_ops_s.unwrap_or(0.0),
            r.throughput_ops_s,
            r.attack_ratio.unwrap_or(0.0),
            r.safety
        );
    }
}

/// One simulated configuration under `scenario`; `window` follows its virtual time (None for
/// a reference run, which has no progress bar of its own).
#[allow(clippy::too_many_arguments)]
fn run_one(
    a: &SimulateArgs,
    topology: &Topology,
    protocol: Protocol,
    clients: u32,
    scenario: &str,
    costs: &CostTable,
    scheme: Scheme,
    window: Option<&Window>,
) -> Result<(RunReport, ScenarioStats)> {
    let crypto = match a.crypto {
        CryptoArg::Fast => CryptoMode::Fast,
        CryptoArg::Real => CryptoMode::Real,
    };
    eprintln!(
        "simulate: {protocol} {} clients={clients} scenario={scenario} ({} virtual s)...",
        topology.name,
        (a.warmup + a.duration).as_secs_f64()
    );
    let end = a.warmup + a.duration;
    let advance = |t: Duration| {
        if let Some(w) = window {
            w.advance_to(t)
        }
    };
    if protocol == Protocol::Pbft {
        return run_pbft(a, topology, clients, costs, scheme, crypto, &advance);
    }
    let mut cfg = WorldConfig::new(topology.clone(), clients, a.seed);
    configure!(cfg, a, costs, scheme, crypto);
    cfg.combine_deadline = !a.no_combine_deadline;
    cfg.forwarding = !a.no_forwarding;
    apply_scenario(&mut cfg, scenario, a.warmup + a.duration / 4, end)
        .map_err(anyhow::Error::msg)?;
    let mut world = World::build(cfg)?;
    run_in_steps(|t| world.run_until(t), end, &advance)?;
    Ok((world.report(), world.scenario_stats()))
}

/// Runs a simulation to virtual time `end` in 100 steps (`run_until` of each step's end),
/// advancing `window` after each. The same run as one `run_until(end)`: the simulator handles
/// its events in time order either way, and nothing happens between the steps.
fn run_in_steps<E>(
    mut run_until: impl FnMut(Duration) -> Result<(), E>,
    end: Duration,
    advance: &dyn Fn(Duration),
) -> Result<(), E> {
    const STEPS: u32 = 100;
    for i in 1..=STEPS {
        let t = end * i / STEPS;
        run_until(t)?;
        advance(t);
    }
    Ok(())
}

/// One PBFT configuration (same topology, clients, seed, costs and batch as Steward's rows). Its
/// view changes are reported as global ones; PBFT has no local view changes or scenarios.
fn run_pbft(
    a: &SimulateArgs,
    topology: &Topology,
    clients: u32,
    costs: &CostTable,
    scheme: Scheme,
    crypto: CryptoMode,
    advance: &dyn Fn(Duration),
) -> Result<(RunReport, ScenarioStats)> {
    let mut cfg = PbftWorldConfig::new(topology.clone(), clients, a.seed);
    configure!(cfg, a, costs, scheme, crypto);
    let mut world = PbftWorld::build(cfg)?;
    run_in_steps(|t| world.run_until(t), a.warmup + a.duration, advance)?;
    let views = (0..world.n())
        .filter_map(|i| world.replica(i).map(|r| r.view()))
        .max()
        .unwrap_or(0);
    let sc = ScenarioStats {
        scenario: "none".into(),
        local_view_changes: 0,
        global_view_changes: views,
        recovery_ms: None,
    };
    Ok((world.report(), sc))
}
