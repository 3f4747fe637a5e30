//! PBFT's replica and client as [`bft_core::Node`]s, for the generic simulator and runtime
//! adapters.

use std::time::Duration;

use bft_core::crypto::CryptoCounters;
use bft_core::{Node, NodeId, Output};

use crate::client::Client;
use crate::msg::Message;
use crate::replica::{Action, Dest, Replica};

fn node_id(d: Dest) -> NodeId {
    match d {
        Dest::Replica(i) => NodeId::Replica(i),
        Dest::Client(c) => NodeId::Client(c),
    }
}

/// PBFT's address of a node; Steward servers are no PBFT nodes.
fn dest(id: NodeId) -> Option<Dest> {
    match id {
        NodeId::Replica(i) => Some(Dest::Replica(i)),
        NodeId::Client(c) => Some(Dest::Client(c)),
        NodeId::Server(_) => None,
    }
}

fn replica_outputs(actions: Vec<Action>, out: &mut Vec<Output<Message>>) {
    out.extend(actions.into_iter().map(|a| match a {
        Action::Send { to, env } => Output::Send {
            to: node_id(to),
            env,
        },
        Action::Timer { after, token } => Output::Timer { after, token },
        Action::Executed(e) => Output::Executed(e),
    }));
}

impl Node for Replica {
    type Msg = Message;

    fn id(&self) -> NodeId {
        NodeId::Replica(Replica::id(self))
    }

    fn start(&mut self, now: Duration, out: &mut Vec<Output<Message>>) {
        replica_outputs(Replica::start(self, now), out);
    }

    fn on_message(
        &mut self,
        now: Duration,
        from: NodeId,
        msg: &Message,
        out: &mut Vec<Output<Message>>,
    ) {
        if let Some(from) = dest(from) {
            replica_outputs(Replica::on_message(self, now, from, msg), out);
        }
    }

    fn on_timer(&mut self, now: Duration, token: u64, out: &mut Vec<Output<Message>>) {
        replica_outputs(Replica::on_timer(self, now, token), out);
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
        if let Some(from) = dest(from) {
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
