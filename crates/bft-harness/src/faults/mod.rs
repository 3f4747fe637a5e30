//! Crash and Byzantine behaviours as wrappers around any [`Node`]: each wrapper is itself a
//! [`Node`] that drives an inner node and filters or rewrites what goes in and out, so the
//! protocol cores keep no test-only branches (the style of commonware's simplex mocks).
//!
//! Wrappers compose: `Withhold::new(DropInbound::matching(replica, p), q)` is a replica
//! that neither hears nor says what `p` and `q` match. Protocol-specific rewrites (a corrupted
//! share, a forged result) implement [`Tampering`] and run inside [`Tamper`]; a server whose
//! threshold shares are bad has a [`CorruptShares`] crypto backend.

mod corrupt_shares;
mod crash;
mod delay_inbound;
mod delay_outbound;
mod drop_inbound;
mod restart;
mod tamper;
mod withhold;
mod wrapper;

#[cfg(test)]
pub(crate) mod fake;

pub use corrupt_shares::CorruptShares;
pub use crash::Crash;
pub use delay_inbound::{DelayInbound, InboundHold, DELAY_INBOUND_TIMER};
pub use delay_outbound::{DelayOutbound, DELAY_OUTBOUND_TIMER};
pub use drop_inbound::DropInbound;
pub use restart::{CrashPoint, Outage, Restart};
pub use tamper::{Tamper, Tampering};
pub use withhold::Withhold;
pub use wrapper::{MsgOf, Wrapper};

use bft_core::{Node, NodeId, Output};

/// A predicate on a message (and, for outgoing ones, its destination).
pub type MsgFilter<M> = Box<dyn Fn(NodeId, &M) -> bool>;
/// A predicate on the wrapped node's state.
pub type StateFilter<N> = Box<dyn Fn(&N) -> bool>;

/// What [`DropInbound`] and [`Withhold`] match: the messages `filter` matches, while `when`
/// (if set) holds of the inner node.
pub(crate) struct Matching<N: Node> {
    filter: MsgFilter<N::Msg>,
    when: Option<StateFilter<N>>,
}

impl<N: Node> Matching<N> {
    pub(crate) fn new(filter: MsgFilter<N::Msg>) -> Self {
        Matching { filter, when: None }
    }

    /// Matches only while `when` holds of the inner node.
    pub(crate) fn set_when(&mut self, when: impl Fn(&N) -> bool + 'static) {
        self.when = Some(Box::new(when));
    }

    /// Whether the condition holds of `inner` (always, without one).
    pub(crate) fn active(&self, inner: &N) -> bool {
        self.when.as_ref().is_none_or(|w| w(inner))
    }

    /// Whether `filter` matches `msg` from or to `peer`.
    pub(crate) fn matches(&self, peer: NodeId, msg: &N::Msg) -> bool {
        (self.filter)(peer, msg)
    }
}

/// Removes from `out[from..]` every `Send` that `drop` matches.
pub(crate) fn retain_sends<M>(
    out: &mut Vec<Output<M>>,
    from: usize,
    mut drop: impl FnMut(NodeId, &M) -> bool,
) {
    let mut i = from;
    while i < out.len() {
        if matches!(&out[i], Output::Send { to, env } if drop(*to, &env.msg)) {
            out.remove(i);
        } else {
            i += 1;
        }
    }
}

/// The message kinds in `kinds` (for [`Withhold`] and [`DropInbound`]).
pub fn kinds<M: bft_core::Wire>(kinds: &'static [&'static str]) -> MsgFilter<M> {
    Box::new(move |_, m: &M| kinds.contains(&m.kind()))
}
