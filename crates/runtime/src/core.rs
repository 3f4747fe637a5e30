//! The seam between a sans-IO protocol core and the real network: a [`Core`] turns inputs
//! (bytes from an authenticated peer, timer expiries) into [`Effect`]s, and [`drive`] runs one
//! core on a [`Transport`] until told to stop. Replicas and closed-loop clients of both
//! protocols share this loop.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use steward_net::{Inbound, PeerName, Transport};
use tokio::time::Instant;

use bft_core::durable::{Store, Write};

use crate::durable_log::DurableLog;
use crate::NodeKind;

/// What a core asks its driver to do.
#[derive(Clone, Debug)]
pub enum Effect {
    /// Send an encoded message to a node.
    Send {
        /// The destination.
        to: NodeKind,
        /// The encoded message.
        bytes: Bytes,
    },
    /// Call [`Core::on_timer`] with `token` after `after`.
    Timer {
        /// Delay.
        after: Duration,
        /// Token handed back.
        token: u64,
    },
    /// A replica executed an update.
    Executed,
    /// A client's operation completed after `latency`.
    Completed {
        /// From the first send to the accepted result.
        latency: Duration,
    },
    /// A client rejected a reply (a correct replica never causes one).
    BadReply(&'static str),
    /// Make this write durable before any message of the same step is sent.
    Persist(bft_core::durable::Write),
}

/// A sans-IO protocol participant. `now` is the time since the driver started.
pub trait Core: Send {
    /// First effects (timers, initial sends).
    fn start(&mut self, now: Duration, out: &mut Vec<Effect>);
    /// A message from an authenticated peer. Returns false when the bytes are not a message of
    /// this protocol (the driver counts them as malformed and drops them).
    fn on_bytes(
        &mut self,
        now: Duration,
        from: NodeKind,
        bytes: &[u8],
        out: &mut Vec<Effect>,
    ) -> bool;
    /// A timer armed by [`Effect::Timer`] fired.
    fn on_timer(&mut self, now: Duration, token: u64, out: &mut Vec<Effect>);
    /// Restores what the node persisted before a crash (before [`Core::start`]; see
    /// [`bft_core::Node::recover`]). The default keeps nothing.
    fn recover(&mut self, _store: &Store) {}
    /// The driver is stopping (clients stop issuing operations).
    fn stop(&mut self) {}
    /// Protocol counters for the node's final `stats` line (and its live metrics).
    fn stats(&self) -> serde_json::Map<String, serde_json::Value> {
        serde_json::Map::new()
    }
    /// Current values of the protocol's state (views, queue lengths) for live metrics; see
    /// [`bft_core::Node::gauges`]. The default has none.
    fn gauges(&self) -> Vec<(&'static str, u64)> {
        Vec::new()
    }
}

/// Counters of the driver itself (protocol-level rejections are the core's business).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DriveStats {
    /// Messages received.
    pub received: u64,
    /// Of those, not decodable by the core.
    pub malformed: u64,
    /// Of those, from a peer name that is no node of a deployment.
    pub unknown_sender: u64,
    /// Messages handed to the transport.
    pub sent: u64,
    /// Sends the transport refused (unknown peer, full queue, shut down).
    pub send_errors: u64,
    /// Updates executed (replicas).
    pub executed: u64,
    /// Timers fired.
    pub timers: u64,
    /// Durable writes appended to the log.
    pub persist_writes: u64,
    /// Bytes of those writes' records.
    pub persist_bytes: u64,
    /// `fdatasync`s of the log (one per step that sends after writes not yet synced, or per
    /// group of steps; one more at the end if the last writes were not synced).
    pub persist_syncs: u64,
    /// Inputs handled in steps whose writes were synced together (several when messages were
    /// waiting: one sync for the group).
    pub persist_grouped_inputs: u64,
    /// Durable writes dropped because the node has no log (no `--data-dir`).
    pub persist_dropped: u64,
    /// Appends or syncs that failed (the driver then stops: it must not send unpersisted
    /// votes).
    pub persist_failures: u64,
}

