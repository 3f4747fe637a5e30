//! A Byzantine server that runs the protocol and, on every retransmission tick, also sends its
//! representative a burst of validly signed Partial_Sigs on random contents, for every kind of
//! threshold signature and every sequence number the representative would take (issue #14,
//! attack 6: each one used to open a new share set, and the global-view-change ones were kept
//! until the next global view change, so the representative's memory grew without bound).

use std::sync::Arc;
use std::time::Duration;

use bft_core::crypto::CryptoCounters;
use bft_core::{Envelope, Node, NodeId, Output};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use steward_config::ServerId;

use super::ServerNode;
use crate::crypto::Crypto;
use crate::msg::{Message, PartialSig, SigKind};
use crate::replica::Replica;

/// Timer token of the replica's retransmission tick (the burst rides on it).
const TICK: u64 = 1;

/// Sequence numbers ahead of the execution point the representative accepts shares for
/// (4 × the release code's global window).
const ORDERING_AHEAD: u64 = 64;

/// A correct replica that also spams its representative with Partial_Sigs on random contents.
pub struct PartialSigSpammer {
    inner: Replica,
    crypto: Crypto,
    rng: ChaCha8Rng,
    per_tick: u32,
    site_size: u32,
    /// Partial_Sigs sent so far.
    pub sent: u64,
}

impl PartialSigSpammer {
    /// `inner` (in a site of `site_size` servers), signing its junk with `crypto` (its own
    /// key), `per_tick` junk shares a tick.
    pub fn new(inner: Replica, site_size: u32, crypto: Crypto, per_tick: u32) -> Self {
        let id = inner.id();
        let seed = u64::from(id.site.0) << 32 | u64::from(id.index);
        PartialSigSpammer {
            inner,
            crypto,
            rng: ChaCha8Rng::seed_from_u64(seed),
            per_tick,
            site_size,
            sent: 0,
        }
    }

    fn burst(&mut self, out: &mut Vec<Output<Message>>) {
        let me = self.inner.id();
        let gv = self.inner.global_view();
        let lv = self.inner.local_view();
        let aru = self.inner.global_aru();
        let rep = ServerId::new(me.site, (lv % u64::from(self.site_size)) as u32);
        for _ in 0..self.per_tick {
            let (kind, seq, views) = match self.rng.gen_range(0..5) {
                0 => (
                    SigKind::Proposal,
                    aru + self.rng.gen_range(1..=ORDERING_AHEAD),
                    gv,
                ),
                1 => (
                    SigKind::Accept,
                    aru + self.rng.gen_range(1..=ORDERING_AHEAD),
                    gv,
                ),
                2 => (SigKind::GlobalVc, gv + 1, gv + 1),
                3 => (SigKind::Aru, gv, gv),
                _ => (SigKind::Constraint, gv, gv),
            };
            let mut p = PartialSig {
                server: me.index,
                kind,
                gv: views,
                lv,
                seq,
                content: self.rng.gen(),
                share: (0..307).map(|_| self.rng.gen()).collect(),
                sig: Vec::new(),
            };
            p.sig = self.crypto.sign(&p.signing_bytes());
            out.push(Output::Send {
                to: NodeId::Server(rep),
                env: Envelope::new(Message::PartialSig(Arc::new(p))),
            });
            self.sent += 1;
        }
    }
}

impl Node for PartialSigSpammer {
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
            self.burst(out);
        }
    }
    fn crypto_counters(&self) -> CryptoCounters {
        let mut c = Node::crypto_counters(&self.inner);
        for (a, b) in c.0.iter_mut().zip(self.crypto.counters().0) {
            *a += b;
        }
        c
    }
    fn combine_shares(&self) -> usize {
        Node::combine_shares(&self.inner)
    }
    fn stats(&self) -> Vec<(&'static str, u64)> {
        Node::stats(&self.inner)
    }
}

impl ServerNode for PartialSigSpammer {
    fn replica(&self) -> &Replica {
        &self.inner
    }
}
