//! The closed-loop PBFT client: one outstanding operation at a time, in Steward's update
//! format ([`bft_core::request::Update`], client-signed).
//!
//! * An update goes to the primary of the latest view the client knows; on timeout it is
//!   re-sent to every replica (which forward it to the primary and start their view-change
//!   timers), with the timeout doubling up to 8×. It completes with f+1 matching signed replies.
//! * A read (`Op::Get`) with the read-only optimisation goes to every replica and completes
//!   with a quorum (2f+1) of matching read replies; when that cannot happen (conflicting
//!   answers, or the timeout) it falls back to an ordered request.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bft_core::crypto::{Crypto, CryptoCounters};
use bft_core::request::{ClientId, Op, Update};
use bft_core::{NodeId, Outbox, Proposed};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use steward_config::{ServerId, SiteId};

use crate::msg::{Envelope, Message, Reply};
use crate::replica::Dest;

/// Static configuration of a client.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// The client's id.
    pub id: ClientId,
    /// The site of every replica (`topology.pbft.replicas`); replica `i` signs as
    /// `ServerId::new(sites[i], i)`.
    pub sites: Vec<SiteId>,
    /// Byzantine replicas tolerated.
    pub f: u32,
    /// The primary of view 0.
    pub primary: u32,
    /// Percentage of operations that are updates (the rest are reads).
    pub write_pct: u32,
    /// Payload size of an update (the paper: 200 bytes).
    pub value_len: usize,
    /// First retransmission timeout.
    pub timeout: Duration,
    /// Use the read-only optimisation for reads (otherwise they are ordered).
    pub read_only: bool,
    /// Seed of the workload's randomness.
    pub seed: u64,
}

/// What the client asks its driver to do: the outputs every protocol node produces (sends,
/// timers, proposed updates for the safety checker, completions, rejected replies).
pub type ClientAction = bft_core::Output<Message>;

struct Pending {
    update: Arc<Update>,
    sent: Duration,
    /// Still in the read-only phase.
    read_phase: bool,
    attempt: u32,
    /// Answers of the current phase: replica → (result, view).
    answers: BTreeMap<u32, (Vec<u8>, u64)>,
}

/// A closed-loop PBFT client.
pub struct Client {
    cfg: ClientConfig,
    crypto: Crypto,
    rng: ChaCha8Rng,
    ts: u64,
    view: u64,
    pending: Option<Pending>,
    out: Vec<ClientAction>,
    now: Duration,
    stopped: bool,
}

impl Client {
    /// A client with its crypto.
    pub fn new(cfg: ClientConfig, crypto: Crypto) -> Self {
        let rng = ChaCha8Rng::seed_from_u64(cfg.seed);
        Client {
            cfg,
            crypto,
            rng,
            ts: 0,
            view: 0,
            pending: None,
            out: Vec::new(),
            now: Duration::ZERO,
            stopped: false,
        }
    }

    /// This client's id.
    pub fn id(&self) -> ClientId {
        self.cfg.id
    }

    /// The latest view this client learnt from replies.
    pub fn view(&self) -> u64 {
        self.view
    }

    fn n(&self) -> u32 {
        self.cfg.sites.len() as u32
    }

    fn primary(&self) -> u32 {
        let n = u64::from(self.n().max(1));
        ((u64::from(self.cfg.primary) + self.view % n) % n) as u32
    }

    fn quorum(&self) -> usize {
        ((self.n() + self.cfg.f + 2) / 2) as usize
    }

    fn send(&mut self, to: u32, msg: Message) {
        self.out.push(ClientAction::Send {
            to: NodeId::Replica(to),
            env: Envelope::new(msg),
        });
    }

    fn send_all(&mut self, msg: Message) {
        let env = Envelope::new(msg);
        for to in 0..self.n() {
            self.out.push(ClientAction::Send {
                to: NodeId::Replica(to),
                env: env.clone(),
            });
        }
    }

    fn arm_timer(&mut self, attempt: u32) {
        let after = self.cfg.timeout * (1u32 << attempt.min(3));
        self.out.push(ClientAction::Timer {
            after,
            token: self.ts << 8 | u64::from(attempt & 0xff),
        });
    }

