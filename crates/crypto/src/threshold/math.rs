//! Number theory for Shoup's scheme: Jacobi symbol and integer Lagrange coefficients scaled by
//! Δ = l!.

use num_bigint::{BigInt, BigUint, Sign};
use num_integer::Integer;
use num_traits::{One, Zero};

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

/// The combining exponents 2λ^S_{0,j} for `ids`, factored as g·(±μ_j) with g the gcd of all of
/// them: returns g and, in the order of `ids`, (μ_j, whether λ_j < 0).
///
/// Why: w = Π x_j^{2λ_j} = (Π x_j^{±μ_j})^g, and g is large (l = 16, k = 11: about 2^36, while
/// the λ_j reach 2^53), so exponentiating by the μ_j and folding g into the final small power
/// does about a third of the work for the same result.
pub fn combine_exponents(ids: &[u16], delta: &BigUint) -> (BigUint, Vec<(BigUint, bool)>) {
    let lambdas = lagrange_at_zero(ids, delta);
    let g = lambdas
        .iter()
        .fold(BigUint::zero(), |g, lam| g.gcd(lam.magnitude()))
        << 1u32;
    let mus = lambdas
        .iter()
        .map(|lam| {
            // λ_j ≠ 0 always, so g > 0 whenever this runs.
            let mu = (lam.magnitude() << 1u32) / &g;
            (mu, lam.sign() == Sign::Minus)
        })
        .collect();
    (g, mus)
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
    fn combine_exponents_factor_twice_lambda() {
        for (l, ids) in [
            (4u16, vec![1u16, 2, 3]),
            (7, vec![2, 5, 7]),
            (16, (3..14).collect()),
        ] {
            let delta = factorial(l);
            let lam = lagrange_at_zero(&ids, &delta);
            let (g, mus) = combine_exponents(&ids, &delta);
            let mut gcd = BigUint::zero();
            for (lj, (mu, neg)) in lam.iter().zip(&mus) {
                let signed = BigInt::from(&g * mu) * if *neg { -1 } else { 1 };
                assert_eq!(signed, lj * 2, "l={l} ids={ids:?}");
                gcd = gcd.gcd(mu);
            }
            assert!(gcd.is_one(), "g must be the full gcd");
        }
        assert!(combine_exponents(&[], &factorial(4)).1.is_empty());
    }
}
