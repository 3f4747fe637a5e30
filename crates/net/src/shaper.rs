//! Userspace WAN emulation: a quinn [`AsyncUdpSocket`] wrapper that shapes every datagram it
//! sends according to its destination.
//!
//! Per destination address ([`LinkParams`] from the topology):
//!
//! 1. **Partition**: a partitioned destination gets nothing; datagrams already queued for it
//!    are dropped when they come due, and (for [`ShaperHandle::partition`]) datagrams received
//!    from it are dropped too.
//! 2. **Loss**: each datagram is dropped with probability `loss` (per-link seeded RNG).
//! 3. **Bandwidth**: serialization delay `len * 8 / bandwidth_bps` on a queue that is busy
//!    until its previous datagram is serialized; a datagram that would find more than the
//!    queue limit of bytes still waiting for the queue is tail-dropped. Which queue: see
//!    *Shared WAN queues* below; by default each destination has its own.
//! 4. **Propagation**: the datagram is due `latency + jitter` after its last bit is
//!    serialized; jitter is normal with standard deviation `jitter` (netem's meaning), and
//!    never reorders a destination (a datagram is never due before the previous one to the
//!    same address).
//!
//! # Shared WAN queues
//!
//! A topology's WAN bandwidth belongs to sites, not to pairs of nodes
//! ([`steward_config::WanModel`], and the simulator of `steward-sim` models it so): with
//! [`WanModel::Pairwise`] all nodes of site `a` sending to nodes of site `b` share one FIFO
//! queue at `link(a, b).bandwidth_bps`; with [`WanModel::SiteUplink`] all WAN traffic leaving
//! site `a` shares one queue at the largest bandwidth of `a`'s WAN links. Per-destination
//! queues would give 4 servers sending to 4 servers 16 times the bandwidth.
//!
//! With [`ShaperConfig::shared`] set ([`ShaperConfig::from_topology_shared`]), a datagram to a
//! destination at another site is serialized by that shared queue instead of a
//! per-destination one: [`SharedWanQueues`] holds one "busy until" timestamp per queue
//! (nanoseconds of `CLOCK_MONOTONIC`, system-wide on Linux), and admission is a lock-free
//! compare-and-swap that reserves the next serialization interval (or tail-drops when the
//! queue's backlog is over the limit). The queues live either in a small file that every node
//! process of a local cluster maps (`MAP_SHARED`; the launcher makes it with
//! [`SharedWanQueues::create`], each node opens it with [`SharedWanQueues::open`]) or, without
//! a file, in process memory ([`SharedWanQueues::in_process`]), shared only by the sockets of
//! one process that hold the same handle. For a shared-queue destination:
//!
//! * the queue comes first and loss after it, as in the simulator (a lost datagram used its
//!   share of the bandwidth); latency, jitter, loss and partitions stay per destination, and
//!   so does the no-reordering rule;
//! * the queue's bandwidth is the destination link's current bandwidth (pairwise; so
//!   [`ShaperHandle::set_link`] changes it, for this sender), or the uplink's fixed bandwidth
//!   (site uplink; `set_link` then changes only latency, jitter and loss, as in the
//!   simulator);
//! * the drop-tail limit is this sender's [`ShaperConfig::queue_bytes`] (or its default) at the
//!   queue's bandwidth; senders sharing a queue should use the same setting.
//!
//! Destinations at the node's own site (the LAN), destinations whose site is not known, and
//! every destination without [`ShaperConfig::shared`] keep their own per-destination queue.
//!
//! # Timing
//!
//! Due datagrams are sent by a **dedicated timer thread** per socket, which waits on a condition
//! variable with a timeout until the earliest due instant (Linux futex timeouts with the default
//! 50 µs timer slack, so datagrams leave within ~0.1 ms of their due time) and then sends every
//! due datagram through the real socket. A thread rather than a tokio timer because tokio's
//! timer wheel has 1 ms granularity, and because the replicas' own work (RSA signing) on the
//! tokio workers would otherwise delay the emulated network (the thread also asks for nice -10,
//! granted when running as root). Per datagram the hot path does one
//! copy into a recycled buffer and one binary-heap push (plus, for a shared queue, one
//! compare-and-swap loop on the mapped slot); nothing else allocates in steady state.
//!
//! Destinations with no link parameters (and no default) pass straight through unshaped.
//! The shaper never reports `WouldBlock` to quinn for shaped destinations: like a real wire, a
//! full queue drops.

