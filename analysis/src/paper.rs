//! The paper's plotted data (DSN 2006 Figs. 1–8), embedded from `analysis/paper/*.csv`.
//!
//! Each file starts with `#` comment lines naming the source, then the header
//! `figure,series,x,y,unit` and one line per plotted point. See `analysis/paper/README.md`.

use std::collections::BTreeSet;

use anyhow::{anyhow, bail, Result};

/// What a figure's y axis shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Metric {
    /// Operations per second.
    Throughput,
    /// Mean latency in milliseconds.
    Latency,
}

/// What a figure's x axis shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XAxis {
    /// Number of closed-loop clients.
    Clients,
    /// Percentage of operations that are write updates (10 clients).
    WritePct,
}

/// Static facts about one of the paper's figures.
#[derive(Clone, Copy, Debug)]
pub struct FigureInfo {
    /// DSN 2006 figure number (1–8).
    pub number: u8,
    /// Identifier used in data files and `fidelity.csv`: `dsn06-fig<N>`.
    pub id: &'static str,
    /// The same figure in the TDSC 2010 version.
    pub tdsc: &'static str,
    /// Short title.
    pub title: &'static str,
    /// The y axis.
    pub metric: Metric,
    /// The x axis.
    pub x_axis: XAxis,
    /// Unit of the y values.
    pub unit: &'static str,
}

/// The eight figures of the evaluation, DSN06 numbering (TDSC numbers from steward.md §13).
pub const FIGURES: [FigureInfo; 8] = [
    FigureInfo {
        number: 1,
        id: "dsn06-fig1",
        tdsc: "TDSC Fig. 4",
        title: "Update throughput vs clients, symmetric 50 ms links",
        metric: Metric::Throughput,
        x_axis: XAxis::Clients,
        unit: "updates/s",
    },
    FigureInfo {
        number: 2,
        id: "dsn06-fig2",
        tdsc: "TDSC Fig. 5",
        title: "Update latency vs clients, symmetric 50 ms links",
        metric: Metric::Latency,
        x_axis: XAxis::Clients,
        unit: "ms",
    },
    FigureInfo {
        number: 3,
        id: "dsn06-fig3",
        tdsc: "TDSC Fig. 6",
        title: "Update/query mix throughput, 10 clients, 10 Mbit/s",
        metric: Metric::Throughput,
        x_axis: XAxis::WritePct,
        unit: "actions/s",
    },
    FigureInfo {
        number: 4,
        id: "dsn06-fig4",
        tdsc: "TDSC Fig. 7",
        title: "Update/query mix latency, 10 clients, 10 Mbit/s",
        metric: Metric::Latency,
        x_axis: XAxis::WritePct,
        unit: "ms",
    },
    FigureInfo {
        number: 5,
        id: "dsn06-fig5",
        tdsc: "TDSC Fig. 8, Planetlab curves",
        title: "Planetlab emulation: update throughput vs clients",
        metric: Metric::Throughput,
        x_axis: XAxis::Clients,
        unit: "updates/s",
    },
    FigureInfo {
        number: 6,
        id: "dsn06-fig6",
        tdsc: "TDSC Fig. 9, Planetlab curves",
        title: "Planetlab emulation: update latency vs clients",
        metric: Metric::Latency,
        x_axis: XAxis::Clients,
        unit: "ms",
    },
    FigureInfo {
        number: 7,
        id: "dsn06-fig7",
        tdsc: "TDSC Fig. 8, CAIRN curves",
        title: "CAIRN emulation: update throughput vs clients",
        metric: Metric::Throughput,
        x_axis: XAxis::Clients,
        unit: "updates/s",
    },
    FigureInfo {
        number: 8,
        id: "dsn06-fig8",
        tdsc: "TDSC Fig. 9, CAIRN curves",
        title: "CAIRN emulation: update latency vs clients",
        metric: Metric::Latency,
        x_axis: XAxis::Clients,
        unit: "ms",
    },
];

/// Facts about DSN06 figure `number` (1–8).
pub fn figure(number: u8) -> Option<&'static FigureInfo> {
    FIGURES.iter().find(|f| f.number == number)
}

/// The embedded data files: (file name, contents).
pub const FILES: [(&str, &str); 8] = [
    ("dsn06-fig1.csv", include_str!("../paper/dsn06-fig1.csv")),
    ("dsn06-fig2.csv", include_str!("../paper/dsn06-fig2.csv")),
    ("dsn06-fig3.csv", include_str!("../paper/dsn06-fig3.csv")),
    ("dsn06-fig4.csv", include_str!("../paper/dsn06-fig4.csv")),
    ("dsn06-fig5.csv", include_str!("../paper/dsn06-fig5.csv")),
    ("dsn06-fig6.csv", include_str!("../paper/dsn06-fig6.csv")),
    ("dsn06-fig7.csv", include_str!("../paper/dsn06-fig7.csv")),
    ("dsn06-fig8.csv", include_str!("../paper/dsn06-fig8.csv")),
];

/// One plotted point.
#[derive(Clone, Debug, PartialEq)]
pub struct PaperPoint {
    /// `dsn06-fig<N>`.
    pub figure: String,
    /// Series as in the paper's legend, e.g. `steward-10mbps`, `bft`.
    pub series: String,
    /// Clients or write percentage.
    pub x: f64,
    /// Throughput or latency.
    pub y: f64,
    /// Unit of `y`.
    pub unit: String,
}

/// All the paper's plotted points.
#[derive(Clone, Debug, Default)]
pub struct PaperData {
    /// Points in file order.
    pub points: Vec<PaperPoint>,
}

