//! Per-message signatures behind one interface: Ed25519 (the fast default) and RSA PKCS#1
//! v1.5/SHA-256 (1024-bit is the paper's profile). Keys serialize to small JSON documents.

use std::fmt;
use std::str::FromStr;

use ed25519_dalek::Signer as _;
use rand_core::CryptoRngCore;
use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use rsa::traits::PublicKeyParts;
use rsa::Pkcs1v15Sign;
use serde::{Deserialize, Serialize};

use crate::digest::sha256;
use crate::hexser;

/// Which per-message signature scheme a deployment uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// Ed25519 (RFC 8032), strict verification.
    Ed25519,
    /// RSA PKCS#1 v1.5 with SHA-256 and a modulus of `bits` bits.
    Rsa {
        /// Modulus size.
        bits: u32,
    },
}

impl Scheme {
    /// The paper's profile: RSA-1024.
    pub const RSA1024: Scheme = Scheme::Rsa { bits: 1024 };

    /// Length in bytes of every signature of this scheme.
    pub fn signature_len(self) -> usize {
        match self {
            Scheme::Ed25519 => ed25519_dalek::SIGNATURE_LENGTH,
            Scheme::Rsa { bits } => (bits as usize).div_ceil(8),
        }
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scheme::Ed25519 => f.write_str("ed25519"),
            Scheme::Rsa { bits } => write!(f, "rsa{bits}"),
        }
    }
}

impl FromStr for Scheme {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "ed25519" => Ok(Scheme::Ed25519),
            "rsa1024" => Ok(Scheme::Rsa { bits: 1024 }),
            "rsa2048" => Ok(Scheme::Rsa { bits: 2048 }),
            "rsa3072" => Ok(Scheme::Rsa { bits: 3072 }),
            other => Err(format!(
                "unknown signature scheme {other:?} (expected ed25519, rsa1024, rsa2048 or rsa3072)"
            )),
        }
    }
}

impl Serialize for Scheme {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Scheme {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// A signature did not verify, or a key could not be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignatureError {
    /// Wrong length for the scheme.
    #[error("signature has {got} bytes, expected {expected}")]
    BadLength {
        /// Expected.
        expected: usize,
        /// Received.
        got: usize,
    },
    /// The signature does not verify under this key.
    #[error("signature does not verify")]
    Invalid,
}

/// A key file could not be read.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct KeyFileError(String);

/// Something that signs messages.
pub trait MessageSigner: Send + Sync {
    /// The scheme.
    fn scheme(&self) -> Scheme;
    /// Sign `msg` (the scheme hashes it).
    fn sign(&self, msg: &[u8]) -> Vec<u8>;
    /// The matching public key.
    fn verifying_key(&self) -> VerifyingKey;
}

/// Something that verifies signatures.
pub trait MessageVerifier: Send + Sync {
    /// The scheme.
    fn scheme(&self) -> Scheme;
    /// Check `sig` on `msg`.
    fn verify(&self, msg: &[u8], sig: &[u8]) -> Result<(), SignatureError>;
}

/// A private signing key of either scheme.
#[derive(Clone)]
pub enum SigningKey {
    /// Ed25519.
    Ed25519(Box<ed25519_dalek::SigningKey>),
    /// RSA.
    Rsa(Box<rsa::RsaPrivateKey>),
}

/// A public verifying key of either scheme.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VerifyingKey {
    /// Ed25519.
    Ed25519(ed25519_dalek::VerifyingKey),
    /// RSA.
    Rsa(Box<rsa::RsaPublicKey>),
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFile {
    scheme: Scheme,
    /// Ed25519: the 32-byte key. RSA: PKCS#8 (private) or SPKI (public) DER.
    #[serde(
        serialize_with = "hexser::ser_bytes",
        deserialize_with = "hexser::de_bytes"
    )]
    der_or_raw: Vec<u8>,
}

impl SigningKey {
    /// Generate a fresh key.
    pub fn generate(scheme: Scheme, rng: &mut impl CryptoRngCore) -> Result<Self, KeyFileError> {
        match scheme {
            Scheme::Ed25519 => Ok(SigningKey::Ed25519(Box::new(
                ed25519_dalek::SigningKey::generate(rng),
            ))),
            Scheme::Rsa { bits } => rsa::RsaPrivateKey::new(rng, bits as usize)
                .map(|k| SigningKey::Rsa(Box::new(k)))
                .map_err(|e| KeyFileError(format!("RSA-{bits} key generation failed: {e}"))),
        }
    }

