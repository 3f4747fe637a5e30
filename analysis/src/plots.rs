//! Line charts: drawn once, with plotters, to SVG; the SVG rasterized to PNG with resvg.
//!
//! A [`Chart`] describes a plot independently of the backend; [`render`] writes `<stem>.svg`
//! and `<stem>.png`. The PNG is the SVG rendered by resvg, so both always show the same
//! picture, and the bytes of both depend only on the chart and the font file.
//!
//! Text needs one TrueType/OpenType font, found at run time ([`find_font`]) and loaded as a
//! [`ChartFont`]: plotters measures text with it to lay the chart out, and resvg draws the
//! SVG's text with it (every font family the SVG names resolves to that one font; no system
//! font is consulted, which keeps the output reproducible). No font is bundled. The lookup
//! order: the file named by `--font` or by the `ANALYSIS_FONT` environment variable; then,
//! under `/usr/share/fonts`, `/usr/local/share/fonts`, `~/.local/share/fonts` and `~/.fonts`, a
//! well-known sans-serif file (DejaVu Sans, Liberation Sans, Noto Sans, FreeSans); then any
//! upright `.ttf`/`.otf` file found there. On Debian, `apt-get install fonts-dejavu-core`
//! provides `/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf`.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::{anyhow, bail, Context, Result};
use plotters::coord::ranged1d::{AsRangedCoord, DefaultFormatting, KeyPointHint, ValueFormatter};
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use resvg::{tiny_skia, usvg};
use steward_config::Protocol;

use crate::experiment::protocol_of;

/// Environment variable naming a font file to use.
pub const FONT_ENV: &str = "ANALYSIS_FONT";

/// The font family the SVG text asks for (resolved to the loaded font when rasterizing).
pub const FAMILY: &str = "sans-serif";

/// Preferred font files, best first.
const PREFERRED: [&str; 6] = [
    "DejaVuSans.ttf",
    "LiberationSans-Regular.ttf",
    "NotoSans-Regular.ttf",
    "FreeSans.ttf",
    "Arial.ttf",
    "Vera.ttf",
];

/// Where fonts are searched when none is named.
pub fn default_font_dirs() -> Vec<PathBuf> {
    let mut dirs = vec![
        PathBuf::from("/usr/share/fonts"),
        PathBuf::from("/usr/local/share/fonts"),
    ];
    if let Some(home) = std::env::var_os("HOME") {
        let home = PathBuf::from(home);
        dirs.push(home.join(".local/share/fonts"));
        dirs.push(home.join(".fonts"));
    }
    dirs
}

/// Choose a font file: `explicit` if given (it must exist), else the best one under `dirs`
/// (see the module docs). The error says how to install or name one.
pub fn find_font(explicit: Option<&Path>, dirs: &[PathBuf]) -> Result<PathBuf> {
    if let Some(p) = explicit {
        if p.is_file() {
            return Ok(p.to_path_buf());
        }
        bail!("font file {} does not exist", p.display());
    }
    let mut files = Vec::new();
    for d in dirs {
        collect_fonts(d, 0, &mut files);
    }
    files.sort();
    let name = |p: &PathBuf| {
        p.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    for want in PREFERRED {
        if let Some(p) = files.iter().find(|p| name(p) == want) {
            return Ok(p.clone());
        }
    }
    let upright = |p: &&PathBuf| {
        let n = name(p).to_ascii_lowercase();
        !["bold", "italic", "oblique", "mono", "light", "condensed"]
            .iter()
            .any(|w| n.contains(w))
    };
    if let Some(p) = files.iter().find(upright).or(files.first()) {
        return Ok(p.clone());
    }
    let searched: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
    Err(anyhow!(
        "no TrueType/OpenType font found (searched {}); install one (Debian: apt-get install \
         fonts-dejavu-core) or name a .ttf file with --font or {FONT_ENV}",
        if searched.is_empty() {
            "nowhere".to_string()
        } else {
            searched.join(", ")
        }
    ))
}

fn collect_fonts(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) {
    crate::results::walk(dir, depth, 8, &mut |p, is_dir| {
        let font = matches!(
            p.extension()
                .and_then(|x| x.to_str())
                .map(str::to_ascii_lowercase)
                .as_deref(),
            Some("ttf" | "otf")
        );
        if !is_dir && font {
            out.push(p.to_path_buf());
        }
        is_dir
    });
}

/// The font file registered with plotters for text measurement, and its leaked bytes.
static PLOTTERS_FONT: Mutex<Option<(PathBuf, &'static [u8])>> = Mutex::new(None);

/// One font file, loaded for the plots: plotters lays text out with it, resvg draws it.
#[derive(Clone, Debug)]
pub struct ChartFont {
    path: PathBuf,
    family: String,
    db: Arc<usvg::fontdb::Database>,
}

impl ChartFont {
    /// Load the font file at `path` (its first face, for collections). Fails with the path
    /// named when the file cannot be read or holds no usable TrueType/OpenType font.
    pub fn load(path: &Path) -> Result<ChartFont> {
        let bytes =
            fs::read(path).with_context(|| format!("{}: cannot read font", path.display()))?;
        let unusable = || anyhow!("{}: not a usable TrueType/OpenType font", path.display());
        let mut db = usvg::fontdb::Database::new();
        db.load_font_data(bytes);
        let family = db
            .faces()
            .next()
            .and_then(|f| f.families.first())
            .map(|f| f.0.clone())
            .ok_or_else(unusable)?;
        // Whatever family the SVG asks for (plotters writes `sans-serif`), use this font.
        db.set_sans_serif_family(family.clone());
        db.set_serif_family(family.clone());
        db.set_monospace_family(family.clone());
        db.set_cursive_family(family.clone());
        db.set_fantasy_family(family.clone());
        let font = ChartFont {
            path: path.to_path_buf(),
            family,
            db: Arc::new(db),
        };
        font.register_with_plotters()?;
        Ok(font)
    }

    /// The font file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The font's family name, as the font file gives it (e.g. `DejaVu Sans`).
    pub fn family(&self) -> &str {
        &self.family
    }

    /// Make this file the one plotters measures [`FAMILY`] text with (plotters keeps one
    /// process-wide font per family). Registering the same file again is free.
    fn register_with_plotters(&self) -> Result<()> {
        let mut reg = PLOTTERS_FONT
            .lock()
            .map_err(|_| anyhow!("font registry lock poisoned"))?;
        if reg.as_ref().map(|r| r.0.as_path()) == Some(self.path.as_path()) {
            return Ok(());
        }
        let bytes = fs::read(&self.path)
            .with_context(|| format!("{}: cannot read font", self.path.display()))?;
        // plotters keeps a `&'static [u8]`; a report uses one font, so leaking it is fine.
        let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
        plotters::style::register_font(FAMILY, plotters::style::FontStyle::Normal, bytes).map_err(
            |_| {
                anyhow!(
                    "{}: not a usable TrueType/OpenType font",
                    self.path.display()
                )
            },
        )?;
        *reg = Some((self.path.clone(), bytes));
        Ok(())
    }
}

/// Rasterize an SVG document to PNG bytes with resvg, its text drawn with `font`, on white.
pub fn svg_to_png(svg: &str, font: &ChartFont) -> Result<Vec<u8>> {
    let opt = usvg::Options {
        fontdb: font.db.clone(),
        font_family: font.family.clone(),
        ..usvg::Options::default()
    };
    let tree = usvg::Tree::from_str(svg, &opt).map_err(|e| anyhow!("cannot parse the SVG: {e}"))?;
    let size = tree.size().to_int_size();
    let mut pixmap = tiny_skia::Pixmap::new(size.width(), size.height())
        .ok_or_else(|| anyhow!("empty image ({}×{})", size.width(), size.height()))?;
    pixmap.fill(tiny_skia::Color::WHITE);
    resvg::render(&tree, tiny_skia::Transform::default(), &mut pixmap.as_mut());
    encode_opaque_png(&pixmap)
}

/// `pixmap` as an 8-bit RGB PNG, best compression. The pixmap is opaque (filled white before
/// drawing), so its premultiplied RGBA is plain RGBA and alpha can be dropped; this makes the
/// file about half the size of [`tiny_skia::Pixmap::encode_png`]'s RGBA one.
fn encode_opaque_png(pixmap: &tiny_skia::Pixmap) -> Result<Vec<u8>> {
    let rgb: Vec<u8> = pixmap
        .data()
        .chunks_exact(4)
        .flat_map(|p| [p[0], p[1], p[2]])
        .collect();
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, pixmap.width(), pixmap.height());
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        enc.set_compression(png::Compression::Best);
        enc.set_filter(png::FilterType::Paeth);
        enc.set_adaptive_filter(png::AdaptiveFilterType::Adaptive);
        let mut w = enc
            .write_header()
            .map_err(|e| anyhow!("cannot encode the PNG: {e}"))?;
        w.write_image_data(&rgb)
            .map_err(|e| anyhow!("cannot encode the PNG: {e}"))?;
    }
    Ok(out)
}

