//! Crash-restart of correct servers (#12 item 9): servers lose everything in memory, come back
//! from what they persisted, and rejoin; the run stays safe and every client keeps going.
//! Fixed seeds: a failure names its seed and replays from it.

use std::time::Duration;

use steward_config::{ServerId, SiteId};

use super::*;
use bft_harness::testing::{run, shipped_topology};

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn outage(down: u64, up: u64, point: CrashPoint) -> Outage {
    Outage {
        down: secs(down),
        up: secs(up),
        point,
    }
}

/// Restarts every listed server once, checks safety, per-client liveness in the last 10 s,
/// and that each restarted server executes again and catches up with its site.
fn restart_run(seed: u64, restarts: Vec<(ServerId, Outage)>, what: &str) -> World {
    let topo = shipped_topology("local-symmetric-10mbps.toml");
    let mut cfg = WorldConfig::new(topo, 8, seed);
    cfg.restarts = restarts.clone();
    let end = secs(40);
    let (w, r) = run(cfg, end.as_secs());
    assert_eq!(r.safety, "ok", "{what}: seed {seed}: safety");
    let starved = w.checker().starved_clients(8, end - secs(10), end);
    assert!(
        starved.is_empty(),
        "{what}: seed {seed}: clients {starved:?} completed nothing in the last 10 s"
    );
    for (id, _) in restarts {
        let restarted = w.replica(id).unwrap();
        let peer = w
            .replica(ServerId::new(id.site, (id.index + 1) % 4))
            .unwrap();
        assert!(
            restarted.is_locally_constrained(),
            "{what}: seed {seed}: {id} never got its local view's constraint back"
        );
        assert!(
            restarted.stats().recovered_entries > 0,
            "{what}: seed {seed}: {id} recovered nothing"
        );
        assert!(
            restarted.global_aru() + 64 >= peer.global_aru() && restarted.global_aru() > 0,
            "{what}: seed {seed}: {id} did not catch up (aru {} vs {}): {}",
            restarted.global_aru(),
            peer.global_aru(),
            restarted.debug_state()
        );
    }
    w
}

#[test]
fn restarted_leader_site_server_rejoins() {
    for (seed, point) in [
        (801, CrashPoint::AfterPersist),
        (802, CrashPoint::BeforeInput),
    ] {
        let id = ServerId::new(SiteId(0), 2);
        restart_run(seed, vec![(id, outage(8, 11, point))], "leader-site server");
    }
}

#[test]
fn restarted_non_leader_servers_and_leader_representative_rejoin() {
    let seed = 811;
    let restarts = vec![
        (
            ServerId::new(SiteId(0), 0),
            outage(6, 8, CrashPoint::AfterPersist),
        ),
        (
            ServerId::new(SiteId(2), 1),
            outage(10, 12, CrashPoint::AfterPersist),
        ),
        (
            ServerId::new(SiteId(3), 0),
            outage(14, 15, CrashPoint::BeforeInput),
        ),
    ];
    restart_run(seed, restarts, "representatives and a non-leader server");
}

#[test]
fn every_server_of_the_leader_site_restarts_in_turn() {
    let seed = 821;
    let restarts = (0..4)
        .map(|i| {
            let down = 5 + 4 * u64::from(i);
            (
                ServerId::new(SiteId(0), i),
                outage(down, down + 2, CrashPoint::AfterPersist),
            )
        })
        .collect();
    restart_run(seed, restarts, "rolling restart of the leader site");
}

/// The leader site's representative is down while the site replaces it (the sequencing watch
/// does within a second): it comes back in the old local view, where it sees nothing of the
/// new one. It must learn the new view from its peers (its messages of the old view show it
/// behind) and get the new representative's constraint bundle, or it stays out of the site
/// for good and the site runs without a spare correct server.
#[test]
fn a_server_down_during_a_local_view_change_joins_the_new_view() {
    for seed in [831, 832] {
        let rep = ServerId::new(SiteId(0), 0);
        let w = restart_run(
            seed,
            vec![(rep, outage(5, 8, CrashPoint::AfterPersist))],
            "representative down while replaced",
        );
        let back = w.replica(rep).unwrap();
        let peer = w.replica(ServerId::new(SiteId(0), 1)).unwrap();
        assert!(
            peer.local_view() >= 1,
            "seed {seed}: the representative was not replaced while down"
        );
        assert_eq!(
            back.local_view(),
            peer.local_view(),
            "seed {seed}: the restarted server stayed in an old local view"
        );
        assert!(
            back.is_locally_constrained(),
            "seed {seed}: the restarted server never got the view's constraint"
        );
    }
}
