//! What a Steward server must never forget across a crash (#12 item 9), and its recovery.
//!
//! Persisted (see [`bft_core::durable`]; every write reaches the disk before any message of
//! the same step leaves):
//! - **votes** in a [`VoteLedger`]: the representative's Pre-Prepare and each Prepare per
//!   (gv, lv, seq), the threshold share on a Proposal per (gv, lv, seq), and the threshold
//!   share on an Accept per (gv, seq). A restarted server refuses to cast a different vote for
//!   a key it voted on, so it can never help bind a second batch to a slot;
//! - **bindings** it must report in a global view change (TDSC Fig. A-20, Invariant A.1): the
//!   latest Prepare certificate and the latest Proposal of every unexecuted slot, written
//!   before the share that depends on them;
//! - **views** (gv, lv), and the latest **checkpoint** (store, client results, its sequence
//!   number), after which everything below it is pruned.
//!
//! Not persisted, by design: order proofs, Accepts and Pre-Prepares received (a restarted
//! server fetches ordered slots again by reconciliation or state transfer, as a lagging server
//! does), and in-progress view changes (timers restart them). After a restart in the leader
//! site the server takes no part in ordering (it is not locally constrained) until it knows
//! which bindings the current local view's constraint carried: it asks the representative
//! for that view's Local_Collected bundle (`view_catchup`), or its site installs a new view.
//! Its own votes of the current view stay in the ledger, so the bundle cannot lead it to
//! contradict them.

use std::sync::Arc;

use bft_core::durable::{
    prune_slots_through, slot_key, slot_of_key, Store, VoteKey, VoteLedger, Write,
};

use super::{Action, Replica};
use crate::msg::{Digest, Message, PrepareCert, Proposal};

/// Vote kinds in the ledger.
pub(crate) mod kind {
    /// The representative's Pre-Prepare (views: gv, lv).
    pub const PRE_PREPARE: u8 = 1;
    /// A Prepare (views: gv, lv).
    pub const PREPARE: u8 = 2;
    /// A threshold share on the site's Proposal (views: gv, lv).
    pub const PROPOSAL_SHARE: u8 = 3;
    /// A threshold share on the site's Accept (views: gv, 0; any local view).
    pub const ACCEPT_SHARE: u8 = 4;
}

const VIEWS_KEY: &[u8] = b"V";
const CHECKPOINT_KEY: &[u8] = b"k";
const CERT_PREFIX: u8 = b'c';
const PROPOSAL_PREFIX: u8 = b'p';

/// Everything a server restores from its store (decoded before anything is applied).
#[derive(Default)]
struct Recovered {
    views: Option<(u64, u64)>,
    checkpoint: Option<(u64, Digest, Vec<u8>)>,
    certs: Vec<PrepareCert>,
    proposals: Vec<Arc<Proposal>>,
}

impl Recovered {
    fn read(store: &Store) -> Recovered {
        let mut rec = Recovered::default();
        if let Some(v) = store.get(VIEWS_KEY).filter(|v| v.len() == 16) {
            let gv = u64::from_be_bytes(v[..8].try_into().expect("8 bytes"));
            let lv = u64::from_be_bytes(v[8..].try_into().expect("8 bytes"));
            rec.views = Some((gv, lv));
        }
        if let Some(v) = store.get(CHECKPOINT_KEY).filter(|v| v.len() >= 40) {
            let seq = u64::from_be_bytes(v[..8].try_into().expect("8 bytes"));
            let digest: Digest = v[8..40].try_into().expect("32 bytes");
            rec.checkpoint = Some((seq, digest, v[40..].to_vec()));
        }
        for (k, v) in store.range(slot_key(CERT_PREFIX, 0)..slot_key(CERT_PREFIX + 1, 0)) {
            if let (Some(_), Ok(c)) = (slot_of_key(k), PrepareCert::decode(v)) {
                rec.certs.push(c);
            }
        }
        for (k, v) in store.range(slot_key(PROPOSAL_PREFIX, 0)..slot_key(PROPOSAL_PREFIX + 1, 0)) {
            if let (Some(_), Ok(Message::Proposal(p))) = (slot_of_key(k), Message::decode(v)) {
                rec.proposals.push(p);
            }
        }
        rec
    }
}

