//! Steward in the deterministic simulator: replicas and closed-loop clients as simulator
//! processes, the crypto cost model, Byzantine variants, the safety checker and a run report.

pub mod faults;
mod scenario;

pub use crate::replica::local_timeout_t1;
pub(crate) use crate::replica::max_round_trip;
pub use bft_harness::{CryptoMode, RunReport, SafetyChecker};
pub use faults::{ServerNode, Spammer};
pub use scenario::{
    apply_scenario, campaign, campaign_seed, campaign_seed_with_tail, run_until_served,
    CampaignOutcome, Liveness, ScenarioStats, CAMPAIGN_LIVENESS_BOUND, SCENARIOS,
};

use std::collections::{HashMap, HashSet};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use bft_core::{Node, NodeId};
pub use bft_harness::faults::{CrashPoint, Outage};

use bft_harness::faults::Restart;
use bft_harness::keys::{SigningKeys, SimKeys};
use bft_harness::{AddressBook, CostTable, NodeProc, Packet, Shared};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use steward_config::{ServerId, SiteId, Topology};
use steward_crypto::signature::{Scheme, SigningKey};
use steward_crypto::threshold::deal;
use steward_sim::{Sim, SimConfig, SimError};

use crate::client::{Client, ClientConfig};
use crate::crypto::{Crypto, CryptoBackend, FastIdentity, FastWorld};
use crate::msg::Message;
use crate::replica::{Replica, ReplicaConfig};

/// A Steward message in flight in the simulator.
pub type SimPacket = Packet<Message>;
/// A Steward replica (possibly inside fault wrappers) as a simulator process.
pub type ReplicaProc = NodeProc<Box<dyn ServerNode>>;
/// A Steward client as a simulator process.
pub type ClientProc = NodeProc<Client>;

/// How a simulated server misbehaves. Each is a wrapper around a correct replica
/// ([`faults`], `bft_harness::faults`), except `EmptyBatches`, `SlowSequencer` and
/// `SelectiveProposal`, which use the core's [`crate::replica::SequencerHook`], `Slow`, which
/// the process adapter
/// applies, and `Spammer`, which replaces the replica.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Byzantine {
    /// Runs the protocol but sends corrupted threshold shares.
    CorruptShares,
    /// Replaced by a [`Spammer`]: malformed, mis-signed, forged and replayed messages.
    Spammer,
    /// Crashes (stops answering) at the given virtual time.
    CrashAt(Duration),
    /// Silent from the start.
    Silent,
    /// Takes this much extra time for every input.
    Slow(Duration),
    /// Equivocating leader-site representative: conflicting Pre-Prepares to half its site.
    Equivocate,
    /// Representative that drops client updates.
    DropUpdates,
    /// Non-leader-site representative that withholds its site's Accepts.
    WithholdAccepts,
    /// Signs replies with results no correct server computed.
    WrongResults,
    /// Silent in the global view change only.
    SilentInGlobalViewChange,
    /// Leader-site representative that sequences only empty batches (fake progress).
    EmptyBatches,
    /// Leader-site representative that fills at most one fresh slot per this period, just
    /// often enough for no timeout to fire ([`faults::SlowSequencer`]).
    SlowSequencer(Duration),
    /// Leader-site representative that holds each slot's Proposal shares before combining, as
    /// long as the holds (second) say, from (first) on ([`faults::SlowCombiner`]).
    SlowCombiner(Duration, faults::Holds),
    /// Leader-site representative that sends its Proposals to the other sites this late
    /// ([`bft_harness::faults::DelayOutbound`]).
    SlowDisseminator(Duration),
    /// Representative that sends its site's Accepts to the other sites this late.
    SlowAccepts(Duration),
    /// Sends its threshold shares this late ([`faults::shares_late`]).
    SlowShares(Duration),
    /// Leader-site representative that relays the other sites' Accepts to its own site this
    /// late.
    SlowAcceptRelay(Duration),
    /// Leader-site representative that sends one Proposal only to the sites in the mask
    /// (never its own) from the given time on, then falls silent.
    SelectiveProposal(Duration, u64),
    /// Also sends every server of the other sites a far-ahead Accept with a forged site
    /// signature on every retransmission tick ([`faults::ForgedAccepts`]).
    ForgedAccepts,
    /// Also sends its representative this many validly signed Partial_Sigs on random contents
    /// on every retransmission tick ([`faults::PartialSigSpammer`]).
    PartialSigSpam(u32),
    /// Also asks every server of the other sites for reconciliation, claiming to be this many
    /// sequence numbers behind its own execution point, on every retransmission tick
    /// ([`faults::ReconRequester`]).
    ReconRequests(u64),
    /// Sends corrupted threshold shares (as `CorruptShares`) and never answers a request for
    /// their proofs ([`faults::ignore_proof_requests`]).
    SilentSigner,
    /// Sends wrong unproven threshold shares and proves its right ones when asked
    /// (`CorruptShares::proving_right_shares`).
    WrongUnprovenShares,
}

