//! `analysis report`: Markdown, CSV tables and plots from merged results, next to the paper.
//!
//! Files written into the output directory:
//! * `REPORT.md`: everything below, readable on its own;
//! * `fidelity.csv`: `figure,series,mode,points,median_abs_dev_pct`;
//! * `peak_ratios.csv`: Steward/PBFT peak throughput per experiment and mode, and the paper's;
//! * `dsn06-fig1.csv` … `dsn06-fig8.csv`: each paper figure's points side by side with ours;
//! * `latency_percentiles.csv`: p50/p99/max from `summary.csv`, p90/p99.9 from the HDR logs;
//! * `runs.csv`: every merged row with where it came from;
//! * `other-<topology>.csv`: runs on topologies the paper has no experiment for;
//! * `timeline.csv`: throughput over time, when a results directory has a `timeseries.csv`
//!   (see [`crate::timeseries`]);
//! * `damage.csv`: attack rows (those with an `attack_ratio`, written by `loadgen simulate
//!   --scenario attacks`): throughput under attack next to the fault-free reference;
//! * `plots/*.svg` and `plots/*.png`: throughput and latency vs clients, mix curves, CDFs,
//!   throughput over time with the fault events (`plots/timeline-*`), throughput under attack
//!   ÷ fault-free per attack (`plots/damage-*`).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use hdrhistogram::Histogram;
use steward_config::Protocol;

use crate::experiment::{
    from_paper_name, paper_name, protocol_display, protocol_of, slug, Experiment,
};
use crate::fidelity::{fidelity, peak_ratios, write_fidelity_csv, FidelityRow, PeakRatio};
use crate::figures::{distinct, figure_series, observed_series, ObservedSeries};
use crate::hdr::{cdf_points, percentiles, read_hlog, Percentiles};
use crate::paper::{figure, Metric, PaperData, XAxis, FIGURES};
use crate::plots::{
    default_font_dirs, find_font, palette, protocol_color, render, wants_log, BarChart, BarSeries,
    Chart, ChartFont, Curve, CurveStyle, Figure, LegendAt, Marker, FONT_ENV,
};
use crate::results::{ResultSet, Run};
use crate::table::{num, ratio, Table};
use crate::timeseries::{load_timelines, throughput, RatePoint, Timeline, TIMESERIES_FILE};

/// Where the plots' font comes from.
#[derive(Clone, Debug, PartialEq)]
pub enum PlotFont {
    /// Draw no plots.
    Skip,
    /// `ANALYSIS_FONT` if set, else search the usual font directories.
    Auto,
    /// This font file.
    File(PathBuf),
    /// Search these directories only.
    SearchIn(Vec<PathBuf>),
}

/// Options of [`write_report`].
#[derive(Clone, Debug)]
pub struct ReportOptions {
    /// Output directory (created if missing).
    pub out: PathBuf,
    /// Font for the plots.
    pub font: PlotFont,
    /// Hand-written Markdown placed in REPORT.md before the generated sections (e.g. why
    /// the results differ from the paper's).
    pub notes: Option<String>,
}

/// What [`write_report`] did.
#[derive(Clone, Debug, Default)]
pub struct ReportOutcome {
    /// Every file written, relative paths joined to the output directory.
    pub files: Vec<PathBuf>,
    /// Why plots are missing, if they are (tables are written regardless).
    pub plot_error: Option<String>,
    /// Warnings (input and HDR problems) also listed in the report.
    pub warnings: Vec<String>,
    /// The fidelity rows written to `fidelity.csv`.
    pub fidelity: Vec<FidelityRow>,
}

/// Name of the Markdown report.
pub const REPORT_FILE: &str = "REPORT.md";

/// Header of the per-figure side-by-side CSV files.
pub const FIGURE_CSV_HEADER: [&str; 11] = [
    "figure",
    "series",
    "x",
    "unit",
    "paper",
    "mode",
    "topology",
    "ours",
    "ratio_ours_paper",
    "emulation",
    "machine",
];

/// Header of `peak_ratios.csv`.
pub const PEAK_CSV_HEADER: [&str; 13] = [
    "experiment",
    "mode",
    "topology",
    "clients_run",
    "steward_peak_ops_s",
    "steward_peak_clients",
    "pbft_peak_ops_s",
    "pbft_peak_clients",
    "ratio",
    "paper_steward_peak",
    "paper_bft_peak",
    "paper_ratio",
    "ratio_vs_paper",
];

/// Header of `latency_percentiles.csv`.
pub const PERCENTILE_CSV_HEADER: [&str; 19] = [
    "protocol",
    "mode",
    "topology",
    "clients",
    "write_pct",
    "batch",
    "scenario",
    "samples",
    "mean_ms",
    "p50_ms",
    "p90_ms",
    "p99_ms",
    "p999_ms",
    "max_ms",
    "hdr_p50_ms",
    "hdr_p99_ms",
    "hdr_log",
    "emulation",
    "machine",
];

/// Header of `timeline.csv`: throughput over time per run, see [`crate::timeseries::throughput`].
pub const TIMELINE_CSV_HEADER: [&str; 8] = [
    "source",
    "protocol",
    "clients",
    "batch",
    "scenario",
    "time_s",
    "updates_per_s",
    "replicas",
];

/// Name of the throughput-over-time table.
pub const TIMELINE_FILE: &str = "timeline.csv";

/// Header of `damage.csv`: one row per attack run (a row with an `attack_ratio`).
pub const DAMAGE_CSV_HEADER: [&str; 13] = [
    "source",
    "protocol",
    "topology",
    "costs",
    "clients",
    "scenario",
    "reference_ops_s",
    "throughput_ops_s",
    "attack_ratio",
    "local_view_changes",
    "global_view_changes",
    "recovery_ms",
    "safety",
];

/// Name of the damage-under-attack table.
pub const DAMAGE_FILE: &str = "damage.csv";

/// The acceptance bound on [`Run::attack_ratio`]: an attack may cost at most half the
/// fault-free throughput.
pub const ATTACK_BOUND: f64 = 0.5;

/// Attack runs grouped by (topology, costs, clients), each group in input order.
type DamageGroups<'a> = BTreeMap<(String, String, u32), Vec<&'a Run>>;

/// Header of `runs.csv`.
pub const RUNS_CSV_HEADER: [&str; 25] = [
    "source",
    "line",
    "experiment",
    "protocol",
    "mode",
    "mode_label",
    "topology",
    "clients",
    "write_pct",
    "batch",
    "scenario",
    "costs",
    "throughput_ops_s",
    "lat_mean_ms",
    "lat_p50_ms",
    "lat_p99_ms",
    "lat_max_ms",
    "lat_bound_ms",
    "wan_msgs_per_update",
    "wan_bytes_per_update",
    "cpu_ms_per_update",
    "safety",
    "recovery_ms",
    "emulation",
    "machine",
];

/// One run's samples and events with its computed throughput over time.
type RunTimeline = (Timeline, Vec<RatePoint>);

struct Ctx<'a> {
    results: &'a ResultSet,
    paper: &'a PaperData,
    observed: Vec<ObservedSeries>,
    hists: Vec<Option<Histogram<u64>>>,
    /// Per source with a `timeseries.csv`: its index and runs, each with its throughput.
    timelines: Vec<(usize, Vec<RunTimeline>)>,
    out: PathBuf,
    files: Vec<PathBuf>,
    warnings: Vec<String>,
}