/// Width of rendered plots, pixels.
pub const WIDTH: u32 = 1000;
/// Height of rendered plots, pixels.
pub const HEIGHT: u32 = 680;

/// How a curve is drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CurveStyle {
    /// Our measurement: solid line, filled dots.
    Measured,
    /// The paper's data: dashed line, hollow dots.
    Paper,
    /// A thin solid line without markers (dense curves such as CDFs).
    Line,
}

/// One curve.
#[derive(Clone, Debug)]
pub struct Curve {
    /// Legend text.
    pub label: String,
    /// Points (x, y).
    pub points: Vec<(f64, f64)>,
    /// Colour (r, g, b).
    pub color: (u8, u8, u8),
    /// Line style.
    pub style: CurveStyle,
    /// Points of `points` drawn as hollow circles (measured curves: CPU-bound points).
    pub hollow: Vec<(f64, f64)>,
}

/// Where the legend should go. This corner is used when no data point lies under it;
/// otherwise the corner with the fewest points is (see [`legend_corner`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LegendAt {
    /// Top left corner of the plot area.
    UpperLeft,
    /// Top right corner of the plot area.
    UpperRight,
    /// Bottom right corner of the plot area.
    LowerRight,
    /// Bottom left corner of the plot area.
    LowerLeft,
}

/// The corner for the legend: `preferred` if none of `points` (in axis fractions 0..1, y up)
/// falls in it, else the corner holding the fewest points (ties go to the preferred one, then
/// in the order upper left, upper right, lower right, lower left). A corner region is 30 % of
/// the width and 25 % of the height.
pub fn legend_corner(preferred: LegendAt, points: &[(f64, f64)]) -> LegendAt {
    let inside = |c: LegendAt| {
        points
            .iter()
            .filter(|&&(x, y)| {
                let xin = match c {
                    LegendAt::UpperLeft | LegendAt::LowerLeft => x <= 0.3,
                    LegendAt::UpperRight | LegendAt::LowerRight => x >= 0.7,
                };
                let yin = match c {
                    LegendAt::UpperLeft | LegendAt::UpperRight => y >= 0.75,
                    LegendAt::LowerLeft | LegendAt::LowerRight => y <= 0.25,
                };
                xin && yin
            })
            .count()
    };
    let mut best = (inside(preferred), preferred);
    for c in [
        LegendAt::UpperLeft,
        LegendAt::UpperRight,
        LegendAt::LowerRight,
        LegendAt::LowerLeft,
    ] {
        let n = inside(c);
        if n < best.0 {
            best = (n, c);
        }
    }
    best.1
}

