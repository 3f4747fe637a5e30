//! The main loop of a replica process (`steward-node`, `pbft-node`, `loadgen replica`): bind
//! the transport, announce readiness, run the protocol core on a thread of its own (so that
//! expensive crypto never stalls the transport's tasks), answer SIGUSR1 with the WAN counters,
//! and stop cleanly on SIGTERM or Ctrl-C with a final `stats {...}` line.
//!
//! stdout protocol (read by `loadgen local`): `ready <name> <addr>` once bound; then, with
//! `--metrics`, `metrics <name> <addr>` (the HTTP endpoint's bound address, already
//! answering); `wan {"msgs":..,"bytes":..}` per SIGUSR1 (messages and payload bytes sent so far to nodes of
//! other sites); `stats {...}` after stopping. Logs go to stderr.

use std::collections::HashSet;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use steward_net::PeerStats;

use anyhow::{anyhow, bail, Context, Result};
use clap::ValueEnum;
use steward_config::{SiteId, Topology};
use steward_deploy::Deployment;
use steward_net::{NodeCert, PeerName, Transport, TransportConfig};
use tokio::sync::oneshot;

use crate::core::{drive_observed, Core, DriveStats, Observer};
use crate::durable_log::DurableLog;
use crate::metrics::{self, CoreSnapshot};
use crate::{open_wan_queues, protocol_replicas, transport_config, NodeKind, Protocol, WanMode};

/// Log output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// `<program> <node>: message` lines.
    Human,
    /// One JSON object per line.
    Json,
}

/// How a replica process uses threads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum Threads {
    /// The protocol core and the QUIC transport share one thread: no hand-off between threads
    /// for any message sent or received (each cost a futex wake-up and, on a busy host, a
    /// context switch). The core's crypto then delays the transport by its duration (a share:
    /// about 0.25 ms), which no WAN latency notices. Best when replicas share cores.
    #[default]
    One,
    /// The core on a thread of its own, the transport on two workers: crypto overlaps with
    /// network I/O, for a replica alone on a host with cores to spare.
    Split,
}

impl std::fmt::Display for Threads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Threads::One => "one",
            Threads::Split => "split",
        })
    }
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
    /// A UDP socket already bound, inherited as this file descriptor (from `loadgen local`,
    /// which binds every node's port itself, so that no other process can take it between
    /// choosing and binding). It must be bound to this node's address in addresses.json.
    #[arg(long, conflicts_with = "listen")]
    pub listen_fd: Option<i32>,
    /// WAN emulation: emulate (userspace shaper), netem (the kernel shapes) or off.
    #[arg(long, default_value = "emulate")]
    pub wan: WanMode,
    /// Log format.
    #[arg(long, value_enum, default_value = "human")]
    pub log: LogFormat,
    /// Updates per Proposal / pre-prepare (1 = the paper).
    #[arg(long, default_value_t = 1)]
    pub batch: usize,
    /// Directory of the replica's durable log (`<dir>/<node-name>.wal`): what the replica must
    /// never contradict (its votes) is made durable there before it sends, and recovered when
    /// it starts again. Without it the replica persists nothing and has no crash-restart
    /// safety.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Serve live metrics (Prometheus / OpenMetrics text) over HTTP at
    /// `http://<addr:port>/metrics`; port 0 takes a free port, printed on stdout as
    /// `metrics <node-name> <addr:port>` after the `ready` line.
    #[arg(long, value_name = "ADDR:PORT")]
    pub metrics: Option<std::net::SocketAddr>,
    /// Threads: `one` (the core and the transport on one thread) or `split` (the core on its
    /// own thread, the transport on two workers).
    #[arg(long, value_enum, default_value_t = Threads::One)]
    pub threads: Threads,
}

