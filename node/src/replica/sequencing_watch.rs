//! The sequencing deadline at the leader site (issue #14, attack 7; the idea is Prime's, Amir
//! et al., DSN 2008: judge the leader against what the network allows, not against a
//! timeout).
//!
//! The stall and starvation timers (`progress.rs`) allow a representative T2 between
//! executions and 4·T2 per update, so a representative that fills one slot just often enough
//! kept every client at about 2% of fault-free throughput with no view change. A correct
//! representative assigns a queued update a sequence number as soon as its windows allow, and
//! every leader-site server can see when they allow: so a leader-site server that holds an
//! update which nobody has sequenced although the windows had room for a whole *sequencing
//! deadline* votes to replace the representative.
//!
//! The deadline is [`DEADLINE_FACTOR`] times the median time from a Pre-Prepare to its Prepare
//! certificate at this server (a LAN round and the signature checks of 2f correct servers,
//! which the representative cannot slow down), within [T1/10, T1]. The floor allows for what
//! the median does not see: scheduling noise of real processes, and a correct representative
//! whose f Byzantine peers flood it (shares go only to it). Both drivers take a replica's
//! inbound messages one per sender in turn (the runtime's inbound queue; the simulator's
//! inbox), so such a flood delays the representative's other work by one message per
//! flooder, not by its backlog. Before the simulator did so, the catalog's `partial-sig-spam`
//! at f = 5 (5,000 junk shares per tick) held updates tens of milliseconds behind the junk,
//! a T1/10 floor made the watch replace correct representatives every second (0.76 → 0.38 of
//! fault-free) and the floor had to be T1/2; with the fair inbox the same attack costs 1% and
//! the watch replaces none, even with no floor at all.
//! Half-way through the deadline, the server sends the update it holds to every server of its
//! site (the representative included, in case its first forward was lost or deferred), so that
//! every correct server watches it and the 2f+1 votes a new view needs can form.
//!
//! The *combine deadline* covers what only the representative does after sequencing: Proposal
//! shares go to it alone, so it could sequence promptly and combine each slot just under the
//! timers (two held combines also close the local window, so the sequencing deadline saw no
//! room to judge by; the catalog's `slow-combiner` held every client at 0.01–0.03 of
//! fault-free throughput). A non-representative that sent its share for a slot of the current
//! views and holds no Proposal for it [`COMBINE_FACTOR`] median certificate times later
//! (within [T1/10, T1]) votes to replace the representative, in the same once-per-view vote
//! (`ReplicaConfig::combine_deadline`, on by default). What a correct representative cannot
//! help does not count against it:
//! - a lost share or a lost copy of the Proposal: the server sends its share again at a half
//!   and at three quarters of the deadline, and the representative answers a signer's second
//!   share after the combine with the Proposal (`answer_late_share` in threshold.rs);
//! - a proof round (a Byzantine signer's bad share failed a combine): no combine is late, and
//!   no update waits for sequencing, until T1 after the representative asks this server for a
//!   proof or a withheld share, at most f + local window times per local view
//!   ([`Replica::grant_proof_round_grace`]). The round's proof checks and the judging of its
//!   suspects (a combine each) keep the representative's CPU from sequencing: at f = 5 with
//!   the paper's costs that is about 150 ms, and once designated signers (designated.rs) let
//!   the round finish before the window closed, the sequencing deadline (66 ms) replaced a
//!   correct representative for it;
//! - network jitter: the floor T1/10 (a lossy test network that delays 20% of LAN messages by
//!   up to 30 ms replaced correct representatives 32 times in 20 s with a floor of T1/50).
//!
//! The median time from share to Proposal is kept for monitoring (`bft_combine_wait_us`) but
//! is never the unit of a deadline: the representative controls it and could raise it slot by
//! slot. The deadline is the median certificate time's multiple, not a high percentile's,
//! for the same reason: a Byzantine representative that sends one server's Pre-Prepare late
//! now and then raises that server's tail but not the median.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use super::{Action, Replica};
use crate::msg::{ClientId, Message};

