//! Crash-restart of PBFT replicas without amnesia (issue #12 item 9): simulated runs where a
//! correct backup or the primary crashes and restarts from what it persisted
//! ([`Restart`], both crash points), the amnesia attack of a Byzantine primary against a
//! restarted replica (driven message by message), and round trips of `Replica::recover`.
//! Every failure names its seed.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use bft_core::crypto::{Crypto, FastCrypto, FastIdentity, FastWorld};
use bft_core::durable::Store;
use bft_core::request::{batch_digest, Op, Update};
use bft_core::{Node, NodeExt, NodeId, Proposed};
use bft_harness::faults::{CrashPoint, Outage};
use bft_harness::testing::shipped_topology;
use steward_config::{ServerId, SiteId};

use super::*;
use crate::msg::{Commit, PrePrepare};
use crate::replica::{Action, ReplicaConfig};

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

// --- simulated runs --------------------------------------------------------------------------

/// One run of the 10-replica topology with `victim` crashing at 3 s and restarting at 5 s.
fn run_with_outage(seed: u64, victim: u32, point: CrashPoint) -> (PbftWorld, RunReport) {
    run_with(seed, victim, point, secs(3), secs(5))
}

fn run_with(
    seed: u64,
    victim: u32,
    point: CrashPoint,
    down: Duration,
    up: Duration,
) -> (PbftWorld, RunReport) {
    let mut cfg = PbftWorldConfig::new(shipped_topology("local-symmetric-10mbps.toml"), 6, seed);
    cfg.checkpoint_interval = 8;
    cfg.log_size = 16;
    cfg.view_change_timeout = secs(1);
    cfg.client_timeout = Duration::from_millis(500);
    cfg.restarts = vec![(victim, vec![Outage { down, up, point }])];
    let mut w = PbftWorld::build(cfg).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
    w.run_until((down + up) / 2).unwrap();
    assert!(w.replica(victim).is_none(), "seed {seed}: down");
    w.run_until(secs(14)).unwrap();
    let r = w.report();
    (w, r)
}

/// Safe, every client completes operations after the restart, and the restarted replica
/// executes again and reaches the others.
fn assert_rejoined(w: &mut PbftWorld, r: &RunReport, seed: u64, victim: u32, what: &str) {
    assert_eq!(r.safety, "ok", "{what}: seed {seed}: safety violation");
    let starved = w
        .checker()
        .starved_clients(w.config().clients, secs(6), secs(14));
    assert!(
        starved.is_empty(),
        "{what}: seed {seed}: starved clients {starved:?}"
    );
    let stats = w.replica_stats(victim);
    assert!(
        stats.contains(&("restarts", 1)),
        "{what}: seed {seed}: {stats:?}"
    );
    w.stop_clients();
    w.run_until(secs(17)).unwrap();
    let v = w.replica(victim).expect("up again");
    assert!(
        v.stats().executed > 0,
        "{what}: seed {seed}: the restarted replica executes again: {}",
        v.debug_state()
    );
    let ex: Vec<u64> = (0..w.n())
        .map(|i| w.replica(i).unwrap().last_executed())
        .collect();
    assert!(
        ex.iter().all(|e| *e == ex[0]),
        "{what}: seed {seed}: executed {ex:?}"
    );
    let digests: Vec<_> = (0..w.n())
        .map(|i| w.replica(i).unwrap().state_digest())
        .collect();
    assert!(
        digests.iter().all(|d| *d == digests[0]),
        "{what}: seed {seed}: states differ"
    );
    assert_eq!(
        w.replica(victim).unwrap().stats().votes_refused,
        0,
        "{what}: seed {seed}: a correct run has nothing to refuse"
    );
    // Votes are pruned at each stable checkpoint: at most a few per slot of the window.
    let l = w.config().log_size as usize;
    for i in 0..w.n() {
        let votes = w.replica(i).unwrap().ledger_len();
        assert!(
            votes <= 4 * l,
            "{what}: seed {seed}: replica {i} holds {votes} votes"
        );
    }
}

#[test]
fn a_crash_restarted_backup_rejoins() {
    for (seed, point) in [
        (301, CrashPoint::BeforeInput),
        (302, CrashPoint::AfterPersist),
    ] {
        // Replica 9 is a backup (the primary is replica 0).
        let (mut w, r) = run_with_outage(seed, 9, point);
        assert_rejoined(&mut w, &r, seed, 9, &format!("backup {point:?}"));
    }
}

