//! Signature shares x_i = x^{2 s_i} with their proof of correctness (Chaum–Pedersen made
//! non-interactive with Fiat–Shamir), and a fixed-width binary encoding for the wire.

use num_bigint::{BigUint, RandBigInt};
use rand_core::CryptoRngCore;

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

/// One server's signature share on a message, with its proof.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignatureShare {
    /// The signer's index, 1..=l.
    pub signer: SignerId,
    /// x_i = x^{2 s_i} mod n.
    pub x_i: BigUint,
    /// Proof of correctness.
    pub proof: ShareProof,
}

impl KeyShare {
    /// Produce this server's share of the site signature on `msg`, with its proof.
    pub fn sign(
        &self,
        public: &ThresholdPublicKey,
        msg: &[u8],
        rng: &mut impl CryptoRngCore,
    ) -> Result<SignatureShare, SignError> {
        if self.key_fingerprint != public.pre.fingerprint {
            return Err(SignError::WrongKey);
        }
        let rep = public.message_rep(msg)?;
        Ok(self.sign_rep(public, &rep, rng))
    }

    fn sign_rep(
        &self,
        pk: &ThresholdPublicKey,
        rep: &MessageRep,
        rng: &mut impl CryptoRngCore,
    ) -> SignatureShare {
        let n = &pk.n;
        let x_i = rep.x.modpow(&(&self.secret << 1u32), n);
        let x_tilde = rep.x.modpow(&BigUint::from(4u8), n);
        let r = rng.gen_biguint(pk.pre.n_bits + 2 * L1_BITS);
        let v_r = pk.v.modpow(&r, n);
        let x_r = x_tilde.modpow(&r, n);
        let x_i_sq = (&x_i * &x_i) % n;
        let vk = &pk.vks[usize::from(self.id) - 1];
        let c = challenge(pk, self.id, &x_tilde, vk, &x_i_sq, &v_r, &x_r);
        let z = &self.secret * &c + r;
        SignatureShare {
            signer: self.id,
            x_i,
            proof: ShareProof { c, z },
        }
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
    /// Cheap structural checks (no exponentiation): signer index and 0 < x_i < n. Run before
    /// anything else so that a Byzantine sender cannot make us exponentiate garbage.
    pub(crate) fn check_share_shape(&self, share: &SignatureShare) -> Result<(), ShareError> {
        if !self.check_signer(share.signer) {
            return Err(ShareError::BadSigner(share.signer));
        }
        if share.x_i == BigUint::ZERO || share.x_i >= self.n {
            return Err(ShareError::OutOfRange("x_i"));
        }
        if share.proof.c.bits() > L1_BITS {
            return Err(ShareError::OutOfRange("c"));
        }
        if share.proof.z.bits() > self.pre.n_bits + 2 * L1_BITS + 1 {
            return Err(ShareError::OutOfRange("z"));
        }
        Ok(())
    }

    /// Verify a share's proof of correctness for `msg`.
    pub fn verify_share(&self, msg: &[u8], share: &SignatureShare) -> Result<(), ShareError> {
        self.check_share_shape(share)?;
        let rep = self.message_rep(msg).map_err(|_| ShareError::BadProof)?;
        self.verify_share_rep(&rep, share)
    }

    pub(crate) fn verify_share_rep(
        &self,
        rep: &MessageRep,
        share: &SignatureShare,
    ) -> Result<(), ShareError> {
        self.check_share_shape(share)?;
        let n = &self.n;
        let idx = usize::from(share.signer) - 1;
        let x_i_inv = share
            .x_i
            .modinv(n)
            .ok_or(ShareError::OutOfRange("x_i (not a unit)"))?;
        let x_tilde = rep.x.modpow(&BigUint::from(4u8), n);
        let x_i_sq = (&share.x_i * &share.x_i) % n;
        let x_i_sq_inv = (&x_i_inv * &x_i_inv) % n;
        let ShareProof { c, z } = &share.proof;
        // v' = v^z · v_i^{-c},  x' = x̃^z · (x_i²)^{-c}
        let v_prime = (self.v.modpow(z, n) * self.pre.vk_inv[idx].modpow(c, n)) % n;
        let x_prime = (x_tilde.modpow(z, n) * x_i_sq_inv.modpow(c, n)) % n;
        let expect = challenge(
            self,
            share.signer,
            &x_tilde,
            &self.vks[idx],
            &x_i_sq,
            &v_prime,
            &x_prime,
        );
        if &expect == c {
            Ok(())
        } else {
            Err(ShareError::BadProof)
        }
    }

    /// Encoded size of one share: signer (2) + x_i (|n|) + c (L1/8) + z.
    pub fn share_wire_len(&self) -> usize {
        2 + self.pre.n_len + (L1_BITS / 8) as usize + self.z_len()
    }

    fn z_len(&self) -> usize {
        (self.pre.n_bits + 2 * L1_BITS + 1).div_ceil(8) as usize
    }

    /// Fixed-width binary encoding of a share (for protocol messages).
    pub fn encode_share(&self, share: &SignatureShare) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.share_wire_len());
        out.extend_from_slice(&share.signer.to_be_bytes());
        out.extend(fixed_width(&share.x_i, self.pre.n_len));
        out.extend(fixed_width(&share.proof.c, (L1_BITS / 8) as usize));
        out.extend(fixed_width(&share.proof.z, self.z_len()));
        out
    }

    /// Decode [`Self::encode_share`]'s output; checks the length and every range.
    pub fn decode_share(&self, bytes: &[u8]) -> Result<SignatureShare, ShareError> {
        if bytes.len() != self.share_wire_len() {
            return Err(ShareError::BadLength {
                expected: self.share_wire_len(),
                got: bytes.len(),
            });
        }
        let (signer, rest) = bytes.split_at(2);
        let (x_i, rest) = rest.split_at(self.pre.n_len);
        let (c, z) = rest.split_at((L1_BITS / 8) as usize);
        let share = SignatureShare {
            signer: u16::from_be_bytes([signer[0], signer[1]]),
            x_i: BigUint::from_bytes_be(x_i),
            proof: ShareProof {
                c: BigUint::from_bytes_be(c),
                z: BigUint::from_bytes_be(z),
            },
        };
        self.check_share_shape(&share)?;
        Ok(share)
    }
}
