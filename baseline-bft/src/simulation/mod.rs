//! PBFT in the deterministic simulator: replicas placed by the topology's `[pbft]` section and
//! closed-loop clients as simulator processes, the crypto cost model, Byzantine variants,
//! Steward's safety checker and the same [`RunReport`] as Steward's runs.

mod campaign;

pub use campaign::{campaign, CampaignRun};

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use steward::crypto::{
    CostTable, Crypto, CryptoCounters, FastCrypto, FastIdentity, FastWorld, RealCrypto,
};
use steward::simulation::{CryptoMode, RunReport, SafetyChecker};
use steward_config::{ServerId, SiteId, Topology};
use steward_crypto::signature::{MessageSigner, Scheme, SigningKey, VerifyingKey};
use steward_sim::{Ctx, Histogram, ProcId, Process, Sim, SimConfig, SimError, SimMessage};

use crate::client::{Client, ClientAction, ClientConfig};
use crate::msg::Envelope;
use crate::replica::{Action, Dest, Fault, Replica, ReplicaConfig};

impl SimMessage for Envelope {
    fn wire_size(&self) -> usize {
        self.size as usize
    }
}

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
        rc.fault = self
            .byzantine
            .iter()
            .find(|(i, _)| *i == id)
            .map_or(Fault::None, |(_, f)| *f);
        rc
    }
}

struct Shared {
    n: u32,
    sites: Vec<SiteId>,
    checker: RefCell<SafetyChecker>,
    byzantine: BTreeMap<u32, Fault>,
    costs: CostTable,
}

impl Shared {
    fn proc_of(&self, d: Dest) -> ProcId {
        match d {
            Dest::Replica(i) => i as usize,
            Dest::Client(c) => self.n as usize + c as usize,
        }
    }

    fn dest_of(&self, p: ProcId) -> Dest {
        if p < self.n as usize {
            Dest::Replica(p as u32)
        } else {
            Dest::Client((p - self.n as usize) as u32)
        }
    }

    fn server(&self, i: u32) -> ServerId {
        ServerId::new(self.sites[i as usize], i)
    }
}

/// A replica as a simulator process.
pub struct ReplicaProc {
    replica: Replica,
    shared: Rc<Shared>,
    correct: bool,
    /// The identity executions are reported under: a restarted replica lost its state and
    /// re-executes what followed its last stable checkpoint, so each incarnation is checked
    /// as its own server (S1 covers every execution; "at most once" holds per incarnation).
    checker_id: ServerId,
}

impl ReplicaProc {
    /// The replica inside.
    pub fn replica(&self) -> &Replica {
        &self.replica
    }

    fn apply(&mut self, ctx: &mut Ctx<'_, Envelope>, actions: Vec<Action>, before: CryptoCounters) {
        let spent = self.replica.crypto_counters().since(&before);
        ctx.charge_cpu(self.shared.costs.charge(&spent, 3));
        let sends = actions
            .iter()
            .filter(|a| matches!(a, Action::Send { .. }))
            .count();
        ctx.charge_cpu(self.shared.costs.messages(sends));
        for a in actions {
            match a {
                Action::Send { to, env } => ctx.send(self.shared.proc_of(to), env),
                Action::Timer { after, token } => ctx.set_timer(after, token),
                Action::Executed(e) => {
                    if self.correct {
                        self.shared
                            .checker
                            .borrow_mut()
                            .executed(self.checker_id, &e);
                    }
                }
            }
        }
    }
}

impl Process<Envelope> for ReplicaProc {
    fn init(&mut self, ctx: &mut Ctx<'_, Envelope>) {
        let before = self.replica.crypto_counters();
        let a = self.replica.start(ctx.now());
        self.apply(ctx, a, before);
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_, Envelope>, from: ProcId, msg: Envelope) {
        let before = self.replica.crypto_counters();
        let from = self.shared.dest_of(from);
        let a = self.replica.on_message(ctx.now(), from, &msg.msg);
        ctx.charge_cpu(self.shared.costs.messages(1));
        self.apply(ctx, a, before);
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_, Envelope>, token: u64) {
        let before = self.replica.crypto_counters();
        let a = self.replica.on_timer(ctx.now(), token);
        self.apply(ctx, a, before);
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn std::any::Any {
        self
    }
}

/// A client as a simulator process.
pub struct ClientProc {
    client: Client,
    shared: Rc<Shared>,
}

impl ClientProc {
    /// The client inside.
    pub fn client(&self) -> &Client {
        &self.client
    }

