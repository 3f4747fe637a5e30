//! A PBFT replica fed arbitrary input sequences (see `steward_fuzz` for the format): messages
//! from any replica or client, clock jumps, timers and crash-restarts. It never panics, never
//! emits an unbounded burst of outputs, never keeps unbounded timers.
#![no_main]
use bft_core::crypto::{Crypto, CryptoBackend, FastCrypto, FastIdentity, FastWorld};
use bft_core::NodeId;
use libfuzzer_sys::fuzz_target;
use pbft::replica::{Replica, ReplicaConfig};
use steward_config::{ServerId, SiteId};
use steward_fuzz::{run, AcceptAll};

/// Four replicas (f = 1), one per site; replica 0 is the first primary.
const N: u32 = 4;

fn sender(b: u8) -> NodeId {
    match b % 8 {
        r if u32::from(r) < N => NodeId::Replica(u32::from(r)),
        _ => NodeId::Client(u32::from(b / 8)),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&scenario, steps)) = data.split_first() else {
        return;
    };
    let me = u32::from(scenario >> 1) % N;
    let accept_all = scenario & 1 == 1;
    let world = FastWorld::new(7, 64, 0, 0, Vec::new());
    let make = || {
        let sites = (0..N as u16).map(SiteId).collect();
        let mut cfg = ReplicaConfig::new(me, sites, 1, 0);
        // Small checkpoint interval and window, so that short inputs reach checkpoints,
        // garbage collection and the water marks.
        cfg.checkpoint_interval = 4;
        cfg.log_size = 8;
        let fast = Box::new(FastCrypto::new(
            world.clone(),
            FastIdentity::Server(ServerId::new(SiteId(me as u16), me)),
        ));
        let backend: Box<dyn CryptoBackend> = if accept_all {
            Box::new(AcceptAll(fast))
        } else {
            fast
        };
        Replica::new(cfg, Crypto::new(backend))
    };
    run(steps, make, sender);
});
