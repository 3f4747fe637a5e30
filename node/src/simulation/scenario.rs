//! Built-in fault scenarios for `loadgen simulate --scenario`, and the randomized campaign for
//! `loadgen campaign`.

use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use steward_config::{ClientPlacement, ServerId, SiteId, Topology};

use super::{Byzantine, World, WorldConfig};
use bft_core::ClientId;

/// A named scenario.
pub struct ScenarioInfo {
    /// Name used on the command line.
    pub name: &'static str,
    /// What it does.
    pub description: &'static str,
    /// An attack of the bounded-damage catalog: Byzantine servers or clients from the start,
    /// measured against the same run without them (`loadgen simulate` adds the fault-free
    /// reference and the ratio to each row).
    pub attack: bool,
}

/// Every built-in scenario.
pub const SCENARIOS: &[ScenarioInfo] = &[
    ScenarioInfo {
        name: "none",
        description: "no fault",
        attack: false,
    },
    ScenarioInfo {
        name: "leader-rep-crash",
        description: "the leader site's representative crashes at the fault time (local view change)",
        attack: false,
    },
    ScenarioInfo {
        name: "leader-site-partition",
        description: "the leader site is cut off from all others at the fault time and healed at \
                      3/4 of the run (global view change, then reconciliation); clients spread over all sites",
        attack: false,
    },
    ScenarioInfo {
        name: "site-partition",
        description: "the last (non-leader) site is cut off at the fault time and healed at 3/4 of \
                      the run; clients spread over all sites",
        attack: false,
    },
    ScenarioInfo {
        name: "minority-sites",
        description: "every site is cut off from every other at the fault time (no majority) and \
                      healed at 3/4 of the run; clients spread over all sites",
        attack: false,
    },
    ScenarioInfo {
        name: "byzantine-mix",
        description: "f Byzantine servers in every site from the start: an equivocating leader \
                      representative, an Accept-withholding representative, corrupt shares, a \
                      spammer of malformed/forged/replayed messages, an update-dropping \
                      representative, silent and slow servers",
        attack: true,
    },
    ScenarioInfo {
        name: "flooding-client",
        description: "attack 1: a Byzantine client at the leader site sends 20 validly signed \
                      updates with ever newer timestamps every 5 ms",
        attack: true,
    },
    ScenarioInfo {
        name: "replayed-query",
        description: "attack 2: a Byzantine client at the leader site replays 10 copies of one \
                      signed read-only query every 5 ms",
        attack: true,
    },
    ScenarioInfo {
        name: "forged-accepts",
        description: "attack 5: f servers of every site send far-ahead Accepts with forged site \
                      signatures to every other site on every retransmission tick",
        attack: true,
    },
    ScenarioInfo {
        name: "partial-sig-spam",
        description: "attack 6: f servers of every site send their representative 1,000 validly \
                      signed Partial_Sigs on random contents on every retransmission tick",
        attack: true,
    },
    ScenarioInfo {
        name: "silent-signers",
        description: "attack 3: f servers of every site send wrong threshold shares without \
                      proofs and never answer a proof request",
        attack: true,
    },
    ScenarioInfo {
        name: "wrong-unproven-shares",
        description: "attack 3, variant: f servers of every site send wrong shares without \
                      proofs but prove their right shares when asked",
        attack: true,
    },
    ScenarioInfo {
        name: "recon-requests",
        description: "attack 4: f servers of every site ask every server of every other site \
                      for reconciliation on every tick, claiming to be 64 behind",
        attack: true,
    },
    ScenarioInfo {
        name: "equivocating-leader",
        description: "the leader site's representative sends conflicting Pre-Prepares to the two \
                      halves of its site",
        attack: true,
    },
    ScenarioInfo {
        name: "withholding-reps",
        description: "every non-leader site's representative withholds its site's Accepts",
        attack: true,
    },
    ScenarioInfo {
        name: "dropping-reps",
        description: "every site's representative drops the client updates it receives",
        attack: true,
    },
    ScenarioInfo {
        name: "empty-batches",
        description: "the leader site's representative sequences only empty batches (fake \
                      progress)",
        attack: true,
    },
    ScenarioInfo {
        name: "corrupt-shares",
        description: "f servers of every site send corrupt threshold shares",
        attack: true,
    },
    ScenarioInfo {
        name: "slow-signers",
        description: "f designated signers of every site send each threshold share late, just \
                      short of their representative's backup timer (T1/20)",
        attack: true,
    },
    ScenarioInfo {
        name: "wrong-results",
        description: "f servers of every site sign replies with results no correct server \
                      computed",
        attack: true,
    },
    ScenarioInfo {
        name: "spammers",
        description: "f servers of every site send malformed, mis-signed, forged and replayed \
                      messages",
        attack: true,
    },
    ScenarioInfo {
        name: "silent-servers",
        description: "f servers of every site, the representatives among them, are silent",
        attack: true,
    },
    ScenarioInfo {
        name: "slow-leader-rep",
        description: "attack 7 (in part): the leader site's representative takes 50 ms extra \
                      for every input, slow but not slow enough for its timeouts",
        attack: true,
    },
    ScenarioInfo {
        name: "slow-combiner",
        description: "the leader site's representative sequences promptly but holds each \
                      slot's Proposal shares before combining, just under the combine deadline \
                      and pace it profiled on a fault-free run (with --no-combine-deadline: \
                      just under the timers); two held slots close the local window",
        attack: true,
    },
    ScenarioInfo {
        name: "slow-disseminator",
        description: "attack 7: the leader site's representative sequences and combines \
                      promptly but sends each Proposal to the other sites late, just under \
                      the turnaround bound its peers forward by, as profiled on a fault-free \
                      run (with --no-forwarding: 0.9·T2 late, just under the timers)",
        attack: true,
    },
    ScenarioInfo {
        name: "slow-accepts",
        description: "attack 7: every non-leader site's representative sends its site's \
                      Accepts to the other sites late, just under the turnaround bound of \
                      every site, as profiled on a fault-free run (with --no-forwarding: \
                      3/4·(T1 − the longest WAN round trip) late, just under its site's \
                      timer)",
        attack: true,
    },
    ScenarioInfo {
        name: "slow-accept-relay",
        description: "attack 7: the leader site's representative relays the other sites' \
                      Accepts to its own site late, just under the turnaround bound of its \
                      peers, as profiled on a fault-free run (with --no-forwarding: 0.9·T2 \
                      late, just under the timers)",
        attack: true,
    },
    ScenarioInfo {
        name: "slow-sequencer",
        description: "attack 7: the leader site's representative fills one slot per \
                      4·T2/(clients + 4), so every update is ordered just before the starvation \
                      timeout and execution never stalls for T2",
        attack: true,
    },
];

