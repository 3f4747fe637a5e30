//! Replica metrics over time (`timeseries.csv`), fault events (`events.csv`) and the
//! throughput-over-time series computed from them.
//!
//! `loadgen local` writes, next to a results directory's `summary.csv`:
//! * `timeseries.csv`, header `protocol,clients,batch,scenario,time_s,node,metric,value`: one
//!   sample per replica and metric about once a second. `protocol`, `clients`, `batch` and
//!   `scenario` identify the run (as in its `summary.csv` row); `time_s` is seconds since the
//!   start of the run's measurement window (may be negative); `node` a replica (`s0.1`, `r3`);
//!   `metric` a Prometheus metric name, possibly with labels (`bft_messages_sent_total{class="wan"}`);
//!   `value` a number. A killed replica has no samples while it is down; after a restart its
//!   counters start again from the recovered value or from 0.
//! * `events.csv`, header `protocol,clients,batch,scenario,time_s,event,node`: `kill` and
//!   `restart` of replicas, on the same clock.
//!
//! [`throughput`] turns the replicas' `bft_executed_updates_total` counters into updates/s.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};

/// File name of the per-replica metric samples.
pub const TIMESERIES_FILE: &str = "timeseries.csv";
/// File name of the fault events.
pub const EVENTS_FILE: &str = "events.csv";
/// Columns of `timeseries.csv`.
pub const TIMESERIES_HEADER: [&str; 8] = [
    "protocol", "clients", "batch", "scenario", "time_s", "node", "metric", "value",
];
/// Columns of `events.csv`.
pub const EVENTS_HEADER: [&str; 7] = [
    "protocol", "clients", "batch", "scenario", "time_s", "event", "node",
];
/// The counter of updates a replica has executed; throughput is computed from it.
pub const EXECUTED_METRIC: &str = "bft_executed_updates_total";

/// One run of a results directory, as `timeseries.csv` and `events.csv` name it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RunId {
    /// Protocol (`steward`, `pbft`).
    pub protocol: String,
    /// Closed-loop clients.
    pub clients: u32,
    /// Batch size.
    pub batch: u32,
    /// Fault scenario (`none`, `kill-s0.0@5s`, ...).
    pub scenario: String,
}

/// One metric sample of one replica.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// Seconds since the start of the measurement window.
    pub time_s: f64,
    /// Replica name.
    pub node: String,
    /// Metric name with its labels, as written.
    pub metric: String,
    /// Value.
    pub value: f64,
}

/// A fault event.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// Seconds since the start of the measurement window.
    pub time_s: f64,
    /// `kill` or `restart` (other words are kept as written).
    pub event: String,
    /// Replica name.
    pub node: String,
}

/// Samples and events of one run.
#[derive(Clone, Debug, PartialEq)]
pub struct Timeline {
    /// Which run.
    pub run: RunId,
    /// Samples of [`EXECUTED_METRIC`] (with any labels), in file order; other metrics are
    /// not kept.
    pub samples: Vec<Sample>,
    /// Events sorted by time.
    pub events: Vec<Event>,
}

/// The metric name without its labels: `a_total{x="y"}` → `a_total`.
pub fn base_metric(metric: &str) -> &str {
    metric.split('{').next().unwrap_or(metric).trim()
}

/// Read `timeseries.csv` and `events.csv` (if present) of the results directory `dir`: one
/// [`Timeline`] per run, ordered by [`RunId`]. `Ok(None)` when there is no `timeseries.csv`.
/// Errors name the file and line.
pub fn load_timelines(dir: &Path) -> Result<Option<Vec<Timeline>>> {
    let ts_path = dir.join(TIMESERIES_FILE);
    if !ts_path.is_file() {
        return Ok(None);
    }
    let text = fs::read_to_string(&ts_path)
        .with_context(|| format!("{}: cannot read", ts_path.display()))?;
    let samples = parse_timeseries(&text, &ts_path.display().to_string(), |m| {
        base_metric(m) == EXECUTED_METRIC
    })?;
    let ev_path = dir.join(EVENTS_FILE);
    let events = if ev_path.is_file() {
        let text = fs::read_to_string(&ev_path)
            .with_context(|| format!("{}: cannot read", ev_path.display()))?;
        parse_events(&text, &ev_path.display().to_string())?
    } else {
        Vec::new()
    };
    let mut runs: BTreeMap<RunId, (Vec<Sample>, Vec<Event>)> = BTreeMap::new();
    for (id, s) in samples {
        runs.entry(id).or_default().0.push(s);
    }
    for (id, e) in events {
        runs.entry(id).or_default().1.push(e);
    }
    Ok(Some(
        runs.into_iter()
            .map(|(run, (samples, mut events))| {
                events.sort_by(|a, b| a.time_s.total_cmp(&b.time_s));
                Timeline {
                    run,
                    samples,
                    events,
                }
            })
            .collect(),
    ))
}