    fn next_op(&mut self) {
        if self.stopped {
            self.pending = None;
            return;
        }
        self.ts += 1;
        let key = format!("client-{}", self.cfg.id).into_bytes();
        let op = if self.rng.gen_range(0..100) < self.cfg.write_pct {
            let mut value = vec![0u8; self.cfg.value_len];
            self.rng.fill(&mut value[..]);
            Op::Put { key, value }
        } else {
            Op::Get { key }
        };
        let mut u = Update {
            client: self.cfg.id,
            ts: self.ts,
            op,
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
        let read_phase = self.cfg.read_only && u.is_read();
        if read_phase {
            self.send_all(Message::Read(u.clone()));
        } else {
            let p = self.primary();
            self.send(p, Message::Request(u.clone()));
        }
        self.pending = Some(Pending {
            update: u,
            sent: self.now,
            read_phase,
            attempt: 0,
            answers: BTreeMap::new(),
        });
        self.arm_timer(0);
    }

    fn on_reply(&mut self, from: u32, r: &Arc<Reply>) {
        let Some(p) = &self.pending else {
            return;
        };
        if r.ts != p.update.ts || r.client != self.cfg.id || r.read != p.read_phase {
            return; // late, or from the other phase
        }
        if r.replica != from || p.answers.contains_key(&from) {
            return;
        }
        let Some(site) = self.cfg.sites.get(from as usize).copied() else {
            return;
        };
        if !self
            .crypto
            .verify_server(ServerId::new(site, from), &r.signing_bytes(), &r.sig)
        {
            self.out
                .push(ClientAction::BadReply("bad signature on reply"));
            return;
        }
        let (f, q, n) = (self.cfg.f as usize, self.quorum(), self.n() as usize);
        let Some(p) = &mut self.pending else {
            return;
        };
        p.answers.insert(from, (r.result.clone(), r.view));
        let matching: Vec<u64> = p
            .answers
            .values()
            .filter(|(res, _)| *res == r.result)
            .map(|(_, v)| *v)
            .collect();
        let need = if p.read_phase { q } else { f + 1 };
        if matching.len() >= need {
            let latency = self.now.saturating_sub(p.sent);
            let kind = if p.update.is_read() {
                "query"
            } else {
                "update"
            };
            if !p.read_phase {
                // At least one of f+1 matching replicas is correct: its view is current.
                let mut views = matching;
                views.sort_unstable();
                self.view = self.view.max(views[views.len() - need]);
            }
            self.out.push(ClientAction::Completed {
                ts: p.update.ts,
                kind,
                latency,
                result: r.result.clone(),
            });
            self.next_op();
            return;
        }
        if p.read_phase {
            let mut counts: BTreeMap<&[u8], usize> = BTreeMap::new();
            for (res, _) in p.answers.values() {
                *counts.entry(res.as_slice()).or_default() += 1;
            }
            let best = counts.values().copied().max().unwrap_or(0);
            if best + (n - p.answers.len()) < q {
                self.fall_back();
            }
        }
    }

    /// The read-only attempt failed: order the read like an update.
    fn fall_back(&mut self) {
        let Some(p) = &mut self.pending else {
            return;
        };
        p.read_phase = false;
        p.answers.clear();
        p.attempt = 0;
        let u = p.update.clone();
        let to = self.primary();
        self.send(to, Message::Request(u));
        self.arm_timer(0);
    }

    /// The pending operation's timer: a read-only attempt falls back to an ordered read;
    /// an update (or ordered read) goes to every replica.
    fn on_retransmit_timer(&mut self, token: u64) {
        let Some(p) = &mut self.pending else {
            return;
        };
        if token >> 8 != p.update.ts || (token & 0xff) as u32 != p.attempt {
            return;
        }
        if p.read_phase {
            self.fall_back();
            return;
        }
        p.attempt += 1;
        let attempt = p.attempt;
        let u = p.update.clone();
        self.send_all(Message::Request(u));
        self.arm_timer(attempt);
    }
}

impl bft_core::Outbox for Client {
    type Msg = Message;

    fn clock_and_outbox(&mut self) -> (&mut Duration, &mut Vec<ClientAction>) {
        (&mut self.now, &mut self.out)
    }
}

/// The client as a [`bft_core::Node`].
impl bft_core::Node for Client {
    type Msg = Message;

    fn id(&self) -> Dest {
        Dest::Client(self.cfg.id)
    }

    /// Start the first operation.
    fn start(&mut self, now: Duration, out: &mut Vec<ClientAction>) {
        self.step(now, out, Self::next_op);
    }

    /// Only a replica's reply counts.
    fn on_message(
        &mut self,
        now: Duration,
        from: Dest,
        msg: &Message,
        out: &mut Vec<ClientAction>,
    ) {
        if let (Dest::Replica(j), Message::Reply(r)) = (from, msg) {
            self.step(now, out, |c| c.on_reply(j, r));
        }
    }

    fn on_timer(&mut self, now: Duration, token: u64, out: &mut Vec<ClientAction>) {
        self.step(now, out, |c| c.on_retransmit_timer(token));
    }

    fn crypto_counters(&self) -> CryptoCounters {
        self.crypto.counters()
    }

    /// Stop issuing new operations after the current one.
    fn stop(&mut self) {
        self.stopped = true;
    }
}
