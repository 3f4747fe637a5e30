//! PBFT's messages (Castro & Liskov, OSDI 1999 / TOCS 2002, the signature variant) and their
//! versioned, bounded binary encoding, built on [`bft_core::codec`].
//!
//! Every message is encoded as `version (u8) | type (u8) | body`. Protocol messages between
//! replicas carry the sender's signature over [`PrePrepare::signing_bytes`] and friends: the
//! type byte and every field but the signature (a Pre-Prepare signs its header with the batch
//! digest, so that certificates can carry it without the requests). Client updates use the
//! same format and signature as Steward ([`bft_core::request::Update`]). `Status` and `FetchState`
//! are unsigned hints: the transport authenticates their sender and they only trigger the
//! retransmission of self-verifying messages.

use std::sync::Arc;

use bft_core::codec::{decode_message, DecodeError, Reader, Writer};
pub use bft_core::request::{batch_digest, ClientId, Digest, Op, Update};
use bft_core::request::{get_batch, put_batch};
use sha2::{Digest as _, Sha256};

/// Wire format version of the PBFT messages.
pub const WIRE_VERSION: u8 = 1;

const T_REQUEST: u8 = 1;
const T_READ: u8 = 2;
const T_PRE_PREPARE: u8 = 3;
const T_PREPARE: u8 = 4;
const T_COMMIT: u8 = 5;
const T_REPLY: u8 = 6;
const T_CHECKPOINT: u8 = 7;
const T_VIEW_CHANGE: u8 = 8;
const T_NEW_VIEW: u8 = 9;
const T_STATUS: u8 = 10;
const T_COMMIT_PROOF: u8 = 11;
const T_STABLE_PROOF: u8 = 12;
const T_FETCH_STATE: u8 = 13;
const T_STATE: u8 = 14;

/// Smallest encoding of a Pre-Prepare body (empty batch and signature).
const MIN_PRE_PREPARE: usize = 8 + 8 + 32 + 4 + 4 + 4;
/// Smallest encoding of a Prepare, Commit or Checkpoint body.
const MIN_VOTE: usize = 8 + 32 + 4 + 4;

/// PRE-PREPARE(v, n, d, i) with the batch of requests whose digest is `d`. An empty batch is
/// the null request a new primary uses to fill gaps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrePrepare {
    /// View.
    pub view: u64,
    /// Sequence number.
    pub seq: u64,
    /// [`batch_digest`] of `batch`.
    pub digest: Digest,
    /// The primary that sent it.
    pub replica: u32,
    /// The requests (not covered by the signature; checked against `digest`).
    pub batch: Vec<Arc<Update>>,
    /// The primary's signature over the header.
    pub sig: Vec<u8>,
}

/// REPLY(v, t, c, i, r): the result of an ordered request, or (`read`) of a read-only one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    /// The replica's view.
    pub view: u64,
    /// The client.
    pub client: ClientId,
    /// The request's timestamp.
    pub ts: u64,
    /// The replying replica.
    pub replica: u32,
    /// True for the answer to a read-only request (not ordered).
    pub read: bool,
    /// The result.
    pub result: Vec<u8>,
    /// The replica's signature.
    pub sig: Vec<u8>,
}

/// CHECKPOINT(n, d, i): the digest of the service state after executing `seq`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    /// Sequence number (a multiple of the checkpoint interval).
    pub seq: u64,
    /// [`Snapshot::digest`] of the state.
    pub state: Digest,
    /// Sender.
    pub replica: u32,
    /// Sender's signature.
    pub sig: Vec<u8>,
}

/// A prepared certificate: a Pre-Prepare and matching Prepares from distinct backups.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PreparedCert {
    /// The Pre-Prepare (with its batch).
    pub pre_prepare: Arc<PrePrepare>,
    /// Matching Prepares.
    pub prepares: Vec<Arc<Prepare>>,
}

/// VIEW-CHANGE(v+1, n, C, P, i).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ViewChange {
    /// The view the sender moves to.
    pub view: u64,
    /// Sender.
    pub replica: u32,
    /// The sender's last stable checkpoint `n`.
    pub stable: u64,
    /// `C`: the quorum of Checkpoint messages proving `stable` (empty when it is 0).
    pub stable_proof: Vec<Arc<Checkpoint>>,
    /// `P`: for every sequence number above `stable` that prepared at the sender, the prepared
    /// certificate of the highest view.
    pub prepared: Vec<PreparedCert>,
    /// Sender's signature.
    pub sig: Vec<u8>,
}

