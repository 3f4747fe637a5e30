//! The Steward replica: a deterministic, sans-IO state machine for the normal case (TDSC
//! Appendix A: ASSIGN-SEQUENCE, THRESHOLD-SIGN, ASSIGN-GLOBAL-ORDER, execution, replies and
//! local read-only queries).
//!
//! Inputs are messages (with their authenticated sender) and timer expiries; outputs are
//! [`Action`]s: messages to send, timers to set, and execution records for the safety checker.
//! The same core runs under the simulator and the real runtime.

mod accept_relay;
pub mod accepters;
mod client_io;
pub(crate) mod designated;
mod durable;
mod forwarding;
mod global;
mod global_view;
mod local;
mod progress;
pub(crate) mod sequencing_watch;
pub(crate) use progress::STARVATION_FACTOR;
mod recon;
mod threshold;
mod view;
mod view_catchup;

#[cfg(test)]
mod robustness;

use std::collections::{BTreeMap, BTreeSet, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use bft_core::sig_memo::SignatureMemo;
use bft_core::Outbox;
use steward_config::{ServerId, SiteId, Topology};

use crate::crypto::Crypto;
use crate::kv::KvStore;
use crate::msg::{
    Accept, ClientId, Digest, Envelope, Message, PrePrepare, Prepare, Proposal, Reply, SigKind,
    Update,
};

/// A destination or sender: any node of either protocol (the protocol-neutral [`NodeId`]).
pub use bft_core::NodeId as Dest;

pub use bft_core::Executed;
pub use sequencing_watch::PACE_SAMPLES;

/// What the replica asks its driver to do: the outputs every protocol node produces.
pub type Action = bft_core::Output<crate::msg::Message>;

/// What the leader-site representative does with the next fresh slot (see
/// [`SequencerHook::next_slot`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sequencing {
    /// Take queued updates, as the protocol says.
    Normal,
    /// Pre-Prepare an empty batch although updates are queued (fake progress).
    Empty,
    /// Stop sequencing (assign no more sequence numbers).
    Stop,
}

/// Where the leader-site representative sends a Proposal its site just signed (see
/// [`SequencerHook::proposal_signed`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProposalRoute {
    /// Apply it and send it to the own site and every other site, as the protocol says.
    Everywhere,
    /// Neither apply it nor send it to the own site: send it only to the representatives of
    /// the other sites whose bit is set in the mask.
    OnlyTo(u64),
}

/// The one hook a Byzantine leader-site representative needs inside the core; `None` in
/// [`ReplicaConfig::sequencer`] (always, outside of tests) is the correct protocol.
///
/// Every other simulated misbehaviour (crashes, withheld or dropped messages, corrupted
/// shares, forged results, equivocating Pre-Prepares) is a wrapper around the replica as a
/// [`bft_core::Node`] (see `bft_harness::faults` and `crate::faults`). These two decisions
/// cannot be: *which updates go into a sequence number* happens on state no message shows (the
/// pool of queued updates, the windows), and *not applying an own Proposal* changes the
/// representative's own global history, which later view changes report — rewriting or
/// dropping the messages outside would leave the core believing in slots it never really
/// filled and would weaken the attacks the red-team tests need.
pub trait SequencerHook: std::fmt::Debug + Send + Sync {
    /// Called once for each slot the representative is about to fill, with the number of
    /// queued updates, at exactly one point: before the batch of a new Pre-Prepare is chosen.
    /// [`Sequencing::Empty`] is ignored for a slot an earlier view bound.
    fn next_slot(&self, _now: Duration, _queued: usize) -> Sequencing {
        Sequencing::Normal
    }
    /// Called once the site's threshold signature on the representative's Proposal combined,
    /// before the Proposal is applied or sent.
    fn proposal_signed(&self, _now: Duration) -> ProposalRoute {
        ProposalRoute::Everywhere
    }
}

/// Static configuration of one replica.
#[derive(Clone, Debug)]
pub struct ReplicaConfig {
    /// This server.
    pub id: ServerId,
    /// Servers per site (index = site id).
    pub servers: Vec<u32>,
    /// f per site.
    pub f: Vec<u32>,
    /// Updates per Proposal (1 = the paper).
    pub batch: usize,
    /// Pre-Prepares outstanding without a Proposal (release code: 2).
    pub local_window: u64,
    /// Proposals outstanding without global order (release code: 16).
    pub global_window: u64,
    /// Retransmission period (release code: 0.5 s).
    pub retransmit: Duration,
    /// A Byzantine representative's sequencing (tests only; `None` is the protocol).
    pub sequencer: Option<Arc<dyn SequencerHook>>,
    /// T1, the non-leader-site local timeout; the leader site uses T2 = (f+2)·T1 (TDSC §6.4).
    pub t1: Duration,
    /// Whether a late combine makes a leader-site server vote against its representative
    /// (sequencing_watch.rs; on by default, off only for ablation runs).
    pub combine_deadline: bool,
    /// One-way latency between sites' servers, with jitter (`[a][b]`; the diagonal is a LAN
    /// hop): what the forwarding watch judges global turnarounds by (forwarding.rs). Empty:
    /// no forwarding watch.
    pub wan_latency: Vec<Vec<Duration>>,
    /// Whether non-representatives forward their site's signed messages when a slot's global
    /// turnaround is late (forwarding.rs; on by default, off only for ablation runs).
    pub forwarding: bool,
    /// Whether only 2f+1 servers per site share on the ordering path at first (designated.rs;
    /// on by default, off only for ablation runs: then every server shares at once).
    pub designated_signers: bool,
    /// Whether only the ⌊S/2⌋ non-leader sites nearest the leader site accept at once
    /// (accepters.rs; on by default, off only for ablation runs: then every site accepts).
    pub designated_accepters: bool,
    /// Whether a representative relays other sites' Accepts of a slot into its site together
    /// when the slot is ordered (accept_relay.rs; on by default, off only for ablation runs:
    /// then each as it arrives).
    pub bundle_accept_relays: bool,
}

