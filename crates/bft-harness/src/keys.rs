//! The key material of a simulated world, for either protocol: the fast double's shared
//! world, or with [`CryptoMode::Real`] the protocol's real keys (a [`SigningKeys`] for every
//! server and client, plus what the protocol deals on top of it, such as Steward's threshold
//! shares).

use std::collections::HashMap;
use std::sync::Arc;

use bft_core::crypto::{CryptoBackend, FastCrypto, FastIdentity, FastWorld, RealCrypto};
use steward_config::ServerId;
use steward_crypto::signature::{MessageSigner, SigningKey};
use steward_crypto::threshold::{KeyShare, ThresholdPublicKey};

use crate::CryptoMode;

/// The keys of a world whose real key material is `R`.
pub struct SimKeys<R> {
    world: Arc<FastWorld>,
    real: Option<R>,
}

impl<R> SimKeys<R> {
    /// The fast double's `world`, and in [`CryptoMode::Real`] the key material `real` makes
    /// (it is not called otherwise).
    pub fn new(mode: CryptoMode, world: Arc<FastWorld>, real: impl FnOnce() -> R) -> Self {
        SimKeys {
            world,
            real: (mode == CryptoMode::Real).then(real),
        }
    }

    /// The crypto of node `id`: what `real` makes of the real key material, or the fast
    /// double.
    pub fn backend(
        &self,
        id: FastIdentity,
        real: impl FnOnce(&R) -> RealCrypto,
    ) -> Box<dyn CryptoBackend> {
        match &self.real {
            Some(r) => Box::new(real(r)),
            None => Box::new(FastCrypto::new(self.world.clone(), id)),
        }
    }
}

/// A signing key for every server and every client of a world.
pub struct SigningKeys {
    /// The servers' (or replicas') keys.
    pub servers: HashMap<ServerId, SigningKey>,
    /// The clients' keys, by client number.
    pub clients: Vec<SigningKey>,
}

impl SigningKeys {
    /// Keys made by `new_key` for each of `servers` in turn, then for `clients` clients.
    pub fn generate(
        servers: impl IntoIterator<Item = ServerId>,
        clients: u32,
        mut new_key: impl FnMut() -> SigningKey,
    ) -> Self {
        let servers = servers.into_iter().map(|id| (id, new_key())).collect();
        let clients = (0..clients).map(|_| new_key()).collect();
        SigningKeys { servers, clients }
    }

    /// The real crypto of a node whose own key is `own` (and threshold `share`, for a
    /// Steward server), knowing the sites' threshold keys `sites` and everyone's public keys;
    /// `seed` seeds its randomness.
    pub fn crypto(
        &self,
        own: &SigningKey,
        share: Option<(ThresholdPublicKey, KeyShare)>,
        sites: Vec<ThresholdPublicKey>,
        seed: u64,
    ) -> RealCrypto {
        let servers = self
            .servers
            .iter()
            .map(|(id, k)| (*id, k.verifying_key()))
            .collect();
        let clients = self.clients.iter().map(|k| k.verifying_key()).collect();
        RealCrypto::new(Some(own.clone()), share, sites, servers, clients, seed)
    }

    /// The real crypto of client `c`, knowing the sites' threshold keys `sites`.
    pub fn client(&self, c: u32, sites: Vec<ThresholdPublicKey>) -> RealCrypto {
        self.crypto(&self.clients[c as usize], None, sites, u64::from(c))
    }
}