/// NEW-VIEW(v+1, V, O): `V` as (replica, digest of its View-Change) references (the
/// View-Changes themselves were multicast), `O` as the new primary's signed Pre-Prepares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewView {
    /// The new view.
    pub view: u64,
    /// The new primary.
    pub replica: u32,
    /// The View-Changes the new view is built from.
    pub view_changes: Vec<(u32, Digest)>,
    /// `O`: Pre-Prepares for every sequence number between min-s and max-s.
    pub pre_prepares: Vec<Arc<PrePrepare>>,
    /// The new primary's signature.
    pub sig: Vec<u8>,
}

/// A replica's progress, sent when it is stuck; peers answer with what it misses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    /// The sender's view.
    pub view: u64,
    /// Whether the sender has entered that view (has its New-View).
    pub active: bool,
    /// Its last stable checkpoint.
    pub stable: u64,
    /// Its last executed sequence number.
    pub executed: u64,
}

/// A committed certificate: a Pre-Prepare and a quorum of matching Commits. Self-verifying;
/// used to bring a replica that missed messages up to date.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommitProof {
    /// The Pre-Prepare (its batch is checked against the Commits' digest).
    pub pre_prepare: Arc<PrePrepare>,
    /// A quorum of matching Commits.
    pub commits: Vec<Arc<Commit>>,
}

/// A stable checkpoint certificate: a quorum of matching Checkpoint messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StableProof {
    /// The Checkpoints.
    pub checkpoints: Vec<Arc<Checkpoint>>,
}

/// Ask for a state newer than `executed`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetchState {
    /// The asker's last executed sequence number.
    pub executed: u64,
}

/// One client's entry in the service state: its last executed timestamp and that result.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ClientRecord {
    /// The client.
    pub client: ClientId,
    /// Last executed timestamp.
    pub ts: u64,
    /// Its result (re-sent on retransmissions).
    pub result: Vec<u8>,
}

/// The service state at a checkpoint: the key-value pairs and the client table, both sorted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Key-value pairs in key order.
    pub entries: Vec<(Vec<u8>, Vec<u8>)>,
    /// Client records in client order.
    pub clients: Vec<ClientRecord>,
}

/// A stable state with its certificate, for state transfer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateTransfer {
    /// The checkpoint's sequence number.
    pub seq: u64,
    /// The state.
    pub snapshot: Snapshot,
    /// A quorum of Checkpoint messages for (`seq`, digest of `snapshot`).
    pub proof: Vec<Arc<Checkpoint>>,
}

/// Every PBFT message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// Client → primary (or all replicas on retransmission); backup → primary (forwarded).
    Request(Arc<Update>),
    /// Client → all replicas: a read-only request (`Op::Get`), answered without ordering.
    Read(Arc<Update>),
    /// Primary → backups.
    PrePrepare(Arc<PrePrepare>),
    /// Backup → all.
    Prepare(Arc<Prepare>),
    /// Replica → all.
    Commit(Arc<Commit>),
    /// Replica → client.
    Reply(Arc<Reply>),
    /// Replica → all, every checkpoint interval.
    Checkpoint(Arc<Checkpoint>),
    /// Replica → all, to leave a view.
    ViewChange(Arc<ViewChange>),
    /// New primary → all.
    NewView(Arc<NewView>),
    /// Stuck replica → all.
    Status(Arc<Status>),
    /// Replica → lagging replica.
    CommitProof(Arc<CommitProof>),
    /// Replica → lagging replica.
    StableProof(Arc<StableProof>),
    /// Lagging replica → replica.
    FetchState(Arc<FetchState>),
    /// Replica → lagging replica.
    State(Arc<StateTransfer>),
}

