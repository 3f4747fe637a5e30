//! Loading results directories written by `loadgen simulate|local|matrix`.
//!
//! A results directory holds `manifest.json` (how and where the runs were made), `summary.csv`
//! (one row per configuration) and `hdr/<name>.hlog` (HDR latency logs). `summary.csv` is read
//! by column name: unknown columns are ignored, optional ones may be missing or empty. Errors
//! name the file, the line and the column.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use serde_json::Value;

use crate::experiment::{describe_emulation, mode_label, Experiment};

/// The machine a results directory was produced on, from its manifest.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Machine {
    /// CPU model name.
    pub cpu: Option<String>,
    /// Number of cores (hardware threads) available.
    pub cores: Option<u64>,
    /// Git revision of the checkout that made the runs.
    pub git_revision: Option<String>,
    /// Operating system.
    pub os: Option<String>,
}

impl Machine {
    /// "AMD EPYC, 2 cores", or "unknown machine".
    pub fn describe(&self) -> String {
        match (&self.cpu, self.cores) {
            (Some(cpu), Some(n)) => format!("{cpu}, {n} cores"),
            (Some(cpu), None) => cpu.clone(),
            (None, Some(n)) => format!("unknown CPU, {n} cores"),
            (None, None) => "unknown machine".into(),
        }
    }
}

/// What `manifest.json` says about a results directory. Unknown keys are ignored.
#[derive(Clone, Debug, Default)]
pub struct Manifest {
    /// The loadgen command that wrote the directory (`simulate`, `local`, `matrix`, ...).
    pub command: Option<String>,
    /// Top-level mode (`sim`, `local`, `remote`), if the manifest has one.
    pub mode: Option<String>,
    /// Free-text description of the WAN emulation.
    pub emulation: Option<String>,
    /// Crypto cost table of simulated runs.
    pub costs: Option<String>,
    /// The machine (from the `environment` or `machine` object).
    pub machine: Machine,
    /// The whole manifest, for keys this crate does not interpret.
    pub raw: Value,
}

impl Manifest {
    /// Parse the text of a manifest. `origin` names the file in error messages.
    pub fn parse(text: &str, origin: &str) -> Result<Manifest> {
        let raw: Value = serde_json::from_str(text).map_err(|e| {
            anyhow!(
                "{origin}: invalid JSON at line {}, column {}: {e}",
                e.line(),
                e.column()
            )
        })?;
        let Some(obj) = raw.as_object() else {
            bail!("{origin}: expected a JSON object at the top level");
        };
        let text_of = |v: Option<&Value>| -> Option<String> {
            match v? {
                Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            }
        };
        let mut machine = Machine::default();
        // `environment` is the documented key; loadgen also writes `machine`. Later sources only
        // fill fields still missing.
        for key in ["environment", "machine"] {
            if let Some(env) = obj.get(key).and_then(Value::as_object) {
                machine.cpu = machine.cpu.or_else(|| text_of(env.get("cpu")));
                machine.cores = machine.cores.or_else(|| cores_of(env.get("cores")));
                machine.git_revision = machine
                    .git_revision
                    .or_else(|| text_of(env.get("git_revision")));
                machine.os = machine.os.or_else(|| text_of(env.get("os")));
            }
        }
        machine.cpu = machine.cpu.or_else(|| text_of(obj.get("cpu")));
        machine.cores = machine.cores.or_else(|| cores_of(obj.get("cores")));
        machine.git_revision = machine
            .git_revision
            .or_else(|| text_of(obj.get("git_revision")));
        // A `loadgen matrix` manifest keeps each point's manifest under `point_manifests`;
        // without a top-level `emulation`, use the points' (distinct, in order).
        let emulation = text_of(obj.get("emulation")).or_else(|| {
            let mut seen: Vec<String> = Vec::new();
            for p in obj.get("point_manifests")?.as_array()? {
                if let Some(e) = text_of(p.get("manifest").and_then(|m| m.get("emulation"))) {
                    if !seen.contains(&e) {
                        seen.push(e);
                    }
                }
            }
            (!seen.is_empty()).then(|| seen.join("; "))
        });
        Ok(Manifest {
            command: text_of(obj.get("command")),
            mode: text_of(obj.get("mode")),
            emulation,
            costs: text_of(obj.get("costs")),
            machine,
            raw,
        })
    }
}