/// Rows of a CSV file by header name; `wide` is the column that may hold unquoted commas
/// (Prometheus labels), in which case a row has extra fields that belong to it.
fn read_rows(
    text: &str,
    origin: &str,
    header: &[&str],
    wide: Option<&str>,
) -> Result<Vec<(u64, HashMap<String, String>)>> {
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let names: Vec<String> = rdr
        .headers()
        .map_err(|e| anyhow!("{origin}: cannot read the header line: {e}"))?
        .iter()
        .map(str::to_string)
        .collect();
    let missing: Vec<&str> = header
        .iter()
        .copied()
        .filter(|c| !names.iter().any(|n| n == c))
        .collect();
    if !missing.is_empty() {
        bail!(
            "{origin}: line 1: missing column(s): {} (expected {})",
            missing.join(", "),
            header.join(",")
        );
    }
    let wide_at = wide.and_then(|w| names.iter().position(|n| n == w));
    let mut out = Vec::new();
    for rec in rdr.records() {
        let rec = rec.map_err(|e| anyhow!("{origin}: {e}"))?;
        let line = rec.position().map(|p| p.line()).unwrap_or(0);
        if rec.iter().all(|f| f.is_empty()) {
            continue;
        }
        let fields: Vec<&str> = rec.iter().collect();
        let extra = fields.len().saturating_sub(names.len());
        if fields.len() < names.len() || (extra > 0 && wide_at.is_none()) {
            bail!(
                "{origin}: line {line}: has {} fields but the header has {}",
                fields.len(),
                names.len()
            );
        }
        let mut row = HashMap::new();
        let mut i = 0;
        for (c, name) in names.iter().enumerate() {
            let take = if Some(c) == wide_at { extra + 1 } else { 1 };
            row.insert(name.clone(), fields[i..i + take].join(","));
            i += take;
        }
        out.push((line, row));
    }
    Ok(out)
}

fn run_id(row: &HashMap<String, String>, origin: &str, line: u64) -> Result<RunId> {
    let int = |c: &str| -> Result<u32> {
        row[c].parse().map_err(|_| {
            anyhow!(
                "{origin}: line {line}: column {c}: not a count: {:?}",
                row[c]
            )
        })
    };
    Ok(RunId {
        protocol: row["protocol"].clone(),
        clients: int("clients")?,
        batch: int("batch")?,
        scenario: row["scenario"].clone(),
    })
}

fn number(row: &HashMap<String, String>, c: &str, origin: &str, line: u64) -> Result<f64> {
    row[c]
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
        .ok_or_else(|| {
            anyhow!(
                "{origin}: line {line}: column {c}: not a number: {:?}",
                row[c]
            )
        })
}

/// Parse the text of a `timeseries.csv`, keeping the samples whose metric `keep` accepts.
/// `origin` names the file in error messages.
pub fn parse_timeseries(
    text: &str,
    origin: &str,
    keep: impl Fn(&str) -> bool,
) -> Result<Vec<(RunId, Sample)>> {
    let mut out = Vec::new();
    for (line, row) in read_rows(text, origin, &TIMESERIES_HEADER, Some("metric"))? {
        if !keep(&row["metric"]) {
            continue;
        }
        out.push((
            run_id(&row, origin, line)?,
            Sample {
                time_s: number(&row, "time_s", origin, line)?,
                node: row["node"].clone(),
                metric: row["metric"].clone(),
                value: number(&row, "value", origin, line)?,
            },
        ));
    }
    Ok(out)
}