fn sha(parts: &[&[u8]]) -> Digest {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

// --- signed structs ------------------------------------------------------------------------

fn prefix(tag: u8) -> Writer {
    let mut w = Writer::with_capacity(256);
    w.u8(WIRE_VERSION).u8(tag);
    w
}

impl PrePrepare {
    fn put_header(&self, w: &mut Writer) {
        w.u64(self.view)
            .u64(self.seq)
            .digest(&self.digest)
            .u32(self.replica);
    }

    /// The bytes the primary signs: the header with the batch digest.
    pub fn signing_bytes(&self) -> Vec<u8> {
        let mut w = prefix(T_PRE_PREPARE);
        self.put_header(&mut w);
        w.buf
    }

    /// True when `digest` is the digest of `batch`.
    pub fn batch_matches(&self) -> bool {
        batch_digest(&self.batch) == self.digest
    }

    fn put(&self, w: &mut Writer) {
        self.put_header(w);
        put_batch(w, &self.batch);
        w.bytes(&self.sig);
    }

    fn get(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(PrePrepare {
            view: r.u64("view")?,
            seq: r.u64("seq")?,
            digest: r.digest("digest")?,
            replica: r.u32("replica")?,
            batch: get_batch(r)?,
            sig: r.bytes("sig")?,
        })
    }
}

/// Declares a vote: PREPARE and COMMIT have the same fields, encoding and signature, and differ
/// only in their type byte.
macro_rules! vote {
    ($(#[$meta:meta])* $ty:ident, $tag:expr) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, Eq)]
        pub struct $ty {
            /// View.
            pub view: u64,
            /// Sequence number.
            pub seq: u64,
            /// Batch digest.
            pub digest: Digest,
            /// Sender.
            pub replica: u32,
            /// Sender's signature.
            pub sig: Vec<u8>,
        }

        impl $ty {
            /// The bytes the sender signs.
            pub fn signing_bytes(&self) -> Vec<u8> {
                let mut w = prefix($tag);
                self.put_unsigned(&mut w);
                w.buf
            }

            fn put_unsigned(&self, w: &mut Writer) {
                w.u64(self.view)
                    .u64(self.seq)
                    .digest(&self.digest)
                    .u32(self.replica);
            }

            fn put(&self, w: &mut Writer) {
                self.put_unsigned(w);
                w.bytes(&self.sig);
            }

            fn get(r: &mut Reader) -> Result<Self, DecodeError> {
                Ok($ty {
                    view: r.u64("view")?,
                    seq: r.u64("seq")?,
                    digest: r.digest("digest")?,
                    replica: r.u32("replica")?,
                    sig: r.bytes("sig")?,
                })
            }
        }
    };
}

vote!(
    /// PREPARE(v, n, d, i).
    Prepare,
    T_PREPARE
);
vote!(
    /// COMMIT(v, n, d, i).
    Commit,
    T_COMMIT
);

impl Reply {
    fn put_unsigned(&self, w: &mut Writer) {
        w.u64(self.view)
            .u32(self.client)
            .u64(self.ts)
            .u32(self.replica)
            .u8(u8::from(self.read))
            .bytes(&self.result);
    }

    /// The bytes the replica signs.
    pub fn signing_bytes(&self) -> Vec<u8> {
        let mut w = prefix(T_REPLY);
        self.put_unsigned(&mut w);
        w.buf
    }

    fn get(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(Reply {
            view: r.u64("view")?,
            client: r.u32("client")?,
            ts: r.u64("ts")?,
            replica: r.u32("replica")?,
            read: r.flag("read flag")?,
            result: r.bytes("result")?,
            sig: r.bytes("sig")?,
        })
    }
}

impl Checkpoint {
    fn put_unsigned(&self, w: &mut Writer) {
        w.u64(self.seq).digest(&self.state).u32(self.replica);
    }

    /// The bytes the sender signs.
    pub fn signing_bytes(&self) -> Vec<u8> {
        let mut w = prefix(T_CHECKPOINT);
        self.put_unsigned(&mut w);
        w.buf
    }

    fn put(&self, w: &mut Writer) {
        self.put_unsigned(w);
        w.bytes(&self.sig);
    }

    fn get(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(Checkpoint {
            seq: r.u64("seq")?,
            state: r.digest("state digest")?,
            replica: r.u32("replica")?,
            sig: r.bytes("sig")?,
        })
    }
}

fn put_checkpoints(w: &mut Writer, cps: &[Arc<Checkpoint>]) {
    w.list(cps, |w, c| c.put(w));
}

fn get_checkpoints(r: &mut Reader) -> Result<Vec<Arc<Checkpoint>>, DecodeError> {
    r.list("checkpoints", MIN_VOTE, |r| {
        Checkpoint::get(r).map(Arc::new)
    })
}

impl PreparedCert {
    fn put(&self, w: &mut Writer) {
        self.pre_prepare.put(w);
        w.list(&self.prepares, |w, p| p.put(w));
    }

    fn get(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(PreparedCert {
            pre_prepare: Arc::new(PrePrepare::get(r)?),
            prepares: r.list("prepares", MIN_VOTE, |r| Prepare::get(r).map(Arc::new))?,
        })
    }
}

impl ViewChange {
    fn put_unsigned(&self, w: &mut Writer) {
        w.u64(self.view).u32(self.replica).u64(self.stable);
        put_checkpoints(w, &self.stable_proof);
        w.list(&self.prepared, |w, p| p.put(w));
    }

    /// The bytes the sender signs.
    pub fn signing_bytes(&self) -> Vec<u8> {
        let mut w = prefix(T_VIEW_CHANGE);
        self.put_unsigned(&mut w);
        w.buf
    }

    /// The digest a New-View refers to it by (over the full encoding, signature included).
    pub fn digest(&self) -> Digest {
        let mut w = prefix(T_VIEW_CHANGE);
        self.put_unsigned(&mut w);
        w.bytes(&self.sig);
        sha(&[b"pbft/view-change/v1", &w.buf])
    }

    fn get(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(ViewChange {
            view: r.u64("view")?,
            replica: r.u32("replica")?,
            stable: r.u64("stable")?,
            stable_proof: get_checkpoints(r)?,
            prepared: r.list("prepared", MIN_PRE_PREPARE + 4, PreparedCert::get)?,
            sig: r.bytes("sig")?,
        })
    }
}

impl NewView {
    fn put_unsigned(&self, w: &mut Writer) {
        w.u64(self.view)
            .u32(self.replica)
            .list(&self.view_changes, |w, (i, d)| {
                w.u32(*i).digest(d);
            })
            .list(&self.pre_prepares, |w, p| p.put(w));
    }

    /// The bytes the new primary signs.
    pub fn signing_bytes(&self) -> Vec<u8> {
        let mut w = prefix(T_NEW_VIEW);
        self.put_unsigned(&mut w);
        w.buf
    }

    fn get(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(NewView {
            view: r.u64("view")?,
            replica: r.u32("replica")?,
            view_changes: r.list("view changes", 36, |r| {
                Ok((r.u32("replica")?, r.digest("view change digest")?))
            })?,
            pre_prepares: r.list("pre-prepares", MIN_PRE_PREPARE, |r| {
                PrePrepare::get(r).map(Arc::new)
            })?,
            sig: r.bytes("sig")?,
        })
    }
}

impl Snapshot {
    fn put(&self, w: &mut Writer) {
        w.list(&self.entries, |w, (k, v)| {
            w.bytes(k).bytes(v);
        })
        .list(&self.clients, |w, c| {
            w.u32(c.client).u64(c.ts).bytes(&c.result);
        });
    }

    fn get(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(Snapshot {
            entries: r.list("entries", 8, |r| Ok((r.bytes("key")?, r.bytes("value")?)))?,
            clients: r.list("clients", 16, |r| {
                Ok(ClientRecord {
                    client: r.u32("client")?,
                    ts: r.u64("ts")?,
                    result: r.bytes("result")?,
                })
            })?,
        })
    }

    /// The digest Checkpoint messages carry.
    pub fn digest(&self) -> Digest {
        let mut w = Writer::default();
        self.put(&mut w);
        sha(&[b"pbft/state/v1", &w.buf])
    }
}

impl Message {
    fn tag(&self) -> u8 {
        match self {
            Message::Request(_) => T_REQUEST,
            Message::Read(_) => T_READ,
            Message::PrePrepare(_) => T_PRE_PREPARE,
            Message::Prepare(_) => T_PREPARE,
            Message::Commit(_) => T_COMMIT,
            Message::Reply(_) => T_REPLY,
            Message::Checkpoint(_) => T_CHECKPOINT,
            Message::ViewChange(_) => T_VIEW_CHANGE,
            Message::NewView(_) => T_NEW_VIEW,
            Message::Status(_) => T_STATUS,
            Message::CommitProof(_) => T_COMMIT_PROOF,
            Message::StableProof(_) => T_STABLE_PROOF,
            Message::FetchState(_) => T_FETCH_STATE,
            Message::State(_) => T_STATE,
        }
    }

    /// Short name, for logs and tests.
    pub fn kind(&self) -> &'static str {
        match self {
            Message::Request(_) => "request",
            Message::Read(_) => "read",
            Message::PrePrepare(_) => "pre-prepare",
            Message::Prepare(_) => "prepare",
            Message::Commit(_) => "commit",
            Message::Reply(_) => "reply",
            Message::Checkpoint(_) => "checkpoint",
            Message::ViewChange(_) => "view-change",
            Message::NewView(_) => "new-view",
            Message::Status(_) => "status",
            Message::CommitProof(_) => "commit-proof",
            Message::StableProof(_) => "stable-proof",
            Message::FetchState(_) => "fetch-state",
            Message::State(_) => "state",
        }
    }

    /// The full wire encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = prefix(self.tag());
        match self {
            Message::Request(u) | Message::Read(u) => u.put(&mut w),
            Message::PrePrepare(p) => p.put(&mut w),
            Message::Prepare(p) => p.put(&mut w),
            Message::Commit(c) => c.put(&mut w),
            Message::Reply(r) => {
                r.put_unsigned(&mut w);
                w.bytes(&r.sig);
            }
            Message::Checkpoint(c) => c.put(&mut w),
            Message::ViewChange(v) => {
                v.put_unsigned(&mut w);
                w.bytes(&v.sig);
            }
            Message::NewView(nv) => {
                nv.put_unsigned(&mut w);
                w.bytes(&nv.sig);
            }
            Message::Status(s) => {
                w.u64(s.view)
                    .u8(u8::from(s.active))
                    .u64(s.stable)
                    .u64(s.executed);
            }
            Message::CommitProof(p) => {
                p.pre_prepare.put(&mut w);
                w.list(&p.commits, |w, c| c.put(w));
            }
            Message::StableProof(p) => put_checkpoints(&mut w, &p.checkpoints),
            Message::FetchState(f) => {
                w.u64(f.executed);
            }
            Message::State(s) => {
                w.u64(s.seq);
                s.snapshot.put(&mut w);
                put_checkpoints(&mut w, &s.proof);
            }
        }
        w.buf
    }

    /// Decode a full wire encoding. Never panics; rejects unknown versions and types, lengths
    /// beyond the codec's limits or the input, and trailing bytes.
    pub fn decode(bytes: &[u8]) -> Result<Message, DecodeError> {
        decode_message(bytes, WIRE_VERSION, Message::get_body)
    }

    fn get_body(tag: u8, r: &mut Reader) -> Result<Message, DecodeError> {
        Ok(match tag {
            T_REQUEST => Message::Request(Arc::new(Update::get(r)?)),
            T_READ => Message::Read(Arc::new(Update::get(r)?)),
            T_PRE_PREPARE => Message::PrePrepare(Arc::new(PrePrepare::get(r)?)),
            T_PREPARE => Message::Prepare(Arc::new(Prepare::get(r)?)),
            T_COMMIT => Message::Commit(Arc::new(Commit::get(r)?)),
            T_REPLY => Message::Reply(Arc::new(Reply::get(r)?)),
            T_CHECKPOINT => Message::Checkpoint(Arc::new(Checkpoint::get(r)?)),
            T_VIEW_CHANGE => Message::ViewChange(Arc::new(ViewChange::get(r)?)),
            T_NEW_VIEW => Message::NewView(Arc::new(NewView::get(r)?)),
            T_STATUS => Message::Status(Arc::new(Status {
                view: r.u64("view")?,
                active: r.flag("active flag")?,
                stable: r.u64("stable")?,
                executed: r.u64("executed")?,
            })),
            T_COMMIT_PROOF => Message::CommitProof(Arc::new(CommitProof {
                pre_prepare: Arc::new(PrePrepare::get(r)?),
                commits: r.list("commits", MIN_VOTE, |r| Commit::get(r).map(Arc::new))?,
            })),
            T_STABLE_PROOF => Message::StableProof(Arc::new(StableProof {
                checkpoints: get_checkpoints(r)?,
            })),
            T_FETCH_STATE => Message::FetchState(Arc::new(FetchState {
                executed: r.u64("executed")?,
            })),
            T_STATE => Message::State(Arc::new(StateTransfer {
                seq: r.u64("seq")?,
                snapshot: Snapshot::get(r)?,
                proof: get_checkpoints(r)?,
            })),
            t => return Err(DecodeError(format!("unknown message type {t}"))),
        })
    }
}

