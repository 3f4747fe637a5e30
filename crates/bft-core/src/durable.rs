//! What a correct node must never forget across a crash, and the one rule drivers follow to
//! keep it: a core emits [`Output::Persist`](crate::Output::Persist) writes to its durable
//! key-value [`Store`], and the driver makes **every write of a step durable before it
//! transmits any message of that step** (the runtime appends them to a log and calls
//! `fdatasync` once per step; the simulator keeps the store across a simulated crash). After a
//! restart the driver hands the recovered store to [`Node::recover`](crate::Node::recover)
//! before [`Node::start`](crate::Node::start).
//!
//! The [`VoteLedger`] is the part every protocol needs: each vote a node signs (a Pre-Prepare,
//! a Prepare, a threshold share) is keyed by what it votes on (kind, sequence number, views);
//! a second, different vote for the same key is refused, so a restarted correct node never
//! contradicts what it said before it crashed.

use std::collections::BTreeMap;

use crate::node::Output;
use crate::request::Digest;

/// A node's durable state: keys and values it wrote with [`Write`]s.
pub type Store = BTreeMap<Vec<u8>, Vec<u8>>;

/// One change to a node's [`Store`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Write {
    /// Set `key` to `value`.
    Put {
        /// Key.
        key: Vec<u8>,
        /// Value.
        value: Vec<u8>,
    },
    /// Remove every key `k` with `from <= k < to`.
    DeleteRange {
        /// First key removed.
        from: Vec<u8>,
        /// First key kept after the range.
        to: Vec<u8>,
    },
}

/// Why bytes are not a [`Write`] (a torn or corrupted log record).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadRecord(pub &'static str);

impl std::fmt::Display for BadRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "bad durable record: {}", self.0)
    }
}

impl std::error::Error for BadRecord {}

const PUT: u8 = 1;
const DELETE_RANGE: u8 = 2;

impl Write {
    /// Applies this write to `store`.
    pub fn apply(&self, store: &mut Store) {
        match self {
            Write::Put { key, value } => {
                store.insert(key.clone(), value.clone());
            }
            Write::DeleteRange { from, to } => {
                if from < to {
                    let doomed: Vec<Vec<u8>> = store
                        .range(from.clone()..to.clone())
                        .map(|(k, _)| k.clone())
                        .collect();
                    for k in doomed {
                        store.remove(&k);
                    }
                }
            }
        }
    }

    /// Bytes this write adds to a log (its encoding's length).
    pub fn encoded_len(&self) -> usize {
        match self {
            Write::Put { key, value } => 9 + key.len() + value.len(),
            Write::DeleteRange { from, to } => 9 + from.len() + to.len(),
        }
    }

    /// Appends the encoding: a tag byte, then two length-prefixed (u32, big-endian) byte
    /// strings.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let (tag, a, b) = match self {
            Write::Put { key, value } => (PUT, key, value),
            Write::DeleteRange { from, to } => (DELETE_RANGE, from, to),
        };
        out.push(tag);
        for part in [a, b] {
            out.extend_from_slice(&(part.len() as u32).to_be_bytes());
            out.extend_from_slice(part);
        }
    }

    /// Decodes one write from the front of `bytes`; returns it and the bytes it took.
    pub fn decode(bytes: &[u8]) -> Result<(Write, usize), BadRecord> {
        let (&tag, mut rest) = bytes.split_first().ok_or(BadRecord("empty"))?;
        let mut parts = [Vec::new(), Vec::new()];
        let mut used = 1;
        for part in &mut parts {
            if rest.len() < 4 {
                return Err(BadRecord("truncated length"));
            }
            let len = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
            let body = rest
                .get(4..4 + len)
                .ok_or(BadRecord("length past the end"))?;
            *part = body.to_vec();
            rest = &rest[4 + len..];
            used += 4 + len;
        }
        let [a, b] = parts;
        let write = match tag {
            PUT => Write::Put { key: a, value: b },
            DELETE_RANGE => Write::DeleteRange { from: a, to: b },
            _ => return Err(BadRecord("unknown tag")),
        };
        Ok((write, used))
    }
}

