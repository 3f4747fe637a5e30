//! The crypto a replica or client uses, behind one interface with two implementations: the real
//! schemes (`RealCrypto`: Ed25519/RSA signatures, Shoup threshold RSA) and a fast test double for
//! large simulations (`FastCrypto`) that accepts and rejects exactly the same things and produces
//! values of the same sizes. Every operation is counted by kind, so that the simulator can charge
//! its virtual CPU and runs can report crypto work per update.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use sha2::{Digest as _, Sha256};
use steward_config::{ServerId, SiteId};
use steward_crypto::signature::{MessageSigner, MessageVerifier, SigningKey, VerifyingKey};
use steward_crypto::threshold::{KeyShare, SignatureShare, ThresholdPublicKey, ThresholdSignature};

use crate::msg::ClientId;

/// Crypto operation kinds, for counters and the simulator's cost table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CryptoOp {
    /// Per-message signature.
    Sign = 0,
    /// Per-message signature check.
    Verify = 1,
    /// Threshold share with proof.
    ShareSign = 2,
    /// Threshold share proof check.
    ShareVerify = 3,
    /// Combining k shares (including the check of the result).
    Combine = 4,
    /// Checking a combined site signature.
    ThresholdVerify = 5,
}

/// All kinds, in counter order.
pub const CRYPTO_OPS: [CryptoOp; 6] = [
    CryptoOp::Sign,
    CryptoOp::Verify,
    CryptoOp::ShareSign,
    CryptoOp::ShareVerify,
    CryptoOp::Combine,
    CryptoOp::ThresholdVerify,
];

impl CryptoOp {
    /// Name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            CryptoOp::Sign => "sign",
            CryptoOp::Verify => "verify",
            CryptoOp::ShareSign => "share_sign",
            CryptoOp::ShareVerify => "share_verify",
            CryptoOp::Combine => "combine",
            CryptoOp::ThresholdVerify => "threshold_verify",
        }
    }
}

/// Operation counts by kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CryptoCounters(pub [u64; 6]);

impl CryptoCounters {
    /// Count of one kind.
    pub fn get(&self, op: CryptoOp) -> u64 {
        self.0[op as usize]
    }

    fn add(&mut self, op: CryptoOp, n: u64) {
        self.0[op as usize] += n;
    }

    /// Element-wise difference `self - earlier`.
    pub fn since(&self, earlier: &CryptoCounters) -> CryptoCounters {
        let mut d = [0; 6];
        for (i, v) in d.iter_mut().enumerate() {
            *v = self.0[i] - earlier.0[i];
        }
        CryptoCounters(d)
    }
}

/// What a combine attempt produced.
#[derive(Clone, Debug, Default)]
pub struct CombineOutcome {
    /// The site signature, if k valid shares were found.
    pub signature: Option<Vec<u8>>,
    /// Signers (site indices) whose shares were proven bad.
    pub bad: Vec<u32>,
    /// How many share proofs the fallback checked (0 on the fast path).
    pub proofs_checked: u32,
}

/// The crypto a node needs. Implementations hold the node's own secrets and everyone's public
/// keys. Site-local signer indices are 0-based (`ServerId::index`).
pub trait CryptoBackend: Send {
    /// Sign with the node's own key.
    fn sign(&mut self, msg: &[u8]) -> Vec<u8>;
    /// Check a server's signature.
    fn verify_server(&self, id: ServerId, msg: &[u8], sig: &[u8]) -> bool;
    /// Check a client's signature.
    fn verify_client(&self, client: ClientId, msg: &[u8], sig: &[u8]) -> bool;
    /// This server's share of its site's signature on `msg` (empty if it holds no share).
    fn share(&mut self, msg: &[u8]) -> Vec<u8>;
    /// Check one share's proof.
    fn verify_share(&self, site: SiteId, signer: u32, msg: &[u8], share: &[u8]) -> bool;
    /// Combine shares (signer index, encoded share): fast path first, proofs only on failure.
    fn combine(&self, site: SiteId, msg: &[u8], shares: &[(u32, &[u8])]) -> CombineOutcome;
    /// Check a site signature.
    fn verify_site(&self, site: SiteId, msg: &[u8], sig: &[u8]) -> bool;
    /// Shares needed for a site signature.
    fn quorum(&self, site: SiteId) -> usize;
}

