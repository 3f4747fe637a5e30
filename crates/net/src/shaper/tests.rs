//! Datagram-level tests of the shaper: a shaped sender and a plain UDP receiver on loopback.

use super::*;
use crate::accuracy::{self, link, random_loopback_ip, UNLIMITED_BPS};

struct Rig {
    socket: Arc<ShapedSocket>,
    handle: ShaperHandle,
    receiver: tokio::net::UdpSocket,
    destination: SocketAddr,
}

impl Rig {
    async fn new(params: Option<LinkParams>, queue_bytes: Option<usize>) -> Rig {
        let receiver = tokio::net::UdpSocket::bind(SocketAddr::new(random_loopback_ip(), 0))
            .await
            .unwrap();
        let destination = receiver.local_addr().unwrap();
        let sender = std::net::UdpSocket::bind(SocketAddr::new(random_loopback_ip(), 0)).unwrap();
        let mut config = ShaperConfig::new(params.map(|p| (destination, p)).into_iter().collect());
        config.queue_bytes = queue_bytes;
        config.seed = 7;
        let (socket, handle) = ShapedSocket::new(sender, config).unwrap();
        Rig {
            socket,
            handle,
            receiver,
            destination,
        }
    }

    /// Shaped sends never block.
    fn send(&self, payload: &[u8]) {
        self.socket
            .try_send(&Transmit {
                destination: self.destination,
                ecn: None,
                contents: payload,
                segment_size: None,
                src_ip: None,
            })
            .unwrap();
    }

    /// Unshaped sends go to the real socket, which may not be writable yet.
    async fn send_unshaped(&self, payload: &[u8]) {
        let mut poller = self.socket.clone().create_io_poller();
        loop {
            let transmit = Transmit {
                destination: self.destination,
                ecn: None,
                contents: payload,
                segment_size: None,
                src_ip: None,
            };
            match self.socket.try_send(&transmit) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    std::future::poll_fn(|cx| poller.as_mut().poll_writable(cx))
                        .await
                        .unwrap();
                }
                other => return other.unwrap(),
            }
        }
    }

    async fn recv(&self, within: Duration) -> Option<Vec<u8>> {
        let mut buf = vec![0u8; 65536];
        let len = tokio::time::timeout(within, self.receiver.recv(&mut buf))
            .await
            .ok()?
            .unwrap();
        buf.truncate(len);
        Some(buf)
    }

    fn stats(&self) -> LinkStats {
        self.handle.stats(self.destination).unwrap_or_default()
    }
}

/// One-way delay of single datagrams: never early, and the median within 3 % + 1 ms.
#[ignore = "timing check: run `cargo test -p steward-net -- --ignored` on an idle machine, or the wan_accuracy example"]
#[tokio::test]
async fn one_way_delay_is_accurate() {
    let _serial = crate::TIMING_TESTS.write().await;
    let latency = Duration::from_millis(30);
    let rig = Rig::new(Some(link(latency, UNLIMITED_BPS)), None).await;
    let mut samples = Vec::new();
    for i in 0u8..15 {
        let start = Instant::now();
        rig.send(&[i; 100]);
        let got = rig.recv(Duration::from_secs(2)).await.expect("datagram");
        samples.push(start.elapsed());
        assert_eq!(got, vec![i; 100]);
    }
    samples.sort();
    let median = samples[samples.len() / 2];
    assert!(samples[0] >= latency, "early datagram: {samples:?}");
    let tolerance = latency.mul_f64(0.03) + Duration::from_millis(1);
    assert!(
        median <= latency + tolerance,
        "median {median:?}, samples {samples:?}"
    );
}

/// Raw throughput through a 10 Mbit/s link, within 5 %.
#[ignore = "timing check: run `cargo test -p steward-net -- --ignored` on an idle machine, or the wan_accuracy example"]
#[tokio::test]
async fn bandwidth_is_accurate() {
    let _serial = crate::TIMING_TESTS.write().await;
    let configured = 10_000_000;
    let measured =
        accuracy::measure_datagram_throughput(configured, Duration::from_millis(5), 400, 1200)
            .await;
    let ratio = measured / configured as f64;
    assert!(
        (0.95..=1.05).contains(&ratio),
        "measured {measured:.0} bit/s"
    );
}

