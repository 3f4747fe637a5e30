//! `loadgen run --deployment <dir>`: closed-loop clients against an already running deployment
//! (replicas started on real hosts, e.g. by the Ansible playbooks, with the same deployment
//! directory). Writes a results directory like `local` (mode = remote); the replicas' CPU and
//! WAN counters are not visible from here, so those columns stay 0. With
//! `--metrics-port-offset N` (replicas started with `--metrics <their address>:<their port + N>`,
//! as the Ansible playbooks do with `steward_metrics`), every replica's endpoint is sampled once
//! a second into `timeseries.csv` (see [`crate::timeseries`]; `events.csv` stays empty: no
//! faults are injected from here).

use std::fs;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Args;
use steward_deploy::Deployment;
use steward_runtime::{protocol_replicas, NodeKind, Protocol, WanMode};

use crate::clients::{self, Window};
use crate::results::{self, parse_duration, Row};
use crate::timeseries;

/// Arguments of `loadgen run`.
#[derive(Args, Debug)]
pub struct RunArgs {
    /// Deployment directory (its addresses.json names every replica's address).
    #[arg(long)]
    deployment: PathBuf,
    /// steward or pbft.
    #[arg(long)]
    protocol: Protocol,
    /// Client counts to sweep, comma-separated (each needs client keys in the deployment).
    #[arg(long, value_delimiter = ',', default_value = "1,5,10")]
    clients: Vec<u32>,
    /// Measured time per configuration (after the warm-up).
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    duration: Duration,
    /// Warm-up excluded from measurements.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    warmup: Duration,
    /// Percentage of operations that are updates.
    #[arg(long, default_value_t = 100)]
    write_pct: u32,
    /// The replicas' batch size (they were started with it; recorded in the results).
    #[arg(long, default_value_t = 1)]
    batch: usize,
    /// Shaping of the clients' own traffic: netem (hosts shaped by tc: send unshaped), off, or
    /// emulate (shape as if each client ran in its site).
    #[arg(long, default_value = "netem")]
    wan: WanMode,
    /// Address the clients bind to when addresses.json has no `client-<i>` entry (port 0 is
    /// replaced by a free port per client).
    #[arg(long, default_value = "0.0.0.0")]
    bind_ip: IpAddr,
    /// Results directory.
    #[arg(long)]
    out: PathBuf,
    /// Sample every replica's metrics endpoint, at its address in addresses.json with this
    /// offset added to the port (TCP), once a second into timeseries.csv.
    #[arg(long)]
    metrics_port_offset: Option<u16>,
}

impl RunArgs {
    /// The arguments of one `loadgen run` (as `loadgen matrix` runs a remote point).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        deployment: PathBuf,
        protocol: Protocol,
        clients: Vec<u32>,
        duration: Duration,
        warmup: Duration,
        write_pct: u32,
        batch: usize,
        wan: WanMode,
        out: PathBuf,
    ) -> RunArgs {
        RunArgs {
            deployment,
            protocol,
            clients,
            duration,
            warmup,
            write_pct,
            batch,
            wan,
            bind_ip: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            out,
            metrics_port_offset: None,
        }
    }
}

