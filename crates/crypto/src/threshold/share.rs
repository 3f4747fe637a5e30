//! Signature shares x_i = x^{2 s_i} with their proof of correctness (Chaum–Pedersen made
//! non-interactive with Fiat–Shamir), and a fixed-width binary encoding for the wire.

use num_bigint::{BigUint, RandBigInt};
use rand_core::CryptoRngCore;

use super::arith::{with_arith, ModArith};
use super::keys::{KeyShare, MessageRep, ThresholdPublicKey};
use super::{ShareError, SignError, SignerId, L1_BITS};
use crate::digest::sha256_parts;

/// Proof that log_{x̃}(x_i²) = log_v(v_i): challenge c (L1 bits) and response z = s_i·c + r.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShareProof {
    /// Fiat–Shamir challenge, < 2^L1.
    pub c: BigUint,
    /// Response s_i·c + r over the integers, < 2^(L(n)+2·L1+1).
    pub z: BigUint,
}

/// One server's signature share on a message, with or without its proof.
///
/// A share without a proof ([`KeyShare::sign_share_unproven`]) costs one exponentiation instead
/// of three and is enough for [`ThresholdPublicKey::combine`]'s fast path; the proof can be
/// added later with [`KeyShare::prove_share`] if a combine fails and the combiner asks for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignatureShare {
    /// The signer's index, 1..=l.
    pub signer: SignerId,
    /// x_i = x^{2 s_i} mod n.
    pub x_i: BigUint,
    /// Proof of correctness, if one was made.
    pub proof: Option<ShareProof>,
}

impl SignatureShare {
    /// Whether a proof of correctness is attached.
    pub fn has_proof(&self) -> bool {
        self.proof.is_some()
    }

    /// The same share with its proof dropped (what a lazy signer sends first).
    pub fn without_proof(mut self) -> SignatureShare {
        self.proof = None;
        self
    }
}

impl KeyShare {
    /// Produce this server's share of the site signature on `msg`, with its proof (eager mode:
    /// three exponentiations).
    pub fn sign(
        &self,
        public: &ThresholdPublicKey,
        msg: &[u8],
        rng: &mut impl CryptoRngCore,
    ) -> Result<SignatureShare, SignError> {
        self.check_key(public)?;
        let rep = public.message_rep(msg)?;
        Ok(with_arith!(public, |a| self.sign_with(a, public, &rep, rng)))
    }

    /// Produce this server's share on `msg` without a proof (one exponentiation). Combining
    /// accepts it; [`Self::prove_share`] adds the proof later if it is asked for.
    pub fn sign_share_unproven(
        &self,
        public: &ThresholdPublicKey,
        msg: &[u8],
    ) -> Result<SignatureShare, SignError> {
        self.check_key(public)?;
        let rep = public.message_rep(msg)?;
        Ok(with_arith!(public, |a| self.sign_unproven_with(a, &rep)))
    }

    /// Attach a fresh proof to `share`, this server's own share on `msg` (as returned by
    /// [`Self::sign_share_unproven`]); a proof already attached is replaced. Two
    /// exponentiations: x_i is taken from `share`, not recomputed. Only cheap checks are made
    /// on `share` (signer and range); for any other x_i the proof simply will not verify.
    pub fn prove_share(
        &self,
        public: &ThresholdPublicKey,
        msg: &[u8],
        share: &SignatureShare,
        rng: &mut impl CryptoRngCore,
    ) -> Result<SignatureShare, SignError> {
        self.check_key(public)?;
        if share.signer != self.id || share.x_i == BigUint::ZERO || share.x_i >= public.n {
            return Err(SignError::NotOwnShare);
        }
        let rep = public.message_rep(msg)?;
        let proof = with_arith!(public, |a| {
            let x = a.elem(&rep.x);
            let x_i = a.elem(&share.x_i);
            self.prove_with(a, public, &x, &x_i, rng)
        });
        Ok(SignatureShare {
            signer: share.signer,
            x_i: share.x_i.clone(),
            proof: Some(proof),
        })
    }

    fn check_key(&self, public: &ThresholdPublicKey) -> Result<(), SignError> {
        if self.key_fingerprint == public.pre.fingerprint {
            Ok(())
        } else {
            Err(SignError::WrongKey)
        }
    }

    /// x_i = x^{2 s_i} with its proof.
    pub(crate) fn sign_with<A: ModArith>(
        &self,
        a: &A,
        pk: &ThresholdPublicKey,
        rep: &MessageRep,
        rng: &mut impl CryptoRngCore,
    ) -> SignatureShare {
        let x = a.elem(&rep.x);
        let x_i = a.pow(&x, a.share_exponent(self));
        let proof = self.prove_with(a, pk, &x, &x_i, rng);
        SignatureShare {
            signer: self.id,
            x_i: a.to_biguint(&x_i),
            proof: Some(proof),
        }
    }