fn cores_of(v: Option<&Value>) -> Option<u64> {
    match v? {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// One results directory that contributed rows.
#[derive(Clone, Debug)]
pub struct Source {
    /// The directory as given.
    pub dir: PathBuf,
    /// Its manifest (default when the directory has none).
    pub manifest: Manifest,
    /// Whether `manifest.json` was present.
    pub has_manifest: bool,
    /// HDR logs in `hdr/`, by file stem.
    pub hdr_logs: BTreeMap<String, PathBuf>,
}

/// One row of `summary.csv`: one measured configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct Run {
    /// `steward` or `pbft` (other names are kept as given).
    pub protocol: String,
    /// `sim`, `local` or `remote`.
    pub mode: String,
    /// Topology name.
    pub topology: String,
    /// Closed-loop clients.
    pub clients: u32,
    /// Percentage of operations that are updates.
    pub write_pct: u32,
    /// Updates per proposal.
    pub batch: u32,
    /// Measurement window in seconds.
    pub duration_s: Option<f64>,
    /// Operations completed in the window.
    pub completed: Option<u64>,
    /// Operations per second.
    pub throughput_ops_s: f64,
    /// Mean latency (ms).
    pub lat_mean_ms: f64,
    /// Median latency (ms).
    pub lat_p50_ms: f64,
    /// 99th percentile latency (ms).
    pub lat_p99_ms: f64,
    /// Maximum latency (ms).
    pub lat_max_ms: f64,
    /// Physical lower bound of an update's latency (ms).
    pub lat_bound_ms: Option<f64>,
    /// WAN messages per completed update.
    pub wan_msgs_per_update: Option<f64>,
    /// WAN bytes per completed update.
    pub wan_bytes_per_update: Option<f64>,
    /// `ok` or the first safety violation (empty if the column is missing).
    pub safety: String,
    /// Seed of the run.
    pub seed: Option<u64>,
    /// Crypto cost table (`paper`, `measured`, `zero`, `real`, ...).
    pub costs: String,
    /// Wall-clock seconds the configuration took.
    pub wall_s: Option<f64>,
    /// Fault scenario (`none` without faults).
    pub scenario: String,
    /// Local view changes.
    pub local_view_changes: Option<u64>,
    /// Global view changes.
    pub global_view_changes: Option<u64>,
    /// Fault-to-recovery time (ms).
    pub recovery_ms: Option<f64>,
    /// Throughput of the same configuration without the attack (ops/s); attack rows of
    /// `loadgen simulate --scenario attacks` only.
    pub reference_ops_s: Option<f64>,
    /// Throughput under attack ÷ [`Run::reference_ops_s`]; attack rows only.
    pub attack_ratio: Option<f64>,
    /// CPU time per update (local runs).
    pub cpu_ms_per_update: Option<f64>,
    /// Local runs: the host's cores were at least 85% busy in the window, so the point measures
    /// the host's CPU rather than the emulated WAN (`cpu_bound` column; `None` without it).
    pub cpu_bound: Option<bool>,
    /// Index of the [`Source`] in [`ResultSet::sources`].
    pub source: usize,
    /// Line of `summary.csv` the row came from.
    pub line: u64,
    /// HDR log matching this row, if one was found.
    pub hdr_log: Option<PathBuf>,
}

impl Run {
    /// The paper experiment of this run's topology.
    pub fn experiment(&self) -> Experiment {
        Experiment::from_topology(&self.topology)
    }

    /// Mode label (`sim/paper`, `local`, ...), see [`mode_label`].
    pub fn mode_label(&self) -> String {
        mode_label(&self.mode, &self.costs)
    }

    /// Fault-free run with the paper's batching (1): the runs the paper's figures compare to.
    pub fn is_paper_like(&self) -> bool {
        self.batch == 1 && (self.scenario.is_empty() || self.scenario == "none")
    }

    /// Configuration key used by `compare`: protocol, mode, topology, clients, write_pct,
    /// batch, scenario.
    pub fn config_key(&self) -> ConfigKey {
        ConfigKey {
            protocol: self.protocol.clone(),
            mode: self.mode.clone(),
            topology: self.topology.clone(),
            clients: self.clients,
            write_pct: self.write_pct,
            batch: self.batch,
            scenario: self.scenario.clone(),
        }
    }

    /// Names this row's HDR log may have (without `.hlog`), most specific first:
    /// `<protocol>-<topology>-c<clients>-w<write_pct>-b<batch>-<mode>` (local/remote runs) and
    /// the same without the mode suffix (simulated runs).
    pub fn hdr_names(&self) -> Vec<String> {
        let base = format!(
            "{}-{}-c{}-w{}-b{}",
            self.protocol, self.topology, self.clients, self.write_pct, self.batch
        );
        vec![format!("{base}-{}", self.mode), base]
    }
}

/// The key of one configuration, for comparisons between results directories.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConfigKey {
    /// Protocol.
    pub protocol: String,
    /// Mode.
    pub mode: String,
    /// Topology name.
    pub topology: String,
    /// Clients.
    pub clients: u32,
    /// Write percentage.
    pub write_pct: u32,
    /// Batch size.
    pub batch: u32,
    /// Fault scenario.
    pub scenario: String,
}

