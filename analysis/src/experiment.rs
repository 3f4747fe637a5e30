//! Which of the paper's experiments a run belongs to, and how runs are labelled.
//!
//! Topologies are mapped to experiments by name, not by a fixed list: a name containing
//! `symmetric-<bandwidth>` (e.g. `paper-symmetric-10mbps`, `local-symmetric-2500kbps`) belongs to
//! experiment 1 at that bandwidth, a name containing `planetlab` to experiment 3 and one
//! containing `cairn` to experiment 4. Anything else is kept in an "other" group.

use std::fmt;

use steward_config::Protocol;

/// One of the paper's experiments, or a topology the paper has no figure for.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Experiment {
    /// Experiments 1 and 2: 5 sites, all links 50 ms, every link of this bandwidth (kbit/s).
    Symmetric {
        /// Link bandwidth in kbit/s (10 Mbit/s = 10000).
        kbps: u64,
    },
    /// Experiment 3: the Planetlab-based 5-continent topology.
    Planetlab,
    /// Experiment 4: the CAIRN topology.
    Cairn,
    /// A topology the paper has no experiment for; holds the topology name.
    Other(String),
}

impl Experiment {
    /// Classify a topology by its name.
    pub fn from_topology(name: &str) -> Experiment {
        let lower = name.to_ascii_lowercase();
        if let Some(i) = lower.find("symmetric-") {
            let rest = &lower[i + "symmetric-".len()..];
            let token = rest.split(['-', '_', '.']).next().unwrap_or("");
            if let Some(kbps) = parse_bandwidth_kbps(token) {
                return Experiment::Symmetric { kbps };
            }
        }
        if lower.contains("planetlab") {
            Experiment::Planetlab
        } else if lower.contains("cairn") {
            Experiment::Cairn
        } else {
            Experiment::Other(name.to_string())
        }
    }

    /// Short stable key, used in file names: `symmetric-10mbps`, `symmetric-2.5mbps`,
    /// `planetlab`, `cairn`, `other-<topology>`.
    pub fn key(&self) -> String {
        match self {
            Experiment::Symmetric { kbps } => format!("symmetric-{}", bandwidth_label(*kbps)),
            Experiment::Planetlab => "planetlab".into(),
            Experiment::Cairn => "cairn".into(),
            Experiment::Other(t) => format!("other-{}", slug(t)),
        }
    }

    /// The paper's series name for a protocol in this experiment: `steward-10mbps` /
    /// `bft-2.5mbps` for experiment 1, `steward` / `bft` otherwise. PBFT is called "bft" as in
    /// the paper; other protocol names are kept.
    pub fn series(&self, protocol: &str) -> String {
        let p = paper_protocol(protocol);
        match self {
            Experiment::Symmetric { kbps } => format!("{p}-{}", bandwidth_label(*kbps)),
            _ => p,
        }
    }

    /// The DSN06 figure number of throughput vs clients for this experiment, if the paper has
    /// one.
    pub fn throughput_figure(&self) -> Option<u8> {
        match self {
            Experiment::Symmetric { .. } => Some(1),
            Experiment::Planetlab => Some(5),
            Experiment::Cairn => Some(7),
            Experiment::Other(_) => None,
        }
    }

    /// The DSN06 figure number of latency vs clients for this experiment, if the paper has one.
    pub fn latency_figure(&self) -> Option<u8> {
        self.throughput_figure().map(|f| f + 1)
    }

    /// Whether the paper ran its update/query mixes (Figs. 3–4) on this experiment
    /// (symmetric, 10 Mbit/s).
    pub fn has_mix_figures(&self) -> bool {
        matches!(self, Experiment::Symmetric { kbps: 10_000 })
    }

    /// Sort rank: the paper's order (symmetric by decreasing bandwidth, Planetlab, CAIRN),
    /// then the others by name.
    pub fn rank(&self) -> (u8, u64, String) {
        match self {
            Experiment::Symmetric { kbps } => (0, u64::MAX - kbps, String::new()),
            Experiment::Planetlab => (1, 0, String::new()),
            Experiment::Cairn => (2, 0, String::new()),
            Experiment::Other(t) => (3, 0, t.clone()),
        }
    }
}

impl fmt::Display for Experiment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Experiment::Symmetric { kbps } => {
                write!(f, "symmetric 5 sites, {} links", bandwidth_human(*kbps))
            }
            Experiment::Planetlab => write!(f, "Planetlab-based WAN"),
            Experiment::Cairn => write!(f, "CAIRN"),
            Experiment::Other(t) => write!(f, "other topology {t}"),
        }
    }
}

