//! Reading HDR histogram interval logs (`hdr/<name>.hlog`, latencies in microseconds).
//!
//! loadgen writes one interval tagged `all` per configuration with the hdrhistogram crate's V2
//! serializer. This module also accepts logs with many intervals (compressed or not): when any
//! interval is tagged `all`, only those are summed (other tags are then per-client or per-kind
//! breakdowns of the same samples); otherwise every interval is summed.

use std::fs;
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use base64::Engine as _;
use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
use hdrhistogram::serialization::Deserializer;
use hdrhistogram::Histogram;

/// Latency summary of one histogram, in milliseconds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Percentiles {
    /// Number of samples.
    pub count: u64,
    /// Mean.
    pub mean_ms: f64,
    /// Median.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// 99.9th percentile.
    pub p999_ms: f64,
    /// Maximum.
    pub max_ms: f64,
}

/// Read an interval log file and return the sum of its intervals (see the module docs).
pub fn read_hlog(path: &Path) -> Result<Histogram<u64>> {
    let bytes = fs::read(path).with_context(|| format!("{}: cannot read", path.display()))?;
    parse_hlog(&bytes).map_err(|e| anyhow!("{}: {e}", path.display()))
}

/// Parse the bytes of an interval log (see [`read_hlog`]).
pub fn parse_hlog(bytes: &[u8]) -> Result<Histogram<u64>> {
    let mut tagged_all = Vec::new();
    let mut others = Vec::new();
    for entry in IntervalLogIterator::new(bytes) {
        let entry = entry.map_err(|e| match e {
            hdrhistogram::serialization::interval_log::LogIteratorError::ParseError { offset } => {
                anyhow!(
                    "malformed interval log at line {}",
                    line_of_offset(bytes, offset)
                )
            }
        })?;
        if let LogEntry::Interval(iv) = entry {
            let is_all = iv.tag().map(|t| t.as_str() == "all").unwrap_or(false);
            let h = decode_histogram(iv.encoded_histogram())?;
            if is_all {
                tagged_all.push(h);
            } else {
                others.push(h);
            }
        }
    }
    let parts = if tagged_all.is_empty() {
        others
    } else {
        tagged_all
    };
    let mut iter = parts.into_iter();
    let Some(mut total) = iter.next() else {
        bail!("the log holds no interval histogram");
    };
    for h in iter {
        total
            .add(&h)
            .map_err(|e| anyhow!("cannot add intervals: {e:?}"))?;
    }
    Ok(total)
}

