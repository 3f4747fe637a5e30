//! The closed-loop client: one outstanding operation at a time. Updates go to one server of the
//! client's site and are re-sent to every server of the site on timeout; the reply is a single
//! self-verifying proof (threshold-signed Proposal + ⌊S/2⌋ Accepts) checked against the site
//! public keys. Read-only queries go to every server of the site and complete with f+1 matching
//! signed answers.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use steward_config::{ServerId, SiteId};

use crate::crypto::Crypto;
use crate::msg::{ClientId, Envelope, Message, Op, Query, Reply, Update};
use crate::replica::Dest;
use bft_core::{NodeId, Outbox};

/// Static configuration of a client.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// The client's id.
    pub id: ClientId,
    /// Its site.
    pub site: SiteId,
    /// Servers per site.
    pub servers: Vec<u32>,
    /// f per site.
    pub f: Vec<u32>,
    /// Percentage of operations that are updates (the rest are read-only queries).
    pub write_pct: u32,
    /// Payload size of an update (the paper: 200 bytes).
    pub value_len: usize,
    /// Timeout before re-sending to every server of the site.
    pub timeout: Duration,
    /// Seed of the workload's randomness.
    pub seed: u64,
}

/// What the client asks its driver to do: the outputs every protocol node produces (sends,
/// timers, proposed updates for the safety checker, completions, rejected replies).
pub type ClientAction = bft_core::Output<Message>;

pub use bft_core::Proposed;

enum Pending {
    Update {
        update: Arc<Update>,
        sent: Duration,
        /// Verified results by replying server.
        results: HashMap<ServerId, Vec<u8>>,
        /// The servers the update went to first (they owe a reply).
        asked: Vec<ServerId>,
    },
    Query {
        query: Arc<Query>,
        sent: Duration,
        answers: HashMap<ServerId, Vec<u8>>,
    },
}

/// A closed-loop client.
pub struct Client {
    cfg: ClientConfig,
    crypto: Crypto,
    rng: ChaCha8Rng,
    ts: u64,
    pending: Option<Pending>,
    out: Vec<ClientAction>,
    now: Duration,
    stopped: bool,
    /// Servers that owed a reply and had not sent it when the timeout fired, and when: they
    /// are left out of the next operations' reply sets for a while, so a crashed or silent
    /// server costs this client one timeout, not one per operation.
    unresponsive: HashMap<ServerId, Duration>,
}

/// How long an unresponsive server stays out of a client's reply sets, in client timeouts.
const UNRESPONSIVE_TIMEOUTS: u32 = 10;

impl Client {
    /// A client with its crypto.
    pub fn new(cfg: ClientConfig, crypto: Crypto) -> Self {
        let rng = ChaCha8Rng::seed_from_u64(cfg.seed);
        Client {
            cfg,
            crypto,
            rng,
            ts: 0,
            pending: None,
            out: Vec::new(),
            now: Duration::ZERO,
            stopped: false,
            unresponsive: HashMap::new(),
        }
    }

    /// This client's id.
    pub fn id(&self) -> ClientId {
        self.cfg.id
    }

