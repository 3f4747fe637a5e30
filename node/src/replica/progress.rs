//! The local and global progress timers (TDSC §6.4, Figs. ), with two rules.
//!
//! A server has *pending work* when it knows of a client update it has not executed, of a
//! Proposal that is not globally ordered, or (leader site) of a Pre-Prepare it accepted whose
//! slot is not ordered. That includes servers of sites without clients of their own: they see
//! Proposals, so a dead representative is replaced wherever it is (the red team's three
//! crashed non-leader representatives halted a system whose timers ran only where clients
//! were).
//!
//! While it has pending work, a timer expiry makes the server vote for the next view when
//! * **stalled**: nothing was executed for a whole timeout since the work appeared, the view
//!   was installed or the last execution (TDSC: timers reset on global progress), or
//! * **starving**: the oldest pending item has waited [`STARVATION_FACTOR`] timeouts since it
//!   appeared or since the view was installed, whatever else was executed meanwhile. Progress
//!   on other clients' updates, empty batches or replayed updates do not reset this clock, so
//!   a representative that censors clients or fakes progress is replaced (liveness is per
//!   client, not "some progress somewhere").
//!
//! A non-leader-site server whose client's update starves also sends that update to every
//! server of the leader site, so that the leader site's own timers see it.

use std::sync::Arc;
use std::time::Duration;

use steward_config::{ServerId, SiteId};

use super::{Action, Dest, Replica};
use crate::msg::Message;

/// Timer tokens at or above this value (and below [`GLOBAL_TIMER_BASE`]) are local-timer
/// generations.
pub(crate) const LOCAL_TIMER_BASE: u64 = 1 << 32;

/// Timer tokens at or above this value are global-timer generations.
pub(crate) const GLOBAL_TIMER_BASE: u64 = 1 << 48;

/// A pending item older than this many timeouts (since it appeared or the view began) makes a
/// server vote for a new view even while other things are executed.
pub(crate) const STARVATION_FACTOR: u32 = 4;

/// Whether a token belongs to the global timer.
pub(crate) fn is_global_token(token: u64) -> bool {
    token >= GLOBAL_TIMER_BASE
}

/// Whether a token belongs to the local timer.
pub(crate) fn is_local_token(token: u64) -> bool {
    (LOCAL_TIMER_BASE..GLOBAL_TIMER_BASE).contains(&token)
}

/// What a timer expiry decided.
enum Verdict {
    Idle,
    /// Vote; `true` when nothing was executed for a whole timeout (stalled), `false` when only
    /// the oldest pending item waited too long (starving).
    Vote(bool),
    Wait(Duration),
}

impl Replica {
    /// T1 at non-leader sites, T2 = (f+2)·T1 at the leader site.
    pub(crate) fn local_timeout(&self) -> Duration {
        if self.in_leader_site() {
            self.cfg.t1 * (self.f() + 2)
        } else {
            self.cfg.t1
        }
    }

    /// GLOBAL-TIMEOUT = K·2^⌈gv/N⌉ with K = T3 = (f+3)·T2 = (f+3)(f+2)·T1.
    pub(crate) fn global_timeout(&self) -> Duration {
        let f = self.f();
        let k = self.cfg.t1 * ((f + 2) * (f + 3));
        let doublings = self.gv.div_ceil(self.num_sites() as u64).min(16) as u32;
        k * 2u32.pow(doublings)
    }

    pub(crate) fn arm_local_timer(&mut self, after: Duration) {
        self.local_timer_gen += 1;
        self.local_timer = self.local_timer_gen;
        self.local_timer_due = self.now + after;
        self.out.push(Action::Timer {
            after,
            token: LOCAL_TIMER_BASE + self.local_timer,
        });
    }

    pub(crate) fn arm_global_timer(&mut self, after: Duration) {
        self.local_timer_gen += 1;
        self.global_timer = self.local_timer_gen;
        self.global_timer_due = self.now + after;
        self.out.push(Action::Timer {
            after,
            token: GLOBAL_TIMER_BASE + self.global_timer,
        });
    }

    /// When the oldest pending item appeared (None: no pending work).
    pub(crate) fn oldest_pending(&self) -> Option<Duration> {
        let aru = self.global_aru;
        let updates = self.pending_seen.values().map(|(_, since)| *since);
        let proposals = self
            .global
            .range(aru + 1..)
            .filter(|(_, g)| !g.ordered && g.proposal.is_some())
            .filter_map(|(_, g)| g.first_seen);
        let prepared = self
            .local
            .range(aru + 1..)
            .filter(|(_, l)| l.pre_prepare.is_some())
            .map(|(_, l)| l.sent_at);
        updates.chain(proposals).chain(prepared).min()
    }

    pub(crate) fn has_pending(&self) -> bool {
        self.oldest_pending().is_some()
    }

    /// Pending work appeared: start watching it if idle. A timer still in flight from earlier
    /// work is kept when it fires before this work's timeout would (its expiry re-arms for
    /// the rest, see [`Self::verdict`]): arming a fresh timer per update, as before, left stale
    /// expiries that woke the 20 servers of a `--wan off` run 24 times per update (timer
    /// expiries 31.6 → 7.9 per update; 0.97× the CPU per update).
    pub(crate) fn work_appeared(&mut self) {
        if !self.watching {
            self.watching = true;
            self.busy_since = self.now;
        }
        let t = self.local_timeout();
        if self.local_timer == 0 || self.local_timer_due > self.now + t {
            self.arm_local_timer(t);
        }
        let t = self.global_timeout();
        if self.global_timer == 0 || self.global_timer_due > self.now + t {
            self.arm_global_timer(t);
        }
    }

