//! A server whose threshold shares are corrupted: its crypto backend damages every share it
//! makes (and the proof it later attaches is made for the damaged value, as a Byzantine
//! server's would be), so the combiner's proof-checking fallback catches it and blacklists
//! the server. Everything else (its own signatures included) is correct.

use bft_core::crypto::{CombineOutcome, CryptoBackend, ShareForm};
use bft_core::ClientId;
use steward_config::{ServerId, SiteId};

/// Wraps a backend; flips bits in the last byte of every share it makes.
pub struct CorruptShares(pub Box<dyn CryptoBackend>);

impl CryptoBackend for CorruptShares {
    fn sign(&mut self, msg: &[u8]) -> Vec<u8> {
        self.0.sign(msg)
    }
    fn verify_server(&self, id: ServerId, msg: &[u8], sig: &[u8]) -> bool {
        self.0.verify_server(id, msg, sig)
    }
    fn verify_client(&self, client: ClientId, msg: &[u8], sig: &[u8]) -> bool {
        self.0.verify_client(client, msg, sig)
    }
    fn share(&mut self, msg: &[u8]) -> Vec<u8> {
        let mut share = self.0.share(msg);
        if let Some(b) = share.last_mut() {
            *b ^= 0x5a;
        }
        share
    }
    fn prove_share(&mut self, msg: &[u8], share: &[u8]) -> Vec<u8> {
        self.0.prove_share(msg, share)
    }
    fn share_form(&self, site: SiteId, share: &[u8]) -> ShareForm {
        self.0.share_form(site, share)
    }
    fn verify_share(&self, site: SiteId, signer: u32, msg: &[u8], share: &[u8]) -> bool {
        self.0.verify_share(site, signer, msg, share)
    }
    fn combine(&self, site: SiteId, msg: &[u8], shares: &[(u32, &[u8])]) -> CombineOutcome {
        self.0.combine(site, msg, shares)
    }
    fn verify_site(&self, site: SiteId, msg: &[u8], sig: &[u8]) -> bool {
        self.0.verify_site(site, msg, sig)
    }
    fn quorum(&self, site: SiteId) -> usize {
        self.0.quorum(site)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bft_core::crypto::{FastCrypto, FastIdentity, FastWorld};

    #[test]
    fn shares_are_bad_and_their_proofs_do_not_verify() {
        let world = FastWorld::new(7, 64, 307, 128, vec![3]);
        let me = ServerId::new(SiteId(0), 1);
        let honest = || Box::new(FastCrypto::new(world.clone(), FastIdentity::Server(me)));
        let mut bad = CorruptShares(honest());
        let mut good = honest();
        let msg = b"content";
        let share = bad.share(msg);
        assert_ne!(share, good.share(msg));
        let proven = bad.prove_share(msg, &share);
        assert_eq!(bad.share_form(SiteId(0), &proven), ShareForm::Proven);
        assert!(!good.verify_share(SiteId(0), 1, msg, &proven));
        let own = good.share(msg);
        let right = good.prove_share(msg, &own);
        assert!(good.verify_share(SiteId(0), 1, msg, &right));
        // Its signatures stay good.
        let sig = bad.sign(msg);
        assert!(good.verify_server(me, msg, &sig));
    }
}