    fn site_servers(&self) -> impl Iterator<Item = ServerId> + '_ {
        (0..self.cfg.servers[self.cfg.site.index()]).map(|i| ServerId::new(self.cfg.site, i))
    }

    fn home(&self) -> ServerId {
        let n = self.cfg.servers[self.cfg.site.index()];
        ServerId::new(self.cfg.site, self.cfg.id % n)
    }

    /// f+1 servers of the site: the home server and the ones after it, skipping servers that
    /// recently left a reply owed (while enough others remain).
    fn reply_set(&self) -> Vec<ServerId> {
        let site = self.cfg.site.index();
        let (n, f) = (self.cfg.servers[site], self.cfg.f[site]);
        let home = self.home().index;
        let want = (f + 1).min(n) as usize;
        let banned_for = self.cfg.timeout * UNRESPONSIVE_TIMEOUTS;
        let ring = (0..n).map(|k| ServerId::new(self.cfg.site, (home + k) % n));
        let responsive: Vec<ServerId> = ring
            .clone()
            .filter(|s| {
                self.unresponsive
                    .get(s)
                    .is_none_or(|at| self.now >= *at + banned_for)
            })
            .take(want)
            .collect();
        if responsive.len() == want {
            return responsive;
        }
        ring.take(want).collect()
    }

    fn send(&mut self, to: ServerId, msg: Message) {
        self.out.push(ClientAction::Send {
            to: NodeId::Server(to),
            env: Envelope::new(msg),
        });
    }

    fn arm_timer(&mut self) {
        self.out.push(ClientAction::Timer {
            after: self.cfg.timeout,
            token: self.ts,
        });
    }

    fn next_op(&mut self) {
        if self.stopped {
            self.pending = None;
            return;
        }
        self.ts += 1;
        let key = format!("client-{}", self.cfg.id).into_bytes();
        if self.rng.gen_range(0..100) < self.cfg.write_pct {
            let mut value = vec![0u8; self.cfg.value_len];
            self.rng.fill(&mut value[..]);
            let mut u = Update {
                client: self.cfg.id,
                ts: self.ts,
                op: Op::Put { key, value },
                sig: Vec::new(),
                memo: Default::default(),
            };
            u.sig = self.crypto.sign(&u.signing_bytes());
            let u = Arc::new(u);
            self.out.push(ClientAction::Proposed(Proposed {
                client: u.client,
                ts: u.ts,
                digest: u.digest(),
            }));
            // f+1 servers of the site (the home server and the next f) each owe a reply, so
            // that a result is accepted only when f+1 servers computed it (one of them is
            // correct); a single server's signature on the result proves nothing.
            let asked = self.reply_set();
            for s in &asked {
                self.send(*s, Message::Update(u.clone()));
            }
            self.pending = Some(Pending::Update {
                update: u,
                sent: self.now,
                results: HashMap::new(),
                asked,
            });
        } else {
            let mut q = Query {
                client: self.cfg.id,
                ts: self.ts,
                key,
                sig: Vec::new(),
            };
            q.sig = self
                .crypto
                .sign(&Message::Query(Arc::new(q.clone())).signing_bytes());
            let q = Arc::new(q);
            let servers: Vec<ServerId> = self.site_servers().collect();
            for s in servers {
                self.send(s, Message::Query(q.clone()));
            }
            self.pending = Some(Pending::Query {
                query: q,
                sent: self.now,
                answers: HashMap::new(),
            });
        }
        self.arm_timer();
    }

    /// Verify a reply's proof: the Proposal carries our update and is signed by its site;
    /// ⌊S/2⌋ Accepts from distinct other sites match it; the server signed the result.
    fn verify_reply(
        &mut self,
        from: ServerId,
        r: &Arc<Reply>,
        u: &Update,
    ) -> Result<(), &'static str> {
        if r.server != from || r.client != u.client || r.ts != u.ts {
            return Err("reply for another update");
        }
        if from.site != self.cfg.site {
            return Err("reply from another site");
        }
        if !self
            .crypto
            .verify_server(from, &Message::Reply(r.clone()).signing_bytes(), &r.sig)
        {
            return Err("bad server signature on reply");
        }
        // Without a proof (the server caught up by state transfer) the reply only counts
        // towards the f+1 matching results.
        let Some(proof) = &r.proof else {
            return Ok(());
        };
        let p = &proof.proposal;
        if !p.batch.iter().any(|x| x.digest() == u.digest()) {
            return Err("proposal does not contain the update");
        }
        let sites = self.cfg.servers.len();
        let psite = SiteId(p.site);
        if psite.index() >= sites || !self.crypto.verify_site(psite, &p.signing_bytes(), &p.tsig) {
            return Err("bad proposal signature");
        }
        let digest = p.digest();
        let mut seen = std::collections::HashSet::new();
        for a in &proof.accepts {
            let asite = SiteId(a.site);
            if a.site == p.site
                || asite.index() >= sites
                || a.gv != p.gv
                || a.seq != p.seq
                || a.digest != digest
                || !seen.insert(a.site)
            {
                return Err("accept does not match the proposal");
            }
            if !self.crypto.verify_site(asite, &a.signing_bytes(), &a.tsig) {
                return Err("bad accept signature");
            }
        }
        if seen.len() < sites / 2 {
            return Err("too few accepts");
        }
        Ok(())
    }

    /// A reply counts once its order proof and signature verify; the update completes when
    /// f+1 distinct servers reported the same result.
    fn on_reply(&mut self, from: ServerId, r: &Arc<Reply>) {
        let f = self.cfg.f[self.cfg.site.index()] as usize;
        let Some(Pending::Update {
            update, results, ..
        }) = &self.pending
        else {
            return;
        };
        if r.ts != update.ts || results.contains_key(&from) {
            return; // a late reply to an earlier update, or a duplicate
        }
        let update = update.clone();
        if let Err(why) = self.verify_reply(from, r, &update) {
            self.out.push(ClientAction::BadReply(why));
            return;
        }
        let Some(Pending::Update { sent, results, .. }) = &mut self.pending else {
            return;
        };
        results.insert(from, r.result.clone());
        let matching = results.values().filter(|v| **v == r.result).count();
        if matching > f {
            // A server that reported another result lied: leave it out for a while too.
            let now = self.now;
            for (s, _) in results.iter().filter(|(_, v)| **v != r.result) {
                self.unresponsive.insert(*s, now);
            }
            let latency = self.now - *sent;
            let ts = self.ts;
            self.out.push(ClientAction::Completed {
                ts,
                kind: "update",
                latency,
                result: r.result.clone(),
            });
            self.next_op();
        }
    }

    fn on_query_reply(&mut self, from: ServerId, q: &Arc<crate::msg::QueryReply>) {
        let f = self.cfg.f[self.cfg.site.index()] as usize;
        let Some(Pending::Query { query, .. }) = &self.pending else {
            return;
        };
        if q.ts != query.ts
            || q.client != self.cfg.id
            || q.server != from
            || from.site != self.cfg.site
        {
            return;
        }
        if !self.crypto.verify_server(
            from,
            &Message::QueryReply(q.clone()).signing_bytes(),
            &q.sig,
        ) {
            self.out
                .push(ClientAction::BadReply("bad query reply signature"));
            return;
        }
        let Some(Pending::Query { answers, sent, .. }) = &mut self.pending else {
            return;
        };
        answers.insert(from, q.result.clone());
        let matching = answers.values().filter(|v| **v == q.result).count();
        if matching > f {
            let latency = self.now - *sent;
            let ts = self.ts;
            self.out.push(ClientAction::Completed {
                ts,
                kind: "query",
                latency,
                result: q.result.clone(),
            });
            self.next_op();
        }
    }
}

