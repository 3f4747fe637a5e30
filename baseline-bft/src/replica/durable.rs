//! What a PBFT replica keeps across a crash, and how it comes back (issue #12 item 9).
//!
//! Every vote the replica signs goes through its [`VoteLedger`] (the primary's Pre-Prepare,
//! a backup's Prepare, every Commit): a first vote is persisted in the step that sends it, a
//! different vote for the same (kind, seq, view) is refused. Beside the votes the store holds
//! what a restarted replica needs to say again what it said before, and to resume:
//!
//! * `c`: the current view and whether the replica entered it (persisted before anything is
//!   sent in it, so a restarted replica never sends a second View-Change for a view);
//! * `w`: its View-Change of that view (retransmitted while it waits for the New-View);
//! * `n`: the New-View it entered the view with, and the View-Changes it was built from (a
//!   restarted primary answers Status with it; a restarted backup resumes the view);
//! * `p`‖seq: the prepared certificate of each slot, persisted before the Commit is sent, so
//!   that a restarted replica's View-Changes still report every certificate it had;
//! * `o`‖seq: a primary's own Pre-Prepare, so that a restarted primary can retransmit it and
//!   never reuses its sequence number;
//! * `k`: the latest stable checkpoint with its certificate and state (the key-value store
//!   and the client table); the replica resumes executing from it and catches up through the
//!   protocol's commit certificates and state transfer.
//!
//! Votes and per-slot records below the stable checkpoint are deleted when a newer one is
//! persisted, so the store stays bounded by the water marks.

use std::sync::Arc;

use bft_core::codec::{DecodeError, Reader, Writer, MAX_LIST, MAX_SNAPSHOT};
use bft_core::durable::{
    prune_slots_through, slot_key, slot_of_key, Store, VoteKey, VoteLedger, Write,
};
use bft_core::request::Digest;

use super::{Action, Replica, Slot, Stable};
use crate::msg::{Message, NewView, PrePrepare, Prepare, PreparedCert, StateTransfer, ViewChange};
use crate::state::ServiceState;

/// Vote kind: the primary's Pre-Prepare (normal case or in a New-View).
pub(crate) const VOTE_PRE_PREPARE: u8 = 1;
/// Vote kind: a backup's Prepare.
pub(crate) const VOTE_PREPARE: u8 = 2;
/// Vote kind: a Commit.
pub(crate) const VOTE_COMMIT: u8 = 3;

const KEY_VIEW: &[u8] = b"c";
const KEY_CHECKPOINT: &[u8] = b"k";
const KEY_NEW_VIEW: &[u8] = b"n";
const KEY_VIEW_CHANGE: &[u8] = b"w";
const PREFIX_PREPARED: u8 = b'p';
const PREFIX_OWN_PP: u8 = b'o';

/// A record of several messages: a count, then each message's wire encoding.
fn encode_messages(msgs: &[Message]) -> Vec<u8> {
    let mut w = Writer::default();
    w.u32(msgs.len() as u32);
    for m in msgs {
        w.bytes(&m.encode());
    }
    w.buf
}

fn decode_messages(bytes: &[u8]) -> Result<Vec<Message>, DecodeError> {
    let mut r = Reader::new(bytes);
    let n = r.list_len("messages", 4)?.min(MAX_LIST);
    let msgs = (0..n)
        .map(|_| Message::decode(&r.bytes_max("message", MAX_SNAPSHOT)?))
        .collect::<Result<Vec<_>, _>>()?;
    r.finish()?;
    Ok(msgs)
}

fn encode_cert(cert: &PreparedCert) -> Vec<u8> {
    let mut msgs = vec![Message::PrePrepare(cert.pre_prepare.clone())];
    msgs.extend(cert.prepares.iter().cloned().map(Message::Prepare));
    encode_messages(&msgs)
}

fn decode_cert(bytes: &[u8]) -> Option<PreparedCert> {
    let mut msgs = decode_messages(bytes).ok()?.into_iter();
    let Some(Message::PrePrepare(pre_prepare)) = msgs.next() else {
        return None;
    };
    let prepares = msgs
        .map(|m| match m {
            Message::Prepare(p) => Some(p),
            _ => None,
        })
        .collect::<Option<Vec<Arc<Prepare>>>>()?;
    Some(PreparedCert {
        pre_prepare,
        prepares,
    })
}

fn decode_pre_prepare(bytes: &[u8]) -> Option<Arc<PrePrepare>> {
    match Message::decode(bytes).ok()? {
        Message::PrePrepare(pp) => Some(pp),
        _ => None,
    }
}

