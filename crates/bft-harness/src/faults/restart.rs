//! A node that crashes and restarts: at each crash everything in memory is lost (the inner
//! node is dropped), at each restart a fresh node is built, handed what its predecessor
//! persisted ([`Node::recover`]) and started. What survives is exactly the durable store the
//! node wrote with [`Output::Persist`], as on a real machine.

use std::time::Duration;

use bft_core::crypto::CryptoCounters;
use bft_core::durable::Store;
use bft_core::{Node, NodeId, Output};

/// Where in the step at its crash time the node dies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrashPoint {
    /// Before the first input at or after the crash time: that input is never seen.
    BeforeInput,
    /// After the first input at or after the crash time was handled and its writes made
    /// durable, but before any message of that step left (the window the persistence rule
    /// exists for).
    AfterPersist,
}

/// One crash and the restart after it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outage {
    /// When the node crashes.
    pub down: Duration,
    /// When a fresh node starts from the store (after `down`).
    pub up: Duration,
    /// Where the crash happens in its step.
    pub point: CrashPoint,
}

/// Timer tokens of the inner node carry the incarnation in their top byte, so a timer armed
/// before a crash never fires into its successor.
const EPOCH_SHIFT: u32 = 56;
/// The wrapper's own timer: time to restart.
const RESTART_TOKEN: u64 = u64::MAX;

/// Wraps the nodes `make` builds; crashes and restarts them as `outages` say.
pub struct Restart<N: Node> {
    make: Box<dyn FnMut() -> N>,
    inner: Option<N>,
    /// The incarnation that crashed last, kept only for inspection (it gets no input).
    dead: Option<N>,
    store: Store,
    outages: Vec<Outage>,
    /// Index of the next outage to happen.
    next: usize,
    epoch: u64,
    /// Crypto work of the incarnations that crashed (the simulator charges differences).
    spent: CryptoCounters,
    id: NodeId,
    restarts: u64,
}

impl<N: Node> Restart<N> {
    /// A node built by `make`, crashing and restarting at each of `outages` (in time order).
    pub fn new(mut make: impl FnMut() -> N + 'static, mut outages: Vec<Outage>) -> Self {
        outages.sort_by_key(|o| o.down);
        let inner = make();
        Restart {
            id: inner.id(),
            make: Box::new(make),
            inner: Some(inner),
            dead: None,
            store: Store::new(),
            outages,
            next: 0,
            epoch: 0,
            spent: CryptoCounters::default(),
            restarts: 0,
        }
    }

    /// The current incarnation (`None` while down).
    pub fn inner(&self) -> Option<&N> {
        self.inner.as_ref()
    }

    /// The current incarnation or, while down, the one that crashed (for inspection only).
    pub fn latest(&self) -> &N {
        self.inner
            .as_ref()
            .or(self.dead.as_ref())
            .expect("a node is up, or one crashed")
    }

    /// What the node has persisted so far.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// How many times the node restarted.
    pub fn restarts(&self) -> u64 {
        self.restarts
    }

    /// Runs one input on the live node; keeps its writes, tags its timers, and crashes it
    /// when an outage is due.
    fn step(
        &mut self,
        now: Duration,
        out: &mut Vec<Output<N::Msg>>,
        input: impl FnOnce(&mut N, &mut Vec<Output<N::Msg>>),
    ) {
        let due = self
            .outages
            .get(self.next)
            .filter(|o| now >= o.down)
            .copied();
        if let Some(o) = due {
            if o.point == CrashPoint::BeforeInput {
                self.crash();
                return;
            }
        }
        let Some(node) = self.inner.as_mut() else {
            return;
        };
        let from = out.len();
        input(node, out);
        let mut i = from;
        while i < out.len() {
            match &mut out[i] {
                Output::Persist(w) => {
                    w.apply(&mut self.store);
                    i += 1;
                }
                Output::Timer { token, .. } => {
                    debug_assert!(*token >> EPOCH_SHIFT == 0, "timer token uses the top byte");
                    *token |= self.epoch << EPOCH_SHIFT;
                    i += 1;
                }
                _ => i += 1,
            }
        }
        if due.is_some() {
            // Writes are durable; nothing of this step leaves.
            out.truncate(from);
            self.crash();
        }
    }