/// Key prefix of every vote in a [`Store`] (other state uses other first bytes).
pub const VOTE_PREFIX: u8 = b'v';

/// What a vote is for: its kind (each protocol numbers its own), the sequence number and up
/// to two views (Steward: global and local view; PBFT: the view and 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct VoteKey {
    /// The protocol's vote kind.
    pub kind: u8,
    /// Sequence number.
    pub seq: u64,
    /// Views the vote is cast in.
    pub views: [u64; 2],
}

impl VoteKey {
    /// The store key: prefix, kind, then sequence number and views big-endian, so that one
    /// kind's votes below a sequence number form one key range.
    pub fn to_bytes(self) -> Vec<u8> {
        let mut k = Vec::with_capacity(26);
        k.push(VOTE_PREFIX);
        k.push(self.kind);
        k.extend_from_slice(&self.seq.to_be_bytes());
        k.extend_from_slice(&self.views[0].to_be_bytes());
        k.extend_from_slice(&self.views[1].to_be_bytes());
        k
    }

    /// The inverse of [`VoteKey::to_bytes`].
    pub fn from_bytes(k: &[u8]) -> Option<VoteKey> {
        if k.len() != 26 || k[0] != VOTE_PREFIX {
            return None;
        }
        let u = |i: usize| u64::from_be_bytes(k[i..i + 8].try_into().expect("8 bytes"));
        Some(VoteKey {
            kind: k[1],
            seq: u(2),
            views: [u(10), u(18)],
        })
    }
}

/// The outcome of [`VoteLedger::cast`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Vote {
    /// A first vote for the key: persist the write before sending the vote.
    New(Write),
    /// The same vote again (a retransmission): nothing to persist.
    Repeat,
    /// A different vote for the key was cast before (perhaps before a crash): do not send.
    Conflict(Digest),
}

/// Every vote a node cast and has not pruned, recovered from its [`Store`] after a restart.
#[derive(Clone, Debug, Default)]
pub struct VoteLedger {
    votes: BTreeMap<VoteKey, Digest>,
}

impl VoteLedger {
    /// The votes found in `store` (entries that are no vote are ignored).
    pub fn recover(store: &Store) -> VoteLedger {
        let from = vec![VOTE_PREFIX];
        let to = vec![VOTE_PREFIX + 1];
        let votes = store
            .range(from..to)
            .filter_map(|(k, v)| Some((VoteKey::from_bytes(k)?, Digest::try_from(&v[..]).ok()?)))
            .collect();
        VoteLedger { votes }
    }

    /// Records a vote for `digest` under `key`, unless a different one was cast.
    pub fn cast(&mut self, key: VoteKey, digest: Digest) -> Vote {
        match self.votes.get(&key) {
            Some(d) if *d == digest => Vote::Repeat,
            Some(d) => Vote::Conflict(*d),
            None => {
                self.votes.insert(key, digest);
                Vote::New(Write::Put {
                    key: key.to_bytes(),
                    value: digest.to_vec(),
                })
            }
        }
    }

    /// [`VoteLedger::cast`] for a node about to send the vote: a first vote's write goes to
    /// `out` (the driver makes it durable before the step's sends); returns whether the vote
    /// may be sent (false: it contradicts an earlier one).
    pub fn cast_into<M>(&mut self, key: VoteKey, digest: Digest, out: &mut Vec<Output<M>>) -> bool {
        match self.cast(key, digest) {
            Vote::New(w) => {
                out.push(Output::Persist(w));
                true
            }
            Vote::Repeat => true,
            Vote::Conflict(_) => false,
        }
    }

    /// The vote cast under `key`, if any.
    pub fn get(&self, key: VoteKey) -> Option<Digest> {
        self.votes.get(&key).copied()
    }

