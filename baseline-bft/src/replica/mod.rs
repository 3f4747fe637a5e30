//! The PBFT replica: a deterministic, sans-IO state machine (Castro & Liskov, OSDI 1999 /
//! TOCS 2002, with per-message signatures instead of MAC authenticators).
//!
//! Inputs are messages (with the sender the transport authenticated) and timer expiries;
//! outputs are [`Action`]s: messages to send, timers to set, and execution records for the
//! safety checker. Sub-protocols live in their own modules:
//!
//! * `normal`: requests, pre-prepare / prepare / commit, in-order execution, replies and the
//!   read-only optimisation;
//! * `checkpoint`: checkpoints, stable certificates, garbage collection, water marks, state
//!   transfer and the status-driven retransmission that brings lagging replicas up to date;
//! * `view_change`: view-change and new-view with prepared certificates, timers, joining;
//! * `durable`: the vote ledger and what else a replica persists to survive a crash-restart
//!   without contradicting itself, and its recovery;
//! * `fault`: misbehaviours for simulated Byzantine replicas (never on by default).

mod checkpoint;
mod durable;
mod hook;
mod normal;
mod view_change;

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use bft_core::crypto::{Crypto, CryptoCounters};
use bft_core::durable::VoteLedger;
use bft_core::kv::KvStore;
use bft_core::request::{ClientId, Digest, Update};
use bft_core::sig_memo::SignatureMemo;
use bft_core::Outbox;
use steward_config::{ServerId, SiteId};

use crate::msg::{
    Checkpoint, Commit, Envelope, Message, NewView, PrePrepare, Prepare, PreparedCert, Snapshot,
    ViewChange,
};
use crate::state::ServiceState;

pub use hook::PrimaryHook;

/// A destination or sender: any node of either protocol (the protocol-neutral [`NodeId`]).
pub use bft_core::NodeId as Dest;

/// One executed update, reported for the safety checker.
pub use bft_core::Executed;

/// What the replica asks its driver to do: the outputs every protocol node produces.
pub type Action = bft_core::Output<crate::msg::Message>;

/// Static configuration of one replica.
#[derive(Clone, Debug)]
pub struct ReplicaConfig {
    /// This replica's index.
    pub id: u32,
    /// The site of every replica (`topology.pbft.replicas`); its length is `n`.
    pub sites: Vec<SiteId>,
    /// Byzantine replicas tolerated.
    pub f: u32,
    /// The primary of view 0 (`topology.pbft.primary`); view `v` has primary `(primary + v) % n`.
    pub primary: u32,
    /// Most requests per Pre-Prepare (1 = the paper's comparison).
    pub batch: usize,
    /// Most Pre-Prepares the primary keeps assigned but not executed (the water marks bound it
    /// too). Requests that arrive meanwhile wait and are batched.
    pub pipeline: u64,
    /// `K`: a checkpoint every `K` sequence numbers.
    pub checkpoint_interval: u64,
    /// `L`: sequence numbers accepted above the last stable checkpoint (high water mark).
    pub log_size: u64,
    /// How long a backup waits for a request it knows of before it leaves the view; also the
    /// first wait for a New-View (doubled for every consecutive view change).
    pub view_change_timeout: Duration,
    /// Period of the maintenance tick (retransmissions, lag detection).
    pub tick: Duration,
    /// A Byzantine primary's sequencing (tests only; `None` is the protocol).
    pub primary_hook: Option<std::sync::Arc<dyn PrimaryHook>>,
}

impl ReplicaConfig {
    /// Defaults for replica `id` of a placement: batch 1, K = 64, L = 128, 4 s view-change
    /// timeout, 0.5 s tick.
    pub fn new(id: u32, sites: Vec<SiteId>, f: u32, primary: u32) -> Self {
        ReplicaConfig {
            id,
            sites,
            f,
            primary,
            batch: 1,
            pipeline: 128,
            checkpoint_interval: 64,
            log_size: 128,
            view_change_timeout: Duration::from_secs(4),
            tick: Duration::from_millis(500),
            primary_hook: None,
        }
    }

