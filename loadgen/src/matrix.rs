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
//!
//! [[run]]                            # on real hosts (README "Real hosts")
//! mode = "remote"
//! deployment = "../deployments/lab"  # keygen + `loadgen inventory --deployment`
//! inventory = ["../deployments/lab-inventory/inventory.yml"]  # -i for ansible-playbook
//! protocols = ["steward", "pbft"]    # topologies: optional, must be the deployment's
//! clients = [1, 5, 10]
//! duration = "30s"
//! wan = "netem"                      # remote: netem | emulate | off (default netem)
//! ansible_dir = "../ansible"         # default: this checkout's ansible/
//! ```
//!
//! Remote points run grouped by deployment, protocol and batch: before each group the
//! stop playbook clears the hosts and the start playbook starts that protocol (with the
//! group's `wan` and `batch`); `loadgen run` then drives the clients for each point; after
//! the last group the stop playbook stops everything (also when a point fails). Playbook
//! output goes to `<out>/ansible/`.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Args;
use steward_config::spec::{ExperimentSpec, RunBlock, RunMode as Mode, SimCosts, WanShaping};
use steward_config::{Protocol, Topology};
use steward_runtime::WanMode;

use std::process::{Command, Stdio};

use crate::local::{self, LocalArgs};
use crate::protocols::ProtocolSelection;
use crate::remote::{self, RunArgs};
use crate::results;
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

/// Where a remote point runs: a deployment on hosts that an Ansible inventory names.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Remote {
    deployment: PathBuf,
    inventory: Vec<PathBuf>,
    ansible_dir: PathBuf,
}

/// One configuration of the sweep.
#[derive(Clone, Debug)]
struct Point {
    mode: Mode,
    protocol: Protocol,
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
    remote: Option<Remote>,
}

impl Point {
    /// The point's directory name; unique within a sweep.
    fn key(&self) -> String {
        let mode = self.mode.name();
        format!(
            "{mode}-{}-{}-c{}-w{}-b{}",
            self.protocol, self.topology_name, self.clients, self.write_pct, self.batch
        )
    }
}

