//! Unit tests of the replica core, driven by hand (no simulator).

use std::sync::Arc;
use std::time::Duration;

use bft_core::crypto::{Crypto, FastCrypto, FastIdentity, FastWorld};
use bft_core::request::{batch_digest, Op, Update};
use proptest::prelude::*;
use steward_config::{ServerId, SiteId};

use bft_core::NodeExt;

use super::*;
use crate::msg::{
    Checkpoint, Commit, CommitProof, Message, PrePrepare, Prepare, Snapshot, StateTransfer, Status,
    ViewChange,
};

const T: Duration = Duration::from_millis(10);

fn world() -> Arc<FastWorld> {
    FastWorld::new(7, 64, 0, 0, Vec::new())
}

fn sites() -> Vec<SiteId> {
    vec![SiteId(0), SiteId(1), SiteId(2), SiteId(3)]
}

fn replica(w: &Arc<FastWorld>, id: u32) -> Replica {
    let mut cfg = ReplicaConfig::new(id, sites(), 1, 0);
    cfg.checkpoint_interval = 4;
    cfg.log_size = 8;
    let crypto = Crypto::new(Box::new(FastCrypto::new(
        w.clone(),
        FastIdentity::Server(ServerId::new(SiteId(id as u16), id)),
    )));
    Replica::new(cfg, crypto)
}

fn signer(w: &Arc<FastWorld>, id: u32) -> Crypto {
    Crypto::new(Box::new(FastCrypto::new(
        w.clone(),
        FastIdentity::Server(ServerId::new(SiteId(id as u16), id)),
    )))
}

fn request(w: &Arc<FastWorld>, client: u32, ts: u64) -> Arc<Update> {
    let mut c = Crypto::new(Box::new(FastCrypto::new(
        w.clone(),
        FastIdentity::Client(client),
    )));
    let mut u = Update {
        client,
        ts,
        op: Op::Put {
            key: b"k".to_vec(),
            value: vec![ts as u8; 8],
        },
        sig: Vec::new(),
        memo: Default::default(),
    };
    u.sig = c.sign(&u.signing_bytes());
    Arc::new(u)
}

fn sends(actions: &[Action]) -> Vec<(Dest, &'static str)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send { to, env } => Some((*to, env.msg.kind())),
            _ => None,
        })
        .collect()
}

fn signed_pp(w: &Arc<FastWorld>, view: u64, seq: u64, batch: Vec<Arc<Update>>) -> Arc<PrePrepare> {
    let mut pp = PrePrepare {
        view,
        seq,
        digest: batch_digest(&batch),
        replica: (view % 4) as u32,
        batch,
        sig: Vec::new(),
    };
    pp.sig = signer(w, pp.replica).sign(&pp.signing_bytes());
    Arc::new(pp)
}

#[test]
fn quorums_and_primary_rotation() {
    let w = world();
    let r = replica(&w, 1);
    assert_eq!(r.quorum(), 3);
    assert_eq!(r.primary_of(0), 0);
    assert_eq!(r.primary_of(5), 1);
    assert_eq!(r.primary_of(u64::MAX), (u64::MAX % 4) as u32);
    let mut cfg = ReplicaConfig::new(0, vec![SiteId(0); 16], 5, 3);
    cfg.batch = 1;
    let big = Replica::new(cfg, signer(&w, 0));
    assert_eq!(big.quorum(), 11);
    assert_eq!(big.primary_of(14), 1);
    // n > 3f + 1: quorums still intersect in f + 1.
    let five = Replica::new(
        ReplicaConfig::new(0, vec![SiteId(0); 5], 1, 0),
        signer(&w, 0),
    );
    assert_eq!(five.quorum(), 4);
}

#[test]
fn primary_orders_a_request_and_backups_prepare() {
    let w = world();
    let mut p = replica(&w, 0);
    let u = request(&w, 9, 1);
    let out = p.handle(T, Dest::Client(9), &Message::Request(u.clone()));
    let s = sends(&out);
    assert_eq!(s.len(), 3, "{s:?}");
    assert!(s.iter().all(|(_, k)| *k == "pre-prepare"));
    // The first send (the Pre-Prepare's vote is persisted in the same step).
    let Some(env) = out.iter().find_map(|a| match a {
        Action::Send { env, .. } => Some(env),
        _ => None,
    }) else {
        panic!()
    };
    let mut b = replica(&w, 1);
    let out = b.handle(T, Dest::Replica(0), &env.msg);
    assert_eq!(
        sends(&out).iter().filter(|(_, k)| *k == "prepare").count(),
        3
    );
    // The same Pre-Prepare again is a harmless duplicate; a conflicting one is dropped.
    b.handle(T, Dest::Replica(0), &env.msg);
    assert_eq!(b.stats().dropped_invalid, 0);
    let other = signed_pp(&w, 0, 1, vec![request(&w, 9, 2)]);
    b.handle(T, Dest::Replica(0), &Message::PrePrepare(other));
    assert_eq!(b.stats().dropped_invalid, 1);
}

