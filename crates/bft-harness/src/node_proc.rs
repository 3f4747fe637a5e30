//! Any [`Node`] as a process of the deterministic simulator. Messages travel as their encoding
//! and are decoded at the receiver, as on the real network; the virtual CPU is charged from
//! the node's crypto counters and the cost table.

use std::cell::{OnceCell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use bft_core::{Envelope, Node, Output, Wire};
use steward_sim::{Ctx, ProcId, Process, SimMessage};

use crate::book::AddressBook;
use crate::checker::SafetyChecker;
use crate::costs::CostTable;

/// A protocol message in flight in the simulator: its encoding is what the receiver decodes.
/// Decoding is a pure function of the bytes, so the copies of one encoding (a broadcast, a
/// duplicate) share one decoding, made by the first receiver.
#[derive(Clone, Debug)]
pub struct Packet<M> {
    /// The message as sent, with its encoding.
    pub env: Envelope<M>,
    decoded: Rc<OnceCell<Option<M>>>,
}

impl<M: Wire> Packet<M> {
    /// A packet carrying `env`.
    pub fn new(env: Envelope<M>) -> Self {
        Packet {
            env,
            decoded: Rc::new(OnceCell::new()),
        }
    }

    /// A packet carrying `env` whose decoding is shared with `other` if they carry the same
    /// encoding (the same buffer).
    fn sharing(env: Envelope<M>, other: Option<&Packet<M>>) -> Self {
        match other {
            Some(o)
                if o.env.wire.as_ptr() == env.wire.as_ptr()
                    && o.env.wire.len() == env.wire.len() =>
            {
                Packet {
                    env,
                    decoded: o.decoded.clone(),
                }
            }
            _ => Packet::new(env),
        }
    }

    /// The message decoded from the bytes on the wire, or `None` if they do not decode.
    pub fn decode(&self) -> Option<&M> {
        self.decoded
            .get_or_init(|| M::decode(&self.env.wire).ok())
            .as_ref()
    }
}

impl<M: Wire> SimMessage for Packet<M> {
    fn wire_size(&self) -> usize {
        self.env.size as usize
    }
}

/// What every process of one simulated deployment shares.
#[derive(Debug)]
pub struct Shared {
    /// Node ids and process ids.
    pub book: AddressBook,
    /// The safety checker.
    pub checker: RefCell<SafetyChecker>,
    /// Virtual CPU costs.
    pub costs: CostTable,
}

impl Shared {
    /// A deployment with `book`'s processes.
    pub fn new(book: AddressBook, costs: CostTable) -> Rc<Shared> {
        Rc::new(Shared {
            book,
            checker: RefCell::new(SafetyChecker::default()),
            costs,
        })
    }
}

/// A node as a simulator process.
pub struct NodeProc<N: Node> {
    node: N,
    shared: Rc<Shared>,
    /// Whether executions are reported to the safety checker.
    checked: bool,
    /// Replicas pay the per-message cost of the real runtime; clients do not.
    charge_messages: bool,
    /// Extra CPU per input (a slow node).
    slow: Option<Duration>,
    /// The identity executions are checked under (see [`NodeProc::set_checker_id`]).
    checker_id: Option<steward_config::ServerId>,
    /// Messages that did not decode.
    malformed: u64,
    out: Vec<Output<N::Msg>>,
}

impl<N: Node + 'static> NodeProc<N> {
    /// A replica: pays per-message costs; its executions are checked if `correct`.
    pub fn replica(node: N, shared: Rc<Shared>, correct: bool) -> Self {
        let checker_id = match node.id() {
            bft_core::NodeId::Server(s) => Some(s),
            _ => None,
        };
        NodeProc {
            node,
            shared,
            checked: correct,
            charge_messages: true,
            slow: None,
            checker_id,
            malformed: 0,
            out: Vec::new(),
        }
    }

    /// A client.
    pub fn client(node: N, shared: Rc<Shared>) -> Self {
        NodeProc {
            node,
            shared,
            checked: false,
            charge_messages: false,
            slow: None,
            checker_id: None,
            malformed: 0,
            out: Vec::new(),
        }
    }

    /// Spends `extra` more virtual CPU on every input.
    pub fn slow(mut self, extra: Duration) -> Self {
        self.slow = Some(extra);
        self
    }

    /// Checks executions under `id` (a restarted replica is checked as a new server).
    pub fn set_checker_id(&mut self, id: steward_config::ServerId) {
        self.checker_id = Some(id);
    }

    /// The identity executions are checked under.
    pub fn checker_id(&self) -> Option<steward_config::ServerId> {
        self.checker_id
    }

    /// The node inside.
    pub fn node(&self) -> &N {
        &self.node
    }

    /// The node inside, mutably.
    pub fn node_mut(&mut self) -> &mut N {
        &mut self.node
    }

    /// Messages that failed to decode.
    pub fn malformed(&self) -> u64 {
        self.malformed
    }

    fn apply(
        &mut self,
        ctx: &mut Ctx<'_, Packet<N::Msg>>,
        before: bft_core::crypto::CryptoCounters,
        from: Option<ProcId>,
    ) {
        // Self-sends are handled now, as on the runtime; their CPU is part of this input's.
        bft_core::deliver_self_sends(&mut self.node, ctx.now(), &mut self.out);
        let costs = &self.shared.costs;
        let spent = self.node.crypto_counters().since(&before);
        ctx.charge_cpu(costs.charge(&spent, self.node.combine_shares()));
        if self.charge_messages {
            let sends = self
                .out
                .iter()
                .filter(|o| matches!(o, Output::Send { .. }))
                .count();
            ctx.charge_cpu(costs.messages(sends));
        }
        if let Some(d) = self.slow {
            ctx.charge_cpu(d);
        }
        let me = self.node.id();
        let mut last: Option<Packet<N::Msg>> = None;
        // Drained, not taken, so the buffer keeps its capacity across inputs.
        let mut outputs = std::mem::take(&mut self.out);
        for o in outputs.drain(..) {
            match o {
                Output::Send { to, env } => {
                    let p = Packet::sharing(env, last.as_ref());
                    ctx.send(self.shared.book.proc_of(to), p.clone());
                    last = Some(p);
                }
                Output::Timer { after, token } => ctx.set_timer(after, token),
                Output::Executed(e) => {
                    if let (true, Some(id)) = (self.checked, self.checker_id) {
                        let now = ctx.now();
                        let incarnation = self.node.incarnation();
                        let mut checker = self.shared.checker.borrow_mut();
                        checker.executed_at(id, incarnation, &e, now);
                    }
                }
                Output::Proposed(p) => self.shared.checker.borrow_mut().proposed(&p),
                Output::Completed {
                    ts,
                    kind,
                    latency,
                    result,
                } => {
                    ctx.record(kind, latency);
                    if let bft_core::NodeId::Client(c) = me {
                        let now = ctx.now();
                        let mut checker = self.shared.checker.borrow_mut();
                        checker.completed(c, now);
                        if kind == "update" {
                            checker.accepted_result(c, ts, steward_crypto::sha256(&result));
                        }
                    }
                }
                // A simulated process keeps no disk: only the crash-restart wrapper
                // (`faults::Restart`) keeps what its node persists.
                Output::Persist(_) => {}
                Output::BadReply(why) => {
                    let book = &self.shared.book;
                    if let (Some(p), bft_core::NodeId::Client(c)) = (from, me) {
                        if let (true, Some(s)) = (book.is_correct(p), book.server_of(p)) {
                            self.shared.checker.borrow_mut().bad_reply(c, s, why);
                        }
                    }
                }
            }
        }
        self.out = outputs;
    }
}

impl<N: Node + 'static> Process<Packet<N::Msg>> for NodeProc<N> {
    fn init(&mut self, ctx: &mut Ctx<'_, Packet<N::Msg>>) {
        let before = self.node.crypto_counters();
        self.node.start(ctx.now(), &mut self.out);
        self.apply(ctx, before, None);
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_, Packet<N::Msg>>, from: ProcId, msg: Packet<N::Msg>) {
        if self.charge_messages {
            ctx.charge_cpu(self.shared.costs.messages(1));
        }
        // The real path: the receiver decodes the bytes it got.
        let Some(msg) = msg.decode() else {
            self.malformed += 1;
            return;
        };
        let before = self.node.crypto_counters();
        let sender = self.shared.book.id_of(from);
        self.node.on_message(ctx.now(), sender, msg, &mut self.out);
        self.apply(ctx, before, Some(from));
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_, Packet<N::Msg>>, token: u64) {
        let before = self.node.crypto_counters();
        self.node.on_timer(ctx.now(), token, &mut self.out);
        self.apply(ctx, before, None);
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn std::any::Any {
        self
    }
}
