//! Forwarding around a slow representative (issue #14, the residual of attack 7).
//!
//! A representative is the only server of its site that sends the site's threshold-signed
//! messages to other sites: the leader site's representative its Proposals, every other
//! site's representative its Accepts. The timers cannot tell a representative that sends each
//! one just under them from a correct one, and every update waits for it: the catalog's
//! `slow-disseminator` (Proposals 0.9·T2 late) held clients at 3–10% of fault-free throughput
//! and `slow-accepts` (Accepts 3/4·(T1 − longest round trip) late) at 26–35%, with no view
//! change. Every server of the site holds the same signed message a LAN hop after the
//! representative combined it, and other sites accept it from any server of the signing
//! site (the threshold signature, not the sender, is what they check). So the other servers
//! watch each slot's *global turnaround* — from the moment they hold the Proposal to the
//! slot's global order — against what the topology allows, and when a slot is late they
//! forward the message themselves:
//!
//! - a leader-site server forwards the Proposal to the representatives of the sites whose
//!   Accept it lacks; any other server forwards its own site's Accept to every other site's
//!   representative;
//! - at the turnaround bound, the slot's *designated* forwarder does (one non-representative
//!   per slot, in turn), and every server that saw the slot late starts forwarding *eagerly*:
//!   the designated forwarder of each of the next slots forwards as soon as it holds the
//!   message, without waiting. The first eager span is [`FIRST_SPAN`] slots, and each later
//!   late slot of the same views doubles it, so a representative that slows down again after
//!   a span ends costs at most one late window per doubling;
//! - at twice the bound, every non-representative forwards (a Byzantine designated forwarder
//!   cannot hold a slot back);
//! - a leader-site server that forwarded a Proposal gets the other sites' Accepts directly
//!   (a non-leader representative sends its Accept, when it combines, to every leader-site
//!   server that sent it the Proposal), and any server that gets another site's Accept
//!   directly relays it to its site, as the representative does;
//! - an eager span whose slots turn late more often than not (at least [`MIN_JUDGED`]) shows
//!   that forwarding does not help: the WAN or the other sites are slow, not this site's
//!   representative. Nothing is forwarded then for a quiet span (doubled each time): on
//!   congested links (2.5 Mbit/s, 40 clients) forwarding every slot had added copies to full
//!   queues, 149.6 → 58.0 updates/s; with quiet spans it costs 1%.
//!
//! Nobody is blamed — a late slot may be another site's fault, or the network's — so a false
//! alarm costs bandwidth, not a view change, and the bound can be tight: the propagation the
//! topology's one-way latencies (with their jitter) allow, plus four LAN hops, plus T1/10 for
//! the signing at the other sites (a share and a combine, queued behind other work). A
//! representative that holds each message just under the bound still costs every update up
//! to that margin; one that holds it longer is overtaken by its site's forwarders.
//!
//! What this does not cover: a representative that withholds its site's signed message from
//! its own site as well (the combine deadline and the T1 timer are for that); a topology file
//! whose latencies are lower than the real ones (every slot is then late: forwarding runs in
//! short eager spans between quiet ones, which costs WAN bytes, never a view change); and an
//! attacker that can both delay the representative's messages and make the forwarders'
//! copies late (congesting the WAN) — it can quiet forwarding.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use steward_config::{ServerId, SiteId};

use super::{Action, Dest, Replica};
use crate::msg::{Accept, Message};

/// Timer token of the forwarding watch (beside the tick, 1, and the sequencing watch, 2).
pub(crate) const FORWARD_WATCH: u64 = 3;

/// Slots forwarded eagerly after the first late slot of a view (doubled by each later one).
pub(crate) const FIRST_SPAN: u64 = 64;

/// The allowance for signing at the other sites is T1 divided by this.
pub(crate) const SIGNING_DIVISOR: u32 = 10;

/// Turnarounds kept for the monitoring median.
const SAMPLES: usize = 32;

/// Late slots of an eager span judged before it may be found useless.
pub(crate) const MIN_JUDGED: u32 = 8;

/// A non-representative's watch on its slots' global turnaround.
#[derive(Debug, Default)]
pub(crate) struct ForwardWatch {
    armed: bool,
    /// The global and own local view the state belongs to.
    views: (u64, u64),
    /// The highest slot this server held its message for (in these views).
    highest: u64,
    /// The current eager span: slots from `eager_from` to `eager_until` (none: 0).
    eager_from: u64,
    eager_until: u64,
    /// The next eager span's length.
    span: u64,
    /// Of the slots of the current span: ordered within the bound, and late.
    span_on_time: u32,
    span_late: u32,
    /// Slots up to here are not forwarded at all: forwarding did not help.
    quiet_until: u64,
    /// The next quiet span's length.
    quiet_span: u64,
    /// Recent turnarounds (holding the Proposal to global order), oldest first.
    turnarounds: VecDeque<Duration>,
}