/// Timer token of the sequencing watch (beside the retransmission tick, 1).
pub(crate) const SEQ_WATCH: u64 = 2;

/// The deadline in units of the median Pre-Prepare-to-certificate time.
pub(crate) const DEADLINE_FACTOR: u32 = 8;

/// The combine deadline in units of the median Pre-Prepare-to-certificate time. A combine
/// costs more than a certificate: the signers' shares (3.9 ms each at the paper's costs,
/// against 1.3 ms for the Prepare's signature) and the representative's combine (5.6 ms),
/// queued behind its other work. Fault-free, from the share to the Proposal took up to 15
/// medians at the paper's costs and 2 at the measured ones (catalog topologies, 20 s, 10
/// clients); 24 leaves a margin of 1.6. With 32, a representative holding each combine 95%
/// of the deadline kept `paper-symmetric-10mbps` at the paper's costs at 0.49 of fault-free
/// throughput (0.66 with 24): with a local window of 2 and one update per slot, every slot's
/// hold costs the site that much sequencing.
pub(crate) const COMBINE_FACTOR: u32 = 24;

/// The sequencing deadline's floor is T1 divided by this. A lower floor (T1/50) made the
/// leader site of `paper-symmetric-10mbps` at the paper's costs replace its correct, CPU-bound
/// representative 16 times in a fault-free run (64.1 → 41.0 updates/s): an update may wait
/// for the representative's CPU, which the certificate time does not see.
pub(crate) const FLOOR_DIVISOR: u32 = 10;

/// The combine deadline's floor is T1 divided by this: the combine's factor already covers the
/// cost of signing, so the floor guards against what the median does not see, the network's
/// jitter and scheduling noise of real processes. T1/50 was too low for the lossy test
/// network (20% of messages delayed by up to 30 ms): 32 local view changes in 20 s.
pub(crate) const COMBINE_FLOOR_DIVISOR: u32 = 10;

/// Certificate times kept for the median.
pub(crate) const SAMPLES: usize = 32;

/// Share-to-Proposal waits of the current views the combine pace is the median of.
pub const PACE_SAMPLES: usize = 16;

/// The combine pace's bound is [`COMBINE_FACTOR`] median certificate times, at least T1
/// divided by this. A median of 16 waits ignores what delays a few slots (the jitter and the
/// loss that the combine deadline's higher floor is for), so the bound can be as low as the
/// combine deadline's without its floor: 10 ms at T1 = 500 ms, where a prompt combine takes
/// about 1 ms at the measured costs.
pub(crate) const PACE_FLOOR_DIVISOR: u32 = 50;

/// A leader-site server's view of its representative's sequencing.
#[derive(Debug, Default)]
pub(crate) struct SequencingWatch {
    armed: bool,
    /// Recent Pre-Prepare-to-certificate times, oldest first.
    samples: VecDeque<Duration>,
    /// Since when the representative's windows have had room without a break (None: full).
    room_since: Option<Duration>,
    /// The update (by timestamp) each client's last push to the site carried, and the local
    /// view it was pushed in (a new representative gets it pushed again).
    pushed: BTreeMap<ClientId, (u64, u64)>,
    /// The local view in which this watch last voted (it votes once per view).
    voted_in: Option<u64>,
    /// When an update of each waiting client was last executed here.
    served: BTreeMap<ClientId, Duration>,
    /// Recent times from this server's Proposal share to the Proposal, oldest first (for
    /// monitoring: the representative controls them, so no deadline uses them).
    combine_waits: VecDeque<Duration>,
    /// No combine is late before this: the representative asked for share proofs (see
    /// [`Replica::grant_proof_round_grace`]).
    grace_until: Option<Duration>,
    /// Proof rounds granted grace in the local view `.0`: `.1` of them.
    graces: (u64, u32),
    /// The last share-to-Proposal waits of Proposals of the views `paced_views` (the combine
    /// pace; see [`Replica::check_combine_pace`]).
    paced: VecDeque<Duration>,
    paced_views: (u64, u64),
}