/// Run `loadgen run`.
pub fn run(a: RunArgs) -> Result<()> {
    let protocol = a.protocol;
    if a.clients.is_empty() || a.clients.contains(&0) {
        bail!("--clients needs positive counts, e.g. 1,5");
    }
    if a.batch == 0 {
        bail!("--batch must be at least 1");
    }
    if a.write_pct > 100 {
        bail!("--write-pct must be 0..=100, got {}", a.write_pct);
    }
    let dep = Deployment::load(&a.deployment)?;
    let max = *a.clients.iter().max().expect("non-empty");
    if max > dep.manifest.clients {
        bail!(
            "{}: keys for {} clients, --clients asks for {max} (run keygen with --clients {max})",
            a.deployment.display(),
            dep.manifest.clients
        );
    }
    let mut addresses = dep.addresses()?;
    for (node, _) in protocol_replicas(protocol, &dep.topology) {
        if !addresses.contains_key(node.name().as_str()) {
            bail!(
                "{}: no address for {}",
                dep.layout.addresses().display(),
                node.name()
            );
        }
    }
    for c in 0..max {
        let name = NodeKind::Client(c).name().to_string();
        addresses.entry(name).or_insert_with(|| {
            let probe = std::net::UdpSocket::bind((a.bind_ip, 0))
                .or_else(|_| std::net::UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)));
            probe
                .and_then(|s| s.local_addr())
                .unwrap_or(SocketAddr::new(a.bind_ip, 0))
        });
    }
    fs::create_dir_all(&a.out).with_context(|| format!("{}", a.out.display()))?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")?;
    let mut rows = Vec::new();
    // Each replica's metrics endpoint: its address with the port offset.
    let endpoints = timeseries::Endpoints::default();
    if let Some(offset) = a.metrics_port_offset {
        let mut map = endpoints.lock().expect("not shared yet");
        for (node, _) in protocol_replicas(protocol, &dep.topology) {
            let name = node.name().to_string();
            let mut addr = addresses[&name];
            let port = addr.port().checked_add(offset).with_context(|| {
                format!(
                    "--metrics-port-offset {offset}: {name}'s port {} overflows",
                    addr.port()
                )
            })?;
            addr.set_port(port);
            map.insert(name, addr);
        }
    }
    timeseries::create(&a.out)?;
    for &n in &a.clients {
        let wall = Instant::now();
        eprintln!(
            "run: {protocol} {} clients={n} ({} s)...",
            dep.topology.name,
            (a.warmup + a.duration).as_secs_f64()
        );
        let mut sampler = None;
        let report = rt.block_on(async {
            let start = tokio::time::Instant::now();
            let window = Window {
                start: start + a.warmup,
                end: start + a.warmup + a.duration,
            };
            if a.metrics_port_offset.is_some() {
                sampler = Some(timeseries::Sampler::start(
                    endpoints.clone(),
                    window.start.into_std(),
                    Duration::from_secs(1),
                ));
            }
            let running = clients::start(
                None,
                protocol,
                &dep,
                n,
                &addresses,
                &clients::Sockets::new(),
                a.wan,
                a.write_pct,
                window,
            )?;
            tokio::select! {
                _ = tokio::time::sleep_until(window.end) => {}
                _ = tokio::signal::ctrl_c() => bail!("interrupted"),
            }
            running.stop().await
        });
        let scrapes = sampler.map(timeseries::Sampler::stop).unwrap_or_default();
        let report = report?;
        let completed = report.completed;
        let (mean, p50, p99, max) = report.latency_ms();
        let name = format!(
            "{protocol}-{}-c{n}-w{}-b{}-remote",
            dep.topology.name, a.write_pct, a.batch
        );
        results::write_hdr_log(&a.out, &name, &report.histogram, a.warmup, a.duration)?;
        rows.push(Row {
            protocol,
            mode: "remote".into(),
            topology: dep.topology.name.clone(),
            clients: n,
            write_pct: a.write_pct,
            batch: a.batch,
            duration_s: a.duration.as_secs_f64(),
            completed,
            throughput_ops_s: completed as f64 / a.duration.as_secs_f64(),
            lat_mean_ms: mean,
            lat_p50_ms: p50,
            lat_p99_ms: p99,
            lat_max_ms: max,
            lat_bound_ms: clients::latency_bound(protocol, &dep, n),
            wan_msgs_per_update: 0.0,
            wan_bytes_per_update: 0.0,
            safety: report.safety(),
            seed: 0,
            costs: "real".into(),
            wall_s: wall.elapsed().as_secs_f64(),
            scenario: "none".into(),
            local_view_changes: 0,
            global_view_changes: 0,
            recovery_ms: None,
            reference_ops_s: None,
            attack_ratio: None,
        });
        results::write_summary(&a.out, &rows)?;
        let key = timeseries::RunKey {
            protocol: protocol.name(),
            clients: n,
            batch: a.batch,
            scenario: "none",
        };
        timeseries::append_series(&a.out, &key, &scrapes)?;
    }
    let manifest = serde_json::json!({
        "command": "run",
        "mode": "remote",
        "topology": { "name": dep.topology.name },
        "protocols": [protocol.name()],
        "clients": a.clients,
        "duration_s": a.duration.as_secs_f64(),
        "warmup_s": a.warmup.as_secs_f64(),
        "write_pct": a.write_pct,
        "batch": a.batch,
        "emulation": match a.wan {
            WanMode::Netem => "remote hosts, kernel shaping (tc netem) or a real WAN",
            WanMode::Off => "remote hosts, no emulation",
            WanMode::Emulate => "remote hosts, clients shaped by the userspace shaper",
        },
        "deployment": dep.layout.root().display().to_string(),
        "machine": results::environment(),
    });
    fs::write(
        a.out.join("manifest.json"),
        serde_json::to_string_pretty(&manifest)? + "\n",
    )?;
    results::print_table(&rows);
    if let Some(bad) = rows.iter().find(|r| r.safety != "ok") {
        bail!("safety violation: {}", bad.safety);
    }
    Ok(())
}
