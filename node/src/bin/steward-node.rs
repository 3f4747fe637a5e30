//! `steward-node`: one Steward replica on the real network.
//!
//! Loads its keys, TLS identity and the peer address map from a deployment directory, binds
//! its QUIC transport (shaped by the topology with `--wan emulate`), and runs the sans-IO
//! replica on a thread of its own, so that expensive crypto never stalls the transport's
//! tasks. Prints `ready <name> <addr>` on stdout once bound; stops cleanly on SIGTERM or
//! Ctrl-C and then prints a `stats {...}` line. SIGUSR1 prints `wan {"msgs":..,"bytes":..}`,
//! what it has sent so far to servers of other sites (loadgen reads it at the start and end
//! of its measurement window).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
#[cfg(test)]
use std::time::Duration;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Context, Result};
use bytes::Bytes;
use clap::{Parser, ValueEnum};
use steward::crypto::{Crypto, RealCrypto};
use steward::msg::Message;
use steward::replica::{Action, Dest, Replica, ReplicaConfig};
use steward_config::ServerId;
use steward_deploy::Deployment;
use steward_net::{PeerName, Transport};
use steward_runtime::{transport_config, NodeKind, WanMode};
use tokio::sync::{mpsc, oneshot};

/// Log output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum LogFormat {
    /// `steward-node s0.1: message` lines.
    Human,
    /// One JSON object per line.
    Json,
}

/// Run one Steward replica.
#[derive(Parser, Debug)]
#[command(name = "steward-node", version, about)]
struct Args {
    /// Deployment directory (from `loadgen keygen` or `loadgen local`).
    #[arg(long)]
    deployment: PathBuf,
    /// This server: s<site>.<index>.
    #[arg(long)]
    id: String,
    /// UDP address to bind (default: this node's entry in addresses.json).
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// WAN emulation: emulate (userspace shaper), netem (kernel shapes) or off.
    #[arg(long, default_value = "emulate")]
    wan: WanMode,
    /// Log format.
    #[arg(long, value_enum, default_value = "human")]
    log: LogFormat,
    /// Updates per Proposal (1 = the paper).
    #[arg(long, default_value_t = 1)]
    batch: usize,
}

#[derive(Clone)]
struct Log {
    format: LogFormat,
    node: Arc<str>,
}

impl Log {
    fn info(&self, msg: &str) {
        let line = match self.format {
            LogFormat::Human => format!("steward-node {}: {msg}", self.node),
            LogFormat::Json => serde_json::json!({
                "ts": SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0),
                "node": &*self.node,
                "msg": msg,
            })
            .to_string(),
        };
        eprintln!("{line}");
    }
}

fn main() {
    let args = Args::parse();
    let log = Log {
        format: args.log,
        node: args.id.clone().into(),
    };
    if let Err(e) = run(args, &log) {
        log.info(&format!("error: {e:#}"));
        std::process::exit(1);
    }
}

/// Counters of the driver (the replica counts protocol-level rejections itself).
#[derive(Debug, Default)]
struct DriverStats {
    received: u64,
    malformed: u64,
    unknown_sender: u64,
    sent: u64,
    send_errors: u64,
    executed: u64,
    timers: u64,
}

