//! `loadgen keygen`.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use clap::Args;
use steward_crypto::signature::Scheme;
use steward_deploy::{generate, KeygenOptions};

/// Arguments of `loadgen keygen`.
#[derive(Args)]
pub struct KeygenArgs {
    /// Topology file (TOML).
    #[arg(long)]
    topology: PathBuf,
    /// Deployment directory to create.
    #[arg(long)]
    out: PathBuf,
    /// Per-message signature scheme: ed25519, rsa1024 (the paper's), rsa2048.
    #[arg(long, default_value = "ed25519")]
    scheme: Scheme,
    /// Threshold RSA modulus size: 1024 (the paper's), 2048 or 3072.
    #[arg(long, default_value_t = 1024)]
    threshold_bits: u32,
    /// Number of client key pairs.
    #[arg(long, default_value_t = 32)]
    clients: u32,
    /// Derive all keys from this seed (reproducible test deployments only; never for real use).
    #[arg(long)]
    seed: Option<u64>,
    /// Replace an existing deployment directory.
    #[arg(long)]
    force: bool,
}

/// Run `loadgen keygen`.
pub fn run(a: KeygenArgs) -> Result<()> {
    let start = Instant::now();
    let opts = KeygenOptions {
        scheme: a.scheme,
        threshold_bits: a.threshold_bits,
        clients: a.clients,
        seed: a.seed,
        force: a.force,
    };
    let m = generate(&a.topology, &a.out, &opts, &|line| {
        eprintln!("keygen: {line}")
    })?;
    let servers: u32 = m.steward_sites.iter().map(|s| s.servers).sum();
    println!(
        "wrote {}: {} sites, {} Steward servers, {} PBFT replicas, {} clients, {} signatures, {}-bit threshold keys ({:.1} s)",
        a.out.display(),
        m.steward_sites.len(),
        servers,
        m.pbft.replicas,
        m.clients,
        m.scheme,
        m.threshold_bits,
        start.elapsed().as_secs_f64()
    );
    Ok(())
}
