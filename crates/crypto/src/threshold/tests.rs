//! Threshold RSA tests. The oracle: RSA is a permutation, so a correct threshold signature is
//! byte-identical to the `rsa` crate's own PKCS#1 v1.5/SHA-256 signature with the same key.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use num_bigint::BigUint;
use proptest::prelude::*;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use rsa::traits::PublicKeyParts;
use rsa::Pkcs1v15Sign;

use super::math::jacobi;
use super::*;
use crate::digest::sha256;

type Cache = Mutex<HashMap<(u64, u32, u16, u16), Arc<Dealing>>>;

/// Deterministic dealings, cached so each (seed, bits, l, k) is generated once per test binary.
fn dealing(seed: u64, bits: u32, l: u16, k: u16) -> Arc<Dealing> {
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let mut map = cache.lock().unwrap_or_else(|p| p.into_inner());
    map.entry((seed, bits, l, k))
        .or_insert_with(|| Arc::new(deal_from_seed(seed, bits, l, k).expect("deal")))
        .clone()
}

fn oracle_key(d: &Dealing) -> rsa::RsaPrivateKey {
    let conv = |x: &BigUint| rsa::BigUint::from_bytes_be(&x.to_bytes_be());
    rsa::RsaPrivateKey::from_p_q(
        conv(&d.primes.0),
        conv(&d.primes.1),
        rsa::BigUint::from(PUBLIC_EXPONENT),
    )
    .expect("oracle key from the dealer's primes")
}

fn oracle_sign(key: &rsa::RsaPrivateKey, msg: &[u8]) -> Vec<u8> {
    key.sign(Pkcs1v15Sign::new::<sha2::Sha256>(), &sha256(msg))
        .unwrap()
}

fn oracle_verify(key: &rsa::RsaPrivateKey, msg: &[u8], sig: &[u8]) -> bool {
    key.to_public_key()
        .verify(Pkcs1v15Sign::new::<sha2::Sha256>(), &sha256(msg), sig)
        .is_ok()
}

fn all_shares(d: &Dealing, msg: &[u8], rng: &mut ChaCha20Rng) -> Vec<SignatureShare> {
    d.shares
        .iter()
        .map(|s| s.sign(&d.public, msg, rng).unwrap())
        .collect()
}

fn subsets(l: u16, k: u16) -> Vec<Vec<u16>> {
    fn rec(start: u16, l: u16, k: u16, cur: &mut Vec<u16>, out: &mut Vec<Vec<u16>>) {
        if cur.len() == usize::from(k) {
            out.push(cur.clone());
            return;
        }
        for i in start..=l {
            cur.push(i);
            rec(i + 1, l, k, cur, out);
            cur.pop();
        }
    }
    let mut out = Vec::new();
    rec(1, l, k, &mut Vec::new(), &mut out);
    out
}

fn pick(shares: &[SignatureShare], ids: &[u16]) -> Vec<SignatureShare> {
    ids.iter()
        .map(|&i| shares[usize::from(i) - 1].clone())
        .collect()
}

/// Messages whose EMSA encodings have Jacobi symbol +1 and −1, so both Protocol 2 branches run.
fn messages_both_branches(d: &Dealing) -> Vec<Vec<u8>> {
    let mut plus = None;
    let mut minus = None;
    for i in 0u32.. {
        let m = format!("message {i}").into_bytes();
        let x = BigUint::from_bytes_be(&emsa_pkcs1_v15_sha256(&m, d.public.signature_len()));
        match jacobi(&x, &d.public.n) {
            1 if plus.is_none() => plus = Some(m),
            -1 if minus.is_none() => minus = Some(m),
            _ => {}
        }
        if plus.is_some() && minus.is_some() {
            break;
        }
    }
    vec![plus.unwrap(), minus.unwrap()]
}