fn run(args: Args, log: &Log) -> Result<()> {
    let id = ServerId::parse(&args.id).map_err(|e| anyhow!("--id: {e}"))?;
    if args.batch == 0 {
        bail!("--batch must be at least 1");
    }
    let dep = Deployment::load(&args.deployment)?;
    if !dep.topology.has_server(id) {
        bail!(
            "{}: no Steward server {id} in this deployment",
            args.deployment.display()
        );
    }
    let secrets = dep.steward_secrets(id)?;
    let sites = dep
        .topology
        .sites
        .iter()
        .map(|s| dep.site_threshold_key(s.id))
        .collect::<Result<Vec<_>, _>>()?;
    let mut servers = HashMap::new();
    for s in dep.topology.steward_servers() {
        servers.insert(s, dep.steward_public(s)?);
    }
    let clients = (0..dep.manifest.clients)
        .map(|c| dep.client_public(c))
        .collect::<Result<Vec<_>, _>>()?;
    let identity = dep.steward_tls(id)?;
    let ca = dep.ca_cert()?;
    let addresses = dep.addresses()?;
    let me = NodeKind::Server(id);
    let name = me.name();
    let addresses_file = dep.layout.addresses().display().to_string();
    let bind = match args.listen {
        Some(a) => a,
        None => *addresses
            .get(name.as_str())
            .ok_or_else(|| anyhow!("{addresses_file}: no address for {name}"))?,
    };
    let cfg = transport_config(
        me,
        id.site,
        identity,
        ca,
        bind,
        &dep.topology,
        dep.manifest.clients,
        &addresses,
        &addresses_file,
        args.wan,
    )?;

    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
        ^ u64::from(std::process::id()) << 32;
    let own_site = sites[id.site.index()].clone();
    let crypto = Crypto::new(Box::new(RealCrypto::new(
        Some(secrets.signing),
        Some((own_site, secrets.share)),
        sites,
        servers,
        clients,
        seed,
    )));
    let sizes: Vec<u32> = dep.topology.sites.iter().map(|s| s.servers).collect();
    let fs: Vec<u32> = dep.topology.sites.iter().map(|s| s.f).collect();
    let mut rcfg = ReplicaConfig::new(id, sizes, fs);
    rcfg.batch = args.batch;
    let replica = Replica::new(rcfg, crypto);

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")?;
    rt.block_on(async move {
        let (transport, inbound) =
            Transport::bind(cfg).with_context(|| format!("{name}: cannot bind {bind}"))?;
        // Watch the signals before announcing readiness: from then on loadgen may send them.
        let mut signals = Signals::new()?;
        let local = transport.local_addr();
        log.info(&format!(
            "listening on {local} (wan {}, {} sites, {} client keys)",
            args.wan,
            dep.topology.sites.len(),
            dep.manifest.clients
        ));
        {
            let mut out = std::io::stdout().lock();
            writeln!(out, "ready {name} {local}").context("stdout")?;
            out.flush().context("stdout")?;
        }
        let (stop_tx, stop_rx) = oneshot::channel();
        let (done_tx, done_rx) = oneshot::channel();
        let t = transport.clone();
        let thread = std::thread::Builder::new()
            .name("replica".into())
            .spawn(move || {
                let stats = tokio::runtime::Builder::new_current_thread()
                    .enable_time()
                    .build()
                    .map(|rt| rt.block_on(replica_loop(replica, inbound, t, stop_rx)));
                let _ = done_tx.send(());
                stats
            })
            .context("cannot start the replica thread")?;
        let mut done_rx = done_rx;
        let reason = loop {
            tokio::select! {
                _ = signals.term.recv() => break "SIGTERM",
                _ = signals.int.recv() => break "SIGINT",
                _ = signals.usr1.recv() => print_wan(&transport, id.site),
                _ = &mut done_rx => break "the replica stopped",
            }
        };
        log.info(&format!("{reason}; shutting down"));
        let _ = stop_tx.send(());
        let _ = done_rx.await;
        let joined = thread
            .join()
            .map_err(|_| anyhow!("the replica thread panicked"))?;
        let (driver, replica_stats) = joined.context("replica runtime")?;
        transport.shutdown().await;
        let line = serde_json::json!({
            "node": name.as_str(),
            "received": driver.received,
            "malformed": driver.malformed,
            "unknown_sender": driver.unknown_sender,
            "sent": driver.sent,
            "send_errors": driver.send_errors,
            "executed": driver.executed,
            "timers": driver.timers,
            "dropped_invalid": replica_stats.0,
            "local_view_changes": replica_stats.1,
            "global_view_changes": replica_stats.2,
        });
        println!("stats {line}");
        log.info(&format!("stopped: {line}"));
        Ok(())
    })
}

/// The signals the node reacts to: SIGTERM and SIGINT stop it, SIGUSR1 prints the WAN
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

/// Prints `wan {"msgs":..,"bytes":..}`: messages and payload bytes this node has sent so far
/// to servers of other sites.
fn print_wan(transport: &Transport, site: steward_config::SiteId) {
    let (mut msgs, mut bytes) = (0u64, 0u64);
    for (peer, st) in transport.all_stats() {
        if let Some(NodeKind::Server(s)) = NodeKind::parse(peer.as_str()) {
            if s.site != site {
                msgs += st.messages_sent;
                bytes += st.bytes_sent;
            }
        }
    }
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "wan {{\"msgs\":{msgs},\"bytes\":{bytes}}}");
    let _ = out.flush();
}

/// The replica's event loop: inbound messages, timers, stop. Returns the driver's counters
/// and (dropped_invalid, local view changes, global view changes) of the replica.
async fn replica_loop(
    mut replica: Replica,
    mut inbound: mpsc::Receiver<(PeerName, Bytes)>,
    transport: Transport,
    mut stop: oneshot::Receiver<()>,
) -> (DriverStats, (u64, u64, u64)) {
    let start = Instant::now();
    let mut stats = DriverStats::default();
    // (due, sequence, token): every armed timer fires once, in order.
    let mut timers: BinaryHeap<Reverse<(Instant, u64, u64)>> = BinaryHeap::new();
    let mut seq = 0u64;
    let mut names: HashMap<Dest, PeerName> = HashMap::new();
    let me = Dest::Server(replica.id());
    // Messages the replica sends to itself, delivered before the next input.
    let mut loopback: VecDeque<Message> = VecDeque::new();
    let mut actions = replica.start(start.elapsed());
    loop {
        loop {
            apply(
                std::mem::take(&mut actions),
                me,
                &transport,
                &mut Out {
                    timers: &mut timers,
                    seq: &mut seq,
                    names: &mut names,
                    loopback: &mut loopback,
                },
                &mut stats,
            );
            match loopback.pop_front() {
                Some(msg) => actions = replica.on_message(start.elapsed(), me, &msg),
                None => break,
            }
        }
        let next = timers.peek().map(|Reverse((due, _, _))| *due);
        actions = tokio::select! {
            biased;
            _ = &mut stop => break,
            _ = tokio::time::sleep_until(next.unwrap_or_else(Instant::now).into()), if next.is_some() => {
                let now = Instant::now();
                let mut out = Vec::new();
                while let Some(Reverse((due, _, token))) = timers.peek().copied() {
                    if due > now {
                        break;
                    }
                    timers.pop();
                    stats.timers += 1;
                    out.extend(replica.on_timer(start.elapsed(), token));
                }
                out
            }
            m = inbound.recv() => {
                let Some((peer, bytes)) = m else { break };
                stats.received += 1;
                let from = match NodeKind::parse(peer.as_str()) {
                    Some(NodeKind::Server(s)) => Dest::Server(s),
                    Some(NodeKind::Client(c)) => Dest::Client(c),
                    None => {
                        stats.unknown_sender += 1;
                        continue;
                    }
                };
                match Message::decode(&bytes) {
                    Ok(msg) => replica.on_message(start.elapsed(), from, &msg),
                    Err(_) => {
                        stats.malformed += 1;
                        continue;
                    }
                }
            }
        };
    }
    let r = replica.stats();
    let rs = (
        r.dropped_invalid,
        r.local_view_changes,
        r.global_view_changes,
    );
    (stats, rs)
}

