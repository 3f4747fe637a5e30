//! `loadgen local`: a real cluster on this machine. Every replica is its own process (this
//! very program, run as `loadgen replica`) on a 127.0.0.x address, the closed-loop clients run
//! here, and the WAN is emulated in userspace (`--wan emulate`) or not at all (`--wan off`).
//! Writes the same results directory as `simulate` (mode = local), with more columns:
//! `cpu_ms_per_update`, `replica_cpu_util`, `host_cpu_util` and `cpu_bound` (see
//! [`crate::host_cpu`]). Without options it runs the embedded default: Steward and PBFT on
//! `local-symmetric-10mbps.toml` with 1, 5, 10 and 20 clients. Every replica serves live
//! metrics (`--metrics 127.0.0.1:0`), scraped once a second into `timeseries.csv`; the faults
//! go to `events.csv` (see [`crate::timeseries`]).

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Args;
use steward_config::Topology;
use steward_crypto::signature::Scheme;
use steward_deploy::{write_addresses, Addresses, Deployment, KeygenOptions, Layout};
use steward_runtime::{process_cpu_time, protocol_replicas, NodeKind, Protocol, Threads, WanMode};

use crate::clients::{self, Window};
use crate::host_cpu::{share_of_cores, HostCpu, CPU_BOUND_UTIL};
use crate::protocols::ProtocolSelection;
use crate::results::{self, parse_duration, Row};
use crate::timeseries;

/// The default topology of `loadgen local` (topologies/local-symmetric-10mbps.toml).
const DEFAULT_TOPOLOGY: &str = include_str!("../../topologies/local-symmetric-10mbps.toml");

/// Arguments of `loadgen local`.
#[derive(Args, Debug, Clone)]
pub struct LocalArgs {
    /// Protocol(s) to run.
    #[arg(long, value_enum, default_value = "both")]
    pub protocol: ProtocolSelection,
    /// Topology file (default: the embedded local-symmetric-10mbps.toml).
    #[arg(long)]
    pub topology: Option<PathBuf>,
    /// Client counts to sweep, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,5,10,20")]
    pub clients: Vec<u32>,
    /// Measured wall-clock time per configuration (after the warm-up).
    #[arg(long, default_value = "15s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Warm-up excluded from measurements.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub warmup: Duration,
    /// Percentage of operations that are updates.
    #[arg(long, default_value_t = 100)]
    pub write_pct: u32,
    /// Updates per Proposal / pre-prepare.
    #[arg(long, default_value_t = 1)]
    pub batch: usize,
    /// WAN emulation: emulate (userspace shaper from the topology) or off.
    #[arg(long, default_value = "emulate")]
    pub wan: WanMode,
    /// Results directory (keys go to <out>/deployment, replica logs to <out>/logs; default
    /// results/local-<unix time>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Fault injection: SIGKILL a replica at a time after the warm-up, e.g. `s0.0@5s`
    /// (Steward server) or `r0@5s` (PBFT replica); comma-separated, each applies to the
    /// protocol that has that replica. The row's recovery_ms is the time from the kill to the
    /// completion of the first operation issued after it.
    #[arg(long, value_parser = parse_kill, value_delimiter = ',')]
    pub kill: Vec<Kill>,
    /// Fault injection: SIGKILL a replica at a time after the warm-up and start it again (same
    /// durable log, same address) after a downtime, e.g. `s0.1@5s+2s` or `r1@5s+2s`;
    /// comma-separated like --kill (a protocol takes one --kill or --restart). The row's
    /// recovery_ms is the time from the restart to the completion of the first operation issued
    /// after it.
    #[arg(long, value_parser = parse_restart, value_delimiter = ',')]
    pub restart: Vec<Kill>,
    /// Run the replicas without a durable log (no --data-dir; their durable writes are dropped).
    /// By default each replica logs to <out>/data/<protocol>-c<clients>/, emptied at the start
    /// of each configuration.
    #[arg(long)]
    pub no_data_dir: bool,
    /// How each replica process uses threads (its `--threads`): `one` (the protocol core and
    /// the transport on one thread) or `split` (the core on a thread of its own, the transport
    /// on two workers; the layout before 2026-12, kept for A/B comparisons and for replicas
    /// that have a host to themselves).
    #[arg(long, value_enum, default_value_t = Threads::One)]
    pub replica_threads: Threads,
}

/// A replica's `--id`: `s<site>.<i>` or `r<i>`.
fn replica_arg(node: NodeKind) -> String {
    match node {
        NodeKind::Server(s) => s.to_string(),
        NodeKind::Pbft(r) => format!("r{r}"),
        NodeKind::Client(c) => format!("client-{c}"),
    }
}

/// A replica to kill (and perhaps restart) during the measurement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Kill {
    /// `s<site>.<i>` or `r<i>`.
    pub replica: String,
    /// After the start of the measurement window.
    pub at: Duration,
    /// Start it again this long after the kill (`--restart`).
    pub restart_after: Option<Duration>,
}

impl Kill {
    /// The row's scenario label: `kill-s0.0@5s` or `restart-s0.1@5s+2s`.
    fn label(&self) -> String {
        match self.restart_after {
            None => format!("kill-{}@{}s", self.replica, self.at.as_secs_f64()),
            Some(d) => format!(
                "restart-{}@{}s+{}s",
                self.replica,
                self.at.as_secs_f64(),
                d.as_secs_f64()
            ),
        }
    }
}