/// View-change and recovery figures of a scenario run.
#[derive(Clone, Debug, Default)]
pub struct ScenarioStats {
    /// Scenario name.
    pub scenario: String,
    /// Local view changes, summed over sites (each site counted once).
    pub local_view_changes: u64,
    /// Global view changes.
    pub global_view_changes: u64,
    /// From the fault until ordering resumed after the longest execution pause that followed
    /// it (None without fault or progress).
    pub recovery_ms: Option<f64>,
}

fn spread_clients(topo: &mut Topology) {
    topo.clients = ClientPlacement::Weights(vec![1.0; topo.sites.len()]);
}

/// Configure `cfg` for scenario `name`, with the fault at `fault_at` and a run ending at `end`.
pub fn apply_scenario(
    cfg: &mut WorldConfig,
    name: &str,
    fault_at: Duration,
    end: Duration,
) -> Result<(), String> {
    let sites = cfg.topology.sites.len();
    let heal = fault_at + (end.saturating_sub(fault_at)) / 2;
    cfg.scenario = name.to_string();
    match name {
        "none" => {}
        "leader-rep-crash" => {
            cfg.byzantine
                .push((ServerId::new(SiteId(0), 0), Byzantine::CrashAt(fault_at)));
            cfg.fault_at = Some(fault_at);
        }
        "leader-site-partition" => {
            spread_clients(&mut cfg.topology);
            let rest: Vec<SiteId> = (1..sites as u16).map(SiteId).collect();
            cfg.partitions.push((fault_at, vec![vec![SiteId(0)], rest]));
            cfg.partitions.push((heal, Vec::new()));
            cfg.fault_at = Some(fault_at);
        }
        "site-partition" => {
            spread_clients(&mut cfg.topology);
            let last = SiteId(sites as u16 - 1);
            let rest: Vec<SiteId> = (0..sites as u16 - 1).map(SiteId).collect();
            cfg.partitions.push((fault_at, vec![vec![last], rest]));
            cfg.partitions.push((heal, Vec::new()));
            cfg.fault_at = Some(fault_at);
        }
        "minority-sites" => {
            spread_clients(&mut cfg.topology);
            let alone: Vec<Vec<SiteId>> = (0..sites as u16).map(|s| vec![SiteId(s)]).collect();
            cfg.partitions.push((fault_at, alone));
            cfg.partitions.push((heal, Vec::new()));
            cfg.fault_at = Some(heal);
        }
        "byzantine-mix" => {
            let variants = [
                Byzantine::Equivocate,
                Byzantine::WithholdAccepts,
                Byzantine::CorruptShares,
                Byzantine::Spammer,
                Byzantine::DropUpdates,
                Byzantine::Silent,
                Byzantine::Slow(Duration::from_millis(20)),
            ];
            for s in &cfg.topology.sites {
                for k in 0..s.f {
                    // Representatives (index 0) misbehave where that hurts most.
                    let v = variants[(s.id.index() + k as usize) % variants.len()];
                    let index = if k == 0 { 0 } else { s.servers - k };
                    cfg.byzantine.push((ServerId::new(s.id, index), v));
                }
            }
            cfg.fault_at = Some(Duration::ZERO);
        }
        "flooding-client" => {
            cfg.flooding_clients = vec![(SiteId(0), Duration::from_millis(5), 20)];
            cfg.fault_at = Some(Duration::ZERO);
        }
        "replayed-query" => {
            cfg.replaying_clients = vec![(SiteId(0), Duration::from_millis(5), 10)];
            cfg.fault_at = Some(Duration::ZERO);
        }
        "forged-accepts" => each_site_f(cfg, false, Byzantine::ForgedAccepts),
        "partial-sig-spam" => each_site_f(cfg, false, Byzantine::PartialSigSpam(1000)),
        "corrupt-shares" => each_site_designated(cfg, Byzantine::CorruptShares),
        "silent-signers" => each_site_designated(cfg, Byzantine::SilentSigner),
        "wrong-unproven-shares" => each_site_designated(cfg, Byzantine::WrongUnprovenShares),
        "slow-signers" => {
            let t1 = crate::replica::local_timeout_t1(&cfg.topology);
            let backup = t1 / crate::replica::designated::BACKUP_DIVISOR;
            each_site_designated(cfg, Byzantine::SlowShares(backup * 9 / 10))
        }
        "recon-requests" => each_site_f(cfg, false, Byzantine::ReconRequests(64)),
        "wrong-results" => each_site_f(cfg, false, Byzantine::WrongResults),
        "spammers" => each_site_f(cfg, false, Byzantine::Spammer),
        "silent-servers" => each_site_f(cfg, true, Byzantine::Silent),
        "equivocating-leader" => leader_rep(cfg, Byzantine::Equivocate),
        "empty-batches" => leader_rep(cfg, Byzantine::EmptyBatches),
        "slow-leader-rep" => leader_rep(cfg, Byzantine::Slow(Duration::from_millis(50))),
        "slow-sequencer" => {
            let every = slow_sequencer_period(cfg);
            leader_rep(cfg, Byzantine::SlowSequencer(every))
        }
        "slow-combiner" if !cfg.combine_deadline => {
            // No combine deadline to stay under: two slots in flight (the local window), each
            // held just under the stall and starvation timers.
            let hold = (slow_sequencer_period(cfg) * 2).min(leader_t2(cfg) * 9 / 10);
            let holds = super::faults::Holds::uniform(hold);
            leader_rep(cfg, Byzantine::SlowCombiner(Duration::ZERO, holds));
        }
        "slow-combiner" => {
            let holds = calibrated_holds(cfg)?;
            leader_rep(cfg, Byzantine::SlowCombiner(CALIBRATION, holds));
            cfg.fault_at = Some(CALIBRATION);
        }
        "slow-disseminator" if cfg.forwarding => {
            let hold = calibrated_turnaround_slack(cfg, &[SiteId(0)])?;
            leader_rep(cfg, Byzantine::SlowDisseminator(hold));
        }
        "slow-disseminator" => {
            let hold = leader_t2(cfg) * 9 / 10;
            leader_rep(cfg, Byzantine::SlowDisseminator(hold));
        }
        "slow-accepts" if cfg.forwarding => {
            let all: Vec<SiteId> = cfg.topology.site_ids().collect();
            let hold = calibrated_turnaround_slack(cfg, &all)?;
            for s in 1..sites as u16 {
                cfg.byzantine
                    .push((ServerId::new(SiteId(s), 0), Byzantine::SlowAccepts(hold)));
            }
            cfg.fault_at = Some(Duration::ZERO);
        }
        "slow-accept-relay" => {
            let hold = if cfg.forwarding {
                calibrated_turnaround_slack(cfg, &[SiteId(0)])?
            } else {
                leader_t2(cfg) * 9 / 10
            };
            leader_rep(cfg, Byzantine::SlowAcceptRelay(hold));
        }
        "slow-accepts" => {
            // Non-leader sites time their representatives with T1 from the Proposal's arrival
            // to its global order, a round trip later when nothing is held: at
            // `local-symmetric-10mbps` (T1 500 ms, round trip 100 ms) holds of 0.9·T2 and
            // 0.9·T1 had every representative replaced once, 300 ms none.
            let t1 = super::local_timeout_t1(&cfg.topology);
            let hold = t1.saturating_sub(super::max_round_trip(&cfg.topology)) * 3 / 4;
            for s in 1..sites as u16 {
                cfg.byzantine
                    .push((ServerId::new(SiteId(s), 0), Byzantine::SlowAccepts(hold)));
            }
            cfg.fault_at = Some(Duration::ZERO);
        }
        "withholding-reps" => {
            for s in 1..sites as u16 {
                cfg.byzantine
                    .push((ServerId::new(SiteId(s), 0), Byzantine::WithholdAccepts));
            }
            cfg.fault_at = Some(Duration::ZERO);
        }
        "dropping-reps" => {
            for s in 0..sites as u16 {
                cfg.byzantine
                    .push((ServerId::new(SiteId(s), 0), Byzantine::DropUpdates));
            }
            cfg.fault_at = Some(Duration::ZERO);
        }
        other => {
            let names: Vec<&str> = SCENARIOS.iter().map(|s| s.name).collect();
            return Err(format!(
                "unknown scenario {other:?} (one of: {})",
                names.join(", ")
            ));
        }
    }
    Ok(())
}