/// T1 for a topology: four times the largest WAN round trip, at least 0.5 s (T1 must cover a
/// THRESHOLD-SIGN and a WAN exchange; TDSC §6.4 leaves the base K to the deployment). Both
/// drivers, the simulator and `steward-node`, set [`ReplicaConfig::t1`] to it.
pub fn local_timeout_t1(topo: &Topology) -> Duration {
    (4 * max_round_trip(topo)).max(Duration::from_millis(500))
}

/// The longest WAN round trip of the topology (its links' latency and jitter, both ways).
pub(crate) fn max_round_trip(topo: &Topology) -> Duration {
    topo.wan_pairs()
        .map(|(_, _, l)| 2 * (l.latency + l.jitter))
        .max()
        .unwrap_or(Duration::ZERO)
}

impl ReplicaConfig {
    /// Defaults of the release code for server `id` in sites with the given sizes.
    pub fn new(id: ServerId, servers: Vec<u32>, f: Vec<u32>) -> Self {
        ReplicaConfig {
            id,
            servers,
            f,
            batch: 1,
            local_window: 2,
            global_window: 16,
            retransmit: Duration::from_millis(500),
            sequencer: None,
            t1: Duration::from_millis(500),
            combine_deadline: true,
            designated_signers: true,
            designated_accepters: true,
            bundle_accept_relays: true,
            wan_latency: Vec::new(),
            forwarding: true,
        }
    }

    /// Set what the replica takes from the topology (both drivers call this): T1
    /// ([`local_timeout_t1`]) and the latencies the forwarding watch judges by.
    pub fn apply_topology(&mut self, topo: &Topology) {
        self.t1 = local_timeout_t1(topo);
        self.wan_latency = topo
            .site_ids()
            .map(|a| {
                topo.site_ids()
                    .map(|b| {
                        let l = topo.link(a, b);
                        l.latency + l.jitter
                    })
                    .collect()
            })
            .collect();
    }
}

/// Counters of protocol events.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReplicaStats {
    /// Updates executed.
    pub executed: u64,
    /// Messages dropped as invalid (bad signature, wrong sender, conflict, out of window).
    pub dropped_invalid: u64,
    /// Servers blacklisted for bad shares.
    pub blacklisted: u64,
    /// Local views installed after the initial one.
    pub local_view_changes: u64,
    /// Global views installed after the initial one.
    pub global_view_changes: u64,
    /// Snapshots installed by state transfer.
    pub state_transfers: u64,
    /// Read-only queries answered.
    pub queries_answered: u64,
    /// Combine attempts that needed the proof-checking fallback.
    pub combine_fallbacks: u64,
    /// Votes to replace the own representative on proof of misbehaviour (a signed
    /// equivocation or fake-progress Pre-Prepare), before any timeout, or for missing the
    /// sequencing or combine deadline (sequencing_watch.rs).
    pub reps_suspected: u64,
    /// Of those, votes for a Proposal this server shared for and lacked a deadline later.
    pub late_combines: u64,
    /// Of those, votes for a median share-to-Proposal wait above the pace bound.
    pub slow_combines: u64,
    /// Proposal shares sent again while the combine deadline ran (a lost share or Proposal).
    pub shares_resent: u64,
    /// Proposals the representative sent again to a signer whose share came twice after the
    /// combine (its copy of the Proposal was lost).
    pub proposals_resent: u64,
    /// Proof rounds of the representative that postponed the combine deadline.
    pub proof_round_graces: u64,
    /// Slots whose global turnaround passed the bound here and started an eager span of
    /// forwarding (forwarding.rs).
    pub late_turnarounds: u64,
    /// Eager spans that ended because forwarding did not shorten the turnarounds (the
    /// network or other sites were slow): nothing was forwarded for a while (forwarding.rs).
    pub forwarding_quieted: u64,
    /// Proposals this leader-site non-representative forwarded to other sites.
    pub proposals_forwarded: u64,
    /// Own-site Accepts this non-representative forwarded to other sites.
    pub accepts_forwarded: u64,
    /// Other sites' Accepts this non-representative got directly (it forwarded the Proposal)
    /// and relayed to its site.
    pub accepts_relayed: u64,
    /// Own-site Accepts this non-leader representative sent, when they combined, to the
    /// leader-site servers that had forwarded it the Proposal.
    pub accepts_to_forwarders: u64,
    /// Votes not sent because this server had voted differently for the same slot and views
    /// (before a crash): a correct server never contradicts itself.
    pub votes_refused: u64,
    /// Entries restored from the durable store at the last restart.
    pub recovered_entries: u64,
    /// Client updates dropped unverified because the client's previous update was still
    /// pending (one outstanding update per client).
    pub updates_deferred: u64,
    /// Fresh queries put off unverified because their client's rate limit was reached.
    pub queries_deferred: u64,
    /// Ordering shares this excused server did not sign at once (designated.rs).
    pub shares_withheld: u64,
    /// Of those, shares signed later (asked for, or retransmitted).
    pub shares_released: u64,
    /// Shares the representative asked of site peers that had not sent one.
    pub shares_requested: u64,
    /// Pre-Prepares held because they came a little beyond the window (local.rs).
    pub pre_prepares_held: u64,
    /// Slots whose Accept this server's site held back at first (not a designated accepting
    /// site; accepters.rs).
    pub accepts_held_back: u64,
    /// Accept-backup expiries that signed held-back slots (and started an eager span).
    pub accept_backups: u64,
    /// Eager spans a holding site opened (at a backup, or asked by the leader site).
    pub accept_spans: u64,
    /// Held-back Accepts signed because the leader site sent the Proposal again.
    pub accepts_on_request: u64,
    /// Eager spans renewed because a designated accepting site still signed nothing.
    pub accept_span_renewals: u64,
    /// AcceptRelay messages this representative sent (two or more Accepts of a slot in one).
    pub accept_relays_bundled: u64,
    /// Held Accepts this representative relayed at a tick (the slot was not ordered here a
    /// retransmission period later, or it stopped being representative).
    pub accept_relays_flushed: u64,
    /// Combines whose last share came late against the pace of the first f and that brought in
    /// the excused servers (designated.rs).
    pub slow_share_combines: u64,
    /// Local timer expiries that voted to replace the representative because nothing was
    /// executed for a whole timeout while work was pending (progress.rs, "stalled").
    pub local_stall_votes: u64,
    /// Local timer expiries that voted because the oldest pending item waited
    /// `STARVATION_FACTOR` timeouts, whatever else was executed (progress.rs, "starving").
    pub local_starvation_votes: u64,
    /// Global timer expiries that voted for a global view change (either rule).
    pub global_timer_votes: u64,
}

