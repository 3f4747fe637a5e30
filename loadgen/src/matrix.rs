//! `loadgen matrix --spec <experiment.toml> --out <dir>`: a sweep over modes (sim, local) ×
//! protocols × topologies × clients × write mixes × batch sizes into one results directory.
//!
//! Every point runs into `<out>/points/<key>/` (a complete `simulate` or `local` results
//! directory); a point whose `summary.csv` exists is done and skipped, so an interrupted sweep
//! resumes where it stopped. After the sweep, `<out>/summary.csv` holds every point's row
//! (the union of the columns), `<out>/hdr/` every histogram, and `<out>/manifest.json` the
//! spec and the machine.
//!
//! Spec format (paths relative to the spec file):
//!
//! ```toml
//! name = "paper-symmetric-sim"
//! description = "Figures 1-2, simulated at full scale with the paper's crypto costs"
//!
//! [[run]]
//! mode = "sim"                       # sim | local
//! protocols = ["steward", "pbft"]
//! topologies = ["../topologies/paper-symmetric-10mbps.toml"]
//! clients = [1, 5, 10, 20, 30]
//! write_pct = [100]                  # default [100]
//! batch = [1]                        # default [1]
//! duration = "30s"                   # measured time per point
//! warmup = "5s"
//! costs = "paper"                    # sim: paper | measured | zero (default measured)
//! seed = 1                           # sim (default 1)
//! wan_queue_kib = 1024               # sim: WAN drop-tail limit (default 1024)
//! wan = "emulate"                    # local: emulate | off (default emulate)
//! ```

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Args;
use serde::Deserialize;
use steward_config::Topology;
use steward_runtime::WanMode;

use crate::local::{self, LocalArgs, ProtocolChoice};
use crate::results::{self, parse_duration};
use crate::simulate::{self, Costs, CryptoArg, SimulateArgs};

/// Arguments of `loadgen matrix`.
#[derive(Args, Debug)]
pub struct MatrixArgs {
    /// Experiment spec (TOML; see `loadgen matrix --help` and the README).
    #[arg(long)]
    spec: PathBuf,
    /// Results directory (created; an existing one is resumed).
    #[arg(long)]
    out: PathBuf,
    /// List the points and whether each is done, without running anything.
    #[arg(long)]
    dry_run: bool,
}

/// An experiment spec.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Spec {
    name: String,
    #[serde(default)]
    description: String,
    #[serde(rename = "run")]
    runs: Vec<RunSpec>,
}

/// One block of points: the cross product of its lists.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RunSpec {
    mode: String,
    protocols: Vec<String>,
    topologies: Vec<PathBuf>,
    clients: Vec<u32>,
    #[serde(default = "default_write")]
    write_pct: Vec<u32>,
    #[serde(default = "default_batch")]
    batch: Vec<usize>,
    duration: String,
    #[serde(default = "default_warmup")]
    warmup: String,
    #[serde(default)]
    costs: Option<String>,
    #[serde(default)]
    seed: Option<u64>,
    #[serde(default)]
    wan_queue_kib: Option<u64>,
    #[serde(default)]
    wan: Option<String>,
}

fn default_write() -> Vec<u32> {
    vec![100]
}
fn default_batch() -> Vec<usize> {
    vec![1]
}
fn default_warmup() -> String {
    "5s".into()
}

/// A run mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Sim,
    Local,
}

/// One configuration of the sweep.
#[derive(Clone, Debug)]
struct Point {
    mode: Mode,
    protocol: &'static str,
    topology: PathBuf,
    topology_name: String,
    clients: u32,
    write_pct: u32,
    batch: usize,
    duration: Duration,
    warmup: Duration,
    costs: Costs,
    seed: u64,
    wan_queue_kib: u64,
    wan: WanMode,
}

impl Point {
    /// The point's directory name; unique within a sweep.
    fn key(&self) -> String {
        let mode = match self.mode {
            Mode::Sim => "sim",
            Mode::Local => "local",
        };
        format!(
            "{mode}-{}-{}-c{}-w{}-b{}",
            self.protocol, self.topology_name, self.clients, self.write_pct, self.batch
        )
    }
}

