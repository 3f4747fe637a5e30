//! The crypto a replica or client uses, behind one interface with two implementations: the real
//! schemes (`RealCrypto`: Ed25519/RSA signatures, Shoup threshold RSA) and a fast test double for
//! large simulations (`FastCrypto`) that accepts and rejects exactly the same things and produces
//! values of the same sizes. Every operation is counted by kind, so that the simulator can charge
//! its virtual CPU and runs can report crypto work per update.

use std::collections::HashMap;
use std::sync::Arc;

use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use sha2::{Digest as _, Sha256};
use steward_config::{ServerId, SiteId};
use steward_crypto::signature::{MessageSigner, MessageVerifier, SigningKey, VerifyingKey};
use steward_crypto::threshold::{KeyShare, SignatureShare, ThresholdPublicKey, ThresholdSignature};

use crate::request::ClientId;

/// Crypto operation kinds, for counters and the simulator's cost table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CryptoOp {
    /// Per-message signature.
    Sign = 0,
    /// Per-message signature check.
    Verify = 1,
    /// Threshold share (without its proof: proofs are made only when asked for).
    ShareSign = 2,
    /// Threshold share proof check.
    ShareVerify = 3,
    /// Combining k shares (including the check of the result).
    Combine = 4,
    /// Checking a combined site signature.
    ThresholdVerify = 5,
    /// Proof of correctness for an own share, made when the representative asks.
    ShareProve = 6,
}

/// All kinds, in counter order.
pub const CRYPTO_OPS: [CryptoOp; 7] = [
    CryptoOp::Sign,
    CryptoOp::Verify,
    CryptoOp::ShareSign,
    CryptoOp::ShareVerify,
    CryptoOp::Combine,
    CryptoOp::ThresholdVerify,
    CryptoOp::ShareProve,
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
            CryptoOp::ShareProve => "share_prove",
        }
    }
}

/// Operation counts by kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CryptoCounters(pub [u64; 7]);

impl CryptoCounters {
    /// Count of one kind.
    pub fn get(&self, op: CryptoOp) -> u64 {
        self.0[op as usize]
    }

    /// Counts `n` more operations of kind `op`.
    pub fn add(&mut self, op: CryptoOp, n: u64) {
        self.0[op as usize] += n;
    }

    /// Element-wise difference `self - earlier`.
    pub fn since(&self, earlier: &CryptoCounters) -> CryptoCounters {
        let mut d = [0; 7];
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
    /// Signers whose shares carried no proof when the fallback needed one: not known to be
    /// bad; the representative asks them for the proof.
    pub missing: Vec<u32>,
    /// How many share proofs the fallback checked (0 on the fast path).
    pub proofs_checked: u32,
}

/// What an encoded share is, before any proof is checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShareForm {
    /// Not a share of this site's key (wrong length, value out of range, ...): evidence of a
    /// fault by itself when its sender signed it.
    Malformed,
    /// A share value without a proof: a failed combine does not tell whether it is bad.
    Unproven,
    /// A share with its proof attached.
    Proven,
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
    /// This server's share of its site's signature on `msg`, without a proof (empty if it
    /// holds no share).
    fn share(&mut self, msg: &[u8]) -> Vec<u8>;
    /// `share` (this server's own share on `msg`) with a proof of correctness attached;
    /// empty if it is not an own share.
    fn prove_share(&mut self, msg: &[u8], share: &[u8]) -> Vec<u8>;
    /// The form of an encoded share of `site`'s key.
    fn share_form(&self, site: SiteId, share: &[u8]) -> ShareForm;
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

    /// Attach a proof to the own share (when the representative asks for it).
    pub fn prove_share(&mut self, msg: &[u8], share: &[u8]) -> Vec<u8> {
        self.counters.add(CryptoOp::ShareProve, 1);
        self.backend.prove_share(msg, share)
    }