/// What a late slot makes of the forwarding state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LateVerdict {
    /// Forward it (as its designated forwarder); `started`: an eager span starts with it.
    Forward { started: bool },
    /// Forward nothing: forwarding did not shorten the turnarounds lately.
    Quiet { started: bool },
}

impl ForwardWatch {
    fn sync_views(&mut self, views: (u64, u64)) {
        if self.views != views {
            *self = ForwardWatch {
                armed: self.armed,
                views,
                turnarounds: std::mem::take(&mut self.turnarounds),
                ..ForwardWatch::default()
            };
        }
    }

    /// This server holds the message for `seq`.
    fn held(&mut self, seq: u64) {
        self.highest = self.highest.max(seq);
    }

    /// Whether `seq` is in the current eager span.
    pub(crate) fn eager(&self, seq: u64) -> bool {
        self.eager_until > 0 && seq <= self.eager_until && !self.quiet(seq)
    }

    /// Whether nothing is forwarded for `seq`.
    pub(crate) fn quiet(&self, seq: u64) -> bool {
        seq <= self.quiet_until
    }

    /// `seq` was ordered within the bound.
    fn on_time(&mut self, seq: u64) {
        if self.eager_until > 0 && (self.eager_from..=self.eager_until).contains(&seq) {
            self.span_on_time += 1;
        }
    }

    /// `seq` passed the bound unordered. A late slot outside an eager span starts one, from
    /// the next slot this server gets (those in flight were not forwarded eagerly) for
    /// `span` slots, doubled for the next. A span whose slots turn late more often than not
    /// (at least [`MIN_JUDGED`] of them) shows that forwarding does not help: the network or
    /// the other sites are slow, not this site's representative, and the copies would only
    /// load the links. Then nothing is forwarded for a quiet span (doubled each time).
    pub(crate) fn late(&mut self, seq: u64) -> LateVerdict {
        if self.quiet(seq) {
            return LateVerdict::Quiet { started: false };
        }
        if self.eager_until > 0 && seq <= self.eager_until {
            if seq >= self.eager_from {
                self.span_late += 1;
            }
            if self.span_late >= MIN_JUDGED && self.span_late > self.span_on_time {
                let quiet = self.quiet_span.max(FIRST_SPAN);
                self.quiet_until = self.highest.max(seq) + quiet;
                self.quiet_span = (quiet * 2).min(1 << 20);
                (self.eager_from, self.eager_until) = (0, 0);
                return LateVerdict::Quiet { started: true };
            }
            return LateVerdict::Forward { started: false };
        }
        let span = self.span.max(FIRST_SPAN);
        self.eager_from = self.highest.max(seq) + 1;
        self.eager_until = self.highest.max(seq) + span;
        self.span = (span * 2).min(1 << 20);
        (self.span_on_time, self.span_late) = (0, 0);
        LateVerdict::Forward { started: true }
    }
}

/// How far a slot's forwarding has gone at this server.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Forwarded {
    /// Not forwarded.
    #[default]
    No,
    /// Forwarded eagerly, as soon as held, as the slot's designated forwarder.
    Eager,
    /// Forwarded at the bound as the slot's designated forwarder.
    Designated,
    /// Forwarded at twice the bound (every non-representative does).
    Everyone,
}

impl Replica {
    /// Whether this server watches its slots' turnaround: not the representative, in a
    /// settled view, with a topology to judge by.
    fn forwards(&self) -> bool {
        self.cfg.forwarding
            && !self.cfg.wan_latency.is_empty()
            && !self.is_rep()
            && self.globally_constrained
            && (!self.in_leader_site() || self.locally_constrained)
    }

    /// One-way latency between two sites' servers (a LAN hop within a site), with jitter.
    fn one_way(&self, a: SiteId, b: SiteId) -> Duration {
        self.cfg.wan_latency[a.index()][b.index()]
    }

