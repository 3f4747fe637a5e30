//! Key files (signing keys, verifying keys, threshold public keys): errors, never panics.
#![no_main]
use libfuzzer_sys::fuzz_target;
use steward_crypto::signature::{SigningKey, VerifyingKey};
use steward_crypto::threshold::ThresholdPublicKey;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = SigningKey::from_json(text);
        let _ = VerifyingKey::from_json(text);
        let _ = ThresholdPublicKey::from_json(text);
    }
});
