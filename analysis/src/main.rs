//! `analysis`: reports and comparisons of benchmark results (see the crate's README).

use std::path::PathBuf;
use std::process::ExitCode;

use analysis::compare::{compare, render};
use analysis::paper::PaperData;
use analysis::report::{write_report, PlotFont, ReportOptions, REPORT_FILE};
use analysis::results::{load_dir, load_dirs};
use clap::{Parser, Subcommand};

/// Exit code for usage and input errors.
const EXIT_INPUT: u8 = 2;

#[derive(Parser)]
#[command(
    name = "analysis",
    version,
    about = "Tables, plots and comparisons of Steward/PBFT benchmark results next to the paper"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write REPORT.md, CSV tables (fidelity.csv, peak_ratios.csv, dsn06-fig*.csv, ...) and
    /// SVG/PNG plots from one or more results directories. Exit 0 on success, 1 when the tables
    /// were written but the plots could not be drawn (e.g. no font), 2 on bad input.
    Report {
        /// Results directories (each with summary.csv, manifest.json, hdr/*.hlog); their rows
        /// are merged, later directories replacing identical configurations.
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
        /// Output directory.
        #[arg(long)]
        out: PathBuf,
        /// TrueType/OpenType font for the plots (default: $ANALYSIS_FONT, else DejaVu Sans or
        /// another font under /usr/share/fonts).
        #[arg(long, conflicts_with = "no_plots")]
        font: Option<PathBuf>,
        /// Write the tables only.
        #[arg(long)]
        no_plots: bool,
        /// Markdown file whose text goes into REPORT.md before the generated sections (for
        /// example why the results differ from the paper's).
        #[arg(long)]
        notes: Option<PathBuf>,
    },
    /// Compare results directory B against baseline A configuration by configuration
    /// (protocol, mode, topology, clients, write_pct, batch, scenario) and print ratios B/A.
    /// Exit 1 with --fail-on-regression when a regression is flagged, 2 on bad input.
    Compare {
        /// Baseline results directory.
        a: PathBuf,
        /// Results directory to check.
        b: PathBuf,
        /// Flag a throughput drop or a mean/p99 latency rise beyond this many percent.
        #[arg(long, default_value_t = 10.0)]
        threshold_pct: f64,
        /// Exit with status 1 when any regression is flagged.
        #[arg(long)]
        fail_on_regression: bool,
    },
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(EXIT_INPUT)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match cli.command {
        Command::Report {
            dirs,
            out,
            font,
            no_plots,
            notes,
        } => {
            let notes = match notes.map(|p| {
                std::fs::read_to_string(&p)
                    .map_err(|e| anyhow::anyhow!("{}: cannot read the notes: {e}", p.display()))
            }) {
                Some(Err(e)) => return input_error(e),
                Some(Ok(t)) => Some(t),
                None => None,
            };
            let results = match load_dirs(&dirs) {
                Ok(r) => r,
                Err(e) => return input_error(e),
            };
            let paper = match PaperData::embedded() {
                Ok(p) => p,
                Err(e) => return input_error(e),
            };
            let font = match (no_plots, font) {
                (true, _) => PlotFont::Skip,
                (false, Some(f)) => PlotFont::File(f),
                (false, None) => PlotFont::Auto,
            };
            let opts = ReportOptions {
                out: out.clone(),
                font,
                notes,
            };
            let outcome = match write_report(&results, &paper, &opts) {
                Ok(o) => o,
                Err(e) => return input_error(e),
            };
            for w in &outcome.warnings {
                eprintln!("warning: {w}");
            }
            println!(
                "wrote {} files to {} ({} rows from {} director{}); see {}",
                outcome.files.len(),
                out.display(),
                results.runs.len(),
                results.sources.len(),
                if results.sources.len() == 1 {
                    "y"
                } else {
                    "ies"
                },
                out.join(REPORT_FILE).display()
            );
            match outcome.plot_error {
                Some(e) if !no_plots => {
                    eprintln!("error: tables written, but no plots: {e}");
                    ExitCode::from(1)
                }
                _ => ExitCode::SUCCESS,
            }
        }
        Command::Compare {
            a,
            b,
            threshold_pct,
            fail_on_regression,
        } => {
            if !(threshold_pct.is_finite() && threshold_pct >= 0.0) {
                eprintln!("error: --threshold-pct must be a non-negative number");
                return ExitCode::from(EXIT_INPUT);
            }
            let (ra, rb) = match (load_dir(&a), load_dir(&b)) {
                (Ok(ra), Ok(rb)) => (ra, rb),
                (Err(e), _) | (_, Err(e)) => return input_error(e),
            };
            let c = compare(&ra, &rb, threshold_pct);
            print!(
                "{}",
                render(&c, &a.display().to_string(), &b.display().to_string())
            );
            ExitCode::from(c.exit_code(fail_on_regression) as u8)
        }
    }
}

fn input_error(e: anyhow::Error) -> ExitCode {
    eprintln!("error: {e:#}");
    ExitCode::from(EXIT_INPUT)
}