fn check_every_subset(seed: u64, bits: u32, l: u16, k: u16) {
    let d = dealing(seed, bits, l, k);
    assert_eq!(d.public.modulus_bits(), u64::from(bits));
    let oracle = oracle_key(&d);
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    for msg in messages_both_branches(&d) {
        let expected = oracle_sign(&oracle, &msg);
        let shares = all_shares(&d, &msg, &mut rng);
        for s in &shares {
            assert_eq!(d.public.verify_share(&msg, s), Ok(()));
        }
        for ids in subsets(l, k) {
            let c = d.public.combine(&msg, &pick(&shares, &ids)).unwrap();
            assert!(c.bad_signers.is_empty());
            assert_eq!(c.signature.0, expected, "subset {ids:?}");
            assert!(oracle_verify(&oracle, &msg, &c.signature.0));
            assert!(d.public.verify(&msg, &c.signature));
        }
    }
}

#[test]
fn every_3_of_4_subset_matches_rsa_oracle() {
    check_every_subset(11, 1024, 4, 3);
}

#[test]
fn every_5_of_7_subset_matches_rsa_oracle() {
    check_every_subset(12, 1024, 7, 5);
}

#[test]
fn sampled_11_of_16_subsets_match_rsa_oracle() {
    let (l, k) = (16, 11);
    let d = dealing(13, 1024, l, k);
    let oracle = oracle_key(&d);
    let mut rng = ChaCha20Rng::seed_from_u64(13);
    let all_ids: Vec<u16> = (1..=l).collect();
    for msg in messages_both_branches(&d) {
        let expected = oracle_sign(&oracle, &msg);
        let shares = all_shares(&d, &msg, &mut rng);
        for _ in 0..12 {
            let ids: Vec<u16> = all_ids
                .choose_multiple(&mut rng, usize::from(k))
                .copied()
                .collect();
            let c = d.public.combine(&msg, &pick(&shares, &ids)).unwrap();
            assert_eq!(c.signature.0, expected, "subset {ids:?}");
        }
    }
}

#[test]
fn rsa_2048_combines_to_oracle_signature() {
    let d = dealing(14, 2048, 4, 3);
    assert_eq!(d.public.modulus_bits(), 2048);
    let oracle = oracle_key(&d);
    let mut rng = ChaCha20Rng::seed_from_u64(14);
    for msg in messages_both_branches(&d) {
        let shares = all_shares(&d, &msg, &mut rng);
        let c = d.public.combine(&msg, &shares[1..]).unwrap();
        assert_eq!(c.signature.0, oracle_sign(&oracle, &msg));
    }
}

#[test]
fn k_minus_1_shares_cannot_sign() {
    let (l, k) = (7, 5);
    let d = dealing(12, 1024, l, k);
    let mut rng = ChaCha20Rng::seed_from_u64(2);
    for msg in messages_both_branches(&d) {
        let shares = all_shares(&d, &msg, &mut rng);
        for ids in subsets(l, k - 1) {
            let sub = pick(&shares, &ids);
            assert!(matches!(
                d.public.combine(&msg, &sub),
                Err(CombineError::NotEnoughShares {
                    have: 4,
                    needed: 5,
                    ..
                })
            ));
            // Interpolating k−1 points anyway (as if the threshold were k−1) gives garbage.
            let rep = d.public.message_rep(&msg).unwrap();
            let refs: Vec<&SignatureShare> = sub.iter().collect();
            let y = d.public.interpolate(&rep, &refs).unwrap();
            let sig = ThresholdSignature(super::share::fixed_width(&y, d.public.signature_len()));
            assert!(!d.public.verify(&msg, &sig), "subset {ids:?}");
        }
    }
}

#[test]
fn duplicate_shares_do_not_count_twice() {
    let d = dealing(11, 1024, 4, 3);
    let mut rng = ChaCha20Rng::seed_from_u64(3);
    let shares = all_shares(&d, b"m", &mut rng);
    let dup = vec![shares[0].clone(), shares[0].clone(), shares[1].clone()];
    assert!(matches!(
        d.public.combine(b"m", &dup),
        Err(CombineError::NotEnoughShares { have: 2, .. })
    ));
}

#[test]
fn tampered_share_is_rejected_by_its_proof_and_named_by_the_fallback() {
    let d = dealing(12, 1024, 7, 5);
    let oracle = oracle_key(&d);
    let mut rng = ChaCha20Rng::seed_from_u64(4);
    let msg = b"tamper";
    let mut shares = all_shares(&d, msg, &mut rng);
    // Signer 2 doubles its x_i (a plausible unit that is not x^{2 s_2}).
    shares[1].x_i = (&shares[1].x_i * 2u32) % &d.public.n;
    assert_signer_2_is_bad(&d, msg, &shares, &oracle_sign(&oracle, msg));
}

