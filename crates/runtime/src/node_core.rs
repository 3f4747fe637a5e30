//! Any [`bft_core::Node`] as a runtime [`Core`]: bytes are decoded here, self-addressed
//! messages are delivered by [`deliver_self_sends`] (as in the simulator), and the node's
//! counters become the `stats` line, once for every protocol, replica and client.

use std::time::Duration;

use bft_core::{deliver_bytes, deliver_self_sends, Node, NodeId, Output};

use crate::core::{Core, Effect};
use crate::NodeKind;

impl From<NodeId> for NodeKind {
    fn from(id: NodeId) -> NodeKind {
        match id {
            NodeId::Server(s) => NodeKind::Server(s),
            NodeId::Replica(r) => NodeKind::Pbft(r),
            NodeId::Client(c) => NodeKind::Client(c),
        }
    }
}

impl From<NodeKind> for NodeId {
    fn from(kind: NodeKind) -> NodeId {
        match kind {
            NodeKind::Server(s) => NodeId::Server(s),
            NodeKind::Pbft(r) => NodeId::Replica(r),
            NodeKind::Client(c) => NodeId::Client(c),
        }
    }
}

/// A node driven by the runtime.
pub struct NodeCore<N: Node> {
    node: N,
    outputs: Vec<Output<N::Msg>>,
}

impl<N: Node> NodeCore<N> {
    /// Wraps `node`.
    pub fn new(node: N) -> Self {
        NodeCore {
            node,
            outputs: Vec::new(),
        }
    }

    /// The node inside.
    pub fn node(&self) -> &N {
        &self.node
    }

    /// Delivers the node's messages to itself, then turns its outputs into effects.
    fn emit(&mut self, now: Duration, out: &mut Vec<Effect>) {
        deliver_self_sends(&mut self.node, now, &mut self.outputs);
        for o in self.outputs.drain(..) {
            match o {
                Output::Send { to, env } => out.push(Effect::Send {
                    to: to.into(),
                    bytes: env.wire,
                }),
                Output::Timer { after, token } => out.push(Effect::Timer { after, token }),
                Output::Executed(_) => out.push(Effect::Executed),
                Output::Completed { latency, .. } => out.push(Effect::Completed { latency }),
                Output::BadReply(why) => out.push(Effect::BadReply(why)),
                Output::Persist(w) => out.push(Effect::Persist(w)),
                Output::Proposed(_) => {}
            }
        }
    }
}

impl<N: Node + Send> Core for NodeCore<N>
where
    N::Msg: Send,
{
    fn start(&mut self, now: Duration, out: &mut Vec<Effect>) {
        self.node.start(now, &mut self.outputs);
        self.emit(now, out);
    }

    fn on_bytes(
        &mut self,
        now: Duration,
        from: NodeKind,
        bytes: &[u8],
        out: &mut Vec<Effect>,
    ) -> bool {
        if !deliver_bytes(&mut self.node, now, from.into(), bytes, &mut self.outputs) {
            return false;
        }
        self.emit(now, out);
        true
    }

    fn on_timer(&mut self, now: Duration, token: u64, out: &mut Vec<Effect>) {
        self.node.on_timer(now, token, &mut self.outputs);
        self.emit(now, out);
    }

    fn recover(&mut self, store: &bft_core::durable::Store) {
        self.node.recover(store);
    }

    fn stop(&mut self) {
        self.node.stop();
    }

    /// The node's counters, then its crypto operations by kind as `crypto_<kind>` (e.g.
    /// `crypto_sign`, `crypto_combine`).
    fn stats(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut m: serde_json::Map<String, serde_json::Value> = self
            .node
            .stats()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.into()))
            .collect();
        let crypto = self.node.crypto_counters();
        for op in bft_core::crypto::CRYPTO_OPS {
            m.insert(format!("crypto_{}", op.name()), crypto.get(op).into());
        }
        m
    }

    fn gauges(&self) -> Vec<(&'static str, u64)> {
        self.node.gauges()
    }
}
