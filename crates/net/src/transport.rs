//! The QUIC transport: one quinn endpoint per node, mutual TLS, framed messages per peer.
//!
//! **Connections.** Each node dials, lazily on its first message to a peer, its own connection
//! to that peer and sends only on connections it dialed; it receives on every connection (the
//! ones peers dialed, and any stream a peer opens on a connection we dialed). Two nodes that
//! talk both ways therefore hold two connections, one per direction of traffic. This avoids any
//! duplicate-connection race (both sides dialing at once) and makes each direction's
//! reconnection the sender's business alone. A peer with no known address (a client that
//! connects to a replica) is answered over the newest connection it dialed to us.
//!
//! **Streams.** On a connection, the sender keeps **one long-lived unidirectional stream**
//! and writes length-prefixed frames on it (`u32` big-endian length, then the message). One
//! ordered stream gives per-peer FIFO delivery, which BFT protocol code finds natural and which
//! a stream per message (independent, unordered) would not; it also costs no per-message
//! stream frames or stream-credit round trips. The price is head-of-line blocking after a loss
//! on that one path, which consensus traffic between two nodes would mostly suffer anyway.
//!
//! **Delivery.** Messages are delivered at most once, intact and in order per sender. A
//! message is lost only when its connection fails (the message being written when the failure
//! is noticed is retried once on the new connection); what was written on a failed connection
//! and not yet settled by the peer's ACK traffic is counted in `messages_dropped` /
//! `bytes_dropped` (an estimate, see `InFlight`). The send queue per peer is bounded in
//! bytes; [`Transport::send`] never blocks and reports a full queue.
//!
//! **Restarts.** The stateless-reset key and the connection-ID generator's key are both
//! derived from the node's TLS key, so a restarted process recognises the connection IDs its
//! predecessor issued and resets those connections on their first packet: peers reconnect
//! within milliseconds instead of after the idle timeout. A peer without an address (a
//! client) is answered on the newest connection it dialed.
//!
//! **Limits** (what one authenticated peer can make a node hold). One incoming connection per
//! peer name (a newer one closes the older); at most 4 streams per connection; per connection a
//! budget of unfinished frame bytes (default one maximal frame, 4 MiB) and a deadline for each
//! frame's payload (default 30 s), either violation closing the connection; the inbound queue
//! ([`crate::inbound`]) bounded in bytes per peer (16 MiB per replica, 1 MiB per client, 16 MiB
//! for all clients), fair between peers, replicas first; connections from peers without an
//! address start with 1 MiB QUIC windows (raised for replicas); send queues split a 256 MiB
//! budget by peer count.
//!
//! **Authentication.** Both sides present certificates of the deployment CA. The dialer
//! checks that the server's certificate carries the dialed name; the acceptor reads the name
//! from the client's certificate and closes connections from names not in the allowed set.
//!
//! **QUIC settings** ([`QuicTuning`]): initial RTT estimate for the WAN, large flow-control
//! windows for high bandwidth-delay products, keep-alives below the idle timeout, and the
//! ACK-frequency extension asking peers to acknowledge within 1 ms instead of the default
//! 25 ms delayed ACK (which would otherwise inflate the probe timeout, hence tail-loss
//! recovery, for sparse consensus traffic). Nothing waits for ACKs on the message path.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use quinn::udp::{RecvMeta, Transmit};
use quinn::{
    AckFrequencyConfig, AsyncUdpSocket, Connection, Endpoint, EndpointConfig, IdleTimeout,
    Incoming, RecvStream, SendStream, UdpPoller, VarInt,
};
use rand::Rng;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::runtime::Handle;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinSet;
use tracing::{debug, warn};

use crate::certs::{self, NodeCert};
use crate::inbound::{self, Inbound, InboundLimits, InboundUsage};
use crate::shaper::{ShapedSocket, ShaperHandle, ShaperMode};
use crate::PeerName;

/// Default bound on one message (frame payload): 4 MiB.
pub const DEFAULT_MAX_FRAME_LEN: usize = 4 << 20;

/// ALPN protocol name of this transport.
pub const ALPN: &[u8] = b"steward-net/1";

/// Application close codes.
const CLOSE_SHUTDOWN: u32 = 0;
const CLOSE_UNKNOWN_PEER: u32 = 1;
const CLOSE_FRAME_TOO_LARGE: u32 = 2;
const CLOSE_REPLACED: u32 = 3;
const CLOSE_FRAME_BUDGET: u32 = 4;
const CLOSE_FRAME_TIMEOUT: u32 = 5;

/// Unidirectional streams a peer may have open on one connection.
const MAX_STREAMS: u32 = 4;

/// QUIC settings; the defaults suit WAN paths of 10–300 ms and 1–100 Mbit/s.
#[derive(Clone, Debug)]
pub struct QuicTuning {
    /// RTT assumed before the first sample (quinn's default is 333 ms). Set it to the
    /// topology's typical WAN round trip. Default 100 ms.
    pub initial_rtt: Duration,
    /// A connection silent for this long is closed (a longer partition then means a
    /// reconnection). Default 60 s.
    pub max_idle_timeout: Duration,
    /// Keep-alive interval for quiet connections; below the idle timeout. Default 10 s.
    pub keep_alive_interval: Duration,
    /// Per-stream receive window (bytes in flight on our one stream per connection).
    /// Default 16 MiB: covers 100 Mbit/s × 1 s.
    pub stream_receive_window: u64,
    /// Per-connection receive window. Default 32 MiB.
    pub receive_window: u64,
    /// Per-connection send buffer. Default 32 MiB.
    pub send_window: u64,
    /// ACK-frequency extension: ack-eliciting packets a peer may receive before it must ACK.
    /// Default 8 (QUIC without the extension ACKs every other packet).
    pub ack_eliciting_threshold: u32,
    /// ACK-frequency extension: the delay we ask peers to ACK within. Default 25 ms, QUIC's
    /// own default (RFC 9000 §18.2). A protocol message rarely has a packet coming back
    /// within a few milliseconds to carry its ACK, so a shorter delay means one ACK-only
    /// datagram per message, each a send, a receive and a wake-up: at 5 ms, Steward used
    /// 1.08× the CPU per update at 1 client (`--wan off`). A loss followed by more packets
    /// is still acknowledged at once (quinn's reordering threshold of 2); only a lost last
    /// packet waits up to this much longer for its retransmission.
    pub max_ack_delay: Duration,
}

impl Default for QuicTuning {
    fn default() -> Self {
        QuicTuning {
            initial_rtt: Duration::from_millis(100),
            max_idle_timeout: Duration::from_secs(60),
            keep_alive_interval: Duration::from_secs(10),
            stream_receive_window: 16 << 20,
            receive_window: 32 << 20,
            send_window: 32 << 20,
            ack_eliciting_threshold: 8,
            max_ack_delay: Duration::from_millis(25),
        }
    }
}

