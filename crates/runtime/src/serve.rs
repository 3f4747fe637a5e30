//! The main loop of a replica process (`steward-node`, `pbft-node`, `loadgen replica`): bind
//! the transport, announce readiness, run the protocol core on a thread of its own (so that
//! expensive crypto never stalls the transport's tasks), answer SIGUSR1 with the WAN counters,
//! and stop cleanly on SIGTERM or Ctrl-C with a final `stats {...}` line.
//!
//! stdout protocol (read by `loadgen local`): `ready <name> <addr>` once bound;
//! `wan {"msgs":..,"bytes":..}` per SIGUSR1 (messages and payload bytes sent so far to nodes of
//! other sites); `stats {...}` after stopping. Logs go to stderr.

use std::collections::HashSet;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, Context, Result};
use clap::ValueEnum;
use steward_config::{SiteId, Topology};
use steward_deploy::Deployment;
use steward_net::{NodeCert, PeerName, Transport, TransportConfig};
use tokio::sync::oneshot;

use crate::core::{drive, Core};
use crate::{open_wan_queues, transport_config, NodeKind, Protocol, WanMode};

/// Log output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// `<program> <node>: message` lines.
    Human,
    /// One JSON object per line.
    Json,
}

/// Command-line arguments every replica program takes.
#[derive(clap::Args, Debug, Clone)]
pub struct NodeArgs {
    /// Deployment directory (from `loadgen keygen` or `loadgen local`).
    #[arg(long)]
    pub deployment: PathBuf,
    /// This replica: s<site>.<index> for Steward, r<index> for PBFT.
    #[arg(long)]
    pub id: String,
    /// UDP address to bind (default: this node's entry in addresses.json).
    #[arg(long)]
    pub listen: Option<std::net::SocketAddr>,
    /// WAN emulation: emulate (userspace shaper), netem (the kernel shapes) or off.
    #[arg(long, default_value = "emulate")]
    pub wan: WanMode,
    /// Log format.
    #[arg(long, value_enum, default_value = "human")]
    pub log: LogFormat,
    /// Updates per Proposal / pre-prepare (1 = the paper).
    #[arg(long, default_value_t = 1)]
    pub batch: usize,
}

/// A logger writing to stderr in the chosen format.
#[derive(Clone)]
pub struct Log {
    format: LogFormat,
    program: &'static str,
    node: Arc<str>,
}

impl Log {
    /// A logger for `node` of `program`.
    pub fn new(format: LogFormat, program: &'static str, node: &str) -> Log {
        Log {
            format,
            program,
            node: node.into(),
        }
    }

    /// Writes one line.
    pub fn info(&self, msg: &str) {
        let line = match self.format {
            LogFormat::Human => format!("{} {}: {msg}", self.program, self.node),
            LogFormat::Json => serde_json::json!({
                "ts": SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0),
                "program": self.program,
                "node": &*self.node,
                "msg": msg,
            })
            .to_string(),
        };
        eprintln!("{line}");
    }
}

/// The transport of replica `me` (at `site`, running `protocol`) of the deployment in
/// `args.deployment`: it binds `--listen` or its entry in addresses.json, dials its protocol's
/// replicas, accepts the deployment's clients, and with `--wan emulate` shapes its WAN traffic
/// on the deployment's shared WAN queues (when a launcher created them).
pub fn replica_transport(
    dep: &Deployment,
    args: &NodeArgs,
    protocol: Protocol,
    me: NodeKind,
    site: SiteId,
    identity: NodeCert,
) -> Result<TransportConfig> {
    let ca = dep.ca_cert()?;
    let addresses = dep.addresses()?;
    let name = me.name();
    let addresses_file = dep.layout.addresses().display().to_string();
    let bind = match args.listen {
        Some(a) => a,
        None => *addresses
            .get(name.as_str())
            .ok_or_else(|| anyhow!("{addresses_file}: no address for {name}"))?,
    };
    let wan_queues = match args.wan {
        WanMode::Emulate => open_wan_queues(&args.deployment, &dep.topology)?,
        WanMode::Netem | WanMode::Off => None,
    };
    Ok(transport_config(
        protocol,
        me,
        site,
        identity,
        ca,
        bind,
        &dep.topology,
        dep.manifest.clients,
        &addresses,
        &addresses_file,
        args.wan,
        wan_queues,
    )?)
}