    fn apply(
        &mut self,
        ctx: &mut Ctx<'_, Envelope>,
        actions: Vec<ClientAction>,
        before: CryptoCounters,
        from: Option<Dest>,
    ) {
        let spent = self.client.crypto_counters().since(&before);
        ctx.charge_cpu(self.shared.costs.charge(&spent, 3));
        for p in self.client.take_proposed() {
            self.shared.checker.borrow_mut().proposed(&p);
        }
        for a in actions {
            match a {
                ClientAction::Send { to, env } => {
                    ctx.send(self.shared.proc_of(Dest::Replica(to)), env)
                }
                ClientAction::Timer { after, token } => ctx.set_timer(after, token),
                ClientAction::Completed { kind, latency, .. } => {
                    ctx.record(kind, latency);
                    let c = self.client.id();
                    self.shared.checker.borrow_mut().completed(c, ctx.now());
                }
                ClientAction::BadReply(why) => {
                    if let Some(Dest::Replica(j)) = from {
                        if !self.shared.byzantine.contains_key(&j) {
                            let s = self.shared.server(j);
                            let c = self.client.id();
                            self.shared.checker.borrow_mut().bad_reply(c, s, why);
                        }
                    }
                }
            }
        }
    }
}

impl Process<Envelope> for ClientProc {
    fn init(&mut self, ctx: &mut Ctx<'_, Envelope>) {
        let before = self.client.crypto_counters();
        let a = self.client.start(ctx.now());
        self.apply(ctx, a, before, None);
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_, Envelope>, from: ProcId, msg: Envelope) {
        let before = self.client.crypto_counters();
        let from = self.shared.dest_of(from);
        let a = self.client.on_message(ctx.now(), from, &msg.msg);
        self.apply(ctx, a, before, Some(from));
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_, Envelope>, token: u64) {
        let before = self.client.crypto_counters();
        let a = self.client.on_timer(ctx.now(), token);
        self.apply(ctx, a, before, None);
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn std::any::Any {
        self
    }
}

/// A simulated PBFT deployment.
pub struct PbftWorld {
    /// The simulator.
    pub sim: Sim<Envelope>,
    shared: Rc<Shared>,
    cfg: PbftWorldConfig,
    client_sites: Vec<SiteId>,
    keys: Keys,
    restarts: u32,
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
        let shared = Rc::new(Shared {
            n,
            sites: placement.replicas.clone(),
            checker: RefCell::new(SafetyChecker::default()),
            byzantine: cfg.byzantine.iter().copied().collect(),
            costs: cfg.costs.clone(),
        });
        let mut keys = Keys::new(&cfg, &placement.replicas);
        for i in 0..n {
            let rc = cfg.replica_config(i);
            let correct = rc.fault == Fault::None;
            let crypto = keys.replica(shared.server(i));
            let p = sim.add_process(
                placement.replicas[i as usize],
                Box::new(ReplicaProc {
                    replica: Replica::new(rc, crypto),
                    shared: shared.clone(),
                    correct,
                    checker_id: shared.server(i),
                }),
            );
            debug_assert_eq!(p, shared.proc_of(Dest::Replica(i)));
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
                Box::new(ClientProc {
                    client: Client::new(ccfg, crypto),
                    shared: shared.clone(),
                }),
            );
        }
        Ok(PbftWorld {
            sim,
            shared,
            cfg,
            client_sites,
            keys,
            restarts: 0,
        })
    }

    /// The configuration this world was built from.
    pub fn config(&self) -> &PbftWorldConfig {
        &self.cfg
    }

    /// Number of replicas.
    pub fn n(&self) -> u32 {
        self.shared.n
    }

    /// Run until virtual time `t`.
    pub fn run_until(&mut self, t: Duration) -> Result<(), SimError> {
        self.sim.run_until(t)
    }

    /// Let every client finish its current operation and issue no more.
    pub fn stop_clients(&mut self) {
        let base = self.shared.n as usize;
        for c in 0..self.client_sites.len() {
            if let Some(p) = self.sim.process_as_mut::<ClientProc>(base + c) {
                p.client.stop();
            }
        }
    }