    /// The identity replica `i` signs as (`ServerId::new(its site, i)`).
    pub fn server_id(&self, i: u32) -> Option<ServerId> {
        self.sites
            .get(i as usize)
            .map(|site| ServerId::new(*site, i))
    }
}

/// Counters of protocol events.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReplicaStats {
    /// Updates executed (duplicates and null requests excluded).
    pub executed: u64,
    /// Messages dropped as invalid (bad signature, wrong sender, conflict, outside the window).
    pub dropped_invalid: u64,
    /// View changes this replica started.
    pub view_changes: u64,
    /// Views entered through a New-View.
    pub new_views: u64,
    /// Checkpoints that became stable.
    pub stable_checkpoints: u64,
    /// States installed by state transfer.
    pub state_transfers: u64,
    /// Sequence numbers committed through a peer's commit certificate.
    pub commit_proofs: u64,
    /// Commits whose signature failed when a commit certificate was checked for another
    /// replica (their senders' Commits are checked on arrival from then on).
    pub bad_commit_signatures: u64,
    /// Status messages sent (being stuck).
    pub status_sent: u64,
    /// Read-only requests answered.
    pub reads: u64,
    /// Votes not sent because they contradict one cast before (perhaps before a crash).
    pub votes_refused: u64,
}

/// Sizes of the replica's protocol state, to check that garbage collection bounds memory.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Footprint {
    /// Log slots (sequence numbers above the stable checkpoint).
    pub log: usize,
    /// Checkpoint messages kept.
    pub checkpoints: usize,
    /// Own snapshots kept (awaiting stability, plus the stable one).
    pub snapshots: usize,
    /// View-Change messages kept.
    pub view_changes: usize,
    /// Requests waiting at the primary.
    pub pool: usize,
    /// Requests a backup waits for.
    pub pending: usize,
    /// Clients in the client table.
    pub clients: usize,
}

/// Per-sequence-number state.
#[derive(Default, Debug)]
pub(crate) struct Slot {
    /// The accepted Pre-Prepare (of view `pp.view`, the latest view it was accepted in).
    pub pp: Option<Arc<PrePrepare>>,
    /// The latest Prepare of each replica.
    pub prepares: BTreeMap<u32, Arc<Prepare>>,
    /// The latest Commit of each replica, its signature not necessarily checked (see
    /// `on_commit`).
    pub commits: BTreeMap<u32, Arc<Commit>>,
    /// Replicas whose Commit in `commits` has a checked signature.
    pub commits_checked: std::collections::BTreeSet<u32>,
    /// The prepared certificate of the highest view (reported in View-Changes).
    pub prepared: Option<PreparedCert>,
    /// The view in which this replica sent its Commit.
    pub commit_sent: Option<u64>,
    /// The slot's batch is decided (committed locally or by a commit certificate).
    pub committed: Option<Arc<crate::msg::CommitProof>>,
    /// Every signature in `committed` is checked (it can go to another replica as it is).
    pub committed_checked: bool,
}

/// A stable checkpoint: its sequence number, certificate and (when held) the state.
#[derive(Clone, Debug, Default)]
pub(crate) struct Stable {
    pub seq: u64,
    pub proof: Vec<Arc<Checkpoint>>,
    pub snapshot: Option<Arc<Snapshot>>,
}

/// A certified checkpoint above the own execution point: the target of a state transfer.
#[derive(Clone, Debug)]
pub(crate) struct Lag {
    pub seq: u64,
    pub proof: Vec<Arc<Checkpoint>>,
    /// Index into `proof` of the next replica to ask.
    pub next: usize,
    /// When it was first noticed.
    pub since: Duration,
}

/// Timer kinds (second byte of a token: drivers may use the top byte, see
/// `bft_harness::faults::Restart`).
const TIMER_TICK: u64 = 1;
const TIMER_VIEW: u64 = 2;