/// Everything [`Transport::bind`] needs.
#[derive(Clone, Debug)]
pub struct TransportConfig {
    /// This node's name; must be the name its certificate carries.
    pub name: PeerName,
    /// This node's certificate and key, issued by the deployment CA.
    pub identity: NodeCert,
    /// The deployment CA certificate (DER): the only trust anchor.
    pub ca_cert_der: Vec<u8>,
    /// The UDP address to bind (port 0 picks one).
    pub bind_addr: SocketAddr,
    /// A socket already bound (for example inherited from a launcher that picked its port),
    /// used instead of binding `bind_addr`.
    pub socket: Option<Arc<std::net::UdpSocket>>,
    /// Addresses of the peers this node may dial. These peers may also connect to us.
    pub peers: HashMap<PeerName, SocketAddr>,
    /// Further names accepted on incoming connections (for example clients, whose addresses
    /// we need not know). Every name in `peers` is accepted too; any other is rejected.
    pub allowed_peers: HashSet<PeerName>,
    /// The source IPs connections may come from, when the address map names every peer that
    /// may connect: a connection attempt from any other IP is ignored before any handshake
    /// work. `None` (the map is incomplete): every source may try, after a QUIC Retry proved
    /// it owns its address.
    pub allowed_sources: Option<HashSet<std::net::IpAddr>>,
    /// Handshakes one source IP may start per second (after filtering and Retry), with
    /// bursts of [`TransportConfig::handshake_burst`]; more are ignored. Default 10.
    pub handshakes_per_second: f64,
    /// Burst of handshakes per source IP. Default 20.
    pub handshake_burst: f64,
    /// Bound on a handshake a peer started with us. Default 3 s.
    pub accept_timeout: Duration,
    /// Connection attempts quinn may hold before we decide on them. Default 128.
    pub max_incoming: usize,
    /// Longest message accepted, in either direction. Default [`DEFAULT_MAX_FRAME_LEN`].
    pub max_frame_len: usize,
    /// Most bytes that may wait in one peer's send queue before [`Transport::send`] refuses
    /// (a message is always accepted into an empty queue). Default 64 MiB. The limit applied
    /// is smaller when many peers share [`TransportConfig::send_budget_bytes`].
    pub max_queue_bytes: usize,
    /// Bytes all send queues together may hold: half is shared by the peers with addresses
    /// (replicas), half by the other allowed peers (clients), in equal parts; each peer's
    /// limit is its part, at most `max_queue_bytes` (and a message is always accepted into an
    /// empty queue). Default 256 MiB.
    pub send_budget_bytes: usize,
    /// Byte budgets of the inbound queue; when a peer's budget is spent, its readers stop
    /// reading and QUIC flow control pushes back on that peer alone.
    pub inbound: InboundLimits,
    /// Bytes of unfinished frames (announced by their header, not yet fully received) one
    /// connection may have; a frame that would exceed it closes the connection. Default: one
    /// frame of `max_frame_len` (an honest sender writes one frame at a time).
    pub frame_budget_bytes: usize,
    /// A frame's payload must arrive within this time of its header, else the connection is
    /// closed. Default 30 s (4 MiB at about 1 Mbit/s).
    pub frame_read_timeout: Duration,
    /// QUIC receive window and send buffer of connections from peers without an address
    /// (clients), raised to the [`QuicTuning`] values for replicas once their name is known.
    /// Default 1 MiB.
    pub client_window: u64,
    /// Bound on one connection handshake. Default 5 s.
    pub connect_timeout: Duration,
    /// First wait after a failed connection attempt; doubles per failure. Default 50 ms.
    pub backoff_initial: Duration,
    /// Longest wait between connection attempts. Default 5 s.
    pub backoff_max: Duration,
    /// QUIC settings.
    pub quic: QuicTuning,
    /// Userspace WAN emulation on this node's socket.
    pub shaper: ShaperMode,
}

impl TransportConfig {
    /// A configuration with no peers and default settings.
    pub fn new(
        name: impl Into<PeerName>,
        identity: NodeCert,
        ca_cert_der: Vec<u8>,
        bind_addr: SocketAddr,
    ) -> TransportConfig {
        TransportConfig {
            name: name.into(),
            identity,
            ca_cert_der,
            bind_addr,
            socket: None,
            peers: HashMap::new(),
            allowed_peers: HashSet::new(),
            allowed_sources: None,
            handshakes_per_second: 10.0,
            handshake_burst: 20.0,
            accept_timeout: Duration::from_secs(3),
            max_incoming: 128,
            max_frame_len: DEFAULT_MAX_FRAME_LEN,
            max_queue_bytes: 64 << 20,
            send_budget_bytes: 256 << 20,
            inbound: InboundLimits::default(),
            frame_budget_bytes: DEFAULT_MAX_FRAME_LEN,
            frame_read_timeout: Duration::from_secs(30),
            client_window: 1 << 20,
            connect_timeout: Duration::from_secs(5),
            backoff_initial: Duration::from_millis(50),
            backoff_max: Duration::from_secs(5),
            quic: QuicTuning::default(),
            shaper: ShaperMode::Off,
        }
    }
}

/// Why [`Transport::bind`] failed.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// `bind` was called outside a tokio runtime.
    #[error("the transport must be created inside a tokio runtime")]
    NoRuntime,
    /// The UDP socket could not be bound.
    #[error("cannot bind UDP socket {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The OS error.
        source: io::Error,
    },
    /// The node's certificate, key or CA certificate is unusable.
    #[error("node {name}: {reason}")]
    Identity {
        /// The node.
        name: PeerName,
        /// What is wrong.
        reason: String,
    },
    /// An invalid setting.
    #[error("invalid transport setting: {0}")]
    Config(String),
}

/// Why [`Transport::send`] refused a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Neither a known address nor an allowed name.
    #[error("unknown peer {0}")]
    UnknownPeer(PeerName),
    /// Longer than the configured maximum frame length.
    #[error("message of {len} bytes exceeds the {max}-byte frame limit")]
    FrameTooLarge {
        /// The message length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The peer's send queue is full (the peer is unreachable or slower than us).
    #[error("send queue to {peer} is full ({queued_bytes} bytes waiting)")]
    QueueFull {
        /// The peer.
        peer: PeerName,
        /// Bytes waiting.
        queued_bytes: usize,
    },
    /// The transport was shut down.
    #[error("the transport is shut down")]
    ShutDown,
}

/// Per-peer counters (message payload bytes, without framing or QUIC overhead).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PeerStats {
    /// Messages written to the peer's stream.
    pub messages_sent: u64,
    /// Their bytes.
    pub bytes_sent: u64,
    /// Messages received from the peer.
    pub messages_received: u64,
    /// Their bytes.
    pub bytes_received: u64,
    /// Messages dropped: refused by a full queue, lost to a failed connection twice, or
    /// written on a connection that then failed without their arrival being known (an
    /// estimate, see the module documentation).
    pub messages_dropped: u64,
    /// Their bytes.
    pub bytes_dropped: u64,
    /// Frames from the peer over the length limit (each closes the connection).
    pub frames_rejected: u64,
    /// Connections we dialed to the peer.
    pub connects: u64,
    /// Failed dial attempts.
    pub connect_failures: u64,
    /// Connections the peer dialed to us.
    pub accepts: u64,
    /// Bytes now waiting in the send queue.
    pub queued_bytes: u64,
    /// QUIC's smoothed RTT estimate on the open connection we dialed to the peer (else on
    /// the newest one it dialed to us); `None` without an open connection.
    pub rtt: Option<Duration>,
}

/// What became of incoming connection attempts ([`Transport::handshake_stats`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HandshakeStats {
    /// Attempts let through to a TLS handshake.
    pub accepted: u64,
    /// Attempts answered with a QUIC Retry (address validation, no state kept).
    pub retries: u64,
    /// Attempts from sources outside a complete address map, ignored.
    pub filtered: u64,
    /// Attempts over their source's handshake rate, ignored.
    pub rate_limited: u64,
}

#[derive(Default)]
struct HandshakeCounters {
    accepted: AtomicU64,
    retries: AtomicU64,
    filtered: AtomicU64,
    rate_limited: AtomicU64,
}

/// Bound on the per-source rate table; past it, sources whose bucket is full are forgotten.
const MAX_RATE_SOURCES: usize = 4096;

/// The admission decision on a connection attempt.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    Accept,
    Retry,
    Filtered,
    RateLimited,
}

/// Source filter and per-source token buckets.
struct Admission {
    allowed_sources: Option<HashSet<std::net::IpAddr>>,
    rate: f64,
    burst: f64,
    /// Source IP -> (tokens, last refill).
    buckets: HashMap<std::net::IpAddr, (f64, tokio::time::Instant)>,
}

