//! Any bytes from any peer never panic a replica: arbitrary bytes, mutated encodings of every
//! message kind, and well-formed messages whose numbers sit at the edges of their ranges
//! (the red team's `ReconRequest { aru: u64::MAX }` overflowed `aru + 1`).

use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;
use steward_config::{ServerId, SiteId};

use bft_core::NodeExt;

use super::{Dest, Replica, ReplicaConfig};
use crate::crypto::{Crypto, FastCrypto, FastIdentity, FastWorld};
use crate::msg::tests::samples;
use crate::msg::{Message, ReconRequest, RequestGlobalState, RequestLocalState, Snapshot};

const T: Duration = Duration::from_secs(1);

fn replica(id: ServerId) -> Replica {
    let world = FastWorld::new(7, 64, 307, 128, vec![3; 3]);
    let crypto = Crypto::new(Box::new(FastCrypto::new(world, FastIdentity::Server(id))));
    let mut r = Replica::new(ReplicaConfig::new(id, vec![4; 3], vec![1; 3]), crypto);
    r.started(Duration::ZERO);
    r
}

fn sender(code: u32) -> Dest {
    match code % 8 {
        7 => Dest::Client(code),
        c => Dest::Server(ServerId::new(SiteId((c / 4) as u16 % 3), c % 4)),
    }
}

/// Well-formed messages with extreme numbers in the fields a receiver computes with.
fn edge_messages(x: u64) -> Vec<Message> {
    vec![
        Message::ReconRequest(Arc::new(ReconRequest { aru: x, gv: x })),
        Message::RequestLocalState(Arc::new(RequestLocalState {
            gv: 0,
            lv: 0,
            aru: x,
        })),
        Message::RequestGlobalState(Arc::new(RequestGlobalState {
            gv: 0,
            lv: 0,
            aru: x,
        })),
        Message::Snapshot(Arc::new(Snapshot {
            seq: x,
            digest: steward_crypto::sha256(b""),
            state: Vec::new(),
        })),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bytes_never_panic(
        bytes in proptest::collection::vec(any::<u8>(), 0..600),
        from in any::<u32>(),
    ) {
        let mut r = replica(ServerId::new(SiteId(0), 1));
        bft_core::deliver_bytes(&mut r, T, sender(from), &bytes, &mut Vec::new());
        r.fire(T * 10, 1);
    }

    #[test]
    fn mutated_messages_never_panic(
        idx in any::<usize>(),
        pos in any::<usize>(),
        val in any::<u8>(),
        from in any::<u32>(),
    ) {
        let msgs = samples();
        let mut bytes = msgs[idx % msgs.len()].encode();
        let p = pos % bytes.len();
        bytes[p] = val;
        for id in [ServerId::new(SiteId(0), 0), ServerId::new(SiteId(1), 1)] {
            let mut r = replica(id);
            bft_core::deliver_bytes(&mut r, T, sender(from), &bytes, &mut Vec::new());
            r.fire(T * 10, 1);
        }
    }

    #[test]
    fn edge_values_never_panic(
        x in prop_oneof![Just(u64::MAX), Just(u64::MAX - 1), Just(0u64), any::<u64>()],
        from in any::<u32>(),
    ) {
        for id in [ServerId::new(SiteId(0), 0), ServerId::new(SiteId(0), 1)] {
            let mut r = replica(id);
            for m in edge_messages(x) {
                r.handle(T, sender(from), &m);
                // The own representative (server 0) sends the requests that need one.
                r.handle(T, Dest::Server(ServerId::new(SiteId(0), 0)), &m);
            }
            r.fire(T * 10, 1);
        }
    }
}

/// The red team's crafted request, exactly: it used to overflow `aru + 1` in recon.rs.
#[test]
fn recon_request_at_u64_max_is_dropped_quietly() {
    let mut r = replica(ServerId::new(SiteId(0), 1));
    let req = Message::ReconRequest(Arc::new(ReconRequest {
        aru: u64::MAX,
        gv: 0,
    }));
    let out = r.handle(T, Dest::Server(ServerId::new(SiteId(1), 2)), &req);
    assert!(out.is_empty());
}

/// Attack 7: junk Snapshot votes from one Byzantine server used to evict the votes of correct
/// servers (more than 64 pending votes cleared them all), blocking state transfer.
#[test]
fn junk_snapshot_votes_do_not_block_state_transfer() {
    let mut w = crate::codec::Writer::default();
    w.u64(64);
    crate::kv::KvStore::default().encode_into(&mut w);
    w.u32(0);
    let state = w.buf;
    let digest = steward_crypto::sha256(&state);
    let genuine = |with_state: bool| {
        Message::Snapshot(Arc::new(Snapshot {
            seq: 64,
            digest,
            state: if with_state {
                state.clone()
            } else {
                Vec::new()
            },
        }))
    };
    let mut r = replica(ServerId::new(SiteId(0), 1));
    let site1 = |i| Dest::Server(ServerId::new(SiteId(1), i));
    r.handle(T, site1(0), &genuine(true));
    for k in 0..500u64 {
        let junk = Message::Snapshot(Arc::new(Snapshot {
            seq: 100 + k,
            digest: steward_crypto::sha256(&k.to_le_bytes()),
            state: Vec::new(),
        }));
        r.handle(T, site1(3), &junk);
    }
    assert!(r.snapshot_votes.len() <= 12, "votes are bounded per server");
    r.handle(T, site1(1), &genuine(false));
    assert_eq!(r.global_aru(), 64, "f+1 genuine votes install the snapshot");
    assert_eq!(r.stats().state_transfers, 1);
}

/// A peer that is no Steward node (a PBFT replica name) gets nothing through the `Node`
/// interface both drivers use: no output, no state change, for every message kind.
#[test]
fn other_protocols_nodes_are_ignored() {
    use bft_core::{Node, NodeId};
    for id in [ServerId::new(SiteId(0), 0), ServerId::new(SiteId(1), 1)] {
        let mut r = replica(id);
        let before = r.stats().clone();
        for m in samples() {
            let mut out = Vec::new();
            Node::on_message(&mut r, T, NodeId::Replica(0), &m, &mut out);
            assert!(
                out.is_empty(),
                "{id}: {} from a flat replica had effects",
                m.kind()
            );
        }
        assert_eq!(r.stats(), &before, "{id}: state moved");
        assert_eq!(r.global_aru(), 0);
    }
}
