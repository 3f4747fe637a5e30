//! Glue shared by the real-network programs (`steward-node`, `loadgen local`): what a node
//! name means, how a node's transport is configured from a deployment and its address map
//! (peers, accepted clients, WAN shaping from the topology), and CPU time of processes.
//!
//! The protocol cores stay sans-IO; this crate knows nothing of their messages.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use steward_config::{ServerId, SiteId, Topology};
use steward_deploy::{client_node_name, steward_node_name, Addresses};
use steward_net::{NodeCert, PeerName, ShaperConfig, ShaperMode, TransportConfig};

/// How the WAN is emulated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WanMode {
    /// The userspace shaper applies the topology's links on every node's socket.
    Emulate,
    /// The kernel (`tc netem`, set up by Ansible) shapes; the transport sends unshaped.
    Netem,
    /// No shaping at all.
    Off,
}

impl FromStr for WanMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "emulate" => Ok(WanMode::Emulate),
            "netem" => Ok(WanMode::Netem),
            "off" => Ok(WanMode::Off),
            _ => Err(format!("invalid WAN mode {s:?} (emulate, netem or off)")),
        }
    }
}

impl fmt::Display for WanMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WanMode::Emulate => "emulate",
            WanMode::Netem => "netem",
            WanMode::Off => "off",
        })
    }
}

/// What a node name of a Steward deployment denotes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeKind {
    /// `steward-s<site>.<index>`.
    Server(ServerId),
    /// `client-<i>`.
    Client(u32),
}

impl NodeKind {
    /// Reads a node name; `None` for anything else.
    pub fn parse(name: &str) -> Option<NodeKind> {
        if let Some(id) = name.strip_prefix("steward-") {
            return ServerId::parse(id).ok().map(NodeKind::Server);
        }
        let c = name.strip_prefix("client-")?;
        if c.is_empty()
            || !c.bytes().all(|b| b.is_ascii_digit())
            || c.len() > 1 && c.starts_with('0')
        {
            return None;
        }
        c.parse().ok().map(NodeKind::Client)
    }

    /// The node's name.
    pub fn name(self) -> PeerName {
        PeerName::new(match self {
            NodeKind::Server(id) => steward_node_name(id),
            NodeKind::Client(c) => client_node_name(c),
        })
    }
}

/// Why a node's transport cannot be configured.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// A node the configuration needs has no address.
    #[error("{file}: no address for {name}")]
    MissingAddress {
        /// The address file.
        file: String,
        /// The node.
        name: String,
    },
}

/// The site of client `c` in a deployment with `clients` client keys: clients keep their site
/// as the count grows, so the placement of all key-holding clients decides.
pub fn client_site(topology: &Topology, clients: u32, c: u32) -> SiteId {
    topology
        .place_clients(clients.max(c + 1))
        .get(c as usize)
        .copied()
        .unwrap_or(SiteId(0))
}

/// The transport configuration of a node of a Steward deployment: it dials every Steward
/// server (addresses from `addresses`), accepts every client with a key (`0..clients`), and
/// in [`WanMode::Emulate`] shapes every datagram by the topology's link between `site` and
/// the destination's site (servers and clients present in `addresses`).
#[allow(clippy::too_many_arguments)]
pub fn transport_config(
    me: NodeKind,
    site: SiteId,
    identity: NodeCert,
    ca_cert_der: Vec<u8>,
    bind: SocketAddr,
    topology: &Topology,
    clients: u32,
    addresses: &Addresses,
    addresses_file: &str,
    wan: WanMode,
) -> Result<TransportConfig, SetupError> {
    let mut cfg = TransportConfig::new(me.name(), identity, ca_cert_der, bind);
    let mut shaped = Vec::new();
    let mut peers = HashMap::new();
    for id in topology.steward_servers() {
        let name = NodeKind::Server(id).name();
        let addr = *addresses
            .get(name.as_str())
            .ok_or_else(|| SetupError::MissingAddress {
                file: addresses_file.to_string(),
                name: name.to_string(),
            })?;
        if NodeKind::Server(id) != me {
            peers.insert(name, addr);
            shaped.push((addr, id.site));
        }
    }
    let mut allowed = HashSet::new();
    if matches!(me, NodeKind::Server(_)) {
        for c in 0..clients {
            let name = NodeKind::Client(c).name();
            if let Some(addr) = addresses.get(name.as_str()) {
                shaped.push((*addr, client_site(topology, clients, c)));
            }
            allowed.insert(name);
        }
    }
    cfg.peers = peers;
    cfg.allowed_peers = allowed;
    cfg.shaper = match wan {
        WanMode::Emulate => {
            ShaperMode::Emulate(ShaperConfig::from_topology(topology, site, shaped))
        }
        WanMode::Netem | WanMode::Off => ShaperMode::Off,
    };
    Ok(cfg)
}

/// CPU time (user + system) a process has used so far, from `/proc/<pid>/stat`; `None` if the
/// process is gone or the file is unreadable.
pub fn process_cpu_time(pid: u32) -> Option<Duration> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat_cpu(&text, clock_ticks_per_second())
}

fn clock_ticks_per_second() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as u64
    } else {
        100
    }
}

/// utime + stime (fields 14 and 15) of a `/proc/<pid>/stat` line. The command name (field 2)
/// may hold spaces and parentheses, so fields are counted after its last `)`.
fn parse_stat_cpu(text: &str, ticks: u64) -> Option<Duration> {
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state).
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    let total = utime + stime;
    Some(
        Duration::from_secs(total / ticks)
            + Duration::from_nanos((total % ticks) * 1_000_000_000 / ticks),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_names_round_trip() {
        let s = NodeKind::Server(ServerId::new(SiteId(2), 3));
        assert_eq!(s.name().as_str(), "steward-s2.3");
        assert_eq!(NodeKind::parse("steward-s2.3"), Some(s));
        assert_eq!(NodeKind::parse("client-17"), Some(NodeKind::Client(17)));
        for bad in [
            "client-",
            "client-01",
            "client-x",
            "steward-",
            "steward-2.3",
            "pbft-r1",
            "",
        ] {
            assert_eq!(NodeKind::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn wan_modes_parse() {
        assert_eq!("emulate".parse(), Ok(WanMode::Emulate));
        assert_eq!("off".parse::<WanMode>().unwrap().to_string(), "off");
        assert!("tc".parse::<WanMode>().is_err());
    }

    #[test]
    fn stat_cpu_is_parsed_after_the_command_name() {
        let line = "42 (a) b (c)) S 1 42 42 0 -1 4194304 100 0 0 0 250 50 0 0 20 0 1 0 1 0 0";
        assert_eq!(parse_stat_cpu(line, 100), Some(Duration::from_secs(3)));
        assert_eq!(parse_stat_cpu("garbage", 100), None);
        let me = process_cpu_time(std::process::id()).unwrap();
        assert!(me < Duration::from_secs(3600));
        assert_eq!(process_cpu_time(u32::MAX), None);
    }
}