impl Admission {
    fn admit(
        &mut self,
        source: std::net::IpAddr,
        validated: bool,
        may_retry: bool,
        now: tokio::time::Instant,
    ) -> Verdict {
        match &self.allowed_sources {
            Some(allowed) if !allowed.contains(&source) => return Verdict::Filtered,
            Some(_) => {}
            // No complete map: make the source prove its address first (stateless, cheap).
            None if !validated && may_retry => return Verdict::Retry,
            None => {}
        }
        if self.buckets.len() >= MAX_RATE_SOURCES && !self.buckets.contains_key(&source) {
            let (rate, burst) = (self.rate, self.burst);
            self.buckets.retain(|_, (tokens, last)| {
                *tokens + now.saturating_duration_since(*last).as_secs_f64() * rate < burst
            });
            if self.buckets.len() >= MAX_RATE_SOURCES {
                return Verdict::RateLimited;
            }
        }
        let (tokens, last) = self.buckets.entry(source).or_insert((self.burst, now));
        *tokens = (*tokens + now.saturating_duration_since(*last).as_secs_f64() * self.rate)
            .min(self.burst);
        *last = now;
        if *tokens < 1.0 {
            return Verdict::RateLimited;
        }
        *tokens -= 1.0;
        Verdict::Accept
    }
}

/// Bytes in a transport's buffers ([`Transport::usage`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TransportUsage {
    /// Received messages waiting for the node.
    pub inbound: InboundUsage,
    /// Frames being received (reserved from the connections' frame budgets).
    pub unfinished_frame_bytes: usize,
    /// Messages waiting in the send queues.
    pub send_queue_bytes: usize,
}

impl TransportUsage {
    /// All of it.
    pub fn total_bytes(&self) -> usize {
        self.inbound.bytes + self.unfinished_frame_bytes + self.send_queue_bytes
    }
}

#[derive(Default)]
struct Counters {
    messages_sent: AtomicU64,
    bytes_sent: AtomicU64,
    messages_received: AtomicU64,
    bytes_received: AtomicU64,
    messages_dropped: AtomicU64,
    bytes_dropped: AtomicU64,
    frames_rejected: AtomicU64,
    connects: AtomicU64,
    connect_failures: AtomicU64,
    accepts: AtomicU64,
}

fn bump(counter: &AtomicU64, by: u64) {
    counter.fetch_add(by, Ordering::Relaxed);
}

/// A node's transport. Cheap to clone; all clones share one endpoint. Stop it with
/// [`Transport::shutdown`], which waits until the socket is closed; dropping the last clone
/// also stops it, without waiting.
#[derive(Clone)]
pub struct Transport {
    inner: Arc<Inner>,
    _owner: Arc<Owner>,
}

/// Held only by [`Transport`] handles (the tasks hold `Inner`): the last handle's drop stops
/// the transport.
struct Owner(Arc<Inner>);

impl Drop for Owner {
    fn drop(&mut self) {
        if let Some((tasks, _endpoint)) = self.0.close() {
            // Dropping the task set aborts every task.
            drop(tasks);
            self.0.release_connections();
        }
    }
}

impl fmt::Debug for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transport")
            .field("name", &self.inner.name)
            .field("local_addr", &self.inner.local_addr)
            .finish_non_exhaustive()
    }
}

struct Settings {
    max_frame_len: usize,
    /// Send-queue limit of one replica (peer with an address) and of one client.
    replica_queue_bytes: usize,
    client_queue_bytes: usize,
    frame_budget_bytes: usize,
    frame_read_timeout: Duration,
    accept_timeout: Duration,
    replica_receive_window: u64,
    replica_send_window: u64,
    connect_timeout: Duration,
    backoff_initial: Duration,
    backoff_max: Duration,
}

struct Inner {
    name: PeerName,
    settings: Settings,
    local_addr: SocketAddr,
    endpoint: Mutex<Option<Endpoint>>,
    addrs: Mutex<HashMap<PeerName, SocketAddr>>,
    allowed: HashSet<PeerName>,
    peers: Mutex<HashMap<PeerName, Arc<Peer>>>,
    /// Every task of this transport; `closed` is set under this lock.
    tasks: Mutex<JoinSet<()>>,
    closed: AtomicBool,
    inbound: Arc<inbound::Shared>,
    rejected_connections: AtomicU64,
    /// Older connections closed because the same peer dialed a newer one.
    replaced_connections: AtomicU64,
    admission: Mutex<Admission>,
    handshake: HandshakeCounters,
    /// Bytes of unfinished frames being read, over all connections.
    unfinished_frame_bytes: AtomicUsize,
    shaper: Option<ShaperHandle>,
    socket_closed: Mutex<Option<oneshot::Receiver<()>>>,
    runtime: Handle,
}

