//! End-to-end tests of `report` and `compare` on the fixtures in `tests/fixtures`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use analysis::paper::PaperData;
use analysis::report::{write_report, PlotFont, ReportOptions, ReportOutcome};
use analysis::results::{load_dir, load_dirs, ResultSet};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// `write_report` of `set` against the embedded paper data into `out`, without notes.
fn report(set: &ResultSet, out: &Path, font: PlotFont) -> ReportOutcome {
    let paper = PaperData::embedded().unwrap();
    let options = ReportOptions {
        out: out.to_path_buf(),
        font,
        notes: None,
    };
    write_report(set, &paper, &options).unwrap()
}

fn first_line(p: &Path) -> String {
    fs::read_to_string(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .lines()
        .next()
        .unwrap_or("")
        .to_string()
}

#[test]
fn loads_real_and_handmade_results() {
    let set = load_dirs(&[
        fixture("sim-5mbps"),
        fixture("sim-mix"),
        fixture("local-handmade"),
    ])
    .unwrap();
    assert_eq!(set.sources.len(), 3);
    assert_eq!(set.runs.len(), 4 + 2 + 3);
    // Every simulated row found its HDR log; the local 1-client row its `-local` one.
    let with_hdr = set.runs.iter().filter(|r| r.hdr_log.is_some()).count();
    assert_eq!(with_hdr, 7);
    let local = set
        .runs
        .iter()
        .find(|r| r.mode == "local" && r.clients == 1)
        .unwrap();
    assert_eq!(local.cpu_ms_per_update, Some(2.5));
    assert_eq!(set.machine(local), "Example CPU 3.0GHz, 2 cores");
    assert_eq!(
        set.emulation(local),
        "local processes, userspace WAN shaper"
    );
    let sim = set.runs.iter().find(|r| r.mode == "sim").unwrap();
    assert_eq!(set.emulation(sim), "simulated, paper costs");
    assert!(set
        .warnings
        .iter()
        .any(|w| w.contains("unrelated-run.hlog") && w.contains("matches no row")));
}

#[test]
fn malformed_input_names_file_line_and_column() {
    let e = load_dir(&fixture("malformed")).unwrap_err().to_string();
    assert!(e.contains("malformed/summary.csv"), "{e}");
    assert!(
        e.contains("line 3") && e.contains("`clients`") && e.contains("five"),
        "{e}"
    );
    let e = load_dir(&fixture("does-not-exist"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("does-not-exist") && e.contains("not a directory"),
        "{e}"
    );

    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("summary.csv"),
        fs::read(fixture("sim-mix/summary.csv")).unwrap(),
    )
    .unwrap();
    fs::write(dir.path().join("manifest.json"), "{\"mode\": \"sim\",\n").unwrap();
    let e = load_dir(dir.path()).unwrap_err().to_string();
    assert!(e.contains("manifest.json") && e.contains("line 2"), "{e}");
}

#[test]
fn report_writes_every_file() {
    let set = load_dirs(&[
        fixture("sim-5mbps"),
        fixture("sim-mix"),
        fixture("local-handmade"),
    ])
    .unwrap();
    let out = tempfile::tempdir().unwrap();
    let outcome = report(&set, out.path(), PlotFont::Auto);
    assert_eq!(
        outcome.plot_error, None,
        "plots need a TrueType font (Debian: apt-get install fonts-dejavu-core)"
    );
    let o = out.path();
    for f in [
        "REPORT.md",
        "fidelity.csv",
        "peak_ratios.csv",
        "latency_percentiles.csv",
        "runs.csv",
        "other-lab-ring.csv",
    ] {
        assert!(o.join(f).is_file(), "{f} missing");
    }
    assert_eq!(
        first_line(&o.join("fidelity.csv")),
        "figure,series,mode,points,median_abs_dev_pct"
    );
    for n in 1..=8 {
        assert_eq!(
            first_line(&o.join(format!("dsn06-fig{n}.csv"))),
            analysis::report::FIGURE_CSV_HEADER.join(",")
        );
    }
    assert_eq!(
        first_line(&o.join("peak_ratios.csv")),
        analysis::report::PEAK_CSV_HEADER.join(",")
    );
    assert_eq!(
        first_line(&o.join("latency_percentiles.csv")),
        analysis::report::PERCENTILE_CSV_HEADER.join(",")
    );

    // Fidelity rows: 5 Mbit/s curves from the simulator, 10 Mbit/s Steward from the local
    // runs, and the mix figures at 50 % writes.
    let fid = fs::read_to_string(o.join("fidelity.csv")).unwrap();
    for want in [
        "dsn06-fig1,steward-5mbps,sim/paper,2,",
        "dsn06-fig1,bft-5mbps,sim/paper,2,",
        "dsn06-fig2,steward-5mbps,sim/paper,2,",
        "dsn06-fig1,steward-10mbps,local,2,",
        "dsn06-fig3,steward,sim/paper,1,",
        "dsn06-fig4,bft,sim/paper,1,",
    ] {
        assert!(fid.contains(want), "{want} not in\n{fid}");
    }
    // One real value, recomputed by hand: Fig. 1 steward-5mbps, paper 7.7 and 28.9 at 1 and
    // 5 clients, ours 7.2 and 36.6: |7.2/7.7−1| = 6.49 %, |36.6/28.9−1| = 26.64 %, median 16.6.
    assert!(
        fid.contains("dsn06-fig1,steward-5mbps,sim/paper,2,16.6"),
        "{fid}"
    );

    // HDR percentiles filled in.
    let pct = fs::read_to_string(o.join("latency_percentiles.csv")).unwrap();
    let row = pct
        .lines()
        .find(|l| l.starts_with("pbft,sim/paper,paper-symmetric-5mbps,5,"))
        .unwrap();
    let cells: Vec<&str> = row.split(',').collect();
    assert!(!cells[10].is_empty() && !cells[12].is_empty(), "{row}");

    // Plots: SVG and PNG for every figure and topology/mode, all non-empty.
    let mut svg = 0;
    let mut png = 0;
    for e in fs::read_dir(o.join("plots")).unwrap() {
        let p = e.unwrap().path();
        let len = fs::metadata(&p).unwrap().len();
        assert!(len > 1000, "{} is only {len} bytes", p.display());
        match p.extension().and_then(|x| x.to_str()) {
            Some("svg") => svg += 1,
            Some("png") => {
                png += 1;
                assert_eq!(&fs::read(&p).unwrap()[1..4], b"PNG");
            }
            _ => {}
        }
    }
    assert_eq!(svg, png);
    for stem in [
        "dsn06-fig1-paper-symmetric-5mbps-sim-paper",
        "dsn06-fig2-local-symmetric-10mbps-local",
        "dsn06-fig3-paper-symmetric-10mbps-sim-paper",
        "dsn06-fig4-paper-symmetric-10mbps-sim-paper",
        "cdf-paper-symmetric-5mbps-sim-paper-steward",
        "cdf-paper-symmetric-5mbps-sim-paper-pbft",
        "cdf-paper-symmetric-10mbps-sim-paper-steward-mix",
        "cdf-local-symmetric-10mbps-local-steward",
        "throughput-lab-ring-local",
        "latency-lab-ring-local",
    ] {
        assert!(o.join(format!("plots/{stem}.png")).is_file(), "{stem}.png");
        assert!(o.join(format!("plots/{stem}.svg")).is_file(), "{stem}.svg");
    }
    let md = fs::read_to_string(o.join("REPORT.md")).unwrap();
    for want in [
        "AMD EPYC",
        "Example CPU 3.0GHz, 2 cores",
        "local processes, userspace WAN shaper",
        "simulated, paper costs",
        "plots/dsn06-fig1-paper-symmetric-5mbps-sim-paper.png",
        "Other topology: lab-ring",
        "unrelated-run.hlog",
    ] {
        assert!(md.contains(want), "REPORT.md lacks {want:?}");
    }
}

#[test]
fn report_without_a_font_still_writes_the_tables() {
    let set = load_dir(&fixture("sim-5mbps")).unwrap();
    let out = tempfile::tempdir().unwrap();
    let no_fonts = tempfile::tempdir().unwrap();
    let outcome = report(
        &set,
        out.path(),
        PlotFont::SearchIn(vec![no_fonts.path().to_path_buf()]),
    );
    let err = outcome.plot_error.expect("plots must fail without a font");
    assert!(err.contains("no TrueType/OpenType font found"), "{err}");
    assert!(out.path().join("fidelity.csv").is_file());
    assert!(out.path().join("REPORT.md").is_file());
    assert!(!out.path().join("plots").exists());
    let md = fs::read_to_string(out.path().join("REPORT.md")).unwrap();
    assert!(md.contains("Plots were not drawn"), "{md}");
}

fn analysis_bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_analysis"))
}

