//! Inline topologies for the unit tests: a LAN of 0.1 ms at 1 Gbit/s, a WAN default and sites.

use steward_config::Topology;

/// A WAN default of 10 ms one way at 10 Mbit/s.
pub const WAN_10MS: &str = "latency_ms = 10\nbandwidth = \"10Mbps\"";

/// The text of topology `name`: the LAN, `wan` as the `[wan.default]` table, a `[[site]]` per
/// `(name, rest of its table)` of `sites`, then `rest` (the clients and PBFT tables).
pub fn text(name: &str, wan: &str, sites: &[(&str, &str)], rest: &str) -> String {
    let mut text = format!(
        "name = \"{name}\"\n[lan]\nlatency_ms = 0.1\nbandwidth = \"1Gbps\"\n[wan.default]\n{wan}\n"
    );
    for (site, table) in sites {
        text += &format!("[[site]]\nname = \"{site}\"\n{table}\n");
    }
    text + rest
}

/// [`text`], parsed as if read from `<name>.toml`.
pub fn parse(name: &str, wan: &str, sites: &[(&str, &str)], rest: &str) -> Topology {
    Topology::from_toml_str(&text(name, wan, sites, rest), &format!("{name}.toml")).unwrap()
}
