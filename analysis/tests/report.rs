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

/// Cumulative executed updates of the fixture's PBFT run at time `t`: 100/s until the kill at
/// t = 5, nothing until t = 8, 100/s again from then on.
fn executed(t: f64) -> f64 {
    100.0 * (t.min(5.0) + 2.0) + 100.0 * (t - 8.0).max(0.0)
}

/// A results directory in the shape `loadgen local` writes, with `timeseries.csv` and
/// `events.csv`: a PBFT run whose leader r0 is killed at t = 5 and restarted at t = 8, and a
/// fault-free Steward run.
fn timeline_fixture(dir: &Path) {
    fs::copy(
        fixture("local-handmade/manifest.json"),
        dir.join("manifest.json"),
    )
    .unwrap();
    let summary = fs::read_to_string(fixture("local-handmade/summary.csv")).unwrap();
    let header = summary.lines().next().unwrap();
    fs::write(
        dir.join("summary.csv"),
        format!(
            "{header}\n\
             pbft,local,local-symmetric-10mbps,4,100,1,14.0,1100,78.6,50.2,49.8,70.4,3081.0,,,,ok,0,real,16.1,kill-r0@5s,1,0,3000,\n\
             steward,local,local-symmetric-10mbps,2,100,1,6.0,300,50.0,40.2,39.8,60.4,81.0,,,,ok,0,real,8.1,none,0,0,,\n"
        ),
    )
    .unwrap();
    let mut ts = String::from("protocol,clients,batch,scenario,time_s,node,metric,value\n");
    for t in -2..=12 {
        let t = f64::from(t);
        for node in ["r0", "r1", "r2", "r3"] {
            let v = match node {
                // Killed at 5, no samples while down; restarted at 8 with its counter at 0,
                // then catching up in a burst.
                "r0" if t > 5.0 && t < 8.0 => continue,
                "r0" if t == 8.0 => 0.0,
                _ => executed(t),
            };
            // r1's scrapes come 50 ms later than the others'.
            let at = if node == "r1" { t + 0.05 } else { t };
            ts.push_str(&format!(
                "pbft,4,1,kill-r0@5s,{at:.3},{node},bft_executed_updates_total,{v}\n\
                 pbft,4,1,kill-r0@5s,{at:.3},{node},\"bft_messages_sent_total{{class=\"\"wan\"\"}}\",{}\n",
                v * 7.0
            ));
        }
    }
    for t in 0..=6 {
        for node in ["s0.0", "s0.1", "s1.0"] {
            ts.push_str(&format!(
                "steward,2,1,none,{t}.0,{node},bft_executed_updates_total,{}\n",
                50 * t
            ));
        }
    }
    fs::write(dir.join("timeseries.csv"), ts).unwrap();
    fs::write(
        dir.join("events.csv"),
        "protocol,clients,batch,scenario,time_s,event,node\n\
         pbft,4,1,kill-r0@5s,5.0,kill,r0\n\
         pbft,4,1,kill-r0@5s,8.0,restart,r0\n",
    )
    .unwrap();
}