/// A backend plus operation counters; what protocol code calls.
pub struct Crypto {
    backend: Box<dyn CryptoBackend>,
    counters: CryptoCounters,
}

impl Crypto {
    /// Wrap a backend.
    pub fn new(backend: Box<dyn CryptoBackend>) -> Self {
        Crypto {
            backend,
            counters: CryptoCounters::default(),
        }
    }

    /// Operations performed so far.
    pub fn counters(&self) -> CryptoCounters {
        self.counters
    }

    /// Sign with the own key.
    pub fn sign(&mut self, msg: &[u8]) -> Vec<u8> {
        self.counters.add(CryptoOp::Sign, 1);
        self.backend.sign(msg)
    }

    /// Check a server signature.
    pub fn verify_server(&mut self, id: ServerId, msg: &[u8], sig: &[u8]) -> bool {
        self.counters.add(CryptoOp::Verify, 1);
        self.backend.verify_server(id, msg, sig)
    }

    /// Check a client signature.
    pub fn verify_client(&mut self, client: ClientId, msg: &[u8], sig: &[u8]) -> bool {
        self.counters.add(CryptoOp::Verify, 1);
        self.backend.verify_client(client, msg, sig)
    }

    /// Produce the own share.
    pub fn share(&mut self, msg: &[u8]) -> Vec<u8> {
        self.counters.add(CryptoOp::ShareSign, 1);
        self.backend.share(msg)
    }

    /// Check one share's proof.
    pub fn verify_share(&mut self, site: SiteId, signer: u32, msg: &[u8], share: &[u8]) -> bool {
        self.counters.add(CryptoOp::ShareVerify, 1);
        self.backend.verify_share(site, signer, msg, share)
    }

    /// Combine shares.
    pub fn combine(&mut self, site: SiteId, msg: &[u8], shares: &[(u32, &[u8])]) -> CombineOutcome {
        let out = self.backend.combine(site, msg, shares);
        self.counters.add(CryptoOp::Combine, 1);
        self.counters
            .add(CryptoOp::ShareVerify, u64::from(out.proofs_checked));
        out
    }

    /// Check a site signature.
    pub fn verify_site(&mut self, site: SiteId, msg: &[u8], sig: &[u8]) -> bool {
        self.counters.add(CryptoOp::ThresholdVerify, 1);
        self.backend.verify_site(site, msg, sig)
    }

    /// Shares needed at `site`.
    pub fn quorum(&self, site: SiteId) -> usize {
        self.backend.quorum(site)
    }
}

/// Virtual CPU cost of each operation, for the simulator.
#[derive(Clone, Debug, PartialEq)]
pub struct CostTable {
    /// Per-message signing.
    pub sign: Duration,
    /// Per-message verification.
    pub verify: Duration,
    /// Threshold share + proof.
    pub share_sign: Duration,
    /// Threshold share proof check.
    pub share_verify: Duration,
    /// Combine with k = 3 shares.
    pub combine_k3: Duration,
    /// Combine with k = 11 shares (interpolated linearly in k between the two).
    pub combine_k11: Duration,
    /// Site signature check.
    pub threshold_verify: Duration,
}

impl CostTable {
    /// The paper's 2006 testbed (steward.md §11/§13.1): RSA-1024 sign 1.3 ms, verify 0.07 ms;
    /// threshold (16, 11) share + proof 3.9 ms, combine 5.6 ms. Share-proof checks are not
    /// published; we charge the share cost. Combined-signature checks are plain RSA verifies.
    pub fn paper() -> Self {
        let ms = |x: f64| Duration::from_secs_f64(x / 1e3);
        CostTable {
            sign: ms(1.3),
            verify: ms(0.07),
            share_sign: ms(3.9),
            share_verify: ms(3.9),
            combine_k3: ms(5.6),
            combine_k11: ms(5.6),
            threshold_verify: ms(0.07),
        }
    }