/// `behaviour` at f servers of every site from the start: the highest-numbered ones, or with
/// `with_rep` the representative and the f - 1 highest-numbered.
fn each_site_f(cfg: &mut WorldConfig, with_rep: bool, behaviour: Byzantine) {
    for s in &cfg.topology.sites {
        for k in 0..s.f {
            let index = if with_rep && k == 0 {
                0
            } else {
                s.servers - 1 - k
            };
            cfg.byzantine.push((ServerId::new(s.id, index), behaviour));
        }
    }
    cfg.fault_at = Some(Duration::ZERO);
}

/// f servers of every site that are designated signers in the first local view (indices 1 to
/// f, right after representative 0): the threshold-share attacks, which excused servers
/// (the last f indices) could not mount, since their shares are only asked for when needed.
fn each_site_designated(cfg: &mut WorldConfig, behaviour: Byzantine) {
    for s in &cfg.topology.sites {
        for index in 1..=s.f {
            cfg.byzantine.push((ServerId::new(s.id, index), behaviour));
        }
    }
    cfg.fault_at = Some(Duration::ZERO);
}

/// The slowest pace at which a leader-site representative can fill slots (one update each,
/// the paper's batch of one) without any timeout seeing it: each of the closed-loop clients'
/// updates is ordered before it waits STARVATION_FACTOR·T2, and execution never pauses for T2.
pub fn slow_sequencer_period(cfg: &WorldConfig) -> Duration {
    let t2 = leader_t2(cfg);
    let starve = t2 * crate::replica::STARVATION_FACTOR;
    (starve / (cfg.clients + 4)).min(t2 * 9 / 10)
}