/// Per-sequence-number state at the leader site (Local_History).
#[derive(Default)]
pub(crate) struct LocalSlot {
    /// A Prepare certificate from an earlier local view (from a local constraint).
    pub cert: Option<crate::msg::PrepareCert>,
    pub pre_prepare: Option<Arc<PrePrepare>>,
    pub digest: Option<Digest>,
    pub prepares: BTreeMap<u32, Arc<Prepare>>,
    pub share_sent: bool,
    /// When this server (not the representative) sent its Proposal share for the slot: the
    /// combine watch of sequencing_watch.rs counts from it.
    pub share_at: Option<Duration>,
    /// Times the share was sent again while the combine deadline ran (at a half and at three
    /// quarters of it; see sequencing_watch.rs).
    pub share_resends: u8,
    /// The representative asked this server to prove its Proposal share for the slot (a
    /// proof round may grant the representative grace: see sequencing_watch.rs).
    pub proof_asked: bool,
    /// The representative sent the Pre-Prepare again to the servers whose share it lacked.
    pub signers_nudged: bool,
    pub proposal: Option<Arc<Proposal>>,
    pub sent_at: Duration,
}

/// Per-sequence-number global state (Global_History).
#[derive(Default)]
pub(crate) struct GlobalSlot {
    pub proposal: Option<Arc<Proposal>>,
    /// When this server first held a Proposal for the slot (pending work for the timers).
    pub first_seen: Option<Duration>,
    pub accepts: BTreeMap<u16, Arc<Accept>>,
    pub own_accept: Option<Arc<Accept>>,
    pub accept_share_sent: bool,
    pub ordered: bool,
    pub sent_at: Duration,
    /// The latest Prepare certificate known for the slot. Kept across global views: a
    /// leader-site server that prepared a slot may never receive the Proposal its site signed
    /// (a Byzantine representative need not send it), and the certificate is what it reports
    /// in the next global view change (TDSC Fig. A-20, Invariant A.1).
    pub cert: Option<crate::msg::PrepareCert>,
    /// How far this server forwarded the slot's signed message (forwarding.rs).
    pub forwarded: forwarding::Forwarded,
    /// This server found the slot's global turnaround late (forwarding.rs).
    pub found_late: bool,
    /// At a non-leader representative: the leader-site servers (bit = index, below 64) other
    /// than their representative that sent it the slot's Proposal; they get the site's Accept
    /// when it combines (forwarding.rs).
    pub accept_wanted: u64,
    /// At a representative: the leader-site servers it sent the slot's order proof lately.
    pub proof_answers: AnswerWindow,
}

/// Which peers (bit = index, indices of 64 and more share the last bit) were answered within
/// the current window, and when that window started: one answer per peer per window.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct AnswerWindow {
    started: Duration,
    answered: u64,
}

impl AnswerWindow {
    /// Whether `peer` may be answered at `now`; if so it counts as answered.
    pub(crate) fn admit(&mut self, peer: u32, now: Duration, window: Duration) -> bool {
        if now.saturating_sub(self.started) >= window || self.answered == 0 {
            *self = AnswerWindow {
                started: now,
                answered: 0,
            };
        }
        let bit = 1u64 << peer.min(63);
        let fresh = self.answered & bit == 0;
        self.answered |= bit;
        fresh
    }
}

impl GlobalSlot {
    /// The binding an earlier global view left on this slot (TDSC Compute_Constraint_Union):
    /// the Proposal or Prepare certificate of the latest global view below `gv`, a Proposal
    /// winning a tie. Proposals of the current view are not "earlier" but bind all the same,
    /// so they are returned too.
    pub(crate) fn binding(&self, gv: u64) -> Option<(&[Arc<Update>], Digest)> {
        let prop = self.proposal.as_ref();
        let cert = self.cert.as_ref().filter(|c| c.pre_prepare.gv < gv);
        match (prop, cert) {
            (Some(p), Some(c)) if c.pre_prepare.gv > p.gv => Some((
                &c.pre_prepare.batch,
                crate::msg::batch_digest(&c.pre_prepare.batch),
            )),
            (Some(p), _) => Some((&p.batch, p.digest())),
            (None, Some(c)) => Some((
                &c.pre_prepare.batch,
                crate::msg::batch_digest(&c.pre_prepare.batch),
            )),
            (None, None) => None,
        }
    }

    /// True when a view before `gv` bound this slot and it is not ordered yet.
    pub(crate) fn bound_earlier(&self, gv: u64) -> bool {
        !self.ordered
            && (self.proposal.as_ref().is_some_and(|p| p.gv < gv)
                || self.cert.as_ref().is_some_and(|c| c.pre_prepare.gv < gv))
    }
}

/// Shares collected for one piece of content.
#[derive(Default)]
pub(crate) struct ShareSet {
    pub content: Option<Vec<u8>>,
    /// The unsigned Accept this server shared (Accept sets only): the combined signature
    /// belongs to exactly this content, whatever the views are by the time it combines.
    pub accept: Option<Accept>,
    /// The unsigned Proposal this server shared (Proposal sets only).
    pub proposal: Option<Proposal>,
    pub shares: BTreeMap<u32, Vec<u8>>,
    pub partials: BTreeMap<u32, Arc<crate::msg::PartialSig>>,
    /// Servers asked for the proof of their share after a failed combine.
    pub asked: BTreeSet<u32>,
    /// Signers whose share here is known good: the own one, or one whose proof checked
    /// (each proof is checked once).
    pub verified: BTreeSet<u32>,
    /// A combine of unproven shares failed: only proven shares count from now on.
    pub fast_failed: bool,
    /// The unproven shares of that failed combine, judged once the set combines.
    pub suspects: BTreeMap<u32, Vec<u8>>,
    pub done: bool,
    /// Signers whose share arrived after the combine (the representative's set only).
    pub late: BTreeSet<u32>,
    /// Signers sent the Proposal again because their share came twice after the combine.
    pub answered: BTreeSet<u32>,
    /// An excused server's share not signed yet: the (global, local) views of its
    /// Partial_Sig, for when the representative asks (designated.rs).
    pub withheld: Option<(u64, u64)>,
    /// The representative: when its own share went out (ordering sets; designated.rs).
    pub own_at: Option<Duration>,
    /// The representative: when f site peers' shares were in (the reference pace of a
    /// combine, which f slow signers cannot hold back; designated.rs).
    pub paced_at: Option<Duration>,
    /// The representative: peers asked for their share (designated.rs).
    pub share_asked: BTreeSet<u32>,
    /// The representative: the backup timer asked for the excused shares once already.
    pub backed_up: bool,
}