/// A PBFT replica.
pub struct Replica {
    pub(crate) cfg: ReplicaConfig,
    pub(crate) crypto: Crypto,
    /// Tokens carry it so that a restarted replica ignores its predecessor's timers.
    pub(crate) incarnation: u32,
    pub(crate) view: u64,
    /// Whether the replica has entered `view` (false between its View-Change and New-View).
    pub(crate) active: bool,
    pub(crate) log: BTreeMap<u64, Slot>,
    /// Replicas caught with a badly signed Commit: their Commits are checked on arrival.
    pub(crate) distrusted_commits: std::collections::BTreeSet<u32>,
    /// Next sequence number the primary assigns.
    pub(crate) next_seq: u64,
    /// Everything up to here is executed.
    pub(crate) executed: u64,
    pub(crate) stable: Stable,
    /// Own checkpoints above the stable one: seq → state digest and snapshot.
    pub(crate) snapshots: BTreeMap<u64, (Digest, Arc<Snapshot>)>,
    /// Checkpoint messages above the stable checkpoint: seq → replica → message.
    pub(crate) checkpoints: BTreeMap<u64, BTreeMap<u32, Arc<Checkpoint>>>,
    pub(crate) lag: Option<Lag>,
    pub(crate) state: ServiceState,
    /// Requests the primary has not assigned yet.
    pub(crate) pool: VecDeque<Arc<Update>>,
    /// Highest timestamp per client assigned in this view (primary).
    pub(crate) assigned: BTreeMap<ClientId, u64>,
    /// Requests a backup knows of and waits to see executed.
    pub(crate) pending: BTreeMap<ClientId, Arc<Update>>,
    /// The client signature last found valid per client (see [`SignatureMemo`]).
    pub(crate) client_sigs: SignatureMemo,
    /// The request the view-change timer runs for, and the timer's generation.
    pub(crate) timed: Option<(ClientId, u64)>,
    pub(crate) timer_gen: u64,
    /// The wait for the next New-View (doubles with consecutive view changes).
    pub(crate) view_timeout: Duration,
    /// Valid View-Changes: view → replica → message (at most two views per replica).
    pub(crate) view_changes: BTreeMap<u64, BTreeMap<u32, Arc<ViewChange>>>,
    /// The New-View of the current view and the View-Changes it was built from.
    pub(crate) new_view: Option<(Arc<NewView>, Vec<Arc<ViewChange>>)>,
    /// A New-View waiting for View-Changes this replica has not seen.
    pub(crate) waiting_new_view: Option<Arc<NewView>>,
    /// Highest view seen in messages of each replica (to notice being left behind).
    pub(crate) seen_views: BTreeMap<u32, u64>,
    /// When each peer's Status / FetchState was last answered.
    pub(crate) answered: BTreeMap<(u32, u8), Duration>,
    /// When execution last moved (or the replica started).
    pub(crate) progress_at: Duration,
    /// Accept the next tick of any incarnation (after a restart in the simulator).
    pub(crate) adopt_tick: bool,
    pub(crate) status_round: u32,
    /// When help was last asked for outside the tick.
    pub(crate) last_help: Duration,
    /// Recently ordered requests (for the equivocation fault).
    pub(crate) recent: VecDeque<Arc<Update>>,
    pub(crate) now: Duration,
    pub(crate) out: Vec<Action>,
    pub(crate) stats: ReplicaStats,
    /// Every vote cast above the persisted stable checkpoint (see `durable`).
    pub(crate) ledger: VoteLedger,
    /// Sequence number of the stable checkpoint in the durable store.
    pub(crate) persisted_stable: u64,
    /// Whether [`Replica::recover`] ran (the replica restarted from its store).
    pub(crate) recovered: bool,
}

