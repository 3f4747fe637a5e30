//! A leader-site representative that sequences promptly and combines late: it holds each
//! slot's Proposal shares before it combines them. With the local window of 2, two held
//! combines also close the window, so the sequencing watch sees no room to judge it by; only
//! the combine deadline and the combine pace (sequencing_watch.rs) bound it. The
//! `slow-combiner` scenario holds just under both, as its site's correct servers compute them
//! (see `calibrated_holds` in scenario.rs): a white-box attacker that profiled the
//! deployment holds a few slots of every [`PACE_SAMPLES`] almost to the deadline and the
//! others almost to the pace bound. (An attacker that probes for the bounds is caught at
//! once: every correct server shares at about the same time and measures about the same
//! bounds, so the first slot held too long brings 2f+1 votes together.)

use std::collections::BTreeMap;
use std::time::Duration;

use bft_core::crypto::CryptoCounters;
use bft_core::{Node, NodeId, Output};

use super::ServerNode;
use crate::msg::{Message, SigKind};
use crate::replica::{Replica, PACE_SAMPLES};

/// How long a [`SlowCombiner`] holds each slot's shares: `long` for the first `long_slots`
/// slots of every [`PACE_SAMPLES`] consecutive ones, `short` for the others.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Holds {
    /// The hold of the few slots held long.
    pub long: Duration,
    /// The hold of the others.
    pub short: Duration,
    /// Slots held long per [`PACE_SAMPLES`].
    pub long_slots: u64,
}

impl Holds {
    /// Every slot held `hold`.
    pub fn uniform(hold: Duration) -> Self {
        Holds {
            long: hold,
            short: hold,
            long_slots: 0,
        }
    }

    fn of_slot(&self, seq: u64) -> Duration {
        if seq % (PACE_SAMPLES as u64) < self.long_slots {
            self.long
        } else {
            self.short
        }
    }
}

/// The wrapper's own timer token, far from the replica's (1, 2, and the local and global
/// timer generations from 2^32 on, which never reach it).
const RELEASE: u64 = u64::MAX - 0x51_0c;

/// Slots whose release time the attacker remembers (older ones are forgotten).
const TRACKED: usize = 64;

/// A correct replica whose inbound Proposal shares of a slot wait the slot's hold from the
/// first one's arrival while it is the representative, from `from` on.
pub struct SlowCombiner {
    inner: Replica,
    from: Duration,
    holds: Holds,
    /// When each slot's held shares are released.
    release: BTreeMap<u64, Duration>,
    /// Held shares with their release time.
    held: Vec<(Duration, NodeId, Message)>,
}

impl SlowCombiner {
    /// `inner`, holding each slot's shares as `holds` says while it represents its site,
    /// from `from` on.
    pub fn new(inner: Replica, from: Duration, holds: Holds) -> Self {
        SlowCombiner {
            inner,
            from,
            holds,
            release: BTreeMap::new(),
            held: Vec::new(),
        }
    }

    /// The release time of a slot's shares, fixed by its first share.
    fn due(&mut self, now: Duration, seq: u64) -> Duration {
        let hold = self.holds.of_slot(seq);
        let due = *self.release.entry(seq).or_insert(now + hold);
        while self.release.len() > TRACKED {
            self.release.pop_first();
        }
        due
    }

    fn holds(&self, msg: &Message) -> Option<u64> {
        match msg {
            Message::PartialSig(p) if p.kind == SigKind::Proposal && self.inner.is_rep() => {
                Some(p.seq)
            }
            _ => None,
        }
    }
}

impl Node for SlowCombiner {
    type Msg = Message;
    fn id(&self) -> NodeId {
        Node::id(&self.inner)
    }
    fn start(&mut self, now: Duration, out: &mut Vec<Output<Message>>) {
        Node::start(&mut self.inner, now, out);
    }
    fn on_message(
        &mut self,
        now: Duration,
        from: NodeId,
        msg: &Message,
        out: &mut Vec<Output<Message>>,
    ) {
        if let Some(seq) = self.holds(msg).filter(|_| now >= self.from) {
            let due = self.due(now, seq);
            if due > now {
                self.held.push((due, from, msg.clone()));
                out.push(Output::Timer {
                    after: due - now,
                    token: RELEASE,
                });
                return;
            }
        }
        Node::on_message(&mut self.inner, now, from, msg, out);
    }
    fn on_timer(&mut self, now: Duration, token: u64, out: &mut Vec<Output<Message>>) {
        if token != RELEASE {
            Node::on_timer(&mut self.inner, now, token, out);
            return;
        }
        let (due, later): (Vec<_>, Vec<_>) = self.held.drain(..).partition(|(at, _, _)| *at <= now);
        self.held = later;
        for (_, from, msg) in due {
            Node::on_message(&mut self.inner, now, from, &msg, out);
        }
    }
    fn crypto_counters(&self) -> CryptoCounters {
        Node::crypto_counters(&self.inner)
    }
    fn combine_shares(&self) -> usize {
        Node::combine_shares(&self.inner)
    }
    fn stats(&self) -> Vec<(&'static str, u64)> {
        Node::stats(&self.inner)
    }
    fn gauges(&self) -> Vec<(&'static str, u64)> {
        Node::gauges(&self.inner)
    }
}

impl ServerNode for SlowCombiner {
    fn replica(&self) -> &Replica {
        &self.inner
    }
}