    /// This project's 2-core development machine, from `loadgen crypto-bench` (README):
    /// Ed25519 signatures, 1024-bit threshold keys.
    pub fn measured() -> Self {
        let us = |x: f64| Duration::from_secs_f64(x / 1e6);
        CostTable {
            sign: us(13.6),
            verify: us(33.0),
            share_sign: us(1742.0),
            share_verify: us(1528.0),
            combine_k3: us(543.0),
            combine_k11: us(831.0),
            threshold_verify: us(34.2),
        }
    }

    /// No cost at all (pure protocol logic).
    pub fn zero() -> Self {
        CostTable {
            sign: Duration::ZERO,
            verify: Duration::ZERO,
            share_sign: Duration::ZERO,
            share_verify: Duration::ZERO,
            combine_k3: Duration::ZERO,
            combine_k11: Duration::ZERO,
            threshold_verify: Duration::ZERO,
        }
    }

    /// Cost of a combine with `k` shares.
    pub fn combine(&self, k: usize) -> Duration {
        let (a, b) = (
            self.combine_k3.as_secs_f64(),
            self.combine_k11.as_secs_f64(),
        );
        let t = (k as f64 - 3.0) / 8.0;
        Duration::from_secs_f64((a + (b - a) * t).max(0.0))
    }

    /// Total cost of the operations in `ops`, for combines of `k` shares.
    pub fn charge(&self, ops: &CryptoCounters, k: usize) -> Duration {
        let n = |op| ops.get(op) as u32;
        self.sign * n(CryptoOp::Sign)
            + self.verify * n(CryptoOp::Verify)
            + self.share_sign * n(CryptoOp::ShareSign)
            + self.share_verify * n(CryptoOp::ShareVerify)
            + self.combine(k) * n(CryptoOp::Combine)
            + self.threshold_verify * n(CryptoOp::ThresholdVerify)
    }
}

// ---------------------------------------------------------------------------------------------
// Real crypto.

/// The real schemes, for one node: its own keys plus everyone's public keys.
pub struct RealCrypto {
    signing: Option<SigningKey>,
    share: Option<(ThresholdPublicKey, KeyShare)>,
    sites: Vec<ThresholdPublicKey>,
    servers: HashMap<ServerId, VerifyingKey>,
    clients: Vec<VerifyingKey>,
    rng: ChaCha20Rng,
}

impl RealCrypto {
    /// Assemble from keys. `share` is the own site's public key and this server's share.
    pub fn new(
        signing: Option<SigningKey>,
        share: Option<(ThresholdPublicKey, KeyShare)>,
        sites: Vec<ThresholdPublicKey>,
        servers: HashMap<ServerId, VerifyingKey>,
        clients: Vec<VerifyingKey>,
        seed: u64,
    ) -> Self {
        RealCrypto {
            signing,
            share,
            sites,
            servers,
            clients,
            rng: ChaCha20Rng::seed_from_u64(seed),
        }
    }
}

impl CryptoBackend for RealCrypto {
    fn sign(&mut self, msg: &[u8]) -> Vec<u8> {
        self.signing
            .as_ref()
            .map(|k| k.sign(msg))
            .unwrap_or_default()
    }

    fn verify_server(&self, id: ServerId, msg: &[u8], sig: &[u8]) -> bool {
        self.servers
            .get(&id)
            .is_some_and(|k| k.verify(msg, sig).is_ok())
    }

    fn verify_client(&self, client: ClientId, msg: &[u8], sig: &[u8]) -> bool {
        self.clients
            .get(client as usize)
            .is_some_and(|k| k.verify(msg, sig).is_ok())
    }

    fn share(&mut self, msg: &[u8]) -> Vec<u8> {
        match &self.share {
            Some((pk, share)) => share
                .sign(pk, msg, &mut self.rng)
                .map(|s| pk.encode_share(&s))
                .unwrap_or_default(),
            None => Vec::new(),
        }
    }

