//! A server whose threshold shares are corrupted: its crypto backend damages every share it
//! makes. By default the proof it later attaches is made for the damaged value, as a
//! Byzantine server's would be, so the combiner's proof-checking fallback catches it and
//! blacklists the server. [`CorruptShares::proving_right_shares`] proves the right share
//! instead: no proof it sends ever fails, so only a check of the unproven share itself
//! catches it (issue #14, attack 3: without one it cost the site a failed combine and a round
//! of proofs on every slot). Everything else (its own signatures included) is correct.

use bft_core::crypto::{CombineOutcome, CryptoBackend, ShareForm};
use bft_core::ClientId;
use steward_config::{ServerId, SiteId};

/// Wraps a backend; flips bits in the last byte of every share it makes.
pub struct CorruptShares {
    inner: Box<dyn CryptoBackend>,
    proves_right_share: bool,
}

impl CorruptShares {
    /// Damaged shares, proofs of the damaged values.
    pub fn new(inner: Box<dyn CryptoBackend>) -> Self {
        CorruptShares {
            inner,
            proves_right_share: false,
        }
    }

    /// Damaged unproven shares, but asked for a proof it proves the right share.
    pub fn proving_right_shares(inner: Box<dyn CryptoBackend>) -> Self {
        CorruptShares {
            inner,
            proves_right_share: true,
        }
    }
}

impl CryptoBackend for CorruptShares {
    fn sign(&mut self, msg: &[u8]) -> Vec<u8> {
        self.inner.sign(msg)
    }
    fn verify_server(&self, id: ServerId, msg: &[u8], sig: &[u8]) -> bool {
        self.inner.verify_server(id, msg, sig)
    }
    fn verify_client(&self, client: ClientId, msg: &[u8], sig: &[u8]) -> bool {
        self.inner.verify_client(client, msg, sig)
    }
    fn share(&mut self, msg: &[u8]) -> Vec<u8> {
        let mut share = self.inner.share(msg);
        if let Some(b) = share.last_mut() {
            *b ^= 0x5a;
        }
        share
    }
    fn prove_share(&mut self, msg: &[u8], share: &[u8]) -> Vec<u8> {
        if self.proves_right_share {
            let right = self.inner.share(msg);
            return self.inner.prove_share(msg, &right);
        }
        self.inner.prove_share(msg, share)
    }
    fn share_form(&self, site: SiteId, share: &[u8]) -> ShareForm {
        self.inner.share_form(site, share)
    }
    fn verify_share(&self, site: SiteId, signer: u32, msg: &[u8], share: &[u8]) -> bool {
        self.inner.verify_share(site, signer, msg, share)
    }
    fn combine(&self, site: SiteId, msg: &[u8], shares: &[(u32, &[u8])]) -> CombineOutcome {
        self.inner.combine(site, msg, shares)
    }
    fn verify_site(&self, site: SiteId, msg: &[u8], sig: &[u8]) -> bool {
        self.inner.verify_site(site, msg, sig)
    }
    fn quorum(&self, site: SiteId) -> usize {
        self.inner.quorum(site)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bft_core::crypto::{FastCrypto, FastIdentity, FastWorld};

    /// Server 1 of site 0: its wrapped backend (made by `wrap`) shares and proves `content`;
    /// checks its unproven share is wrong and its signatures right, and returns whether a
    /// correct server accepts its proof.
    fn proof_accepted(wrap: fn(Box<dyn CryptoBackend>) -> CorruptShares) -> bool {
        let world = FastWorld::new(7, 64, 307, 128, vec![3]);
        let me = ServerId::new(SiteId(0), 1);
        let honest = || Box::new(FastCrypto::new(world.clone(), FastIdentity::Server(me)));
        let mut bad = wrap(honest());
        let mut good = honest();
        let msg = b"content";
        let share = bad.share(msg);
        assert_ne!(share, good.share(msg));
        let sig = bad.sign(msg);
        assert!(
            good.verify_server(me, msg, &sig),
            "its signatures stay good"
        );
        let proven = bad.prove_share(msg, &share);
        assert_eq!(bad.share_form(SiteId(0), &proven), ShareForm::Proven);
        good.verify_share(SiteId(0), 1, msg, &proven)
    }

    #[test]
    fn shares_are_bad_and_their_proofs_do_not_verify() {
        assert!(!proof_accepted(CorruptShares::new));
    }

    #[test]
    fn a_right_prover_sends_bad_unproven_shares_and_good_proofs() {
        assert!(proof_accepted(CorruptShares::proving_right_shares));
    }
}
