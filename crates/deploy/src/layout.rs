//! Where each file of a deployment directory lives.

use std::path::{Path, PathBuf};
use steward_config::{ServerId, SiteId};

/// Paths inside a deployment directory.
#[derive(Clone, Debug)]
pub struct Layout {
    root: PathBuf,
}

impl Layout {
    /// The layout rooted at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Layout { root: root.into() }
    }

    /// The deployment directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `manifest.json`.
    pub fn manifest(&self) -> PathBuf {
        self.root.join("manifest.json")
    }

    /// Copy of the topology file.
    pub fn topology(&self) -> PathBuf {
        self.root.join("topology.toml")
    }

    /// A site's threshold public key.
    pub fn site_threshold_key(&self, site: SiteId) -> PathBuf {
        self.root
            .join("public/steward")
            .join(format!("site-{}.threshold.json", site.0))
    }

    /// A Steward server's message-signing public key.
    pub fn steward_public(&self, id: ServerId) -> PathBuf {
        self.root
            .join("public/steward")
            .join(format!("{id}.pub.json"))
    }

    /// A Steward server's private folder.
    pub fn steward_dir(&self, id: ServerId) -> PathBuf {
        self.root.join("steward").join(id.to_string())
    }

    /// A Steward server's message-signing key.
    pub fn steward_signing_key(&self, id: ServerId) -> PathBuf {
        self.steward_dir(id).join("signing.key.json")
    }

    /// A Steward server's threshold key share.
    pub fn steward_share(&self, id: ServerId) -> PathBuf {
        self.steward_dir(id).join("threshold.share.json")
    }

    /// A PBFT replica's public key.
    pub fn pbft_public(&self, replica: u32) -> PathBuf {
        self.root
            .join("public/pbft")
            .join(format!("r{replica}.pub.json"))
    }

    /// A PBFT replica's private folder.
    pub fn pbft_dir(&self, replica: u32) -> PathBuf {
        self.root.join("pbft").join(format!("r{replica}"))
    }

    /// A PBFT replica's signing key.
    pub fn pbft_signing_key(&self, replica: u32) -> PathBuf {
        self.pbft_dir(replica).join("signing.key.json")
    }

    /// A client's public key.
    pub fn client_public(&self, client: u32) -> PathBuf {
        self.root
            .join("public/clients")
            .join(format!("c{client}.pub.json"))
    }

    /// A client's private folder.
    pub fn client_dir(&self, client: u32) -> PathBuf {
        self.root.join("clients").join(format!("c{client}"))
    }

    /// A client's signing key.
    pub fn client_signing_key(&self, client: u32) -> PathBuf {
        self.client_dir(client).join("signing.key.json")
    }

    /// The deployment CA certificate (public; the trust anchor of every node).
    pub fn ca_cert(&self) -> PathBuf {
        self.root.join("public/tls/ca.cert.pem")
    }

    /// The deployment CA key: in a private folder *beside* the deployment directory
    /// (`<dir>.ca/ca.key.pem`), so that copying the deployment to hosts never ships it. No
    /// program reads it; keep it to issue further certificates, or delete it.
    pub fn ca_key(&self) -> PathBuf {
        self.ca_key_dir().join("ca.key.pem")
    }

    /// The folder of [`Layout::ca_key`]: `<dir>.ca` beside the deployment directory.
    pub fn ca_key_dir(&self) -> PathBuf {
        let absolute = std::path::absolute(&self.root).unwrap_or_else(|_| self.root.clone());
        match absolute.file_name() {
            Some(name) => {
                let mut dir_name = name.to_os_string();
                dir_name.push(".ca");
                absolute.with_file_name(dir_name)
            }
            // The file-system root as a deployment: nowhere beside it.
            None => absolute.join("deployment.ca"),
        }
    }

    /// A Steward server's TLS certificate (in its private folder).
    pub fn steward_tls_cert(&self, id: ServerId) -> PathBuf {
        self.steward_dir(id).join("tls.cert.pem")
    }

    /// A Steward server's TLS key.
    pub fn steward_tls_key(&self, id: ServerId) -> PathBuf {
        self.steward_dir(id).join("tls.key.pem")
    }

    /// A PBFT replica's TLS certificate.
    pub fn pbft_tls_cert(&self, replica: u32) -> PathBuf {
        self.pbft_dir(replica).join("tls.cert.pem")
    }

    /// A PBFT replica's TLS key.
    pub fn pbft_tls_key(&self, replica: u32) -> PathBuf {
        self.pbft_dir(replica).join("tls.key.pem")
    }

    /// A client's TLS certificate (in its private folder).
    pub fn client_tls_cert(&self, client: u32) -> PathBuf {
        self.client_dir(client).join("tls.cert.pem")
    }

    /// A client's TLS key.
    pub fn client_tls_key(&self, client: u32) -> PathBuf {
        self.client_dir(client).join("tls.key.pem")
    }

    /// The address map: node name (`steward-s0.1`, `client-3`) -> UDP socket address.
    pub fn addresses(&self) -> PathBuf {
        self.root.join("addresses.json")
    }
}

/// The transport (TLS certificate) name of a Steward server: `steward-s<site>.<index>`.
pub fn steward_node_name(id: ServerId) -> String {
    format!("steward-{id}")
}

/// The transport (TLS certificate) name of a PBFT replica: `pbft-r<i>`.
pub fn pbft_node_name(replica: u32) -> String {
    format!("pbft-r{replica}")
}

/// The transport (TLS certificate) name of a client: `client-<i>`.
pub fn client_node_name(client: u32) -> String {
    format!("client-{client}")
}