/// Of `shares` (7, k = 5), signer 2's has a proof that does not verify: the bad share is
/// among the first k, so the fast path fails and the fallback names signer 2 and still signs
/// (`expected`) with the 6 good shares; with only k shares, one bad, signing is impossible and
/// the culprit is named.
fn assert_signer_2_is_bad(d: &Dealing, msg: &[u8], shares: &[SignatureShare], expected: &[u8]) {
    assert_eq!(
        d.public.verify_share(msg, &shares[1]),
        Err(ShareError::BadProof)
    );
    let c = d.public.combine(msg, shares).unwrap();
    assert_eq!(c.bad_signers, vec![2]);
    assert_eq!(c.signature.0, expected);
    assert!(c.missing_proofs.is_empty());
    assert_eq!(
        d.public.combine(msg, &shares[..5]).unwrap_err(),
        CombineError::NotEnoughShares {
            have: 4,
            needed: 5,
            bad_signers: vec![2],
            missing_proofs: vec![]
        }
    );
}

#[test]
fn negated_share_still_combines() {
    // The proof accepts −x_i (it checks x_i²); combining uses even exponents, so it is harmless.
    let d = dealing(11, 1024, 4, 3);
    let mut rng = ChaCha20Rng::seed_from_u64(5);
    let mut shares = all_shares(&d, b"neg", &mut rng);
    shares[0].x_i = &d.public.n - &shares[0].x_i;
    assert_eq!(d.public.verify_share(b"neg", &shares[0]), Ok(()));
    assert!(d
        .public
        .combine(b"neg", &shares)
        .unwrap()
        .bad_signers
        .is_empty());
}

#[test]
fn tampered_proof_values_fail() {
    let d = dealing(11, 1024, 4, 3);
    let mut rng = ChaCha20Rng::seed_from_u64(6);
    let share = all_shares(&d, b"m", &mut rng).remove(0);
    let mut c = share.clone();
    c.proof.as_mut().unwrap().c += 1u32;
    assert_eq!(d.public.verify_share(b"m", &c), Err(ShareError::BadProof));
    let mut z = share.clone();
    z.proof.as_mut().unwrap().z += 1u32;
    assert_eq!(d.public.verify_share(b"m", &z), Err(ShareError::BadProof));
    let mut who = share.clone();
    who.signer = 2;
    assert_eq!(d.public.verify_share(b"m", &who), Err(ShareError::BadProof));
}

#[test]
fn proof_for_another_message_fails() {
    let d = dealing(11, 1024, 4, 3);
    let mut rng = ChaCha20Rng::seed_from_u64(7);
    let share = d.shares[0].sign(&d.public, b"one", &mut rng).unwrap();
    assert_eq!(d.public.verify_share(b"one", &share), Ok(()));
    assert_eq!(
        d.public.verify_share(b"two", &share),
        Err(ShareError::BadProof)
    );
}

#[test]
fn out_of_range_values_are_rejected_before_exponentiation() {
    let d = dealing(11, 1024, 4, 3);
    let pk = &d.public;
    let mut rng = ChaCha20Rng::seed_from_u64(8);
    let good = all_shares(&d, b"m", &mut rng).remove(0);
    let good_proof = good.proof.clone().unwrap();
    let cases: Vec<(SignatureShare, ShareError)> = vec![
        (
            SignatureShare {
                signer: 0,
                ..good.clone()
            },
            ShareError::BadSigner(0),
        ),
        (
            SignatureShare {
                signer: 5,
                ..good.clone()
            },
            ShareError::BadSigner(5),
        ),
        (
            SignatureShare {
                x_i: BigUint::ZERO,
                ..good.clone()
            },
            ShareError::OutOfRange("x_i"),
        ),
        (
            SignatureShare {
                x_i: pk.n.clone(),
                ..good.clone()
            },
            ShareError::OutOfRange("x_i"),
        ),
        (
            SignatureShare {
                x_i: d.primes.0.clone(), // shares a factor with n
                ..good.clone()
            },
            ShareError::OutOfRange("x_i (not a unit)"),
        ),
        (
            SignatureShare {
                proof: Some(ShareProof {
                    c: BigUint::from(1u8) << 128u32,
                    z: good_proof.z.clone(),
                }),
                ..good.clone()
            },
            ShareError::OutOfRange("c"),
        ),
        (
            SignatureShare {
                proof: Some(ShareProof {
                    c: good_proof.c.clone(),
                    // A multi-megabit z would be a DoS; anything beyond L(n)+2L1+1 bits is refused.
                    z: BigUint::from(1u8) << (1024u32 + 256 + 1),
                }),
                ..good.clone()
            },
            ShareError::OutOfRange("z"),
        ),
    ];
    for (share, expected) in cases {
        assert_eq!(pk.verify_share(b"m", &share), Err(expected));
    }
}

