//! Simulated Steward runs with fixed seeds. Each failure message names the seed; rerun a single
//! case with the same seed to replay it exactly.

use std::path::PathBuf;
use std::time::Duration;

use steward_config::{ServerId, SiteId, Topology};

use bft_harness::testing::{
    assert_ok, assert_real_crypto_run, assert_same_seed_same_run, run, run_lossy, shipped_topology,
};

use super::*;

/// Every server executed exactly the same prefix; on failure, print each server's state.
fn assert_converged(w: &World, seed: u64) {
    let servers: Vec<ServerId> = w.cfg.topology.steward_servers().collect();
    let arus: Vec<u64> = servers
        .iter()
        .map(|s| w.replica(*s).unwrap().global_aru())
        .collect();
    if arus.iter().any(|a| *a != arus[0]) {
        let states: Vec<String> = servers
            .iter()
            .map(|s| format!("{s}: {}", w.replica(*s).unwrap().debug_state()))
            .collect();
        panic!(
            "seed {seed}: servers diverge: {arus:?}\n{}",
            states.join("\n")
        );
    }
}

#[test]
fn one_client_symmetric_f1() {
    let seed = 1;
    let mut cfg = WorldConfig::new(shipped_topology("local-symmetric-10mbps.toml"), 1, seed);
    cfg.sim.warmup = Duration::from_secs(1);
    let (w, r) = run(cfg, 10);
    assert_ok(&r, seed, "1 client");
    // Latency: one WAN round trip (100 ms) plus LAN hops and crypto.
    assert!(r.lat_p50_ms > r.lat_bound_ms, "seed {seed}: {r:?}");
    assert!(
        r.lat_p50_ms < r.lat_bound_ms + 30.0,
        "seed {seed}: p50 {}",
        r.lat_p50_ms
    );
    assert!((r.lat_bound_ms - 100.3).abs() < 0.01, "{}", r.lat_bound_ms);
    // Every correct server executed the same prefix.
    let arus: Vec<u64> = w
        .cfg
        .topology
        .steward_servers()
        .map(|s| w.replica(s).unwrap().global_aru())
        .collect();
    let max = *arus.iter().max().unwrap();
    assert!(arus.iter().all(|a| max - a <= 2), "seed {seed}: {arus:?}");
}

fn symmetric(f5: bool) -> Topology {
    shipped_topology(if f5 {
        "paper-symmetric-10mbps.toml"
    } else {
        "local-symmetric-10mbps.toml"
    })
}

#[test]
fn one_to_thirty_clients_f1_and_f5() {
    for (f5, clients, seed) in [
        (false, 1, 11),
        (false, 10, 12),
        (false, 30, 13),
        (true, 1, 14),
        (true, 30, 15),
    ] {
        let mut cfg = WorldConfig::new(symmetric(f5), clients, seed);
        cfg.sim.warmup = Duration::from_secs(2);
        let (_, r) = run(cfg, 8);
        assert_ok(&r, seed, &format!("f5={f5} clients={clients}"));
        // Closed loop: every client completes operations.
        assert!(
            r.updates >= u64::from(clients) * 6,
            "seed {seed}: {} updates",
            r.updates
        );
        assert!(r.lat_p50_ms >= r.lat_bound_ms, "seed {seed}");
    }
}

#[test]
fn same_seed_same_run() {
    assert_same_seed_same_run(|seed| WorldConfig::new(symmetric(false), 5, seed));
}