/// A Steward server.
pub struct Replica {
    pub(crate) cfg: ReplicaConfig,
    pub(crate) crypto: Crypto,
    pub(crate) gv: u64,
    pub(crate) lv: u64,
    /// Next sequence number the leader-site representative assigns.
    pub(crate) global_seq: u64,
    /// All sequence numbers up to here are executed.
    pub(crate) global_aru: u64,
    /// All sequence numbers up to here have a Proposal (leader site).
    pub(crate) pending_aru: u64,
    pub(crate) local: BTreeMap<u64, LocalSlot>,
    pub(crate) global: BTreeMap<u64, GlobalSlot>,
    pub(crate) shares: BTreeMap<(SigKind, u64, Digest), ShareSet>,
    /// The execution point at the last `garbage_collect`: share sets without own content at
    /// or below it are gone already.
    collected_aru: u64,
    pub(crate) blacklist: HashSet<u32>,
    /// Site peers whose unproven share was in a failed combine and that have not proven a
    /// share since: their unproven shares are left out of combines, and their proofs asked for.
    pub(crate) distrusted: BTreeSet<u32>,
    /// Updates waiting for a sequence number (leader-site representative).
    pub(crate) pool: VecDeque<Arc<Update>>,
    /// Highest timestamp per client already queued or bound (leader-site representative).
    pub(crate) pending_ts: BTreeMap<ClientId, u64>,
    /// Update digests bound to a sequence number and not yet executed.
    pub(crate) bound: BTreeMap<Digest, u64>,
    pub(crate) executed_ts: BTreeMap<ClientId, u64>,
    /// The result of each client's last executed update (part of checkpoints, so a server
    /// that catches up by state transfer can still answer the client).
    pub(crate) last_result: BTreeMap<ClientId, Vec<u8>>,
    pub(crate) last_reply: BTreeMap<ClientId, Arc<Reply>>,
    /// Per client: the last query answered, its cached reply and the rate limit.
    pub(crate) queries: BTreeMap<ClientId, client_io::QueryState>,
    /// Clients whose update reached this server directly: it owes them the reply (and
    /// re-injects the update after a local view change).
    pub(crate) responsible: BTreeMap<ClientId, Arc<Update>>,
    /// Known local view of every site (own site: `lv`).
    pub(crate) lv_of: Vec<u64>,
    /// Latest New_Rep vote of each server of the own site.
    pub(crate) new_reps: BTreeMap<u32, Arc<crate::msg::NewRep>>,
    /// False between installing a new leader-site local view and applying its constraint.
    pub(crate) locally_constrained: bool,
    /// CONSTRUCT-LOCAL-CONSTRAINT in progress at a new leader-site representative.
    pub(crate) collecting: Option<view::Collecting>,
    /// Updates this server knows of that are not executed yet (client → timestamp, and when
    /// this server first saw that update).
    pub(crate) pending_seen: BTreeMap<ClientId, (u64, Duration)>,
    /// When this server last executed something.
    pub(crate) last_progress: Duration,
    /// When the armed timers went from idle to busy (pending work appeared).
    pub(crate) busy_since: Duration,
    /// When the current local view was installed.
    pub(crate) local_epoch: Duration,
    /// When the current global view was installed.
    pub(crate) global_epoch: Duration,
    /// The update (timestamp) a non-leader representative last forwarded per client, and when.
    pub(crate) forwarded: BTreeMap<ClientId, (u64, Duration)>,
    /// At the leader site: the newest unexecuted update of each client of another site, as
    /// relayed by a server (one per client). Without them a leader-site representative
    /// installed after the update passed by could not get it but by the client's next
    /// retransmission, while its site's sequencing watch, which knows of the update, voted it
    /// out for not sequencing it: campaign seed 372 (a crashed leader-site server, a
    /// partition) replaced 20 correct representatives in a row and starved a client.
    pub(crate) relayed: BTreeMap<ClientId, Arc<Update>>,
    /// The client signature last found valid per client (see [`SignatureMemo`]).
    pub(crate) client_sigs: SignatureMemo,
    /// When each client's starving update was last pushed to the leader site.
    pub(crate) starving_pushed: BTreeMap<ClientId, Duration>,
    /// Generation of the local timer in flight (0 = none).
    pub(crate) local_timer: u64,
    pub(crate) local_timer_gen: u64,
    /// When the local timer in flight expires.
    pub(crate) local_timer_due: Duration,
    /// Generation of the global timer in flight (0 = none).
    pub(crate) global_timer: u64,
    /// When the global timer in flight expires.
    pub(crate) global_timer_due: Duration,
    /// Whether the progress timers watch pending work (false from the last execution that
    /// left nothing pending, or an expiry that found nothing, until work appears again).
    pub(crate) watching: bool,
    /// Progress-timer expiries handled (local and global, stale ones included).
    pub(crate) progress_expiries: u64,
    /// False between installing a global view and applying its constraints (leader site).
    pub(crate) globally_constrained: bool,
    /// Global view change progress in the current global view.
    pub(crate) gview: global_view::GlobalViewState,
    /// Highest sequence number seen in any verified Proposal, Accept or order proof beyond
    /// the window (a hint for reconciliation).
    pub(crate) highest_seen: u64,
    /// When `highest_seen` was last raised or confirmed (it expires).
    pub(crate) highest_seen_at: Duration,
    /// Proof of the current local view (retransmitted to other sites).
    pub(crate) local_proof: Option<Arc<crate::msg::LocalPreinstall>>,
    /// At a leader-site representative: the Local_Collected bundle it sent in its view (for
    /// servers that missed it; see `view_catchup`).
    pub(crate) local_bundle: Option<Arc<crate::msg::LocalCollected>>,
    /// When each peer of the site was last sent view help (bounded by the site's size).
    pub(crate) view_help_sent: BTreeMap<(u32, view_catchup::ViewHelp), Duration>,
    /// A peer of this site showed a newer global view since the last tick.
    pub(crate) newer_global_view_seen: bool,
    pub(crate) view_ticks: u64,
    /// Consecutive retransmission ticks without progress while behind.
    pub(crate) stuck_ticks: u32,
    /// The latest checkpoint (for state transfer to far-behind servers).
    pub(crate) checkpoint: Option<recon::Checkpoint>,
    /// Snapshot claims received: (seq, digest) → servers vouching.
    /// Snapshot claims: each server's latest (seq, digest). One vote per server, so junk
    /// votes can neither grow this nor push out the votes of correct servers.
    pub(crate) snapshot_votes: BTreeMap<ServerId, (u64, Digest)>,
    /// Full snapshot states received, by digest, until enough servers vouch for one.
    pub(crate) snapshot_state: BTreeMap<ServerId, (Digest, Vec<u8>)>,
    pub(crate) kv: KvStore,
    /// global_aru at the previous retransmission tick (to notice being stuck).
    pub(crate) aru_at_last_tick: u64,
    /// When each peer's reconciliation request was last answered.
    pub(crate) recon_answered: BTreeMap<ServerId, Duration>,
    /// This server's last reconciliation request to another site (see `recon`).
    pub(crate) recon_asked: Option<recon::ReconAsk>,
    /// Requests this server sent to other sites so far (which of their servers is next).
    pub(crate) recon_asks: u32,
    /// Per site: how far its correct servers provably are (see `recon`).
    pub(crate) site_signed: Vec<recon::SignedProgress>,
    /// Per site: reconciliation bytes this server may still send it, and when that
    /// allowance was last refilled.
    pub(crate) recon_budget: Vec<(u64, Duration)>,
    /// Every vote cast and not pruned (persisted; see `durable`).
    pub(crate) ledger: bft_core::durable::VoteLedger,
    /// The views last written to the durable store.
    pub(crate) persisted_views: (u64, u64),
    pub(crate) now: Duration,
    pub(crate) out: Vec<Action>,
    pub(crate) stats: ReplicaStats,
    /// The leader-site servers' watch on their representative's sequencing.
    pub(crate) seq_watch: sequencing_watch::SequencingWatch,
    /// A non-representative's watch on global turnarounds (forwarding.rs).
    pub(crate) fwd_watch: forwarding::ForwardWatch,
    /// Which ordering shares this server withholds (designated.rs).
    pub(crate) designation: designated::Designation,
    pub(crate) accept_backup: accepters::AcceptBackup,
    /// Foreign Accepts this representative holds until their slot is ordered here.
    pub(crate) held_accepts: BTreeMap<u64, accept_relay::HeldAccepts>,
    /// Pre-Prepares of the representative a little beyond the window, by slot (local.rs,
    /// `hold_ahead`).
    pub(crate) held_pre_prepares: BTreeMap<u64, Arc<PrePrepare>>,
}