use std::cmp::{Ordering as CmpOrdering, Reverse};
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::fmt;
use std::io::{self, IoSliceMut};
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use quinn::udp::{EcnCodepoint, RecvMeta, Transmit};
use quinn::{AsyncUdpSocket, UdpPoller};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use steward_config::{LinkParams, SiteId, Topology, WanModel};

mod shared;

pub use shared::{
    monotonic_ns, SharedWanError, SharedWanQueues, WanQueueModel, WanSlot, MAX_SITES,
};

/// Whether a node's socket is shaped.
#[derive(Clone, Debug, Default)]
pub enum ShaperMode {
    /// No userspace shaping: datagrams go straight to the kernel (`--wan off`, or `--wan
    /// netem` on hosts shaped by `tc`).
    #[default]
    Off,
    /// Shape every datagram according to its destination.
    Emulate(ShaperConfig),
}

/// The per-destination link table and shaper-wide settings.
#[derive(Clone, Debug, Default)]
pub struct ShaperConfig {
    /// Link parameters per destination address.
    pub links: HashMap<SocketAddr, LinkParams>,
    /// Parameters for destinations not in `links`; `None` sends those unshaped.
    pub default_link: Option<LinkParams>,
    /// Drop-tail limit: bytes that may wait for a link's serialization. `None`: 100 ms worth
    /// of the link's bandwidth, at least 32 KiB (a BDP-sized router buffer for 100 ms paths).
    pub queue_bytes: Option<usize>,
    /// Seed of the per-link loss and jitter generators (each link mixes in its address).
    pub seed: u64,
    /// WAN queues shared with the other senders of this node's site (other sockets of this
    /// process, or other processes through a mapped file). `None`: every destination has its
    /// own queue, as without a topology.
    pub shared: Option<SharedWan>,
}

/// Which destinations are WAN destinations of a node, and the shared queues that serialize
/// their datagrams (see the module documentation).
#[derive(Clone, Debug)]
pub struct SharedWan {
    /// The queues, shared with the other senders (an `Arc` of one handle per process).
    pub queues: Arc<SharedWanQueues>,
    /// This node's site.
    pub site: SiteId,
    /// The site of each destination. Destinations at another site than [`SharedWan::site`]
    /// are serialized by the shared queue; the others (same site, or not listed) by their own
    /// per-destination queue. Must be below [`SharedWanQueues::sites`].
    pub destination_sites: HashMap<SocketAddr, SiteId>,
    /// Which queue: the pair's or the site's uplink.
    pub model: WanQueueModel,
}

impl ShaperConfig {
    /// A table with these links, no default, automatic queue limits, seed 0.
    pub fn new(links: HashMap<SocketAddr, LinkParams>) -> ShaperConfig {
        ShaperConfig {
            links,
            ..ShaperConfig::default()
        }
    }

    /// The link table of a node at site `from`: every peer address gets the topology's
    /// parameters between `from` and the peer's site (the LAN for the same site).
    pub fn from_topology(
        topology: &Topology,
        from: SiteId,
        peers: impl IntoIterator<Item = (SocketAddr, SiteId)>,
    ) -> ShaperConfig {
        ShaperConfig::new(
            peers
                .into_iter()
                .map(|(addr, site)| (addr, *topology.link(from, site)))
                .collect(),
        )
    }