/// The replicas of `protocol` outside `site`: the peers whose traffic is WAN traffic.
pub fn wan_peers(protocol: Protocol, topology: &Topology, site: SiteId) -> HashSet<PeerName> {
    protocol
        .replicas(topology)
        .into_iter()
        .filter(|(_, s)| *s != site)
        .map(|(node, _)| node.name())
        .collect()
}

/// A seed for a replica's randomness (it need not be reproducible on the real network).
pub fn time_seed() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
        ^ u64::from(std::process::id()) << 32
}

/// Everything a replica process needs to run.
pub struct NodeSetup {
    /// The transport configuration (identity, peers, shaper).
    pub transport: TransportConfig,
    /// The protocol core.
    pub core: Box<dyn Core>,
    /// Peers at other sites: their traffic is what SIGUSR1 reports as WAN traffic.
    pub wan_peers: HashSet<PeerName>,
    /// One line about the node for the log (sites, keys, WAN mode).
    pub description: String,
}

/// Runs a replica until SIGTERM/SIGINT; see the module documentation for its stdout lines.
pub fn serve(setup: NodeSetup, log: &Log) -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")?;
    rt.block_on(serve_async(setup, log))
}

async fn serve_async(setup: NodeSetup, log: &Log) -> Result<()> {
    let NodeSetup {
        transport: cfg,
        mut core,
        wan_peers,
        description,
    } = setup;
    let name = cfg.name.clone();
    let bind = cfg.bind_addr;
    let (transport, mut inbound) =
        Transport::bind(cfg).with_context(|| format!("{name}: cannot bind {bind}"))?;
    // Watch the signals before announcing readiness: from then on loadgen may send them.
    let mut signals = Signals::new()?;
    let local = transport.local_addr();
    log.info(&format!("listening on {local} ({description})"));
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "ready {name} {local}").context("stdout")?;
        out.flush().context("stdout")?;
    }
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let (done_tx, mut done_rx) = oneshot::channel();
    let t = transport.clone();
    let thread = std::thread::Builder::new()
        .name("replica".into())
        .spawn(move || {
            let out = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
                .map(|rt| {
                    rt.block_on(async {
                        let stop = async {
                            let _ = stop_rx.await;
                        };
                        let stats = drive(&mut *core, &mut inbound, &t, stop, |_| {}).await;
                        (stats, core.stats())
                    })
                });
            let _ = done_tx.send(());
            out
        })
        .context("cannot start the replica thread")?;
    let reason = loop {
        tokio::select! {
            _ = signals.term.recv() => break "SIGTERM",
            _ = signals.int.recv() => break "SIGINT",
            _ = signals.usr1.recv() => print_wan(&transport, &wan_peers),
            _ = &mut done_rx => break "the replica stopped",
        }
    };
    log.info(&format!("{reason}; shutting down"));
    let _ = stop_tx.send(());
    let _ = done_rx.await;
    let joined = thread
        .join()
        .map_err(|_| anyhow!("the replica thread panicked"))?;
    let (driver, protocol) = joined.context("replica runtime")?;
    transport.shutdown().await;
    let mut line = serde_json::Map::new();
    line.insert("node".into(), name.as_str().into());
    line.extend(driver.to_json());
    line.extend(protocol);
    let line = serde_json::Value::Object(line);
    println!("stats {line}");
    log.info(&format!("stopped: {line}"));
    Ok(())
}

/// The signals a replica reacts to: SIGTERM and SIGINT stop it, SIGUSR1 prints the WAN
/// counters.
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    usr1: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> Result<Signals> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Signals {
            term: signal(SignalKind::terminate()).context("cannot watch SIGTERM")?,
            int: signal(SignalKind::interrupt()).context("cannot watch SIGINT")?,
            usr1: signal(SignalKind::user_defined1()).context("cannot watch SIGUSR1")?,
        })
    }
}

/// Prints `wan {"msgs":..,"bytes":..}`: messages and payload bytes sent so far to `wan_peers`.
fn print_wan(transport: &Transport, wan_peers: &HashSet<PeerName>) {
    let (mut msgs, mut bytes) = (0u64, 0u64);
    for (peer, st) in transport.all_stats() {
        if wan_peers.contains(&peer) {
            msgs += st.messages_sent;
            bytes += st.bytes_sent;
        }
    }
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "wan {{\"msgs\":{msgs},\"bytes\":{bytes}}}");
    let _ = out.flush();
}