/// Everything a simulated Steward run needs.
#[derive(Clone, Debug)]
pub struct WorldConfig {
    /// The topology.
    pub topology: Topology,
    /// Closed-loop clients (placed by the topology's client placement).
    pub clients: u32,
    /// Percentage of client operations that are updates.
    pub write_pct: u32,
    /// Updates per Proposal.
    pub batch: usize,
    /// Virtual CPU cost of each crypto operation.
    pub costs: CostTable,
    /// Real or fast crypto.
    pub crypto: CryptoMode,
    /// Signature scheme (sizes, and the real scheme in `Real` mode).
    pub scheme: Scheme,
    /// Modulus of the sites' threshold RSA keys in `Real` mode (1024 as deployed; the
    /// campaign's real-crypto seeds use the smallest the dealer allows, 512, which runs the
    /// same code paths several times faster).
    pub threshold_bits: u32,
    /// Simulator parameters (seed, warm-up, faults).
    pub sim: SimConfig,
    /// Byzantine servers.
    pub byzantine: Vec<(ServerId, Byzantine)>,
    /// Client retransmission timeout.
    pub client_timeout: Duration,
    /// Scheduled partitions: (time, groups of sites); an empty group list heals.
    pub partitions: Vec<(Duration, Vec<Vec<SiteId>>)>,
    /// When the scenario's fault strikes (for recovery measurement).
    pub fault_at: Option<Duration>,
    /// Scenario name for reports.
    pub scenario: String,
    /// Correct servers that crash and restart from what they persisted (they stay correct:
    /// the checker judges everything they execute).
    pub restarts: Vec<(ServerId, Outage)>,
    /// The network adversary's asymmetric delays: one direction of a WAN link slowed.
    pub slow_links: Vec<SlowLink>,
    /// Byzantine clients flooding their site with fresh signed updates: (site, period,
    /// updates per period). They get the ids after the correct clients' (fast crypto only).
    pub flooding_clients: Vec<(SiteId, Duration, u32)>,
    /// Servers vote against a representative that combines late
    /// ([`ReplicaConfig::combine_deadline`]; on by default).
    pub combine_deadline: bool,
    /// Non-representatives forward their site's signed messages when a slot's global
    /// turnaround is late ([`ReplicaConfig::forwarding`]; on by default).
    pub forwarding: bool,
    /// Only 2f+1 servers per site share on the ordering path at first
    /// ([`ReplicaConfig::designated_signers`]; on by default).
    pub designated_signers: bool,
    /// Only the ⌊S/2⌋ non-leader sites nearest the leader site accept at once
    /// ([`ReplicaConfig::designated_accepters`]; on by default).
    pub designated_accepters: bool,
    /// Whether representatives relay other sites' Accepts of a slot together
    /// ([`ReplicaConfig::bundle_accept_relays`]; on by default).
    pub bundle_accept_relays: bool,
    /// Byzantine clients replaying one signed query to every server of their site: (site,
    /// period, copies per period). Their ids follow the flooding clients' (fast crypto only).
    pub replaying_clients: Vec<(SiteId, Duration, u32)>,
}

/// From `at` on, messages from site `from` to site `to` (that direction only) take `extra`
/// longer than the topology says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlowLink {
    /// When the delay starts.
    pub at: Duration,
    /// Sending site.
    pub from: SiteId,
    /// Receiving site.
    pub to: SiteId,
    /// Added one-way latency.
    pub extra: Duration,
}

impl WorldConfig {
    /// One line naming everything a campaign seed drew: topology, clients, crypto, Byzantine
    /// servers, restarts, slow links, partitions and network faults.
    pub fn describe(&self) -> String {
        format!(
            "topology={} clients={} crypto={:?} ({} bits) byzantine={:?} restarts={:?} slow_links={:?} \
             partitions={:?} duplicate={} reorder={}",
            self.topology.name,
            self.clients,
            self.crypto,
            self.threshold_bits,
            self.byzantine,
            self.restarts,
            self.slow_links,
            self.partitions,
            self.sim.duplicate_prob,
            self.sim.reorder_prob
        )
    }

