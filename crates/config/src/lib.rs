//! Topology files for Steward, the flat PBFT baseline, the simulator, the local emulation, key
//! generation and Ansible.
//!
//! One TOML file describes a wide-area deployment: its sites (Steward servers and `f` per site),
//! the LAN inside a site, the WAN links between sites, where closed-loop clients run and where
//! the PBFT replicas run. [`Topology::load`] reads and validates such a file; every error names
//! the file, the field and the reason. `topologies/README.md` in the repository documents the
//! format in full; in short:
//!
//! ```toml
//! name = "example"
//! description = "two sites"
//!
//! [lan]                        # between two servers of one site
//! latency_ms = 0.1             # one-way, milliseconds (integer or float, >= 0)
//! bandwidth = "1Gbps"          # bps, kbps, Mbps, Gbps (decimal SI)
//! # jitter_ms = 0.0, loss_pct = 0.0 (optional, default 0)
//!
//! [wan.default]                # optional; without it every pair needs a [[wan.link]]
//! latency_ms = 50
//! bandwidth = "10Mbps"
//!
//! [[wan.link]]                 # symmetric per-pair override; missing fields inherit wan.default
//! between = ["east", "west"]
//! latency_ms = 40
//!
//! [[site]]
//! name = "east"
//! f = 1                        # servers defaults to 3f+1
//!
//! [[site]]
//! name = "west"
//! f = 0
//! servers = 2
//!
//! [clients]                    # optional; default equal weights over all sites
//! weights = { east = 1 }       # or: per_site = { east = 10, west = 2 }
//!
//! [pbft]
//! servers_per_site = { east = 2, west = 2 }
//! primary_site = "east"        # optional; f optional (default floor((n-1)/3))
//! ```
//!
//! ```
//! # use steward_config::{Topology, SiteId};
//! # let text = r#"
//! # name = "example"
//! # [lan]
//! # latency_ms = 0.1
//! # bandwidth = "1Gbps"
//! # [wan.default]
//! # latency_ms = 50
//! # bandwidth = "10Mbps"
//! # [[wan.link]]
//! # between = ["east", "west"]
//! # latency_ms = 40
//! # [[site]]
//! # name = "east"
//! # f = 1
//! # [[site]]
//! # name = "west"
//! # f = 0
//! # servers = 2
//! # [clients]
//! # weights = { east = 1 }
//! # [pbft]
//! # servers_per_site = { east = 2, west = 2 }
//! # "#;
//! let topology = Topology::from_toml_str(text, "example.toml")?;
//! let (east, west) = (SiteId(0), SiteId(1));
//! assert_eq!(topology.link(east, west).latency.as_millis(), 40);
//! assert_eq!(topology.link(west, east).bandwidth_bps, 10_000_000);
//! assert_eq!(topology.total_steward_servers(), 6);
//! assert_eq!(topology.steward_servers().last().unwrap().to_string(), "s1.1");
//! assert_eq!(topology.place_clients(3), vec![east; 3]);
//! assert_eq!(topology.pbft.f, 1);
//! # Ok::<(), steward_config::ConfigError>(())
//! ```

#![warn(missing_docs)]

mod error;
mod ids;
mod parse;
mod protocol;
pub mod spec;
mod topology;
mod units;

pub use error::ConfigError;
pub use ids::{ParseServerIdError, ServerId, SiteId};
pub use parse::MAX_SITES;
pub use protocol::{ParseProtocolError, Protocol};
pub use topology::{ClientPlacement, LinkParams, PbftPlacement, Site, Topology, WanModel};
pub use units::{parse_bandwidth, parse_duration};
