//! Experiment specs (`loadgen matrix --spec <file>`): the TOML format and every check that needs
//! no file system. Which topology, deployment and inventory files exist, and what they hold,
//! is checked by `loadgen matrix` itself.
//!
//! ```toml
//! name = "paper-symmetric-sim"
//! description = "Figures 1-2, simulated"
//!
//! [[run]]
//! mode = "sim"                       # sim | local | remote
//! protocols = ["steward", "pbft"]
//! topologies = ["../topologies/paper-symmetric-10mbps.toml"]
//! clients = [1, 5, 10]
//! duration = "30s"
//! ```
//!
//! Errors name the origin and the field: `specs/x.toml: run[1].clients: client counts must be
//! positive`.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::error::ConfigError;
use crate::protocol::Protocol;
use crate::units::parse_duration;

/// A checked experiment spec.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExperimentSpec {
    /// The spec's name.
    pub name: String,
    /// What it reproduces.
    pub description: String,
    /// Its `[[run]]` blocks, in file order; never empty.
    pub runs: Vec<RunBlock>,
}

/// Where a block's points run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunMode {
    /// The deterministic simulator.
    Sim,
    /// Real processes on this machine.
    Local,
    /// Real hosts named by an Ansible inventory.
    Remote,
}

impl RunMode {
    /// The name as written in specs and point keys.
    pub fn name(self) -> &'static str {
        match self {
            RunMode::Sim => "sim",
            RunMode::Local => "local",
            RunMode::Remote => "remote",
        }
    }
}

/// A simulated run's crypto cost table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SimCosts {
    /// This machine's measured costs (the default).
    Measured,
    /// The paper's costs.
    Paper,
    /// Free crypto.
    Zero,
}

/// How a real run's WAN is shaped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WanShaping {
    /// The userspace shaper (default of local runs).
    Emulate,
    /// The kernel's netem, set up by Ansible (default of remote runs; remote only).
    Netem,
    /// No shaping.
    Off,
}