#[test]
fn lossy_duplicating_reordering_links() {
    // Updates ordered with and without the combine deadline, summed over the seeds: per seed
    // the ratio varies from 0.90 to 1.27 (seeds 31-39, both orders of the Accept relay), as
    // the loss hits different slots; summed, the deadline must cost less than 10%.
    let (mut with_deadline, mut without_deadline) = (0, 0);
    for seed in [31, 32, 33] {
        let (mut w, r) = run_lossy(|topo| WorldConfig::new(topo, 5, seed), 20);
        // Loss costs time (server retransmission after 0.5 s; a lost client request or reply
        // costs the client's 2 s timeout) but never progress. Without loss: about 750 updates.
        assert!(r.updates > 200, "seed {seed}: only {} updates", r.updates);
        // A lost share, Prepare or Proposal is sent again before the combine deadline: a
        // correct representative is rarely suspected of holding its combines (with the
        // deadline's floor at T1/50 instead of T1/10 and no resends: 11 to 16 votes per server
        // and 32 local view changes in 20 s; seeds 31-39 then: 0 to 3 votes in all). Forwarding
        // (forwarding.rs) recovers lost Proposals and Accepts before the retransmission: seeds
        // 31-39 order 1.2 to 1.6 times as many updates with it, so more slots are judged
        // (0 to 3 votes per server, seed 32: 3).
        let leader_site = &w.cfg.topology.sites[0];
        let (mut most_late, mut resent) = (0, 0);
        for i in 1..leader_site.servers {
            let s = w.replica(ServerId::new(leader_site.id, i)).unwrap().stats();
            most_late = most_late.max(s.late_combines);
            resent += s.shares_resent;
        }
        assert!(
            most_late <= 3,
            "seed {seed}: {most_late} late-combine votes by one server"
        );
        assert!(resent > 0, "seed {seed}: no share was sent again");
        let without = |topo| {
            let mut cfg = WorldConfig::new(topo, 5, seed);
            cfg.combine_deadline = false;
            cfg
        };
        let (_, off) = run_lossy(without, 20);
        with_deadline += r.updates;
        without_deadline += off.updates;
        // Nobody is left behind: once clients stop, lagging servers reconcile to the same point.
        w.stop_clients();
        w.run_until(Duration::from_secs(26)).unwrap();
        assert_converged(&w, seed);
        assert_eq!(w.checker().verdict(), "ok", "seed {seed}");
    }
    assert!(
        with_deadline * 10 >= without_deadline * 9,
        "seeds 31-33: {with_deadline} updates with the combine deadline, {without_deadline} \
         without"
    );
}

#[test]
fn corrupted_partial_signatures_are_detected_and_blacklisted() {
    for (f5, seed) in [(false, 41), (true, 42)] {
        let topo = symmetric(f5);
        let f = topo.sites[0].f;
        // f Byzantine servers per site (indices 1..=f, so that the representative's combines
        // include their shares), all sending bad shares.
        let byz: Vec<(ServerId, Byzantine)> = topo
            .sites
            .iter()
            .flat_map(|s| (1..=f).map(move |i| ServerId::new(s.id, i)))
            .map(|id| (id, Byzantine::CorruptShares))
            .collect();
        let mut cfg = WorldConfig::new(topo.clone(), 5, seed);
        cfg.byzantine = byz.clone();
        let (w, r) = run(cfg, 10);
        assert_ok(&r, seed, "corrupt shares");
        // Every site's representative detected its bad signers.
        for s in &topo.sites {
            let rep = w.replica(ServerId::new(s.id, 0)).unwrap();
            assert!(
                rep.stats().combine_fallbacks > 0 || rep.stats().blacklisted > 0,
                "seed {seed}: site {}",
                s.id
            );
            assert_eq!(
                rep.blacklisted().len(),
                f as usize,
                "seed {seed}: site {} blacklist",
                s.id
            );
        }
        // Blacklisting is not contagious: correct servers are never blacklisted.
        for s in topo.steward_servers() {
            if let Some(rp) = w.replica(s) {
                for b in rp.blacklisted() {
                    assert!(
                        (1..=f).contains(&b),
                        "seed {seed}: {s} blacklisted correct {b}"
                    );
                }
            }
        }
    }
}