/// The leader site's T2 ((f + 2) · T1, the stall timeout of its servers), with the T1 the
/// simulated servers run with.
fn leader_t2(cfg: &WorldConfig) -> Duration {
    super::local_timeout_t1(&cfg.topology) * (cfg.topology.sites[0].f + 2)
}

/// How much of the calibrated combine deadline and pace bound the `slow-combiner` holds.
const SLOW_COMBINER_PERCENT: u32 = 95;

/// Slots of every `PACE_SAMPLES` the `slow-combiner` holds almost to the deadline: fewer than
/// half, with a margin of two for slots a correct server misses (it then judges the median
/// of a window that reaches further back).
const SLOW_COMBINER_LONG_SLOTS: u64 = crate::replica::PACE_SAMPLES as u64 / 2 - 2;

/// How long the `slow-combiner` profiles the fault-free run before it attacks (the deadline
/// of the first second, from few samples, is lower than the steady one).
const CALIBRATION: Duration = Duration::from_secs(3);

/// The strongest `slow-combiner` the watch does not catch, from a profile of `cfg` (see
/// [`calibrated_bounds`]): a few slots of every `PACE_SAMPLES` held 95% of the combine
/// deadline, the others 95% of the pace bound (the pace is the median wait), each less what
/// a prompt combine takes (the watch counts from the share, the hold from the first share's
/// arrival, so the prompt combine's time comes on top of the hold). With the combine deadline
/// off, nothing bounds the hold but the timers.
fn calibrated_holds(cfg: &WorldConfig) -> Result<super::faults::Holds, String> {
    let (deadline, pace_bound, wait) = calibrated_bounds(cfg)?;
    let hold = |bound: Duration| (bound * SLOW_COMBINER_PERCENT / 100).saturating_sub(wait);
    Ok(super::faults::Holds {
        long: hold(deadline),
        short: hold(pace_bound),
        long_slots: SLOW_COMBINER_LONG_SLOTS,
    })
}

