//! Loopback measurements of the shaper's accuracy, shared by the tests and the
//! `wan_accuracy` example (`cargo run --release -p steward-net --example wan_accuracy`).
//!
//! * [`measure_rtt`]: application round trips (a message and its echo) between two transports
//!   whose shapers add `one_way` in each direction.
//! * [`measure_datagram_throughput`]: raw datagrams through one shaped socket to a plain
//!   receiver: the rate the shaper lets through, measured between the first and last arrival.
//! * [`measure_goodput`]: a bulk transfer of messages between two shaped transports
//!   (QUIC, Cubic congestion control, the drop-tail queue): message payload per second at the
//!   receiver after a warm-up.
//!
//! * [`measure_shared_throughput`]: raw datagrams from several shaped sockets (as separate
//!   processes would, each with its own handle on a shared queue file) through one shared WAN
//!   queue: the aggregate rate, which should be one link's bandwidth.
//!
//! Every node binds a random `127.x.y.z` address; every loop is bounded in count and time.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::Rng;

use crate::certs::DeploymentCa;
use crate::shaper::{
    ShapedSocket, ShaperConfig, ShaperMode, SharedWan, SharedWanQueues, WanQueueModel,
};
use crate::transport::{Transport, TransportConfig};
use crate::{LinkParams, PeerName};
use steward_config::SiteId;

/// A random loopback address `127.a.b.c` (a ≥ 1), so concurrent tests and other users of
/// `127.0.0.1` do not collide.
pub fn random_loopback_ip() -> IpAddr {
    let mut rng = rand::thread_rng();
    IpAddr::V4(Ipv4Addr::new(
        127,
        rng.gen_range(1..=254),
        rng.gen(),
        rng.gen_range(1..=254),
    ))
}

/// Link parameters: `latency` one way, no jitter or loss, `bandwidth_bps`.
pub fn link(latency: Duration, bandwidth_bps: u64) -> LinkParams {
    LinkParams {
        latency,
        jitter: Duration::ZERO,
        bandwidth_bps,
        loss: 0.0,
    }
}

/// Effectively unlimited bandwidth (serialization of 1500 bytes takes 0.12 µs).
pub const UNLIMITED_BPS: u64 = 100_000_000_000;

/// Sample statistics of a set of durations.
#[derive(Clone, Debug)]
pub struct Samples {
    /// Sorted samples.
    pub sorted: Vec<Duration>,
}

impl Samples {
    fn new(mut samples: Vec<Duration>) -> Samples {
        samples.sort();
        Samples { sorted: samples }
    }

    /// The median (lower median for an even count).
    pub fn median(&self) -> Duration {
        self.sorted[(self.sorted.len() - 1) / 2]
    }

    /// The smallest sample.
    pub fn min(&self) -> Duration {
        self.sorted[0]
    }

    /// The largest sample.
    pub fn max(&self) -> Duration {
        self.sorted[self.sorted.len() - 1]
    }
}

/// Two shaped transports `a` and `b` that know each other, with their inbound channels.
pub struct ShapedPair {
    /// Node `a` (`pbft-r0`).
    pub a: Transport,
    /// What `a` receives.
    pub a_rx: crate::Inbound,
    /// Node `b` (`pbft-r1`).
    pub b: Transport,
    /// What `b` receives.
    pub b_rx: crate::Inbound,
}