    /// [`ShaperConfig::from_topology`], with the WAN bandwidth shared as the topology's
    /// [`WanModel`] says: datagrams to peers at other sites go through `shared`'s queue of
    /// the directed site pair ([`WanModel::Pairwise`]) or of `from`'s uplink
    /// ([`WanModel::SiteUplink`], at the largest bandwidth of `from`'s WAN links), shared
    /// with every other socket that uses the same queues. With `shared` `None`, the queues are
    /// process-local ([`SharedWanQueues::in_process`]): shared only between this socket's
    /// destinations. `shared` must have been opened for `topology.sites.len()` sites (else
    /// [`ShapedSocket::new`] fails).
    pub fn from_topology_shared(
        topology: &Topology,
        from: SiteId,
        peers: impl IntoIterator<Item = (SocketAddr, SiteId)>,
        shared: Option<Arc<SharedWanQueues>>,
    ) -> ShaperConfig {
        let peers: Vec<(SocketAddr, SiteId)> = peers.into_iter().collect();
        let mut config = ShaperConfig::from_topology(topology, from, peers.iter().copied());
        let queues =
            shared.unwrap_or_else(|| Arc::new(SharedWanQueues::in_process(topology.sites.len())));
        let model = match topology.wan_model {
            WanModel::Pairwise => WanQueueModel::Pairwise,
            WanModel::SiteUplink => WanQueueModel::SiteUplink {
                bandwidth_bps: uplink_bandwidth(topology, from),
            },
        };
        config.shared = Some(SharedWan {
            queues,
            site: from,
            destination_sites: peers
                .into_iter()
                .map(|(addr, site)| (canonical(addr), site))
                .collect(),
            model,
        });
        config
    }
}

/// The bandwidth of `site`'s uplink in the site-uplink model: the largest of its WAN links
/// (its LAN's when it is the only site), as the simulator has it.
fn uplink_bandwidth(topology: &Topology, site: SiteId) -> u64 {
    topology
        .site_ids()
        .filter(|&other| other != site)
        .map(|other| topology.link(site, other).bandwidth_bps)
        .max()
        .unwrap_or(topology.lan.bandwidth_bps)
}

/// Counters of one shaped destination.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinkStats {
    /// Datagrams handed to the real socket.
    pub sent_datagrams: u64,
    /// Their bytes (UDP payload).
    pub sent_bytes: u64,
    /// Datagrams dropped by the loss model.
    pub dropped_loss: u64,
    /// Datagrams tail-dropped because the link's queue was full.
    pub dropped_queue: u64,
    /// Datagrams to this destination dropped by a partition.
    pub dropped_partition: u64,
    /// Datagrams from this address dropped on receipt by a two-way partition.
    pub dropped_incoming: u64,
    /// Datagrams the real socket refused (buffer full for too long, or an I/O error).
    pub send_errors: u64,
}

/// The shaping socket: wraps quinn's real socket. Create with [`ShapedSocket::new`].
pub struct ShapedSocket {
    inner: Arc<dyn AsyncUdpSocket>,
    core: Arc<Core>,
}

impl fmt::Debug for ShapedSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShapedSocket")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

/// Changes a running shaper: links, partitions; reads its counters. Cheap to clone; does not
/// keep the socket open.
#[derive(Clone)]
pub struct ShaperHandle {
    core: Arc<Core>,
}

impl fmt::Debug for ShaperHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShaperHandle").finish_non_exhaustive()
    }
}

struct Core {
    state: Mutex<State>,
    wake: Condvar,
    /// Number of two-way partitions (addresses whose incoming datagrams are dropped), so
    /// `poll_recv` takes the lock only when there is one.
    incoming_blocked: AtomicUsize,
}

