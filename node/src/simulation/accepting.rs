//! Designated accepting sites (replica/accepters.rs): ⌊S/2⌋ Accepts per slot when every site
//! is reachable, and the holding sites step in, once per doubling span, when a designated
//! one is cut off.

use std::sync::Arc;
use std::time::Duration;

use bft_core::crypto::CryptoOp;
use bft_core::{NodeExt, Output};
use bft_harness::testing::{assert_ok, run};
use steward_config::{ServerId, SiteId};

use super::damage::unit::{five_site_replica, leader_proposal, replica, site_accept, update};
use super::designation::{shares, topology};
use super::*;
use crate::msg::{AcceptRelay, Message, OrderProof, SigKind};
use crate::replica::{accepters, Dest, ReplicaConfig, TICK};

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

/// Equal latencies, five sites: the two holding sites need both designated sites' Accepts,
/// and their representatives relay the pair in one message when the slot is ordered there
/// instead of each as it arrives: the same updates with fewer messages inside the sites, and
/// nothing left for the tick to flush. The leader site relays each as it arrives.
#[test]
fn representatives_relay_a_slots_foreign_accepts_together() {
    let seed = 73;
    let topo = topology();
    let mut reference = WorldConfig::new(topo.clone(), 10, seed);
    reference.bundle_accept_relays = false;
    let (w_each, each) = run(reference, 10);
    let (w, r) = run(WorldConfig::new(topo.clone(), 10, seed), 10);
    assert_ok(&r, seed, "fault-free");
    assert!(
        r.updates * 100 >= each.updates * 98,
        "seed {seed}: {} updates against {} relaying each Accept",
        r.updates,
        each.updates
    );
    let lan_per_update =
        |w: &World, updates: u64| w.sim.stats().measured.lan_messages as f64 / updates as f64;
    let (bundled, single) = (
        lan_per_update(&w, r.updates),
        lan_per_update(&w_each, each.updates),
    );
    // Two sites (3, 4) save three messages each per slot.
    assert!(
        bundled + 4.0 <= single,
        "seed {seed}: {bundled:.1} messages inside sites per update against {single:.1}"
    );
    let leader = w.replica(ServerId::new(SiteId(0), 0)).unwrap().stats();
    assert_eq!(
        leader.accept_relays_bundled, 0,
        "seed {seed}: the leader site"
    );
    for s in [3u16, 4] {
        let st = w.replica(ServerId::new(SiteId(s), 0)).unwrap().stats();
        assert!(
            st.accept_relays_bundled * 10 >= r.updates * 9,
            "seed {seed}: site {s} bundled {} relays for {} updates",
            st.accept_relays_bundled,
            r.updates
        );
        assert_eq!(st.accept_relays_flushed, 0, "seed {seed}: site {s}");
    }
}

/// Five sites: a holding site's representative holds the first designated site's Accept of a
/// slot and relays both in one message when the second orders it, before executing it; one
/// held for a retransmission period goes out alone at the tick.
#[test]
fn a_representative_relays_the_accepts_that_order_a_slot_together() {
    let t = Duration::from_secs(1);
    let p = leader_proposal(1, vec![update(1)]);
    let leader_rep = Dest::Server(ServerId::new(SiteId(0), 0));
    let from = |site: u16| Dest::Server(ServerId::new(SiteId(site), 0));
    let accept = |site: u16| Message::Accept(site_accept(site, &p));
    let to_site_3 = |out: &[Output<Message>]| -> Vec<(usize, usize)> {
        out.iter()
            .enumerate()
            .filter_map(|(i, o)| match o {
                Output::Send {
                    to: Dest::Server(to),
                    env,
                } if to.site == SiteId(3) => match &env.msg {
                    Message::Accept(_) => Some((i, 1)),
                    Message::AcceptRelay(r) => Some((i, r.accepts.len())),
                    _ => None,
                },
                _ => None,
            })
            .collect()
    };
    let rep = || {
        let mut r = five_site_replica(ServerId::new(SiteId(3), 0));
        r.handle(t, leader_rep, &Message::Proposal(p.clone()));
        r
    };

    let mut r = rep();
    assert!(
        to_site_3(&r.handle(t, from(1), &accept(1))).is_empty(),
        "held"
    );
    let out = r.handle(t, from(2), &accept(2));
    let sends = to_site_3(&out);
    assert_eq!(sends.len(), 4, "to every server of the site: {sends:?}");
    assert!(
        sends.iter().all(|&(_, n)| n == 2),
        "both Accepts in one message"
    );
    let done = out
        .iter()
        .position(|o| matches!(o, Output::Executed(_)))
        .expect("the slot executes");
    assert!(
        sends.iter().all(|&(i, _)| i < done),
        "relayed before executing"
    );
    assert_eq!(r.stats().accept_relays_bundled, 1);

    let mut r = rep();
    r.handle(t, from(1), &accept(1));
    let period = ReplicaConfig::new(ServerId::new(SiteId(3), 0), vec![4; 5], vec![1; 5]).retransmit;
    assert!(
        to_site_3(&r.fire(t + period / 2, TICK)).is_empty(),
        "not due"
    );
    let due = to_site_3(&r.fire(t + period, TICK));
    assert_eq!(due.len(), 4, "due at the tick");
    assert!(due.iter().all(|&(_, n)| n == 1));
    assert_eq!(r.stats().accept_relays_flushed, 1);
}

