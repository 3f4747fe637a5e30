//! PBFT's replica and client as [`bft_core::Node`]s, for the generic simulator and runtime
//! adapters.

use std::time::Duration;

use bft_core::crypto::CryptoCounters;
use bft_core::durable::Store;
use bft_core::{Node, NodeId, Output};

use crate::client::Client;
use crate::msg::Message;
use crate::replica::Replica;

/// Whether `from` can be a node of PBFT at all (the other protocol's replicas cannot).
fn is_own_kind(from: NodeId) -> bool {
    !matches!(from, NodeId::Server(_))
}

impl Node for Replica {
    type Msg = Message;

    fn id(&self) -> NodeId {
        NodeId::Replica(Replica::id(self))
    }

    fn recover(&mut self, store: &Store) {
        Replica::recover(self, store);
    }

    fn start(&mut self, now: Duration, out: &mut Vec<Output<Message>>) {
        out.extend(Replica::start(self, now));
    }

    fn on_message(
        &mut self,
        now: Duration,
        from: NodeId,
        msg: &Message,
        out: &mut Vec<Output<Message>>,
    ) {
        if is_own_kind(from) {
            out.extend(Replica::on_message(self, now, from, msg));
        }
    }

    fn on_timer(&mut self, now: Duration, token: u64, out: &mut Vec<Output<Message>>) {
        out.extend(Replica::on_timer(self, now, token));
    }

    fn crypto_counters(&self) -> CryptoCounters {
        Replica::crypto_counters(self)
    }

    fn stats(&self) -> Vec<(&'static str, u64)> {
        let r = Replica::stats(self);
        vec![
            ("dropped_invalid", r.dropped_invalid),
            ("view_changes", r.view_changes),
            ("new_views", r.new_views),
            ("stable_checkpoints", r.stable_checkpoints),
            ("state_transfers", r.state_transfers),
            ("reads", r.reads),
            ("votes_refused", r.votes_refused),
            // The runtime's summary reads these two names for every protocol.
            ("local_view_changes", r.view_changes),
            ("global_view_changes", 0),
        ]
    }
}

impl Node for Client {
    type Msg = Message;

    fn id(&self) -> NodeId {
        NodeId::Client(Client::id(self))
    }

    fn start(&mut self, now: Duration, out: &mut Vec<Output<Message>>) {
        out.extend(Client::start(self, now));
    }

    fn on_message(
        &mut self,
        now: Duration,
        from: NodeId,
        msg: &Message,
        out: &mut Vec<Output<Message>>,
    ) {
        if is_own_kind(from) {
            out.extend(Client::on_message(self, now, from, msg));
        }
    }

    fn on_timer(&mut self, now: Duration, token: u64, out: &mut Vec<Output<Message>>) {
        out.extend(Client::on_timer(self, now, token));
    }

    fn crypto_counters(&self) -> CryptoCounters {
        Client::crypto_counters(self)
    }

    fn stop(&mut self) {
        Client::stop(self);
    }
}