/// Parse the text of an `events.csv`. `origin` names the file in error messages.
pub fn parse_events(text: &str, origin: &str) -> Result<Vec<(RunId, Event)>> {
    let mut out = Vec::new();
    for (line, row) in read_rows(text, origin, &EVENTS_HEADER, None)? {
        out.push((
            run_id(&row, origin, line)?,
            Event {
                time_s: number(&row, "time_s", origin, line)?,
                event: row["event"].clone(),
                node: row["node"].clone(),
            },
        ));
    }
    Ok(out)
}

/// One point of a throughput-over-time series.
#[derive(Clone, Debug, PartialEq)]
pub struct RatePoint {
    /// End of the sample interval, seconds (mean over the replicas that contributed).
    pub time_s: f64,
    /// Updates executed per second over the interval (median over the replicas).
    pub updates_per_s: f64,
    /// How many replicas contributed a rate.
    pub replicas: usize,
}

/// Throughput over time from the [`EXECUTED_METRIC`] samples of `samples` (other metrics are
/// ignored; label variants of one replica at one time are summed).
///
/// The sample period is the median gap between a replica's consecutive samples (1 s if there
/// is none). For each replica, each pair of consecutive samples at most 1.5 periods apart gives
/// a rate (increase ÷ gap); a pair further apart means the replica was down in between and a
/// decrease means it restarted, and neither gives a rate. The rates ending in the same period
/// (end time rounded to a multiple of the period) are combined by their median: a stall shows
/// as soon as most live replicas stop executing, while one replica that lags or catches up in
/// a burst after a restart does not move the curve. Periods with no rate are left out.
pub fn throughput(samples: &[Sample]) -> Vec<RatePoint> {
    // node -> time -> summed value
    let mut by_node: BTreeMap<&str, BTreeMap<u64, (f64, f64)>> = BTreeMap::new();
    for s in samples
        .iter()
        .filter(|s| base_metric(&s.metric) == EXECUTED_METRIC)
    {
        let e = by_node
            .entry(s.node.as_str())
            .or_default()
            .entry(order_key(s.time_s))
            .or_insert((s.time_s, 0.0));
        e.1 += s.value;
    }
    let series: Vec<Vec<(f64, f64)>> = by_node
        .into_values()
        .map(|m| m.into_values().collect())
        .collect();
    let mut gaps: Vec<f64> = series
        .iter()
        .flat_map(|s| s.windows(2).map(|w| w[1].0 - w[0].0))
        .filter(|&d| d > 0.0)
        .collect();
    let period = if gaps.is_empty() {
        1.0
    } else {
        median(&mut gaps)
    };
    let mut buckets: BTreeMap<i64, Vec<(f64, f64)>> = BTreeMap::new();
    for s in &series {
        for w in s.windows(2) {
            let ((t0, v0), (t1, v1)) = (w[0], w[1]);
            let dt = t1 - t0;
            if dt <= 0.0 || dt > 1.5 * period || v1 < v0 {
                continue;
            }
            buckets
                .entry((t1 / period).round() as i64)
                .or_default()
                .push((t1, (v1 - v0) / dt));
        }
    }
    buckets
        .into_values()
        .map(|b| {
            let mut rates: Vec<f64> = b.iter().map(|p| p.1).collect();
            RatePoint {
                time_s: b.iter().map(|p| p.0).sum::<f64>() / b.len() as f64,
                updates_per_s: median(&mut rates),
                replicas: b.len(),
            }
        })
        .collect()
}

/// A key ordering finite floats like the floats (for the BTreeMap above).
fn order_key(v: f64) -> u64 {
    let b = v.to_bits();
    if b >> 63 == 1 {
        !b
    } else {
        b | (1 << 63)
    }
}