    /// Whether any vote of `kind` was cast for `seq` in any views.
    pub fn voted_on(&self, kind: u8, seq: u64) -> bool {
        let lo = VoteKey {
            kind,
            seq,
            views: [0, 0],
        };
        let hi = VoteKey {
            kind,
            seq,
            views: [u64::MAX, u64::MAX],
        };
        self.votes.range(lo..=hi).next().is_some()
    }

    /// The highest sequence number of any vote of `kind` (0 when none).
    pub fn highest_seq(&self, kind: u8) -> u64 {
        self.votes
            .keys()
            .filter(|k| k.kind == kind)
            .map(|k| k.seq)
            .max()
            .unwrap_or(0)
    }

    /// Forgets every vote below sequence number `seq` (those slots are decided and
    /// checkpointed); returns the writes that forget them durably (one range per kind).
    pub fn prune_below(&mut self, seq: u64) -> Vec<Write> {
        let kinds: std::collections::BTreeSet<u8> = self
            .votes
            .keys()
            .filter(|k| k.seq < seq)
            .map(|k| k.kind)
            .collect();
        self.votes.retain(|k, _| k.seq >= seq);
        kinds
            .into_iter()
            .map(|kind| Write::DeleteRange {
                from: VoteKey {
                    kind,
                    seq: 0,
                    views: [0, 0],
                }
                .to_bytes(),
                to: VoteKey {
                    kind,
                    seq,
                    views: [0, 0],
                }
                .to_bytes(),
            })
            .collect()
    }

    /// Number of votes held (bounded by the protocol's windows between prunes).
    pub fn len(&self) -> usize {
        self.votes.len()
    }

    /// Whether no vote is held.
    pub fn is_empty(&self) -> bool {
        self.votes.is_empty()
    }
}