/// A vertical line across the plot area at `x`, labelled at its top (an event such as a
/// replica being killed).
#[derive(Clone, Debug, PartialEq)]
pub struct Marker {
    /// Where, in x axis units.
    pub x: f64,
    /// Text next to the top of the line.
    pub label: String,
}

/// A line chart.
#[derive(Clone, Debug)]
pub struct Chart {
    /// Title (first line at the top).
    pub title: String,
    /// Lines under the title: topology, mode, emulation, machine.
    pub captions: Vec<String>,
    /// X axis label, with unit.
    pub x_label: String,
    /// Y axis label, with unit.
    pub y_label: String,
    /// Logarithmic x axis.
    pub x_log: bool,
    /// Logarithmic y axis.
    pub y_log: bool,
    /// Fix the y range to 0..=1 (CDFs).
    pub y_unit_range: bool,
    /// Start the x axis at 0 (otherwise just below the smallest x).
    pub x_from_zero: bool,
    /// Legend position.
    pub legend: LegendAt,
    /// The curves.
    pub curves: Vec<Curve>,
    /// Vertical event lines; the x range covers them.
    pub markers: Vec<Marker>,
}

/// Colour of a protocol's curves: Steward blue, PBFT vermilion, others grey.
pub fn protocol_color(protocol: &str) -> (u8, u8, u8) {
    match protocol_of(protocol) {
        Some(Protocol::Steward) => (0, 90, 181),
        Some(Protocol::Pbft) => (220, 50, 32),
        None => (90, 90, 90),
    }
}

/// A colour from a fixed palette of well-separated colours, by index.
pub fn palette(i: usize) -> (u8, u8, u8) {
    const P: [(u8, u8, u8); 8] = [
        (0, 90, 181),
        (220, 50, 32),
        (0, 150, 80),
        (150, 60, 170),
        (230, 140, 0),
        (0, 160, 190),
        (120, 80, 40),
        (40, 40, 40),
    ];
    P[i % P.len()]
}

fn pe<E: std::fmt::Display>(e: E) -> anyhow::Error {
    anyhow!("drawing failed: {e}")
}

/// The x and y ranges of a chart: x from 0 (or just below the smallest x, see
/// [`Chart::x_from_zero`]) to the largest x plus 5 %; y from 0 to the largest y plus 10 % (log axes: a decade-aligned range around the
/// positive values).
pub fn ranges(chart: &Chart) -> (std::ops::Range<f64>, std::ops::Range<f64>) {
    let marks = chart.markers.iter().map(|m| (m.x, f64::NAN));
    let pts = || {
        chart
            .curves
            .iter()
            .flat_map(|c| c.points.iter().copied())
            .chain(marks.clone())
    };
    let xmax = pts().map(|p| p.0).fold(f64::NEG_INFINITY, f64::max);
    let xmin = pts().map(|p| p.0).fold(f64::INFINITY, f64::min);
    let ymax = pts().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
    let (x0, x1) = if chart.x_log {
        let xmin = pts()
            .map(|p| p.0)
            .filter(|&v| v > 0.0)
            .fold(f64::INFINITY, f64::min);
        decade_range(xmin, xmax)
    } else if xmax.is_finite() {
        let lo = if chart.x_from_zero {
            xmin.min(0.0)
        } else {
            let span = (xmax - xmin).max(xmax.abs() * 0.02).max(1e-9);
            (xmin - span * 0.05).max(if xmin >= 0.0 { 0.0 } else { f64::MIN })
        };
        let hi = if xmax > lo {
            xmax + (xmax - lo) * 0.05
        } else {
            lo + 1.0
        };
        (lo, hi)
    } else {
        (0.0, 1.0)
    };
    let y = if chart.y_unit_range {
        0.0..1.02
    } else if chart.y_log {
        let ymin = pts()
            .map(|p| p.1)
            .filter(|&v| v > 0.0)
            .fold(f64::INFINITY, f64::min);
        let (a, b) = decade_range(ymin, ymax);
        a..b
    } else if ymax.is_finite() && ymax > 0.0 {
        // Room above the data for the marker labels (see `marker_rows`): a row is 19 px of a
        // plot area at least 450 px high, below a 10 px offset.
        let rows = marker_rows(&chart.markers, &(x0..x1))
            .iter()
            .map(|m| m.1 + 1)
            .max()
            .unwrap_or(0);
        let free = 1.0 - (10.0 + 19.0 * rows as f64) / 450.0;
        0.0..(ymax * 1.1).max(ymax / free.max(0.3))
    } else {
        0.0..1.0
    };
    (x0..x1, y)
}

/// The markers inside the x range `xr`, sorted by x, each with the row of its label: 0 (the
/// top), or one row below the previous marker's when that is closer than 15 % of the x span.
pub fn marker_rows<'m>(
    markers: &'m [Marker],
    xr: &std::ops::Range<f64>,
) -> Vec<(&'m Marker, usize)> {
    let mut inside: Vec<&Marker> = markers
        .iter()
        .filter(|m| m.x >= xr.start && m.x <= xr.end)
        .collect();
    inside.sort_by(|a, b| a.x.total_cmp(&b.x));
    let mut out: Vec<(&Marker, usize)> = Vec::new();
    for m in inside {
        let row = match out.last() {
            Some((p, r)) if m.x - p.x < (xr.end - xr.start) * 0.15 => r + 1,
            _ => 0,
        };
        out.push((m, row));
    }
    out
}

/// Powers of ten around the positive range `lo..=hi` (at least one decade); `1..10` if empty.
fn decade_range(lo: f64, hi: f64) -> (f64, f64) {
    if !(lo.is_finite() && hi.is_finite() && lo > 0.0) {
        return (1.0, 10.0);
    }
    let a = lo.log10().floor();
    let b = hi.log10().ceil().max(a + 1.0);
    (10f64.powf(a), 10f64.powf(b))
}