/// The combine deadline and pace bound of a correct leader-site server after [`CALIBRATION`]
/// of `cfg` without faults, and the median time a prompt combine took it: what a white-box
/// attacker learns by profiling the deployment.
fn calibrated_bounds(cfg: &WorldConfig) -> Result<(Duration, Duration, Duration), String> {
    let mut probe = cfg.clone();
    probe.byzantine.clear();
    probe.fault_at = None;
    let mut world = World::build(probe).map_err(|e| format!("slow-combiner calibration: {e}"))?;
    world
        .run_until(CALIBRATION)
        .map_err(|e| format!("slow-combiner calibration: {e}"))?;
    world
        .replica(ServerId::new(SiteId(0), 1))
        .map(|r| {
            let wait = r.combine_wait().unwrap_or_default();
            (r.combine_deadline(), r.combine_pace_bound(), wait)
        })
        .ok_or_else(|| "slow-combiner calibration: no server 1 at the leader site".into())
}

/// How much of the calibrated slack the `slow-disseminator` and `slow-accepts` hold.
const SLOW_FORWARD_PERCENT: u32 = 95;

/// The longest hold of a representative's messages abroad that no correct server of `sites`
/// sees late: the least slack, over their first non-representatives, between the turnaround
/// bound and the median turnaround after [`CALIBRATION`] of `cfg` without faults (what a
/// white-box attacker learns by profiling the deployment), 95% of it.
fn calibrated_turnaround_slack(cfg: &WorldConfig, sites: &[SiteId]) -> Result<Duration, String> {
    let mut probe = cfg.clone();
    probe.byzantine.clear();
    probe.fault_at = None;
    let err = |e: String| format!("turnaround calibration: {e}");
    let mut world = World::build(probe).map_err(|e| err(e.to_string()))?;
    world
        .run_until(CALIBRATION)
        .map_err(|e| err(e.to_string()))?;
    let mut slack: Option<Duration> = None;
    for site in sites {
        let r = world
            .replica(ServerId::new(*site, 1))
            .ok_or_else(|| err(format!("no server 1 at site {site}")))?;
        let (Some(bound), Some(turnaround)) = (r.turnaround_bound(), r.turnaround()) else {
            return Err(err(format!("site {site} measured no turnaround")));
        };
        let s = bound.saturating_sub(turnaround);
        slack = Some(slack.map_or(s, |m| m.min(s)));
    }
    Ok(slack.unwrap_or_default() * SLOW_FORWARD_PERCENT / 100)
}

/// `behaviour` at the leader site's (site 0's) representative from the start.
fn leader_rep(cfg: &mut WorldConfig, behaviour: Byzantine) {
    cfg.byzantine.push((ServerId::new(SiteId(0), 0), behaviour));
    cfg.fault_at = Some(Duration::ZERO);
}