impl ShapedPair {
    /// Binds both on random loopback addresses; each shapes its link to the other with
    /// `params` (so a round trip sees `2 × latency`). `queue_bytes` as in [`ShaperConfig`].
    pub fn bind(params: LinkParams, queue_bytes: Option<usize>) -> ShapedPair {
        let ca = DeploymentCa::generate("accuracy").expect("CA generation");
        let names = [PeerName::from("pbft-r0"), PeerName::from("pbft-r1")];
        let mut nodes = Vec::new();
        for name in &names {
            let identity = ca.issue(name.as_str()).expect("certificate");
            let mut config = TransportConfig::new(
                name.clone(),
                identity,
                ca.cert_der().to_vec(),
                SocketAddr::new(random_loopback_ip(), 0),
            );
            config.quic.initial_rtt = (params.latency * 2).max(Duration::from_millis(1));
            config.shaper = ShaperMode::Emulate(ShaperConfig {
                queue_bytes,
                ..ShaperConfig::default()
            });
            nodes.push(Transport::bind(config).expect("bind"));
        }
        let (b, b_rx) = nodes.pop().expect("two nodes");
        let (a, a_rx) = nodes.pop().expect("two nodes");
        a.set_peer_addr(names[1].clone(), b.local_addr());
        b.set_peer_addr(names[0].clone(), a.local_addr());
        a.shaper().expect("shaped").set_link(b.local_addr(), params);
        b.shaper().expect("shaped").set_link(a.local_addr(), params);
        ShapedPair { a, a_rx, b, b_rx }
    }

    /// Shuts both transports down.
    pub async fn shutdown(self) {
        self.a.shutdown().await;
        self.b.shutdown().await;
    }
}

/// Application round trips: `a` sends a 64-byte message, `b` echoes it, `a` times the echo.
/// Both directions are shaped with `one_way` latency and unlimited bandwidth. `warmup` round
/// trips (which set up both connections) are not counted. Each round trip waits at most
/// `10 × one_way + 2 s`; a missing echo panics.
pub async fn measure_rtt(one_way: Duration, warmup: usize, samples: usize) -> Samples {
    let ShapedPair {
        a,
        mut a_rx,
        b,
        mut b_rx,
    } = ShapedPair::bind(link(one_way, UNLIMITED_BPS), None);
    let echo_to = a.name().clone();
    let echo_transport = b.clone();
    let echo = tokio::spawn(async move {
        while let Some((_, message)) = b_rx.recv().await {
            if echo_transport.send(&echo_to, message).is_err() {
                break;
            }
        }
    });
    let limit = one_way * 10 + Duration::from_secs(2);
    let b_name = b.name().clone();
    let mut measured = Vec::with_capacity(samples);
    for i in 0..warmup + samples {
        let mut message = vec![0u8; 64];
        message[..8].copy_from_slice(&(i as u64).to_be_bytes());
        let start = Instant::now();
        a.send(&b_name, Bytes::from(message.clone())).expect("send");
        let (_, reply) = tokio::time::timeout(limit, a_rx.recv())
            .await
            .unwrap_or_else(|_| panic!("no echo of round trip {i} within {limit:?}"))
            .expect("transport open");
        let elapsed = start.elapsed();
        assert_eq!(reply, message, "echo of round trip {i}");
        if i >= warmup {
            measured.push(elapsed);
        }
    }
    a.shutdown().await;
    b.shutdown().await;
    echo.abort();
    Samples::new(measured)
}

/// Sends `count` datagrams of `size` bytes at once through a shaper limited to
/// `bandwidth_bps` (latency `latency`, a queue holding them all) to a plain UDP receiver, and
/// returns the rate between the first and the last arrival, in bit/s, counting UDP payload.
/// Panics if a datagram is missing after 10 s.
pub async fn measure_datagram_throughput(
    bandwidth_bps: u64,
    latency: Duration,
    count: usize,
    size: usize,
) -> f64 {
    let receiver = tokio::net::UdpSocket::bind(SocketAddr::new(random_loopback_ip(), 0))
        .await
        .expect("bind receiver");
    let destination = receiver.local_addr().expect("receiver address");
    let sender =
        std::net::UdpSocket::bind(SocketAddr::new(random_loopback_ip(), 0)).expect("bind sender");
    let mut config =
        ShaperConfig::new(HashMap::from([(destination, link(latency, bandwidth_bps))]));
    config.queue_bytes = Some(count * size + 1);
    let (socket, handle) = ShapedSocket::new(sender, config).expect("shaper");
    let socket: Arc<dyn quinn::AsyncUdpSocket> = socket;

    let payload = vec![0x5au8; size];
    for _ in 0..count {
        socket
            .try_send(&quinn::udp::Transmit {
                destination,
                ecn: None,
                contents: &payload,
                segment_size: None,
                src_ip: None,
            })
            .expect("shaped send");
    }
    let (first, last) = receive(&receiver, count, size).await;
    let stats = handle.stats(destination).expect("link stats");
    assert_eq!(stats.sent_datagrams, count as u64);
    let span = last - first;
    ((count - 1) * size * 8) as f64 / span.as_secs_f64()
}