    /// The safety checker.
    pub fn checker(&self) -> std::cell::Ref<'_, SafetyChecker> {
        self.shared.checker.borrow()
    }

    /// Replica `i`.
    pub fn replica(&self, i: u32) -> Option<&Replica> {
        if i >= self.shared.n {
            return None;
        }
        self.sim
            .process_as::<ReplicaProc>(i as usize)
            .map(|p| &p.replica)
    }

    /// Client `c`.
    pub fn client(&self, c: u32) -> Option<&Client> {
        self.sim
            .process_as::<ClientProc>(self.shared.n as usize + c as usize)
            .map(|p| &p.client)
    }

    /// Replace replica `i` by a fresh one with an empty state (a crash and restart that lost
    /// everything); it catches up by state transfer. The safety checker sees the new
    /// incarnation as server `s<site>.<i + 10000 × restarts>`.
    pub fn restart_replica(&mut self, i: u32) {
        self.restarts += 1;
        let rc = self.cfg.replica_config(i);
        let crypto = self.keys.replica(self.shared.server(i));
        let fresh = Replica::restarted(rc, crypto, self.restarts);
        if let Some(p) = self.sim.process_as_mut::<ReplicaProc>(i as usize) {
            // The old incarnation's tick keeps firing; the new replica re-arms it under its
            // own incarnation on the first one it sees.
            p.replica = fresh;
            p.replica.adopt_ticks();
            p.checker_id = ServerId::new(p.checker_id.site, i + 10_000 * self.restarts);
        }
    }

    /// Summarise the measurement window.
    pub fn report(&self) -> RunReport {
        let mut hist = Histogram::<u64>::new(3).expect("valid sigfig");
        for kind in ["update", "query"] {
            if let Some(h) = self.sim.histogram(kind) {
                hist.add(h).expect("compatible histograms");
            }
        }
        let measured_s = self
            .sim
            .now()
            .saturating_sub(self.cfg.sim.warmup)
            .as_secs_f64();
        let updates = self.sim.completed("update");
        let completed = updates + self.sim.completed("query");
        let net = &self.sim.stats().measured;
        let per = |x: u64| {
            if updates == 0 {
                0.0
            } else {
                x as f64 / updates as f64
            }
        };
        let ms = |us: u64| us as f64 / 1e3;
        let bound = if self.client_sites.is_empty() {
            0.0
        } else {
            self.client_sites
                .iter()
                .map(|s| update_latency_bound(&self.cfg.topology, *s))
                .sum::<f64>()
                / self.client_sites.len() as f64
        };
        RunReport {
            completed,
            updates,
            measured_s,
            throughput: if measured_s > 0.0 {
                completed as f64 / measured_s
            } else {
                0.0
            },
            lat_mean_ms: hist.mean() / 1e3,
            lat_p50_ms: ms(hist.value_at_quantile(0.5)),
            lat_p99_ms: ms(hist.value_at_quantile(0.99)),
            lat_max_ms: ms(hist.max()),
            lat_bound_ms: bound,
            wan_msgs_per_update: per(net.wan_messages),
            wan_bytes_per_update: per(net.wan_bytes),
            safety: self.checker().verdict(),
            histogram: hist,
        }
    }
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
struct Keys {
    mode: CryptoMode,
    world: Arc<FastWorld>,
    real: Option<RealKeys>,
}

struct RealKeys {
    replicas: HashMap<ServerId, SigningKey>,
    clients: Vec<SigningKey>,
}

impl Keys {
    fn new(cfg: &PbftWorldConfig, sites: &[SiteId]) -> Keys {
        let world = FastWorld::new(cfg.sim.seed, cfg.scheme.signature_len(), 0, 0, Vec::new());
        let real = (cfg.crypto == CryptoMode::Real).then(|| {
            let mut rng = ChaCha20Rng::seed_from_u64(cfg.sim.seed);
            let replicas = sites
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    (
                        ServerId::new(*s, i as u32),
                        SigningKey::generate(cfg.scheme, &mut rng).expect("keygen"),
                    )
                })
                .collect();
            let clients = (0..cfg.clients)
                .map(|_| SigningKey::generate(cfg.scheme, &mut rng).expect("keygen"))
                .collect();
            RealKeys { replicas, clients }
        });
        Keys {
            mode: cfg.crypto,
            world,
            real,
        }
    }

    fn publics(r: &RealKeys) -> (HashMap<ServerId, VerifyingKey>, Vec<VerifyingKey>) {
        (
            r.replicas
                .iter()
                .map(|(id, k)| (*id, k.verifying_key()))
                .collect(),
            r.clients.iter().map(|k| k.verifying_key()).collect(),
        )
    }

    fn replica(&mut self, id: ServerId) -> Crypto {
        match (self.mode, &self.real) {
            (CryptoMode::Real, Some(r)) => {
                let (servers, clients) = Self::publics(r);
                Crypto::new(Box::new(RealCrypto::new(
                    Some(r.replicas[&id].clone()),
                    None,
                    Vec::new(),
                    servers,
                    clients,
                    u64::from(id.index),
                )))
            }
            _ => Crypto::new(Box::new(FastCrypto::new(
                self.world.clone(),
                FastIdentity::Server(id),
            ))),
        }
    }

    fn client(&mut self, c: u32) -> Crypto {
        match (self.mode, &self.real) {
            (CryptoMode::Real, Some(r)) => {
                let (servers, clients) = Self::publics(r);
                Crypto::new(Box::new(RealCrypto::new(
                    Some(r.clients[c as usize].clone()),
                    None,
                    Vec::new(),
                    servers,
                    clients,
                    u64::from(c),
                )))
            }
            _ => Crypto::new(Box::new(FastCrypto::new(
                self.world.clone(),
                FastIdentity::Client(c),
            ))),
        }
    }
}

#[cfg(test)]
mod tests;