/// Serialization delay spaces datagrams; the drop-tail queue drops what exceeds its bytes.
#[tokio::test]
async fn queue_limit_tail_drops() {
    let _serial = crate::TIMING_TESTS.read().await;
    // 1 Mbit/s: a 1200-byte datagram takes 9.6 ms; the queue holds five of them.
    let rig = Rig::new(Some(link(Duration::ZERO, 1_000_000)), Some(6000)).await;
    for i in 0u8..20 {
        rig.send(&[i; 1200]);
    }
    let admitted = 20 - rig.stats().dropped_queue;
    // Five fit; a sixth only if the sending loop stalled for a whole serialization time.
    assert!((5..=7).contains(&admitted), "admitted {admitted}");
    let start = Instant::now();
    let mut received = Vec::new();
    for _ in 0..admitted {
        received.push(
            rig.recv(Duration::from_secs(2))
                .await
                .expect("admitted datagram")[0],
        );
    }
    // In order, the first ones, and paced: the last one leaves admitted × 9.6 ms after the
    // first one entered.
    assert_eq!(received, (0..admitted as u8).collect::<Vec<_>>());
    assert!(start.elapsed() >= Duration::from_micros(9600) * (admitted as u32 - 1));
    assert!(rig.recv(Duration::from_millis(50)).await.is_none());
}

/// A 25 % loss rate drops about a quarter of 2000 datagrams; the rest all arrive.
#[tokio::test]
async fn loss_rate_is_honoured() {
    let _serial = crate::TIMING_TESTS.read().await;
    // 100-byte datagrams at 4 Mbit/s: one per 200 µs, which the receiver keeps up with.
    let mut params = link(Duration::ZERO, 4_000_000);
    params.loss = 0.25;
    let rig = Rig::new(Some(params), Some(1 << 20)).await;
    let count = 2000;
    for i in 0..count {
        rig.send(&(i as u32).to_be_bytes().repeat(25));
    }
    let stats = rig.stats();
    let dropped = stats.dropped_loss;
    // Binomial(2000, 0.25): sd 19.4; 5 sd either side.
    assert!(
        (403..=597).contains(&dropped),
        "dropped {dropped} of {count}"
    );
    let mut received = 0;
    while received < count - dropped {
        rig.recv(Duration::from_secs(2))
            .await
            .unwrap_or_else(|| panic!("only {received} of {} arrived", count - dropped));
        received += 1;
    }
    assert_eq!(rig.stats().sent_datagrams, count - dropped);
}

/// Jitter varies the delay but never reorders a link.
#[tokio::test]
async fn jitter_does_not_reorder() {
    let _serial = crate::TIMING_TESTS.read().await;
    let mut params = link(Duration::from_millis(20), UNLIMITED_BPS);
    params.jitter = Duration::from_millis(5);
    let rig = Rig::new(Some(params), None).await;
    let mut delays = Vec::new();
    for i in 0u8..30 {
        let start = Instant::now();
        rig.send(&[i]);
        let got = rig.recv(Duration::from_secs(2)).await.expect("datagram");
        assert_eq!(got, vec![i]);
        delays.push(start.elapsed());
    }
    let spread = *delays.iter().max().unwrap() - *delays.iter().min().unwrap();
    assert!(spread > Duration::from_millis(2), "no jitter: {delays:?}");
    // Back to back: arrival order is send order.
    for i in 0u8..50 {
        rig.send(&[i]);
    }
    for i in 0u8..50 {
        assert_eq!(
            rig.recv(Duration::from_secs(2)).await.expect("datagram"),
            vec![i]
        );
    }
}

/// A partition drops new and already queued datagrams; healing restores the link.
#[tokio::test]
async fn partition_and_heal() {
    let _serial = crate::TIMING_TESTS.read().await;
    let rig = Rig::new(Some(link(Duration::from_millis(40), UNLIMITED_BPS)), None).await;
    rig.send(b"queued before the partition");
    rig.handle.partition(rig.destination);
    rig.send(b"sent during the partition");
    assert!(rig.recv(Duration::from_millis(150)).await.is_none());
    assert_eq!(rig.stats().dropped_partition, 2);
    rig.handle.heal(rig.destination);
    rig.send(b"after healing");
    assert_eq!(
        rig.recv(Duration::from_secs(2)).await.as_deref(),
        Some(&b"after healing"[..])
    );
    // One-way partition and heal_all.
    rig.handle.partition_outgoing(rig.destination);
    rig.send(b"x");
    assert_eq!(rig.stats().dropped_partition, 3);
    rig.handle.heal_all();
    rig.send(b"y");
    assert_eq!(
        rig.recv(Duration::from_secs(2)).await.as_deref(),
        Some(&b"y"[..])
    );
}

