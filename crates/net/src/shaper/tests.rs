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