    /// When the last scheduled fault strikes: the last partition change, restart, slow-link
    /// onset, Byzantine crash or selective dissemination onset (zero without any). From then
    /// on only the Byzantine servers' standing behaviours act.
    pub fn stable_at(&self) -> Duration {
        let partitions = self.partitions.iter().map(|(t, _)| *t);
        let restarts = self.restarts.iter().map(|(_, o)| o.up);
        let slow = self.slow_links.iter().map(|l| l.at);
        let byzantine = self.byzantine.iter().filter_map(|(_, b)| match b {
            Byzantine::CrashAt(t) | Byzantine::SelectiveProposal(t, _) => Some(*t),
            _ => None,
        });
        partitions
            .chain(restarts)
            .chain(slow)
            .chain(byzantine)
            .max()
            .unwrap_or(Duration::ZERO)
    }

    /// Defaults: fast crypto, Ed25519 sizes, measured costs, batch 1, all writes.
    pub fn new(topology: Topology, clients: u32, seed: u64) -> Self {
        WorldConfig {
            topology,
            clients,
            write_pct: 100,
            batch: 1,
            costs: CostTable::measured(),
            crypto: CryptoMode::Fast,
            scheme: Scheme::Ed25519,
            threshold_bits: 1024,
            sim: SimConfig::with_seed(seed),
            byzantine: Vec::new(),
            client_timeout: Duration::from_secs(2),
            partitions: Vec::new(),
            fault_at: None,
            scenario: "none".to_string(),
            restarts: Vec::new(),
            slow_links: Vec::new(),
            flooding_clients: Vec::new(),
            replaying_clients: Vec::new(),
            combine_deadline: true,
            forwarding: true,
            designated_signers: true,
            designated_accepters: true,
            bundle_accept_relays: true,
        }
    }
}

/// A simulated Steward deployment.
pub struct World {
    /// The simulator.
    pub sim: Sim<SimPacket>,
    shared: Rc<Shared>,
    cfg: WorldConfig,
    client_sites: Vec<SiteId>,
    /// Servers that are not correct (their executions are not checked).
    byzantine: HashSet<ServerId>,
    client_base: usize,
}