/// Pre-Prepares a server holds beyond its window, and how far beyond (local.rs).
pub(crate) const HOLD_AHEAD: u64 = 8;

/// Timer token of the periodic retransmission tick.
pub(crate) const TICK: u64 = 1;

/// How many executed sequence numbers to keep state for (retransmissions of late slots).
const KEEP_EXECUTED: u64 = 256;

/// Drop the slots below `keep_from`: pops the few oldest, where `split_off` would rebuild the
/// kept tree on every execution.
pub(crate) fn drop_slots_below<V>(slots: &mut BTreeMap<u64, V>, keep_from: u64) {
    while slots.first_key_value().is_some_and(|(s, _)| *s < keep_from) {
        slots.pop_first();
    }
}

impl Replica {
    /// A replica in global view 0 and local view 0 (leader site 0, representatives index 0).
    pub fn new(cfg: ReplicaConfig, crypto: Crypto) -> Self {
        let cfg_sites = cfg.servers.len();
        Replica {
            cfg,
            crypto,
            gv: 0,
            lv: 0,
            global_seq: 1,
            global_aru: 0,
            pending_aru: 0,
            local: BTreeMap::new(),
            global: BTreeMap::new(),
            shares: BTreeMap::new(),
            collected_aru: 0,
            blacklist: HashSet::new(),
            distrusted: BTreeSet::new(),
            pool: VecDeque::new(),
            pending_ts: BTreeMap::new(),
            bound: BTreeMap::new(),
            executed_ts: BTreeMap::new(),
            last_result: BTreeMap::new(),
            last_reply: BTreeMap::new(),
            queries: BTreeMap::new(),
            responsible: BTreeMap::new(),
            lv_of: vec![0; cfg_sites],
            new_reps: BTreeMap::new(),
            locally_constrained: true,
            collecting: None,
            pending_seen: BTreeMap::new(),
            last_progress: Duration::ZERO,
            busy_since: Duration::ZERO,
            local_epoch: Duration::ZERO,
            global_epoch: Duration::ZERO,
            starving_pushed: BTreeMap::new(),
            forwarded: BTreeMap::new(),
            relayed: BTreeMap::new(),
            client_sigs: SignatureMemo::new(),
            local_timer: 0,
            local_timer_due: Duration::ZERO,
            global_timer_due: Duration::ZERO,
            watching: false,
            progress_expiries: 0,
            local_timer_gen: 0,
            global_timer: 0,
            globally_constrained: true,
            gview: Default::default(),
            highest_seen: 0,
            highest_seen_at: Duration::ZERO,
            local_proof: None,
            local_bundle: None,
            view_help_sent: BTreeMap::new(),
            newer_global_view_seen: false,
            view_ticks: 0,
            stuck_ticks: 0,
            checkpoint: None,
            snapshot_votes: BTreeMap::new(),
            snapshot_state: BTreeMap::new(),
            kv: KvStore::default(),
            aru_at_last_tick: 0,
            recon_answered: BTreeMap::new(),
            recon_asked: None,
            recon_asks: 0,
            site_signed: vec![Default::default(); cfg_sites],
            recon_budget: vec![(0, Duration::ZERO); cfg_sites],
            ledger: Default::default(),
            persisted_views: (0, 0),
            now: Duration::ZERO,
            out: Vec::new(),
            stats: ReplicaStats::default(),
            seq_watch: Default::default(),
            fwd_watch: Default::default(),
            designation: Default::default(),
            accept_backup: Default::default(),
            held_accepts: BTreeMap::new(),
            held_pre_prepares: BTreeMap::new(),
        }
    }