struct Peer {
    name: PeerName,
    counters: Counters,
    queued_bytes: AtomicUsize,
    /// The send queue, created (with the sender task) on the first message.
    outbox: OnceLock<mpsc::UnboundedSender<Bytes>>,
    /// The newest connection the peer dialed to us.
    inbound_conn: watch::Sender<Option<Connection>>,
    /// The newest connection we dialed to the peer.
    outbound_conn: Mutex<Option<Connection>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl Transport {
    /// Binds the node's UDP socket and starts accepting connections. Must be called inside a
    /// tokio runtime. Returns the transport and the channel of messages received from
    /// peers, as `(sender name, payload)`.
    pub fn bind(config: TransportConfig) -> Result<(Transport, Inbound), TransportError> {
        let runtime = Handle::try_current().map_err(|_| TransportError::NoRuntime)?;
        let _guard = runtime.enter();
        if config.max_frame_len > u32::MAX as usize {
            return Err(TransportError::Config(format!(
                "max_frame_len {} exceeds the 32-bit frame header",
                config.max_frame_len
            )));
        }
        if config.frame_budget_bytes < config.max_frame_len {
            return Err(TransportError::Config(format!(
                "frame_budget_bytes {} is below max_frame_len {}",
                config.frame_budget_bytes, config.max_frame_len
            )));
        }
        let identity_error = |reason: String| TransportError::Identity {
            name: config.name.clone(),
            reason,
        };
        let cert_name = config
            .identity
            .name()
            .map_err(|e| identity_error(e.to_string()))?;
        if cert_name != config.name.as_str() {
            return Err(identity_error(format!(
                "its certificate is issued to {cert_name:?}"
            )));
        }
        let shaped = matches!(config.shaper, ShaperMode::Emulate(_));
        let (server_crypto, client_crypto) = tls_configs(&config).map_err(identity_error)?;
        let quic = quic_transport_config(&config.quic, shaped, None)?;
        // Connections we accept start with a client's small windows; a replica's are raised
        // once its certificate names it.
        let accepted_quic =
            quic_transport_config(&config.quic, shaped, Some(config.client_window))?;
        let mut server_config = quinn::ServerConfig::with_crypto(Arc::new(server_crypto));
        server_config
            .transport_config(accepted_quic)
            .max_incoming(config.max_incoming.max(1))
            // Data that may arrive with attempts not yet decided on: 64 KiB each, 8 MiB in all.
            .incoming_buffer_size(64 << 10)
            .incoming_buffer_size_total(8 << 20);
        server_config.migration(false);
        let mut client_config = quinn::ClientConfig::new(Arc::new(client_crypto));
        client_config.transport_config(quic);

        let bind_error = |source| TransportError::Bind {
            addr: config.bind_addr,
            source,
        };
        let std_socket = match &config.socket {
            Some(socket) => socket.try_clone().map_err(bind_error)?,
            None => std::net::UdpSocket::bind(config.bind_addr).map_err(bind_error)?,
        };
        let shaper_sender = match config.shaper {
            ShaperMode::Off => None,
            ShaperMode::Emulate(_) => Some(std_socket.try_clone().map_err(bind_error)?),
        };
        let real = quinn::Runtime::wrap_udp_socket(&quinn::TokioRuntime, std_socket)
            .map_err(bind_error)?;
        let (closed_tx, closed_rx) = oneshot::channel();
        let guarded: Arc<dyn AsyncUdpSocket> = Arc::new(CloseSignal {
            inner: real,
            _closed: closed_tx,
        });
        let (socket, shaper): (Arc<dyn AsyncUdpSocket>, _) = match (config.shaper, shaper_sender) {
            (ShaperMode::Emulate(shaper_config), Some(sender)) => {
                let (socket, handle) =
                    ShapedSocket::with_parts(guarded, sender, shaper_config).map_err(bind_error)?;
                (socket, Some(handle))
            }
            _ => (guarded, None),
        };
        let local_addr = socket.local_addr().map_err(bind_error)?;
        let mut endpoint_config =
            EndpointConfig::new(Arc::new(reset_key(&config.identity.key_der)));
        let cid_key = cid_key(&config.identity.key_der);
        endpoint_config.cid_generator(move || {
            Box::new(quinn_proto::HashedConnectionIdGenerator::from_key(cid_key))
        });
        let mut endpoint = Endpoint::new_with_abstract_socket(
            endpoint_config,
            Some(server_config),
            socket,
            Arc::new(quinn::TokioRuntime),
        )
        .map_err(bind_error)?;
        endpoint.set_default_client_config(client_config);

        let (inbound_tx, inbound_rx) = inbound::channel(config.inbound);
        let replicas = config.peers.keys().filter(|p| **p != config.name).count();
        let clients = config
            .allowed_peers
            .iter()
            .filter(|p| !config.peers.contains_key(*p) && **p != config.name)
            .count();
        let share = |count: usize| {
            (config.send_budget_bytes / 2 / count.max(1)).min(config.max_queue_bytes)
        };
        let inner = Arc::new(Inner {
            name: config.name,
            settings: Settings {
                max_frame_len: config.max_frame_len,
                replica_queue_bytes: share(replicas),
                client_queue_bytes: share(clients),
                frame_budget_bytes: config.frame_budget_bytes,
                frame_read_timeout: config.frame_read_timeout,
                accept_timeout: config.accept_timeout,
                replica_receive_window: config.quic.receive_window,
                replica_send_window: config.quic.send_window,
                connect_timeout: config.connect_timeout,
                backoff_initial: config.backoff_initial,
                backoff_max: config.backoff_max.max(config.backoff_initial),
            },
            local_addr,
            endpoint: Mutex::new(Some(endpoint.clone())),
            addrs: Mutex::new(config.peers),
            allowed: config.allowed_peers,
            peers: Mutex::new(HashMap::new()),
            tasks: Mutex::new(JoinSet::new()),
            closed: AtomicBool::new(false),
            inbound: inbound_tx,
            rejected_connections: AtomicU64::new(0),
            replaced_connections: AtomicU64::new(0),
            unfinished_frame_bytes: AtomicUsize::new(0),
            admission: Mutex::new(Admission {
                allowed_sources: config.allowed_sources,
                rate: config.handshakes_per_second,
                burst: config.handshake_burst.max(1.0),
                buckets: HashMap::new(),
            }),
            handshake: HandshakeCounters::default(),
            shaper,
            socket_closed: Mutex::new(Some(closed_rx)),
            runtime,
        });
        inner.spawn(inner.clone().accept_loop(endpoint));
        let owner = Arc::new(Owner(inner.clone()));
        Ok((
            Transport {
                inner,
                _owner: owner,
            },
            inbound_rx,
        ))
    }

    /// This node's name.
    pub fn name(&self) -> &PeerName {
        &self.inner.name
    }

    /// The bound UDP address.
    pub fn local_addr(&self) -> SocketAddr {
        self.inner.local_addr
    }

    /// Queues `bytes` for `peer` and returns at once; never blocks. The first message to a
    /// peer starts its connection. Errors: the peer is unknown, the message is over the frame
    /// limit, the peer's queue is full, or the transport is shut down.
    pub fn send(&self, peer: &PeerName, bytes: Bytes) -> Result<(), SendError> {
        let inner = &self.inner;
        if inner.closed.load(Ordering::Acquire) {
            return Err(SendError::ShutDown);
        }
        let len = bytes.len();
        if len > inner.settings.max_frame_len {
            return Err(SendError::FrameTooLarge {
                len,
                max: inner.settings.max_frame_len,
            });
        }
        if !inner.is_known(peer) {
            return Err(SendError::UnknownPeer(peer.clone()));
        }
        let entry = inner.peer(peer);
        let limit = if inner.addr_of(peer).is_some() {
            inner.settings.replica_queue_bytes
        } else {
            inner.settings.client_queue_bytes
        };
        let before = entry.queued_bytes.fetch_add(len, Ordering::AcqRel);
        if before > 0 && before + len > limit {
            entry.queued_bytes.fetch_sub(len, Ordering::AcqRel);
            bump(&entry.counters.messages_dropped, 1);
            bump(&entry.counters.bytes_dropped, len as u64);
            return Err(SendError::QueueFull {
                peer: peer.clone(),
                queued_bytes: before,
            });
        }
        let outbox = entry.outbox.get_or_init(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            inner.spawn(inner.clone().sender_task(entry.clone(), rx));
            tx
        });
        outbox.send(bytes).map_err(|_| {
            entry.queued_bytes.fetch_sub(len, Ordering::AcqRel);
            SendError::ShutDown
        })
    }

    /// Sets or changes the address of `peer` (used from its next connection attempt on);
    /// the peer's name becomes accepted on incoming connections too.
    pub fn set_peer_addr(&self, peer: PeerName, addr: SocketAddr) {
        lock(&self.inner.addrs).insert(peer, addr);
    }

    /// The counters of one peer, if anything happened with it.
    pub fn stats(&self, peer: &PeerName) -> Option<PeerStats> {
        lock(&self.inner.peers).get(peer).map(|p| p.stats())
    }

    /// The counters of every peer seen so far.
    pub fn all_stats(&self) -> HashMap<PeerName, PeerStats> {
        lock(&self.inner.peers)
            .iter()
            .map(|(name, peer)| (name.clone(), peer.stats()))
            .collect()
    }

    /// Incoming connections refused: failed TLS handshakes (for example a certificate from
    /// another CA) and unknown names.
    pub fn rejected_connections(&self) -> u64 {
        self.inner.rejected_connections.load(Ordering::Relaxed)
    }

    /// What became of incoming connection attempts.
    pub fn handshake_stats(&self) -> HandshakeStats {
        let c = &self.inner.handshake;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        HandshakeStats {
            accepted: get(&c.accepted),
            retries: get(&c.retries),
            filtered: get(&c.filtered),
            rate_limited: get(&c.rate_limited),
        }
    }

    /// Older incoming connections closed because the same peer dialed a newer one.
    pub fn replaced_connections(&self) -> u64 {
        self.inner.replaced_connections.load(Ordering::Relaxed)
    }

    /// Bytes held by this transport's own buffers now (QUIC's buffers, bounded by the windows,
    /// come on top).
    pub fn usage(&self) -> TransportUsage {
        let inner = &self.inner;
        TransportUsage {
            inbound: inner.inbound.usage(),
            unfinished_frame_bytes: inner.unfinished_frame_bytes.load(Ordering::Relaxed),
            send_queue_bytes: lock(&inner.peers)
                .values()
                .map(|p| p.queued_bytes.load(Ordering::Relaxed))
                .sum(),
        }
    }

