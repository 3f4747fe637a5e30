//! What a simulated process is, and the context a handler gets.

use std::any::Any;
use std::time::Duration;

/// A process in the simulation (replica or client), identified by its index: the first process
/// added is 0, the next 1, and so on.
pub type ProcId = usize;

/// The deterministic random number generator of the simulator: each process gets its own
/// stream (see [`Ctx::rng`]), the network model draws from another one, all derived from
/// [`crate::SimConfig::seed`].
pub type SimRng = rand_chacha::ChaCha8Rng;

/// A message the simulator can carry.
///
/// It must report its encoded size (the network model charges bandwidth and queue space by it)
/// and be cheap to clone: the simulator moves messages and clones one only to deliver a
/// duplicate, but callers typically keep their payload behind an `Arc`.
pub trait SimMessage: Clone + 'static {
    /// The size in bytes this message would have on the wire.
    fn wire_size(&self) -> usize;
}

/// A sans-IO process (replica or client).
///
/// The simulator calls exactly one handler at a time, in virtual time order; a handler sees the
/// current virtual time and produces its outputs (sends, timers, CPU charges, measurements)
/// through the [`Ctx`]. Nothing a handler does takes effect before the handler returns.
pub trait Process<M: SimMessage>: 'static {
    /// Called once, when the process starts (at the virtual time it was added to the
    /// simulation, before any message or timer reaches it).
    fn init(&mut self, ctx: &mut Ctx<'_, M>);

    /// A message from process `from` arrived.
    fn on_message(&mut self, ctx: &mut Ctx<'_, M>, from: ProcId, msg: M);

    /// A timer set with [`Ctx::set_timer`] fired. Timers cannot be cancelled: a process
    /// ignores tokens it no longer cares about.
    fn on_timer(&mut self, ctx: &mut Ctx<'_, M>, token: u64);

    /// `self`, so that callers can downcast (see [`crate::Sim::process_as`]).
    fn as_any(&self) -> &dyn Any;

    /// `self`, so that callers can downcast (see [`crate::Sim::process_as_mut`]).
    fn as_any_mut(&mut self) -> &mut dyn Any;
}

/// The outputs a handler produced; reused from handler to handler (no allocation once the
/// vectors have grown to their working size).
pub(crate) struct Outputs<M> {
    pub(crate) sends: Vec<(ProcId, M)>,
    pub(crate) timers: Vec<(Duration, u64)>,
    pub(crate) records: Vec<(&'static str, Duration)>,
    pub(crate) cpu: Duration,
}

impl<M> Default for Outputs<M> {
    fn default() -> Self {
        Outputs {
            sends: Vec::new(),
            timers: Vec::new(),
            records: Vec::new(),
            cpu: Duration::ZERO,
        }
    }
}

/// Handed to a handler: the current virtual time and the handler's outputs.
///
/// Sends and timers take effect when the handler ends, that is at [`Ctx::now`] plus the CPU
/// time charged with [`Ctx::charge_cpu`] during this handler.
pub struct Ctx<'a, M> {
    pub(crate) now: Duration,
    pub(crate) me: ProcId,
    pub(crate) out: &'a mut Outputs<M>,
    pub(crate) rng: &'a mut SimRng,
}

impl<M> Ctx<'_, M> {
    /// The virtual time since the start of the simulation at which this handler started. It
    /// does not advance while the handler charges CPU time.
    pub fn now(&self) -> Duration {
        self.now
    }

    /// The id of the process running this handler.
    pub fn me(&self) -> ProcId {
        self.me
    }

    /// Sends `msg` to process `to`. The message leaves when the handler ends and then goes
    /// through the network model (a message to oneself is delivered at the handler's end,
    /// without network). Sending to a process that does not exist panics when the handler
    /// returns.
    pub fn send(&mut self, to: ProcId, msg: M) {
        self.out.sends.push((to, msg));
    }

    /// Asks for [`Process::on_timer`] with `token` at `after` past the end of this handler.
    /// There is no cancel: processes ignore stale tokens.
    pub fn set_timer(&mut self, after: Duration, token: u64) {
        self.out.timers.push((after, token));
    }

    /// Charges `d` of virtual CPU time to this handler (the cost of crypto, for example): the
    /// process is busy, and its outputs are delayed, until the handler's start plus everything
    /// it charged. Charges add up.
    pub fn charge_cpu(&mut self, d: Duration) {
        self.out.cpu = self.out.cpu.saturating_add(d);
    }

    /// Records one completed client operation of kind `kind` (for example `"update"` or
    /// `"query"`) that took `latency`. Ignored when this handler started before the warm-up
    /// end ([`crate::SimConfig::warmup`]).
    pub fn record(&mut self, kind: &'static str, latency: Duration) {
        self.out.records.push((kind, latency));
    }

    /// This process's own deterministic random stream (independent of every other process's
    /// and of the network's, and fixed by the seed and the process id).
    pub fn rng(&mut self) -> &mut SimRng {
        self.rng
    }
}