#[test]
fn final_signature_verification_rejects_garbage() {
    let d = dealing(11, 1024, 4, 3);
    let pk = &d.public;
    let n_len = pk.signature_len();
    assert!(!pk.verify(b"m", &ThresholdSignature(vec![0; n_len])));
    assert!(!pk.verify(b"m", &ThresholdSignature(vec![0xff; n_len])));
    assert!(!pk.verify(b"m", &ThresholdSignature(vec![1; n_len - 1])));
}

#[test]
fn share_wire_encoding_roundtrips_and_checks_length() {
    let d = dealing(11, 1024, 4, 3);
    let pk = &d.public;
    let mut rng = ChaCha20Rng::seed_from_u64(9);
    for s in all_shares(&d, b"wire", &mut rng) {
        let bytes = pk.encode_share(&s);
        assert_eq!(bytes.len(), pk.share_wire_len());
        assert_eq!(pk.decode_share(&bytes).unwrap(), s);
        assert!(matches!(
            pk.decode_share(&bytes[..bytes.len() - 1]),
            Err(ShareError::BadLength { .. })
        ));
    }
    // 1024-bit: 2 + 128 + 16 + 161 bytes (cf. crypto.md §1.9: ≈ 304 B).
    assert_eq!(pk.share_wire_len(), 307);
}

#[test]
fn key_files_roundtrip() {
    let d = dealing(11, 1024, 4, 3);
    let pk = ThresholdPublicKey::from_json(&d.public.to_json()).unwrap();
    assert_eq!(pk, d.public);
    let mut rng = ChaCha20Rng::seed_from_u64(10);
    let shares: Vec<SignatureShare> = d
        .shares
        .iter()
        .map(|s| {
            KeyShare::from_json(&s.to_json(), &pk)
                .unwrap()
                .sign(&pk, b"files", &mut rng)
                .unwrap()
        })
        .collect();
    let c = pk.combine(b"files", &shares).unwrap();
    assert_eq!(c.signature.0, oracle_sign(&oracle_key(&d), b"files"));
}

