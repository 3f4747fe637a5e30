//! Wire compatibility: the encoding (and the signing bytes) of a fixed set of messages must stay
//! byte-for-byte what the pre-split `msg.rs` produced. [`super::fixtures::WIRE`] holds the length
//! and SHA-256 of each byte string, recorded from that code (regenerate only on a deliberate wire
//! change, with `cargo test -p steward --lib msg::wire_compat::print_fixture -- --ignored
//! --nocapture`). Bump `WIRE_VERSION` when an old encoding could decode as a different valid
//! message; a change that each side rejects in the other's form needs only the fixture (the
//! Recon_Request's `gv` field: an old one is too short, a new one has trailing bytes for an
//! old decoder), and keeps the fuzz corpus meaningful.

use std::collections::BTreeSet;
use std::sync::Arc;

use sha2::{Digest as _, Sha256};

use super::fixtures::WIRE;
use super::tests::{sample_update, samples};
use super::*;

/// [`samples`] plus one message of each kind it lacks, and fuller knowledge lists.
fn wire_samples() -> Vec<Message> {
    let proposal = |seq: u64| {
        Arc::new(Proposal {
            site: 0,
            gv: 1,
            lv: 2,
            seq,
            batch: vec![sample_update(seq)],
            tsig: vec![5; 128],
        })
    };
    let accept = |site: u16, seq: u64| {
        Arc::new(Accept {
            site,
            gv: 1,
            lv: 0,
            seq,
            digest: [site as u8; 32],
            tsig: vec![6; 128],
        })
    };
    let cert = |seq: u64| PrepareCert {
        pre_prepare: Arc::new(PrePrepare {
            server: 0,
            gv: 1,
            lv: 1,
            seq,
            batch: vec![sample_update(seq), sample_update(seq + 1)],
            sig: vec![1; 64],
        }),
        prepares: vec![
            Arc::new(Prepare {
                server: 1,
                gv: 1,
                lv: 1,
                seq,
                digest: [4; 32],
                sig: vec![2; 64],
            }),
            Arc::new(Prepare {
                server: 2,
                gv: 1,
                lv: 1,
                seq,
                digest: [4; 32],
                sig: vec![3; 64],
            }),
        ],
    };
    let ordered = |seq: u64| OrderProof {
        proposal: proposal(seq),
        accepts: vec![accept(1, seq), accept(2, seq)],
    };
    let mut all = samples();
    all.extend([
        Message::GlobalVc(Arc::new(GlobalVc {
            site: 2,
            gv: 4,
            tsig: vec![9; 128],
        })),
        Message::RequestGlobalState(Arc::new(RequestGlobalState {
            gv: 4,
            lv: 5,
            aru: 6,
        })),
        Message::LocalServerState(Arc::new(LocalServerState {
            server: 3,
            gv: 1,
            lv: 1,
            aru: 10,
            proposals: vec![proposal(11), proposal(12)],
            certs: vec![cert(13)],
            sig: vec![4; 64],
        })),
        Message::GlobalServerState(Arc::new(GlobalServerState {
            server: 2,
            gv: 1,
            aru: 10,
            ordered: vec![ordered(11)],
            proposals: vec![proposal(12)],
            certs: vec![cert(13), cert(14)],
            sig: vec![5; 64],
        })),
        Message::GlobalConstraint(Arc::new(GlobalConstraint {
            site: 1,
            gv: 1,
            aru: 10,
            ordered: vec![ordered(11), ordered(12)],
            proposals: vec![proposal(13)],
            certs: vec![cert(14)],
            tsig: vec![7; 128],
        })),
        Message::Snapshot(Arc::new(Snapshot {
            seq: 100,
            digest: [5; 32],
            state: (0..=255).collect(),
        })),
        Message::Snapshot(Arc::new(Snapshot {
            seq: 100,
            digest: [5; 32],
            state: vec![],
        })),
        Message::ProofRequest(Arc::new(ProofRequest {
            kind: SigKind::Constraint,
            seq: 3,
            content: [1; 32],
        })),
        Message::Update(Arc::new(Update {
            client: 3,
            ts: 4,
            op: Op::Get {
                key: b"key".to_vec(),
            },
            sig: vec![2; 64],
            memo: Default::default(),
        })),
    ]);
    for kind in [SigKind::Proposal, SigKind::GlobalVc, SigKind::Aru] {
        all.push(Message::PartialSig(Arc::new(PartialSig {
            server: 1,
            kind,
            gv: 2,
            lv: 3,
            seq: 4,
            content: [6; 32],
            share: vec![7; 20],
            sig: vec![8; 64],
        })));
    }
    all.push(Message::ShareRequest(Arc::new(ShareRequest {
        kind: SigKind::Accept,
        seq: 5,
        content: [9; 32],
    })));
    all.push(Message::AcceptRelay(Arc::new(AcceptRelay {
        accepts: vec![accept(1, 12), accept(3, 12)],
    })));
    all
}