impl World {
    /// View changes and recovery time of this run.
    pub fn scenario_stats(&self) -> ScenarioStats {
        let mut local = 0;
        let mut global = 0;
        for site in &self.cfg.topology.sites {
            let mut site_max = 0;
            for id in site.server_ids() {
                if self.is_byzantine(id) {
                    continue;
                }
                if let Some(r) = self.replica(id) {
                    site_max = site_max.max(r.stats().local_view_changes);
                    global = global.max(r.stats().global_view_changes);
                }
            }
            local += site_max;
        }
        // The first execution after the fault is often an update already in flight; what
        // matters is when ordering resumed after the stall the fault caused.
        let recovery_ms = self.cfg.fault_at.and_then(|t| {
            self.checker()
                .resumed_after(t)
                .map(|e| (e - t).as_secs_f64() * 1e3)
        });
        ScenarioStats {
            scenario: self.cfg.scenario.clone(),
            local_view_changes: local,
            global_view_changes: global,
            recovery_ms,
        }
    }
}

/// Outcome of a randomized campaign.
#[derive(Clone, Debug, Default)]
pub struct CampaignOutcome {
    /// Seeds run.
    pub seeds: u64,
    /// (seed, violation) for runs that broke safety.
    pub safety_violations: Vec<(u64, String)>,
    /// Seeds where a client was not served, or a correct server had not caught up, within
    /// the bound after the last fault.
    pub liveness_failures: Vec<u64>,
}

/// Run one randomized campaign seed on `topology`: random clients (spread over the sites, or
/// all at site 0 as in the shipped topologies), up to f Byzantine servers per site of random
/// kinds (the red team's behaviours included), random duplication and reordering, and a random
/// partition that heals. Safety (S1, S2, result agreement, replies) is checked all along;
/// liveness is bounded, per client and per server ([`run_until_served`]): once the last
/// scheduled fault has struck ([`WorldConfig::stable_at`]), every client must complete an
/// operation it submitted after that moment, and every correct server must execute up to
/// where the most advanced correct server was, within [`CAMPAIGN_LIVENESS_BOUND`]. The seed
/// stops as soon as that holds (most seeds a second or two after the heal); the returned
/// [`Liveness`] says what was missing at the bound (a starved client or a lagging correct
/// server is a liveness failure).
pub fn campaign_seed(topology: &Topology, seed: u64) -> Result<(World, Liveness), String> {
    campaign_seed_with_tail(topology, seed, Duration::ZERO)
}