impl Replica {
    fn persist(&mut self, w: Write) {
        self.out.push(Action::Persist(w));
    }

    /// Records this server's vote of `kind` for `digest` at (`seq`, `views`). False when it
    /// voted differently there before (before a crash, or a caller's bug): the vote must not
    /// be sent.
    pub(crate) fn cast_vote(
        &mut self,
        kind: u8,
        seq: u64,
        views: [u64; 2],
        digest: Digest,
    ) -> bool {
        let sendable = self
            .ledger
            .cast_into(VoteKey { kind, seq, views }, digest, &mut self.out);
        self.stats.votes_refused += u64::from(!sendable);
        sendable
    }

    /// Writes the current views if they changed since the last write.
    pub(crate) fn persist_views(&mut self) {
        if self.persisted_views == (self.gv, self.lv) {
            return;
        }
        self.persisted_views = (self.gv, self.lv);
        let mut value = self.gv.to_be_bytes().to_vec();
        value.extend_from_slice(&self.lv.to_be_bytes());
        self.persist(Write::Put {
            key: VIEWS_KEY.to_vec(),
            value,
        });
    }

    /// Writes the binding of `seq` this server would report in a global view change.
    pub(crate) fn persist_cert(&mut self, cert: &PrepareCert) {
        let seq = cert.pre_prepare.seq;
        self.persist(Write::Put {
            key: slot_key(CERT_PREFIX, seq),
            value: cert.encode(),
        });
    }

    /// Writes the latest Proposal held for its slot.
    pub(crate) fn persist_proposal(&mut self, p: &Arc<Proposal>) {
        self.persist(Write::Put {
            key: slot_key(PROPOSAL_PREFIX, p.seq),
            value: Message::Proposal(p.clone()).encode(),
        });
    }

    /// Writes the latest checkpoint and forgets every vote and binding at or below it: those
    /// slots are executed, and a server ignores every message for them.
    pub(crate) fn persist_checkpoint(&mut self) {
        let Some(c) = &self.checkpoint else { return };
        let seq = c.seq;
        let mut value = seq.to_be_bytes().to_vec();
        value.extend_from_slice(&c.digest);
        value.extend_from_slice(&c.state);
        self.persist(Write::Put {
            key: CHECKPOINT_KEY.to_vec(),
            value,
        });
        for w in prune_slots_through(&mut self.ledger, &[CERT_PREFIX, PROPOSAL_PREFIX], seq) {
            self.persist(w);
        }
    }

    /// Restores a restarted server from what it persisted (before it starts).
    pub(crate) fn restore(&mut self, store: &Store) {
        let rec = Recovered::read(store);
        self.ledger = VoteLedger::recover(store);
        if let Some((gv, lv)) = rec.views {
            self.gv = gv;
            self.lv = lv;
            let own = self.site().index();
            self.lv_of[own] = lv;
            self.persisted_views = (gv, lv);
            // The leader site's constraint of this local view is not persisted: order nothing
            // until the site installs a new local view (see the module comment).
            self.locally_constrained = !self.in_leader_site();
        }
        if let Some((seq, digest, state)) = rec.checkpoint {
            self.install_checkpoint(seq, digest, state);
        }
        let gv = self.gv;
        for cert in rec.certs {
            if cert.pre_prepare.seq > self.global_aru && cert.pre_prepare.gv <= gv {
                let seq = cert.pre_prepare.seq;
                self.global.entry(seq).or_default().cert = Some(cert);
            }
        }
        for p in rec.proposals {
            if p.seq > self.global_aru && p.gv <= gv {
                self.apply_proposal(&p);
            }
        }
        // A representative must not pre-prepare again where it already did in this view.
        let highest = self.ledger.highest_seq(kind::PRE_PREPARE);
        self.global_seq = self.global_seq.max(highest + 1);
        self.stats.recovered_entries = store.len() as u64;
    }
}