#[test]
fn spamming_byzantine_servers_are_absorbed() {
    let seed = 51;
    let topo = symmetric(false);
    let byz: Vec<(ServerId, Byzantine)> = topo
        .sites
        .iter()
        .map(|s| (ServerId::new(s.id, s.servers - 1), Byzantine::Spammer))
        .collect();
    let mut cfg = WorldConfig::new(topo.clone(), 5, seed);
    cfg.byzantine = byz;
    let (w, r) = run(cfg, 10);
    assert_ok(&r, seed, "spammers");
    assert!(r.updates > 200, "seed {seed}: only {} updates", r.updates);
    let spammer = w
        .sim
        .process_as::<Spammer>(w.proc_of(ServerId::new(SiteId(0), 3)))
        .unwrap();
    assert!(
        spammer.sent > 1000 && spammer.malformed > 0,
        "seed {seed}: spammer idle"
    );
    let dropped: u64 = topo
        .steward_servers()
        .filter_map(|s| w.replica(s))
        .map(|rp| rp.stats().dropped_invalid)
        .sum();
    assert!(
        dropped > 1000,
        "seed {seed}: replicas dropped only {dropped}"
    );
    // The false accusations did not get correct servers blacklisted.
    for s in topo.steward_servers() {
        if let Some(rp) = w.replica(s) {
            assert!(rp.blacklisted().iter().all(|b| *b == 3), "seed {seed}: {s}");
        }
    }
}

#[test]
fn read_only_queries_are_answered_locally() {
    let seed = 61;
    let text = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../topologies/local-symmetric-10mbps.toml"),
    )
    .unwrap();
    // Spread clients over every site.
    let text = text.replace("[clients]\nweights = { site0 = 1 }", "");
    let topo = Topology::from_toml_str(&text, "spread").unwrap();
    let mut cfg = WorldConfig::new(topo, 10, seed);
    cfg.write_pct = 50;
    let (w, r) = run(cfg, 10);
    assert_ok(&r, seed, "queries");
    let queries = w.sim.completed("query");
    assert!(queries > 100, "seed {seed}: {queries} queries");
    // Queries cost no WAN traffic: fewer WAN messages than with the same updates alone.
    let q = w.sim.histogram("query").unwrap();
    assert!(
        q.value_at_quantile(0.5) < 5_000,
        "seed {seed}: query p50 {} us",
        q.value_at_quantile(0.5)
    );
}

#[test]
fn real_crypto_run() {
    assert_real_crypto_run(WorldConfig::new(symmetric(false), 2, 71), 20);
}

#[test]
fn paper_setup_reproduces_the_published_shape() {
    // paper-symmetric-10mbps, paper costs, batch 1 (steward.md §13.2): 1 client ≈ 130 ms;
    // the throughput rises with clients and flattens near 84 updates/s.
    let seed = 81;
    let point = |clients| {
        let mut cfg = WorldConfig::new(symmetric(true), clients, seed);
        cfg.costs = CostTable::paper();
        cfg.scheme = Scheme::RSA1024;
        cfg.sim.warmup = Duration::from_secs(2);
        run(cfg, 12).1
    };
    let one = point(1);
    assert!(
        (one.lat_mean_ms - 130.0).abs() <= 0.15 * 130.0,
        "seed {seed}: 1-client latency {}",
        one.lat_mean_ms
    );
    let ten = point(10);
    let peak = point(30);
    assert!(
        (peak.throughput - 84.0).abs() <= 0.2 * 84.0,
        "seed {seed}: peak {}",
        peak.throughput
    );
    assert!(ten.throughput > 5.0 * one.throughput, "seed {seed}: rising");
    assert!(
        peak.throughput < 1.3 * point(20).throughput,
        "seed {seed}: flat at the top"
    );
    // The Proposal to the 4 other sites and the Accepts of the 2 designated accepting sites
    // to their 4 others (the paper: all 4 sites' Accepts, 20 in all), and the 2 holding
    // sites' one Accept per global window of 16.
    assert!(
        (peak.wan_msgs_per_update - (4.0 + 8.0 + 8.0 / 16.0)).abs() < 0.5,
        "{}",
        peak.wan_msgs_per_update
    );
}

