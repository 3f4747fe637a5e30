//! Steward's messages (TDSC Fig. A-1 and the view changes) and their versioned binary encoding.
//!
//! Every message is encoded as `version (u8) | type (u8) | body`. Signed messages sign the
//! encoding of everything but the signature ([`Message::signing_bytes`]); threshold-signed ones
//! (Proposal, Accept, ...) sign their content with the site key (their `signing_bytes`).
//!
//! One module per sub-protocol holds its message structs and their body codecs:
//!
//! * [`normal`]: ASSIGN-SEQUENCE and ASSIGN-GLOBAL-ORDER (Pre-Prepare, Prepare, Proposal, Accept,
//!   order proofs).
//! * [`threshold`]: THRESHOLD-SIGN (partial signatures, proof requests, blame).
//! * [`client`]: replies and read-only queries (updates live in `bft_core::request`).
//! * [`local_view`]: LOCAL-VIEW-CHANGE and CONSTRUCT-LOCAL-CONSTRAINT.
//! * [`global_view`]: GLOBAL-LEADER-ELECTION, CONSTRUCT-ARU and CONSTRUCT-GLOBAL-CONSTRAINT.
//! * [`recon`]: reconciliation and state transfer.
//!
//! This module keeps [`Message`], whose variants, wire tags and names are declared once in the
//! `messages!` table below; everything is re-exported here (`crate::msg::X`).

use std::sync::Arc;

use crate::codec::{decode_message, DecodeError, Reader, Writer};
pub use bft_core::request::{batch_digest, ClientId, Digest, Op, Update};

pub mod client;
pub mod global_view;
pub mod local_view;
pub mod normal;
pub mod recon;
pub mod threshold;

pub use client::{Query, QueryReply, Reply};
pub use global_view::{
    AruMessage, CollectedConstraints, GlobalCollected, GlobalConstraint, GlobalPreinstall,
    GlobalServerState, GlobalVc, RequestGlobalState,
};
pub use local_view::{
    LocalCollected, LocalPreinstall, LocalServerState, NewRep, PrepareCert, RequestLocalState,
};
pub use normal::{Accept, AcceptRelay, OrderProof, PrePrepare, Prepare, Proposal};
pub use recon::{ReconRequest, Snapshot};
pub use threshold::{CorruptedServer, PartialSig, ProofRequest, ShareRequest, SigKind};

/// Initial buffer of an encoding: most messages (votes, shares, replies, one-update batches)
/// fit.
const ENCODE_CAPACITY: usize = 512;

/// Wire format version.
pub const WIRE_VERSION: u8 = 1;

/// The codec of a message body: what follows `version | type` on the wire. Each sub-protocol
/// module implements it for its message structs.
trait Body: Sized {
    /// Encode the body; without `with_sig` the sender's own signature is left out (the bytes it
    /// signs). Threshold signatures and signatures of embedded messages are always encoded.
    fn put_body(&self, w: &mut Writer, with_sig: bool);
    /// Decode a body (the caller checks for trailing bytes).
    fn get_body(r: &mut Reader) -> Result<Self, DecodeError>;
}

/// Declares [`Message`] from one table: `tag => Variant(Body type), "kind"`. The tag is the wire
/// type byte; it is written only here and used by both [`Message::encode`] and
/// [`Message::decode`] (a repeated tag is an unreachable-pattern error).
macro_rules! messages {
    ($(
        $(#[$meta:meta])*
        $tag:literal => $variant:ident($body:ty), $kind:literal;
    )*) => {
        /// Every Steward message.
        #[derive(Clone, Debug, PartialEq, Eq)]
        pub enum Message {
            $(
                $(#[$meta])*
                $variant(Arc<$body>),
            )*
        }

        impl Message {
            /// Every (tag, kind) of the table, in table order.
            #[cfg(test)]
            pub(crate) const TAGS: &'static [(u8, &'static str)] = &[$(($tag, $kind)),*];

            /// The wire type byte.
            fn tag(&self) -> u8 {
                match self {
                    $(Message::$variant(_) => $tag,)*
                }
            }

            /// Short name for logs and counters.
            pub fn kind(&self) -> &'static str {
                match self {
                    $(Message::$variant(_) => $kind,)*
                }
            }

            fn put_body(&self, w: &mut Writer, with_sig: bool) {
                match self {
                    $(Message::$variant(b) => Body::put_body(&**b, w, with_sig),)*
                }
            }

            #[deny(unreachable_patterns)]
            fn get_body(tag: u8, r: &mut Reader) -> Result<Message, DecodeError> {
                Ok(match tag {
                    $($tag => Message::$variant(Arc::new(<$body as Body>::get_body(r)?)),)*
                    t => return Err(DecodeError(format!("unknown message type {t}"))),
                })
            }
        }
    };
}