struct State {
    links: HashMap<SocketAddr, Link>,
    default_link: Option<LinkParams>,
    queue_bytes: Option<usize>,
    seed: u64,
    /// The shared WAN queues, if any.
    shared: Option<SharedWan>,
    /// Destinations partitioned (outgoing).
    blocked_out: HashSet<SocketAddr>,
    /// Sources partitioned (incoming).
    blocked_in: HashSet<SocketAddr>,
    /// Counters of addresses that are not shaped links (partitions of unshaped addresses).
    other_stats: HashMap<SocketAddr, LinkStats>,
    heap: BinaryHeap<Reverse<Scheduled>>,
    pool: Vec<Vec<u8>>,
    next_seq: u64,
    /// The socket was dropped: the timer thread sends what is queued, then exits.
    closing: bool,
}

struct Link {
    params: LinkParams,
    /// The shared WAN queue that serializes this destination's datagrams; `None`: its own
    /// queue (`busy_until`).
    shared: Option<SharedQueue>,
    /// When the link finishes serializing everything queued so far (own queue).
    busy_until: Instant,
    /// Due time of the last datagram queued (no reordering).
    last_due: Instant,
    rng: ChaCha8Rng,
    stats: LinkStats,
}

/// A destination's queue in the shared WAN queues.
struct SharedQueue {
    queues: Arc<SharedWanQueues>,
    slot: WanSlot,
    /// The queue's bandwidth if fixed (a site uplink); `None`: the link's bandwidth.
    bandwidth_bps: Option<u64>,
}

struct Scheduled {
    due: Instant,
    seq: u64,
    destination: SocketAddr,
    ecn: Option<EcnCodepoint>,
    src_ip: Option<IpAddr>,
    buf: Vec<u8>,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        (self.due, self.seq) == (other.due, other.seq)
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scheduled {
    fn cmp(&self, other: &Self) -> CmpOrdering {
        (self.due, self.seq).cmp(&(other.due, other.seq))
    }
}

/// Buffers kept for reuse; beyond this many, freed.
const POOL_MAX: usize = 4096;
/// How long the timer thread retries a datagram the kernel refuses (`WouldBlock`).
const SEND_RETRY_FOR: Duration = Duration::from_millis(20);

impl SharedWan {
    /// The shared queue of `destination`: `None` unless it is at another site.
    fn queue_for(&self, destination: SocketAddr) -> Option<SharedQueue> {
        let site = *self.destination_sites.get(&destination)?;
        if site == self.site {
            return None;
        }
        let (slot, bandwidth_bps) = match self.model {
            WanQueueModel::Pairwise => (self.queues.pair_slot(self.site, site)?, None),
            WanQueueModel::SiteUplink { bandwidth_bps } => {
                (self.queues.uplink_slot(self.site)?, Some(bandwidth_bps))
            }
        };
        Some(SharedQueue {
            queues: self.queues.clone(),
            slot,
            bandwidth_bps,
        })
    }

    /// Every site named is a site of the queues.
    fn validate(&self) -> io::Result<()> {
        let sites = self.queues.sites();
        let bad = std::iter::once(self.site)
            .chain(self.destination_sites.values().copied())
            .find(|site| site.index() >= sites);
        match bad {
            Some(site) => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "WAN shaper: site {site} is not one of the {sites} sites of the shared WAN \
                     queues{}",
                    self.queues
                        .path()
                        .map(|p| format!(" ({})", p.display()))
                        .unwrap_or_default()
                ),
            )),
            None => Ok(()),
        }
    }
}

impl State {
    fn link(&mut self, destination: SocketAddr, now: Instant) -> Option<&mut Link> {
        if !self.links.contains_key(&destination) {
            let params = self.default_link?;
            let link = self.new_link(params, destination, now);
            self.links.insert(destination, link);
        }
        self.links.get_mut(&destination)
    }

    fn new_link(&self, params: LinkParams, destination: SocketAddr, now: Instant) -> Link {
        let shared = self
            .shared
            .as_ref()
            .and_then(|shared| shared.queue_for(destination));
        Link::new(params, shared, self.seed, destination, now)
    }

    fn stats_mut(&mut self, addr: SocketAddr) -> &mut LinkStats {
        match self.links.get_mut(&addr) {
            Some(link) => &mut link.stats,
            None => self.other_stats.entry(addr).or_default(),
        }
    }
}

