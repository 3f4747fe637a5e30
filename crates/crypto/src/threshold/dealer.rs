//! The trusted dealer: safe-prime RSA key generation and share dealing (Shoup §3 with the
//! Protocol 2 changes of §5). Runs offline in `loadgen keygen`; deterministic from a seed for
//! tests.

use crypto_bigint::BoxedUint;
use crypto_primes::hazmat::{SetBits, SmallPrimesSieveFactory};
use crypto_primes::{is_safe_prime_with_rng, sieve_and_find};
use num_bigint::{BigUint, RandBigInt};
use num_integer::Integer;
use num_traits::One;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use rand_core::CryptoRngCore;

use super::keys::{KeyShare, ThresholdPublicKey};
use super::math::{factorial, jacobi};
use super::{DealError, MAX_SIGNERS, MIN_MODULUS_BITS};

/// Public exponent: a prime larger than any allowed l.
pub const PUBLIC_EXPONENT: u32 = 65537;

/// The dealer's output.
pub struct Dealing {
    /// The site's public key.
    pub public: ThresholdPublicKey,
    /// One secret share per signer, `shares[i-1]` for signer i.
    pub shares: Vec<KeyShare>,
    /// The safe primes p and q. Only tests need them (to build the ordinary RSA key as an
    /// oracle); key generation discards them.
    pub primes: (BigUint, BigUint),
}

/// Deal a fresh (k of l) threshold key with a `modulus_bits`-bit modulus.
pub fn deal(
    rng: &mut impl CryptoRngCore,
    modulus_bits: u32,
    l: u16,
    k: u16,
) -> Result<Dealing, DealError> {
    if !(1..=MAX_SIGNERS).contains(&l) || k == 0 || k > l {
        return Err(DealError::Parameters(format!(
            "need 1 <= k <= l <= {MAX_SIGNERS}, got k = {k}, l = {l}"
        )));
    }
    if u64::from(modulus_bits) < MIN_MODULUS_BITS || modulus_bits % 2 != 0 || modulus_bits > 8192 {
        return Err(DealError::Parameters(format!(
            "modulus bits must be even and in {MIN_MODULUS_BITS}..=8192, got {modulus_bits}"
        )));
    }
    let half = modulus_bits / 2;
    let p = safe_prime(rng, half);
    let q = loop {
        let q = safe_prime(rng, half);
        if q != p {
            break q;
        }
    };
    deal_with_primes(rng, p, q, l, k)
}

/// [`deal`] with all randomness drawn from a ChaCha20 stream seeded by `seed` (tests, fixtures).
pub fn deal_from_seed(seed: u64, modulus_bits: u32, l: u16, k: u16) -> Result<Dealing, DealError> {
    deal(&mut ChaCha20Rng::seed_from_u64(seed), modulus_bits, l, k)
}

fn safe_prime(rng: &mut impl CryptoRngCore, bits: u32) -> BigUint {
    // Two top bits set so that n = pq has exactly 2·bits bits.
    let factory = SmallPrimesSieveFactory::<BoxedUint>::new_safe_primes(bits, SetBits::TwoMsb);
    let p: BoxedUint = sieve_and_find(rng, factory, is_safe_prime_with_rng)
        .expect("the safe-prime sieve never runs out of candidates");
    BigUint::from_bytes_be(&p.to_be_bytes())
}

/// Deal from given safe primes p = 2p'+1, q = 2q'+1.
pub fn deal_with_primes(
    rng: &mut impl CryptoRngCore,
    p: BigUint,
    q: BigUint,
    l: u16,
    k: u16,
) -> Result<Dealing, DealError> {
    let one = BigUint::one();
    let n = &p * &q;
    let pp = (&p - &one) >> 1u32;
    let qp = (&q - &one) >> 1u32;
    if pp <= BigUint::from(l) || qp <= BigUint::from(l) {
        return Err(DealError::Parameters(
            "p' and q' must exceed l (Δ must be invertible mod m)".into(),
        ));
    }
    let m = &pp * &qp;
    let e = BigUint::from(PUBLIC_EXPONENT);
    let d = e
        .modinv(&m)
        .ok_or_else(|| DealError::Parameters("e is not invertible mod m".into()))?;
    // f(X) = d + a_1 X + ... + a_{k-1} X^{k-1} over Z_m.
    let mut coeffs = vec![d];
    coeffs.extend((1..k).map(|_| rng.gen_biguint_below(&m)));
    let delta_inv = factorial(l)
        .modinv(&m)
        .ok_or_else(|| DealError::Parameters("Δ is not invertible mod m".into()))?;
    let secrets: Vec<BigUint> = (1..=l)
        .map(|i| {
            let x = BigUint::from(i);
            let fi = coeffs
                .iter()
                .rev()
                .fold(BigUint::ZERO, |acc, a| (acc * &x + a) % &m);
            fi * &delta_inv % &m
        })
        .collect();
    // v: a random square (generates Q_n with overwhelming probability).
    let v = loop {
        let r = rng.gen_biguint_below(&n);
        if r > one && r.gcd(&n).is_one() {
            break &r * &r % &n;
        }
    };
    let vks = secrets.iter().map(|s| v.modpow(s, &n)).collect();
    let u = loop {
        let c = rng.gen_biguint_below(&n);
        if c > one && jacobi(&c, &n) == -1 {
            break c;
        }
    };
    let public = ThresholdPublicKey::new(n, e, v, vks, u, k)
        .map_err(|e| DealError::Parameters(e.to_string()))?;
    let shares = secrets
        .into_iter()
        .zip(1..=l)
        .map(|(secret, id)| KeyShare::from_parts(id, secret, public.fingerprint()))
        .collect();
    Ok(Dealing {
        public,
        shares,
        primes: (p, q),
    })
}
