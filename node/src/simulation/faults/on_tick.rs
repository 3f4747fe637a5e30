//! A correct replica that also mounts an attack on every retransmission tick: the shape of
//! the forged-Accept, Partial_Sig-spam and reconciliation-request servers, written once.

use std::time::Duration;

use bft_core::crypto::CryptoCounters;
use bft_core::{Envelope, Node, NodeId, Output};
use steward_config::{ServerId, SiteId};

use super::ServerNode;
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

impl<A: TickAttack> Node for OnTick<A> {
    type Msg = Message;
    fn id(&self) -> NodeId {
        Node::id(&self.inner)
    }
    fn start(&mut self, now: Duration, out: &mut Vec<Output<Message>>) {
        Node::start(&mut self.inner, now, out);
    }
    fn on_message(
        &mut self,
        now: Duration,
        from: NodeId,
        msg: &Message,
        out: &mut Vec<Output<Message>>,
    ) {
        Node::on_message(&mut self.inner, now, from, msg, out);
    }
    fn on_timer(&mut self, now: Duration, token: u64, out: &mut Vec<Output<Message>>) {
        Node::on_timer(&mut self.inner, now, token, out);
        if token == TICK {
            self.attack.on_tick(&self.inner, out);
        }
    }
    fn crypto_counters(&self) -> CryptoCounters {
        let mut c = Node::crypto_counters(&self.inner);
        for (a, b) in c.0.iter_mut().zip(self.attack.crypto_counters().0) {
            *a += b;
        }
        c
    }
    fn combine_shares(&self) -> usize {
        Node::combine_shares(&self.inner)
    }
    fn stats(&self) -> Vec<(&'static str, u64)> {
        Node::stats(&self.inner)
    }
    fn gauges(&self) -> Vec<(&'static str, u64)> {
        Node::gauges(&self.inner)
    }
}

impl<A: TickAttack> ServerNode for OnTick<A> {
    fn replica(&self) -> &Replica {
        &self.inner
    }
}