/// A two-way partition also drops datagrams received from the peer.
#[tokio::test]
async fn partition_drops_incoming() {
    let _serial = crate::TIMING_TESTS.read().await;
    let rig = Rig::new(None, None).await;
    let shaped_addr = rig.socket.local_addr().unwrap();
    let peer = rig.receiver.local_addr().unwrap();
    let receive = || async {
        let mut storage = [0u8; 2048];
        let mut bufs = [IoSliceMut::new(&mut storage)];
        let mut meta = [RecvMeta::default()];
        let result = tokio::time::timeout(
            Duration::from_millis(300),
            std::future::poll_fn(|cx| rig.socket.poll_recv(cx, &mut bufs, &mut meta)),
        )
        .await;
        match result {
            Ok(count) => {
                assert_eq!(count.unwrap(), 1);
                Some(storage[..meta[0].len].to_vec())
            }
            Err(_) => None,
        }
    };
    rig.receiver.send_to(b"one", shaped_addr).await.unwrap();
    assert_eq!(receive().await.as_deref(), Some(&b"one"[..]));
    rig.handle.partition(peer);
    rig.receiver.send_to(b"two", shaped_addr).await.unwrap();
    assert_eq!(receive().await, None);
    assert_eq!(rig.handle.stats(peer).unwrap().dropped_incoming, 1);
    rig.handle.heal(peer);
    rig.receiver.send_to(b"three", shaped_addr).await.unwrap();
    assert_eq!(receive().await.as_deref(), Some(&b"three"[..]));
}

/// Links change at run time; unknown destinations pass through unshaped; datagrams queued
/// when the socket is dropped are still sent.
#[tokio::test]
async fn set_link_passthrough_and_linger() {
    let _serial = crate::TIMING_TESTS.read().await;
    let rig = Rig::new(None, None).await;
    let start = Instant::now();
    rig.send_unshaped(b"unshaped").await;
    rig.recv(Duration::from_secs(2))
        .await
        .expect("unshaped datagram");
    assert!(start.elapsed() < Duration::from_millis(25));
    assert!(rig.handle.stats(rig.destination).is_none());

    rig.handle.set_link(
        rig.destination,
        link(Duration::from_millis(60), UNLIMITED_BPS),
    );
    assert_eq!(
        rig.handle.link(rig.destination).unwrap().latency,
        Duration::from_millis(60)
    );
    let start = Instant::now();
    rig.send(b"shaped");
    rig.recv(Duration::from_secs(2))
        .await
        .expect("shaped datagram");
    assert!(start.elapsed() >= Duration::from_millis(60));

    let Rig {
        socket,
        handle,
        receiver,
        destination,
    } = rig;
    socket
        .try_send(&Transmit {
            destination,
            ecn: None,
            contents: b"last words",
            segment_size: None,
            src_ip: None,
        })
        .unwrap();
    drop(socket);
    let mut buf = [0u8; 64];
    let len = tokio::time::timeout(Duration::from_secs(2), receiver.recv(&mut buf))
        .await
        .expect("datagram queued before the drop")
        .unwrap();
    assert_eq!(&buf[..len], b"last words");
    assert_eq!(handle.queued_datagrams(), 0);
}

/// GSO-style transmits (several segments) are split into datagrams.
#[tokio::test]
async fn segmented_transmit_is_split() {
    let _serial = crate::TIMING_TESTS.read().await;
    let rig = Rig::new(Some(link(Duration::from_millis(1), UNLIMITED_BPS)), None).await;
    let contents: Vec<u8> = (0u8..25).collect();
    rig.socket
        .try_send(&Transmit {
            destination: rig.destination,
            ecn: None,
            contents: &contents,
            segment_size: Some(10),
            src_ip: None,
        })
        .unwrap();
    assert_eq!(
        rig.recv(Duration::from_secs(1)).await.unwrap(),
        (0u8..10).collect::<Vec<_>>()
    );
    assert_eq!(
        rig.recv(Duration::from_secs(1)).await.unwrap(),
        (10u8..20).collect::<Vec<_>>()
    );
    assert_eq!(
        rig.recv(Duration::from_secs(1)).await.unwrap(),
        (20u8..25).collect::<Vec<_>>()
    );
}

/// The link table of a node follows the topology: LAN within the site, WAN elsewhere.
#[test]
fn link_table_from_topology() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../topologies/local-symmetric-10mbps.toml");
    let topology = Topology::load(&path).unwrap();
    let same_site: SocketAddr = "127.0.0.11:4000".parse().unwrap();
    let other_site: SocketAddr = "127.0.0.21:4000".parse().unwrap();
    let config = ShaperConfig::from_topology(
        &topology,
        SiteId(0),
        [(same_site, SiteId(0)), (other_site, SiteId(1))],
    );
    assert_eq!(config.links[&same_site], topology.lan);
    assert_eq!(
        config.links[&other_site],
        *topology.link(SiteId(0), SiteId(1))
    );
    assert_eq!(config.links[&other_site].latency, Duration::from_millis(50));
    assert_eq!(config.links[&other_site].bandwidth_bps, 10_000_000);
}

// ---- Shared WAN queues -------------------------------------------------------------------

/// 1200 bytes at 1 Mbit/s.
const TX_1200_AT_1MBPS: u64 = 9_600_000;