impl std::fmt::Display for ConfigKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} {} clients={} write={}% batch={} scenario={}",
            self.protocol,
            self.mode,
            self.topology,
            self.clients,
            self.write_pct,
            self.batch,
            self.scenario
        )
    }
}

/// Rows of one or more results directories, merged.
#[derive(Clone, Debug, Default)]
pub struct ResultSet {
    /// The directories, in the order given.
    pub sources: Vec<Source>,
    /// All rows. When two directories hold the same configuration (same key, mode and costs),
    /// the later directory's row is kept.
    pub runs: Vec<Run>,
    /// Things worth telling the reader (missing manifest, replaced rows, unmatched logs).
    pub warnings: Vec<String>,
}

impl ResultSet {
    /// The source of a run (`None` if the run's index names no source).
    pub fn source(&self, run: &Run) -> Option<&Source> {
        self.sources.get(run.source)
    }

    /// Emulation description of a run, e.g. "simulated, paper costs".
    pub fn emulation(&self, run: &Run) -> String {
        describe_emulation(
            &run.mode,
            &run.costs,
            self.source(run)
                .and_then(|s| s.manifest.emulation.as_deref()),
        )
    }

    /// Machine description of a run, e.g. "AMD EPYC, 2 cores".
    pub fn machine(&self, run: &Run) -> String {
        self.source(run)
            .map(|s| s.manifest.machine.describe())
            .unwrap_or_else(|| Machine::default().describe())
    }
}

/// Columns `summary.csv` must have.
pub const REQUIRED_COLUMNS: [&str; 11] = [
    "protocol",
    "mode",
    "topology",
    "clients",
    "write_pct",
    "batch",
    "throughput_ops_s",
    "lat_mean_ms",
    "lat_p50_ms",
    "lat_p99_ms",
    "lat_max_ms",
];

/// Load several results directories and merge their rows.
pub fn load_dirs<P: AsRef<Path>>(dirs: &[P]) -> Result<ResultSet> {
    let mut set = ResultSet::default();
    for d in dirs {
        let one = load_dir(d.as_ref())?;
        merge(&mut set, one);
    }
    Ok(set)
}

fn merge(set: &mut ResultSet, one: ResultSet) {
    let offset = set.sources.len();
    set.sources.extend(one.sources);
    set.warnings.extend(one.warnings);
    for mut run in one.runs {
        run.source += offset;
        let key = (run.config_key(), run.costs.clone());
        if let Some(old) = set
            .runs
            .iter_mut()
            .find(|r| (r.config_key(), r.costs.clone()) == key)
        {
            set.warnings.push(format!(
                "{} ({}) appears in both {} and {}; using the latter",
                key.0,
                key.1,
                set.sources[old.source].dir.display(),
                set.sources[run.source].dir.display()
            ));
            *old = run;
        } else {
            set.runs.push(run);
        }
    }
}

