//! `loadgen simulate`: run protocols in the deterministic simulator over a sweep of client
//! counts and write a results directory.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use steward::crypto::CostTable;
use steward::simulation::{CryptoMode, World, WorldConfig};
use steward_config::Topology;
use steward_crypto::signature::Scheme;

use crate::results::{self, parse_duration, Row};

/// Protocol selection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Protocol {
    /// Steward.
    Steward,
    /// Flat PBFT.
    Pbft,
    /// Both, on the same topology, clients and seed.
    Both,
}

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
#[derive(Args, Debug)]
pub struct SimulateArgs {
    /// Protocol(s) to run.
    #[arg(long, value_enum, default_value = "steward")]
    protocol: Protocol,
    /// Topology file.
    #[arg(long)]
    topology: PathBuf,
    /// Client counts to sweep, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,10,30")]
    clients: Vec<u32>,
    /// Measured virtual time per configuration (after the warm-up).
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    duration: Duration,
    /// Virtual warm-up excluded from measurements.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    warmup: Duration,
    /// Seed of all randomness.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Crypto cost table.
    #[arg(long, value_enum, default_value = "measured")]
    costs: Costs,
    /// Crypto implementation.
    #[arg(long, value_enum, default_value = "fast")]
    crypto: CryptoArg,
    /// Updates per Proposal (1 = the paper).
    #[arg(long, default_value_t = 1)]
    batch: usize,
    /// Percentage of operations that are updates (the rest are read-only queries).
    #[arg(long, default_value_t = 100)]
    write_pct: u32,
    /// Results directory.
    #[arg(long)]
    out: PathBuf,
}

/// Run `loadgen simulate`.
pub fn run(a: SimulateArgs) -> Result<()> {
    if a.write_pct > 100 {
        bail!("--write-pct must be 0..=100, got {}", a.write_pct);
    }
    if a.batch == 0 {
        bail!("--batch must be at least 1");
    }
    if a.clients.is_empty() || a.clients.contains(&0) {
        bail!("--clients needs positive counts, e.g. 1,10,30");
    }
    let protocols: Vec<&str> = match a.protocol {
        Protocol::Steward => vec!["steward"],
        Protocol::Pbft | Protocol::Both => {
            bail!("the PBFT baseline is not built yet; use --protocol steward")
        }
    };
    let topology = Topology::load(&a.topology)?;
    std::fs::create_dir_all(&a.out).with_context(|| format!("{}", a.out.display()))?;
    let (costs, scheme, costs_name) = match a.costs {
        Costs::Measured => (CostTable::measured(), Scheme::Ed25519, "measured"),
        Costs::Paper => (CostTable::paper(), Scheme::RSA1024, "paper"),
        Costs::Zero => (CostTable::zero(), Scheme::Ed25519, "zero"),
    };
    let mut rows = Vec::new();
    for protocol in protocols {
        for &clients in &a.clients {
            let start = Instant::now();
            let mut cfg = WorldConfig::new(topology.clone(), clients, a.seed);
            cfg.costs = costs.clone();
            cfg.scheme = scheme;
            cfg.batch = a.batch;
            cfg.write_pct = a.write_pct;
            cfg.crypto = match a.crypto {
                CryptoArg::Fast => CryptoMode::Fast,
                CryptoArg::Real => CryptoMode::Real,
            };
            cfg.sim.warmup = a.warmup;
            eprintln!(
                "simulate: {protocol} {} clients={clients} ({} virtual s)...",
                topology.name,
                (a.warmup + a.duration).as_secs_f64()
            );
            let mut world = World::build(cfg)?;
            world.run_until(a.warmup + a.duration)?;
            let r = world.report();
            let name = format!(
                "{protocol}-{}-c{clients}-w{}-b{}",
                topology.name, a.write_pct, a.batch
            );
            results::write_hdr_log(&a.out, &name, &r.histogram, a.warmup, a.duration)?;
            rows.push(Row {
                protocol: protocol.to_string(),
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
            });
        }
    }
    let manifest = serde_json::json!({
        "command": "simulate",
        "mode": "sim",
        "topology": { "name": topology.name, "file": a.topology.display().to_string() },
        "protocols": rows.iter().map(|r| r.protocol.clone()).collect::<std::collections::BTreeSet<_>>(),
        "clients": a.clients,
        "duration_s": a.duration.as_secs_f64(),
        "warmup_s": a.warmup.as_secs_f64(),
        "seed": a.seed,
        "costs": costs_name,
        "crypto": format!("{:?}", a.crypto).to_lowercase(),
        "signature_scheme": scheme.to_string(),
        "batch": a.batch,
        "write_pct": a.write_pct,
        "emulation": "deterministic simulator (virtual time)",
        "machine": results::environment(),
    });
    std::fs::write(
        a.out.join("manifest.json"),
        serde_json::to_string_pretty(&manifest)? + "\n",
    )?;
    results::write_summary(&a.out, &rows)?;
    results::print_table(&rows);
    if let Some(bad) = rows.iter().find(|r| r.safety != "ok") {
        bail!("safety violation (seed {}): {}", bad.seed, bad.safety);
    }
    Ok(())
}
