//! A Byzantine server that runs the protocol and, on every retransmission tick, also sends
//! every server of every other site an Accept in its own site's name for a sequence number far
//! beyond anybody's window, with a forged threshold signature (issue #14, attack 5: the
//! receivers used to raise their reconciliation hint from it before checking the signature,
//! and never lowered it again, so they asked for reconciliation forever).

use std::sync::Arc;
use std::time::Duration;

use bft_core::crypto::CryptoCounters;
use bft_core::{Envelope, Node, NodeId, Output};
use steward_config::{ServerId, SiteId};

use super::ServerNode;
use crate::msg::{Accept, Message};
use crate::replica::Replica;

/// Timer token of the replica's retransmission tick (the lie rides on it).
const TICK: u64 = 1;

/// How far beyond the victims' execution point the forged sequence numbers lie.
const AHEAD: u64 = 1_000_000;

/// A correct replica that also forges far-ahead Accepts to the other sites.
pub struct ForgedAccepts {
    inner: Replica,
    sites: Vec<u32>,
    /// Forged Accepts sent so far.
    pub sent: u64,
}

impl ForgedAccepts {
    /// `inner`, lying to every server of the sites whose sizes are `sites` (index = site id).
    pub fn new(inner: Replica, sites: Vec<u32>) -> Self {
        ForgedAccepts {
            inner,
            sites,
            sent: 0,
        }
    }

    fn lie(&mut self, out: &mut Vec<Output<Message>>) {
        let me = self.inner.id();
        let forged = Accept {
            site: me.site.0,
            gv: self.inner.global_view(),
            lv: self.inner.local_view(),
            seq: self.inner.global_aru() + AHEAD,
            digest: [0xab; 32],
            tsig: vec![0x42; 128],
        };
        let env = Envelope::new(Message::Accept(Arc::new(forged)));
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

impl Node for ForgedAccepts {
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
            self.lie(out);
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

impl ServerNode for ForgedAccepts {
    fn replica(&self) -> &Replica {
        &self.inner
    }
}