/// `<replica>@<time>+<downtime>`, e.g. `s0.1@5s+2s`.
fn parse_restart(s: &str) -> Result<Kill, String> {
    let (kill, down) = s.rsplit_once('+').ok_or_else(|| {
        format!("expected <replica>@<time>+<downtime>, e.g. s0.1@5s+2s, got {s:?}")
    })?;
    let mut k = parse_kill(kill)?;
    k.restart_after = Some(parse_duration(down)?);
    Ok(k)
}

fn parse_kill(s: &str) -> Result<Kill, String> {
    let (replica, at) = s
        .split_once('@')
        .ok_or_else(|| format!("expected <replica>@<time>, e.g. s0.0@5s, got {s:?}"))?;
    let known = steward_config::ServerId::parse(replica).is_ok()
        || replica.strip_prefix('r').is_some_and(|d| {
            matches!(
                NodeKind::parse(&format!("pbft-r{d}")),
                Some(NodeKind::Pbft(_))
            )
        });
    if !known {
        return Err(format!("{replica:?} is neither s<site>.<i> nor r<i>"));
    }
    Ok(Kill {
        replica: replica.to_string(),
        at: parse_duration(at)?,
        restart_after: None,
    })
}

/// Run `loadgen local`; returns the rows it wrote.
pub fn run(a: LocalArgs) -> Result<Vec<Row>> {
    if a.write_pct > 100 {
        bail!("--write-pct must be 0..=100, got {}", a.write_pct);
    }
    if a.batch == 0 {
        bail!("--batch must be at least 1");
    }
    if a.clients.is_empty() || a.clients.contains(&0) {
        bail!("--clients needs positive counts, e.g. 1,5");
    }
    if a.duration.is_zero() {
        bail!("--duration must be positive");
    }
    if a.wan == WanMode::Netem {
        bail!("--wan netem needs tc-shaped hosts; local runs take emulate or off");
    }
    // From here on SIGINT is ours (tokio replaces the default action for the whole process),
    // so it is watched for the whole run, not only inside measurement windows: a Ctrl-C at any
    // point stops the replicas and ends the run with an error.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")?;
    let interrupt = Interrupt::install(&rt)?;
    let out = a.out.clone().unwrap_or_else(|| {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        PathBuf::from(format!("results/local-{t}"))
    });
    fs::create_dir_all(&out).with_context(|| format!("{}", out.display()))?;
    let topology_file = match &a.topology {
        Some(p) => p.clone(),
        None => {
            let p = out.join("topology.toml");
            fs::write(&p, DEFAULT_TOPOLOGY).with_context(|| format!("{}", p.display()))?;
            p
        }
    };
    let topology = Topology::load(&topology_file)?;
    for p in a.protocol.protocols() {
        if faults(&a).filter(|k| applies(k, p)).count() > 1 {
            bail!("--kill/--restart: at most one fault per protocol ({p})");
        }
    }
    for k in faults(&a) {
        if let Some(down) = k.restart_after {
            if k.at + down >= a.duration {
                bail!(
                    "--restart {}: the restart ({:?} + {:?}) must fall inside --duration {:?}",
                    k.replica,
                    k.at,
                    down,
                    a.duration
                );
            }
        }
    }
    for k in faults(&a) {
        let exists = a.protocol.protocols().iter().any(|p| {
            protocol_replicas(*p, &topology)
                .iter()
                .any(|(node, _)| replica_arg(*node) == k.replica)
        });
        if !exists {
            bail!(
                "--kill/--restart: no replica {} among the {} replicas of {}",
                k.replica,
                a.protocol
                    .protocols()
                    .iter()
                    .map(|p| p.name())
                    .collect::<Vec<_>>()
                    .join(" and "),
                topology.name
            );
        }
    }
    let max_clients = *a.clients.iter().max().expect("non-empty");
    let dep = ensure_deployment(&topology_file, &out.join("deployment"), max_clients)?;
    interrupt.check()?;
    let exe = std::env::current_exe().context("cannot locate the loadgen executable")?;
    let logs = out.join("logs");
    fs::create_dir_all(&logs).with_context(|| format!("{}", logs.display()))?;
    let protocols = a.protocol.protocols();
    let total = protocols.len() * a.clients.len();
    let per = a.warmup + a.duration;
    eprintln!(
        "local: {} configuration(s) on {} ({} replica processes for steward, {} for pbft), \
         about {:.0} s each; results in {}",
        total,
        topology.name,
        topology.steward_servers().count(),
        topology.pbft.n(),
        per.as_secs_f64() + 3.0,
        out.display()
    );
    let mut rows = Vec::new();
    let mut cpu = Vec::new();
    let mut pids = Vec::new();
    timeseries::create(&out)?;
    let mut done = 0;
    let sweep = crate::progress::Sweep::new("local", total as u64, "configurations");
    for &protocol in &protocols {
        for &n in &a.clients {
            interrupt.check()?;
            done += 1;
            let wall = Instant::now();
            sweep.begin(&format!("{protocol} clients={n}"));
            eprintln!(
                "local: [{done}/{total}] {protocol} {} clients={n} wan={} ({} s)...",
                topology.name,
                a.wan,
                per.as_secs_f64()
            );
            // Every node's port is bound here and stays bound: replicas inherit their socket,
            // clients use theirs, so no other process can take a port in between.
            let (addresses, sockets) = assign_addresses(&dep.topology, protocol, n)?;
            write_addresses(&dep.layout.addresses(), &addresses)?;
            // Fresh (idle) WAN queues shared by every replica and client process of this run.
            let queues = steward_runtime::wan_queues_path(dep.layout.root());
            if a.wan == WanMode::Emulate {
                steward_net::SharedWanQueues::create(&queues, dep.topology.sites.len())?;
            } else if queues.exists() {
                fs::remove_file(&queues).with_context(|| format!("{}", queues.display()))?;
            }
            let log_dir = logs.join(format!("{protocol}-c{n}"));
            let data_dir = if a.no_data_dir {
                None
            } else {
                let d = out.join("data").join(format!("{protocol}-c{n}"));
                // A new cluster: votes of an earlier run in this directory would conflict.
                if d.exists() {
                    fs::remove_dir_all(&d).with_context(|| format!("{}", d.display()))?;
                }
                Some(d)
            };
            let mut cluster = Cluster::start(
                &exe,
                protocol,
                &dep,
                &a,
                &log_dir,
                data_dir.as_deref(),
                &sockets,
            )?;
            let window = sweep.wall_window(per);
            let measured = rt.block_on(measure(
                protocol,
                &dep,
                n,
                &addresses,
                &sockets,
                &a,
                &mut cluster,
                &interrupt,
            ));
            drop(window);
            let stopped = cluster.stop();
            pids.extend(cluster.spawned.iter().copied());
            let mut m = measured?;
            stopped?;
            (m.local_view_changes, m.global_view_changes) = cluster.view_changes();
            let name = format!(
                "{protocol}-{}-c{n}-w{}-b{}-local",
                topology.name, a.write_pct, a.batch
            );
            results::write_hdr_log(&out, &name, &m.report.histogram, a.warmup, a.duration)?;
            let row = row_of(protocol, &topology, &dep, n, &a, &m, wall.elapsed());
            let c = if row.completed > 0 {
                m.cpu.as_secs_f64() * 1e3 / row.completed as f64
            } else {
                f64::NAN
            };
            eprintln!(
                "local: [{done}/{total}] {:.1} ops/s, mean {:.1} ms, {c:.1} CPU-ms/update",
                row.throughput_ops_s, row.lat_mean_ms
            );
            if let Some(k) = kill_for(&a, protocol) {
                eprintln!(
                    "local: after {} {}: {} operations issued after it completed; recovery {}",
                    if k.restart_after.is_some() {
                        "restarting"
                    } else {
                        "killing"
                    },
                    k.replica,
                    m.report.after_mark,
                    row.recovery_ms
                        .map(|r| format!("{r:.0} ms"))
                        .unwrap_or_else(|| "never".into())
                );
            }
            cpu.push(CpuFigures {
                ms_per_update: c,
                replica_util: share_of_cores(m.cpu, m.measured),
                host_util: m.host_util,
            });
            rows.push(row);
            // Keep partial results on disk: an interrupted sweep still leaves a table.
            write_summary(&out, &rows, &cpu)?;
            let last = rows.last().expect("just pushed");
            let key = timeseries::RunKey {
                protocol: protocol.name(),
                clients: n,
                batch: a.batch,
                scenario: &last.scenario,
            };
            timeseries::append_series(&out, &key, &m.scrapes)?;
            timeseries::append_events(&out, &key, &m.events)?;
            sweep.item_done();
        }
    }
    let manifest = serde_json::json!({
        "command": "local",
        "mode": "local",
        "topology": { "name": topology.name, "file": topology_file.display().to_string() },
        "protocols": protocols.iter().map(|p| p.name()).collect::<Vec<_>>(),
        "clients": a.clients,
        "duration_s": a.duration.as_secs_f64(),
        "warmup_s": a.warmup.as_secs_f64(),
        "batch": a.batch,
        "write_pct": a.write_pct,
        "replica_threads": a.replica_threads.to_string(),
        "emulation": match a.wan {
            WanMode::Emulate => "local processes on 127.0.0.x, userspace WAN shaper (steward-net) with the topology's WAN queues shared across processes",
            _ => "local processes, no WAN emulation (loopback)",
        },
        "wan": a.wan.to_string(),
        "deployment": dep.layout.root().display().to_string(),
        "signature_scheme": dep.manifest.scheme.to_string(),
        "threshold_bits": dep.manifest.threshold_bits,
        "replica_binary": exe.display().to_string(),
        "replica_pids": pids,
        "machine": results::environment(),
    });
    fs::write(
        out.join("manifest.json"),
        serde_json::to_string_pretty(&manifest)? + "\n",
    )?;
    write_summary(&out, &rows, &cpu)?;
    interrupt.check()?;
    results::print_table(&rows);
    for (r, c) in rows.iter().zip(&cpu) {
        println!(
            "{:<8} clients={:<4} cpu_ms_per_update={:.3} replica_cpu={:.0}% host_cpu={}{}",
            r.protocol,
            r.clients,
            c.ms_per_update,
            c.replica_util * 100.0,
            c.host_util
                .map_or("?".to_string(), |u| format!("{:.0}%", u * 100.0)),
            if c.cpu_bound() { "  CPU-BOUND" } else { "" }
        );
    }
    if cpu.iter().any(CpuFigures::cpu_bound) {
        println!(
            "CPU-BOUND rows: this host's cores were at least {:.0}% busy; those points measure \
             the host's CPU, not the emulated WAN.",
            CPU_BOUND_UTIL * 100.0
        );
    }
    println!("results: {}", out.display());
    if let Some(bad) = rows.iter().find(|r| r.safety != "ok") {
        bail!("safety violation: {}", bad.safety);
    }
    Ok(rows)
}