    fn crash(&mut self) {
        if let Some(node) = self.inner.take() {
            let c = node.crypto_counters();
            for (s, v) in self.spent.0.iter_mut().zip(c.0) {
                *s += v;
            }
            self.dead = Some(node);
        }
        self.next += 1;
        self.epoch = (self.epoch + 1) & 0xff;
    }

    fn restart(&mut self, now: Duration, out: &mut Vec<Output<N::Msg>>) {
        if self.inner.is_some() {
            return;
        }
        self.dead = None;
        let mut node = (self.make)();
        node.recover(&self.store);
        self.inner = Some(node);
        self.restarts += 1;
        self.step(now, out, |n, out| n.start(now, out));
    }
}

/// For inspection through other wrappers' accessors (`replica()` in the simulated worlds):
/// the inner node is the latest incarnation. `Restart` drives its incarnations itself, so it
/// uses none of the [`Wrapper`] hooks.
impl<N: Node> super::Wrapper for Restart<N> {
    type Inner = N;
    fn inner(&self) -> &N {
        self.latest()
    }
    fn inner_mut(&mut self) -> &mut N {
        self.inner
            .as_mut()
            .or(self.dead.as_mut())
            .expect("a node is up, or one crashed")
    }
}

impl<N: Node> Node for Restart<N> {
    type Msg = N::Msg;
    fn id(&self) -> NodeId {
        self.id
    }
    fn recover(&mut self, store: &Store) {
        self.store = store.clone();
        if let Some(n) = self.inner.as_mut() {
            n.recover(store);
        }
    }
    fn start(&mut self, now: Duration, out: &mut Vec<Output<N::Msg>>) {
        for o in &self.outages {
            out.push(Output::Timer {
                after: o.up.saturating_sub(now),
                token: RESTART_TOKEN,
            });
        }
        self.step(now, out, |n, out| n.start(now, out));
    }
    fn on_message(
        &mut self,
        now: Duration,
        from: NodeId,
        msg: &N::Msg,
        out: &mut Vec<Output<N::Msg>>,
    ) {
        self.step(now, out, |n, out| n.on_message(now, from, msg, out));
    }
    fn on_timer(&mut self, now: Duration, token: u64, out: &mut Vec<Output<N::Msg>>) {
        if token == RESTART_TOKEN {
            // A crash due before this restart that no input triggered happens now.
            while self
                .outages
                .get(self.next)
                .is_some_and(|o| o.down <= now && self.inner.is_some())
            {
                self.crash();
            }
            self.restart(now, out);
            return;
        }
        if token >> EPOCH_SHIFT != self.epoch {
            return;
        }
        let inner_token = token & ((1 << EPOCH_SHIFT) - 1);
        self.step(now, out, |n, out| n.on_timer(now, inner_token, out));
    }
    fn crypto_counters(&self) -> CryptoCounters {
        let mut c = self.spent;
        if let Some(n) = &self.inner {
            for (s, v) in c.0.iter_mut().zip(n.crypto_counters().0) {
                *s += v;
            }
        }
        c
    }
    fn combine_shares(&self) -> usize {
        self.inner.as_ref().map_or(3, |n| n.combine_shares())
    }
    fn stop(&mut self) {
        if let Some(n) = self.inner.as_mut() {
            n.stop()
        }
    }
    fn incarnation(&self) -> u64 {
        self.restarts
    }
    fn gauges(&self) -> Vec<(&'static str, u64)> {
        self.inner.as_ref().map(|n| n.gauges()).unwrap_or_default()
    }
    fn stats(&self) -> Vec<(&'static str, u64)> {
        let mut s = self.inner.as_ref().map(|n| n.stats()).unwrap_or_default();
        s.push(("restarts", self.restarts));
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::faults::fake::{msg, sends, Fake};
    use bft_core::durable::Write;

    /// A node that persists a counter on every message and reports it on start.
    struct Counter {
        seen: u64,
    }

    impl Node for Counter {
        type Msg = crate::faults::fake::FakeMsg;
        fn id(&self) -> NodeId {
            NodeId::Replica(0)
        }
        fn recover(&mut self, store: &Store) {
            self.seen = store
                .get(&b"n"[..])
                .map_or(0, |v| u64::from_be_bytes(v[..8].try_into().unwrap()));
        }
        fn start(&mut self, _now: Duration, out: &mut Vec<Output<Self::Msg>>) {
            out.push(Output::Send {
                to: NodeId::Replica(1),
                env: bft_core::Envelope::new(msg(&format!("start-{}", self.seen))),
            });
            out.push(Output::Timer {
                after: Duration::from_secs(1),
                token: 7,
            });
        }
        fn on_message(
            &mut self,
            _now: Duration,
            from: NodeId,
            _m: &Self::Msg,
            out: &mut Vec<Output<Self::Msg>>,
        ) {
            self.seen += 1;
            out.push(Output::Persist(Write::Put {
                key: b"n".to_vec(),
                value: self.seen.to_be_bytes().to_vec(),
            }));
            out.push(Output::Send {
                to: from,
                env: bft_core::Envelope::new(msg(&format!("ack-{}", self.seen))),
            });
        }
        fn on_timer(&mut self, _now: Duration, _token: u64, _out: &mut Vec<Output<Self::Msg>>) {}
        fn crypto_counters(&self) -> CryptoCounters {
            CryptoCounters::default()
        }
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn a_restarted_node_keeps_only_what_it_persisted() {
        let outage = Outage {
            down: secs(2),
            up: secs(3),
            point: CrashPoint::AfterPersist,
        };
        let mut n = Restart::new(|| Counter { seen: 0 }, vec![outage]);
        let mut out = Vec::new();
        n.start(secs(0), &mut out);
        assert_eq!(sends(&out), vec!["start-0"]);
        let restart_timer = out
            .iter()
            .find_map(|o| match o {
                Output::Timer { after, token } if *token == RESTART_TOKEN => Some(*after),
                _ => None,
            })
            .expect("restart timer");
        assert_eq!(restart_timer, secs(3));
        out.clear();
        n.on_message(secs(1), NodeId::Replica(1), &msg("a"), &mut out);
        assert_eq!(sends(&out), vec!["ack-1"]);
        out.clear();
        // The step at the crash persists but sends nothing.
        n.on_message(secs(2), NodeId::Replica(1), &msg("b"), &mut out);
        assert!(out.is_empty(), "{:?}", sends(&out));
        assert!(n.inner().is_none());
        n.on_message(secs(2), NodeId::Replica(1), &msg("c"), &mut out);
        assert!(out.is_empty(), "a crashed node hears nothing");
        // A timer of the first incarnation does not reach the second.
        n.on_timer(secs(3), RESTART_TOKEN, &mut out);
        assert_eq!(sends(&out), vec!["start-2"], "restarts from the store");
        assert_eq!(n.restarts(), 1);
        let new_token = out
            .iter()
            .find_map(|o| match o {
                Output::Timer { token, .. } if *token != RESTART_TOKEN => Some(*token),
                _ => None,
            })
            .unwrap();
        assert_eq!(new_token, 7 | 1 << EPOCH_SHIFT);
        out.clear();
        n.on_timer(secs(3), 7, &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn crash_before_input_loses_the_input() {
        let outage = Outage {
            down: secs(1),
            up: secs(5),
            point: CrashPoint::BeforeInput,
        };
        let mut n = Restart::new(|| Fake::new(0), vec![outage]);
        let mut out = Vec::new();
        n.start(secs(0), &mut out);
        out.clear();
        n.on_message(secs(1), NodeId::Replica(1), &msg("x"), &mut out);
        assert!(out.is_empty());
        n.on_timer(secs(5), RESTART_TOKEN, &mut out);
        assert_eq!(sends(&out), vec!["start"]);
        assert_eq!(n.inner().unwrap().inputs, 0);
    }
}