/// Median of a non-empty slice (mean of the middle two for an even count); sorts it.
fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(t: f64, node: &str, v: f64) -> Sample {
        Sample {
            time_s: t,
            node: node.into(),
            metric: EXECUTED_METRIC.into(),
            value: v,
        }
    }

    #[test]
    fn restarts_and_gaps_give_no_rate_and_outliers_do_not_move_the_median() {
        let mut v = Vec::new();
        for t in 0..=4 {
            let t = t as f64;
            v.push(s(t, "a", 10.0 * t));
            v.push(s(t + 0.01, "b", 10.0 * t)); // a slightly later clock, same rate
            v.push(s(t, "c", 10.0 * t));
            // d has two label variants of the counter, summed: 15/s.
            v.push(s(t, "d", 10.0 * t));
            v.push(Sample {
                metric: format!("{EXECUTED_METRIC}{{kind=\"x\"}}"),
                ..s(t, "d", 5.0 * t)
            });
        }
        // c restarts between 2 and 3: its counter drops to 0, then catches up in a burst.
        v.retain(|x| !(x.node == "c" && x.time_s > 2.5));
        v.push(s(3.0, "c", 0.0));
        v.push(s(4.0, "c", 1000.0));
        // b is down between 1 and 4: no samples at 2 and 3.
        v.retain(|x| !(x.node == "b" && x.time_s > 1.5 && x.time_s < 3.5));
        // Another metric is ignored.
        v.push(Sample {
            metric: "bft_messages_sent_total".into(),
            ..s(1.0, "a", 1e9)
        });
        let got: Vec<(i64, f64, usize)> = throughput(&v)
            .iter()
            .map(|p| {
                (
                    (p.time_s * 10.0).round() as i64,
                    p.updates_per_s,
                    p.replicas,
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (10, 10.0, 4), // a, b, c 10/s; d 15/s
                (20, 10.0, 3), // b was down from 1 to 4: its 3 s gap gives no rate
                (30, 12.5, 2), // c restarted (its counter fell): a 10, d 15
                (40, 15.0, 3), // c's 1000/s burst: median of 10, 15, 1000
            ]
        );
        assert!(throughput(&[]).is_empty());
    }

    #[test]
    fn files_parse_by_header_with_labels_and_report_bad_lines() {
        let ts = "protocol,clients,batch,scenario,time_s,node,metric,value\n\
                  pbft,4,1,kill-r0@5s,-1.0,r0,bft_executed_updates_total,0\n\
                  pbft,4,1,kill-r0@5s,0.0,r0,\"bft_executed_updates_total{a=\"\"x\"\",b=\"\"y\"\"}\",3\n\
                  pbft,4,1,kill-r0@5s,0.0,r0,bft_executed_updates_total{a=\"x\",b=\"y\"},4\n\
                  pbft,4,1,kill-r0@5s,0.0,r0,bft_messages_sent_total,9\n";
        let all = parse_timeseries(ts, "t.csv", |_| true).unwrap();
        assert_eq!(all.len(), 4);
        assert_eq!(
            all[0].0,
            RunId {
                protocol: "pbft".into(),
                clients: 4,
                batch: 1,
                scenario: "kill-r0@5s".into()
            }
        );
        assert_eq!(all[0].1.time_s, -1.0);
        // Quoted and unquoted labels with commas both land in `metric`.
        assert_eq!(
            all[1].1.metric,
            "bft_executed_updates_total{a=\"x\",b=\"y\"}"
        );
        assert_eq!(all[2].1.metric, all[1].1.metric);
        assert_eq!(all[2].1.value, 4.0);
        let kept = parse_timeseries(ts, "t.csv", |m| base_metric(m) == EXECUTED_METRIC).unwrap();
        assert_eq!(kept.len(), 3);

        let e = parse_timeseries(
            "protocol,clients,batch,scenario,time_s,node,metric,value\npbft,4,1,none,x,r0,m,1\n",
            "t.csv",
            |_| true,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("t.csv: line 2: column time_s"), "{e}");
        let e = parse_events("protocol,clients,time_s\n", "e.csv")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("e.csv: line 1: missing column(s): batch, scenario, event, node"),
            "{e}"
        );
        let ev = parse_events(
            "protocol,clients,batch,scenario,time_s,event,node\nsteward,8,1,none,5.0,kill,s0.0\n",
            "e.csv",
        )
        .unwrap();
        assert_eq!(
            ev[0].1,
            Event {
                time_s: 5.0,
                event: "kill".into(),
                node: "s0.0".into()
            }
        );
    }
}