    /// The turnaround the topology allows this server: from holding a slot's Proposal to
    /// holding the Accepts that order it, plus the signing allowance.
    pub(crate) fn turnaround_bound(&self) -> Option<Duration> {
        if self.cfg.wan_latency.is_empty() {
            return None;
        }
        let (me, leader) = (self.site(), self.leader_site());
        let accepting = self.accepting_sites();
        let needed = self.num_sites() / 2;
        // Each other accepting site j signs when the Proposal reaches it and sends to us:
        // its Accept arrives d(L, j) + d(j, me) after the leader site sent, and we held the
        // Proposal d(L, me) after (zero at the leader site).
        let held_at = if me == leader {
            Duration::ZERO
        } else {
            self.one_way(leader, me)
        };
        let mut arrivals: Vec<Duration> = accepting
            .iter()
            .filter(|j| **j != me)
            .map(|&j| (self.one_way(leader, j) + self.one_way(j, me)).saturating_sub(held_at))
            .collect();
        arrivals.sort();
        // The own Accept counts where this site accepts at once.
        let own = me != leader && accepting.contains(&me);
        let others_needed = if own { needed - 1 } else { needed };
        let propagation = match others_needed {
            0 => Duration::ZERO,
            k => *arrivals.get(k - 1)?,
        };
        let lan = self.one_way(me, me);
        Some(propagation + 4 * lan + self.cfg.t1 / SIGNING_DIVISOR)
    }

    /// The median recent turnaround (monitoring only).
    pub(crate) fn turnaround(&self) -> Option<Duration> {
        let mut v: Vec<Duration> = self.fwd_watch.turnarounds.iter().copied().collect();
        v.sort();
        v.get(v.len() / 2).copied()
    }

    /// Whether this server is `seq`'s designated forwarder: the non-representatives of the
    /// site take the slots in turn.
    fn designated(&self, seq: u64) -> bool {
        self.designated_of(self.site(), seq) == Some(self.cfg.id)
    }

    /// `site`'s designated forwarder of `seq` as far as this server knows the site's view:
    /// the k-th non-representative after the representative, k = seq mod (n − 1).
    fn designated_of(&self, site: SiteId, seq: u64) -> Option<ServerId> {
        let n = self.site_size(site);
        if n < 2 {
            return None;
        }
        let rep = self.rep_of(site).index;
        let k = (seq % u64::from(n - 1)) as u32;
        Some(ServerId::new(site, (rep + 1 + k) % n))
    }

    /// A slot's global order: note its turnaround.
    pub(crate) fn note_turnaround(&mut self, seq: u64) {
        let Some(first) = self.global.get(&seq).and_then(|s| s.first_seen) else {
            return;
        };
        let took = self.now.saturating_sub(first);
        if self.turnaround_bound().is_some_and(|b| took < b) {
            self.fwd_watch.on_time(seq);
        }
        let t = &mut self.fwd_watch.turnarounds;
        if t.len() == SAMPLES {
            t.pop_front();
        }
        t.push_back(took);
    }

    /// This server now holds what it would forward for `seq` (the Proposal at the leader
    /// site, the own site's Accept elsewhere): forward it at once if eager and designated,
    /// and watch the slot.
    pub(crate) fn forwardable(&mut self, seq: u64) {
        if !self.forwards() {
            return;
        }
        self.fwd_watch.sync_views((self.gv, self.lv));
        self.fwd_watch.held(seq);
        if self.fwd_watch.eager(seq) && self.designated(seq) {
            self.forward_slot(seq, Forwarded::Eager);
        }
        self.arm_forward_watch();
    }

    fn arm_forward_watch(&mut self) {
        if self.fwd_watch.armed {
            return;
        }
        let Some(bound) = self.turnaround_bound() else {
            return;
        };
        self.fwd_watch.armed = true;
        self.out.push(Action::Timer {
            after: (bound / 4).max(Duration::from_millis(1)),
            token: FORWARD_WATCH,
        });
    }

    /// The forwarding watch's timer: forward the late slots, go eager, re-arm while slots
    /// wait for their global order.
    pub(crate) fn on_forward_watch(&mut self) {
        self.fwd_watch.armed = false;
        if !self.forwards() {
            return;
        }
        let Some(bound) = self.turnaround_bound() else {
            return;
        };
        self.fwd_watch.sync_views((self.gv, self.lv));
        let (now, gv) = (self.now, self.gv);
        let waiting: Vec<(u64, Duration, bool)> = self
            .global
            .range(self.global_aru + 1..)
            .filter(|(_, s)| !s.ordered && s.proposal.as_ref().is_some_and(|p| p.gv == gv))
            .filter_map(|(seq, s)| Some((*seq, now.saturating_sub(s.first_seen?), s.found_late)))
            .collect();
        for &(seq, age, found_late) in &waiting {
            if age < bound {
                continue;
            }
            if !found_late {
                if let Some(slot) = self.global.get_mut(&seq) {
                    slot.found_late = true;
                }
                match self.fwd_watch.late(seq) {
                    LateVerdict::Forward { started } => {
                        self.stats.late_turnarounds += u64::from(started);
                        if self.designated(seq) {
                            self.forward_slot(seq, Forwarded::Designated);
                        }
                    }
                    LateVerdict::Quiet { started } => {
                        self.stats.forwarding_quieted += u64::from(started);
                    }
                }
            }
            if age >= 2 * bound && !self.fwd_watch.quiet(seq) {
                self.forward_slot(seq, Forwarded::Everyone);
            }
        }
        if !waiting.is_empty() {
            self.arm_forward_watch();
        }
    }