/// Every --kill and --restart.
fn faults(a: &LocalArgs) -> impl Iterator<Item = &Kill> {
    a.kill.iter().chain(&a.restart)
}

/// Whether `k` names a replica of `protocol`.
fn applies(k: &Kill, protocol: Protocol) -> bool {
    match protocol {
        Protocol::Steward => k.replica.starts_with('s'),
        Protocol::Pbft => k.replica.starts_with('r'),
    }
}

/// The kill or restart that applies to `protocol`'s cluster.
fn kill_for(a: &LocalArgs, protocol: Protocol) -> Option<&Kill> {
    faults(a).find(|k| applies(k, protocol))
}

/// The summary row of one measured configuration.
fn row_of(
    protocol: Protocol,
    topology: &Topology,
    dep: &Deployment,
    n: u32,
    a: &LocalArgs,
    m: &Measured,
    wall: Duration,
) -> Row {
    let measured_s = m.measured.as_secs_f64();
    let completed = m.report.completed;
    let per = |x: u64| {
        if completed > 0 {
            x as f64 / completed as f64
        } else {
            0.0
        }
    };
    let (mean, p50, p99, max) = m.report.latency_ms();
    Row {
        protocol,
        mode: "local".into(),
        topology: topology.name.clone(),
        clients: n,
        write_pct: a.write_pct,
        batch: a.batch,
        duration_s: measured_s,
        completed,
        throughput_ops_s: completed as f64 / measured_s,
        lat_mean_ms: mean,
        lat_p50_ms: p50,
        lat_p99_ms: p99,
        lat_max_ms: max,
        lat_bound_ms: clients::latency_bound(protocol, dep, n),
        wan_msgs_per_update: per(m.wan.0),
        wan_bytes_per_update: per(m.wan.1),
        safety: m.report.safety(),
        seed: 0,
        costs: "real".into(),
        wall_s: wall.as_secs_f64(),
        scenario: match kill_for(a, protocol) {
            Some(k) => k.label(),
            None => "none".into(),
        },
        local_view_changes: m.local_view_changes,
        global_view_changes: m.global_view_changes,
        recovery_ms: m.recovery.flatten().map(|d| d.as_secs_f64() * 1e3),
        reference_ops_s: None,
        attack_ratio: None,
    }
}

