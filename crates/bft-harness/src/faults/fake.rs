//! A tiny [`Node`] for the wrappers' tests: answers every message with `echo-<text>` to its
//! sender, sends `start` to replica 1 on start, and re-arms every timer.

use std::time::Duration;

use bft_core::codec::DecodeError;
use bft_core::crypto::CryptoCounters;
use bft_core::{Envelope, Node, NodeId, Output, Wire};

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct FakeMsg(pub String);

impl Wire for FakeMsg {
    fn encode(&self) -> Vec<u8> {
        self.0.as_bytes().to_vec()
    }
    fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        Ok(FakeMsg(String::from_utf8_lossy(bytes).into_owned()))
    }
    fn kind(&self) -> &'static str {
        // Kinds are the message texts the tests use.
        match self.0.as_str() {
            "secret" => "secret",
            "echo-secret" => "echo-secret",
            "x" => "x",
            _ => "other",
        }
    }
}

pub(crate) fn msg(s: &str) -> FakeMsg {
    FakeMsg(s.to_string())
}

/// Hands `n` the message `text` from replica `from` at time zero.
pub(crate) fn receive<N: Node<Msg = FakeMsg>>(
    n: &mut N,
    from: u32,
    text: &str,
    out: &mut Vec<Output<FakeMsg>>,
) {
    n.on_message(Duration::ZERO, NodeId::Replica(from), &msg(text), out);
}

/// The texts of the messages sent in `out`.
pub(crate) fn sends(out: &[Output<FakeMsg>]) -> Vec<String> {
    out.iter()
        .filter_map(|o| match o {
            Output::Send { env, .. } => Some(env.msg.0.clone()),
            _ => None,
        })
        .collect()
}

pub(crate) struct Fake {
    id: u32,
    /// Messages and timers handled.
    pub inputs: u64,
}

impl Fake {
    pub(crate) fn new(id: u32) -> Self {
        Fake { id, inputs: 0 }
    }
}

impl Node for Fake {
    type Msg = FakeMsg;
    fn id(&self) -> NodeId {
        NodeId::Replica(self.id)
    }
    fn start(&mut self, _now: Duration, out: &mut Vec<Output<FakeMsg>>) {
        out.push(Output::Send {
            to: NodeId::Replica(1),
            env: Envelope::new(msg("start")),
        });
    }
    fn on_message(
        &mut self,
        _now: Duration,
        from: NodeId,
        m: &FakeMsg,
        out: &mut Vec<Output<FakeMsg>>,
    ) {
        self.inputs += 1;
        out.push(Output::Send {
            to: from,
            env: Envelope::new(FakeMsg(format!("echo-{}", m.0))),
        });
    }
    fn on_timer(&mut self, _now: Duration, token: u64, out: &mut Vec<Output<FakeMsg>>) {
        self.inputs += 1;
        out.push(Output::Timer {
            after: Duration::from_secs(1),
            token,
        });
    }
    fn crypto_counters(&self) -> CryptoCounters {
        CryptoCounters::default()
    }
}