/// Write the report for `results` into `opts.out`. Fails only if a table cannot be written;
/// a plot failure (e.g. no font) is returned in [`ReportOutcome::plot_error`] after all tables
/// are written.
pub fn write_report(
    results: &ResultSet,
    paper: &PaperData,
    opts: &ReportOptions,
) -> Result<ReportOutcome> {
    fs::create_dir_all(&opts.out)
        .with_context(|| format!("{}: cannot create the output directory", opts.out.display()))?;
    let mut warnings = results.warnings.clone();
    let hists: Vec<Option<Histogram<u64>>> = results
        .runs
        .iter()
        .map(|r| {
            r.hdr_log.as_ref().and_then(|p| match read_hlog(p) {
                Ok(h) => Some(h),
                Err(e) => {
                    warnings.push(format!("{e:#}; its percentiles are left empty"));
                    None
                }
            })
        })
        .collect();
    let mut timelines = Vec::new();
    for (i, so) in results.sources.iter().enumerate() {
        match load_timelines(&so.dir) {
            Ok(Some(t)) => timelines.push((
                i,
                t.into_iter()
                    .map(|t| {
                        let r = throughput(&t.samples);
                        (t, r)
                    })
                    .collect(),
            )),
            Ok(None) => {}
            Err(e) => warnings.push(format!("{e:#}; no throughput-over-time plot from it")),
        }
    }
    let mut cx = Ctx {
        results,
        paper,
        observed: observed_series(results),
        hists,
        timelines,
        out: opts.out.clone(),
        files: Vec::new(),
        warnings,
    };

    // Tables first, so that they exist even when plotting fails.
    let fid = fidelity(&cx.observed, paper);
    let fid_path = cx.out.join("fidelity.csv");
    write_fidelity_csv(&fid, &fid_path)?;
    cx.files.push(fid_path);
    let peaks = peak_ratios(&cx.observed, paper);
    cx.write_table(&peak_table(&peaks), "peak_ratios.csv")?;
    for f in FIGURES {
        let t = cx.figure_table(f.number);
        cx.write_table(&t, &format!("{}.csv", f.id))?;
    }
    let pct = cx.percentile_table();
    cx.write_table(&pct, "latency_percentiles.csv")?;
    let runs = cx.runs_table();
    cx.write_table(&runs, "runs.csv")?;
    let others = cx.other_topologies();
    for (topo, runs) in &others {
        let t = cx.other_table(runs);
        cx.write_table(&t, &format!("other-{}.csv", slug(topo)))?;
    }
    if !cx.timelines.is_empty() {
        let t = cx.timeline_table();
        cx.write_table(&t, TIMELINE_FILE)?;
    }
    let damage = cx.damage_groups();
    if !damage.is_empty() {
        let t = cx.damage_table(&damage);
        cx.write_table(&t, DAMAGE_FILE)?;
    }

    // Plots.
    let mut plots: BTreeMap<String, Vec<(String, PathBuf)>> = BTreeMap::new();
    let plot_error = match prepare_font(&opts.font) {
        Ok(None) => Some("plots skipped (--no-plots)".to_string()),
        Ok(Some(font)) => match cx.draw_all(&mut plots, &font) {
            Ok(()) => None,
            Err(e) => Some(format!("{e:#}")),
        },
        Err(e) => Some(format!("{e:#}")),
    };

    let mut md = cx.markdown(&fid, &peaks, &pct, &others, &plots, plot_error.as_deref());
    if let Some(notes) = &opts.notes {
        md = with_notes(&md, notes);
    }
    let md_path = cx.out.join(REPORT_FILE);
    fs::write(&md_path, md).with_context(|| format!("{}: cannot write", md_path.display()))?;
    cx.files.push(md_path);
    Ok(ReportOutcome {
        files: cx.files,
        plot_error,
        warnings: cx.warnings,
        fidelity: fid,
    })
}

/// `notes` inserted before the first second-level section of `md` (after the title and the
/// description of the inputs), or at the end if there is none.
fn with_notes(md: &str, notes: &str) -> String {
    let notes = notes.trim_end();
    match md.find("\n## ") {
        Some(i) => format!("{}\n{notes}\n{}", &md[..=i], &md[i + 1..]),
        None => format!("{md}\n{notes}\n"),
    }
}

/// Find and load the plot font; `Ok(None)` when plots are skipped.
fn prepare_font(f: &PlotFont) -> Result<Option<ChartFont>> {
    let path = match f {
        PlotFont::Skip => return Ok(None),
        PlotFont::Auto => {
            let env = std::env::var_os(FONT_ENV).map(PathBuf::from);
            find_font(env.as_deref(), &default_font_dirs())?
        }
        PlotFont::File(p) => find_font(Some(p), &[])?,
        PlotFont::SearchIn(dirs) => find_font(None, dirs)?,
    };
    Ok(Some(ChartFont::load(&path)?))
}

fn peak_table(peaks: &[PeakRatio]) -> Table {
    let mut t = Table::new(&PEAK_CSV_HEADER);
    let peak = |p: Option<(f64, f64)>| (num(p.map(|p| p.0), 1), num(p.map(|p| p.1), 0));
    for p in peaks {
        let (s, sc) = peak(p.steward);
        let (b, bc) = peak(p.bft);
        let vs = match (p.ratio(), p.paper_ratio()) {
            (Some(a), Some(b)) if b > 0.0 => Some(a / b),
            _ => None,
        };
        t.push(vec![
            p.experiment.key(),
            p.mode.clone().unwrap_or_default(),
            p.topology.clone(),
            p.clients.clone(),
            s,
            sc,
            b,
            bc,
            ratio(p.ratio()),
            num(p.paper_steward.map(|p| p.0), 1),
            num(p.paper_bft.map(|p| p.0), 1),
            ratio(p.paper_ratio()),
            ratio(vs),
        ]);
    }
    t
}

fn fmt_x(x: f64) -> String {
    if x.fract() == 0.0 {
        format!("{x:.0}")
    } else {
        format!("{x}")
    }
}

fn series_display(series: &str) -> String {
    let (proto, rest) = series.split_once('-').unwrap_or((series, ""));
    let name = match from_paper_name(proto) {
        Some(Protocol::Steward) => "Steward",
        Some(Protocol::Pbft) => "BFT",
        None => proto,
    };
    if rest.is_empty() {
        name.to_string()
    } else {
        format!("{name} {rest}")
    }
}

impl<'a> Ctx<'a> {
    fn write_table(&mut self, t: &Table, name: &str) -> Result<()> {
        let p = self.out.join(name);
        t.write_csv(&p)?;
        self.files.push(p);
        Ok(())
    }

    fn obs_for(&self, fig: u8) -> Vec<&ObservedSeries> {
        self.observed.iter().filter(|o| o.figure == fig).collect()
    }

    /// Long-format side-by-side table of one figure: every paper point and every point of
    /// ours, matched by x.
    fn figure_table(&self, fig: u8) -> Table {
        let mut t = Table::new(&FIGURE_CSV_HEADER);
        let Some(info) = figure(fig) else {
            return t;
        };
        let obs = self.obs_for(fig);
        let mut series: BTreeSet<String> = self.paper.series_names(fig).into_iter().collect();
        series.extend(obs.iter().map(|o| o.series.clone()));
        for s in series {
            let paper = self.paper.series(fig, &s);
            let mine: Vec<&&ObservedSeries> = obs.iter().filter(|o| o.series == s).collect();
            let mut xs: Vec<f64> = paper.iter().map(|p| p.0).collect();
            for o in &mine {
                xs.extend(o.points.iter().map(|p| p.0));
            }
            xs.sort_by(f64::total_cmp);
            xs.dedup();
            for x in xs {
                let py = paper.iter().find(|p| p.0 == x).map(|p| p.1);
                let mut any = false;
                for o in &mine {
                    if let Some(&(_, y)) = o.points.iter().find(|p| p.0 == x) {
                        any = true;
                        t.push(vec![
                            info.id.into(),
                            s.clone(),
                            fmt_x(x),
                            info.unit.into(),
                            num(py, 1),
                            o.mode.clone(),
                            o.topology.clone(),
                            num(Some(y), 2),
                            num(py.filter(|&p| p != 0.0).map(|p| y / p), 3),
                            o.emulation.clone(),
                            o.machine.clone(),
                        ]);
                    }
                }
                if !any {
                    t.push(vec![
                        info.id.into(),
                        s.clone(),
                        fmt_x(x),
                        info.unit.into(),
                        num(py, 1),
                    ]);
                }
            }
        }
        t
    }

    /// Wide Markdown table of one figure restricted to some paper series: x, then per series
    /// the paper's value and each mode's value with its ratio to the paper. `None` if we have
    /// no point for these series.
    fn side_by_side(&self, fig: u8, series: &[String]) -> Option<Table> {
        let info = figure(fig)?;
        let obs: Vec<&ObservedSeries> = self
            .obs_for(fig)
            .into_iter()
            .filter(|o| series.contains(&o.series))
            .collect();
        if obs.is_empty() {
            return None;
        }
        let mut header = vec![match info.x_axis {
            XAxis::Clients => "clients".to_string(),
            XAxis::WritePct => "write %".to_string(),
        }];
        let mut cols: Vec<(String, Option<String>)> = Vec::new(); // (series, mode) — None = paper
        for s in series {
            let modes: BTreeSet<&str> = obs
                .iter()
                .filter(|o| &o.series == s)
                .map(|o| o.mode.as_str())
                .collect();
            if modes.is_empty() {
                continue;
            }
            header.push(format!("{} paper", series_display(s)));
            cols.push((s.clone(), None));
            for m in modes {
                header.push(format!("{} {m}", series_display(s)));
                header.push(format!("ours÷paper ({m})"));
                cols.push((s.clone(), Some(m.to_string())));
            }
        }
        let mut xs: Vec<f64> = obs
            .iter()
            .flat_map(|o| o.points.iter().map(|p| p.0))
            .collect();
        xs.sort_by(f64::total_cmp);
        xs.dedup();
        let mut t = Table::new(&header);
        for x in xs {
            let mut row = vec![fmt_x(x)];
            for (s, mode) in &cols {
                let py = self
                    .paper
                    .series(fig, s)
                    .into_iter()
                    .find(|p| p.0 == x)
                    .map(|p| p.1);
                match mode {
                    None => row.push(num(py, 1)),
                    Some(m) => {
                        let y = obs
                            .iter()
                            .find(|o| &o.series == s && &o.mode == m)
                            .and_then(|o| o.points.iter().find(|p| p.0 == x))
                            .map(|p| p.1);
                        row.push(num(y, 1));
                        row.push(ratio(match (y, py) {
                            (Some(y), Some(p)) if p != 0.0 => Some(y / p),
                            _ => None,
                        }));
                    }
                }
            }
            t.push(row);
        }
        Some(t)
    }