fn queue_file(sites: usize) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wan-queues.shm");
    SharedWanQueues::create(&path, sites).unwrap();
    (dir, path)
}

fn invalid_reason(result: Result<SharedWanQueues, SharedWanError>) -> String {
    match result {
        Err(SharedWanError::Invalid { reason, .. }) => reason,
        other => panic!("expected an invalid-file error, got {other:?}"),
    }
}

/// The header is checked on open: magic, version, site count, size; errors name the file.
#[test]
fn shared_file_header_is_validated() {
    let (dir, path) = queue_file(3);
    let queues = SharedWanQueues::open(&path, 3).unwrap();
    assert_eq!(queues.sites(), 3);
    assert_eq!(queues.path(), Some(path.as_path()));
    assert_eq!(
        std::fs::metadata(&path).unwrap().len(),
        64 + 64 * (3 * 3 + 3)
    );

    let err = SharedWanQueues::open(&path, 4).unwrap_err();
    assert!(err.to_string().contains("wan-queues.shm"), "{err}");
    assert!(err.to_string().contains("made for 3 sites"), "{err}");

    let original = std::fs::read(&path).unwrap();
    let write = |bytes: &[u8]| std::fs::write(&path, bytes).unwrap();

    let mut bad = original.clone();
    bad[0] ^= 0xff;
    write(&bad);
    assert!(invalid_reason(SharedWanQueues::open(&path, 3)).contains("bad magic"));

    let mut bad = original.clone();
    bad[8] = 2;
    write(&bad);
    assert!(invalid_reason(SharedWanQueues::open(&path, 3)).contains("format version 2"));

    write(&original[..original.len() - 8]);
    assert!(invalid_reason(SharedWanQueues::open(&path, 3)).contains("corrupt"));

    write(&original[..10]);
    assert!(invalid_reason(SharedWanQueues::open(&path, 3)).contains("shorter than its header"));

    write(b"");
    assert!(invalid_reason(SharedWanQueues::open(&path, 3)).contains("shorter than its header"));

    let missing = dir.path().join("missing.shm");
    let err = SharedWanQueues::open(&missing, 3).unwrap_err();
    assert!(matches!(err, SharedWanError::Io { .. }), "{err:?}");
    assert!(err.to_string().contains("missing.shm"), "{err}");

    assert!(invalid_reason(SharedWanQueues::create(&path, 0)).contains("0 sites"));
    assert!(invalid_reason(SharedWanQueues::create(&path, MAX_SITES + 1)).contains("sites"));

    // `create` replaces a bad file with a good one (and leaves no temporary file behind).
    SharedWanQueues::create(&path, 3).unwrap();
    SharedWanQueues::open(&path, 3).unwrap();
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

/// Pair slots are `a * S + b`, uplinks `S * S + a`, each in its own 64-byte line of the file,
/// and independent of each other.
#[test]
fn shared_slot_indexing_and_layout() {
    let (_dir, path) = queue_file(3);
    let queues = SharedWanQueues::open(&path, 3).unwrap();
    let pair = queues.pair_slot(SiteId(1), SiteId(2)).unwrap();
    let uplink = queues.uplink_slot(SiteId(2)).unwrap();
    assert_eq!(pair.index(), 5);
    assert_eq!(queues.pair_slot(SiteId(2), SiteId(1)).unwrap().index(), 7);
    assert_eq!(queues.uplink_slot(SiteId(0)).unwrap().index(), 9);
    assert_eq!(uplink.index(), 11);
    assert_eq!(queues.pair_slot(SiteId(3), SiteId(0)), None);
    assert_eq!(queues.uplink_slot(SiteId(3)), None);

    let now = 5_000_000_000;
    // 1000 bytes at 8 Mbit/s: 1 ms.
    assert_eq!(
        queues.reserve(pair, now, 1000, 8_000_000, 1 << 20),
        Some(now + 1_000_000)
    );
    assert_eq!(
        queues.reserve(uplink, now, 2000, 8_000_000, 1 << 20),
        Some(now + 2_000_000)
    );
    assert_eq!(queues.busy_until(pair), Some(now + 1_000_000));
    assert_eq!(queues.busy_until(uplink), Some(now + 2_000_000));
    for other in (0..12).filter(|i| ![5, 11].contains(i)) {
        assert_eq!(queues.busy_until(WanSlot(other)), Some(0), "slot {other}");
    }
    assert_eq!(queues.busy_until(WanSlot(12)), None);
    assert_eq!(
        queues.reserve(WanSlot(12), now, 1, 8_000_000, 1 << 20),
        None
    );

    // What another process reads from the file itself.
    let bytes = std::fs::read(&path).unwrap();
    let at = |slot: usize| {
        let offset = 64 + slot * 64;
        u64::from_le_bytes(bytes[offset..offset + 8].try_into().unwrap())
    };
    assert_eq!(at(5), now + 1_000_000);
    assert_eq!(at(11), now + 2_000_000);

    // Process-local queues index the same way.
    let local = SharedWanQueues::in_process(3);
    assert_eq!(local.path(), None);
    assert_eq!(local.pair_slot(SiteId(1), SiteId(2)), Some(pair));
    assert_eq!(local.uplink_slot(SiteId(2)), Some(uplink));
}

/// Two handles on one file (two processes) reserving the same queue get back-to-back,
/// non-overlapping serialization intervals, also when racing from several threads.
#[test]
fn shared_handles_reserve_back_to_back() {
    let (_dir, path) = queue_file(2);
    let first = SharedWanQueues::open(&path, 2).unwrap();
    let second = SharedWanQueues::open(&path, 2).unwrap();
    let slot = first.pair_slot(SiteId(0), SiteId(1)).unwrap();
    let now = 7_000_000_000;
    let ms = 1_000_000;
    // 1000 bytes at 8 Mbit/s take 1 ms.
    let reserve =
        |queues: &SharedWanQueues, at: u64| queues.reserve(slot, at, 1000, 8_000_000, 1 << 20);
    assert_eq!(reserve(&first, now), Some(now + ms));
    assert_eq!(reserve(&second, now), Some(now + 2 * ms));
    assert_eq!(reserve(&first, now + ms / 2), Some(now + 3 * ms));
    // Idle again later: starts at the offer.
    assert_eq!(reserve(&second, now + 10 * ms), Some(now + 11 * ms));
    assert_eq!(first.busy_until(slot), Some(now + 11 * ms));

    // Racing threads, half on each handle, all offering at the same instant: every
    // reservation ends exactly one transmission time after another one.
    let (first, second) = (Arc::new(first), Arc::new(second));
    let base = now + 11 * ms;
    let per_thread = 2000;
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let queues = if t % 2 == 0 {
                first.clone()
            } else {
                second.clone()
            };
            std::thread::spawn(move || {
                (0..per_thread)
                    .map(|_| {
                        queues
                            .reserve(slot, base, 1, 8_000_000_000, u64::MAX)
                            .expect("unlimited queue")
                    })
                    .collect::<Vec<u64>>()
            })
        })
        .collect();
    let mut ends: Vec<u64> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    ends.sort_unstable();
    // One byte at 8 Gbit/s: 1 ns.
    let expected: Vec<u64> = (1..=4 * per_thread).map(|i| base + i).collect();
    assert_eq!(ends, expected);
}