    fn verify_share(&self, site: SiteId, signer: u32, msg: &[u8], share: &[u8]) -> bool {
        let Some(pk) = self.sites.get(site.index()) else {
            return false;
        };
        match pk.decode_share(share) {
            Ok(s) => u32::from(s.signer) == signer + 1 && pk.verify_share(msg, &s).is_ok(),
            Err(_) => false,
        }
    }

    fn combine(&self, site: SiteId, msg: &[u8], shares: &[(u32, &[u8])]) -> CombineOutcome {
        let Some(pk) = self.sites.get(site.index()) else {
            return CombineOutcome::default();
        };
        let mut bad = Vec::new();
        let decoded: Vec<SignatureShare> = shares
            .iter()
            .filter_map(|(idx, bytes)| match pk.decode_share(bytes) {
                Ok(s) if u32::from(s.signer) == idx + 1 => Some(s),
                _ => {
                    bad.push(*idx);
                    None
                }
            })
            .collect();
        let k = usize::from(pk.quorum());
        match pk.combine(msg, &decoded) {
            Ok(c) => {
                let slow = !c.bad_signers.is_empty();
                bad.extend(c.bad_signers.iter().map(|s| u32::from(*s) - 1));
                CombineOutcome {
                    signature: Some(c.signature.0),
                    proofs_checked: if slow { decoded.len() as u32 } else { 0 },
                    bad,
                }
            }
            Err(steward_crypto::threshold::CombineError::NotEnoughShares {
                bad_signers, ..
            }) => {
                let checked = if decoded.len() >= k {
                    decoded.len() as u32
                } else {
                    0
                };
                bad.extend(bad_signers.iter().map(|s| u32::from(*s) - 1));
                CombineOutcome {
                    signature: None,
                    bad,
                    proofs_checked: checked,
                }
            }
            Err(_) => CombineOutcome {
                signature: None,
                bad,
                proofs_checked: decoded.len() as u32,
            },
        }
    }

    fn verify_site(&self, site: SiteId, msg: &[u8], sig: &[u8]) -> bool {
        self.sites
            .get(site.index())
            .is_some_and(|pk| pk.verify(msg, &ThresholdSignature(sig.to_vec())))
    }

    fn quorum(&self, site: SiteId) -> usize {
        self.sites
            .get(site.index())
            .map(|pk| usize::from(pk.quorum()))
            .unwrap_or(usize::MAX)
    }
}

// ---------------------------------------------------------------------------------------------
// Fast test double.

/// Shared secrets of a simulated world for [`FastCrypto`]. Values are keyed hashes padded to the
/// real schemes' sizes; only holders of the world can produce them, and simulated Byzantine
/// code never forges on behalf of others.
#[derive(Debug)]
pub struct FastWorld {
    secret: [u8; 32],
    sig_len: usize,
    share_len: usize,
    tsig_len: usize,
    quorums: Vec<usize>,
}

impl FastWorld {
    /// A world with the given sizes and per-site quorums.
    pub fn new(
        seed: u64,
        sig_len: usize,
        share_len: usize,
        tsig_len: usize,
        quorums: Vec<usize>,
    ) -> Arc<Self> {
        let secret =
            Sha256::digest([b"fast-world".as_slice(), &seed.to_be_bytes()].concat()).into();
        Arc::new(FastWorld {
            secret,
            sig_len,
            share_len,
            tsig_len,
            quorums,
        })
    }

    fn mac(&self, len: usize, parts: &[&[u8]]) -> Vec<u8> {
        let mut h = Sha256::new();
        h.update(self.secret);
        for p in parts {
            h.update((p.len() as u64).to_be_bytes());
            h.update(p);
        }
        let d: [u8; 32] = h.finalize().into();
        let mut out = d.to_vec();
        out.resize(len.max(32), 0xa5);
        out
    }