impl SequencingWatch {
    /// A Pre-Prepare-to-certificate time measured at this server.
    pub(crate) fn sample(&mut self, d: Duration) {
        if self.samples.len() == SAMPLES {
            self.samples.pop_front();
        }
        self.samples.push_back(d);
    }

    fn median(&self) -> Option<Duration> {
        median_of(&self.samples)
    }

    /// A time from this server's Proposal share to a Proposal of the views `views`.
    pub(crate) fn combine_waited(&mut self, d: Duration, views: (u64, u64)) {
        if self.combine_waits.len() == SAMPLES {
            self.combine_waits.pop_front();
        }
        self.combine_waits.push_back(d);
        if self.paced_views != views {
            self.paced.clear();
            self.paced_views = views;
        }
        if self.paced.len() == PACE_SAMPLES {
            self.paced.pop_front();
        }
        self.paced.push_back(d);
    }

    /// The bound on the combine pace (see [`PACE_FLOOR_DIVISOR`]).
    pub(crate) fn pace_bound(&self, t1: Duration) -> Duration {
        deadline_for(self.median(), COMBINE_FACTOR, t1 / PACE_FLOOR_DIVISOR, t1)
    }

    /// The sequencing deadline of this server (see [`deadline_for`]).
    pub(crate) fn deadline(&self, t1: Duration) -> Duration {
        deadline_for(self.median(), DEADLINE_FACTOR, t1 / FLOOR_DIVISOR, t1)
    }

    /// The combine deadline of this server (see [`deadline_for`]).
    pub(crate) fn combine_deadline(&self, t1: Duration) -> Duration {
        combine_deadline_for(self.median(), t1)
    }
}

fn median_of(samples: &VecDeque<Duration>) -> Option<Duration> {
    let mut v: Vec<Duration> = samples.iter().copied().collect();
    v.sort_unstable();
    v.get(v.len() / 2).copied()
}

/// A deadline of `factor` × the median certificate time, within [floor, cap] (the cap until
/// anything was measured).
fn deadline_for(median: Option<Duration>, factor: u32, floor: Duration, cap: Duration) -> Duration {
    median.map_or(cap, |m| (m * factor).clamp(floor, cap))
}

/// The combine deadline for a median certificate time: COMBINE_FACTOR × the median, within
/// [T1 / COMBINE_FLOOR_DIVISOR, T1].
pub(crate) fn combine_deadline_for(median: Option<Duration>, t1: Duration) -> Duration {
    deadline_for(median, COMBINE_FACTOR, t1 / COMBINE_FLOOR_DIVISOR, t1)
}

impl Replica {
    /// The current sequencing deadline (see the module documentation).
    pub fn sequencing_deadline(&self) -> Duration {
        self.seq_watch.deadline(self.cfg.t1)
    }

    /// The current combine deadline (see the module documentation).
    pub fn combine_deadline(&self) -> Duration {
        self.seq_watch.combine_deadline(self.cfg.t1)
    }

    /// The median time from this server's Proposal share to the Proposal over the last slots
    /// (None before any, and at the representative).
    pub fn combine_wait(&self) -> Option<Duration> {
        median_of(&self.seq_watch.combine_waits)
    }

    /// The bound on the median share-to-Proposal wait (see [`Replica::check_combine_pace`]).
    pub fn combine_pace_bound(&self) -> Duration {
        self.seq_watch.pace_bound(self.cfg.t1)
    }

    /// The median of the last [`PACE_SAMPLES`] share-to-Proposal waits of the current views,
    /// once there are that many.
    pub fn combine_pace(&self) -> Option<Duration> {
        let w = &self.seq_watch;
        let current = w.paced_views == (self.gv, self.lv) && w.paced.len() == PACE_SAMPLES;
        current.then(|| median_of(&w.paced)).flatten()
    }

