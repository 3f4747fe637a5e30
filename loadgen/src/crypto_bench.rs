//! `loadgen crypto-bench`: median cost of each crypto operation on this machine, as CSV.

use std::hint::black_box;
use std::time::{Duration, Instant};

use anyhow::Result;
use clap::Args;
use steward_crypto::bench::{SignatureFixture, ThresholdFixture};
use steward_crypto::signature::Scheme;

/// Arguments of `loadgen crypto-bench`.
#[derive(Args)]
pub struct CryptoBenchArgs {
    /// Time spent measuring each operation (after one warm-up call), in milliseconds.
    #[arg(long, default_value_t = 1000)]
    time_ms: u64,
    /// Minimum samples per operation, whatever the time.
    #[arg(long, default_value_t = 11)]
    min_samples: usize,
}

/// One CSV row.
struct Row {
    op: &'static str,
    bits: u32,
    l: u16,
    k: u16,
    median_us: f64,
}

/// Median wall time of `f` over at least `min` samples and about `budget` of time.
fn median_us(budget: Duration, min: usize, mut f: impl FnMut()) -> f64 {
    f(); // warm-up
    let start = Instant::now();
    let mut samples = Vec::new();
    while samples.len() < min || (start.elapsed() < budget && samples.len() < 100_000) {
        let t = Instant::now();
        f();
        samples.push(t.elapsed().as_secs_f64() * 1e6);
    }
    samples.sort_by(f64::total_cmp);
    let n = samples.len();
    if n % 2 == 1 {
        samples[n / 2]
    } else {
        (samples[n / 2 - 1] + samples[n / 2]) / 2.0
    }
}

/// Run `loadgen crypto-bench`.
pub fn run(a: CryptoBenchArgs) -> Result<()> {
    let budget = Duration::from_millis(a.time_ms);
    let min = a.min_samples.max(1);
    let mut rows = Vec::new();
    for (bits, l, k) in [(1024u32, 16u16, 11u16), (1024, 4, 3), (2048, 4, 3)] {
        eprintln!("crypto-bench: dealing a {bits}-bit ({k} of {l}) key");
        let mut fx = ThresholdFixture::new(42, bits, l, k);
        let mut row = |op, us| {
            rows.push(Row {
                op,
                bits,
                l,
                k,
                median_us: us,
            })
        };
        row(
            "share_sign",
            median_us(budget, min, || {
                black_box(fx.share_sign());
            }),
        );
        row(
            "share_sign_unproven",
            median_us(budget, min, || {
                black_box(fx.share_sign_unproven());
            }),
        );
        row(
            "prove_share",
            median_us(budget, min, || {
                black_box(fx.prove_share());
            }),
        );
        row(
            "share_verify",
            median_us(budget, min, || {
                assert!(black_box(fx.share_verify()));
            }),
        );
        row(
            "combine",
            median_us(budget, min, || {
                black_box(fx.combine());
            }),
        );
        row(
            "combine_unproven",
            median_us(budget, min, || {
                black_box(fx.combine_unproven());
            }),
        );
        row(
            "verify",
            median_us(budget, min, || {
                assert!(black_box(fx.verify()));
            }),
        );
        row(
            "jacobi",
            median_us(budget, min, || {
                black_box(fx.jacobi());
            }),
        );
    }
    for (name, scheme) in [("ed25519", Scheme::Ed25519), ("rsa", Scheme::RSA1024)] {
        let fx = SignatureFixture::new(scheme, 42);
        let bits = if name == "rsa" { 1024 } else { 0 };
        let (sign, verify) = match name {
            "rsa" => ("rsa_sign", "rsa_verify"),
            _ => ("ed25519_sign", "ed25519_verify"),
        };
        let s = median_us(budget, min, || {
            black_box(fx.sign());
        });
        let v = median_us(budget, min, || {
            assert!(black_box(fx.verify()));
        });
        rows.push(Row {
            op: sign,
            bits,
            l: 0,
            k: 0,
            median_us: s,
        });
        rows.push(Row {
            op: verify,
            bits,
            l: 0,
            k: 0,
            median_us: v,
        });
    }
    println!("op,bits,l,k,median_us");
    for r in rows {
        println!("{},{},{},{},{:.1}", r.op, r.bits, r.l, r.k, r.median_us);
    }
    Ok(())
}
