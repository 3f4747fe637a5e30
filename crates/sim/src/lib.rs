//! A deterministic discrete-event simulator for sans-IO protocol processes (Steward and PBFT
//! replicas, closed-loop clients) placed at the sites of a [`steward_config::Topology`].
//!
//! A [`Process`] reacts to its start, to messages and to timers; through its [`Ctx`] it sends
//! messages, sets timers, charges virtual CPU time and records completed client operations.
//! [`Sim`] runs any set of processes in virtual time over a network model built from the
//! topology (per-process egress serialisation at LAN bandwidth, one shared drop-tail queue per
//! directed pair of sites at the WAN link's bandwidth, one-way latency, jitter, loss), with
//! optional duplication, reordering, partitions and link changes, and measures latencies
//! (HDR histograms), traffic and CPU busy time. Everything derives from one seed: the same
//! seed and inputs give the same run, down to [`Sim::trace_hash`]. See [`Sim`] for the model.
//!
//! ```
//! use std::any::Any;
//! use std::time::Duration;
//! use steward_config::{SiteId, Topology};
//! use steward_sim::{Ctx, ProcId, Process, Sim, SimConfig, SimMessage};
//!
//! #[derive(Clone)]
//! struct Ping(usize);
//! impl SimMessage for Ping {
//!     fn wire_size(&self) -> usize { self.0 }
//! }
//!
//! /// Sends one ping to `peer` at start and answers every ping it gets.
//! struct Pinger { peer: ProcId, start: bool, rtt: Option<Duration> }
//! impl Process<Ping> for Pinger {
//!     fn init(&mut self, ctx: &mut Ctx<'_, Ping>) {
//!         if self.start { ctx.send(self.peer, Ping(100)); }
//!     }
//!     fn on_message(&mut self, ctx: &mut Ctx<'_, Ping>, from: ProcId, msg: Ping) {
//!         if self.start { self.rtt = Some(ctx.now()); } else { ctx.send(from, msg); }
//!     }
//!     fn on_timer(&mut self, _: &mut Ctx<'_, Ping>, _: u64) {}
//!     fn as_any(&self) -> &dyn Any { self }
//!     fn as_any_mut(&mut self) -> &mut dyn Any { self }
//! }
//!
//! let topology = Topology::from_toml_str(r#"
//!     name = "two"
//!     [lan]
//!     latency_ms = 0
//!     bandwidth = "1Gbps"
//!     [wan.default]
//!     latency_ms = 50
//!     bandwidth = "10Gbps"
//!     [[site]]
//!     name = "a"
//!     f = 0
//!     [[site]]
//!     name = "b"
//!     f = 0
//!     [pbft]
//!     servers_per_site = { a = 1 }
//! "#, "two.toml")?;
//! let mut sim = Sim::new(&topology, SimConfig::with_seed(1))?;
//! let a = sim.add_process(SiteId(0), Box::new(Pinger { peer: 1, start: true, rtt: None }));
//! sim.add_process(SiteId(1), Box::new(Pinger { peer: 0, start: false, rtt: None }));
//! sim.run_until(Duration::from_secs(1))?;
//! let rtt = sim.process_as::<Pinger>(a).unwrap().rtt.unwrap();
//! assert!(rtt >= Duration::from_millis(100) && rtt < Duration::from_millis(101));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![warn(missing_docs)]

mod config;
mod process;
mod sim;
mod stats;

pub use config::SimConfig;
pub use hdrhistogram::Histogram;
pub use process::{Ctx, ProcId, Process, SimMessage, SimRng};
pub use sim::Sim;
pub use stats::{NetStats, SimStats};

use std::time::Duration;

/// What can go wrong in a simulation run.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SimError {
    /// A [`SimConfig`] field is out of range.
    #[error("invalid simulator configuration: {field}: {reason}")]
    InvalidConfig {
        /// The field at fault.
        field: &'static str,
        /// Why it is rejected.
        reason: String,
    },
    /// [`SimConfig::max_events`] events were processed (a runaway run, most likely).
    #[error(
        "stopped after the event limit of {limit} events at virtual time {at:?} (seed {seed})"
    )]
    EventLimit {
        /// The limit that was reached.
        limit: u64,
        /// The virtual time of the last event processed.
        at: Duration,
        /// The run's seed, to reproduce it.
        seed: u64,
    },
}
