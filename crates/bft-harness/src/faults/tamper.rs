//! A node whose outgoing messages a protocol-specific [`Tampering`] rewrites (a Byzantine
//! server re-signs what it changes with its own keys).

use bft_core::crypto::CryptoCounters;
use bft_core::{Envelope, Node, NodeId, Output};

use super::wrapper::wrapper_node;

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
}

wrapper_node! {
    impl[N: Node, T: Tampering<N::Msg>] Wrapper for Tamper<N, T> {
        fn outgoing(&mut self, out: &mut Vec<Output<N::Msg>>, from: usize) {
            for o in &mut out[from..] {
                if let Output::Send { to, env } = o {
                    if let Some(m) = self.tampering.outgoing(*to, &env.msg) {
                        *env = Envelope::new(m);
                        self.rewritten += 1;
                    }
                }
            }
        }
        fn own_crypto(&self) -> CryptoCounters {
            self.tampering.crypto_counters()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::faults::fake::{receive, sends, Fake, FakeMsg};

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
        receive(&mut n, 2, "a", &mut out);
        receive(&mut n, 3, "b", &mut out);
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
