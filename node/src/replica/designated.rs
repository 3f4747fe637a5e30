//! Designated signers (issue #16): a combine takes 2f+1 shares, so on the ordering path
//! (Proposal and Accept shares) only the representative and the 2f servers after it in the
//! site's ring share at once; the f servers before it are *excused* and keep the content
//! instead (a withheld share). A share is the most expensive thing a server does per update
//! (one 1024-bit exponentiation, about a quarter of the replicas' CPU per update at one
//! client), and 3f+1 shares for a 2f+1 combine threw a quarter of that work away.
//!
//! Nothing waits on an excused server while the designated ones are correct and timely.
//! When they are not, the representative asks the excused ones with a Share_Request:
//! - at once, when a combine cannot go on with the shares it has (a fast combine failed, or a
//!   distrusted signer's unproven share is left out; `try_combine`);
//! - when its own share is T1/[`BACKUP_DIVISOR`] old and the set has not combined (a crashed
//!   or silent designated signer; the share-backup timer), and a delay later once more,
//!   whatever it knows (a request may have been lost). T1/20 lies under the combine
//!   deadline's floor (T1/10, sequencing_watch.rs) with room for a share and a combine, so a
//!   correct representative with a crashed signer still combines in time;
//! - after a combine whose last share came later than [`PACE_FACTOR`] times the time the
//!   first f peers' shares took, plus [`PACE_SLACK`] (`judge_combine_pace`): a designated
//!   signer that holds its share back just short of the backup timer. f slow or silent
//!   signers cannot hold back the first f of the 2f non-representative designated shares,
//!   so they cannot stretch the pace they are judged by.
//!
//! An excused server asked by its representative sends its share (unproven: a proof follows
//! only if a combine with it fails, as for any share), and every other share it withholds for
//! a slot in flight, and shares at once for the next [`EAGER_SPAN`] slots of the local view;
//! the representative applies the same rule and asks no peer it knows to share at once
//! already (but the backup timer's second round). While combines go on without some
//! designated share, it renews the span of each excused peer half a span before its end
//! (`renew_eager_spans`). So a crashed designated signer costs one late combine, a slow one
//! one slow combine per span, not one per slot; once all designated shares come in time
//! again the spans run out and the excused peers withhold again. A Share_Request is answered with a
//! share, never a proof: a request that crosses an eager share on the way makes the signer
//! send it again, not prove it. A retransmission (`resend_share`) releases a withheld share
//! too: it serves a new representative, and a signer that lacks the Proposal. An excused
//! server that knows a designated peer is blacklisted shares at once. The shares of view
//! changes (Global_VC, ARU, constraint) are rare and always sent by everyone.
//!
//! A Byzantine server gains little: a designated one that withholds, corrupts or delays its
//! share costs a late combine or two on top of what it cost before (`designation.rs` in the
//! simulation tests: with a crashed one a site keeps 95% of what every server sharing at once
//! keeps under the same crash, with a slow one 95% of fault-free throughput); an
//! excused one is not needed; one that sends a Share_Request makes a peer share at once.
//! Under CPU saturation the excused servers share at once most of the time (shares come
//! late), which costs the saving but nothing else.

use std::sync::Arc;
use std::time::Duration;

use steward_config::ServerId;

use super::{Action, Replica};
use crate::msg::{Digest, Message, PartialSig, ShareRequest, SigKind};
use crate::replica::Dest;

/// Timer token of the share backup (beside the tick, 1, the sequencing watch, 2, and the
/// forwarding watch, 3).
pub(crate) const SHARE_BACKUP: u64 = 4;

/// The representative asks for withheld shares when its own share is T1 divided by this old.
pub(crate) const BACKUP_DIVISOR: u32 = 20;

/// Slots an excused server shares at once for after its representative asked it.
pub(crate) const EAGER_SPAN: u64 = 64;

/// A combine is slow when its last share came later than this many times the pace of f site
/// peers' shares, plus [`PACE_SLACK`].
pub(crate) const PACE_FACTOR: u32 = 3;

/// See [`PACE_FACTOR`]: scheduling noise a combine may take beyond the pace.
pub(crate) const PACE_SLACK: Duration = Duration::from_millis(5);

/// Whether shares of this kind are sent by the designated signers only.
pub(crate) fn designated_kind(kind: SigKind) -> bool {
    matches!(kind, SigKind::Proposal | SigKind::Accept)
}