/// Environment variable of a testing aid: a directory where every replica with a data
/// directory appends each vote it made durable (`Put` of a key starting with `b'v'`) as a line
/// `hex(key) hex(value)` to `<node-name>.votes`, after the sync and before any message that
/// depends on it is sent. Across restarts, a key with two different values is a contradiction.
pub const DURABLE_AUDIT_ENV: &str = "STEWARD_DURABLE_AUDIT";

/// The durable log of replica `me` in `args.data_dir` (`None` without `--data-dir`), replayed;
/// with [`DURABLE_AUDIT_ENV`] set, its votes are audited.
pub fn open_durable(args: &NodeArgs, me: NodeKind) -> Result<Option<DurableLog>> {
    let Some(dir) = &args.data_dir else {
        return Ok(None);
    };
    let path = dir.join(format!("{}.wal", me.name()));
    let mut log =
        DurableLog::open(&path).with_context(|| format!("cannot open {}", path.display()))?;
    if let Some(audit_dir) = std::env::var_os(DURABLE_AUDIT_ENV) {
        let audit_dir = PathBuf::from(audit_dir);
        std::fs::create_dir_all(&audit_dir).with_context(|| format!("{}", audit_dir.display()))?;
        let audit = audit_dir.join(format!("{}.votes", me.name()));
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&audit)
            .with_context(|| format!("{}", audit.display()))?;
        log.set_audit(file);
    }
    Ok(Some(log))
}

