//! Closed-loop clients over the real network (`loadgen local`), for either protocol.
//!
//! Every logical client is a tokio task driving a sans-IO client core (Steward's or PBFT's)
//! over a QUIC [`Transport`] of its own, bound to the client's address from the deployment's
//! address map and shaped (with `--wan emulate`) as if it ran in its site. A task per client
//! keeps identities simple: each transport presents the client's own TLS certificate
//! (`client-<i>`), so a replica learns the client id from the authenticated connection.
//! Latencies of operations completing inside the measurement window go into one HDR
//! histogram.

use std::sync::{Arc, Mutex};

use anyhow::{anyhow, Context, Result};
use hdrhistogram::Histogram;
use steward_deploy::{Addresses, Deployment};
use steward_net::Transport;
use steward_runtime::{
    client_site, drive, transport_config, Core, Effect, NodeKind, Protocol, WanMode,
};
use tokio::sync::watch;
use tokio::time::Instant;

/// What the clients measured.
pub struct ClientReport {
    /// Operations completed inside the window.
    pub completed: u64,
    /// Their latencies, in microseconds.
    pub histogram: Histogram<u64>,
    /// Replies that failed verification.
    pub bad_replies: u64,
    /// The first bad reply's reason.
    pub first_bad: Option<String>,
    /// Operations issued after the fault mark that completed (any time).
    pub after_mark: u64,
    /// When the first operation issued after the fault mark completed.
    pub recovered_at: Option<Instant>,
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
    /// A fault's instant: completions of operations issued after it are counted.
    mark: Option<Instant>,
    after_mark: u64,
    recovered_at: Option<Instant>,
}

/// Started clients: stop them with [`Clients::stop`].
pub struct Clients {
    stop: watch::Sender<bool>,
    tasks: tokio::task::JoinSet<Result<()>>,
    shared: Arc<Mutex<Shared>>,
}

/// The client cores of one protocol, sharing the public keys loaded once.
enum Factory {
    Steward(bft_nodes::steward::ClientKeys),
    Pbft(bft_nodes::pbft::PublicKeys),
}

impl Factory {
    fn new(protocol: Protocol, dep: &Deployment) -> Result<Factory> {
        Ok(match protocol {
            Protocol::Steward => Factory::Steward(bft_nodes::steward::ClientKeys::load(dep)?),
            Protocol::Pbft => Factory::Pbft(bft_nodes::pbft::PublicKeys::load(dep)?),
        })
    }

    fn client(&self, dep: &Deployment, c: u32, write_pct: u32) -> Result<Box<dyn Core>> {
        let seed = rand::random();
        Ok(match self {
            Factory::Steward(k) => {
                Box::new(bft_nodes::steward::client_core(dep, k, c, write_pct, seed)?)
            }
            Factory::Pbft(k) => Box::new(bft_nodes::pbft::client_core(dep, k, c, write_pct, seed)?),
        })
    }
}

/// Sockets already bound for some nodes (by name): their transports use them instead of
/// binding their address.
pub type Sockets = std::collections::BTreeMap<String, Arc<std::net::UdpSocket>>;

/// Binds `n` clients (ids `0..n`) of `protocol` (on their socket in `sockets`, else on their
/// address) and starts them; they run until [`Clients::stop`]. With a `mark` (the instant of
/// an injected fault), the report tells when the first operation issued after it completed.
#[allow(clippy::too_many_arguments)]
pub fn start(
    mark: Option<Instant>,
    protocol: Protocol,
    dep: &Deployment,
    n: u32,
    addresses: &Addresses,
    sockets: &Sockets,
    wan: WanMode,
    write_pct: u32,
    window: Window,
) -> Result<Clients> {
    let factory = Factory::new(protocol, dep)?;
    let wan_queues = match wan {
        WanMode::Emulate => steward_runtime::open_wan_queues(dep.layout.root(), &dep.topology)?,
        _ => None,
    };
    let ca = dep.ca_cert()?;
    let file = dep.layout.addresses().display().to_string();
    let shared = Arc::new(Mutex::new(Shared {
        hist: Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid bounds"),
        completed: 0,
        bad: 0,
        first_bad: None,
        mark,
        after_mark: 0,
        recovered_at: None,
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
            protocol,
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
            wan_queues.clone(),
        )?;
        let mut cfg = cfg;
        cfg.socket = sockets.get(name.as_str()).cloned();
        let (transport, inbound) =
            Transport::bind(cfg).with_context(|| format!("{name}: cannot bind {bind}"))?;
        let core = factory.client(dep, c, write_pct)?;
        let mut stop = stop_rx.clone();
        let shared = shared.clone();
        tasks.spawn(async move {
            let mut core = core;
            let mut inbound = inbound;
            let stopped = async move {
                let _ = stop.wait_for(|s| *s).await;
            };
            drive(&mut *core, &mut inbound, &transport, None, stopped, |e| {
                record(&shared, window, e)
            })
            .await;
            transport.shutdown().await;
            Ok(())
        });
    }
    Ok(Clients {
        stop: stop_tx,
        tasks,
        shared,
    })
}

/// Counts a completed operation inside the window, or a bad reply.
fn record(shared: &Mutex<Shared>, window: Window, e: &Effect) {
    match e {
        Effect::Completed { latency } => {
            let now = Instant::now();
            let mut s = shared.lock().unwrap_or_else(|p| p.into_inner());
            if now >= window.start && now <= window.end {
                s.completed += 1;
                let us = (latency.as_micros() as u64).clamp(1, 3_600_000_000);
                let _ = s.hist.record(us);
            }
            if s.mark
                .is_some_and(|m| now.checked_sub(*latency).is_some_and(|issued| issued >= m))
            {
                s.after_mark += 1;
                s.recovered_at.get_or_insert(now);
            }
        }
        Effect::BadReply(why) => {
            let mut s = shared.lock().unwrap_or_else(|p| p.into_inner());
            s.bad += 1;
            s.first_bad.get_or_insert_with(|| why.to_string());
        }
        _ => {}
    }
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
            after_mark: s.after_mark,
            recovered_at: s.recovered_at,
        })
    }
}

/// The propagation lower bound of an update for clients `0..n` of a deployment, averaged over
/// their sites (the `lat_bound_ms` column).
pub fn latency_bound(protocol: Protocol, dep: &Deployment, n: u32) -> f64 {
    let sum: f64 = (0..n)
        .map(|c| client_site(&dep.topology, dep.manifest.clients, c))
        .map(|s| match protocol {
            Protocol::Steward => steward::simulation::update_latency_bound(
                &dep.topology,
                s,
                steward_config::SiteId(0),
            ),
            Protocol::Pbft => pbft::simulation::update_latency_bound(&dep.topology, s),
        })
        .sum();
    sum / f64::from(n.max(1))
}

impl ClientReport {
    /// (mean, p50, p99, max) latency in ms; zeros when nothing completed.
    pub fn latency_ms(&self) -> (f64, f64, f64, f64) {
        let h = &self.histogram;
        let ms = |us: u64| us as f64 / 1e3;
        let mean = if self.completed > 0 {
            h.mean() / 1e3
        } else {
            0.0
        };
        (
            mean,
            ms(h.value_at_quantile(0.5)),
            ms(h.value_at_quantile(0.99)),
            ms(h.max()),
        )
    }

    /// The `safety` column: "ok" or the bad replies.
    pub fn safety(&self) -> String {
        match &self.first_bad {
            None => "ok".to_string(),
            Some(why) => format!("{} bad replies (first: {why})", self.bad_replies),
        }
    }
}