    /// A Proposal this server shared for arrived: judge the representative's combine pace.
    /// The combine deadline bounds each slot's wait, but its floor must allow for jitter
    /// and loss, and a representative that holds every slot just under it keeps two slots
    /// per deadline at the local window of 2 (0.44 of fault-free throughput at f = 1 and the
    /// measured costs). So the median of the last [`PACE_SAMPLES`] waits of the current views
    /// must also stay within [`Replica::combine_pace_bound`]: a median ignores the few slots
    /// jitter or loss delays, and a representative that wants to hold slots to the deadline
    /// can do so for fewer than half of them.
    pub(crate) fn check_combine_pace(&mut self) {
        if !self.cfg.combine_deadline || !self.watches_sequencing() {
            return;
        }
        let Some(pace) = self.combine_pace() else {
            return;
        };
        if pace > self.combine_pace_bound() && self.vote_against_rep() {
            self.stats.slow_combines += 1;
        }
    }

    /// Vote to replace the representative, once per local view; whether this vote was cast.
    fn vote_against_rep(&mut self) -> bool {
        if self.seq_watch.voted_in == Some(self.lv) {
            return false;
        }
        self.seq_watch.voted_in = Some(self.lv);
        self.stats.reps_suspected += 1;
        self.vote_new_rep();
        true
    }

    /// Whether this server watches its representative's sequencing: a correct leader-site
    /// server other than the representative, in an installed view.
    fn watches_sequencing(&self) -> bool {
        self.in_leader_site()
            && !self.is_rep()
            && self.locally_constrained
            && self.globally_constrained
    }

    /// A client update became pending here: make sure the watch runs.
    pub(crate) fn watch_sequencing(&mut self) {
        if !self.watches_sequencing() || self.seq_watch.armed {
            return;
        }
        self.note_room();
        let half = self.seq_watch.deadline(self.cfg.t1) / 2;
        self.arm_seq_watch(half);
    }

    fn arm_seq_watch(&mut self, after: Duration) {
        self.seq_watch.armed = true;
        self.out.push(Action::Timer {
            after,
            token: SEQ_WATCH,
        });
    }

    /// Whether, as far as this server can tell, the representative may assign a new
    /// sequence number: fewer Pre-Prepares without a Proposal than the local window, fewer
    /// unordered slots than the global window, and no slot whose Pre-Prepare this server
    /// missed (others' Prepares for it arrived): then it cannot tell, and says no.
    fn rep_has_room(&self) -> bool {
        let aru = self.global_aru;
        let mut waiting_proposal = 0;
        let mut unordered = 0;
        for (seq, slot) in self.local.range(aru + 1..) {
            let ordered = self.global.get(seq).is_some_and(|g| g.ordered);
            if slot.pre_prepare.is_none() {
                if !slot.prepares.is_empty() && !ordered {
                    return false;
                }
                continue;
            }
            if ordered {
                continue;
            }
            unordered += 1;
            if slot.proposal.is_none() {
                waiting_proposal += 1;
            }
        }
        waiting_proposal < self.cfg.local_window && unordered < self.cfg.global_window
    }

    /// Follow the representative's room: called wherever it may open or close (a
    /// Pre-Prepare, a Proposal, an execution, a view change).
    pub(crate) fn note_room(&mut self) {
        if !self.watches_sequencing() {
            self.seq_watch.room_since = None;
            return;
        }
        if !self.rep_has_room() {
            self.seq_watch.room_since = None;
        } else if self.seq_watch.room_since.is_none() {
            self.seq_watch.room_since = Some(self.now);
        }
    }

    /// An update of `client` was executed here: the representative serves that client.
    pub(crate) fn client_served(&mut self, client: ClientId) {
        if self.pending_seen.contains_key(&client) {
            self.seq_watch.served.insert(client, self.now);
        }
    }

    /// Whether some Pre-Prepare or Proposal above the execution point carries an update of
    /// the client. Any of its updates counts, not only the one this server holds: a correct
    /// client has one outstanding update, and a Byzantine one that sends many (each server
    /// keeps the first it saw) must not make servers that hold different ones suspect a
    /// representative that serves it.
    fn sequenced(&self, client: ClientId) -> bool {
        let aru = self.global_aru;
        let carries = |batch: &[Arc<crate::msg::Update>]| batch.iter().any(|u| u.client == client);
        self.local.range(aru + 1..).any(|(_, s)| {
            s.pre_prepare.as_ref().is_some_and(|pp| carries(&pp.batch))
                || s.proposal.as_ref().is_some_and(|p| carries(&p.batch))
        }) || self
            .global
            .range(aru + 1..)
            .any(|(_, g)| g.proposal.as_ref().is_some_and(|p| carries(&p.batch)))
    }

