//! Public key (modulus, verification keys) and secret key shares, with validation and JSON
//! serialization. Loading is strict: every field is range-checked, so a truncated or edited file
//! yields an error naming the field instead of a key that misbehaves later.

use std::fmt;
#[cfg(feature = "openssl")]
use std::sync::Arc;

use num_bigint::BigUint;
use num_integer::Integer;
use num_traits::Zero;
use serde::{Deserialize, Serialize};

use super::arith::{with_arith, ModArith};
use super::encoding::emsa_pkcs1_v15_sha256;
use super::math::{factorial, jacobi};
#[cfg(feature = "openssl")]
use super::ossl::{to_secret_bn, OsslKey};
use super::{KeyError, SignerId, MAX_SIGNERS, MIN_MODULUS_BITS};
use crate::digest::{sha256_parts, Digest};
use crate::hexser;

const PUBLIC_FORMAT: &str = "steward-shoup-rsa-p2-public/v1";
const SHARE_FORMAT: &str = "steward-shoup-rsa-p2-share/v1";

/// A site's threshold public key: the RSA key (n, e) plus what verifying shares needs
/// (v, v_1..v_l), the Protocol 2 Jacobi fixer u, and the parameters l (signers) and k (quorum).
#[derive(Clone)]
pub struct ThresholdPublicKey {
    pub(crate) n: BigUint,
    pub(crate) e: BigUint,
    pub(crate) v: BigUint,
    pub(crate) vks: Vec<BigUint>,
    pub(crate) u: BigUint,
    pub(crate) l: u16,
    pub(crate) k: u16,
    pub(crate) pre: Precomputed,
    /// The constants above as OpenSSL numbers, converted once (shared by clones).
    #[cfg(feature = "openssl")]
    pub(crate) ossl: Arc<OsslKey>,
}

/// Values derived once per key so that signing, verifying and combining do not redo them.
#[derive(Clone)]
pub(crate) struct Precomputed {
    /// Byte length of n (the signature and EMSA length).
    pub n_len: usize,
    /// Bit length of n, L(n).
    pub n_bits: u64,
    /// SHA-256 over every public value: binds shares and proofs to this key.
    pub fingerprint: Digest,
    /// u^e mod n (Protocol 2 multiplies x̂ by it when (x̂|n) = −1).
    pub u_pow_e: BigUint,
    /// u^{e·b−1} mod n: the factor that turns x̂^b into x^b·u^{-1} when x = x̂·u^e, so that
    /// combining can finish from x̂ alone (see `combine.rs`).
    // Read by the num-bigint backend only (just the tests, with the `openssl` feature).
    #[cfg_attr(all(feature = "openssl", not(test)), allow(dead_code))]
    pub u_fix: BigUint,
    /// v_i^{-1} mod n, for proof verification.
    // Read by the num-bigint backend only (just the tests, with the `openssl` feature).
    #[cfg_attr(all(feature = "openssl", not(test)), allow(dead_code))]
    pub vk_inv: Vec<BigUint>,
    /// Δ = l!.
    pub delta: BigUint,
    /// Bezout coefficients for e' = 4: 4a + e·b = 1 with a = −`bezout_a_neg` < 0 and
    /// b = `bezout_b` ∈ {1, 3}. Choosing b > 0 makes a < 0 for every odd e, so combining needs
    /// exactly one modular inversion and no branch on signs.
    pub bezout_a_neg: BigUint,
    /// See `bezout_a_neg`.
    pub bezout_b: u8,
}

/// One server's secret share s_i of a site's threshold key.
#[derive(Clone)]
pub struct KeyShare {
    pub(crate) id: SignerId,
    pub(crate) secret: BigUint,
    /// The signing exponent 2·s_i, computed once.
    // Read by the num-bigint backend only (just the tests, with the `openssl` feature).
    #[cfg_attr(all(feature = "openssl", not(test)), allow(dead_code))]
    pub(crate) two_s: BigUint,
    /// 2·s_i as an OpenSSL number flagged constant-time (it is secret).
    #[cfg(feature = "openssl")]
    pub(crate) two_s_bn: Arc<openssl::bn::BigNum>,
    pub(crate) key_fingerprint: Digest,
}

