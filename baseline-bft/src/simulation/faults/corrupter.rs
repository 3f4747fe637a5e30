//! A replica that runs the protocol but corrupts two of every three messages it sends:
//! garbage signatures, or wrong digests, results and states signed with its own key.

use std::sync::Arc;

use bft_core::crypto::{Crypto, CryptoCounters};
use bft_core::NodeId;
use bft_harness::faults::Tampering;

use crate::msg::{Checkpoint, Commit, Message, Prepare, Reply, ViewChange};

/// Corrupts the second and third of every three messages sent.
pub struct Corrupter {
    crypto: Crypto,
    sent: u64,
}

impl Corrupter {
    /// With the replica's own keys.
    pub fn new(crypto: Crypto) -> Self {
        Corrupter { crypto, sent: 0 }
    }

    fn sign(&mut self, bytes: &[u8]) -> Vec<u8> {
        self.crypto.sign(bytes)
    }

    /// A copy of `msg` with a garbage signature, or changed by `change` and signed again with
    /// the replica's own key.
    fn resign<T: Signed>(
        &mut self,
        msg: &T,
        garbage_sig: bool,
        change: impl FnOnce(&mut T),
    ) -> Arc<T> {
        let mut m = msg.clone();
        let sig = if garbage_sig {
            junk(m.sig().len())
        } else {
            change(&mut m);
            self.sign(&m.bytes_to_sign())
        };
        *m.sig() = sig;
        Arc::new(m)
    }
}

/// A garbage signature of `len` bytes (at least one).
fn junk(len: usize) -> Vec<u8> {
    vec![0x5a; len.max(1)]
}

/// A message its sender signs over its `signing_bytes`.
trait Signed: Clone {
    /// The signature.
    fn sig(&mut self) -> &mut Vec<u8>;
    /// What the signature covers.
    fn bytes_to_sign(&self) -> Vec<u8>;
}

macro_rules! signed {
    ($($ty:ty),*) => {
        $(impl Signed for $ty {
            fn sig(&mut self) -> &mut Vec<u8> {
                &mut self.sig
            }
            fn bytes_to_sign(&self) -> Vec<u8> {
                self.signing_bytes()
            }
        })*
    };
}

signed!(Prepare, Commit, Checkpoint, Reply, ViewChange);

impl Tampering<Message> for Corrupter {
    fn outgoing(&mut self, _to: NodeId, msg: &Message) -> Option<Message> {
        self.sent += 1;
        match self.sent % 3 {
            0 => None,
            mode => Some(self.corrupt(msg.clone(), mode == 1)),
        }
    }

    fn crypto_counters(&self) -> CryptoCounters {
        self.crypto.counters()
    }
}

impl Corrupter {
    fn corrupt(&mut self, msg: Message, garbage_sig: bool) -> Message {
        let flip = |mut d: [u8; 32]| {
            d[0] ^= 0xff;
            d
        };
        match msg {
            Message::PrePrepare(p) => {
                let mut p = (*p).clone();
                if garbage_sig {
                    p.sig = junk(p.sig.len());
                } else {
                    p.batch.clear(); // no longer matches its digest
                }
                Message::PrePrepare(Arc::new(p))
            }
            Message::Prepare(p) => Message::Prepare(self.resign(&p, garbage_sig, |p| {
                p.digest = flip(p.digest);
            })),
            Message::Commit(c) => Message::Commit(self.resign(&c, garbage_sig, |c| {
                c.digest = flip(c.digest);
            })),
            Message::Checkpoint(c) => Message::Checkpoint(self.resign(&c, garbage_sig, |c| {
                c.state = flip(c.state);
            })),
            Message::Reply(r) => {
                let mut r = (*r).clone();
                r.result.push(0xee);
                Message::Reply(self.resign(&r, garbage_sig, |_| {}))
            }
            Message::ViewChange(v) => Message::ViewChange(self.resign(&v, garbage_sig, |v| {
                for cert in &mut v.prepared {
                    cert.prepares.truncate(1);
                }
                v.stable_proof.truncate(1);
            })),
            Message::NewView(nv) => {
                let mut nv = (*nv).clone();
                nv.view_changes.truncate(1);
                nv.sig = self.sign(&nv.signing_bytes());
                Message::NewView(Arc::new(nv))
            }
            Message::CommitProof(p) => {
                let mut p = (*p).clone();
                p.commits.truncate(1);
                Message::CommitProof(Arc::new(p))
            }
            Message::State(s) => {
                let mut s = (*s).clone();
                s.snapshot
                    .entries
                    .push((b"\xffforged".to_vec(), b"value".to_vec()));
                Message::State(Arc::new(s))
            }
            other => other,
        }
    }
}
