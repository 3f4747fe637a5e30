//! The one interface every protocol core implements, so that one simulator adapter and one
//! runtime adapter drive Steward's and PBFT's replicas and clients alike.

use std::time::Duration;

use steward_config::ServerId;

use crate::crypto::CryptoCounters;
use crate::durable::{Store, Write};
use crate::request::{ClientId, Digest};
use crate::wire::{Envelope, Wire};

/// A participant of either protocol, as a sender or a destination.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NodeId {
    /// A Steward server (site and index in the site).
    Server(ServerId),
    /// A flat replica (PBFT), numbered from 0 as in the topology's `[pbft]` placement.
    Replica(u32),
    /// A client.
    Client(ClientId),
}

/// One executed update, reported for the safety checker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Executed {
    /// Global sequence number.
    pub seq: u64,
    /// Position in the sequence number's batch.
    pub index: u32,
    /// Proposing client.
    pub client: ClientId,
    /// Client timestamp.
    pub ts: u64,
    /// Update digest.
    pub digest: Digest,
    /// SHA-256 of the execution result (correct servers must agree on it).
    pub result: Digest,
}

/// One update a client proposed, for the safety checker: (client, ts, digest).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proposed {
    /// Client.
    pub client: ClientId,
    /// Timestamp.
    pub ts: u64,
    /// Update digest.
    pub digest: Digest,
}