#[test]
fn forged_and_misdirected_messages_are_dropped() {
    let w = world();
    let mut b = replica(&w, 1);
    let mut pp = (*signed_pp(&w, 0, 1, vec![request(&w, 3, 1)])).clone();
    pp.sig[0] ^= 1;
    b.handle(
        T,
        Dest::Replica(0),
        &Message::PrePrepare(Arc::new(pp.clone())),
    );
    // Signed by a replica that is not the primary (forwarding the primary's is fine).
    let good = signed_pp(&w, 0, 1, vec![request(&w, 3, 1)]);
    let mut fake = (*good).clone();
    fake.replica = 2;
    fake.sig = signer(&w, 2).sign(&fake.signing_bytes());
    b.handle(T, Dest::Replica(2), &Message::PrePrepare(Arc::new(fake)));
    // A request whose client signature is wrong.
    let mut bad = (*request(&w, 3, 2)).clone();
    bad.ts = 5;
    b.handle(T, Dest::Client(3), &Message::Request(Arc::new(bad)));
    // A client claiming to be another client.
    b.handle(T, Dest::Client(4), &Message::Request(request(&w, 3, 1)));
    // Outside the water marks (log size 8).
    let far = signed_pp(&w, 0, 9, vec![request(&w, 3, 1)]);
    b.handle(T, Dest::Replica(0), &Message::PrePrepare(far));
    // A Prepare signed by someone else.
    let mut p = Prepare {
        view: 0,
        seq: 1,
        digest: good.digest,
        replica: 2,
        sig: Vec::new(),
    };
    p.sig = signer(&w, 3).sign(&p.signing_bytes());
    b.handle(T, Dest::Replica(2), &Message::Prepare(Arc::new(p)));
    // A State whose snapshot does not match its (empty) certificate.
    let st = StateTransfer {
        seq: 4,
        snapshot: Snapshot::default(),
        proof: Vec::new(),
    };
    b.handle(T, Dest::Replica(2), &Message::State(Arc::new(st)));
    assert_eq!(b.stats().dropped_invalid, 7);
    assert_eq!(b.last_executed(), 0);
}

#[test]
fn a_view_change_without_a_valid_certificate_is_rejected() {
    let w = world();
    let mut b = replica(&w, 1);
    let cp = |i: u32| {
        let mut c = Checkpoint {
            seq: 4,
            state: [1; 32],
            replica: i,
            sig: Vec::new(),
        };
        c.sig = signer(&w, i).sign(&c.signing_bytes());
        Arc::new(c)
    };
    let mut vc = ViewChange {
        view: 1,
        replica: 2,
        stable: 4,
        stable_proof: vec![cp(0), cp(2)], // one short of a quorum
        prepared: Vec::new(),
        sig: Vec::new(),
    };
    vc.sig = signer(&w, 2).sign(&vc.signing_bytes());
    b.handle(
        T,
        Dest::Replica(2),
        &Message::ViewChange(Arc::new(vc.clone())),
    );
    assert_eq!(b.stats().dropped_invalid, 1);
    vc.stable_proof.push(cp(3));
    vc.sig = signer(&w, 2).sign(&vc.signing_bytes());
    b.handle(T, Dest::Replica(2), &Message::ViewChange(Arc::new(vc)));
    assert_eq!(b.stats().dropped_invalid, 1, "a valid View-Change is kept");
    assert_eq!(b.footprint().view_changes, 1);
}

