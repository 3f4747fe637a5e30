//! Reading a deployment directory back: the manifest, the topology and the keys of one node.

use std::collections::BTreeMap;
use std::fs;
use std::net::SocketAddr;
use std::path::Path;

use steward_net::NodeCert;

use steward_config::{ServerId, SiteId, Topology};
use steward_crypto::signature::{SigningKey, VerifyingKey};
use steward_crypto::threshold::{KeyShare, ThresholdPublicKey};

use crate::{DeployError, Layout, Manifest, MANIFEST_FORMAT};

/// A loaded deployment directory (manifest and topology; keys are read on demand).
#[derive(Debug)]
pub struct Deployment {
    /// File locations.
    pub layout: Layout,
    /// `manifest.json`.
    pub manifest: Manifest,
    /// The topology copied into the deployment.
    pub topology: Topology,
}

/// A Steward server's secrets.
#[derive(Debug)]
pub struct StewardSecrets {
    /// Message-signing key.
    pub signing: SigningKey,
    /// Share of the site's threshold key.
    pub share: KeyShare,
}

fn read(path: &Path) -> Result<String, DeployError> {
    fs::read_to_string(path).map_err(|e| DeployError::file(path, e))
}

impl Deployment {
    /// Load and check the manifest and topology of the deployment at `root`.
    pub fn load(root: &Path) -> Result<Self, DeployError> {
        let layout = Layout::new(root);
        if !root.is_dir() {
            return Err(DeployError::file(root, "no such deployment directory"));
        }
        let path = layout.manifest();
        let manifest: Manifest = serde_json::from_str(&read(&path)?)
            .map_err(|e| DeployError::file(&path, format!("malformed manifest: {e}")))?;
        if manifest.format != MANIFEST_FORMAT {
            return Err(DeployError::file(
                &path,
                format!(
                    "format: expected {MANIFEST_FORMAT:?}, got {:?}",
                    manifest.format
                ),
            ));
        }
        let topo_path = layout.topology();
        let topology = Topology::load(&topo_path)?;
        if topology.sites.len() != manifest.steward_sites.len() {
            return Err(DeployError::file(
                &path,
                "steward_sites does not match topology.toml",
            ));
        }
        Ok(Deployment {
            layout,
            manifest,
            topology,
        })
    }

    /// A site's threshold public key, checked against the manifest's fingerprint.
    pub fn site_threshold_key(&self, site: SiteId) -> Result<ThresholdPublicKey, DeployError> {
        let path = self.layout.site_threshold_key(site);
        let key = ThresholdPublicKey::from_json(&read(&path)?)
            .map_err(|e| DeployError::file(&path, e))?;
        let entry = self
            .manifest
            .steward_sites
            .get(site.index())
            .ok_or_else(|| DeployError::file(&path, format!("site {site} not in manifest")))?;
        let fp: String = key
            .fingerprint()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        if fp != entry.key_fingerprint {
            return Err(DeployError::file(
                &path,
                "key fingerprint differs from manifest.json",
            ));
        }
        Ok(key)
    }

    /// A Steward server's public signing key.
    pub fn steward_public(&self, id: ServerId) -> Result<VerifyingKey, DeployError> {
        self.check_server(id)?;
        load_verifying(&self.layout.steward_public(id))
    }

    /// A Steward server's secrets (its signing key and threshold share).
    pub fn steward_secrets(&self, id: ServerId) -> Result<StewardSecrets, DeployError> {
        self.check_server(id)?;
        let public = self.site_threshold_key(id.site)?;
        let signing = load_signing(&self.layout.steward_signing_key(id))?;
        let path = self.layout.steward_share(id);
        read_secret(&path)?;
        let share =
            KeyShare::from_json(&read(&path)?, &public).map_err(|e| DeployError::file(&path, e))?;
        if u32::from(share.id()) != id.index + 1 {
            return Err(DeployError::file(
                &path,
                format!("share {} is not server {id}'s", share.id()),
            ));
        }
        Ok(StewardSecrets { signing, share })
    }

    /// A PBFT replica's public key.
    pub fn pbft_public(&self, replica: u32) -> Result<VerifyingKey, DeployError> {
        self.check_replica(replica)?;
        load_verifying(&self.layout.pbft_public(replica))
    }

    /// A PBFT replica's signing key.
    pub fn pbft_secret(&self, replica: u32) -> Result<SigningKey, DeployError> {
        self.check_replica(replica)?;
        load_signing(&self.layout.pbft_signing_key(replica))
    }

    /// A client's public key.
    pub fn client_public(&self, client: u32) -> Result<VerifyingKey, DeployError> {
        self.check_client(client)?;
        load_verifying(&self.layout.client_public(client))
    }

    /// A client's signing key.
    pub fn client_secret(&self, client: u32) -> Result<SigningKey, DeployError> {
        self.check_client(client)?;
        load_signing(&self.layout.client_signing_key(client))
    }

    fn check_server(&self, id: ServerId) -> Result<(), DeployError> {
        if self.topology.has_server(id) {
            Ok(())
        } else {
            Err(DeployError::Options(format!(
                "{}: no Steward server {id} in this deployment",
                self.layout.root().display()
            )))
        }
    }

