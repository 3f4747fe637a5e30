//! Comparing two results directories configuration by configuration.
//!
//! Configurations are matched by (protocol, mode, topology, clients, write_pct, batch,
//! scenario). For each pair the ratios b/a of throughput, mean latency and p99 latency are
//! computed; a pair is a regression when throughput drops by more than the threshold, when the
//! mean or p99 latency rises by more than the threshold, or when b has a safety violation that
//! a did not have.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::results::{ConfigKey, ResultSet, Run};

/// One configuration present in both directories.
#[derive(Clone, Debug)]
pub struct ComparedRow {
    /// The configuration.
    pub key: ConfigKey,
    /// Its row in the first directory.
    pub a: Run,
    /// Its row in the second directory.
    pub b: Run,
    /// Throughput b/a (`None` when a's is 0).
    pub throughput_ratio: Option<f64>,
    /// Mean latency b/a (`None` when a's is 0).
    pub mean_ratio: Option<f64>,
    /// p99 latency b/a (`None` when a's is 0).
    pub p99_ratio: Option<f64>,
    /// Why this row is a regression (empty if it is not).
    pub regressions: Vec<String>,
}

/// The result of comparing two result sets.
#[derive(Clone, Debug, Default)]
pub struct Comparison {
    /// Regression threshold in percent.
    pub threshold_pct: f64,
    /// Configurations in both, sorted by key.
    pub rows: Vec<ComparedRow>,
    /// Configurations only in the first.
    pub only_a: Vec<ConfigKey>,
    /// Configurations only in the second.
    pub only_b: Vec<ConfigKey>,
    /// Duplicate configurations inside one set (the last row is used).
    pub warnings: Vec<String>,
}

impl Comparison {
    /// Whether any configuration regressed.
    pub fn has_regression(&self) -> bool {
        self.rows.iter().any(|r| !r.regressions.is_empty())
    }

    /// Process exit code: 1 when `fail_on_regression` is set and a regression was flagged,
    /// else 0.
    pub fn exit_code(&self, fail_on_regression: bool) -> i32 {
        if fail_on_regression && self.has_regression() {
            1
        } else {
            0
        }
    }
}

fn ratio(b: f64, a: f64) -> Option<f64> {
    (a != 0.0).then(|| b / a)
}

fn index(set: &ResultSet, name: &str, warnings: &mut Vec<String>) -> BTreeMap<ConfigKey, Run> {
    let mut m = BTreeMap::new();
    for r in &set.runs {
        if m.insert(r.config_key(), r.clone()).is_some() {
            warnings.push(format!(
                "{name}: configuration {} appears more than once (e.g. with different costs); \
                 using summary.csv line {}",
                r.config_key(),
                r.line
            ));
        }
    }
    m
}

/// Compare result set `b` against baseline `a`.
pub fn compare(a: &ResultSet, b: &ResultSet, threshold_pct: f64) -> Comparison {
    let mut warnings = Vec::new();
    let ia = index(a, "a", &mut warnings);
    let ib = index(b, "b", &mut warnings);
    let t = threshold_pct / 100.0;
    let mut rows = Vec::new();
    let mut only_a = Vec::new();
    for (key, ra) in &ia {
        let Some(rb) = ib.get(key) else {
            only_a.push(key.clone());
            continue;
        };
        let thr = ratio(rb.throughput_ops_s, ra.throughput_ops_s);
        let mean = ratio(rb.lat_mean_ms, ra.lat_mean_ms);
        let p99 = ratio(rb.lat_p99_ms, ra.lat_p99_ms);
        let mut why = Vec::new();
        match thr {
            Some(r) if r < 1.0 - t => {
                why.push(format!("throughput {:+.1}%", (r - 1.0) * 100.0));
            }
            _ => {}
        }
        if let Some(r) = mean.filter(|&r| r > 1.0 + t) {
            why.push(format!("mean latency {:+.1}%", (r - 1.0) * 100.0));
        }
        if let Some(r) = p99.filter(|&r| r > 1.0 + t) {
            why.push(format!("p99 latency {:+.1}%", (r - 1.0) * 100.0));
        }
        if ra.safety == "ok" && !rb.safety.is_empty() && rb.safety != "ok" {
            why.push(format!("safety: {}", rb.safety));
        }
        rows.push(ComparedRow {
            key: key.clone(),
            a: ra.clone(),
            b: rb.clone(),
            throughput_ratio: thr,
            mean_ratio: mean,
            p99_ratio: p99,
            regressions: why,
        });
    }
    let only_b = ib
        .keys()
        .filter(|k| !ia.contains_key(*k))
        .cloned()
        .collect();
    Comparison {
        threshold_pct,
        rows,
        only_a,
        only_b,
        warnings,
    }
}

