//! Closed-loop Steward clients over the real network (`loadgen local`).
//!
//! Every logical client is a tokio task driving a sans-IO [`steward::client::Client`] over a
//! QUIC [`Transport`] of its own, bound to the client's address from the deployment's address
//! map and shaped (with `--wan emulate`) as if it ran in its site. A task per client keeps
//! identities simple: each transport presents the client's own TLS certificate
//! (`client-<i>`), so a replica learns the client id from the authenticated connection.
//! Latencies of operations completing inside the measurement window go into one HDR
//! histogram.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use bytes::Bytes;
use hdrhistogram::Histogram;
use steward::client::{Client, ClientAction, ClientConfig};
use steward::crypto::{Crypto, RealCrypto};
use steward::msg::Message;
use steward::replica::Dest;
use steward_config::ServerId;
use steward_crypto::signature::VerifyingKey;
use steward_crypto::threshold::ThresholdPublicKey;
use steward_deploy::{Addresses, Deployment};
use steward_net::Transport;
use steward_runtime::{client_site, transport_config, NodeKind, WanMode};
use tokio::sync::watch;
use tokio::time::Instant;

/// What the clients measured.
pub struct ClientReport {
    /// Operations completed inside the window.
    pub completed: u64,
    /// Their latencies, in microseconds.
    pub histogram: Histogram<u64>,
    /// Replies that failed verification (with the first reason).
    pub bad_replies: u64,
    /// The first bad reply's reason.
    pub first_bad: Option<String>,
}

/// The measurement window: operations completing in `[start, end]` count.
#[derive(Clone, Copy)]
pub struct Window {
    /// Warm-up end.
    pub start: Instant,
    /// Measurement end.
    pub end: Instant,
}

struct Shared {
    hist: Histogram<u64>,
    completed: u64,
    bad: u64,
    first_bad: Option<String>,
}

/// Public keys every client needs.
#[derive(Clone)]
struct Publics {
    sites: Vec<ThresholdPublicKey>,
    servers: HashMap<ServerId, VerifyingKey>,
    clients: Vec<VerifyingKey>,
}

/// Started clients: stop them with [`Clients::stop`].
pub struct Clients {
    stop: watch::Sender<bool>,
    tasks: tokio::task::JoinSet<Result<()>>,
    shared: Arc<Mutex<Shared>>,
}

/// Binds `n` clients (ids `0..n`) and starts them; they run until [`Clients::stop`].
pub fn start(
    dep: &Deployment,
    n: u32,
    addresses: &Addresses,
    wan: WanMode,
    write_pct: u32,
    window: Window,
) -> Result<Clients> {
    let publics = Publics {
        sites: dep
            .topology
            .sites
            .iter()
            .map(|s| dep.site_threshold_key(s.id))
            .collect::<Result<_, _>>()?,
        servers: dep
            .topology
            .steward_servers()
            .map(|s| Ok((s, dep.steward_public(s)?)))
            .collect::<Result<_, steward_deploy::DeployError>>()?,
        clients: (0..dep.manifest.clients)
            .map(|c| dep.client_public(c))
            .collect::<Result<_, _>>()?,
    };
    let ca = dep.ca_cert()?;
    let file = dep.layout.addresses().display().to_string();
    let sizes: Vec<u32> = dep.topology.sites.iter().map(|s| s.servers).collect();
    let fs: Vec<u32> = dep.topology.sites.iter().map(|s| s.f).collect();
    let shared = Arc::new(Mutex::new(Shared {
        hist: Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid bounds"),
        completed: 0,
        bad: 0,
        first_bad: None,
    }));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..n {
        let me = NodeKind::Client(c);
        let name = me.name();
        let site = client_site(&dep.topology, dep.manifest.clients, c);
        let bind = *addresses
            .get(name.as_str())
            .ok_or_else(|| anyhow!("{file}: no address for {name}"))?;
        let cfg = transport_config(
            me,
            site,
            dep.client_tls(c)?,
            ca.clone(),
            bind,
            &dep.topology,
            dep.manifest.clients,
            addresses,
            &file,
            wan,
        )?;
        let (transport, inbound) =
            Transport::bind(cfg).with_context(|| format!("{name}: cannot bind {bind}"))?;
        let p = publics.clone();
        let crypto = Crypto::new(Box::new(RealCrypto::new(
            Some(dep.client_secret(c)?),
            None,
            p.sites,
            p.servers,
            p.clients,
            u64::from(c) ^ 0x5eed,
        )));
        let client = Client::new(
            ClientConfig {
                id: c,
                site,
                servers: sizes.clone(),
                f: fs.clone(),
                write_pct,
                value_len: 200,
                timeout: Duration::from_secs(2),
                seed: rand::random(),
            },
            crypto,
        );
        tasks.spawn(client_loop(
            client,
            transport,
            inbound,
            stop_rx.clone(),
            shared.clone(),
            window,
        ));
    }
    Ok(Clients {
        stop: stop_tx,
        tasks,
        shared,
    })
}

