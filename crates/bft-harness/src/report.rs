//! What a simulated run measured, the same for both protocols.

use std::time::Duration;

use steward_sim::{Histogram, Sim, SimMessage};

/// What a run measured (after the warm-up).
#[derive(Clone, Debug)]
pub struct RunReport {
    /// Operations completed in the measurement window (updates + queries).
    pub completed: u64,
    /// Updates completed.
    pub updates: u64,
    /// Length of the measurement window in seconds.
    pub measured_s: f64,
    /// Operations per second.
    pub throughput: f64,
    /// Latency mean, p50, p99, max in ms (all operations).
    pub lat_mean_ms: f64,
    /// Median latency.
    pub lat_p50_ms: f64,
    /// 99th percentile.
    pub lat_p99_ms: f64,
    /// Maximum.
    pub lat_max_ms: f64,
    /// The topology's propagation lower bound for an update from the placed clients (ms, mean).
    pub lat_bound_ms: f64,
    /// WAN messages per completed update.
    pub wan_msgs_per_update: f64,
    /// WAN bytes per completed update.
    pub wan_bytes_per_update: f64,
    /// "ok" or the first safety violation.
    pub safety: String,
    /// All latencies (µs), updates and queries.
    pub histogram: Histogram<u64>,
}

impl RunReport {
    /// Summarises the measurement window of `sim` (after `warmup`): `bounds_ms` holds each
    /// client's propagation lower bound, `safety` the checker's verdict.
    pub fn from_sim<M: SimMessage>(
        sim: &Sim<M>,
        warmup: Duration,
        bounds_ms: &[f64],
        safety: String,
    ) -> RunReport {
        let mut hist = Histogram::<u64>::new(3).expect("valid sigfig");
        for kind in ["update", "query"] {
            if let Some(h) = sim.histogram(kind) {
                hist.add(h).expect("compatible histograms");
            }
        }
        let measured_s = sim.now().saturating_sub(warmup).as_secs_f64();
        let updates = sim.completed("update");
        let completed = updates + sim.completed("query");
        let net = &sim.stats().measured;
        let per = |x: u64| {
            if updates == 0 {
                0.0
            } else {
                x as f64 / updates as f64
            }
        };
        let ms = |us: u64| us as f64 / 1e3;
        let bound = if bounds_ms.is_empty() {
            0.0
        } else {
            bounds_ms.iter().sum::<f64>() / bounds_ms.len() as f64
        };
        RunReport {
            completed,
            updates,
            measured_s,
            throughput: if measured_s > 0.0 {
                completed as f64 / measured_s
            } else {
                0.0
            },
            lat_mean_ms: hist.mean() / 1e3,
            lat_p50_ms: ms(hist.value_at_quantile(0.5)),
            lat_p99_ms: ms(hist.value_at_quantile(0.99)),
            lat_max_ms: ms(hist.max()),
            lat_bound_ms: bound,
            wan_msgs_per_update: per(net.wan_messages),
            wan_bytes_per_update: per(net.wan_bytes),
            safety,
            histogram: hist,
        }
    }
}