impl PaperData {
    /// The data embedded in the binary.
    pub fn embedded() -> Result<PaperData> {
        let mut points = Vec::new();
        for (name, text) in FILES {
            points.extend(parse_paper_csv(text, name)?);
        }
        Ok(PaperData { points })
    }

    /// The (x, y) points of one series of DSN06 figure `number`, sorted by x.
    pub fn series(&self, number: u8, series: &str) -> Vec<(f64, f64)> {
        let id = format!("dsn06-fig{number}");
        let mut v: Vec<(f64, f64)> = self
            .points
            .iter()
            .filter(|p| p.figure == id && p.series == series)
            .map(|p| (p.x, p.y))
            .collect();
        v.sort_by(|a, b| a.0.total_cmp(&b.0));
        v
    }

    /// Series names of DSN06 figure `number`, sorted.
    pub fn series_names(&self, number: u8) -> Vec<String> {
        let id = format!("dsn06-fig{number}");
        self.points
            .iter()
            .filter(|p| p.figure == id)
            .map(|p| p.series.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect()
    }

    /// The highest y of a series and the x where it occurs (the first such x).
    pub fn peak(&self, number: u8, series: &str) -> Option<(f64, f64)> {
        peak_of(&self.series(number, series))
    }
}

/// The (x, y) with the largest y (the first one on ties), if any.
pub fn peak_of(points: &[(f64, f64)]) -> Option<(f64, f64)> {
    points
        .iter()
        .copied()
        .fold(None, |best: Option<(f64, f64)>, p| match best {
            Some(b) if b.1 >= p.1 => Some(b),
            _ => Some(p),
        })
}

/// Parse one paper data file. `origin` names it in error messages.
pub fn parse_paper_csv(text: &str, origin: &str) -> Result<Vec<PaperPoint>> {
    let mut rdr = csv::ReaderBuilder::new()
        .comment(Some(b'#'))
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let headers = rdr
        .headers()
        .map_err(|e| anyhow!("{origin}: cannot read the header: {e}"))?
        .clone();
    let expected = ["figure", "series", "x", "y", "unit"];
    if headers.iter().collect::<Vec<_>>() != expected {
        bail!(
            "{origin}: header must be `{}`, found `{}`",
            expected.join(","),
            headers.iter().collect::<Vec<_>>().join(",")
        );
    }
    let mut out = Vec::new();
    for rec in rdr.records() {
        let rec = rec.map_err(|e| anyhow!("{origin}: {e}"))?;
        let line = rec.position().map(|p| p.line()).unwrap_or(0);
        let num = |i: usize, name: &str| -> Result<f64> {
            let s = rec.get(i).unwrap_or("");
            s.parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .ok_or_else(|| anyhow!("{origin}: line {line}: `{name}` {s:?} is not a number"))
        };
        out.push(PaperPoint {
            figure: rec.get(0).unwrap_or("").to_string(),
            series: rec.get(1).unwrap_or("").to_string(),
            x: num(2, "x")?,
            y: num(3, "y")?,
            unit: rec.get(4).unwrap_or("").to_string(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_data_matches_the_reference() {
        let p = PaperData::embedded().unwrap();
        // Point counts per figure (steward.md §13: 30 points per full curve, shorter BFT
        // curves).
        let count = |n: u8| {
            p.points
                .iter()
                .filter(|q| q.figure == format!("dsn06-fig{n}"))
                .count()
        };
        assert_eq!(
            [1, 2, 3, 4, 5, 6, 7, 8].map(count),
            [159, 146, 21, 22, 49, 44, 37, 35]
        );
        assert_eq!(
            p.series_names(1),
            vec![
                "bft-10mbps",
                "bft-2.5mbps",
                "bft-5mbps",
                "steward-10mbps",
                "steward-2.5mbps",
                "steward-5mbps"
            ]
        );
        // Spot checks against the reference tables.
        let at =
            |n: u8, s: &str, x: f64| p.series(n, s).into_iter().find(|q| q.0 == x).map(|q| q.1);
        assert_eq!(at(1, "bft-10mbps", 25.0), Some(58.2));
        assert_eq!(at(2, "bft-2.5mbps", 5.0), Some(846.2));
        assert_eq!(at(2, "bft-2.5mbps", 6.0), None);
        assert_eq!(at(3, "steward", 0.0), None);
        assert_eq!(at(4, "steward", 0.0), Some(2.9));
        assert_eq!(at(6, "bft", 1.0), Some(631.5));
        assert_eq!(at(8, "steward", 30.0), Some(572.6));
        assert_eq!(p.peak(7, "bft"), Some((5.0, 2.7)));
        assert_eq!(p.peak(5, "steward"), Some((28.0, 84.6)));
        // Every file names its source.
        for (name, text) in FILES {
            assert!(text.contains("DSN 2006"), "{name}");
            assert!(text.contains("TDSC"), "{name}");
        }
    }

    #[test]
    fn bad_paper_files_are_reported() {
        let e = parse_paper_csv("a,b\n1,2\n", "f.csv")
            .unwrap_err()
            .to_string();
        assert!(e.contains("f.csv") && e.contains("header"), "{e}");
        let e = parse_paper_csv(
            "# c\nfigure,series,x,y,unit\ndsn06-fig1,s,1,oops,ms\n",
            "f.csv",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("line 3") && e.contains("`y`"), "{e}");
    }

    #[test]
    fn peaks_pick_the_first_maximum() {
        assert_eq!(peak_of(&[]), None);
        assert_eq!(
            peak_of(&[(1.0, 2.0), (2.0, 5.0), (3.0, 5.0)]),
            Some((2.0, 5.0))
        );
        assert!(figure(9).is_none());
        assert_eq!(figure(3).unwrap().x_axis, XAxis::WritePct);
    }
}