/// Installs the process's `tracing` subscriber (once; later calls do nothing): events go to
/// stderr, as text lines or one JSON object per line, filtered by `RUST_LOG` (for example
/// `RUST_LOG=steward_net=debug`; default `info`, so the transport's warnings about refused
/// connections and rejected frames are seen).
pub fn init_tracing(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = || EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_env_filter(filter());
    // An error means a subscriber is already installed, which is what the caller wants.
    let _ = match format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

/// A replica's logger: installs the `tracing` subscriber ([`init_tracing`]) and tags its own
/// lines with the program and node.
#[derive(Clone)]
pub struct Log {
    program: &'static str,
    node: Arc<str>,
}

impl Log {
    /// A logger for `node` of `program`.
    pub fn new(format: LogFormat, program: &'static str, node: &str) -> Log {
        init_tracing(format);
        Log {
            program,
            node: node.into(),
        }
    }

    /// Logs one line at level INFO.
    pub fn info(&self, msg: &str) {
        tracing::info!(program = self.program, node = &*self.node, "{msg}");
    }

    /// Logs one line at level ERROR.
    pub fn error(&self, msg: &str) {
        tracing::error!(program = self.program, node = &*self.node, "{msg}");
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
    let socket = match args.listen_fd {
        Some(fd) => Some(Arc::new(inherited_socket(fd, bind)?)),
        None => None,
    };
    let mut config = transport_config(
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
    )?;
    config.socket = socket;
    Ok(config)
}

/// The UDP socket inherited as file descriptor `fd`, checked to be a UDP socket bound to
/// `expected` (the node's address).
fn inherited_socket(fd: i32, expected: std::net::SocketAddr) -> Result<std::net::UdpSocket> {
    use std::os::fd::{FromRawFd, OwnedFd};
    // SAFETY: fcntl(F_GETFD) only queries the descriptor.
    if fd < 3 || unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
        bail!("--listen-fd {fd}: not an open file descriptor");
    }
    let mut kind: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: kind and len are valid for writes of the sizes given.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_TYPE,
            (&mut kind as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    if rc != 0 || kind != libc::SOCK_DGRAM {
        bail!("--listen-fd {fd}: not a UDP socket");
    }
    // SAFETY: the descriptor is open, a datagram socket, and from here owned by us alone (the
    // launcher passed it for this purpose).
    let socket = std::net::UdpSocket::from(unsafe { OwnedFd::from_raw_fd(fd) });
    let local = socket
        .local_addr()
        .with_context(|| format!("--listen-fd {fd}"))?;
    if local != expected {
        bail!("--listen-fd {fd}: bound to {local}, but this node's address is {expected}");
    }
    Ok(socket)
}

/// The replicas of `protocol` outside `site`: the peers whose traffic is WAN traffic.
pub fn wan_peers(protocol: Protocol, topology: &Topology, site: SiteId) -> HashSet<PeerName> {
    protocol_replicas(protocol, topology)
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
    /// The durable log (from [`open_durable`]); `None`: persist nothing.
    pub durable: Option<DurableLog>,
    /// The protocol (label `protocol` of the metrics).
    pub protocol: Protocol,
    /// Where to serve live metrics (`--metrics`); `None`: no endpoint.
    pub metrics: Option<std::net::SocketAddr>,
    /// How the process uses threads (`--threads`).
    pub threads: Threads,
}

/// Runs a replica until SIGTERM/SIGINT; see the module documentation for its stdout lines.
pub fn serve(setup: NodeSetup, log: &Log) -> Result<()> {
    let rt = if setup.threads == Threads::One {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
    }
    .context("cannot start the tokio runtime")?;
    rt.block_on(serve_async(setup, log))
}

async fn serve_async(setup: NodeSetup, log: &Log) -> Result<()> {
    let NodeSetup {
        transport: cfg,
        mut core,
        wan_peers,
        description,
        durable,
        protocol,
        metrics,
        threads,
    } = setup;
    match &durable {
        Some(d) if d.recovered() > 0 => {
            core.recover(d.store());
            log.info(&format!(
                "recovered {} durable entries ({} bytes of records) from {}",
                d.recovered(),
                d.live_bytes(),
                d.path().display()
            ));
        }
        Some(d) => log.info(&format!(
            "durable log {}: empty, nothing to recover",
            d.path().display()
        )),
        None => log.info(
            "no --data-dir: durable writes are dropped; this replica has no crash-restart safety",
        ),
    }
    let name = cfg.name.clone();
    let bind = cfg.bind_addr;
    let (transport, inbound) =
        Transport::bind(cfg).with_context(|| format!("{name}: cannot bind {bind}"))?;
    // Watch the signals before announcing readiness: from then on loadgen may send them.
    let mut signals = Signals::new()?;
    let local = transport.local_addr();
    log.info(&format!("listening on {local} ({description})"));
    let snapshot = Arc::new(Mutex::new(CoreSnapshot::default()));
    let endpoint = match metrics {
        Some(addr) => {
            let source = metrics::Source {
                node: name.to_string(),
                protocol: protocol.name().to_string(),
                core: snapshot.clone(),
                transport: transport.clone(),
                wan_peers: wan_peers.clone(),
            };
            let server = metrics::Server::start(addr, source)?;
            log.info(&format!(
                "metrics at http://{}/metrics",
                server.local_addr()
            ));
            Some(server)
        }
        None => None,
    };
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "ready {name} {local}").context("stdout")?;
        if let Some(server) = &endpoint {
            writeln!(out, "metrics {name} {}", server.local_addr()).context("stdout")?;
        }
        out.flush().context("stdout")?;
    }
    let publish = endpoint.is_some().then_some(snapshot);
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let stop = async {
        let _ = stop_rx.await;
    };
    let (driver, protocol) = if threads == Threads::One {
        // The core on this thread, between the transport's tasks (see `Threads::One`).
        let run = run_core(core, inbound, transport.clone(), durable, stop, publish);
        tokio::pin!(run);
        let (reason, finished) =
            until_stopped(&mut signals, &transport, &wan_peers, &mut run).await;
        log.info(&format!("{reason}; shutting down"));
        let _ = stop_tx.send(());
        match finished {
            Some(out) => out,
            None => run.await,
        }
    } else {
        let (done_tx, mut done_rx) = oneshot::channel();
        let t = transport.clone();
        let thread = std::thread::Builder::new()
            .name("replica".into())
            .spawn(move || {
                let out = tokio::runtime::Builder::new_current_thread()
                    .enable_time()
                    .build()
                    .map(|rt| rt.block_on(run_core(core, inbound, t, durable, stop, publish)));
                let _ = done_tx.send(());
                out
            })
            .context("cannot start the replica thread")?;
        let (reason, finished) =
            until_stopped(&mut signals, &transport, &wan_peers, &mut done_rx).await;
        log.info(&format!("{reason}; shutting down"));
        let _ = stop_tx.send(());
        if finished.is_none() {
            let _ = done_rx.await;
        }
        let joined = thread
            .join()
            .map_err(|_| anyhow!("the replica thread panicked"))?;
        joined.context("replica runtime")?
    };
    if let Some(server) = endpoint {
        server.stop();
    }
    transport.shutdown().await;
    let mut line = serde_json::Map::new();
    line.insert("node".into(), name.as_str().into());
    line.extend(driver.to_json());
    line.extend(protocol);
    line.extend(transport_counters(&transport));
    let line = serde_json::Value::Object(line);
    // The launcher may be gone (stdout a broken pipe): the line is then only in the log.
    if let Err(e) = write_line(&mut std::io::stdout().lock(), &format!("stats {line}")) {
        log.info(&format!("cannot print the stats line on stdout: {e}"));
    }
    log.info(&format!("stopped: {line}"));
    if driver.persist_failures > 0 {
        bail!("the durable log failed (see above); stopped without sending unpersisted messages");
    }
    Ok(())
}

