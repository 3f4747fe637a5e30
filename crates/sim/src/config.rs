//! Simulation parameters that are not part of the topology.

use std::time::Duration;

use crate::SimError;

/// Parameters of one simulation run besides the topology: the seed, the measurement warm-up,
/// network faults and queue sizes, and a safety valve on the number of events.
#[derive(Debug, Clone, PartialEq)]
pub struct SimConfig {
    /// The one seed every random choice derives from (network draws and each process's
    /// stream). Same seed and same inputs give the identical run.
    pub seed: u64,
    /// Measurements start at this virtual time: earlier [`crate::Ctx::record`] calls are
    /// ignored, and the measured network counters ([`crate::SimStats::measured`]) and measured
    /// busy times start here.
    pub warmup: Duration,
    /// Probability in `0..=1` that a network message (not a message to oneself) is delivered
    /// twice; the copy gets an independently drawn jitter and reordering delay but uses no
    /// extra bandwidth.
    pub duplicate_prob: f64,
    /// Probability in `0..=1` that a network message gets an extra delay drawn uniformly from
    /// `0..=reorder_max`, so that later messages can overtake it.
    pub reorder_prob: f64,
    /// The largest extra delay of a reordered message.
    pub reorder_max: Duration,
    /// Byte limit of each directed WAN queue (one per ordered pair of sites); a message that
    /// would take the backlog past it is dropped (drop-tail). Default 1 MiB.
    pub wan_queue_limit_bytes: u64,
    /// Byte limit of each process's network interface egress queue, drop-tail. Default 1 MiB.
    pub lan_queue_limit_bytes: u64,
    /// Stop with [`SimError::EventLimit`] after this many events in total (every message
    /// arrival, WAN queue entry, timer, process start, queued-input wake-up and scheduled
    /// network change is one event). Default: no limit.
    pub max_events: u64,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            seed: 0,
            warmup: Duration::ZERO,
            duplicate_prob: 0.0,
            reorder_prob: 0.0,
            reorder_max: Duration::ZERO,
            wan_queue_limit_bytes: 1 << 20,
            lan_queue_limit_bytes: 1 << 20,
            max_events: u64::MAX,
        }
    }
}

impl SimConfig {
    /// The default configuration with this seed.
    pub fn with_seed(seed: u64) -> Self {
        SimConfig {
            seed,
            ..SimConfig::default()
        }
    }

    /// Checks that the probabilities are in `0..=1`.
    pub fn validate(&self) -> Result<(), SimError> {
        for (field, p) in [
            ("duplicate_prob", self.duplicate_prob),
            ("reorder_prob", self.reorder_prob),
        ] {
            if !(0.0..=1.0).contains(&p) {
                return Err(SimError::InvalidConfig {
                    field,
                    reason: format!("{p} is not a probability in 0..=1"),
                });
            }
        }
        Ok(())
    }
}