#[test]
fn batching_amortises_threshold_signatures() {
    // The paper's costs make the leader site CPU-bound at batch 1; batching several updates
    // per Proposal ("optimized Steward", SRDS 2007) lifts the ceiling.
    let seed = 91;
    let point = |batch| {
        let mut cfg = WorldConfig::new(symmetric(true), 30, seed);
        cfg.costs = CostTable::paper();
        cfg.scheme = Scheme::RSA1024;
        cfg.batch = batch;
        cfg.sim.warmup = Duration::from_secs(2);
        run(cfg, 10).1
    };
    let one = point(1);
    let eight = point(8);
    assert_ok(&eight, seed, "batch 8");
    // Seed 91 gives 1.98× (2.03× before self-sends were delivered inside the handler, as on
    // the runtime); a batch of 8 that did not lift the ceiling by far more would fail.
    assert!(
        eight.throughput > 1.8 * one.throughput,
        "seed {seed}: {} vs {}",
        eight.throughput,
        one.throughput
    );
    assert!(
        eight.wan_msgs_per_update < one.wan_msgs_per_update / 2.0,
        "seed {seed}"
    );
}

#[test]
fn leader_representative_crash_triggers_local_view_change() {
    for (f5, seed) in [(false, 101), (true, 102)] {
        let topo = symmetric(f5);
        let crash = Duration::from_secs(4);
        let rep = ServerId::new(SiteId(0), 0);
        let mut cfg = WorldConfig::new(topo.clone(), 5, seed);
        cfg.byzantine = vec![(rep, Byzantine::CrashAt(crash))];
        let t2 = local_timeout_t1(&topo) * (topo.sites[0].f + 2);
        let mut w = World::build(cfg).unwrap();
        w.run_until(crash).unwrap();
        let s1 = ServerId::new(SiteId(0), 1);
        let before = w.replica(s1).unwrap().global_aru();
        // Find the first execution after the crash.
        let mut t = crash;
        while w.replica(s1).unwrap().global_aru() == before {
            t += Duration::from_millis(20);
            assert!(
                t < crash + 10 * t2,
                "seed {seed}: no progress after the crash"
            );
            w.run_until(t).unwrap();
        }
        let recovery = t - crash;
        assert!(
            recovery <= 3 * t2,
            "seed {seed}: recovery {recovery:?} > 3 x T2 ({t2:?})"
        );
        w.run_until(crash + 12 * t2).unwrap();
        let r = w.report();
        assert_eq!(r.safety, "ok", "seed {seed}");
        let rp = w.replica(s1).unwrap();
        assert_eq!(rp.local_view(), 1, "seed {seed}: one local view change");
        // The sequencing watch (updates waiting while the windows have room) replaced the
        // crashed representative well before T2, so no progress timer voted. Which servers'
        // watches fired depends on which of them the waiting clients had asked; a server
        // with nothing waiting joins once f+1 others vote.
        let peers: Vec<_> = (1..topo.sites[0].servers)
            .map(|i| w.replica(ServerId::new(SiteId(0), i)).unwrap().stats())
            .collect();
        let suspected: u64 = peers.iter().map(|st| st.reps_suspected).sum();
        assert!(
            suspected > u64::from(topo.sites[0].f),
            "seed {seed}: {suspected} sequencing-watch votes: {peers:?}"
        );
        for st in &peers {
            assert_eq!(
                (st.local_stall_votes, st.local_starvation_votes),
                (0, 0),
                "seed {seed}: {st:?}"
            );
        }
        assert!(
            rp.global_aru() > before + 50,
            "seed {seed}: ordering resumed slowly: {} -> {}",
            before,
            rp.global_aru()
        );
        // Other sites learned the new representative.
        assert!(
            w.replica(ServerId::new(SiteId(2), 1)).unwrap().global_aru() > before + 40,
            "seed {seed}"
        );
        eprintln!("seed {seed}: recovery {recovery:?}, T2 {t2:?}");
    }
}

