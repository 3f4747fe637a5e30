//! A sans-IO driver that feeds one replica an arbitrary sequence of inputs decoded from fuzz
//! bytes: messages from arbitrary peers (through the real decoder), clock jumps, timer
//! firings, and crash-restarts that recover from the durable writes the replica asked for.
//!
//! What it checks besides "never panics": a single input never makes a replica emit an
//! unbounded number of outputs, and a replica never keeps an unbounded number of timers.
//!
//! Input format (every field is read from the bytes; a short input simply ends the run):
//! - byte 0: the scenario: which replica, and the crypto (bit 0: 0 = genuine signatures
//!   are required, 1 = every signature verifies, as if every peer, site and client key were
//!   in the attacker's hands, which drives the handlers far past the signature checks);
//! - then steps, at most [`MAX_STEPS`], each an opcode byte:
//!   - `op % 8 < 5`: a message; the next byte names the sender, the next two (little endian)
//!     the length, then that many bytes (fewer at the end of the input);
//!   - `5`: the clock moves forward by the next byte × 10 ms, and due timers fire in order;
//!   - `6`: the clock jumps to the earliest pending timer, which fires;
//!   - `7`: the replica crashes and restarts: a fresh replica recovers from the durable store
//!     and starts.

use std::collections::BTreeMap;
use std::time::Duration;

use bft_core::crypto::{CombineOutcome, CryptoBackend, ShareForm};
use bft_core::durable::Store;
use bft_core::request::ClientId;
use bft_core::{deliver_bytes, deliver_self_sends, Node, NodeId, Output};
use steward_config::{ServerId, SiteId};

/// Most steps of one input.
pub const MAX_STEPS: usize = 256;
/// Most outputs one step may produce: far above what any handler legitimately emits
/// (a representative's broadcast to every server of every site is a few dozen).
pub const MAX_OUTPUTS_PER_STEP: usize = 20_000;
/// Most timers pending at once.
pub const MAX_PENDING_TIMERS: usize = 10_000;
/// Most timers fired by one clock step.
const MAX_FIRED_PER_STEP: usize = 256;

/// A crypto backend that accepts every signature, share and proof; signing and combining are
/// the inner backend's.
pub struct AcceptAll(pub Box<dyn CryptoBackend>);

impl CryptoBackend for AcceptAll {
    fn sign(&mut self, msg: &[u8]) -> Vec<u8> {
        self.0.sign(msg)
    }
    fn verify_server(&self, _: ServerId, _: &[u8], _: &[u8]) -> bool {
        true
    }
    fn verify_client(&self, _: ClientId, _: &[u8], _: &[u8]) -> bool {
        true
    }
    fn share(&mut self, msg: &[u8]) -> Vec<u8> {
        self.0.share(msg)
    }
    fn prove_share(&mut self, msg: &[u8], share: &[u8]) -> Vec<u8> {
        self.0.prove_share(msg, share)
    }
    fn share_form(&self, site: SiteId, share: &[u8]) -> ShareForm {
        self.0.share_form(site, share)
    }
    fn verify_share(&self, _: SiteId, _: u32, _: &[u8], _: &[u8]) -> bool {
        true
    }
    fn combine(&self, site: SiteId, msg: &[u8], shares: &[(u32, &[u8])]) -> CombineOutcome {
        self.0.combine(site, msg, shares)
    }
    fn verify_site(&self, _: SiteId, _: &[u8], _: &[u8]) -> bool {
        true
    }
    fn quorum(&self, site: SiteId) -> usize {
        self.0.quorum(site)
    }
}

/// Reads fields off the input.
struct Cursor<'a> {
    data: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.data.split_first()?;
        self.data = rest;
        Some(b)
    }
    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_le_bytes([self.byte()?, self.byte()?]))
    }
    fn take(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.data.split_at(n.min(self.data.len()));
        self.data = rest;
        head
    }
}

/// The replica under test, its clock, timers and durable store.
struct Harness<N: Node, F: FnMut() -> N> {
    make: F,
    node: N,
    now: Duration,
    /// (due, arming order) → token.
    timers: BTreeMap<(Duration, u64), u64>,
    armed: u64,
    store: Store,
}

impl<N: Node, F: FnMut() -> N> Harness<N, F> {
    fn absorb(&mut self, mut out: Vec<Output<N::Msg>>) {
        deliver_self_sends(&mut self.node, self.now, &mut out);
        assert!(
            out.len() <= MAX_OUTPUTS_PER_STEP,
            "one input made {} outputs",
            out.len()
        );
        for o in out {
            match o {
                Output::Timer { after, token } => {
                    self.armed += 1;
                    self.timers.insert((self.now + after, self.armed), token);
                }
                Output::Persist(w) => w.apply(&mut self.store),
                _ => {}
            }
        }
        assert!(
            self.timers.len() <= MAX_PENDING_TIMERS,
            "{} timers pending",
            self.timers.len()
        );
    }

    fn start(&mut self) {
        let mut out = Vec::new();
        self.node.start(self.now, &mut out);
        self.absorb(out);
    }

    fn fire_next(&mut self) -> bool {
        let Some((&(due, armed), &token)) = self.timers.iter().next() else {
            return false;
        };
        self.timers.remove(&(due, armed));
        self.now = self.now.max(due);
        let mut out = Vec::new();
        self.node.on_timer(self.now, token, &mut out);
        self.absorb(out);
        true
    }

    fn advance(&mut self, by: Duration) {
        let until = self.now + by;
        for _ in 0..MAX_FIRED_PER_STEP {
            match self.timers.keys().next() {
                Some(&(due, _)) if due <= until => {
                    self.fire_next();
                }
                _ => break,
            }
        }
        self.now = self.now.max(until);
    }

    fn restart(&mut self) {
        // Timers die with the process; only the durable store survives.
        self.timers.clear();
        self.node = (self.make)();
        self.node.recover(&self.store);
        self.start();
    }
}

/// Runs the steps of `data` (after the scenario byte, which the caller has read) against the
/// replica `make` builds; `sender` maps a byte to a peer.
pub fn run<N: Node, F: FnMut() -> N>(data: &[u8], mut make: F, sender: impl Fn(u8) -> NodeId) {
    let node = make();
    let mut h = Harness {
        make,
        node,
        now: Duration::from_millis(1),
        timers: BTreeMap::new(),
        armed: 0,
        store: Store::new(),
    };
    h.start();
    let mut input = Cursor { data };
    for _ in 0..MAX_STEPS {
        let Some(op) = input.byte() else { break };
        match op % 8 {
            0..=4 => {
                let (Some(from), Some(len)) = (input.byte(), input.u16()) else {
                    break;
                };
                let bytes = input.take(len as usize);
                let mut out = Vec::new();
                deliver_bytes(&mut h.node, h.now, sender(from), bytes, &mut out);
                h.absorb(out);
            }
            5 => {
                let Some(ticks) = input.byte() else { break };
                h.advance(Duration::from_millis(10 * u64::from(ticks)));
            }
            6 => {
                h.fire_next();
            }
            _ => h.restart(),
        }
    }
}

/// Encodes one message step of the input format, for building seed inputs.
pub fn message_step(from: u8, bytes: &[u8]) -> Vec<u8> {
    let len = bytes.len().min(u16::MAX as usize);
    let mut v = vec![0, from];
    v.extend_from_slice(&(len as u16).to_le_bytes());
    v.extend_from_slice(&bytes[..len]);
    v
}
