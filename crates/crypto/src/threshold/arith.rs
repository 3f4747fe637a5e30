//! Arithmetic modulo a site's n behind one small interface, so that the scheme's code (share,
//! proof, verification, combination) is written once and runs on either bignum backend:
//!
//! * [`NumArith`]: `num-bigint`, always compiled (the reference path, and the only one without
//!   the `openssl` feature);
//! * `OsslArith` (feature `openssl`, on by default): OpenSSL's `BN_mod_exp`, about 2.2× faster
//!   for the full-size exponentiations that dominate the scheme (reference/crypto.md §3.3).
//!
//! Both compute the same integers, so every output is byte-identical whichever backend runs
//! (a test checks it). Values cross the boundary as big-endian bytes.

use num_bigint::BigUint;

use super::keys::{KeyShare, ThresholdPublicKey};

/// Modular arithmetic modulo one public key's n, with that key's constants cached in the
/// backend's own representation. Elements passed in are always reduced (0 ≤ x < n).
pub(crate) trait ModArith {
    /// A residue modulo n.
    type Elem;
    /// A non-negative exponent.
    type Exp;

    /// Convert a reduced residue.
    fn elem(&self, x: &BigUint) -> Self::Elem;
    /// Convert back.
    fn to_biguint(&self, x: &Self::Elem) -> BigUint;
    /// Convert an exponent. `secret` asks for a constant-time exponentiation where the backend
    /// has one (OpenSSL does: about 7 % slower).
    fn exponent(&self, e: &BigUint, secret: bool) -> Self::Exp;
    /// b^e mod n.
    fn pow(&self, b: &Self::Elem, e: &Self::Exp) -> Self::Elem;
    /// a·b mod n.
    fn mul(&self, a: &Self::Elem, b: &Self::Elem) -> Self::Elem;
    /// a^{-1} mod n, `None` if gcd(a, n) > 1.
    fn inv(&self, a: &Self::Elem) -> Option<Self::Elem>;

    /// The verification base v.
    fn v(&self) -> &Self::Elem;
    /// v_{idx+1}^{-1} (idx is 0-based and in range).
    fn vk_inv(&self, idx: usize) -> &Self::Elem;
    /// u^{e·b−1} (see `Precomputed::u_fix`).
    fn u_fix(&self) -> &Self::Elem;
    /// The public exponent e.
    fn public_exponent(&self) -> &Self::Exp;
    /// The share's signing exponent 2·s_i (secret).
    fn share_exponent<'k>(&self, share: &'k KeyShare) -> &'k Self::Exp;
}

/// The `num-bigint` backend: the key's own values, no extra cache. With the `openssl` feature
/// only the tests use it (to check both backends agree).
#[cfg_attr(all(feature = "openssl", not(test)), allow(dead_code))]
pub(crate) struct NumArith<'a> {
    pk: &'a ThresholdPublicKey,
}

#[cfg_attr(all(feature = "openssl", not(test)), allow(dead_code))]
impl<'a> NumArith<'a> {
    pub(crate) fn new(pk: &'a ThresholdPublicKey) -> Self {
        NumArith { pk }
    }
}

impl ModArith for NumArith<'_> {
    type Elem = BigUint;
    type Exp = BigUint;

    fn elem(&self, x: &BigUint) -> BigUint {
        x.clone()
    }
    fn to_biguint(&self, x: &BigUint) -> BigUint {
        x.clone()
    }
    fn exponent(&self, e: &BigUint, _secret: bool) -> BigUint {
        e.clone()
    }
    fn pow(&self, b: &BigUint, e: &BigUint) -> BigUint {
        b.modpow(e, &self.pk.n)
    }
    fn mul(&self, a: &BigUint, b: &BigUint) -> BigUint {
        a * b % &self.pk.n
    }
    fn inv(&self, a: &BigUint) -> Option<BigUint> {
        a.modinv(&self.pk.n)
    }
    fn v(&self) -> &BigUint {
        &self.pk.v
    }
    fn vk_inv(&self, idx: usize) -> &BigUint {
        &self.pk.pre.vk_inv[idx]
    }
    fn u_fix(&self) -> &BigUint {
        &self.pk.pre.u_fix
    }
    fn public_exponent(&self) -> &BigUint {
        &self.pk.e
    }
    fn share_exponent<'k>(&self, share: &'k KeyShare) -> &'k BigUint {
        &share.two_s
    }
}

/// Run `$body` with `$a` bound to the default backend for public key `$pk`: OpenSSL when the
/// `openssl` feature is on, `num-bigint` otherwise.
macro_rules! with_arith {
    ($pk:expr, |$a:ident| $body:expr) => {{
        #[cfg(feature = "openssl")]
        let $a = &$crate::threshold::ossl::OsslArith::new($pk);
        #[cfg(not(feature = "openssl"))]
        let $a = &$crate::threshold::arith::NumArith::new($pk);
        $body
    }};
}
pub(crate) use with_arith;