#[test]
fn throughput_over_time_shows_the_stall_after_a_kill_and_the_recovery() {
    let results = tempfile::tempdir().unwrap();
    timeline_fixture(results.path());
    let set = load_dir(results.path()).unwrap();
    let out = tempfile::tempdir().unwrap();
    let outcome = report(&set, out.path(), PlotFont::Auto);
    assert_eq!(outcome.plot_error, None, "plots need a TrueType font");
    assert!(outcome.warnings.is_empty(), "{:?}", outcome.warnings);
    let o = out.path();

    // The computed series: 100/s up to the kill at 5, 0 until the restart at 8, 100/s after
    // (r0's catch-up burst of 800/s at t = 9 is outvoted by the other three).
    let csv = fs::read_to_string(o.join("timeline.csv")).unwrap();
    let mut lines = csv.lines();
    assert_eq!(
        lines.next().unwrap(),
        analysis::report::TIMELINE_CSV_HEADER.join(",")
    );
    let pbft: Vec<(f64, f64, usize)> = lines
        .clone()
        .map(|l| l.split(',').collect::<Vec<_>>())
        .filter(|c| c[1] == "pbft")
        .map(|c| {
            assert_eq!(&c[2..5], ["4", "1", "kill-r0@5s"]);
            (
                c[5].parse::<f64>().unwrap().round(),
                c[6].parse().unwrap(),
                c[7].parse().unwrap(),
            )
        })
        .collect();
    let mut want = Vec::new();
    for t in -1..=12 {
        let t = f64::from(t);
        let (rate, replicas) = match t {
            _ if t <= 5.0 => (100.0, 4),
            _ if t <= 8.0 => (0.0, 3), // r0 down (its 5 → 8 gap gives no rate); r1..r3 stall
            // At 9, r0's catch-up (0 → 800) is a rate of 800/s; the median stays 100.
            _ => (100.0, 4),
        };
        want.push((t, rate, replicas));
    }
    assert_eq!(pbft, want);
    let steward: Vec<&str> = lines.filter(|l| l.contains(",steward,")).collect();
    assert_eq!(steward.len(), 6, "{csv}");
    assert!(steward.iter().all(|l| l.contains(",50.00,3")), "{csv}");

    // One plot per protocol and scenario, SVG and PNG, with the event lines.
    for stem in ["timeline-pbft-kill-r0-5s", "timeline-steward-none"] {
        let png = o.join(format!("plots/{stem}.png"));
        assert_eq!(&fs::read(&png).unwrap()[1..4], b"PNG", "{stem}");
        let svg = fs::read_to_string(o.join(format!("plots/{stem}.svg"))).unwrap();
        assert!(svg.contains("Throughput over time"), "{stem}");
    }
    let svg = fs::read_to_string(o.join("plots/timeline-pbft-kill-r0-5s.svg")).unwrap();
    assert!(svg.contains("kill r0") && svg.contains("restart r0"));
    let md = fs::read_to_string(o.join("REPORT.md")).unwrap();
    for want in [
        "## Throughput over time (`timeline.csv`)",
        "plots/timeline-pbft-kill-r0-5s.png",
        "kill r0 @ 5.0 s; restart r0 @ 8.0 s",
    ] {
        assert!(md.contains(want), "REPORT.md lacks {want:?}");
    }
    // Kept for looking at the picture: ANALYSIS_KEEP=<dir> copies the report there.
    if let Some(keep) = std::env::var_os("ANALYSIS_KEEP") {
        copy_dir(o, Path::new(&keep));
    }
}

#[test]
fn a_malformed_timeseries_is_a_warning() {
    let results = tempfile::tempdir().unwrap();
    timeline_fixture(results.path());
    fs::write(
        results.path().join("timeseries.csv"),
        "protocol,clients,batch,scenario,time_s,node,metric,value\npbft,4,1,none,soon,r0,bft_executed_updates_total,1\n",
    )
    .unwrap();
    let set = load_dir(results.path()).unwrap();
    let out = tempfile::tempdir().unwrap();
    let outcome = report(&set, out.path(), PlotFont::Skip);
    let w = outcome.warnings.join("\n");
    assert!(w.contains("timeseries.csv: line 2: column time_s"), "{w}");
    assert!(!out.path().join("timeline.csv").exists());
    assert!(out.path().join("REPORT.md").is_file());
}

/// A results directory in the shape `loadgen simulate --scenario attacks` writes: attack rows
/// with their fault-free reference and ratio (one, Steward's equivocating-leader, below the
/// bound of 0.5) for both protocols, and the fault-free row without them.
fn attack_fixture(dir: &Path) {
    fs::copy(
        fixture("sim-5mbps/manifest.json"),
        dir.join("manifest.json"),
    )
    .unwrap();
    let head = "protocol,mode,topology,clients,write_pct,batch,duration_s,completed,throughput_ops_s,lat_mean_ms,lat_p50_ms,lat_p99_ms,lat_max_ms,lat_bound_ms,wan_msgs_per_update,wan_bytes_per_update,safety,seed,costs,wall_s,scenario,local_view_changes,global_view_changes,recovery_ms,reference_ops_s,attack_ratio";
    let rows = [
        "steward,sim,local-symmetric-10mbps,8,100,1,20.0,1534,76.7,104.2,104.1,105.0,106.0,100.3,19.69,5127.4,ok,1,measured,1.10,none,0,0,,,",
        "steward,sim,local-symmetric-10mbps,8,100,1,20.0,1525,76.25,104.87,104.831,105.343,107.007,100.3,19.69,5127.4,ok,1,measured,1.11,byzantine-mix,3,0,108.57,76.7,0.9941",
        "steward,sim,local-symmetric-10mbps,8,100,1,20.0,640,32.0,250.1,240.0,400.2,812.5,100.3,25.1,6127.4,ok,1,measured,1.30,equivocating-leader,5,1,812.25,76.7,0.4172",
        "steward,sim,local-symmetric-10mbps,8,100,1,20.0,1400,70.0,110.2,109.0,130.5,300.0,100.3,20.3,5227.4,ok,1,measured,1.20,withholding-reps,1,0,250.0,76.7,0.9126",
        "pbft,sim,local-symmetric-10mbps,8,100,1,20.0,500,25.0,320.0,318.0,330.0,350.0,100.3,80.0,20000.0,ok,1,measured,1.40,byzantine-mix,2,0,400.0,30.0,0.8333",
        "pbft,sim,local-symmetric-10mbps,8,100,1,20.0,570,28.5,290.0,288.0,300.0,310.0,100.3,80.0,20000.0,ok,1,measured,1.40,equivocating-leader,1,0,150.5,30.0,0.95",
    ];
    fs::write(
        dir.join("summary.csv"),
        format!("{head}\n{}\n", rows.join("\n")),
    )
    .unwrap();
}

