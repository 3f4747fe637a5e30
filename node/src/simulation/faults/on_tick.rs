//! A correct replica that also mounts an attack on every retransmission tick: the shape of
//! the forged-Accept, Partial_Sig-spam and reconciliation-request servers, written once.

use std::time::Duration;

use bft_core::crypto::CryptoCounters;
use bft_core::{Envelope, Node, NodeId, Output};
use steward_config::{ServerId, SiteId};

use crate::msg::Message;
use crate::replica::Replica;

/// Timer token of the replica's retransmission tick (the attacks ride on it).
const TICK: u64 = 1;

/// What a Byzantine server sends on top of the protocol on every retransmission tick.
pub trait TickAttack {
    /// The attack's messages for this tick, given the replica's current state.
    fn on_tick(&mut self, replica: &Replica, out: &mut Vec<Output<Message>>);
    /// Crypto work of the attack's own (signing its junk), added to the replica's counters.
    fn crypto_counters(&self) -> CryptoCounters {
        CryptoCounters::default()
    }
}

/// Sends `env` to every server of every site but `me`'s, whose sizes are `sites` (index = site
/// id); returns how many copies.
pub fn to_other_sites(
    me: ServerId,
    sites: &[u32],
    env: &Envelope<Message>,
    out: &mut Vec<Output<Message>>,
) -> u64 {
    let mut sent = 0;
    for (s, &n) in sites.iter().enumerate() {
        let site = SiteId(s as u16);
        if site == me.site {
            continue;
        }
        for i in 0..n {
            out.push(Output::Send {
                to: NodeId::Server(ServerId::new(site, i)),
                env: env.clone(),
            });
            sent += 1;
        }
    }
    sent
}

/// A correct replica that also runs `attack` on every retransmission tick.
pub struct OnTick<A> {
    inner: Replica,
    /// The attack and its counters.
    pub attack: A,
}

impl<A> OnTick<A> {
    /// `inner`, mounting `attack`.
    pub fn new(inner: Replica, attack: A) -> Self {
        OnTick { inner, attack }
    }
}

bft_harness::wrapper_node! {
    impl[A: TickAttack] Wrapper<Inner = Replica> for OnTick<A> {
        fn own_timer(&mut self, now: Duration, token: u64, out: &mut Vec<Output<Message>>) -> bool {
            if token != TICK {
                return false;
            }
            Node::on_timer(&mut self.inner, now, token, out);
            self.attack.on_tick(&self.inner, out);
            true
        }

        fn own_crypto(&self) -> CryptoCounters {
            self.attack.crypto_counters()
        }
    }
}
