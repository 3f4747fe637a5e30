//! A Steward replica fed arbitrary input sequences (see `steward_fuzz` for the format):
//! messages from any server of any site or any client, clock jumps, timers and crash-restarts.
//! It never panics, never emits an unbounded burst of outputs, never keeps unbounded timers.
#![no_main]
use bft_core::NodeId;
use libfuzzer_sys::fuzz_target;
use steward::crypto::{Crypto, FastCrypto, FastIdentity, FastWorld};
use steward::replica::{Replica, ReplicaConfig};
use steward_config::{ServerId, SiteId};
use steward_fuzz::{run, AcceptAll};

/// Three sites of four servers (f = 1 each); site 0 leads the first global view.
const SITES: u16 = 3;

fn sender(b: u8) -> NodeId {
    match b % 16 {
        s if s < 12 => NodeId::Server(ServerId::new(SiteId(u16::from(s) / 4), u32::from(s % 4))),
        _ => NodeId::Client(u32::from(b / 16)),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&scenario, steps)) = data.split_first() else {
        return;
    };
    // The leader site's representative, a leader-site server, a non-leader representative and
    // a non-leader server.
    let me = match (scenario >> 1) % 4 {
        0 => ServerId::new(SiteId(0), 0),
        1 => ServerId::new(SiteId(0), 2),
        2 => ServerId::new(SiteId(1), 0),
        _ => ServerId::new(SiteId(2), 3),
    };
    let accept_all = scenario & 1 == 1;
    let world = FastWorld::new(7, 64, 307, 128, vec![3; SITES as usize]);
    let make = || {
        let fast = Box::new(FastCrypto::new(world.clone(), FastIdentity::Server(me)));
        let backend: Box<dyn steward::crypto::CryptoBackend> = if accept_all {
            Box::new(AcceptAll(fast))
        } else {
            fast
        };
        Replica::new(
            ReplicaConfig::new(me, vec![4; SITES as usize], vec![1; SITES as usize]),
            Crypto::new(backend),
        )
    };
    run(steps, make, sender);
});
