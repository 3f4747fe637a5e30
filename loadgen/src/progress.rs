//! Progress reporting on stderr for the long-running subcommands (`local`, `matrix`,
//! `simulate`, `campaign`).
//!
//! The choice is made once per process ([`mode_for`]): when stderr is a terminal, progress is a
//! set of `indicatif` bars with an ETA at the bottom of the screen; otherwise (CI, logs,
//! pipes) it is plain lines, and no escape code is written. `LOADGEN_PROGRESS=lines` forces
//! plain lines on a terminal too. Progress only ever goes to stderr; stdout is untouched.
//!
//! While bars are shown, every other line on the terminal must be printed through them or it
//! garbles them (and their next redraw erases it): this module defines `eprintln!` and
//! `println!` macros that shadow the standard ones in every module of this crate declared
//! after it (`#[macro_use] mod progress;` comes first in `main.rs`). They print exactly what
//! the standard ones print, with the bars cleared while they do. [`init_tracing`] does the
//! same for `tracing` events.

use std::fmt;
use std::io::{IsTerminal, Write};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

/// `std::eprintln!` that keeps the progress bars intact (see the module documentation).
macro_rules! eprintln {
    () => {
        $crate::progress::log_line(format_args!(""))
    };
    ($($arg:tt)*) => {
        $crate::progress::log_line(format_args!($($arg)*))
    };
}

/// `std::println!` that keeps the progress bars intact: when stdout and stderr are the same
/// terminal, a line printed under the bars would be overwritten by their next redraw. What
/// goes to stdout is exactly what `std::println!` writes.
macro_rules! println {
    () => {
        $crate::progress::out_line(format_args!(""))
    };
    ($($arg:tt)*) => {
        $crate::progress::out_line(format_args!($($arg)*))
    };
}

/// How progress is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Bars with an ETA, redrawn in place (stderr is a terminal).
    Bars,
    /// Plain lines, one per step, as in a log.
    Lines,
}

/// The mode for a stderr that is (or not) a terminal and the value of `LOADGEN_PROGRESS`.
pub fn mode_for(stderr_is_terminal: bool, env: Option<&str>) -> Mode {
    if stderr_is_terminal && env != Some("lines") {
        Mode::Bars
    } else {
        Mode::Lines
    }
}

/// The bars of this process, or `None` in [`Mode::Lines`]; decided on first use.
fn bars() -> Option<&'static MultiProgress> {
    static BARS: OnceLock<Option<MultiProgress>> = OnceLock::new();
    BARS.get_or_init(|| {
        let env = std::env::var("LOADGEN_PROGRESS").ok();
        (mode_for(std::io::stderr().is_terminal(), env.as_deref()) == Mode::Bars)
            .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(8)))
    })
    .as_ref()
}

/// Prints one line on stderr (what the crate's `eprintln!` expands to), clearing the bars
/// while it does.
pub fn log_line(args: fmt::Arguments<'_>) {
    match bars() {
        Some(m) => m.suspend(|| std::eprintln!("{args}")),
        None => std::eprintln!("{args}"),
    }
}

/// Prints one line on stdout (what the crate's `println!` expands to), clearing the bars
/// while it does.
pub fn out_line(args: fmt::Arguments<'_>) {
    match bars() {
        Some(m) => m.suspend(|| std::println!("{args}")),
        None => std::println!("{args}"),
    }
}

/// Installs the `tracing` subscriber of the driver: the replicas' one
/// (`steward_runtime::init_tracing`, human format) in [`Mode::Lines`]; the same format
/// written through the bars in [`Mode::Bars`].
pub fn init_tracing() {
    if bars().is_none() {
        steward_runtime::init_tracing(steward_runtime::LogFormat::Human);
        return;
    }
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // An error means a subscriber is already installed, which is what the caller wants.
    let _ = tracing_subscriber::fmt()
        .with_writer(|| BarWriter)
        .with_ansi(false)
        .with_env_filter(filter)
        .try_init();
}

/// Stderr with the bars cleared around each write.
struct BarWriter;