#[test]
fn attacks_get_a_damage_table_section_and_plot() {
    let results = tempfile::tempdir().unwrap();
    attack_fixture(results.path());
    let set = load_dir(results.path()).unwrap();
    let out = tempfile::tempdir().unwrap();
    let outcome = report(&set, out.path(), PlotFont::Auto);
    assert_eq!(outcome.plot_error, None, "plots need a TrueType font");
    let o = out.path();

    let csv = fs::read_to_string(o.join("damage.csv")).unwrap();
    let src = results.path().display().to_string();
    let want = format!(
        "source,protocol,topology,costs,clients,scenario,reference_ops_s,throughput_ops_s,attack_ratio,local_view_changes,global_view_changes,recovery_ms,safety\n\
         {src},steward,local-symmetric-10mbps,measured,8,byzantine-mix,76.70,76.25,0.9941,3,0,108.6,ok\n\
         {src},steward,local-symmetric-10mbps,measured,8,equivocating-leader,76.70,32.00,0.4172,5,1,812.2,ok\n\
         {src},steward,local-symmetric-10mbps,measured,8,withholding-reps,76.70,70.00,0.9126,1,0,250.0,ok\n\
         {src},pbft,local-symmetric-10mbps,measured,8,byzantine-mix,30.00,25.00,0.8333,2,0,400.0,ok\n\
         {src},pbft,local-symmetric-10mbps,measured,8,equivocating-leader,30.00,28.50,0.9500,1,0,150.5,ok\n"
    );
    assert_eq!(csv, want);

    let md = fs::read_to_string(o.join("REPORT.md")).unwrap();
    let section = &md[md
        .find("## Damage under attack (`damage.csv`)")
        .expect("damage section")..];
    let section = &section[..section[3..].find("\n## ").map_or(section.len(), |i| i + 3)];
    for want in [
        "### local-symmetric-10mbps, costs `measured`, 8 clients",
        "| attack | protocol | fault-free ops/s | under attack ops/s | ratio | view changes | detection/recovery ms | safety |",
        "| equivocating-leader | Steward | 76.7 | 32.0 | **0.417** | 5 / 1 | 812.2 | ok |",
        "| equivocating-leader | PBFT | 30.0 | 28.5 | 0.950 | 1 / 0 | 150.5 | ok |",
        "| byzantine-mix | Steward | 76.7 | 76.2 | 0.994 | 3 / 0 | 108.6 | ok |",
        "**Below the acceptance bound (0.5):** equivocating-leader (Steward).",
        "plots/damage-local-symmetric-10mbps-measured-c8.png",
    ] {
        assert!(section.contains(want), "damage section lacks {want:?}:\n{section}");
    }
    // Exactly the one low ratio is marked; the fault-free row is no attack.
    assert_eq!(section.matches("| **0.").count(), 1, "{section}");
    assert!(!section.contains("| none |"), "{section}");
    // Attack rows in catalog order, Steward before PBFT within an attack.
    let pos = |s: &str| section.find(s).unwrap_or_else(|| panic!("{s}"));
    assert!(pos("| byzantine-mix | Steward") < pos("| byzantine-mix | PBFT"));
    assert!(pos("| byzantine-mix | PBFT") < pos("| equivocating-leader | Steward"));
    assert!(pos("| equivocating-leader | PBFT") < pos("| withholding-reps | Steward"));

    let stem = o.join("plots/damage-local-symmetric-10mbps-measured-c8");
    let png = fs::read(stem.with_extension("png")).unwrap();
    assert_eq!(&png[1..4], b"PNG");
    let svg = fs::read_to_string(stem.with_extension("svg")).unwrap();
    for want in [
        "Throughput under attack / fault-free",
        "acceptance bound",
        "equivocating-leader",
        "withholding-reps",
        "0.42",
        "0.99",
        "PBFT",
        "no run",
    ] {
        assert!(svg.contains(want), "the damage plot lacks {want:?}");
    }
    // Byte-for-byte reproducible: a second report draws the same files.
    let again = tempfile::tempdir().unwrap();
    report(&set, again.path(), PlotFont::Auto);
    let stem2 = again
        .path()
        .join("plots/damage-local-symmetric-10mbps-measured-c8");
    assert_eq!(fs::read(stem2.with_extension("png")).unwrap(), png);
    assert_eq!(
        fs::read_to_string(stem2.with_extension("svg")).unwrap(),
        svg
    );
    if let Some(keep) = std::env::var_os("ANALYSIS_KEEP") {
        copy_dir(o, Path::new(&keep));
    }
}