#[test]
fn malformed_key_files_give_clear_errors() {
    let d = dealing(11, 1024, 4, 3);
    let json = d.public.to_json();
    let truncated = &json[..json.len() / 2];
    let err = ThresholdPublicKey::from_json(truncated).unwrap_err();
    assert!(matches!(err, KeyError::Parse(_)), "{err}");

    let mut v: serde_json::Value = serde_json::from_str(&json).unwrap();
    v["n"] = "xyz".into();
    let err = ThresholdPublicKey::from_json(&v.to_string())
        .unwrap_err()
        .to_string();
    assert!(err.contains("hex"), "{err}");

    let mut v: serde_json::Value = serde_json::from_str(&json).unwrap();
    v["k"] = 9.into();
    let err = ThresholdPublicKey::from_json(&v.to_string())
        .unwrap_err()
        .to_string();
    assert!(err.contains("field `k`"), "{err}");

    let mut v: serde_json::Value = serde_json::from_str(&json).unwrap();
    v["l"] = 3.into();
    let err = ThresholdPublicKey::from_json(&v.to_string())
        .unwrap_err()
        .to_string();
    assert!(err.contains("verification_keys"), "{err}");

    let mut v: serde_json::Value = serde_json::from_str(&json).unwrap();
    v["u"] = "4".into(); // a square: Jacobi +1
    let err = ThresholdPublicKey::from_json(&v.to_string())
        .unwrap_err()
        .to_string();
    assert!(err.contains("field `u`"), "{err}");

    let mut v: serde_json::Value = serde_json::from_str(&json).unwrap();
    v["e"] = "3".into(); // prime but not > l = 4
    let err = ThresholdPublicKey::from_json(&v.to_string())
        .unwrap_err()
        .to_string();
    assert!(err.contains("field `e`"), "{err}");

    let mut v: serde_json::Value = serde_json::from_str(&json).unwrap();
    v["format"] = "something-else".into();
    let err = ThresholdPublicKey::from_json(&v.to_string())
        .unwrap_err()
        .to_string();
    assert!(err.contains("field `format`"), "{err}");

    // Shares: wrong key, wrong id, secret that does not match its verification key.
    let other = dealing(12, 1024, 7, 5);
    let share_json = d.shares[0].to_json();
    let err = KeyShare::from_json(&share_json, &other.public)
        .unwrap_err()
        .to_string();
    assert!(err.contains("key_fingerprint"), "{err}");
    let swapped = share_json.replace("\"id\": 1", "\"id\": 2");
    let err = KeyShare::from_json(&swapped, &d.public)
        .unwrap_err()
        .to_string();
    assert!(err.contains("verification key 2"), "{err}");
    let err = KeyShare::from_json(&share_json[..40], &d.public).unwrap_err();
    assert!(matches!(err, KeyError::Parse(_)));
}

#[test]
fn shares_from_another_key_are_refused() {
    let a = dealing(11, 1024, 4, 3);
    let b = dealing(12, 1024, 7, 5);
    let mut rng = ChaCha20Rng::seed_from_u64(11);
    assert_eq!(
        a.shares[0].sign(&b.public, b"m", &mut rng).unwrap_err(),
        SignError::WrongKey
    );
}

#[test]
fn dealer_rejects_bad_parameters() {
    assert!(deal_from_seed(1, 1024, 4, 5).is_err());
    assert!(deal_from_seed(1, 1024, 4, 0).is_err());
    assert!(deal_from_seed(1, 256, 4, 3).is_err());
    assert!(deal_from_seed(1, 1023, 4, 3).is_err());
}

#[test]
fn dealing_is_deterministic_from_seed() {
    let a = deal_from_seed(99, 512, 4, 3).unwrap();
    let b = deal_from_seed(99, 512, 4, 3).unwrap();
    assert_eq!(a.public, b.public);
    assert_eq!(a.shares[2].secret, b.shares[2].secret);
    let c = deal_from_seed(100, 512, 4, 3).unwrap();
    assert_ne!(a.public, c.public);
    // The oracle agrees on the public key.
    let o = oracle_key(&a);
    assert_eq!(o.n().to_bytes_be(), a.public.n.to_bytes_be());
}

fn unproven_shares(d: &Dealing, msg: &[u8]) -> Vec<SignatureShare> {
    d.shares
        .iter()
        .map(|s| s.sign_share_unproven(&d.public, msg).unwrap())
        .collect()
}

#[test]
fn unproven_shares_combine_to_the_oracle_signature() {
    let (l, k) = (4, 3);
    let d = dealing(11, 1024, l, k);
    let oracle = oracle_key(&d);
    let mut rng = ChaCha20Rng::seed_from_u64(20);
    for msg in messages_both_branches(&d) {
        let unproven = unproven_shares(&d, &msg);
        let proven = all_shares(&d, &msg, &mut rng);
        for (u, p) in unproven.iter().zip(&proven) {
            assert!(!u.has_proof() && p.has_proof());
            assert_eq!(u, &p.clone().without_proof(), "same x_i either way");
        }
        let expected = oracle_sign(&oracle, &msg);
        for ids in subsets(l, k) {
            let c = d.public.combine(&msg, &pick(&unproven, &ids)).unwrap();
            assert!(c.bad_signers.is_empty() && c.missing_proofs.is_empty());
            assert_eq!(c.signature.0, expected, "subset {ids:?}");
        }
        // Mixed proven and unproven shares combine too.
        let mixed = vec![proven[0].clone(), unproven[2].clone(), proven[3].clone()];
        assert_eq!(
            d.public.combine(&msg, &mixed).unwrap().signature.0,
            expected
        );
    }
}