/// A plain-text report of a comparison, for the terminal.
pub fn render(c: &Comparison, a_name: &str, b_name: &str) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "a = {a_name}");
    let _ = writeln!(s, "b = {b_name}");
    let _ = writeln!(
        s,
        "ratios are b/a; regression threshold {}% (throughput drop, mean or p99 latency rise)\n",
        c.threshold_pct
    );
    let _ = writeln!(
        s,
        "{:<8} {:<6} {:<26} {:>7} {:>5} {:>5} {:<14} {:>10} {:>10} {:>7} {:>8} {:>8} {:>7} {:>7}  verdict",
        "protocol", "mode", "topology", "clients", "write", "batch", "scenario", "a ops/s",
        "b ops/s", "thr b/a", "a mean", "b mean", "mean", "p99"
    );
    let f = |v: Option<f64>| v.map(|v| format!("{v:.3}")).unwrap_or_else(|| "n/a".into());
    for r in &c.rows {
        let k = &r.key;
        let verdict = if r.regressions.is_empty() {
            "ok".to_string()
        } else {
            format!("REGRESSION: {}", r.regressions.join(", "))
        };
        let _ = writeln!(
            s,
            "{:<8} {:<6} {:<26} {:>7} {:>5} {:>5} {:<14} {:>10.1} {:>10.1} {:>7} {:>8.1} {:>8.1} {:>7} {:>7}  {}",
            k.protocol,
            k.mode,
            k.topology,
            k.clients,
            k.write_pct,
            k.batch,
            k.scenario,
            r.a.throughput_ops_s,
            r.b.throughput_ops_s,
            f(r.throughput_ratio),
            r.a.lat_mean_ms,
            r.b.lat_mean_ms,
            f(r.mean_ratio),
            f(r.p99_ratio),
            verdict
        );
    }
    if c.rows.is_empty() {
        let _ = writeln!(s, "(no configuration is present in both)");
    }
    for (name, keys) in [("a", &c.only_a), ("b", &c.only_b)] {
        if !keys.is_empty() {
            let _ = writeln!(s, "\nonly in {name}:");
            for k in keys {
                let _ = writeln!(s, "  {k}");
            }
        }
    }
    for w in &c.warnings {
        let _ = writeln!(s, "warning: {w}");
    }
    let n = c.rows.iter().filter(|r| !r.regressions.is_empty()).count();
    let _ = writeln!(
        s,
        "\n{} compared, {} regression(s), {} only in a, {} only in b",
        c.rows.len(),
        n,
        c.only_a.len(),
        c.only_b.len()
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::parse_summary;

    const H: &str = "protocol,mode,topology,clients,write_pct,batch,throughput_ops_s,lat_mean_ms,lat_p50_ms,lat_p99_ms,lat_max_ms,safety,scenario,costs\n";

    fn set(rows: &str) -> ResultSet {
        ResultSet {
            sources: vec![],
            runs: parse_summary(&format!("{H}{rows}"), "t.csv").unwrap(),
            warnings: vec![],
        }
    }

    #[test]
    fn flags_regressions_beyond_the_threshold() {
        let a = set("steward,sim,t,1,100,1,100,100,1,200,1,ok,none,paper\n\
                     steward,sim,t,5,100,1,100,100,1,200,1,ok,none,paper\n\
                     steward,sim,t,10,100,1,100,100,1,200,1,ok,none,paper\n\
                     pbft,sim,t,1,100,1,50,100,1,200,1,ok,none,paper\n\
                     pbft,sim,t,2,100,1,0,0,0,0,0,ok,none,paper\n\
                     steward,sim,t,30,100,1,100,100,1,200,1,ok,none,paper\n");
        let b = set("steward,sim,t,1,100,1,95,105,1,210,1,ok,none,paper\n\
                     steward,sim,t,5,100,1,80,100,1,200,1,ok,none,paper\n\
                     steward,sim,t,10,100,1,100,100,1,250,1,ok,none,paper\n\
                     pbft,sim,t,1,100,1,50,100,1,200,1,2 bad replies,none,paper\n\
                     pbft,sim,t,2,100,1,3,10,1,10,1,ok,none,paper\n\
                     steward,local,t,1,100,1,100,100,1,200,1,ok,none,real\n");
        let c = compare(&a, &b, 10.0);
        assert_eq!(c.rows.len(), 5);
        let verdict = |p: &str, n: u32| {
            c.rows
                .iter()
                .find(|r| r.key.protocol == p && r.key.clients == n)
                .unwrap()
                .regressions
                .clone()
        };
        assert!(verdict("steward", 1).is_empty()); // within 10 %
        assert_eq!(verdict("steward", 5), vec!["throughput -20.0%"]);
        assert_eq!(verdict("steward", 10), vec!["p99 latency +25.0%"]);
        assert_eq!(verdict("pbft", 1), vec!["safety: 2 bad replies"]);
        assert!(verdict("pbft", 2).is_empty()); // zero baseline: no ratio
        assert_eq!(c.only_a.len(), 1);
        assert_eq!(c.only_a[0].clients, 30);
        assert_eq!(c.only_b.len(), 1);
        assert_eq!(c.only_b[0].mode, "local");
        assert!(c.has_regression());
        assert_eq!(c.exit_code(true), 1);
        assert_eq!(c.exit_code(false), 0);
        let text = render(&c, "A", "B");
        assert!(text.contains("REGRESSION: throughput -20.0%"), "{text}");
        assert!(
            text.contains("only in a:") && text.contains("only in b:"),
            "{text}"
        );
        assert!(text.contains("5 compared, 3 regression(s)"), "{text}");

        // A looser threshold lets the 20 % drop through but not the safety violation.
        let c = compare(&a, &b, 30.0);
        assert_eq!(
            c.rows.iter().filter(|r| !r.regressions.is_empty()).count(),
            1
        );
    }

    #[test]
    fn identical_sets_pass() {
        let a = set("steward,sim,t,1,100,1,100,100,1,200,1,ok,none,paper\n");
        let c = compare(&a, &a, 10.0);
        assert!(!c.has_regression());
        assert_eq!(c.exit_code(true), 0);
        assert_eq!(c.rows[0].throughput_ratio, Some(1.0));
    }

    #[test]
    fn duplicate_keys_are_warned_about() {
        let a = set("steward,sim,t,1,100,1,100,100,1,200,1,ok,none,paper\n\
                     steward,sim,t,1,100,1,90,100,1,200,1,ok,none,measured\n");
        let c = compare(&a, &a, 10.0);
        assert_eq!(c.rows.len(), 1);
        assert_eq!(c.warnings.len(), 2);
    }
}
