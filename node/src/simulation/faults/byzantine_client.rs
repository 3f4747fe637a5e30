//! Byzantine clients that load their site without waiting for any reply (issue #14):
//! - [`ByzantineClient::flooding`] signs fresh updates, each with a newer timestamp than the
//!   last (attack 1: the leader representative's pool used to take them all, FIFO, and starve
//!   every correct client);
//! - [`ByzantineClient::replaying`] signs one read-only query and replays that very message
//!   (attack 2: every copy used to be verified and answered with a freshly signed reply, so one
//!   signature saturated the leader site's CPU).

use std::sync::Arc;
use std::time::Duration;

use bft_core::crypto::CryptoCounters;
use bft_core::{Envelope, Node, NodeId, Output, Proposed};
use steward_config::{ServerId, SiteId};

use crate::crypto::Crypto;
use crate::msg::{ClientId, Message, Op, Query, Update};

/// Timer token of the client's tick.
const TICK: u64 = 1;

/// What each copy carries.
enum Load {
    /// A fresh update per copy; the last timestamp used.
    FreshUpdates { ts: u64 },
    /// The one signed query (signed at start).
    ReplayedQuery(Option<Envelope<Message>>),
}

/// Sends `per_tick` messages to every server of its site every `every`.
pub struct ByzantineClient {
    id: ClientId,
    site: SiteId,
    servers: u32,
    crypto: Crypto,
    every: Duration,
    per_tick: u32,
    load: Load,
    /// Messages sent so far (to each server).
    pub sent: u64,
}

/// Who a [`ByzantineClient`] is and how hard it sends.
pub struct ClientLoad {
    /// The client.
    pub id: ClientId,
    /// Its site.
    pub site: SiteId,
    /// Servers in the site.
    pub servers: u32,
    /// Its keys.
    pub crypto: Crypto,
    /// Period of its tick.
    pub every: Duration,
    /// Messages per tick (each to every server of the site).
    pub per_tick: u32,
}

impl ByzantineClient {
    /// A client flooding its site with fresh, validly signed updates.
    pub fn flooding(c: ClientLoad) -> Self {
        Self::with_load(c, Load::FreshUpdates { ts: 0 })
    }

    /// A client replaying one signed query to its site.
    pub fn replaying(c: ClientLoad) -> Self {
        Self::with_load(c, Load::ReplayedQuery(None))
    }

    fn with_load(c: ClientLoad, load: Load) -> Self {
        ByzantineClient {
            id: c.id,
            site: c.site,
            servers: c.servers,
            crypto: c.crypto,
            every: c.every,
            per_tick: c.per_tick,
            load,
            sent: 0,
        }
    }

    /// The next copy to send (`None`: nothing to send yet).
    fn next_copy(&mut self, out: &mut Vec<Output<Message>>) -> Option<Envelope<Message>> {
        match &mut self.load {
            Load::ReplayedQuery(query) => query.clone(),
            Load::FreshUpdates { ts } => {
                *ts += 1;
                let mut u = Update {
                    client: self.id,
                    ts: *ts,
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
                Some(Envelope::new(Message::Update(u)))
            }
        }
    }
}

impl Node for ByzantineClient {
    type Msg = Message;
    fn id(&self) -> NodeId {
        NodeId::Client(self.id)
    }
    fn start(&mut self, _now: Duration, out: &mut Vec<Output<Message>>) {
        if let Load::ReplayedQuery(query) = &mut self.load {
            let mut q = Query {
                client: self.id,
                ts: 1,
                key: b"replayed".to_vec(),
                sig: Vec::new(),
            };
            q.sig = self
                .crypto
                .sign(&Message::Query(Arc::new(q.clone())).signing_bytes());
            *query = Some(Envelope::new(Message::Query(Arc::new(q))));
        }
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
            let Some(env) = self.next_copy(out) else {
                break;
            };
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
