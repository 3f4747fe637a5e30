//! A Byzantine client that floods its site with validly signed updates, each with a newer
//! timestamp than the last, without waiting for any reply (issue #14, attack 1: the leader
//! representative's pool used to take them all, FIFO, and starve every correct client).

use std::sync::Arc;
use std::time::Duration;

use bft_core::crypto::CryptoCounters;
use bft_core::{Envelope, Node, NodeId, Output, Proposed};
use steward_config::{ServerId, SiteId};

use crate::crypto::Crypto;
use crate::msg::{ClientId, Message, Op, Update};

/// Timer token of the flood's tick.
const TICK: u64 = 1;

/// Sends `per_tick` fresh updates to every server of its site every `every`.
pub struct FloodingClient {
    id: ClientId,
    site: SiteId,
    servers: u32,
    crypto: Crypto,
    ts: u64,
    every: Duration,
    per_tick: u32,
    /// Updates sent so far.
    pub sent: u64,
}

impl FloodingClient {
    /// Client `id` at `site` (of `servers` servers), signing with `crypto`.
    pub fn new(
        id: ClientId,
        site: SiteId,
        servers: u32,
        crypto: Crypto,
        every: Duration,
        per_tick: u32,
    ) -> Self {
        FloodingClient {
            id,
            site,
            servers,
            crypto,
            ts: 0,
            every,
            per_tick,
            sent: 0,
        }
    }
}

impl Node for FloodingClient {
    type Msg = Message;
    fn id(&self) -> NodeId {
        NodeId::Client(self.id)
    }
    fn start(&mut self, _now: Duration, out: &mut Vec<Output<Message>>) {
        out.push(Output::Timer {
            after: self.every,
            token: TICK,
        });
    }
    fn on_message(
        &mut self,
        _now: Duration,
        _from: NodeId,
        _msg: &Message,
        _out: &mut Vec<Output<Message>>,
    ) {
    }
    fn on_timer(&mut self, _now: Duration, _token: u64, out: &mut Vec<Output<Message>>) {
        for _ in 0..self.per_tick {
            self.ts += 1;
            let mut u = Update {
                client: self.id,
                ts: self.ts,
                op: Op::Put {
                    key: format!("flood-{}", self.id).into_bytes(),
                    value: vec![0x5a; 200],
                },
                sig: Vec::new(),
                memo: Default::default(),
            };
            u.sig = self.crypto.sign(&u.signing_bytes());
            let u = Arc::new(u);
            // The checker must know these updates were really proposed by their client.
            out.push(Output::Proposed(Proposed {
                client: self.id,
                ts: u.ts,
                digest: u.digest(),
            }));
            let env = Envelope::new(Message::Update(u));
            for i in 0..self.servers {
                out.push(Output::Send {
                    to: NodeId::Server(ServerId::new(self.site, i)),
                    env: env.clone(),
                });
            }
            self.sent += 1;
        }
        out.push(Output::Timer {
            after: self.every,
            token: TICK,
        });
    }
    fn crypto_counters(&self) -> CryptoCounters {
        self.crypto.counters()
    }
}