impl DriveStats {
    /// The counters as JSON fields.
    pub fn to_json(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut m = serde_json::Map::new();
        for (k, v) in [
            ("received", self.received),
            ("malformed", self.malformed),
            ("unknown_sender", self.unknown_sender),
            ("sent", self.sent),
            ("send_errors", self.send_errors),
            ("executed", self.executed),
            ("timers", self.timers),
            ("persist_writes", self.persist_writes),
            ("persist_bytes", self.persist_bytes),
            ("persist_syncs", self.persist_syncs),
            ("persist_grouped_inputs", self.persist_grouped_inputs),
            ("persist_dropped", self.persist_dropped),
            ("persist_failures", self.persist_failures),
        ] {
            m.insert(k.into(), v.into());
        }
        m
    }
}

/// Messages handled at most before one group commit (while more are waiting).
const MAX_GROUP: usize = 32;

/// The driver lets other tasks run at least this often (see `drive_observed`).
const YIELD_EVERY: Duration = Duration::from_millis(20);

/// Runs `core` on `transport` until `stop` completes or the inbound channel closes. Sends,
/// timers, executions and durable writes are handled here; every other effect goes to
/// `on_effect`.
///
/// Durability: the effects of one step (one message, or one burst of due timers) are handled
/// together: every [`Effect::Persist`] of the step is appended to `durable`, and everything
/// appended so far is made durable with one `fdatasync` before any [`Effect::Send`] of the
/// step is handed to the transport. A step that writes but sends nothing is not synced by
/// itself: the next step that sends syncs its writes too (and the driver syncs once more when
/// it stops).
/// When a step wrote something and more messages are already waiting, up to `MAX_GROUP` (32) of
/// them are handled first and their writes share the one sync (group commit); the sends of
/// every step still go out in the order the core produced them. Without a log (`durable` is
/// `None`: a client, or a replica run without `--data-dir`) the writes are dropped and counted.
/// If an append or sync fails the driver logs it and stops without sending the step's messages.
pub async fn drive<C: Core + ?Sized>(
    core: &mut C,
    inbound: &mut Inbound,
    transport: &Transport,
    durable: Option<&mut DurableLog>,
    stop: impl Future<Output = ()>,
    on_effect: impl FnMut(&Effect),
) -> DriveStats {
    drive_observed(core, inbound, transport, durable, stop, on_effect, None).await
}

/// Looks at a running core between steps: called with the core and the driver's counters so
/// far, first when the driver starts and then every period (see [`drive_observed`]).
pub type Observer<'a, C> = (Duration, &'a mut (dyn FnMut(&C, &DriveStats) + Send));