/// Reads and checks a spec; errors name the file and the field.
fn load_spec(path: &Path) -> Result<Vec<Point>> {
    let text = fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read the experiment spec", path.display()))?;
    let spec: Spec =
        toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let base = path.parent().unwrap_or(Path::new("."));
    let mut points = Vec::new();
    if spec.runs.is_empty() {
        bail!("{}: no [[run]] blocks", path.display());
    }
    for (i, run) in spec.runs.iter().enumerate() {
        let at = |field: &str| format!("{}: run[{i}].{field}", path.display());
        let mode = match run.mode.as_str() {
            "sim" => Mode::Sim,
            "local" => Mode::Local,
            other => bail!(
                "{}: must be \"sim\" or \"local\", got {other:?}",
                at("mode")
            ),
        };
        let duration = parse_duration(&run.duration)
            .map_err(|e| anyhow::anyhow!("{}: {e}", at("duration")))?;
        let warmup =
            parse_duration(&run.warmup).map_err(|e| anyhow::anyhow!("{}: {e}", at("warmup")))?;
        if duration.is_zero() {
            bail!("{}: must be positive", at("duration"));
        }
        let costs = match run.costs.as_deref() {
            None | Some("measured") => Costs::Measured,
            Some("paper") => Costs::Paper,
            Some("zero") => Costs::Zero,
            Some(other) => bail!("{}: paper, measured or zero, got {other:?}", at("costs")),
        };
        let wan = match run.wan.as_deref() {
            None | Some("emulate") => WanMode::Emulate,
            Some("off") => WanMode::Off,
            Some(other) => bail!("{}: emulate or off, got {other:?}", at("wan")),
        };
        if mode == Mode::Local
            && (run.costs.is_some() || run.seed.is_some() || run.wan_queue_kib.is_some())
        {
            bail!(
                "{}: costs, seed and wan_queue_kib apply to sim runs only",
                at("mode")
            );
        }
        if mode == Mode::Sim && run.wan.is_some() {
            bail!("{}: wan applies to local runs only", at("mode"));
        }
        for (name, empty) in [
            ("protocols", run.protocols.is_empty()),
            ("topologies", run.topologies.is_empty()),
            ("clients", run.clients.is_empty()),
            ("write_pct", run.write_pct.is_empty()),
            ("batch", run.batch.is_empty()),
        ] {
            if empty {
                bail!("{}: must not be empty", at(name));
            }
        }
        if run.clients.contains(&0) {
            bail!("{}: client counts must be positive", at("clients"));
        }
        if run.write_pct.iter().any(|w| *w > 100) {
            bail!("{}: percentages are 0..=100", at("write_pct"));
        }
        if run.batch.contains(&0) {
            bail!("{}: batch sizes are at least 1", at("batch"));
        }
        let mut protocols = Vec::new();
        for p in &run.protocols {
            protocols.push(match p.as_str() {
                "steward" => "steward",
                "pbft" => "pbft",
                other => bail!("{}: steward or pbft, got {other:?}", at("protocols")),
            });
        }
        for t in &run.topologies {
            let file = base.join(t);
            let topo = Topology::load(&file).with_context(|| at("topologies"))?;
            for &protocol in &protocols {
                for &clients in &run.clients {
                    for &write_pct in &run.write_pct {
                        for &batch in &run.batch {
                            points.push(Point {
                                mode,
                                protocol,
                                topology: file.clone(),
                                topology_name: topo.name.clone(),
                                clients,
                                write_pct,
                                batch,
                                duration,
                                warmup,
                                costs,
                                seed: run.seed.unwrap_or(1),
                                wan_queue_kib: run.wan_queue_kib.unwrap_or(1024),
                                wan,
                            });
                        }
                    }
                }
            }
        }
    }
    let mut seen = BTreeSet::new();
    for p in &points {
        if !seen.insert(p.key()) {
            bail!("{}: the point {} appears twice", path.display(), p.key());
        }
    }
    let _ = (&spec.name, &spec.description);
    Ok(points)
}

fn is_done(dir: &Path) -> bool {
    fs::read_to_string(dir.join("summary.csv")).is_ok_and(|t| t.lines().count() >= 2)
}

