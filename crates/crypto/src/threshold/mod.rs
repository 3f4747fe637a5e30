//! Shoup's threshold RSA, Protocol 2 ("Practical Threshold Signatures", EUROCRYPT 2000, §5).
//!
//! A site of l servers holds a (k of l) sharing of one RSA key; any k shares combine into an
//! ordinary RSA PKCS#1 v1.5/SHA-256 signature that verifies with the site's plain public key
//! (n, e). Steward uses k = 2f+1 of l = 3f+1.
//!
//! Flow: the dealer ([`deal`]) writes a [`ThresholdPublicKey`] and one [`KeyShare`] per server.
//! Each server calls [`KeyShare::sign`] to get a [`SignatureShare`] (x_i = x^{2 s_i} with a
//! Chaum–Pedersen proof), or, lazily, [`KeyShare::sign_share_unproven`] (x_i alone, a third of
//! the cost) and [`KeyShare::prove_share`] later if the proof is asked for. A combiner calls
//! [`ThresholdPublicKey::combine`], which takes the fast path (combine k shares, check
//! y^e = x̂) and falls back to checking every proof only when the result does not verify,
//! naming the bad signers and, separately, the signers whose shares lack a proof. Anyone checks
//! the result with [`ThresholdPublicKey::verify`] or any standard RSA verifier.
//!
//! Backend: the modular exponentiations run on OpenSSL's bignum (feature `openssl`, default;
//! about 2.2× faster) or on `num-bigint`; results are byte-identical. Key dealing, Lagrange and
//! Jacobi arithmetic always use `num-bigint`.
//!
//! Pitfalls avoided (reference/crypto.md §1.10): Δ, λ and Bezout coefficients are big integers;
//! x̃ is reduced mod n; the proof nonce r has L(n)+2·L1 bits; v is a square; every proof value is
//! range-checked before any exponentiation; x̂ is a full-width EMSA encoding; the Fiat–Shamir
//! input is fixed-width and domain-separated; share indices start at 1; u⁻¹ is applied when
//! (x̂|n) = −1.

mod arith;
mod combine;
mod dealer;
mod encoding;
mod keys;
mod math;
#[cfg(feature = "openssl")]
mod ossl;
mod share;

#[cfg(test)]
mod tests;

pub use combine::{Combined, ThresholdSignature};
pub use dealer::{deal, deal_from_seed, deal_with_primes, Dealing, PUBLIC_EXPONENT};
pub use encoding::emsa_pkcs1_v15_sha256;
pub use keys::{KeyShare, ThresholdPublicKey};
pub use share::{ShareProof, SignatureShare};

/// A signer's index within its site, 1..=l (0 is never a share: f(0) is the secret).
pub type SignerId = u16;

/// Bit length L1 of the Fiat–Shamir challenge (Shoup: "L1 = 128, say").
pub const L1_BITS: u64 = 128;

/// Largest l supported (Δ = l! grows quickly; Steward needs 3f+1).
pub const MAX_SIGNERS: u16 = 256;

/// Smallest modulus accepted (tests use 512; the paper uses 1024).
pub const MIN_MODULUS_BITS: u64 = 512;

/// A key file or key parameters are invalid.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The text is not valid JSON of the expected shape (truncated, wrong types, unknown fields).
    #[error("malformed key file: {0}")]
    Parse(String),
    /// A field has an invalid value.
    #[error("field `{field}`: {reason}")]
    Invalid {
        /// The offending field.
        field: String,
        /// Why it is invalid.
        reason: String,
    },
}

/// Key generation failed.
#[derive(Debug, thiserror::Error)]
pub enum DealError {
    /// Bad (bits, l, k) or primes.
    #[error("invalid dealer parameters: {0}")]
    Parameters(String),
}

/// Signing a share failed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignError {
    /// The share belongs to another public key.
    #[error("key share does not belong to this public key")]
    WrongKey,
    /// gcd(EMSA(msg), n) > 1: impossible for a well-formed key.
    #[error("message representative is not a unit modulo n")]
    DegenerateMessage,
    /// [`KeyShare::prove_share`] was given a share of another signer or with x_i out of range.
    #[error("share to prove is not this signer's share")]
    NotOwnShare,
}

/// A signature share is invalid.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ShareError {
    /// Signer index outside 1..=l.
    #[error("signer index {0} is out of range")]
    BadSigner(SignerId),
    /// A value is outside its allowed range.
    #[error("share value `{0}` is out of range")]
    OutOfRange(&'static str),
    /// The proof of correctness does not verify.
    #[error("share proof does not verify")]
    BadProof,
    /// The share carries no proof, so it cannot be checked (it is not known to be bad).
    #[error("share has no proof")]
    MissingProof,
    /// An encoded share has neither of the two valid lengths.
    #[error(
        "encoded share has {got} bytes, expected {proven} (with proof) or {unproven} (without)"
    )]
    BadLength {
        /// Length with a proof.
        proven: usize,
        /// Length without a proof.
        unproven: usize,
        /// Actual length.
        got: usize,
    },
}

/// Combining shares failed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CombineError {
    /// Fewer than k distinct shares with valid shape (or valid proofs, after the fallback).
    #[error(
        "{have} usable shares, {needed} needed (bad signers: {bad_signers:?}, \
         missing proofs: {missing_proofs:?})"
    )]
    NotEnoughShares {
        /// Usable shares.
        have: usize,
        /// k.
        needed: usize,
        /// Signers whose shares were rejected: malformed, or with a proof that does not verify.
        bad_signers: Vec<SignerId>,
        /// Signers whose shares have no proof, found when the fallback had to check proofs:
        /// not known to be bad; ask them for a proof ([`KeyShare::prove_share`]).
        missing_proofs: Vec<SignerId>,
    },
    /// Shares with valid proofs did not combine (cannot happen with a well-formed key).
    #[error("shares with valid proofs failed to combine")]
    Inconsistent,
    /// gcd(EMSA(msg), n) > 1.
    #[error("message representative is not a unit modulo n")]
    DegenerateMessage,
}