    /// This server's id.
    pub fn id(&self) -> ServerId {
        self.cfg.id
    }

    /// Sequence number up to which everything is executed.
    pub fn global_aru(&self) -> u64 {
        self.global_aru
    }

    /// Protocol counters.
    pub fn stats(&self) -> &ReplicaStats {
        &self.stats
    }

    /// A one-line summary of internal state, for debugging.
    pub fn debug_state(&self) -> String {
        let slots: Vec<String> = self
            .local
            .range(self.global_aru..)
            .take(4)
            .map(|(s, l)| {
                format!(
                    "{s}:pp={} prep={} share={} prop={}",
                    l.pre_prepare.is_some(),
                    l.prepares.len(),
                    l.share_sent,
                    l.proposal.is_some()
                )
            })
            .collect();
        let glob: Vec<String> = self
            .global
            .range(self.global_aru..)
            .take(3)
            .map(|(s, g)| {
                format!(
                    "{s}:prop={:?} acc={:?} ashare={} own={} ord={}",
                    g.proposal.as_ref().map(|p| (p.gv, p.lv)),
                    g.accepts.iter().map(|(k, a)| (k, a.gv)).collect::<Vec<_>>(),
                    g.accept_share_sent,
                    g.own_accept.is_some(),
                    g.ordered
                )
            })
            .collect();
        format!(
            "rep={} lc={} gc={} aru={} gseq={} paru={} pool={} global=[{}] local=[{}]",
            self.is_rep(),
            self.locally_constrained,
            self.globally_constrained,
            self.global_aru,
            self.global_seq,
            self.pending_aru,
            self.pool.len(),
            glob.join(" "),
            slots.join(" ")
        )
    }

    /// Site peers (indices) this server blacklisted for bad shares.
    pub fn blacklisted(&self) -> Vec<u32> {
        let mut v: Vec<u32> = self.blacklist.iter().copied().collect();
        v.sort_unstable();
        v
    }

    /// Crypto operation counters.
    pub fn crypto_counters(&self) -> crate::crypto::CryptoCounters {
        self.crypto.counters()
    }

    /// The replicated store.
    pub fn store(&self) -> &KvStore {
        &self.kv
    }

    /// Whether this server is its site's representative in its current local view.
    pub fn is_representative(&self) -> bool {
        self.is_rep()
    }

    /// This site's current local view.
    pub fn local_view(&self) -> u64 {
        self.lv
    }

    /// Whether this server's local history is constrained in its current local view (always,
    /// outside the leader site).
    pub fn is_locally_constrained(&self) -> bool {
        self.locally_constrained
    }

    /// The current global view.
    pub fn global_view(&self) -> u64 {
        self.gv
    }

    // --- topology helpers -------------------------------------------------------------------

    pub(crate) fn site(&self) -> SiteId {
        self.cfg.id.site
    }

    pub(crate) fn num_sites(&self) -> usize {
        self.cfg.servers.len()
    }

    pub(crate) fn site_size(&self, site: SiteId) -> u32 {
        self.cfg.servers[site.index()]
    }

    pub(crate) fn f(&self) -> u32 {
        self.cfg.f[self.site().index()]
    }

    pub(crate) fn leader_site(&self) -> SiteId {
        SiteId((self.gv % self.num_sites() as u64) as u16)
    }

    pub(crate) fn in_leader_site(&self) -> bool {
        self.site() == self.leader_site()
    }

    pub(crate) fn rep_of(&self, site: SiteId) -> ServerId {
        let lv = if site == self.site() {
            self.lv
        } else {
            self.lv_of[site.index()]
        };
        ServerId::new(site, (lv % u64::from(self.site_size(site))) as u32)
    }

    pub(crate) fn is_rep(&self) -> bool {
        self.rep_of(self.site()) == self.cfg.id
    }

    pub(crate) fn send(&mut self, to: Dest, msg: Message) {
        self.out.push(Action::Send {
            to,
            env: Envelope::new(msg),
        });
    }

    /// Send to every server of the own site, including itself (the driver loops back).
    pub(crate) fn send_site(&mut self, msg: Message) {
        let env = Envelope::new(msg);
        for i in 0..self.site_size(self.site()) {
            self.out.push(Action::Send {
                to: Dest::Server(ServerId::new(self.site(), i)),
                env: env.clone(),
            });
        }
    }

    /// Send to the representatives of every other site.
    pub(crate) fn send_other_sites(&mut self, msg: Message) {
        let env = Envelope::new(msg);
        for s in 0..self.num_sites() as u16 {
            let site = SiteId(s);
            if site != self.site() {
                let rep = self.rep_of(site);
                self.out.push(Action::Send {
                    to: Dest::Server(rep),
                    env: env.clone(),
                });
            }
        }
    }

    /// Send a Proposal to the other sites whose Accept is not in `accepted`: to their
    /// representatives, or with `every_server` to all their servers.
    pub(crate) fn send_proposal_abroad(
        &mut self,
        p: Arc<Proposal>,
        accepted: &[u16],
        every_server: bool,
    ) {
        let msg = Message::Proposal(p);
        for s in 0..self.num_sites() as u16 {
            let site = SiteId(s);
            if site == self.site() || accepted.contains(&s) {
                continue;
            }
            if every_server {
                for i in 0..self.site_size(site) {
                    self.send(Dest::Server(ServerId::new(site, i)), msg.clone());
                }
            } else {
                let rep = self.rep_of(site);
                self.send(Dest::Server(rep), msg.clone());
            }
        }
    }