/// Waits for SIGTERM, SIGINT or the end of `done` (with its output), printing the WAN
/// counters on every SIGUSR1 meanwhile.
async fn until_stopped<F: std::future::Future + Unpin>(
    signals: &mut Signals,
    transport: &Transport,
    wan_peers: &HashSet<PeerName>,
    done: &mut F,
) -> (&'static str, Option<F::Output>) {
    loop {
        tokio::select! {
            out = &mut *done => return ("the replica stopped", Some(out)),
            _ = signals.term.recv() => return ("SIGTERM", None),
            _ = signals.int.recv() => return ("SIGINT", None),
            _ = signals.usr1.recv() => print_wan(transport, wan_peers),
        }
    }
}

/// Drives `core` until `stop`, publishing a snapshot for the metrics endpoint (when there is
/// one) every `PUBLISH_PERIOD` between two steps, so that a scrape never waits for the
/// protocol. Returns the driver's and the core's counters.
async fn run_core(
    mut core: Box<dyn Core>,
    mut inbound: steward_net::Inbound,
    transport: Transport,
    mut durable: Option<DurableLog>,
    stop: impl std::future::Future<Output = ()>,
    publish: Option<Arc<Mutex<CoreSnapshot>>>,
) -> (DriveStats, serde_json::Map<String, serde_json::Value>) {
    let mut look = |c: &(dyn Core + 'static), d: &DriveStats| {
        if let Some(shared) = &publish {
            let snap = CoreSnapshot::of(c, d);
            if let Ok(mut s) = shared.lock() {
                *s = snap;
            }
        }
    };
    let observer: Option<Observer<'_, dyn Core>> = publish
        .is_some()
        .then_some((metrics::PUBLISH_PERIOD, &mut look as _));
    let stats = drive_observed(
        &mut *core,
        &mut inbound,
        &transport,
        durable.as_mut(),
        stop,
        |_| {},
        observer,
    )
    .await;
    (stats, core.stats())
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

/// The transport's counters, summed over peers, for the stats line: connection attempts
/// accepted, retried, filtered and rate-limited; connections refused and replaced, connections accepted and dialed, failed dials, rejected frames, dropped messages
/// and bytes.
pub fn transport_counters(transport: &Transport) -> serde_json::Map<String, serde_json::Value> {
    let mut sum = PeerStats::default();
    for st in transport.all_stats().values() {
        sum.messages_dropped += st.messages_dropped;
        sum.bytes_dropped += st.bytes_dropped;
        sum.frames_rejected += st.frames_rejected;
        sum.connects += st.connects;
        sum.connect_failures += st.connect_failures;
        sum.accepts += st.accepts;
    }
    let handshakes = transport.handshake_stats();
    let mut m = serde_json::Map::new();
    for (k, v) in [
        ("net_handshakes_accepted", handshakes.accepted),
        ("net_handshake_retries", handshakes.retries),
        ("net_handshakes_filtered", handshakes.filtered),
        ("net_handshakes_rate_limited", handshakes.rate_limited),
        ("net_rejected_connections", transport.rejected_connections()),
        ("net_replaced_connections", transport.replaced_connections()),
        ("net_accepts", sum.accepts),
        ("net_connects", sum.connects),
        ("net_connect_failures", sum.connect_failures),
        ("net_frames_rejected", sum.frames_rejected),
        ("net_messages_dropped", sum.messages_dropped),
        ("net_bytes_dropped", sum.bytes_dropped),
    ] {
        m.insert(k.into(), v.into());
    }
    m
}

/// Writes and flushes one line; an error (a closed pipe) is returned, never a panic.
fn write_line(out: &mut impl Write, line: &str) -> std::io::Result<()> {
    writeln!(out, "{line}")?;
    out.flush()
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
    let _ = write_line(
        &mut std::io::stdout().lock(),
        &format!("wan {{\"msgs\":{msgs},\"bytes\":{bytes}}}"),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;
    use std::time::Duration;
    use steward_net::DeploymentCa;

    const CHILD_ENV: &str = "STEWARD_RUNTIME_LOG_CHILD";

    /// Entry point of the child process of `logs_go_to_stderr_filtered_in_either_format`:
    /// installs the subscriber in the format named by the variable and logs at every level.
    #[test]
    fn log_child() {
        let Ok(format) = std::env::var(CHILD_ENV) else {
            return;
        };
        let format = if format == "json" {
            LogFormat::Json
        } else {
            LogFormat::Human
        };
        let log = Log::new(format, "steward-node", "s0.1");
        log.info("listening");
        tracing::warn!(target: "steward_net::transport", node = "steward-s0.1", "refused connection");
        tracing::debug!(target: "steward_net::transport", "send stream failed");
        log.error("error: boom");
    }

    fn child_stderr(format: &str, rust_log: Option<&str>) -> String {
        let mut cmd = Command::new(std::env::current_exe().unwrap());
        cmd.args(["--exact", "serve::tests::log_child", "--nocapture"])
            .env(CHILD_ENV, format)
            .env_remove("RUST_LOG");
        if let Some(filter) = rust_log {
            cmd.env("RUST_LOG", filter);
        }
        let out = cmd.output().unwrap();
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    #[test]
    fn logs_go_to_stderr_filtered_in_either_format() {
        if std::env::var(CHILD_ENV).is_ok() {
            return;
        }
        // Default filter: info and above, the transport's warnings included.
        let human = child_stderr("human", None);
        assert!(
            human.contains("INFO") && human.contains("listening"),
            "{human}"
        );
        assert!(
            human.contains("node=\"s0.1\"") || human.contains("node=s0.1"),
            "{human}"
        );
        assert!(
            human.contains("WARN") && human.contains("refused connection"),
            "{human}"
        );
        assert!(!human.contains("send stream failed"), "{human}");
        // RUST_LOG selects: debug of the transport only.
        let debug = child_stderr("human", Some("steward_net=debug"));
        assert!(debug.contains("send stream failed"), "{debug}");
        assert!(!debug.contains("listening"), "{debug}");
        // JSON: one object per line.
        let json = child_stderr("json", None);
        let events: Vec<serde_json::Value> = json
            .lines()
            .filter(|l| l.starts_with('{'))
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(events.len(), 3, "{json}");
        assert_eq!(events[1]["level"], "WARN");
        assert_eq!(events[1]["message"], "refused connection");
        assert_eq!(events[2]["level"], "ERROR");
        assert_eq!(events[0]["node"], "s0.1");
    }

    #[test]
    fn inherited_sockets_are_checked() {
        use std::os::fd::IntoRawFd;
        let err = inherited_socket(1, "127.0.0.1:9".parse().unwrap()).unwrap_err();
        assert!(err.to_string().contains("--listen-fd 1"), "{err}");
        let file = tempfile::tempfile().unwrap();
        let fd = file.into_raw_fd();
        let err = inherited_socket(fd, "127.0.0.1:9".parse().unwrap()).unwrap_err();
        assert!(err.to_string().contains("not a UDP socket"), "{err}");
        // SAFETY: fd is ours (from into_raw_fd) and closed once.
        unsafe { libc::close(fd) };
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = socket.local_addr().unwrap();
        let other = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let other_addr = other.local_addr().unwrap();
        let err = inherited_socket(other.into_raw_fd(), addr).unwrap_err();
        assert!(
            err.to_string().contains(&format!("bound to {other_addr}")),
            "{err}"
        );
        let adopted = inherited_socket(socket.into_raw_fd(), addr).unwrap();
        assert_eq!(adopted.local_addr().unwrap(), addr);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn stats_line_counts_refused_connections_failed_dials_and_drops() {
        let ca = DeploymentCa::generate("counters").unwrap();
        let ip = std::net::Ipv4Addr::new(127, 0, 3, 7);
        let bind = std::net::SocketAddr::from((ip, 0));
        let mut cfg = TransportConfig::new(
            "pbft-r0",
            ca.issue("pbft-r0").unwrap(),
            ca.cert_der().to_vec(),
            bind,
        );
        cfg.connect_timeout = Duration::from_millis(200);
        cfg.max_queue_bytes = 100;
        // A replica address where nobody listens.
        let dead = PeerName::from("pbft-r1");
        cfg.peers
            .insert(dead.clone(), std::net::SocketAddr::from((ip, 9)));
        let (t, _rx) = Transport::bind(cfg).unwrap();
        // A node of another deployment dials us: refused.
        let other = DeploymentCa::generate("elsewhere").unwrap();
        let mut ocfg = TransportConfig::new(
            "pbft-r1",
            other.issue("pbft-r1").unwrap(),
            ca.cert_der().to_vec(),
            bind,
        );
        ocfg.peers.insert(PeerName::from("pbft-r0"), t.local_addr());
        let (o, _orx) = Transport::bind(ocfg).unwrap();
        o.send(&PeerName::from("pbft-r0"), bytes::Bytes::from_static(b"x"))
            .unwrap();
        t.send(&dead, bytes::Bytes::from(vec![0u8; 80])).unwrap();
        assert!(t.send(&dead, bytes::Bytes::from(vec![0u8; 80])).is_err());
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let counters = loop {
            let c = transport_counters(&t);
            if c["net_rejected_connections"].as_u64() >= Some(1)
                && c["net_connect_failures"].as_u64() >= Some(1)
            {
                break c;
            }
            assert!(std::time::Instant::now() < deadline, "{c:?}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        assert_eq!(counters["net_messages_dropped"], 1);
        assert_eq!(counters["net_bytes_dropped"], 80);
        assert_eq!(counters["net_connects"], 0);
        // The foreign node's attempts were retried (no complete address map here) and then
        // reached the TLS handshake, which refused them.
        assert!(
            counters["net_handshake_retries"].as_u64() >= Some(1),
            "{counters:?}"
        );
        assert!(
            counters["net_handshakes_accepted"].as_u64() >= Some(1),
            "{counters:?}"
        );
        assert_eq!(counters["net_frames_rejected"], 0);
        o.shutdown().await;
        t.shutdown().await;
    }
}
