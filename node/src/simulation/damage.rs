//! Bounded damage from Byzantine peers (issue #14, attacks 2, 5 and 6): each test mounts one
//! attack with fixed seeds and compares it with the same run without the attack. A failure
//! names its seed; rerunning that seed replays it exactly.

use std::time::Duration;

use steward_config::{ServerId, SiteId};

use super::*;
use bft_harness::testing::{run, shipped_topology};

/// The run is safe and every correct client completes something in its last ten seconds.
fn assert_every_client_progresses(w: &World, r: &RunReport, seed: u64, end: Duration, what: &str) {
    assert_eq!(r.safety, "ok", "{what}: seed {seed}: safety");
    let window = Duration::from_secs(10);
    let starved = w
        .checker()
        .starved_clients(w.cfg.clients, end - window, end);
    assert!(
        starved.is_empty(),
        "{what}: seed {seed}: clients {starved:?} completed nothing in the last {window:?}"
    );
}

/// Runs `base` and `base` changed by `attack` for `end`; asserts progress and a throughput
/// ratio of at least one half, and returns the attacked world and both reports.
fn compare(
    base: WorldConfig,
    attack: impl FnOnce(&mut WorldConfig),
    end: Duration,
    what: &str,
) -> (World, RunReport, RunReport) {
    let seed = base.sim.seed;
    let (_, fault_free) = run(base.clone(), end.as_secs());
    let mut cfg = base;
    attack(&mut cfg);
    let (w, r) = run(cfg, end.as_secs());
    eprintln!(
        "{what}: seed {seed}: {} updates attacked, {} without; WAN bytes/update {:.0} vs {:.0}",
        r.updates, fault_free.updates, r.wan_bytes_per_update, fault_free.wan_bytes_per_update
    );
    assert_every_client_progresses(&w, &r, seed, end, what);
    let ratio = r.updates as f64 / fault_free.updates as f64;
    assert!(
        ratio >= 0.5,
        "{what}: seed {seed}: {} updates under attack, {} without ({ratio:.2})",
        r.updates,
        fault_free.updates
    );
    (w, r, fault_free)
}

/// Attack 2: one Byzantine client replays a single signed query to every server of the
/// leader site, thousands of times a second. Every copy used to be verified and answered with
/// a freshly signed reply: at the paper's costs the leader site had no CPU left for ordering.
/// Now a query no newer than the client's last answered one is answered from the cached reply
/// (at most once per retransmission period), and fresh queries are rate-limited per client
/// before their signature is checked.
#[test]
fn a_replayed_query_does_not_saturate_the_leader_site() {
    for seed in [261, 262] {
        let topo = shipped_topology("local-symmetric-10mbps.toml");
        let mut base = WorldConfig::new(topo, 8, seed);
        base.costs = CostTable::paper();
        let end = Duration::from_secs(20);
        let (w, _, _) = compare(
            base,
            |c| c.replaying_clients = vec![(SiteId(0), Duration::from_millis(5), 10)],
            end,
            "replayed query",
        );
        let answered: u64 = (0..4)
            .map(|i| {
                let s = w.replica(ServerId::new(SiteId(0), i)).unwrap();
                s.stats().queries_answered
            })
            .sum();
        assert!(
            answered <= 4 * 2 * end.as_secs(),
            "seed {seed}: {answered} answers to one replayed query"
        );
    }
}

/// Attack 5: a Byzantine server of a non-leader site sends every server of the other sites an
/// Accept in its site's name for a sequence number a million ahead, with a forged signature.
/// The receivers used to raise their reconciliation hint before checking the signature and
/// never lowered it: every one of them asked its peers and the leader site for help on every
/// tick, for good. Now the hint is raised only by verified content and expires.
#[test]
fn a_forged_far_ahead_accept_starts_no_reconciliation_storm() {
    for seed in [271, 272] {
        let topo = shipped_topology("local-symmetric-10mbps.toml");
        let base = WorldConfig::new(topo.clone(), 8, seed);
        let end = Duration::from_secs(20);
        let liar = ServerId::new(SiteId(1), 3);
        let (w, r, fault_free) = compare(
            base,
            |c| c.byzantine = vec![(liar, Byzantine::ForgedAccepts)],
            end,
            "forged accept",
        );
        assert!(
            r.wan_bytes_per_update <= 1.25 * fault_free.wan_bytes_per_update,
            "seed {seed}: {:.0} WAN bytes per update under attack, {:.0} without",
            r.wan_bytes_per_update,
            fault_free.wan_bytes_per_update
        );
        for s in topo.steward_servers().filter(|s| *s != liar) {
            let x = w.replica(s).unwrap();
            assert!(
                x.highest_seen <= x.global_aru() + 4 * 16,
                "seed {seed}: {s} believes in seq {} at aru {}",
                x.highest_seen,
                x.global_aru()
            );
        }
    }
}

/// Attack 6: a Byzantine server of the leader site sends its representative thousands of
/// validly signed Partial_Sigs a second on random contents, of every kind and for every
/// sequence number in the window. Each used to open a share set of its own, and the
/// global-view-change ones stayed until the next global view change. Now a signer holds one
/// share per kind and slot, and only shares that fit the views and verify are stored.
#[test]
fn partial_sig_spam_keeps_the_representatives_memory_bounded() {
    for seed in [281, 282] {
        let topo = shipped_topology("local-symmetric-10mbps.toml");
        let base = WorldConfig::new(topo, 8, seed);
        let end = Duration::from_secs(20);
        let rep = ServerId::new(SiteId(0), 0);
        let spammer = ServerId::new(SiteId(0), 3);
        let (w, _, _) = compare(
            base,
            |c| c.byzantine = vec![(spammer, Byzantine::PartialSigSpam(1000))],
            end,
            "partial-sig spam",
        );
        let x = w.replica(rep).unwrap();
        eprintln!(
            "seed {seed}: the representative holds {} share sets",
            x.shares.len()
        );
        // The representative's own share sets: one per slot kept (KEEP_EXECUTED = 256 below
        // the execution point) or in the window (64 above); the spammer's: one per kind and
        // slot of the window, and one per global-view-change kind and view (three of each).
        let bound = (256 + 64) + 2 * 64 + 3 * 3;
        assert!(
            x.shares.len() <= bound,
            "seed {seed}: the representative holds {} share sets (bound {bound})",
            x.shares.len()
        );
    }
}
