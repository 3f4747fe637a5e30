//! A Byzantine server that runs the protocol and, on every retransmission tick, also asks
//! every server of every other site for reconciliation with an execution point below its own (issue #14, attack 4: each of them used to answer every requester with up to
//! 64 order proofs a period, about 54 kB for a 20-byte request, so one such server per site
//! took a large share of every wide-area link).

use std::sync::Arc;

use bft_core::{Envelope, Output};

use super::{to_other_sites, TickAttack};
use crate::msg::{Message, ReconRequest};
use crate::replica::Replica;

/// Asks every remote server for reconciliation on every tick (mounted on a correct replica
/// by [`OnTick`](super::OnTick)).
pub struct ReconRequester {
    sites: Vec<u32>,
    lag: u64,
    /// Reconciliation requests sent so far.
    pub sent: u64,
}

impl ReconRequester {
    /// Asking every server of the sites whose sizes are `sites` (index = site id) but its
    /// own, claiming to be `lag` sequence numbers behind its own execution point (64: one full
    /// answer; `u64::MAX`: from the start, for a snapshot).
    pub fn new(sites: Vec<u32>, lag: u64) -> Self {
        ReconRequester {
            sites,
            lag,
            sent: 0,
        }
    }
}

impl TickAttack for ReconRequester {
    fn on_tick(&mut self, inner: &Replica, out: &mut Vec<Output<Message>>) {
        let me = inner.id();
        let req = ReconRequest {
            aru: inner.global_aru().saturating_sub(self.lag),
            gv: inner.global_view(),
        };
        let env = Envelope::new(Message::ReconRequest(Arc::new(req)));
        self.sent += to_other_sites(me, &self.sites, &env, out);
    }
}
