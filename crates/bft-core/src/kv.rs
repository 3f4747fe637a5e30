//! The replicated state machine: a key-value store. Results are byte strings so that replies
//! and queries can compare them.

use std::collections::BTreeMap;

use crate::request::Op;

/// An in-memory key-value store.
#[derive(Default, Debug, Clone, PartialEq, Eq)]
pub struct KvStore {
    map: BTreeMap<Vec<u8>, Vec<u8>>,
}

/// Encode an optional value as a result: `[1, value...]` or `[0]`.
pub fn encode_value(v: Option<&[u8]>) -> Vec<u8> {
    match v {
        Some(v) => {
            let mut out = Vec::with_capacity(v.len() + 1);
            out.push(1);
            out.extend_from_slice(v);
            out
        }
        None => vec![0],
    }
}

impl KvStore {
    /// Apply `op`, returning its result: the previous value for put/delete, the value for get.
    pub fn apply(&mut self, op: &Op) -> Vec<u8> {
        match op {
            Op::Put { key, value } => {
                encode_value(self.map.insert(key.clone(), value.clone()).as_deref())
            }
            Op::Delete { key } => encode_value(self.map.remove(key).as_deref()),
            Op::Get { key } => self.read(key),
        }
    }

    /// Read without changing anything.
    pub fn read(&self, key: &[u8]) -> Vec<u8> {
        encode_value(self.map.get(key).map(Vec::as_slice))
    }

    /// Encode the store (keys in order) for a snapshot.
    pub fn encode_into(&self, w: &mut crate::codec::Writer) {
        w.u32(self.map.len() as u32);
        for (k, v) in &self.map {
            w.bytes(k).bytes(v);
        }
    }

    /// Decode [`Self::encode_into`]'s output.
    pub fn decode_from(r: &mut crate::codec::Reader) -> Result<Self, crate::codec::DecodeError> {
        let n = r.u32("keys")? as usize;
        if n.saturating_mul(8) > r.remaining() {
            return Err(crate::codec::DecodeError(format!(
                "implausible key count {n}"
            )));
        }
        let mut map = BTreeMap::new();
        for _ in 0..n {
            let k = r.bytes("key")?;
            let v = r.bytes("value")?;
            map.insert(k, v);
        }
        Ok(KvStore { map })
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_get_delete() {
        let mut kv = KvStore::default();
        let k = b"k".to_vec();
        assert_eq!(kv.apply(&Op::Get { key: k.clone() }), vec![0]);
        assert_eq!(
            kv.apply(&Op::Put {
                key: k.clone(),
                value: b"v".to_vec()
            }),
            vec![0]
        );
        assert_eq!(
            kv.apply(&Op::Put {
                key: k.clone(),
                value: b"w".to_vec()
            }),
            b"\x01v"
        );
        assert_eq!(kv.read(&k), b"\x01w");
        assert_eq!(kv.apply(&Op::Delete { key: k.clone() }), b"\x01w");
        assert!(kv.is_empty());
    }
}