#[cfg(test)]
mod tests {
    //! The crash-restart amnesia attack (#12 item 9): a Byzantine representative sends a
    //! correct server one batch, the server votes, crashes and restarts, and the representative
    //! then offers a different batch for the same slot and views. A server that forgot its vote
    //! would vote again, and with f Byzantine servers that makes two Proposals for one
    //! (gv, lv, seq). The restarted server must refuse.

    use std::sync::Arc;
    use std::time::Duration;

    use bft_core::durable::Store;
    use bft_core::{Node, NodeExt};
    use steward_config::{ServerId, SiteId};

    use crate::crypto::{Crypto, FastCrypto, FastIdentity, FastWorld};
    use crate::msg::{Message, Op, PrePrepare, Proposal, SigKind, Update};
    use crate::replica::{Action, Dest, Replica, ReplicaConfig};

    const T: Duration = Duration::from_secs(1);

    fn world() -> Arc<FastWorld> {
        FastWorld::new(7, 64, 307, 128, vec![3; 3])
    }

    fn crypto(id: FastIdentity) -> Crypto {
        Crypto::new(Box::new(FastCrypto::new(world(), id)))
    }

    fn replica(id: ServerId) -> Replica {
        Replica::new(
            ReplicaConfig::new(id, vec![4; 3], vec![1; 3]),
            crypto(FastIdentity::Server(id)),
        )
    }

    fn update(client: u32, value: &[u8]) -> Arc<Update> {
        let mut u = Update {
            client,
            ts: 1,
            op: Op::Put {
                key: b"k".to_vec(),
                value: value.to_vec(),
            },
            sig: Vec::new(),
            memo: Default::default(),
        };
        u.sig = crypto(FastIdentity::Client(client)).sign(&u.signing_bytes());
        Arc::new(u)
    }

    /// The representative of site 0 (s0.0) signs a Pre-Prepare of `batch` for (0, 0, 1).
    fn pre_prepare(batch: Vec<Arc<Update>>) -> Message {
        let rep = ServerId::new(SiteId(0), 0);
        let mut pp = PrePrepare {
            server: 0,
            gv: 0,
            lv: 0,
            seq: 1,
            batch,
            sig: Vec::new(),
        };
        pp.sig = crypto(FastIdentity::Server(rep))
            .sign(&Message::PrePrepare(Arc::new(pp.clone())).signing_bytes());
        Message::PrePrepare(Arc::new(pp))
    }

    /// Site 0's threshold-signed Proposal of `batch` for (gv 0, lv 0, seq 1).
    fn proposal(batch: Vec<Arc<Update>>) -> Message {
        let mut p = Proposal {
            site: 0,
            gv: 0,
            lv: 0,
            seq: 1,
            batch,
            tsig: Vec::new(),
        };
        let content = p.signing_bytes();
        let shares: Vec<(u32, Vec<u8>)> = (0..3)
            .map(|i| {
                let id = ServerId::new(SiteId(0), i);
                (i, crypto(FastIdentity::Server(id)).share(&content))
            })
            .collect();
        let refs: Vec<(u32, &[u8])> = shares.iter().map(|(i, s)| (*i, &s[..])).collect();
        p.tsig = crypto(FastIdentity::Server(ServerId::new(SiteId(1), 0)))
            .combine(SiteId(0), &content, &refs)
            .signature
            .expect("three valid shares combine");
        Message::Proposal(Arc::new(p))
    }

    fn deliver(r: &mut Replica, from: ServerId, msg: &Message) -> Vec<Action> {
        let mut out = r.handle(T, Dest::Server(from), msg);
        bft_core::deliver_self_sends(r, T, &mut out);
        out
    }

    fn persisted(out: &[Action], store: &mut Store) {
        for a in out {
            if let Action::Persist(w) = a {
                w.apply(store);
            }
        }
    }