/// Messages of a short run of four replicas, to mutate.
fn traffic() -> Vec<(u32, Message)> {
    let w = world();
    let mut rs: Vec<Replica> = (0..4).map(|i| replica(&w, i)).collect();
    let mut queue: std::collections::VecDeque<(u32, Dest, Message)> = Default::default();
    for c in 1..=6 {
        queue.push_back((0, Dest::Client(c), Message::Request(request(&w, c, 1))));
    }
    let mut seen = Vec::new();
    while let Some((to, from, m)) = queue.pop_front() {
        if let Dest::Replica(j) = from {
            seen.push((j, m.clone()));
        }
        for a in rs[to as usize].handle(T, from, &m) {
            if let Action::Send {
                to: Dest::Replica(k),
                env,
            } = a
            {
                queue.push_back((k, Dest::Replica(to), env.msg));
            }
        }
    }
    assert!(
        rs.iter().all(|r| r.last_executed() == 6),
        "{:?}",
        rs.iter().map(|r| r.debug_state()).collect::<Vec<_>>()
    );
    assert!(rs.iter().all(|r| r.stable_checkpoint() == 4));
    seen
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Arbitrary bytes from a peer or a client never panic a replica.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400), from in 0u32..6) {
        let w = world();
        let mut r = replica(&w, 1);
        let from = if from < 4 { Dest::Replica(from) } else { Dest::Client(from) };
        bft_core::deliver_bytes(&mut r, T, from, &bytes, &mut Vec::new());
    }

    /// Valid traffic with one byte changed (so well-formed but wrong fields: huge sequence
    /// numbers and views, bad lengths, wrong senders) never panics a replica.
    #[test]
    fn mutated_traffic_never_panics(idx in any::<usize>(), pos in any::<usize>(), val in any::<u8>()) {
        let msgs = traffic();
        let (from, m) = &msgs[idx % msgs.len()];
        let mut bytes = m.encode();
        let p = pos % bytes.len();
        bytes[p] = val;
        let w = world();
        let mut r = replica(&w, 3);
        for (j, m) in msgs.iter().take(idx % msgs.len()) {
            if *j != 3 {
                r.handle(T, Dest::Replica(*j), m);
            }
        }
        bft_core::deliver_bytes(&mut r, T, Dest::Replica(*from), &bytes, &mut Vec::new());
        r.fire(T * 100, 1 << 48);
    }
}

/// Commits count toward a replica's own decision on their sender's authenticated channel,
/// unchecked; a commit certificate going to another replica carries only checked signatures.
/// A badly signed Commit found then is dropped (and replaced by another replica's when there is
/// one), and its sender's later Commits are checked on arrival.
#[test]
fn commit_certificates_for_other_replicas_carry_only_checked_signatures() {
    let w = world();
    let mut b = replica(&w, 1);
    let pp = signed_pp(&w, 0, 1, vec![request(&w, 3, 1)]);
    b.handle(T, Dest::Replica(0), &Message::PrePrepare(pp.clone()));
    let mut p = Prepare {
        view: 0,
        seq: 1,
        digest: pp.digest,
        replica: 2,
        sig: Vec::new(),
    };
    p.sig = signer(&w, 2).sign(&p.signing_bytes());
    b.handle(T, Dest::Replica(2), &Message::Prepare(Arc::new(p)));
    let commit = |from: u32, good: bool| {
        let mut c = Commit {
            view: 0,
            seq: 1,
            digest: pp.digest,
            replica: from,
            sig: Vec::new(),
        };
        c.sig = signer(&w, from).sign(&c.signing_bytes());
        if !good {
            c.sig[0] ^= 1;
        }
        Message::Commit(Arc::new(c))
    };
    let verified = b.crypto_counters().get(bft_core::crypto::CryptoOp::Verify);
    b.handle(T, Dest::Replica(0), &commit(0, true));
    b.handle(T, Dest::Replica(3), &commit(3, false));
    assert_eq!(b.last_executed(), 1, "decided on own, 0's and 3's Commits");
    assert_eq!(
        b.crypto_counters().get(bft_core::crypto::CryptoOp::Verify),
        verified,
        "no Commit signature checked to decide"
    );
    let status = Message::Status(Arc::new(Status {
        view: 0,
        active: true,
        stable: 0,
        executed: 0,
    }));
    let proofs = |out: &[Action]| -> Vec<Arc<CommitProof>> {
        out.iter()
            .filter_map(|a| match a {
                Action::Send { env, .. } => match &env.msg {
                    Message::CommitProof(p) => Some(p.clone()),
                    _ => None,
                },
                _ => None,
            })
            .collect()
    };
    // Only two good Commits (own, 0's): no certificate goes out.
    let out = b.handle(T, Dest::Replica(2), &status);
    assert!(proofs(&out).is_empty());
    assert_eq!(b.stats().bad_commit_signatures, 1);
    // 3's next bad Commit is checked on arrival and dropped; 2's good one completes a
    // certificate of three checked signatures.
    b.handle(T, Dest::Replica(3), &commit(3, false));
    b.handle(T, Dest::Replica(2), &commit(2, true));
    let later = T + Duration::from_secs(1);
    let out = b.handle(later, Dest::Replica(2), &status);
    let sent = proofs(&out);
    assert_eq!(sent.len(), 1);
    let mut checker = replica(&w, 2);
    for c in &sent[0].commits {
        assert!(checker.verify(c.replica, &c.signing_bytes(), &c.sig));
    }
    let mut from: Vec<u32> = sent[0].commits.iter().map(|c| c.replica).collect();
    from.sort_unstable();
    assert_eq!(from, vec![0, 1, 2]);
}