fn spread(name: &str) -> Topology {
    let text = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../topologies")
            .join(name),
    )
    .unwrap()
    .replace("[clients]\nweights = { site0 = 1 }", "");
    Topology::from_toml_str(&text, "spread").unwrap()
}

#[test]
fn leader_site_partition_triggers_global_view_change_and_heals() {
    for seed in [111, 112] {
        let topo = spread("local-symmetric-10mbps.toml");
        let mut cfg = WorldConfig::new(topo.clone(), 10, seed);
        cfg.sim.warmup = Duration::from_secs(1);
        let mut w = World::build(cfg).unwrap();
        let cut = Duration::from_secs(4);
        let heal = Duration::from_secs(24);
        w.sim
            .schedule_partition(cut, vec![vec![SiteId(0)], (1..5).map(SiteId).collect()]);
        w.sim.schedule_heal(heal);
        w.run_until(cut).unwrap();
        let s1 = ServerId::new(SiteId(1), 1);
        let before = w.replica(s1).unwrap().global_aru();
        w.run_until(heal).unwrap();
        let r1 = w.replica(s1).unwrap();
        assert_eq!(r1.global_view(), 1, "seed {seed}: leader site replaced");
        assert!(
            r1.global_aru() > before + 30,
            "seed {seed}: majority resumed: {before} -> {}",
            r1.global_aru()
        );
        // The old leader site made no progress alone.
        let old = w.replica(ServerId::new(SiteId(0), 1)).unwrap().global_aru();
        assert!(
            old <= before + 20,
            "seed {seed}: isolated leader site progressed: {old}"
        );
        // After the heal the old leader site catches up to the same history.
        w.run_until(heal + Duration::from_secs(6)).unwrap();
        w.stop_clients();
        w.run_until(heal + Duration::from_secs(16)).unwrap();
        assert_converged(&w, seed);
        let gvs: Vec<u64> = topo
            .steward_servers()
            .map(|s| w.replica(s).unwrap().global_view())
            .collect();
        assert!(gvs.iter().all(|g| *g == 1), "seed {seed}: views {gvs:?}");
        assert_eq!(w.checker().verdict(), "ok", "seed {seed}");
    }
}

#[test]
fn randomized_campaign_keeps_safety_and_liveness() {
    let topo = shipped_topology("local-symmetric-10mbps.toml");
    let out = campaign(&topo, 1000, 12, &mut |seed, verdict| {
        eprintln!("campaign seed {seed}: {verdict}");
    })
    .unwrap();
    assert!(
        out.safety_violations.is_empty(),
        "safety: {:?}",
        out.safety_violations
    );
    assert!(
        out.liveness_failures.is_empty(),
        "liveness failed for seeds {:?}",
        out.liveness_failures
    );
}

fn scenario_run(name: &str, seed: u64, secs: u64) -> (World, RunReport, ScenarioStats) {
    let topo = shipped_topology("local-symmetric-10mbps.toml");
    let mut cfg = WorldConfig::new(topo, 10, seed);
    cfg.write_pct = 80;
    let end = Duration::from_secs(secs);
    apply_scenario(&mut cfg, name, Duration::from_secs(secs / 4), end).unwrap();
    let (w, r) = run(cfg, secs);
    let st = w.scenario_stats();
    (w, r, st)
}

#[test]
fn non_leader_site_partition_keeps_ordering_and_local_reads() {
    let seed = 121;
    let (w, r, st) = scenario_run("site-partition", seed, 40);
    assert_ok(&r, seed, "site-partition");
    // The majority kept ordering through the partition.
    let during = w
        .checker()
        .executions_between(Duration::from_secs(11), Duration::from_secs(25));
    assert!(
        during > 300,
        "seed {seed}: {during} updates during the partition ({st:?})"
    );
    assert_eq!(st.global_view_changes, 0, "seed {seed}");
    // The isolated site's two clients keep getting read-only answers from their own site
    // while their updates wait (80% writes: each spends most time blocked on an update, but
    // every query completes locally).
    assert!(w.sim.completed("query") > 100, "seed {seed}");
    // After the heal the isolated site catches up.
    let s4 = w.replica(ServerId::new(SiteId(4), 1)).unwrap().global_aru();
    let s0 = w.replica(ServerId::new(SiteId(0), 1)).unwrap().global_aru();
    assert!(
        s4 + 40 >= s0,
        "seed {seed}: isolated site at {s4}, leader at {s0}"
    );
}

