//! A Byzantine server that runs the protocol and, on every retransmission tick, also asks
//! every server of every other site for reconciliation with an execution point below its own (issue #14, attack 4: each of them used to answer every requester with up to
//! 64 order proofs a period, about 54 kB for a 20-byte request, so one such server per site
//! took a large share of every wide-area link).

use std::sync::Arc;
use std::time::Duration;

use bft_core::crypto::CryptoCounters;
use bft_core::{Envelope, Node, NodeId, Output};
use steward_config::{ServerId, SiteId};

use super::ServerNode;
use crate::msg::{Message, ReconRequest};
use crate::replica::Replica;

/// Timer token of the replica's retransmission tick (the requests ride on it).
const TICK: u64 = 1;

/// A correct replica that also asks every remote server for reconciliation on every tick.
pub struct ReconRequester {
    inner: Replica,
    sites: Vec<u32>,
    lag: u64,
    /// Reconciliation requests sent so far.
    pub sent: u64,
}

impl ReconRequester {
    /// `inner`, asking every server of the sites whose sizes are `sites` (index = site id)
    /// but its own, claiming to be `lag` sequence numbers behind its own execution point (64:
    /// one full answer; `u64::MAX`: from the start, for a snapshot).
    pub fn new(inner: Replica, sites: Vec<u32>, lag: u64) -> Self {
        ReconRequester {
            inner,
            sites,
            lag,
            sent: 0,
        }
    }

    fn ask(&mut self, out: &mut Vec<Output<Message>>) {
        let me = self.inner.id();
        let req = ReconRequest {
            aru: self.inner.global_aru().saturating_sub(self.lag),
        };
        let env = Envelope::new(Message::ReconRequest(Arc::new(req)));
        for (s, n) in self.sites.iter().enumerate() {
            let site = SiteId(s as u16);
            if site == me.site {
                continue;
            }
            for i in 0..*n {
                out.push(Output::Send {
                    to: NodeId::Server(ServerId::new(site, i)),
                    env: env.clone(),
                });
                self.sent += 1;
            }
        }
    }
}

impl Node for ReconRequester {
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
        Node::on_message(&mut self.inner, now, from, msg, out);
    }
    fn on_timer(&mut self, now: Duration, token: u64, out: &mut Vec<Output<Message>>) {
        Node::on_timer(&mut self.inner, now, token, out);
        if token == TICK {
            self.ask(out);
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
}

impl ServerNode for ReconRequester {
    fn replica(&self) -> &Replica {
        &self.inner
    }
}
