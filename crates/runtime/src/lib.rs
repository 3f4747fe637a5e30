//! Glue shared by the real-network programs (`steward-node`, `loadgen local`): what a node
//! name means, how a node's transport is configured from a deployment and its address map
//! (peers, accepted clients, WAN shaping from the topology), and CPU time of processes.
//!
//! The protocol cores stay sans-IO; this crate knows nothing of their messages: [`core`]
//! defines the seam ([`Core`], [`Effect`], [`drive`]) and [`serve`] the replica process.

pub mod core;
pub mod durable_log;
pub mod metrics;
pub mod node_core;
pub mod serve;

pub use crate::core::{drive, drive_observed, Core, DriveStats, Effect, Observer};
pub use crate::durable_log::DurableLog;
pub use crate::node_core::NodeCore;
pub use crate::serve::{
    init_tracing, open_durable, replica_transport, serve, time_seed, transport_counters, wan_peers,
    Log, LogFormat, NodeArgs, NodeSetup, Threads, DURABLE_AUDIT_ENV,
};

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use steward_config::{ServerId, SiteId, Topology};
use steward_deploy::{client_node_name, pbft_node_name, steward_node_name, Addresses};

use steward_net::{
    NodeCert, PeerName, ShaperConfig, ShaperMode, SharedWanError, SharedWanQueues, TransportConfig,
};

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

/// The replication protocol a node runs (the one type of the suite, from `steward-config`).
pub use steward_config::Protocol;

/// The replicas of `protocol` in `topology`, with their sites.
pub fn protocol_replicas(protocol: Protocol, topology: &Topology) -> Vec<(NodeKind, SiteId)> {
    match protocol {
        Protocol::Steward => topology
            .steward_servers()
            .map(|id| (NodeKind::Server(id), id.site))
            .collect(),
        Protocol::Pbft => topology
            .pbft
            .replicas
            .iter()
            .enumerate()
            .map(|(i, site)| (NodeKind::Pbft(i as u32), *site))
            .collect(),
    }
}

/// What a node name of a deployment denotes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NodeKind {
    /// A Steward server: `steward-s<site>.<index>`.
    Server(ServerId),
    /// A PBFT replica: `pbft-r<index>`.
    Pbft(u32),
    /// A client: `client-<i>`.
    Client(u32),
}

/// A decimal number without sign or leading zeros.
fn parse_index(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || s.len() > 1 && s.starts_with('0') {
        return None;
    }
    s.parse().ok()
}

impl NodeKind {
    /// Reads a node name; `None` for anything else.
    pub fn parse(name: &str) -> Option<NodeKind> {
        if let Some(id) = name.strip_prefix("steward-") {
            return ServerId::parse(id).ok().map(NodeKind::Server);
        }
        if let Some(r) = name.strip_prefix("pbft-r") {
            return parse_index(r).map(NodeKind::Pbft);
        }
        parse_index(name.strip_prefix("client-")?).map(NodeKind::Client)
    }

    /// The node's name.
    pub fn name(self) -> PeerName {
        PeerName::new(match self {
            NodeKind::Server(id) => steward_node_name(id),
            NodeKind::Pbft(r) => pbft_node_name(r),
            NodeKind::Client(c) => client_node_name(c),
        })
    }

