//! Criterion benchmark of the operations `loadgen crypto-bench` reports, on the same fixtures.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use steward_crypto::bench::{SignatureFixture, ThresholdFixture};
use steward_crypto::signature::Scheme;

fn threshold(c: &mut Criterion) {
    for (bits, l, k) in [(1024u32, 16u16, 11u16), (1024, 4, 3), (2048, 4, 3)] {
        let mut fx = ThresholdFixture::new(42, bits, l, k);
        let mut g = c.benchmark_group(format!("threshold-{bits}-{l}-{k}"));
        g.sample_size(20);
        g.bench_function("share_sign", |b| b.iter(|| black_box(fx.share_sign())));
        g.bench_function("share_sign_unproven", |b| {
            b.iter(|| black_box(fx.share_sign_unproven()))
        });
        g.bench_function("prove_share", |b| b.iter(|| black_box(fx.prove_share())));
        g.bench_function("share_verify", |b| b.iter(|| black_box(fx.share_verify())));
        g.bench_function("combine", |b| b.iter(|| black_box(fx.combine())));
        g.bench_function("combine_unproven", |b| {
            b.iter(|| black_box(fx.combine_unproven()))
        });
        g.bench_function("verify", |b| b.iter(|| black_box(fx.verify())));
        g.bench_function("jacobi", |b| b.iter(|| black_box(fx.jacobi())));
        g.finish();
    }
}

fn signatures(c: &mut Criterion) {
    for (name, scheme) in [("ed25519", Scheme::Ed25519), ("rsa1024", Scheme::RSA1024)] {
        let fx = SignatureFixture::new(scheme, 42);
        let mut g = c.benchmark_group(name);
        g.bench_function("sign", |b| b.iter(|| black_box(fx.sign())));
        g.bench_function("verify", |b| b.iter(|| black_box(fx.verify())));
        g.finish();
    }
}

criterion_group!(benches, threshold, signatures);
criterion_main!(benches);