/// [`drive`], also calling `observer` (when given) every period between two steps, never
/// inside one: a live view of the core's counters (the node's metrics endpoint) without
/// sharing the core across threads.
pub async fn drive_observed<C: Core + ?Sized>(
    core: &mut C,
    inbound: &mut Inbound,
    transport: &Transport,
    mut durable: Option<&mut DurableLog>,
    stop: impl Future<Output = ()>,
    mut on_effect: impl FnMut(&Effect),
    mut observer: Option<Observer<'_, C>>,
) -> DriveStats {
    let start = Instant::now();
    let mut stats = DriveStats::default();
    // (due, arming order, token): every armed timer fires once, in order.
    let mut timers: BinaryHeap<Reverse<(Instant, u64, u64)>> = BinaryHeap::new();
    let mut armed = 0u64;
    let mut names: HashMap<NodeKind, PeerName> = HashMap::new();
    let mut out = Vec::new();
    let mut writes = Vec::new();
    let mut later = Vec::new();
    let mut last_yield = Instant::now();
    core.start(start.elapsed(), &mut out);
    // The first look is at the start, before any step, whatever arrives at once: an interval's
    // first tick is immediate only once the timer driver has run, which on a busy host can be
    // after the first message (the observer test saw its first look after a step).
    if let Some((_, look)) = observer.as_mut() {
        look(core, &stats);
    }
    let mut observe = observer.as_ref().map(|(period, _)| {
        let first = tokio::time::Instant::now() + *period;
        let mut t = tokio::time::interval_at(first, *period);
        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        t
    });
    tokio::pin!(stop);
    loop {
        // The step's durable writes first, synced before its first message leaves; then the
        // rest in order.
        for e in out.drain(..) {
            match e {
                Effect::Persist(w) => writes.push(w),
                other => later.push(other),
            }
        }
        let sends = later.iter().any(|e| matches!(e, Effect::Send { .. }));
        if !writes.is_empty() || sends {
            match durable.as_deref_mut() {
                Some(log) => match persist(log, &writes, sends, &mut stats) {
                    Ok(()) => {}
                    Err(e) => {
                        stats.persist_failures += 1;
                        tracing::error!(
                            target: "driver",
                            "cannot persist to {}: {e}; stopping without sending",
                            log.path().display()
                        );
                        break;
                    }
                },
                None => stats.persist_dropped += writes.len() as u64,
            }
            writes.clear();
        }
        for e in later.drain(..) {
            match e {
                Effect::Send { to, bytes } => {
                    let name = names.entry(to).or_insert_with(|| to.name());
                    match transport.send(name, bytes) {
                        Ok(()) => stats.sent += 1,
                        Err(e) => {
                            stats.send_errors += 1;
                            if stats.send_errors <= 3 {
                                log_line(&format!("send to {name} failed: {e}"));
                            }
                        }
                    }
                }
                Effect::Timer { after, token } => {
                    armed += 1;
                    timers.push(Reverse((Instant::now() + after, armed, token)));
                }
                Effect::Executed => stats.executed += 1,
                other => on_effect(&other),
            }
        }
        // Let the transport's tasks run between two steps once in a while: on one thread
        // (`--threads one`) they would otherwise wait for the task budget to run out, which
        // under load is many steps later. Rarely: messages that pile up for a peer meanwhile
        // leave together, in fewer datagrams (a yield after every step cost about 8% more CPU
        // per update in PBFT and 4% in Steward at 10 clients with --wan off, and one every
        // 2 ms about as much: on a saturated host a step takes that long).
        if last_yield.elapsed() >= YIELD_EVERY {
            tokio::task::yield_now().await;
            last_yield = Instant::now();
        }
        let next = timers.peek().map(|Reverse((due, _, _))| *due);
        tokio::select! {
            biased;
            _ = &mut stop => break,
            _ = async { observe.as_mut().expect("guarded").tick().await }, if observe.is_some() => {
                if let Some((_, look)) = observer.as_mut() {
                    look(core, &stats);
                }
            }
            _ = tokio::time::sleep_until(next.unwrap_or_else(Instant::now)), if next.is_some() => {
                let now = Instant::now();
                while let Some(Reverse((due, _, token))) = timers.peek().copied() {
                    if due > now {
                        break;
                    }
                    timers.pop();
                    stats.timers += 1;
                    core.on_timer(start.elapsed(), token, &mut out);
                }
            }
            m = inbound.recv() => {
                let Some(m) = m else { break };
                on_message(core, start, m, &mut stats, &mut out);
                // Group commit: while this step's writes wait for their sync, handle the
                // messages already waiting; their writes share it.
                if durable.is_some() {
                    let mut group = 1;
                    while group < MAX_GROUP
                        && out.iter().any(|e| matches!(e, Effect::Persist(_)))
                    {
                        let Some(m) = inbound.try_recv() else { break };
                        on_message(core, start, m, &mut stats, &mut out);
                        group += 1;
                    }
                    if group > 1 {
                        stats.persist_grouped_inputs += group as u64;
                    }
                }
            }
        }
    }
    // What the last steps appended reaches the disk too (nothing depends on it yet).
    if let Some(log) = durable {
        if let Ok(true) = log.sync() {
            stats.persist_syncs += 1;
        }
    }
    core.stop();
    stats
}