/// The message representative: x̂ = EMSA(msg) and x ∈ J_n that shares are computed on.
pub(crate) struct MessageRep {
    pub x_hat: BigUint,
    pub x: BigUint,
    pub used_u: bool,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PublicKeyFile {
    format: String,
    l: u16,
    k: u16,
    #[serde(
        serialize_with = "hexser::ser_big",
        deserialize_with = "hexser::de_big"
    )]
    n: BigUint,
    #[serde(
        serialize_with = "hexser::ser_big",
        deserialize_with = "hexser::de_big"
    )]
    e: BigUint,
    #[serde(
        serialize_with = "hexser::ser_big",
        deserialize_with = "hexser::de_big"
    )]
    v: BigUint,
    #[serde(
        serialize_with = "hexser::ser_big",
        deserialize_with = "hexser::de_big"
    )]
    u: BigUint,
    #[serde(
        serialize_with = "hexser::ser_big_vec",
        deserialize_with = "hexser::de_big_vec"
    )]
    verification_keys: Vec<BigUint>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyShareFile {
    format: String,
    id: SignerId,
    #[serde(
        serialize_with = "hexser::ser_bytes",
        deserialize_with = "hexser::de_bytes"
    )]
    key_fingerprint: Vec<u8>,
    #[serde(
        serialize_with = "hexser::ser_big",
        deserialize_with = "hexser::de_big"
    )]
    secret: BigUint,
}

fn invalid(field: &str, reason: impl Into<String>) -> KeyError {
    KeyError::Invalid {
        field: field.to_string(),
        reason: reason.into(),
    }
}

fn is_small_prime(e: &BigUint) -> bool {
    let Some(e) = e
        .to_u64_digits()
        .first()
        .copied()
        .filter(|_| e.bits() <= 32)
    else {
        return false;
    };
    e >= 2 && (2..).take_while(|d| d * d <= e).all(|d| e % d != 0)
}

impl ThresholdPublicKey {
    /// Build and validate a public key from its parts; `vks[i-1]` is signer i's verification key.
    pub fn new(
        n: BigUint,
        e: BigUint,
        v: BigUint,
        vks: Vec<BigUint>,
        u: BigUint,
        k: u16,
    ) -> Result<Self, KeyError> {
        let l = u16::try_from(vks.len())
            .ok()
            .filter(|&l| (1..=MAX_SIGNERS).contains(&l))
            .ok_or_else(|| {
                invalid(
                    "verification_keys",
                    format!("need 1..={MAX_SIGNERS} keys, got {}", vks.len()),
                )
            })?;
        if k == 0 || k > l {
            return Err(invalid("k", format!("must be in 1..={l} (l), got {k}")));
        }
        if n.is_even() || n.bits() < MIN_MODULUS_BITS {
            return Err(invalid(
                "n",
                format!(
                    "must be an odd modulus of at least {MIN_MODULUS_BITS} bits, got {} bits",
                    n.bits()
                ),
            ));
        }
        if !is_small_prime(&e) || e <= BigUint::from(l) || e.is_even() {
            return Err(invalid(
                "e",
                format!("must be an odd prime > l = {l} (below 2^32), got {e}"),
            ));
        }
        let unit = |field: &str, x: &BigUint| -> Result<BigUint, KeyError> {
            if x.is_zero() || x >= &n {
                return Err(invalid(field, "must be in 1..n-1"));
            }
            x.modinv(&n)
                .ok_or_else(|| invalid(field, "is not invertible mod n"))
        };
        unit("v", &v)?;
        let vk_inv = vks
            .iter()
            .enumerate()
            .map(|(i, vk)| unit(&format!("verification_keys[{i}]"), vk))
            .collect::<Result<Vec<_>, _>>()?;
        let u_inv = unit("u", &u)?;
        if jacobi(&u, &n) != -1 {
            return Err(invalid("u", "must have Jacobi symbol -1 modulo n"));
        }
        // e is an odd prime, so e·b ≡ 1 (mod 4) for b = 1 (e ≡ 1) or b = 3 (e ≡ 3).
        let bezout_b: u8 = if e.bit(1) { 3 } else { 1 };
        let bezout_a_neg = (&e * bezout_b - 1u8) >> 2u32;
        let n_len = n.bits().div_ceil(8) as usize;
        let mut parts: Vec<Vec<u8>> = vec![
            b"steward/shoup-p2/key/v1".to_vec(),
            l.to_be_bytes().to_vec(),
            k.to_be_bytes().to_vec(),
            n.to_bytes_be(),
            e.to_bytes_be(),
            v.to_bytes_be(),
            u.to_bytes_be(),
        ];
        parts.extend(vks.iter().map(|x| x.to_bytes_be()));
        let fingerprint = sha256_parts(&parts.iter().map(Vec::as_slice).collect::<Vec<_>>());
        let u_pow_e = u.modpow(&e, &n);
        let u_fix = u_pow_e.modpow(&BigUint::from(bezout_b), &n) * u_inv % &n;
        #[cfg(feature = "openssl")]
        let ossl = Arc::new(OsslKey::new(&n, &e, &v, &vk_inv, &u_fix));
        let pre = Precomputed {
            n_len,
            n_bits: n.bits(),
            fingerprint,
            u_pow_e,
            u_fix,
            vk_inv,
            delta: factorial(l),
            bezout_a_neg,
            bezout_b,
        };
        Ok(Self {
            n,
            e,
            v,
            vks,
            u,
            l,
            k,
            pre,
            #[cfg(feature = "openssl")]
            ossl,
        })
    }

