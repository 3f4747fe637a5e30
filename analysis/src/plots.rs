//! Line charts rendered with plotters to SVG and PNG.
//!
//! A [`Chart`] describes a plot independently of the backend; [`render`] draws it twice, to
//! `<stem>.svg` and `<stem>.png`. A font must have been registered first (see [`crate::font`]).

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Result};
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::coord::Shift;
use plotters::prelude::*;
use steward_config::Protocol;

use crate::experiment::protocol_of;
use crate::font::{registered, registered_font, FAMILY};
use crate::raster::TextFixBackend;

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
    let pts = || chart.curves.iter().flat_map(|c| c.points.iter().copied());
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
        0.0..ymax * 1.1
    } else {
        0.0..1.0
    };
    (x0..x1, y)
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

/// Draw `chart` to `<stem>.svg` and `<stem>.png`; returns both paths.
pub fn render(chart: &Chart, stem: &Path) -> Result<(PathBuf, PathBuf)> {
    if registered().is_none() {
        bail!("no font registered for the plots");
    }
    let svg = stem.with_extension("svg");
    let png = stem.with_extension("png");
    {
        let root = SVGBackend::new(&svg, (WIDTH, HEIGHT)).into_drawing_area();
        draw(&root, chart).map_err(|e| anyhow!("{}: {e}", svg.display()))?;
        root.present()
            .map_err(|e| anyhow!("{}: cannot write: {e}", svg.display()))?;
    }
    {
        let font = registered_font().ok_or_else(|| anyhow!("no font registered for the plots"))?;
        let backend = TextFixBackend::new(BitMapBackend::new(&png, (WIDTH, HEIGHT)), font);
        let root = backend.into_drawing_area();
        draw(&root, chart).map_err(|e| anyhow!("{}: {e}", png.display()))?;
        root.present()
            .map_err(|e| anyhow!("{}: cannot write: {e}", png.display()))?;
    }
    Ok((svg, png))
}

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
        (FAMILY, 24).into_font().color(&BLACK),
    ))
    .map_err(pe)?;
    for (i, c) in chart.captions.iter().enumerate() {
        top.draw(&Text::new(
            c.clone(),
            (20, 42 + 20 * i as i32),
            (FAMILY, 15).into_font().color(&RGBColor(60, 60, 60)),
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
        .axis_desc_style((FAMILY, 17))
        .label_style((FAMILY, 14))
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
                cc.draw_series(pts.iter().map(|&p| Circle::new(p, 4, color.filled())))
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
    // Data points as fractions of the plot area, to keep the legend off them.
    let (xr, yr) = ranges(chart);
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
        .label_font((FAMILY, 15))
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
            }],
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
}
