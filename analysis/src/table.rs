//! A plain table of strings, written as CSV or as a Markdown table.

use std::path::Path;

use anyhow::{Context, Result};

/// Rows of cells under a header.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Table {
    /// Column names.
    pub header: Vec<String>,
    /// Rows; each has as many cells as the header.
    pub rows: Vec<Vec<String>>,
}

impl Table {
    /// An empty table with these column names.
    pub fn new<S: AsRef<str>>(header: &[S]) -> Table {
        Table {
            header: header.iter().map(|s| s.as_ref().to_string()).collect(),
            rows: Vec::new(),
        }
    }

    /// Append a row; shorter rows are padded with empty cells, longer ones cut.
    pub fn push(&mut self, mut row: Vec<String>) {
        row.resize(self.header.len(), String::new());
        self.rows.push(row);
    }

    /// Whether the table has no rows.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The table as GitHub-flavoured Markdown (pipes in cells escaped).
    pub fn to_markdown(&self) -> String {
        let esc = |s: &str| s.replace('|', "\\|");
        let mut out = String::new();
        out.push_str(&format!(
            "| {} |\n",
            self.header
                .iter()
                .map(|h| esc(h))
                .collect::<Vec<_>>()
                .join(" | ")
        ));
        out.push_str(&format!(
            "|{}\n",
            self.header.iter().map(|_| "---|").collect::<String>()
        ));
        for r in &self.rows {
            out.push_str(&format!(
                "| {} |\n",
                r.iter().map(|c| esc(c)).collect::<Vec<_>>().join(" | ")
            ));
        }
        out
    }

    /// Write the table as CSV (header first).
    pub fn write_csv(&self, path: &Path) -> Result<()> {
        let mut w = csv::Writer::from_path(path)
            .with_context(|| format!("{}: cannot create", path.display()))?;
        w.write_record(&self.header)
            .with_context(|| format!("{}: cannot write", path.display()))?;
        for r in &self.rows {
            w.write_record(r)
                .with_context(|| format!("{}: cannot write", path.display()))?;
        }
        w.flush()
            .with_context(|| format!("{}: cannot write", path.display()))?;
        Ok(())
    }
}

/// Format a number with `digits` decimals; empty for `None`.
pub fn num(v: Option<f64>, digits: usize) -> String {
    v.map(|v| format!("{v:.digits$}")).unwrap_or_default()
}

/// Format a ratio as `1.23`; empty for `None`.
pub fn ratio(v: Option<f64>) -> String {
    num(v, 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_and_csv() {
        let mut t = Table::new(&["a", "b|c"]);
        t.push(vec!["1".into()]);
        t.push(vec!["x|y".into(), "2".into(), "dropped".into()]);
        assert_eq!(
            t.to_markdown(),
            "| a | b\\|c |\n|---|---|\n| 1 |  |\n| x\\|y | 2 |\n"
        );
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.csv");
        t.write_csv(&p).unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "a,b|c\n1,\nx|y,2\n");
        assert_eq!(num(Some(1.234), 1), "1.2");
        assert_eq!(ratio(None), "");
        let e = t
            .write_csv(&dir.path().join("missing/t.csv"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing/t.csv"), "{e}");
    }
}
