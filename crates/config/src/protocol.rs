//! The replication protocols of the suite.

use std::fmt;
use std::str::FromStr;

/// A replication protocol: hierarchical Steward or the flat PBFT baseline.
///
/// Written as its lowercase [`name`](Protocol::name) (`steward`, `pbft`) everywhere: `Display`,
/// the serde representation, results files and command lines. [`FromStr`] (and deserialization)
/// accept any case. With this crate's `clap` feature it is a `clap::ValueEnum` whose values are
/// the names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    /// Steward (hierarchical).
    Steward,
    /// Flat PBFT.
    Pbft,
}

impl Protocol {
    /// Every protocol, Steward first.
    pub const ALL: [Protocol; 2] = [Protocol::Steward, Protocol::Pbft];

    /// "steward" or "pbft".
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Steward => "steward",
            Protocol::Pbft => "pbft",
        }
    }
}

impl fmt::Display for Protocol {
    /// The [`name`](Protocol::name); honours width and alignment (`{:<8}`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

impl FromStr for Protocol {
    type Err = ParseProtocolError;

    /// A protocol's name in any case: `steward`, `PBFT`, ...
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Protocol::ALL
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(text))
            .ok_or_else(|| ParseProtocolError {
                text: text.to_string(),
            })
    }
}

impl serde::Serialize for Protocol {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl<'de> serde::Deserialize<'de> for Protocol {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(feature = "clap")]
impl clap::ValueEnum for Protocol {
    fn value_variants<'a>() -> &'a [Self] {
        &Protocol::ALL
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(clap::builder::PossibleValue::new(self.name()))
    }
}

/// A string that names no [`Protocol`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown protocol {text:?}: expected {}", expected())]
pub struct ParseProtocolError {
    text: String,
}

/// "steward or pbft".
fn expected() -> String {
    let names: Vec<&str> = Protocol::ALL.iter().map(|p| p.name()).collect();
    names.join(" or ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Doc {
        protocols: Vec<Protocol>,
    }

    #[test]
    fn names_display_and_parse_round_trip() {
        assert_eq!(Protocol::ALL, [Protocol::Steward, Protocol::Pbft]);
        for p in Protocol::ALL {
            assert_eq!(p.to_string(), p.name());
            assert_eq!(p.name().parse::<Protocol>(), Ok(p));
            assert_eq!(p.name().to_ascii_uppercase().parse::<Protocol>(), Ok(p));
        }
        assert_eq!(Protocol::Steward.name(), "steward");
        assert_eq!(Protocol::Pbft.name(), "pbft");
        assert_eq!("Steward".parse::<Protocol>(), Ok(Protocol::Steward));
        assert_eq!(format!("[{:<8}]", Protocol::Pbft), "[pbft    ]");
    }

    #[test]
    fn bad_names_are_rejected_with_the_value_and_the_accepted_ones() {
        for bad in ["", "raft", "bft", " pbft", "steward ", "both"] {
            let e = bad.parse::<Protocol>().unwrap_err();
            assert_eq!(
                e.to_string(),
                format!("unknown protocol {bad:?}: expected steward or pbft")
            );
        }
    }

    #[test]
    fn serde_uses_the_lowercase_name() {
        let doc = Doc {
            protocols: vec![Protocol::Steward, Protocol::Pbft],
        };
        let text = toml::to_string(&doc).unwrap();
        assert_eq!(text.trim(), r#"protocols = ["steward", "pbft"]"#);
        assert_eq!(toml::from_str::<Doc>(&text).unwrap(), doc);
        let mixed: Doc = toml::from_str(r#"protocols = ["PBFT", "Steward"]"#).unwrap();
        assert_eq!(mixed.protocols, [Protocol::Pbft, Protocol::Steward]);
        let e = toml::from_str::<Doc>(r#"protocols = ["raft"]"#).unwrap_err();
        assert!(
            e.to_string()
                .contains(r#"unknown protocol "raft": expected steward or pbft"#),
            "{e}"
        );
    }

    #[cfg(feature = "clap")]
    #[test]
    fn clap_values_are_the_names() {
        use clap::ValueEnum;
        let names: Vec<String> = Protocol::value_variants()
            .iter()
            .map(|p| p.to_possible_value().unwrap().get_name().to_string())
            .collect();
        assert_eq!(names, ["steward", "pbft"]);
        assert_eq!(
            <Protocol as ValueEnum>::from_str("pbft", false),
            Ok(Protocol::Pbft)
        );
        assert!(<Protocol as ValueEnum>::from_str("PBFT", false).is_err());
    }
}