fn decode_view_change(bytes: &[u8]) -> Option<Arc<ViewChange>> {
    match Message::decode(bytes).ok()? {
        Message::ViewChange(vc) => Some(vc),
        _ => None,
    }
}

fn decode_new_view(bytes: &[u8]) -> Option<(Arc<NewView>, Vec<Arc<ViewChange>>)> {
    let mut msgs = decode_messages(bytes).ok()?.into_iter();
    let Some(Message::NewView(nv)) = msgs.next() else {
        return None;
    };
    let vcs = msgs
        .map(|m| match m {
            Message::ViewChange(vc) => Some(vc),
            _ => None,
        })
        .collect::<Option<Vec<_>>>()?;
    Some((nv, vcs))
}

impl Replica {
    fn persist(&mut self, w: Write) {
        self.out.push(Action::Persist(w));
    }

    /// Casts a vote through the ledger: persists a first vote (durable before this step's
    /// sends), lets a repetition through, refuses a contradiction of an earlier vote.
    pub(crate) fn cast_vote(&mut self, kind: u8, seq: u64, view: u64, digest: Digest) -> bool {
        let key = VoteKey {
            kind,
            seq,
            views: [view, 0],
        };
        let sendable = self.ledger.cast_into(key, digest, &mut self.out);
        self.stats.votes_refused += u64::from(!sendable);
        sendable
    }

    /// Persists the current view and whether the replica entered it.
    pub(crate) fn persist_view(&mut self) {
        let mut value = self.view.to_be_bytes().to_vec();
        value.push(u8::from(self.active));
        self.persist(Write::Put {
            key: KEY_VIEW.to_vec(),
            value,
        });
    }

    /// Persists the replica's own View-Change (one at a time: the one of its current view).
    pub(crate) fn persist_view_change(&mut self, vc: &Arc<ViewChange>) {
        self.persist(Write::Put {
            key: KEY_VIEW_CHANGE.to_vec(),
            value: Message::ViewChange(vc.clone()).encode(),
        });
    }

    /// Persists the New-View the replica entered its view with, and its View-Changes.
    pub(crate) fn persist_new_view(&mut self, nv: &Arc<NewView>, vcs: &[Arc<ViewChange>]) {
        let mut msgs = vec![Message::NewView(nv.clone())];
        msgs.extend(vcs.iter().cloned().map(Message::ViewChange));
        self.persist(Write::Put {
            key: KEY_NEW_VIEW.to_vec(),
            value: encode_messages(&msgs),
        });
    }

    /// Persists the prepared certificate of a slot (before the Commit is sent).
    pub(crate) fn persist_prepared(&mut self, cert: &PreparedCert) {
        self.persist(Write::Put {
            key: slot_key(PREFIX_PREPARED, cert.pre_prepare.seq),
            value: encode_cert(cert),
        });
    }

    /// Persists the primary's own Pre-Prepare (before it is sent).
    pub(crate) fn persist_own_pre_prepare(&mut self, pp: &Arc<PrePrepare>) {
        self.persist(Write::Put {
            key: slot_key(PREFIX_OWN_PP, pp.seq),
            value: Message::PrePrepare(pp.clone()).encode(),
        });
    }

    /// Persists the stable checkpoint if it is newer than the persisted one and its state is
    /// held, then forgets votes and slot records at or below it (in memory and on disk).
    /// A stable checkpoint without its state (adopted from a New-View) is not persisted and
    /// prunes nothing: until the state arrives, a restart resumes from the older one and its
    /// votes above it must still be there.
    pub(crate) fn persist_stable(&mut self) {
        let Some(snapshot) = self.stable.snapshot.clone() else {
            return;
        };
        let seq = self.stable.seq;
        if seq <= self.persisted_stable {
            return;
        }
        self.persisted_stable = seq;
        let st = StateTransfer {
            seq,
            snapshot: (*snapshot).clone(),
            proof: self.stable.proof.clone(),
        };
        self.persist(Write::Put {
            key: KEY_CHECKPOINT.to_vec(),
            value: Message::State(Arc::new(st)).encode(),
        });
        for w in prune_slots_through(&mut self.ledger, &[PREFIX_PREPARED, PREFIX_OWN_PP], seq) {
            self.persist(w);
        }
    }

