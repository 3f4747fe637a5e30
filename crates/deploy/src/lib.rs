//! Deployment directories.
//!
//! `loadgen keygen` turns a topology into a directory that holds every key a deployment needs,
//! laid out so that each node's folder contains only that node's secrets:
//!
//! ```text
//! <dir>/manifest.json                      what was generated, from which topology, how
//! <dir>/topology.toml                      verbatim copy of the topology file
//! <dir>/public/steward/site-<s>.threshold.json   each site's threshold public key
//! <dir>/public/steward/s<s>.<i>.pub.json   each Steward server's message-signing public key
//! <dir>/public/pbft/r<i>.pub.json          each PBFT replica's public key
//! <dir>/public/clients/c<i>.pub.json       each client's public key
//! <dir>/steward/s<s>.<i>/signing.key.json  server secrets (0600, folder 0700)
//! <dir>/steward/s<s>.<i>/threshold.share.json
//! <dir>/pbft/r<i>/signing.key.json
//! <dir>/clients/c<i>/signing.key.json
//! <dir>/public/tls/ca.cert.pem             the deployment CA certificate (trust anchor)
//! <dir>.ca/ca.key.pem                      the CA key (0600, folder 0700), *beside* the
//!                                          deployment so that copying <dir> never ships it
//! <dir>/steward/s<s>.<i>/tls.{cert,key}.pem  the server's TLS identity `steward-s<s>.<i>`
//! <dir>/pbft/r<i>/tls.{cert,key}.pem       the PBFT replica's TLS identity `pbft-r<i>`
//! <dir>/clients/c<i>/tls.{cert,key}.pem    the client's TLS identity `client-<i>`
//! <dir>/addresses.json                     optional: node name -> UDP address (written by
//!                                          `loadgen local`, or by hand for real hosts)
//! ```
//!
//! Deployment loading ([`Deployment`]) checks every file it reads and names the file in errors;
//! it refuses secret keys that the group or others may access (as OpenSSH does), and address
//! maps with unspecified addresses, port 0 or one address for two nodes. Key files are
//! created new, never through a symbolic link.

mod keygen;
mod layout;
mod load;

pub use keygen::{generate, KeygenOptions};
pub use layout::{client_node_name, pbft_node_name, steward_node_name, Layout};
pub use load::{
    parse_addresses, read_addresses, write_addresses, Addresses, Deployment, StewardSecrets,
};

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use steward_crypto::signature::Scheme;

/// Format tag of `manifest.json`.
pub const MANIFEST_FORMAT: &str = "steward-deployment/v1";

/// `manifest.json`: what a deployment directory holds.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Always [`MANIFEST_FORMAT`].
    pub format: String,
    /// Creation time, seconds since the Unix epoch.
    pub created_unix_s: u64,
    /// The topology's `name`.
    pub topology_name: String,
    /// The path the topology was read from (its text is copied to `topology.toml`).
    pub topology_source: String,
    /// Per-message signature scheme of servers, replicas and clients.
    pub scheme: Scheme,
    /// Modulus size of every site's threshold key.
    pub threshold_bits: u32,
    /// Number of client key pairs.
    pub clients: u32,
    /// The seed, when keys were derived deterministically (test deployments only).
    pub seed: Option<u64>,
    /// Steward sites and their threshold parameters.
    pub steward_sites: Vec<SiteEntry>,
    /// The PBFT replica set.
    pub pbft: PbftEntry,
}

/// One Steward site in the manifest.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SiteEntry {
    /// Site index.
    pub id: u16,
    /// Site name.
    pub name: String,
    /// Byzantine servers tolerated.
    pub f: u32,
    /// Servers in the site (= threshold l).
    pub servers: u32,
    /// Shares needed for a site signature (2f+1 when servers = 3f+1).
    pub threshold_k: u32,
    /// Hex of the threshold key's fingerprint.
    pub key_fingerprint: String,
}

/// The PBFT replica set in the manifest.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PbftEntry {
    /// Number of replicas.
    pub replicas: u32,
    /// Byzantine replicas tolerated.
    pub f: u32,
    /// Initial primary.
    pub primary: u32,
    /// Site of each replica.
    pub placement: Vec<u16>,
}

/// Shares needed for a site signature among `servers` servers tolerating `f` Byzantine ones:
/// the Byzantine quorum ⌈(n+f+1)/2⌉, which is 2f+1 for the usual n = 3f+1.
pub fn threshold_quorum(servers: u32, f: u32) -> u32 {
    (servers + f + 1).div_ceil(2)
}

/// An error about a deployment file or directory, naming the path.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    /// A file or directory is missing, unreadable, malformed or inconsistent.
    #[error("{}: {reason}", path.display())]
    File {
        /// The offending path.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The topology is invalid.
    #[error(transparent)]
    Topology(#[from] steward_config::ConfigError),
    /// Bad options.
    #[error("{0}")]
    Options(String),
}

impl DeployError {
    pub(crate) fn file(path: &Path, reason: impl ToString) -> Self {
        DeployError::File {
            path: path.to_path_buf(),
            reason: reason.to_string(),
        }
    }
}

#[cfg(test)]
mod tests;