#[test]
fn minority_of_sites_makes_no_progress_until_healed() {
    let seed = 131;
    let (w, r, st) = scenario_run("minority-sites", seed, 40);
    assert_ok(&r, seed, "minority-sites");
    let cut = Duration::from_secs(10);
    let heal = Duration::from_secs(25);
    let c = w.checker();
    // Nothing new executes while no majority is connected (in-flight slots may finish first).
    assert!(
        c.executions_between(cut + Duration::from_secs(2), heal) == 0,
        "seed {seed}: progress without a majority"
    );
    assert!(
        c.executions_between(heal, heal + Duration::from_secs(15)) > 50,
        "seed {seed}: no progress after heal"
    );
    assert!(st.recovery_ms.is_some(), "seed {seed}");
}

#[test]
fn byzantine_mix_keeps_safety_and_progress() {
    for (f5, seed) in [(false, 141), (true, 142)] {
        let topo = symmetric(f5);
        let mut cfg = WorldConfig::new(topo, 10, seed);
        let end = Duration::from_secs(if f5 { 40 } else { 30 });
        apply_scenario(&mut cfg, "byzantine-mix", Duration::ZERO, end).unwrap();
        let byz = cfg.byzantine.len();
        let (w, r) = run(cfg, end.as_secs());
        assert_ok(&r, seed, "byzantine-mix");
        assert!(byz >= 5, "seed {seed}");
        let c = w.checker();
        assert!(
            c.executions_between(end - Duration::from_secs(10), end) > 50,
            "seed {seed}: progress at the end"
        );
        assert!(
            w.scenario_stats().local_view_changes >= 1,
            "seed {seed}: the equivocating rep was replaced"
        );
    }
}

#[test]
fn partitioned_site_keeps_answering_local_queries() {
    let seed = 151;
    let topo = shipped_topology("local-symmetric-10mbps.toml");
    let mut cfg = WorldConfig::new(topo, 10, seed);
    cfg.write_pct = 0;
    apply_scenario(
        &mut cfg,
        "site-partition",
        Duration::from_secs(5),
        Duration::from_secs(25),
    )
    .unwrap();
    let mut w = World::build(cfg).unwrap();
    let answered = |w: &World| -> u64 {
        (0..4)
            .map(|i| {
                w.replica(ServerId::new(SiteId(4), i))
                    .unwrap()
                    .stats()
                    .queries_answered
            })
            .sum()
    };
    w.run_until(Duration::from_secs(6)).unwrap();
    let before = answered(&w);
    w.run_until(Duration::from_secs(14)).unwrap();
    let during = answered(&w) - before;
    // Site 4 is cut off from 5 s to 15 s; its two clients keep reading from it.
    assert!(
        during > 100,
        "seed {seed}: isolated site answered {during} queries"
    );
    assert_eq!(w.checker().verdict(), "ok", "seed {seed}");
}

#[test]
fn equivocating_representative_is_caught_and_replaced() {
    let seed = 44;
    let mut cfg = WorldConfig::new(shipped_topology("local-symmetric-10mbps.toml"), 3, seed);
    let rep = ServerId::new(SiteId(0), 0);
    cfg.byzantine = vec![(rep, Byzantine::Equivocate)];
    let (w, r) = run(cfg, 10);
    assert_ok(&r, seed, "equivocating representative");
    // The wrapper's conflicting Pre-Prepares are proof of misbehaviour: the site votes the
    // representative out before any timeout.
    let site0: Vec<ServerId> = w
        .cfg
        .topology
        .steward_servers()
        .filter(|s| s.site == SiteId(0) && *s != rep)
        .collect();
    let suspected: u64 = site0
        .iter()
        .map(|s| w.replica(*s).unwrap().stats().reps_suspected)
        .sum();
    assert!(suspected > 0, "seed {seed}: equivocation went unnoticed");
    assert!(site0
        .iter()
        .all(|s| w.replica(*s).unwrap().local_view() > 0));
}