    /// Rebuilds what the replica persisted before a crash (call once, before
    /// [`Replica::start`]): view, votes, prepared certificates, own Pre-Prepares, the stable
    /// checkpoint and its state, and the next sequence number. Records that do not decode are
    /// skipped (the replica then knows less, and catches up like a lagging one).
    pub(crate) fn restore(&mut self, store: &Store) {
        self.recovered = true;
        self.ledger = VoteLedger::recover(store);
        if let Some(Ok(Message::State(st))) = store.get(KEY_CHECKPOINT).map(|b| Message::decode(b))
        {
            if let Ok(state) = ServiceState::from_snapshot(&st.snapshot) {
                self.state = state;
                self.executed = st.seq;
                self.stable = Stable {
                    seq: st.seq,
                    proof: st.proof.clone(),
                    snapshot: Some(Arc::new(st.snapshot.clone())),
                };
                self.persisted_stable = st.seq;
            }
        }
        if let Some(v) = store.get(KEY_VIEW).filter(|v| v.len() == 9) {
            self.view = u64::from_be_bytes(v[..8].try_into().expect("8 bytes"));
            self.active = v[8] == 1;
        }
        if self.view > 0 && self.active {
            match store.get(KEY_NEW_VIEW).and_then(|b| decode_new_view(b)) {
                Some((nv, vcs)) if nv.view == self.view => self.new_view = Some((nv, vcs)),
                // Without the New-View it entered with, wait for it again.
                _ => self.active = false,
            }
        }
        if !self.active {
            if let Some(vc) = store
                .get(KEY_VIEW_CHANGE)
                .and_then(|b| decode_view_change(b))
                .filter(|vc| vc.view == self.view && vc.replica == self.cfg.id)
            {
                self.view_changes
                    .entry(self.view)
                    .or_default()
                    .insert(self.cfg.id, vc);
            }
        }
        let stable = self.stable.seq;
        for (key, value) in store.range(slot_key(PREFIX_PREPARED, stable + 1)..) {
            if key.first() != Some(&PREFIX_PREPARED) {
                break;
            }
            let Some(cert) = decode_cert(value) else {
                continue;
            };
            if slot_of_key(key) != Some(cert.pre_prepare.seq) {
                continue;
            }
            let slot: &mut Slot = self.log.entry(cert.pre_prepare.seq).or_default();
            slot.pp = Some(cert.pre_prepare.clone());
            slot.prepared = Some(cert);
        }
        let view = self.view;
        for (key, value) in store.range(slot_key(PREFIX_OWN_PP, stable + 1)..) {
            if key.first() != Some(&PREFIX_OWN_PP) {
                break;
            }
            let Some(pp) = decode_pre_prepare(value) else {
                continue;
            };
            if slot_of_key(key) != Some(pp.seq) || pp.view != view {
                continue;
            }
            for u in &pp.batch {
                let a = self.assigned.entry(u.client).or_default();
                *a = (*a).max(u.ts);
            }
            let slot = self.log.entry(pp.seq).or_default();
            if slot.pp.as_ref().is_none_or(|have| have.view < pp.view) {
                slot.pp = Some(pp);
            }
        }
        // A restarted primary continues after the last sequence number it pre-prepared in
        // this view (a New-View's included): reusing one would be refused by the ledger, and
        // skipping one would leave a gap nobody fills before the next view change.
        let last = (stable + 1..=stable.saturating_add(self.cfg.log_size))
            .filter(|s| {
                self.ledger
                    .get(VoteKey {
                        kind: VOTE_PRE_PREPARE,
                        seq: *s,
                        views: [view, 0],
                    })
                    .is_some()
            })
            .max()
            .unwrap_or(stable);
        self.next_seq = last.max(self.executed) + 1;
    }

    /// Votes held by the ledger (bounded by the water marks).
    pub fn ledger_len(&self) -> usize {
        self.ledger.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip() {
        let pp = Arc::new(PrePrepare {
            view: 2,
            seq: 9,
            digest: bft_core::request::batch_digest(&[]),
            replica: 2,
            batch: Vec::new(),
            sig: vec![1; 64],
        });
        let p = Arc::new(Prepare {
            view: 2,
            seq: 9,
            digest: pp.digest,
            replica: 1,
            sig: vec![2; 64],
        });
        let cert = PreparedCert {
            pre_prepare: pp.clone(),
            prepares: vec![p.clone(), p],
        };
        assert_eq!(decode_cert(&encode_cert(&cert)), Some(cert));
        assert_eq!(slot_of_key(&slot_key(PREFIX_OWN_PP, 77)), Some(77));
        assert!(decode_cert(b"junk").is_none());
        assert!(decode_new_view(&encode_messages(&[Message::PrePrepare(pp)])).is_none());
    }
}