    fn hdr_stats(&self, i: usize) -> Option<Percentiles> {
        self.hists[i].as_ref().map(percentiles)
    }

    fn percentile_table(&self) -> Table {
        let mut t = Table::new(&PERCENTILE_CSV_HEADER);
        let mut idx: Vec<usize> = (0..self.results.runs.len()).collect();
        idx.sort_by_key(|&i| run_order(&self.results.runs[i]));
        for i in idx {
            let r = &self.results.runs[i];
            let h = self.hdr_stats(i);
            t.push(vec![
                r.protocol.clone(),
                r.mode_label(),
                r.topology.clone(),
                r.clients.to_string(),
                r.write_pct.to_string(),
                r.batch.to_string(),
                r.scenario.clone(),
                h.map(|h| h.count.to_string())
                    .or(r.completed.map(|c| c.to_string()))
                    .unwrap_or_default(),
                num(Some(r.lat_mean_ms), 1),
                num(Some(r.lat_p50_ms), 1),
                num(h.map(|h| h.p90_ms), 1),
                num(Some(r.lat_p99_ms), 1),
                num(h.map(|h| h.p999_ms), 1),
                num(Some(r.lat_max_ms), 1),
                num(h.map(|h| h.p50_ms), 1),
                num(h.map(|h| h.p99_ms), 1),
                r.hdr_log
                    .as_ref()
                    .and_then(|p| p.file_name())
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                self.results.emulation(r),
                self.results.machine(r),
            ]);
        }
        t
    }

    fn runs_table(&self) -> Table {
        let mut t = Table::new(&RUNS_CSV_HEADER);
        let mut runs: Vec<&Run> = self.results.runs.iter().collect();
        runs.sort_by_key(|r| run_order(r));
        for r in runs {
            t.push(vec![
                self.results
                    .source(r)
                    .map(|so| so.dir.display().to_string())
                    .unwrap_or_default(),
                r.line.to_string(),
                r.experiment().key(),
                r.protocol.clone(),
                r.mode.clone(),
                r.mode_label(),
                r.topology.clone(),
                r.clients.to_string(),
                r.write_pct.to_string(),
                r.batch.to_string(),
                r.scenario.clone(),
                r.costs.clone(),
                num(Some(r.throughput_ops_s), 2),
                num(Some(r.lat_mean_ms), 2),
                num(Some(r.lat_p50_ms), 2),
                num(Some(r.lat_p99_ms), 2),
                num(Some(r.lat_max_ms), 2),
                num(r.lat_bound_ms, 1),
                num(r.wan_msgs_per_update, 1),
                num(r.wan_bytes_per_update, 0),
                num(r.cpu_ms_per_update, 3),
                r.safety.clone(),
                num(r.recovery_ms, 1),
                self.results.emulation(r),
                self.results.machine(r),
            ]);
        }
        t
    }

