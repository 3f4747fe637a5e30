//! Serde helpers: big integers and byte strings as lowercase hex in JSON key files.

use num_bigint::BigUint;
use serde::{de::Error as _, Deserialize, Deserializer, Serializer};

/// Serialize a [`BigUint`] as a hex string.
pub fn ser_big<S: Serializer>(v: &BigUint, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&v.to_str_radix(16))
}

/// Deserialize a [`BigUint`] from a hex string.
pub fn de_big<'de, D: Deserializer<'de>>(d: D) -> Result<BigUint, D::Error> {
    let s = String::deserialize(d)?;
    parse_big_hex(&s).map_err(D::Error::custom)
}

/// Serialize a list of [`BigUint`]s as hex strings.
pub fn ser_big_vec<S: Serializer>(v: &[BigUint], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(v.iter().map(|x| x.to_str_radix(16)))
}

/// Deserialize a list of [`BigUint`]s from hex strings.
pub fn de_big_vec<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<BigUint>, D::Error> {
    let v = Vec::<String>::deserialize(d)?;
    v.iter()
        .enumerate()
        .map(|(i, s)| parse_big_hex(s).map_err(|e| D::Error::custom(format!("element {i}: {e}"))))
        .collect()
}

/// Serialize bytes as a hex string.
pub fn ser_bytes<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hex::encode(v))
}

/// Deserialize bytes from a hex string.
pub fn de_bytes<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
    let s = String::deserialize(d)?;
    hex::decode(&s).map_err(|e| D::Error::custom(format!("invalid hex: {e}")))
}

fn parse_big_hex(s: &str) -> Result<BigUint, String> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!(
            "expected a non-empty hex integer, got {:?}",
            truncate(s)
        ));
    }
    BigUint::parse_bytes(s.as_bytes(), 16).ok_or_else(|| "invalid hex integer".to_string())
}

fn truncate(s: &str) -> String {
    s.chars().take(24).collect()
}
