//! EMSA-PKCS1-v1_5 encoding with SHA-256 (RFC 8017 §9.2): the message representative every
//! signer computes, so that the combined threshold signature is a standard RSA signature.

use sha2::{Digest, Sha256};

/// DER prefix of the DigestInfo for SHA-256 (RFC 8017 §9.2, note 1).
const SHA256_DIGEST_INFO: [u8; 19] = [
    0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05,
    0x00, 0x04, 0x20,
];

/// Encode `msg` into `em_len` bytes: 0x00 0x01 FF..FF 0x00 DigestInfo(SHA-256(msg)).
/// `em_len` must be at least 62 (19 + 32 + 11), which every modulus of ≥ 512 bits satisfies.
pub fn emsa_pkcs1_v15_sha256(msg: &[u8], em_len: usize) -> Vec<u8> {
    let t_len = SHA256_DIGEST_INFO.len() + 32;
    assert!(
        em_len >= t_len + 11,
        "modulus too short for EMSA-PKCS1-v1_5"
    );
    let mut em = vec![0xffu8; em_len];
    em[0] = 0x00;
    em[1] = 0x01;
    em[em_len - t_len - 1] = 0x00;
    em[em_len - t_len..em_len - 32].copy_from_slice(&SHA256_DIGEST_INFO);
    em[em_len - 32..].copy_from_slice(&Sha256::digest(msg));
    em
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_is_rfc8017() {
        let em = emsa_pkcs1_v15_sha256(b"abc", 128);
        assert_eq!(&em[..2], &[0, 1]);
        assert!(em[2..128 - 52].iter().all(|&b| b == 0xff));
        assert_eq!(em[128 - 52], 0);
        assert_eq!(&em[128 - 51..128 - 32], &SHA256_DIGEST_INFO);
        assert_eq!(em.len(), 128);
    }
}
