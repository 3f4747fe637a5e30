//! Our runs arranged in the shape of the paper's figures: one curve per figure, paper series,
//! mode and topology.

use std::collections::{BTreeMap, BTreeSet};

use crate::experiment::{paper_protocol, Experiment};
use crate::paper::{figure, Metric, XAxis};
use crate::results::{ResultSet, Run};

/// One of our curves that corresponds to a curve of a paper figure.
#[derive(Clone, Debug, PartialEq)]
pub struct ObservedSeries {
    /// DSN06 figure number.
    pub figure: u8,
    /// The paper's series name (`steward-10mbps`, `bft`, ...).
    pub series: String,
    /// Protocol as in our results (`steward`, `pbft`).
    pub protocol: String,
    /// Mode label (`sim/paper`, `local`, ...). When runs of one figure, series and mode come from
    /// more than one topology (e.g. `paper-symmetric-10mbps` and `local-symmetric-10mbps` both
    /// simulated), the topology is appended in parentheses to keep the curves apart.
    pub mode: String,
    /// Mode label without the topology disambiguation (`sim/paper`, `local`, ...).
    pub base_mode: String,
    /// Topology name.
    pub topology: String,
    /// Experiment of the topology.
    pub experiment: Experiment,
    /// How the WAN and machines were emulated.
    pub emulation: String,
    /// Machine(s) the runs were made on.
    pub machine: String,
    /// (x, y) sorted by x: x is clients or write percentage; y throughput (ops/s) or mean
    /// latency (ms).
    pub points: Vec<(f64, f64)>,
    /// The points of runs labelled CPU-bound (drawn hollow).
    pub cpu_bound_points: Vec<(f64, f64)>,
}

/// Whether a run contributes to a figure, and its x if so.
fn x_for(run: &Run, fig: u8) -> Option<f64> {
    let info = figure(fig)?;
    if !run.is_paper_like() {
        return None;
    }
    let exp = run.experiment();
    match info.x_axis {
        XAxis::Clients => {
            let matches = exp.throughput_figure() == Some(fig) || exp.latency_figure() == Some(fig);
            (matches && run.write_pct == 100).then_some(run.clients as f64)
        }
        XAxis::WritePct => {
            (exp.has_mix_figures() && run.clients == 10).then_some(run.write_pct as f64)
        }
    }
}

/// The paper's series name of `protocol` in DSN06 figure `fig` for experiment `exp`: as
/// [`Experiment::series`], except that the mix figures (3–4) have one experiment and so no
/// bandwidth in their series names.
pub fn figure_series(fig: u8, exp: &Experiment, protocol: &str) -> String {
    match figure(fig).map(|f| f.x_axis) {
        Some(XAxis::WritePct) => paper_protocol(protocol),
        _ => exp.series(protocol),
    }
}

/// Our curves for every paper figure, from the runs of `results`.
pub fn observed_series(results: &ResultSet) -> Vec<ObservedSeries> {
    type Key = (u8, String, String, String, String); // figure, series, mode, topology, protocol
    let mut groups: BTreeMap<Key, Vec<&Run>> = BTreeMap::new();
    for run in &results.runs {
        for fig in 1..=8u8 {
            if x_for(run, fig).is_some() {
                let key = (
                    fig,
                    figure_series(fig, &run.experiment(), &run.protocol),
                    run.mode_label(),
                    run.topology.clone(),
                    run.protocol.clone(),
                );
                groups.entry(key).or_default().push(run);
            }
        }
    }
    // Which (figure, series, mode) have more than one topology.
    let mut topologies: BTreeMap<(u8, String, String), BTreeSet<String>> = BTreeMap::new();
    for (fig, series, mode, topo, _) in groups.keys() {
        topologies
            .entry((*fig, series.clone(), mode.clone()))
            .or_default()
            .insert(topo.clone());
    }
    let mut out = Vec::new();
    for ((fig, series, mode, topo, protocol), runs) in groups {
        let metric = figure(fig).map(|f| f.metric).unwrap_or(Metric::Throughput);
        let point = |r: &Run| {
            let x = x_for(r, fig)?;
            let y = match metric {
                Metric::Throughput => r.throughput_ops_s,
                Metric::Latency => r.lat_mean_ms,
            };
            Some((x, y))
        };
        let mut points: Vec<(f64, f64)> = runs.iter().filter_map(|r| point(r)).collect();
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
        let cpu_bound_points = runs
            .iter()
            .filter(|r| r.cpu_bound == Some(true))
            .filter_map(|r| point(r))
            .collect();
        let ambiguous = topologies[&(fig, series.clone(), mode.clone())].len() > 1;
        let emulation = distinct(runs.iter().map(|r| results.emulation(r)));
        let machine = distinct(runs.iter().map(|r| results.machine(r)));
        out.push(ObservedSeries {
            figure: fig,
            experiment: Experiment::from_topology(&topo),
            mode: if ambiguous {
                format!("{mode} ({topo})")
            } else {
                mode.clone()
            },
            base_mode: mode,
            series,
            protocol,
            topology: topo,
            emulation,
            machine,
            points,
            cpu_bound_points,
        });
    }
    out
}

