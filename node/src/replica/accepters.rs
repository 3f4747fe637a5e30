//! Designated accepting sites (issue #16): a slot is globally ordered with the leader site's
//! Proposal and ⌊S/2⌋ Accepts, so at first only ⌊S/2⌋ non-leader sites sign one: the ones
//! nearest the leader site by the topology's one-way latency (ties in ring order after the
//! leader). The other sites hold their Accept back. An Accept is 2f+1 threshold shares, a
//! combine, a WAN broadcast and its relays; with five sites the paper's protocol signs four
//! Accepts where two order the slot, and the two spare ones were about a fifth of the
//! replicas' CPU per update on one machine. The leader site orders as early as before (it
//! waits for the ⌊S/2⌋-th nearest Accept either way); a site that does not accept waits for
//! the designated sites' Accepts instead of its own, which on the paper's topologies (every
//! client at the leader site) delays only the execution of sites without clients.
//!
//! A site that holds back still signs:
//! - one Accept per global window (`seq` a multiple of it), so the other sites keep the
//!   signed evidence of its progress that the reconciliation defence (recon.rs) and the
//!   absent-site rule (`send_proposal_to_sites`) judge by;
//! - every slot whose global order has not come [`BACKUP_FACTOR`] turnaround bounds
//!   (forwarding.rs) after it held the Proposal (a designated site crashed, cut off, or behind
//!   a representative that withholds its Accepts);
//! - a slot whose Proposal the leader site sends again (a retransmission, or a forwarder's
//!   copy of a slot late at the bound: the leader site lacks Accepts), and a slot its own
//!   representative sends again for that reason.
//!
//! Either then opens an *eager span*: every slot of it is accepted at once. The first span of
//! a global view is [`FIRST_SPAN`] slots after a backup, a global window after a request;
//! each later one doubles. Half a span before its end the span is renewed while some
//! designated site has signed nothing new for a retransmission period or nothing within two
//! global windows of the execution point (its Accepts are verified: only a live site ends the
//! span). So a designated site that stays down costs one late slot, and one that fails on and
//! off one late slot per doubling. The leader site's forwarders send their *eager* copies
//! (before a slot is late) to the designated sites only.
//!
//! Safety does not change: a site that accepts less votes less. An attacker gains little: a
//! Byzantine leader-site server that replays Proposals to a holding site makes it sign what
//! every site signed before this change (once per slot); one in a designated site that holds
//! the Accept back costs a late slot, then its site is covered by the others' eager spans and
//! replaced by its peers' timers as before.

use std::time::Duration;

use steward_config::SiteId;

use super::{Action, Replica};

/// Timer token of the accept backup (beside the tick, 1, the sequencing watch, 2, the
/// forwarding watch, 3, and the share backup, 4).
pub(crate) const ACCEPT_BACKUP: u64 = 5;

/// A holding site signs a slot not ordered this many turnaround bounds after it held the
/// Proposal (the forwarding watch's last stage is at two: every non-representative of a
/// designated site has forwarded its Accept by then).
pub(crate) const BACKUP_FACTOR: u32 = 3;

/// Slots a holding site accepts at once after its first backup in a global view (after a
/// first request from the leader site: a global window, since a slow start of the WAN's
/// connections makes the first slots late; at one client a 64-slot span was a third of a
/// 20 s run).
pub(crate) const FIRST_SPAN: u64 = 64;

/// The ⌊S/2⌋ non-leader sites that accept at once when `leader` leads: the nearest to it by
/// `one_way` latency, ties in ring order after the leader.
pub fn designated_accepters(
    sites: usize,
    leader: SiteId,
    one_way: impl Fn(SiteId, SiteId) -> Duration,
) -> Vec<SiteId> {
    let ring = |s: SiteId| (s.index() + sites - leader.index()) % sites.max(1);
    let mut others: Vec<SiteId> = (0..sites as u16)
        .map(SiteId)
        .filter(|s| *s != leader)
        .collect();
    others.sort_by_key(|s| (one_way(leader, *s), ring(*s)));
    others.truncate(sites / 2);
    others
}

