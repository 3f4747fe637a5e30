//! Cryptography for Steward and the PBFT baseline.
//!
//! * [`threshold`]: Shoup's "Practical Threshold Signatures", Protocol 2 (any k ≥ t+1), with
//!   EMSA-PKCS1-v1_5/SHA-256 message encoding, so that a combined site signature is an ordinary
//!   RSA PKCS#1 v1.5 signature. A share carries a non-interactive Chaum–Pedersen proof, made
//!   eagerly or on demand.
//! * [`signature`]: per-message signatures behind one interface: Ed25519 (default) and
//!   RSA PKCS#1 v1.5/SHA-256 (1024-bit is the paper's profile).
//! * [`digest`]: SHA-256 digests.
//!
//! Backend: the threshold scheme's modular exponentiations use OpenSSL's bignum (cargo feature
//! `openssl`, on by default; the build needs libssl-dev and pkg-config), else `num-bigint`. Both
//! give byte-identical results.
//!
//! Threat model note: with OpenSSL, exponentiations by secrets (2·s_i and the proof nonce r) use
//! its constant-time path (about 7 % slower); public-exponent work does not need it. Without the
//! feature, `num-bigint` is not constant-time. Neither backend blinds or zeroizes secrets. This
//! is a research replication meant for testbeds; a co-located timing attacker is out of scope.

pub mod bench;
pub mod digest;
pub mod hexser;
pub mod signature;
pub mod threshold;

pub use digest::{sha256, Digest};