/// Whether values spanning `lo..=hi` are better shown on a log axis (more than 20× apart).
pub fn wants_log(lo: f64, hi: f64) -> bool {
    lo > 0.0 && hi / lo > 20.0
}

/// Decimals for tick labels of an axis spanning `span`: 0 from 20 up, 1 from 2, else 2.
pub fn decimals(span: f64) -> usize {
    if span >= 20.0 {
        0
    } else if span >= 2.0 {
        1
    } else {
        2
    }
}

/// The SVG document of `chart`.
pub fn chart_svg(chart: &Chart, font: &ChartFont) -> Result<String> {
    font.register_with_plotters()?;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        draw(&root, chart)?;
        root.present().map_err(pe)?;
    }
    Ok(svg)
}

/// A plot that can be drawn as an SVG document: a [`Chart`] or a [`BarChart`].
pub trait Figure {
    /// The title (also the caption of the figure in a report).
    fn title(&self) -> &str;
    /// The SVG document.
    fn svg(&self, font: &ChartFont) -> Result<String>;
}

impl Figure for Chart {
    fn title(&self) -> &str {
        &self.title
    }
    fn svg(&self, font: &ChartFont) -> Result<String> {
        chart_svg(self, font)
    }
}

impl Figure for BarChart {
    fn title(&self) -> &str {
        &self.title
    }
    fn svg(&self, font: &ChartFont) -> Result<String> {
        bar_chart_svg(self, font)
    }
}

/// Draw `figure` to `<stem>.svg`, rasterize that to `<stem>.png`; returns both paths.
pub fn render(figure: &impl Figure, stem: &Path, font: &ChartFont) -> Result<(PathBuf, PathBuf)> {
    let svg_path = stem.with_extension("svg");
    let png_path = stem.with_extension("png");
    let svg = figure
        .svg(font)
        .map_err(|e| anyhow!("{}: {e:#}", svg_path.display()))?;
    fs::write(&svg_path, &svg).with_context(|| format!("{}: cannot write", svg_path.display()))?;
    let png = svg_to_png(&svg, font).map_err(|e| anyhow!("{}: {e:#}", png_path.display()))?;
    fs::write(&png_path, png).with_context(|| format!("{}: cannot write", png_path.display()))?;
    Ok((svg_path, png_path))
}

/// One series of a [`BarChart`]: a value per category (`None`: no bar, "no run" instead).
#[derive(Clone, Debug)]
pub struct BarSeries {
    /// Legend text (the legend is drawn when there are two series or more).
    pub label: String,
    /// Colour (r, g, b).
    pub color: (u8, u8, u8),
    /// One value per [`BarChart::categories`] entry, in the same order.
    pub values: Vec<Option<f64>>,
}

/// A horizontal bar chart: one row per category, top to bottom, with one bar per series in
/// each row (grouped bars), each labelled with its value.
#[derive(Clone, Debug)]
pub struct BarChart {
    /// Title (first line at the top).
    pub title: String,
    /// Lines under the title: topology, mode, emulation, machine.
    pub captions: Vec<String>,
    /// X axis label, with unit.
    pub x_label: String,
    /// Category names, the tick labels of the y axis, top row first.
    pub categories: Vec<String>,
    /// The bars.
    pub series: Vec<BarSeries>,
    /// The x axis runs from 0 to this.
    pub x_max: f64,
    /// A vertical dashed line (e.g. an acceptance bound), labelled above the top row.
    pub bound: Option<Marker>,
}

/// Height of a bar chart's image: [`HEIGHT`], or more when the rows need it (at least 16 px
/// per bar plus 12 px between rows).
pub fn bar_chart_height(chart: &BarChart) -> u32 {
    let header = 40 + 20 * bar_header_lines(chart);
    let rows = chart.categories.len() as u32;
    let per_row = 12 + 16 * chart.series.len().max(1) as u32;
    HEIGHT.max(header + 110 + rows * per_row)
}

/// Lines of text under the title: the captions, and the legend when there are two series.
fn bar_header_lines(chart: &BarChart) -> u32 {
    chart.captions.len() as u32 + u32::from(chart.series.len() > 1)
}

/// The SVG document of a bar chart.
pub fn bar_chart_svg(chart: &BarChart, font: &ChartFont) -> Result<String> {
    font.register_with_plotters()?;
    let mut svg = String::new();
    {
        let root =
            SVGBackend::with_string(&mut svg, (WIDTH, bar_chart_height(chart))).into_drawing_area();
        draw_bars(&root, chart)?;
        root.present().map_err(pe)?;
    }
    Ok(svg)
}

/// Tick label of a bar's value: two decimals.
pub fn bar_value_label(v: f64) -> String {
    format!("{v:.2}")
}

/// A linear f64 axis whose only ticks are the centres of the rows of a bar chart.
struct RowAxis {
    range: std::ops::Range<f64>,
    keys: Vec<f64>,
}

impl Ranged for RowAxis {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        RangedCoordf64::from(self.range.clone()).map(value, limit)
    }

    fn key_points<H: KeyPointHint>(&self, hint: H) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            Vec::new()
        } else {
            self.keys.clone()
        }
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.range.clone()
    }
}