#[test]
fn proof_added_later_verifies_and_equals_the_eager_one() {
    let d = dealing(11, 1024, 4, 3);
    let rng = ChaCha20Rng::seed_from_u64(21);
    for msg in messages_both_branches(&d) {
        for key in &d.shares {
            let unproven = key.sign_share_unproven(&d.public, &msg).unwrap();
            assert_eq!(
                d.public.verify_share(&msg, &unproven),
                Err(ShareError::MissingProof)
            );
            let proven = key
                .prove_share(&d.public, &msg, &unproven, &mut rng.clone())
                .unwrap();
            assert_eq!(d.public.verify_share(&msg, &proven), Ok(()));
            // The eager path draws the same nonce from the same stream: identical proof.
            let eager = key.sign(&d.public, &msg, &mut rng.clone()).unwrap();
            assert_eq!(proven, eager);
            // A proof made for one message does not verify for another.
            assert_eq!(
                d.public.verify_share(b"other", &proven),
                Err(ShareError::BadProof)
            );
        }
    }
}

#[test]
fn prove_share_refuses_shares_that_are_not_its_own() {
    let d = dealing(11, 1024, 4, 3);
    let other = dealing(12, 1024, 7, 5);
    let mut rng = ChaCha20Rng::seed_from_u64(22);
    let s2 = d.shares[1].sign_share_unproven(&d.public, b"m").unwrap();
    let key1 = &d.shares[0];
    assert_eq!(
        key1.prove_share(&d.public, b"m", &s2, &mut rng),
        Err(SignError::NotOwnShare)
    );
    let mut s1 = key1.sign_share_unproven(&d.public, b"m").unwrap();
    assert_eq!(
        key1.prove_share(&other.public, b"m", &s1, &mut rng),
        Err(SignError::WrongKey)
    );
    s1.x_i = d.public.n.clone();
    assert_eq!(
        key1.prove_share(&d.public, b"m", &s1, &mut rng),
        Err(SignError::NotOwnShare)
    );
}

#[test]
fn corrupted_unproven_share_is_missing_a_proof_until_proven_bad() {
    let (l, k) = (7, 5);
    let d = dealing(12, 1024, l, k);
    let oracle = oracle_key(&d);
    let mut rng = ChaCha20Rng::seed_from_u64(23);
    // Both Jacobi branches: the fast path guesses the branch, the fallback knows it.
    for msg in messages_both_branches(&d) {
        let msg = &msg[..];
        let expected = oracle_sign(&oracle, msg);
        let mut unproven = unproven_shares(&d, msg);
        // Signer 2 doubles its x_i: a plausible unit that is not x^{2 s_2}.
        unproven[1].x_i = (&unproven[1].x_i * 2u32) % &d.public.n;
        assert_eq!(
            d.public.verify_share(msg, &unproven[1]),
            Err(ShareError::MissingProof)
        );

        // No proofs anywhere: the fast path fails and nobody can be blamed yet.
        let err = d.public.combine(msg, &unproven).unwrap_err();
        assert_eq!(
            err,
            CombineError::NotEnoughShares {
                have: 0,
                needed: 5,
                bad_signers: vec![],
                missing_proofs: (1..=7).collect()
            }
        );

        // Everyone else attaches a proof; signer 2's share is still unproven: the combine succeeds
        // with the others and names signer 2 as missing a proof, not as bad.
        let mut shares: Vec<SignatureShare> = unproven
            .iter()
            .zip(&d.shares)
            .map(|(s, key)| {
                if s.signer == 2 {
                    s.clone()
                } else {
                    key.prove_share(&d.public, msg, s, &mut rng).unwrap()
                }
            })
            .collect();
        let c = d.public.combine(msg, &shares).unwrap();
        assert_eq!(c.signature.0, expected);
        assert!(c.bad_signers.is_empty());
        assert_eq!(c.missing_proofs, vec![2]);
        // With only k shares, the caller learns whose proof to ask for.
        assert_eq!(
            d.public.combine(msg, &shares[..5]).unwrap_err(),
            CombineError::NotEnoughShares {
                have: 4,
                needed: 5,
                bad_signers: vec![],
                missing_proofs: vec![2]
            }
        );

        // Signer 2 now proves its corrupted share: the proof cannot verify, so it is named bad.
        shares[1] = d.shares[1]
            .prove_share(&d.public, msg, &shares[1], &mut rng)
            .unwrap();
        assert_signer_2_is_bad(&d, msg, &shares, &expected);
    }
}

