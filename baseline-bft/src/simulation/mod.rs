//! PBFT in the deterministic simulator: replicas placed by the topology's `[pbft]` section and
//! closed-loop clients as simulator processes, the crypto cost model, Byzantine variants,
//! Steward's safety checker and the same [`RunReport`] as Steward's runs.

mod campaign;
pub mod faults;
#[cfg(test)]
mod restart;

pub use campaign::{campaign, CampaignRun};
pub use faults::{Fault, ReplicaNode};

use std::rc::Rc;
use std::time::Duration;

use bft_core::crypto::{Crypto, FastIdentity, FastWorld};
use bft_core::NodeId;
use bft_harness::faults::{Outage, Restart};
use bft_harness::keys::{SigningKeys, SimKeys};
use bft_harness::{AddressBook, NodeProc, Packet, Shared};
pub use bft_harness::{CostTable, CryptoMode, RunReport, SafetyChecker};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use steward_config::{ServerId, SiteId, Topology};
use steward_crypto::signature::{Scheme, SigningKey};
use steward_sim::{Sim, SimConfig, SimError};

use crate::client::{Client, ClientConfig};
use crate::msg::Message;
use crate::replica::{Replica, ReplicaConfig};

/// A PBFT message in flight in the simulator.
pub type SimPacket = Packet<Message>;
/// A PBFT replica (possibly inside fault wrappers) as a simulator process.
pub type ReplicaProc = NodeProc<Box<dyn ReplicaNode>>;
/// A PBFT client as a simulator process.
pub type ClientProc = NodeProc<Client>;

/// Everything a simulated PBFT run needs (mirrors `steward::simulation::WorldConfig`).
#[derive(Clone, Debug)]
pub struct PbftWorldConfig {
    /// The topology: `[pbft]` places the replicas, `[clients]` the clients.
    pub topology: Topology,
    /// Closed-loop clients.
    pub clients: u32,
    /// Percentage of client operations that are updates.
    pub write_pct: u32,
    /// Most requests per Pre-Prepare (1 = the paper).
    pub batch: usize,
    /// Pre-Prepares in flight; `None`: the water marks only for batch 1, 4 otherwise.
    pub pipeline: Option<u64>,
    /// `K`: checkpoint interval.
    pub checkpoint_interval: u64,
    /// `L`: log size above the stable checkpoint.
    pub log_size: u64,
    /// Backup timer before a view change (doubles with consecutive view changes).
    pub view_change_timeout: Duration,
    /// Use the read-only optimisation for reads.
    pub read_only: bool,
    /// Virtual CPU cost of each crypto operation.
    pub costs: CostTable,
    /// Real or fast crypto.
    pub crypto: CryptoMode,
    /// Signature scheme (sizes, and the real scheme in `Real` mode).
    pub scheme: Scheme,
    /// Simulator parameters (seed, warm-up, faults).
    pub sim: SimConfig,
    /// Byzantine replicas (tests only).
    pub byzantine: Vec<(u32, Fault)>,
    /// Client retransmission timeout.
    pub client_timeout: Duration,
    /// Crash-restarts: each listed replica runs inside [`Restart`], which crashes it and
    /// builds a fresh one from what it persisted at each [`Outage`]. Executions of each
    /// incarnation are checked as a new server (a restarted replica re-executes from its
    /// checkpoint), so a correct one still counts for safety (S1, results).
    pub restarts: Vec<(u32, Vec<Outage>)>,
}

impl PbftWorldConfig {
    /// Defaults: fast crypto, Ed25519 sizes, measured costs, batch 1, all writes, K = 64,
    /// L = 128, 4 s view-change timeout, 2 s client timeout, read-only optimisation on.
    pub fn new(topology: Topology, clients: u32, seed: u64) -> Self {
        PbftWorldConfig {
            topology,
            clients,
            write_pct: 100,
            batch: 1,
            pipeline: None,
            checkpoint_interval: 64,
            log_size: 128,
            view_change_timeout: Duration::from_secs(4),
            read_only: true,
            costs: CostTable::measured(),
            crypto: CryptoMode::Fast,
            scheme: Scheme::Ed25519,
            sim: SimConfig::with_seed(seed),
            byzantine: Vec::new(),
            client_timeout: Duration::from_secs(2),
            restarts: Vec::new(),
        }
    }

