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
//! is noticed is retried once on the new connection). The send queue per peer is bounded in
//! bytes; [`Transport::send`] never blocks and reports a full queue.
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
    /// Default 1 (ACK every other packet, as without the extension).
    pub ack_eliciting_threshold: u32,
    /// ACK-frequency extension: the delay we ask peers to ACK within. Default 1 ms (the
    /// QUIC default is 25 ms).
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
            max_ack_delay: Duration::from_millis(5),
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
    /// Addresses of the peers this node may dial. These peers may also connect to us.
    pub peers: HashMap<PeerName, SocketAddr>,
    /// Further names accepted on incoming connections (for example clients, whose addresses
    /// we need not know). Every name in `peers` is accepted too; any other is rejected.
    pub allowed_peers: HashSet<PeerName>,
    /// Longest message accepted, in either direction. Default [`DEFAULT_MAX_FRAME_LEN`].
    pub max_frame_len: usize,
    /// Bytes that may wait in one peer's send queue before [`Transport::send`] refuses
    /// (a message is always accepted into an empty queue). Default 64 MiB.
    pub max_queue_bytes: usize,
    /// Capacity of the inbound channel, in messages; when full, readers stop reading and
    /// QUIC flow control pushes back on senders. Default 4096.
    pub inbound_capacity: usize,
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
            peers: HashMap::new(),
            allowed_peers: HashSet::new(),
            max_frame_len: DEFAULT_MAX_FRAME_LEN,
            max_queue_bytes: 64 << 20,
            inbound_capacity: 4096,
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
    /// Messages dropped: refused by a full queue, or lost to a failed connection twice.
    pub messages_dropped: u64,
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

