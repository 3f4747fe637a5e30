//! Which client signature a replica last found valid, per client: a replica meets the same
//! client update several times (from the client, relayed by another server, inside a
//! Pre-Prepare), and an Ed25519 check is the costliest step of handling one (about 37 µs).

use std::collections::BTreeMap;

use crate::crypto::Crypto;
use crate::request::{ClientId, Digest, Update};

/// The last update per client whose signature was checked and found valid: its digest (over
/// the signed content) and the signature itself. Only a copy equal in both passes without a
/// new check, so a copy carrying another signature, valid or not, is checked again and a
/// replica never forwards or proposes an update whose own signature it has not seen verified.
/// One entry per client that ever sent a valid update: bounded by the deployment's clients.
#[derive(Debug, Default)]
pub struct SignatureMemo {
    last: BTreeMap<ClientId, (Digest, Vec<u8>)>,
    reused: u64,
}

impl SignatureMemo {
    /// An empty memo.
    pub fn new() -> Self {
        Self::default()
    }

    /// True when `u` carries a valid signature of its client: at once when this very update
    /// and signature passed `verify` before, otherwise `verify(u)` decides (and a pass is
    /// remembered, in place of the client's earlier entry).
    pub fn check(&mut self, u: &Update, verify: impl FnOnce(&Update) -> bool) -> bool {
        let digest = u.digest();
        if self
            .last
            .get(&u.client)
            .is_some_and(|(d, sig)| *d == digest && *sig == u.sig)
        {
            self.reused += 1;
            return true;
        }
        if !verify(u) {
            return false;
        }
        self.last.insert(u.client, (digest, u.sig.clone()));
        true
    }

    /// [`SignatureMemo::check`] with the client's key from `crypto`.
    pub fn verify(&mut self, crypto: &mut Crypto, u: &Update) -> bool {
        self.check(u, |u| {
            crypto.verify_client(u.client, &u.signing_bytes(), &u.sig)
        })
    }

    /// Checks answered from the memo so far.
    pub fn reused(&self) -> u64 {
        self.reused
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::Op;

    fn update(client: ClientId, ts: u64, value: u8, sig: u8) -> Update {
        Update {
            client,
            ts,
            op: Op::Put {
                key: b"k".to_vec(),
                value: vec![value],
            },
            sig: vec![sig; 64],
            memo: Default::default(),
        }
    }

    #[test]
    fn the_same_update_and_signature_is_checked_once() {
        let mut memo = SignatureMemo::new();
        let mut checks = 0;
        let u = update(1, 1, 7, 9);
        for _ in 0..3 {
            assert!(memo.check(&u.clone(), |_| {
                checks += 1;
                true
            }));
        }
        assert_eq!((checks, memo.reused()), (1, 2));
    }

    #[test]
    fn another_signature_on_the_same_content_is_checked_again() {
        let mut memo = SignatureMemo::new();
        assert!(memo.check(&update(1, 1, 7, 9), |_| true));
        // Same digest (the signature is not part of it), another signature: a forged copy
        // must not ride on the genuine one's check.
        let forged = update(1, 1, 7, 0);
        assert_eq!(forged.digest(), update(1, 1, 7, 9).digest());
        assert!(!memo.check(&forged, |_| false));
        // And the genuine one still passes from the memo.
        assert!(memo.check(&update(1, 1, 7, 9), |_| panic!("checked again")));
    }

    #[test]
    fn a_failed_check_is_not_remembered_and_clients_are_apart() {
        let mut memo = SignatureMemo::new();
        assert!(!memo.check(&update(1, 1, 7, 9), |_| false));
        let mut checks = 0;
        assert!(memo.check(&update(1, 1, 7, 9), |_| {
            checks += 1;
            true
        }));
        assert!(memo.check(&update(2, 1, 7, 9), |_| {
            checks += 1;
            true
        }));
        // A newer update of client 1 replaces its entry.
        assert!(memo.check(&update(1, 2, 8, 9), |_| {
            checks += 1;
            true
        }));
        assert!(memo.check(&update(1, 1, 7, 9), |_| {
            checks += 1;
            true
        }));
        assert_eq!(checks, 4);
    }
}