    fn replica_config(&self, id: u32) -> ReplicaConfig {
        let p = &self.topology.pbft;
        let mut rc = ReplicaConfig::new(id, p.replicas.clone(), p.f, p.primary);
        rc.batch = self.batch.max(1);
        rc.checkpoint_interval = self.checkpoint_interval.max(1);
        rc.log_size = self.log_size.max(rc.checkpoint_interval);
        rc.pipeline = self
            .pipeline
            .unwrap_or(if self.batch > 1 { 4 } else { rc.log_size });
        rc.view_change_timeout = self.view_change_timeout;
        faults::configure(&mut rc, self.fault(id));
        rc
    }

    /// How replica `id` misbehaves.
    fn fault(&self, id: u32) -> Fault {
        self.byzantine
            .iter()
            .find(|(i, _)| *i == id)
            .map_or(Fault::None, |(_, f)| *f)
    }
}

/// A simulated PBFT deployment.
pub struct PbftWorld {
    /// The simulator.
    pub sim: Sim<SimPacket>,
    shared: Rc<Shared>,
    n: u32,
    cfg: PbftWorldConfig,
    client_sites: Vec<SiteId>,
    keys: Keys,
    restarts: u32,
    /// When a crash-restarted replica goes down, in time order: from then on its executions
    /// are checked under a new identity.
    crashes: Vec<(Duration, u32)>,
}

impl PbftWorld {
    /// Build the deployment: keys (real or fast), replicas (Byzantine variants included),
    /// clients.
    pub fn build(cfg: PbftWorldConfig) -> Result<PbftWorld, SimError> {
        let topo = cfg.topology.clone();
        let mut sim = Sim::new(&topo, cfg.sim.clone())?;
        let placement = &topo.pbft;
        let n = placement.n();
        let client_sites = topo.place_clients(cfg.clients);
        let mut book = AddressBook::default();
        let configs: Vec<ReplicaConfig> = (0..n).map(|i| cfg.replica_config(i)).collect();
        for i in 0..configs.len() {
            let site = placement.replicas[i];
            book.register(
                NodeId::Replica(i as u32),
                site,
                cfg.fault(i as u32) == Fault::None,
            );
        }
        for (c, site) in client_sites.iter().enumerate() {
            book.register(NodeId::Client(c as u32), *site, true);
        }
        let shared = Shared::new(book, cfg.costs.clone());
        let mut keys = Keys::new(&cfg, &placement.replicas);
        for (i, rc) in configs.into_iter().enumerate() {
            let i = i as u32;
            let fault = cfg.fault(i);
            let correct = fault == Fault::None;
            let sid = server_of(placement.replicas[i as usize], i);
            let outages = cfg
                .restarts
                .iter()
                .find(|(r, _)| *r == i)
                .map(|(_, o)| o.clone())
                .unwrap_or_default();
            let node: Box<dyn ReplicaNode> = if outages.is_empty() {
                let crypto = keys.replica(sid);
                faults::replica_node(Replica::new(rc, crypto), fault, || keys.replica(sid))
            } else {
                let mut keys = keys.clone();
                let make = move || {
                    let crypto = keys.replica(sid);
                    let own = keys.replica(sid);
                    faults::replica_node(Replica::new(rc.clone(), crypto), fault, move || own)
                };
                Box::new(Restart::new(make, outages))
            };
            let p = sim.add_process(
                placement.replicas[i as usize],
                Box::new(NodeProc::replica(node, shared.clone(), correct)),
            );
            debug_assert_eq!(p, shared.book.proc_of(NodeId::Replica(i)));
            // Executions are checked as server s<site>.<i>.
            if let Some(proc) = sim.process_as_mut::<ReplicaProc>(p) {
                proc.set_checker_id(server_of(placement.replicas[i as usize], i));
            }
        }
        for (c, site) in client_sites.iter().enumerate() {
            let c = c as u32;
            let ccfg = ClientConfig {
                id: c,
                sites: placement.replicas.clone(),
                f: placement.f,
                primary: placement.primary,
                write_pct: cfg.write_pct,
                value_len: 200,
                timeout: cfg.client_timeout,
                read_only: cfg.read_only,
                seed: cfg.sim.seed ^ (u64::from(c) << 32),
            };
            let crypto = keys.client(c);
            sim.add_process(
                *site,
                Box::new(NodeProc::client(Client::new(ccfg, crypto), shared.clone())),
            );
        }
        let mut crashes: Vec<(Duration, u32)> = cfg
            .restarts
            .iter()
            .flat_map(|(r, o)| o.iter().map(move |o| (o.down, *r)))
            .collect();
        crashes.sort();
        Ok(PbftWorld {
            sim,
            shared,
            n,
            cfg,
            client_sites,
            keys,
            restarts: 0,
            crashes,
        })
    }