    /// Serialize to JSON (secret: store with 0600 permissions).
    pub fn to_json(&self) -> String {
        let (scheme, der_or_raw) = match self {
            SigningKey::Ed25519(k) => (Scheme::Ed25519, k.to_bytes().to_vec()),
            SigningKey::Rsa(k) => (
                self.scheme(),
                k.to_pkcs8_der()
                    .expect("PKCS#8 encoding of a valid RSA key")
                    .as_bytes()
                    .to_vec(),
            ),
        };
        serde_json::to_string_pretty(&KeyFile { scheme, der_or_raw }).expect("key serializes")
    }

    /// Parse [`Self::to_json`]'s output.
    pub fn from_json(text: &str) -> Result<Self, KeyFileError> {
        let f: KeyFile = serde_json::from_str(text)
            .map_err(|e| KeyFileError(format!("malformed signing key: {e}")))?;
        match f.scheme {
            Scheme::Ed25519 => {
                let raw: [u8; 32] = f.der_or_raw.as_slice().try_into().map_err(|_| {
                    KeyFileError(format!(
                        "ed25519 secret key must be 32 bytes, got {}",
                        f.der_or_raw.len()
                    ))
                })?;
                Ok(SigningKey::Ed25519(Box::new(
                    ed25519_dalek::SigningKey::from_bytes(&raw),
                )))
            }
            Scheme::Rsa { bits } => {
                let k = rsa::RsaPrivateKey::from_pkcs8_der(&f.der_or_raw)
                    .map_err(|e| KeyFileError(format!("bad RSA PKCS#8 key: {e}")))?;
                check_rsa_bits(k.size(), bits)?;
                Ok(SigningKey::Rsa(Box::new(k)))
            }
        }
    }
}

fn check_rsa_bits(size_bytes: usize, bits: u32) -> Result<(), KeyFileError> {
    if size_bytes * 8 != bits as usize {
        return Err(KeyFileError(format!(
            "scheme says rsa{bits} but the key has {} bits",
            size_bytes * 8
        )));
    }
    Ok(())
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SigningKey({})", self.scheme())
    }
}

impl MessageSigner for SigningKey {
    fn scheme(&self) -> Scheme {
        match self {
            SigningKey::Ed25519(_) => Scheme::Ed25519,
            SigningKey::Rsa(k) => Scheme::Rsa {
                bits: (k.size() * 8) as u32,
            },
        }
    }

    fn sign(&self, msg: &[u8]) -> Vec<u8> {
        match self {
            SigningKey::Ed25519(k) => k.sign(msg).to_bytes().to_vec(),
            SigningKey::Rsa(k) => k
                .sign(Pkcs1v15Sign::new::<sha2::Sha256>(), &sha256(msg))
                .expect("PKCS#1 v1.5 signing with a valid key and a 32-byte digest"),
        }
    }

    fn verifying_key(&self) -> VerifyingKey {
        match self {
            SigningKey::Ed25519(k) => VerifyingKey::Ed25519(k.verifying_key()),
            SigningKey::Rsa(k) => VerifyingKey::Rsa(Box::new(k.to_public_key())),
        }
    }
}

impl VerifyingKey {
    /// Serialize to JSON.
    pub fn to_json(&self) -> String {
        let der_or_raw = match self {
            VerifyingKey::Ed25519(k) => k.to_bytes().to_vec(),
            VerifyingKey::Rsa(k) => k
                .to_public_key_der()
                .expect("SPKI encoding of a valid RSA key")
                .as_bytes()
                .to_vec(),
        };
        serde_json::to_string_pretty(&KeyFile {
            scheme: self.scheme(),
            der_or_raw,
        })
        .expect("key serializes")
    }

    /// Parse [`Self::to_json`]'s output.
    pub fn from_json(text: &str) -> Result<Self, KeyFileError> {
        let f: KeyFile = serde_json::from_str(text)
            .map_err(|e| KeyFileError(format!("malformed public key: {e}")))?;
        match f.scheme {
            Scheme::Ed25519 => {
                let raw: [u8; 32] = f.der_or_raw.as_slice().try_into().map_err(|_| {
                    KeyFileError(format!(
                        "ed25519 public key must be 32 bytes, got {}",
                        f.der_or_raw.len()
                    ))
                })?;
                ed25519_dalek::VerifyingKey::from_bytes(&raw)
                    .map(VerifyingKey::Ed25519)
                    .map_err(|e| KeyFileError(format!("bad ed25519 public key: {e}")))
            }
            Scheme::Rsa { bits } => {
                let k = rsa::RsaPublicKey::from_public_key_der(&f.der_or_raw)
                    .map_err(|e| KeyFileError(format!("bad RSA public key: {e}")))?;
                check_rsa_bits(k.size(), bits)?;
                Ok(VerifyingKey::Rsa(Box::new(k)))
            }
        }
    }
}