    fn check_replica(&self, replica: u32) -> Result<(), DeployError> {
        if replica < self.manifest.pbft.replicas {
            Ok(())
        } else {
            Err(DeployError::Options(format!(
                "{}: no PBFT replica {replica} (the deployment has {})",
                self.layout.root().display(),
                self.manifest.pbft.replicas
            )))
        }
    }

    fn check_client(&self, client: u32) -> Result<(), DeployError> {
        if client < self.manifest.clients {
            Ok(())
        } else {
            Err(DeployError::Options(format!(
                "{}: no client {client} (keys were generated for {} clients)",
                self.layout.root().display(),
                self.manifest.clients
            )))
        }
    }
}

/// `addresses.json`: node name (`steward-s0.1`, `client-3`) -> UDP socket address.
pub type Addresses = BTreeMap<String, SocketAddr>;

/// Reads an address map, naming the file in errors.
pub fn read_addresses(path: &Path) -> Result<Addresses, DeployError> {
    let text = fs::read_to_string(path).map_err(|e| {
        DeployError::file(
            path,
            format!("cannot read the address map (node name -> address): {e}"),
        )
    })?;
    parse_addresses(&text, path)
}

/// Parses and checks the text of an address map read from `path` (named in errors).
pub fn parse_addresses(text: &str, path: &Path) -> Result<Addresses, DeployError> {
    let addresses: Addresses = serde_json::from_str(text)
        .map_err(|e| DeployError::file(path, format!("malformed address map: {e}")))?;
    check_addresses(&addresses).map_err(|reason| DeployError::file(path, reason))?;
    Ok(addresses)
}

/// Every address must be one a peer can dial (no unspecified IP such as `0.0.0.0`, no port 0)
/// and belong to one node only.
fn check_addresses(addresses: &Addresses) -> Result<(), String> {
    let mut seen: BTreeMap<SocketAddr, &str> = BTreeMap::new();
    for (name, addr) in addresses {
        if addr.ip().is_unspecified() {
            return Err(format!(
                "{name}: {addr} is not an address peers can reach (unspecified IP); \
                 give the host's own address"
            ));
        }
        if addr.port() == 0 {
            return Err(format!("{name}: {addr} has port 0"));
        }
        if let Some(other) = seen.insert(*addr, name) {
            return Err(format!("{other} and {name} have the same address {addr}"));
        }
    }
    Ok(())
}

/// Writes an address map (replacing any previous one).
pub fn write_addresses(path: &Path, addresses: &Addresses) -> Result<(), DeployError> {
    let json = serde_json::to_string_pretty(addresses).expect("addresses serialize") + "\n";
    fs::write(path, json).map_err(|e| DeployError::file(path, e))
}

impl Deployment {
    /// The deployment's `addresses.json`.
    pub fn addresses(&self) -> Result<Addresses, DeployError> {
        read_addresses(&self.layout.addresses())
    }

    /// The deployment CA certificate (DER).
    pub fn ca_cert(&self) -> Result<Vec<u8>, DeployError> {
        let path = self.layout.ca_cert();
        steward_net::certs::load_cert(&path).map_err(|e| DeployError::file(&path, e))
    }

    /// A Steward server's TLS certificate and key.
    pub fn steward_tls(&self, id: ServerId) -> Result<NodeCert, DeployError> {
        self.check_server(id)?;
        load_node_cert(
            &self.layout.steward_tls_cert(id),
            &self.layout.steward_tls_key(id),
        )
    }

    /// A PBFT replica's TLS certificate and key.
    pub fn pbft_tls(&self, replica: u32) -> Result<NodeCert, DeployError> {
        self.check_replica(replica)?;
        load_node_cert(
            &self.layout.pbft_tls_cert(replica),
            &self.layout.pbft_tls_key(replica),
        )
    }

    /// A client's TLS certificate and key.
    pub fn client_tls(&self, client: u32) -> Result<NodeCert, DeployError> {
        self.check_client(client)?;
        load_node_cert(
            &self.layout.client_tls_cert(client),
            &self.layout.client_tls_key(client),
        )
    }
}

fn load_node_cert(cert: &Path, key: &Path) -> Result<NodeCert, DeployError> {
    NodeCert::load(cert, key).map_err(|e| match e {
        steward_net::CertError::File { .. } => DeployError::Options(e.to_string()),
        other => DeployError::file(cert, other),
    })
}

fn load_verifying(path: &Path) -> Result<VerifyingKey, DeployError> {
    VerifyingKey::from_json(&read(path)?).map_err(|e| DeployError::file(path, e))
}

fn load_signing(path: &Path) -> Result<SigningKey, DeployError> {
    read_secret(path)?;
    SigningKey::from_json(&read(path)?).map_err(|e| DeployError::file(path, e))
}

/// Refuses a secret file that the group or others may access.
fn read_secret(path: &Path) -> Result<(), DeployError> {
    steward_net::certs::check_private_file(path).map_err(|e| match e {
        steward_net::CertError::File { path, reason } => DeployError::File { path, reason },
        other => DeployError::file(path, other),
    })
}