fn line_of_offset(bytes: &[u8], offset: usize) -> usize {
    bytes[..offset.min(bytes.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

fn decode_histogram(b64: &str) -> Result<Histogram<u64>> {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map_err(|e| anyhow!("interval histogram is not valid base64: {e}"))?;
    Deserializer::new()
        .deserialize(&mut raw.as_slice())
        .map_err(|e| anyhow!("cannot decode an interval histogram: {e:?}"))
}

/// Percentiles of a histogram of microsecond values, in milliseconds.
pub fn percentiles(h: &Histogram<u64>) -> Percentiles {
    let ms = |us: u64| us as f64 / 1e3;
    Percentiles {
        count: h.len(),
        mean_ms: if h.is_empty() { 0.0 } else { h.mean() / 1e3 },
        p50_ms: ms(h.value_at_quantile(0.5)),
        p90_ms: ms(h.value_at_quantile(0.9)),
        p99_ms: ms(h.value_at_quantile(0.99)),
        p999_ms: ms(h.value_at_quantile(0.999)),
        max_ms: ms(h.max()),
    }
}

/// The empirical CDF of a histogram: points (latency in ms, fraction of samples ≤ it), one per
/// distinct recorded value bucket, thinned to at most `max_points` (the last point, fraction 1,
/// is always kept). Empty for an empty histogram.
pub fn cdf_points(h: &Histogram<u64>, max_points: usize) -> Vec<(f64, f64)> {
    let total = h.len();
    if total == 0 || max_points == 0 {
        return Vec::new();
    }
    let mut pts = Vec::new();
    let mut seen = 0u64;
    for v in h.iter_recorded() {
        seen += v.count_since_last_iteration();
        pts.push((
            h.highest_equivalent(v.value_iterated_to()) as f64 / 1e3,
            seen as f64 / total as f64,
        ));
    }
    if pts.len() > max_points {
        let step = pts.len().div_ceil(max_points);
        let last = *pts.last().expect("non-empty");
        let mut thin: Vec<(f64, f64)> = pts.iter().step_by(step).copied().collect();
        if thin.last() != Some(&last) {
            thin.push(last);
        }
        pts = thin;
    }
    // Start the curve at (first value, 0) so a single-valued histogram draws a step.
    if let Some(&(x0, _)) = pts.first() {
        let start = (h.lowest_equivalent(h.min()) as f64 / 1e3).min(x0);
        pts.insert(0, (start, 0.0));
    }
    pts
}

#[cfg(test)]
mod tests {
    use super::*;
    use hdrhistogram::serialization::interval_log::{IntervalLogWriterBuilder, Tag};
    use hdrhistogram::serialization::{V2DeflateSerializer, V2Serializer};
    use std::time::{Duration, SystemTime};

    fn hist(values: &[u64]) -> Histogram<u64> {
        let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
        for &v in values {
            h.record(v).unwrap();
        }
        h
    }

    fn log_of(parts: &[(&str, &Histogram<u64>)], deflate: bool) -> Vec<u8> {
        let mut buf = Vec::new();
        let mut plain = V2Serializer::new();
        let mut compressed = V2DeflateSerializer::new();
        macro_rules! write_all {
            ($ser:expr) => {{
                let mut w = IntervalLogWriterBuilder::new()
                    .with_base_time(SystemTime::UNIX_EPOCH)
                    .add_comment("test")
                    .begin_log_with(&mut buf, $ser)
                    .unwrap();
                for (i, (tag, h)) in parts.iter().enumerate() {
                    w.write_histogram(
                        *h,
                        Duration::from_secs(i as u64),
                        Duration::from_secs(1),
                        Tag::new(tag),
                    )
                    .unwrap();
                }
            }};
        }
        if deflate {
            write_all!(&mut compressed)
        } else {
            write_all!(&mut plain)
        }
        buf
    }

    #[test]
    fn reads_the_all_interval_and_computes_percentiles() {
        let h = hist(&(1..=1000).map(|i| i * 1000).collect::<Vec<_>>());
        let bytes = log_of(&[("all", &h)], false);
        let back = parse_hlog(&bytes).unwrap();
        assert_eq!(back.len(), 1000);
        let p = percentiles(&back);
        assert_eq!(p.count, 1000);
        assert!((p.p50_ms - 500.0).abs() < 1.0, "{p:?}");
        assert!((p.p90_ms - 900.0).abs() < 1.0, "{p:?}");
        assert!((p.p999_ms - 999.0).abs() < 1.0, "{p:?}");
        assert!((p.max_ms - 1000.0).abs() < 1.0, "{p:?}");
    }

    #[test]
    fn prefers_all_tag_and_otherwise_sums_intervals() {
        let a = hist(&[1000, 2000]);
        let b = hist(&[3000]);
        let both = hist(&[1000, 2000, 3000]);
        let bytes = log_of(&[("c0", &a), ("c1", &b)], true);
        assert_eq!(parse_hlog(&bytes).unwrap().len(), 3);
        let bytes = log_of(&[("c0", &a), ("all", &both), ("c1", &b)], true);
        assert_eq!(parse_hlog(&bytes).unwrap().len(), 3);
    }

    #[test]
    fn malformed_logs_are_errors() {
        let e = parse_hlog(b"#comment\n").unwrap_err().to_string();
        assert!(e.contains("no interval"), "{e}");
        let e = parse_hlog(b"#c\nTag=all,0.000,1.000,2.000,!!!notbase64\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("base64") || e.contains("malformed"), "{e}");
        let e = parse_hlog(b"#c\nTag=all,0.000,1.000,2.000,SGVsbG8=\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("decode"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.hlog");
        std::fs::write(&p, b"garbage\x00\xff").unwrap();
        let e = read_hlog(&p).unwrap_err().to_string();
        assert!(e.contains("x.hlog"), "{e}");
    }

    #[test]
    fn cdf_is_monotone_and_ends_at_one() {
        let h = hist(&(1..=5000).map(|i| i * 37).collect::<Vec<_>>());
        let pts = cdf_points(&h, 100);
        assert!(pts.len() <= 102, "{}", pts.len());
        assert_eq!(pts.last().unwrap().1, 1.0);
        assert_eq!(pts.first().unwrap().1, 0.0);
        assert!(pts.windows(2).all(|w| w[0].0 <= w[1].0 && w[0].1 <= w[1].1));
        assert!(cdf_points(&hist(&[]), 100).is_empty());
        let one = cdf_points(&hist(&[135_551]), 100);
        assert_eq!(one.len(), 2);
        assert!((one[1].0 - 135.6).abs() < 0.2, "{one:?}");
    }
}
