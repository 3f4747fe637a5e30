//! A server whose unproven threshold shares are wrong but which, asked for a proof, proves its
//! right share: no proof it sends ever fails, so it is never caught by one (a variant of issue
//! #14, attack 3; without a check of the unproven share itself it cost the site a failed
//! combine and a round of proofs on every slot).

use bft_core::crypto::{CombineOutcome, CryptoBackend, ShareForm};
use bft_core::ClientId;
use steward_config::{ServerId, SiteId};

/// Wraps a backend; flips bits in every unproven share it makes, and proves the right one.
pub struct WrongUnprovenShares(pub Box<dyn CryptoBackend>);

impl CryptoBackend for WrongUnprovenShares {
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
    fn prove_share(&mut self, msg: &[u8], _share: &[u8]) -> Vec<u8> {
        let right = self.0.share(msg);
        self.0.prove_share(msg, &right)
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