/// [`campaign_seed`], then, if the seed was live and `tail` is not zero, a second look: the
/// seed runs on `tail` past the moment it was judged served, and is judged again from there
/// as if a fault had struck then (every client completes two more operations and every
/// correct server reaches the frontier of that moment, within [`CAMPAIGN_LIVENESS_BOUND`]).
/// It catches a stall that sets in long after the faults (a served seed otherwise stops a
/// second or two after its last fault). The returned [`Liveness`] is the second look's when
/// there is one.
pub fn campaign_seed_with_tail(
    topology: &Topology,
    seed: u64,
    tail: Duration,
) -> Result<(World, Liveness), String> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut topo = topology.clone();
    if rng.gen_bool(0.7) {
        spread_clients(&mut topo);
    }
    let clients = rng.gen_range(2..=8);
    let mut cfg = WorldConfig::new(topo.clone(), clients, seed);
    cfg.scenario = "campaign".into();
    let variants = [
        Byzantine::Equivocate,
        Byzantine::WithholdAccepts,
        Byzantine::CorruptShares,
        Byzantine::Spammer,
        Byzantine::DropUpdates,
        Byzantine::Silent,
        Byzantine::Slow(Duration::from_millis(10)),
        Byzantine::CrashAt(Duration::from_secs(rng.gen_range(1..10))),
        Byzantine::EmptyBatches,
        Byzantine::WrongResults,
        Byzantine::SilentInGlobalViewChange,
        Byzantine::SelectiveProposal(
            Duration::from_millis(rng.gen_range(1000..10_000)),
            rng.gen_range(1..(1u64 << topo.sites.len())),
        ),
    ];
    for s in &topo.sites {
        let faulty = rng.gen_range(0..=s.f);
        let mut picked = std::collections::BTreeSet::new();
        for _ in 0..faulty {
            let index = rng.gen_range(0..s.servers);
            if picked.insert(index) {
                let v = variants[rng.gen_range(0..variants.len())];
                cfg.byzantine.push((ServerId::new(s.id, index), v));
            }
        }
    }
    // Correct servers that crash and restart (with f Byzantine servers in their site, a site
    // is short of a quorum while one is down: safety must hold all the same).
    if rng.gen_bool(0.35) {
        for _ in 0..rng.gen_range(1..=2) {
            let site = &topo.sites[rng.gen_range(0..topo.sites.len())];
            let id = ServerId::new(site.id, rng.gen_range(0..site.servers));
            if cfg.byzantine.iter().any(|(b, _)| *b == id) {
                continue;
            }
            let down = Duration::from_millis(rng.gen_range(2_000..35_000));
            let point = if rng.gen_bool(0.5) {
                super::CrashPoint::AfterPersist
            } else {
                super::CrashPoint::BeforeInput
            };
            cfg.restarts.push((
                id,
                super::Outage {
                    down,
                    up: down + Duration::from_millis(rng.gen_range(500..5_000)),
                    point,
                },
            ));
        }
    }
    // Asymmetric delays: one direction of a few WAN links slowed.
    if rng.gen_bool(0.3) {
        for _ in 0..rng.gen_range(1..=3) {
            let sites = topo.sites.len() as u16;
            let from = SiteId(rng.gen_range(0..sites));
            let to = SiteId((from.0 + rng.gen_range(1..sites)) % sites);
            cfg.slow_links.push(super::SlowLink {
                at: Duration::from_millis(rng.gen_range(0..20_000)),
                from,
                to,
                extra: Duration::from_millis(rng.gen_range(5..400)),
            });
        }
    }
    // Real crypto (RSA threshold shares, real signatures) on a share of the seeds, at f = 1
    // (the same code paths as at f = 5; a real-crypto f = 5 seed costs as much as a hundred
    // fast ones).
    let real_crypto = rng.gen_bool(0.005);
    if real_crypto && topo.sites.iter().all(|s| s.f <= 1) {
        cfg.crypto = super::CryptoMode::Real;
        cfg.threshold_bits = 512;
    }
    if rng.gen_bool(0.5) {
        cfg.sim.duplicate_prob = 0.02;
        cfg.sim.reorder_prob = 0.1;
        cfg.sim.reorder_max = Duration::from_millis(20);
    }
    let cut = Duration::from_secs(rng.gen_range(3..8));
    let heal = Duration::from_secs(15);
    let sites = topo.sites.len() as u16;
    match rng.gen_range(0..4) {
        0 => {}
        1 => {
            let rest: Vec<SiteId> = (1..sites).map(SiteId).collect();
            cfg.partitions.push((cut, vec![vec![SiteId(0)], rest]));
        }
        2 => {
            let alone: Vec<Vec<SiteId>> = (0..sites).map(|s| vec![SiteId(s)]).collect();
            cfg.partitions.push((cut, alone));
        }
        _ => {
            let victim = SiteId(rng.gen_range(0..sites));
            let rest: Vec<SiteId> = (0..sites).map(SiteId).filter(|s| *s != victim).collect();
            cfg.partitions.push((cut, vec![vec![victim], rest]));
        }
    }
    cfg.partitions.push((heal, Vec::new()));
    let stable_at = cfg.stable_at();
    if std::env::var_os("STEWARD_CAMPAIGN_DESCRIBE").is_some() {
        eprintln!(
            "campaign: seed {seed}: {} stable_at={stable_at:?}",
            cfg.describe()
        );
    }
    let mut world = World::build(cfg).map_err(|e| e.to_string())?;
    let mut live = run_until_served(&mut world, clients, stable_at, CAMPAIGN_LIVENESS_BOUND)
        .map_err(|e| format!("seed {seed}: {e}"))?;
    if live.ok() && !tail.is_zero() {
        let again = world.now() + tail;
        live = run_until_served(&mut world, clients, again, CAMPAIGN_LIVENESS_BOUND)
            .map_err(|e| format!("seed {seed}: {e}"))?;
    }
    Ok((world, live))
}

/// How long after the last scheduled fault every campaign client has to complete an
/// operation it submitted after that fault: what the earlier fixed-length campaign allowed
/// (a completion in 45-60 s with the heal at 15 s). First completions after the last fault
/// over 800 of its seeds: median 0.5 s, p99 10 s, max 16 s; 25 s failed 2 seeds in 3,000 on
/// the thin Planetlab and Cairn links whose clients completed later (2970, 2980). Only slow
/// seeds pay for the bound: a seed stops as soon as everyone is served.
pub const CAMPAIGN_LIVENESS_BOUND: Duration = Duration::from_secs(45);

