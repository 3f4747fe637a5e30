//! Designated signers (replica/designated.rs): 2f+1 shares per site and slot when everybody
//! is correct, and the excused servers step in, promptly, when a designated one fails.

use std::time::Duration;

use bft_core::crypto::CryptoOp;
use bft_harness::testing::{assert_ok, run, shipped_topology};
use bft_harness::RunReport;
use steward_config::{ServerId, Topology};

use super::*;
use crate::replica::designated;

pub(super) fn topology() -> Topology {
    shipped_topology("local-symmetric-10mbps.toml")
}

/// The run kept at least 95% of the reference run's updates.
fn assert_keeps_95(r: &RunReport, reference: &RunReport, seed: u64, against: &str) {
    assert!(
        r.updates * 100 >= reference.updates * 95,
        "seed {seed}: {} updates against {} {against}",
        r.updates,
        reference.updates
    );
}

/// Threshold shares a server signed so far.
pub(super) fn shares(w: &World, s: ServerId) -> u64 {
    w.replica(s)
        .unwrap()
        .crypto_counters()
        .get(CryptoOp::ShareSign)
}

#[test]
fn only_the_designated_servers_share_when_all_are_correct() {
    let seed = 61;
    let topo = topology();
    let (w, r) = run(WorldConfig::new(topo.clone(), 5, seed), 10);
    assert_ok(&r, seed, "fault-free");
    assert!(r.updates > 300, "seed {seed}: {} updates", r.updates);
    for site in &topo.sites {
        // Representative 0: servers 0, 1 and 2 are designated, server 3 is excused.
        let excused = ServerId::new(site.id, 3);
        let rp = w.replica(excused).unwrap();
        assert!(
            rp.stats().shares_withheld > 0,
            "seed {seed}: {excused} withheld nothing"
        );
        let signed: Vec<u64> = (0..4)
            .map(|i| shares(&w, ServerId::new(site.id, i)))
            .collect();
        assert!(
            signed[3] * 100 <= signed[0],
            "seed {seed}: site {}: excused server signed {} shares against {}",
            site.id,
            signed[3],
            signed[0]
        );
        let rep = w.replica(ServerId::new(site.id, 0)).unwrap();
        assert!(
            rep.stats().shares_requested * 100 <= signed[0],
            "seed {seed}: site {}: {} shares asked for",
            site.id,
            rep.stats().shares_requested
        );
    }
}

/// A designated signer of every site crashes: each representative asks its excused server,
/// which then shares at once for a span of slots, renewed every half span while combines
/// lack the crashed signer's share, so the run keeps nearly all the throughput
/// that every server sharing at once keeps under the same crash (the crash itself costs
/// about a tenth: the clients of the crashed servers wait for their retransmission), and the
/// requests number about one per half span.
#[test]
fn a_crashed_designated_signer_costs_one_backup_then_renewals() {
    let seed = 62;
    let topo = topology();
    let crashed = |cfg: &mut WorldConfig| {
        cfg.byzantine = topo
            .sites
            .iter()
            .map(|s| {
                (
                    ServerId::new(s.id, 1),
                    Byzantine::CrashAt(Duration::from_secs(3)),
                )
            })
            .collect();
    };
    let mut reference = WorldConfig::new(topo.clone(), 5, seed);
    reference.designated_signers = false;
    crashed(&mut reference);
    let (_, all_share) = run(reference, 12);
    let mut cfg = WorldConfig::new(topo.clone(), 5, seed);
    crashed(&mut cfg);
    let (w, r) = run(cfg, 12);
    assert_ok(&r, seed, "crashed designated signers");
    assert_keeps_95(&r, &all_share, seed, "with every server sharing at once");
    for site in &topo.sites {
        let excused = w.replica(ServerId::new(site.id, 3)).unwrap();
        let rep = w.replica(ServerId::new(site.id, 0)).unwrap();
        assert_eq!(rep.local_view(), 0, "seed {seed}: site {}", site.id);
        assert!(
            shares(&w, ServerId::new(site.id, 3)) > 0,
            "seed {seed}: site {}: the excused server never shared",
            site.id
        );
        let spans = rep.global_aru() / (designated::EAGER_SPAN / 2) + 4;
        assert!(
            rep.stats().shares_requested <= spans,
            "seed {seed}: site {}: {} requests for {} slots",
            site.id,
            rep.stats().shares_requested,
            rep.global_aru()
        );
        assert!(excused.stats().shares_released > 0, "seed {seed}");
    }
}