#[test]
fn a_crash_restarted_primary_rejoins() {
    for (seed, point) in [
        (303, CrashPoint::BeforeInput),
        (304, CrashPoint::AfterPersist),
    ] {
        let (mut w, r) = run_with_outage(seed, 0, point);
        assert_rejoined(&mut w, &r, seed, 0, &format!("primary {point:?}"));
        // The others moved on to a later view while the primary was down.
        let view = w.replica(1).unwrap().view();
        assert!(view >= 1, "seed {seed}: view {view}");
        assert_eq!(w.replica(0).unwrap().view(), view, "seed {seed}");
    }
}

/// Back after 200 ms, before any backup's timer fires: the primary resumes in its view from
/// its persisted Pre-Prepares (its next sequence number follows the last one it voted for).
#[test]
fn a_primary_back_before_the_timeouts_resumes_ordering() {
    for (seed, point) in [
        (307, CrashPoint::BeforeInput),
        (308, CrashPoint::AfterPersist),
    ] {
        let (mut w, r) = run_with(
            seed,
            0,
            point,
            Duration::from_millis(3000),
            Duration::from_millis(3200),
        );
        assert_rejoined(&mut w, &r, seed, 0, &format!("short primary {point:?}"));
        // Nobody left view 0: the restarted primary went on ordering in it.
        for i in 0..w.n() {
            assert_eq!(w.replica(i).unwrap().view(), 0, "seed {seed}: replica {i}");
        }
    }
}

#[test]
fn a_replica_crashing_twice_next_to_an_equivocating_primary_stays_safe() {
    for seed in [305, 306] {
        let mut cfg =
            PbftWorldConfig::new(shipped_topology("local-symmetric-10mbps.toml"), 4, seed);
        cfg.checkpoint_interval = 8;
        cfg.log_size = 16;
        cfg.view_change_timeout = secs(1);
        cfg.client_timeout = Duration::from_millis(500);
        cfg.byzantine = vec![(0, Fault::EquivocatingPrimary)];
        let outage = |down, up, point| Outage {
            down: secs(down),
            up: secs(up),
            point,
        };
        cfg.restarts = vec![(
            8,
            vec![
                outage(1, 2, CrashPoint::AfterPersist),
                outage(4, 5, CrashPoint::BeforeInput),
            ],
        )];
        let mut w = PbftWorld::build(cfg).unwrap();
        w.run_until(secs(12)).unwrap();
        let r = w.report();
        assert_eq!(r.safety, "ok", "seed {seed}: safety violation");
        let starved = w.checker().starved_clients(4, secs(6), secs(12));
        assert!(starved.is_empty(), "seed {seed}: starved {starved:?}");
        assert!(
            w.replica_stats(8).contains(&("restarts", 2)),
            "seed {seed}: {:?}",
            w.replica_stats(8)
        );
    }
}

// --- the amnesia attack, message by message ---------------------------------------------------

const T: Duration = Duration::from_millis(10);
/// The fast-crypto world's seed (the attack is deterministic).
const ATTACK_SEED: u64 = 17;

fn sites() -> Vec<SiteId> {
    (0..4).map(SiteId).collect()
}

fn keys(w: &Arc<FastWorld>, id: u32) -> Crypto {
    Crypto::new(Box::new(FastCrypto::new(
        w.clone(),
        FastIdentity::Server(ServerId::new(SiteId(id as u16), id)),
    )))
}

fn replica(w: &Arc<FastWorld>, id: u32) -> Replica {
    let mut cfg = ReplicaConfig::new(id, sites(), 1, 0);
    cfg.checkpoint_interval = 4;
    cfg.log_size = 8;
    Replica::new(cfg, keys(w, id))
}

fn request(w: &Arc<FastWorld>, client: u32, ts: u64, value: u8) -> Arc<Update> {
    let mut c = Crypto::new(Box::new(FastCrypto::new(
        w.clone(),
        FastIdentity::Client(client),
    )));
    let mut u = Update {
        client,
        ts,
        op: Op::Put {
            key: b"k".to_vec(),
            value: vec![value; 8],
        },
        sig: Vec::new(),
        memo: Default::default(),
    };
    u.sig = c.sign(&u.signing_bytes());
    Arc::new(u)
}

/// Four replicas driven by hand: replica `i` is `slots[i]` (`None`: Byzantine or down, its
/// messages are forged by the test), each with the store its writes built.
struct Net {
    replicas: Vec<Option<Replica>>,
    stores: Vec<Store>,
    queue: VecDeque<(u32, u32, Message)>,
    checker: SafetyChecker,
    /// The checker identity of each replica (a restart gets a new one).
    ids: Vec<ServerId>,
    /// Message kinds the network drops (to keep the script to the attack).
    drop: &'static [&'static str],
}