    /// The send-queue limit of `peer` (see [`TransportConfig::send_budget_bytes`]).
    pub fn send_queue_limit(&self, peer: &PeerName) -> usize {
        match self.inner.addr_of(peer) {
            Some(_) => self.inner.settings.replica_queue_bytes,
            None => self.inner.settings.client_queue_bytes,
        }
    }

    /// The WAN shaper of this node's socket, in [`ShaperMode::Emulate`].
    pub fn shaper(&self) -> Option<&ShaperHandle> {
        self.inner.shaper.as_ref()
    }

    /// Closes every connection (peers are told), stops every task, and waits (bounded) until
    /// the UDP socket is closed, so the address can be bound again. Messages still queued are
    /// dropped. Idempotent.
    pub async fn shutdown(&self) {
        let inner = &self.inner;
        let Some((mut tasks, endpoint)) = inner.close() else {
            return;
        };
        tasks.abort_all();
        while tasks.join_next().await.is_some() {}
        inner.release_connections();
        if let Some(endpoint) = endpoint {
            // Lets the close frames leave. The closing period lasts three probe timeouts, which
            // on a loaded emulated WAN can be seconds; the first CONNECTION_CLOSE already
            // tells the peers, so wait at most one second.
            let _ = tokio::time::timeout(Duration::from_secs(1), endpoint.wait_idle()).await;
        }
        let closed = lock(&inner.socket_closed).take();
        if let Some(closed) = closed {
            if tokio::time::timeout(Duration::from_secs(3), closed)
                .await
                .is_err()
            {
                warn!(node = %inner.name, "UDP socket still open 3 s after shutdown");
            }
        }
    }
}

impl Peer {
    fn stats(&self) -> PeerStats {
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        PeerStats {
            messages_sent: get(&c.messages_sent),
            bytes_sent: get(&c.bytes_sent),
            messages_received: get(&c.messages_received),
            bytes_received: get(&c.bytes_received),
            messages_dropped: get(&c.messages_dropped),
            bytes_dropped: get(&c.bytes_dropped),
            frames_rejected: get(&c.frames_rejected),
            connects: get(&c.connects),
            connect_failures: get(&c.connect_failures),
            accepts: get(&c.accepts),
            queued_bytes: self.queued_bytes.load(Ordering::Relaxed) as u64,
            rtt: self.rtt(),
        }
    }

    fn rtt(&self) -> Option<Duration> {
        let open = |conn: &Option<Connection>| {
            conn.as_ref()
                .filter(|c| c.close_reason().is_none())
                .map(Connection::rtt)
        };
        open(&lock(&self.outbound_conn)).or_else(|| open(&self.inbound_conn.borrow()))
    }

    fn dequeued(&self, len: usize) {
        self.queued_bytes.fetch_sub(len, Ordering::AcqRel);
    }
}

impl Inner {
    /// Marks the transport closed, closes every connection, and hands back the tasks (to
    /// abort) and the endpoint (to wait on); `None` if already closed.
    fn close(&self) -> Option<(JoinSet<()>, Option<Endpoint>)> {
        let tasks = {
            let mut guard = lock(&self.tasks);
            if self.closed.swap(true, Ordering::AcqRel) {
                return None;
            }
            std::mem::take(&mut *guard)
        };
        let endpoint = lock(&self.endpoint).take();
        if let Some(endpoint) = &endpoint {
            endpoint.close(VarInt::from_u32(CLOSE_SHUTDOWN), b"shutdown");
        }
        self.inbound.close();
        Some((tasks, endpoint))
    }

    /// Drops every connection handle (they keep the endpoint, hence the socket, alive); the
    /// counters stay readable.
    fn release_connections(&self) {
        for peer in lock(&self.peers).values() {
            peer.inbound_conn.send_replace(None);
            lock(&peer.outbound_conn).take();
        }
    }

    fn spawn(&self, task: impl std::future::Future<Output = ()> + Send + 'static) {
        let mut tasks = lock(&self.tasks);
        if self.closed.load(Ordering::Acquire) {
            return;
        }
        while tasks.try_join_next().is_some() {}
        tasks.spawn_on(task, &self.runtime);
    }

    fn endpoint(&self) -> Option<Endpoint> {
        lock(&self.endpoint).clone()
    }

    fn is_known(&self, name: &PeerName) -> bool {
        self.allowed.contains(name) || lock(&self.addrs).contains_key(name)
    }

    fn addr_of(&self, name: &PeerName) -> Option<SocketAddr> {
        lock(&self.addrs).get(name).copied()
    }

    fn peer(&self, name: &PeerName) -> Arc<Peer> {
        lock(&self.peers)
            .entry(name.clone())
            .or_insert_with(|| {
                Arc::new(Peer {
                    name: name.clone(),
                    counters: Counters::default(),
                    queued_bytes: AtomicUsize::new(0),
                    outbox: OnceLock::new(),
                    inbound_conn: watch::Sender::new(None),
                    outbound_conn: Mutex::new(None),
                })
            })
            .clone()
    }

    fn backoff(&self, backoff: &mut Duration) -> Duration {
        let wait = backoff.mul_f64(rand::thread_rng().gen_range(0.75..1.25));
        *backoff = (*backoff * 2).min(self.settings.backoff_max);
        wait
    }

    /// Sends one peer's queue, in order, over its connection; see the module documentation.
    ///
    /// A peer without an address (a client) is answered over the newest connection it dialed
    /// to us: when it dials again (it restarted), the task moves to the new connection at once
    /// instead of writing into the old one until that times out. Messages written on a
    /// connection that then fails (or is abandoned for a newer one) and not yet known to have
    /// arrived are counted as dropped (see [`InFlight`]).
    async fn sender_task(
        self: Arc<Self>,
        peer: Arc<Peer>,
        mut outbox: mpsc::UnboundedReceiver<Bytes>,
    ) {
        let mut link: Option<Link> = None;
        let mut retry: Option<Bytes> = None;
        let mut backoff = self.settings.backoff_initial;
        let mut inbound = peer.inbound_conn.subscribe();
        let mut tick = tokio::time::interval(SETTLE_TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let (message, retried) = match retry.take() {
                Some(message) => (message, true),
                None => {
                    let next = match &mut link {
                        Some(current) => {
                            let follows_inbound = current.inbound;
                            let unsettled = !current.in_flight.is_empty();
                            tokio::select! {
                                next = outbox.recv() => next,
                                _ = current.conn.closed() => {
                                    self.abandon(&peer, link.take(), "connection closed");
                                    continue;
                                }
                                changed = inbound.changed(), if follows_inbound => {
                                    if changed.is_err() {
                                        return;
                                    }
                                    let newer = inbound.borrow_and_update().as_ref().is_some_and(|c| {
                                        c.stable_id() != current.conn.stable_id()
                                            && c.close_reason().is_none()
                                    });
                                    if newer {
                                        self.abandon(&peer, link.take(), "the peer dialed a newer connection");
                                    }
                                    continue;
                                }
                                _ = tick.tick(), if unsettled => {
                                    current.in_flight.observe(&current.conn);
                                    continue;
                                }
                            }
                        }
                        None => outbox.recv().await,
                    };
                    match next {
                        Some(message) => (message, false),
                        None => return,
                    }
                }
            };
            if link.is_none() {
                match self.open_link(&peer, &mut backoff).await {
                    Some(new_link) => link = Some(new_link),
                    None => return,
                }
            }
            let current = link.as_mut().expect("link just opened");
            let len = message.len();
            let header = Bytes::copy_from_slice(&(len as u32).to_be_bytes());
            let mut chunks = [header, message.clone()];
            match current.stream.write_all_chunks(&mut chunks).await {
                Ok(()) => {
                    bump(&peer.counters.messages_sent, 1);
                    bump(&peer.counters.bytes_sent, len as u64);
                    peer.dequeued(len);
                    current.in_flight.wrote(len);
                    current.in_flight.observe(&current.conn);
                }
                Err(error) => {
                    self.abandon(&peer, link.take(), &format!("send stream failed: {error}"));
                    if retried {
                        bump(&peer.counters.messages_dropped, 1);
                        bump(&peer.counters.bytes_dropped, len as u64);
                        peer.dequeued(len);
                    } else {
                        retry = Some(message);
                    }
                }
            }
        }
    }