/// The CPU figures of one point.
struct CpuFigures {
    /// CPU time of all replica processes per completed update (ms).
    ms_per_update: f64,
    /// Replica CPU time as a share of all the host's cores.
    replica_util: f64,
    /// Busy share of all the host's cores (`None`: unknown).
    host_util: Option<f64>,
}

impl CpuFigures {
    fn cpu_bound(&self) -> bool {
        self.host_util.is_some_and(|u| u >= CPU_BOUND_UTIL)
    }
}

/// summary.csv: the `simulate` columns plus `cpu_ms_per_update`, `replica_cpu_util`,
/// `host_cpu_util` and `cpu_bound`.
fn write_summary(dir: &Path, rows: &[Row], cpu: &[CpuFigures]) -> Result<()> {
    let mut w = csv::Writer::from_writer(Vec::new());
    for r in rows {
        w.serialize(r)?;
    }
    let text = String::from_utf8(w.into_inner().map_err(|e| anyhow::anyhow!("{e}"))?)?;
    let mut out = String::new();
    for (i, line) in text.lines().enumerate() {
        out.push_str(line);
        if i == 0 {
            out.push_str(",cpu_ms_per_update,replica_cpu_util,host_cpu_util,cpu_bound\n");
        } else {
            let c = &cpu[i - 1];
            out.push_str(&format!(
                ",{:.4},{:.4},{},{}\n",
                c.ms_per_update,
                c.replica_util,
                c.host_util.map_or(String::new(), |u| format!("{u:.4}")),
                c.cpu_bound()
            ));
        }
    }
    let path = dir.join("summary.csv");
    fs::write(&path, out).with_context(|| format!("{}", path.display()))
}