impl bft_core::Outbox for Client {
    type Msg = Message;

    fn clock_and_outbox(&mut self) -> (&mut Duration, &mut Vec<ClientAction>) {
        (&mut self.now, &mut self.out)
    }
}

impl Client {
    /// A message from a server: its replies count, nothing else does.
    fn on_server_message(&mut self, from: Dest, msg: &Message) {
        match (from, msg) {
            (Dest::Server(s), Message::Reply(r)) => self.on_reply(s, r),
            (Dest::Server(s), Message::QueryReply(q)) => self.on_query_reply(s, q),
            _ => {}
        }
    }

    /// The pending operation's timer: on timeout the operation goes to every server of the
    /// site, and the servers that owed a reply count as unresponsive for a while.
    fn on_retransmit_timer(&mut self, token: u64) {
        if token != self.ts {
            return;
        }
        let now = self.now;
        let msg = match &mut self.pending {
            Some(Pending::Update {
                update,
                results,
                asked,
                ..
            }) => {
                for s in asked.iter().filter(|s| !results.contains_key(s)) {
                    self.unresponsive.insert(*s, now);
                }
                Message::Update(update.clone())
            }
            Some(Pending::Query { query, answers, .. }) => {
                answers.clear();
                Message::Query(query.clone())
            }
            None => return,
        };
        let servers: Vec<ServerId> = self.site_servers().collect();
        for s in servers {
            self.send(s, msg.clone());
        }
        self.arm_timer();
    }
}

/// The client as a [`bft_core::Node`].
impl bft_core::Node for Client {
    type Msg = Message;

    fn id(&self) -> NodeId {
        NodeId::Client(self.cfg.id)
    }

    /// Start the first operation.
    fn start(&mut self, now: Duration, out: &mut Vec<ClientAction>) {
        self.step(now, out, Self::next_op);
    }

    fn on_message(
        &mut self,
        now: Duration,
        from: Dest,
        msg: &Message,
        out: &mut Vec<ClientAction>,
    ) {
        self.step(now, out, |c| c.on_server_message(from, msg));
    }

    fn on_timer(&mut self, now: Duration, token: u64, out: &mut Vec<ClientAction>) {
        self.step(now, out, |c| c.on_retransmit_timer(token));
    }

    fn crypto_counters(&self) -> crate::crypto::CryptoCounters {
        self.crypto.counters()
    }

    /// Stop issuing new operations after the current one.
    fn stop(&mut self) {
        self.stopped = true;
    }
}