/// The designated-signer state of a server.
#[derive(Default)]
pub(crate) struct Designation {
    /// (local view, last slot): this server shares every ordering slot up to the last at once
    /// in that local view (its representative asked it for a withheld share).
    pub eager: Option<(u64, u64)>,
    /// The share-backup timer is in flight.
    pub armed: bool,
    /// The representative: excused peers asked for a share, and the (local view, last slot)
    /// they share at once for since (the rule of [`Designation::eager`]).
    pub asked: std::collections::BTreeMap<u32, (u64, u64)>,
    /// The representative: the highest slot each site peer sent an ordering share for.
    pub heard: std::collections::BTreeMap<u32, u64>,
}

impl Replica {
    /// The servers of this site at the given offsets after the representative in the ring:
    /// offsets below 2f+1 are the designated signers (0 the representative), the rest the
    /// excused ones.
    fn ring(&self, offsets: std::ops::Range<u32>) -> impl Iterator<Item = u32> {
        let site = self.site();
        let n = self.site_size(site);
        let rep = self.rep_of(site).index;
        offsets.map(move |o| (rep + o) % n)
    }

    /// 2f+1 and 3f+1 (or the site's size) of this site.
    fn quorum_and_size(&self) -> (u32, u32) {
        let site = self.site();
        (self.crypto.quorum(site) as u32, self.site_size(site))
    }

    /// The representative asks peer `i` for its share on `key`; `i` shares at once for a
    /// span from this slot on, and this server keeps that book.
    fn request_share(&mut self, i: u32, key: (SigKind, u64, Digest)) {
        let (kind, seq, content) = key;
        let (lv, last) = (self.lv, seq.saturating_add(EAGER_SPAN));
        let entry = self.designation.asked.entry(i).or_insert((lv, last));
        if entry.0 != lv || entry.1 < last {
            *entry = (lv, last);
        }
        self.stats.shares_requested += 1;
        let to = ServerId::new(self.site(), i);
        let q = ShareRequest { kind, seq, content };
        self.send(Dest::Server(to), Message::ShareRequest(Arc::new(q)));
    }

    /// Whether this server's share on an ordering slot waits for its representative to ask.
    pub(crate) fn excused(&self, kind: SigKind, seq: u64) -> bool {
        if !self.cfg.designated_signers || !designated_kind(kind) || self.is_rep() {
            return false;
        }
        if self
            .designation
            .eager
            .is_some_and(|(lv, last)| lv == self.lv && seq <= last)
        {
            return false;
        }
        let (k, n) = self.quorum_and_size();
        let me = self.cfg.id.index;
        if !self.ring(k..n).any(|i| i == me) {
            return false;
        }
        // A designated peer known to be faulty cannot be combined with: share at once.
        !self.ring(0..k).any(|i| self.blacklist.contains(&i))
    }

    /// The representative: a site peer's ordering share, late ones included, shows the peer
    /// alive for `renew_eager_spans`. Only slots within the share window count: a far-ahead
    /// one from a Byzantine signer would vouch for it for ever.
    pub(crate) fn note_heard(&mut self, p: &PartialSig) {
        if designated_kind(p.kind) && self.is_rep() && self.global_window_ok(p.seq) {
            let heard = self.designation.heard.entry(p.server).or_default();
            *heard = (*heard).max(p.seq);
        }
    }

    /// Keep the content of an excused share, to sign it when asked.
    pub(crate) fn withhold_share(
        &mut self,
        key: (SigKind, u64, Digest),
        views: (u64, u64),
        content: Vec<u8>,
    ) {
        let set = self.shares.entry(key).or_default();
        if set.partials.contains_key(&self.cfg.id.index) {
            return;
        }
        set.content = Some(content);
        set.withheld = Some(views);
        self.stats.shares_withheld += 1;
    }

    /// Sign a withheld share now (unproven) and keep it as the own Partial_Sig; `None` when
    /// nothing is withheld for `key`.
    pub(crate) fn release_withheld(
        &mut self,
        key: (SigKind, u64, Digest),
    ) -> Option<Arc<PartialSig>> {
        let me = self.cfg.id.index;
        let set = self.shares.get_mut(&key)?;
        let (gv, lv) = set.withheld.take()?;
        let content = set.content.clone()?;
        let partial = self.sign_own_partial(key, (gv, lv), &content);
        let set = self.shares.get_mut(&key)?;
        set.partials.insert(me, partial.clone());
        self.stats.shares_released += 1;
        Some(partial)
    }