/// Receives `count` datagrams of `size` bytes; returns the first and the last arrival. Panics
/// if one is missing after 10 s.
async fn receive(
    receiver: &tokio::net::UdpSocket,
    count: usize,
    size: usize,
) -> (Instant, Instant) {
    let mut buf = vec![0u8; 65536];
    let mut first = None;
    let mut last = Instant::now();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    for i in 0..count {
        let len = tokio::time::timeout_at(deadline, receiver.recv(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("datagram {i} of {count} missing after 10 s"))
            .expect("recv");
        assert_eq!(len, size);
        last = Instant::now();
        first.get_or_insert(last);
    }
    (first.expect("at least one datagram"), last)
}

/// Result of [`measure_goodput`].
#[derive(Clone, Copy, Debug)]
pub struct Goodput {
    /// Message payload bit/s at the receiver after the warm-up.
    pub goodput_bps: f64,
    /// UDP payload bit/s the shaper sent over the same window (QUIC headers, retransmissions
    /// and all): the link's utilisation.
    pub link_bps: f64,
    /// Datagrams the shaper's drop-tail queue dropped during the whole transfer.
    pub queue_drops: u64,
}

/// A bulk transfer over a shaped pair: `a` queues `messages` messages of `message_len` bytes
/// for `b` at once; the rate is measured at `b` from the arrival of message
/// `messages × warmup_fraction` to the last. Bounded by `timeout`; panics if it expires.
pub async fn measure_goodput(
    bandwidth_bps: u64,
    latency: Duration,
    messages: usize,
    message_len: usize,
    warmup_fraction: f64,
    timeout: Duration,
) -> Goodput {
    let mut pair = ShapedPair::bind(link(latency, bandwidth_bps), None);
    let b_name = pair.b.name().clone();
    let b_addr = pair.b.local_addr();
    let shaper = pair.a.shaper().expect("shaped").clone();
    for i in 0..messages {
        let mut message = vec![0u8; message_len];
        message[..8].copy_from_slice(&(i as u64).to_be_bytes());
        pair.a.send(&b_name, Bytes::from(message)).expect("send");
    }
    let warmup = ((messages as f64 * warmup_fraction) as usize).min(messages - 2);
    let deadline = tokio::time::Instant::now() + timeout;
    let mut start = None;
    let mut end = Instant::now();
    let mut end_link_bytes = 0;
    for i in 0..messages {
        let (_, message) = tokio::time::timeout_at(deadline, pair.b_rx.recv())
            .await
            .unwrap_or_else(|_| panic!("message {i} of {messages} missing after {timeout:?}"))
            .expect("transport open");
        assert_eq!(message.len(), message_len);
        assert_eq!(message[..8], (i as u64).to_be_bytes(), "order");
        if i == warmup {
            start = Some((
                Instant::now(),
                shaper.stats(b_addr).unwrap_or_default().sent_bytes,
            ));
        }
        if i + 1 == messages {
            end = Instant::now();
            end_link_bytes = shaper.stats(b_addr).unwrap_or_default().sent_bytes;
        }
    }
    let (start, start_link_bytes) = start.expect("warm-up reached");
    let seconds = (end - start).as_secs_f64();
    let queue_drops = shaper.stats(b_addr).unwrap_or_default().dropped_queue;
    pair.shutdown().await;
    Goodput {
        goodput_bps: ((messages - 1 - warmup) * message_len * 8) as f64 / seconds,
        link_bps: (end_link_bytes - start_link_bytes) as f64 * 8.0 / seconds,
        queue_drops,
    }
}

/// `senders` shaped sockets at site 0 each send `count` datagrams of `size` bytes at once to
/// their own plain UDP receiver, with link parameters `latency` and `bandwidth_bps` and queues
/// holding them all. With `shared`, every socket opens its own handle on one shared queue file
/// (in a temporary directory), as the processes of a cluster do, and the queue is `model`'s:
/// the receivers are all at site 1 ([`WanQueueModel::Pairwise`]: the 0 → 1 queue) or at sites
/// `1..=senders` ([`WanQueueModel::SiteUplink`]: site 0's uplink). Without, each socket has its
/// own per-destination queue. Returns the aggregate rate between the first and the last
/// arrival over all receivers, in bit/s of UDP payload. Panics if a datagram is missing after
/// 10 s.
pub async fn measure_shared_throughput(
    model: WanQueueModel,
    shared: bool,
    bandwidth_bps: u64,
    latency: Duration,
    senders: usize,
    count: usize,
    size: usize,
) -> f64 {
    let sites = senders + 1;
    let path = std::env::temp_dir().join(format!(
        "steward-wan-accuracy-{}-{:08x}.shm",
        std::process::id(),
        rand::thread_rng().gen::<u32>()
    ));
    if shared {
        SharedWanQueues::create(&path, sites).expect("create the queue file");
    }
    let params = link(latency, bandwidth_bps);
    let mut sockets = Vec::new();
    let mut receivers = Vec::new();
    for i in 0..senders {
        let receiver = tokio::net::UdpSocket::bind(SocketAddr::new(random_loopback_ip(), 0))
            .await
            .expect("bind receiver");
        let destination = receiver.local_addr().expect("receiver address");
        let site = match model {
            WanQueueModel::Pairwise => SiteId(1),
            WanQueueModel::SiteUplink { .. } => SiteId(i as u16 + 1),
        };
        let sender = std::net::UdpSocket::bind(SocketAddr::new(random_loopback_ip(), 0))
            .expect("bind sender");
        let mut config = ShaperConfig::new(HashMap::from([(destination, params)]));
        config.queue_bytes = Some(senders * count * size + 1);
        if shared {
            config.shared = Some(SharedWan {
                queues: Arc::new(SharedWanQueues::open(&path, sites).expect("open the queue file")),
                site: SiteId(0),
                destination_sites: HashMap::from([(destination, site)]),
                model,
            });
        }
        let (socket, _handle) = ShapedSocket::new(sender, config).expect("shaper");
        sockets.push((socket, destination));
        receivers.push(receiver);
    }
    let tasks: Vec<_> = receivers
        .into_iter()
        .map(|receiver| tokio::spawn(async move { receive(&receiver, count, size).await }))
        .collect();
    let payload = vec![0x5au8; size];
    for _ in 0..count {
        for (socket, destination) in &sockets {
            quinn::AsyncUdpSocket::try_send(
                socket.as_ref(),
                &quinn::udp::Transmit {
                    destination: *destination,
                    ecn: None,
                    contents: &payload,
                    segment_size: None,
                    src_ip: None,
                },
            )
            .expect("shaped send");
        }
    }
    let mut first = None::<Instant>;
    let mut last = None::<Instant>;
    for task in tasks {
        let (f, l) = task.await.expect("receiver task");
        first = Some(first.map_or(f, |x| x.min(f)));
        last = Some(last.map_or(l, |x| x.max(l)));
    }
    drop(sockets);
    if shared {
        let _ = std::fs::remove_file(&path);
    }
    let span = last.expect("receivers") - first.expect("receivers");
    ((senders * count - 1) * size * 8) as f64 / span.as_secs_f64()
}