/// Load one results directory. A directory without its own `summary.csv` is searched for
/// results directories below it (up to two levels, e.g. the `points/<name>/` directories of a
/// `loadgen matrix` run), each of which becomes a source of its own.
pub fn load_dir(dir: &Path) -> Result<ResultSet> {
    if !dir.is_dir() {
        bail!("{}: not a directory", dir.display());
    }
    if dir.join("summary.csv").is_file() {
        return load_single(dir);
    }
    let mut found = Vec::new();
    find_result_dirs(dir, 0, &mut found);
    found.sort();
    if found.is_empty() {
        bail!(
            "{}: no summary.csv in this directory or in its subdirectories",
            dir.display()
        );
    }
    let mut set = ResultSet::default();
    for d in found {
        merge(&mut set, load_single(&d)?);
    }
    Ok(set)
}

/// The directories with a `summary.csv` directly below `dir` or one level further down.
fn find_result_dirs(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) {
    walk(dir, depth, 1, &mut |p, is_dir| {
        let results = is_dir && p.join("summary.csv").is_file();
        if results {
            out.push(p.to_path_buf());
        }
        is_dir && !results
    });
}

/// Visits the entries of `dir` (`depth` directories below where the walk began) and, while
/// `depth` is at most `max_depth`, of the directories `visit` asks to descend into: `visit`
/// gets each entry's path and whether it is a directory. Unreadable directories are passed
/// over.
pub(crate) fn walk(
    dir: &Path,
    depth: usize,
    max_depth: usize,
    visit: &mut dyn FnMut(&Path, bool) -> bool,
) {
    if depth > max_depth {
        return;
    }
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        let is_dir = p.is_dir();
        if visit(&p, is_dir) {
            walk(&p, depth + 1, max_depth, visit);
        }
    }
}

/// Load a directory that has its own `summary.csv`.
fn load_single(dir: &Path) -> Result<ResultSet> {
    let mut warnings = Vec::new();
    let manifest_path = dir.join("manifest.json");
    let (manifest, has_manifest) = if manifest_path.is_file() {
        let text = fs::read_to_string(&manifest_path)
            .with_context(|| format!("{}: cannot read", manifest_path.display()))?;
        (
            Manifest::parse(&text, &manifest_path.display().to_string())?,
            true,
        )
    } else {
        warnings.push(format!(
            "{}: no manifest.json; machine and emulation unknown",
            dir.display()
        ));
        (Manifest::default(), false)
    };
    let summary_path = dir.join("summary.csv");
    if !summary_path.is_file() {
        bail!("{}: no summary.csv in this directory", dir.display());
    }
    let text = fs::read_to_string(&summary_path)
        .with_context(|| format!("{}: cannot read", summary_path.display()))?;
    let mut runs = parse_summary(&text, &summary_path.display().to_string())?;
    if runs.is_empty() {
        warnings.push(format!("{}: no rows", summary_path.display()));
    }
    // HDR logs in `hdr/`, and in the `hdr/` of subdirectories (a merged matrix summary may
    // leave the logs with its points).
    let mut hdr_logs = BTreeMap::new();
    if let Ok(entries) = fs::read_dir(dir) {
        let mut subs: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_dir() && p.file_name() != Some("hdr".as_ref()))
            .collect();
        subs.sort();
        for sub in subs {
            for (name, path) in list_hdr_logs(&sub.join("hdr"))? {
                hdr_logs.entry(name).or_insert(path);
            }
            if let Ok(inner) = fs::read_dir(&sub) {
                let mut deeper: Vec<PathBuf> = inner
                    .flatten()
                    .map(|e| e.path())
                    .filter(|p| p.join("hdr").is_dir())
                    .collect();
                deeper.sort();
                for d in deeper {
                    for (name, path) in list_hdr_logs(&d.join("hdr"))? {
                        hdr_logs.entry(name).or_insert(path);
                    }
                }
            }
        }
    }
    // The directory's own logs take precedence.
    hdr_logs.extend(list_hdr_logs(&dir.join("hdr"))?);
    attach_hdr_logs(&mut runs, &hdr_logs, dir, &mut warnings);
    Ok(ResultSet {
        sources: vec![Source {
            dir: dir.to_path_buf(),
            manifest,
            has_manifest,
            hdr_logs,
        }],
        runs,
        warnings,
    })
}