#[test]
fn summaries_without_attack_columns_get_no_damage_section() {
    let set = load_dir(&fixture("sim-5mbps")).unwrap();
    let out = tempfile::tempdir().unwrap();
    let outcome = report(&set, out.path(), PlotFont::Skip);
    assert!(!out.path().join("damage.csv").exists());
    let md = fs::read_to_string(out.path().join("REPORT.md")).unwrap();
    assert!(!md.contains("Damage under attack"));
    assert!(!outcome
        .files
        .iter()
        .any(|f| f.to_string_lossy().contains("damage")));
}

/// Local runs labelled `cpu_bound` are listed in their own section and drawn hollow: the
/// throughput plot of the topology has one hollow (white-filled) dot per CPU-bound run.
#[test]
fn cpu_bound_points_are_listed_and_drawn_hollow() {
    let results = tempfile::tempdir().unwrap();
    let dir = results.path();
    fs::copy(
        fixture("sim-5mbps/manifest.json"),
        dir.join("manifest.json"),
    )
    .unwrap();
    let head = "protocol,mode,topology,clients,write_pct,batch,duration_s,completed,throughput_ops_s,lat_mean_ms,lat_p50_ms,lat_p99_ms,lat_max_ms,lat_bound_ms,wan_msgs_per_update,wan_bytes_per_update,safety,seed,costs,wall_s,scenario,local_view_changes,global_view_changes,recovery_ms,reference_ops_s,attack_ratio,cpu_ms_per_update,replica_cpu_util,host_cpu_util,cpu_bound";
    let row = |clients: u32, ops: f64, bound: bool| {
        format!(
            "steward,local,lab-ring,{clients},100,1,15.0,{},{ops},100.0,100.0,120.0,150.0,90.0,20.0,5000.0,ok,1,,16.0,none,0,0,,,,40.0,0.5,{},{bound}",
            (ops * 15.0) as u64,
            if bound { "0.97" } else { "0.40" }
        )
    };
    let rows = [row(1, 8.0, false), row(10, 48.0, true), row(20, 49.0, true)];
    fs::write(
        dir.join("summary.csv"),
        format!("{head}\n{}\n", rows.join("\n")),
    )
    .unwrap();
    let set = load_dir(dir).unwrap();
    assert_eq!(
        set.runs.iter().map(|r| r.cpu_bound).collect::<Vec<_>>(),
        vec![Some(false), Some(true), Some(true)]
    );
    let out = tempfile::tempdir().unwrap();
    let outcome = report(&set, out.path(), PlotFont::Auto);
    assert_eq!(outcome.plot_error, None, "plots need a TrueType font");
    let md = fs::read_to_string(out.path().join("REPORT.md")).unwrap();
    let section = &md[md.find("## CPU-bound points").expect("CPU-bound section")..];
    assert!(
        section.contains("| steward | lab-ring | local | 10 | 48.0 | 40.0 |"),
        "{section}"
    );
    assert!(
        section.contains("| steward | lab-ring | local | 20 | 49.0 | 40.0 |"),
        "{section}"
    );
    assert!(!section.contains("| 1 | 8.0 |"), "{section}");
    let svg = outcome
        .files
        .iter()
        .find(|f| {
            let name = f.to_string_lossy();
            name.ends_with(".svg") && name.contains("lab-ring") && name.contains("throughput")
        })
        .unwrap_or_else(|| panic!("no throughput plot of lab-ring in {:?}", outcome.files));
    let svg = fs::read_to_string(out.path().join(svg))
        .unwrap_or_else(|_| fs::read_to_string(svg).unwrap());
    let white_dots = svg
        .split("<circle")
        .skip(1)
        .filter(|c| c[..c.find("/>").unwrap_or(c.len())].contains(r##"fill="#FFFFFF""##))
        .count();
    assert_eq!(white_dots, 2, "one hollow dot per CPU-bound run");
    // Without the column, nothing is CPU-bound.
    let set = load_dir(&fixture("sim-5mbps")).unwrap();
    let out = tempfile::tempdir().unwrap();
    report(&set, out.path(), PlotFont::Skip);
    let md = fs::read_to_string(out.path().join("REPORT.md")).unwrap();
    assert!(!md.contains("CPU-bound points"));
}
