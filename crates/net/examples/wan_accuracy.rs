//! Measures the userspace WAN shaper on loopback and prints the numbers.
//!
//! ```sh
//! cargo run --release -p steward-net --example wan_accuracy [-- ROUND_TRIPS]
//! ```
//!
//! * RTT: median of application round trips (message + echo over QUIC) between two shaped
//!   transports, for several one-way latencies; the acceptance band is ±(3 % + 1 ms).
//! * Datagram throughput: raw datagrams through one shaped socket (what the shaper lets
//!   through); the acceptance band is ±5 %.
//! * Shared WAN queues: raw datagrams from two sockets (each with its own handle on a shared
//!   queue file, as two processes have) through one pairwise queue and through one site
//!   uplink; the aggregate should be one link's bandwidth (±5 %), where per-destination
//!   queues give twice that.
//! * QUIC bulk transfer over the paper's 50 ms links: message goodput and link utilisation
//!   (UDP payload the shaper sent, QUIC headers and retransmissions included) after a warm-up.

use std::time::Duration;

use steward_net::{accuracy, WanQueueModel};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let round_trips: usize = std::env::args()
        .nth(1)
        .map(|n| n.parse().expect("ROUND_TRIPS must be a number"))
        .unwrap_or(21);

    println!("RTT (application round trips over QUIC, {round_trips} samples, 3 warm-up)");
    println!("configured_ms,median_ms,min_ms,max_ms,error_ms,allowed_ms");
    for one_way_ms in [5u64, 25, 50, 100, 150] {
        let one_way = Duration::from_millis(one_way_ms);
        let samples = accuracy::measure_rtt(one_way, 3, round_trips).await;
        let configured = 2.0 * one_way_ms as f64;
        let median = ms(samples.median());
        println!(
            "{configured:.0},{median:.3},{:.3},{:.3},{:+.3},{:.3}",
            ms(samples.min()),
            ms(samples.max()),
            median - configured,
            configured * 0.03 + 1.0
        );
    }

    println!();
    println!("Datagram throughput through the shaper (1200-byte datagrams, 3 s worth)");
    println!("configured_bps,measured_bps,error_percent");
    for bps in [100_000_000u64, 10_000_000, 5_000_000, 2_500_000] {
        let count = (bps as usize * 3 / 8 / 1200).min(20_000);
        let measured =
            accuracy::measure_datagram_throughput(bps, Duration::from_millis(50), count, 1200)
                .await;
        println!(
            "{bps},{measured:.0},{:+.2}",
            (measured / bps as f64 - 1.0) * 100.0
        );
    }

    println!();
    println!("Two senders sharing one WAN queue (1200-byte datagrams, 3 s worth in total)");
    println!("queue,configured_bps,aggregate_bps,error_percent");
    for bps in [10_000_000u64, 2_500_000] {
        let count = (bps as usize * 3 / 8 / 1200 / 2).min(10_000);
        for (name, model, shared) in [
            ("pairwise", WanQueueModel::Pairwise, true),
            (
                "site-uplink",
                WanQueueModel::SiteUplink { bandwidth_bps: bps },
                true,
            ),
            ("per-destination", WanQueueModel::Pairwise, false),
        ] {
            let measured = accuracy::measure_shared_throughput(
                model,
                shared,
                bps,
                Duration::from_millis(50),
                2,
                count,
                1200,
            )
            .await;
            println!(
                "{name},{bps},{measured:.0},{:+.2}",
                (measured / bps as f64 - 1.0) * 100.0
            );
        }
    }

    println!();
    println!("QUIC bulk transfer, 50 ms one way, 64 KiB messages, ~4 s, first 30 % excluded");
    println!("configured_bps,goodput_bps,link_bps,link_error_percent,queue_drops");
    for bps in [10_000_000u64, 5_000_000, 2_500_000] {
        let messages = (bps as usize * 4 / 8 / 65536).max(10);
        let result = accuracy::measure_goodput(
            bps,
            Duration::from_millis(50),
            messages,
            65536,
            0.3,
            Duration::from_secs(60),
        )
        .await;
        println!(
            "{bps},{:.0},{:.0},{:+.2},{}",
            result.goodput_bps,
            result.link_bps,
            (result.link_bps / bps as f64 - 1.0) * 100.0,
            result.queue_drops
        );
    }
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}