fn list_hdr_logs(hdr_dir: &Path) -> Result<BTreeMap<String, PathBuf>> {
    let mut logs = BTreeMap::new();
    if !hdr_dir.is_dir() {
        return Ok(logs);
    }
    let entries =
        fs::read_dir(hdr_dir).with_context(|| format!("{}: cannot list", hdr_dir.display()))?;
    for e in entries {
        let path = e
            .with_context(|| format!("{}: cannot list", hdr_dir.display()))?
            .path();
        if path.extension().and_then(|x| x.to_str()) == Some("hlog") {
            if let Some(stem) = path.file_stem().and_then(|s| s.to_str()) {
                logs.insert(stem.to_string(), path.clone());
            }
        }
    }
    Ok(logs)
}

/// Attach to each row the HDR log named after it. A log name that more than one row of the
/// directory maps to (e.g. the same configuration under two fault scenarios) is ambiguous and
/// attached to none of them.
fn attach_hdr_logs(
    runs: &mut [Run],
    logs: &BTreeMap<String, PathBuf>,
    dir: &Path,
    warnings: &mut Vec<String>,
) {
    let chosen: Vec<Option<String>> = runs
        .iter()
        .map(|r| r.hdr_names().into_iter().find(|n| logs.contains_key(n)))
        .collect();
    let mut uses: HashMap<&str, usize> = HashMap::new();
    for n in chosen.iter().flatten() {
        *uses.entry(n.as_str()).or_default() += 1;
    }
    for (run, name) in runs.iter_mut().zip(&chosen) {
        match name {
            Some(n) if uses[n.as_str()] == 1 => run.hdr_log = Some(logs[n].clone()),
            Some(n) => warnings.push(format!(
                "{}: hdr/{n}.hlog matches {} rows (line {} among them); not used for them",
                dir.display(),
                uses[n.as_str()],
                run.line
            )),
            None => {}
        }
    }
    let used: std::collections::HashSet<&String> = chosen.iter().flatten().collect();
    for name in logs.keys().filter(|n| !used.contains(n)) {
        warnings.push(format!(
            "{}: hdr/{name}.hlog matches no row of summary.csv",
            dir.display()
        ));
    }
}

