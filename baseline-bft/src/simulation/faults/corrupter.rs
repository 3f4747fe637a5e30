//! A replica that runs the protocol but corrupts two of every three messages it sends:
//! garbage signatures, or wrong digests, results and states signed with its own key.

use std::sync::Arc;

use bft_core::crypto::{Crypto, CryptoCounters};
use bft_core::NodeId;
use bft_harness::faults::Tampering;

use crate::msg::Message;

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
}

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
        let junk = |len: usize| vec![0x5a; len.max(1)];
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
            Message::Prepare(p) => {
                let mut p = (*p).clone();
                if garbage_sig {
                    p.sig = junk(p.sig.len());
                } else {
                    p.digest = flip(p.digest);
                    p.sig = self.sign(&p.signing_bytes());
                }
                Message::Prepare(Arc::new(p))
            }
            Message::Commit(c) => {
                let mut c = (*c).clone();
                if garbage_sig {
                    c.sig = junk(c.sig.len());
                } else {
                    c.digest = flip(c.digest);
                    c.sig = self.sign(&c.signing_bytes());
                }
                Message::Commit(Arc::new(c))
            }
            Message::Checkpoint(c) => {
                let mut c = (*c).clone();
                if garbage_sig {
                    c.sig = junk(c.sig.len());
                } else {
                    c.state = flip(c.state);
                    c.sig = self.sign(&c.signing_bytes());
                }
                Message::Checkpoint(Arc::new(c))
            }
            Message::Reply(r) => {
                let mut r = (*r).clone();
                r.result.push(0xee);
                if garbage_sig {
                    r.sig = junk(r.sig.len());
                } else {
                    r.sig = self.sign(&r.signing_bytes());
                }
                Message::Reply(Arc::new(r))
            }
            Message::ViewChange(v) => {
                let mut v = (*v).clone();
                if garbage_sig {
                    v.sig = junk(v.sig.len());
                } else {
                    for cert in &mut v.prepared {
                        cert.prepares.truncate(1);
                    }
                    v.stable_proof.truncate(1);
                    v.sig = self.sign(&v.signing_bytes());
                }
                Message::ViewChange(Arc::new(v))
            }
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