    /// Gives up `link`: what was written on it and not known to have arrived counts as
    /// dropped.
    fn abandon(&self, peer: &Peer, link: Option<Link>, why: &str) {
        let Some(link) = link else { return };
        let (messages, bytes) = link.in_flight.unsettled();
        if messages > 0 {
            bump(&peer.counters.messages_dropped, messages);
            bump(&peer.counters.bytes_dropped, bytes);
        }
        debug!(node = %self.name, peer = %peer.name, messages_lost = messages, bytes_lost = bytes,
            "{why}; moving to a new connection");
    }

    /// A connection and a fresh stream to `peer`, retrying with backoff; `None` once the
    /// transport shuts down.
    async fn open_link(self: &Arc<Self>, peer: &Arc<Peer>, backoff: &mut Duration) -> Option<Link> {
        loop {
            if self.closed.load(Ordering::Acquire) {
                return None;
            }
            let addr = self.addr_of(&peer.name);
            let conn = match addr {
                Some(addr) => match self.dial(peer, addr).await {
                    Ok(conn) => conn,
                    Err(error) => {
                        bump(&peer.counters.connect_failures, 1);
                        let wait = self.backoff(backoff);
                        debug!(node = %self.name, peer = %peer.name, %addr, %error, ?wait,
                            "connection attempt failed");
                        tokio::time::sleep(wait).await;
                        continue;
                    }
                },
                None => self.wait_inbound(peer).await?,
            };
            match conn.open_uni().await {
                Ok(stream) => {
                    *backoff = self.settings.backoff_initial;
                    let in_flight = InFlight::new(&conn);
                    return Some(Link {
                        conn,
                        stream,
                        inbound: addr.is_none(),
                        in_flight,
                    });
                }
                Err(error) => {
                    debug!(node = %self.name, peer = %peer.name, %error, "cannot open stream");
                    tokio::time::sleep(self.backoff(backoff)).await;
                }
            }
        }
    }

    async fn dial(
        self: &Arc<Self>,
        peer: &Arc<Peer>,
        addr: SocketAddr,
    ) -> Result<Connection, String> {
        let endpoint = self.endpoint().ok_or("transport shut down")?;
        let connecting = endpoint
            .connect(addr, &certs::san_for(peer.name.as_str()))
            .map_err(|e| e.to_string())?;
        let conn = tokio::time::timeout(self.settings.connect_timeout, connecting)
            .await
            .map_err(|_| "handshake timed out".to_string())?
            .map_err(|e| e.to_string())?;
        match peer_name_of(&conn) {
            Ok(name) if name == peer.name => {}
            Ok(name) => {
                conn.close(VarInt::from_u32(CLOSE_UNKNOWN_PEER), b"unexpected peer");
                return Err(format!("{addr} presented the certificate of {name}"));
            }
            Err(error) => {
                conn.close(VarInt::from_u32(CLOSE_UNKNOWN_PEER), b"bad certificate");
                return Err(error);
            }
        }
        bump(&peer.counters.connects, 1);
        *lock(&peer.outbound_conn) = Some(conn.clone());
        self.spawn(self.clone().serve_connection(peer.clone(), conn.clone()));
        Ok(conn)
    }

    /// The newest open connection `peer` dialed to us (for peers without an address).
    async fn wait_inbound(&self, peer: &Peer) -> Option<Connection> {
        let mut inbound = peer.inbound_conn.subscribe();
        loop {
            if let Some(conn) = inbound.borrow_and_update().as_ref() {
                if conn.close_reason().is_none() {
                    return Some(conn.clone());
                }
            }
            inbound.changed().await.ok()?;
        }
    }

    /// Decides on each connection attempt before any handshake work: sources outside a
    /// complete address map are ignored, unvalidated sources get a Retry when the map is
    /// incomplete, and each source IP has a rate of handshakes.
    async fn accept_loop(self: Arc<Self>, endpoint: Endpoint) {
        while let Some(incoming) = endpoint.accept().await {
            let counters = &self.handshake;
            let verdict = lock(&self.admission).admit(
                incoming.remote_address().ip(),
                incoming.remote_address_validated(),
                incoming.may_retry(),
                tokio::time::Instant::now(),
            );
            match verdict {
                Verdict::Accept => {
                    bump(&counters.accepted, 1);
                    self.spawn(self.clone().handle_incoming(incoming));
                }
                Verdict::Retry => {
                    bump(&counters.retries, 1);
                    if incoming.retry().is_err() {
                        debug!(node = %self.name, "retry refused by quinn");
                    }
                }
                Verdict::Filtered => {
                    let n = counters.filtered.fetch_add(1, Ordering::Relaxed);
                    if n.is_power_of_two() {
                        warn!(node = %self.name, source = %incoming.remote_address(),
                            ignored = n + 1, "ignoring connection attempts from sources outside the address map");
                    }
                    incoming.ignore();
                }
                Verdict::RateLimited => {
                    let n = counters.rate_limited.fetch_add(1, Ordering::Relaxed);
                    if n.is_power_of_two() {
                        warn!(node = %self.name, source = %incoming.remote_address(),
                            ignored = n + 1, "ignoring connection attempts over the per-source rate");
                    }
                    incoming.ignore();
                }
            }
        }
    }

    async fn handle_incoming(self: Arc<Self>, incoming: Incoming) {
        let remote = incoming.remote_address();
        let reject = |reason: String| {
            self.rejected_connections.fetch_add(1, Ordering::Relaxed);
            warn!(node = %self.name, %remote, "refused connection: {reason}");
        };
        let connecting = match incoming.accept() {
            Ok(connecting) => connecting,
            Err(error) => return reject(error.to_string()),
        };
        let conn = match tokio::time::timeout(self.settings.accept_timeout, connecting).await {
            Ok(Ok(conn)) => conn,
            Ok(Err(error)) => return reject(format!("handshake failed: {error}")),
            Err(_) => return reject("handshake timed out".into()),
        };
        let name = match peer_name_of(&conn) {
            Ok(name) => name,
            Err(error) => {
                conn.close(VarInt::from_u32(CLOSE_UNKNOWN_PEER), b"bad certificate");
                return reject(error);
            }
        };
        if !self.is_known(&name) {
            conn.close(VarInt::from_u32(CLOSE_UNKNOWN_PEER), b"unknown peer");
            return reject(format!("{name} is not an allowed peer"));
        }
        let peer = self.peer(&name);
        bump(&peer.counters.accepts, 1);
        if self.addr_of(&name).is_some() {
            // A replica: the full windows of the tuning.
            if let Ok(window) = VarInt::from_u64(self.settings.replica_receive_window) {
                conn.set_receive_window(window);
            }
            conn.set_send_window(self.settings.replica_send_window);
        }
        // One connection per name: the newer one wins (the peer restarted or lost its old
        // one), so a peer cannot multiply its budgets by opening connections.
        if let Some(old) = peer.inbound_conn.send_replace(Some(conn.clone())) {
            if old.close_reason().is_none() {
                self.replaced_connections.fetch_add(1, Ordering::Relaxed);
                debug!(node = %self.name, peer = %name, "closing the connection replaced by a newer one");
                old.close(
                    VarInt::from_u32(CLOSE_REPLACED),
                    b"replaced by a newer connection",
                );
            }
        }
        self.serve_connection(peer, conn).await;
    }