    /// The configuration this world was built from.
    pub fn config(&self) -> &PbftWorldConfig {
        &self.cfg
    }

    /// Number of replicas.
    pub fn n(&self) -> u32 {
        self.n
    }

    /// Run until virtual time `t`.
    pub fn run_until(&mut self, t: Duration) -> Result<(), SimError> {
        while let Some(&(down, i)) = self.crashes.first().filter(|(d, _)| *d <= t) {
            self.sim.run_until(down)?;
            self.crashes.remove(0);
            // The old incarnation reports nothing from its crash on; the next one re-executes
            // from its checkpoint under a new identity.
            self.restarts += 1;
            let site = self.cfg.topology.pbft.replicas[i as usize];
            let p = self.shared.book.proc_of(NodeId::Replica(i));
            if let Some(p) = self.sim.process_as_mut::<ReplicaProc>(p) {
                p.set_checker_id(ServerId::new(site, i + 10_000 * self.restarts));
            }
        }
        self.sim.run_until(t)
    }

    /// The node counters of replica `i` (a crash-restarted one adds `restarts`).
    pub fn replica_stats(&self, i: u32) -> Vec<(&'static str, u64)> {
        self.sim
            .process_as::<ReplicaProc>(self.shared.book.proc_of(NodeId::Replica(i)))
            .map(|p| bft_core::Node::stats(p.node()))
            .unwrap_or_default()
    }

    /// Let every client finish its current operation and issue no more.
    pub fn stop_clients(&mut self) {
        for c in 0..self.client_sites.len() as u32 {
            let p = self.shared.book.proc_of(NodeId::Client(c));
            if let Some(p) = self.sim.process_as_mut::<ClientProc>(p) {
                bft_core::Node::stop(p.node_mut());
            }
        }
    }

    /// The safety checker.
    pub fn checker(&self) -> std::cell::Ref<'_, SafetyChecker> {
        self.shared.checker.borrow()
    }

    /// Replica `i` (`None` while a crash-restarted replica is down).
    pub fn replica(&self, i: u32) -> Option<&Replica> {
        let now = self.sim.now();
        let down = self
            .cfg
            .restarts
            .iter()
            .any(|(r, outages)| *r == i && outages.iter().any(|o| o.down <= now && now < o.up));
        if i >= self.n || down {
            return None;
        }
        self.sim
            .process_as::<ReplicaProc>(self.shared.book.proc_of(NodeId::Replica(i)))
            .map(|p| p.node().replica())
    }

    /// Client `c`.
    pub fn client(&self, c: u32) -> Option<&Client> {
        if c as usize >= self.client_sites.len() {
            return None;
        }
        self.sim
            .process_as::<ClientProc>(self.shared.book.proc_of(NodeId::Client(c)))
            .map(|p| p.node())
    }

    /// Replace replica `i` by a fresh one with an empty state (a crash and restart that lost
    /// everything); it catches up by state transfer. The safety checker sees the new
    /// incarnation as server `s<site>.<i + 10000 × restarts>`.
    pub fn restart_replica(&mut self, i: u32) {
        self.restarts += 1;
        let rc = self.cfg.replica_config(i);
        let site = self.cfg.topology.pbft.replicas[i as usize];
        let crypto = self.keys.replica(server_of(site, i));
        let mut fresh = Replica::restarted(rc, crypto, self.restarts);
        // The old incarnation's tick keeps firing; the new replica re-arms it under its own
        // incarnation on the first one it sees.
        fresh.adopt_ticks();
        let sid = server_of(site, i);
        let fresh = faults::replica_node(fresh, self.cfg.fault(i), || self.keys.replica(sid));
        let p = self.shared.book.proc_of(NodeId::Replica(i));
        if let Some(p) = self.sim.process_as_mut::<ReplicaProc>(p) {
            *p.node_mut() = fresh;
            p.set_checker_id(ServerId::new(site, i + 10_000 * self.restarts));
        }
    }

    /// The latency bound of an update from a client at `site` (ms).
    pub fn update_latency_bound_ms(&self, site: SiteId) -> f64 {
        update_latency_bound(&self.cfg.topology, site)
    }
}