/// What a core asks its driver to do.
#[derive(Clone, Debug)]
pub enum Output<M> {
    /// Send a message (a message to oneself is delivered by the driver before the next input).
    Send {
        /// Destination.
        to: NodeId,
        /// The message and its encoding.
        env: Envelope<M>,
    },
    /// Call [`Node::on_timer`] with `token` after `after`.
    Timer {
        /// Delay.
        after: Duration,
        /// Token handed back.
        token: u64,
    },
    /// A replica executed an update.
    Executed(Executed),
    /// A client proposed an update.
    Proposed(Proposed),
    /// A client's operation completed.
    Completed {
        /// The operation's timestamp.
        ts: u64,
        /// "update" or "query".
        kind: &'static str,
        /// From the first send to the accepted result.
        latency: Duration,
        /// The update's execution result, or the agreed query result.
        result: Vec<u8>,
    },
    /// A client rejected a reply (a correct replica never causes one).
    BadReply(&'static str),
    /// Change the node's durable store. The driver makes every write of a step durable
    /// before it transmits any message of that step (see [`crate::durable`]).
    Persist(Write),
}

/// A sans-IO protocol participant: inputs in, [`Output`]s out. `now` is the driver's clock.
pub trait Node {
    /// The protocol's messages.
    type Msg: Wire;
    /// Who this node is.
    fn id(&self) -> NodeId;
    /// Restores what the node persisted before it crashed (called once, before
    /// [`Node::start`], when the driver has a store from an earlier run). The default keeps
    /// nothing: a node that persists nothing has nothing to restore.
    fn recover(&mut self, _store: &Store) {}
    /// First outputs (timers, initial sends).
    fn start(&mut self, now: Duration, out: &mut Vec<Output<Self::Msg>>);
    /// A decoded message from `from` (authenticated by the transport).
    fn on_message(
        &mut self,
        now: Duration,
        from: NodeId,
        msg: &Self::Msg,
        out: &mut Vec<Output<Self::Msg>>,
    );
    /// A timer armed by [`Output::Timer`] fired.
    fn on_timer(&mut self, now: Duration, token: u64, out: &mut Vec<Output<Self::Msg>>);
    /// Crypto operations so far (the simulator charges their cost).
    fn crypto_counters(&self) -> CryptoCounters;
    /// Shares a threshold combine of this node takes (the combine's cost depends on it).
    fn combine_shares(&self) -> usize {
        3
    }
    /// A client stops issuing operations (replicas ignore it).
    fn stop(&mut self) {}
    /// Protocol counters for reports and the node's final `stats` line.
    fn stats(&self) -> Vec<(&'static str, u64)> {
        Vec::new()
    }
    /// Current values of the node's state (views, queue lengths) for live metrics; unlike
    /// [`Node::stats`] they may go down.
    fn gauges(&self) -> Vec<(&'static str, u64)> {
        Vec::new()
    }
    /// How many times this node restarted from its durable store (a restarted replica
    /// executes again what it executed before its crash: its state was in memory).
    fn incarnation(&self) -> u64 {
        0
    }
}

impl<N: Node + ?Sized> Node for Box<N> {
    type Msg = N::Msg;
    fn id(&self) -> NodeId {
        (**self).id()
    }
    fn recover(&mut self, store: &Store) {
        (**self).recover(store)
    }
    fn start(&mut self, now: Duration, out: &mut Vec<Output<Self::Msg>>) {
        (**self).start(now, out)
    }
    fn on_message(
        &mut self,
        now: Duration,
        from: NodeId,
        msg: &Self::Msg,
        out: &mut Vec<Output<Self::Msg>>,
    ) {
        (**self).on_message(now, from, msg, out)
    }
    fn on_timer(&mut self, now: Duration, token: u64, out: &mut Vec<Output<Self::Msg>>) {
        (**self).on_timer(now, token, out)
    }
    fn crypto_counters(&self) -> CryptoCounters {
        (**self).crypto_counters()
    }
    fn combine_shares(&self) -> usize {
        (**self).combine_shares()
    }
    fn stop(&mut self) {
        (**self).stop()
    }
    fn stats(&self) -> Vec<(&'static str, u64)> {
        (**self).stats()
    }
    fn gauges(&self) -> Vec<(&'static str, u64)> {
        (**self).gauges()
    }
    fn incarnation(&self) -> u64 {
        (**self).incarnation()
    }
}

/// Any [`Node`]'s inputs with the outputs returned, for tests and tools that drive one node
/// by hand (the drivers pass their own buffers).
pub trait NodeExt: Node {
    /// [`Node::start`], returning the outputs.
    fn started(&mut self, now: Duration) -> Vec<Output<Self::Msg>> {
        let mut out = Vec::new();
        self.start(now, &mut out);
        out
    }
    /// [`Node::on_message`], returning the outputs.
    fn handle(&mut self, now: Duration, from: NodeId, msg: &Self::Msg) -> Vec<Output<Self::Msg>> {
        let mut out = Vec::new();
        self.on_message(now, from, msg, &mut out);
        out
    }
    /// [`Node::on_timer`], returning the outputs.
    fn fire(&mut self, now: Duration, token: u64) -> Vec<Output<Self::Msg>> {
        let mut out = Vec::new();
        self.on_timer(now, token, &mut out);
        out
    }
}

impl<N: Node + ?Sized> NodeExt for N {}

/// A core that keeps the driver's clock and collects its outputs in its own buffer while it
/// handles an input. [`Outbox::step`] is the one place that sets the clock and hands the
/// outputs to the driver, so every core's [`Node`] methods are only what the core does.
pub trait Outbox {
    /// The protocol's messages.
    type Msg;
    /// The core's clock and its output buffer.
    fn clock_and_outbox(&mut self) -> (&mut Duration, &mut Vec<Output<Self::Msg>>);
    /// Sets the clock to `now`, lets `handle` handle one input, then moves every output it
    /// produced into `out`.
    fn step<R>(
        &mut self,
        now: Duration,
        out: &mut Vec<Output<Self::Msg>>,
        handle: impl FnOnce(&mut Self) -> R,
    ) -> R
    where
        Self: Sized,
    {
        *self.clock_and_outbox().0 = now;
        let result = handle(self);
        out.append(self.clock_and_outbox().1);
        result
    }
}

/// Most self-sends [`deliver_self_sends`] delivers for one input: a protocol answers its own
/// messages a bounded number of times (a broadcast to its own site, then its own vote), so a
/// node that keeps talking to itself is a bug, not a reason to spin forever.
pub const MAX_SELF_SENDS: usize = 1024;

/// Delivers the messages `node` sent to itself in `out`, in order, until none is left: every
/// driver (simulator or runtime) calls this after each input, so a node's self-sends take
/// effect the same way everywhere (before its next input, without a network). Returns how
/// many self-sends were dropped because the input caused more than [`MAX_SELF_SENDS`].
pub fn deliver_self_sends<N: Node + ?Sized>(
    node: &mut N,
    now: Duration,
    out: &mut Vec<Output<N::Msg>>,
) -> usize {
    let me = node.id();
    let mut delivered = 0;
    let mut dropped = 0;
    let mut i = 0;
    while i < out.len() {
        let own = match &out[i] {
            Output::Send { to, env } if *to == me => Some(env.msg.clone()),
            _ => None,
        };
        match own {
            Some(_) if delivered >= MAX_SELF_SENDS => {
                out.remove(i);
                dropped += 1;
            }
            Some(msg) => {
                out.remove(i);
                delivered += 1;
                node.on_message(now, me, &msg, out);
            }
            None => i += 1,
        }
    }
    dropped
}

/// Decodes `bytes` received from `from` and hands the message to `node`. Returns false, with
/// nothing handled, when they are not a message of the node's protocol (the caller counts and
/// drops them). The runtime adapter uses it for every input; tests use it to feed raw bytes.
pub fn deliver_bytes<N: Node + ?Sized>(
    node: &mut N,
    now: Duration,
    from: NodeId,
    bytes: &[u8],
    out: &mut Vec<Output<N::Msg>>,
) -> bool {
    match N::Msg::decode(bytes) {
        Ok(msg) => {
            node.on_message(now, from, &msg, out);
            true
        }
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::DecodeError;

    #[derive(Clone, Debug)]
    struct Ping;

    impl Wire for Ping {
        fn encode(&self) -> Vec<u8> {
            vec![1]
        }
        fn decode(_bytes: &[u8]) -> Result<Self, DecodeError> {
            Ok(Ping)
        }
        fn kind(&self) -> &'static str {
            "ping"
        }
    }

    /// Answers each of its own messages with two more (a bug: an endless self-conversation).
    struct Chatty {
        heard: usize,
    }

    impl Node for Chatty {
        type Msg = Ping;
        fn id(&self) -> NodeId {
            NodeId::Replica(0)
        }
        fn start(&mut self, _now: Duration, _out: &mut Vec<Output<Ping>>) {}
        fn on_message(
            &mut self,
            _now: Duration,
            _from: NodeId,
            _m: &Ping,
            out: &mut Vec<Output<Ping>>,
        ) {
            self.heard += 1;
            for _ in 0..2 {
                out.push(Output::Send {
                    to: NodeId::Replica(0),
                    env: Envelope::new(Ping),
                });
            }
            out.push(Output::Send {
                to: NodeId::Replica(1),
                env: Envelope::new(Ping),
            });
        }
        fn on_timer(&mut self, _now: Duration, _token: u64, _out: &mut Vec<Output<Ping>>) {}
        fn crypto_counters(&self) -> CryptoCounters {
            CryptoCounters::default()
        }
    }

    #[test]
    fn a_node_talking_to_itself_forever_is_cut_off() {
        let mut node = Chatty { heard: 0 };
        let mut out = vec![Output::Send {
            to: NodeId::Replica(0),
            env: Envelope::new(Ping),
        }];
        let dropped = deliver_self_sends(&mut node, Duration::ZERO, &mut out);
        assert_eq!(node.heard, MAX_SELF_SENDS);
        assert_eq!(dropped, MAX_SELF_SENDS + 1);
        assert!(out
            .iter()
            .all(|o| matches!(o, Output::Send { to, .. } if *to == NodeId::Replica(1))));
        assert_eq!(out.len(), MAX_SELF_SENDS);
    }
}