impl Replica {
    /// A replica in view 0 with an empty state.
    pub fn new(cfg: ReplicaConfig, crypto: Crypto) -> Self {
        let view_timeout = cfg.view_change_timeout;
        Replica {
            cfg,
            crypto,
            incarnation: 0,
            view: 0,
            active: true,
            log: BTreeMap::new(),
            distrusted_commits: Default::default(),
            next_seq: 1,
            executed: 0,
            stable: Stable::default(),
            snapshots: BTreeMap::new(),
            checkpoints: BTreeMap::new(),
            lag: None,
            state: ServiceState::default(),
            pool: VecDeque::new(),
            assigned: BTreeMap::new(),
            pending: BTreeMap::new(),
            client_sigs: SignatureMemo::new(),
            timed: None,
            timer_gen: 0,
            view_timeout,
            view_changes: BTreeMap::new(),
            new_view: None,
            waiting_new_view: None,
            seen_views: BTreeMap::new(),
            answered: BTreeMap::new(),
            progress_at: Duration::ZERO,
            adopt_tick: false,
            status_round: 0,
            last_help: Duration::ZERO,
            recent: VecDeque::new(),
            now: Duration::ZERO,
            out: Vec::new(),
            stats: ReplicaStats::default(),
            ledger: VoteLedger::default(),
            persisted_stable: 0,
            recovered: false,
        }
    }

    /// A replica that lost its state (a restart): empty state and log, view 0; it catches up
    /// through status, New-View retransmission and state transfer. `incarnation` must differ
    /// from its predecessor's so that timers still pending for the old one are ignored.
    pub fn restarted(cfg: ReplicaConfig, crypto: Crypto, incarnation: u32) -> Self {
        let mut r = Replica::new(cfg, crypto);
        r.incarnation = incarnation;
        r
    }

    /// Take over the tick timer still pending for a predecessor (see [`Replica::restarted`]).
    pub(crate) fn adopt_ticks(&mut self) {
        self.adopt_tick = true;
    }

    // --- accessors --------------------------------------------------------------------------

    /// Number of replicas in the deployment.
    pub fn n_replicas(&self) -> u32 {
        self.n()
    }

    /// This replica's index.
    pub fn id(&self) -> u32 {
        self.cfg.id
    }

    /// The current view.
    pub fn view(&self) -> u64 {
        self.view
    }

    /// Whether the replica has entered its current view.
    pub fn is_active(&self) -> bool {
        self.active
    }

    /// Sequence number up to which everything is executed.
    pub fn last_executed(&self) -> u64 {
        self.executed
    }

    /// The last stable checkpoint (the low water mark).
    pub fn stable_checkpoint(&self) -> u64 {
        self.stable.seq
    }

    /// Protocol counters.
    pub fn stats(&self) -> &ReplicaStats {
        &self.stats
    }

    /// Crypto operation counters.
    pub fn crypto_counters(&self) -> CryptoCounters {
        self.crypto.counters()
    }

    /// The replicated key-value store.
    pub fn store(&self) -> &KvStore {
        self.state.store()
    }

    /// Digest of the current service state.
    pub fn state_digest(&self) -> Digest {
        self.state.snapshot().digest()
    }

    /// Sizes of the protocol state.
    pub fn footprint(&self) -> Footprint {
        Footprint {
            log: self.log.len(),
            checkpoints: self.checkpoints.values().map(BTreeMap::len).sum(),
            snapshots: self.snapshots.len() + usize::from(self.stable.snapshot.is_some()),
            view_changes: self.view_changes.values().map(BTreeMap::len).sum(),
            pool: self.pool.len(),
            pending: self.pending.len(),
            clients: self.state.clients(),
        }
    }

    /// A one-line summary of the internal state, for debugging.
    pub fn debug_state(&self) -> String {
        let slots: Vec<String> = self
            .log
            .range(self.executed + 1..)
            .take(4)
            .map(|(n, s)| {
                format!(
                    "{n}:pp={:?} prep={} com={} prepared={:?} committed={}",
                    s.pp.as_ref().map(|p| p.view),
                    s.prepares.len(),
                    s.commits.len(),
                    s.prepared.as_ref().map(|c| c.pre_prepare.view),
                    s.committed.is_some()
                )
            })
            .collect();
        format!(
            "r{} view={} active={} exec={} stable={} next={} pool={} pending={} lag={:?} [{}]",
            self.cfg.id,
            self.view,
            self.active,
            self.executed,
            self.stable.seq,
            self.next_seq,
            self.pool.len(),
            self.pending.len(),
            self.lag.as_ref().map(|l| l.seq),
            slots.join(" ")
        )
    }

    // --- inputs -----------------------------------------------------------------------------