messages! {
    /// Client → server; server → representative; representative → leader representative.
    1 => Update(Update), "update";
    /// ASSIGN-SEQUENCE round 1.
    2 => PrePrepare(PrePrepare), "pre-prepare";
    /// ASSIGN-SEQUENCE round 2.
    3 => Prepare(Prepare), "prepare";
    /// THRESHOLD-SIGN share.
    4 => PartialSig(PartialSig), "partial-sig";
    /// THRESHOLD-SIGN blame.
    5 => Corrupted(CorruptedServer), "corrupted-server";
    /// Leader site → all sites.
    6 => Proposal(Proposal), "proposal";
    /// Non-leader site → all sites.
    7 => Accept(Accept), "accept";
    /// Server → client.
    8 => Reply(Reply), "reply";
    /// Client → its site's servers.
    9 => Query(Query), "query";
    /// Server → client.
    10 => QueryReply(QueryReply), "query-reply";
    /// Server → servers: what it is missing.
    11 => ReconRequest(ReconRequest), "recon-request";
    /// Server → server: a Globally_Ordered_Update.
    12 => Ordered(OrderProof), "ordered";
    /// LOCAL-VIEW-CHANGE vote.
    13 => NewRep(NewRep), "new-rep";
    /// LOCAL-VIEW-CHANGE proof (to the site and, reliably, to every site).
    14 => LocalPreinstall(LocalPreinstall), "local-preinstall";
    /// CONSTRUCT-LOCAL-CONSTRAINT request.
    15 => RequestLocalState(RequestLocalState), "request-local-state";
    /// CONSTRUCT-LOCAL-CONSTRAINT answer.
    16 => LocalServerState(LocalServerState), "local-server-state";
    /// CONSTRUCT-LOCAL-CONSTRAINT bundle.
    17 => LocalCollected(LocalCollected), "local-collected";
    /// GLOBAL-LEADER-ELECTION vote.
    18 => GlobalVc(GlobalVc), "global-vc";
    /// GLOBAL-LEADER-ELECTION proof.
    19 => GlobalPreinstall(GlobalPreinstall), "global-preinstall";
    /// CONSTRUCT-ARU result, leader site → all sites.
    20 => Aru(AruMessage), "aru";
    /// CONSTRUCT-ARU / -GLOBAL-CONSTRAINT request.
    21 => RequestGlobalState(RequestGlobalState), "request-global-state";
    /// CONSTRUCT-ARU / -GLOBAL-CONSTRAINT answer.
    22 => GlobalServerState(GlobalServerState), "global-server-state";
    /// CONSTRUCT-GLOBAL-CONSTRAINT bundle.
    23 => GlobalCollected(GlobalCollected), "global-collected";
    /// A site's Global_Constraint.
    24 => GlobalConstraint(GlobalConstraint), "global-constraint";
    /// Collected_Global_Constraints at the leader site.
    25 => CollectedConstraints(CollectedConstraints), "collected-constraints";
    /// State transfer for a server too far behind for order proofs.
    26 => Snapshot(Snapshot), "snapshot";
    /// THRESHOLD-SIGN: a share's proof, asked for after a failed combine.
    27 => ProofRequest(ProofRequest), "proof-request";
    /// Designated signers: an excused signer's share, asked for by its representative.
    28 => ShareRequest(ShareRequest), "share-request";
    /// A representative → its site: other sites' Accepts of a slot, together.
    29 => AcceptRelay(AcceptRelay), "accept-relay";
}

impl Message {
    /// Encode with `sig` fields included (`with_sig`) or excluded (for signing).
    fn put(&self, w: &mut Writer, with_sig: bool) {
        w.u8(WIRE_VERSION).u8(self.tag());
        self.put_body(w, with_sig);
    }