    /// Number of signers l.
    pub fn signers(&self) -> u16 {
        self.l
    }

    /// Shares needed to sign, k.
    pub fn quorum(&self) -> u16 {
        self.k
    }

    /// Modulus size in bits.
    pub fn modulus_bits(&self) -> u64 {
        self.pre.n_bits
    }

    /// Byte length of a combined signature (= byte length of n).
    pub fn signature_len(&self) -> usize {
        self.pre.n_len
    }

    /// SHA-256 over all public values; identifies this key.
    pub fn fingerprint(&self) -> Digest {
        self.pre.fingerprint
    }

    /// The plain RSA public key (n, e) as big-endian bytes, for standard verifiers.
    pub fn rsa_components(&self) -> (Vec<u8>, Vec<u8>) {
        (self.n.to_bytes_be(), self.e.to_bytes_be())
    }

    /// Serialize to the JSON key-file format.
    pub fn to_json(&self) -> String {
        let file = PublicKeyFile {
            format: PUBLIC_FORMAT.to_string(),
            l: self.l,
            k: self.k,
            n: self.n.clone(),
            e: self.e.clone(),
            v: self.v.clone(),
            u: self.u.clone(),
            verification_keys: self.vks.clone(),
        };
        serde_json::to_string_pretty(&file).expect("serializing a public key cannot fail")
    }

    /// Parse and validate the JSON key-file format.
    pub fn from_json(text: &str) -> Result<Self, KeyError> {
        let file: PublicKeyFile =
            serde_json::from_str(text).map_err(|e| KeyError::Parse(e.to_string()))?;
        if file.format != PUBLIC_FORMAT {
            return Err(invalid(
                "format",
                format!("expected {PUBLIC_FORMAT:?}, got {:?}", file.format),
            ));
        }
        if usize::from(file.l) != file.verification_keys.len() {
            return Err(invalid(
                "verification_keys",
                format!(
                    "l = {} but {} keys are listed",
                    file.l,
                    file.verification_keys.len()
                ),
            ));
        }
        Self::new(
            file.n,
            file.e,
            file.v,
            file.verification_keys,
            file.u,
            file.k,
        )
    }

    pub(crate) fn check_signer(&self, id: SignerId) -> bool {
        (1..=self.l).contains(&id)
    }

    /// x̂ = EMSA-PKCS1-v1_5(SHA-256(msg)) as an integer.
    pub(crate) fn message_hat(&self, msg: &[u8]) -> BigUint {
        BigUint::from_bytes_be(&emsa_pkcs1_v15_sha256(msg, self.pre.n_len))
    }