struct Measured {
    report: clients::ClientReport,
    measured: Duration,
    cpu: Duration,
    /// Busy share of all the host's cores in the window (everything on it: replicas, clients,
    /// anything else); `None` without `/proc/stat`.
    host_util: Option<f64>,
    /// Cross-site (messages, bytes) sent by all replicas in the window.
    wan: (u64, u64),
    local_view_changes: u64,
    global_view_changes: u64,
    /// With --kill: from the kill to the first completion of an operation issued after it
    /// (`Some(None)`: none completed).
    recovery: Option<Option<Duration>>,
    /// Every replica's metrics, scraped once a second (times since the window start).
    scrapes: Vec<timeseries::Scrape>,
    /// Faults injected: (time since the window start, `kill` or `restart`, node).
    events: Vec<(f64, &'static str, String)>,
}

/// WAN counters taken over `interval` (from the end of the first sample to the end of the
/// second), scaled to a window of `window` at the same rate, with a warning when the samples
/// were late by more than a tenth of the window (a saturated host: the replicas answer SIGUSR1
/// between two steps).
fn scale_to_window(wan: (u64, u64), interval: Duration, window: Duration) -> (u64, u64) {
    let (i, w) = (interval.as_secs_f64(), window.as_secs_f64());
    if i <= 0.0 || w <= 0.0 {
        return wan;
    }
    if (i - w).abs() > w / 10.0 {
        eprintln!(
            "local: the WAN counters were sampled over {i:.1} s instead of the {w:.1} s window \
             (replicas slow to answer); WAN msg/u and B/u are scaled to the window"
        );
    }
    let scale = |x: u64| (x as f64 * w / i).round() as u64;
    (scale(wan.0), scale(wan.1))
}

/// Runs the clients for warm-up + duration against a started cluster; Ctrl-C aborts.
#[allow(clippy::too_many_arguments)]
async fn measure(
    protocol: Protocol,
    dep: &Deployment,
    n: u32,
    addresses: &Addresses,
    sockets: &clients::Sockets,
    a: &LocalArgs,
    cluster: &mut Cluster,
    interrupt: &Interrupt,
) -> Result<Measured> {
    cluster.wait_ready(Duration::from_secs(30), interrupt)?;
    let start = tokio::time::Instant::now();
    let window = Window {
        start: start + a.warmup,
        end: start + a.warmup + a.duration,
    };
    let origin = window.start.into_std();
    let sampler = timeseries::Sampler::start(
        cluster.launch.endpoints.clone(),
        origin,
        Duration::from_secs(1),
    );
    let mut events = Vec::new();
    let kill = faults(a)
        .find(|k| cluster.has(&k.replica))
        .map(|k| (k.clone(), window.start + k.at));
    // Recovery is measured from the kill, or from the restart.
    let mark = kill
        .as_ref()
        .map(|(k, at)| *at + k.restart_after.unwrap_or_default());
    let running = clients::start(
        mark,
        protocol,
        dep,
        n,
        addresses,
        sockets,
        a.wan,
        a.write_pct,
        window,
    )?;
    let run = async {
        tokio::time::sleep_until(window.start).await;
        let cpu0 = cluster.cpu_time();
        let host0 = HostCpu::now();
        // The replicas answer SIGUSR1 between two steps: on a saturated host that can take
        // seconds, so the WAN counters' own interval is kept to scale them to the window.
        let wan0 = cluster.wan_counters(Duration::from_secs(5))?;
        let wan0_at = Instant::now();
        if let Some((k, at)) = &kill {
            tokio::time::sleep_until(*at).await;
            cluster.kill(&k.replica)?;
            let node = replica_node_name(cluster, &k.replica);
            events.push((
                timeseries::signed_secs(Instant::now(), origin),
                "kill",
                node,
            ));
            eprintln!("local: killed replica {}", k.replica);
            if let Some(down) = k.restart_after {
                tokio::time::sleep_until(*at + down).await;
                // The restart's time is when its process starts: every sample of the new
                // incarnation comes after it.
                let restarted = timeseries::signed_secs(Instant::now(), origin);
                cluster.restart(&k.replica)?;
                // Wait for its ready line: only then does it answer SIGUSR1 (the WAN counters).
                let ready = cluster.wait_ready_one(&k.replica, Duration::from_secs(30));
                ready?;
                let node = replica_node_name(cluster, &k.replica);
                events.push((restarted, "restart", node));
                eprintln!("local: restarted replica {}", k.replica);
            }
        }
        tokio::time::sleep_until(window.end).await;
        let cpu1 = cluster.cpu_time();
        let host_util = host0
            .zip(HostCpu::now())
            .and_then(|(a, b)| a.util_until(&b));
        let wan1 = cluster.wan_counters(Duration::from_secs(5))?;
        let wan_interval = wan0_at.elapsed();
        let wan = (wan1.0 - wan0.0.min(wan1.0), wan1.1 - wan0.1.min(wan1.1));
        Ok::<_, anyhow::Error>((
            cpu1.saturating_sub(cpu0),
            host_util,
            scale_to_window(wan, wan_interval, a.duration),
        ))
    };
    let outcome = tokio::select! {
        r = run => r,
        _ = interrupt.wait() => Err(anyhow::anyhow!("interrupted")),
    };
    let report = running.stop().await;
    let scrapes = sampler.stop();
    // The clients count the operations completed inside the window, so the window is what
    // they were measured over (not the time the samples around it took).
    let measured = window.end - window.start;
    let (cpu, host_util, wan) = outcome?;
    if let Some(dead) = cluster.exited() {
        bail!("{dead} exited during the run (see its log)");
    }
    let report = report?;
    let recovery = mark.map(|m| report.recovered_at.map(|r| r.saturating_duration_since(m)));
    Ok(Measured {
        report,
        measured,
        cpu,
        host_util,
        wan,
        local_view_changes: 0,
        global_view_changes: 0,
        recovery,
        scrapes,
        events,
    })
}

/// The node name (metrics label `node`) of replica `replica` (`s<site>.<i>` or `r<i>`).
fn replica_node_name(cluster: &Cluster, replica: &str) -> String {
    cluster
        .nodes
        .iter()
        .find(|n| n.id == replica)
        .map(|n| n.kind.name().to_string())
        .unwrap_or_else(|| replica.to_string())
}

/// Loads `<dir>` if it is a deployment of this topology with enough client keys and TLS
/// identities; otherwise (re)generates it.
fn ensure_deployment(topology: &Path, dir: &Path, clients: u32) -> Result<Deployment> {
    let want = fs::read_to_string(topology)
        .with_context(|| format!("{}: cannot read topology", topology.display()))?;
    let layout = Layout::new(dir);
    let reusable = layout.manifest().exists()
        && fs::read_to_string(layout.topology()).ok().as_deref() == Some(want.as_str())
        && layout.ca_cert().exists()
        && Deployment::load(dir).is_ok_and(|d| d.manifest.clients >= clients);
    if !reusable {
        eprintln!("local: generating keys in {}", dir.display());
        steward_deploy::generate(
            topology,
            dir,
            &KeygenOptions {
                scheme: Scheme::Ed25519,
                threshold_bits: 1024,
                clients: clients.max(8),
                seed: None,
                force: true,
            },
            &|line| eprintln!("local: {line}"),
        )?;
    }
    Ok(Deployment::load(dir)?)
}

/// 127.0.0.2, 127.0.0.3, ... for the replicas of `protocol`, then the clients `0..n`; each with a free UDP
/// port found by binding port 0. The bound sockets are returned too, to be used by the nodes
/// (a released port could be taken by another process before the node binds it).
fn assign_addresses(
    topology: &Topology,
    protocol: Protocol,
    n: u32,
) -> Result<(Addresses, clients::Sockets)> {
    let mut names: Vec<String> = protocol_replicas(protocol, topology)
        .into_iter()
        .map(|(node, _)| node.name().to_string())
        .collect();
    names.extend((0..n).map(|c| NodeKind::Client(c).name().to_string()));
    let mut map = BTreeMap::new();
    let mut sockets = clients::Sockets::new();
    for (i, name) in names.into_iter().enumerate() {
        let ip = Ipv4Addr::from(u32::from(Ipv4Addr::new(127, 0, 0, 2)) + i as u32);
        let socket = UdpSocket::bind((ip, 0)).with_context(|| format!("cannot bind {ip}:0"))?;
        let addr: SocketAddr = socket.local_addr()?;
        map.insert(name.clone(), addr);
        sockets.insert(name, std::sync::Arc::new(socket));
    }
    Ok((map, sockets))
}

/// Replica processes started by this run. Dropping it (or [`Cluster::stop`]) stops every one:
/// SIGTERM, then SIGKILL after 10 s.
struct Cluster {
    nodes: Vec<Node>,
    ready: std_mpsc::Receiver<(usize, String)>,
    readers: Vec<std::thread::JoinHandle<()>>,
    /// `stats {...}` lines the nodes printed when they stopped.
    stats: Vec<serde_json::Value>,
    /// Lines read while waiting for others.
    pending: Vec<(usize, String)>,
    /// Pids of every process started (restarts included).
    spawned: Vec<u32>,
    /// How to start a replica.
    launch: Launch,
}

/// What starting (or restarting) a replica process takes.
struct Launch {
    exe: PathBuf,
    protocol: Protocol,
    deployment: PathBuf,
    wan: WanMode,
    batch: usize,
    threads: Threads,
    logs: PathBuf,
    data_dir: Option<PathBuf>,
    sockets: clients::Sockets,
    tx: std_mpsc::Sender<(usize, String)>,
    /// Each running replica's metrics endpoint (from its `metrics <name> <addr>` line).
    endpoints: timeseries::Endpoints,
}

/// A replica process. `child` is `Some` only while the process is not reaped, so its pid
/// cannot have been reused: only then is it signalled.
struct Node {
    id: String,
    kind: NodeKind,
    child: Option<Child>,
    /// How it ended, once reaped without being killed on purpose.
    exit: Option<std::process::ExitStatus>,
}

impl Cluster {
    fn start(
        exe: &Path,
        protocol: Protocol,
        dep: &Deployment,
        a: &LocalArgs,
        logs: &Path,
        data_dir: Option<&Path>,
        sockets: &clients::Sockets,
    ) -> Result<Cluster> {
        fs::create_dir_all(logs).with_context(|| format!("{}", logs.display()))?;
        let (tx, ready) = std_mpsc::channel();
        let mut cluster = Cluster {
            nodes: Vec::new(),
            ready,
            readers: Vec::new(),
            stats: Vec::new(),
            pending: Vec::new(),
            spawned: Vec::new(),
            launch: Launch {
                exe: exe.to_path_buf(),
                protocol,
                deployment: dep.layout.root().to_path_buf(),
                wan: a.wan,
                batch: a.batch,
                threads: a.replica_threads,
                logs: logs.to_path_buf(),
                data_dir: data_dir.map(Path::to_path_buf),
                sockets: sockets.clone(),
                tx,
                endpoints: Default::default(),
            },
        };
        for (node, _) in protocol_replicas(protocol, &dep.topology) {
            let index = cluster.nodes.len();
            cluster.nodes.push(Node {
                id: replica_arg(node),
                kind: node,
                child: None,
                exit: None,
            });
            cluster.spawn(index, false)?;
        }
        Ok(cluster)
    }