/// Distinct strings in first-seen order, joined with "; ".
pub fn distinct<I: IntoIterator<Item = String>>(items: I) -> String {
    let mut seen: Vec<String> = Vec::new();
    for s in items {
        if !seen.contains(&s) {
            seen.push(s);
        }
    }
    seen.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::parse_summary;

    fn set(csv: &str) -> ResultSet {
        let runs = parse_summary(csv, "t.csv").unwrap();
        ResultSet {
            sources: vec![crate::results::Source {
                dir: "d".into(),
                manifest: Default::default(),
                has_manifest: false,
                hdr_logs: Default::default(),
            }],
            runs,
            warnings: vec![],
        }
    }

    const H: &str = "protocol,mode,topology,clients,write_pct,batch,throughput_ops_s,lat_mean_ms,lat_p50_ms,lat_p99_ms,lat_max_ms,costs,scenario\n";

    #[test]
    fn runs_land_in_the_right_figures() {
        let s = set(&format!(
            "{H}steward,sim,paper-symmetric-5mbps,10,100,1,50,180,1,1,1,paper,none\n\
             steward,sim,paper-symmetric-10mbps,10,50,1,100,98,1,1,1,paper,none\n\
             steward,sim,paper-symmetric-10mbps,10,100,1,56,181,1,1,1,paper,none\n\
             pbft,local,local-cairn,3,100,1,2,900,1,1,1,real,none\n\
             steward,sim,paper-symmetric-10mbps,12,100,8,90,150,1,1,1,paper,none\n\
             steward,sim,paper-symmetric-10mbps,12,100,1,60,150,1,1,1,paper,leader-crash\n\
             steward,sim,lab-ring,3,100,1,2,900,1,1,1,paper,none\n"
        ));
        let obs = observed_series(&s);
        let find = |f: u8, series: &str, mode: &str| {
            obs.iter()
                .find(|o| o.figure == f && o.series == series && o.mode == mode)
                .map(|o| o.points.clone())
        };
        assert_eq!(
            find(1, "steward-5mbps", "sim/paper"),
            Some(vec![(10.0, 50.0)])
        );
        assert_eq!(
            find(2, "steward-5mbps", "sim/paper"),
            Some(vec![(10.0, 180.0)])
        );
        // The 10-client 100 % run is in Fig. 1 and in the mix figures.
        assert_eq!(
            find(1, "steward-10mbps", "sim/paper"),
            Some(vec![(10.0, 56.0)])
        );
        assert_eq!(
            find(3, "steward", "sim/paper"),
            Some(vec![(50.0, 100.0), (100.0, 56.0)])
        );
        assert_eq!(
            find(4, "steward", "sim/paper"),
            Some(vec![(50.0, 98.0), (100.0, 181.0)])
        );
        assert_eq!(find(7, "bft", "local"), Some(vec![(3.0, 2.0)]));
        // Batched, faulty and unknown-topology runs are in no figure.
        assert_eq!(obs.len(), 8, "{obs:#?}");
    }

    #[test]
    fn same_series_on_two_topologies_is_disambiguated() {
        let s = set(&format!(
            "{H}steward,sim,paper-symmetric-10mbps,1,100,1,7,130,1,1,1,paper,none\n\
             steward,sim,local-symmetric-10mbps,1,100,1,8,120,1,1,1,paper,none\n"
        ));
        let modes: Vec<String> = observed_series(&s)
            .into_iter()
            .filter(|o| o.figure == 1)
            .map(|o| o.mode)
            .collect();
        assert_eq!(
            modes,
            vec![
                "sim/paper (local-symmetric-10mbps)",
                "sim/paper (paper-symmetric-10mbps)"
            ]
        );
    }
}