/// Run `loadgen matrix`.
pub fn run(a: MatrixArgs) -> Result<()> {
    let points = load_spec(&a.spec)?;
    let spec_text = fs::read_to_string(&a.spec)?;
    let points_dir = a.out.join("points");
    let total = points.len();
    if a.dry_run {
        for (i, p) in points.iter().enumerate() {
            let done = is_done(&points_dir.join(p.key()));
            println!(
                "[{}/{total}] {} {}",
                i + 1,
                p.key(),
                if done { "done" } else { "to run" }
            );
        }
        return Ok(());
    }
    fs::create_dir_all(&points_dir).with_context(|| format!("{}", points_dir.display()))?;
    fs::write(a.out.join("spec.toml"), &spec_text)?;
    for (i, p) in points.iter().enumerate() {
        let dir = points_dir.join(p.key());
        if is_done(&dir) {
            eprintln!("matrix: [{}/{total}] {} (done, skipped)", i + 1, p.key());
            continue;
        }
        eprintln!("matrix: [{}/{total}] {}", i + 1, p.key());
        // A half-written point from an interrupted run starts over.
        if dir.exists() {
            fs::remove_dir_all(&dir).with_context(|| format!("{}", dir.display()))?;
        }
        run_point(p, &dir).with_context(|| format!("point {}", p.key()))?;
    }
    merge(&a.out, &points, &spec_text)?;
    Ok(())
}

fn run_point(p: &Point, dir: &Path) -> Result<()> {
    match p.mode {
        Mode::Sim => simulate::run(SimulateArgs {
            protocol: if p.protocol == "pbft" {
                simulate::Protocol::Pbft
            } else {
                simulate::Protocol::Steward
            },
            topology: Some(p.topology.clone()),
            clients: vec![p.clients],
            duration: p.duration,
            warmup: p.warmup,
            seed: p.seed,
            costs: p.costs,
            crypto: CryptoArg::Fast,
            batch: p.batch,
            write_pct: p.write_pct,
            scenario: "none".into(),
            list_scenarios: false,
            wan_queue_kib: p.wan_queue_kib,
            out: Some(dir.to_path_buf()),
        }),
        Mode::Local => local::run(LocalArgs {
            protocol: if p.protocol == "pbft" {
                ProtocolChoice::Pbft
            } else {
                ProtocolChoice::Steward
            },
            topology: Some(p.topology.clone()),
            clients: vec![p.clients],
            duration: p.duration,
            warmup: p.warmup,
            write_pct: p.write_pct,
            batch: p.batch,
            wan: p.wan,
            out: Some(dir.to_path_buf()),
            kill: Vec::new(),
        })
        .map(|_| ()),
    }
}

/// Writes the sweep's summary.csv (union of the points' columns, in first-seen order), copies
/// the histograms and writes manifest.json.
fn merge(out: &Path, points: &[Point], spec_text: &str) -> Result<()> {
    let mut header: Vec<String> = Vec::new();
    let mut rows: Vec<Vec<(String, String)>> = Vec::new();
    let hdr_out = out.join("hdr");
    fs::create_dir_all(&hdr_out)?;
    let mut manifests = Vec::new();
    for p in points {
        let dir = out.join("points").join(p.key());
        let path = dir.join("summary.csv");
        let mut r = csv::Reader::from_path(&path).with_context(|| format!("{}", path.display()))?;
        let h: Vec<String> = r.headers()?.iter().map(String::from).collect();
        for c in &h {
            if !header.contains(c) {
                header.push(c.clone());
            }
        }
        for rec in r.records() {
            let rec = rec.with_context(|| format!("{}", path.display()))?;
            rows.push(
                h.iter()
                    .cloned()
                    .zip(rec.iter().map(String::from))
                    .collect(),
            );
        }
        if let Ok(entries) = fs::read_dir(dir.join("hdr")) {
            for e in entries.flatten() {
                fs::copy(e.path(), hdr_out.join(e.file_name()))?;
            }
        }
        if let Ok(m) = fs::read_to_string(dir.join("manifest.json")) {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&m) {
                manifests.push(serde_json::json!({ "point": p.key(), "manifest": v }));
            }
        }
    }
    let mut w = csv::Writer::from_path(out.join("summary.csv"))?;
    w.write_record(&header)?;
    for row in &rows {
        w.write_record(header.iter().map(|c| {
            row.iter()
                .find(|(k, _)| k == c)
                .map(|(_, v)| v.as_str())
                .unwrap_or("")
        }))?;
    }
    w.flush()?;
    let modes: BTreeSet<&str> = points
        .iter()
        .map(|p| match p.mode {
            Mode::Sim => "sim",
            Mode::Local => "local",
        })
        .collect();
    let manifest = serde_json::json!({
        "command": "matrix",
        "mode": if modes.len() == 1 { modes.iter().next().copied().unwrap_or("mixed") } else { "mixed" },
        "spec": spec_text,
        "points": points.len(),
        "machine": results::environment(),
        "point_manifests": manifests,
    });
    fs::write(
        out.join("manifest.json"),
        serde_json::to_string_pretty(&manifest)? + "\n",
    )?;
    eprintln!(
        "matrix: {} points, {} rows in {}",
        points.len(),
        rows.len(),
        out.join("summary.csv").display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        fs::write(&p, text).unwrap();
        p
    }

    const TOPO: &str = r#"
