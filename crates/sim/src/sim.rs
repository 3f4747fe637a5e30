//! The event loop, the network model and the virtual CPU.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BinaryHeap, VecDeque};
use std::time::Duration;

use hdrhistogram::Histogram;
use rand::{Rng, SeedableRng};
use steward_config::{LinkParams, SiteId, Topology};

use crate::process::{Ctx, Outputs};
use crate::{ProcId, Process, SimConfig, SimError, SimMessage, SimRng, SimStats};

/// Virtual time in nanoseconds since the start.
type Nanos = u64;

fn nanos(d: Duration) -> Nanos {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

fn duration(n: Nanos) -> Duration {
    Duration::from_nanos(n)
}

/// One word into the running trace hash (FxHash step).
fn mix(h: u64, v: u64) -> u64 {
    (h.rotate_left(5) ^ v).wrapping_mul(0x517c_c1b7_2722_0a95)
}

/// A link's parameters, in the units the hot path wants.
#[derive(Debug, Clone, Copy)]
struct Link {
    latency: Nanos,
    jitter: Nanos,
    bandwidth_bps: u64,
    loss: f64,
    /// The time to serialise the queue's byte limit at this bandwidth.
    queue_limit: Nanos,
}

impl Link {
    fn new(params: &LinkParams, queue_limit_bytes: u64) -> Link {
        let mut link = Link {
            latency: nanos(params.latency),
            jitter: nanos(params.jitter),
            bandwidth_bps: params.bandwidth_bps.max(1),
            loss: params.loss,
            queue_limit: 0,
        };
        link.queue_limit = link.tx(queue_limit_bytes);
        link
    }

    /// Serialisation time of `bytes`, rounded up to the nanosecond (as
    /// [`LinkParams::transmission_time`]).
    fn tx(&self, bytes: u64) -> Nanos {
        match bytes.checked_mul(8_000_000_000) {
            Some(bits_ns) => bits_ns.div_ceil(self.bandwidth_bps),
            None => {
                let n =
                    (u128::from(bytes) * 8_000_000_000).div_ceil(u128::from(self.bandwidth_bps));
                u64::try_from(n).unwrap_or(u64::MAX)
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EventKind {
    /// Start a process.
    Init(u32),
    /// A message (slab slot) reaches its destination.
    Deliver(u32),
    /// A cross-site message (slab slot) leaves its sender's interface and enters the WAN queue.
    WanEnqueue(u32),
    /// A timer fires.
    Timer { proc: u32, token: u64 },
    /// A busy process becomes free and takes the next queued input.
    Wake(u32),
    /// A scheduled network change (index into `controls`).
    Control(u32),
}

#[derive(Debug, Clone, Copy)]
struct Event {
    time: Nanos,
    seq: u64,
    kind: EventKind,
}

impl PartialEq for Event {
    fn eq(&self, other: &Self) -> bool {
        self.time == other.time && self.seq == other.seq
    }
}
impl Eq for Event {}
impl PartialOrd for Event {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Event {
    /// Reversed, so that the max-heap pops the earliest (time, sequence) first.
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .time
            .cmp(&self.time)
            .then_with(|| other.seq.cmp(&self.seq))
    }
}

/// A message in flight or waiting in a process's input queue.
struct Packet<M> {
    from: u32,
    to: u32,
    size: u64,
    injected: bool,
    msg: M,
}

/// Storage for packets, indexed by small integers so that events stay small.
struct Slab<M> {
    slots: Vec<Option<Packet<M>>>,
    free: Vec<u32>,
}

impl<M> Slab<M> {
    fn insert(&mut self, packet: Packet<M>) -> u32 {
        match self.free.pop() {
            Some(i) => {
                self.slots[i as usize] = Some(packet);
                i
            }
            None => {
                self.slots.push(Some(packet));
                u32::try_from(self.slots.len() - 1).expect("fewer than 2^32 messages in flight")
            }
        }
    }

    fn get(&self, i: u32) -> &Packet<M> {
        self.slots[i as usize].as_ref().expect("live slab slot")
    }

    fn take(&mut self, i: u32) -> Packet<M> {
        let packet = self.slots[i as usize].take().expect("live slab slot");
        self.free.push(i);
        packet
    }
}

/// An input waiting for a busy process.
#[derive(Debug, Clone, Copy)]
enum Input {
    Init,
    Msg(u32),
    Timer(u64),
}

/// The inputs waiting for a busy process, taken as the runtime's driver takes them: due
/// timers (and the start) first, then messages from the senders in round robin, each
/// sender's in arrival order (`crates/net/src/inbound.rs`). A peer that floods a process
/// therefore delays the others' messages by at most one of its own each, not by its backlog.
#[derive(Default)]
struct Inbox {
    control: VecDeque<Input>,
    /// Per sender (process index), its waiting messages (slab slots).
    by_sender: BTreeMap<u32, VecDeque<u32>>,
    /// Senders with waiting messages, in round-robin order.
    ready: VecDeque<u32>,
    len: usize,
}

impl Inbox {
    fn push(&mut self, input: Input, sender: Option<u32>) {
        self.len += 1;
        match (input, sender) {
            (Input::Msg(slot), Some(from)) => {
                let q = self.by_sender.entry(from).or_default();
                if q.is_empty() {
                    self.ready.push_back(from);
                }
                q.push_back(slot);
            }
            (other, _) => self.control.push_back(other),
        }
    }

    fn pop(&mut self) -> Option<Input> {
        if let Some(c) = self.control.pop_front() {
            self.len -= 1;
            return Some(c);
        }
        let from = self.ready.pop_front()?;
        let q = self
            .by_sender
            .get_mut(&from)
            .expect("a ready sender has a queue");
        let slot = q.pop_front().expect("a ready sender has a message");
        if q.is_empty() {
            self.by_sender.remove(&from);
        } else {
            self.ready.push_back(from);
        }
        self.len -= 1;
        Some(Input::Msg(slot))
    }

    fn len(&self) -> usize {
        self.len
    }

    fn is_empty(&self) -> bool {
        self.len == 0
    }
}

struct ProcSlot<M> {
    process: Box<dyn Process<M>>,
    site: usize,
    rng: SimRng,
    /// The end of the last handler: the process is busy before this time.
    busy_until: Nanos,
    busy_total: Nanos,
    busy_measured: Nanos,
    /// When the interface's egress queue is empty again.
    nic_free: Nanos,
    /// Inputs that arrived while the process was busy.
    queue: Inbox,
    /// A `Wake` event is scheduled (always true while `queue` is not empty).
    wake_pending: bool,
}

enum Control {
    Partition(Vec<Vec<SiteId>>),
    Heal,
    /// New parameters for the link a → b, and b → a too when the flag is set.
    Link(SiteId, SiteId, LinkParams, bool),
}

struct KindStats {
    kind: &'static str,
    histogram: Histogram<u64>,
    completed: u64,
}

/// The deterministic discrete-event simulator: processes placed at the sites of a topology,
/// a network model, a virtual CPU per process, and measurements.
///
/// # Model
///
/// * **Time and determinism.** One event queue ordered by (virtual time, insertion
///   sequence); every random draw comes from [`SimConfig::seed`]. The same seed and the same
///   calls give the identical run, which [`Sim::trace_hash`] summarises.
/// * **Virtual CPU.** A handler starts at the later of its input's arrival and the time the
///   process becomes free, and keeps the process busy for the CPU time it charges
///   ([`Ctx::charge_cpu`]); its sends and timers take effect at its end. Inputs that arrive
///   while the process is busy wait, without limit, and are taken as the runtime takes them:
///   timers first, then one message per sender in round robin, each sender's in arrival
///   order (a flooding sender delays the others by one message each, not by its backlog).
/// * **Network.** A message to another process is first serialised by the sender's
///   interface at its site's LAN bandwidth (one egress queue per process). A message to
///   another site then enters the directed WAN queue of (sender's site → receiver's site),
///   shared by all processes of those two sites and serialised at that link's bandwidth; then
///   it propagates for the link's one-way latency plus a jitter drawn uniformly from
///   `0..=jitter` (the topology's LAN parameters inside a site, its WAN link between sites).
///   Each queue is drop-tail: a message that would take the queue's backlog (the bytes not
///   yet serialised, including the rest of the message on the wire) past its byte limit is
///   dropped. Loss drops a message, after it crossed the queues, with the link's probability.
///   A message to oneself is delivered at the handler's end, with no network at all.
/// * **Faults.** [`SimConfig::duplicate_prob`] and [`SimConfig::reorder_prob`] apply to every
///   network message, LAN or WAN. Partitions ([`Sim::schedule_partition`]) cut sites apart:
///   a cross-site message is dropped if its two sites are separated when it enters the WAN
///   queue or when it would arrive, so a message in flight when a partition starts is dropped
///   if it would arrive during the partition, and one sent during a partition is lost even if
///   it would arrive after the heal. Traffic inside a site is never partitioned.
/// * **Link changes** ([`Sim::schedule_link_change`]) apply to messages that enter a queue or
///   start propagating from the change on; messages already serialised keep their old timing.
///
/// Memory is bounded by the messages in flight, the pending timers and the inputs waiting for
/// busy processes, that is by what the processes do.
pub struct Sim<M: SimMessage> {
    config: SimConfig,
    topology: Topology,
    sites: usize,
    /// `links[a * sites + b]`: the link from site `a` to site `b` (the LAN when `a == b`).
    links: Vec<Link>,
    /// `wan_free[a * sites + b]`: when the directed WAN queue from `a` to `b` is empty again.
    wan_free: Vec<Nanos>,
    /// With `wan.model = "site-uplink"`: each site's access link (bandwidth = the largest of
    /// its WAN links), shared by all its outgoing WAN traffic, and when it is free again.
    uplinks: Option<Vec<Link>>,
    uplink_free: Vec<Nanos>,
    /// Partition group of each site, or `None` when the network is whole.
    groups: Option<Vec<u32>>,
    procs: Vec<ProcSlot<M>>,
    events: BinaryHeap<Event>,
    seq: u64,
    now: Nanos,
    warmup: Nanos,
    slab: Slab<M>,
    out: Outputs<M>,
    net_rng: SimRng,
    controls: Vec<Option<Control>>,
    kinds: Vec<KindStats>,
    stats: SimStats,
    trace: u64,
}

/// With `STEWARD_SIM_TRACE_LOG=<file>` set, every simulator appends its seed, final virtual
/// time and [`Sim::trace_hash`] to that file when it is dropped: a refactoring check (record
/// the lines of a test run before and after a change and compare them sorted).
impl<M: SimMessage> Drop for Sim<M> {
    fn drop(&mut self) {
        let Some(path) = std::env::var_os("STEWARD_SIM_TRACE_LOG") else {
            return;
        };
        use std::io::Write;
        let line = format!(
            "seed={} now_ns={} trace={:016x}\n",
            self.config.seed, self.now, self.trace
        );
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            // One write per line, so parallel tests append whole lines.
            let _ = f.write_all(line.as_bytes());
        }
    }
}

impl<M: SimMessage> Sim<M> {
    /// A simulation over `topology`, at virtual time zero, with no processes.
    ///
    /// Fails when `config` is invalid ([`SimConfig::validate`]).
    pub fn new(topology: &Topology, config: SimConfig) -> Result<Self, SimError> {
        config.validate()?;
        let sites = topology.sites.len();
        let mut links = Vec::with_capacity(sites * sites);
        for a in topology.site_ids() {
            for b in topology.site_ids() {
                let limit = if a == b {
                    config.lan_queue_limit_bytes
                } else {
                    config.wan_queue_limit_bytes
                };
                links.push(Link::new(topology.link(a, b), limit));
            }
        }
        let uplinks = (topology.wan_model == steward_config::WanModel::SiteUplink).then(|| {
            (0..sites)
                .map(|a| {
                    let best = (0..sites)
                        .filter(|&b| b != a)
                        .map(|b| links[a * sites + b])
                        .max_by_key(|l| l.bandwidth_bps)
                        .unwrap_or(links[a * sites + a]);
                    Link::new(
                        &LinkParams {
                            latency: Duration::ZERO,
                            jitter: Duration::ZERO,
                            bandwidth_bps: best.bandwidth_bps,
                            loss: 0.0,
                        },
                        config.wan_queue_limit_bytes,
                    )
                })
                .collect()
        });
        let mut net_rng = SimRng::seed_from_u64(config.seed);
        net_rng.set_stream(0);
        Ok(Sim {
            warmup: nanos(config.warmup),
            config,
            topology: topology.clone(),
            sites,
            links,
            wan_free: vec![0; sites * sites],
            uplinks,
            uplink_free: vec![0; sites],
            groups: None,
            procs: Vec::new(),
            events: BinaryHeap::new(),
            seq: 0,
            now: 0,
            slab: Slab {
                slots: Vec::new(),
                free: Vec::new(),
            },
            out: Outputs::default(),
            net_rng,
            controls: Vec::new(),
            kinds: Vec::new(),
            stats: SimStats {
                wan_pair_bytes: vec![0; sites * sites],
                sites,
                ..SimStats::default()
            },
            trace: 0xcbf2_9ce4_8422_2325,
        })
    }

    /// The configuration this simulation runs with.
    pub fn config(&self) -> &SimConfig {
        &self.config
    }

    /// The topology this simulation runs on.
    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    /// Adds a process at `site` and returns its id (ids are consecutive from 0). Its
    /// [`Process::init`] runs at the current virtual time, after the events already due then.
    ///
    /// # Panics
    /// If `site` is not part of the topology.
    pub fn add_process(&mut self, site: SiteId, process: Box<dyn Process<M>>) -> ProcId {
        assert!(
            site.index() < self.sites,
            "site {site} is not part of topology {:?} ({} sites)",
            self.topology.name,
            self.sites
        );
        let id = self.procs.len();
        let index = u32::try_from(id).expect("fewer than 2^32 processes");
        let mut rng = SimRng::seed_from_u64(self.config.seed);
        rng.set_stream(u64::from(index) + 1);
        self.procs.push(ProcSlot {
            process,
            site: site.index(),
            rng,
            busy_until: self.now,
            busy_total: 0,
            busy_measured: 0,
            nic_free: self.now,
            queue: Inbox::default(),
            wake_pending: false,
        });
        self.push(self.now, EventKind::Init(index));
        id
    }

    /// The number of processes added so far.
    pub fn process_count(&self) -> usize {
        self.procs.len()
    }

    /// Process `id`; callers downcast through [`Process::as_any`] (or use
    /// [`Sim::process_as`]).
    ///
    /// # Panics
    /// If there is no process `id` (so for all the accessors taking a [`ProcId`]).
    pub fn process(&self, id: ProcId) -> &dyn Process<M> {
        &*self.procs[id].process
    }

    /// Process `id`, mutably.
    pub fn process_mut(&mut self, id: ProcId) -> &mut dyn Process<M> {
        &mut *self.procs[id].process
    }

    /// Process `id` as its concrete type `T`, or `None` if it is not a `T`.
    pub fn process_as<T: 'static>(&self, id: ProcId) -> Option<&T> {
        self.procs[id].process.as_any().downcast_ref()
    }

    /// Process `id` as its concrete type `T`, mutably, or `None` if it is not a `T`.
    pub fn process_as_mut<T: 'static>(&mut self, id: ProcId) -> Option<&mut T> {
        self.procs[id].process.as_any_mut().downcast_mut()
    }

    /// The site of process `id`.
    pub fn process_site(&self, id: ProcId) -> SiteId {
        SiteId(self.procs[id].site as u16)
    }

    /// The CPU time process `id` charged since the start.
    pub fn busy_time(&self, id: ProcId) -> Duration {
        duration(self.procs[id].busy_total)
    }

    /// The CPU time process `id` charged in handlers that started at or after the warm-up end.
    pub fn busy_time_measured(&self, id: ProcId) -> Duration {
        duration(self.procs[id].busy_measured)
    }

    /// The number of inputs (messages, timers) waiting for busy process `id`.
    pub fn input_backlog(&self, id: ProcId) -> usize {
        self.procs[id].queue.len()
    }

    /// The current virtual time since the start.
    pub fn now(&self) -> Duration {
        duration(self.now)
    }

    /// The number of events scheduled and not yet processed.
    pub fn pending_events(&self) -> usize {
        self.events.len()
    }

    /// The counters so far.
    pub fn stats(&self) -> &SimStats {
        &self.stats
    }

    /// The latencies, in microseconds (truncated), of the operations of `kind` recorded since
    /// the warm-up end; `None` if none was recorded. 3 significant digits, auto-resizing.
    pub fn histogram(&self, kind: &str) -> Option<&Histogram<u64>> {
        self.kind(kind).map(|k| &k.histogram)
    }

    /// The number of operations of `kind` recorded since the warm-up end.
    pub fn completed(&self, kind: &str) -> u64 {
        self.kind(kind).map_or(0, |k| k.completed)
    }

    /// The kinds of operations recorded since the warm-up end, in order of their first record.
    pub fn kinds(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.kinds.iter().map(|k| k.kind)
    }

    /// A running hash of every delivered message (arrival time, sender, receiver, size) and
    /// every fired timer (time, process, token), in order. Equal for runs with the same seed
    /// and inputs; a cheap way to check determinism.
    pub fn trace_hash(&self) -> u64 {
        self.trace
    }

    /// Delivers `msg` to `to` at virtual time `at` as if `from` had sent it, bypassing the
    /// network (no delay, loss or partition; counted as [`crate::NetStats::injected`]). It may
    /// still wait for `to`'s CPU. A hook for tests and Byzantine behaviour.
    ///
    /// # Panics
    /// If `at` is in the past or a process does not exist.
    pub fn inject(&mut self, at: Duration, from: ProcId, to: ProcId, msg: M) {
        let at = self.future(at, "inject");
        assert!(
            from < self.procs.len() && to < self.procs.len(),
            "inject from process {from} to process {to}: only {} processes",
            self.procs.len()
        );
        let size = msg.wire_size() as u64;
        let slot = self.slab.insert(Packet {
            from: from as u32,
            to: to as u32,
            size,
            injected: true,
            msg,
        });
        self.push(at, EventKind::Deliver(slot));
    }

    /// From `at` on, only sites in the same group of `groups` can exchange messages; sites not
    /// listed are cut off from every other site. Replaces any partition in force. See the
    /// type's documentation for messages in flight.
    ///
    /// # Panics
    /// If `at` is in the past, or a site is unknown or listed twice.
    pub fn schedule_partition(&mut self, at: Duration, groups: Vec<Vec<SiteId>>) {
        let at = self.future(at, "schedule_partition");
        let mut seen = vec![false; self.sites];
        for site in groups.iter().flatten() {
            assert!(
                site.index() < self.sites,
                "partition names unknown site {site}"
            );
            assert!(!seen[site.index()], "partition lists site {site} twice");
            seen[site.index()] = true;
        }
        self.push_control(at, Control::Partition(groups));
    }

    /// From `at` on, every site can reach every other site again.
    ///
    /// # Panics
    /// If `at` is in the past.
    pub fn schedule_heal(&mut self, at: Duration) {
        let at = self.future(at, "schedule_heal");
        self.push_control(at, Control::Heal);
    }

    /// From `at` on, the link between sites `a` and `b` (both directions; the LAN of site `a`
    /// when `a == b`) has parameters `params`.
    ///
    /// # Panics
    /// If `at` is in the past, a site is unknown, or `params.loss` is not in `0..=1`.
    pub fn schedule_link_change(&mut self, at: Duration, a: SiteId, b: SiteId, params: LinkParams) {
        self.link_change(at, a, b, params, true);
    }

    /// From `at` on, messages from site `from` to site `to` (that direction only) cross a link
    /// with parameters `params`: the network adversary's asymmetric or targeted delays.
    ///
    /// # Panics
    /// As [`Sim::schedule_link_change`].
    pub fn schedule_directed_link_change(
        &mut self,
        at: Duration,
        from: SiteId,
        to: SiteId,
        params: LinkParams,
    ) {
        self.link_change(at, from, to, params, false);
    }

    fn link_change(&mut self, at: Duration, a: SiteId, b: SiteId, params: LinkParams, both: bool) {
        let at = self.future(at, "schedule_link_change");
        assert!(
            a.index() < self.sites && b.index() < self.sites,
            "link change names unknown site {a} or {b}"
        );
        assert!(
            (0.0..=1.0).contains(&params.loss),
            "link loss {} is not a probability",
            params.loss
        );
        self.push_control(at, Control::Link(a, b, params, both));
    }

    /// Processes every event due at or before `until`, then sets the virtual time to `until`
    /// (if it is later than now).
    ///
    /// Fails, leaving the remaining events queued, when [`SimConfig::max_events`] events have
    /// been processed in total.
    pub fn run_until(&mut self, until: Duration) -> Result<(), SimError> {
        let until = nanos(until);
        while let Some(event) = self.events.peek() {
            if event.time > until {
                break;
            }
            if self.stats.events >= self.config.max_events {
                return Err(SimError::EventLimit {
                    limit: self.config.max_events,
                    at: duration(self.now),
                    seed: self.config.seed,
                });
            }
            let event = self.events.pop().expect("peeked");
            self.now = event.time;
            self.stats.events += 1;
            self.handle(event.kind);
        }
        self.now = self.now.max(until);
        Ok(())
    }

    /// Runs for `d` more virtual time (`run_until(now + d)`).
    pub fn run_for(&mut self, d: Duration) -> Result<(), SimError> {
        self.run_until(self.now().saturating_add(d))
    }

    // ---- internals -------------------------------------------------------------------------

    fn future(&self, at: Duration, what: &str) -> Nanos {
        let at = nanos(at);
        assert!(
            at >= self.now,
            "{what} at {:?}, before the current virtual time {:?}",
            duration(at),
            duration(self.now)
        );
        at
    }

    fn push(&mut self, time: Nanos, kind: EventKind) {
        self.events.push(Event {
            time,
            seq: self.seq,
            kind,
        });
        self.seq += 1;
    }

    fn push_control(&mut self, at: Nanos, control: Control) {
        let index = u32::try_from(self.controls.len()).expect("fewer than 2^32 network changes");
        self.controls.push(Some(control));
        self.push(at, EventKind::Control(index));
    }

    fn kind(&self, kind: &str) -> Option<&KindStats> {
        self.kinds.iter().find(|k| k.kind == kind)
    }

    /// Adds to the total counters, and to the measured ones when `at` is past the warm-up.
    fn count(&mut self, at: Nanos, f: impl Fn(&mut crate::NetStats)) {
        f(&mut self.stats.total);
        if at >= self.warmup {
            f(&mut self.stats.measured);
        }
    }

    fn separated(&self, a: usize, b: usize) -> bool {
        match &self.groups {
            Some(groups) => a != b && groups[a] != groups[b],
            None => false,
        }
    }

    fn handle(&mut self, kind: EventKind) {
        match kind {
            EventKind::Init(p) => self.dispatch(p as usize, Input::Init),
            EventKind::Deliver(slot) => self.deliver(slot),
            EventKind::WanEnqueue(slot) => self.wan_enqueue(slot),
            EventKind::Timer { proc, token } => {
                self.stats.timers += 1;
                self.trace = mix(mix(mix(self.trace, self.now), u64::from(proc)), token);
                self.dispatch(proc as usize, Input::Timer(token));
            }
            EventKind::Wake(p) => {
                let slot = &mut self.procs[p as usize];
                slot.wake_pending = false;
                let input = slot.queue.pop().expect("a wake-up has a queued input");
                self.run_handler(p as usize, input);
            }
            EventKind::Control(i) => self.control(i),
        }
    }

    fn control(&mut self, index: u32) {
        match self.controls[index as usize].take().expect("fires once") {
            Control::Partition(groups) => {
                let isolated = groups.len() as u32;
                let mut of_site: Vec<u32> = (0..self.sites as u32).map(|s| isolated + s).collect();
                for (g, sites) in groups.iter().enumerate() {
                    for site in sites {
                        of_site[site.index()] = g as u32;
                    }
                }
                self.groups = Some(of_site);
            }
            Control::Heal => self.groups = None,
            Control::Link(a, b, params, both) => {
                let (a, b) = (a.index(), b.index());
                let limit = if a == b {
                    self.config.lan_queue_limit_bytes
                } else {
                    self.config.wan_queue_limit_bytes
                };
                let link = Link::new(&params, limit);
                self.links[a * self.sites + b] = link;
                if both {
                    self.links[b * self.sites + a] = link;
                }
            }
        }
    }

    /// An input for process `p` arrives now: run it, or queue it if the process is busy.
    fn dispatch(&mut self, p: usize, input: Input) {
        let now = self.now;
        let sender = match input {
            Input::Msg(s) => Some(self.slab.get(s).from),
            _ => None,
        };
        let slot = &mut self.procs[p];
        if slot.busy_until > now || !slot.queue.is_empty() {
            slot.queue.push(input, sender);
            if !slot.wake_pending {
                slot.wake_pending = true;
                let at = slot.busy_until.max(now);
                self.push(at, EventKind::Wake(p as u32));
            }
        } else {
            self.run_handler(p, input);
        }
    }

    /// Runs one handler of process `p` starting now, then applies its outputs at its end.
    fn run_handler(&mut self, p: usize, input: Input) {
        let start = self.now;
        let slot = &mut self.procs[p];
        let mut ctx = Ctx {
            now: duration(start),
            me: p,
            out: &mut self.out,
            rng: &mut slot.rng,
        };
        match input {
            Input::Init => slot.process.init(&mut ctx),
            Input::Timer(token) => slot.process.on_timer(&mut ctx, token),
            Input::Msg(s) => {
                let packet = self.slab.take(s);
                slot.process
                    .on_message(&mut ctx, packet.from as usize, packet.msg);
            }
        }
        self.stats.handlers += 1;
        let cpu = nanos(self.out.cpu);
        let end = start.saturating_add(cpu);
        slot.busy_until = end;
        slot.busy_total += cpu;
        if start >= self.warmup {
            slot.busy_measured += cpu;
        }
        let wake = !slot.queue.is_empty() && !slot.wake_pending;
        if wake {
            slot.wake_pending = true;
        }

        let mut out = std::mem::take(&mut self.out);
        out.cpu = Duration::ZERO;
        for (to, msg) in out.sends.drain(..) {
            self.send(p, to, msg, end);
        }
        for (after, token) in out.timers.drain(..) {
            let at = end.saturating_add(nanos(after));
            self.push(
                at,
                EventKind::Timer {
                    proc: p as u32,
                    token,
                },
            );
        }
        if start >= self.warmup {
            for (kind, latency) in out.records.drain(..) {
                self.record(kind, latency);
            }
        } else {
            out.records.clear();
        }
        self.out = out;
        if wake {
            self.push(end, EventKind::Wake(p as u32));
        }
    }

    fn record(&mut self, kind: &'static str, latency: Duration) {
        let index = match self.kinds.iter().position(|k| k.kind == kind) {
            Some(i) => i,
            None => {
                self.kinds.push(KindStats {
                    kind,
                    histogram: Histogram::new(3).expect("3 significant digits are valid"),
                    completed: 0,
                });
                self.kinds.len() - 1
            }
        };
        let k = &mut self.kinds[index];
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        if k.histogram.record(micros).is_err() {
            k.histogram.saturating_record(micros);
        }
        k.completed += 1;
    }

    /// `from` sends `msg` to `to` at time `t` (the end of its handler).
    fn send(&mut self, from: usize, to: usize, msg: M, t: Nanos) {
        assert!(
            to < self.procs.len(),
            "process {from} sent a message to process {to}, which does not exist ({} processes)",
            self.procs.len()
        );
        let size = msg.wire_size() as u64;
        let packet = Packet {
            from: from as u32,
            to: to as u32,
            size,
            injected: false,
            msg,
        };
        if from == to {
            let slot = self.slab.insert(packet);
            self.push(t, EventKind::Deliver(slot));
            return;
        }
        let (a, b) = (self.procs[from].site, self.procs[to].site);
        let lan = self.links[a * self.sites + a];
        let tx = lan.tx(size);
        let nic_free = self.procs[from].nic_free;
        if nic_free.saturating_sub(t).saturating_add(tx) > lan.queue_limit {
            self.count(t, |s| s.dropped_queue += 1);
            return;
        }
        let depart = nic_free.max(t).saturating_add(tx);
        self.procs[from].nic_free = depart;
        let slot = self.slab.insert(packet);
        if a == b {
            self.propagate(slot, lan, depart);
        } else {
            self.push(depart, EventKind::WanEnqueue(slot));
        }
    }

    /// A cross-site message enters the directed WAN queue of its pair of sites, now.
    fn wan_enqueue(&mut self, slot: u32) {
        let now = self.now;
        let packet = self.slab.get(slot);
        let (a, b) = (
            self.procs[packet.from as usize].site,
            self.procs[packet.to as usize].site,
        );
        let size = packet.size;
        if self.separated(a, b) {
            self.slab.take(slot);
            self.count(now, |s| s.dropped_partition += 1);
            return;
        }
        let pair = a * self.sites + b;
        let link = self.links[pair];
        // The queue that serialises the message: the pair's link, or the site's uplink.
        let (queue, free) = match &self.uplinks {
            Some(up) => (up[a], &mut self.uplink_free[a]),
            None => (link, &mut self.wan_free[pair]),
        };
        let tx = queue.tx(size);
        if free.saturating_sub(now).saturating_add(tx) > queue.queue_limit {
            self.slab.take(slot);
            self.count(now, |s| s.dropped_queue += 1);
            return;
        }
        let depart = (*free).max(now).saturating_add(tx);
        *free = depart;
        self.propagate(slot, link, depart);
    }

    /// A message has been serialised onto `link` at `depart`: loss, duplication, then
    /// propagation delay.
    fn propagate(&mut self, slot: u32, link: Link, depart: Nanos) {
        if link.loss > 0.0 && self.net_rng.gen::<f64>() < link.loss {
            self.slab.take(slot);
            self.count(self.now, |s| s.dropped_loss += 1);
            return;
        }
        if self.config.duplicate_prob > 0.0
            && self.net_rng.gen::<f64>() < self.config.duplicate_prob
        {
            let original = self.slab.get(slot);
            let copy = Packet {
                from: original.from,
                to: original.to,
                size: original.size,
                injected: false,
                msg: original.msg.clone(),
            };
            let copy = self.slab.insert(copy);
            let at = depart.saturating_add(self.delay(link));
            self.push(at, EventKind::Deliver(copy));
            self.count(self.now, |s| s.duplicated += 1);
        }
        let at = depart.saturating_add(self.delay(link));
        self.push(at, EventKind::Deliver(slot));
    }

    /// One-way latency, jitter and the reordering delay.
    fn delay(&mut self, link: Link) -> Nanos {
        let mut d = link.latency;
        if link.jitter > 0 {
            d = d.saturating_add(self.net_rng.gen_range(0..=link.jitter));
        }
        if self.config.reorder_prob > 0.0 && self.net_rng.gen::<f64>() < self.config.reorder_prob {
            let max = nanos(self.config.reorder_max);
            if max > 0 {
                d = d.saturating_add(self.net_rng.gen_range(0..=max));
            }
            self.count(self.now, |s| s.reordered += 1);
        }
        d
    }

    /// A message reaches its destination now.
    fn deliver(&mut self, slot: u32) {
        let now = self.now;
        let packet = self.slab.get(slot);
        let (from, to, size, injected) = (
            packet.from as usize,
            packet.to as usize,
            packet.size,
            packet.injected,
        );
        let (a, b) = (self.procs[from].site, self.procs[to].site);
        if !injected && self.separated(a, b) {
            self.slab.take(slot);
            self.count(now, |s| s.dropped_partition += 1);
            return;
        }
        if injected {
            self.count(now, |s| s.injected += 1);
        } else if from == to {
            self.count(now, |s| s.self_messages += 1);
        } else if a == b {
            self.count(now, |s| {
                s.lan_messages += 1;
                s.lan_bytes += size;
            });
        } else {
            self.count(now, |s| {
                s.wan_messages += 1;
                s.wan_bytes += size;
            });
            if now >= self.warmup {
                self.stats.wan_pair_bytes[a * self.sites + b] += size;
            }
        }
        self.trace = mix(mix(mix(mix(self.trace, now), from as u64), to as u64), size);
        self.dispatch(to, Input::Msg(slot));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialisation_time_matches_the_topology_crate() {
        for bps in [1, 3, 2_500_000, 10_000_000, 1_000_000_000, u64::MAX] {
            let params = LinkParams {
                latency: Duration::ZERO,
                jitter: Duration::ZERO,
                bandwidth_bps: bps,
                loss: 0.0,
            };
            let link = Link::new(&params, 1 << 20);
            for bytes in [0, 1, 1250, 1 << 20, 1 << 40, u64::MAX / 2] {
                assert_eq!(
                    link.tx(bytes),
                    nanos(params.transmission_time(bytes)),
                    "{bytes} bytes at {bps} bps"
                );
            }
            assert_eq!(link.queue_limit, link.tx(1 << 20));
        }
    }

    #[test]
    fn events_pop_by_time_then_insertion_order() {
        let mut heap = BinaryHeap::new();
        for (time, seq) in [(5, 0), (1, 1), (5, 2), (1, 3), (0, 4)] {
            heap.push(Event {
                time,
                seq,
                kind: EventKind::Wake(0),
            });
        }
        let order: Vec<(u64, u64)> = std::iter::from_fn(|| heap.pop())
            .map(|e| (e.time, e.seq))
            .collect();
        assert_eq!(order, vec![(0, 4), (1, 1), (1, 3), (5, 0), (5, 2)]);
    }
}