    fn sent_kinds(out: &[Action]) -> Vec<&'static str> {
        out.iter()
            .filter_map(|a| match a {
                Action::Send { env, .. } => Some(env.msg.kind()),
                _ => None,
            })
            .collect()
    }

    fn shares_sent(out: &[Action], kind: SigKind) -> usize {
        out.iter()
            .filter(|a| {
                matches!(a, Action::Send { env, .. }
                    if matches!(&env.msg, Message::PartialSig(p) if p.kind == kind))
            })
            .count()
    }

    #[test]
    fn a_restarted_server_never_prepares_a_second_batch_for_a_slot() {
        let me = ServerId::new(SiteId(0), 2);
        let rep = ServerId::new(SiteId(0), 0);
        let mut store = Store::new();
        let mut before = replica(me);
        persisted(&before.started(Duration::ZERO), &mut store);
        let out = deliver(&mut before, rep, &pre_prepare(vec![update(1, b"a")]));
        assert!(sent_kinds(&out).contains(&"prepare"), "votes for batch A");
        persisted(&out, &mut store);

        // What the attack relies on: a server that forgot its vote prepares batch B too.
        let mut amnesiac = replica(me);
        amnesiac.started(T);
        let out = deliver(&mut amnesiac, rep, &pre_prepare(vec![update(2, b"b")]));
        assert!(sent_kinds(&out).contains(&"prepare"));

        let mut restarted = replica(me);
        restarted.recover(&store);
        restarted.started(T);
        let out = deliver(&mut restarted, rep, &pre_prepare(vec![update(2, b"b")]));
        assert!(
            !sent_kinds(&out).contains(&"prepare"),
            "restarted server prepared a second batch: {:?}",
            sent_kinds(&out)
        );
        assert!(restarted.stats().recovered_entries > 0);
    }

    #[test]
    fn the_vote_ledger_alone_refuses_a_second_accept() {
        let me = ServerId::new(SiteId(1), 1);
        let leader_rep = ServerId::new(SiteId(0), 0);
        let mut store = Store::new();
        let mut before = replica(me);
        before.started(Duration::ZERO);
        let out = deliver(&mut before, leader_rep, &proposal(vec![update(1, b"a")]));
        assert_eq!(shares_sent(&out, SigKind::Accept), 1, "accepts batch A");
        persisted(&out, &mut store);
        assert!(
            store.keys().any(|k| k[0] == b'p'),
            "the Proposal is persisted before the share"
        );

        // Without the persisted Proposal, only the ledger stands between the restarted server
        // and a second Accept share for (gv 0, seq 1).
        store.retain(|k, _| k[0] != b'p');
        let mut restarted = replica(me);
        restarted.recover(&store);
        restarted.started(T);
        let out = deliver(&mut restarted, leader_rep, &proposal(vec![update(2, b"b")]));
        assert_eq!(shares_sent(&out, SigKind::Accept), 0);
        assert_eq!(restarted.stats().votes_refused, 1);

        // A server that forgot everything shares again: the attack.
        let mut amnesiac = replica(me);
        amnesiac.started(T);
        let out = deliver(&mut amnesiac, leader_rep, &proposal(vec![update(2, b"b")]));
        assert_eq!(shares_sent(&out, SigKind::Accept), 1);
    }

    #[test]
    fn views_and_bindings_survive_a_restart() {
        let me = ServerId::new(SiteId(1), 1);
        let mut store = Store::new();
        let mut before = replica(me);
        before.started(Duration::ZERO);
        let out = deliver(
            &mut before,
            ServerId::new(SiteId(0), 0),
            &proposal(vec![update(1, b"a")]),
        );
        persisted(&out, &mut store);
        before.gv = 3;
        before.lv = 2;
        before.persist_views();
        persisted(&std::mem::take(&mut before.out), &mut store);

        let mut restarted = replica(me);
        restarted.recover(&store);
        assert_eq!((restarted.global_view(), restarted.local_view()), (3, 2));
        assert!(restarted
            .global
            .get(&1)
            .is_some_and(|g| g.proposal.is_some()));
    }
}
