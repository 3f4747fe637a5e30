//! Steward's replica and client as [`bft_core::Node`]s, for the generic simulator and runtime
//! adapters.

use std::time::Duration;

use bft_core::{Node, NodeId, Output};

use crate::client::Client;
use crate::crypto::CryptoCounters;
use crate::msg::Message;
use crate::replica::Replica;

/// Whether `from` can be a node of Steward at all (the other protocol's replicas cannot).
fn is_own_kind(from: NodeId) -> bool {
    !matches!(from, NodeId::Replica(_))
}

impl Node for Replica {
    type Msg = Message;

    fn id(&self) -> NodeId {
        NodeId::Server(Replica::id(self))
    }

    fn recover(&mut self, store: &bft_core::durable::Store) {
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

    fn combine_shares(&self) -> usize {
        self.crypto.quorum(Replica::id(self).site)
    }

    fn stats(&self) -> Vec<(&'static str, u64)> {
        let r = Replica::stats(self);
        vec![
            ("dropped_invalid", r.dropped_invalid),
            ("blacklisted", r.blacklisted),
            ("local_view_changes", r.local_view_changes),
            ("global_view_changes", r.global_view_changes),
            ("state_transfers", r.state_transfers),
            ("queries_answered", r.queries_answered),
            ("combine_fallbacks", r.combine_fallbacks),
            ("reps_suspected", r.reps_suspected),
            ("votes_refused", r.votes_refused),
            ("recovered_entries", r.recovered_entries),
            ("updates_deferred", r.updates_deferred),
            ("queries_deferred", r.queries_deferred),
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