/// Parse the text of a `summary.csv`. `origin` names the file in error messages. Rows get
/// `source` 0; [`load_dirs`] renumbers them.
pub fn parse_summary(text: &str, origin: &str) -> Result<Vec<Run>> {
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let headers = rdr
        .headers()
        .map_err(|e| anyhow!("{origin}: cannot read the header line: {e}"))?
        .clone();
    if headers.iter().all(|h| h.is_empty()) {
        bail!("{origin}: empty file (expected a header line)");
    }
    let mut col: HashMap<&str, usize> = HashMap::new();
    for (i, h) in headers.iter().enumerate() {
        col.entry(h).or_insert(i);
    }
    let missing: Vec<&str> = REQUIRED_COLUMNS
        .iter()
        .copied()
        .filter(|c| !col.contains_key(c))
        .collect();
    if !missing.is_empty() {
        bail!(
            "{origin}: line 1: missing required column(s): {}",
            missing.join(", ")
        );
    }
    let mut runs = Vec::new();
    for rec in rdr.records() {
        let rec = rec.map_err(|e| match e.position() {
            Some(p) => anyhow!("{origin}: line {}: {}", p.line(), csv_error_text(&e)),
            None => anyhow!("{origin}: {e}"),
        })?;
        let line = rec.position().map(|p| p.line()).unwrap_or(0);
        if rec.iter().all(|f| f.is_empty()) {
            continue;
        }
        let f = Fields {
            rec: &rec,
            col: &col,
            origin,
            line,
        };
        runs.push(Run {
            protocol: f.text_req("protocol")?,
            mode: f.text_req("mode")?,
            topology: f.text_req("topology")?,
            clients: f.int_req("clients")?,
            write_pct: f.pct_req("write_pct")?,
            batch: f.int_req("batch")?,
            duration_s: f.float_opt("duration_s")?,
            completed: f.uint_opt("completed")?,
            throughput_ops_s: f.float_req("throughput_ops_s")?,
            lat_mean_ms: f.float_req("lat_mean_ms")?,
            lat_p50_ms: f.float_req("lat_p50_ms")?,
            lat_p99_ms: f.float_req("lat_p99_ms")?,
            lat_max_ms: f.float_req("lat_max_ms")?,
            lat_bound_ms: f.float_opt("lat_bound_ms")?,
            wan_msgs_per_update: f.float_opt("wan_msgs_per_update")?,
            wan_bytes_per_update: f.float_opt("wan_bytes_per_update")?,
            safety: f.text_opt("safety").unwrap_or_default(),
            seed: f.uint_opt("seed")?,
            costs: f.text_opt("costs").unwrap_or_default(),
            wall_s: f.float_opt("wall_s")?,
            scenario: f.text_opt("scenario").unwrap_or_else(|| "none".into()),
            local_view_changes: f.uint_opt("local_view_changes")?,
            global_view_changes: f.uint_opt("global_view_changes")?,
            recovery_ms: f.float_opt("recovery_ms")?,
            reference_ops_s: f.float_opt("reference_ops_s")?,
            attack_ratio: f.float_opt("attack_ratio")?,
            cpu_ms_per_update: f.float_opt("cpu_ms_per_update")?,
            cpu_bound: f.text_opt("cpu_bound").map(|v| v == "true"),
            source: 0,
            line,
            hdr_log: None,
        });
    }
    Ok(runs)
}

fn csv_error_text(e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => format!("has {len} fields but the header has {expected_len}"),
        _ => e.to_string(),
    }
}

/// Typed access to one record's fields, with errors naming file, line and column.
struct Fields<'a> {
    rec: &'a csv::StringRecord,
    col: &'a HashMap<&'a str, usize>,
    origin: &'a str,
    line: u64,
}