/// The drop-tail limit of a queue of `bandwidth_bps`: see [`ShaperConfig::queue_bytes`].
fn queue_limit(queue_bytes: Option<usize>, bandwidth_bps: u64) -> u64 {
    match queue_bytes {
        Some(bytes) => bytes as u64,
        None => (bandwidth_bps / 8 / 10).max(32 * 1024),
    }
}

impl Link {
    fn new(
        params: LinkParams,
        shared: Option<SharedQueue>,
        seed: u64,
        destination: SocketAddr,
        now: Instant,
    ) -> Link {
        Link {
            params,
            shared,
            busy_until: now,
            last_due: now,
            rng: ChaCha8Rng::seed_from_u64(seed ^ addr_hash(destination)),
            stats: LinkStats::default(),
        }
    }

    /// Decides the fate of one datagram of `len` bytes offered at `now` (`now_ns` on the
    /// monotonic clock, read at the same moment): `None` if dropped, else its due time.
    fn admit(
        &mut self,
        len: usize,
        now: Instant,
        now_ns: u64,
        queue_bytes: Option<usize>,
    ) -> Option<Instant> {
        let params = self.params;
        let departure = match &self.shared {
            None => {
                if params.loss > 0.0 && self.rng.gen::<f64>() < params.loss {
                    self.stats.dropped_loss += 1;
                    return None;
                }
                let start = self.busy_until.max(now);
                let backlog_bytes =
                    u128::from(params.bandwidth_bps) * (start - now).as_nanos() / 8 / 1_000_000_000;
                let limit = queue_limit(queue_bytes, params.bandwidth_bps);
                if backlog_bytes + len as u128 > u128::from(limit) {
                    self.stats.dropped_queue += 1;
                    return None;
                }
                self.busy_until = start + params.transmission_time(len as u64);
                self.busy_until
            }
            Some(queue) => {
                // As the simulator: the queue first, then loss on the way.
                let bandwidth = queue.bandwidth_bps.unwrap_or(params.bandwidth_bps);
                let limit = queue_limit(queue_bytes, bandwidth);
                let Some(end_ns) = queue
                    .queues
                    .reserve(queue.slot, now_ns, len as u64, bandwidth, limit)
                else {
                    self.stats.dropped_queue += 1;
                    return None;
                };
                if params.loss > 0.0 && self.rng.gen::<f64>() < params.loss {
                    self.stats.dropped_loss += 1;
                    return None;
                }
                now + Duration::from_nanos(end_ns.saturating_sub(now_ns))
            }
        };
        let mut delay = params.latency;
        if !params.jitter.is_zero() {
            let offset = params.jitter.as_secs_f64() * standard_normal(&mut self.rng);
            delay = Duration::from_secs_f64((delay.as_secs_f64() + offset).max(0.0));
        }
        let due = (departure + delay).max(self.last_due);
        self.last_due = due;
        Some(due)
    }
}

/// A standard normal sample (Box–Muller).
fn standard_normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1: f64 = 1.0 - rng.gen::<f64>(); // (0, 1]
    let u2: f64 = rng.gen();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

fn addr_hash(addr: SocketAddr) -> u64 {
    // FNV-1a over the address text: stable across runs and platforms.
    let mut hash = 0xcbf2_9ce4_8422_2325_u64;
    for byte in addr.to_string().bytes() {
        hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// Maps IPv4-mapped IPv6 addresses to IPv4, so the table matches either spelling.
fn canonical(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(IpAddr::V4(v4), v6.port()),
            None => addr,
        },
        SocketAddr::V4(_) => addr,
    }
}

