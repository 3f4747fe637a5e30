//! The one error type of this crate.

/// Why a topology file could not be loaded.
///
/// Its `Display` is one line meant for people: the file, where in the file, and what is wrong,
/// for example
///
/// ```text
/// topologies/x.toml: site[2].servers: 3 servers cannot tolerate f = 1 (need at least 3f+1 = 4)
/// topologies/x.toml: wan.link[3].between: unknown site "mars"
/// topologies/x.toml: line 7, column 12: invalid TOML: expected `.`, `=`
/// ```
///
/// Field paths use dots for tables and `[i]` (0-based) for array elements, exactly as the keys
/// appear in the file (`site[0].f`, `wan.link[1].bandwidth`, `pbft.servers_per_site.us`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", render(.origin, .position, .field, .reason))]
pub struct ConfigError {
    origin: String,
    position: Option<(usize, usize)>,
    field: Option<String>,
    reason: String,
}

fn render(
    origin: &str,
    position: &Option<(usize, usize)>,
    field: &Option<String>,
    reason: &str,
) -> String {
    let mut out = String::from(origin);
    if let Some((line, column)) = position {
        out.push_str(&format!(": line {line}, column {column}"));
    }
    if let Some(field) = field {
        out.push_str(": ");
        out.push_str(field);
    }
    out.push_str(": ");
    out.push_str(reason);
    out
}

impl ConfigError {
    /// An error about the field at `field` (a path such as `site[2].servers`).
    pub(crate) fn field(origin: &str, field: impl Into<String>, reason: impl Into<String>) -> Self {
        ConfigError {
            origin: origin.to_string(),
            position: None,
            field: Some(field.into()),
            reason: reason.into(),
        }
    }

    /// An error about the file as a whole (for example: it cannot be read).
    pub(crate) fn file(origin: &str, reason: impl Into<String>) -> Self {
        ConfigError {
            origin: origin.to_string(),
            position: None,
            field: None,
            reason: reason.into(),
        }
    }

    /// A TOML syntax error at a 1-based line and column.
    pub(crate) fn syntax(
        origin: &str,
        line: usize,
        column: usize,
        reason: impl Into<String>,
    ) -> Self {
        ConfigError {
            origin: origin.to_string(),
            position: Some((line, column)),
            field: None,
            reason: reason.into(),
        }
    }

    /// The file name (or other origin) given to the loader.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The path of the offending field (`site[2].servers`), if the error is about one field.
    pub fn field_path(&self) -> Option<&str> {
        self.field.as_deref()
    }

    /// The 1-based line of a TOML syntax error.
    pub fn line(&self) -> Option<usize> {
        self.position.map(|(line, _)| line)
    }

    /// What is wrong, without the file and field.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_forms() {
        let e = ConfigError::field("x.toml", "site[2].servers", "too few");
        assert_eq!(e.to_string(), "x.toml: site[2].servers: too few");
        assert_eq!(e.field_path(), Some("site[2].servers"));
        let e = ConfigError::file("x.toml", "cannot read");
        assert_eq!(e.to_string(), "x.toml: cannot read");
        let e = ConfigError::syntax("x.toml", 3, 7, "invalid TOML: oops");
        assert_eq!(
            e.to_string(),
            "x.toml: line 3, column 7: invalid TOML: oops"
        );
        assert_eq!(e.line(), Some(3));
    }
}