impl Fields<'_> {
    fn raw(&self, name: &str) -> Option<&str> {
        self.col
            .get(name)
            .and_then(|&i| self.rec.get(i))
            .filter(|s| !s.is_empty())
    }

    fn err(&self, name: &str, what: &str) -> anyhow::Error {
        anyhow!(
            "{}: line {}: column `{name}`: {what}",
            self.origin,
            self.line
        )
    }

    fn text_req(&self, name: &str) -> Result<String> {
        self.raw(name)
            .map(str::to_string)
            .ok_or_else(|| self.err(name, "empty, but a value is required"))
    }

    fn text_opt(&self, name: &str) -> Option<String> {
        self.raw(name).map(str::to_string)
    }

    fn int_req(&self, name: &str) -> Result<u32> {
        let s = self
            .raw(name)
            .ok_or_else(|| self.err(name, "empty, but a value is required"))?;
        s.parse::<u32>()
            .map_err(|_| self.err(name, &format!("{s:?} is not a non-negative integer")))
    }

    fn pct_req(&self, name: &str) -> Result<u32> {
        let v = self.int_req(name)?;
        if v > 100 {
            return Err(self.err(name, &format!("{v} is not a percentage (0..=100)")));
        }
        Ok(v)
    }

    fn uint_opt(&self, name: &str) -> Result<Option<u64>> {
        match self.raw(name) {
            None => Ok(None),
            Some(s) => s
                .parse::<u64>()
                .map(Some)
                .map_err(|_| self.err(name, &format!("{s:?} is not a non-negative integer"))),
        }
    }

    fn float_req(&self, name: &str) -> Result<f64> {
        let s = self
            .raw(name)
            .ok_or_else(|| self.err(name, "empty, but a value is required"))?;
        match s.parse::<f64>() {
            Ok(v) if v.is_finite() => Ok(v),
            _ => Err(self.err(name, &format!("{s:?} is not a finite number"))),
        }
    }

    /// Empty, missing, NaN and infinite values all read as "no value".
    fn float_opt(&self, name: &str) -> Result<Option<f64>> {
        match self.raw(name) {
            None => Ok(None),
            Some(s) => s
                .parse::<f64>()
                .map(|v| v.is_finite().then_some(v))
                .map_err(|_| self.err(name, &format!("{s:?} is not a number"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "protocol,mode,topology,clients,write_pct,batch,duration_s,completed,throughput_ops_s,lat_mean_ms,lat_p50_ms,lat_p99_ms,lat_max_ms,lat_bound_ms,wan_msgs_per_update,wan_bytes_per_update,safety,seed,costs,wall_s,scenario,local_view_changes,global_view_changes,recovery_ms";

    #[test]
    fn parses_rows_by_header_name() {
        let text = format!(
            "{HEADER}\nsteward,sim,paper-symmetric-10mbps,1,100,1,10.0,74,7.4,135.488,135.551,135.551,135.551,100.3,20.0,5172.0,ok,1,paper,0.2,none,0,0,\n"
        );
        let runs = parse_summary(&text, "x/summary.csv").unwrap();
        assert_eq!(runs.len(), 1);
        let r = &runs[0];
        assert_eq!(r.protocol, "steward");
        assert_eq!(r.clients, 1);
        assert_eq!(r.throughput_ops_s, 7.4);
        assert_eq!(r.recovery_ms, None);
        assert_eq!((r.reference_ops_s, r.attack_ratio), (None, None));
        assert_eq!(r.cpu_ms_per_update, None);
        assert_eq!(r.line, 2);
        assert_eq!(r.mode_label(), "sim/paper");
        assert_eq!(
            r.hdr_names(),
            vec![
                "steward-paper-symmetric-10mbps-c1-w100-b1-sim".to_string(),
                "steward-paper-symmetric-10mbps-c1-w100-b1".to_string()
            ]
        );
    }

    #[test]
    fn reads_the_attack_reference_and_ratio() {
        let text = format!(
            "{HEADER},reference_ops_s,attack_ratio\n\
             steward,sim,local-symmetric-10mbps,8,100,1,20.0,1525,76.25,104.87,104.831,105.343,107.007,100.3,19.69,5127.4,ok,1,measured,1.11,byzantine-mix,3,0,108.57,76.7,0.9941\n\
             steward,sim,local-symmetric-10mbps,8,100,1,20.0,1534,76.7,104.2,104.1,105.0,106.0,100.3,19.69,5127.4,ok,1,measured,1.10,none,0,0,,,\n"
        );
        let runs = parse_summary(&text, "s.csv").unwrap();
        assert_eq!(runs[0].scenario, "byzantine-mix");
        assert_eq!(runs[0].reference_ops_s, Some(76.7));
        assert_eq!(runs[0].attack_ratio, Some(0.9941));
        assert_eq!(runs[0].recovery_ms, Some(108.57));
        assert_eq!(
            (runs[1].reference_ops_s, runs[1].attack_ratio),
            (None, None)
        );
    }

    #[test]
    fn tolerates_reordered_extra_and_missing_optional_columns() {
        let text = "extra,lat_max_ms,lat_p99_ms,lat_p50_ms,lat_mean_ms,throughput_ops_s,batch,write_pct,clients,topology,mode,protocol,cpu_ms_per_update\n\
                    zzz,9,8,7,6.5,50,1,100,5,local-symmetric-10mbps,local,steward,NaN\n\
                    ,9,8,7,6.5,51,1,100,6,local-symmetric-10mbps,local,steward,0.5\n";
        let runs = parse_summary(text, "s.csv").unwrap();
        assert_eq!(runs.len(), 2);
        assert_eq!(runs[0].cpu_ms_per_update, None);
        assert_eq!(runs[1].cpu_ms_per_update, Some(0.5));
        assert_eq!(runs[0].scenario, "none");
        assert_eq!(runs[0].costs, "");
        assert_eq!(runs[1].lat_mean_ms, 6.5);
    }

    #[test]
    fn malformed_rows_name_file_line_and_column() {
        let text = format!(
            "{HEADER}\nsteward,sim,t,1,100,1,10.0,74,7.4,1,1,1,1,1,1,1,ok,1,paper,0.2,none,0,0,\n\
             steward,sim,t,two,100,1,10.0,74,7.4,1,1,1,1,1,1,1,ok,1,paper,0.2,none,0,0,\n"
        );
        let e = parse_summary(&text, "dir/summary.csv")
            .unwrap_err()
            .to_string();
        assert!(e.contains("dir/summary.csv"), "{e}");
        assert!(e.contains("line 3"), "{e}");
        assert!(e.contains("`clients`"), "{e}");

        let text = format!(
            "{HEADER}\nsteward,sim,t,1,100,1,10.0,74,fast,1,1,1,1,1,1,1,ok,1,paper,0.2,none,0,0,\n"
        );
        let e = parse_summary(&text, "s.csv").unwrap_err().to_string();
        assert!(
            e.contains("`throughput_ops_s`") && e.contains("\"fast\""),
            "{e}"
        );

        let text = format!(
            "{HEADER}\nsteward,sim,t,1,140,1,10.0,74,1,1,1,1,1,1,1,1,ok,1,paper,0.2,none,0,0,\n"
        );
        let e = parse_summary(&text, "s.csv").unwrap_err().to_string();
        assert!(e.contains("`write_pct`") && e.contains("percentage"), "{e}");

        let text = format!("{HEADER}\nsteward,sim,t,1,100\n");
        let e = parse_summary(&text, "s.csv").unwrap_err().to_string();
        assert!(e.contains("line 2") && e.contains("fields"), "{e}");

        let e = parse_summary("protocol,mode\nsteward,sim\n", "s.csv")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("missing required column") && e.contains("topology"),
            "{e}"
        );

        let e = parse_summary("", "s.csv").unwrap_err().to_string();
        assert!(e.contains("s.csv"), "{e}");
    }

    #[test]
    fn manifests_are_read_leniently() {
        let m = Manifest::parse(
            r#"{"mode":"local","emulation":"userspace shaper","machine":{"cpu":"AMD EPYC","cores":2,"git_revision":null},"future":{"x":1}}"#,
            "m.json",
        )
        .unwrap();
        assert_eq!(m.machine.describe(), "AMD EPYC, 2 cores");
        assert_eq!(m.machine.git_revision, None);
        assert_eq!(m.mode.as_deref(), Some("local"));
        let m = Manifest::parse(
            r#"{"environment":{"cpu":"Xeon","cores":"16","git_revision":"abc"}}"#,
            "m.json",
        )
        .unwrap();
        assert_eq!(m.machine.describe(), "Xeon, 16 cores");
        assert_eq!(m.machine.git_revision.as_deref(), Some("abc"));
        let e = Manifest::parse("{\n  \"mode\": ", "dir/manifest.json")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("dir/manifest.json") && e.contains("line 2"),
            "{e}"
        );
        let m = Manifest::parse(
            r#"{"command":"matrix","point_manifests":[{"point":"a","manifest":{"emulation":"userspace shaper"}},{"point":"b","manifest":{"emulation":"userspace shaper"}}]}"#,
            "m.json",
        )
        .unwrap();
        assert_eq!(m.emulation.as_deref(), Some("userspace shaper"));
        let e = Manifest::parse("[1]", "m.json").unwrap_err().to_string();
        assert!(e.contains("object"), "{e}");
        assert_eq!(
            Manifest::default().machine.describe(),
            "unknown machine".to_string()
        );
    }
}