impl MessageVerifier for VerifyingKey {
    fn scheme(&self) -> Scheme {
        match self {
            VerifyingKey::Ed25519(_) => Scheme::Ed25519,
            VerifyingKey::Rsa(k) => Scheme::Rsa {
                bits: (k.size() * 8) as u32,
            },
        }
    }

    fn verify(&self, msg: &[u8], sig: &[u8]) -> Result<(), SignatureError> {
        let expected = self.scheme().signature_len();
        if sig.len() != expected {
            return Err(SignatureError::BadLength {
                expected,
                got: sig.len(),
            });
        }
        match self {
            VerifyingKey::Ed25519(k) => {
                let s = ed25519_dalek::Signature::from_slice(sig)
                    .map_err(|_| SignatureError::Invalid)?;
                // Strict: signatures are kept as proofs, so they must not be malleable.
                k.verify_strict(msg, &s)
                    .map_err(|_| SignatureError::Invalid)
            }
            VerifyingKey::Rsa(k) => k
                .verify(Pkcs1v15Sign::new::<sha2::Sha256>(), &sha256(msg), sig)
                .map_err(|_| SignatureError::Invalid),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    fn schemes() -> [Scheme; 2] {
        [Scheme::Ed25519, Scheme::RSA1024]
    }

    #[test]
    fn sign_verify_roundtrip_and_tamper() {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        for scheme in schemes() {
            let sk = SigningKey::generate(scheme, &mut rng).unwrap();
            let vk = sk.verifying_key();
            let sig = sk.sign(b"hello");
            assert_eq!(sig.len(), scheme.signature_len());
            assert_eq!(vk.verify(b"hello", &sig), Ok(()), "{scheme}");
            assert_eq!(vk.verify(b"hellp", &sig), Err(SignatureError::Invalid));
            let mut bad = sig.clone();
            bad[5] ^= 1;
            assert_eq!(vk.verify(b"hello", &bad), Err(SignatureError::Invalid));
            assert!(matches!(
                vk.verify(b"hello", &sig[1..]),
                Err(SignatureError::BadLength { .. })
            ));
            // A different key rejects.
            let other = SigningKey::generate(scheme, &mut rng)
                .unwrap()
                .verifying_key();
            assert_eq!(other.verify(b"hello", &sig), Err(SignatureError::Invalid));
        }
    }

    #[test]
    fn keys_serialize_roundtrip() {
        let mut rng = ChaCha20Rng::seed_from_u64(2);
        for scheme in schemes() {
            let sk = SigningKey::generate(scheme, &mut rng).unwrap();
            let sk2 = SigningKey::from_json(&sk.to_json()).unwrap();
            let vk2 = VerifyingKey::from_json(&sk.verifying_key().to_json()).unwrap();
            assert_eq!(vk2, sk.verifying_key());
            assert_eq!(vk2.verify(b"m", &sk2.sign(b"m")), Ok(()));
        }
    }

    #[test]
    fn malformed_key_files_are_rejected_with_a_reason() {
        let err = SigningKey::from_json("{\"scheme\":\"ed25519\",\"der_or_raw\":\"00\"}")
            .unwrap_err()
            .to_string();
        assert!(err.contains("32 bytes"), "{err}");
        let err = VerifyingKey::from_json("{\"scheme\":\"rsa9\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("malformed public key"), "{err}");
        let err = SigningKey::from_json("{\"scheme\":\"rsa1024\",\"der_or_raw\":\"3003\"}")
            .unwrap_err()
            .to_string();
        assert!(err.contains("PKCS#8"), "{err}");
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let sk = SigningKey::generate(Scheme::RSA1024, &mut rng).unwrap();
        let lie = sk.to_json().replace("rsa1024", "rsa2048");
        let err = SigningKey::from_json(&lie).unwrap_err().to_string();
        assert!(err.contains("1024 bits"), "{err}");
    }

    #[test]
    fn rfc8032_test_vector_1() {
        // RFC 8032 §7.1, TEST 1 (empty message).
        let secret =
            hex::decode("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
                .unwrap();
        let sk = SigningKey::Ed25519(Box::new(ed25519_dalek::SigningKey::from_bytes(
            &secret.try_into().unwrap(),
        )));
        let expected = "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155\
                        5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b";
        assert_eq!(hex::encode(sk.sign(b"")), expected);
        match sk.verifying_key() {
            VerifyingKey::Ed25519(k) => assert_eq!(
                hex::encode(k.to_bytes()),
                "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
            ),
            VerifyingKey::Rsa(_) => unreachable!(),
        }
    }

    #[test]
    fn scheme_parses_and_prints() {
        for s in ["ed25519", "rsa1024", "rsa2048", "rsa3072"] {
            assert_eq!(s.parse::<Scheme>().unwrap().to_string(), s);
        }
        assert!("rsa512".parse::<Scheme>().is_err());
    }
}