/// Reads and checks a spec; errors name the file and the field. The format and every check
/// that needs no file system are `steward_config::spec`'s; here the files it names are read.
fn load_spec(path: &Path) -> Result<Vec<Point>> {
    let text = fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read the experiment spec", path.display()))?;
    let spec = ExperimentSpec::from_toml_str(&text, &path.display().to_string())?;
    let base = path.parent().unwrap_or(Path::new("."));
    let mut points = Vec::new();
    for (i, run) in spec.runs.iter().enumerate() {
        let at = |field: &str| format!("{}: run[{i}].{field}", path.display());
        let costs = match run.costs {
            SimCosts::Measured => Costs::Measured,
            SimCosts::Paper => Costs::Paper,
            SimCosts::Zero => Costs::Zero,
        };
        let wan = match run.wan {
            WanShaping::Emulate => WanMode::Emulate,
            WanShaping::Netem => WanMode::Netem,
            WanShaping::Off => WanMode::Off,
        };
        let remote = match (&run.deployment, run.mode) {
            (Some(deployment), Mode::Remote) => {
                Some(remote_of(run, base, &base.join(deployment), &at)?)
            }
            _ => None,
        };
        let topologies = match &remote {
            Some((_, t)) => t.clone(),
            None => {
                let mut v = Vec::new();
                for t in &run.topologies {
                    let file = base.join(t);
                    v.push((
                        file.clone(),
                        Topology::load(&file).with_context(|| at("topologies"))?,
                    ));
                }
                v
            }
        };
        for (file, topo) in &topologies {
            for &protocol in &run.protocols {
                for &clients in &run.clients {
                    for &write_pct in &run.write_pct {
                        for &batch in &run.batch {
                            points.push(Point {
                                mode: run.mode,
                                protocol,
                                topology: file.clone(),
                                topology_name: topo.name.clone(),
                                clients,
                                write_pct,
                                batch,
                                duration: run.duration,
                                warmup: run.warmup,
                                costs,
                                seed: run.seed,
                                wan_queue_kib: run.wan_queue_kib,
                                wan,
                                remote: remote.as_ref().map(|(r, _)| r.clone()),
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
    Ok(points)
}

/// A remote block's hosts and topologies: the inventory and Ansible files must exist, the
/// deployment must load, and the block's topologies (default: the deployment's) must be the
/// deployment's, with keys for every client count.
fn remote_of(
    run: &RunBlock,
    base: &Path,
    deployment: &Path,
    at: &dyn Fn(&str) -> String,
) -> Result<(Remote, Vec<(PathBuf, Topology)>)> {
    let deployment = deployment.to_path_buf();
    let inventory: Vec<PathBuf> = run.inventory.iter().map(|i| base.join(i)).collect();
    for i in &inventory {
        if !i.exists() {
            bail!("{}: {} does not exist", at("inventory"), i.display());
        }
    }
    let ansible_dir = match &run.ansible_dir {
        Some(d) => base.join(d),
        None => PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../ansible")),
    };
    if !ansible_dir.join("start.yml").exists() {
        bail!(
            "{}: {} holds no start.yml",
            at("ansible_dir"),
            ansible_dir.display()
        );
    }
    let dep = steward_deploy::Deployment::load(&deployment).with_context(|| at("deployment"))?;
    let topologies = if run.topologies.is_empty() {
        vec![(deployment.join("topology.toml"), dep.topology.clone())]
    } else {
        let mut v = Vec::new();
        for t in &run.topologies {
            let file = base.join(t);
            let topo = Topology::load(&file).with_context(|| at("topologies"))?;
            if topo != dep.topology {
                bail!(
                    "{}: {} is topology {}, but the deployment {} was generated for {}",
                    at("topologies"),
                    file.display(),
                    topo.name,
                    deployment.display(),
                    dep.topology.name
                );
            }
            v.push((file, topo));
        }
        v
    };
    if let Some(&max) = run.clients.iter().max() {
        if max > dep.manifest.clients {
            bail!(
                "{}: {max} clients, but the deployment {} has keys for {}",
                at("clients"),
                deployment.display(),
                dep.manifest.clients
            );
        }
    }
    Ok((
        Remote {
            deployment,
            inventory,
            ansible_dir,
        },
        topologies,
    ))
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
    // Every remote deployment's hosts, read with ansible-inventory (which also checks the
    // inventory before anything starts).
    let mut remotes: Vec<(Remote, serde_json::Value)> = Vec::new();
    for p in &points {
        if let Some(r) = &p.remote {
            if !remotes.iter().any(|(x, _)| x == r) {
                let hosts = ansible_hosts(r)?;
                remotes.push((r.clone(), hosts));
            }
        }
    }
    let mut started: Option<(Remote, Protocol, usize, WanMode)> = None;
    let mut playbook_runs = 0;
    let sweep = crate::progress::Sweep::new("matrix", total as u64, "points");
    let outcome = (|| -> Result<()> {
        for (i, p) in points.iter().enumerate() {
            let dir = points_dir.join(p.key());
            if is_done(&dir) {
                eprintln!("matrix: [{}/{total}] {} (done, skipped)", i + 1, p.key());
                sweep.item_done();
                continue;
            }
            eprintln!("matrix: [{}/{total}] {}", i + 1, p.key());
            sweep.begin(&p.key());
            if let Some(r) = &p.remote {
                let want = (r.clone(), p.protocol, p.batch, p.wan);
                if started.as_ref() != Some(&want) {
                    // Stop whatever runs (the other protocol, or leftovers), then start.
                    started = None;
                    playbook_runs += 1;
                    playbook(r, "stop.yml", &[], &a.out, playbook_runs)?;
                    playbook_runs += 1;
                    playbook(
                        r,
                        "start.yml",
                        &[
                            ("steward_protocol", p.protocol.to_string()),
                            ("steward_wan", p.wan.to_string()),
                            ("steward_batch", p.batch.to_string()),
                        ],
                        &a.out,
                        playbook_runs,
                    )?;
                    started = Some(want);
                }
            }
            // A half-written point from an interrupted run starts over.
            if dir.exists() {
                fs::remove_dir_all(&dir).with_context(|| format!("{}", dir.display()))?;
            }
            run_point(p, &dir).with_context(|| format!("point {}", p.key()))?;
            sweep.item_done();
        }
        Ok(())
    })();
    drop(sweep);
    if let Some((r, ..)) = &started {
        playbook_runs += 1;
        let stopped = playbook(r, "stop.yml", &[], &a.out, playbook_runs);
        if outcome.is_ok() {
            stopped?;
        } else if let Err(e) = stopped {
            eprintln!("matrix: {e:#}");
        }
    }
    outcome?;
    merge(&a.out, &points, &spec_text, &remotes)?;
    Ok(())
}

/// Runs `ansible-playbook <name>` of `r`'s ansible folder against its inventory, with `vars`
/// as extra variables; output in `<out>/ansible/<seq>-<name>.log`. A failure is an error that
/// quotes the failing hosts' lines (unreachable hosts, failed tasks).
fn playbook(r: &Remote, name: &str, vars: &[(&str, String)], out: &Path, seq: usize) -> Result<()> {
    let logs = out.join("ansible");
    fs::create_dir_all(&logs).with_context(|| format!("{}", logs.display()))?;
    let log_path = logs.join(format!("{seq:03}-{name}.log"));
    let log = fs::File::create(&log_path).with_context(|| format!("{}", log_path.display()))?;
    let mut cmd = Command::new("ansible-playbook");
    cmd.current_dir(&r.ansible_dir)
        .env("ANSIBLE_CONFIG", r.ansible_dir.join("ansible.cfg"))
        .env("ANSIBLE_NOCOLOR", "1");
    for i in &r.inventory {
        cmd.arg("-i")
            .arg(fs::canonicalize(i).unwrap_or_else(|_| i.clone()));
    }
    let dep = fs::canonicalize(&r.deployment).unwrap_or_else(|_| r.deployment.clone());
    cmd.arg("-e")
        .arg(format!("steward_local_deployment={}", dep.display()));
    for (k, v) in vars {
        cmd.arg("-e").arg(format!("{k}={v}"));
    }
    cmd.arg(name)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    eprintln!(
        "matrix: ansible-playbook {name} {}",
        vars.iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    let status = cmd.status().map_err(|e| {
        anyhow::anyhow!("cannot run ansible-playbook ({e}); install it: pip install -r ansible/requirements.txt")
    })?;
    if !status.success() {
        let text = fs::read_to_string(&log_path).unwrap_or_default();
        let why: Vec<&str> = text
            .lines()
            .filter(|l| {
                l.contains("UNREACHABLE!")
                    || l.starts_with("fatal:")
                    || l.contains("ERROR!")
                    || l.trim_start().starts_with("msg:")
            })
            .take(8)
            .collect();
        bail!(
            "ansible-playbook {name} failed ({status}): {}; full output in {}",
            if why.is_empty() {
                "see the log".to_string()
            } else {
                why.join(" | ")
            },
            log_path.display()
        );
    }
    Ok(())
}

/// The hosts of `r`'s inventory (name -> ansible_host, node_address, site, groups), from
/// `ansible-inventory --list`.
fn ansible_hosts(r: &Remote) -> Result<serde_json::Value> {
    let mut cmd = Command::new("ansible-inventory");
    cmd.env("ANSIBLE_CONFIG", r.ansible_dir.join("ansible.cfg"));
    for i in &r.inventory {
        cmd.arg("-i").arg(i);
    }
    let o = cmd.arg("--list").stdin(Stdio::null()).output().map_err(|e| {
        anyhow::anyhow!("cannot run ansible-inventory ({e}); install Ansible: pip install -r ansible/requirements.txt")
    })?;
    let files = r
        .inventory
        .iter()
        .map(|i| i.display().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    if !o.status.success() {
        bail!(
            "{files}: ansible-inventory failed: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        );
    }
    let v: serde_json::Value = serde_json::from_slice(&o.stdout)
        .with_context(|| format!("{files}: ansible-inventory printed no JSON"))?;
    let mut hosts = serde_json::Map::new();
    if let Some(hv) = v["_meta"]["hostvars"].as_object() {
        for (name, vars) in hv {
            hosts.insert(
                name.clone(),
                serde_json::json!({
                    "ansible_host": vars["ansible_host"],
                    "node_address": vars["node_address"],
                    "site": vars["site"],
                    "steward_nodes": vars["steward_nodes"].as_array().map(|a| a.len()).unwrap_or(0),
                    "pbft_nodes": vars["pbft_nodes"].as_array().map(|a| a.len()).unwrap_or(0),
                    "client_nodes": vars["client_nodes"].as_array().map(|a| a.len()).unwrap_or(0),
                }),
            );
        }
    }
    if hosts.is_empty() {
        bail!("{files}: the inventory names no hosts");
    }
    Ok(serde_json::json!({
        "deployment": r.deployment.display().to_string(),
        "inventory": r.inventory.iter().map(|i| i.display().to_string()).collect::<Vec<_>>(),
        "hosts": hosts,
    }))
}

fn run_point(p: &Point, dir: &Path) -> Result<()> {
    match p.mode {
        Mode::Sim => simulate::run(SimulateArgs {
            protocol: ProtocolSelection::from(p.protocol),
            topology: Some(p.topology.clone()),
            clients: vec![p.clients],
            duration: p.duration,
            warmup: p.warmup,
            seed: p.seed,
            costs: p.costs,
            crypto: CryptoArg::Fast,
            batch: p.batch,
            write_pct: p.write_pct,
            scenario: vec!["none".into()],
            list_scenarios: false,
            no_combine_deadline: false,
            no_forwarding: false,
            wan_queue_kib: p.wan_queue_kib,
            out: Some(dir.to_path_buf()),
        }),
        Mode::Local => local::run(LocalArgs {
            protocol: ProtocolSelection::from(p.protocol),
            topology: Some(p.topology.clone()),
            clients: vec![p.clients],
            duration: p.duration,
            warmup: p.warmup,
            write_pct: p.write_pct,
            batch: p.batch,
            wan: p.wan,
            out: Some(dir.to_path_buf()),
            kill: Vec::new(),
            restart: Vec::new(),
            no_data_dir: false,
            replica_threads: Default::default(),
        })
        .map(|_| ()),
        Mode::Remote => {
            let r = p
                .remote
                .as_ref()
                .expect("remote points carry their deployment");
            remote::run(RunArgs::new(
                r.deployment.clone(),
                p.protocol,
                vec![p.clients],
                p.duration,
                p.warmup,
                p.write_pct,
                p.batch,
                p.wan,
                dir.to_path_buf(),
            ))
        }
    }
}

/// Writes the sweep's summary.csv (union of the points' columns, in first-seen order), copies
/// the histograms and writes manifest.json.
fn merge(
    out: &Path,
    points: &[Point],
    spec_text: &str,
    remotes: &[(Remote, serde_json::Value)],
) -> Result<()> {
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
    let modes: BTreeSet<&str> = points.iter().map(|p| p.mode.name()).collect();
    let wan: BTreeSet<String> = points
        .iter()
        .filter(|p| p.mode == Mode::Remote)
        .map(|p| p.wan.to_string())
        .collect();
    let manifest = serde_json::json!({
        "command": "matrix",
        "mode": if modes.len() == 1 { modes.iter().next().copied().unwrap_or("mixed") } else { "mixed" },
        "spec": spec_text,
        "points": points.len(),
        "machine": results::environment(),
        "point_manifests": manifests,
        "remote": remotes.iter().map(|(_, v)| v.clone()).collect::<Vec<_>>(),
        "remote_shaping": wan,
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

    fn tiny_topology() -> String {
        crate::test_topology::text(
            "tiny",
            crate::test_topology::WAN_10MS,
            &[("a", "f = 1\nservers = 4"), ("b", "f = 1\nservers = 4")],
            r#"[clients]
weights = { a = 1 }
[pbft]
servers_per_site = { a = 2, b = 2 }
"#,
        )
    }

    #[test]
    fn spec_expands_to_the_cross_product() {
        let tmp = tempfile::tempdir().unwrap();
        write(tmp.path(), "t.toml", &tiny_topology());
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
        write(tmp.path(), "t.toml", &tiny_topology());
        for (text, needle) in [
            ("name = \"x\"\n[[run]]\nmode = \"cloud\"\nprotocols = [\"steward\"]\ntopologies = [\"t.toml\"]\nclients = [1]\nduration = \"1s\"\n", "run[0].mode"),
            ("name = \"x\"\n[[run]]\nmode = \"sim\"\nprotocols = [\"raft\"]\ntopologies = [\"t.toml\"]\nclients = [1]\nduration = \"1s\"\n", "run[0].protocols: unknown protocol \"raft\": expected steward or pbft"),
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

    #[test]
    fn remote_runs_check_deployment_inventory_and_topology() {
        let tmp = tempfile::tempdir().unwrap();
        let topo = write(tmp.path(), "t.toml", &tiny_topology());
        write(
            tmp.path(),
            "o.toml",
            &tiny_topology().replace("latency_ms = 10", "latency_ms = 20"),
        );
        let dep = tmp.path().join("dep");
        steward_deploy::generate(
            &topo,
            &dep,
            &steward_deploy::KeygenOptions {
                scheme: steward_crypto::signature::Scheme::Ed25519,
                threshold_bits: 1024,
                clients: 2,
                seed: Some(7),
                force: false,
            },
            &|_| {},
        )
        .unwrap();
        write(tmp.path(), "inv.yml", "all:\n  hosts:\n    h0:\n");
        let ansible = write(tmp.path(), "start.yml", "---\n");
        let ansible_dir = ansible.parent().unwrap().display().to_string();
        let head = format!("name = \"x\"\n[[run]]\nmode = \"remote\"\nprotocols = [\"steward\", \"pbft\"]\nclients = [1, 2]\nduration = \"1s\"\nansible_dir = \"{ansible_dir}\"\n");
        let ok = write(
            tmp.path(),
            "s.toml",
            &format!("{head}deployment = \"dep\"\ninventory = [\"inv.yml\"]\n"),
        );
        let points = load_spec(&ok).unwrap();
        assert_eq!(points.len(), 4);
        assert_eq!(points[0].key(), "remote-steward-tiny-c1-w100-b1");
        assert_eq!(points[3].key(), "remote-pbft-tiny-c2-w100-b1");
        assert!(points
            .iter()
            .all(|p| p.wan == WanMode::Netem && p.remote.as_ref().unwrap().deployment == dep));
        for (extra, needle) in [
            (
                "inventory = [\"inv.yml\"]\n",
                "run[0].deployment: remote runs need the deployment directory",
            ),
            (
                "deployment = \"dep\"\n",
                "run[0].inventory: remote runs need the Ansible inventory",
            ),
            (
                "deployment = \"dep\"\ninventory = [\"nope.yml\"]\n",
                "nope.yml does not exist",
            ),
            (
                "deployment = \"nodep\"\ninventory = [\"inv.yml\"]\n",
                "run[0].deployment",
            ),
            (
                "deployment = \"dep\"\ninventory = [\"inv.yml\"]\ntopologies = [\"o.toml\"]\n",
                "o.toml is topology tiny, but the deployment",
            ),
            (
                "deployment = \"dep\"\ninventory = [\"inv.yml\"]\nwan = \"tc\"\n",
                "run[0].wan: netem, emulate or off",
            ),
            (
                "deployment = \"dep\"\ninventory = [\"inv.yml\"]\nseed = 3\n",
                "sim runs only",
            ),
        ] {
            let spec = write(tmp.path(), "s.toml", &format!("{head}{extra}"));
            let err = format!("{:#}", load_spec(&spec).unwrap_err());
            assert!(err.contains(needle), "{needle}: {err}");
        }
        let many = write(
            tmp.path(),
            "s.toml",
            &format!("{head}deployment = \"dep\"\ninventory = [\"inv.yml\"]\n")
                .replace("[1, 2]", "[1, 3]"),
        );
        let err = format!("{:#}", load_spec(&many).unwrap_err());
        assert!(
            err.contains("run[0].clients: 3 clients, but the deployment"),
            "{err}"
        );
        let sim = write(tmp.path(), "s.toml", "name = \"x\"\n[[run]]\nmode = \"sim\"\nprotocols = [\"pbft\"]\ntopologies = [\"t.toml\"]\nclients = [1]\nduration = \"1s\"\ndeployment = \"dep\"\n");
        let err = format!("{:#}", load_spec(&sim).unwrap_err());
        assert!(err.contains("apply to remote runs only"), "{err}");
    }
}