    /// x_i = x^{2 s_i} alone.
    pub(crate) fn sign_unproven_with<A: ModArith>(
        &self,
        a: &A,
        rep: &MessageRep,
    ) -> SignatureShare {
        let x_i = a.pow(&a.elem(&rep.x), a.share_exponent(self));
        SignatureShare {
            signer: self.id,
            x_i: a.to_biguint(&x_i),
            proof: None,
        }
    }

    /// The Chaum–Pedersen proof for x_i: r ← [0, 2^{L(n)+2·L1}), c = H'(…, v^r, x̃^r),
    /// z = s_i·c + r. r is secret (z would reveal s_i), so its exponentiations are constant-time
    /// where the backend allows.
    fn prove_with<A: ModArith>(
        &self,
        a: &A,
        pk: &ThresholdPublicKey,
        x: &A::Elem,
        x_i: &A::Elem,
        rng: &mut impl CryptoRngCore,
    ) -> ShareProof {
        let x_sq = a.mul(x, x);
        let x_tilde = a.mul(&x_sq, &x_sq);
        let r = rng.gen_biguint(pk.pre.n_bits + 2 * L1_BITS);
        let r_exp = a.exponent(&r, true);
        let v_r = a.pow(a.v(), &r_exp);
        let x_r = a.pow(&x_tilde, &r_exp);
        let x_i_sq = a.mul(x_i, x_i);
        let c = challenge(
            pk,
            self.id,
            &a.to_biguint(&x_tilde),
            &pk.vks[usize::from(self.id) - 1],
            &a.to_biguint(&x_i_sq),
            &a.to_biguint(&v_r),
            &a.to_biguint(&x_r),
        );
        let z = &self.secret * &c + r;
        ShareProof { c, z }
    }
}

/// H'(tag, key, signer, v, x̃, v_i, x_i², v', x') truncated to L1 bits. Group elements are hashed
/// as fixed-width big-endian (|n| bytes) so the encoding is unambiguous.
fn challenge(
    pk: &ThresholdPublicKey,
    signer: SignerId,
    x_tilde: &BigUint,
    vk: &BigUint,
    x_i_sq: &BigUint,
    v_prime: &BigUint,
    x_prime: &BigUint,
) -> BigUint {
    let w = pk.pre.n_len;
    let elems = [&pk.v, x_tilde, vk, x_i_sq, v_prime, x_prime].map(|x| fixed_width(x, w));
    let signer = signer.to_be_bytes();
    let mut parts: Vec<&[u8]> = vec![b"steward/shoup-p2/proof/v1", &pk.pre.fingerprint, &signer];
    parts.extend(elems.iter().map(Vec::as_slice));
    let h = sha256_parts(&parts);
    BigUint::from_bytes_be(&h[..(L1_BITS / 8) as usize])
}

pub(crate) fn fixed_width(x: &BigUint, width: usize) -> Vec<u8> {
    let b = x.to_bytes_be();
    debug_assert!(b.len() <= width);
    let mut out = vec![0u8; width.saturating_sub(b.len())];
    out.extend_from_slice(&b);
    out
}

impl ThresholdPublicKey {
    /// Cheap structural checks (no exponentiation): signer index, 0 < x_i < n, and the proof's
    /// ranges if it has one. Run before anything else so that a Byzantine sender cannot make us
    /// exponentiate garbage.
    pub(crate) fn check_share_shape(&self, share: &SignatureShare) -> Result<(), ShareError> {
        if !self.check_signer(share.signer) {
            return Err(ShareError::BadSigner(share.signer));
        }
        if share.x_i == BigUint::ZERO || share.x_i >= self.n {
            return Err(ShareError::OutOfRange("x_i"));
        }
        if let Some(proof) = &share.proof {
            if proof.c.bits() > L1_BITS {
                return Err(ShareError::OutOfRange("c"));
            }
            if proof.z.bits() > self.pre.n_bits + 2 * L1_BITS + 1 {
                return Err(ShareError::OutOfRange("z"));
            }
        }
        Ok(())
    }

    /// Verify a share's proof of correctness for `msg`. A share without a proof gets
    /// [`ShareError::MissingProof`] (it is not known to be bad, only unproven).
    pub fn verify_share(&self, msg: &[u8], share: &SignatureShare) -> Result<(), ShareError> {
        self.check_share_shape(share)?;
        if share.proof.is_none() {
            return Err(ShareError::MissingProof);
        }
        let rep = self.message_rep(msg).map_err(|_| ShareError::BadProof)?;
        with_arith!(self, |a| self.verify_share_with(a, &rep, share))
    }