/// The paper's name of a protocol in its series names: `steward`, `bft`.
pub fn paper_name(protocol: Protocol) -> &'static str {
    match protocol {
        Protocol::Steward => "steward",
        Protocol::Pbft => "bft",
    }
}

/// The protocol whose paper name ([`paper_name`]) is exactly `name` (as in the protocol part of
/// a paper series name: `steward`, `bft`); `None` otherwise.
pub fn from_paper_name(name: &str) -> Option<Protocol> {
    Protocol::ALL.into_iter().find(|&p| paper_name(p) == name)
}

/// The protocol a label of our results or of the paper names: ours (`steward`, `pbft`) or the
/// paper's (`bft`), in any case; `None` for any other label.
pub fn protocol_of(label: &str) -> Option<Protocol> {
    label
        .parse()
        .ok()
        .or_else(|| from_paper_name(&label.to_ascii_lowercase()))
}

/// "pbft" → "bft" (the paper's name for the baseline); other names unchanged (lowercase).
pub fn paper_protocol(protocol: &str) -> String {
    match protocol_of(protocol) {
        Some(p) => paper_name(p).into(),
        None => protocol.to_ascii_lowercase(),
    }
}

/// Display name of a protocol: "Steward", "PBFT", or the name as given.
pub fn protocol_display(protocol: &str) -> String {
    match protocol_of(protocol) {
        Some(Protocol::Steward) => "Steward".into(),
        Some(Protocol::Pbft) => "PBFT".into(),
        None => protocol.to_string(),
    }
}

/// Parse `10mbps`, `2500kbps`, `1gbps` or `2.5mbps` into kbit/s.
pub fn parse_bandwidth_kbps(token: &str) -> Option<u64> {
    let t = token.trim().to_ascii_lowercase();
    let (num, mult) = if let Some(n) = t.strip_suffix("kbps") {
        (n, 1.0)
    } else if let Some(n) = t.strip_suffix("mbps") {
        (n, 1e3)
    } else if let Some(n) = t.strip_suffix("gbps") {
        (n, 1e6)
    } else {
        return None;
    };
    let v: f64 = num.parse().ok()?;
    let kbps = v * mult;
    (kbps.is_finite() && kbps > 0.0).then(|| kbps.round() as u64)
}

/// Bandwidth as the paper's series suffix: 10000 → `10mbps`, 2500 → `2.5mbps`, 405 → `405kbps`.
pub fn bandwidth_label(kbps: u64) -> String {
    if kbps >= 1000 {
        format!("{}mbps", trim_float(kbps as f64 / 1e3))
    } else {
        format!("{kbps}kbps")
    }
}

/// Bandwidth for people: 10000 → `10 Mbit/s`, 2500 → `2.5 Mbit/s`.
pub fn bandwidth_human(kbps: u64) -> String {
    if kbps >= 1000 {
        format!("{} Mbit/s", trim_float(kbps as f64 / 1e3))
    } else {
        format!("{kbps} kbit/s")
    }
}