/// The key of a per-slot record: `prefix`, then `seq` big-endian, so that key order is slot
/// order and a range of slots is a range of keys.
pub fn slot_key(prefix: u8, seq: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(9);
    k.push(prefix);
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

/// The slot of a [`slot_key`] (`None` for a key of another length).
pub fn slot_of_key(key: &[u8]) -> Option<u64> {
    (key.len() == 9).then(|| u64::from_be_bytes(key[1..].try_into().expect("8 bytes")))
}

/// The writes that forget every slot up to `seq` (decided and checkpointed): `ledger`'s
/// votes below `seq + 1` and the per-slot records of every prefix in `prefixes`.
pub fn prune_slots_through(ledger: &mut VoteLedger, prefixes: &[u8], seq: u64) -> Vec<Write> {
    let mut writes = ledger.prune_below(seq + 1);
    writes.extend(prefixes.iter().map(|&prefix| Write::DeleteRange {
        from: slot_key(prefix, 0),
        to: slot_key(prefix, seq + 1),
    }));
    writes
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_vote_cast_into_outputs_persists_once_and_refuses_a_contradiction() {
        let mut ledger = VoteLedger::default();
        let mut out: Vec<Output<()>> = Vec::new();
        assert!(ledger.cast_into(key(2, 9, 1), [1; 32], &mut out));
        assert!(matches!(
            out.as_slice(),
            [Output::Persist(Write::Put { .. })]
        ));
        assert!(ledger.cast_into(key(2, 9, 1), [1; 32], &mut out));
        assert!(!ledger.cast_into(key(2, 9, 1), [2; 32], &mut out));
        assert_eq!(out.len(), 1, "a repetition or a refusal writes nothing");
    }

    #[test]
    fn pruning_through_a_slot_forgets_its_votes_and_records_and_keeps_later_ones() {
        let mut store = Store::new();
        let mut ledger = VoteLedger::default();
        for seq in [3, 4, 5] {
            if let Vote::New(w) = ledger.cast(key(1, seq, 0), [seq as u8; 32]) {
                w.apply(&mut store);
            }
            for prefix in [b'a', b'b'] {
                Write::Put {
                    key: slot_key(prefix, seq),
                    value: vec![seq as u8],
                }
                .apply(&mut store);
            }
        }
        for w in prune_slots_through(&mut ledger, b"ab", 4) {
            w.apply(&mut store);
        }
        let slots = |prefix| {
            store
                .range(slot_key(prefix, 0)..slot_key(prefix + 1, 0))
                .filter_map(|(k, _)| slot_of_key(k))
                .collect::<Vec<_>>()
        };
        assert_eq!((slots(b'a'), slots(b'b')), (vec![5], vec![5]));
        assert_eq!(VoteLedger::recover(&store).highest_seq(1), 5);
        assert!(!VoteLedger::recover(&store).voted_on(1, 4));
        assert_eq!(slot_of_key(&[1, 2]), None);
    }

    fn key(kind: u8, seq: u64, v: u64) -> VoteKey {
        VoteKey {
            kind,
            seq,
            views: [v, 0],
        }
    }

    #[test]
    fn a_recovered_ledger_refuses_a_different_vote() {
        let mut store = Store::new();
        let mut ledger = VoteLedger::default();
        match ledger.cast(key(1, 5, 2), [7; 32]) {
            Vote::New(w) => w.apply(&mut store),
            other => panic!("first vote: {other:?}"),
        }
        assert_eq!(ledger.cast(key(1, 5, 2), [7; 32]), Vote::Repeat);
        let mut after_crash = VoteLedger::recover(&store);
        assert_eq!(
            after_crash.cast(key(1, 5, 2), [8; 32]),
            Vote::Conflict([7; 32])
        );
        assert_eq!(after_crash.cast(key(1, 5, 2), [7; 32]), Vote::Repeat);
        assert!(matches!(
            after_crash.cast(key(1, 5, 3), [8; 32]),
            Vote::New(_)
        ));
        assert!(matches!(
            after_crash.cast(key(2, 5, 2), [8; 32]),
            Vote::New(_)
        ));
    }

    #[test]
    fn pruning_forgets_durably_and_only_below() {
        let mut store = Store::new();
        let mut ledger = VoteLedger::default();
        for seq in 1..=10 {
            for kind in [1, 3] {
                if let Vote::New(w) = ledger.cast(key(kind, seq, 0), [seq as u8; 32]) {
                    w.apply(&mut store);
                }
            }
        }
        store.insert(b"s-other".to_vec(), vec![1]);
        for w in ledger.prune_below(6) {
            w.apply(&mut store);
        }
        assert_eq!(ledger.len(), 10);
        let recovered = VoteLedger::recover(&store);
        assert_eq!(recovered.len(), 10);
        assert!(!recovered.voted_on(1, 5));
        assert!(recovered.voted_on(3, 6));
        assert_eq!(recovered.highest_seq(3), 10);
        assert!(store.contains_key(&b"s-other"[..]), "other state is kept");
    }

    proptest! {
        #[test]
        fn writes_round_trip(key in proptest::collection::vec(any::<u8>(), 0..40),
                             value in proptest::collection::vec(any::<u8>(), 0..40),
                             put in any::<bool>()) {
            let w = if put {
                Write::Put { key, value }
            } else {
                Write::DeleteRange { from: key, to: value }
            };
            let mut bytes = Vec::new();
            w.encode(&mut bytes);
            prop_assert_eq!(bytes.len(), w.encoded_len());
            prop_assert_eq!(Write::decode(&bytes), Ok((w, bytes.len())));
            for cut in 0..bytes.len() {
                prop_assert!(Write::decode(&bytes[..cut]).is_err());
            }
        }

        #[test]
        fn any_bytes_decode_or_fail_cleanly(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Ok((_, used)) = Write::decode(&bytes) {
                prop_assert!(used <= bytes.len());
            }
        }
    }
}