/// A designated signer that sends wrong shares: the failed combine asks the excused server at
/// once, so the slot does not wait for the backup timer, and the bad signer is blacklisted.
#[test]
fn a_corrupting_designated_signer_brings_in_the_excused_one() {
    let seed = 63;
    let topo = topology();
    let mut cfg = WorldConfig::new(topo.clone(), 5, seed);
    cfg.byzantine = topo
        .sites
        .iter()
        .map(|s| (ServerId::new(s.id, 2), Byzantine::CorruptShares))
        .collect();
    let (w, r) = run(cfg, 10);
    assert_ok(&r, seed, "corrupting designated signers");
    assert!(r.updates > 300, "seed {seed}: {} updates", r.updates);
    for site in &topo.sites {
        let rep = w.replica(ServerId::new(site.id, 0)).unwrap();
        assert_eq!(rep.blacklisted(), vec![2], "seed {seed}: site {}", site.id);
        assert_eq!(rep.local_view(), 0, "seed {seed}: site {}", site.id);
    }
}

/// A designated signer of every site holds each share back just short of the backup timer:
/// the representative finds its combines slow against the pace of the other signers' shares
/// and brings in the excused server, so the attack costs a slow combine per span of slots,
/// not one per slot.
#[test]
fn a_slow_designated_signer_does_not_slow_every_combine() {
    for (paper, seed) in [(false, 64), (true, 65)] {
        let topo = shipped_topology(if paper {
            "paper-symmetric-10mbps.toml"
        } else {
            "local-symmetric-10mbps.toml"
        });
        let (_, fault_free) = run(WorldConfig::new(topo.clone(), 10, seed), 12);
        let mut cfg = WorldConfig::new(topo.clone(), 10, seed);
        crate::simulation::apply_scenario(&mut cfg, "slow-signers", Duration::ZERO, Duration::MAX)
            .unwrap();
        let (w, r) = run(cfg, 12);
        assert_ok(&r, seed, "slow designated signers");
        assert_keeps_95(&r, &fault_free, seed, "fault-free");
        for site in &topo.sites {
            let rep = w.replica(ServerId::new(site.id, 0)).unwrap();
            let slow = rep.stats().slow_share_combines;
            let spans = rep.global_aru() / designated::EAGER_SPAN + 2;
            assert!(
                (1..=spans).contains(&slow),
                "seed {seed}: site {}: {slow} slow combines for {} slots",
                site.id,
                rep.global_aru()
            );
        }
    }
}

/// A Byzantine designated signer's share for a slot far beyond the window is dropped, and does
/// not count as a sign of life: recorded, it would have kept the representative from ever
/// seeing the signer silent (and the renewal check overflowed on `u64::MAX`).
#[test]
fn a_far_ahead_share_does_not_vouch_for_its_signer() {
    let rep = ServerId::new(steward_config::SiteId(0), 0);
    let w = crate::crypto::FastWorld::new(7, 64, 307, 128, vec![3; 3]);
    let crypto = crate::crypto::Crypto::new(Box::new(crate::crypto::FastCrypto::new(
        w,
        crate::crypto::FastIdentity::Server(rep),
    )));
    let mut r = crate::replica::Replica::new(
        crate::replica::ReplicaConfig::new(rep, vec![4; 3], vec![1; 3]),
        crypto,
    );
    bft_core::NodeExt::started(&mut r, Duration::ZERO);
    let share = |seq: u64| {
        crate::msg::Message::PartialSig(std::sync::Arc::new(crate::msg::PartialSig {
            server: 1,
            kind: crate::msg::SigKind::Proposal,
            gv: 0,
            lv: 0,
            seq,
            content: [1; 32],
            share: vec![2; 16],
            sig: Vec::new(),
        }))
    };
    let from = crate::replica::Dest::Server(ServerId::new(steward_config::SiteId(0), 1));
    bft_core::NodeExt::handle(&mut r, Duration::from_secs(1), from, &share(u64::MAX));
    assert_eq!(r.designation.heard.get(&1), None);
    bft_core::NodeExt::handle(&mut r, Duration::from_secs(1), from, &share(3));
    assert_eq!(r.designation.heard.get(&1), Some(&3));
}