/// Every byte string the fixture pins: each sample's encoding and signing bytes, and the
/// signing helpers of the signed and threshold-signed contents.
fn wire_bytes() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for (i, m) in wire_samples().iter().enumerate() {
        out.push((format!("{i:02}-{}/encode", m.kind()), m.encode()));
        out.push((format!("{i:02}-{}/signing", m.kind()), m.signing_bytes()));
        match m {
            Message::Proposal(p) => {
                out.push((format!("{i:02}-proposal/tsign"), p.signing_bytes()));
                out.push((format!("{i:02}-proposal/digest"), p.digest().to_vec()));
            }
            Message::Accept(a) => out.push((format!("{i:02}-accept/tsign"), a.signing_bytes())),
            Message::PartialSig(p) => out.push((format!("{i:02}-partial/sign"), p.signing_bytes())),
            Message::GlobalVc(v) => out.push((
                format!("{i:02}-global-vc/tsign"),
                GlobalVc::signing_bytes(v.site, v.gv),
            )),
            Message::Aru(a) => out.push((
                format!("{i:02}-aru/tsign"),
                AruMessage::signing_bytes(a.site, a.gv, a.aru),
            )),
            Message::GlobalConstraint(c) => {
                let union = GlobalConstraint::union_digest(&c.ordered, &c.proposals, &c.certs);
                out.push((format!("{i:02}-constraint/union"), union.to_vec()));
                out.push((
                    format!("{i:02}-constraint/tsign"),
                    GlobalConstraint::signing_bytes(c.site, c.gv, c.aru, &union),
                ));
            }
            _ => {}
        }
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Prints the fixture file (run with `-- --ignored --nocapture`).
#[test]
#[ignore]
fn print_fixture() {
    println!("//! Generated by `msg::wire_compat::print_fixture` from the pre-split `msg.rs`: the");
    println!("//! (name, length, SHA-256) of each byte string of `wire_compat::wire_bytes`.");
    println!();
    println!("/// (name, length, SHA-256 hex).");
    println!("pub(super) const WIRE: &[(&str, usize, &str)] = &[");
    for (name, bytes) in wire_bytes() {
        println!(
            "    ({name:?}, {}, {:?}),",
            bytes.len(),
            hex(&Sha256::digest(&bytes))
        );
    }
    println!("];");
}

/// Prints every pinned byte string in full, for diffing after a mismatch.
#[test]
#[ignore]
fn print_hex() {
    for (name, bytes) in wire_bytes() {
        println!("{name} {}", hex(&bytes));
    }
}

#[test]
fn encodings_match_the_recorded_fixture() {
    let got = wire_bytes();
    assert_eq!(got.len(), WIRE.len(), "number of pinned byte strings");
    for ((name, bytes), (want_name, want_len, want_sha)) in got.iter().zip(WIRE) {
        assert_eq!(name, want_name);
        assert_eq!(bytes.len(), *want_len, "{name}: length");
        assert_eq!(hex(&Sha256::digest(bytes)), *want_sha, "{name}: SHA-256");
    }
}

#[test]
fn the_fixture_covers_every_message_kind() {
    let kinds: BTreeSet<&str> = wire_samples().iter().map(|m| m.kind()).collect();
    assert_eq!(kinds.len(), 29, "{kinds:?}");
}

#[test]
fn wire_samples_roundtrip() {
    for m in wire_samples() {
        let bytes = m.encode();
        assert_eq!(Message::decode(&bytes).unwrap(), m, "{}", m.kind());
    }
}

/// Prints how each input of the fuzz corpus decodes (kind and SHA-256 of the re-encoding, or
/// the error), for comparing decoders across a refactoring.
#[test]
#[ignore]
fn print_corpus_outcomes() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../fuzz/corpus/steward_msg");
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    paths.sort();
    for p in paths {
        let bytes = std::fs::read(&p).unwrap();
        let outcome = match Message::decode(&bytes) {
            Ok(m) => format!("ok {} {}", m.kind(), hex(&Sha256::digest(m.encode()))),
            Err(e) => format!("err {}", e.0),
        };
        println!(
            "corpus {} {outcome}",
            p.file_name().unwrap().to_string_lossy()
        );
    }
}