/// A reservation that would take the backlog past the limit is dropped; the queue drains
/// with time.
#[test]
fn shared_queue_tail_drops() {
    let queues = SharedWanQueues::in_process(2);
    let slot = queues.uplink_slot(SiteId(0)).unwrap();
    let now = 1_000_000_000;
    let ms = 1_000_000;
    // 1000 bytes at 8 Mbit/s: 1 ms each; 3000 bytes may wait.
    let reserve = |at: u64| queues.reserve(slot, at, 1000, 8_000_000, 3000);
    assert_eq!(reserve(now), Some(now + ms));
    assert_eq!(reserve(now), Some(now + 2 * ms));
    assert_eq!(reserve(now), Some(now + 3 * ms));
    assert_eq!(reserve(now), None);
    assert_eq!(queues.busy_until(slot), Some(now + 3 * ms));
    // 1 ms later, 2000 bytes wait: one more fits.
    assert_eq!(reserve(now + ms), Some(now + 4 * ms));
    assert_eq!(reserve(now + ms), None);
    // A datagram larger than the limit never fits.
    assert_eq!(
        queues.reserve(slot, now + 100 * ms, 3001, 8_000_000, 3000),
        None
    );
    // A slot far ahead of the clock (a file from before a reboot) counts as idle.
    let stale = SharedWanQueues::in_process(1);
    let up = stale.uplink_slot(SiteId(0)).unwrap();
    assert_eq!(
        stale.reserve(up, u64::MAX - 10, 1, 8_000_000_000, 1),
        Some(u64::MAX - 9)
    );
    assert_eq!(stale.reserve(up, 5, 1, 8_000_000_000, 1), Some(6));
}

/// A shaped sender ("process") at `site` with its own handle on the queues.
fn shared_sender(
    queues: Arc<SharedWanQueues>,
    site: SiteId,
    model: WanQueueModel,
    destinations: &[(SocketAddr, SiteId, LinkParams)],
    queue_bytes: usize,
) -> (Arc<ShapedSocket>, ShaperHandle) {
    let sender = std::net::UdpSocket::bind(SocketAddr::new(random_loopback_ip(), 0)).unwrap();
    let mut config = ShaperConfig::new(
        destinations
            .iter()
            .map(|(addr, _, params)| (*addr, *params))
            .collect(),
    );
    config.queue_bytes = Some(queue_bytes);
    config.shared = Some(SharedWan {
        queues,
        site,
        destination_sites: destinations
            .iter()
            .map(|(addr, site, _)| (*addr, *site))
            .collect(),
        model,
    });
    ShapedSocket::new(sender, config).unwrap()
}