impl Core {
    fn lock(&self) -> MutexGuard<'_, State> {
        // The state stays consistent even if a holder panicked (no invariant spans a panic
        // point), so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl ShapedSocket {
    /// Shapes a bound UDP socket; must be called inside a tokio runtime. Starts the shaper's
    /// timer thread, which exits after the socket is dropped and its queue is sent. Returns
    /// the socket to give to quinn (`Endpoint::new_with_abstract_socket`) and a handle to
    /// change it while running.
    pub fn new(
        socket: std::net::UdpSocket,
        config: ShaperConfig,
    ) -> io::Result<(Arc<ShapedSocket>, ShaperHandle)> {
        let sender = socket.try_clone()?;
        let inner = quinn::Runtime::wrap_udp_socket(&quinn::TokioRuntime, socket)?;
        ShapedSocket::with_parts(inner, sender, config)
    }

    /// `inner` receives and sends unshaped datagrams; `sender` (the same socket, duplicated)
    /// is what the timer thread sends shaped datagrams with, directly rather than through
    /// tokio's readiness tracking, which a thread outside the runtime cannot await. The thread
    /// also keeps `inner` alive until it exits, and drops `sender` first.
    pub(crate) fn with_parts(
        inner: Arc<dyn AsyncUdpSocket>,
        sender: std::net::UdpSocket,
        config: ShaperConfig,
    ) -> io::Result<(Arc<ShapedSocket>, ShaperHandle)> {
        let now = Instant::now();
        let mut shared = config.shared;
        if let Some(shared) = &mut shared {
            shared.validate()?;
            shared.destination_sites = shared
                .destination_sites
                .drain()
                .map(|(addr, site)| (canonical(addr), site))
                .collect();
        }
        let mut state = State {
            links: HashMap::new(),
            default_link: config.default_link,
            queue_bytes: config.queue_bytes,
            seed: config.seed,
            shared,
            blocked_out: HashSet::new(),
            blocked_in: HashSet::new(),
            other_stats: HashMap::new(),
            heap: BinaryHeap::new(),
            pool: Vec::new(),
            next_seq: 0,
            closing: false,
        };
        for (addr, params) in &config.links {
            let addr = canonical(*addr);
            let link = state.new_link(*params, addr, now);
            state.links.insert(addr, link);
        }
        let core = Arc::new(Core {
            state: Mutex::new(state),
            wake: Condvar::new(),
            incoming_blocked: AtomicUsize::new(0),
        });
        let send_state = quinn::udp::UdpSocketState::new((&sender).into())?;
        let local = sender.local_addr()?;
        let (thread_core, keep_alive) = (core.clone(), inner.clone());
        std::thread::Builder::new()
            .name(format!("wan-shaper {local}"))
            .spawn(move || {
                raise_thread_priority();
                timer_thread(&thread_core, &sender, &send_state);
                drop(sender);
                drop(keep_alive);
            })?;
        let socket = Arc::new(ShapedSocket {
            inner,
            core: core.clone(),
        });
        Ok((socket, ShaperHandle { core }))
    }
}

impl Drop for ShapedSocket {
    fn drop(&mut self) {
        self.core.lock().closing = true;
        self.core.wake.notify_all();
    }
}

/// Best effort: gives the calling thread nice -10, so the timer thread preempts CPU-bound
/// replica work (RSA signing) when a datagram comes due. Needs `CAP_SYS_NICE` (root);
/// silently keeps the default priority otherwise.
fn raise_thread_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: plain system calls on the calling thread's id; no memory is shared.
    unsafe {
        let tid = libc::gettid();
        libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, -10);
    }
}

