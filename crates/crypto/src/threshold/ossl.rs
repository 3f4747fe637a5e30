//! The OpenSSL backend (feature `openssl`): `BN_mod_exp` for the exponentiations, with the key's
//! constants converted to `BigNum` once, when the key is built.
//!
//! OpenSSL calls here fail only when OpenSSL cannot allocate memory (inputs are reduced, n is odd
//! and at least 512 bits, inversions report failure as `None`). That is treated like a Rust
//! allocation failure: fatal, never caused by malformed input.

use std::cell::RefCell;

use num_bigint::BigUint;
use openssl::bn::{BigNum, BigNumContext, BigNumRef};

use super::arith::ModArith;
use super::keys::{KeyShare, ThresholdPublicKey};

const OOM: &str = "OpenSSL bignum allocation failed";

/// Convert a non-negative integer.
pub(crate) fn to_bn(x: &BigUint) -> BigNum {
    BigNum::from_slice(&x.to_bytes_be()).expect(OOM)
}

/// A secret exponent: OpenSSL then uses its constant-time exponentiation.
pub(crate) fn to_secret_bn(x: &BigUint) -> BigNum {
    let mut b = to_bn(x);
    b.set_const_time();
    b
}

/// A public key's constants as `BigNum`s (built once per key; shared by clones).
pub(crate) struct OsslKey {
    n: BigNum,
    e: BigNum,
    v: BigNum,
    vk_inv: Vec<BigNum>,
    u_fix: BigNum,
}

impl OsslKey {
    pub(crate) fn new(
        n: &BigUint,
        e: &BigUint,
        v: &BigUint,
        vk_inv: &[BigUint],
        u_fix: &BigUint,
    ) -> Self {
        OsslKey {
            n: to_bn(n),
            e: to_bn(e),
            v: to_bn(v),
            vk_inv: vk_inv.iter().map(to_bn).collect(),
            u_fix: to_bn(u_fix),
        }
    }
}

/// One operation's OpenSSL arithmetic: the key's cache plus a scratch context. The context is
/// behind a `RefCell` so that cached constants can be borrowed while exponentiating.
pub(crate) struct OsslArith<'a> {
    key: &'a OsslKey,
    ctx: RefCell<BigNumContext>,
}

impl<'a> OsslArith<'a> {
    pub(crate) fn new(pk: &'a ThresholdPublicKey) -> Self {
        OsslArith {
            key: &pk.ossl,
            ctx: RefCell::new(BigNumContext::new().expect(OOM)),
        }
    }

    fn op(&self, f: impl FnOnce(&mut BigNumRef, &mut BigNumContext) -> bool) -> Option<BigNum> {
        let mut r = BigNum::new().expect(OOM);
        f(&mut r, &mut self.ctx.borrow_mut()).then_some(r)
    }
}

impl ModArith for OsslArith<'_> {
    type Elem = BigNum;
    type Exp = BigNum;

    fn elem(&self, x: &BigUint) -> BigNum {
        to_bn(x)
    }
    fn to_biguint(&self, x: &BigNum) -> BigUint {
        BigUint::from_bytes_be(&x.to_vec())
    }
    fn exponent(&self, e: &BigUint, secret: bool) -> BigNum {
        if secret {
            to_secret_bn(e)
        } else {
            to_bn(e)
        }
    }
    fn pow(&self, b: &BigNum, e: &BigNum) -> BigNum {
        self.op(|r, ctx| r.mod_exp(b, e, &self.key.n, ctx).is_ok())
            .expect(OOM)
    }
    fn mul(&self, a: &BigNum, b: &BigNum) -> BigNum {
        self.op(|r, ctx| r.mod_mul(a, b, &self.key.n, ctx).is_ok())
            .expect(OOM)
    }
    fn inv(&self, a: &BigNum) -> Option<BigNum> {
        // BN_mod_inverse fails exactly when gcd(a, n) > 1 (or on allocation failure).
        self.op(|r, ctx| r.mod_inverse(a, &self.key.n, ctx).is_ok())
    }
    fn v(&self) -> &BigNum {
        &self.key.v
    }
    fn vk_inv(&self, idx: usize) -> &BigNum {
        &self.key.vk_inv[idx]
    }
    fn u_fix(&self) -> &BigNum {
        &self.key.u_fix
    }
    fn public_exponent(&self) -> &BigNum {
        &self.key.e
    }
    fn share_exponent<'k>(&self, share: &'k KeyShare) -> &'k BigNum {
        &share.two_s_bn
    }
}
