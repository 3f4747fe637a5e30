//! Identifiers of sites and Steward servers.

use std::fmt;
use std::str::FromStr;

/// A site, as its 0-based position in the topology file's `[[site]]` list.
///
/// Site 0 is the first site of the file; by convention it is Steward's initial leader site.
#[derive(Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct SiteId(pub u16);

impl SiteId {
    /// The site's position in [`crate::Topology::sites`].
    pub fn index(self) -> usize {
        usize::from(self.0)
    }
}

impl fmt::Display for SiteId {
    /// The bare number, for example `3`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// One Steward server: the `index`-th server (0-based) of site `site`.
///
/// Written `s{site}.{index}`, for example `s0.3` for the fourth server of site 0; [`ServerId::parse`]
/// reads the same form back. The serde representation is that string.
#[derive(Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct ServerId {
    /// The site the server belongs to.
    pub site: SiteId,
    /// The server's index within its site, `0..site.servers`.
    pub index: u32,
}

impl ServerId {
    /// The server `index` of site `site`.
    pub fn new(site: SiteId, index: u32) -> Self {
        ServerId { site, index }
    }

    /// Reads the `s{site}.{index}` form written by `Display` (for example `s0.3`).
    ///
    /// Only the canonical form is accepted: decimal digits without sign, spaces or leading zeros.
    /// Whether the server exists in a given topology is checked by
    /// [`crate::Topology::has_server`], not here.
    pub fn parse(text: &str) -> Result<ServerId, ParseServerIdError> {
        let bad = || ParseServerIdError {
            text: text.to_string(),
        };
        let rest = text.strip_prefix('s').ok_or_else(bad)?;
        let (site, index) = rest.split_once('.').ok_or_else(bad)?;
        let site: u16 = canonical_number(site).ok_or_else(bad)?;
        let index: u32 = canonical_number(index).ok_or_else(bad)?;
        Ok(ServerId {
            site: SiteId(site),
            index,
        })
    }
}

/// Parses a canonical unsigned decimal: digits only, no leading zero unless the number is `0`.
fn canonical_number<T: FromStr>(text: &str) -> Option<T> {
    let digits_only = !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
    let no_leading_zero = text == "0" || !text.starts_with('0');
    if digits_only && no_leading_zero {
        text.parse().ok()
    } else {
        None
    }
}

impl fmt::Display for ServerId {
    /// `s{site}.{index}`, for example `s0.3`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s{}.{}", self.site.0, self.index)
    }
}

impl FromStr for ServerId {
    type Err = ParseServerIdError;

    /// Same as [`ServerId::parse`].
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        ServerId::parse(text)
    }
}

impl serde::Serialize for ServerId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for ServerId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        ServerId::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// A string that is not of the form `s{site}.{index}`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid server id {text:?}: expected s<site>.<index>, for example \"s0.3\"")]
pub struct ParseServerIdError {
    text: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_and_parse() {
        let id = ServerId::new(SiteId(0), 3);
        assert_eq!(id.to_string(), "s0.3");
        assert_eq!(ServerId::parse("s0.3"), Ok(id));
        assert_eq!(
            "s65535.4294967295".parse::<ServerId>().unwrap().site,
            SiteId(65535)
        );
        for bad in [
            "",
            "s",
            "s0",
            "s0.",
            "s.1",
            "0.1",
            "S0.1",
            "s-1.2",
            "s+1.2",
            "s01.2",
            "s1.02",
            "s1.2.3",
            "s65536.0",
            "s0.4294967296",
            " s0.1",
            "s0.1 ",
        ] {
            assert!(ServerId::parse(bad).is_err(), "{bad:?} should not parse");
        }
        let e = ServerId::parse("x").unwrap_err();
        assert!(e.to_string().contains("\"x\""));
    }

    #[test]
    fn serde_uses_the_string_form() {
        use serde::de::IntoDeserializer;
        use serde::Deserialize;
        let id = ServerId::new(SiteId(2), 15);
        assert_eq!(
            toml::Value::try_from(id).unwrap(),
            toml::Value::String("s2.15".into())
        );
        let de = "s2.15".into_deserializer();
        let back: Result<ServerId, serde::de::value::Error> = ServerId::deserialize(de);
        assert_eq!(back, Ok(id));
        let de = "2.15".into_deserializer();
        let bad: Result<ServerId, serde::de::value::Error> = ServerId::deserialize(de);
        assert!(bad.is_err());
    }

    #[test]
    fn ordering_is_site_then_index() {
        let a = ServerId::new(SiteId(0), 9);
        let b = ServerId::new(SiteId(1), 0);
        assert!(a < b);
        assert_eq!(SiteId(7).to_string(), "7");
        assert_eq!(SiteId(7).index(), 7);
    }
}