    /// The watch timer: push updates waiting half a deadline to the site, vote when one waited a
    /// whole deadline with room, and look again while anything waits.
    pub(crate) fn on_seq_watch(&mut self) {
        self.seq_watch.armed = false;
        if !self.watches_sequencing() {
            return;
        }
        self.note_room();
        let deadline = self.seq_watch.deadline(self.cfg.t1);
        let now = self.now;
        // A proof round's grace covers sequencing too: the representative's CPU checks the
        // proofs and judges the suspects before it gets to the next update.
        let grace_end = self.seq_watch.grace_until.unwrap_or_default();
        let counting_from = self.seq_watch.room_since.map(|r| {
            r.max(self.local_epoch)
                .max(self.global_epoch)
                .max(grace_end)
        });
        let waiting: Vec<(ClientId, u64, Duration)> = self
            .pending_seen
            .iter()
            .map(|(c, (ts, since))| (*c, *ts, *since))
            .filter(|(c, _, _)| !self.sequenced(*c))
            .collect();
        let mut overdue = false;
        let mut next = deadline / 2;
        // The combine: only the representative gets the shares, so a Proposal this server
        // shared for and still lacks a deadline later is the representative's delay, whatever
        // its room (held combines are what closes the local window).
        let epoch = self.local_epoch.max(self.global_epoch);
        let combine_deadline = self.seq_watch.combine_deadline(self.cfg.t1);
        let combines = if self.cfg.combine_deadline {
            self.combines_awaited()
        } else {
            Vec::new()
        };
        let mut late_combine = false;
        let grace = self.seq_watch.grace_until.unwrap_or_default();
        // Sent again at a half and at three quarters of the deadline: a lost share, or a lost
        // copy of the Proposal (the representative answers a signer's second share after the
        // combine with it), is not the representative's delay.
        let resend_at = |n: u8| combine_deadline / 4 * (2 + u32::from(n));
        for (seq, shared, resends) in &combines {
            let start = (*shared).max(epoch);
            let due = (start + combine_deadline).max(grace);
            if now >= due {
                late_combine = true;
                continue;
            }
            let mut resends = *resends;
            if resends < 2 && now >= start + resend_at(resends) {
                // The own Prepare too: a server that lost it may lack its certificate, and the
                // representative needs 2f+1 shares.
                self.resend_local(*seq);
                self.stats.shares_resent += 1;
                resends += 1;
                if let Some(slot) = self.local.get_mut(seq) {
                    slot.share_resends = resends;
                }
            }
            let wake = if resends < 2 {
                (start + resend_at(resends)).min(due)
            } else {
                due
            };
            next = next.min(wake.saturating_sub(now));
        }
        for (client, ts, since) in &waiting {
            // Counted from the latest of: when this server got the update, when the
            // representative last had room, when an update of this client was last executed.
            let served = self.seq_watch.served.get(client).copied();
            let waited = counting_from.map_or(Duration::ZERO, |from| {
                now.saturating_sub((*since).max(from).max(served.unwrap_or_default()))
            });
            if waited >= deadline {
                overdue = true;
            } else if waited >= deadline / 2 {
                self.push_to_site(*client, *ts);
                next = next.min(deadline - waited);
            } else {
                next = next.min(deadline / 2 - waited);
            }
        }
        if overdue || late_combine {
            let voted = self.vote_against_rep();
            if voted && late_combine {
                self.stats.late_combines += 1;
            }
        }
        self.seq_watch
            .pushed
            .retain(|c, _| waiting.iter().any(|(w, _, _)| w == c));
        let pending = &self.pending_seen;
        self.seq_watch.served.retain(|c, _| pending.contains_key(c));
        if !waiting.is_empty() || !combines.is_empty() {
            // Not sooner than a twentieth of the deadline: the watch costs a few wake-ups per
            // deadline at most.
            self.arm_seq_watch(next.max(deadline / 20));
        }
    }