    fn on_peer(&mut self, j: u32, m: &Message) -> bool {
        match m {
            Message::PrePrepare(p) => self.on_pre_prepare(j, p),
            Message::Prepare(p) => self.on_prepare(j, p),
            Message::Commit(c) => self.on_commit(j, c),
            Message::Checkpoint(c) => self.on_checkpoint(j, c),
            Message::ViewChange(v) => self.on_view_change(j, v),
            Message::NewView(nv) => self.on_new_view(j, nv),
            Message::Status(s) => self.on_status(j, s),
            Message::CommitProof(p) => self.on_commit_proof(p),
            Message::StableProof(p) => self.on_stable_proof(p),
            Message::FetchState(f) => self.on_fetch_state(j, f),
            Message::State(s) => self.on_state(s),
            Message::Request(_) | Message::Read(_) | Message::Reply(_) => false,
        }
    }

    // --- topology and quorums ---------------------------------------------------------------

    /// False for a Byzantine primary that never takes up its role (see [`PrimaryHook::acts`]).
    pub(crate) fn acts_as_primary(&self) -> bool {
        self.cfg.primary_hook.as_ref().is_none_or(|h| h.acts())
    }

    /// Number of replicas.
    pub(crate) fn n(&self) -> u32 {
        self.cfg.sites.len() as u32
    }

    /// Quorum size: any two quorums intersect in at least f+1 replicas (2f+1 when n = 3f+1).
    pub(crate) fn quorum(&self) -> usize {
        ((self.n() + self.cfg.f + 2) / 2) as usize
    }

    pub(crate) fn primary_of(&self, view: u64) -> u32 {
        let n = u64::from(self.n().max(1));
        ((u64::from(self.cfg.primary) + view % n) % n) as u32
    }

    pub(crate) fn is_primary(&self) -> bool {
        self.primary_of(self.view) == self.cfg.id
    }

    /// Whether `seq` lies between the water marks.
    pub(crate) fn in_window(&self, seq: u64) -> bool {
        seq > self.stable.seq && seq <= self.stable.seq.saturating_add(self.cfg.log_size)
    }

    /// Remember the highest view replica `j` was seen in.
    pub(crate) fn saw_view(&mut self, j: u32, view: u64) {
        let v = self.seen_views.entry(j).or_default();
        *v = (*v).max(view);
    }

    // --- crypto -----------------------------------------------------------------------------

    pub(crate) fn sign(&mut self, bytes: &[u8]) -> Vec<u8> {
        self.crypto.sign(bytes)
    }

    pub(crate) fn verify(&mut self, replica: u32, bytes: &[u8], sig: &[u8]) -> bool {
        match self.cfg.server_id(replica) {
            Some(id) => self.crypto.verify_server(id, bytes, sig),
            None => false,
        }
    }

    // --- outputs ----------------------------------------------------------------------------

    pub(crate) fn send(&mut self, to: Dest, msg: Message) {
        self.out.push(Action::Send {
            to,
            env: Envelope::new(msg),
        });
    }

    /// Send to every other replica.
    pub(crate) fn broadcast(&mut self, msg: Message) {
        let env = Envelope::new(msg);
        for i in 0..self.n() {
            if i != self.cfg.id {
                self.out.push(Action::Send {
                    to: Dest::Replica(i),
                    env: env.clone(),
                });
            }
        }
    }

    fn token(&self, kind: u64, gen: u64) -> u64 {
        kind << 48 | u64::from(self.incarnation & 0xff) << 32 | (gen & 0xffff_ffff)
    }

    fn arm_tick(&mut self) {
        let token = self.token(TIMER_TICK, 0);
        self.out.push(Action::Timer {
            after: self.cfg.tick,
            token,
        });
    }

    /// (Re)start the view timer: any earlier one is void.
    pub(crate) fn arm_view_timer(&mut self, after: Duration) {
        self.timer_gen += 1;
        let token = self.token(TIMER_VIEW, self.timer_gen);
        self.out.push(Action::Timer { after, token });
    }

