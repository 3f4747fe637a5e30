//! A leader-site representative that holds every Proposal share it receives for a fixed
//! delay before it looks at it: it sequences promptly and combines late, just under the
//! timers (the residual of the sequencing deadline, README "Bounded damage"). With the local
//! window of 2, two held combines also keep it from sequencing more, so the sequencing watch
//! sees no room to judge it by.

use std::collections::VecDeque;
use std::time::Duration;

use bft_core::crypto::CryptoCounters;
use bft_core::{Node, NodeId, Output};

use super::ServerNode;
use crate::msg::{Message, SigKind};
use crate::replica::Replica;

/// The wrapper's own timer token, far from the replica's (1, 2, and the local and global
/// timer generations from 2^32 on, which never reach it).
const RELEASE: u64 = u64::MAX - 0x51_0c;

/// A correct replica whose inbound Proposal shares wait `delay` while it is the
/// representative.
pub struct SlowCombiner {
    inner: Replica,
    delay: Duration,
    /// Held shares with the time each is due, in arrival (and so due) order.
    held: VecDeque<(Duration, NodeId, Message)>,
}

impl SlowCombiner {
    /// `inner`, holding Proposal shares `delay` while it represents its site.
    pub fn new(inner: Replica, delay: Duration) -> Self {
        SlowCombiner {
            inner,
            delay,
            held: VecDeque::new(),
        }
    }

    fn holds(&self, msg: &Message) -> bool {
        matches!(msg, Message::PartialSig(p) if p.kind == SigKind::Proposal) && self.inner.is_rep()
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
        if self.holds(msg) {
            self.held.push_back((now + self.delay, from, msg.clone()));
            out.push(Output::Timer {
                after: self.delay,
                token: RELEASE,
            });
            return;
        }
        Node::on_message(&mut self.inner, now, from, msg, out);
    }
    fn on_timer(&mut self, now: Duration, token: u64, out: &mut Vec<Output<Message>>) {
        if token != RELEASE {
            Node::on_timer(&mut self.inner, now, token, out);
            return;
        }
        while self.held.front().is_some_and(|(due, _, _)| *due <= now) {
            let (_, from, msg) = self.held.pop_front().expect("checked");
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
