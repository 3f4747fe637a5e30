//! Results directories: `manifest.json`, `summary.csv` (one row per configuration), HDR
//! histogram logs, and the table printed at the end of a run.

use std::fs;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use hdrhistogram::serialization::interval_log::IntervalLogWriterBuilder;
use hdrhistogram::serialization::V2Serializer;
use hdrhistogram::Histogram;
use serde::Serialize;
use steward_config::Protocol;

/// One row of summary.csv.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    /// steward or pbft.
    pub protocol: Protocol,
    /// sim, local or remote.
    pub mode: String,
    /// Topology name.
    pub topology: String,
    /// Closed-loop clients.
    pub clients: u32,
    /// Percentage of updates.
    pub write_pct: u32,
    /// Updates per Proposal / pre-prepare.
    pub batch: usize,
    /// Measurement window (s).
    pub duration_s: f64,
    /// Operations completed in the window.
    pub completed: u64,
    /// Operations per second.
    pub throughput_ops_s: f64,
    /// Mean latency.
    pub lat_mean_ms: f64,
    /// Median latency.
    pub lat_p50_ms: f64,
    /// 99th percentile latency.
    pub lat_p99_ms: f64,
    /// Maximum latency.
    pub lat_max_ms: f64,
    /// Physical lower bound of an update's latency for the placed clients.
    pub lat_bound_ms: f64,
    /// WAN messages per completed update.
    pub wan_msgs_per_update: f64,
    /// WAN bytes per completed update.
    pub wan_bytes_per_update: f64,
    /// "ok" or the first safety violation.
    pub safety: String,
    /// Seed of the run.
    pub seed: u64,
    /// Crypto cost table (sim).
    pub costs: String,
    /// Wall-clock seconds the configuration took.
    pub wall_s: f64,
    /// Fault scenario ("none" without faults).
    pub scenario: String,
    /// Local view changes (summed over sites).
    pub local_view_changes: u64,
    /// Global view changes.
    pub global_view_changes: u64,
    /// From the fault to the first update executed after it, in ms (empty: no fault or no
    /// recovery).
    pub recovery_ms: Option<f64>,
    /// Attack scenarios (`simulate`): throughput of the same run without the attack (empty
    /// otherwise).
    pub reference_ops_s: Option<f64>,
    /// Attack scenarios: throughput under attack / `reference_ops_s`.
    pub attack_ratio: Option<f64>,
}

/// Write summary.csv.
pub fn write_summary(dir: &Path, rows: &[Row]) -> Result<()> {
    let path = dir.join("summary.csv");
    let mut w = csv::Writer::from_path(&path).with_context(|| format!("{}", path.display()))?;
    for r in rows {
        w.serialize(r)?;
    }
    w.flush()?;
    Ok(())
}

/// Write one HDR interval log with a single interval covering the measurement window.
pub fn write_hdr_log(
    dir: &Path,
    name: &str,
    hist: &Histogram<u64>,
    start: Duration,
    len: Duration,
) -> Result<()> {
    let hdr_dir = dir.join("hdr");
    fs::create_dir_all(&hdr_dir)?;
    let path = hdr_dir.join(format!("{name}.hlog"));
    let mut buf = Vec::new();
    let mut ser = V2Serializer::new();
    {
        let mut w = IntervalLogWriterBuilder::new()
            .with_base_time(SystemTime::UNIX_EPOCH)
            .add_comment(&format!("{name}: client latency in microseconds"))
            .begin_log_with(&mut buf, &mut ser)
            .map_err(|e| anyhow::anyhow!("hdr log: {e:?}"))?;
        w.write_histogram(
            hist,
            start,
            len,
            hdrhistogram::serialization::interval_log::Tag::new("all"),
        )
        .map_err(|e| anyhow::anyhow!("hdr log: {e:?}"))?;
    }
    fs::write(&path, buf).with_context(|| format!("{}", path.display()))?;
    Ok(())
}

/// Facts about this machine and checkout, for manifest.json.
pub fn environment() -> serde_json::Value {
    let git = std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    let cpu = fs::read_to_string("/proc/cpuinfo").ok().and_then(|t| {
        t.lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split(':').nth(1))
            .map(|s| s.trim().to_string())
    });
    serde_json::json!({
        "git_revision": git,
        "cpu": cpu,
        "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "os": std::env::consts::OS,
        "created_unix_s": SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0),
        "loadgen_version": env!("CARGO_PKG_VERSION"),
    })
}

/// Print rows as an aligned table.
pub fn print_table(rows: &[Row]) {
    println!(
        "{:<8} {:<5} {:<24} {:>7} {:>5} {:>5} {:>9} {:>10} {:>9} {:>9} {:>9} {:>9} {:>9} {:>8}  safety",
        "protocol", "mode", "topology", "clients", "write", "batch", "completed", "ops/s",
        "mean ms", "p50 ms", "p99 ms", "bound ms", "WAN msg/u", "WAN B/u"
    );
    for r in rows {
        println!(
            "{:<8} {:<5} {:<24} {:>7} {:>5} {:>5} {:>9} {:>10.1} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>8.0}  {}",
            r.protocol,
            r.mode,
            r.topology,
            r.clients,
            r.write_pct,
            r.batch,
            r.completed,
            r.throughput_ops_s,
            r.lat_mean_ms,
            r.lat_p50_ms,
            r.lat_p99_ms,
            r.lat_bound_ms,
            r.wan_msgs_per_update,
            r.wan_bytes_per_update,
            r.safety
        );
    }
}

/// Parse "60s", "500ms", "2m" or a bare number of seconds (the experiment specs' rule).
pub use steward_config::parse_duration;
