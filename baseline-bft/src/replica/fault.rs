//! Misbehaviours of simulated Byzantine replicas. They are selected by
//! [`super::ReplicaConfig::fault`], which is [`Fault::None`] unless a test sets it; a faulty
//! replica signs only with its own key (it cannot forge others' signatures).

use std::sync::Arc;

use bft_core::request::batch_digest;

use super::{Action, Dest, Replica};
use crate::msg::{Envelope, Message, PrePrepare};

/// How a replica misbehaves.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Fault {
    /// A correct replica.
    #[default]
    None,
    /// As primary, never sends a Pre-Prepare or a New-View; otherwise correct.
    SilentPrimary,
    /// As primary, sends two conflicting, validly signed Pre-Prepares for each sequence number
    /// (the real batch to half of the backups, a replayed old request to the other half).
    EquivocatingPrimary,
    /// Runs the protocol but corrupts two of every three messages it sends: garbage
    /// signatures, or wrong digests, results and states signed with its own key.
    Corrupt,
    /// As primary, never orders the requests of client 0 (censorship); otherwise correct.
    CensoringPrimary,
    /// As primary, orders empty batches while requests wait (fake progress).
    EmptyBatchPrimary,
}

impl Replica {
    /// Send `pp` to the lower half of the backups and a conflicting Pre-Prepare for the same
    /// sequence number to the others.
    pub(crate) fn equivocate(&mut self, pp: &Arc<PrePrepare>) {
        let other = self
            .recent
            .iter()
            .find(|u| !pp.batch.iter().any(|b| b.digest() == u.digest()))
            .cloned();
        let Some(old) = other else {
            self.broadcast(Message::PrePrepare(pp.clone()));
            return;
        };
        let batch = vec![old];
        let mut alt = PrePrepare {
            digest: batch_digest(&batch),
            batch,
            sig: Vec::new(),
            ..(**pp).clone()
        };
        alt.sig = self.sign(&alt.signing_bytes());
        let (a, b) = (
            Envelope::new(Message::PrePrepare(pp.clone())),
            Envelope::new(Message::PrePrepare(Arc::new(alt))),
        );
        let backups: Vec<u32> = (0..self.n()).filter(|i| *i != self.cfg.id).collect();
        let half = backups.len() / 2;
        for (k, i) in backups.into_iter().enumerate() {
            let env = if k < half { a.clone() } else { b.clone() };
            self.out.push(Action::Send {
                to: Dest::Replica(i),
                env,
            });
        }
    }

    /// Corrupt the pending outputs (fault `Corrupt`).
    pub(crate) fn corrupt_outputs(&mut self) {
        let out = std::mem::take(&mut self.out);
        for action in out {
            let Action::Send { to, env } = action else {
                self.out.push(action);
                continue;
            };
            self.fault_counter += 1;
            let mode = self.fault_counter % 3;
            let msg = if mode == 0 {
                env.msg
            } else {
                self.corrupt(env.msg, mode == 1)
            };
            self.out.push(Action::Send {
                to,
                env: Envelope::new(msg),
            });
        }
    }

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