    fn server_sig(&self, id: ServerId, msg: &[u8]) -> Vec<u8> {
        self.mac(
            self.sig_len,
            &[
                b"server",
                &id.site.0.to_be_bytes(),
                &id.index.to_be_bytes(),
                msg,
            ],
        )
    }

    fn client_sig(&self, client: ClientId, msg: &[u8]) -> Vec<u8> {
        self.mac(self.sig_len, &[b"client", &client.to_be_bytes(), msg])
    }

    fn share(&self, site: SiteId, signer: u32, msg: &[u8]) -> Vec<u8> {
        self.mac(
            self.share_len,
            &[b"share", &site.0.to_be_bytes(), &signer.to_be_bytes(), msg],
        )
    }

    fn site_sig(&self, site: SiteId, msg: &[u8]) -> Vec<u8> {
        self.mac(self.tsig_len, &[b"site", &site.0.to_be_bytes(), msg])
    }
}

/// Who a [`FastCrypto`] instance signs as.
#[derive(Clone, Copy, Debug)]
pub enum FastIdentity {
    /// A server (signs and holds a share).
    Server(ServerId),
    /// A client.
    Client(ClientId),
}

/// The fast double for one node.
pub struct FastCrypto {
    world: Arc<FastWorld>,
    me: FastIdentity,
}

impl FastCrypto {
    /// The double for `me` in `world`.
    pub fn new(world: Arc<FastWorld>, me: FastIdentity) -> Self {
        FastCrypto { world, me }
    }
}

impl CryptoBackend for FastCrypto {
    fn sign(&mut self, msg: &[u8]) -> Vec<u8> {
        match self.me {
            FastIdentity::Server(id) => self.world.server_sig(id, msg),
            FastIdentity::Client(c) => self.world.client_sig(c, msg),
        }
    }

    fn verify_server(&self, id: ServerId, msg: &[u8], sig: &[u8]) -> bool {
        self.world.server_sig(id, msg) == sig
    }

    fn verify_client(&self, client: ClientId, msg: &[u8], sig: &[u8]) -> bool {
        self.world.client_sig(client, msg) == sig
    }

    fn share(&mut self, msg: &[u8]) -> Vec<u8> {
        match self.me {
            FastIdentity::Server(id) => self.world.share(id.site, id.index, msg),
            FastIdentity::Client(_) => Vec::new(),
        }
    }

    fn verify_share(&self, site: SiteId, signer: u32, msg: &[u8], share: &[u8]) -> bool {
        self.world.share(site, signer, msg) == share
    }

    fn combine(&self, site: SiteId, msg: &[u8], shares: &[(u32, &[u8])]) -> CombineOutcome {
        // Same behaviour as the real fast path: combine the first k distinct shares, "verify"
        // the result (valid iff all k were valid); on failure check every proof.
        let k = self.quorum(site);
        let mut seen = std::collections::HashSet::new();
        let distinct: Vec<&(u32, &[u8])> = shares.iter().filter(|(i, _)| seen.insert(*i)).collect();
        if distinct.len() < k {
            return CombineOutcome::default();
        }
        let ok = |(i, s): &&(u32, &[u8])| self.verify_share(site, *i, msg, s);
        if distinct[..k].iter().all(ok) {
            return CombineOutcome {
                signature: Some(self.world.site_sig(site, msg)),
                bad: Vec::new(),
                proofs_checked: 0,
            };
        }
        let bad: Vec<u32> = distinct
            .iter()
            .filter(|s| !ok(s))
            .map(|(i, _)| *i)
            .collect();
        let good = distinct.len() - bad.len();
        CombineOutcome {
            signature: (good >= k).then(|| self.world.site_sig(site, msg)),
            bad,
            proofs_checked: distinct.len() as u32,
        }
    }

    fn verify_site(&self, site: SiteId, msg: &[u8], sig: &[u8]) -> bool {
        self.world.site_sig(site, msg) == sig
    }