    /// Whether this is a replica (of either protocol).
    pub fn is_replica(self) -> bool {
        !matches!(self, NodeKind::Client(_))
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

/// Drop-tail limit of every emulated queue, as the simulator's default WAN buffer.
pub const EMULATED_QUEUE_BYTES: usize = 1024 * 1024;

/// The file holding the WAN queues shared by every process of a local cluster (see
/// `steward_net::SharedWanQueues`): `<deployment>/wan-queues.shm`.
pub fn wan_queues_path(deployment: &Path) -> PathBuf {
    deployment.join("wan-queues.shm")
}

/// Opens a deployment's shared WAN queues when it has them (a cluster launcher created the
/// file); `Ok(None)` when it has none, so each process queues its own WAN traffic.
pub fn open_wan_queues(
    deployment: &Path,
    topology: &Topology,
) -> Result<Option<Arc<SharedWanQueues>>, SharedWanError> {
    let path = wan_queues_path(deployment);
    if !path.exists() {
        return Ok(None);
    }
    SharedWanQueues::open(&path, topology.sites.len()).map(|q| Some(Arc::new(q)))
}

/// The transport configuration of a node running `protocol`: it dials every replica of that
/// protocol (addresses from `addresses`), a replica accepts every client with a key
/// (`0..clients`), and in [`WanMode::Emulate`] every datagram is shaped by the topology's link
/// between `site` and the destination's site (replicas and clients present in `addresses`),
/// with WAN traffic serialised on `wan_queues` (the topology's site-pair or site-uplink
/// queues shared by all processes; `None`: queues of this process only).
#[allow(clippy::too_many_arguments)]
pub fn transport_config(
    protocol: Protocol,
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
    wan_queues: Option<Arc<SharedWanQueues>>,
) -> Result<TransportConfig, SetupError> {
    let mut cfg = TransportConfig::new(me.name(), identity, ca_cert_der, bind);
    let mut shaped = Vec::new();
    let mut peers = HashMap::new();
    for (node, node_site) in protocol_replicas(protocol, topology) {
        let name = node.name();
        let addr = *addresses
            .get(name.as_str())
            .ok_or_else(|| SetupError::MissingAddress {
                file: addresses_file.to_string(),
                name: name.to_string(),
            })?;
        if node != me {
            peers.insert(name, addr);
            shaped.push((addr, node_site));
        }
    }
    let mut allowed = HashSet::new();
    // The source IPs of everyone who may connect, if the address map names them all.
    let mut sources: Option<HashSet<std::net::IpAddr>> =
        Some(peers.values().map(|a| a.ip()).collect());
    if me.is_replica() {
        for c in 0..clients {
            let name = NodeKind::Client(c).name();
            match addresses.get(name.as_str()) {
                Some(addr) => {
                    shaped.push((*addr, client_site(topology, clients, c)));
                    if let Some(s) = sources.as_mut() {
                        s.insert(addr.ip());
                    }
                }
                None => sources = None,
            }
            allowed.insert(name);
        }
    }
    cfg.peers = peers;
    cfg.allowed_peers = allowed;
    cfg.allowed_sources = sources;
    cfg.shaper = match wan {
        WanMode::Emulate => {
            let mut c = ShaperConfig::from_topology_shared(topology, site, shaped, wan_queues);
            c.queue_bytes = Some(EMULATED_QUEUE_BYTES);
            ShaperMode::Emulate(c)
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
        assert_eq!(NodeKind::parse("pbft-r12"), Some(NodeKind::Pbft(12)));
        assert_eq!(NodeKind::Pbft(3).name().as_str(), "pbft-r3");
        for bad in [
            "client-",
            "client-01",
            "client-x",
            "steward-",
            "steward-2.3",
            "pbft-r01",
            "pbft-r",
            "",
        ] {
            assert_eq!(NodeKind::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn sources_are_filtered_only_when_the_address_map_names_every_client() {
        let topology = Topology::from_toml_str(
            r#"
name = "t"
[lan]
latency_ms = 0.1
bandwidth = "1Gbps"
[wan.default]
latency_ms = 5
bandwidth = "10Mbps"
[[site]]
name = "a"
f = 1
servers = 4
[pbft]
servers_per_site = { a = 4 }
"#,
            "t.toml",
        )
        .unwrap();
        let ca = steward_net::DeploymentCa::generate("t").unwrap();
        let mut addresses = Addresses::new();
        for r in 0..4 {
            addresses.insert(
                format!("pbft-r{r}"),
                format!("127.0.1.{}:4000", r + 1).parse().unwrap(),
            );
        }
        addresses.insert("client-0".into(), "127.0.2.1:5000".parse().unwrap());
        let config = |clients: u32| {
            transport_config(
                Protocol::Pbft,
                NodeKind::Pbft(0),
                SiteId(0),
                ca.issue("pbft-r0").unwrap(),
                ca.cert_der().to_vec(),
                addresses["pbft-r0"],
                &topology,
                clients,
                &addresses,
                "addresses.json",
                WanMode::Off,
                None,
            )
            .unwrap()
        };
        let complete = config(1)
            .allowed_sources
            .expect("every client has an address");
        let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
        assert_eq!(
            complete,
            ["127.0.1.2", "127.0.1.3", "127.0.1.4", "127.0.2.1"]
                .map(ip)
                .into_iter()
                .collect()
        );
        // client-1 has no address: anyone may try (after a Retry).
        assert_eq!(config(2).allowed_sources, None);
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