fn draw_bars<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, chart: &BarChart) -> Result<()>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE).map_err(pe)?;
    let header_h = 40 + 20 * bar_header_lines(chart);
    let (top, body) = root.split_vertically(header_h);
    top.draw(&Text::new(
        chart.title.clone(),
        (20, 10),
        (FAMILY, 26).into_font().color(&BLACK),
    ))
    .map_err(pe)?;
    let caption_font = (FAMILY, 16).into_font().color(&RGBColor(60, 60, 60));
    for (i, c) in chart.captions.iter().enumerate() {
        top.draw(&Text::new(
            c.clone(),
            (20, 42 + 20 * i as i32),
            caption_font.clone(),
        ))
        .map_err(pe)?;
    }
    if chart.series.len() > 1 {
        // The legend: a swatch and the label per series, on one line under the captions.
        let y = 42 + 20 * chart.captions.len() as i32;
        let mut x = 20;
        for s in &chart.series {
            let color = RGBColor(s.color.0, s.color.1, s.color.2);
            top.draw(&Rectangle::new(
                [(x, y + 2), (x + 14, y + 16)],
                color.filled(),
            ))
            .map_err(pe)?;
            top.draw(&Text::new(
                s.label.clone(),
                (x + 20, y),
                caption_font.clone(),
            ))
            .map_err(pe)?;
            let (w, _) = top
                .estimate_text_size(&s.label, &caption_font)
                .map_err(pe)?;
            x += 20 + w as i32 + 30;
        }
    }
    let n = chart.categories.len();
    let label_font: TextStyle = (FAMILY, 15).into();
    let mut widest = 0;
    for c in &chart.categories {
        widest = widest.max(root.estimate_text_size(c, &label_font).map_err(pe)?.0);
    }
    // Row i (0 = top) is centred at y = n - i - 0.5; the space above the top row holds the
    // bound's label.
    let centre = |i: usize| n as f64 - i as f64 - 0.5;
    let y_range = RowAxis {
        range: 0.0..n as f64 + 0.8,
        keys: (0..n).map(centre).collect(),
    };
    let x_range = 0.0..chart.x_max.max(1e-9);
    let mut cc = ChartBuilder::on(&body)
        .margin_left(10)
        .margin_right(30)
        .margin_bottom(10)
        .margin_top(5)
        .x_label_area_size(55)
        .y_label_area_size(widest + 20)
        .build_cartesian_2d(x_range.clone(), y_range)
        .map_err(pe)?;
    let xd = decimals(chart.x_max);
    let categories = chart.categories.clone();
    let y_name = move |v: &f64| {
        let i = (n as f64 - 0.5 - v).round();
        if i >= 0.0 && (i as usize) < categories.len() {
            categories[i as usize].clone()
        } else {
            String::new()
        }
    };
    cc.configure_mesh()
        .x_desc(chart.x_label.clone())
        .axis_desc_style((FAMILY, 18))
        .label_style((FAMILY, 15))
        .x_label_formatter(&|v: &f64| format!("{v:.xd$}"))
        .y_label_formatter(&y_name)
        .disable_y_mesh()
        .max_light_lines(1)
        .light_line_style(RGBColor(244, 244, 244))
        .draw()
        .map_err(pe)?;
    let ns = chart.series.len().max(1);
    let band = 0.8;
    let h = band / ns as f64;
    let span = x_range.end - x_range.start;
    for (k, s) in chart.series.iter().enumerate() {
        let color = RGBColor(s.color.0, s.color.1, s.color.2);
        for (i, v) in s.values.iter().enumerate().take(n) {
            let y_top = centre(i) + band / 2.0 - k as f64 * h;
            let y_mid = y_top - h / 2.0;
            let Some(v) = *v else {
                let text = Text::new(
                    "no run".to_string(),
                    (4, 0),
                    (FAMILY, 14)
                        .into_font()
                        .color(&RGBColor(110, 110, 110))
                        .pos(Pos::new(HPos::Left, VPos::Center)),
                );
                cc.draw_series(std::iter::once(EmptyElement::at((0.0, y_mid)) + text))
                    .map_err(pe)?;
                continue;
            };
            let shown = v.clamp(0.0, x_range.end);
            cc.draw_series(std::iter::once(Rectangle::new(
                [(0.0, y_top - h * 0.06), (shown, y_top - h * 0.94)],
                color.filled(),
            )))
            .map_err(pe)?;
            // The value next to the bar's end, or inside it when the end is near the right edge
            // or just left of the bound's line (the text would cross it).
            let crosses = chart
                .bound
                .as_ref()
                .is_some_and(|b| b.x > shown && b.x < shown + span * 0.07);
            let inside = shown > span * 0.88 || (crosses && shown > span * 0.08);
            let style = (FAMILY, 14).into_font();
            let text = if inside {
                Text::new(
                    bar_value_label(v),
                    (-5, 0),
                    style.color(&WHITE).pos(Pos::new(HPos::Right, VPos::Center)),
                )
            } else {
                Text::new(
                    bar_value_label(v),
                    (5, 0),
                    style
                        .color(&RGBColor(30, 30, 30))
                        .pos(Pos::new(HPos::Left, VPos::Center)),
                )
            };
            cc.draw_series(std::iter::once(EmptyElement::at((shown, y_mid)) + text))
                .map_err(pe)?;
        }
    }
    if let Some(b) = &chart.bound {
        let grey = RGBColor(60, 60, 60);
        cc.draw_series(DashedLineSeries::new(
            vec![(b.x, 0.0), (b.x, n as f64 + 0.15)],
            6,
            4,
            grey.stroke_width(2),
        ))
        .map_err(pe)?;
        let text = Text::new(
            b.label.clone(),
            (5, 0),
            (FAMILY, 16)
                .into_font()
                .color(&RGBColor(40, 40, 40))
                .pos(Pos::new(HPos::Left, VPos::Center)),
        );
        cc.draw_series(std::iter::once(
            EmptyElement::at((b.x, n as f64 + 0.35)) + text,
        ))
        .map_err(pe)?;
    }
    Ok(())
}