    fn quorum(&self, site: SiteId) -> usize {
        self.world
            .quorums
            .get(site.index())
            .copied()
            .unwrap_or(usize::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use steward_crypto::threshold::deal_from_seed;

    fn sid(site: u16, i: u32) -> ServerId {
        ServerId::new(SiteId(site), i)
    }

    /// The double and the real schemes agree on every accept/reject decision we rely on.
    #[test]
    fn fast_double_matches_real_behaviour() {
        let d = deal_from_seed(3, 512, 4, 3).unwrap();
        let world = FastWorld::new(1, 64, 307, 128, vec![3]);
        let mut real: Vec<RealCrypto> = d
            .shares
            .iter()
            .map(|s| {
                RealCrypto::new(
                    None,
                    Some((d.public.clone(), s.clone())),
                    vec![d.public.clone()],
                    HashMap::new(),
                    vec![],
                    5,
                )
            })
            .collect();
        let mut fast: Vec<FastCrypto> = (0..4)
            .map(|i| FastCrypto::new(world.clone(), FastIdentity::Server(sid(0, i))))
            .collect();
        for (name, backends) in [
            (
                "real",
                real.iter_mut()
                    .map(|b| b as &mut dyn CryptoBackend)
                    .collect::<Vec<_>>(),
            ),
            (
                "fast",
                fast.iter_mut()
                    .map(|b| b as &mut dyn CryptoBackend)
                    .collect(),
            ),
        ] {
            let mut backends = backends;
            let msg = b"proposal";
            let mut shares: Vec<Vec<u8>> = backends.iter_mut().map(|b| b.share(msg)).collect();
            let b0: &dyn CryptoBackend = &*backends[0];
            assert!(b0.verify_share(SiteId(0), 1, msg, &shares[1]), "{name}");
            assert!(
                !b0.verify_share(SiteId(0), 2, msg, &shares[1]),
                "{name}: wrong signer"
            );
            assert!(
                !b0.verify_share(SiteId(0), 1, b"other", &shares[1]),
                "{name}"
            );
            let refs = |sh: &[Vec<u8>], ids: &[u32]| -> Vec<(u32, Vec<u8>)> {
                ids.iter().map(|&i| (i, sh[i as usize].clone())).collect()
            };
            let run = |b: &dyn CryptoBackend, v: &[(u32, Vec<u8>)]| {
                let r: Vec<(u32, &[u8])> = v.iter().map(|(i, s)| (*i, s.as_slice())).collect();
                b.combine(SiteId(0), msg, &r)
            };
            let ok = run(b0, &refs(&shares, &[0, 1, 2]));
            let sig = ok.signature.clone().expect(name);
            assert!(b0.verify_site(SiteId(0), msg, &sig), "{name}");
            assert!(!b0.verify_site(SiteId(0), b"other", &sig), "{name}");
            assert_eq!(ok.proofs_checked, 0, "{name}: fast path");
            assert!(
                run(b0, &refs(&shares, &[0, 1])).signature.is_none(),
                "{name}"
            );
            // Corrupt share 1: named by the fallback; with 3 good others it still signs.
            shares[1][40] ^= 1;
            let out = run(b0, &refs(&shares, &[0, 1, 2, 3]));
            assert_eq!(out.bad, vec![1], "{name}");
            assert!(out.signature.is_some(), "{name}");
            assert_eq!(out.proofs_checked, 4, "{name}");
            let out = run(b0, &refs(&shares, &[0, 1, 2]));
            assert_eq!(out.bad, vec![1], "{name}");
            assert!(out.signature.is_none(), "{name}");
        }
    }

    #[test]
    fn cost_table_charges_by_kind() {
        let t = CostTable::paper();
        let mut c = CryptoCounters::default();
        c.add(CryptoOp::Sign, 2);
        c.add(CryptoOp::Combine, 1);
        assert_eq!(t.charge(&c, 11), Duration::from_micros(2600 + 5600));
        let m = CostTable::measured();
        assert_eq!(m.combine(3), m.combine_k3);
        assert_eq!(m.combine(11), m.combine_k11);
    }
}