impl World {
    /// Build the deployment: keys (real or fast), replicas, Byzantine variants, clients.
    pub fn build(cfg: WorldConfig) -> Result<World, SimError> {
        let topo = cfg.topology.clone();
        let mut sim = Sim::new(&topo, cfg.sim.clone())?;
        let servers: Vec<u32> = topo.sites.iter().map(|s| s.servers).collect();
        let f: Vec<u32> = topo.sites.iter().map(|s| s.f).collect();
        let quorums: Vec<usize> = topo
            .sites
            .iter()
            .map(|s| (s.servers + s.f + 1).div_ceil(2) as usize)
            .collect();
        let byzantine: HashMap<ServerId, Byzantine> = cfg.byzantine.iter().copied().collect();
        let client_sites = topo.place_clients(cfg.clients);
        let mut book = AddressBook::default();
        for s in &topo.sites {
            for id in s.server_ids() {
                book.register(NodeId::Server(id), id.site, !byzantine.contains_key(&id));
            }
        }
        let client_base = book.len();
        for (c, site) in client_sites.iter().enumerate() {
            book.register(NodeId::Client(c as u32), *site, true);
        }
        // Byzantine clients: the flooding ones, then the replaying ones (ids after the correct).
        let byzantine_clients = cfg.flooding_clients.iter().chain(&cfg.replaying_clients);
        for (i, (site, _, _)) in byzantine_clients.enumerate() {
            book.register(NodeId::Client(cfg.clients + i as u32), *site, false);
        }
        let all_servers: Vec<ServerId> = topo.steward_servers().collect();
        let shared = Shared::new(book, cfg.costs.clone());
        let keys = Rc::new(Keys::new(&cfg, &topo, &quorums));
        for s in &topo.sites {
            for id in s.server_ids() {
                let mut rc = ReplicaConfig::new(id, servers.clone(), f.clone());
                rc.batch = cfg.batch;
                rc.apply_topology(&topo);
                rc.combine_deadline = cfg.combine_deadline;
                rc.forwarding = cfg.forwarding;
                rc.designated_signers = cfg.designated_signers;
                rc.designated_accepters = cfg.designated_accepters;
                rc.bundle_accept_relays = cfg.bundle_accept_relays;
                let byz = byzantine.get(&id).copied();
                let proc_id = match byz {
                    Some(Byzantine::Spammer) => sim.add_process(
                        id.site,
                        Box::new(Spammer::new(id, all_servers.clone(), keys.server(id))),
                    ),
                    None if cfg.restarts.iter().any(|(s, _)| *s == id) => {
                        let outages = cfg
                            .restarts
                            .iter()
                            .filter(|(s, _)| *s == id)
                            .map(|(_, o)| *o)
                            .collect();
                        let keys = keys.clone();
                        let make = move || Replica::new(rc.clone(), keys.server(id));
                        let node: Box<dyn ServerNode> = Box::new(Restart::new(make, outages));
                        sim.add_process(
                            id.site,
                            Box::new(NodeProc::replica(node, shared.clone(), true)),
                        )
                    }
                    other => {
                        let node = server_node(rc, other, || keys.server_backend(id));
                        let mut proc = NodeProc::replica(node, shared.clone(), other.is_none());
                        if let Some(Byzantine::Slow(d)) = other {
                            proc = proc.slow(d);
                        }
                        sim.add_process(id.site, Box::new(proc))
                    }
                };
                debug_assert_eq!(proc_id, shared.book.proc_of(NodeId::Server(id)));
            }
        }
        for (c, site) in client_sites.iter().enumerate() {
            let c = c as u32;
            let ccfg = ClientConfig {
                id: c,
                site: *site,
                servers: servers.clone(),
                f: f.clone(),
                write_pct: cfg.write_pct,
                value_len: 200,
                timeout: cfg.client_timeout,
                seed: cfg.sim.seed ^ (u64::from(c) << 32),
            };
            let crypto = keys.client(c);
            sim.add_process(
                *site,
                Box::new(NodeProc::client(Client::new(ccfg, crypto), shared.clone())),
            );
        }
        let flooding = cfg.flooding_clients.iter().map(|c| (c, true));
        let replaying = cfg.replaying_clients.iter().map(|c| (c, false));
        for (i, ((site, every, per_tick), floods)) in flooding.chain(replaying).enumerate() {
            let id = cfg.clients + i as u32;
            let load = faults::ClientLoad {
                id,
                site: *site,
                servers: servers[site.index()],
                crypto: keys.client(id),
                every: *every,
                per_tick: *per_tick,
            };
            let client = if floods {
                faults::ByzantineClient::flooding(load)
            } else {
                faults::ByzantineClient::replaying(load)
            };
            sim.add_process(*site, Box::new(NodeProc::client(client, shared.clone())));
        }
        for s in &cfg.slow_links {
            let mut params = *topo.link(s.from, s.to);
            params.latency += s.extra;
            sim.schedule_directed_link_change(s.at, s.from, s.to, params);
        }
        for (at, groups) in &cfg.partitions {
            if groups.is_empty() {
                sim.schedule_heal(*at);
            } else {
                sim.schedule_partition(*at, groups.clone());
            }
        }
        Ok(World {
            sim,
            shared,
            cfg,
            client_sites,
            byzantine: byzantine.keys().copied().collect(),
            client_base,
        })
    }

    /// Run until virtual time `t`.
    pub fn run_until(&mut self, t: Duration) -> Result<(), SimError> {
        self.sim.run_until(t)
    }

    /// Current virtual time.
    pub fn now(&self) -> Duration {
        self.sim.now()
    }

    /// Let every client finish its current operation and issue no more.
    pub fn stop_clients(&mut self) {
        for c in 0..self.client_sites.len() {
            if let Some(p) = self.sim.process_as_mut::<ClientProc>(self.client_base + c) {
                p.node_mut().stop();
            }
        }
    }

    /// The safety checker.
    pub fn checker(&self) -> std::cell::Ref<'_, SafetyChecker> {
        self.shared.checker.borrow()
    }

    /// Whether server `id` is Byzantine in this run.
    pub fn is_byzantine(&self, id: ServerId) -> bool {
        self.byzantine.contains(&id)
    }

    /// The servers that are not Byzantine in this run (crash-restarted ones included).
    pub fn correct_servers(&self) -> Vec<ServerId> {
        self.cfg
            .topology
            .steward_servers()
            .filter(|id| !self.is_byzantine(*id))
            .collect()
    }

    /// The simulator process of server `id`.
    pub fn proc_of(&self, id: ServerId) -> steward_sim::ProcId {
        self.shared.book.proc_of(NodeId::Server(id))
    }

    /// The replica of server `id` (None for a spammer).
    pub fn replica(&self, id: ServerId) -> Option<&Replica> {
        self.sim
            .process_as::<ReplicaProc>(self.proc_of(id))
            .map(|p| p.node().replica())
    }

    /// Propagation lower bound of an update latency for a client at `site` (ms).
    pub fn update_latency_bound_ms(&self, site: SiteId) -> f64 {
        update_latency_bound(&self.cfg.topology, site, SiteId(0))
    }
}