#[derive(Default)]
struct Counters {
    messages_sent: AtomicU64,
    bytes_sent: AtomicU64,
    messages_received: AtomicU64,
    bytes_received: AtomicU64,
    messages_dropped: AtomicU64,
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
    max_queue_bytes: usize,
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
    inbound: Mutex<Option<mpsc::Sender<(PeerName, Bytes)>>>,
    rejected_connections: AtomicU64,
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
    pub fn bind(
        config: TransportConfig,
    ) -> Result<(Transport, mpsc::Receiver<(PeerName, Bytes)>), TransportError> {
        let runtime = Handle::try_current().map_err(|_| TransportError::NoRuntime)?;
        let _guard = runtime.enter();
        if config.max_frame_len > u32::MAX as usize {
            return Err(TransportError::Config(format!(
                "max_frame_len {} exceeds the 32-bit frame header",
                config.max_frame_len
            )));
        }
        if config.inbound_capacity == 0 {
            return Err(TransportError::Config(
                "inbound_capacity must be positive".into(),
            ));
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
        let quic = quic_transport_config(&config.quic, shaped)?;
        let mut server_config = quinn::ServerConfig::with_crypto(Arc::new(server_crypto));
        server_config.transport_config(quic.clone());
        server_config.migration(false);
        let mut client_config = quinn::ClientConfig::new(Arc::new(client_crypto));
        client_config.transport_config(quic);

        let bind_error = |source| TransportError::Bind {
            addr: config.bind_addr,
            source,
        };
        let std_socket = std::net::UdpSocket::bind(config.bind_addr).map_err(bind_error)?;
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
        let endpoint_config = EndpointConfig::new(Arc::new(reset_key(&config.identity.key_der)));
        let mut endpoint = Endpoint::new_with_abstract_socket(
            endpoint_config,
            Some(server_config),
            socket,
            Arc::new(quinn::TokioRuntime),
        )
        .map_err(bind_error)?;
        endpoint.set_default_client_config(client_config);

        let (inbound_tx, inbound_rx) = mpsc::channel(config.inbound_capacity);
        let inner = Arc::new(Inner {
            name: config.name,
            settings: Settings {
                max_frame_len: config.max_frame_len,
                max_queue_bytes: config.max_queue_bytes,
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
            inbound: Mutex::new(Some(inbound_tx)),
            rejected_connections: AtomicU64::new(0),
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
        let before = entry.queued_bytes.fetch_add(len, Ordering::AcqRel);
        if before > 0 && before + len > inner.settings.max_queue_bytes {
            entry.queued_bytes.fetch_sub(len, Ordering::AcqRel);
            bump(&entry.counters.messages_dropped, 1);
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
        lock(&self.inbound).take();
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
    async fn sender_task(
        self: Arc<Self>,
        peer: Arc<Peer>,
        mut outbox: mpsc::UnboundedReceiver<Bytes>,
    ) {
        let mut link: Option<(Connection, SendStream)> = None;
        let mut retry: Option<Bytes> = None;
        let mut backoff = self.settings.backoff_initial;
        loop {
            let (message, retried) = match retry.take() {
                Some(message) => (message, true),
                None => {
                    let next = match &link {
                        Some((conn, _)) => tokio::select! {
                            next = outbox.recv() => next,
                            _ = conn.closed() => {
                                link = None;
                                continue;
                            }
                        },
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
            let (_, stream) = link.as_mut().expect("link just opened");
            let len = message.len();
            let header = Bytes::copy_from_slice(&(len as u32).to_be_bytes());
            let mut chunks = [header, message.clone()];
            match stream.write_all_chunks(&mut chunks).await {
                Ok(()) => {
                    bump(&peer.counters.messages_sent, 1);
                    bump(&peer.counters.bytes_sent, len as u64);
                    peer.dequeued(len);
                }
                Err(error) => {
                    debug!(node = %self.name, peer = %peer.name, %error, "send stream failed");
                    link = None;
                    if retried {
                        bump(&peer.counters.messages_dropped, 1);
                        peer.dequeued(len);
                    } else {
                        retry = Some(message);
                    }
                }
            }
        }
    }

    /// A connection and a fresh stream to `peer`, retrying with backoff; `None` once the
    /// transport shuts down.
    async fn open_link(
        self: &Arc<Self>,
        peer: &Arc<Peer>,
        backoff: &mut Duration,
    ) -> Option<(Connection, SendStream)> {
        loop {
            if self.closed.load(Ordering::Acquire) {
                return None;
            }
            let conn = match self.addr_of(&peer.name) {
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
                    return Some((conn, stream));
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

    async fn accept_loop(self: Arc<Self>, endpoint: Endpoint) {
        while let Some(incoming) = endpoint.accept().await {
            self.spawn(self.clone().handle_incoming(incoming));
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
        let conn = match tokio::time::timeout(self.settings.connect_timeout, connecting).await {
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
        peer.inbound_conn.send_replace(Some(conn.clone()));
        self.serve_connection(peer, conn).await;
    }

    /// Reads every stream the peer opens on `conn`.
    async fn serve_connection(self: Arc<Self>, peer: Arc<Peer>, conn: Connection) {
        while let Ok(stream) = conn.accept_uni().await {
            self.spawn(self.clone().read_stream(peer.clone(), conn.clone(), stream));
        }
    }

    async fn read_stream(
        self: Arc<Self>,
        peer: Arc<Peer>,
        conn: Connection,
        mut stream: RecvStream,
    ) {
        let Some(inbound) = lock(&self.inbound).clone() else {
            return;
        };
        let mut header = [0u8; 4];
        loop {
            if stream.read_exact(&mut header).await.is_err() {
                return; // finished, reset, or connection lost
            }
            let len = u32::from_be_bytes(header) as usize;
            if len > self.settings.max_frame_len {
                bump(&peer.counters.frames_rejected, 1);
                warn!(node = %self.name, peer = %peer.name, len,
                    max = self.settings.max_frame_len, "frame over the limit; closing the connection");
                conn.close(VarInt::from_u32(CLOSE_FRAME_TOO_LARGE), b"frame too large");
                return;
            }
            let Some(payload) = read_payload(&mut stream, len).await else {
                return;
            };
            bump(&peer.counters.messages_received, 1);
            bump(&peer.counters.bytes_received, len as u64);
            if inbound.send((peer.name.clone(), payload)).await.is_err() {
                return; // the receiver is gone
            }
        }
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

fn quic_transport_config(
    tuning: &QuicTuning,
    shaped: bool,
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
        .receive_window(varint("receive_window", tuning.receive_window)?)
        .send_window(tuning.send_window)
        // One stream per direction is the norm; a few more allow reopening after errors.
        .max_concurrent_uni_streams(VarInt::from_u32(16))
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