/// The progress timers do not wake every server once per update: a timer still in flight
/// from the previous update serves the next one. Before, each update armed a fresh local and
/// global timer in every server, and their stale expiries were 1.3 wake-ups per server and
/// update here (0.18 now), and a tenth of a replica's wake-ups at 1 client with `--wan off`.
#[test]
fn progress_timers_do_not_fire_once_per_update() {
    let seed = 1;
    let mut cfg = WorldConfig::new(shipped_topology("local-symmetric-10mbps.toml"), 1, seed);
    cfg.sim.warmup = Duration::from_secs(1);
    let (w, r) = run(cfg, 10);
    assert_ok(&r, seed, "1 client");
    let servers: Vec<ServerId> = w.cfg.topology.steward_servers().collect();
    let replicas: Vec<&Replica> = servers.iter().map(|s| w.replica(*s).unwrap()).collect();
    let executed = replicas.iter().map(|r| r.global_aru()).max().unwrap() as f64;
    assert!(executed > 50.0, "seed {seed}: only {executed} updates");
    let expiries: u64 = replicas.iter().map(|r| r.progress_expiries).sum();
    let per_server_update = expiries as f64 / (servers.len() as f64 * executed);
    assert!(
        per_server_update < 0.5,
        "seed {seed}: {per_server_update:.3} progress-timer expiries per server and update"
    );
}

/// Planetlab at full load: the Brazil site trails the leader site (it orders a slot with the
/// Accept of Sweden, about 250 ms after the Proposal, where the US leader site orders in about
/// 180 ms) and must keep up on its own, without state transfer or a view change. On real
/// processes (20 clients, 15 s) it did not while a lag of one global window counted as "far
/// behind" (now: a lag with a Proposal missing, or beyond the live window): its servers
/// fetched order proofs over the 800 kbit/s link that carries the live
/// Proposals, fell further behind, caught up by state transfer, stalled and replaced correct
/// representatives (3 local view changes; Brazil executed 316 of 1497 updates itself). The
/// simulator (no CPU contention, no jitter) keeps the lag under one window, so the rule itself
/// is tested on one server in `damage.rs`
/// (`a_server_trailing_within_the_live_window_does_not_ask_for_reconciliation`).
#[test]
fn a_trailing_site_keeps_up_without_reconciliation() {
    let seed = 311;
    let cfg = WorldConfig::new(shipped_topology("local-planetlab.toml"), 20, seed);
    let (w, r) = run(cfg, 20);
    assert_ok(&r, seed, "planetlab, 20 clients");
    let leader_site = w.replica(ServerId::new(SiteId(0), 1)).unwrap();
    let (leader, leader_executed) = (leader_site.global_aru(), leader_site.stats().executed);
    for i in 0..4 {
        let s = w.replica(ServerId::new(SiteId(1), i)).unwrap();
        let st = s.stats();
        assert_eq!(
            st.state_transfers, 0,
            "seed {seed}: s1.{i} transferred state"
        );
        assert_eq!(
            s.local_view(),
            0,
            "seed {seed}: s1.{i} changed its local view"
        );
        assert!(
            s.global_aru() + 64 >= leader,
            "seed {seed}: s1.{i} at {} of the leader site's {leader}",
            s.global_aru()
        );
        assert!(
            st.executed * 10 >= leader_executed * 9,
            "seed {seed}: s1.{i} executed {} updates itself, s0.1 {leader_executed}",
            st.executed
        );
    }
}
