//! How busy this host's CPUs were during a measurement window, from `/proc/stat`, and whether
//! that makes the window CPU-bound: when the host's cores are (nearly) saturated, a point
//! measures the host's CPU rather than the emulated WAN.

use std::time::Duration;

/// A window whose host CPU utilisation reaches this share of all cores is CPU-bound. Below it,
/// the scheduler still has idle time to hand out, so queueing for a core adds little latency;
/// at it, every replica waits for a core on most wake-ups.
pub const CPU_BOUND_UTIL: f64 = 0.85;

/// Cumulative busy and total CPU time of all cores (the `cpu` line of `/proc/stat`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HostCpu {
    busy: u64,
    total: u64,
}

impl HostCpu {
    /// The counters now; `None` where `/proc/stat` cannot be read (not Linux).
    pub fn now() -> Option<HostCpu> {
        parse(&std::fs::read_to_string("/proc/stat").ok()?)
    }

    /// The share of all cores' time that was busy between `self` and `later` (0 to 1).
    pub fn util_until(&self, later: &HostCpu) -> Option<f64> {
        let total = later.total.checked_sub(self.total)?;
        let busy = later.busy.checked_sub(self.busy)?;
        (total > 0).then(|| (busy as f64 / total as f64).clamp(0.0, 1.0))
    }
}

/// The `cpu` line: user nice system idle iowait irq softirq steal (guest time is already part
/// of user). Busy is everything but idle and iowait.
fn parse(stat: &str) -> Option<HostCpu> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .take(8)
        .map(|f| f.parse().ok())
        .collect::<Option<_>>()?;
    if v.len() < 5 {
        return None;
    }
    let total: u64 = v.iter().sum();
    let idle = v[3] + v[4];
    Some(HostCpu {
        busy: total - idle,
        total,
    })
}

/// Replica CPU time over a window as a share of all of the host's cores.
pub fn share_of_cores(cpu: Duration, window: Duration) -> f64 {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    if window.is_zero() {
        return 0.0;
    }
    cpu.as_secs_f64() / (window.as_secs_f64() * cores)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_share_between_two_samples() {
        let a = parse("cpu  100 0 50 800 50 0 0 0 0 0\ncpu0 1 2 3 4 5\n").unwrap();
        let b = parse("cpu  250 0 100 850 50 0 0 0 0 0\n").unwrap();
        // 200 busy of 250 elapsed.
        assert!((a.util_until(&b).unwrap() - 0.8).abs() < 1e-12);
        assert_eq!(b.util_until(&a), None, "counters never go back");
        assert_eq!(a.util_until(&a), None, "no time elapsed");
        assert_eq!(parse("intr 1 2 3\n"), None);
        assert_eq!(parse("cpu  1 x 3 4 5\n"), None);
    }

    #[test]
    fn this_host_has_counters() {
        let a = HostCpu::now().expect("/proc/stat");
        let mut x = 0u64;
        for i in 0..20_000_000u64 {
            x = x.wrapping_add(i * i);
        }
        std::hint::black_box(x);
        let b = HostCpu::now().unwrap();
        assert!(b.total >= a.total && b.busy >= a.busy);
    }
}