impl Net {
    fn new(replicas: Vec<Option<Replica>>) -> Net {
        let n = replicas.len();
        Net {
            replicas,
            stores: vec![Store::new(); n],
            queue: VecDeque::new(),
            checker: SafetyChecker::default(),
            ids: (0..n as u32)
                .map(|i| ServerId::new(SiteId(i as u16), i))
                .collect(),
            drop: &["status"],
        }
    }

    fn r(&self, i: u32) -> &Replica {
        self.replicas[i as usize].as_ref().expect("up")
    }

    /// Handles `out` of replica `i`: writes to its store, sends to the queue, executions to
    /// the checker. Returns the sends.
    fn absorb(&mut self, i: u32, out: Vec<Action>) -> Vec<(u32, Message)> {
        let mut sends = Vec::new();
        for a in out {
            match a {
                Action::Persist(w) => w.apply(&mut self.stores[i as usize]),
                Action::Send {
                    to: NodeId::Replica(j),
                    env,
                } => {
                    sends.push((j, env.msg.clone()));
                    self.queue.push_back((i, j, env.msg));
                }
                Action::Executed(e) => self.checker.executed(self.ids[i as usize], &e),
                _ => {}
            }
        }
        sends
    }

    /// Delivers `msg` from `from` to `to` now; returns what `to` sent.
    fn deliver(&mut self, from: u32, to: u32, msg: &Message) -> Vec<(u32, Message)> {
        let Some(r) = self.replicas[to as usize].as_mut() else {
            return Vec::new();
        };
        let out = r.handle(T, NodeId::Replica(from), msg);
        self.absorb(to, out)
    }

    /// Delivers queued messages that `pass` lets through (the others are lost) until none is
    /// left.
    fn pump_only(&mut self, pass: impl Fn(u32, u32, &Message) -> bool) {
        while let Some((from, to, msg)) = self.queue.pop_front() {
            if pass(from, to, &msg) {
                self.deliver(from, to, &msg);
            }
        }
    }

    /// Delivers queued messages until none is left.
    fn pump(&mut self) {
        while let Some((from, to, msg)) = self.queue.pop_front() {
            if !self.drop.contains(&msg.kind()) {
                self.deliver(from, to, &msg);
            }
        }
    }

    /// Crashes replica `i` (everything in memory is lost) and restarts it from its store.
    fn crash_restart(&mut self, w: &Arc<FastWorld>, i: u32) {
        let mut fresh = replica(w, i);
        fresh.recover(&self.stores[i as usize]);
        let out = fresh.started(T);
        self.replicas[i as usize] = Some(fresh);
        self.ids[i as usize] = ServerId::new(SiteId(i as u16), i + 10_000);
        self.absorb(i, out);
    }
}

fn forged_pp(w: &Arc<FastWorld>, view: u64, seq: u64, u: Arc<Update>) -> Arc<PrePrepare> {
    let batch = vec![u];
    let mut pp = PrePrepare {
        view,
        seq,
        digest: batch_digest(&batch),
        replica: 0,
        batch,
        sig: Vec::new(),
    };
    pp.sig = keys(w, 0).sign(&pp.signing_bytes());
    Arc::new(pp)
}

fn forged_commit(w: &Arc<FastWorld>, view: u64, seq: u64, digest: [u8; 32]) -> Message {
    let mut c = Commit {
        view,
        seq,
        digest,
        replica: 0,
        sig: Vec::new(),
    };
    c.sig = keys(w, 0).sign(&c.signing_bytes());
    Message::Commit(Arc::new(c))
}

fn prepares_for(sends: &[(u32, Message)], digest: &[u8; 32]) -> usize {
    sends
        .iter()
        .filter(|(_, m)| matches!(m, Message::Prepare(p) if p.digest == *digest))
        .count()
}

