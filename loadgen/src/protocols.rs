//! The `--protocol steward | pbft | both` choice of the subcommands that can run either
//! protocol or both (`simulate`, `local`, `campaign`).

use steward_config::Protocol;

/// Protocol selection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ProtocolSelection {
    /// Steward.
    Steward,
    /// Flat PBFT.
    Pbft,
    /// Both, on the same topology and client counts (and, simulated, the same seed).
    Both,
}

impl ProtocolSelection {
    /// The protocols to run, in order (Steward first).
    pub fn protocols(self) -> Vec<Protocol> {
        match self {
            ProtocolSelection::Steward => vec![Protocol::Steward],
            ProtocolSelection::Pbft => vec![Protocol::Pbft],
            ProtocolSelection::Both => Protocol::ALL.to_vec(),
        }
    }

    /// The one protocol selected, or `None` for `both`.
    pub fn single(self) -> Option<Protocol> {
        match self {
            ProtocolSelection::Steward => Some(Protocol::Steward),
            ProtocolSelection::Pbft => Some(Protocol::Pbft),
            ProtocolSelection::Both => None,
        }
    }
}

impl From<Protocol> for ProtocolSelection {
    fn from(p: Protocol) -> ProtocolSelection {
        match p {
            Protocol::Steward => ProtocolSelection::Steward,
            Protocol::Pbft => ProtocolSelection::Pbft,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::ValueEnum;

    #[test]
    fn spellings_and_protocols() {
        let names: Vec<String> = ProtocolSelection::value_variants()
            .iter()
            .map(|s| s.to_possible_value().unwrap().get_name().to_string())
            .collect();
        assert_eq!(names, ["steward", "pbft", "both"]);
        assert_eq!(
            ProtocolSelection::Both.protocols(),
            [Protocol::Steward, Protocol::Pbft]
        );
        for p in Protocol::ALL {
            let s = ProtocolSelection::from(p);
            assert_eq!(s.protocols(), [p]);
            assert_eq!(s.single(), Some(p));
            assert_eq!(s.to_possible_value().unwrap().get_name(), p.name());
        }
        assert_eq!(ProtocolSelection::Both.single(), None);
    }
}