/// Appends a step's writes and, when the step sends anything, makes everything appended so
/// far durable first. A step that only writes is not synced on its own: nothing outside the
/// process depends on its writes until a later step sends, and that step's sync covers them.
/// A crash before then loses only writes that nobody saw, as if the step's input had been
/// lost on the way.
fn persist(
    log: &mut DurableLog,
    writes: &[Write],
    sends: bool,
    stats: &mut DriveStats,
) -> std::io::Result<()> {
    if !writes.is_empty() {
        stats.persist_bytes += log.append(writes)?;
        stats.persist_writes += writes.len() as u64;
    }
    if sends && log.sync()? {
        stats.persist_syncs += 1;
    }
    Ok(())
}

/// Hands one received message to the core.
fn on_message<C: Core + ?Sized>(
    core: &mut C,
    start: Instant,
    (peer, bytes): (PeerName, Bytes),
    stats: &mut DriveStats,
    out: &mut Vec<Effect>,
) {
    stats.received += 1;
    match NodeKind::parse(peer.as_str()) {
        Some(from) => {
            if !core.on_bytes(start.elapsed(), from, &bytes, out) {
                stats.malformed += 1;
            }
        }
        None => stats.unknown_sender += 1,
    }
}

/// Driver diagnostics go to the `tracing` subscriber (stderr: the node's log file).
fn log_line(msg: &str) {
    tracing::warn!(target: "driver", "{msg}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use steward_net::{DeploymentCa, TransportConfig};

    /// Replica 0: each message from replica 1 makes it persist `v<n>` and answer with `n`
    /// (with `quiet_odd`, odd messages are persisted and not answered).
    struct Echo {
        n: u8,
        recovered: usize,
        quiet_odd: bool,
    }

    impl Echo {
        fn new() -> Echo {
            Echo {
                n: 0,
                recovered: 0,
                quiet_odd: false,
            }
        }
    }

    impl Core for Echo {
        fn start(&mut self, _now: Duration, _out: &mut Vec<Effect>) {}
        fn recover(&mut self, store: &Store) {
            self.recovered = store.len();
        }
        fn on_bytes(
            &mut self,
            _: Duration,
            from: NodeKind,
            _: &[u8],
            out: &mut Vec<Effect>,
        ) -> bool {
            self.n += 1;
            // The send comes first: the driver must still persist before sending.
            if !(self.quiet_odd && self.n % 2 == 1) {
                out.push(Effect::Send {
                    to: from,
                    bytes: Bytes::from(vec![self.n]),
                });
            }
            out.push(Effect::Persist(Write::Put {
                key: vec![b'v', self.n],
                value: vec![self.n],
            }));
            true
        }
        fn on_timer(&mut self, _: Duration, _: u64, _: &mut Vec<Effect>) {}
    }

    fn transport(
        ca: &DeploymentCa,
        name: &str,
        peer: Option<(&str, std::net::SocketAddr)>,
    ) -> (Transport, Inbound) {
        let mut cfg = TransportConfig::new(
            name,
            ca.issue(name).unwrap(),
            ca.cert_der().to_vec(),
            "127.0.0.1:0".parse().unwrap(),
        );
        if let Some((p, addr)) = peer {
            cfg.peers.insert(PeerName::from(p), addr);
        } else {
            cfg.allowed_peers.insert(PeerName::from("pbft-r1"));
        }
        Transport::bind(cfg).unwrap()
    }

    /// The observer sees the core's counters at the start and then every period between
    /// steps, so it follows the messages handled.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_observer_follows_the_driver_between_steps() {
        let ca = DeploymentCa::generate("observe").unwrap();
        let (server, mut inbound) = transport(&ca, "pbft-r0", None);
        let (client, mut replies) =
            transport(&ca, "pbft-r1", Some(("pbft-r0", server.local_addr())));
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<(u8, u64)>::new()));
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let t = server.clone();
        let record = seen.clone();
        let task = tokio::spawn(async move {
            let mut core = Echo::new();
            let mut look = |c: &Echo, d: &DriveStats| {
                record.lock().unwrap().push((c.n, d.received));
            };
            let stop = async {
                let _ = stop_rx.await;
            };
            let observer: Observer<'_, Echo> = (Duration::from_millis(20), &mut look);
            drive_observed(
                &mut core,
                &mut inbound,
                &t,
                None,
                stop,
                |_| {},
                Some(observer),
            )
            .await
        });
        let r0 = PeerName::from("pbft-r0");
        for _ in 0..3 {
            client.send(&r0, Bytes::from_static(b"x")).unwrap();
            tokio::time::timeout(Duration::from_secs(10), replies.recv())
                .await
                .expect("a reply")
                .unwrap();
        }
        // Bounded poll: the next period's observation shows all three.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while seen.lock().unwrap().last() != Some(&(3, 3)) {
            assert!(
                std::time::Instant::now() < deadline,
                "{:?}",
                seen.lock().unwrap()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let _ = stop_tx.send(());
        let stats = task.await.unwrap();
        assert_eq!(stats.received, 3);
        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen.first(), Some(&(0, 0)), "{seen:?}");
        assert!(seen.windows(2).all(|w| w[0] <= w[1]), "{seen:?}");
        client.shutdown().await;
        server.shutdown().await;
    }

    /// Every write of a step is in the log before the step's message arrives, a restart
    /// replays them, and without a log they are dropped and counted.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn writes_are_in_the_log_before_the_steps_messages_leave() {
        let ca = DeploymentCa::generate("drive").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let wal = dir.path().join("pbft-r0.wal");
        for with_log in [true, false, true] {
            let (server, mut inbound) = transport(&ca, "pbft-r0", None);
            let (client, mut replies) =
                transport(&ca, "pbft-r1", Some(("pbft-r0", server.local_addr())));
            let mut log = with_log.then(|| DurableLog::open(&wal).unwrap());
            let before = log.as_ref().map_or(0, |l| l.store().len());
            let mut core = Echo::new();
            if let Some(l) = &log {
                core.recover(l.store());
            }
            let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
            let t = server.clone();
            let task = tokio::spawn(async move {
                let stop = async {
                    let _ = stop_rx.await;
                };
                let stats = drive(&mut core, &mut inbound, &t, log.as_mut(), stop, |_| {}).await;
                (stats, core.recovered)
            });
            let r0 = PeerName::from("pbft-r0");
            for i in 1..=5u8 {
                client.send(&r0, Bytes::from_static(b"x")).unwrap();
                let (_, reply) = tokio::time::timeout(Duration::from_secs(10), replies.recv())
                    .await
                    .expect("a reply")
                    .unwrap();
                assert_eq!(&reply[..], &[i]);
                if with_log {
                    // Replay what is in the file now (the log is still open and appending).
                    let bytes = std::fs::read(&wal).unwrap();
                    let found = crate::durable_log::replay(&bytes)
                        .writes
                        .contains(&Write::Put {
                            key: vec![b'v', i],
                            value: vec![i],
                        });
                    assert!(found, "reply {i} left before its write was in the log");
                }
            }
            let _ = stop_tx.send(());
            let (stats, recovered) = task.await.unwrap();
            assert_eq!(recovered, before);
            if with_log {
                assert_eq!(stats.persist_writes, 5);
                assert!(stats.persist_syncs >= 1 && stats.persist_syncs <= 5);
                assert!(stats.persist_bytes > 0);
                assert_eq!(stats.persist_dropped, 0);
            } else {
                assert_eq!(stats.persist_dropped, 5);
                assert_eq!(stats.persist_writes, 0);
            }
            client.shutdown().await;
            server.shutdown().await;
        }
        // A log that refuses the write: the driver stops without sending the step's reply.
        let (server, mut inbound) = transport(&ca, "pbft-r0", None);
        let (client, mut replies) =
            transport(&ca, "pbft-r1", Some(("pbft-r0", server.local_addr())));
        let mut log = DurableLog::open(&dir.path().join("broken.wal")).unwrap();
        log.make_unwritable();
        let t = server.clone();
        let task = tokio::spawn(async move {
            let mut core = Echo::new();
            drive(
                &mut core,
                &mut inbound,
                &t,
                Some(&mut log),
                std::future::pending(),
                |_| {},
            )
            .await
        });
        client
            .send(&PeerName::from("pbft-r0"), Bytes::from_static(b"x"))
            .unwrap();
        let stats = tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .expect("the driver stops")
            .unwrap();
        assert_eq!(stats.persist_failures, 1);
        assert_eq!(stats.sent, 0);
        assert!(
            tokio::time::timeout(Duration::from_millis(300), replies.recv())
                .await
                .is_err(),
            "a reply left without its write"
        );
        client.shutdown().await;
        server.shutdown().await;
        // The second run with a log reopened the first run's five writes (the same keys were
        // written again with the same values).
        assert_eq!(DurableLog::open(&wal).unwrap().store().len(), 5);
    }

    /// A step that writes and sends nothing is not synced by itself: the next step that sends
    /// syncs both, so three pairs (a quiet write, then a write with a reply) cost three
    /// syncs, not six, and every reply still leaves after both writes are in the log.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_step_without_messages_shares_the_next_sending_steps_sync() {
        let ca = DeploymentCa::generate("quiet").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let wal = dir.path().join("pbft-r0.wal");
        let (server, mut inbound) = transport(&ca, "pbft-r0", None);
        let (client, mut replies) =
            transport(&ca, "pbft-r1", Some(("pbft-r0", server.local_addr())));
        let mut log = DurableLog::open(&wal).unwrap();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let t = server.clone();
        let task = tokio::spawn(async move {
            let mut core = Echo {
                quiet_odd: true,
                ..Echo::new()
            };
            let stop = async {
                let _ = stop_rx.await;
            };
            drive(&mut core, &mut inbound, &t, Some(&mut log), stop, |_| {}).await
        });
        let r0 = PeerName::from("pbft-r0");
        let in_log = |n: u8| {
            crate::durable_log::replay(&std::fs::read(&wal).unwrap())
                .writes
                .contains(&Write::Put {
                    key: vec![b'v', n],
                    value: vec![n],
                })
        };
        for pair in 0..3u8 {
            let (quiet, answered) = (2 * pair + 1, 2 * pair + 2);
            client.send(&r0, Bytes::from_static(b"q")).unwrap();
            // Bounded poll: the quiet step's write is appended (not synced) on its own step.
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while !in_log(quiet) {
                assert!(
                    std::time::Instant::now() < deadline,
                    "write {quiet} never appended"
                );
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            client.send(&r0, Bytes::from_static(b"a")).unwrap();
            let (_, reply) = tokio::time::timeout(Duration::from_secs(10), replies.recv())
                .await
                .expect("a reply")
                .unwrap();
            assert_eq!(&reply[..], &[answered]);
            assert!(in_log(quiet) && in_log(answered));
        }
        let _ = stop_tx.send(());
        let stats = task.await.unwrap();
        assert_eq!(stats.persist_writes, 6);
        assert_eq!(stats.persist_syncs, 3, "one per step that sent");
        client.shutdown().await;
        server.shutdown().await;
    }
}
