//! Number theory for Shoup's scheme: Jacobi symbol, signed exponentiation, integer Lagrange
//! coefficients scaled by Δ = l!.

use num_bigint::{BigInt, BigUint, Sign};
use num_integer::Integer;
use num_traits::{One, Signed, Zero};

/// The Jacobi symbol (a | n) for odd n > 0: 1, -1, or 0 when gcd(a, n) > 1.
pub fn jacobi(a: &BigUint, n: &BigUint) -> i8 {
    debug_assert!(n.is_odd());
    let mut a = a % n;
    let mut n = n.clone();
    let mut t: i8 = 1;
    while !a.is_zero() {
        let tz = a.trailing_zeros().unwrap_or(0);
        if tz > 0 {
            a >>= tz;
            let r = low_bits(&n) & 7;
            if tz % 2 == 1 && (r == 3 || r == 5) {
                t = -t;
            }
        }
        std::mem::swap(&mut a, &mut n);
        if low_bits(&a) & 3 == 3 && low_bits(&n) & 3 == 3 {
            t = -t;
        }
        a %= &n;
    }
    if n.is_one() {
        t
    } else {
        0
    }
}

fn low_bits(x: &BigUint) -> u64 {
    x.iter_u64_digits().next().unwrap_or(0)
}

/// base^exp mod n for a signed exponent; `None` if exp < 0 and base is not invertible.
pub fn pow_signed(base: &BigUint, exp: &BigInt, n: &BigUint) -> Option<BigUint> {
    let magnitude = exp.magnitude();
    if exp.sign() == Sign::Minus {
        Some(base.modinv(n)?.modpow(magnitude, n))
    } else {
        Some(base.modpow(magnitude, n))
    }
}

/// l! as a big integer.
pub fn factorial(l: u16) -> BigUint {
    (1..=u64::from(l)).fold(BigUint::one(), |acc, i| acc * i)
}

/// Integer Lagrange coefficients λ^S_{0,j} = Δ·Π_{j'≠j}(0−j') / Π_{j'≠j}(j−j') for every j in
/// `ids` (distinct, in 1..=l), in the order of `ids`. Exact: the denominator divides Δ = l!.
pub fn lagrange_at_zero(ids: &[u16], delta: &BigUint) -> Vec<BigInt> {
    let delta = BigInt::from(delta.clone());
    ids.iter()
        .map(|&j| {
            let mut num = delta.clone();
            let mut den = BigInt::one();
            for &jp in ids.iter().filter(|&&jp| jp != j) {
                num *= -i64::from(jp);
                den *= i64::from(j) - i64::from(jp);
            }
            let (q, r) = num.div_rem(&den);
            debug_assert!(
                r.is_zero(),
                "Δ-scaled Lagrange coefficient must be an integer"
            );
            q
        })
        .collect()
}

/// Integers (a, b) with a·x + b·y = 1; `None` if gcd(x, y) ≠ 1.
pub fn bezout(x: &BigInt, y: &BigInt) -> Option<(BigInt, BigInt)> {
    let g = x.extended_gcd(y);
    if g.gcd.abs().is_one() {
        // extended_gcd may return gcd = -1 for negative inputs; normalise the sign.
        if g.gcd.is_negative() {
            Some((-g.x, -g.y))
        } else {
            Some((g.x, g.y))
        }
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jacobi_small(a: u64, n: u64) -> i8 {
        jacobi(&BigUint::from(a), &BigUint::from(n))
    }

    /// Euler's criterion for an odd prime p: (a|p) ≡ a^((p−1)/2).
    #[test]
    fn jacobi_matches_euler_criterion_for_primes() {
        for p in [3u64, 5, 7, 11, 13, 101, 65537] {
            for a in 0..60u64 {
                let e = BigUint::from(a).modpow(&BigUint::from((p - 1) / 2), &BigUint::from(p));
                let expect = if e.is_zero() {
                    0
                } else if e.is_one() {
                    1
                } else {
                    -1
                };
                assert_eq!(jacobi_small(a, p), expect, "a={a} p={p}");
            }
        }
    }

    #[test]
    fn jacobi_is_multiplicative_in_the_modulus() {
        for a in 0..100u64 {
            assert_eq!(
                jacobi_small(a, 15),
                jacobi_small(a, 3) * jacobi_small(a, 5),
                "a={a}"
            );
            assert_eq!(
                jacobi_small(a, 1001),
                jacobi_small(a, 7) * jacobi_small(a, 143)
            );
        }
    }

    #[test]
    fn lagrange_interpolates_polynomials_at_zero() {
        // f(X) = 7 + 3X + 5X^2, any 3 points recover Δ·f(0).
        let f = |x: i64| 7 + 3 * x + 5 * x * x;
        let l = 7u16;
        let delta = factorial(l);
        let ids = [2u16, 5, 7];
        let lam = lagrange_at_zero(&ids, &delta);
        let sum: BigInt = ids
            .iter()
            .zip(&lam)
            .map(|(&j, lj)| lj * f(i64::from(j)))
            .sum();
        assert_eq!(sum, BigInt::from(delta) * 7);
    }

    #[test]
    fn bezout_solves_4a_plus_eb() {
        let (a, b) = bezout(&BigInt::from(4), &BigInt::from(65537)).unwrap();
        assert_eq!(a * 4 + b * 65537, BigInt::one());
        assert!(bezout(&BigInt::from(4), &BigInt::from(6)).is_none());
    }

    #[test]
    fn pow_signed_inverts() {
        let n = BigUint::from(101u32);
        let b = BigUint::from(7u32);
        let inv = pow_signed(&b, &BigInt::from(-1), &n).unwrap();
        assert_eq!((inv * &b) % &n, BigUint::one());
        assert!(pow_signed(&BigUint::zero(), &BigInt::from(-1), &n).is_none());
    }
}