async fn receiver() -> (tokio::net::UdpSocket, SocketAddr) {
    let socket = tokio::net::UdpSocket::bind(SocketAddr::new(random_loopback_ip(), 0))
        .await
        .unwrap();
    let addr = socket.local_addr().unwrap();
    (socket, addr)
}

fn send_to(socket: &ShapedSocket, destination: SocketAddr, payload: &[u8]) {
    socket
        .try_send(&Transmit {
            destination,
            ecn: None,
            contents: payload,
            segment_size: None,
            src_ip: None,
        })
        .unwrap();
}

/// Receives `count` datagrams in order, each tagged with its first byte `first + i`.
async fn expect_in_order(socket: &tokio::net::UdpSocket, first: u8, count: u64) {
    let mut buf = [0u8; 2048];
    for i in 0..count {
        let len = tokio::time::timeout(Duration::from_secs(2), socket.recv(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("datagram {i} of {count} missing"))
            .unwrap();
        assert_eq!(len, 1200);
        assert_eq!(buf[0], first + i as u8, "order");
    }
}

fn admitted(handle: &ShaperHandle, destination: SocketAddr, sent: u64) -> u64 {
    let stats = handle.stats(destination).unwrap_or_default();
    assert_eq!(stats.dropped_loss, 0);
    sent - stats.dropped_queue
}

/// Two senders ("processes", each with its own handle on the file) at site 0 sending to two
/// destinations at site 1 share the pairwise queue: together they get one link's bandwidth
/// and one queue's worth of backlog, not one each.
#[tokio::test]
async fn shared_pairwise_queue_serves_two_senders_at_one_link_rate() {
    let _serial = crate::TIMING_TESTS.read().await;
    let (_dir, path) = queue_file(2);
    let open = || Arc::new(SharedWanQueues::open(&path, 2).unwrap());
    let params = link(Duration::ZERO, 1_000_000);
    let (rx1, d1) = receiver().await;
    let (rx2, d2) = receiver().await;
    // 1 Mbit/s: a 1200-byte datagram takes 9.6 ms; the queue holds five of them.
    let (s1, h1) = shared_sender(
        open(),
        SiteId(0),
        WanQueueModel::Pairwise,
        &[(d1, SiteId(1), params)],
        6000,
    );
    let (s2, h2) = shared_sender(
        open(),
        SiteId(0),
        WanQueueModel::Pairwise,
        &[(d2, SiteId(1), params)],
        6000,
    );
    let observer = open();
    let slot = observer.pair_slot(SiteId(0), SiteId(1)).unwrap();
    assert_eq!(observer.busy_until(slot), Some(0));

    let start = Instant::now();
    let t0 = monotonic_ns();
    for i in 0u8..20 {
        send_to(&s1, d1, &[i; 1200]);
        send_to(&s2, d2, &[100 + i; 1200]);
    }
    let t1 = monotonic_ns();
    let (a1, a2) = (admitted(&h1, d1, 20), admitted(&h2, d2, 20));
    let total = a1 + a2;
    // One queue of five (a sixth or seventh only if sending stalled for a serialization
    // time); with their own queues they would have admitted at least ten.
    assert!((5..=7).contains(&total), "admitted {a1} + {a2}");
    // Alternating senders share the queue.
    assert!(a1 >= 2 && a2 >= 2, "admitted {a1} + {a2}");
    // The admitted datagrams were serialized back to back: the queue is busy for all of
    // them after the first offer, and started no later than the last one.
    let busy_until = observer.busy_until(slot).unwrap();
    assert!(busy_until >= t0 + total * TX_1200_AT_1MBPS);
    assert!(busy_until <= t1 + total * TX_1200_AT_1MBPS);

    expect_in_order(&rx1, 0, a1).await;
    expect_in_order(&rx2, 100, a2).await;
    // The last one left the queue no earlier than `total` serialization times after the
    // first offer: the two senders together got one link's rate.
    assert!(start.elapsed() >= Duration::from_nanos(total * TX_1200_AT_1MBPS));
    let mut buf = [0u8; 2048];
    assert!(
        tokio::time::timeout(Duration::from_millis(50), rx1.recv(&mut buf))
            .await
            .is_err()
    );
    assert!(
        tokio::time::timeout(Duration::from_millis(50), rx2.recv(&mut buf))
            .await
            .is_err()
    );
}

/// The same two senders without shared queues: each has its own queue (today's behaviour).
#[tokio::test]
async fn without_shared_queues_each_destination_has_its_own() {
    let _serial = crate::TIMING_TESTS.read().await;
    let params = link(Duration::ZERO, 1_000_000);
    let (_rx1, d1) = receiver().await;
    let (_rx2, d2) = receiver().await;
    let mut total = 0;
    let mut senders = Vec::new();
    for destination in [d1, d2] {
        let sender = std::net::UdpSocket::bind(SocketAddr::new(random_loopback_ip(), 0)).unwrap();
        let mut config = ShaperConfig::new(HashMap::from([(destination, params)]));
        config.queue_bytes = Some(6000);
        senders.push((ShapedSocket::new(sender, config).unwrap(), destination));
    }
    for i in 0u8..20 {
        for ((socket, _), destination) in &senders {
            send_to(socket, *destination, &[i; 1200]);
        }
    }
    for ((_, handle), destination) in &senders {
        let admitted = admitted(handle, *destination, 20);
        assert!(admitted >= 5, "admitted {admitted}");
        total += admitted;
    }
    assert!(total >= 10, "admitted {total}");
}

/// Sites a, b and c of one server each, with `wan` as the body of the `[wan]` table.
fn three_sites(name: &str, wan: &str) -> Topology {
    let mut text = format!(
        "name = \"{name}\"\n[lan]\nlatency_ms = 0.1\nbandwidth = \"1Gbps\"\n[wan]\n{wan}\n"
    );
    for site in ["a", "b", "c"] {
        text += &format!("[[site]]\nname = \"{site}\"\nf = 0\nservers = 1\n");
    }
    text += "[pbft]\nservers_per_site = { a = 1 }\n";
    Topology::from_toml_str(&text, name).unwrap()
}

/// Sites a, b and c, 1 ms apart at 1 Mbit/s, with the WAN queue model `model`.
fn three_site_topology(model: &str) -> Topology {
    three_sites(
        "three-sites",
        &format!("model = \"{model}\"\n[wan.default]\nlatency_ms = 1\nbandwidth = \"1Mbps\""),
    )
}

/// Sends 20 datagrams to each of two WAN destinations (sites 1 and 2) and 4 to a LAN one;
/// returns the WAN datagrams admitted.
async fn site_uplink_rig(model: &str) -> u64 {
    let topology = three_site_topology(model);
    let (rx_lan, lan) = receiver().await;
    let (_rx1, d1) = receiver().await;
    let (_rx2, d2) = receiver().await;
    let mut config = ShaperConfig::from_topology_shared(
        &topology,
        SiteId(0),
        [(lan, SiteId(0)), (d1, SiteId(1)), (d2, SiteId(2))],
        None,
    );
    config.queue_bytes = Some(6000);
    let sender = std::net::UdpSocket::bind(SocketAddr::new(random_loopback_ip(), 0)).unwrap();
    let (socket, handle) = ShapedSocket::new(sender, config).unwrap();
    for i in 0u8..20 {
        send_to(&socket, d1, &[i; 1200]);
        send_to(&socket, d2, &[i; 1200]);
        if i < 4 {
            send_to(&socket, lan, &[i; 1200]);
        }
    }
    // The LAN has its own queue, untouched by the WAN's: 4800 bytes fit.
    assert_eq!(admitted(&handle, lan, 4), 4);
    expect_in_order(&rx_lan, 0, 4).await;
    admitted(&handle, d1, 20) + admitted(&handle, d2, 20)
}

/// With the site-uplink model (process-local queues, no file), traffic to two other sites
/// shares the site's uplink; with the pairwise model each site pair has its own queue.
#[tokio::test]
async fn site_uplink_is_shared_between_destination_sites() {
    let _serial = crate::TIMING_TESTS.read().await;
    let uplink = site_uplink_rig("site-uplink").await;
    assert!((5..=7).contains(&uplink), "admitted {uplink}");
    let pairwise = site_uplink_rig("pairwise").await;
    assert!(pairwise >= 10, "admitted {pairwise}");
}

/// Partitions still drop per destination, before the shared queue (which they do not use).
#[tokio::test]
async fn partition_with_shared_queue() {
    let _serial = crate::TIMING_TESTS.read().await;
    let queues = Arc::new(SharedWanQueues::in_process(2));
    let slot = queues.pair_slot(SiteId(0), SiteId(1)).unwrap();
    let params = link(Duration::ZERO, 1_000_000);
    let (_rx1, d1) = receiver().await;
    let (rx2, d2) = receiver().await;
    let (socket, handle) = shared_sender(
        queues.clone(),
        SiteId(0),
        WanQueueModel::Pairwise,
        &[(d1, SiteId(1), params), (d2, SiteId(1), params)],
        6000,
    );
    handle.partition(d1);
    send_to(&socket, d1, &[1; 1200]);
    assert_eq!(handle.stats(d1).unwrap().dropped_partition, 1);
    assert_eq!(queues.busy_until(slot), Some(0));
    send_to(&socket, d2, &[7; 1200]);
    assert_ne!(queues.busy_until(slot), Some(0));
    expect_in_order(&rx2, 7, 1).await;
    assert_eq!(handle.stats(d2).unwrap().sent_datagrams, 1);
}

/// Sites named in the shaper configuration must exist in the queues.
#[tokio::test]
async fn shared_queue_site_out_of_range_is_an_error() {
    let queues = Arc::new(SharedWanQueues::in_process(2));
    let destination: SocketAddr = "127.0.0.1:9".parse().unwrap();
    let params = link(Duration::from_millis(1), 1_000_000);
    let mut config = ShaperConfig::new(HashMap::from([(destination, params)]));
    config.shared = Some(SharedWan {
        queues,
        site: SiteId(0),
        destination_sites: HashMap::from([(destination, SiteId(2))]),
        model: WanQueueModel::Pairwise,
    });
    let sender = std::net::UdpSocket::bind(SocketAddr::new(random_loopback_ip(), 0)).unwrap();
    let err = ShapedSocket::new(sender, config).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    assert!(err.to_string().contains("site 2"), "{err}");
}

/// `from_topology_shared` resolves the model: the uplink's bandwidth is the largest of the
/// site's WAN links; peers keep their per-pair link parameters.
#[test]
fn shared_config_from_topology() {
    let topology = three_sites(
        "uneven",
        r#"model = "site-uplink"
[[wan.link]]
between = ["a", "b"]
latency_ms = 10
bandwidth = "2Mbps"
[[wan.link]]
between = ["a", "c"]
latency_ms = 20
bandwidth = "5Mbps"
[[wan.link]]
between = ["b", "c"]
latency_ms = 30
bandwidth = "3Mbps""#,
    );
    let b: SocketAddr = "[::ffff:127.0.0.21]:4000".parse().unwrap();
    let c: SocketAddr = "127.0.0.31:4000".parse().unwrap();
    let (_dir, path) = queue_file(3);
    let queues = Arc::new(SharedWanQueues::open(&path, 3).unwrap());
    let config = ShaperConfig::from_topology_shared(
        &topology,
        SiteId(0),
        [(b, SiteId(1)), (c, SiteId(2))],
        Some(queues.clone()),
    );
    assert_eq!(config.links[&b].bandwidth_bps, 2_000_000);
    assert_eq!(config.links[&c].latency, Duration::from_millis(20));
    let shared = config.shared.as_ref().unwrap();
    assert!(Arc::ptr_eq(&shared.queues, &queues));
    assert_eq!(shared.site, SiteId(0));
    assert_eq!(
        shared.model,
        WanQueueModel::SiteUplink {
            bandwidth_bps: 5_000_000
        }
    );
    assert_eq!(shared.destination_sites[&canonical(b)], SiteId(1));
    assert_eq!(shared.destination_sites[&c], SiteId(2));

    let from_b = ShaperConfig::from_topology_shared(&topology, SiteId(1), [(c, SiteId(2))], None);
    let shared = from_b.shared.unwrap();
    assert_eq!(
        shared.model,
        WanQueueModel::SiteUplink {
            bandwidth_bps: 3_000_000
        }
    );
    assert_eq!(shared.queues.sites(), 3);
    assert_eq!(shared.queues.path(), None);

    let pairwise = three_site_topology("pairwise");
    let config = ShaperConfig::from_topology_shared(&pairwise, SiteId(2), [(c, SiteId(0))], None);
    assert_eq!(config.shared.unwrap().model, WanQueueModel::Pairwise);
    // The old constructor shares nothing.
    assert!(
        ShaperConfig::from_topology(&pairwise, SiteId(2), [(c, SiteId(0))])
            .shared
            .is_none()
    );
}

/// Two senders ("processes") through one shared pairwise queue of 10 Mbit/s: together
/// within 5 % of 10 Mbit/s.
#[ignore = "timing check: run `cargo test -p steward-net -- --ignored` on an idle machine, or the wan_accuracy example"]
#[tokio::test]
async fn shared_bandwidth_is_accurate() {
    let _serial = crate::TIMING_TESTS.write().await;
    let configured = 10_000_000;
    let measured = accuracy::measure_shared_throughput(
        WanQueueModel::Pairwise,
        true,
        configured,
        Duration::from_millis(5),
        2,
        200,
        1200,
    )
    .await;
    let ratio = measured / configured as f64;
    assert!(
        (0.95..=1.05).contains(&ratio),
        "measured {measured:.0} bit/s"
    );
}