    /// At a non-leader representative: a leader-site server other than its representative
    /// sent the Proposal for `seq` (it forwarded it, so its representative may be slow to
    /// relay the Accepts too): it gets the Accept when the site's combines.
    pub(crate) fn note_accept_wanted(&mut self, from: ServerId, seq: u64) {
        let leader = self.leader_site();
        if self.in_leader_site()
            || !self.is_rep()
            || from.site != leader
            || from == self.rep_of(leader)
            || from.index >= 64
        {
            return;
        }
        if let Some(slot) = self.global.get_mut(&seq) {
            slot.accept_wanted |= 1 << from.index;
        }
    }

    /// The site's Accept for `seq` combined: send it to the leader-site servers that asked.
    pub(crate) fn send_accept_wanted(&mut self, seq: u64, accept: &Arc<Accept>) {
        let wanted = self.global.get(&seq).map_or(0, |s| s.accept_wanted);
        let leader = self.leader_site();
        for i in (0..64).filter(|i| wanted & (1 << i) != 0) {
            self.stats.accepts_to_forwarders += 1;
            self.send(
                Dest::Server(ServerId::new(leader, i)),
                Message::Accept(accept.clone()),
            );
        }
    }

    /// Forward what this server holds for `seq` to the other sites' representatives.
    fn forward_slot(&mut self, seq: u64, stage: Forwarded) {
        let me = self.site();
        let leader = self.leader_site();
        let Some(slot) = self.global.get_mut(&seq) else {
            return;
        };
        if slot.forwarded >= stage || slot.ordered {
            return;
        }
        let msg = if me == leader {
            let Some(p) = slot.proposal.clone() else {
                return;
            };
            let mut skip: Vec<u16> = slot.accepts.keys().copied().collect();
            slot.forwarded = stage;
            self.stats.proposals_forwarded += 1;
            // An eager copy (sent before the slot is late) goes only to the sites that accept
            // at once: a site holding its Accept back takes a copy from the leader site as a
            // request to sign (accepters.rs), and eager spans started by a few late slots of
            // the emulated WAN's jitter made every site sign every slot (default run, 1 client:
            // 19.9 WAN messages per update instead of 15). A slot late at the bound asks them
            // all (with the Accept-withholding representative of a designated site in
            // `byzantine-mix`, f = 5, paper costs, 0.98 of fault-free; 0.90 when only the last
            // stage asked).
            if stage == Forwarded::Eager {
                let accepting = self.accepting_sites();
                skip.extend(
                    (0..self.num_sites() as u16).filter(|s| !accepting.contains(&SiteId(*s))),
                );
            }
            self.send_proposal_abroad(p, &skip, false);
            return;
        } else {
            let Some(a) = slot.accepts.get(&me.0).cloned() else {
                return; // nothing signed to forward yet (the site's T1 timer covers that)
            };
            slot.forwarded = stage;
            self.stats.accepts_forwarded += 1;
            Message::Accept(a)
        };
        // Every other site's representative, and the leader site's designated forwarder of the
        // slot: it relays the Accept into its site, in case its representative relays late.
        let others: Vec<ServerId> = (0..self.num_sites() as u16)
            .map(SiteId)
            .filter(|s| *s != me)
            .map(|s| self.rep_of(s))
            .chain(self.designated_of(leader, seq))
            .collect();
        for rep in others {
            self.send(Dest::Server(rep), msg.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::{Crypto, FastCrypto, FastIdentity, FastWorld};
    use crate::replica::ReplicaConfig;

    /// A server of five sites of four, leader site 0, one-way latencies in ms: site 0 to site
    /// j is 10·j, between other sites 5, a LAN hop 1; T1 500 ms (signing allowance 50 ms).
    fn replica(id: ServerId) -> Replica {
        let world = FastWorld::new(7, 64, 307, 128, vec![3; 5]);
        let crypto = Crypto::new(Box::new(FastCrypto::new(world, FastIdentity::Server(id))));
        let mut cfg = ReplicaConfig::new(id, vec![4; 5], vec![1; 5]);
        let ms = Duration::from_millis;
        cfg.wan_latency = (0..5u64)
            .map(|a| {
                (0..5u64)
                    .map(|b| match (a, b) {
                        _ if a == b => ms(1),
                        (0, j) | (j, 0) => ms(10 * j),
                        _ => ms(5),
                    })
                    .collect()
            })
            .collect();
        Replica::new(cfg, crypto)
    }

    #[test]
    fn the_bound_is_the_propagation_the_topology_allows_plus_lan_hops_and_signing() {
        let bound = |site: u16| {
            replica(ServerId::new(SiteId(site), 1))
                .turnaround_bound()
                .unwrap()
        };
        let ms = Duration::from_millis;
        // Leader site: the second-fastest round trip (to site 2, 40 ms) brings the two Accepts.
        assert_eq!(bound(0), ms(40 + 4 + 50));
        // Site 1 held the Proposal at 10 ms; site 2's Accept arrives at 20 + 5 ms.
        assert_eq!(bound(1), ms(15 + 4 + 50));
        // Site 3 held it at 30 ms, after sites 1 and 2 signed and sent: no propagation left.
        assert_eq!(bound(3), ms(4 + 50));
        let mut off = replica(ServerId::new(SiteId(0), 1));
        off.cfg.wan_latency.clear();
        assert_eq!(off.turnaround_bound(), None, "no topology, no watch");
    }

    #[test]
    fn a_late_slot_starts_an_eager_span_and_a_useless_one_quiets_forwarding() {
        let mut w = ForwardWatch::default();
        for seq in 1..=20 {
            w.held(seq);
        }
        assert!(!w.eager(21), "nothing late yet");
        assert_eq!(w.late(5), LateVerdict::Forward { started: true });
        // The span starts after the slots in flight (held before it started).
        assert!(w.eager(21) && w.eager(20 + FIRST_SPAN) && !w.eager(21 + FIRST_SPAN));
        assert_eq!(w.late(6), LateVerdict::Forward { started: false });
        // Forwarding works: the span's slots are on time, a few late ones change nothing.
        for seq in 21..=40 {
            w.held(seq);
            w.on_time(seq);
        }
        for seq in 41..41 + u64::from(MIN_JUDGED) {
            w.held(seq);
            assert_eq!(w.late(seq), LateVerdict::Forward { started: false });
        }
        // A late slot past the span starts a span twice as long.
        let next = 21 + FIRST_SPAN;
        w.held(next);
        assert_eq!(w.late(next), LateVerdict::Forward { started: true });
        assert!(w.eager(next + 2 * FIRST_SPAN) && !w.eager(next + 2 * FIRST_SPAN + 1));
        // Forwarding does not help: MIN_JUDGED late slots of the span, none on time.
        let first = next + 1;
        for seq in first..first + u64::from(MIN_JUDGED) - 1 {
            w.held(seq);
            assert_eq!(w.late(seq), LateVerdict::Forward { started: false });
        }
        let last = first + u64::from(MIN_JUDGED) - 1;
        w.held(last);
        assert_eq!(w.late(last), LateVerdict::Quiet { started: true });
        assert!(w.quiet(last + FIRST_SPAN) && !w.quiet(last + FIRST_SPAN + 1));
        assert!(!w.eager(last + 1), "no eager forwarding while quiet");
        assert_eq!(w.late(last + 1), LateVerdict::Quiet { started: false });
        // After the quiet span, a late slot tries again.
        let after = last + FIRST_SPAN + 1;
        w.held(after);
        assert_eq!(w.late(after), LateVerdict::Forward { started: true });
        // A new view starts afresh.
        w.sync_views((0, 1));
        assert!(!w.eager(after + 1) && !w.quiet(after));
    }

    #[test]
    fn each_slot_has_one_designated_forwarder_and_it_is_never_the_representative() {
        let servers: Vec<Replica> = (0..4)
            .map(|i| replica(ServerId::new(SiteId(2), i)))
            .collect();
        let mut seen = [0u32; 4];
        for seq in 1..=30 {
            let designated: Vec<usize> = (0..4).filter(|i| servers[*i].designated(seq)).collect();
            assert_eq!(designated.len(), 1, "slot {seq}: {designated:?}");
            seen[designated[0]] += 1;
        }
        assert_eq!(
            seen,
            [0, 10, 10, 10],
            "the representative (0) never, the others in turn"
        );
    }
}