    /// Check c = H'(v, x̃, v_i, x_i², v^z·v_i^{−c}, x̃^z·(x_i²)^{−c}).
    pub(crate) fn verify_share_with<A: ModArith>(
        &self,
        a: &A,
        rep: &MessageRep,
        share: &SignatureShare,
    ) -> Result<(), ShareError> {
        self.check_share_shape(share)?;
        let Some(ShareProof { c, z }) = &share.proof else {
            return Err(ShareError::MissingProof);
        };
        let idx = usize::from(share.signer) - 1;
        let x_i = a.elem(&share.x_i);
        let x_i_inv = a
            .inv(&x_i)
            .ok_or(ShareError::OutOfRange("x_i (not a unit)"))?;
        let x = a.elem(&rep.x);
        let x_sq = a.mul(&x, &x);
        let x_tilde = a.mul(&x_sq, &x_sq);
        let x_i_sq = a.mul(&x_i, &x_i);
        let x_i_sq_inv = a.mul(&x_i_inv, &x_i_inv);
        let (z, c_exp) = (a.exponent(z, false), a.exponent(c, false));
        // v' = v^z · v_i^{-c},  x' = x̃^z · (x_i²)^{-c}
        let v_prime = a.mul(&a.pow(a.v(), &z), &a.pow(a.vk_inv(idx), &c_exp));
        let x_prime = a.mul(&a.pow(&x_tilde, &z), &a.pow(&x_i_sq_inv, &c_exp));
        let expect = challenge(
            self,
            share.signer,
            &a.to_biguint(&x_tilde),
            &self.vks[idx],
            &a.to_biguint(&x_i_sq),
            &a.to_biguint(&v_prime),
            &a.to_biguint(&x_prime),
        );
        if &expect == c {
            Ok(())
        } else {
            Err(ShareError::BadProof)
        }
    }

    /// Encoded size of a share with its proof: signer (2) + x_i (|n|) + c (L1/8) + z.
    pub fn share_wire_len(&self) -> usize {
        self.unproven_share_wire_len() + (L1_BITS / 8) as usize + self.z_len()
    }

    /// Encoded size of a share without a proof: signer (2) + x_i (|n|).
    pub fn unproven_share_wire_len(&self) -> usize {
        2 + self.pre.n_len
    }

    /// Encoded size of `share` ([`Self::share_wire_len`] or [`Self::unproven_share_wire_len`]).
    pub fn encoded_share_len(&self, share: &SignatureShare) -> usize {
        if share.has_proof() {
            self.share_wire_len()
        } else {
            self.unproven_share_wire_len()
        }
    }

    fn z_len(&self) -> usize {
        (self.pre.n_bits + 2 * L1_BITS + 1).div_ceil(8) as usize
    }

    /// Fixed-width binary encoding of a share (for protocol messages): signer, x_i, then c and
    /// z if there is a proof. The two forms have different fixed lengths, which is what tells
    /// them apart (no flag byte, so the proven form is unchanged from before lazy proofs). The
    /// encoding must therefore travel length-delimited, as every byte string in our messages
    /// does. A share that fails [`Self::decode_share`]'s range checks is not representable.
    pub fn encode_share(&self, share: &SignatureShare) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_share_len(share));
        out.extend_from_slice(&share.signer.to_be_bytes());
        out.extend(fixed_width(&share.x_i, self.pre.n_len));
        if let Some(proof) = &share.proof {
            out.extend(fixed_width(&proof.c, (L1_BITS / 8) as usize));
            out.extend(fixed_width(&proof.z, self.z_len()));
        }
        out
    }

    /// Decode [`Self::encode_share`]'s output: exactly one of the two lengths, and every value
    /// in range. Never panics.
    pub fn decode_share(&self, bytes: &[u8]) -> Result<SignatureShare, ShareError> {
        let proven = bytes.len() == self.share_wire_len();
        if !proven && bytes.len() != self.unproven_share_wire_len() {
            return Err(ShareError::BadLength {
                proven: self.share_wire_len(),
                unproven: self.unproven_share_wire_len(),
                got: bytes.len(),
            });
        }
        let (signer, rest) = bytes.split_at(2);
        let (x_i, rest) = rest.split_at(self.pre.n_len);
        let proof = proven.then(|| {
            let (c, z) = rest.split_at((L1_BITS / 8) as usize);
            ShareProof {
                c: BigUint::from_bytes_be(c),
                z: BigUint::from_bytes_be(z),
            }
        });
        let share = SignatureShare {
            signer: u16::from_be_bytes([signer[0], signer[1]]),
            x_i: BigUint::from_bytes_be(x_i),
            proof,
        };
        self.check_share_shape(&share)?;
        Ok(share)
    }
}
