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

use bft_core::NodeId;
use bft_harness::faults::{DelayInbound, InboundHold};

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

/// Slots whose release time the attacker remembers (older ones are forgotten).
const TRACKED: usize = 64;

/// A correct replica whose inbound Proposal shares of a slot wait the slot's hold from the
/// first one's arrival while it is the representative, from a given time on.
pub type SlowCombiner = DelayInbound<Replica, CombineHolds>;

/// `replica`, holding each slot's shares as `holds` says while it represents its site, from
/// `from` on.
pub fn slow_combiner(replica: Replica, from: Duration, holds: Holds) -> SlowCombiner {
    DelayInbound::new(
        replica,
        CombineHolds {
            from,
            holds,
            release: BTreeMap::new(),
        },
    )
}

/// The [`InboundHold`] of a [`SlowCombiner`].
pub struct CombineHolds {
    from: Duration,
    holds: Holds,
    /// When each slot's held shares are released.
    release: BTreeMap<u64, Duration>,
}

impl InboundHold<Replica> for CombineHolds {
    fn due(&mut self, now: Duration, rep: &Replica, _: NodeId, msg: &Message) -> Option<Duration> {
        let seq = match msg {
            Message::PartialSig(p) if p.kind == SigKind::Proposal && rep.is_rep() => p.seq,
            _ => return None,
        };
        if now < self.from {
            return None;
        }
        // The release time of a slot's shares is fixed by its first share.
        let hold = self.holds.of_slot(seq);
        let due = *self.release.entry(seq).or_insert(now + hold);
        while self.release.len() > TRACKED {
            self.release.pop_first();
        }
        Some(due)
    }
}