    fn retransmit(&mut self) {
        let old = |t: Duration, now: Duration, p: Duration| now.saturating_sub(t) >= p;
        let period = self.cfg.retransmit;
        let now = self.now;
        if self.is_rep() && self.in_leader_site() {
            // Pre-Prepares whose Proposal has not formed, and Proposals not yet ordered.
            let stale_pp: Vec<Arc<PrePrepare>> = self
                .local
                .range(self.global_aru + 1..)
                .filter(|(_, s)| s.proposal.is_none() && old(s.sent_at, now, period))
                .filter_map(|(_, s)| s.pre_prepare.clone())
                .collect();
            for pp in stale_pp {
                self.send_site(Message::PrePrepare(pp));
            }
            // A site that has not accepted after one retransmission gets the Proposal at
            // every server, not only at the representative this server believes in: a dead
            // or stale representative must not hide it from the site's timers.
            let stale_prop: Vec<(Arc<Proposal>, bool, Vec<u16>)> = self
                .global
                .range(self.global_aru + 1..)
                .filter(|(_, s)| !s.ordered && old(s.sent_at, now, period))
                .filter_map(|(_, s)| {
                    let p = s.proposal.clone()?;
                    let twice = old(s.sent_at, now, 2 * period);
                    let accepted: Vec<u16> = s.accepts.keys().copied().collect();
                    Some((p, twice, accepted))
                })
                .collect();
            for (p, twice, accepted) in stale_prop {
                self.send_proposal_abroad(p, &accepted, twice);
            }
        }
    }

    /// Drop state of sequence numbers long executed, keeping memory bounded.
    pub(crate) fn garbage_collect(&mut self) {
        let keep_from = self.global_aru.saturating_sub(KEEP_EXECUTED);
        drop_slots_below(&mut self.local, keep_from);
        drop_slots_below(&mut self.global, keep_from);
        let (gv, aru) = (self.gv, self.global_aru);
        // Past the execution point only the own shares matter (retransmissions and proof
        // requests): sets of others' shares alone, on contents this server never signed, go.
        // Such sets are only made above the execution point (`on_partial_sig`), so only the
        // slots executed since the last collection can hold one: range scans instead of a
        // scan of every kept slot's sets on every execution.
        let low = (0, [0u8; 32]);
        let mut dead = Vec::new();
        let from = self.collected_aru.max(keep_from.saturating_sub(1)) + 1;
        for kind in [SigKind::Proposal, SigKind::Accept] {
            let below = (kind, low.0, low.1)..(kind, keep_from, low.1);
            dead.extend(self.shares.range(below).map(|(k, _)| *k));
            if from <= aru {
                let executed = (kind, from, low.1)..=(kind, aru, [0xff; 32]);
                dead.extend(
                    self.shares
                        .range(executed)
                        .filter(|(_, set)| set.content.is_none())
                        .map(|(k, _)| *k),
                );
            }
        }
        for kind in [SigKind::GlobalVc, SigKind::Aru, SigKind::Constraint] {
            dead.extend(
                self.shares
                    .range((kind, low.0, low.1)..(kind, gv, low.1))
                    .map(|(k, _)| *k),
            );
        }
        for key in dead {
            self.shares.remove(&key);
        }
        self.collected_aru = aru;
    }

    /// A message from `from` (authenticated by the transport); one that is not valid here
    /// counts as `dropped_invalid`.
    fn on_node_message(&mut self, from: Dest, msg: &Message) {
        if matches!(from, Dest::Replica(_)) {
            return; // the other protocol's replicas are no Steward node
        }
        if let Dest::Server(s) = from {
            self.help_peer_into_view(s, msg);
        }
        let ok = match (from, msg) {
            (_, Message::Update(u)) => self.on_update(from, u),
            (Dest::Client(c), Message::Query(q)) => self.on_query(c, q),
            (Dest::Server(s), Message::PrePrepare(p)) => self.on_pre_prepare(s, p),
            (Dest::Server(s), Message::Prepare(p)) => self.on_prepare(s, p),
            (Dest::Server(s), Message::PartialSig(p)) => self.on_partial_sig(s, p),
            (Dest::Server(s), Message::ProofRequest(q)) => self.on_proof_request(s, q),
            (Dest::Server(s), Message::ShareRequest(q)) => self.on_share_request(s, q),
            (Dest::Server(s), Message::Corrupted(c)) => self.on_corrupted(s, c),
            (Dest::Server(s), Message::Proposal(p)) => self.on_proposal(s, p),
            (Dest::Server(s), Message::Accept(a)) => self.on_accept(s, a),
            (Dest::Server(s), Message::AcceptRelay(r)) => self.on_accept_relay(s, r),
            (Dest::Server(s), Message::ReconRequest(r)) => self.on_recon_request(s, r),
            (Dest::Server(s), Message::Ordered(o)) => self.on_ordered(s, o),
            (Dest::Server(s), Message::NewRep(n)) => self.on_new_rep(s, n),
            (Dest::Server(s), Message::LocalPreinstall(p)) => self.on_local_preinstall(s, p),
            (Dest::Server(s), Message::RequestLocalState(r)) => self.on_request_local_state(s, r),
            (Dest::Server(s), Message::LocalServerState(st)) => self.on_local_server_state(s, st),
            (Dest::Server(s), Message::LocalCollected(c)) => self.on_local_collected(s, c),
            (Dest::Server(s), Message::GlobalVc(v)) => self.on_global_vc(s, v),
            (Dest::Server(s), Message::GlobalPreinstall(p)) => self.on_global_preinstall(s, p),
            (Dest::Server(s), Message::Aru(a)) => self.on_aru(s, a),
            (Dest::Server(s), Message::RequestGlobalState(r)) => self.on_request_global_state(s, r),
            (Dest::Server(s), Message::GlobalServerState(st)) => self.on_global_server_state(s, st),
            (Dest::Server(s), Message::GlobalCollected(c)) => self.on_global_collected(s, c),
            (Dest::Server(s), Message::GlobalConstraint(c)) => self.on_global_constraint(s, c),
            (Dest::Server(s), Message::CollectedConstraints(c)) => {
                self.on_collected_constraints(s, c)
            }
            (Dest::Server(s), Message::Snapshot(sn)) => self.on_snapshot(s, sn),
            _ => false,
        };
        if !ok {
            self.stats.dropped_invalid += 1;
        }
    }