    /// A client update this server has not executed yet.
    pub(crate) fn note_pending(&mut self, client: u32, ts: u64) {
        let now = self.now;
        let e = self.pending_seen.entry(client).or_insert((ts, now));
        if ts > e.0 {
            *e = (ts, now);
        }
        self.work_appeared();
        self.watch_sequencing();
    }

    /// Something was executed (TDSC Fig. A-4 C7–C9: this is what resets the stall clock).
    pub(crate) fn on_global_progress(&mut self) {
        self.last_progress = self.now;
        self.note_room();
        let executed = &self.executed_ts;
        self.pending_seen
            .retain(|c, (ts, _)| executed.get(c).is_none_or(|done| done < ts));
        self.starving_pushed
            .retain(|c, _| self.pending_seen.contains_key(c));
        self.forwarded
            .retain(|c, (ts, _)| executed.get(c).is_none_or(|done| done < ts));
        self.relayed
            .retain(|c, u| executed.get(c).is_none_or(|done| *done < u.ts));
        if !self.has_pending() {
            // Idle again; the timers in flight stay scheduled and, finding nothing pending
            // when they expire, stop (or serve work that appears before then).
            self.watching = false;
        }
    }

    fn verdict(&self, timeout: Duration, epoch: Duration) -> Verdict {
        let Some(oldest) = self.oldest_pending() else {
            return Verdict::Idle;
        };
        let quiet_since = self.last_progress.max(epoch).max(self.busy_since);
        let waiting_since = oldest.max(epoch);
        let stall_at = quiet_since + timeout;
        let starve_at = waiting_since + timeout * STARVATION_FACTOR;
        if self.now >= stall_at || self.now >= starve_at {
            Verdict::Vote(self.now >= stall_at)
        } else {
            Verdict::Wait(stall_at.min(starve_at) - self.now)
        }
    }

    pub(crate) fn on_local_timer(&mut self, generation: u64) {
        if generation != self.local_timer {
            return; // superseded
        }
        let timeout = self.local_timeout();
        match self.verdict(timeout, self.local_epoch) {
            Verdict::Idle => {
                self.local_timer = 0;
                self.watching = false;
            }
            Verdict::Wait(d) => self.arm_local_timer(d),
            Verdict::Vote(stalled) => {
                if stalled {
                    self.stats.local_stall_votes += 1;
                } else {
                    self.stats.local_starvation_votes += 1;
                }
                self.push_starving_updates(timeout * STARVATION_FACTOR);
                self.vote_new_rep();
                self.arm_local_timer(timeout);
            }
        }
    }

    pub(crate) fn on_global_timer(&mut self, generation: u64) {
        if generation != self.global_timer {
            return;
        }
        let timeout = self.global_timeout();
        match self.verdict(timeout, self.global_epoch) {
            Verdict::Idle => self.global_timer = 0,
            Verdict::Wait(d) => self.arm_global_timer(d),
            Verdict::Vote(_) => {
                self.stats.global_timer_votes += 1;
                self.vote_global_vc();
                self.arm_global_timer(timeout);
            }
        }
    }

    /// Send every update this server owes a reply for and that has waited `starve` to all
    /// servers of the leader site (once per `starve` per client), so that a leader-site
    /// representative that censors it is replaced by its own site.
    fn push_starving_updates(&mut self, starve: Duration) {
        if self.in_leader_site() {
            return;
        }
        let now = self.now;
        let starving: Vec<Arc<crate::msg::Update>> = self
            .responsible
            .values()
            .filter(|u| {
                self.pending_seen
                    .get(&u.client)
                    .is_some_and(|(ts, since)| *ts == u.ts && now >= *since + starve)
                    && self
                        .starving_pushed
                        .get(&u.client)
                        .is_none_or(|t| now >= *t + starve)
            })
            .cloned()
            .collect();
        let leader = self.leader_site();
        for u in starving {
            self.starving_pushed.insert(u.client, now);
            for i in 0..self.site_size(leader) {
                self.send(
                    Dest::Server(ServerId::new(leader, i)),
                    Message::Update(u.clone()),
                );
            }
        }
    }
}

/// Retransmission ticks after its last execution during which an idle leader representative
/// pushes the last ordered slot to sites that did not accept it.
const IDLE_TAIL_TICKS: u32 = 8;

impl Replica {
    /// The last slot was ordered with the Accepts of a majority of sites; a site whose servers
    /// all missed its Proposal (loss) learns of it only from a later slot, and when the load
    /// stops there is none: its servers would stay one slot behind forever. So for a few ticks
    /// after its last execution, an idle leader representative sends the slot's self-verifying
    /// order proof to every server of the sites that did not accept it.
    pub(crate) fn push_idle_tail(&mut self) {
        if !(self.is_rep() && self.in_leader_site()) || self.global_aru == 0 {
            return;
        }
        let busy = self
            .global
            .range(self.global_aru + 1..)
            .any(|(_, g)| g.proposal.is_some());
        let recent = self.now < self.last_progress + self.cfg.retransmit * IDLE_TAIL_TICKS;
        if busy || !recent {
            return;
        }
        let seq = self.global_aru;
        let Some(slot) = self.global.get(&seq) else {
            return;
        };
        let missing: Vec<SiteId> = (0..self.num_sites() as u16)
            .map(SiteId)
            .filter(|s| *s != self.site() && !slot.accepts.contains_key(&s.0))
            .collect();
        if missing.is_empty() {
            return;
        }
        let Some(proof) = self.order_proof(seq) else {
            return;
        };
        let msg = Message::Ordered(Arc::new(proof));
        for site in missing {
            for i in 0..self.site_size(site) {
                self.send(Dest::Server(ServerId::new(site, i)), msg.clone());
            }
        }
    }
}
