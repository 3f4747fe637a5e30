//! Fixtures for timing the crypto operations, shared by `loadgen crypto-bench` and the criterion
//! benchmark so that both measure exactly the same thing.

use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

use crate::signature::{MessageSigner, MessageVerifier, Scheme, SigningKey, VerifyingKey};
use crate::threshold::{
    deal_from_seed, KeyShare, SignatureShare, ThresholdPublicKey, ThresholdSignature,
};

/// Size of the signed message: the paper's 200-byte update payload.
pub const MESSAGE_LEN: usize = 200;

fn message() -> Vec<u8> {
    (0..MESSAGE_LEN).map(|i| i as u8).collect()
}

/// A dealt threshold key with a message, all l shares on it (with and without proofs) and the
/// combined signature.
pub struct ThresholdFixture {
    public: ThresholdPublicKey,
    key_share: KeyShare,
    msg: Vec<u8>,
    shares: Vec<SignatureShare>,
    unproven: Vec<SignatureShare>,
    signature: ThresholdSignature,
    rng: ChaCha20Rng,
}

impl ThresholdFixture {
    /// Deal a (k of l) key of `bits` bits deterministically from `seed` and prepare the message.
    pub fn new(seed: u64, bits: u32, l: u16, k: u16) -> Self {
        let d = deal_from_seed(seed, bits, l, k).expect("valid benchmark parameters");
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let msg = message();
        let shares: Vec<SignatureShare> = d
            .shares
            .iter()
            .map(|s| s.sign(&d.public, &msg, &mut rng).expect("own key"))
            .collect();
        let unproven = shares
            .iter()
            .cloned()
            .map(SignatureShare::without_proof)
            .collect();
        let signature = d
            .public
            .combine(&msg, &shares)
            .expect("honest shares combine")
            .signature;
        ThresholdFixture {
            key_share: d.shares[0].clone(),
            public: d.public,
            msg,
            shares,
            unproven,
            signature,
            rng,
        }
    }

    /// One share with its proof (`share_sign`).
    pub fn share_sign(&mut self) -> SignatureShare {
        self.key_share
            .sign(&self.public, &self.msg, &mut self.rng)
            .expect("own key")
    }

    /// One share without a proof (`share_sign_unproven`).
    pub fn share_sign_unproven(&self) -> SignatureShare {
        self.key_share
            .sign_share_unproven(&self.public, &self.msg)
            .expect("own key")
    }

    /// The proof for an existing unproven share, added on demand (`prove_share`).
    pub fn prove_share(&mut self) -> SignatureShare {
        self.key_share
            .prove_share(&self.public, &self.msg, &self.unproven[0], &mut self.rng)
            .expect("own share")
    }

    /// Check one share's proof (`share_verify`).
    pub fn share_verify(&self) -> bool {
        self.public.verify_share(&self.msg, &self.shares[0]).is_ok()
    }

    /// Combine k honest shares, including the check of the result (`combine`, the fast path).
    pub fn combine(&self) -> ThresholdSignature {
        let k = usize::from(self.public.quorum());
        self.public
            .combine(&self.msg, &self.shares[..k])
            .expect("honest shares combine")
            .signature
    }

    /// Combine k honest shares that carry no proofs (`combine_unproven`; same work as
    /// `combine`, which never looks at proofs on the fast path).
    pub fn combine_unproven(&self) -> ThresholdSignature {
        let k = usize::from(self.public.quorum());
        self.public
            .combine(&self.msg, &self.unproven[..k])
            .expect("honest shares combine")
            .signature
    }

    /// The Jacobi symbol of the message's representative x̂ modulo n, which every share needs
    /// (`jacobi`).
    pub fn jacobi(&self) -> i8 {
        self.public.message_jacobi(&self.msg)
    }

    /// Verify the combined signature (`verify`).
    pub fn verify(&self) -> bool {
        self.public.verify(&self.msg, &self.signature)
    }
}

/// A per-message signing key with a message and a signature on it.
pub struct SignatureFixture {
    key: SigningKey,
    public: VerifyingKey,
    msg: Vec<u8>,
    sig: Vec<u8>,
}

impl SignatureFixture {
    /// A key of `scheme` from `seed`.
    pub fn new(scheme: Scheme, seed: u64) -> Self {
        let key = SigningKey::generate(scheme, &mut ChaCha20Rng::seed_from_u64(seed))
            .expect("supported scheme");
        let msg = message();
        let sig = key.sign(&msg);
        SignatureFixture {
            public: key.verifying_key(),
            key,
            msg,
            sig,
        }
    }

    /// Sign the message.
    pub fn sign(&self) -> Vec<u8> {
        self.key.sign(&self.msg)
    }

    /// Verify the signature.
    pub fn verify(&self) -> bool {
        self.public.verify(&self.msg, &self.sig).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixtures_do_real_work() {
        let mut t = ThresholdFixture::new(1, 512, 4, 3);
        let s = t.share_sign();
        assert!(t.public.verify_share(&t.msg, &s).is_ok());
        let u = t.share_sign_unproven();
        assert!(!u.has_proof());
        assert_eq!(u, s.without_proof());
        let p = t.prove_share();
        assert!(t.public.verify_share(&t.msg, &p).is_ok());
        assert!(t.share_verify());
        assert_eq!(t.combine(), t.signature);
        assert_eq!(t.combine_unproven(), t.signature);
        assert!(t.verify());
        let f = SignatureFixture::new(Scheme::Ed25519, 1);
        assert!(f.verify());
        assert_eq!(f.sign(), f.sig);
    }
}
