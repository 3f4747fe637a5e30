//! The composition root of a real deployment: each protocol's replica and client set up from
//! a deployment directory (keys, TLS identity, addresses) and handed to the runtime's generic
//! driver. The protocol crates stay free of tokio and quinn; this crate and the binaries
//! `steward-node` and `pbft-node` join them to the runtime.

#![warn(missing_docs)]

pub mod pbft;
pub mod steward;
