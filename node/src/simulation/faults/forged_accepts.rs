//! A Byzantine server that runs the protocol and, on every retransmission tick, also sends
//! every server of every other site an Accept in its own site's name for a sequence number far
//! beyond anybody's window, with a forged threshold signature (issue #14, attack 5: the
//! receivers used to raise their reconciliation hint from it before checking the signature,
//! and never lowered it again, so they asked for reconciliation forever).

use std::sync::Arc;

use bft_core::{Envelope, Output};

use super::{to_other_sites, TickAttack};
use crate::msg::{Accept, Message};
use crate::replica::Replica;

/// How far beyond the victims' execution point the forged sequence numbers lie.
const AHEAD: u64 = 1_000_000;

/// Forges far-ahead Accepts to the other sites (mounted on a correct replica by
/// [`OnTick`](super::OnTick)).
pub struct ForgedAccepts {
    sites: Vec<u32>,
    /// Forged Accepts sent so far.
    pub sent: u64,
}

impl ForgedAccepts {
    /// Lying to every server of the sites whose sizes are `sites` (index = site id).
    pub fn new(sites: Vec<u32>) -> Self {
        ForgedAccepts { sites, sent: 0 }
    }
}

impl TickAttack for ForgedAccepts {
    fn on_tick(&mut self, inner: &Replica, out: &mut Vec<Output<Message>>) {
        let me = inner.id();
        let forged = Accept {
            site: me.site.0,
            gv: inner.global_view(),
            lv: inner.local_view(),
            seq: inner.global_aru() + AHEAD,
            digest: [0xab; 32],
            tsig: vec![0x42; 128],
        };
        let env = Envelope::new(Message::Accept(Arc::new(forged)));
        self.sent += to_other_sites(me, &self.sites, &env, out);
    }
}