/// Server `rc.id` as `byz` makes it: a correct replica, or one inside the wrapper (or with
/// the sequencing hook, or the corrupting crypto) of its misbehaviour. `keys` gives the
/// server's own keys (a Byzantine server re-signs what it changes).
fn server_node(
    mut rc: ReplicaConfig,
    byz: Option<Byzantine>,
    mut keys: impl FnMut() -> Box<dyn CryptoBackend>,
) -> Box<dyn ServerNode> {
    use bft_harness::faults::{CorruptShares, Crash, Tamper};
    let id = rc.id;
    let sites = rc.servers.clone();
    match byz {
        Some(Byzantine::EmptyBatches) => rc.sequencer = Some(Arc::new(faults::EmptyBatches)),
        Some(Byzantine::SlowSequencer(every)) => {
            rc.sequencer = Some(Arc::new(faults::SlowSequencer::new(every)))
        }
        Some(Byzantine::SelectiveProposal(at, sites)) => {
            rc.sequencer = Some(Arc::new(faults::SelectiveProposal::new(at, sites)))
        }
        _ => {}
    }
    let backend: Box<dyn CryptoBackend> = match byz {
        Some(Byzantine::CorruptShares | Byzantine::SilentSigner) => {
            Box::new(CorruptShares::new(keys()))
        }
        Some(Byzantine::WrongUnprovenShares) => {
            Box::new(CorruptShares::proving_right_shares(keys()))
        }
        _ => keys(),
    };
    let replica = Replica::new(rc, Crypto::new(backend));
    let mut own = || Crypto::new(keys());
    match byz {
        None
        | Some(Byzantine::Slow(_))
        | Some(Byzantine::Spammer)
        | Some(Byzantine::CorruptShares)
        | Some(Byzantine::WrongUnprovenShares)
        | Some(Byzantine::EmptyBatches)
        | Some(Byzantine::SlowSequencer(_))
        | Some(Byzantine::SelectiveProposal(..)) => Box::new(replica),
        Some(Byzantine::CrashAt(t)) => Box::new(Crash::at(replica, t)),
        Some(Byzantine::Silent) => Box::new(Crash::silent(replica)),
        Some(Byzantine::Equivocate) => {
            Box::new(Tamper::new(replica, faults::Equivocator::new(id, own())))
        }
        Some(Byzantine::WrongResults) => {
            Box::new(Tamper::new(replica, faults::WrongResults::new(id, own())))
        }
        Some(Byzantine::SlowCombiner(from, holds)) => {
            Box::new(faults::slow_combiner(replica, from, holds))
        }
        Some(Byzantine::SlowDisseminator(hold)) => Box::new(faults::to_other_sites_late(
            replica,
            id.site,
            |m| matches!(m, Message::Proposal(_)),
            hold,
        )),
        Some(Byzantine::SlowAccepts(hold)) => Box::new(faults::to_other_sites_late(
            replica,
            id.site,
            |m| matches!(m, Message::Accept(_)),
            hold,
        )),
        Some(Byzantine::SlowShares(hold)) => Box::new(faults::shares_late(replica, hold)),
        Some(Byzantine::SlowAcceptRelay(hold)) => Box::new(faults::to_own_site_late(
            replica,
            id,
            |m| matches!(m, Message::Accept(_) | Message::AcceptRelay(_)),
            hold,
        )),
        Some(Byzantine::DropUpdates) => Box::new(faults::drop_updates(replica)),
        Some(Byzantine::SilentSigner) => Box::new(faults::ignore_proof_requests(replica)),
        Some(Byzantine::WithholdAccepts) => Box::new(faults::withhold_accepts(replica, id)),
        Some(Byzantine::SilentInGlobalViewChange) => {
            Box::new(faults::silent_in_global_view_change(replica))
        }
        Some(Byzantine::ForgedAccepts) => Box::new(faults::OnTick::new(
            replica,
            faults::ForgedAccepts::new(sites),
        )),
        Some(Byzantine::ReconRequests(lag)) => Box::new(faults::OnTick::new(
            replica,
            faults::ReconRequester::new(sites, lag),
        )),
        Some(Byzantine::PartialSigSpam(per_tick)) => Box::new(faults::OnTick::new(
            replica,
            faults::PartialSigSpammer::new(id, sites[id.site.index()], own(), per_tick),
        )),
    }
}