    /// Starts node `index`'s process (again, with `again`: its log is appended to).
    fn spawn(&mut self, index: usize, again: bool) -> Result<()> {
        let l = &self.launch;
        let node = self.nodes[index].kind;
        let id = self.nodes[index].id.clone();
        let log_path = l.logs.join(format!("{id}.log"));
        let log = fs::OpenOptions::new()
            .create(true)
            .write(true)
            .append(again)
            .truncate(!again)
            .open(&log_path)
            .with_context(|| format!("{}", log_path.display()))?;
        let mut cmd = Command::new(&l.exe);
        cmd.args(["replica", "--protocol", l.protocol.name()])
            .arg("--deployment")
            .arg(&l.deployment)
            .args(["--id", &id, "--wan", &l.wan.to_string()])
            .args(["--batch", &l.batch.to_string()])
            .args(["--threads", &l.threads.to_string()])
            // Live metrics on a free port, announced on stdout and sampled once a second.
            .args(["--metrics", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log);
        if let Some(d) = &l.data_dir {
            cmd.arg("--data-dir").arg(d);
        }
        // The child gets SIGTERM if loadgen dies. If loadgen died between fork and prctl,
        // the child has already been reparented and no signal will ever come: it checks its
        // parent after prctl and gives up.
        let parent = std::process::id() as libc::pid_t;
        // The replica's socket, bound by assign_addresses: inherited (its close-on-exec
        // flag cleared in the child only) and named by --listen-fd. A restarted replica
        // inherits the same socket (loadgen keeps it open), so it keeps its address.
        let fd = l
            .sockets
            .get(node.name().as_str())
            .map(|s| std::os::fd::AsRawFd::as_raw_fd(&**s));
        if let Some(fd) = fd {
            cmd.args(["--listen-fd", &fd.to_string()]);
        }
        // SAFETY: prctl, getppid and fcntl are async-signal-safe.
        unsafe {
            cmd.pre_exec(move || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                if libc::getppid() != parent {
                    return Err(std::io::Error::other("loadgen exited during the start"));
                }
                if let Some(fd) = fd {
                    if libc::fcntl(fd, libc::F_SETFD, 0) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
        let mut child = cmd
            .spawn()
            .with_context(|| format!("cannot start {}", l.exe.display()))?;
        let stdout = child.stdout.take().expect("piped");
        let tx = l.tx.clone();
        let endpoints = l.endpoints.clone();
        self.spawned.push(child.id());
        self.nodes[index].child = Some(child);
        self.nodes[index].exit = None;
        self.readers.push(std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some((name, addr)) = line
                    .strip_prefix("metrics ")
                    .and_then(|rest| rest.split_once(' '))
                {
                    if let (Ok(addr), Ok(mut map)) = (addr.parse(), endpoints.lock()) {
                        map.insert(name.to_string(), addr);
                    }
                    continue;
                }
                if tx.send((index, line)).is_err() {
                    break;
                }
            }
        }));
        Ok(())
    }

    /// Starts a killed replica again (same address, same data directory).
    fn restart(&mut self, replica: &str) -> Result<()> {
        let index = self
            .nodes
            .iter()
            .position(|n| n.id == replica)
            .with_context(|| format!("no replica {replica}"))?;
        if self.nodes[index].child.is_some() {
            bail!("replica {replica} is still running");
        }
        self.spawn(index, true)
    }

    /// Waits until `replica` printed `ready`; other lines are kept for later.
    fn wait_ready_one(&mut self, replica: &str, limit: Duration) -> Result<()> {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.ready.recv_timeout(left) {
                Ok((i, line)) if self.nodes[i].id == replica && line.starts_with("ready ") => {
                    return Ok(())
                }
                Ok(other) => self.pending.push(other),
                Err(_) => bail!("restarted replica {replica} not ready after {limit:?}"),
            }
        }
    }

