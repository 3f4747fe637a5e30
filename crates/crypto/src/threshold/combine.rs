//! Combining k shares into a standard RSA signature, with the optimistic fast path: combine
//! first, verify the result (one cheap e-th power), and only if that fails check each share's
//! proof to name the bad signers. Shares need not carry proofs: the fast path ignores them, and
//! the fallback reports unproven shares separately so the caller can ask for their proofs.

use std::collections::HashSet;

use num_bigint::BigUint;

use super::arith::{with_arith, ModArith};
#[cfg(test)]
use super::keys::MessageRep;
use super::keys::ThresholdPublicKey;
use super::math::combine_exponents;
use super::share::{fixed_width, SignatureShare};
use super::{CombineError, ShareError, SignerId};

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
    /// Signers whose shares had no proof when the fallback had to check proofs. Their shares
    /// were not used and are not known to be bad. Empty on the fast path.
    pub missing_proofs: Vec<SignerId>,
}

impl ThresholdPublicKey {
    /// Combine shares on `msg` into a site signature. Uses the first k distinct well-formed
    /// shares, with or without proofs; if their combination does not verify, checks every
    /// share's proof, drops and reports the bad ones (invalid proof) and the unproven ones
    /// (no proof), and combines k shares with valid proofs.
    pub fn combine(&self, msg: &[u8], shares: &[SignatureShare]) -> Result<Combined, CombineError> {
        with_arith!(self, |a| self.combine_with(a, msg, shares))
    }

    pub(crate) fn combine_with<A: ModArith>(
        &self,
        a: &A,
        msg: &[u8],
        shares: &[SignatureShare],
    ) -> Result<Combined, CombineError> {
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
                missing_proofs: Vec::new(),
            });
        }
        // The fast path needs only x̂, not the Jacobi symbol (see `interpolate_checked`).
        let x_hat = self.message_hat(msg);
        if let Some(sig) = self.interpolate_checked(a, &x_hat, None, &candidates[..k]) {
            return Ok(Combined {
                signature: sig,
                bad_signers: bad,
                missing_proofs: Vec::new(),
            });
        }
        // Slow path: some share among the first k is wrong. Find out which by their proofs.
        let rep = self
            .message_rep(msg)
            .map_err(|_| CombineError::DegenerateMessage)?;
        let mut good = Vec::with_capacity(candidates.len());
        let mut missing = Vec::new();
        for s in candidates {
            match self.verify_share_with(a, &rep, s) {
                Ok(()) => good.push(s),
                Err(ShareError::MissingProof) => missing.push(s.signer),
                Err(_) => bad.push(s.signer),
            }
        }
        bad.sort_unstable();
        missing.sort_unstable();
        if good.len() < k {
            return Err(CombineError::NotEnoughShares {
                have: good.len(),
                needed: k,
                bad_signers: bad,
                missing_proofs: missing,
            });
        }
        match self.interpolate_checked(a, &rep.x_hat, Some(rep.used_u), &good[..k]) {
            Some(sig) => Ok(Combined {
                signature: sig,
                bad_signers: bad,
                missing_proofs: missing,
            }),
            None => Err(CombineError::Inconsistent),
        }
    }

    /// Interpolate and return the signature only if it verifies (y^e = x̂). `used_u` says
    /// whether the signers worked on x = x̂·u^e; if unknown (`None`), both candidates are tried:
    /// y^e = x̂ has exactly one solution (RSA is a permutation), so whichever verifies is the
    /// signature, and one extra e-th power (≈ 7 µs at 1024 bits) replaces the Jacobi symbol
    /// (≈ 40 µs).
    fn interpolate_checked<A: ModArith>(
        &self,
        a: &A,
        x_hat: &BigUint,
        used_u: Option<bool>,
        shares: &[&SignatureShare],
    ) -> Option<ThresholdSignature> {
        let part = self.shares_part(a, shares)?;
        let x_hat_elem = a.elem(x_hat);
        let tries: &[bool] = match used_u {
            Some(false) => &[false],
            Some(true) => &[true],
            None => &[false, true],
        };
        tries.iter().find_map(|&used_u| {
            let y = self.finish(a, &part, &x_hat_elem, used_u);
            let y_e = a.to_biguint(&a.pow(&y, a.public_exponent()));
            (&y_e == x_hat)
                .then(|| ThresholdSignature(fixed_width(&a.to_biguint(&y), self.pre.n_len)))
        })
    }

    /// y for a message representative (see [`Self::shares_part`] and [`Self::finish`]).
    #[cfg(test)]
    pub(crate) fn interpolate_with<A: ModArith>(
        &self,
        a: &A,
        rep: &MessageRep,
        shares: &[&SignatureShare],
    ) -> Option<A::Elem> {
        let part = self.shares_part(a, shares)?;
        Some(self.finish(a, &part, &a.elem(&rep.x_hat), rep.used_u))
    }

    /// [`Self::interpolate_with`] on the default backend.
    #[cfg(test)]
    pub(crate) fn interpolate(
        &self,
        rep: &MessageRep,
        shares: &[&SignatureShare],
    ) -> Option<BigUint> {
        with_arith!(self, |a| self
            .interpolate_with(a, rep, shares)
            .map(|y| a.to_biguint(&y)))
    }

    /// The part of y that depends on the shares. With 2λ_j = ±g·μ_j
    /// (math::combine_exponents), P = Π_{λ_j>0} x_j^{μ_j} and N = Π_{λ_j<0} x_j^{μ_j},
    /// w = Π x_j^{2λ_j} = (P/N)^g; with 4a + eb = 1, a = −|a| < 0 < b, y = w^a·x^b, so this
    /// returns w^a = (N·P^{-1})^{g·|a|}. One modular inversion in all. Any subset size is
    /// accepted; with fewer than k correct shares the result is simply not a valid signature.
    fn shares_part<A: ModArith>(&self, a: &A, shares: &[&SignatureShare]) -> Option<A::Elem> {
        let ids: Vec<SignerId> = shares.iter().map(|s| s.signer).collect();
        let (g, mus) = combine_exponents(&ids, &self.pre.delta);
        let (mut pos, mut neg): (Option<A::Elem>, Option<A::Elem>) = (None, None);
        for (s, (mu, negative)) in shares.iter().zip(&mus) {
            let t = a.pow(&a.elem(&s.x_i), &a.exponent(mu, false));
            let acc = if *negative { &mut neg } else { &mut pos };
            *acc = Some(match acc.take() {
                Some(p) => a.mul(&p, &t),
                None => t,
            });
        }
        let base = match (neg, pos) {
            (Some(n), Some(p)) => a.mul(&n, &a.inv(&p)?),
            (Some(n), None) => n,
            (None, Some(p)) => a.inv(&p)?,
            (None, None) => return None,
        };
        Some(a.pow(&base, &a.exponent(&(g * &self.pre.bezout_a_neg), false)))
    }

    /// y = w^a·x^b, then ·u^{-1} if u was applied (x = x̂·u^e). In terms of x̂ that is
    /// w^a·x̂^b·(u^{e·b−1} if u was applied).
    fn finish<A: ModArith>(&self, a: &A, w_a: &A::Elem, x_hat: &A::Elem, used_u: bool) -> A::Elem {
        let mut y = a.mul(w_a, x_hat);
        for _ in 1..self.pre.bezout_b {
            y = a.mul(&y, x_hat);
        }
        if used_u {
            y = a.mul(&y, a.u_fix());
        }
        y
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
        let y_e = with_arith!(self, |a| a
            .to_biguint(&a.pow(&a.elem(&y), a.public_exponent())));
        y_e == self.message_hat(msg)
    }
}