/// Where [`apply`] puts timers, cached peer names and self-addressed messages.
struct Out<'a> {
    timers: &'a mut BinaryHeap<Reverse<(Instant, u64, u64)>>,
    seq: &'a mut u64,
    names: &'a mut HashMap<Dest, PeerName>,
    loopback: &'a mut VecDeque<Message>,
}

fn apply(
    actions: Vec<Action>,
    me: Dest,
    transport: &Transport,
    out: &mut Out<'_>,
    stats: &mut DriverStats,
) {
    for a in actions {
        match a {
            Action::Send { to, env } if to == me => out.loopback.push_back(env.msg),
            Action::Send { to, env } => {
                let name = out
                    .names
                    .entry(to)
                    .or_insert_with(|| match to {
                        Dest::Server(s) => NodeKind::Server(s).name(),
                        Dest::Client(c) => NodeKind::Client(c).name(),
                    })
                    .clone();
                match transport.send(&name, Bytes::from(env.msg.encode())) {
                    Ok(()) => stats.sent += 1,
                    Err(e) => {
                        stats.send_errors += 1;
                        if stats.send_errors <= 3 {
                            eprintln!("steward-node: send to {name} failed: {e}");
                        }
                    }
                }
            }
            Action::Timer { after, token } => {
                *out.seq += 1;
                out.timers
                    .push(Reverse((Instant::now() + after, *out.seq, token)));
            }
            Action::Executed(_) => stats.executed += 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use steward::crypto::{FastCrypto, FastIdentity, FastWorld};
    use steward_config::SiteId;
    use steward_net::{DeploymentCa, TransportConfig};

    /// Garbage from an authenticated client is counted and dropped; the replica keeps running
    /// and its loop ends cleanly when the transport closes.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn malformed_input_is_counted_and_dropped() {
        let ca = DeploymentCa::generate("test").unwrap();
        let id = ServerId::new(SiteId(0), 0);
        let rname = NodeKind::Server(id).name();
        let cname = NodeKind::Client(0).name();
        let local = "127.0.0.1:0".parse().unwrap();
        let mut rcfg = TransportConfig::new(
            rname.clone(),
            ca.issue(rname.as_str()).unwrap(),
            ca.cert_der().to_vec(),
            local,
        );
        rcfg.allowed_peers.insert(cname.clone());
        let (server, inbound) = Transport::bind(rcfg).unwrap();
        let mut ccfg = TransportConfig::new(
            cname.clone(),
            ca.issue(cname.as_str()).unwrap(),
            ca.cert_der().to_vec(),
            local,
        );
        ccfg.peers.insert(rname.clone(), server.local_addr());
        let (client, _client_inbound) = Transport::bind(ccfg).unwrap();

        let world = FastWorld::new(1, 64, 307, 128, vec![3]);
        let crypto = Crypto::new(Box::new(FastCrypto::new(world, FastIdentity::Server(id))));
        let replica = Replica::new(ReplicaConfig::new(id, vec![4], vec![1]), crypto);
        let (_stop_tx, stop_rx) = oneshot::channel();
        let task = tokio::spawn(replica_loop(replica, inbound, server.clone(), stop_rx));

        for junk in [&b"\xff\xff\xff"[..], b"x", &[0u8; 300]] {
            client.send(&rname, Bytes::copy_from_slice(junk)).unwrap();
        }
        // Wait (bounded) until the transport delivered all three, then close it: the loop
        // drains what was delivered and stops.
        let deadline = Instant::now() + Duration::from_secs(10);
        while server.stats(&cname).map_or(0, |s| s.messages_received) < 3 {
            assert!(Instant::now() < deadline, "messages not delivered");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        server.shutdown().await;
        drop(server);
        let (stats, _) = tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .expect("the loop ends when the transport closes")
            .unwrap();
        assert_eq!(stats.received, 3);
        assert_eq!(stats.malformed, 3);
        client.shutdown().await;
    }
}
