//! The flat PBFT baseline (Castro & Liskov, OSDI 1999 / TOCS 2002) that Steward is compared
//! against, as a sans-IO protocol core sharing Steward's client update format, key-value
//! store, signature schemes and simulator.
//!
//! * [`replica`]: the replica state machine (normal case, checkpoints and garbage collection,
//!   state transfer, view changes, the read-only optimisation, batching).
//! * [`client`]: the closed-loop client (f+1 matching replies; 2f+1 for read-only requests).
//! * [`msg`]: messages and their bounded binary encoding.
//! * [`state`]: the replicated service (Steward's `KvStore` plus the client table) and its
//!   snapshots.
//! * [`simulation`]: PBFT in the deterministic simulator, with Byzantine variants, the shared
//!   safety checker, run reports and a randomized safety campaign.

#![warn(missing_docs)]

pub mod client;
pub mod msg;
pub mod replica;
pub mod simulation;
pub mod state;