/// Runs `cmd` to completion and asserts it exited with `code` (showing its stderr if not).
fn exits(cmd: &mut Command, code: i32) -> Output {
    let o = cmd.output().unwrap();
    assert_eq!(
        o.status.code(),
        Some(code),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

#[test]
fn compare_exit_codes() {
    let a = fixture("sim-5mbps");
    // Same directory: no regression.
    let o = exits(
        analysis_bin()
            .args(["compare"])
            .arg(&a)
            .arg(&a)
            .arg("--fail-on-regression"),
        0,
    );
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("4 compared, 0 regression(s)"), "{text}");

    // b: Steward at 5 clients loses 30 % of its throughput; one row dropped, one added.
    let b = tempfile::tempdir().unwrap();
    let summary = fs::read_to_string(a.join("summary.csv")).unwrap();
    let mut lines: Vec<String> = summary.lines().map(str::to_string).collect();
    let header: Vec<&str> = lines[0].split(',').collect();
    let thr = header
        .iter()
        .position(|h| *h == "throughput_ops_s")
        .unwrap();
    let clients = header.iter().position(|h| *h == "clients").unwrap();
    for l in lines.iter_mut().skip(1) {
        let mut cells: Vec<String> = l.split(',').map(str::to_string).collect();
        if cells[0] == "steward" && cells[clients] == "5" {
            let v: f64 = cells[thr].parse().unwrap();
            cells[thr] = format!("{}", v * 0.7);
        }
        if cells[0] == "pbft" && cells[clients] == "1" {
            cells[clients] = "2".into();
        }
        *l = cells.join(",");
    }
    fs::write(b.path().join("summary.csv"), lines.join("\n") + "\n").unwrap();
    let run = |extra: &[&str]| {
        analysis_bin()
            .arg("compare")
            .arg(&a)
            .arg(b.path())
            .args(extra)
            .output()
            .unwrap()
    };
    let o = run(&["--fail-on-regression"]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{text}");
    assert!(text.contains("REGRESSION: throughput -30.0%"), "{text}");
    assert!(
        text.contains("only in a:") && text.contains("only in b:"),
        "{text}"
    );
    assert_eq!(run(&[]).status.code(), Some(0));
    assert_eq!(
        run(&["--threshold-pct", "40", "--fail-on-regression"])
            .status
            .code(),
        Some(0)
    );

    // Input and usage errors: exit 2 with a message.
    let o = exits(
        analysis_bin()
            .arg("compare")
            .arg(&a)
            .arg(fixture("malformed")),
        2,
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("line 3"));
    exits(analysis_bin().args(["compare", "only-one"]), 2);
    exits(
        analysis_bin()
            .arg("compare")
            .arg(&a)
            .arg(&a)
            .args(["--threshold-pct", "-5"]),
        2,
    );
}

#[test]
fn report_cli_exit_codes() {
    let out = tempfile::tempdir().unwrap();
    exits(
        analysis_bin()
            .arg("report")
            .arg(fixture("sim-mix"))
            .arg("--out")
            .arg(out.path())
            .arg("--no-plots"),
        0,
    );
    assert!(out.path().join("REPORT.md").is_file());
    let o = exits(
        analysis_bin()
            .arg("report")
            .arg(fixture("malformed"))
            .arg("--out")
            .arg(out.path()),
        2,
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("summary.csv") && err.contains("`clients`"),
        "{err}"
    );
    let o = exits(
        analysis_bin()
            .arg("report")
            .arg(fixture("sim-mix"))
            .arg("--out")
            .arg(out.path())
            .arg("--font")
            .arg(out.path().join("no-such-font.ttf")),
        1,
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("no-such-font.ttf"));
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        let dest = to.join(p.file_name().unwrap());
        if p.is_dir() {
            copy_dir(&p, &dest);
        } else {
            fs::copy(&p, &dest).unwrap();
        }
    }
}

#[test]
fn matrix_layouts_are_found() {
    // Points only: each `points/<name>/` becomes a source.
    let m = tempfile::tempdir().unwrap();
    copy_dir(&fixture("sim-5mbps"), &m.path().join("points/a"));
    copy_dir(&fixture("sim-mix"), &m.path().join("points/b"));
    let set = load_dir(m.path()).unwrap();
    assert_eq!(set.sources.len(), 2);
    assert_eq!(set.runs.len(), 6);
    assert!(set.runs.iter().all(|r| r.hdr_log.is_some()));

    // A merged top-level summary.csv whose HDR logs stayed with the points.
    fs::copy(
        fixture("sim-5mbps/summary.csv"),
        m.path().join("summary.csv"),
    )
    .unwrap();
    fs::write(
        m.path().join("manifest.json"),
        r#"{"command":"matrix","machine":{"cpu":"X","cores":4},"point_manifests":[]}"#,
    )
    .unwrap();
    let set = load_dir(m.path()).unwrap();
    assert_eq!(set.sources.len(), 1);
    assert_eq!(set.runs.len(), 4);
    assert!(set.runs.iter().all(|r| r.hdr_log.is_some()));
    assert_eq!(set.machine(&set.runs[0]), "X, 4 cores");

    let empty = tempfile::tempdir().unwrap();
    let e = load_dir(empty.path()).unwrap_err().to_string();
    assert!(e.contains("no summary.csv"), "{e}");
}
