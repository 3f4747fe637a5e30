//! Designated accepting sites (replica/accepters.rs): ⌊S/2⌋ Accepts per slot when every site
//! is reachable, and the holding sites step in, once per doubling span, when a designated
//! one is cut off.

use std::time::Duration;

use bft_core::crypto::CryptoOp;
use bft_core::{NodeExt, Output};
use bft_harness::testing::{assert_ok, run};
use steward_config::{ServerId, SiteId};

use super::damage::unit::{leader_proposal, replica, update};
use super::designation::{shares, topology};
use super::*;
use crate::msg::{Message, SigKind};
use crate::replica::{accepters, Dest};

/// Equal latencies: sites 1 and 2 (the first after leader site 0) accept every slot, sites 3
/// and 4 one per global window; the run orders as much as with every site accepting, with
/// fewer wide-area messages per update.
#[test]
fn only_the_designated_sites_accept_when_all_is_well() {
    let seed = 71;
    let topo = topology();
    let mut reference = WorldConfig::new(topo.clone(), 10, seed);
    reference.designated_accepters = false;
    let (_, every_site) = run(reference, 10);
    let (w, r) = run(WorldConfig::new(topo.clone(), 10, seed), 10);
    assert_ok(&r, seed, "fault-free");
    assert!(
        r.updates * 100 >= every_site.updates * 98,
        "seed {seed}: {} updates against {} with every site accepting",
        r.updates,
        every_site.updates
    );
    assert!(
        r.wan_msgs_per_update < every_site.wan_msgs_per_update,
        "seed {seed}: {} WAN messages per update against {}",
        r.wan_msgs_per_update,
        every_site.wan_msgs_per_update
    );
    let designated = shares(&w, ServerId::new(SiteId(1), 0));
    assert!(designated > 300, "seed {seed}: {designated} Accept shares");
    for s in [1u16, 2] {
        let rep = w.replica(ServerId::new(SiteId(s), 0)).unwrap();
        assert_eq!(rep.stats().accepts_held_back, 0, "seed {seed}: site {s}");
    }
    for s in [3u16, 4] {
        let rep = w.replica(ServerId::new(SiteId(s), 0)).unwrap();
        let st = rep.stats();
        assert!(
            st.accepts_held_back > 0,
            "seed {seed}: site {s} held nothing"
        );
        assert_eq!(st.accept_backups, 0, "seed {seed}: site {s}");
        let held = shares(&w, ServerId::new(SiteId(s), 0));
        assert!(
            held * 8 <= designated,
            "seed {seed}: site {s} signed {held} Accept shares against {designated}"
        );
        assert!(
            held > 0,
            "seed {seed}: site {s} signed no Accept, not even one per window"
        );
    }
}

/// Designated site 1 is cut off from every other site: the holding sites sign the slots it
/// leaves unordered after the backup delay and then accept at once for doubling spans, so the
/// run keeps what it keeps with every site accepting under the same cut, with a handful of
/// backups and no global view change.
#[test]
fn a_cut_off_designated_site_is_covered_by_the_holding_ones() {
    let seed = 72;
    let topo = topology();
    let cut = |cfg: &mut WorldConfig| {
        let rest = [0u16, 2, 3, 4].into_iter().map(SiteId).collect();
        cfg.partitions
            .push((Duration::from_secs(4), vec![vec![SiteId(1)], rest]));
    };
    let mut reference = WorldConfig::new(topo.clone(), 10, seed);
    reference.designated_accepters = false;
    cut(&mut reference);
    let (_, every_site) = run(reference, 16);
    let mut cfg = WorldConfig::new(topo.clone(), 10, seed);
    cut(&mut cfg);
    let (w, r) = run(cfg, 16);
    assert_ok(&r, seed, "designated site cut off");
    assert!(
        r.updates * 100 >= every_site.updates * 95,
        "seed {seed}: {} updates against {} with every site accepting",
        r.updates,
        every_site.updates
    );
    let leader = w.replica(ServerId::new(SiteId(0), 0)).unwrap();
    assert_eq!(leader.global_view(), 0, "seed {seed}");
    let slots = leader.global_aru();
    // Spans of 64, 128, 256, … slots: one backup per doubling, and one to start.
    let doublings = u64::from((slots / accepters::FIRST_SPAN + 1).ilog2());
    for s in [3u16, 4] {
        let st = w.replica(ServerId::new(SiteId(s), 0)).unwrap().stats();
        assert!(
            (1..=doublings + 2).contains(&st.accept_spans),
            "seed {seed}: site {s}: {} spans for {slots} slots",
            st.accept_spans
        );
        assert!(st.accept_span_renewals > 0, "seed {seed}: site {s}");
    }
}