/// A campaign seed's liveness, judged [`CAMPAIGN_LIVENESS_BOUND`] after its last fault (or
/// after the moment a second look starts, [`campaign_seed_with_tail`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Liveness {
    /// When the last scheduled fault struck (or the second look started).
    pub stable_at: Duration,
    /// Clients that had not completed an operation submitted after `stable_at` by the bound
    /// (a liveness failure).
    pub starved: Vec<ClientId>,
    /// Correct servers that had not executed up to `frontier` by the bound: the most
    /// advanced correct server's execution point at `stable_at` (a liveness failure too:
    /// each one found so far was a catch-up bug, seeds 103, 326 and 4208).
    pub lagging: Vec<ServerId>,
    /// See `lagging`.
    pub frontier: u64,
}

impl Liveness {
    /// Every client was served in time.
    pub fn clients_served(&self) -> bool {
        self.starved.is_empty()
    }

    /// Every correct server caught up in time.
    pub fn servers_caught_up(&self) -> bool {
        self.lagging.is_empty()
    }

    /// Live: every client served and every correct server caught up in time.
    pub fn ok(&self) -> bool {
        self.clients_served() && self.servers_caught_up()
    }

    /// What was missing, for a failure line.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if !self.starved.is_empty() {
            parts.push(format!(
                "clients {:?} had not completed an operation submitted after {:?}",
                self.starved, self.stable_at
            ));
        }
        if !self.lagging.is_empty() {
            let names: Vec<String> = self.lagging.iter().map(|s| s.to_string()).collect();
            parts.push(format!(
                "correct servers {} had not executed up to seq {}",
                names.join(","),
                self.frontier
            ));
        }
        format!(
            "{:?} after {:?} (the last fault, or the start of the second look): {}",
            CAMPAIGN_LIVENESS_BOUND,
            self.stable_at,
            parts.join("; ")
        )
    }
}

/// Run `world` until, after `stable_at`, every one of its `clients` has completed two
/// operations (so the second was submitted after it: closed-loop clients submit the next
/// operation when the previous one completes) and every correct server has executed up to
/// the most advanced correct server's execution point at `stable_at` (a restarted or cut-off
/// server must catch up, not just the clients be served); or until `bound` after
/// `stable_at`. Says who was not served by then.
pub fn run_until_served(
    world: &mut World,
    clients: u32,
    stable_at: Duration,
    bound: Duration,
) -> Result<Liveness, steward_sim::SimError> {
    const STEP: Duration = Duration::from_millis(250);
    world.run_until(stable_at)?;
    let correct = world.correct_servers();
    let executed = |world: &World, id: ServerId| world.replica(id).map_or(0, |r| r.global_aru());
    let frontier = correct
        .iter()
        .map(|id| executed(world, *id))
        .max()
        .unwrap_or(0);
    let deadline = stable_at + bound;
    let mut now = stable_at;
    loop {
        let starved: Vec<ClientId> = {
            let checker = world.checker();
            (0..clients)
                .filter(|c| {
                    let done = checker.completions_of(*c);
                    done.len() - done.partition_point(|t| *t <= stable_at) < 2
                })
                .collect()
        };
        let lagging: Vec<ServerId> = correct
            .iter()
            .copied()
            .filter(|id| executed(world, *id) < frontier)
            .collect();
        if (starved.is_empty() && lagging.is_empty()) || now >= deadline {
            return Ok(Liveness {
                stable_at,
                starved,
                lagging,
                frontier,
            });
        }
        now = (now + STEP).min(deadline);
        world.run_until(now)?;
    }
}

/// Run `count` campaign seeds from `start`; `progress` is told about each finished seed.
pub fn campaign(
    topology: &Topology,
    start: u64,
    count: u64,
    progress: &mut dyn FnMut(u64, &str),
) -> Result<CampaignOutcome, String> {
    let mut out = CampaignOutcome::default();
    for seed in start..start + count {
        let (world, liveness) = campaign_seed(topology, seed)?;
        let live = liveness.ok();
        let verdict = world.checker().verdict();
        if verdict != "ok" {
            out.safety_violations.push((seed, verdict.clone()));
        }
        if !live {
            out.liveness_failures.push(seed);
        }
        out.seeds += 1;
        progress(
            seed,
            if verdict != "ok" {
                "safety"
            } else if live {
                "ok"
            } else {
                "liveness"
            },
        );
    }
    Ok(out)
}