    /// The form of a share (a cheap decode, no proof check).
    pub fn share_form(&self, site: SiteId, share: &[u8]) -> ShareForm {
        self.backend.share_form(site, share)
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
                .sign_share_unproven(pk, msg)
                .map(|s| pk.encode_share(&s))
                .unwrap_or_default(),
            None => Vec::new(),
        }
    }

    fn prove_share(&mut self, msg: &[u8], share: &[u8]) -> Vec<u8> {
        let Some((pk, key)) = &self.share else {
            return Vec::new();
        };
        pk.decode_share(share)
            .ok()
            .and_then(|s| key.prove_share(pk, msg, &s, &mut self.rng).ok())
            .map(|s| pk.encode_share(&s))
            .unwrap_or_default()
    }

    fn share_form(&self, site: SiteId, share: &[u8]) -> ShareForm {
        match self
            .sites
            .get(site.index())
            .map(|pk| pk.decode_share(share))
        {
            Some(Ok(s)) if s.has_proof() => ShareForm::Proven,
            Some(Ok(_)) => ShareForm::Unproven,
            _ => ShareForm::Malformed,
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
                let slow = !c.bad_signers.is_empty() || !c.missing_proofs.is_empty();
                bad.extend(c.bad_signers.iter().map(|s| u32::from(*s) - 1));
                CombineOutcome {
                    signature: Some(c.signature.0),
                    proofs_checked: if slow { proven(&decoded) } else { 0 },
                    bad,
                    missing: c.missing_proofs.iter().map(|s| u32::from(*s) - 1).collect(),
                }
            }
            Err(steward_crypto::threshold::CombineError::NotEnoughShares {
                bad_signers,
                missing_proofs,
                ..
            }) => {
                let checked = if decoded.len() >= k {
                    proven(&decoded)
                } else {
                    0
                };
                bad.extend(bad_signers.iter().map(|s| u32::from(*s) - 1));
                CombineOutcome {
                    signature: None,
                    bad,
                    proofs_checked: checked,
                    missing: missing_proofs.iter().map(|s| u32::from(*s) - 1).collect(),
                }
            }
            Err(_) => CombineOutcome {
                signature: None,
                bad,
                proofs_checked: proven(&decoded),
                missing: Vec::new(),
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

/// Shares with a proof (what the fallback checks).
fn proven(shares: &[SignatureShare]) -> u32 {
    shares.iter().filter(|s| s.has_proof()).count() as u32
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

    /// The share value ("x_i"): as long as a site signature.
    fn share_x(&self, site: SiteId, signer: u32, msg: &[u8]) -> Vec<u8> {
        self.mac(
            self.tsig_len,
            &[b"share", &site.0.to_be_bytes(), &signer.to_be_bytes(), msg],
        )
    }

    /// A proof for the share value `x` (valid only if `x` is the right one).
    fn share_proof(&self, site: SiteId, signer: u32, msg: &[u8], x: &[u8]) -> Vec<u8> {
        let len = self.share_len.saturating_sub(1 + self.tsig_len).max(1);
        let mut p = self.mac(
            len,
            &[
                b"proof",
                &site.0.to_be_bytes(),
                &signer.to_be_bytes(),
                msg,
                x,
            ],
        );
        p.truncate(len);
        p
    }

    /// Encoded share, as long as the real ones (signer + x_i = 2 + |n| bytes without a proof,
    /// `share_len` with): flag 0, a pad byte and x; or flag 1, x and the proof.
    fn encode_share(x: &[u8], proof: Option<&[u8]>) -> Vec<u8> {
        let mut out = match proof {
            None => vec![0, 0],
            Some(_) => vec![1],
        };
        out.extend_from_slice(x);
        if let Some(p) = proof {
            out.extend_from_slice(p);
        }
        out
    }

    /// (x, proof) of an encoded share, if well-formed.
    fn decode_share<'a>(&self, share: &'a [u8]) -> Option<(&'a [u8], Option<&'a [u8]>)> {
        let (&flag, rest) = share.split_first()?;
        match flag {
            0 if rest.len() == self.tsig_len + 1 && rest[0] == 0 => Some((&rest[1..], None)),
            1 if rest.len() > self.tsig_len => {
                let (x, p) = rest.split_at(self.tsig_len);
                Some((x, Some(p)))
            }
            _ => None,
        }
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
            FastIdentity::Server(id) => {
                FastWorld::encode_share(&self.world.share_x(id.site, id.index, msg), None)
            }
            FastIdentity::Client(_) => Vec::new(),
        }
    }

    fn prove_share(&mut self, msg: &[u8], share: &[u8]) -> Vec<u8> {
        let FastIdentity::Server(id) = self.me else {
            return Vec::new();
        };
        match self.world.decode_share(share) {
            // Like the real scheme: the proof is made for the given x, and verifies only if x
            // is the right value.
            Some((x, _)) => {
                let proof = self.world.share_proof(id.site, id.index, msg, x);
                FastWorld::encode_share(x, Some(&proof))
            }
            None => Vec::new(),
        }
    }

    fn share_form(&self, _site: SiteId, share: &[u8]) -> ShareForm {
        match self.world.decode_share(share) {
            Some((_, Some(_))) => ShareForm::Proven,
            Some((_, None)) => ShareForm::Unproven,
            None => ShareForm::Malformed,
        }
    }

    fn verify_share(&self, site: SiteId, signer: u32, msg: &[u8], share: &[u8]) -> bool {
        match self.world.decode_share(share) {
            Some((x, Some(p))) => {
                x == self.world.share_x(site, signer, msg).as_slice()
                    && p == self.world.share_proof(site, signer, msg, x).as_slice()
            }
            _ => false,
        }
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
        // The fast path needs only the share values.
        let value_ok = |(i, s): &&(u32, &[u8])| {
            self.world
                .decode_share(s)
                .is_some_and(|(x, _)| x == self.world.share_x(site, *i, msg).as_slice())
        };
        if distinct[..k].iter().all(value_ok) {
            return CombineOutcome {
                signature: Some(self.world.site_sig(site, msg)),
                ..CombineOutcome::default()
            };
        }
        // Fallback: shares with proofs are checked; unproven ones are set aside.
        let (mut bad, mut missing, mut good, mut checked) = (Vec::new(), Vec::new(), 0, 0);
        for (i, s) in &distinct {
            match self.world.decode_share(s) {
                None => bad.push(*i),
                Some((_, None)) => missing.push(*i),
                Some((_, Some(_))) => {
                    checked += 1;
                    if self.verify_share(site, *i, msg, s) {
                        good += 1;
                    } else {
                        bad.push(*i);
                    }
                }
            }
        }
        CombineOutcome {
            signature: (good >= k).then(|| self.world.site_sig(site, msg)),
            bad,
            missing,
            proofs_checked: checked,
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
            let proven: Vec<Vec<u8>> = backends
                .iter_mut()
                .zip(&shares)
                .map(|(b, s)| b.prove_share(msg, s))
                .collect();
            let b0: &dyn CryptoBackend = &*backends[0];
            assert_eq!(b0.share_form(SiteId(0), &shares[1]), ShareForm::Unproven);
            assert_eq!(b0.share_form(SiteId(0), &proven[1]), ShareForm::Proven);
            assert_eq!(
                b0.share_form(SiteId(0), &shares[1][..10]),
                ShareForm::Malformed,
                "{name}"
            );
            assert!(
                !b0.verify_share(SiteId(0), 1, msg, &shares[1]),
                "{name}: no proof, nothing to check"
            );
            assert!(b0.verify_share(SiteId(0), 1, msg, &proven[1]), "{name}");
            assert!(
                !b0.verify_share(SiteId(0), 2, msg, &proven[1]),
                "{name}: wrong signer"
            );
            assert!(
                !b0.verify_share(SiteId(0), 1, b"other", &proven[1]),
                "{name}"
            );
            let refs = |sh: &[Vec<u8>], ids: &[u32]| -> Vec<(u32, Vec<u8>)> {
                ids.iter().map(|&i| (i, sh[i as usize].clone())).collect()
            };
            let run = |b: &dyn CryptoBackend, v: &[(u32, Vec<u8>)]| {
                let r: Vec<(u32, &[u8])> = v.iter().map(|(i, s)| (*i, s.as_slice())).collect();
                b.combine(SiteId(0), msg, &r)
            };
            // Unproven shares take the fast path.
            let ok = run(b0, &refs(&shares, &[0, 1, 2]));
            let sig = ok.signature.clone().expect(name);
            assert!(b0.verify_site(SiteId(0), msg, &sig), "{name}");
            assert!(!b0.verify_site(SiteId(0), b"other", &sig), "{name}");
            assert_eq!(ok.proofs_checked, 0, "{name}: fast path");
            assert!(ok.missing.is_empty() && ok.bad.is_empty(), "{name}");
            assert!(
                run(b0, &refs(&shares, &[0, 1, 2])).signature.is_some(),
                "{name}"
            );
            assert!(
                run(b0, &refs(&shares, &[0, 1])).signature.is_none(),
                "{name}"
            );
            // Corrupt share 1's value: the fallback cannot blame anyone without proofs.
            shares[1][40] ^= 1;
            let out = run(b0, &refs(&shares, &[0, 1, 2, 3]));
            assert!(out.signature.is_none(), "{name}");
            assert!(out.bad.is_empty(), "{name}");
            assert_eq!(out.missing, vec![0, 1, 2, 3], "{name}");
            // Proofs made on request: the corrupt value's proof fails and names its signer.
            let reproven: Vec<Vec<u8>> = backends
                .iter_mut()
                .zip(&shares)
                .map(|(b, s)| b.prove_share(msg, s))
                .collect();
            let b0: &dyn CryptoBackend = &*backends[0];
            let out = run(b0, &refs(&reproven, &[0, 1, 2, 3]));
            assert_eq!(out.bad, vec![1], "{name}");
            assert!(out.signature.is_some(), "{name}");
            assert_eq!(out.proofs_checked, 4, "{name}");
            let out = run(b0, &refs(&reproven, &[0, 1, 2]));
            assert_eq!(out.bad, vec![1], "{name}");
            assert!(out.signature.is_none(), "{name}");
            // Mixed: a good proven set of k plus an unproven corrupt one still signs.
            let mut mixed = reproven.clone();
            mixed[1] = shares[1].clone();
            let out = run(b0, &refs(&mixed, &[1, 0, 2, 3]));
            assert!(out.signature.is_some(), "{name}");
        }
    }
}