    /// Waits until every node printed `ready` (or an interrupt).
    fn wait_ready(&mut self, limit: Duration, interrupt: &Interrupt) -> Result<()> {
        let deadline = Instant::now() + limit;
        let mut ready = vec![false; self.nodes.len()];
        while ready.contains(&false) {
            interrupt.check()?;
            let left = deadline.saturating_duration_since(Instant::now());
            match self
                .ready
                .recv_timeout(left.min(Duration::from_millis(100)))
            {
                Ok((i, line)) if line.starts_with("ready ") => ready[i] = true,
                Ok(_) => {}
                Err(_) if !left.is_zero() => {}
                Err(_) => {
                    let missing: Vec<String> = self
                        .nodes
                        .iter()
                        .zip(&ready)
                        .filter(|(_, r)| !**r)
                        .map(|(n, _)| n.id.to_string())
                        .collect();
                    let why = self
                        .exited()
                        .map(|d| format!("{d} exited"))
                        .unwrap_or_else(|| format!("not ready after {limit:?}"));
                    bail!(
                        "replicas {} did not start ({why}; see their logs)",
                        missing.join(", ")
                    );
                }
            }
        }
        Ok(())
    }

    /// Whether the cluster has this replica (`s<site>.<i>` or `r<i>`).
    fn has(&self, replica: &str) -> bool {
        self.nodes.iter().any(|n| n.id == replica)
    }

    /// SIGKILLs a replica and reaps it; it no longer counts as running.
    fn kill(&mut self, replica: &str) -> Result<()> {
        let node = self
            .nodes
            .iter_mut()
            .find(|n| n.id == replica)
            .with_context(|| format!("no replica {replica}"))?;
        if let Some(mut c) = node.child.take() {
            c.kill()
                .with_context(|| format!("cannot kill replica {replica}"))?;
            let _ = c.wait();
        }
        // Not sampled while it is down (a restart announces its new endpoint).
        if let Ok(mut map) = self.launch.endpoints.lock() {
            map.remove(node.kind.name().as_str());
        }
        Ok(())
    }

    /// A node that has exited on its own, if any. A node found exited is reaped here, so it
    /// leaves `child` (its pid may be reused from now on) and is never signalled again.
    fn exited(&mut self) -> Option<String> {
        for n in &mut self.nodes {
            if let Some(c) = n.child.as_mut() {
                if let Ok(Some(status)) = c.try_wait() {
                    n.exit = Some(status);
                    n.child = None;
                }
            }
        }
        self.nodes
            .iter()
            .find_map(|n| n.exit.map(|status| format!("replica {} ({status})", n.id)))
    }

    /// Messages and bytes all nodes have sent across sites so far (each node answers SIGUSR1
    /// with a `wan {...}` line). Other lines that arrive meanwhile are kept for later.
    fn wan_counters(&mut self, limit: Duration) -> Result<(u64, u64)> {
        for n in &self.nodes {
            if let Some(c) = &n.child {
                // SAFETY: kill with a pid of our own unreaped child.
                unsafe {
                    libc::kill(c.id() as libc::pid_t, libc::SIGUSR1);
                }
            }
        }
        let deadline = Instant::now() + limit;
        // Killed replicas do not answer.
        let mut got: Vec<bool> = self.nodes.iter().map(|n| n.child.is_none()).collect();
        let (mut msgs, mut bytes) = (0, 0);
        while got.contains(&false) {
            let left = deadline.saturating_duration_since(Instant::now());
            let (i, line) = self
                .ready
                .recv_timeout(left)
                .map_err(|_| anyhow::anyhow!("replicas did not report their WAN counters"))?;
            if let Some(json) = line.strip_prefix("wan ") {
                let v: serde_json::Value = serde_json::from_str(json)?;
                msgs += v["msgs"].as_u64().unwrap_or(0);
                bytes += v["bytes"].as_u64().unwrap_or(0);
                got[i] = true;
            } else {
                self.pending.push((i, line));
            }
        }
        Ok((msgs, bytes))
    }