/// Accept shares in a batch of outputs.
fn accept_shares(out: &[Output<Message>]) -> usize {
    out.iter()
        .filter(|o| {
            matches!(o, Output::Send { env, .. }
                if matches!(&env.msg, Message::PartialSig(p) if p.kind == SigKind::Accept))
        })
        .count()
}

/// The backup timer of the outputs, if armed.
fn backup_timer(out: &[Output<Message>]) -> Option<Duration> {
    out.iter().find_map(|o| match o {
        Output::Timer { after, token } if *token == accepters::ACCEPT_BACKUP => Some(*after),
        _ => None,
    })
}

/// Three sites, no latencies: site 1 accepts, site 2 holds back. A site 2 server signs a
/// held-back slot when the leader site sends its Proposal again (it lacks Accepts) or when
/// its own representative passes such a copy on, and at the backup timer; not on a copy
/// from any other server, and not twice. Either opens a span of slots it signs at once.
#[test]
fn a_holding_site_signs_when_asked_again_or_at_the_backup() {
    let t = Duration::from_secs(1);
    let leader_rep = Dest::Server(ServerId::new(SiteId(0), 0));
    let leader_peer = Dest::Server(ServerId::new(SiteId(0), 2));
    let own_rep = Dest::Server(ServerId::new(SiteId(2), 0));
    let site_1 = Dest::Server(ServerId::new(SiteId(1), 0));
    // Server 1 of site 2 is a designated signer of its site (representative 0).
    let holding = || replica(ServerId::new(SiteId(2), 1));
    let proposal = |seq: u64| Message::Proposal(leader_proposal(seq, vec![update(seq as u32)]));

    // Asked by the leader site.
    let mut r = holding();
    let out = r.handle(t, leader_rep, &proposal(1));
    assert_eq!(accept_shares(&out), 0, "held back");
    assert!(backup_timer(&out).is_some(), "the backup is armed");
    assert_eq!(r.stats().accepts_held_back, 1);
    // A copy from another site's server is no request.
    assert_eq!(accept_shares(&r.handle(t, site_1, &proposal(1))), 0);
    // The leader site sends it again: sign, once, and open a span.
    assert_eq!(accept_shares(&r.handle(t, leader_peer, &proposal(1))), 1);
    // Again: the share is sent again (a retransmission), not signed again.
    r.handle(t, leader_rep, &proposal(1));
    assert_eq!(r.crypto_counters().get(CryptoOp::ShareSign), 1);
    assert_eq!(r.stats().accepts_on_request, 1);
    assert_eq!(r.stats().accept_spans, 1);
    assert_eq!(accept_shares(&r.handle(t, leader_rep, &proposal(2))), 1);

    // Passed on by the own representative.
    let mut r = holding();
    assert_eq!(accept_shares(&r.handle(t, own_rep, &proposal(1))), 0);
    assert_eq!(accept_shares(&r.handle(t, own_rep, &proposal(1))), 1);

    // The backup timer.
    let mut r = holding();
    let out = r.handle(t, leader_rep, &proposal(3));
    let delay = backup_timer(&out).expect("the backup is armed");
    let early = r.fire(t + delay / 2, accepters::ACCEPT_BACKUP);
    assert_eq!(accept_shares(&early), 0, "not due yet");
    let due = r.fire(t + delay, accepters::ACCEPT_BACKUP);
    assert_eq!(accept_shares(&due), 1, "slot 3 at the backup");
    assert_eq!(r.stats().accept_backups, 1);
    assert_eq!(
        accept_shares(&r.handle(t + delay, leader_rep, &proposal(4))),
        1
    );

    // One Accept per global window is signed at once, span or not.
    let mut r = holding();
    assert_eq!(accept_shares(&r.handle(t, leader_rep, &proposal(16))), 1);
}