    /// The full wire encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(ENCODE_CAPACITY);
        self.put(&mut w, true);
        w.buf
    }

    /// The bytes a server signs: the encoding without the signature field.
    pub fn signing_bytes(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(ENCODE_CAPACITY);
        self.put(&mut w, false);
        w.buf
    }

    /// Decode a full wire encoding. Never panics; rejects unknown versions, tags, oversize
    /// lengths and trailing bytes.
    pub fn decode(bytes: &[u8]) -> Result<Message, DecodeError> {
        decode_message(bytes, WIRE_VERSION, Message::get_body)
    }
}

bft_core::wire_message!(
    /// A Steward message with its encoding made once.
    Message
);

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use steward_config::{ServerId, SiteId};

    pub(crate) fn sample_update(ts: u64) -> Arc<Update> {
        bft_harness::testing::sample_put(7, ts)
    }

    /// A Prepare certificate for `seq` in views (0, 0): the representative's Pre-Prepare of the
    /// update with timestamp `ts` and a Prepare from `server` of digest `[digest; 32]`, signed
    /// `[sigs.0; 64]` and `[sigs.1; 64]`.
    fn sample_cert(seq: u64, ts: u64, server: u32, digest: u8, sigs: (u8, u8)) -> PrepareCert {
        PrepareCert {
            pre_prepare: Arc::new(PrePrepare {
                server: 0,
                gv: 0,
                lv: 0,
                seq,
                batch: vec![sample_update(ts)],
                sig: vec![sigs.0; 64],
            }),
            prepares: vec![Arc::new(Prepare {
                server,
                gv: 0,
                lv: 0,
                seq,
                digest: [digest; 32],
                sig: vec![sigs.1; 64],
            })],
        }
    }

    /// One sample of every message kind (also used by the replica's robustness tests).
    pub(crate) fn samples() -> Vec<Message> {
        let batch = vec![sample_update(1), sample_update(2)];
        let proposal = Arc::new(Proposal {
            site: 0,
            gv: 1,
            lv: 2,
            seq: 3,
            batch: batch.clone(),
            tsig: vec![5; 128],
        });
        let accept = Arc::new(Accept {
            site: 1,
            gv: 1,
            lv: 0,
            seq: 3,
            digest: [3; 32],
            tsig: vec![6; 128],
        });
        let partial = PartialSig {
            server: 2,
            kind: SigKind::Accept,
            gv: 1,
            lv: 0,
            seq: 3,
            content: [8; 32],
            share: vec![4; 307],
            sig: vec![2; 64],
        };
        vec![
            Message::Update(sample_update(1)),
            Message::PrePrepare(Arc::new(PrePrepare {
                server: 0,
                gv: 1,
                lv: 2,
                seq: 3,
                batch,
                sig: vec![1; 64],
            })),
            Message::Prepare(Arc::new(Prepare {
                server: 1,
                gv: 1,
                lv: 2,
                seq: 3,
                digest: [2; 32],
                sig: vec![1; 64],
            })),
            Message::PartialSig(Arc::new(partial.clone())),
            Message::ProofRequest(Arc::new(ProofRequest {
                kind: SigKind::Proposal,
                seq: 9,
                content: [7; 32],
            })),
            Message::Corrupted(Arc::new(CorruptedServer {
                server: 3,
                partial,
                sig: vec![1; 64],
            })),
            Message::Proposal(proposal.clone()),
            Message::Accept(accept.clone()),
            Message::Reply(Arc::new(Reply {
                server: ServerId::new(SiteId(0), 1),
                client: 7,
                ts: 1,
                proof: Some(OrderProof {
                    proposal,
                    accepts: vec![accept.clone(), accept],
                }),
                result: b"ok".to_vec(),
                sig: vec![1; 64],
            })),
            Message::Reply(Arc::new(Reply {
                server: ServerId::new(SiteId(0), 2),
                client: 7,
                ts: 2,
                proof: None,
                result: b"ok".to_vec(),
                sig: vec![1; 64],
            })),
            Message::Query(Arc::new(Query {
                client: 7,
                ts: 9,
                key: b"k".to_vec(),
                sig: vec![1; 64],
            })),
            Message::QueryReply(Arc::new(QueryReply {
                server: ServerId::new(SiteId(1), 0),
                client: 7,
                ts: 9,
                result: vec![1, 2, 3],
                sig: vec![1; 64],
            })),
            Message::ReconRequest(Arc::new(ReconRequest { aru: 17, gv: 3 })),
            Message::NewRep(Arc::new(NewRep {
                server: 1,
                lv: 2,
                sig: vec![3; 64],
            })),
            Message::LocalPreinstall(Arc::new(LocalPreinstall {
                site: 1,
                lv: 2,
                votes: vec![NewRep {
                    server: 1,
                    lv: 2,
                    sig: vec![3; 64],
                }],
            })),
            Message::RequestLocalState(Arc::new(RequestLocalState {
                gv: 0,
                lv: 1,
                aru: 9,
            })),
            Message::LocalCollected(Arc::new(LocalCollected {
                gv: 0,
                lv: 1,
                aru: 9,
                states: vec![Arc::new(LocalServerState {
                    server: 2,
                    gv: 0,
                    lv: 1,
                    aru: 9,
                    proposals: vec![],
                    certs: vec![sample_cert(10, 3, 1, 2, (1, 1))],
                    sig: vec![4; 64],
                })],
            })),
            Message::Ordered(Arc::new(OrderProof {
                proposal: Arc::new(Proposal {
                    site: 0,
                    gv: 1,
                    lv: 2,
                    seq: 3,
                    batch: vec![sample_update(5)],
                    tsig: vec![5; 128],
                }),
                accepts: vec![],
            })),
            Message::GlobalPreinstall(Arc::new(GlobalPreinstall {
                gv: 3,
                votes: vec![GlobalVc {
                    site: 1,
                    gv: 3,
                    tsig: vec![1; 128],
                }],
            })),
            Message::Aru(Arc::new(AruMessage {
                site: 1,
                gv: 1,
                aru: 7,
                tsig: vec![2; 128],
            })),
            Message::CollectedConstraints(Arc::new(CollectedConstraints {
                gv: 1,
                aru: 7,
                constraints: vec![Arc::new(GlobalConstraint {
                    site: 2,
                    gv: 1,
                    aru: 7,
                    ordered: vec![],
                    proposals: vec![Arc::new(Proposal {
                        site: 0,
                        gv: 0,
                        lv: 0,
                        seq: 8,
                        batch: vec![sample_update(4)],
                        tsig: vec![5; 128],
                    })],
                    certs: vec![],
                    tsig: vec![6; 128],
                })],
            })),
            Message::GlobalCollected(Arc::new(GlobalCollected {
                gv: 1,
                aru: 7,
                states: vec![Arc::new(GlobalServerState {
                    server: 1,
                    gv: 1,
                    aru: 7,
                    ordered: vec![],
                    proposals: vec![],
                    certs: vec![sample_cert(9, 6, 2, 3, (7, 8))],
                    sig: vec![3; 64],
                })],
            })),
        ]
    }

    bft_harness::wire_codec_tests!(Message, samples(), WIRE_VERSION, 600);

    #[test]
    fn signing_bytes_exclude_the_signature() {
        for m in samples() {
            assert!(m.signing_bytes().len() <= m.encode().len());
        }
        let a = sample_update(1);
        let mut b = (*a).clone();
        b.sig = vec![0; 64];
        assert_eq!(a.digest(), b.digest());
    }

    #[test]
    fn tags_are_one_to_29_and_kinds_distinct() {
        let tags: Vec<u8> = Message::TAGS.iter().map(|&(t, _)| t).collect();
        assert_eq!(tags, (1..=29).collect::<Vec<u8>>());
        let kinds: std::collections::BTreeSet<&str> =
            Message::TAGS.iter().map(|&(_, k)| k).collect();
        assert_eq!(kinds.len(), Message::TAGS.len());
        for m in samples() {
            let bytes = m.encode();
            let entry = Message::TAGS.iter().find(|&&(_, k)| k == m.kind());
            assert_eq!(entry.map(|&(t, _)| t), Some(bytes[1]), "{}", m.kind());
        }
    }

    #[test]
    fn huge_lengths_do_not_allocate() {
        // An Update claiming a 4 GiB key.
        let mut bytes = vec![WIRE_VERSION, 1];
        bytes.extend(7u32.to_be_bytes());
        bytes.extend(1u64.to_be_bytes());
        bytes.push(1);
        bytes.extend(u32::MAX.to_be_bytes());
        assert!(Message::decode(&bytes).is_err());
    }
}

#[cfg(test)]
mod fixtures;
#[cfg(test)]
mod wire_compat;