/// Whether `slot` holds a Proposal of global view `gv` this server has neither signed an
/// Accept for nor seen ordered.
fn held_back(slot: &super::GlobalSlot, gv: u64) -> bool {
    !slot.ordered && !slot.accept_share_sent && slot.proposal.as_ref().is_some_and(|p| p.gv == gv)
}

/// A holding site's backup state.
#[derive(Debug, Default)]
pub(crate) struct AcceptBackup {
    /// The backup timer is in flight.
    armed: bool,
    /// The global view the span belongs to.
    gv: u64,
    /// Every slot up to this one is accepted at once (0: none).
    eager_until: u64,
    /// The current span's length.
    current: u64,
    /// The next span's length (0: [`FIRST_SPAN`]).
    span: u64,
}

impl Replica {
    /// The sites that accept the current leader site's Proposals at once (every non-leader
    /// site when designation is off).
    pub(crate) fn accepting_sites(&self) -> Vec<SiteId> {
        let (sites, leader) = (self.num_sites(), self.leader_site());
        if !self.cfg.designated_accepters {
            return (0..sites as u16)
                .map(SiteId)
                .filter(|s| *s != leader)
                .collect();
        }
        designated_accepters(sites, leader, |a, b| {
            self.cfg
                .wan_latency
                .get(a.index())
                .and_then(|row| row.get(b.index()))
                .copied()
                .unwrap_or_default()
        })
    }

    /// Whether this (non-leader) site holds its Accept of `seq` back for now.
    pub(crate) fn accept_held_back(&mut self, seq: u64) -> bool {
        if !self.holds_accepts() || seq % self.cfg.global_window.max(1) == 0 {
            return false;
        }
        self.sync_accept_backup();
        let b = &self.accept_backup;
        if seq > b.eager_until {
            return true;
        }
        // Half a span before its end, renew it while a designated site signs nothing near
        // the execution point (it is still down; its Accepts are verified, so only a live
        // site can end the span).
        if b.eager_until - seq < b.current / 2 && !self.designated_keep_up() {
            let b = &mut self.accept_backup;
            b.eager_until = seq.saturating_add(b.current);
            self.stats.accept_span_renewals += 1;
        }
        false
    }

    /// Whether this site is a non-leader site outside the designated accepting ones.
    pub(crate) fn holds_accepts(&self) -> bool {
        self.cfg.designated_accepters
            && !self.in_leader_site()
            && !self.accepting_sites().contains(&self.site())
    }

    /// Accept at once from `seq` on, for a span: the first of this global view (`first`
    /// slots), or twice the last one; sign the held-back slots it covers. Nothing if `seq` is
    /// in a span already.
    pub(crate) fn open_accept_span(&mut self, seq: u64, first: u64) {
        if !self.holds_accepts() {
            return;
        }
        self.sync_accept_backup();
        let b = &mut self.accept_backup;
        if seq <= b.eager_until {
            return;
        }
        let span = if b.span == 0 { first.max(1) } else { b.span };
        b.eager_until = seq.saturating_add(span);
        b.current = span;
        b.span = span.saturating_mul(2);
        self.stats.accept_spans += 1;
        let gv = self.gv;
        let covered: Vec<u64> = self
            .global
            .range(seq.max(self.global_aru + 1)..)
            .take_while(|(s, _)| **s <= self.accept_backup.eager_until)
            .filter(|(_, s)| held_back(s, gv))
            .map(|(s, _)| *s)
            .collect();
        for s in covered {
            self.sign_accept(s);
        }
    }