name = "tiny"
[lan]
latency_ms = 0.1
bandwidth = "1Gbps"
[wan.default]
latency_ms = 10
bandwidth = "10Mbps"
[[site]]
name = "a"
f = 1
servers = 4
[[site]]
name = "b"
f = 1
servers = 4
[clients]
weights = { a = 1 }
[pbft]
servers_per_site = { a = 2, b = 2 }
"#;

    #[test]
    fn spec_expands_to_the_cross_product() {
        let tmp = tempfile::tempdir().unwrap();
        write(tmp.path(), "t.toml", TOPO);
        let spec = write(
            tmp.path(),
            "s.toml",
            r#"
name = "x"
[[run]]
mode = "sim"
protocols = ["steward", "pbft"]
topologies = ["t.toml"]
clients = [1, 2, 3]
write_pct = [100, 50]
duration = "1s"
costs = "paper"
"#,
        );
        let points = load_spec(&spec).unwrap();
        assert_eq!(points.len(), 2 * 3 * 2);
        assert_eq!(points[0].key(), "sim-steward-tiny-c1-w100-b1");
        assert!(points.iter().all(|p| p.costs == Costs::Paper));
    }

    #[test]
    fn bad_specs_name_the_file_and_field() {
        let tmp = tempfile::tempdir().unwrap();
        write(tmp.path(), "t.toml", TOPO);
        for (text, needle) in [
            ("name = \"x\"\n[[run]]\nmode = \"cloud\"\nprotocols = [\"steward\"]\ntopologies = [\"t.toml\"]\nclients = [1]\nduration = \"1s\"\n", "run[0].mode"),
            ("name = \"x\"\n[[run]]\nmode = \"sim\"\nprotocols = [\"raft\"]\ntopologies = [\"t.toml\"]\nclients = [1]\nduration = \"1s\"\n", "run[0].protocols"),
            ("name = \"x\"\n[[run]]\nmode = \"sim\"\nprotocols = [\"pbft\"]\ntopologies = [\"t.toml\"]\nclients = [0]\nduration = \"1s\"\n", "run[0].clients"),
            ("name = \"x\"\n[[run]]\nmode = \"local\"\nprotocols = [\"pbft\"]\ntopologies = [\"t.toml\"]\nclients = [1]\nduration = \"1s\"\ncosts = \"paper\"\n", "sim runs only"),
            ("name = \"x\"\n[[run]]\nmode = \"sim\"\nprotocols = [\"pbft\"]\ntopologies = [\"missing.toml\"]\nclients = [1]\nduration = \"1s\"\n", "run[0].topologies"),
            ("name = \"x\"\nbogus = 1\n", "bogus"),
        ] {
            let spec = write(tmp.path(), "s.toml", text);
            let err = format!("{:#}", load_spec(&spec).unwrap_err());
            assert!(err.contains("s.toml") || err.contains("missing.toml"), "{err}");
            assert!(err.contains(needle), "{needle}: {err}");
        }
    }
}