/// Propagation-only lower bound (ms) of an update's latency for a client at `client_site`
/// with leader site `leader`: to the leader site, the Proposal out, the Accepts of the ⌊S/2⌋
/// designated accepting sites back to the client's site, the reply; LAN hops included, no CPU
/// or transmission time.
pub fn update_latency_bound(topo: &Topology, client_site: SiteId, leader: SiteId) -> f64 {
    let ms = |a: SiteId, b: SiteId| topo.link(a, b).latency.as_secs_f64() * 1e3;
    let lan = ms(client_site, client_site);
    let c = client_site;
    let to_leader = if c == leader {
        lan
    } else {
        lan + ms(c, leader)
    };
    let proposal_at_c = if c == leader { 0.0 } else { ms(leader, c) };
    // The designated accepting sites sign (crate::replica::accepters): all of them are needed.
    let designated =
        crate::replica::accepters::designated_accepters(topo.sites.len(), leader, |a, b| {
            // As the replicas judge it (ReplicaConfig::apply_topology).
            let l = topo.link(a, b);
            l.latency + l.jitter
        });
    let accept_at_c = designated
        .iter()
        .map(|&j| ms(leader, j) + if j == c { 0.0 } else { ms(j, c) })
        .fold(0.0, f64::max);
    // client→server (LAN), [→ leader], order, reply (LAN)
    lan + to_leader + proposal_at_c.max(accept_at_c) + lan
}

/// Key material for all nodes of a world.
struct Keys(SimKeys<RealKeys>);

/// Steward's real keys: every site's threshold key and its servers' shares, and the
/// signing keys.
struct RealKeys {
    sites: Vec<steward_crypto::threshold::ThresholdPublicKey>,
    shares: HashMap<ServerId, steward_crypto::threshold::KeyShare>,
    signing: SigningKeys,
}

impl Keys {
    fn new(cfg: &WorldConfig, topo: &Topology, quorums: &[usize]) -> Keys {
        let world = FastWorld::new(
            cfg.sim.seed,
            cfg.scheme.signature_len(),
            307,
            128,
            quorums.to_vec(),
        );
        Keys(SimKeys::new(cfg.crypto, world, || {
            let mut rng = ChaCha20Rng::seed_from_u64(cfg.sim.seed);
            let mut sites = Vec::new();
            let mut shares = HashMap::new();
            for (s, q) in topo.sites.iter().zip(quorums) {
                let d = deal(&mut rng, cfg.threshold_bits, s.servers as u16, *q as u16)
                    .expect("valid site");
                for (share, id) in d.shares.into_iter().zip(s.server_ids()) {
                    shares.insert(id, share);
                }
                sites.push(d.public);
            }
            let byzantine_clients = cfg.flooding_clients.len() + cfg.replaying_clients.len();
            let clients = cfg.clients + byzantine_clients as u32;
            let signing = SigningKeys::generate(topo.steward_servers(), clients, || {
                SigningKey::generate(cfg.scheme, &mut rng).expect("keygen")
            });
            RealKeys {
                sites,
                shares,
                signing,
            }
        }))
    }

    fn server(&self, id: ServerId) -> Crypto {
        Crypto::new(self.server_backend(id))
    }

    fn server_backend(&self, id: ServerId) -> Box<dyn CryptoBackend> {
        self.0.backend(FastIdentity::Server(id), |r| {
            r.signing.crypto(
                &r.signing.servers[&id],
                Some((r.sites[id.site.index()].clone(), r.shares[&id].clone())),
                r.sites.clone(),
                u64::from(id.site.0) << 32 | u64::from(id.index),
            )
        })
    }

    fn client(&self, c: u32) -> Crypto {
        Crypto::new(self.0.backend(FastIdentity::Client(c), |r| {
            r.signing.client(c, r.sites.clone())
        }))
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod redteam;

#[cfg(test)]
mod restart;

#[cfg(test)]
mod damage;

bft_harness::sim_world!(World, WorldConfig);

#[cfg(test)]
mod designation;

#[cfg(test)]
mod accepting;
