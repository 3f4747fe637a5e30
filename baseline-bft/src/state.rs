//! The replicated service: Steward's key-value store ([`bft_core::kv::KvStore`]) plus the client
//! table PBFT needs for exactly-once execution (last timestamp and result per client), with
//! snapshots for checkpoints and state transfer.
//!
//! `KvStore` offers no iteration, so the set of present keys is tracked beside it; a snapshot
//! reads every present key back through [`KvStore::read`].

use std::collections::{BTreeMap, BTreeSet};

use bft_core::kv::KvStore;
use bft_core::request::{ClientId, Op, Update};

use crate::msg::{ClientRecord, Snapshot};

/// The state every replica executes requests against.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServiceState {
    kv: KvStore,
    keys: BTreeSet<Vec<u8>>,
    clients: BTreeMap<ClientId, (u64, Vec<u8>)>,
}

/// Why a snapshot cannot be installed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BadSnapshot(pub &'static str);

impl ServiceState {
    /// The last executed timestamp of `client` (0 if none).
    pub fn last_ts(&self, client: ClientId) -> u64 {
        self.clients.get(&client).map_or(0, |(ts, _)| *ts)
    }

    /// The last executed (timestamp, result) of `client`.
    pub fn last_result(&self, client: ClientId) -> Option<(u64, &[u8])> {
        self.clients.get(&client).map(|(ts, r)| (*ts, r.as_slice()))
    }

    /// Execute `u` unless its timestamp is not newer than the client's last one (a duplicate);
    /// returns the result when executed.
    pub fn execute(&mut self, u: &Update) -> Option<Vec<u8>> {
        if u.ts <= self.last_ts(u.client) {
            return None;
        }
        match &u.op {
            Op::Put { key, .. } => {
                self.keys.insert(key.clone());
            }
            Op::Delete { key } => {
                self.keys.remove(key);
            }
            Op::Get { .. } => {}
        }
        let result = self.kv.apply(&u.op);
        self.clients.insert(u.client, (u.ts, result.clone()));
        Some(result)
    }

    /// Read `key` without changing anything (the read-only optimisation).
    pub fn read(&self, key: &[u8]) -> Vec<u8> {
        self.kv.read(key)
    }

    /// The key-value store.
    pub fn store(&self) -> &KvStore {
        &self.kv
    }

    /// Number of clients in the client table.
    pub fn clients(&self) -> usize {
        self.clients.len()
    }

    /// The whole state, in a canonical order.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            entries: self
                .keys
                .iter()
                .map(|k| {
                    let v = self.kv.read(k);
                    (k.clone(), v.get(1..).unwrap_or_default().to_vec())
                })
                .collect(),
            clients: self
                .clients
                .iter()
                .map(|(c, (ts, r))| ClientRecord {
                    client: *c,
                    ts: *ts,
                    result: r.clone(),
                })
                .collect(),
        }
    }

    /// Rebuild a state from a snapshot (keys and clients must be strictly increasing, as
    /// [`ServiceState::snapshot`] writes them).
    pub fn from_snapshot(s: &Snapshot) -> Result<ServiceState, BadSnapshot> {
        if !s.entries.windows(2).all(|w| w[0].0 < w[1].0) {
            return Err(BadSnapshot("keys not strictly increasing"));
        }
        if !s.clients.windows(2).all(|w| w[0].client < w[1].client) {
            return Err(BadSnapshot("clients not strictly increasing"));
        }
        let mut state = ServiceState::default();
        for (k, v) in &s.entries {
            state.kv.apply(&Op::Put {
                key: k.clone(),
                value: v.clone(),
            });
            state.keys.insert(k.clone());
        }
        for c in &s.clients {
            state.clients.insert(c.client, (c.ts, c.result.clone()));
        }
        Ok(state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn up(client: u32, ts: u64, op: Op) -> Update {
        Update {
            client,
            ts,
            op,
            sig: Vec::new(),
            memo: Default::default(),
        }
    }

    #[test]
    fn executes_once_and_snapshots_roundtrip() {
        let mut s = ServiceState::default();
        let put = |v: &[u8]| Op::Put {
            key: b"k".to_vec(),
            value: v.to_vec(),
        };
        assert_eq!(s.execute(&up(1, 1, put(b"a"))), Some(vec![0]));
        assert_eq!(s.execute(&up(1, 1, put(b"b"))), None, "duplicate");
        assert_eq!(s.execute(&up(2, 5, put(b"c"))), Some(b"\x01a".to_vec()));
        s.execute(&up(
            2,
            6,
            Op::Put {
                key: b"j".to_vec(),
                value: vec![],
            },
        ));
        assert_eq!(s.last_result(2), Some((6, &[0u8][..])));
        let snap = s.snapshot();
        assert_eq!(snap.entries.len(), 2);
        let back = ServiceState::from_snapshot(&snap).unwrap();
        assert_eq!(back, s);
        assert_eq!(back.snapshot().digest(), snap.digest());
        s.execute(&up(1, 2, Op::Delete { key: b"k".to_vec() }));
        assert_ne!(s.snapshot().digest(), snap.digest());
        assert_eq!(s.read(b"k"), vec![0]);
        let mut bad = snap.clone();
        bad.entries.reverse();
        assert!(ServiceState::from_snapshot(&bad).is_err());
    }
}
