//! Steward: hierarchical Byzantine fault-tolerant replication for wide-area networks (Amir et
//! al., DSN 2006 / TDSC 2010), as a sans-IO protocol core.
//!
//! * [`replica`]: the server state machine (normal case).
//! * [`client`]: the closed-loop client and its reply verification.
//! * [`msg`] and [`codec`]: messages and their bounded binary encoding.
//! * [`crypto`]: the crypto interface, real and fast-double backends, op counters and costs.
//! * [`kv`]: the replicated key-value store.
//!
//! The codec, the crypto interface and the store live in the protocol-neutral `bft-core`
//! crate, re-exported here under their old paths.

pub use bft_core::{codec, crypto, kv};

pub mod client;
pub mod msg;
pub mod replica;
pub mod simulation;