/// The amnesia attack (n = 4, f = 1, Byzantine primary 0): backups 1 and 2 send Prepares
/// for batch A at (view 0, seq 1), and 1 prepares it; 2 crashes before it prepared and
/// restarts. The primary now sends batch B for the same (view 0, seq 1) to 2 and 3. Were 2
/// to vote for B, 2 and 3 would prepare B and, with the primary's Commit, 3 would execute B;
/// in view 1 the new primary 1 puts its own certificate for A (as old as B's) in the
/// New-View, 1 and 2 prepare A, and with the Byzantine replica's Commit 1 executes A at seq
/// 1: two correct replicas executed different batches at seq 1 (S1). The ledger makes 2
/// refuse B, so B never prepares and view 1 decides A everywhere.
#[test]
fn a_restarted_replica_refuses_a_different_batch_at_the_same_view_and_seq() {
    let seed = ATTACK_SEED;
    let w = FastWorld::new(seed, 64, 0, 0, Vec::new());
    let mut net = Net::new(vec![
        None,
        Some(replica(&w, 1)),
        Some(replica(&w, 2)),
        Some(replica(&w, 3)),
    ]);
    let (a, b) = (request(&w, 7, 1, 0xa), request(&w, 8, 1, 0xb));
    for u in [&a, &b] {
        net.checker.proposed(&Proposed {
            client: u.client,
            ts: u.ts,
            digest: u.digest(),
        });
    }
    let pp_a = forged_pp(&w, 0, 1, a);
    let pp_b = forged_pp(&w, 0, 1, b);
    // View 0: 1 and 2 prepare A; 2's Prepare reaches 1 only, then 2 crashes.
    net.deliver(0, 1, &Message::PrePrepare(pp_a.clone()));
    let from2 = net.deliver(0, 2, &Message::PrePrepare(pp_a.clone()));
    assert_eq!(prepares_for(&from2, &pp_a.digest), 3, "seed {seed}");
    let p2 = from2[0].1.clone();
    net.queue.clear();
    net.deliver(2, 1, &p2);
    net.queue.clear();
    assert!(
        net.r(1).debug_state().contains("prepared=Some(0)"),
        "seed {seed}: {}",
        net.r(1).debug_state()
    );
    net.crash_restart(&w, 2);
    net.queue.clear();
    // The attack: B for the same (view, seq) to the restarted 2 and to 3.
    let from2 = net.deliver(0, 2, &Message::PrePrepare(pp_b.clone()));
    assert_eq!(
        prepares_for(&from2, &pp_b.digest),
        0,
        "seed {seed}: the restarted replica prepared a second batch at (0, 1)"
    );
    assert_eq!(net.r(2).stats().votes_refused, 1, "seed {seed}");
    net.deliver(0, 3, &Message::PrePrepare(pp_b.clone()));
    // B's Prepares between 2 and 3, and every Commit to 3 (with the primary's): 3 executes B
    // if 2 prepared it; 2 hears no Commit and does not.
    net.queue
        .push_back((0, 3, forged_commit(&w, 0, 1, pp_b.digest)));
    net.pump_only(|_, to, m| to == 3 || (to == 2 && m.kind() == "prepare"));
    assert_eq!(net.r(3).last_executed(), 0, "seed {seed}: B committed");
    // View 1 (primary 1): everyone leaves view 0; the Byzantine replica commits A again.
    for i in 1..=3 {
        let r = net.replicas[i as usize].as_mut().expect("up");
        r.start_view_change(1);
        let out = r.fire(T, 0);
        net.absorb(i, out);
    }
    net.queue
        .push_back((0, 1, forged_commit(&w, 1, 1, pp_a.digest)));
    net.pump();
    for i in 1..=3 {
        assert_eq!(
            net.r(i).view(),
            1,
            "seed {seed}: {}",
            net.r(i).debug_state()
        );
        assert!(
            net.r(i).is_active(),
            "seed {seed}: {}",
            net.r(i).debug_state()
        );
        assert_eq!(net.r(i).last_executed(), 1, "seed {seed}: view 1 decides A");
    }
    assert_eq!(net.checker.verdict(), "ok", "seed {seed}");
}

// --- recover() round trips ------------------------------------------------------------------

/// Four correct replicas ordering `k` requests of client 5 (K = 4, L = 8).
fn ordered(w: &Arc<FastWorld>, k: u64) -> Net {
    let mut net = Net::new((0..4).map(|i| Some(replica(w, i))).collect());
    net.drop = &[];
    for ts in 1..=k {
        let u = request(w, 5, ts, ts as u8);
        net.checker.proposed(&Proposed {
            client: 5,
            ts,
            digest: u.digest(),
        });
        let out =
            net.replicas[0]
                .as_mut()
                .unwrap()
                .handle(T, NodeId::Client(5), &Message::Request(u));
        net.absorb(0, out);
        net.pump();
    }
    net
}

