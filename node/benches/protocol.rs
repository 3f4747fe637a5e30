//! Criterion benchmarks of Steward's hot paths outside the crypto crate: the wire encoding of
//! the messages every update crosses the WAN in, and a simulated second of the normal case
//! with the real schemes (threshold RSA shares and combines, Ed25519), so that a change to
//! either can be checked A/B (`cargo bench -p steward`, then again on the other commit).

use std::sync::Arc;
use std::time::Duration;

use bft_harness::testing::shipped_topology;
use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion};
use steward::msg::{Accept, Message, Op, PrePrepare, Proposal, Update};
use steward::simulation::{CryptoMode, World, WorldConfig};

/// A signed-looking 200-byte Put (what the paper's clients send).
fn update(ts: u64) -> Arc<Update> {
    Arc::new(Update {
        client: 3,
        ts,
        op: Op::Put {
            key: format!("key-{ts}").into_bytes(),
            value: vec![7; 200],
        },
        sig: vec![9; 64],
        memo: Default::default(),
    })
}

fn batch(n: u64) -> Vec<Arc<Update>> {
    (1..=n).map(update).collect()
}

/// Encode and decode of a Pre-Prepare and a Proposal (batches of 1 and 32) and an Accept.
fn wire(c: &mut Criterion) {
    let mut g = c.benchmark_group("steward-wire");
    for n in [1, 32] {
        let messages = [
            (
                "pre_prepare",
                Message::PrePrepare(Arc::new(PrePrepare {
                    server: 0,
                    gv: 1,
                    lv: 2,
                    seq: 77,
                    batch: batch(n),
                    sig: vec![1; 64],
                })),
            ),
            (
                "proposal",
                Message::Proposal(Arc::new(Proposal {
                    site: 0,
                    gv: 1,
                    lv: 2,
                    seq: 77,
                    batch: batch(n),
                    tsig: vec![2; 128],
                })),
            ),
        ];
        for (name, m) in messages {
            let bytes = m.encode();
            g.bench_function(format!("encode_{name}_batch{n}"), |b| {
                b.iter(|| black_box(m.encode()))
            });
            g.bench_function(format!("decode_{name}_batch{n}"), |b| {
                b.iter(|| black_box(Message::decode(&bytes).expect("decodes")))
            });
        }
    }
    let accept = Message::Accept(Arc::new(Accept {
        site: 1,
        gv: 1,
        lv: 2,
        seq: 77,
        digest: [5; 32],
        tsig: vec![3; 128],
    }));
    let bytes = accept.encode();
    g.bench_function("encode_accept", |b| b.iter(|| black_box(accept.encode())));
    g.bench_function("decode_accept", |b| {
        b.iter(|| black_box(Message::decode(&bytes).expect("decodes")))
    });
    g.finish();
}

/// One simulated second of the normal case on local-symmetric-10mbps (4 sites of 4 servers,
/// 1,024-bit threshold RSA, Ed25519), 10 clients, after a 2 s warm-up: the wall time of every
/// share, proof, combine, signature and message the protocol makes in that second.
fn normal_case_second(c: &mut Criterion) {
    let mut g = c.benchmark_group("steward-sim-real-crypto");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(45));
    g.bench_function("local_symmetric_10_clients_1s", |b| {
        b.iter_batched(
            || {
                let topology = shipped_topology("local-symmetric-10mbps.toml");
                let mut cfg = WorldConfig::new(topology, 10, 1);
                cfg.crypto = CryptoMode::Real;
                let mut w = World::build(cfg).expect("builds");
                w.run_until(Duration::from_secs(2)).expect("runs");
                w
            },
            |mut w| {
                w.run_until(Duration::from_secs(3)).expect("runs");
                w
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

criterion_group!(benches, wire, normal_case_second);
criterion_main!(benches);