/// The server identity of flat replica `i` at `site` (for keys and the safety checker).
fn server_of(site: SiteId, i: u32) -> ServerId {
    ServerId::new(site, i)
}

/// Propagation-only lower bound (ms) of a PBFT update's latency in view 0 for a client at
/// `client_site`: the request to the primary, the Pre-Prepare, a quorum minus one of Prepares,
/// a quorum of Commits at each replica, and the (f+1)-th reply at the client; one-way link
/// latencies of the topology (LAN inside a site), no CPU or transmission time.
pub fn update_latency_bound(topo: &Topology, client_site: SiteId) -> f64 {
    let p = &topo.pbft;
    let n = p.replicas.len();
    if n == 0 {
        return 0.0;
    }
    let q = ((p.n() + p.f + 2) / 2) as usize;
    let site = |i: usize| p.replicas[i];
    let ms = |a: SiteId, b: SiteId| topo.link(a, b).latency.as_secs_f64() * 1e3;
    let hop = |i: usize, j: usize| if i == j { 0.0 } else { ms(site(i), site(j)) };
    let kth = |mut v: Vec<f64>, k: usize| {
        v.sort_by(f64::total_cmp);
        v.get(k.saturating_sub(1)).copied().unwrap_or(f64::INFINITY)
    };
    let primary = p.primary as usize;
    let request = ms(client_site, site(primary));
    let pp: Vec<f64> = (0..n).map(|j| request + hop(primary, j)).collect();
    let prepared: Vec<f64> = (0..n)
        .map(|j| {
            let prepares: Vec<f64> = (0..n)
                .filter(|k| *k != primary)
                .map(|k| pp[k] + hop(k, j))
                .collect();
            pp[j].max(if q > 1 { kth(prepares, q - 1) } else { 0.0 })
        })
        .collect();
    let committed: Vec<f64> = (0..n)
        .map(|j| kth((0..n).map(|k| prepared[k] + hop(k, j)).collect(), q))
        .collect();
    let replies: Vec<f64> = (0..n)
        .map(|j| committed[j] + ms(site(j), client_site))
        .collect();
    kth(replies, p.f as usize + 1)
}

/// Key material for all nodes of a world.
/// Shared by every replica factory of a crash-restarted replica.
#[derive(Clone)]
struct Keys(Rc<SimKeys<SigningKeys>>);

impl Keys {
    fn new(cfg: &PbftWorldConfig, sites: &[SiteId]) -> Keys {
        let world = FastWorld::new(cfg.sim.seed, cfg.scheme.signature_len(), 0, 0, Vec::new());
        Keys(Rc::new(SimKeys::new(cfg.crypto, world, || {
            let mut rng = ChaCha20Rng::seed_from_u64(cfg.sim.seed);
            let replicas = sites
                .iter()
                .enumerate()
                .map(|(i, s)| ServerId::new(*s, i as u32));
            SigningKeys::generate(replicas, cfg.clients, || {
                SigningKey::generate(cfg.scheme, &mut rng).expect("keygen")
            })
        })))
    }

    fn replica(&mut self, id: ServerId) -> Crypto {
        Crypto::new(self.0.backend(FastIdentity::Server(id), |r| {
            r.crypto(&r.servers[&id], None, Vec::new(), u64::from(id.index))
        }))
    }

    fn client(&mut self, c: u32) -> Crypto {
        Crypto::new(
            self.0
                .backend(FastIdentity::Client(c), |r| r.client(c, Vec::new())),
        )
    }
}

#[cfg(test)]
mod tests;

bft_harness::sim_world!(PbftWorld, PbftWorldConfig);