fn trim_float(v: f64) -> String {
    let s = format!("{v:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// A file-name-safe version of a label: ASCII alphanumerics, `.`, `-`; everything else `-`.
pub fn slug(s: &str) -> String {
    let mut out: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    while out.contains("--") {
        out = out.replace("--", "-");
    }
    out.trim_matches('-').to_string()
}

/// The label of a run's mode used in tables and `fidelity.csv`: the mode, followed by
/// `/<costs>` for simulated runs (whose results depend on the crypto cost table), e.g.
/// `sim/paper`, `sim/measured`, `local`, `remote`. Non-simulated runs get the costs appended
/// only when it is something other than `real` or empty.
pub fn mode_label(mode: &str, costs: &str) -> String {
    let costs = costs.trim();
    if costs.is_empty() || (mode != "sim" && costs == "real") {
        mode.to_string()
    } else {
        format!("{mode}/{costs}")
    }
}

/// A human description of how the WAN and the machines were emulated, e.g.
/// "simulated, paper costs" or "local processes, userspace WAN shaper". `manifest_emulation`
/// is the manifest's free-text `emulation` field, if any.
pub fn describe_emulation(mode: &str, costs: &str, manifest_emulation: Option<&str>) -> String {
    let emu = manifest_emulation.map(str::trim).filter(|s| !s.is_empty());
    match mode {
        "sim" => {
            let costs = if costs.is_empty() { "unknown" } else { costs };
            format!("simulated, {costs} costs")
        }
        "local" => match emu {
            Some(e) if e.contains("shaper") => "local processes, userspace WAN shaper".into(),
            Some(e) if e.contains("netem") => "local processes, netem WAN emulation".into(),
            Some(e) if e.starts_with("none") || e.contains("loopback") => {
                "local processes, no WAN emulation (loopback)".into()
            }
            Some(e) => format!("local processes, {e}"),
            None => "local processes".into(),
        },
        "remote" => match emu {
            Some(e) => format!("remote hosts, {e}"),
            None => "remote hosts".into(),
        },
        other => match emu {
            Some(e) => format!("{other}, {e}"),
            None => other.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topologies_map_to_experiments_by_name() {
        assert_eq!(
            Experiment::from_topology("paper-symmetric-10mbps"),
            Experiment::Symmetric { kbps: 10_000 }
        );
        assert_eq!(
            Experiment::from_topology("local-symmetric-2500kbps"),
            Experiment::Symmetric { kbps: 2_500 }
        );
        assert_eq!(
            Experiment::from_topology("paper-symmetric-5mbps"),
            Experiment::Symmetric { kbps: 5_000 }
        );
        assert_eq!(
            Experiment::from_topology("local-planetlab"),
            Experiment::Planetlab
        );
        assert_eq!(Experiment::from_topology("paper-cairn"), Experiment::Cairn);
        assert_eq!(
            Experiment::from_topology("lab-ring"),
            Experiment::Other("lab-ring".into())
        );
        // A malformed bandwidth falls into "other" rather than failing.
        assert_eq!(
            Experiment::from_topology("symmetric-fast"),
            Experiment::Other("symmetric-fast".into())
        );
    }

    #[test]
    fn series_names_follow_the_paper() {
        let e = Experiment::Symmetric { kbps: 2_500 };
        assert_eq!(e.series("pbft"), "bft-2.5mbps");
        assert_eq!(e.series("steward"), "steward-2.5mbps");
        assert_eq!(e.key(), "symmetric-2.5mbps");
        assert_eq!(Experiment::Cairn.series("pbft"), "bft");
        assert_eq!(Experiment::Planetlab.throughput_figure(), Some(5));
        assert_eq!(Experiment::Planetlab.latency_figure(), Some(6));
        assert!(Experiment::Symmetric { kbps: 10_000 }.has_mix_figures());
        assert!(!Experiment::Symmetric { kbps: 5_000 }.has_mix_figures());
        assert_eq!(
            Experiment::Other("My Topo".into()).key(),
            "other-my-topo".to_string()
        );
    }

    #[test]
    fn protocol_labels_parse_into_protocols() {
        for (label, p) in [
            ("steward", Some(Protocol::Steward)),
            ("Steward", Some(Protocol::Steward)),
            ("pbft", Some(Protocol::Pbft)),
            ("PBFT", Some(Protocol::Pbft)),
            ("bft", Some(Protocol::Pbft)),
            ("BFT", Some(Protocol::Pbft)),
            ("raft", None),
            ("steward-10mbps", None),
            ("", None),
        ] {
            assert_eq!(protocol_of(label), p, "{label}");
        }
        assert_eq!(from_paper_name("bft"), Some(Protocol::Pbft));
        assert_eq!(from_paper_name("pbft"), None);
        assert_eq!(from_paper_name("Steward"), None);
        assert_eq!(paper_protocol("PBFT"), "bft");
        assert_eq!(paper_protocol("Steward"), "steward");
        assert_eq!(paper_protocol("Raft"), "raft");
        assert_eq!(protocol_display("bft"), "PBFT");
        assert_eq!(protocol_display("steward"), "Steward");
        assert_eq!(protocol_display("Raft"), "Raft");
    }

    #[test]
    fn bandwidths_parse_and_print() {
        assert_eq!(parse_bandwidth_kbps("2500kbps"), Some(2500));
        assert_eq!(parse_bandwidth_kbps("1gbps"), Some(1_000_000));
        assert_eq!(parse_bandwidth_kbps("10"), None);
        assert_eq!(parse_bandwidth_kbps("xmbps"), None);
        assert_eq!(bandwidth_label(405), "405kbps");
        assert_eq!(bandwidth_human(2_500), "2.5 Mbit/s");
    }

    #[test]
    fn modes_and_emulations_are_labelled() {
        assert_eq!(mode_label("sim", "paper"), "sim/paper");
        assert_eq!(mode_label("local", "real"), "local");
        assert_eq!(mode_label("local", "fast"), "local/fast");
        assert_eq!(
            describe_emulation("sim", "paper", Some("deterministic simulator")),
            "simulated, paper costs"
        );
        assert_eq!(
            describe_emulation(
                "local",
                "real",
                Some("userspace shaper (steward-net) on 127.0.0.x")
            ),
            "local processes, userspace WAN shaper"
        );
        assert_eq!(
            describe_emulation("remote", "real", Some("netem")),
            "remote hosts, netem"
        );
    }
}
