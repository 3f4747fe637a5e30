//! Combining k shares into a standard RSA signature, with the optimistic fast path: combine
//! first, verify the result (one cheap e-th power), and only if that fails check each share's
//! proof to name the bad signers.

use std::collections::HashSet;

use num_bigint::BigUint;

use super::keys::{MessageRep, ThresholdPublicKey};
use super::math::{lagrange_at_zero, pow_signed};
use super::share::{fixed_width, SignatureShare};
use super::{CombineError, SignerId};

/// A combined site signature: an ordinary RSA PKCS#1 v1.5/SHA-256 signature, |n| bytes.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ThresholdSignature(pub Vec<u8>);

/// The result of a successful combine.
#[derive(Clone, Debug)]
pub struct Combined {
    /// The site signature.
    pub signature: ThresholdSignature,
    /// Signers whose shares were malformed or whose proofs failed; the protocol blames them
    /// (Steward's Corrupted_Server). Empty on the fast path with honest shares.
    pub bad_signers: Vec<SignerId>,
}

impl ThresholdPublicKey {
    /// Combine shares on `msg` into a site signature. Uses the first k distinct well-formed
    /// shares; if their combination does not verify, checks every share's proof, drops and
    /// reports the bad ones, and combines k good ones.
    pub fn combine(&self, msg: &[u8], shares: &[SignatureShare]) -> Result<Combined, CombineError> {
        let rep = self
            .message_rep(msg)
            .map_err(|_| CombineError::DegenerateMessage)?;
        let k = usize::from(self.k);
        let mut seen = HashSet::new();
        let mut bad = Vec::new();
        let mut candidates: Vec<&SignatureShare> = Vec::new();
        for s in shares {
            if !seen.insert(s.signer) {
                continue;
            }
            match self.check_share_shape(s) {
                Ok(()) => candidates.push(s),
                Err(_) => bad.push(s.signer),
            }
        }
        if candidates.len() < k {
            return Err(CombineError::NotEnoughShares {
                have: candidates.len(),
                needed: k,
                bad_signers: bad,
            });
        }
        if let Some(sig) = self.interpolate_checked(&rep, &candidates[..k]) {
            return Ok(Combined {
                signature: sig,
                bad_signers: bad,
            });
        }
        // Slow path: some share among the first k is wrong. Find out which by their proofs.
        let mut good = Vec::with_capacity(candidates.len());
        for s in candidates {
            match self.verify_share_rep(&rep, s) {
                Ok(()) => good.push(s),
                Err(_) => bad.push(s.signer),
            }
        }
        bad.sort_unstable();
        if good.len() < k {
            return Err(CombineError::NotEnoughShares {
                have: good.len(),
                needed: k,
                bad_signers: bad,
            });
        }
        match self.interpolate_checked(&rep, &good[..k]) {
            Some(sig) => Ok(Combined {
                signature: sig,
                bad_signers: bad,
            }),
            None => Err(CombineError::Inconsistent),
        }
    }

    /// Interpolate and return the signature only if it verifies.
    fn interpolate_checked(
        &self,
        rep: &MessageRep,
        shares: &[&SignatureShare],
    ) -> Option<ThresholdSignature> {
        let y = self.interpolate(rep, shares)?;
        (y.modpow(&self.e, &self.n) == rep.x_hat)
            .then(|| ThresholdSignature(fixed_width(&y, self.pre.n_len)))
    }

    /// y with y^e = x̂ if the shares are correct: w = Π x_j^{2λ_j}, y = w^a·x^b with 4a + eb = 1,
    /// then y·u^{-1} if u was applied. Shares with negative λ are multiplied together and
    /// inverted once. Any subset size is accepted; with fewer than k correct shares the result
    /// is simply not a valid signature.
    pub(crate) fn interpolate(
        &self,
        rep: &MessageRep,
        shares: &[&SignatureShare],
    ) -> Option<BigUint> {
        let n = &self.n;
        let ids: Vec<SignerId> = shares.iter().map(|s| s.signer).collect();
        let lambdas = lagrange_at_zero(&ids, &self.pre.delta);
        let mut pos = BigUint::from(1u8);
        let mut neg = BigUint::from(1u8);
        for (s, lam) in shares.iter().zip(&lambdas) {
            let t = s.x_i.modpow(&(lam.magnitude() << 1u32), n);
            if lam.sign() == num_bigint::Sign::Minus {
                neg = neg * t % n;
            } else {
                pos = pos * t % n;
            }
        }
        let w = pos * neg.modinv(n)? % n;
        let (a, b) = &self.pre.bezout;
        let mut y = pow_signed(&w, a, n)? * pow_signed(&rep.x, b, n)? % n;
        if rep.used_u {
            y = y * &self.pre.u_inv % n;
        }
        Some(y)
    }

    /// Verify a combined signature on `msg`: y^e ≡ EMSA(msg) (mod n), with 0 < y < n.
    pub fn verify(&self, msg: &[u8], sig: &ThresholdSignature) -> bool {
        if sig.0.len() != self.pre.n_len {
            return false;
        }
        let y = BigUint::from_bytes_be(&sig.0);
        if y == BigUint::ZERO || y >= self.n {
            return false;
        }
        // Plain RSA verification: no Jacobi symbol needed, only x̂.
        y.modpow(&self.e, &self.n) == self.message_hat(msg)
    }
}
