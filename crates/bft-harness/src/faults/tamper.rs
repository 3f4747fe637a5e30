//! A node whose outgoing messages a protocol-specific [`Tampering`] rewrites (a Byzantine
//! server re-signs what it changes with its own keys).

use std::time::Duration;

use bft_core::crypto::CryptoCounters;
use bft_core::{Envelope, Node, NodeId, Output};

/// Rewrites outgoing messages.
pub trait Tampering<M> {
    /// The message to send to `to` instead of `msg`, or `None` to send `msg` unchanged.
    fn outgoing(&mut self, to: NodeId, msg: &M) -> Option<M>;
    /// Crypto operations the tampering made (re-signing), charged to the node.
    fn crypto_counters(&self) -> CryptoCounters {
        CryptoCounters::default()
    }
}

/// Wraps `N`; every outgoing message goes through `T`.
pub struct Tamper<N: Node, T> {
    inner: N,
    tampering: T,
    /// Messages rewritten so far.
    pub rewritten: u64,
}

impl<N: Node, T: Tampering<N::Msg>> Tamper<N, T> {
    /// `inner` with `tampering`.
    pub fn new(inner: N, tampering: T) -> Self {
        Tamper {
            inner,
            tampering,
            rewritten: 0,
        }
    }

    /// The wrapped node.
    pub fn inner(&self) -> &N {
        &self.inner
    }

    fn tamper(&mut self, out: &mut [Output<N::Msg>]) {
        for o in out {
            if let Output::Send { to, env } = o {
                if let Some(m) = self.tampering.outgoing(*to, &env.msg) {
                    *env = Envelope::new(m);
                    self.rewritten += 1;
                }
            }
        }
    }
}

impl<N: Node, T: Tampering<N::Msg>> Node for Tamper<N, T> {
    type Msg = N::Msg;
    fn id(&self) -> NodeId {
        self.inner.id()
    }
    fn start(&mut self, now: Duration, out: &mut Vec<Output<N::Msg>>) {
        let from = out.len();
        self.inner.start(now, out);
        self.tamper(&mut out[from..]);
    }
    fn on_message(
        &mut self,
        now: Duration,
        from: NodeId,
        msg: &N::Msg,
        out: &mut Vec<Output<N::Msg>>,
    ) {
        let i = out.len();
        self.inner.on_message(now, from, msg, out);
        self.tamper(&mut out[i..]);
    }
    fn on_timer(&mut self, now: Duration, token: u64, out: &mut Vec<Output<N::Msg>>) {
        let from = out.len();
        self.inner.on_timer(now, token, out);
        self.tamper(&mut out[from..]);
    }
    fn crypto_counters(&self) -> CryptoCounters {
        let mut c = self.inner.crypto_counters();
        let t = self.tampering.crypto_counters();
        for (a, b) in c.0.iter_mut().zip(t.0) {
            *a += b;
        }
        c
    }
    fn combine_shares(&self) -> usize {
        self.inner.combine_shares()
    }
    fn stop(&mut self) {
        self.inner.stop()
    }
    fn stats(&self) -> Vec<(&'static str, u64)> {
        self.inner.stats()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::faults::fake::{msg, sends, Fake, FakeMsg};

    struct Shout;
    impl Tampering<FakeMsg> for Shout {
        fn outgoing(&mut self, to: NodeId, m: &FakeMsg) -> Option<FakeMsg> {
            (to == NodeId::Replica(2)).then(|| FakeMsg(m.0.to_uppercase()))
        }
    }

    #[test]
    fn rewrites_what_the_tampering_returns() {
        let mut n = Tamper::new(Fake::new(0), Shout);
        let mut out = Vec::new();
        n.on_message(Duration::ZERO, NodeId::Replica(2), &msg("a"), &mut out);
        n.on_message(Duration::ZERO, NodeId::Replica(3), &msg("b"), &mut out);
        assert_eq!(sends(&out), vec!["ECHO-A", "echo-b"]);
        assert_eq!(n.rewritten, 1);
        if let Output::Send { env, .. } = &out[0] {
            assert_eq!(
                &env.wire[..],
                b"ECHO-A",
                "the encoding is the rewritten message's"
            );
        }
    }
}