    /// Highest (local, global) view change counts any node reported when it stopped.
    fn view_changes(&self) -> (u64, u64) {
        let max = |k: &str| {
            self.stats
                .iter()
                .filter_map(|v| v.get(k).and_then(|x| x.as_u64()))
                .max()
                .unwrap_or(0)
        };
        (max("local_view_changes"), max("global_view_changes"))
    }

    /// CPU time of all replica processes so far.
    fn cpu_time(&self) -> Duration {
        self.nodes
            .iter()
            .filter_map(|n| n.child.as_ref())
            .filter_map(|c| process_cpu_time(c.id()))
            .sum()
    }

    /// Stops every node: SIGTERM, then SIGKILL for those still running 10 s later.
    fn stop(&mut self) -> Result<()> {
        for n in &self.nodes {
            if let Some(c) = &n.child {
                // SAFETY: kill with a pid of our own unreaped child.
                unsafe {
                    libc::kill(c.id() as libc::pid_t, libc::SIGTERM);
                }
            }
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut stubborn = Vec::new();
        for n in &mut self.nodes {
            let Some(mut c) = n.child.take() else {
                continue;
            };
            loop {
                match c.try_wait() {
                    Ok(Some(_)) => break,
                    Ok(None) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(20))
                    }
                    _ => {
                        let _ = c.kill();
                        let _ = c.wait();
                        stubborn.push(n.id.to_string());
                        break;
                    }
                }
            }
        }
        for r in self.readers.drain(..) {
            let _ = r.join();
        }
        let pending = std::mem::take(&mut self.pending);
        for (_, line) in pending.into_iter().chain(self.ready.try_iter()) {
            if let Some(json) = line.strip_prefix("stats ") {
                if let Ok(v) = serde_json::from_str(json) {
                    self.stats.push(v);
                }
            }
        }
        if !stubborn.is_empty() {
            // The measurement is complete by now; a slow shutdown only loses the final
            // `stats` line (view-change counts) of those replicas.
            eprintln!(
                "local: warning: replicas {} did not stop within 10 s of SIGTERM and were killed",
                stubborn.join(", ")
            );
        }
        Ok(())
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

/// SIGINT, watched from the start of the run to its end (see [`run`]).
struct Interrupt {
    flag: std::sync::Arc<std::sync::atomic::AtomicBool>,
    notify: std::sync::Arc<tokio::sync::Notify>,
}

impl Interrupt {
    /// Watches SIGINT from now on (the handler is in place when this returns).
    fn install(rt: &tokio::runtime::Runtime) -> Result<Interrupt> {
        use std::sync::atomic::Ordering;
        let _guard = rt.enter();
        let mut signal = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
            .context("cannot watch SIGINT")?;
        let interrupt = Interrupt {
            flag: Default::default(),
            notify: Default::default(),
        };
        let (flag, notify) = (interrupt.flag.clone(), interrupt.notify.clone());
        rt.spawn(async move {
            while signal.recv().await.is_some() {
                if !flag.swap(true, Ordering::SeqCst) {
                    eprintln!("local: interrupted; stopping");
                }
                notify.notify_waiters();
            }
        });
        Ok(interrupt)
    }

    /// An error once SIGINT has arrived.
    fn check(&self) -> Result<()> {
        if self.flag.load(std::sync::atomic::Ordering::SeqCst) {
            bail!("interrupted");
        }
        Ok(())
    }

    /// Completes when SIGINT arrives (at once if it already has).
    async fn wait(&self) {
        loop {
            let notified = self.notify.notified();
            if self.flag.load(std::sync::atomic::Ordering::SeqCst) {
                return;
            }
            notified.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// WAN counters sampled over a shorter or longer interval than the window are scaled to
    /// it at the same rate (a run at 800 clients once sampled them 7.99 s late in an 8 s
    /// window, and its row claimed 0.002 WAN messages and 515,717 updates per second).
    #[test]
    fn wan_counters_are_scaled_to_the_measurement_window() {
        let w = Duration::from_secs(8);
        assert_eq!(scale_to_window((80, 8000), w, w), (80, 8000));
        assert_eq!(
            scale_to_window((10, 1000), Duration::from_secs(1), w),
            (80, 8000)
        );
        assert_eq!(
            scale_to_window((160, 16000), Duration::from_secs(16), w),
            (80, 8000)
        );
        assert_eq!(scale_to_window((5, 5), Duration::ZERO, w), (5, 5));
    }

    #[test]
    fn restarts_parse_and_label_their_rows() {
        let k = parse_restart("s0.1@5s+2s").unwrap();
        assert_eq!(k.replica, "s0.1");
        assert_eq!(k.at, Duration::from_secs(5));
        assert_eq!(k.restart_after, Some(Duration::from_secs(2)));
        assert_eq!(k.label(), "restart-s0.1@5s+2s");
        let k = parse_restart("r1@1.5s+500ms").unwrap();
        assert_eq!(k.label(), "restart-r1@1.5s+0.5s");
        assert_eq!(parse_kill("r0@5s").unwrap().label(), "kill-r0@5s");
        for bad in ["s0.1@5s", "s0.1+2s", "x1@5s+2s", "r1@5s+", "r1@+2s"] {
            assert!(parse_restart(bad).is_err(), "{bad}");
        }
    }
}