impl Clients {
    /// Stops every client, closes the transports and returns what they measured.
    pub async fn stop(mut self) -> Result<ClientReport> {
        let _ = self.stop.send(true);
        let mut first_err = None;
        while let Some(r) = self.tasks.join_next().await {
            match r {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    first_err.get_or_insert(e);
                }
                Err(e) => {
                    first_err.get_or_insert(anyhow!("client task failed: {e}"));
                }
            }
        }
        if let Some(e) = first_err {
            return Err(e);
        }
        let s = self.shared.lock().unwrap_or_else(|p| p.into_inner());
        Ok(ClientReport {
            completed: s.completed,
            histogram: s.hist.clone(),
            bad_replies: s.bad,
            first_bad: s.first_bad.clone(),
        })
    }
}

async fn client_loop(
    mut client: Client,
    transport: Transport,
    mut inbound: tokio::sync::mpsc::Receiver<(steward_net::PeerName, Bytes)>,
    mut stop: watch::Receiver<bool>,
    shared: Arc<Mutex<Shared>>,
    window: Window,
) -> Result<()> {
    let start = Instant::now();
    let mut timers: BinaryHeap<Reverse<(Instant, u64, u64)>> = BinaryHeap::new();
    let mut seq = 0u64;
    let mut actions = client.start(start.elapsed());
    loop {
        for a in actions.drain(..) {
            match a {
                ClientAction::Send { to, env } => {
                    // A full queue or unknown peer is a lost message; the client's timeout
                    // retransmits.
                    let _ =
                        transport.send(&NodeKind::Server(to).name(), Bytes::from(env.msg.encode()));
                }
                ClientAction::Timer { after, token } => {
                    seq += 1;
                    timers.push(Reverse((Instant::now() + after, seq, token)));
                }
                ClientAction::Completed { latency, .. } => {
                    let now = Instant::now();
                    if now >= window.start && now <= window.end {
                        let mut s = shared.lock().unwrap_or_else(|p| p.into_inner());
                        s.completed += 1;
                        let us = (latency.as_micros() as u64).max(1);
                        let _ = s.hist.record(us.min(3_600_000_000));
                    }
                }
                ClientAction::BadReply(why) => {
                    let mut s = shared.lock().unwrap_or_else(|p| p.into_inner());
                    s.bad += 1;
                    s.first_bad.get_or_insert_with(|| why.to_string());
                }
            }
        }
        let next = timers.peek().map(|Reverse((due, _, _))| *due);
        tokio::select! {
            biased;
            _ = stop.wait_for(|s| *s) => break,
            _ = tokio::time::sleep_until(next.unwrap_or_else(Instant::now)), if next.is_some() => {
                let now = Instant::now();
                while let Some(Reverse((due, _, token))) = timers.peek().copied() {
                    if due > now {
                        break;
                    }
                    timers.pop();
                    actions.extend(client.on_timer(start.elapsed(), token));
                }
            }
            m = inbound.recv() => {
                let Some((peer, bytes)) = m else { break };
                let Some(NodeKind::Server(s)) = NodeKind::parse(peer.as_str()) else { continue };
                if let Ok(msg) = Message::decode(&bytes) {
                    actions = client.on_message(start.elapsed(), Dest::Server(s), &msg);
                }
            }
        }
    }
    client.stop();
    transport.shutdown().await;
    Ok(())
}