bft_core::wire_message!(
    /// A PBFT message with its encoding made once.
    Message
);

#[cfg(test)]
mod tests {
    use super::*;

    fn update(ts: u64) -> Arc<Update> {
        bft_harness::testing::sample_put(3, ts)
    }

    fn pp(seq: u64) -> Arc<PrePrepare> {
        let batch = vec![update(1), update(2)];
        Arc::new(PrePrepare {
            view: 1,
            seq,
            digest: batch_digest(&batch),
            replica: 1,
            batch,
            sig: vec![1; 64],
        })
    }

    fn prepare(i: u32) -> Arc<Prepare> {
        Arc::new(Prepare {
            view: 1,
            seq: 5,
            digest: [4; 32],
            replica: i,
            sig: vec![2; 64],
        })
    }

    fn checkpoint(i: u32) -> Arc<Checkpoint> {
        Arc::new(Checkpoint {
            seq: 64,
            state: [7; 32],
            replica: i,
            sig: vec![3; 64],
        })
    }

    pub(crate) fn samples() -> Vec<Message> {
        vec![
            Message::Request(update(1)),
            Message::Read(Arc::new(Update {
                client: 1,
                ts: 2,
                op: Op::Get { key: b"x".to_vec() },
                sig: vec![5; 64],
                memo: Default::default(),
            })),
            Message::PrePrepare(pp(5)),
            Message::Prepare(prepare(2)),
            Message::Commit(Arc::new(Commit {
                view: 1,
                seq: 5,
                digest: [4; 32],
                replica: 0,
                sig: vec![2; 64],
            })),
            Message::Reply(Arc::new(Reply {
                view: 1,
                client: 3,
                ts: 1,
                replica: 2,
                read: true,
                result: vec![1, 2],
                sig: vec![1; 64],
            })),
            Message::Checkpoint(checkpoint(1)),
            Message::ViewChange(Arc::new(ViewChange {
                view: 2,
                replica: 3,
                stable: 64,
                stable_proof: vec![checkpoint(0), checkpoint(1), checkpoint(2)],
                prepared: vec![PreparedCert {
                    pre_prepare: pp(65),
                    prepares: vec![prepare(2), prepare(3)],
                }],
                sig: vec![6; 64],
            })),
            Message::NewView(Arc::new(NewView {
                view: 2,
                replica: 2,
                view_changes: vec![(0, [1; 32]), (3, [2; 32])],
                pre_prepares: vec![pp(65), pp(66)],
                sig: vec![6; 64],
            })),
            Message::Status(Arc::new(Status {
                view: 3,
                active: false,
                stable: 64,
                executed: 70,
            })),
            Message::CommitProof(Arc::new(CommitProof {
                pre_prepare: pp(9),
                commits: vec![Arc::new(Commit {
                    view: 1,
                    seq: 9,
                    digest: [4; 32],
                    replica: 0,
                    sig: vec![2; 64],
                })],
            })),
            Message::StableProof(Arc::new(StableProof {
                checkpoints: vec![checkpoint(0), checkpoint(3)],
            })),
            Message::FetchState(Arc::new(FetchState { executed: 12 })),
            Message::State(Arc::new(StateTransfer {
                seq: 64,
                snapshot: Snapshot {
                    entries: vec![(b"a".to_vec(), b"1".to_vec())],
                    clients: vec![ClientRecord {
                        client: 1,
                        ts: 4,
                        result: vec![0],
                    }],
                },
                proof: vec![checkpoint(0)],
            })),
        ]
    }