    /// Whether every designated accepting site signed a new Accept within a retransmission
    /// period, within two global windows of this server's execution point. (Not one window:
    /// a holding site in a span orders with its own Accept before a far designated site's
    /// arrives, and the Accepts of executed slots are verified only a few times a period,
    /// so on Planetlab a live Korea looked behind to Brazil and kept it eager.)
    fn designated_keep_up(&self) -> bool {
        let (aru, window, now) = (self.global_aru, self.cfg.global_window, self.now);
        self.accepting_sites().iter().all(|d| {
            self.site_signed.get(d.index()).is_some_and(|p| {
                now.saturating_sub(p.at) < self.cfg.retransmit
                    && p.seq.saturating_add(2 * window) >= aru
            })
        })
    }

    fn sync_accept_backup(&mut self) {
        if self.accept_backup.gv != self.gv {
            let armed = self.accept_backup.armed;
            self.accept_backup = AcceptBackup {
                armed,
                gv: self.gv,
                ..Default::default()
            };
        }
    }

    /// How long a holding site waits for a slot's global order before it signs.
    fn accept_backup_delay(&self) -> Duration {
        self.turnaround_bound()
            .map_or(self.cfg.t1 / 4, |b| b * BACKUP_FACTOR)
    }

    /// Arm the backup timer for a slot held back now.
    pub(crate) fn arm_accept_backup(&mut self) {
        if self.accept_backup.armed {
            return;
        }
        self.accept_backup.armed = true;
        self.out.push(Action::Timer {
            after: self.accept_backup_delay(),
            token: ACCEPT_BACKUP,
        });
    }

    /// The backup timer: sign every held-back slot that waited too long, start (or double)
    /// the eager span, re-arm for the slots still waiting.
    pub(crate) fn on_accept_backup(&mut self) {
        self.accept_backup.armed = false;
        if self.in_leader_site() {
            return;
        }
        self.sync_accept_backup();
        let (now, gv, delay) = (self.now, self.gv, self.accept_backup_delay());
        let mut due = Vec::new();
        let mut next: Option<Duration> = None;
        for (seq, slot) in self.global.range(self.global_aru + 1..) {
            let Some(first) = slot.first_seen.filter(|_| held_back(slot, gv)) else {
                continue;
            };
            let deadline = first + delay;
            if deadline <= now {
                due.push(*seq);
            } else {
                next = Some(next.map_or(deadline, |d: Duration| d.min(deadline)));
            }
        }
        if let Some(&first_due) = due.first() {
            self.stats.accept_backups += 1;
            self.open_accept_span(first_due, FIRST_SPAN);
        }
        for seq in due {
            self.sign_accept(seq);
        }
        if let Some(deadline) = next {
            self.accept_backup.armed = true;
            self.out.push(Action::Timer {
                after: deadline.saturating_sub(now).max(Duration::from_millis(1)),
                token: ACCEPT_BACKUP,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_nearest_half_of_the_other_sites_accept() {
        // One-way ms from site 0: 1 → 120, 2 → 86, 3 → 59, 4 → 95 (Planetlab's US leader).
        let ms = [0u64, 120, 86, 59, 95];
        let one_way = |a: SiteId, b: SiteId| {
            let (a, b) = (a.index(), b.index());
            let d = if a == 0 {
                ms[b]
            } else if b == 0 {
                ms[a]
            } else {
                200
            };
            Duration::from_millis(d)
        };
        assert_eq!(
            designated_accepters(5, SiteId(0), one_way),
            vec![SiteId(3), SiteId(2)]
        );
        // Equal latencies: ring order after the leader.
        let flat = |_: SiteId, _: SiteId| Duration::from_millis(50);
        assert_eq!(
            designated_accepters(5, SiteId(3), flat),
            vec![SiteId(4), SiteId(0)]
        );
        assert_eq!(designated_accepters(2, SiteId(1), flat), vec![SiteId(0)]);
        assert_eq!(
            designated_accepters(1, SiteId(0), flat),
            Vec::<SiteId>::new()
        );
    }
}