    /// Reads every stream the peer opens on `conn`, with one budget of unfinished frame bytes
    /// for the connection.
    async fn serve_connection(self: Arc<Self>, peer: Arc<Peer>, conn: Connection) {
        let budget = Arc::new(AtomicUsize::new(self.settings.frame_budget_bytes));
        while let Ok(stream) = conn.accept_uni().await {
            self.spawn(self.clone().read_stream(
                peer.clone(),
                conn.clone(),
                stream,
                budget.clone(),
            ));
        }
    }

    fn class_of(&self, peer: &PeerName) -> inbound::Class {
        match self.addr_of(peer) {
            Some(_) => inbound::Class::Replica,
            None => inbound::Class::Client,
        }
    }

    /// Closes `conn` over a bad frame from `peer`.
    fn reject_frame(&self, peer: &Peer, conn: &Connection, code: u32, why: &str) {
        bump(&peer.counters.frames_rejected, 1);
        warn!(node = %self.name, peer = %peer.name, "{why}; closing the connection");
        conn.close(VarInt::from_u32(code), why.as_bytes());
    }

    async fn read_stream(
        self: Arc<Self>,
        peer: Arc<Peer>,
        conn: Connection,
        mut stream: RecvStream,
        budget: Arc<AtomicUsize>,
    ) {
        let class = self.class_of(&peer.name);
        let mut header = [0u8; 4];
        loop {
            if stream.read_exact(&mut header).await.is_err() {
                return; // finished, reset, or connection lost
            }
            let len = u32::from_be_bytes(header) as usize;
            if len > self.settings.max_frame_len {
                let max = self.settings.max_frame_len;
                return self.reject_frame(
                    &peer,
                    &conn,
                    CLOSE_FRAME_TOO_LARGE,
                    &format!("frame of {len} bytes over the {max}-byte limit"),
                );
            }
            let Some(reserved) = Reservation::take(&budget, &self.unfinished_frame_bytes, len)
            else {
                let limit = self.settings.frame_budget_bytes;
                return self.reject_frame(
                    &peer,
                    &conn,
                    CLOSE_FRAME_BUDGET,
                    &format!(
                        "frame of {len} bytes exceeds the connection's {limit}-byte budget \
                         of unfinished frames"
                    ),
                );
            };
            let timeout = self.settings.frame_read_timeout;
            let payload = match tokio::time::timeout(timeout, read_payload(&mut stream, len)).await
            {
                Ok(Some(payload)) => payload,
                Ok(None) => return,
                Err(_) => {
                    return self.reject_frame(
                        &peer,
                        &conn,
                        CLOSE_FRAME_TIMEOUT,
                        &format!("frame of {len} bytes not received within {timeout:?}"),
                    )
                }
            };
            bump(&peer.counters.messages_received, 1);
            bump(&peer.counters.bytes_received, len as u64);
            // The frame's budget is held until the queue takes it (the queue's budgets then
            // apply): a peer whose queue is full stops being read.
            let delivered = self.inbound.push(&peer.name, class, payload).await;
            drop(reserved);
            if !delivered {
                return; // the receiver is gone
            }
        }
    }
}

/// Bytes of one unfinished frame, taken from its connection's budget and counted in the
/// transport's total until dropped.
struct Reservation<'a> {
    budget: &'a AtomicUsize,
    total: &'a AtomicUsize,
    len: usize,
}

impl<'a> Reservation<'a> {
    fn take(budget: &'a AtomicUsize, total: &'a AtomicUsize, len: usize) -> Option<Self> {
        budget
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |left| {
                left.checked_sub(len)
            })
            .ok()?;
        total.fetch_add(len, Ordering::Relaxed);
        Some(Reservation { budget, total, len })
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        self.budget.fetch_add(self.len, Ordering::AcqRel);
        self.total.fetch_sub(self.len, Ordering::Relaxed);
    }
}

/// Reads a `len`-byte payload. Memory grows with the data that actually arrives (a peer that
/// announces a large frame and stalls costs nothing), and a payload that arrives in one
/// chunk is not copied.
async fn read_payload(stream: &mut RecvStream, len: usize) -> Option<Bytes> {
    if len == 0 {
        return Some(Bytes::new());
    }
    let first = stream.read_chunk(len, true).await.ok()??.bytes;
    if first.len() == len {
        return Some(first);
    }
    let mut payload = BytesMut::with_capacity(len.min(first.len().max(1 << 16)));
    payload.extend_from_slice(&first);
    while payload.len() < len {
        let chunk = stream.read_chunk(len - payload.len(), true).await.ok()??;
        payload.extend_from_slice(&chunk.bytes);
    }
    Some(payload.freeze())
}

/// A connection to a peer and the stream we write on.
struct Link {
    conn: Connection,
    stream: SendStream,
    /// The peer has no address: this is a connection it dialed to us.
    inbound: bool,
    in_flight: InFlight,
}

/// How often the sender looks for signs of life from the peer while messages are unsettled
/// and it writes nothing (every write looks too). Each look is a wake-up of the sender's
/// task: at 20 ms, with a WAN round trip of 100 ms keeping messages unsettled most of the
/// time, Steward's 1-client run used 1.06× the CPU per update of this period's.
const SETTLE_TICK: Duration = Duration::from_millis(100);
/// Settle buckets: writes within this time share one.
const BUCKET_SPAN: Duration = Duration::from_millis(10);
/// Bound on the buckets of one link (at [`BUCKET_SPAN`], 80 s of writes); further writes join
/// the newest bucket.
const MAX_BUCKETS: usize = 8192;
/// Slack for the peer's ACK delay and scheduling, added to the RTT when settling.
const ACK_SLACK: Duration = Duration::from_millis(25);

/// Messages written on a connection whose arrival is not yet known.
///
/// quinn does not expose which stream bytes the peer acknowledged, so arrival is inferred:
/// a peer that is alive acknowledges within about one RTT (plus its ACK delay), so when a
/// datagram from the peer arrives at time `t`, the messages written before `t − RTT − slack`
/// are taken as delivered ("settled"). The sender sees new datagrams only when it looks (at a
/// write or a [`SETTLE_TICK`]), so it takes `t` as its previous look, the earliest the
/// datagram can have come. When the connection fails, the unsettled messages (those written
/// since the peer was last heard from, less one RTT, and up to one look interval more) are
/// counted as dropped. This is an estimate: exact on a peer crash during steady traffic (a look
/// per write), an over-count for data the dead peer had already received but not
/// acknowledged, an under-count for data that sat in QUIC's send buffer longer than one RTT
/// before its first transmission.
struct InFlight {
    /// Oldest first.
    buckets: std::collections::VecDeque<Bucket>,
    /// Datagrams received on the connection when last looked at.
    datagrams_seen: u64,
    /// When the sender last looked.
    looked: tokio::time::Instant,
}

/// Writes within [`BUCKET_SPAN`] of the first one.
struct Bucket {
    first: tokio::time::Instant,
    last: tokio::time::Instant,
    messages: u64,
    bytes: u64,
}

impl InFlight {
    fn new(conn: &Connection) -> InFlight {
        InFlight {
            buckets: std::collections::VecDeque::new(),
            datagrams_seen: conn.stats().udp_rx.datagrams,
            looked: tokio::time::Instant::now(),
        }
    }

    fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }

    fn wrote(&mut self, len: usize) {
        let now = tokio::time::Instant::now();
        let full = self.buckets.len() >= MAX_BUCKETS;
        match self.buckets.back_mut() {
            Some(last) if last.first + BUCKET_SPAN > now || full => {
                last.last = now;
                last.messages += 1;
                last.bytes += len as u64;
            }
            _ => self.buckets.push_back(Bucket {
                first: now,
                last: now,
                messages: 1,
                bytes: len as u64,
            }),
        }
    }

    /// Settles what the peer has had time to acknowledge if it was heard from since the last
    /// look.
    fn observe(&mut self, conn: &Connection) {
        let previous = std::mem::replace(&mut self.looked, tokio::time::Instant::now());
        if self.buckets.is_empty() {
            return;
        }
        let datagrams = conn.stats().udp_rx.datagrams;
        if datagrams == self.datagrams_seen {
            return;
        }
        self.datagrams_seen = datagrams;
        // Heard from since the previous look: at that look at the earliest.
        let Some(horizon) = previous.checked_sub(conn.rtt() + ACK_SLACK) else {
            return;
        };
        while self.buckets.front().is_some_and(|b| b.last < horizon) {
            self.buckets.pop_front();
        }
    }

    /// Messages and bytes not known to have arrived.
    fn unsettled(&self) -> (u64, u64) {
        self.buckets.iter().fold((0, 0), |(m, b), bucket| {
            (m + bucket.messages, b + bucket.bytes)
        })
    }
}

/// The node name in the certificate a connection's peer presented.
fn peer_name_of(conn: &Connection) -> Result<PeerName, String> {
    let identity = conn.peer_identity().ok_or("no peer certificate")?;
    let chain = identity
        .downcast::<Vec<CertificateDer<'static>>>()
        .map_err(|_| "unexpected peer identity type")?;
    let leaf = chain.first().ok_or("empty certificate chain")?;
    certs::node_name_from_cert(leaf)
        .map(PeerName::from)
        .map_err(|e| e.to_string())
}

fn tls_configs(config: &TransportConfig) -> Result<(QuicServerConfig, QuicClientConfig), String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from(config.ca_cert_der.clone()))
        .map_err(|e| format!("unusable CA certificate: {e}"))?;
    let roots = Arc::new(roots);
    let chain = vec![CertificateDer::from(config.identity.cert_der.clone())];
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(config.identity.key_der.clone()));
    let tls13 = [&rustls::version::TLS13];

    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        roots.clone(),
        provider.clone(),
    )
    .build()
    .map_err(|e| format!("client verifier: {e}"))?;
    let mut server = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&tls13)
        .map_err(|e| e.to_string())?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain.clone(), key.clone_key())
        .map_err(|e| format!("unusable certificate or key: {e}"))?;
    server.alpn_protocols = vec![ALPN.to_vec()];

    let mut client = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&tls13)
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .map_err(|e| format!("unusable certificate or key: {e}"))?;
    client.alpn_protocols = vec![ALPN.to_vec()];

    Ok((
        QuicServerConfig::try_from(server).map_err(|e| e.to_string())?,
        QuicClientConfig::try_from(client).map_err(|e| e.to_string())?,
    ))
}

/// The QUIC settings of `tuning`; with `window`, receive window and send buffer are that
/// instead (connections we accept, until the peer is known to be a replica).
fn quic_transport_config(
    tuning: &QuicTuning,
    shaped: bool,
    window: Option<u64>,
) -> Result<Arc<quinn::TransportConfig>, TransportError> {
    let varint = |what: &str, value: u64| {
        VarInt::from_u64(value).map_err(|_| TransportError::Config(format!("{what} too large")))
    };
    let idle = IdleTimeout::try_from(tuning.max_idle_timeout)
        .map_err(|_| TransportError::Config("max_idle_timeout too large".into()))?;
    let mut config = quinn::TransportConfig::default();
    config
        .initial_rtt(tuning.initial_rtt)
        .max_idle_timeout(Some(idle))
        .keep_alive_interval(Some(tuning.keep_alive_interval))
        .stream_receive_window(varint(
            "stream_receive_window",
            tuning.stream_receive_window,
        )?)
        .receive_window(varint(
            "receive_window",
            window.unwrap_or(tuning.receive_window),
        )?)
        .send_window(window.unwrap_or(tuning.send_window))
        // One stream per connection and direction is the norm (a failed stream means a new
        // connection); the frame budget bounds what more streams could buffer.
        .max_concurrent_uni_streams(VarInt::from_u32(MAX_STREAMS))
        .max_concurrent_bidi_streams(VarInt::from_u32(0))
        .datagram_receive_buffer_size(None);
    let mut ack = AckFrequencyConfig::default();
    ack.ack_eliciting_threshold(VarInt::from_u32(tuning.ack_eliciting_threshold))
        .max_ack_delay(Some(tuning.max_ack_delay));
    config.ack_frequency_config(Some(ack));
    if shaped {
        // The shaper takes one datagram per transmit.
        config.enable_segmentation_offload(false);
    }
    Ok(Arc::new(config))
}

/// The stateless-reset key, derived from the node's TLS key: a restarted node recognises its
/// predecessor's connections and resets them at once, so peers reconnect without waiting for
/// the idle timeout.
fn reset_key(key_der: &[u8]) -> ring::hmac::Key {
    let mut context = ring::digest::Context::new(&ring::digest::SHA256);
    context.update(b"steward-net stateless reset key\0");
    context.update(key_der);
    ring::hmac::Key::new(ring::hmac::HMAC_SHA256, context.finish().as_ref())
}

/// The key of the connection-ID generator, derived from the node's TLS key like
/// [`reset_key`]. quinn's default generator draws a random key per process, and an endpoint
/// silently drops short-header packets whose connection ID its generator does not recognise:
/// a restarted node would then ignore its predecessor's peers (who keep sending on the old
/// connection) until their idle timeout, instead of answering with a stateless reset. With the
/// same key in every incarnation, the restarted node recognises the IDs and resets at once.
fn cid_key(key_der: &[u8]) -> u64 {
    let mut context = ring::digest::Context::new(&ring::digest::SHA256);
    context.update(b"steward-net connection id key\0");
    context.update(key_der);
    let digest = context.finish();
    let mut word = [0u8; 8];
    word.copy_from_slice(&digest.as_ref()[..8]);
    u64::from_le_bytes(word)
}

/// The real socket, wrapped to signal (by dropping `_closed`, after `inner`) when quinn and
/// the shaper have let go of it.
struct CloseSignal {
    inner: Arc<dyn AsyncUdpSocket>,
    _closed: oneshot::Sender<()>,
}

impl fmt::Debug for CloseSignal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt(f)
    }
}

/// The real socket's poller, keeping the [`CloseSignal`] alive as long as it lives.
struct GuardedPoller {
    // Dropped first: it holds the real socket too.
    inner: Pin<Box<dyn UdpPoller>>,
    _owner: Arc<CloseSignal>,
}

impl fmt::Debug for GuardedPoller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt(f)
    }
}

impl UdpPoller for GuardedPoller {
    fn poll_writable(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.inner.as_mut().poll_writable(cx)
    }
}

impl AsyncUdpSocket for CloseSignal {
    fn create_io_poller(self: Arc<Self>) -> Pin<Box<dyn UdpPoller>> {
        Box::pin(GuardedPoller {
            inner: self.inner.clone().create_io_poller(),
            _owner: self,
        })
    }

    fn try_send(&self, transmit: &Transmit<'_>) -> io::Result<()> {
        self.inner.try_send(transmit)
    }

    fn poll_recv(
        &self,
        cx: &mut Context<'_>,
        bufs: &mut [io::IoSliceMut<'_>],
        meta: &mut [RecvMeta],
    ) -> Poll<io::Result<usize>> {
        self.inner.poll_recv(cx, bufs, meta)
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    fn max_transmit_segments(&self) -> usize {
        self.inner.max_transmit_segments()
    }

    fn max_receive_segments(&self) -> usize {
        self.inner.max_receive_segments()
    }

    fn may_fragment(&self) -> bool {
        self.inner.may_fragment()
    }
}

#[cfg(test)]
mod tests;