    /// Void the view timer.
    pub(crate) fn stop_view_timer(&mut self) {
        self.timer_gen += 1;
        self.timed = None;
    }

    fn on_tick(&mut self) {
        self.retransmit();
        self.maybe_fetch_state();
    }

    /// Start: arm the maintenance tick. A replica that recovered from its store asks its
    /// peers at once for what it missed, and waits for the New-View of its view again if it
    /// had not entered it.
    fn on_start(&mut self) {
        self.arm_tick();
        if self.recovered {
            self.progress_at = self.now;
            if !self.active {
                let wait = self.view_timeout;
                self.arm_view_timer(wait);
            }
            self.send_status();
        }
    }

    /// A message from `from` (authenticated by the transport); one that is not valid here
    /// counts as `dropped_invalid`.
    fn on_node_message(&mut self, from: Dest, msg: &Message) {
        if matches!(from, Dest::Server(_)) {
            return; // Steward's servers are no PBFT node
        }
        let ok = match (from, msg) {
            (_, Message::Request(u)) => self.on_request(from, u),
            (Dest::Client(c), Message::Read(u)) => self.on_read(c, u),
            (Dest::Replica(j), m) if j != self.cfg.id && j < self.n() => self.on_peer(j, m),
            _ => false,
        };
        if !ok {
            self.stats.dropped_invalid += 1;
        }
    }

    /// A timer armed by this replica fired.
    fn on_timer_token(&mut self, token: u64) {
        let (kind, incarnation, gen) = (
            (token >> 48) & 0xff,
            (token >> 32) as u8,
            token & 0xffff_ffff,
        );
        if kind == TIMER_TICK && self.adopt_tick {
            self.adopt_tick = false;
            self.on_tick();
            self.arm_tick();
        } else if u32::from(incarnation) == self.incarnation & 0xff {
            match kind {
                TIMER_TICK => {
                    self.on_tick();
                    self.arm_tick();
                }
                TIMER_VIEW if gen == self.timer_gen & 0xffff_ffff => self.on_view_timer(),
                _ => {}
            }
        }
    }
}

impl bft_core::Outbox for Replica {
    type Msg = Message;

    fn clock_and_outbox(&mut self) -> (&mut Duration, &mut Vec<Action>) {
        (&mut self.now, &mut self.out)
    }
}

/// The replica as a [`bft_core::Node`], driven alike by the simulator and the runtime.
impl bft_core::Node for Replica {
    type Msg = Message;

    fn id(&self) -> Dest {
        Dest::Replica(self.cfg.id)
    }

    fn recover(&mut self, store: &bft_core::durable::Store) {
        self.restore(store);
    }

    fn start(&mut self, now: Duration, out: &mut Vec<Action>) {
        self.step(now, out, Self::on_start);
    }

    fn on_message(&mut self, now: Duration, from: Dest, msg: &Message, out: &mut Vec<Action>) {
        self.step(now, out, |r| r.on_node_message(from, msg));
    }

    fn on_timer(&mut self, now: Duration, token: u64, out: &mut Vec<Action>) {
        self.step(now, out, |r| r.on_timer_token(token));
    }

    fn crypto_counters(&self) -> CryptoCounters {
        self.crypto.counters()
    }

    fn stats(&self) -> Vec<(&'static str, u64)> {
        let r = &self.stats;
        vec![
            ("dropped_invalid", r.dropped_invalid),
            ("client_sigs_reused", self.client_sigs.reused()),
            ("view_changes", r.view_changes),
            ("new_views", r.new_views),
            ("stable_checkpoints", r.stable_checkpoints),
            ("state_transfers", r.state_transfers),
            ("reads", r.reads),
            ("votes_refused", r.votes_refused),
            // The runtime's summary reads these two names for every protocol.
            ("local_view_changes", r.view_changes),
            ("global_view_changes", 0),
        ]
    }

    fn gauges(&self) -> Vec<(&'static str, u64)> {
        vec![
            ("view", self.view()),
            ("pending_updates", self.pending.len() as u64),
            ("pool_updates", self.pool.len() as u64),
        ]
    }
}

#[cfg(test)]
mod tests;
