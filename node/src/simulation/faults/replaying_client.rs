//! A Byzantine client that signs one read-only query and replays that very message to every
//! server of its site, over and over (issue #14, attack 2: every copy used to be verified and
//! answered with a freshly signed reply, so one signature saturated the leader site's CPU).

use std::sync::Arc;
use std::time::Duration;

use bft_core::crypto::CryptoCounters;
use bft_core::{Envelope, Node, NodeId, Output};
use steward_config::{ServerId, SiteId};

use crate::crypto::Crypto;
use crate::msg::{ClientId, Message, Query};

/// Timer token of the replay's tick.
const TICK: u64 = 1;

/// Sends `per_tick` copies of one signed query to every server of its site every `every`.
pub struct ReplayingClient {
    id: ClientId,
    site: SiteId,
    servers: u32,
    crypto: Crypto,
    every: Duration,
    per_tick: u32,
    query: Option<Envelope<Message>>,
    /// Copies sent so far (to each server).
    pub sent: u64,
}

impl ReplayingClient {
    /// Client `id` at `site` (of `servers` servers), signing its one query with `crypto`.
    pub fn new(
        id: ClientId,
        site: SiteId,
        servers: u32,
        crypto: Crypto,
        every: Duration,
        per_tick: u32,
    ) -> Self {
        ReplayingClient {
            id,
            site,
            servers,
            crypto,
            every,
            per_tick,
            query: None,
            sent: 0,
        }
    }
}

impl Node for ReplayingClient {
    type Msg = Message;
    fn id(&self) -> NodeId {
        NodeId::Client(self.id)
    }
    fn start(&mut self, _now: Duration, out: &mut Vec<Output<Message>>) {
        let mut q = Query {
            client: self.id,
            ts: 1,
            key: b"replayed".to_vec(),
            sig: Vec::new(),
        };
        q.sig = self
            .crypto
            .sign(&Message::Query(Arc::new(q.clone())).signing_bytes());
        self.query = Some(Envelope::new(Message::Query(Arc::new(q))));
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
        if let Some(env) = &self.query {
            for _ in 0..self.per_tick {
                for i in 0..self.servers {
                    out.push(Output::Send {
                        to: NodeId::Server(ServerId::new(self.site, i)),
                        env: env.clone(),
                    });
                }
                self.sent += 1;
            }
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