#[test]
fn unproven_share_wire_encoding_roundtrips_and_is_strict() {
    let d = dealing(11, 1024, 4, 3);
    let pk = &d.public;
    let mut rng = ChaCha20Rng::seed_from_u64(24);
    // 1024-bit: 2 + 128 bytes without a proof; the proven form is unchanged (307 bytes).
    assert_eq!(pk.unproven_share_wire_len(), 130);
    assert_eq!(pk.share_wire_len(), 307);
    let unproven = d.shares[2].sign_share_unproven(pk, b"wire").unwrap();
    let proven = d.shares[2].sign(pk, b"wire", &mut rng).unwrap();
    for s in [&unproven, &proven] {
        let bytes = pk.encode_share(s);
        assert_eq!(bytes.len(), pk.encoded_share_len(s));
        assert_eq!(&pk.decode_share(&bytes).unwrap(), s);
        // One byte short or long, in either form, is refused.
        let mut long = bytes.clone();
        long.push(0);
        for bad in [&bytes[..bytes.len() - 1], &long[..]] {
            assert_eq!(
                pk.decode_share(bad),
                Err(ShareError::BadLength {
                    proven: 307,
                    unproven: 130,
                    got: bad.len()
                })
            );
        }
    }
    let bytes = pk.encode_share(&unproven);
    assert_eq!(
        pk.decode_share(&bytes[..2]).unwrap_err().to_string(),
        "encoded share has 2 bytes, expected 307 (with proof) or 130 (without)"
    );
    assert!(pk.decode_share(&[]).is_err());
    // Right length, values out of range.
    let mut zero_signer = bytes.clone();
    zero_signer[..2].copy_from_slice(&[0, 0]);
    assert_eq!(pk.decode_share(&zero_signer), Err(ShareError::BadSigner(0)));
    let mut big_x = bytes.clone();
    big_x[2..].fill(0xff);
    assert_eq!(pk.decode_share(&big_x), Err(ShareError::OutOfRange("x_i")));
    let mut zero_x = bytes.clone();
    zero_x[2..].fill(0);
    assert_eq!(pk.decode_share(&zero_x), Err(ShareError::OutOfRange("x_i")));
    // A proven encoding whose z has its top byte set exceeds L(n)+2·L1+1 bits.
    let mut big_z = pk.encode_share(&proven);
    big_z[2 + 128 + 16] = 0xff;
    assert_eq!(pk.decode_share(&big_z), Err(ShareError::OutOfRange("z")));
}

#[test]
fn bezout_coefficients_solve_4a_plus_eb() {
    use num_bigint::BigInt;
    let d = dealing(11, 1024, 4, 3);
    let pre = &d.public.pre;
    let a = -BigInt::from(pre.bezout_a_neg.clone());
    let b = BigInt::from(pre.bezout_b);
    assert_eq!(
        a * 4 + b * BigInt::from(d.public.e.clone()),
        BigInt::from(1)
    );
}