    /// A Share_Request: the representative asks for this server's share on an ordering slot.
    /// Share at once from here on for a span of slots, and send the share: the withheld one
    /// (and every other withheld share in flight, which waits on the same missing signer),
    /// or the one already sent, again and as it was (a lost copy; never a proof, which only
    /// a failed combine calls for).
    pub(crate) fn on_share_request(&mut self, from: ServerId, q: &ShareRequest) -> bool {
        if from.site != self.site() {
            return false;
        }
        if !designated_kind(q.kind) || from != self.rep_of(self.site()) || from == self.cfg.id {
            return true; // a late request of an earlier representative
        }
        if q.seq <= self.global_aru {
            return true;
        }
        self.note_round_asked(from, q.kind, q.seq);
        let last = q.seq.saturating_add(EAGER_SPAN);
        let eager = &mut self.designation.eager;
        if !eager.is_some_and(|(lv, l)| lv == self.lv && l >= last) {
            *eager = Some((self.lv, last));
        }
        let me = self.cfg.id.index;
        let asked = (q.kind, q.seq, q.content);
        let Some(partial) = self.release_withheld(asked) else {
            let sent = self
                .shares
                .get(&asked)
                .and_then(|set| set.partials.get(&me));
            if let Some(partial) = sent.cloned() {
                self.send(Dest::Server(from), Message::PartialSig(partial));
            }
            return true;
        };
        self.send(Dest::Server(from), Message::PartialSig(partial));
        // The other slots in flight wait on the same missing signer: their shares go too,
        // without waiting for a request each.
        let aru = self.global_aru;
        let also: Vec<(SigKind, u64, Digest)> = [SigKind::Proposal, SigKind::Accept]
            .into_iter()
            .flat_map(|kind| self.share_sets(kind, aru + 1..=last))
            .filter(|(key, set)| set.withheld.is_some() && **key != asked)
            .map(|(key, _)| *key)
            .collect();
        for key in also {
            if let Some(partial) = self.release_withheld(key) {
                self.send(Dest::Server(from), Message::PartialSig(partial));
            }
        }
        true
    }

    /// The representative: ask each excused peer that holds no share in the set for its share
    /// (once per set and peer). Called when a combine cannot go on with the shares it has
    /// (`force`: the backup timer; otherwise peers known to share at once already are left
    /// alone, their shares are on the way) or was slow. A designated peer's share is on its
    /// way or never comes: the f excused servers cover up to f designated ones that are
    /// faulty.
    /// Returns how many peers it asked.
    pub(crate) fn ask_withheld(&mut self, key: (SigKind, u64, Digest), force: bool) -> usize {
        if !designated_kind(key.0) {
            return 0;
        }
        let (k, n) = self.quorum_and_size();
        let (lv, seq) = (self.lv, key.1);
        let mut excused: Vec<u32> = self.ring(k..n).collect();
        excused.sort_unstable();
        let blacklist = &self.blacklist;
        let asked = &self.designation.asked;
        let eager = |i: &u32| {
            asked
                .get(i)
                .is_some_and(|(v, last)| *v == lv && seq <= *last)
        };
        let Some(set) = self.shares.get_mut(&key) else {
            return 0;
        };
        let ask: Vec<u32> = excused
            .into_iter()
            .filter(|i| !blacklist.contains(i) && !set.shares.contains_key(i))
            .filter(|i| force || !eager(i))
            .filter(|i| set.share_asked.insert(*i))
            .collect();
        for &i in &ask {
            self.request_share(i, key);
        }
        ask.len()
    }

    /// The representative combined an ordering set: if its last share came late against the
    /// pace of the first f peers' (a designated signer that is slow, or holds its share back
    /// just short of the backup timer), ask the excused peers, so that they share at once for
    /// the next span and such a signer delays no more combines.
    pub(crate) fn judge_combine_pace(&mut self, key: (SigKind, u64, Digest)) {
        if !designated_kind(key.0) {
            return;
        }
        let Some(set) = self.shares.get(&key) else {
            return;
        };
        // No own share time left: the backup timer had to ask twice, which is slow too.
        let slow = set.own_at.is_none_or(|own| {
            let pace = set
                .paced_at
                .map_or(Duration::ZERO, |p| p.saturating_sub(own));
            self.now.saturating_sub(own) > pace * PACE_FACTOR + PACE_SLACK
        });
        self.renew_eager_spans(key, slow);
        if slow && self.ask_withheld(key, false) > 0 {
            self.stats.slow_share_combines += 1;
        }
    }

