//! The Byzantine representatives that need the core's sequencing hook
//! ([`SequencerHook`]; see there why these two cannot be wrappers).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use crate::replica::{ProposalRoute, SequencerHook, Sequencing};

/// As leader-site representative, sequences only empty batches while clients wait (fake
/// progress).
#[derive(Debug, Default)]
pub struct EmptyBatches;

impl SequencerHook for EmptyBatches {
    fn next_slot(&self, _now: Duration, _queued: usize) -> Sequencing {
        Sequencing::Empty
    }
}

/// As leader-site representative, from `at` on: sends every Proposal it combines only to the
/// representatives of the sites in the bit mask `sites` (never to its own site, and without
/// applying it itself), and stops sequencing after the first, but keeps taking part in
/// everything else, view changes included (the split-brain attack of the red team).
#[derive(Debug)]
pub struct SelectiveProposal {
    at: Duration,
    sites: u64,
    fired: AtomicBool,
}

impl SelectiveProposal {
    /// The attack from `at` on, towards the sites in `sites`.
    pub fn new(at: Duration, sites: u64) -> Self {
        SelectiveProposal {
            at,
            sites,
            fired: AtomicBool::new(false),
        }
    }
}

impl SequencerHook for SelectiveProposal {
    fn next_slot(&self, _now: Duration, _queued: usize) -> Sequencing {
        if self.fired.load(Ordering::Relaxed) {
            Sequencing::Stop
        } else {
            Sequencing::Normal
        }
    }

    fn proposal_signed(&self, now: Duration) -> ProposalRoute {
        if now < self.at {
            return ProposalRoute::Everywhere;
        }
        self.fired.store(true, Ordering::Relaxed);
        ProposalRoute::OnlyTo(self.sites)
    }
}

/// As leader-site representative, fills at most one fresh slot per `every` however many
/// updates wait (issue #14, attack 7: slow, but never so slow that a stall or starvation
/// timeout fires, so it is never replaced by those timers alone).
#[derive(Debug)]
pub struct SlowSequencer {
    every: Duration,
    /// When it last filled a slot, in nanoseconds (`u64::MAX`: never).
    last: AtomicU64,
}

impl SlowSequencer {
    /// One slot per `every`.
    pub fn new(every: Duration) -> Self {
        SlowSequencer {
            every,
            last: AtomicU64::new(u64::MAX),
        }
    }
}

impl SequencerHook for SlowSequencer {
    fn next_slot(&self, now: Duration, _queued: usize) -> Sequencing {
        let now_ns = now.as_nanos() as u64;
        let last = self.last.load(Ordering::Relaxed);
        if last != u64::MAX && now_ns < last.saturating_add(self.every.as_nanos() as u64) {
            return Sequencing::Stop;
        }
        self.last.store(now_ns, Ordering::Relaxed);
        Sequencing::Normal
    }
}