    fn other_topologies(&self) -> BTreeMap<String, Vec<&'a Run>> {
        let results: &'a ResultSet = self.results;
        let mut m: BTreeMap<String, Vec<&'a Run>> = BTreeMap::new();
        for r in &results.runs {
            if let Experiment::Other(t) = r.experiment() {
                m.entry(t).or_default().push(r);
            }
        }
        for v in m.values_mut() {
            v.sort_by_key(|r| run_order(r));
        }
        m
    }

    fn other_table(&self, runs: &[&Run]) -> Table {
        let mut t = Table::new(&[
            "protocol",
            "mode",
            "topology",
            "clients",
            "write_pct",
            "batch",
            "scenario",
            "throughput_ops_s",
            "lat_mean_ms",
            "lat_p99_ms",
            "emulation",
            "machine",
        ]);
        for r in runs {
            t.push(vec![
                r.protocol.clone(),
                r.mode_label(),
                r.topology.clone(),
                r.clients.to_string(),
                r.write_pct.to_string(),
                r.batch.to_string(),
                r.scenario.clone(),
                num(Some(r.throughput_ops_s), 1),
                num(Some(r.lat_mean_ms), 1),
                num(Some(r.lat_p99_ms), 1),
                self.results.emulation(r),
                self.results.machine(r),
            ]);
        }
        t
    }

    /// Label of a source directory in `timeline.csv` and the report.
    fn source_label(&self, i: usize) -> String {
        self.results.sources[i].dir.display().to_string()
    }

    fn timeline_table(&self) -> Table {
        let mut t = Table::new(&TIMELINE_CSV_HEADER);
        for (src, runs) in &self.timelines {
            for (tl, rates) in runs {
                let id = &tl.run;
                for p in rates {
                    t.push(vec![
                        self.source_label(*src),
                        id.protocol.clone(),
                        id.clients.to_string(),
                        id.batch.to_string(),
                        id.scenario.clone(),
                        format!("{:.3}", p.time_s),
                        format!("{:.2}", p.updates_per_s),
                        p.replicas.to_string(),
                    ]);
                }
            }
        }
        t
    }

    /// The summary rows of the runs of source `src` matching `tl`.
    fn summary_runs(&self, src: usize, tl: &Timeline) -> Vec<&'a Run> {
        let id = &tl.run;
        self.results
            .runs
            .iter()
            .filter(|r| {
                r.source == src
                    && r.protocol == id.protocol
                    && r.clients == id.clients
                    && r.batch == id.batch
                    && r.scenario == id.scenario
            })
            .collect()
    }

    /// The attack runs (those with an `attack_ratio`) by (topology, costs, clients), each
    /// group in input order (the order of the attack catalog).
    fn damage_groups(&self) -> DamageGroups<'a> {
        let results: &'a ResultSet = self.results;
        let mut runs: Vec<&'a Run> = results
            .runs
            .iter()
            .filter(|r| r.attack_ratio.is_some())
            .collect();
        runs.sort_by_key(|r| (r.source, r.line));
        let mut m: DamageGroups<'a> = BTreeMap::new();
        for r in runs {
            m.entry((r.topology.clone(), r.costs.clone(), r.clients))
                .or_default()
                .push(r);
        }
        m
    }

    fn damage_table(&self, groups: &DamageGroups) -> Table {
        let mut t = Table::new(&DAMAGE_CSV_HEADER);
        for runs in groups.values() {
            for r in runs {
                t.push(vec![
                    self.results
                        .source(r)
                        .map(|so| so.dir.display().to_string())
                        .unwrap_or_default(),
                    r.protocol.clone(),
                    r.topology.clone(),
                    r.costs.clone(),
                    r.clients.to_string(),
                    r.scenario.clone(),
                    num(r.reference_ops_s, 2),
                    num(Some(r.throughput_ops_s), 2),
                    num(r.attack_ratio, 4),
                    r.local_view_changes
                        .map(|v| v.to_string())
                        .unwrap_or_default(),
                    r.global_view_changes
                        .map(|v| v.to_string())
                        .unwrap_or_default(),
                    num(r.recovery_ms, 1),
                    r.safety.clone(),
                ]);
            }
        }
        t
    }

    /// The bar chart of one damage group: a row per attack, a bar per protocol.
    fn damage_chart(&self, key: &(String, String, u32), runs: &[&Run]) -> BarChart {
        let (topo, _, clients) = key;
        // The topology is in the first caption line: long names would not fit the title.
        let (categories, protocols) = damage_layout(runs);
        let series: Vec<BarSeries> = protocols
            .iter()
            .map(|p| BarSeries {
                label: protocol_display(p),
                color: protocol_color(p),
                values: categories
                    .iter()
                    .map(|(_, cell)| {
                        cell.iter()
                            .find(|r| &r.protocol == p)
                            .and_then(|r| r.attack_ratio)
                    })
                    .collect(),
            })
            .collect();
        let largest = runs
            .iter()
            .filter_map(|r| r.attack_ratio)
            .fold(0.0, f64::max);
        BarChart {
            title: format!(
                "Throughput under attack / fault-free — {}, {clients} client{}",
                protocols
                    .iter()
                    .map(|p| protocol_display(p))
                    .collect::<Vec<_>>()
                    .join(" vs "),
                if *clients == 1 { "" } else { "s" }
            ),
            captions: vec![
                format!(
                    "topology: {topo}, mode: {} — {}",
                    distinct(runs.iter().map(|r| r.mode_label())),
                    distinct(runs.iter().map(|r| self.results.emulation(r)))
                ),
                format!(
                    "machine: {}",
                    distinct(runs.iter().map(|r| self.results.machine(r)))
                ),
                "one bar per attack: its throughput ÷ that of the same configuration without it"
                    .into(),
            ],
            x_label: "throughput under attack / fault-free throughput".into(),
            categories: categories.into_iter().map(|(name, _)| name).collect(),
            series,
            x_max: largest.max(1.05),
            bound: Some(Marker {
                x: ATTACK_BOUND,
                label: "acceptance bound".into(),
            }),
        }
    }

    /// One damage plot per (topology, costs, clients).
    fn draw_damage(
        &mut self,
        plots: &mut BTreeMap<String, Vec<(String, PathBuf)>>,
        font: &ChartFont,
    ) -> Result<()> {
        let groups = self.damage_groups();
        for (key, runs) in &groups {
            let chart = self.damage_chart(key, runs);
            let (topo, costs, clients) = key;
            let mut stem = format!("damage-{}", slug(topo));
            if !costs.is_empty() {
                let _ = write!(stem, "-{}", slug(costs));
            }
            let _ = write!(stem, "-c{clients}");
            self.plot(plots, "damage", &chart, &stem, font)?;
        }
        Ok(())
    }

    /// Throughput over time: one plot per source, protocol and scenario, one curve per run
    /// (clients, batch; at most 8, evenly spread), a dashed line per distinct fault event.
    fn draw_timelines(
        &mut self,
        plots: &mut BTreeMap<String, Vec<(String, PathBuf)>>,
        font: &ChartFont,
    ) -> Result<()> {
        let many_sources = self.timelines.len() > 1;
        type Group<'t> = Vec<&'t RunTimeline>;
        let timelines = std::mem::take(&mut self.timelines);
        let mut result = Ok(());
        for (src, runs) in &timelines {
            let mut groups: BTreeMap<(RunOrderProto, String), Group> = BTreeMap::new();
            for r in runs {
                let id = &r.0.run;
                groups
                    .entry((proto_order(&id.protocol), id.scenario.clone()))
                    .or_default()
                    .push(r);
            }
            for (((_, protocol), scenario), group) in groups {
                let chart = self.timeline_chart(*src, &protocol, &scenario, &group);
                let stem = format!(
                    "timeline-{}-{}{}",
                    slug(&protocol),
                    slug(&scenario),
                    if many_sources {
                        format!("-{}", src + 1)
                    } else {
                        String::new()
                    }
                );
                result = self.plot(plots, "timeline", &chart, &stem, font);
                if result.is_err() {
                    break;
                }
            }
        }
        self.timelines = timelines;
        result
    }

    fn timeline_chart(
        &self,
        src: usize,
        protocol: &str,
        scenario: &str,
        group: &[&RunTimeline],
    ) -> Chart {
        let mut group: Vec<&RunTimeline> = group.to_vec();
        group.sort_by_key(|r| (r.0.run.batch, r.0.run.clients));
        let total = group.len();
        let chosen = spread(&group, 8);
        let curves: Vec<Curve> = chosen
            .iter()
            .enumerate()
            .map(|(j, (tl, rates))| {
                let id = &tl.run;
                let mut label = format!(
                    "{} client{}",
                    id.clients,
                    if id.clients == 1 { "" } else { "s" }
                );
                if id.batch != 1 {
                    let _ = write!(label, ", batch {}", id.batch);
                }
                Curve {
                    label,
                    points: rates.iter().map(|p| (p.time_s, p.updates_per_s)).collect(),
                    color: if chosen.len() == 1 {
                        protocol_color(protocol)
                    } else {
                        palette(j)
                    },
                    style: CurveStyle::Measured,
                    hollow: Vec::new(),
                }
            })
            .collect();
        // The events of the runs shown; the same event of the same replica within 0.5 s of
        // one already drawn (the scenario's schedule, seen by another run) is drawn once.
        let mut markers: Vec<Marker> = Vec::new();
        for (tl, _) in &chosen {
            for e in &tl.events {
                let label = format!("{} {}", e.event, e.node);
                if !markers
                    .iter()
                    .any(|m| m.label == label && (m.x - e.time_s).abs() <= 0.5)
                {
                    markers.push(Marker { x: e.time_s, label });
                }
            }
        }
        let runs: Vec<&Run> = chosen
            .iter()
            .flat_map(|(tl, _)| self.summary_runs(src, tl))
            .collect();
        let mut captions = vec![format!(
            "results: {}{}",
            self.source_label(src),
            if runs.is_empty() {
                String::new()
            } else {
                format!(
                    " — topology: {}, mode: {}",
                    distinct(runs.iter().map(|r| r.topology.clone())),
                    distinct(runs.iter().map(|r| r.mode_label()))
                )
            }
        )];
        if !runs.is_empty() {
            captions.push(format!(
                "{} on {}",
                distinct(runs.iter().map(|r| self.results.emulation(r))),
                distinct(runs.iter().map(|r| self.results.machine(r)))
            ));
        }
        captions.push(format!(
            "per sample interval: median rate of bft_executed_updates_total over the replicas \
             up at both ends{}",
            if chosen.len() < total {
                format!("; {} of {total} runs shown", chosen.len())
            } else {
                String::new()
            }
        ));
        if !markers.is_empty() {
            captions.push("dashed lines: events (events.csv)".into());
        }
        Chart {
            title: format!(
                "Throughput over time — {}, {}",
                protocol_display(protocol),
                if scenario == "none" {
                    "no fault"
                } else {
                    scenario
                }
            ),
            captions,
            x_label: "time since the start of the measurement window (s)".into(),
            y_label: "Throughput (updates/s)".into(),
            x_log: false,
            y_log: false,
            y_unit_range: false,
            x_from_zero: false,
            legend: LegendAt::LowerRight,
            curves,
            markers,
        }
    }

    // ---------------------------------------------------------------- plots

    fn plot(
        &mut self,
        plots: &mut BTreeMap<String, Vec<(String, PathBuf)>>,
        section: &str,
        chart: &impl Figure,
        stem: &str,
        font: &ChartFont,
    ) -> Result<()> {
        let dir = self.out.join("plots");
        fs::create_dir_all(&dir).with_context(|| format!("{}: cannot create", dir.display()))?;
        let (svg, png) = render(chart, &dir.join(stem), font)?;
        self.files.push(svg);
        self.files.push(png.clone());
        plots
            .entry(section.to_string())
            .or_default()
            .push((chart.title().to_string(), png));
        Ok(())
    }

    fn draw_all(
        &mut self,
        plots: &mut BTreeMap<String, Vec<(String, PathBuf)>>,
        font: &ChartFont,
    ) -> Result<()> {
        // Figures: one plot per figure, topology and mode, with the paper's curves.
        let mut groups: BTreeMap<(u8, String, String), Vec<ObservedSeries>> = BTreeMap::new();
        for o in &self.observed {
            groups
                .entry((o.figure, o.topology.clone(), o.base_mode.clone()))
                .or_default()
                .push(o.clone());
        }
        for ((fig, topo, mode), series) in groups {
            let Some(info) = figure(fig) else { continue };
            let exp = Experiment::from_topology(&topo);
            let mut curves = Vec::new();
            let mut ours: Vec<&ObservedSeries> = series.iter().collect();
            ours.sort_by_key(|o| {
                (
                    protocol_of(&o.protocol) != Some(Protocol::Steward),
                    o.series.clone(),
                )
            });
            for o in &ours {
                curves.push(Curve {
                    label: format!("{} (ours)", protocol_display(&o.protocol)),
                    points: o.points.clone(),
                    color: protocol_color(&o.protocol),
                    style: CurveStyle::Measured,
                    hollow: o.cpu_bound_points.clone(),
                });
            }
            for proto in Protocol::ALL {
                let s = figure_series(fig, &exp, proto.name());
                let pts = self.paper.series(fig, &s);
                if !pts.is_empty() {
                    curves.push(Curve {
                        label: format!("{} (paper)", series_display(paper_name(proto))),
                        points: pts,
                        color: protocol_color(proto.name()),
                        style: CurveStyle::Paper,
                        hollow: Vec::new(),
                    });
                }
            }
            let (what, unit) = match info.metric {
                Metric::Throughput => ("throughput", info.unit),
                Metric::Latency => ("mean latency", "ms"),
            };
            let x_label = match info.x_axis {
                XAxis::Clients => "closed-loop clients".to_string(),
                XAxis::WritePct => "write updates (% of operations; 10 clients)".to_string(),
            };
            let title = match info.x_axis {
                XAxis::Clients => format!("Update {what} vs clients — {exp}"),
                XAxis::WritePct => format!("Update/query mix {what} — {exp}"),
            };
            // Log y for the mix throughput (queries are orders of magnitude faster) and for
            // latencies spanning more than 20x (bandwidth-starved PBFT).
            let ys = curves.iter().flat_map(|c| c.points.iter().map(|p| p.1));
            let lo = ys
                .clone()
                .filter(|&v| v > 0.0)
                .fold(f64::INFINITY, f64::min);
            let hi = ys.fold(0.0, f64::max);
            let log = match (info.metric, info.x_axis) {
                (Metric::Throughput, XAxis::WritePct) => true,
                (Metric::Latency, _) => wants_log(lo, hi),
                _ => false,
            };
            let chart = Chart {
                title,
                captions: self.captions(&series, &topo, &mode, Some(fig)),
                x_label,
                y_label: format!(
                    "{} ({unit}{})",
                    capitalise(what),
                    if log { ", log scale" } else { "" }
                ),
                x_log: false,
                y_log: log,
                y_unit_range: false,
                x_from_zero: true,
                // Corners the paper's curves leave empty.
                legend: match (info.metric, info.x_axis) {
                    (Metric::Throughput, XAxis::Clients) => LegendAt::LowerRight,
                    (Metric::Throughput, XAxis::WritePct) => LegendAt::LowerLeft,
                    (Metric::Latency, _) => LegendAt::UpperLeft,
                },
                curves,
                markers: vec![],
            };
            let stem = format!("{}-{}-{}", info.id, slug(&topo), slug(&mode));
            self.plot(plots, &exp.key(), &chart, &stem, font)?;
        }

        // Other topologies: throughput and latency vs clients, ours only.
        let others: Vec<(String, Vec<Run>)> = self
            .other_topologies()
            .into_iter()
            .map(|(t, v)| (t, v.into_iter().cloned().collect()))
            .collect();
        for (topo, runs) in others {
            let mut by_mode: BTreeMap<String, Vec<&Run>> = BTreeMap::new();
            for r in runs
                .iter()
                .filter(|r| r.is_paper_like() && r.write_pct == 100)
            {
                by_mode.entry(r.mode_label()).or_default().push(r);
            }
            for (mode, rs) in by_mode {
                for metric in [Metric::Throughput, Metric::Latency] {
                    let mut by_proto: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
                    let mut cpu_bound: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
                    for r in &rs {
                        let y = match metric {
                            Metric::Throughput => r.throughput_ops_s,
                            Metric::Latency => r.lat_mean_ms,
                        };
                        by_proto
                            .entry(r.protocol.clone())
                            .or_default()
                            .push((r.clients as f64, y));
                        if r.cpu_bound == Some(true) {
                            cpu_bound
                                .entry(r.protocol.clone())
                                .or_default()
                                .push((r.clients as f64, y));
                        }
                    }
                    let curves = by_proto
                        .into_iter()
                        .map(|(p, mut pts)| {
                            pts.sort_by(|a, b| a.0.total_cmp(&b.0));
                            Curve {
                                label: format!("{} (ours)", protocol_display(&p)),
                                points: pts,
                                color: protocol_color(&p),
                                style: CurveStyle::Measured,
                                hollow: cpu_bound.remove(&p).unwrap_or_default(),
                            }
                        })
                        .collect();
                    let (what, unit, kind) = match metric {
                        Metric::Throughput => ("throughput", "updates/s", "throughput"),
                        Metric::Latency => ("mean latency", "ms", "latency"),
                    };
                    let mut caps = vec![format!("topology: {topo} (no paper experiment)")];
                    caps.push(format!(
                        "mode: {mode} — {}",
                        distinct(rs.iter().map(|r| self.results.emulation(r)))
                    ));
                    caps.push(format!(
                        "machine: {}",
                        distinct(rs.iter().map(|r| self.results.machine(r)))
                    ));
                    let chart = Chart {
                        title: format!("Update {what} vs clients — {topo}"),
                        captions: caps,
                        x_label: "closed-loop clients".into(),
                        y_label: format!("{} ({unit})", capitalise(what)),
                        x_log: false,
                        y_log: false,
                        y_unit_range: false,
                        x_from_zero: true,
                        legend: match metric {
                            Metric::Throughput => LegendAt::LowerRight,
                            Metric::Latency => LegendAt::UpperLeft,
                        },
                        curves,
                        markers: vec![],
                    };
                    let stem = format!("{kind}-{}-{}", slug(&topo), slug(&mode));
                    let section = Experiment::Other(topo.clone()).key();
                    self.plot(plots, &section, &chart, &stem, font)?;
                }
            }
        }

        // Latency CDFs from the HDR logs: one plot per topology, mode and protocol for the
        // update runs, and one for the update/query mixes; at most 8 curves a plot (evenly
        // spaced over the runs when there are more).
        type CdfKey = (String, String, RunOrderProto, bool);
        let mut cdf_groups: BTreeMap<CdfKey, Vec<usize>> = BTreeMap::new();
        for (i, r) in self.results.runs.iter().enumerate() {
            if self.hists[i].as_ref().is_some_and(|h| !h.is_empty()) {
                cdf_groups
                    .entry((
                        r.topology.clone(),
                        r.mode_label(),
                        proto_order(&r.protocol),
                        r.write_pct != 100,
                    ))
                    .or_default()
                    .push(i);
            }
        }
        for ((topo, mode, (_, protocol), mix), mut idx) in cdf_groups {
            idx.sort_by_key(|&i| run_order(&self.results.runs[i]));
            let total = idx.len();
            let chosen = spread(&idx, 8);
            let curves: Vec<Curve> = chosen
                .iter()
                .enumerate()
                .map(|(j, &i)| Curve {
                    label: run_label(&self.results.runs[i]),
                    points: cdf_points(self.hists[i].as_ref().expect("filtered"), 400),
                    color: palette(j),
                    style: CurveStyle::Line,
                    hollow: Vec::new(),
                })
                .collect();
            let xs = curves.iter().flat_map(|c| c.points.iter().map(|p| p.0));
            let lo = xs
                .clone()
                .filter(|&v| v > 0.0)
                .fold(f64::INFINITY, f64::min);
            let hi = xs.fold(0.0, f64::max);
            let x_log = wants_log(lo, hi);
            let runs: Vec<&Run> = chosen.iter().map(|&i| &self.results.runs[i]).collect();
            let exp = Experiment::from_topology(&topo);
            let mut captions = vec![
                format!("topology: {topo}"),
                format!(
                    "mode: {mode} — {}",
                    distinct(runs.iter().map(|r| self.results.emulation(r)))
                ),
                format!(
                    "machine: {}",
                    distinct(runs.iter().map(|r| self.results.machine(r)))
                ),
            ];
            captions.push(if chosen.len() < total {
                format!(
                    "from the HDR logs (all operations of the measurement window); {} of {total} runs shown",
                    chosen.len()
                )
            } else {
                "from the HDR logs (all operations of the measurement window)".into()
            });
            let chart = Chart {
                title: format!(
                    "Latency CDF — {}{}, {exp}",
                    protocol_display(&protocol),
                    if mix { ", update/query mixes" } else { "" }
                ),
                captions,
                x_label: format!("latency (ms{})", if x_log { ", log scale" } else { "" }),
                y_label: "fraction of operations ≤ latency".into(),
                x_log,
                y_log: false,
                y_unit_range: true,
                x_from_zero: false,
                legend: LegendAt::LowerRight,
                curves,
                markers: vec![],
            };
            let stem = format!(
                "cdf-{}-{}-{}{}",
                slug(&topo),
                slug(&mode),
                slug(&protocol),
                if mix { "-mix" } else { "" }
            );
            self.plot(plots, &format!("cdf:{}", exp.key()), &chart, &stem, font)?;
        }
        self.draw_timelines(plots, font)?;
        self.draw_damage(plots, font)
    }

    fn captions(
        &self,
        series: &[ObservedSeries],
        topo: &str,
        mode: &str,
        fig: Option<u8>,
    ) -> Vec<String> {
        let mut c = vec![
            format!("topology: {topo}"),
            format!(
                "mode: {mode} — {}",
                distinct(series.iter().map(|o| o.emulation.clone()))
            ),
            format!(
                "machine: {}",
                distinct(series.iter().map(|o| o.machine.clone()))
            ),
        ];
        if let Some(info) = fig.and_then(figure) {
            c.push(format!(
                "dashed: the paper, DSN06 Fig. {} ({}), points read from the plot; 5 × 16 servers",
                info.number, info.tdsc
            ));
        }
        c
    }

    // ---------------------------------------------------------------- markdown

    fn markdown(
        &self,
        fid: &[FidelityRow],
        peaks: &[PeakRatio],
        pct: &Table,
        others: &BTreeMap<String, Vec<&Run>>,
        plots: &BTreeMap<String, Vec<(String, PathBuf)>>,
        plot_error: Option<&str>,
    ) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "# Steward vs PBFT: results next to the paper\n");
        let _ =
            writeln!(
            s,
            "Generated by `analysis report` (analysis {}) from {} results director{}. The paper's \
             numbers are the plotted points of DSN 2006 Figs. 1–8 (Amir et al., \"Scaling \
             Byzantine Fault-Tolerant Replication to Wide Area Networks\"; TDSC 2010 Figs. 4–9), \
             read from the figures' vector data (about ±0.1 of the axis unit), embedded from \
             `analysis/paper/`.\n",
            env!("CARGO_PKG_VERSION"),
            self.results.sources.len(),
            if self.results.sources.len() == 1 { "y" } else { "ies" }
        );
        let mut src = Table::new(&[
            "directory",
            "command",
            "modes",
            "topologies",
            "rows",
            "HDR logs",
            "machine",
            "git revision",
        ]);
        // Many sibling directories (the points of a matrix run) are shown as one line.
        let mut siblings: BTreeMap<PathBuf, usize> = BTreeMap::new();
        for so in &self.results.sources {
            if let Some(parent) = so.dir.parent() {
                *siblings.entry(parent.to_path_buf()).or_default() += 1;
            }
        }
        let mut groups: Vec<(String, Vec<usize>)> = Vec::new();
        for (i, so) in self.results.sources.iter().enumerate() {
            let label = match so.dir.parent() {
                Some(p) if siblings.get(p).copied().unwrap_or(0) > 3 => {
                    format!("`{}/*` ({} directories)", p.display(), siblings[p])
                }
                _ => format!("`{}`", so.dir.display()),
            };
            match groups.iter_mut().find(|g| g.0 == label) {
                Some(g) => g.1.push(i),
                None => groups.push((label, vec![i])),
            }
        }
        for (label, members) in groups {
            let rows: Vec<&Run> = self
                .results
                .runs
                .iter()
                .filter(|r| members.contains(&r.source))
                .collect();
            let set = |f: &dyn Fn(&Run) -> String| {
                rows.iter()
                    .map(|r| f(r))
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let sources: Vec<&crate::results::Source> =
                members.iter().map(|&i| &self.results.sources[i]).collect();
            let of_sources = |f: &dyn Fn(&crate::results::Source) -> String| {
                sources
                    .iter()
                    .map(|so| f(so))
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            src.push(vec![
                label,
                of_sources(&|so| so.manifest.command.clone().unwrap_or_else(|| "?".into())),
                set(&|r| format!("{} ({})", r.mode_label(), self.results.emulation(r))),
                set(&|r| r.topology.clone()),
                rows.len().to_string(),
                sources
                    .iter()
                    .map(|so| so.hdr_logs.len())
                    .sum::<usize>()
                    .to_string(),
                of_sources(&|so| so.manifest.machine.describe()),
                of_sources(&|so| {
                    so.manifest
                        .machine
                        .git_revision
                        .clone()
                        .unwrap_or_else(|| "unknown".into())
                }),
            ]);
        }
        s.push_str(&src.to_markdown());
        s.push('\n');

        let _ = writeln!(s, "## How to read this report\n");
        s.push_str(
            "* **mode** says how a row was measured: `sim/<costs>` = the deterministic simulator \
             (virtual time) with that crypto cost table (`paper` = the paper's 2006 RSA and \
             threshold-signature timings); `local` = real processes on this machine with the \
             WAN emulated in user space; `remote` = real hosts. Every table and plot also names \
             the topology, the emulation and the machine.\n\
             * `local-*` topologies are scaled down (5 sites × 4 servers, f = 1) to fit one \
             machine; the paper ran 5 × 16 (f = 5). Their ratios to the paper compare shapes, \
             not like with like.\n\
             * **ratio** = ours ÷ paper at the same x (clients, or % writes).\n\
             * **fidelity** (`fidelity.csv`) = per figure, series and mode, the median over the \
             x values present in both curves of |ours ÷ paper − 1| × 100: 0 is a perfect match, \
             20 means typically 20 % off.\n\
             * Clients are closed-loop (one outstanding request each), as in the paper, so \
             latency percentiles carry coordinated omission by construction.\n\n",
        );

        let _ = writeln!(s, "## Fidelity (`fidelity.csv`)\n");
        if fid.is_empty() {
            s.push_str("No run matches a point of the paper's figures.\n\n");
        } else {
            let mut t = Table::new(&[
                "figure",
                "series",
                "mode",
                "points",
                "median |ours/paper − 1| %",
                "topology",
                "emulation",
                "machine",
            ]);
            for r in fid {
                let o = self.observed.iter().find(|o| {
                    format!("dsn06-fig{}", o.figure) == r.figure
                        && o.series == r.series
                        && o.mode == r.mode
                });
                t.push(vec![
                    r.figure.clone(),
                    r.series.clone(),
                    r.mode.clone(),
                    r.points.to_string(),
                    format!("{:.1}", r.median_abs_dev_pct),
                    o.map(|o| o.topology.clone()).unwrap_or_default(),
                    o.map(|o| o.emulation.clone()).unwrap_or_default(),
                    o.map(|o| o.machine.clone()).unwrap_or_default(),
                ]);
            }
            s.push_str(&t.to_markdown());
            s.push('\n');
        }

        let _ = writeln!(
            s,
            "## Peak throughput, Steward ÷ PBFT (`peak_ratios.csv`)\n"
        );
        s.push_str(
            "Peaks are the highest throughput over the client counts run (so a sweep that stops \
             early understates them). The paper's peaks are computed from its figure data; its \
             text rounds them to about 1.45, 3.2, 14, 9 and 19.\n\n",
        );
        let mut t = Table::new(&[
            "experiment",
            "mode",
            "topology",
            "clients run",
            "Steward peak",
            "PBFT peak",
            "ratio",
            "paper Steward",
            "paper BFT",
            "paper ratio",
        ]);
        for p in peaks {
            let pk = |v: Option<(f64, f64)>| {
                v.map(|(y, x)| format!("{y:.1} @ {}", fmt_x(x)))
                    .unwrap_or_default()
            };
            t.push(vec![
                p.experiment.to_string(),
                p.mode.clone().unwrap_or_else(|| "(no runs)".into()),
                p.topology.clone(),
                p.clients.clone(),
                pk(p.steward),
                pk(p.bft),
                ratio(p.ratio()),
                pk(p.paper_steward),
                pk(p.paper_bft),
                ratio(p.paper_ratio()),
            ]);
        }
        s.push_str(&t.to_markdown());
        s.push('\n');

        if let Some(e) = plot_error {
            let _ = writeln!(s, "> **Plots were not drawn:** {e}\n");
        }

        // Experiments with paper figures.
        let mut exps: Vec<Experiment> = self
            .observed
            .iter()
            .map(|o| o.experiment.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        exps.sort_by_key(|e| e.rank());
        for exp in &exps {
            let (Some(tf), Some(lf)) = (exp.throughput_figure(), exp.latency_figure()) else {
                continue;
            };
            let (ti, li) = (figure(tf).expect("known"), figure(lf).expect("known"));
            let _ = writeln!(
                s,
                "## {} (DSN06 Figs. {tf}–{lf}; {} / {})\n",
                capitalise(&exp.to_string()),
                ti.tdsc,
                li.tdsc
            );
            self.runs_summary(&mut s, exp);
            let series: Vec<String> = Protocol::ALL.iter().map(|p| exp.series(p.name())).collect();
            for (fig, what) in [
                (tf, "Update throughput (updates/s)"),
                (lf, "Mean update latency (ms)"),
            ] {
                let _ = writeln!(s, "### {what} vs clients — DSN06 Fig. {fig}\n");
                match self.side_by_side(fig, &series) {
                    Some(t) => {
                        s.push_str(&self.table_caption(fig, &series));
                        s.push_str(&t.to_markdown());
                        s.push('\n');
                    }
                    None => s.push_str("No runs at 100 % writes here.\n\n"),
                }
                self.embed_plots(&mut s, plots, &exp.key(), &format!("dsn06-fig{fig}-"));
            }
            if exp.has_mix_figures() {
                let mix: Vec<String> = Protocol::ALL
                    .iter()
                    .map(|p| paper_name(*p).into())
                    .collect();
                for (fig, what) in [
                    (3u8, "Mix throughput (operations/s)"),
                    (4, "Mix mean latency (ms)"),
                ] {
                    if let Some(t) = self.side_by_side(fig, &mix) {
                        let _ = writeln!(
                            s,
                            "### {what} vs % write updates, 10 clients — DSN06 Fig. {fig}\n"
                        );
                        s.push_str(&self.table_caption(fig, &mix));
                        s.push_str(&t.to_markdown());
                        s.push('\n');
                        self.embed_plots(&mut s, plots, &exp.key(), &format!("dsn06-fig{fig}-"));
                    }
                }
            }
            self.embed_plots(&mut s, plots, &format!("cdf:{}", exp.key()), "");
        }
        let missing: Vec<String> = [
            Experiment::Symmetric { kbps: 10_000 },
            Experiment::Symmetric { kbps: 5_000 },
            Experiment::Symmetric { kbps: 2_500 },
            Experiment::Planetlab,
            Experiment::Cairn,
        ]
        .into_iter()
        .filter(|e| !exps.contains(e))
        .map(|e| e.to_string())
        .collect();
        if !missing.is_empty() {
            let _ = writeln!(
                s,
                "Experiments with no fault-free batch-1 runs here: {}. Their paper points are \
                 still in the `dsn06-fig*.csv` files.\n",
                missing.join("; ")
            );
        }

        for (topo, runs) in others {
            let _ = writeln!(s, "## Other topology: {topo} (no paper experiment)\n");
            s.push_str(&self.other_table(runs).to_markdown());
            s.push('\n');
            let exp = Experiment::Other(topo.clone());
            self.embed_plots(&mut s, plots, &exp.key(), "");
            self.embed_plots(&mut s, plots, &format!("cdf:{}", exp.key()), "");
        }

        if !self.timelines.is_empty() {
            self.timeline_markdown(&mut s, plots);
        }
        self.damage_markdown(&mut s, plots);
        self.cpu_bound_markdown(&mut s);

        let _ = writeln!(s, "## Latency percentiles (`latency_percentiles.csv`)\n");
        s.push_str(
            "Mean, p50, p99 and max from `summary.csv`; p90 and p99.9 (and the HDR sample count) \
             from the HDR logs, empty where a row has no log.\n\n",
        );
        let cols = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13];
        let mut short = Table::new(&cols.map(|c| pct.header[c].clone()));
        for r in &pct.rows {
            short.push(cols.iter().map(|&c| r[c].clone()).collect());
        }
        s.push_str(&short.to_markdown());
        s.push('\n');
        let emus = distinct(self.results.runs.iter().map(|r| {
            format!(
                "{}: {} on {}",
                r.mode_label(),
                self.results.emulation(r),
                self.results.machine(r)
            )
        }));
        let _ = writeln!(s, "Emulation and machine per mode: {emus}.\n");

        let not_fig = self
            .results
            .runs
            .iter()
            .filter(|r| !r.is_paper_like())
            .count();
        if not_fig > 0 {
            let _ = writeln!(
                s,
                "{not_fig} row(s) with batching or a fault scenario are in no paper figure; see \
                 `runs.csv` and the percentile table.\n"
            );
        }

        if !self.warnings.is_empty() {
            let _ = writeln!(s, "## Warnings\n");
            for w in &self.warnings {
                let _ = writeln!(s, "* {w}");
            }
            s.push('\n');
        }

        let _ = writeln!(s, "## Files\n");
        let mut names: Vec<String> = self
            .files
            .iter()
            .filter_map(|p| p.strip_prefix(&self.out).ok())
            .map(|p| format!("`{}`", p.display()))
            .collect();
        names.push(format!("`{REPORT_FILE}`"));
        let _ = writeln!(s, "{}", names.join(", "));
        s
    }

    /// The throughput-over-time section: how it is computed, the events, the plots.
    /// The runs whose host CPU was saturated: their points measure this machine's CPU, not the
    /// emulated WAN, and are drawn hollow on the solid (measured) curves.
    fn cpu_bound_markdown(&self, s: &mut String) {
        let bound: Vec<&Run> = self
            .results
            .runs
            .iter()
            .filter(|r| r.cpu_bound == Some(true))
            .collect();
        if bound.is_empty() {
            return;
        }
        let _ = writeln!(
            s,
            "## CPU-bound points
"
        );
        let _ = writeln!(
            s,
            "In these runs the host's cores were at least 85% busy during the measurement \
             window (`cpu_bound` in `summary.csv`): they measure the host's CPU rather than \
             the emulated WAN. The plots draw them as hollow dots on the solid curves.\n"
        );
        let _ = writeln!(
            s,
            "| protocol | topology | mode | clients | ops/s | CPU ms/update |"
        );
        let _ = writeln!(s, "|---|---|---|---:|---:|---:|");
        for r in bound {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {:.1} | {} |",
                r.protocol,
                r.topology,
                r.mode_label(),
                r.clients,
                r.throughput_ops_s,
                r.cpu_ms_per_update
                    .map_or("".to_string(), |c| format!("{c:.1}"))
            );
        }
        let _ = writeln!(s);
    }

    fn timeline_markdown(&self, s: &mut String, plots: &BTreeMap<String, Vec<(String, PathBuf)>>) {
        let _ = writeln!(s, "## Throughput over time (`{TIMELINE_FILE}`)\n");
        let _ = writeln!(
            s,
            "From the replicas' `bft_executed_updates_total` counters in `{TIMESERIES_FILE}`: \
             for each sample interval (about 1 s), the median of the rates of the replicas \
             that have a sample at both ends of it (a replica down in between, or whose counter \
             fell because it restarted, gives no rate). Time 0 is the start of the measurement \
             window. Dashed lines mark the kills and restarts of `events.csv`.\n"
        );
        let mut t = Table::new(&[
            "results",
            "protocol",
            "clients",
            "batch",
            "scenario",
            "intervals",
            "min updates/s",
            "max updates/s",
            "events",
        ]);
        for (src, runs) in &self.timelines {
            for (tl, rates) in runs {
                let id = &tl.run;
                let ys = rates.iter().map(|p| p.updates_per_s);
                let (lo, hi) = (
                    ys.clone().fold(f64::INFINITY, f64::min),
                    ys.fold(f64::NEG_INFINITY, f64::max),
                );
                let events: Vec<String> = tl
                    .events
                    .iter()
                    .map(|e| format!("{} {} @ {:.1} s", e.event, e.node, e.time_s))
                    .collect();
                t.push(vec![
                    format!("`{}`", self.source_label(*src)),
                    protocol_display(&id.protocol),
                    id.clients.to_string(),
                    id.batch.to_string(),
                    id.scenario.clone(),
                    rates.len().to_string(),
                    num(lo.is_finite().then_some(lo), 1),
                    num(hi.is_finite().then_some(hi), 1),
                    events.join("; "),
                ]);
            }
        }
        s.push_str(&t.to_markdown());
        s.push('\n');
        self.embed_plots(s, plots, "timeline", "");
    }

    /// The damage-under-attack section (nothing when no run has an `attack_ratio`): a table
    /// and a plot per (topology, costs, clients), ratios below [`ATTACK_BOUND`] in bold.
    fn damage_markdown(&self, s: &mut String, plots: &BTreeMap<String, Vec<(String, PathBuf)>>) {
        let groups = self.damage_groups();
        if groups.is_empty() {
            return;
        }
        let _ = writeln!(s, "## Damage under attack (`{DAMAGE_FILE}`)\n");
        let _ = writeln!(
            s,
            "Each attack of `loadgen simulate --scenario attacks` next to the same \
             configuration without it: **ratio** = throughput under attack ÷ fault-free \
             throughput. The acceptance bound is {ATTACK_BOUND}: an attack may cost at most \
             half the throughput; ratios below it are in **bold**. View changes are local / \
             global; detection/recovery is the `recovery_ms` of the summary.\n"
        );
        for ((topo, costs, clients), runs) in &groups {
            let _ = writeln!(
                s,
                "### {topo}, {}, {clients} client{}\n",
                if costs.is_empty() {
                    distinct(runs.iter().map(|r| r.mode_label()))
                } else {
                    format!("costs `{costs}`")
                },
                if *clients == 1 { "" } else { "s" }
            );
            let (rows, protocols) = damage_layout(runs);
            let many = protocols.len() > 1;
            let mut header = vec!["attack"];
            if many {
                header.push("protocol");
            }
            header.extend([
                "fault-free ops/s",
                "under attack ops/s",
                "ratio",
                "view changes",
                "detection/recovery ms",
                "safety",
            ]);
            let mut t = Table::new(&header);
            let mut below = Vec::new();
            let ordered = rows.iter().flat_map(|(_, cell)| {
                let mut cell = cell.clone();
                cell.sort_by_key(|r| proto_order(&r.protocol));
                cell
            });
            for r in ordered {
                let ratio = r.attack_ratio.unwrap_or(f64::NAN);
                let low = ratio < ATTACK_BOUND;
                if low {
                    below.push(if many {
                        format!("{} ({})", r.scenario, protocol_display(&r.protocol))
                    } else {
                        r.scenario.clone()
                    });
                }
                let mut row = vec![r.scenario.clone()];
                if many {
                    row.push(protocol_display(&r.protocol));
                }
                let vc = |v: Option<u64>| v.map(|v| v.to_string()).unwrap_or_else(|| "?".into());
                row.extend([
                    num(r.reference_ops_s, 1),
                    num(Some(r.throughput_ops_s), 1),
                    if low {
                        format!("**{ratio:.3}**")
                    } else {
                        format!("{ratio:.3}")
                    },
                    format!(
                        "{} / {}",
                        vc(r.local_view_changes),
                        vc(r.global_view_changes)
                    ),
                    num(r.recovery_ms, 1),
                    if r.safety == "ok" || r.safety.is_empty() {
                        r.safety.clone()
                    } else {
                        format!("**{}**", r.safety)
                    },
                ]);
                t.push(row);
            }
            let _ = writeln!(
                s,
                "Mode: {}; machine: {}.\n",
                distinct(runs.iter().map(|r| format!(
                    "{} ({})",
                    r.mode_label(),
                    self.results.emulation(r)
                ))),
                distinct(runs.iter().map(|r| self.results.machine(r)))
            );
            s.push_str(&t.to_markdown());
            s.push('\n');
            if below.is_empty() {
                let _ = writeln!(
                    s,
                    "Every attack here keeps at least {ATTACK_BOUND} of the fault-free \
                     throughput.\n"
                );
            } else {
                let _ = writeln!(
                    s,
                    "**Below the acceptance bound ({ATTACK_BOUND}):** {}.\n",
                    below.join(", ")
                );
            }
            let prefix = format!(
                "damage-{}{}-c{clients}.",
                slug(topo),
                if costs.is_empty() {
                    String::new()
                } else {
                    format!("-{}", slug(costs))
                }
            );
            self.embed_plots(s, plots, "damage", &prefix);
        }
    }

    /// One line naming topology, mode, emulation and machine of a side-by-side table.
    fn table_caption(&self, fig: u8, series: &[String]) -> String {
        let parts: Vec<String> = self
            .obs_for(fig)
            .into_iter()
            .filter(|o| series.contains(&o.series))
            .map(|o| {
                format!(
                    "`{}` = topology `{}`, {}, on {}",
                    o.mode, o.topology, o.emulation, o.machine
                )
            })
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let tdsc = figure(fig).map(|f| f.tdsc).unwrap_or("");
        format!(
            "Paper: DSN06 Fig. {fig} ({tdsc}), 5 sites × 16 servers, testbed of 3.2 GHz Xeons. \
             Ours: {}.\n\n",
            parts.join("; ")
        )
    }

    fn runs_summary(&self, s: &mut String, exp: &Experiment) {
        let lines: BTreeSet<String> = self
            .observed
            .iter()
            .filter(|o| &o.experiment == exp)
            .map(|o| {
                format!(
                    "* `{}`: topology `{}`, {}, machine: {}",
                    o.mode, o.topology, o.emulation, o.machine
                )
            })
            .collect();
        for l in lines {
            let _ = writeln!(s, "{l}");
        }
        s.push('\n');
    }

    fn embed_plots(
        &self,
        s: &mut String,
        plots: &BTreeMap<String, Vec<(String, PathBuf)>>,
        section: &str,
        prefix: &str,
    ) {
        for (title, png) in plots.get(section).into_iter().flatten() {
            let name = png
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if !name.starts_with(prefix) {
                continue;
            }
            let svg = Path::new(&name).with_extension("svg");
            let _ = writeln!(
                s,
                "![{title}](plots/{name})\n\n([SVG](plots/{}))\n",
                svg.display()
            );
        }
    }
}