    /// The representative combined an ordering set without the share of a designated signer
    /// that has been silent for a while, or slowly (`slow`, against the pace) without some
    /// designated share: the excused peers are still needed, so an excused peer whose span
    /// ends within half a span is asked again now (with this set's key; it answers with the share it sent), and
    /// its span goes on without a late combine at its end. Once every designated share comes
    /// in time again, the spans run out and the excused peers withhold again.
    fn renew_eager_spans(&mut self, key: (SigKind, u64, Digest), slow: bool) {
        let (k, n) = self.quorum_and_size();
        let (lv, seq) = (self.lv, key.1);
        let Some(set) = self.shares.get(&key) else {
            return;
        };
        // A designated signer is silent when it is blacklisted, or when its latest ordering
        // share is a quarter span old; one whose share merely lost the race to an eager
        // excused one is not (else the spans would renew themselves for ever).
        let heard = &self.designation.heard;
        let lacking = self.ring(1..k).any(|i| {
            !set.shares.contains_key(&i)
                && (slow
                    || self.blacklist.contains(&i)
                    || heard
                        .get(&i)
                        .is_none_or(|h| h.saturating_add(EAGER_SPAN / 4) < seq))
        });
        if !lacking {
            return;
        }
        let renew: Vec<u32> = self
            .ring(k..n)
            .filter(|i| !self.blacklist.contains(i))
            .filter(|i| {
                self.designation
                    .asked
                    .get(i)
                    .is_none_or(|(v, l)| *v != lv || l.saturating_sub(seq) < EAGER_SPAN / 2)
            })
            .collect();
        for i in renew {
            self.request_share(i, key);
        }
    }

    /// How long the representative waits for the designated shares before asking the rest.
    pub(crate) fn share_backup_delay(&self) -> Duration {
        (self.cfg.t1 / BACKUP_DIVISOR).max(Duration::from_millis(1))
    }

    /// The representative's own share on an ordering slot is out: make sure the backup
    /// timer runs.
    pub(crate) fn arm_share_backup(&mut self) {
        if self.designation.armed {
            return;
        }
        self.designation.armed = true;
        self.out.push(Action::Timer {
            after: self.share_backup_delay(),
            token: SHARE_BACKUP,
        });
    }

    /// The share-backup timer: ask for the shares of every ordering set whose own share is
    /// a backup delay old and that has not combined; re-arm for the younger ones.
    pub(crate) fn on_share_backup(&mut self) {
        self.designation.armed = false;
        if !self.is_rep() {
            return;
        }
        let delay = self.share_backup_delay();
        let now = self.now;
        let mut due = Vec::new();
        let mut next: Option<Duration> = None;
        let aru = self.global_aru;
        let pending = [SigKind::Proposal, SigKind::Accept]
            .into_iter()
            .flat_map(|kind| self.share_sets(kind, aru + 1..=u64::MAX));
        for (key, set) in pending {
            let Some(at) = set.own_at else {
                continue;
            };
            // A slot ordered without this site's signature needs it no more (a non-leader
            // site's Accept often loses that race).
            let ordered = self.global.get(&key.1).is_some_and(|g| g.ordered);
            if set.done || ordered {
                continue;
            }
            // First the excused peers not known to share at once; a delay later all of them
            // (a request may have been lost).
            let deadline = at + delay * if set.backed_up { 2 } else { 1 };
            if deadline <= now {
                due.push((*key, set.backed_up));
            } else {
                next = Some(next.map_or(deadline, |d: Duration| d.min(deadline)));
            }
        }
        for (key, second) in due {
            if let Some(set) = self.shares.get_mut(&key) {
                set.backed_up = true;
                if second {
                    set.own_at = None;
                } else {
                    let deadline = set.own_at.unwrap_or(now) + delay * 2;
                    next = Some(next.map_or(deadline, |d: Duration| d.min(deadline)));
                }
            }
            self.ask_withheld(key, second);
        }
        if let Some(deadline) = next {
            self.designation.armed = true;
            self.out.push(Action::Timer {
                after: deadline.saturating_sub(now).max(Duration::from_millis(1)),
                token: SHARE_BACKUP,
            });
        }
    }
}
