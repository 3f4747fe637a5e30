//! Client requests, shared by every protocol: clients, operations on the key-value store,
//! signed updates, batches and their digests, and their wire form.

use std::sync::Arc;

use sha2::{Digest as _, Sha256};

use crate::codec::{DecodeError, Reader, Writer};

/// Version byte of an update's signed bytes.
pub const REQUEST_VERSION: u8 = 1;

/// Smallest encoded update (client, ts, op tag, key length, signature length), for bounding
/// list lengths against the input.
pub const MIN_UPDATE: usize = 21;

/// SHA-256 of `bytes`.
pub fn sha(bytes: &[u8]) -> Digest {
    Sha256::digest(bytes).into()
}

/// A SHA-256 digest.
pub type Digest = [u8; 32];

/// A client's identifier.
pub type ClientId = u32;

/// An operation on the replicated key-value store.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    /// Set `key` to `value`.
    Put {
        /// Key.
        key: Vec<u8>,
        /// Value.
        value: Vec<u8>,
    },
    /// Read `key`.
    Get {
        /// Key.
        key: Vec<u8>,
    },
    /// Remove `key`.
    Delete {
        /// Key.
        key: Vec<u8>,
    },
}

/// A client update (client_id, timestamp, client_update, sig).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Update {
    /// Who proposed it.
    pub client: ClientId,
    /// The client's logical timestamp: (client, ts) identifies the update.
    pub ts: u64,
    /// The operation.
    pub op: Op,
    /// The client's signature over the rest.
    pub sig: Vec<u8>,
    /// The digest, once computed (every replica asks for it many times per slot).
    pub memo: DigestMemo,
}

/// A lazily computed [`Update::digest`]. A clone starts empty, so an update built by
/// cloning and then changing another never carries a stale digest; equal always (it caches
/// what the other fields already determine).
#[derive(Default)]
pub struct DigestMemo(std::sync::OnceLock<Digest>);

impl Clone for DigestMemo {
    fn clone(&self) -> Self {
        DigestMemo::default()
    }
}

impl PartialEq for DigestMemo {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for DigestMemo {}

impl std::fmt::Debug for DigestMemo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DigestMemo")
    }
}

/// Appends an operation: a tag, then its fields.
pub fn put_op(w: &mut Writer, op: &Op) {
    match op {
        Op::Put { key, value } => {
            w.u8(0).bytes(key).bytes(value);
        }
        Op::Get { key } => {
            w.u8(1).bytes(key);
        }
        Op::Delete { key } => {
            w.u8(2).bytes(key);
        }
    }
}

/// Reads an operation written by [`put_op`].
pub fn get_op(r: &mut Reader) -> Result<Op, DecodeError> {
    match r.u8("op tag")? {
        0 => Ok(Op::Put {
            key: r.bytes("key")?,
            value: r.bytes("value")?,
        }),
        1 => Ok(Op::Get {
            key: r.bytes("key")?,
        }),
        2 => Ok(Op::Delete {
            key: r.bytes("key")?,
        }),
        t => Err(DecodeError(format!("unknown op tag {t}"))),
    }
}

impl Update {
    /// Bytes the client signs.
    pub fn signing_bytes(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.u8(REQUEST_VERSION).u8(b'U').u32(self.client).u64(self.ts);
        put_op(&mut w, &self.op);
        w.buf
    }

    /// Digest identifying the update (over its signed content).
    pub fn digest(&self) -> Digest {
        *self.memo.0.get_or_init(|| sha(&self.signing_bytes()))
    }

    /// True for operations that do not change state.
    pub fn is_read(&self) -> bool {
        matches!(self.op, Op::Get { .. })
    }

    /// Appends the update's wire form.
    pub fn put(&self, w: &mut Writer) {
        w.u32(self.client).u64(self.ts);
        put_op(w, &self.op);
        w.bytes(&self.sig);
    }

    /// Reads an update's wire form.
    pub fn get(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(Update {
            client: r.u32("client")?,
            ts: r.u64("ts")?,
            op: get_op(r)?,
            sig: r.bytes("client sig")?,
            memo: DigestMemo::default(),
        })
    }
}

/// Digest of a batch: SHA-256 over the updates' digests.
pub fn batch_digest(batch: &[Arc<Update>]) -> Digest {
    let mut h = Sha256::new();
    h.update(b"steward/batch/v1");
    for u in batch {
        h.update(u.digest());
    }
    h.finalize().into()
}

/// Appends a batch: its length, then each update.
pub fn put_batch(w: &mut Writer, batch: &[Arc<Update>]) {
    w.u32(batch.len() as u32);
    for u in batch {
        u.put(w);
    }
}

/// Reads a batch written by [`put_batch`].
pub fn get_batch(r: &mut Reader) -> Result<Vec<Arc<Update>>, DecodeError> {
    let n = r.list_len("batch", MIN_UPDATE)?;
    (0..n).map(|_| Update::get(r).map(Arc::new)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(ts: u64) -> Update {
        Update {
            client: 3,
            ts,
            op: Op::Put {
                key: b"k".to_vec(),
                value: b"v".to_vec(),
            },
            sig: vec![1; 64],
            memo: DigestMemo::default(),
        }
    }

    #[test]
    fn the_memoized_digest_is_the_digest_of_the_signed_content() {
        let u = put(7);
        let first = u.digest();
        assert_eq!(first, sha(&u.signing_bytes()));
        assert_eq!(u.digest(), first);
    }

    #[test]
    fn a_changed_clone_gets_its_own_digest() {
        let u = put(7);
        let memoized = u.digest();
        let mut v = u.clone();
        v.ts = 8;
        assert_ne!(v.digest(), memoized);
        assert_eq!(v.digest(), put(8).digest());
        // Equality ignores the memo: a decoded copy equals the original.
        let mut w = Writer::default();
        u.put(&mut w);
        let decoded = Update::get(&mut Reader::new(&w.buf)).expect("decodes");
        assert_eq!(decoded, u);
        assert_eq!(decoded.digest(), memoized);
    }
}