impl Write for BarWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.write_all(buf)?;
        Ok(buf.len())
    }

    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        match bars() {
            Some(m) => m.suspend(|| std::io::stderr().write_all(buf)),
            None => std::io::stderr().write_all(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

/// A new bar of `len` steps in `style`, added to the process's bars (`None` in
/// [`Mode::Lines`]).
fn add_bar(len: u64, style: ProgressStyle) -> Option<ProgressBar> {
    let m = bars()?;
    let bar = m.add(ProgressBar::new(len).with_style(style));
    bar.enable_steady_tick(Duration::from_millis(250));
    Some(bar)
}

/// Removes `bar` from the screen.
fn remove_bar(bar: &ProgressBar) {
    bar.finish_and_clear();
    if let Some(m) = bars() {
        m.remove(bar);
    }
}

/// `{template}` as a style; the templates here are constants, so a bad one is a bug.
fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .expect("progress template")
        .progress_chars("=> ")
}

/// A duration as a person reads it: `42s`, `3m 05s`, `2h 07m`.
pub fn human_duration(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}h {:02}m", s / 3600, s % 3600 / 60)
    } else if s >= 60 {
        format!("{}m {:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

/// Progress of a sweep of `total` items (configurations of `local` or `simulate`, points of
/// `matrix`): a bar of items done with the current item's label and an ETA. In
/// [`Mode::Lines`] it prints nothing: the subcommands print their own line per item.
pub struct Sweep {
    bar: Option<ProgressBar>,
    total: u64,
}

impl Sweep {
    /// The sweep of `command` (its name, shown before the bar) over `total` items, called
    /// `unit` (plural, e.g. `configurations`).
    pub fn new(command: &str, total: u64, unit: &str) -> Sweep {
        let template = format!(
            "{{prefix:.bold}} [{{bar:30}}] {{pos}}/{{len}} {unit} ({{elapsed}} elapsed, ETA {{eta}}) {{wide_msg}}"
        );
        let bar = add_bar(total, style(&template));
        if let Some(b) = &bar {
            b.set_prefix(command.to_string());
        }
        Sweep { bar, total }
    }

    /// The next item, `label`, starts.
    pub fn begin(&self, label: &str) {
        if let Some(b) = &self.bar {
            b.set_message(label.to_string());
        }
    }

    /// One more item is done (run or skipped); the bar goes away after the last one.
    pub fn item_done(&self) {
        if let Some(b) = &self.bar {
            b.inc(1);
            if b.position() >= self.total {
                remove_bar(b);
            }
        }
    }

    /// A bar under the sweep's for the current item's wall-clock window of `length` (e.g.
    /// warm-up + measurement); it advances by itself and goes away when dropped.
    pub fn wall_window(&self, length: Duration) -> Window {
        let bar = self.bar.as_ref().and_then(|_| {
            let len = length.as_millis().max(1) as u64;
            let window = move |state: &ProgressState, w: &mut dyn fmt::Write| {
                let _ = w.write_str(&window_text(state.elapsed(), length, 30));
            };
            add_bar(
                len,
                style("  warm-up + measurement {window}").with_key("window", window),
            )
        });
        Window { bar }
    }

    /// A bar under the sweep's for the current item's virtual time up to `length` (a
    /// simulation); advance it with [`Window::advance_to`]. It goes away when dropped.
    pub fn virtual_window(&self, length: Duration) -> Window {
        let bar = self.bar.as_ref().and_then(|_| {
            let len = length.as_millis().max(1) as u64;
            let window = |state: &ProgressState, w: &mut dyn fmt::Write| {
                let _ = write!(w, "{:.1}", state.pos() as f64 / 1e3);
            };
            let total = |state: &ProgressState, w: &mut dyn fmt::Write| {
                let _ = write!(w, "{:.1}", state.len().unwrap_or(0) as f64 / 1e3);
            };
            add_bar(
                len,
                style("  virtual time [{bar:30}] {vt}/{vlen} s (ETA {eta})")
                    .with_key("vt", window)
                    .with_key("vlen", total),
            )
        });
        Window { bar }
    }
}

impl Drop for Sweep {
    fn drop(&mut self) {
        if let Some(b) = &self.bar {
            remove_bar(b);
        }
    }
}

/// `[=====>    ] 12/65 s` for `elapsed` of a `length` window, `width` characters of bar.
pub fn window_text(elapsed: Duration, length: Duration, width: usize) -> String {
    let frac = if length.is_zero() {
        1.0
    } else {
        (elapsed.as_secs_f64() / length.as_secs_f64()).min(1.0)
    };
    let filled = (frac * width as f64).round() as usize;
    let mut bar = "=".repeat(filled);
    if filled < width {
        bar.push('>');
        bar.push_str(&" ".repeat(width - filled - 1));
    }
    let shown = elapsed.min(length);
    format!(
        "[{bar}] {}/{} s",
        shown.as_secs(),
        length.as_secs_f64().ceil() as u64
    )
}

/// The bar of an item's window (see [`Sweep::wall_window`], [`Sweep::virtual_window`]); it
/// goes away when dropped. Does nothing in [`Mode::Lines`].
pub struct Window {
    bar: Option<ProgressBar>,
}

impl Window {
    /// The (virtual) time reached is `t`.
    pub fn advance_to(&self, t: Duration) {
        if let Some(b) = &self.bar {
            b.set_position(t.as_millis() as u64);
        }
    }
}

impl Drop for Window {
    fn drop(&mut self) {
        if let Some(b) = &self.bar {
            remove_bar(b);
        }
    }
}

/// The counts of a campaign so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct CampaignCounts {
    done: u64,
    safety: u64,
    liveness: u64,
}

/// Progress of `loadgen campaign`: seeds done out of the total, safety violations and
/// liveness failures so far, seeds/hour and ETA. Shared by reference between the worker
/// threads ([`CampaignProgress::seed_done`] takes `&self`). In [`Mode::Lines`] it prints a
/// [`campaign_line`] every `every` seeds and after the last one.
pub struct CampaignProgress {
    total: u64,
    every: u64,
    started: Instant,
    counts: Mutex<CampaignCounts>,
    bar: Option<ProgressBar>,
}

impl CampaignProgress {
    /// Progress of a campaign of `total` seeds, with a plain line every `every` seeds.
    pub fn new(total: u64, every: u64) -> CampaignProgress {
        let rate = |state: &ProgressState, w: &mut dyn fmt::Write| {
            let _ = write!(w, "{:.0}", state.per_sec() * 3600.0);
        };
        let bar = add_bar(
            total,
            style(
                "{prefix:.bold} [{bar:30}] {pos}/{len} seeds, {msg}, {rate} seeds/hour ({elapsed} elapsed, ETA {eta})",
            )
            .with_key("rate", rate),
        );
        if let Some(b) = &bar {
            b.set_prefix("campaign");
            b.set_message(failures(0, 0));
        }
        CampaignProgress {
            total,
            every: every.max(1),
            started: Instant::now(),
            counts: Mutex::new(CampaignCounts::default()),
            bar,
        }
    }

    /// One more seed is done; it violated safety and/or liveness as told.
    pub fn seed_done(&self, safety_violation: bool, liveness_failure: bool) {
        // The lock makes each update and the line or bar drawn from it one consistent step.
        let mut c = self.counts.lock().expect("campaign progress lock");
        c.done += 1;
        c.safety += u64::from(safety_violation);
        c.liveness += u64::from(liveness_failure);
        match &self.bar {
            Some(b) => {
                b.set_message(failures(c.safety, c.liveness));
                b.set_position(c.done);
                if c.done >= self.total {
                    remove_bar(b);
                }
            }
            None => {
                if c.done % self.every == 0 || c.done == self.total {
                    std::eprintln!(
                        "{}",
                        campaign_line(
                            c.done,
                            self.total,
                            c.safety,
                            c.liveness,
                            self.started.elapsed()
                        )
                    );
                }
            }
        }
    }
}

impl Drop for CampaignProgress {
    fn drop(&mut self) {
        if let Some(b) = &self.bar {
            remove_bar(b);
        }
    }
}

/// `N safety violations, M liveness failures`.
fn failures(safety: u64, liveness: u64) -> String {
    format!(
        "{safety} safety violation{}, {liveness} liveness failure{}",
        if safety == 1 { "" } else { "s" },
        if liveness == 1 { "" } else { "s" }
    )
}

/// The plain progress line of a campaign: `campaign: 50/200 seeds, 0 safety violations, 1
/// liveness failure, 3600 seeds/hour, ETA 2m 30s` after `elapsed`.
pub fn campaign_line(
    done: u64,
    total: u64,
    safety: u64,
    liveness: u64,
    elapsed: Duration,
) -> String {
    let secs = elapsed.as_secs_f64();
    let mut line = format!(
        "campaign: {done}/{total} seeds, {}",
        failures(safety, liveness)
    );
    if secs > 0.0 && done > 0 {
        let per_sec = done as f64 / secs;
        let left = total.saturating_sub(done) as f64 / per_sec;
        line += &format!(
            ", {:.0} seeds/hour, ETA {}",
            per_sec * 3600.0,
            human_duration(Duration::from_secs_f64(left))
        );
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_only_on_a_terminal_unless_lines_are_asked_for() {
        assert_eq!(mode_for(true, None), Mode::Bars);
        assert_eq!(mode_for(true, Some("auto")), Mode::Bars);
        assert_eq!(mode_for(true, Some("lines")), Mode::Lines);
        assert_eq!(mode_for(false, None), Mode::Lines);
        assert_eq!(mode_for(false, Some("bars")), Mode::Lines);
    }

    #[test]
    fn campaign_line_shows_seeds_failures_rate_and_eta() {
        let line = campaign_line(50, 200, 2, 1, Duration::from_secs(60));
        assert_eq!(
            line,
            "campaign: 50/200 seeds, 2 safety violations, 1 liveness failure, \
             3000 seeds/hour, ETA 3m 00s"
        );
        // Today's prefix stays, for whoever reads the log.
        assert!(line.starts_with("campaign: 50/200 seeds"));
    }

    #[test]
    fn campaign_line_without_a_rate_yet() {
        assert_eq!(
            campaign_line(0, 10, 0, 0, Duration::ZERO),
            "campaign: 0/10 seeds, 0 safety violations, 0 liveness failures"
        );
        let done = campaign_line(10, 10, 1, 0, Duration::from_secs(36));
        assert!(done.starts_with("campaign: 10/10 seeds, 1 safety violation, 0 liveness"));
        assert!(done.ends_with("1000 seeds/hour, ETA 0s"), "{done}");
    }

    #[test]
    fn human_durations() {
        assert_eq!(human_duration(Duration::from_secs(42)), "42s");
        assert_eq!(human_duration(Duration::from_secs(185)), "3m 05s");
        assert_eq!(
            human_duration(Duration::from_secs(2 * 3600 + 7 * 60 + 9)),
            "2h 07m"
        );
    }

    #[test]
    fn window_text_fills_with_time_and_stops_at_the_end() {
        let len = Duration::from_secs(10);
        assert_eq!(window_text(Duration::ZERO, len, 10), "[>         ] 0/10 s");
        assert_eq!(
            window_text(Duration::from_secs(5), len, 10),
            "[=====>    ] 5/10 s"
        );
        assert_eq!(
            window_text(Duration::from_secs(30), len, 10),
            "[==========] 10/10 s"
        );
    }

    #[test]
    fn lines_mode_makes_no_bars() {
        // Under `cargo test` stderr is captured or not a terminal in CI; force the check on
        // the pure parts only when it is not a terminal.
        if std::io::stderr().is_terminal() {
            return;
        }
        assert!(bars().is_none());
        let sweep = Sweep::new("test", 3, "items");
        assert!(sweep.bar.is_none());
        assert!(sweep.wall_window(Duration::from_secs(1)).bar.is_none());
        let c = CampaignProgress::new(2, 1);
        assert!(c.bar.is_none());
        c.seed_done(false, true);
        assert_eq!(
            *c.counts.lock().unwrap(),
            CampaignCounts {
                done: 1,
                safety: 0,
                liveness: 1
            }
        );
    }
}
