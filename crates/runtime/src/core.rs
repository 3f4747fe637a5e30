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
    /// The driver is stopping (clients stop issuing operations).
    fn stop(&mut self) {}
    /// Protocol counters for the node's final `stats` line.
    fn stats(&self) -> serde_json::Map<String, serde_json::Value> {
        serde_json::Map::new()
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
        ] {
            m.insert(k.into(), v.into());
        }
        m
    }
}

/// Runs `core` on `transport` until `stop` completes or the inbound channel closes. Sends,
/// timers and executions are handled here; every other effect goes to `on_effect`.
pub async fn drive<C: Core + ?Sized>(
    core: &mut C,
    inbound: &mut Inbound,
    transport: &Transport,
    stop: impl Future<Output = ()>,
    mut on_effect: impl FnMut(&Effect),
) -> DriveStats {
    let start = Instant::now();
    let mut stats = DriveStats::default();
    // (due, arming order, token): every armed timer fires once, in order.
    let mut timers: BinaryHeap<Reverse<(Instant, u64, u64)>> = BinaryHeap::new();
    let mut armed = 0u64;
    let mut names: HashMap<NodeKind, PeerName> = HashMap::new();
    let mut out = Vec::new();
    core.start(start.elapsed(), &mut out);
    tokio::pin!(stop);
    loop {
        for e in out.drain(..) {
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
        let next = timers.peek().map(|Reverse((due, _, _))| *due);
        tokio::select! {
            biased;
            _ = &mut stop => break,
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
                let Some((peer, bytes)) = m else { break };
                stats.received += 1;
                match NodeKind::parse(peer.as_str()) {
                    Some(from) => {
                        if !core.on_bytes(start.elapsed(), from, &bytes, &mut out) {
                            stats.malformed += 1;
                        }
                    }
                    None => stats.unknown_sender += 1,
                }
            }
        }
    }
    core.stop();
    stats
}

/// Driver diagnostics go to the `tracing` subscriber (stderr: the node's log file).
fn log_line(msg: &str) {
    tracing::warn!(target: "driver", "{msg}");
}