/// Text sizes below are plotters sizes: the SVG's `font-size` is the size ÷ 1.24, which with
/// DejaVu Sans gives the glyph sizes the PNGs had before they were rasterized from the SVG.
fn draw<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, chart: &Chart) -> Result<()>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE).map_err(pe)?;
    let header_h = 40 + 20 * chart.captions.len() as u32;
    let (top, body) = root.split_vertically(header_h);
    top.draw(&Text::new(
        chart.title.clone(),
        (20, 10),
        (FAMILY, 26).into_font().color(&BLACK),
    ))
    .map_err(pe)?;
    for (i, c) in chart.captions.iter().enumerate() {
        top.draw(&Text::new(
            c.clone(),
            (20, 42 + 20 * i as i32),
            (FAMILY, 16).into_font().color(&RGBColor(60, 60, 60)),
        ))
        .map_err(pe)?;
    }
    let (xr, yr) = ranges(chart);
    let mut builder = ChartBuilder::on(&body);
    builder
        .margin_left(10)
        .margin_right(30)
        .margin_bottom(10)
        .margin_top(5)
        .x_label_area_size(55)
        .y_label_area_size(85);
    let xd = decimals(xr.end - xr.start);
    let yd = decimals(yr.end - yr.start);
    let lin_x = move |v: &f64| format!("{v:.xd$}");
    let lin_y = move |v: &f64| format!("{v:.yd$}");
    let log = |v: &f64| log_tick(*v);
    match (chart.x_log, chart.y_log) {
        (false, false) => mesh_and_curves(&mut builder, xr, yr, chart, &lin_x, &lin_y),
        (false, true) => mesh_and_curves(&mut builder, xr, yr.log_scale(), chart, &lin_x, &log),
        (true, false) => mesh_and_curves(&mut builder, xr.log_scale(), yr, chart, &log, &lin_y),
        (true, true) => mesh_and_curves(
            &mut builder,
            xr.log_scale(),
            yr.log_scale(),
            chart,
            &log,
            &log,
        ),
    }
}

/// Tick label on a log axis: no decimals from 10 up.
fn log_tick(v: f64) -> String {
    if v >= 10.0 {
        format!("{v:.0}")
    } else {
        format!("{v}")
    }
}

fn mesh_and_curves<'a, DB, X, Y>(
    builder: &mut ChartBuilder<'a, '_, DB>,
    x: X,
    y: Y,
    chart: &Chart,
    xfmt: &dyn Fn(&f64) -> String,
    yfmt: &dyn Fn(&f64) -> String,
) -> Result<()>
where
    DB: DrawingBackend + 'a,
    DB::ErrorType: 'static,
    X: AsRangedCoord<Value = f64>,
    Y: AsRangedCoord<Value = f64>,
    X::CoordDescType: ValueFormatter<f64>,
    Y::CoordDescType: ValueFormatter<f64>,
{
    let mut cc = builder.build_cartesian_2d(x, y).map_err(pe)?;
    cc.configure_mesh()
        .x_desc(chart.x_label.clone())
        .y_desc(chart.y_label.clone())
        .axis_desc_style((FAMILY, 18))
        .label_style((FAMILY, 15))
        .x_label_formatter(xfmt)
        .y_label_formatter(yfmt)
        .light_line_style(RGBColor(240, 240, 240))
        .draw()
        .map_err(pe)?;
    draw_curves(&mut cc, chart)
}