    bft_harness::wire_codec_tests!(Message, samples(), WIRE_VERSION, 800);

    #[test]
    fn signing_bytes_differ_by_type_and_exclude_the_signature() {
        let p = prepare(1);
        let c = Commit {
            view: p.view,
            seq: p.seq,
            digest: p.digest,
            replica: p.replica,
            sig: Vec::new(),
        };
        assert_ne!(p.signing_bytes(), c.signing_bytes());
        let mut p2 = (*p).clone();
        p2.sig = vec![0; 3];
        assert_eq!(p.signing_bytes(), p2.signing_bytes());
        // A Pre-Prepare signs its header, not the requests.
        let a = pp(5);
        let mut b = (*a).clone();
        b.batch.pop();
        assert_eq!(a.signing_bytes(), b.signing_bytes());
        assert!(a.batch_matches() && !b.batch_matches());
    }

    #[test]
    fn huge_lengths_are_rejected() {
        // A View-Change claiming 2^32 - 1 prepared certificates.
        let mut v = vec![WIRE_VERSION, T_VIEW_CHANGE];
        v.extend(1u64.to_be_bytes());
        v.extend(0u32.to_be_bytes());
        v.extend(0u64.to_be_bytes());
        v.extend(0u32.to_be_bytes());
        v.extend(u32::MAX.to_be_bytes());
        assert!(Message::decode(&v).is_err());
    }
}