/// Sends due datagrams; see the module documentation.
fn timer_thread(
    core: &Core,
    socket: &std::net::UdpSocket,
    send_state: &quinn::udp::UdpSocketState,
) {
    let mut batch: Vec<Scheduled> = Vec::with_capacity(64);
    loop {
        let mut state = core.lock();
        loop {
            let now = Instant::now();
            match state.heap.peek() {
                Some(Reverse(next)) if next.due <= now => break,
                Some(Reverse(next)) => {
                    let wait = next.due - now;
                    state = core
                        .wake
                        .wait_timeout(state, wait)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
                None if state.closing => return,
                None => state = core.wake.wait(state).unwrap_or_else(|e| e.into_inner()),
            }
        }
        let now = Instant::now();
        while state
            .heap
            .peek()
            .is_some_and(|Reverse(next)| next.due <= now)
        {
            let Some(Reverse(item)) = state.heap.pop() else {
                break;
            };
            if state.blocked_out.contains(&item.destination) {
                state.stats_mut(item.destination).dropped_partition += 1;
                state.pool.push(item.buf);
                continue;
            }
            let stats = state.stats_mut(item.destination);
            stats.sent_datagrams += 1;
            stats.sent_bytes += item.buf.len() as u64;
            batch.push(item);
        }
        drop(state);

        let mut failed: Vec<SocketAddr> = Vec::new();
        for item in &batch {
            let transmit = Transmit {
                destination: item.destination,
                ecn: item.ecn,
                contents: &item.buf,
                segment_size: None,
                src_ip: item.src_ip,
            };
            if send_with_retry(socket, send_state, &transmit).is_err() {
                failed.push(item.destination);
            }
        }

        let mut state = core.lock();
        for addr in failed {
            let stats = state.stats_mut(addr);
            stats.sent_datagrams -= 1;
            stats.send_errors += 1;
        }
        for item in batch.drain(..) {
            if state.pool.len() < POOL_MAX {
                state.pool.push(item.buf);
            }
        }
    }
}

/// One `sendmsg`, retried for a short while if the kernel's send buffer is full.
fn send_with_retry(
    socket: &std::net::UdpSocket,
    send_state: &quinn::udp::UdpSocketState,
    transmit: &Transmit<'_>,
) -> io::Result<()> {
    let deadline = Instant::now() + SEND_RETRY_FOR;
    loop {
        match send_state.send(socket.into(), transmit) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_micros(50));
            }
            other => return other,
        }
    }
}

impl AsyncUdpSocket for ShapedSocket {
    fn create_io_poller(self: Arc<Self>) -> Pin<Box<dyn UdpPoller>> {
        // Shaped sends never block; unshaped ones go to the inner socket, whose readiness
        // this is.
        self.inner.clone().create_io_poller()
    }

    fn try_send(&self, transmit: &Transmit<'_>) -> io::Result<()> {
        let destination = canonical(transmit.destination);
        // The same instant on both clocks (the shared queues count monotonic nanoseconds).
        let now = Instant::now();
        let now_ns = monotonic_ns();
        let mut state = self.core.lock();
        if state.blocked_out.contains(&destination) {
            let segments = transmit
                .segment_size
                .map_or(1, |size| transmit.contents.len().div_ceil(size.max(1)));
            state.stats_mut(destination).dropped_partition += segments as u64;
            return Ok(());
        }
        if state.link(destination, now).is_none() {
            drop(state);
            return self.inner.try_send(transmit);
        }
        let queue_bytes = state.queue_bytes;
        let segment_size = transmit
            .segment_size
            .unwrap_or(transmit.contents.len())
            .max(1);
        let mut new_earliest = false;
        for segment in transmit.contents.chunks(segment_size) {
            let link = state
                .links
                .get_mut(&destination)
                .expect("link just looked up");
            let Some(due) = link.admit(segment.len(), now, now_ns, queue_bytes) else {
                continue;
            };
            let mut buf = state.pool.pop().unwrap_or_default();
            buf.clear();
            buf.extend_from_slice(segment);
            let seq = state.next_seq;
            state.next_seq += 1;
            new_earliest |= state
                .heap
                .peek()
                .is_none_or(|Reverse(earliest)| due < earliest.due);
            state.heap.push(Reverse(Scheduled {
                due,
                seq,
                destination,
                ecn: transmit.ecn,
                src_ip: transmit.src_ip,
                buf,
            }));
        }
        drop(state);
        if new_earliest {
            self.core.wake.notify_one();
        }
        Ok(())
    }