    /// (x̂|n), the Jacobi symbol that decides whether signers use u (for the benchmarks).
    #[doc(hidden)]
    pub fn message_jacobi(&self, msg: &[u8]) -> i8 {
        jacobi(&self.message_hat(msg), &self.n)
    }

    /// x̂ and x = x̂·u^e if (x̂|n) = −1, so that x ∈ J_n.
    pub(crate) fn message_rep(&self, msg: &[u8]) -> Result<MessageRep, super::SignError> {
        let x_hat = self.message_hat(msg);
        match jacobi(&x_hat, &self.n) {
            1 => Ok(MessageRep {
                x: x_hat.clone(),
                x_hat,
                used_u: false,
            }),
            -1 => Ok(MessageRep {
                x: (&x_hat * &self.pre.u_pow_e) % &self.n,
                x_hat,
                used_u: true,
            }),
            // gcd(x̂, n) > 1 would factor n: cannot happen for a well-formed key.
            _ => Err(super::SignError::DegenerateMessage),
        }
    }
}

impl fmt::Debug for ThresholdPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ThresholdPublicKey {{ bits: {}, l: {}, k: {}, fingerprint: {} }}",
            self.pre.n_bits,
            self.l,
            self.k,
            hex::encode(&self.pre.fingerprint[..8])
        )
    }
}

impl PartialEq for ThresholdPublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.pre.fingerprint == other.pre.fingerprint
    }
}
impl Eq for ThresholdPublicKey {}

impl KeyShare {
    /// Assemble a share and precompute its signing exponent.
    pub(crate) fn from_parts(id: SignerId, secret: BigUint, key_fingerprint: Digest) -> Self {
        let two_s = &secret << 1u32;
        KeyShare {
            id,
            #[cfg(feature = "openssl")]
            two_s_bn: Arc::new(to_secret_bn(&two_s)),
            two_s,
            secret,
            key_fingerprint,
        }
    }

    /// This share's signer index, 1..=l.
    pub fn id(&self) -> SignerId {
        self.id
    }

    /// Fingerprint of the public key this share belongs to.
    pub fn key_fingerprint(&self) -> Digest {
        self.key_fingerprint
    }

    /// Serialize to the JSON share-file format (secret material: store with 0600 permissions).
    pub fn to_json(&self) -> String {
        let file = KeyShareFile {
            format: SHARE_FORMAT.to_string(),
            id: self.id,
            key_fingerprint: self.key_fingerprint.to_vec(),
            secret: self.secret.clone(),
        };
        serde_json::to_string_pretty(&file).expect("serializing a key share cannot fail")
    }

    /// Parse the JSON share-file format and check it against `public`.
    pub fn from_json(text: &str, public: &ThresholdPublicKey) -> Result<Self, KeyError> {
        let file: KeyShareFile =
            serde_json::from_str(text).map_err(|e| KeyError::Parse(e.to_string()))?;
        if file.format != SHARE_FORMAT {
            return Err(invalid(
                "format",
                format!("expected {SHARE_FORMAT:?}, got {:?}", file.format),
            ));
        }
        if file.key_fingerprint != public.pre.fingerprint {
            return Err(invalid(
                "key_fingerprint",
                "this share belongs to a different site key",
            ));
        }
        if !public.check_signer(file.id) {
            return Err(invalid(
                "id",
                format!("must be in 1..={}, got {}", public.l, file.id),
            ));
        }
        if file.secret.is_zero() || file.secret >= public.n {
            return Err(invalid("secret", "out of range"));
        }
        let share = KeyShare::from_parts(file.id, file.secret, public.pre.fingerprint);
        // The share must match its published verification key: v^{s_i} = v_i.
        let v_s = with_arith!(public, |a| {
            a.to_biguint(&a.pow(a.v(), &a.exponent(&share.secret, true)))
        });
        if v_s != public.vks[usize::from(file.id) - 1] {
            return Err(invalid(
                "secret",
                format!("does not match verification key {}", file.id),
            ));
        }
        Ok(share)
    }
}

impl fmt::Debug for KeyShare {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the secret.
        write!(f, "KeyShare {{ id: {} }}", self.id)
    }
}
