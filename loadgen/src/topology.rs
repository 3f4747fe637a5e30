//! `loadgen topology`: validate topology files and summarise them.

use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::Args;
use steward_config::Topology;

/// Arguments of `loadgen topology`.
#[derive(Args)]
pub struct TopologyArgs {
    /// Topology files to check.
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

/// Run `loadgen topology`: print a summary per valid file, an error per invalid one.
pub fn run(a: TopologyArgs) -> Result<()> {
    let mut failed = 0;
    for path in &a.files {
        match Topology::load(path) {
            Ok(t) => println!("{}", summary(&t, path)),
            Err(e) => {
                eprintln!("error: {e}");
                failed += 1;
            }
        }
    }
    if failed > 0 {
        bail!("{failed} of {} topology files are invalid", a.files.len());
    }
    Ok(())
}

fn summary(t: &Topology, path: &std::path::Path) -> String {
    let sites: Vec<String> = t
        .sites
        .iter()
        .map(|s| format!("{}(f={},n={})", s.name, s.f, s.servers))
        .collect();
    let (mut lo, mut hi) = (f64::MAX, 0f64);
    let (mut bw_lo, mut bw_hi) = (u64::MAX, 0u64);
    for (_, _, link) in t.wan_pairs() {
        let ms = link.latency.as_secs_f64() * 1e3;
        lo = lo.min(ms);
        hi = hi.max(ms);
        bw_lo = bw_lo.min(link.bandwidth_bps);
        bw_hi = bw_hi.max(link.bandwidth_bps);
    }
    let wan = if hi > 0.0 || bw_hi > 0 {
        format!(
            "WAN one-way {lo:.1}-{hi:.1} ms, {:.3}-{:.3} Mbit/s",
            bw_lo as f64 / 1e6,
            bw_hi as f64 / 1e6
        )
    } else {
        "single site".to_string()
    };
    format!(
        "{}: {} ok: {} Steward servers in {} sites [{}]; {}; PBFT n={} f={} primary r{}",
        path.display(),
        t.name,
        t.total_steward_servers(),
        t.sites.len(),
        sites.join(" "),
        wan,
        t.pbft.n(),
        t.pbft.f,
        t.pbft.primary
    )
}