/// The rows of a damage group's chart (each attack, in order of first appearance, with its
/// runs; a second run of the same protocol and attack starts a row of its own, named
/// `<attack> (2)`) and the protocols, Steward first.
fn damage_layout<'r>(runs: &[&'r Run]) -> (Vec<(String, Vec<&'r Run>)>, Vec<String>) {
    let mut rows: Vec<(String, String, Vec<&'r Run>)> = Vec::new();
    for r in runs {
        let free = rows.iter_mut().find(|(sc, _, cell)| {
            sc == &r.scenario && cell.iter().all(|c| c.protocol != r.protocol)
        });
        match free {
            Some(row) => row.2.push(r),
            None => {
                let n = rows.iter().filter(|row| row.0 == r.scenario).count();
                let name = if n == 0 {
                    r.scenario.clone()
                } else {
                    format!("{} ({})", r.scenario, n + 1)
                };
                rows.push((r.scenario.clone(), name, vec![r]));
            }
        }
    }
    let mut protocols: Vec<RunOrderProto> = runs
        .iter()
        .map(|r| proto_order(&r.protocol))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    protocols.sort();
    (
        rows.into_iter()
            .map(|(_, name, cell)| (name, cell))
            .collect(),
        protocols.into_iter().map(|p| p.1).collect(),
    )
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

type RunOrderProto = (u8, String);
type RunOrder = (
    u8,
    u64,
    String,
    String,
    String,
    RunOrderProto,
    u32,
    u32,
    u32,
    String,
);

/// Steward first, then PBFT, then others by name.
fn proto_order(protocol: &str) -> RunOrderProto {
    let rank = match protocol_of(protocol) {
        Some(Protocol::Steward) => 0,
        Some(Protocol::Pbft) => 1,
        None => 2,
    };
    (rank, protocol.to_string())
}

/// At most `n` items of `v`, evenly spaced, always keeping the first and the last.
fn spread<T: Copy>(v: &[T], n: usize) -> Vec<T> {
    if v.len() <= n || n < 2 {
        return v.iter().take(n.max(v.len().min(n))).copied().collect();
    }
    let mut idx: Vec<usize> = (0..n)
        .map(|k| (k * (v.len() - 1) + (n - 1) / 2) / (n - 1))
        .collect();
    idx.dedup();
    idx.into_iter().map(|i| v[i]).collect()
}

fn run_order(r: &Run) -> RunOrder {
    let (a, b, c) = r.experiment().rank();
    (
        a,
        b,
        c,
        r.topology.clone(),
        r.mode_label(),
        proto_order(&r.protocol),
        100 - r.write_pct,
        r.batch,
        r.clients,
        r.scenario.clone(),
    )
}

fn run_label(r: &Run) -> String {
    let mut l = format!(
        "{}, {} client{}",
        protocol_display(&r.protocol),
        r.clients,
        if r.clients == 1 { "" } else { "s" }
    );
    if r.write_pct != 100 {
        let _ = write!(l, ", {}% writes", r.write_pct);
    }
    if r.batch != 1 {
        let _ = write!(l, ", batch {}", r.batch);
    }
    if !r.scenario.is_empty() && r.scenario != "none" {
        let _ = write!(l, ", {}", r.scenario);
    }
    l
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_keeps_ends_and_spacing() {
        let v: Vec<u32> = (1..=22).collect();
        let s = spread(&v, 8);
        assert_eq!(s.len(), 8);
        assert_eq!((s[0], s[7]), (1, 22));
        assert!(s.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(spread(&[1, 2, 3], 8), vec![1, 2, 3]);
        assert_eq!(spread::<u32>(&[], 8), Vec::<u32>::new());
    }

    #[test]
    fn labels() {
        assert_eq!(series_display("bft-2.5mbps"), "BFT 2.5mbps");
        assert_eq!(series_display("steward"), "Steward");
        assert_eq!(fmt_x(10.0), "10");
        assert_eq!(capitalise("symmetric"), "Symmetric");
    }

    #[test]
    fn notes_go_before_the_first_section() {
        let md = "# Title\n\ninputs\n\n## Fidelity\n\nx\n";
        let out = super::with_notes(md, "## Why we differ\n\nbecause\n");
        let why = out.find("## Why we differ").unwrap();
        assert!(why > out.find("inputs").unwrap());
        assert!(why < out.find("## Fidelity").unwrap());
        assert_eq!(super::with_notes("# T\n", "n"), "# T\n\nn\n");
    }
}