/// One `[[run]]` block: the cross product of its lists, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunBlock {
    /// Where it runs.
    pub mode: RunMode,
    /// Never empty.
    pub protocols: Vec<Protocol>,
    /// Topology files as written (relative to the spec); empty only for remote blocks, which
    /// then use the deployment's.
    pub topologies: Vec<PathBuf>,
    /// Positive client counts; never empty.
    pub clients: Vec<u32>,
    /// Update percentages in `0..=100`; never empty.
    pub write_pct: Vec<u32>,
    /// Batch sizes, at least 1; never empty.
    pub batch: Vec<usize>,
    /// Measured time per point; positive.
    pub duration: Duration,
    /// Warm-up before the measurement.
    pub warmup: Duration,
    /// Sim only (default measured).
    pub costs: SimCosts,
    /// Sim only (default 1).
    pub seed: u64,
    /// Sim only: the WAN's drop-tail limit in KiB (default 1024).
    pub wan_queue_kib: u64,
    /// Real runs only: how the WAN is shaped.
    pub wan: WanShaping,
    /// Remote only (required there): the deployment directory as written.
    pub deployment: Option<PathBuf>,
    /// Remote only (required there, never empty): Ansible inventory files as written.
    pub inventory: Vec<PathBuf>,
    /// Remote only: the Ansible directory as written (default: the checkout's).
    pub ansible_dir: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SpecDoc {
    name: String,
    #[serde(default)]
    description: String,
    #[serde(rename = "run", default)]
    runs: Vec<RunDoc>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RunDoc {
    mode: String,
    protocols: Vec<String>,
    #[serde(default)]
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
    #[serde(default)]
    deployment: Option<PathBuf>,
    #[serde(default)]
    inventory: Vec<PathBuf>,
    #[serde(default)]
    ansible_dir: Option<PathBuf>,
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

impl ExperimentSpec {
    /// Parses and checks a spec from TOML text; `origin` (usually the file name) is used in
    /// error messages.
    pub fn from_toml_str(text: &str, origin: &str) -> Result<ExperimentSpec, ConfigError> {
        let doc: SpecDoc =
            toml::from_str(text).map_err(|e| crate::parse::toml_error(text, origin, &e))?;
        if doc.runs.is_empty() {
            return Err(ConfigError::file(origin, "no [[run]] blocks"));
        }
        let runs = doc
            .runs
            .iter()
            .enumerate()
            .map(|(i, run)| run_block(run, origin, i))
            .collect::<Result<_, _>>()?;
        Ok(ExperimentSpec {
            name: doc.name,
            description: doc.description,
            runs,
        })
    }
}

fn run_block(run: &RunDoc, origin: &str, i: usize) -> Result<RunBlock, ConfigError> {
    let err = |field: &str, reason: String| {
        ConfigError::field(origin, format!("run[{i}].{field}"), reason)
    };
    let mode = match run.mode.as_str() {
        "sim" => RunMode::Sim,
        "local" => RunMode::Local,
        "remote" => RunMode::Remote,
        other => {
            return Err(err(
                "mode",
                format!("must be \"sim\", \"local\" or \"remote\", got {other:?}"),
            ))
        }
    };
    let duration = parse_duration(&run.duration).map_err(|e| err("duration", e))?;
    let warmup = parse_duration(&run.warmup).map_err(|e| err("warmup", e))?;
    if duration.is_zero() {
        return Err(err("duration", "must be positive".into()));
    }
    let costs = match run.costs.as_deref() {
        None | Some("measured") => SimCosts::Measured,
        Some("paper") => SimCosts::Paper,
        Some("zero") => SimCosts::Zero,
        Some(other) => {
            return Err(err(
                "costs",
                format!("paper, measured or zero, got {other:?}"),
            ))
        }
    };
    let wan = match (run.wan.as_deref(), mode) {
        (Some(_), RunMode::Sim) => {
            return Err(err(
                "mode",
                "wan applies to local and remote runs only".into(),
            ))
        }
        (None, RunMode::Remote) | (Some("netem"), RunMode::Remote) => WanShaping::Netem,
        (None, _) | (Some("emulate"), _) => WanShaping::Emulate,
        (Some("off"), _) => WanShaping::Off,
        (Some(other), RunMode::Remote) => {
            return Err(err("wan", format!("netem, emulate or off, got {other:?}")))
        }
        (Some(other), _) => return Err(err("wan", format!("emulate or off, got {other:?}"))),
    };
    if mode != RunMode::Sim
        && (run.costs.is_some() || run.seed.is_some() || run.wan_queue_kib.is_some())
    {
        return Err(err(
            "mode",
            "costs, seed and wan_queue_kib apply to sim runs only".into(),
        ));
    }
    if mode != RunMode::Remote
        && (run.deployment.is_some() || !run.inventory.is_empty() || run.ansible_dir.is_some())
    {
        return Err(err(
            "mode",
            "deployment, inventory and ansible_dir apply to remote runs only".into(),
        ));
    }
    if mode == RunMode::Remote {
        if run.deployment.is_none() {
            return Err(err(
                "deployment",
                "remote runs need the deployment directory".into(),
            ));
        }
        if run.inventory.is_empty() {
            return Err(err(
                "inventory",
                "remote runs need the Ansible inventory (a list of files)".into(),
            ));
        }
    }
    for (name, empty) in [
        ("protocols", run.protocols.is_empty()),
        (
            "topologies",
            run.topologies.is_empty() && mode != RunMode::Remote,
        ),
        ("clients", run.clients.is_empty()),
        ("write_pct", run.write_pct.is_empty()),
        ("batch", run.batch.is_empty()),
    ] {
        if empty {
            return Err(err(name, "must not be empty".into()));
        }
    }
    if run.clients.contains(&0) {
        return Err(err("clients", "client counts must be positive".into()));
    }
    if run.write_pct.iter().any(|w| *w > 100) {
        return Err(err("write_pct", "percentages are 0..=100".into()));
    }
    if run.batch.contains(&0) {
        return Err(err("batch", "batch sizes are at least 1".into()));
    }
    let protocols = run
        .protocols
        .iter()
        .map(|p| {
            p.parse::<Protocol>()
                .map_err(|e| err("protocols", e.to_string()))
        })
        .collect::<Result<_, _>>()?;
    Ok(RunBlock {
        mode,
        protocols,
        topologies: run.topologies.clone(),
        clients: run.clients.clone(),
        write_pct: run.write_pct.clone(),
        batch: run.batch.clone(),
        duration,
        warmup,
        costs,
        seed: run.seed.unwrap_or(1),
        wan_queue_kib: run.wan_queue_kib.unwrap_or(1024),
        wan,
        deployment: run.deployment.clone(),
        inventory: run.inventory.clone(),
        ansible_dir: run.ansible_dir.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: &str = r#"
name = "t"
[[run]]
mode = "sim"
protocols = ["steward", "pbft"]
topologies = ["a.toml"]
clients = [1, 5]
duration = "10s"
costs = "paper"
"#;

    fn err(text: &str) -> String {
        ExperimentSpec::from_toml_str(text, "x.toml")
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn a_sim_block_parses_with_defaults() {
        let s = ExperimentSpec::from_toml_str(OK, "x.toml").unwrap();
        let r = &s.runs[0];
        assert_eq!(r.mode, RunMode::Sim);
        assert_eq!(r.protocols, vec![Protocol::Steward, Protocol::Pbft]);
        assert_eq!((r.write_pct.clone(), r.batch.clone()), (vec![100], vec![1]));
        assert_eq!(r.warmup, Duration::from_secs(5));
        assert_eq!(
            (r.costs, r.seed, r.wan_queue_kib),
            (SimCosts::Paper, 1, 1024)
        );
    }

    #[test]
    fn errors_name_the_file_and_the_field() {
        assert_eq!(
            err(&OK.replace("[1, 5]", "[1, 0]")),
            "x.toml: run[0].clients: client counts must be positive"
        );
        assert!(err(&OK.replace("\"10s\"", "\"1e30s\"")).starts_with("x.toml: run[0].duration: "));
        assert!(err(&OK.replace("\"10s\"", "\"0s\"")).contains("must be positive"));
        assert!(err(&OK.replace("\"pbft\"", "\"raft\"")).starts_with("x.toml: run[0].protocols"));
        assert!(err(&OK.replace("costs", "cost")).starts_with("x.toml: line "));
        assert_eq!(err("name = \"t\""), "x.toml: no [[run]] blocks");
        assert!(err(&format!("{OK}wan = \"off\"\n")).contains("run[0].mode: wan applies"));
    }

    #[test]
    fn remote_blocks_need_a_deployment_and_an_inventory() {
        let remote = "name = \"t\"\n[[run]]\nmode = \"remote\"\nprotocols = [\"pbft\"]\nclients = [1]\nduration = \"5s\"\n";
        assert!(err(remote).contains("run[0].deployment"));
        let with_dep = format!("{remote}deployment = \"d\"\n");
        assert!(err(&with_dep).contains("run[0].inventory"));
        let full = format!("{with_dep}inventory = [\"i.yml\"]\n");
        let s = ExperimentSpec::from_toml_str(&full, "x.toml").unwrap();
        assert_eq!(s.runs[0].wan, WanShaping::Netem);
        assert!(s.runs[0].topologies.is_empty());
    }
}