fn draw_curves<'a, DB, X, Y>(
    cc: &mut ChartContext<'a, DB, Cartesian2d<X, Y>>,
    chart: &Chart,
) -> Result<()>
where
    DB: DrawingBackend + 'a,
    DB::ErrorType: 'static,
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    for c in &chart.curves {
        let color = RGBColor(c.color.0, c.color.1, c.color.2);
        let pts: Vec<(f64, f64)> = c
            .points
            .iter()
            .copied()
            .filter(|p| (!chart.y_log || p.1 > 0.0) && (!chart.x_log || p.0 > 0.0))
            .collect();
        let label = c.label.clone();
        match c.style {
            CurveStyle::Measured => {
                cc.draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))
                    .map_err(pe)?
                    .label(label)
                    .legend(move |(x, y)| {
                        EmptyElement::at((x, y))
                            + PathElement::new(vec![(-2, 0), (22, 0)], color.stroke_width(2))
                            + Circle::new((10, 0), 4, color.filled())
                    });
                let (hollow, filled): (Vec<_>, Vec<_>) =
                    pts.iter().copied().partition(|p| c.hollow.contains(p));
                cc.draw_series(filled.iter().map(|&p| Circle::new(p, 4, color.filled())))
                    .map_err(pe)?;
                cc.draw_series(hollow.iter().map(|&p| Circle::new(p, 4, WHITE.filled())))
                    .map_err(pe)?;
                cc.draw_series(
                    hollow
                        .iter()
                        .map(|&p| Circle::new(p, 4, color.stroke_width(2))),
                )
                .map_err(pe)?;
            }
            CurveStyle::Paper => {
                let style = color.mix(0.8).stroke_width(2);
                cc.draw_series(DashedLineSeries::new(pts.clone(), 7, 5, style))
                    .map_err(pe)?
                    .label(label)
                    .legend(move |(x, y)| {
                        EmptyElement::at((x, y))
                            + PathElement::new(vec![(-2, 0), (5, 0)], style)
                            + PathElement::new(vec![(15, 0), (22, 0)], style)
                            + Circle::new((10, 0), 4, color.stroke_width(1))
                    });
                cc.draw_series(
                    pts.iter()
                        .map(|&p| Circle::new(p, 4, color.stroke_width(1))),
                )
                .map_err(pe)?;
            }
            CurveStyle::Line => {
                cc.draw_series(LineSeries::new(pts, color.stroke_width(2)))
                    .map_err(pe)?
                    .label(label)
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x - 2, y), (x + 22, y)], color.stroke_width(2))
                    });
            }
        }
    }
    // Event markers: a dashed grey line each, the label at its top; labels of markers closer
    // than 15 % of the x span to the previous one go one row lower so they do not overlap.
    let (xr, yr) = ranges(chart);
    let grey = RGBColor(90, 90, 90);
    for (m, row) in marker_rows(&chart.markers, &xr) {
        let row = row as i32;
        cc.draw_series(DashedLineSeries::new(
            vec![(m.x, yr.start), (m.x, yr.end)],
            6,
            4,
            grey.stroke_width(2),
        ))
        .map_err(pe)?;
        let text = Text::new(
            m.label.clone(),
            (5, 6 + 19 * row),
            (FAMILY, 16).into_font().color(&RGBColor(40, 40, 40)),
        );
        cc.draw_series(std::iter::once(EmptyElement::at((m.x, yr.end)) + text))
            .map_err(pe)?;
    }
    // Data points as fractions of the plot area, to keep the legend off them.
    let frac = |v: f64, r: &std::ops::Range<f64>, log: bool| {
        if log {
            (v.max(f64::MIN_POSITIVE).log10() - r.start.log10()) / (r.end.log10() - r.start.log10())
        } else {
            (v - r.start) / (r.end - r.start)
        }
    };
    let fracs: Vec<(f64, f64)> = chart
        .curves
        .iter()
        .flat_map(|c| c.points.iter())
        .map(|&(x, y)| (frac(x, &xr, chart.x_log), frac(y, &yr, chart.y_log)))
        .collect();
    cc.configure_series_labels()
        .position(match legend_corner(chart.legend, &fracs) {
            LegendAt::UpperLeft => SeriesLabelPosition::UpperLeft,
            LegendAt::UpperRight => SeriesLabelPosition::UpperRight,
            LegendAt::LowerRight => SeriesLabelPosition::LowerRight,
            LegendAt::LowerLeft => SeriesLabelPosition::LowerLeft,
        })
        .margin(12)
        .legend_area_size(30)
        .label_font((FAMILY, 16))
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(120, 120, 120))
        .draw()
        .map_err(pe)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chart(y_log: bool) -> Chart {
        Chart {
            title: "t".into(),
            captions: vec!["c".into()],
            x_label: "clients".into(),
            y_label: "updates/s".into(),
            x_log: false,
            y_log,
            y_unit_range: false,
            x_from_zero: true,
            legend: LegendAt::UpperLeft,
            curves: vec![Curve {
                label: "a".into(),
                points: vec![(1.0, 3.0), (10.0, 250.0)],
                color: palette(0),
                style: CurveStyle::Measured,
                hollow: Vec::new(),
            }],
            markers: vec![],
        }
    }

    #[test]
    fn legend_avoids_the_data() {
        // Nothing in the preferred corner: keep it.
        assert_eq!(
            legend_corner(LegendAt::LowerRight, &[(0.1, 0.1), (0.5, 0.5)]),
            LegendAt::LowerRight
        );
        // A point under the preferred corner moves the legend to an empty one.
        assert_eq!(
            legend_corner(LegendAt::LowerRight, &[(0.9, 0.1), (0.1, 0.1), (0.9, 0.9)]),
            LegendAt::UpperLeft
        );
        assert_eq!(legend_corner(LegendAt::LowerLeft, &[]), LegendAt::LowerLeft);
    }

    #[test]
    fn ranges_cover_the_data() {
        let (x, y) = ranges(&chart(false));
        assert_eq!(x.start, 0.0);
        assert!((x.end - 10.5).abs() < 1e-9);
        assert!((y.end - 275.0).abs() < 1e-9);
        let (_, y) = ranges(&chart(true));
        assert_eq!((y.start, y.end), (1.0, 1000.0));
        let mut empty = chart(false);
        empty.curves.clear();
        assert_eq!(ranges(&empty), (0.0..1.0, 0.0..1.0));
        let mut cdf = chart(false);
        cdf.x_from_zero = false;
        cdf.y_unit_range = true;
        let (x, y) = ranges(&cdf);
        assert!(x.start > 0.0 && x.start < 1.0, "{x:?}");
        assert_eq!(y, 0.0..1.02);
        assert_eq!((decimals(30.0), decimals(5.0), decimals(1.02)), (0, 1, 2));
        let mut logx = chart(false);
        logx.x_log = true;
        let (x, _) = ranges(&logx);
        assert_eq!((x.start, x.end), (1.0, 10.0));
        assert!(wants_log(100.0, 6000.0) && !wants_log(100.0, 1500.0) && !wants_log(0.0, 5.0));
        assert_eq!(log_tick(1000.0), "1000");
    }

    #[test]
    fn marker_labels_stack_and_get_room_above_the_data() {
        let mut c = chart(false);
        let m = |x: f64| Marker {
            x,
            label: format!("at {x}"),
        };
        c.markers = vec![m(20.0), m(2.0), m(2.5), m(50.0)];
        let (x, y) = ranges(&c);
        // Markers widen the x range; labels of close markers go one row down.
        assert!(x.end > 50.0, "{x:?}");
        let rows: Vec<(f64, usize)> = marker_rows(&c.markers, &x)
            .iter()
            .map(|(m, r)| (m.x, *r))
            .collect();
        assert_eq!(rows, vec![(2.0, 0), (2.5, 1), (20.0, 0), (50.0, 0)]);
        // Two rows of labels need more than the usual 10 % headroom.
        let plain = ranges(&chart(false)).1;
        assert!(y.end > plain.end, "{y:?} vs {plain:?}");
        assert!(250.0 / y.end <= 1.0 - (10.0 + 38.0) / 450.0 + 1e-9, "{y:?}");
    }

    #[test]
    fn missing_fonts_give_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let e = find_font(None, &[dir.path().to_path_buf()])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("fonts-dejavu-core") && e.contains(FONT_ENV),
            "{e}"
        );
        let e = find_font(Some(&dir.path().join("nope.ttf")), &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("nope.ttf"), "{e}");
    }

    #[test]
    fn preferred_and_upright_fonts_win() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("truetype/x");
        fs::create_dir_all(&sub).unwrap();
        for n in ["Zed-Bold.ttf", "Zed.ttf", "readme.txt"] {
            fs::write(sub.join(n), b"").unwrap();
        }
        let dirs = [dir.path().to_path_buf()];
        assert_eq!(find_font(None, &dirs).unwrap(), sub.join("Zed.ttf"));
        fs::write(sub.join("DejaVuSans.ttf"), b"").unwrap();
        assert_eq!(find_font(None, &dirs).unwrap(), sub.join("DejaVuSans.ttf"));
    }

    #[test]
    fn invalid_font_files_are_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bad.ttf");
        fs::write(&p, b"not a font").unwrap();
        let e = ChartFont::load(&p).unwrap_err().to_string();
        assert!(e.contains("bad.ttf") && e.contains("not a usable"), "{e}");
        let e = ChartFont::load(&dir.path().join("gone.ttf"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("gone.ttf"), "{e}");
    }

    /// The system font the report would use; the tests that draw need one (Debian:
    /// fonts-dejavu-core), as `analysis report` does.
    fn system_font() -> ChartFont {
        let path = find_font(None, &default_font_dirs()).expect(
            "drawing tests need a TrueType font (Debian: apt-get install fonts-dejavu-core)",
        );
        ChartFont::load(&path).unwrap()
    }

    #[test]
    fn plots_are_byte_for_byte_reproducible() {
        let font = system_font();
        assert!(!font.family().is_empty());
        let mut c = chart(false);
        c.title = "Throughput — BFT vs Steward ≤ ×".into();
        c.markers = vec![Marker {
            x: 5.0,
            label: "kill s0.0".into(),
        }];
        let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
        let mut outputs = Vec::new();
        for d in &dirs {
            // A fresh font load each time, as a separate `analysis report` run would do.
            let font = ChartFont::load(font.path()).unwrap();
            let (svg, png) = render(&c, &d.path().join("x"), &font).unwrap();
            outputs.push((fs::read(svg).unwrap(), fs::read(png).unwrap()));
        }
        assert_eq!(outputs[0].0, outputs[1].0, "SVG bytes differ");
        assert_eq!(outputs[0].1, outputs[1].1, "PNG bytes differ");
        assert_eq!(&outputs[0].1[1..4], b"PNG");
        let svg = String::from_utf8(outputs[0].0.clone()).unwrap();
        assert!(
            svg.contains("kill s0.0") && svg.contains("updates/s"),
            "{svg}"
        );
        // A different chart gives a different picture (the comparison above can fail).
        c.title = "another title".into();
        let d = tempfile::tempdir().unwrap();
        let (_, png) = render(&c, &d.path().join("x"), &font).unwrap();
        assert_ne!(fs::read(png).unwrap(), outputs[0].1);
    }

    fn bars(categories: usize, series: usize) -> BarChart {
        BarChart {
            title: "damage".into(),
            captions: vec!["c".into()],
            x_label: "ratio".into(),
            categories: (0..categories).map(|i| format!("attack-{i}")).collect(),
            series: (0..series)
                .map(|k| BarSeries {
                    label: format!("proto{k}"),
                    color: palette(k),
                    values: (0..categories)
                        .map(|i| (i != 1 || k == 0).then_some(0.2 + 0.14 * i as f64))
                        .collect(),
                })
                .collect(),
            x_max: 1.05,
            bound: Some(Marker {
                x: 0.5,
                label: "acceptance bound".into(),
            }),
        }
    }

    #[test]
    fn bar_charts_label_rows_bars_and_the_bound() {
        let font = system_font();
        assert_eq!(bar_chart_height(&bars(3, 2)), HEIGHT);
        assert!(bar_chart_height(&bars(30, 2)) > HEIGHT + 500);
        let svg = bar_chart_svg(&bars(3, 2), &font).unwrap();
        for want in [
            "attack-0",
            "attack-2",
            "acceptance bound",
            "proto1",
            "no run",
            "0.40",
        ] {
            assert!(svg.contains(want), "{want} missing");
        }
        // One "no run": attack-1 has no bar of the second series.
        assert_eq!(svg.matches("no run").count(), 1);
        // 0.48 ends just left of the bound, so its label goes inside the bar, in white; 0.20
        // is a short bar, labelled in dark text after its end.
        let text_of = |v: &str| {
            let end = svg.find(&format!(">\n{v}\n<")).unwrap();
            let start = svg[..end].rfind("<text").unwrap();
            svg[start..end].to_string()
        };
        assert!(text_of("0.48").contains("#FFFFFF"), "{}", text_of("0.48"));
        assert!(!text_of("0.20").contains("#FFFFFF"), "{}", text_of("0.20"));
        // A single series has no legend.
        let one = bar_chart_svg(&bars(3, 1), &font).unwrap();
        assert!(!one.contains("proto0") && svg.contains("proto0"));
    }

    #[test]
    fn text_is_drawn_in_the_png() {
        // The same SVG with and without its text: the text must change pixels, so the font
        // resolved (an unresolved family would silently drop the text).
        let font = system_font();
        let with = r##"<svg width="200" height="60" xmlns="http://www.w3.org/2000/svg">
<text x="10" y="10" dy="0.76em" font-family="sans-serif" font-size="20" fill="#000000">Tick 123</text>
</svg>"##;
        let without = r##"<svg width="200" height="60" xmlns="http://www.w3.org/2000/svg"></svg>"##;
        let dark = |png: Vec<u8>| {
            let img = tiny_skia::Pixmap::decode_png(&png).unwrap();
            img.pixels().iter().filter(|p| p.red() < 128).count()
        };
        assert_eq!(dark(svg_to_png(without, &font).unwrap()), 0);
        let n = dark(svg_to_png(with, &font).unwrap());
        assert!(n > 100, "only {n} dark pixels: text not drawn");
        // Any family name falls back to the loaded font.
        let named = with.replace("sans-serif", "No Such Family");
        assert_eq!(
            svg_to_png(&named, &font).unwrap(),
            svg_to_png(with, &font).unwrap()
        );
    }
}