/// Both backends compute the same integers: identical shares, proofs, verdicts and signatures.
#[cfg(feature = "openssl")]
#[test]
fn openssl_and_num_bigint_backends_agree() {
    use super::arith::{ModArith, NumArith};
    use super::ossl::OsslArith;
    for (seed, bits, l, k) in [(11, 1024, 4, 3), (5, 512, 7, 5)] {
        let d = dealing(seed, bits, l, k);
        let pk = &d.public;
        let (num, ossl) = (NumArith::new(pk), OsslArith::new(pk));
        let oracle = oracle_key(&d);
        let rng = ChaCha20Rng::seed_from_u64(25);
        for msg in messages_both_branches(&d) {
            let rep = pk.message_rep(&msg).unwrap();
            let mut shares = Vec::new();
            for key in &d.shares {
                let u = key.sign_unproven_with(&num, &rep);
                assert_eq!(u, key.sign_unproven_with(&ossl, &rep));
                let p = key.sign_with(&num, pk, &rep, &mut rng.clone());
                assert_eq!(p, key.sign_with(&ossl, pk, &rep, &mut rng.clone()));
                assert_eq!(pk.verify_share_with(&num, &rep, &p), Ok(()));
                assert_eq!(pk.verify_share_with(&ossl, &rep, &p), Ok(()));
                let mut bad = p.clone();
                bad.proof.as_mut().unwrap().z += 1u32;
                assert_eq!(
                    pk.verify_share_with(&num, &rep, &bad),
                    Err(ShareError::BadProof)
                );
                assert_eq!(
                    pk.verify_share_with(&ossl, &rep, &bad),
                    Err(ShareError::BadProof)
                );
                shares.push(p);
            }
            let refs: Vec<&SignatureShare> = shares.iter().collect();
            // Every subset size, including non-quorums whose "signature" is garbage.
            for n_shares in 1..=usize::from(l) {
                let y_num = pk.interpolate_with(&num, &rep, &refs[..n_shares]).unwrap();
                let y_ossl = pk.interpolate_with(&ossl, &rep, &refs[..n_shares]).unwrap();
                assert_eq!(num.to_biguint(&y_num), ossl.to_biguint(&y_ossl));
            }
            let c_num = pk.combine_with(&num, &msg, &shares).unwrap();
            let c_ossl = pk.combine_with(&ossl, &msg, &shares).unwrap();
            assert_eq!(c_num.signature, c_ossl.signature);
            assert_eq!(c_num.signature.0, oracle_sign(&oracle, &msg));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Random messages and random k-subsets (512-bit key): the combined signature always equals
    /// the oracle's.
    #[test]
    fn random_subsets_and_messages_match_oracle(
        msg in proptest::collection::vec(any::<u8>(), 0..300),
        seed in any::<u64>(),
    ) {
        let d = dealing(5, 512, 7, 5);
        let oracle = oracle_key(&d);
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let mut ids: Vec<u16> = (1..=7).collect();
        ids.shuffle(&mut rng);
        ids.truncate(5);
        let shares: Vec<SignatureShare> = ids
            .iter()
            .map(|&i| d.shares[usize::from(i) - 1].sign(&d.public, &msg, &mut rng).unwrap())
            .collect();
        let c = d.public.combine(&msg, &shares).unwrap();
        prop_assert_eq!(c.signature.0, oracle_sign(&oracle, &msg));
    }

    /// Decoding arbitrary bytes as a share never panics.
    #[test]
    fn decode_share_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let d = dealing(5, 512, 7, 5);
        let _ = d.public.decode_share(&bytes);
    }

    /// Arbitrary bytes of exactly either valid length (and ±1) decode or fail cleanly, and
    /// whatever decodes re-encodes to the same bytes.
    #[test]
    fn decode_share_of_valid_lengths_never_panics(
        seed in any::<u64>(),
        proven in any::<bool>(),
        delta in -1i64..=1,
    ) {
        let d = dealing(5, 512, 7, 5);
        let pk = &d.public;
        let len = if proven { pk.share_wire_len() } else { pk.unproven_share_wire_len() };
        let len = (len as i64 + delta) as usize;
        let mut bytes = vec![0u8; len];
        rand::RngCore::fill_bytes(&mut ChaCha20Rng::seed_from_u64(seed), &mut bytes);
        bytes[0] = 0; // signer in range half of the time
        bytes[1] %= 14;
        match pk.decode_share(&bytes) {
            Ok(s) => {
                prop_assert_eq!(delta, 0);
                prop_assert_eq!(s.has_proof(), proven);
                prop_assert_eq!(pk.encode_share(&s), bytes);
            }
            Err(ShareError::BadLength { .. }) => prop_assert!(delta != 0),
            Err(_) => prop_assert_eq!(delta, 0),
        }
    }
}