    /// The representative asked for the proof of this server's share on a slot (the first
    /// time for that slot). A correct representative does so only when a combine failed: some
    /// signer sent a bad share. The round (every unproven signer proves; the representative
    /// checks each proof, then judges and blacklists) takes several times a combine, and
    /// delays the slots behind it on the representative's CPU, so no combine counts as late
    /// until T1 after the request. Each round blacklists a bad signer, so a correct
    /// representative needs at most f rounds, and one per slot of its local window may be
    /// under way when the first bad share shows: a Byzantine one that asks on every slot
    /// gets no more than f + local window graces per local view.
    pub(crate) fn grant_proof_round_grace(&mut self) {
        let budget = self.f() + self.cfg.local_window as u32;
        let (view, granted) = self.seq_watch.graces;
        let granted = if view == self.lv { granted } else { 0 };
        if granted >= budget {
            return;
        }
        self.seq_watch.graces = (self.lv, granted + 1);
        self.seq_watch.grace_until = Some(self.now + self.cfg.t1);
        self.stats.proof_round_graces += 1;
    }

    /// Each slot of the current views whose Proposal this server shared for and still lacks:
    /// its sequence number, when this server sent its share, and how often it sent it again.
    fn combines_awaited(&self) -> Vec<(u64, Duration, u8)> {
        let views = (self.gv, self.lv);
        self.local
            .range(self.global_aru + 1..)
            .filter(|(_, s)| s.proposal.is_none())
            .filter(|(_, s)| {
                s.pre_prepare
                    .as_ref()
                    .is_some_and(|pp| (pp.gv, pp.lv) == views)
            })
            .filter_map(|(seq, s)| {
                let ordered = self.global.get(seq).is_some_and(|g| g.ordered);
                s.share_at
                    .filter(|_| !ordered)
                    .map(|at| (*seq, at, s.share_resends))
            })
            .collect()
    }

    /// Send the client's update this server holds (from the client, or relayed by another
    /// site) to every server of its site, once per update and local view.
    fn push_to_site(&mut self, client: ClientId, ts: u64) {
        if self.seq_watch.pushed.get(&client) == Some(&(ts, self.lv)) {
            return;
        }
        let Some(u) = self
            .responsible
            .get(&client)
            .or_else(|| self.relayed.get(&client))
            .filter(|u| u.ts == ts)
            .cloned()
        else {
            return;
        };
        self.seq_watch.pushed.insert(client, (ts, self.lv));
        self.send_site(Message::Update(u));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_deadline_is_a_multiple_of_the_median_within_bounds() {
        let t1 = Duration::from_millis(500);
        let mut w = SequencingWatch::default();
        assert_eq!(w.deadline(t1), t1, "nothing measured: T1");
        for ms in [1, 2, 3, 100, 4] {
            w.sample(Duration::from_millis(ms));
        }
        assert_eq!(
            w.deadline(t1),
            Duration::from_millis(50),
            "8 × 3 ms, raised to T1/10"
        );
        assert_eq!(
            w.combine_deadline(t1),
            Duration::from_millis(72),
            "24 × 3 ms"
        );
        let mut fast = SequencingWatch::default();
        fast.sample(Duration::from_micros(100));
        assert_eq!(
            fast.combine_deadline(t1),
            t1 / COMBINE_FLOOR_DIVISOR,
            "raised to its floor"
        );
        for _ in 0..SAMPLES {
            w.sample(Duration::from_millis(20));
        }
        assert_eq!(w.deadline(t1), Duration::from_millis(160));
        assert_eq!(w.samples.len(), SAMPLES, "bounded");
        for _ in 0..SAMPLES {
            w.sample(Duration::from_secs(1));
        }
        assert_eq!(w.deadline(t1), t1, "capped at T1");
        assert_eq!(w.combine_deadline(t1), t1, "capped at T1");
    }
}