#[test]
fn recover_restores_checkpoint_votes_certificates_and_next_seq() {
    let seed = ATTACK_SEED;
    let w = FastWorld::new(seed, 64, 0, 0, Vec::new());
    let mut net = ordered(&w, 6);
    // Slot 7 prepares at the backups but commits nowhere (its Commits are lost).
    let u = request(&w, 5, 7, 7);
    net.drop = &["commit"];
    let out = net.replicas[0]
        .as_mut()
        .unwrap()
        .handle(T, NodeId::Client(5), &Message::Request(u));
    net.absorb(0, out);
    net.pump();
    for i in 0..4 {
        let before = net.r(i);
        assert_eq!(before.last_executed(), 6, "seed {seed}");
        assert_eq!(before.stable_checkpoint(), 4, "seed {seed}");
        let mut after = replica(&w, i);
        after.recover(&net.stores[i as usize]);
        assert_eq!(after.view(), 0);
        assert!(after.is_active());
        assert_eq!(after.stable_checkpoint(), 4, "replica {i}");
        assert_eq!(after.last_executed(), 4, "resumes from the checkpoint");
        assert_eq!(after.ledger_len(), before.ledger_len(), "replica {i}");
        // The primary continues after seq 7; the prepared certificates above 4 are back.
        if i == 0 {
            assert_eq!(after.next_seq, 8);
        }
        let prepared: Vec<u64> = after
            .log
            .iter()
            .filter(|(_, s)| s.prepared.is_some())
            .map(|(n, _)| *n)
            .collect();
        assert_eq!(
            prepared,
            vec![5, 6, 7],
            "replica {i}: {}",
            after.debug_state()
        );
        // The state at the checkpoint is the one every replica certified.
        let snap = net.r(i).stable.snapshot.clone().unwrap();
        assert_eq!(after.state_digest(), snap.digest());
        // Its View-Change reports every certificate it had before the crash.
        after.start_view_change(1);
        let out = after.fire(T, 0);
        let reported: Vec<u64> = out
            .iter()
            .find_map(|a| match a {
                Action::Send { env, .. } => match &env.msg {
                    Message::ViewChange(vc) => {
                        Some(vc.prepared.iter().map(|c| c.pre_prepare.seq).collect())
                    }
                    _ => None,
                },
                _ => None,
            })
            .expect("a View-Change");
        assert_eq!(reported, vec![5, 6, 7], "replica {i}");
    }
    // Votes and records at or below the stable checkpoint were deleted from the store.
    let low = net.stores[1]
        .keys()
        .filter(|k| matches!(k.first(), Some(b'p') | Some(b'o')))
        .count();
    assert_eq!(low, 3, "seed {seed}: slots 5..=7 only");
}

#[test]
fn recover_restores_the_view_and_whether_it_was_entered() {
    let seed = ATTACK_SEED;
    let w = FastWorld::new(seed, 64, 0, 0, Vec::new());
    let mut net = ordered(&w, 2);
    // Replicas 1..3 move to view 1 and enter it; replica 0 sends a View-Change for view 1
    // but hears nothing more.
    net.drop = &["status"];
    for i in 0..4 {
        let r = net.replicas[i as usize].as_mut().unwrap();
        r.start_view_change(1);
        let out = r.fire(T, 0);
        let sends = net.absorb(i, out);
        if i == 0 {
            assert!(sends.iter().any(|(_, m)| m.kind() == "view-change"));
        }
    }
    net.replicas[0] = None;
    net.pump();
    for i in 1..4 {
        assert!(net.r(i).is_active(), "{}", net.r(i).debug_state());
        let mut after = replica(&w, i);
        after.recover(&net.stores[i as usize]);
        assert_eq!((after.view(), after.is_active()), (1, true), "replica {i}");
        assert!(after.new_view.is_some());
    }
    let mut zero = replica(&w, 0);
    zero.recover(&net.stores[0]);
    assert_eq!((zero.view(), zero.is_active()), (1, false));
    // It retransmits the View-Change it sent before the crash, and waits for the New-View.
    let out = zero.started(T);
    assert!(out
        .iter()
        .any(|a| matches!(a, Action::Timer { token, .. } if (token >> 48) & 0xff == 2)));
    let out = zero.fire(T * 60, 1 << 48);
    assert!(
        out.iter()
            .any(|a| matches!(a, Action::Send { env, .. } if env.msg.kind() == "view-change")),
        "{}",
        zero.debug_state()
    );
}

// --- the campaign -----------------------------------------------------------------------------

#[test]
fn campaign_seeds_with_crash_restarts_stay_safe_and_live() {
    let runs = campaign(2000..2036);
    let bad: Vec<&CampaignRun> = runs.iter().filter(|r| !r.ok()).collect();
    assert!(bad.is_empty(), "failed seeds: {bad:#?}");
    let crashed = runs
        .iter()
        .filter(|r| r.scenario.ends_with("+crash-restart"))
        .count();
    assert!(crashed >= 4, "{crashed} seeds crash-restarted a replica");
}