    fn poll_recv(
        &self,
        cx: &mut Context<'_>,
        bufs: &mut [IoSliceMut<'_>],
        meta: &mut [RecvMeta],
    ) -> Poll<io::Result<usize>> {
        loop {
            let count = match self.inner.poll_recv(cx, bufs, meta) {
                Poll::Ready(Ok(count)) => count,
                other => return other,
            };
            if self.core.incoming_blocked.load(Ordering::Relaxed) == 0 {
                return Poll::Ready(Ok(count));
            }
            let mut state = self.core.lock();
            let mut kept = 0;
            for i in 0..count {
                let source = canonical(meta[i].addr);
                if state.blocked_in.contains(&source) {
                    state.stats_mut(source).dropped_incoming += 1;
                    continue;
                }
                if kept != i {
                    let len = meta[i].len;
                    let (low, high) = bufs.split_at_mut(i);
                    low[kept][..len].copy_from_slice(&high[0][..len]);
                    meta[kept] = meta[i];
                }
                kept += 1;
            }
            if kept > 0 {
                return Poll::Ready(Ok(kept));
            }
            // Everything was from partitioned sources: poll again (registers the waker when
            // nothing more is ready).
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    fn max_receive_segments(&self) -> usize {
        self.inner.max_receive_segments()
    }

    fn may_fragment(&self) -> bool {
        self.inner.may_fragment()
    }

    // `max_transmit_segments` stays at its default of 1: no GSO batches into the shaper.
}

impl ShaperHandle {
    /// Sets (or replaces) the parameters of the link to `destination`. Datagrams already
    /// queued keep their due times.
    pub fn set_link(&self, destination: SocketAddr, params: LinkParams) {
        let destination = canonical(destination);
        let mut state = self.core.lock();
        match state.links.get_mut(&destination) {
            Some(link) => link.params = params,
            None => {
                let link = state.new_link(params, destination, Instant::now());
                state.links.insert(destination, link);
            }
        }
    }

    /// The current parameters of the link to `destination`, if it is shaped.
    pub fn link(&self, destination: SocketAddr) -> Option<LinkParams> {
        let state = self.core.lock();
        state
            .links
            .get(&canonical(destination))
            .map(|l| l.params)
            .or(state.default_link)
    }

    /// Cuts `peer` off in both directions: nothing is sent to it (including datagrams already
    /// queued) and nothing received from it is delivered.
    pub fn partition(&self, peer: SocketAddr) {
        let peer = canonical(peer);
        let mut state = self.core.lock();
        state.blocked_out.insert(peer);
        if state.blocked_in.insert(peer) {
            self.core.incoming_blocked.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Cuts only the direction towards `destination` (what a one-way partition needs).
    pub fn partition_outgoing(&self, destination: SocketAddr) {
        self.core.lock().blocked_out.insert(canonical(destination));
    }

    /// Restores both directions with `peer`.
    pub fn heal(&self, peer: SocketAddr) {
        let peer = canonical(peer);
        let mut state = self.core.lock();
        state.blocked_out.remove(&peer);
        if state.blocked_in.remove(&peer) {
            self.core.incoming_blocked.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Restores every partitioned address.
    pub fn heal_all(&self) {
        let mut state = self.core.lock();
        state.blocked_out.clear();
        let removed = state.blocked_in.drain().count();
        self.core
            .incoming_blocked
            .fetch_sub(removed, Ordering::Relaxed);
    }

    /// The counters of the link to (and from) `addr`, if anything was counted for it.
    pub fn stats(&self, addr: SocketAddr) -> Option<LinkStats> {
        let addr = canonical(addr);
        let state = self.core.lock();
        state
            .links
            .get(&addr)
            .map(|l| l.stats)
            .or_else(|| state.other_stats.get(&addr).copied())
    }

    /// Datagrams currently held by the shaper.
    pub fn queued_datagrams(&self) -> usize {
        self.core.lock().heap.len()
    }
}

#[cfg(test)]
mod tests;