/// Three sites (one Accept orders a slot): a representative without the slot's Proposal
/// relays a foreign Accept at once (a peer with the Proposal may order the slot first), and so
/// does a non-representative; an AcceptRelay counts only from a server of the own site; an
/// order proof from another site is passed on to the representative before the slot executes.
#[test]
fn accepts_a_peer_may_need_first_are_relayed_at_once() {
    let t = Duration::from_secs(1);
    let p = leader_proposal(1, vec![update(1)]);
    let accept = site_accept(1, &p);
    let from_site_1 = Dest::Server(ServerId::new(SiteId(1), 0));
    let leader_rep = Dest::Server(ServerId::new(SiteId(0), 0));
    let own_rep = Dest::Server(ServerId::new(SiteId(2), 0));
    let relayed = |out: &[Output<Message>]| -> Vec<usize> {
        out.iter()
            .enumerate()
            .filter(|(_, o)| {
                matches!(o, Output::Send { to: Dest::Server(to), env }
                    if to.site == SiteId(2)
                        && matches!(&env.msg, Message::Accept(a) if a.site == 1))
            })
            .map(|(i, _)| i)
            .collect()
    };
    let executed =
        |out: &[Output<Message>]| out.iter().position(|o| matches!(o, Output::Executed(_)));

    let mut rep = replica(ServerId::new(SiteId(2), 0));
    let out = rep.handle(t, from_site_1, &Message::Accept(accept.clone()));
    assert_eq!(relayed(&out).len(), 4, "no Proposal here: at once");

    let mut peer = replica(ServerId::new(SiteId(2), 1));
    let out = peer.handle(t, from_site_1, &Message::Accept(accept.clone()));
    assert_eq!(
        relayed(&out).len(),
        4,
        "a non-representative relays at once"
    );

    let relay = Message::AcceptRelay(Arc::new(AcceptRelay {
        accepts: vec![accept.clone()],
    }));
    let mut peer = replica(ServerId::new(SiteId(2), 2));
    peer.handle(t, leader_rep, &Message::Proposal(p.clone()));
    let out = peer.handle(t, from_site_1, &relay);
    assert!(executed(&out).is_none());
    assert_eq!(peer.stats().dropped_invalid, 1, "only from the own site");
    let out = peer.handle(t, own_rep, &relay);
    assert!(
        executed(&out).is_some(),
        "the relayed Accept orders the slot"
    );

    let mut peer = replica(ServerId::new(SiteId(2), 3));
    peer.handle(t, leader_rep, &Message::Proposal(p.clone()));
    let proof = Message::Ordered(Arc::new(OrderProof {
        proposal: p.clone(),
        accepts: vec![accept.clone()],
    }));
    let out = peer.handle(t, from_site_1, &proof);
    let to_rep: Vec<usize> = out
        .iter()
        .enumerate()
        .filter(|(_, o)| {
            matches!(o, Output::Send { to, env }
                if *to == own_rep && matches!(&env.msg, Message::Accept(a) if a.site == 1))
        })
        .map(|(i, _)| i)
        .collect();
    assert_eq!(
        to_rep.len(),
        1,
        "the proof's Accept is passed on to the representative"
    );
    assert!(to_rep[0] < executed(&out).expect("ordered"));
}