    /// A timer armed by this replica fired.
    fn on_timer_token(&mut self, token: u64) {
        if progress::is_global_token(token) {
            self.progress_expiries += 1;
            self.on_global_timer(token - progress::GLOBAL_TIMER_BASE);
        } else if progress::is_local_token(token) {
            self.progress_expiries += 1;
            self.on_local_timer(token - progress::LOCAL_TIMER_BASE);
        } else if token == sequencing_watch::SEQ_WATCH {
            self.on_seq_watch();
        } else if token == forwarding::FORWARD_WATCH {
            self.on_forward_watch();
        } else if token == designated::SHARE_BACKUP {
            self.on_share_backup();
        } else if token == accepters::ACCEPT_BACKUP {
            self.on_accept_backup();
        } else if token == TICK {
            // Sequencing normally follows arrivals and progress; the tick is its fallback (an
            // update left queued by a refused vote or a full window gets its slot here).
            self.try_propose();
            // The watch stops during view changes; the tick restarts it for what still waits.
            if !self.pending_seen.is_empty() {
                self.watch_sequencing();
            }
            self.retransmit();
            self.flush_held_accepts();
            self.push_idle_tail();
            self.answer_deferred_queries();
            self.maybe_request_recon();
            self.ask_into_newer_global_view();
            self.view_retransmit();
            self.global_view_retransmit();
            self.out.push(Action::Timer {
                after: self.cfg.retransmit,
                token: TICK,
            });
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
        Dest::Server(self.cfg.id)
    }

    fn recover(&mut self, store: &bft_core::durable::Store) {
        self.restore(store);
    }

    /// Start: arm the retransmission tick.
    fn start(&mut self, now: Duration, out: &mut Vec<Action>) {
        self.step(now, out, |r| {
            r.out.push(Action::Timer {
                after: r.cfg.retransmit,
                token: TICK,
            })
        });
    }

    fn on_message(&mut self, now: Duration, from: Dest, msg: &Message, out: &mut Vec<Action>) {
        self.step(now, out, |r| r.on_node_message(from, msg));
    }

    fn on_timer(&mut self, now: Duration, token: u64, out: &mut Vec<Action>) {
        self.step(now, out, |r| r.on_timer_token(token));
    }

    fn crypto_counters(&self) -> crate::crypto::CryptoCounters {
        self.crypto.counters()
    }

    fn combine_shares(&self) -> usize {
        self.crypto.quorum(self.site())
    }

    fn stats(&self) -> Vec<(&'static str, u64)> {
        let r = &self.stats;
        vec![
            ("dropped_invalid", r.dropped_invalid),
            ("client_sigs_reused", self.client_sigs.reused()),
            ("blacklisted", r.blacklisted),
            ("local_view_changes", r.local_view_changes),
            ("global_view_changes", r.global_view_changes),
            ("state_transfers", r.state_transfers),
            ("queries_answered", r.queries_answered),
            ("combine_fallbacks", r.combine_fallbacks),
            ("reps_suspected", r.reps_suspected),
            ("late_combines", r.late_combines),
            ("slow_combines", r.slow_combines),
            ("shares_resent", r.shares_resent),
            ("proposals_resent", r.proposals_resent),
            ("proof_round_graces", r.proof_round_graces),
            ("late_turnarounds", r.late_turnarounds),
            ("forwarding_quieted", r.forwarding_quieted),
            ("proposals_forwarded", r.proposals_forwarded),
            ("accepts_forwarded", r.accepts_forwarded),
            ("accepts_relayed", r.accepts_relayed),
            ("accepts_to_forwarders", r.accepts_to_forwarders),
            ("votes_refused", r.votes_refused),
            ("recovered_entries", r.recovered_entries),
            ("updates_deferred", r.updates_deferred),
            ("queries_deferred", r.queries_deferred),
            ("shares_withheld", r.shares_withheld),
            ("shares_released", r.shares_released),
            ("shares_requested", r.shares_requested),
            ("slow_share_combines", r.slow_share_combines),
            ("pre_prepares_held", r.pre_prepares_held),
            ("accepts_held_back", r.accepts_held_back),
            ("accept_backups", r.accept_backups),
            ("accept_spans", r.accept_spans),
            ("accepts_on_request", r.accepts_on_request),
            ("accept_span_renewals", r.accept_span_renewals),
            ("accept_relays_bundled", r.accept_relays_bundled),
            ("accept_relays_flushed", r.accept_relays_flushed),
            ("local_stall_votes", r.local_stall_votes),
            ("local_starvation_votes", r.local_starvation_votes),
            ("global_timer_votes", r.global_timer_votes),
        ]
    }

    fn gauges(&self) -> Vec<(&'static str, u64)> {
        vec![
            ("local_view", self.lv),
            ("global_view", self.gv),
            ("pending_updates", self.pending_seen.len() as u64),
            ("pool_updates", self.pool.len() as u64),
            ("blacklisted_servers", self.blacklist.len() as u64),
            (
                "sequencing_deadline_ms",
                self.sequencing_deadline().as_millis() as u64,
            ),
            (
                "combine_deadline_ms",
                self.combine_deadline().as_millis() as u64,
            ),
            (
                "combine_wait_us",
                self.combine_wait().map_or(0, |d| d.as_micros() as u64),
            ),
            (
                "combine_pace_bound_ms",
                self.combine_pace_bound().as_millis() as u64,
            ),
            (
                "turnaround_bound_ms",
                self.turnaround_bound().map_or(0, |d| d.as_millis() as u64),
            ),
            (
                "turnaround_us",
                self.turnaround().map_or(0, |d| d.as_micros() as u64),
            ),
        ]
    }
}

#[cfg(test)]
mod timeout_tests {
    use super::*;
    use bft_harness::testing::shipped_topology;

    #[test]
    fn t1_covers_four_of_the_longest_round_trips() {
        let lan_like = shipped_topology("local-symmetric-10mbps.toml");
        assert_eq!(local_timeout_t1(&lan_like), Duration::from_millis(500));
        // paper-planetlab: Brazil-Korea, 289 ms one way.
        let planetlab = shipped_topology("paper-planetlab.toml");
        assert_eq!(max_round_trip(&planetlab), Duration::from_millis(578));
        assert_eq!(local_timeout_t1(&planetlab), Duration::from_millis(2312));
    }
}
