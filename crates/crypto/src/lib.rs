//! Cryptography for Steward and the PBFT baseline.
//!
//! * [`threshold`]: Shoup's "Practical Threshold Signatures", Protocol 2 (any k ≥ t+1), with
//!   EMSA-PKCS1-v1_5/SHA-256 message encoding, so that a combined site signature is an ordinary
//!   RSA PKCS#1 v1.5 signature. Every share carries a non-interactive Chaum–Pedersen proof.
//! * [`signature`]: per-message signatures behind one interface: Ed25519 (default) and
//!   RSA PKCS#1 v1.5/SHA-256 (1024-bit is the paper's profile).
//! * [`digest`]: SHA-256 digests.
//!
//! Threat model note: share exponentiation uses `num-bigint`, which is not constant-time. This is
//! a research replication meant for testbeds; a co-located timing attacker is out of scope.

pub mod bench;
pub mod digest;
pub mod hexser;
pub mod signature;
pub mod threshold;

pub use digest::{sha256, Digest};
