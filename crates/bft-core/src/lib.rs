//! The protocol-neutral foundation of Steward and the PBFT baseline, without any I/O: the
//! bounded codec, client requests, the key-value store, the crypto interface with its real and
//! fast backends, the wire envelope, and the [`Node`] trait every protocol core implements.
//!
//! Neither protocol depends on the other: both build on this crate, and the drivers (the
//! simulator harness, the QUIC runtime) drive any [`Node`].

#![warn(missing_docs)]

pub mod codec;
pub mod crypto;
pub mod durable;
pub mod kv;
pub mod node;
pub mod request;
pub mod sig_memo;
pub mod wire;

pub use node::{
    deliver_bytes, deliver_self_sends, Executed, Node, NodeExt, NodeId, Outbox, Output, Proposed,
};
pub use request::{batch_digest, ClientId, Digest, Op, Update};
pub use wire::{Envelope, Wire};
