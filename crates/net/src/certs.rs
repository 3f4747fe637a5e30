//! The deployment CA and per-node TLS certificates.
//!
//! Every deployment has its own certificate authority ([`DeploymentCa`]); it issues one leaf
//! certificate per node ([`NodeCert`]): Steward servers (`steward-s0.3`), PBFT replicas
//! (`pbft-r5`), clients (`client-7`). Keys are ECDSA P-256 (rcgen's default); certificates are
//! valid for both TLS client and server authentication, because every node is both.
//!
//! **How a certificate carries the node name.** The leaf's subject common name is the name,
//! and its only subject alternative name is the DNS name `<name>.steward-net`
//! ([`NODE_NAME_SUFFIX`]). The suffix is there because names like `steward-s0.3` end in an
//! all-numeric label, which TLS libraries refuse as a DNS name (it looks like an IPv4
//! address); with the suffix, the standard WebPKI server-name check verifies the name when a
//! node dials a peer. [`node_name_from_cert`] reads the name back from the SAN.
//!
//! Files are PEM (`CERTIFICATE`, `PRIVATE KEY` in PKCS#8); loading also accepts raw DER. Key
//! files are written with mode 0600. Every error names the file.

use std::fmt;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, DnsName};

/// The DNS suffix appended to a node name in its certificate's subject alternative name.
pub const NODE_NAME_SUFFIX: &str = "steward-net";

/// Certificate generation, parsing, or file errors. File errors name the file.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    /// The node name cannot be put in a certificate.
    #[error("invalid node name {name:?}: {reason}")]
    InvalidName {
        /// The rejected name.
        name: String,
        /// Why.
        reason: &'static str,
    },
    /// rcgen failed to generate a key or a certificate.
    #[error("certificate generation failed: {0}")]
    Generate(#[from] rcgen::Error),
    /// A certificate could not be parsed or does not carry a node name.
    #[error("bad certificate: {0}")]
    BadCertificate(String),
    /// Reading, writing or decoding a file failed.
    #[error("{}: {reason}", path.display())]
    File {
        /// The file at fault.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
}

impl CertError {
    fn file(path: &Path, reason: impl fmt::Display) -> CertError {
        CertError::File {
            path: path.to_path_buf(),
            reason: reason.to_string(),
        }
    }
}

/// Checks that `name` can be a node name: 1 to 200 characters, lowercase ASCII letters,
/// digits, `-`, `_` and `.`, made of non-empty dot-separated labels that do not start or end
/// with `-`. Lowercase only because certificate names compare case-insensitively; this keeps
/// the name to identity mapping one-to-one.
pub fn validate_node_name(name: &str) -> Result<(), CertError> {
    let bad = |reason| {
        Err(CertError::InvalidName {
            name: name.to_string(),
            reason,
        })
    };
    if name.is_empty() || name.len() > 200 {
        return bad("must have 1 to 200 characters");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b))
    {
        return bad("only lowercase ASCII letters, digits, '-', '_' and '.' are allowed");
    }
    if DnsName::try_from(san_for(name)).is_err() {
        return bad("labels between dots must be non-empty, at most 63 characters, and not start or end with '-'");
    }
    Ok(())
}

/// The DNS subject alternative name that carries `name`: `<name>.steward-net`. Also the TLS
/// server name used when dialing the node.
pub fn san_for(name: &str) -> String {
    format!("{name}.{NODE_NAME_SUFFIX}")
}

/// Reads the node name back from a certificate (DER): the first DNS subject alternative name
/// that ends in `.steward-net`, without that suffix. Does not check the signature (the TLS
/// handshake does).
pub fn node_name_from_cert(cert_der: &[u8]) -> Result<String, CertError> {
    let (_, cert) = x509_parser::parse_x509_certificate(cert_der)
        .map_err(|e| CertError::BadCertificate(format!("cannot parse X.509 certificate: {e}")))?;
    let san = cert
        .subject_alternative_name()
        .map_err(|e| CertError::BadCertificate(format!("bad subjectAltName extension: {e}")))?
        .ok_or_else(|| CertError::BadCertificate("no subjectAltName extension".into()))?;
    for general_name in &san.value.general_names {
        if let x509_parser::extensions::GeneralName::DNSName(dns) = general_name {
            if let Some(name) = dns
                .strip_suffix(NODE_NAME_SUFFIX)
                .and_then(|s| s.strip_suffix('.'))
            {
                validate_node_name(name)?;
                return Ok(name.to_string());
            }
        }
    }
    Err(CertError::BadCertificate(format!(
        "no subjectAltName DNS name ends in .{NODE_NAME_SUFFIX}"
    )))
}

/// A deployment's certificate authority: its self-signed certificate and its signing key.
pub struct DeploymentCa {
    name: String,
    cert_der: Vec<u8>,
    key_der: Vec<u8>,
    issuer: Issuer<'static, KeyPair>,
}

impl fmt::Debug for DeploymentCa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeploymentCa")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl DeploymentCa {
    /// A new CA whose subject common name is `name` (for example the topology's name).
    pub fn generate(name: &str) -> Result<DeploymentCa, CertError> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params
            .distinguished_name
            .push(DnType::CommonName, format!("{name} deployment CA"));
        params
            .distinguished_name
            .push(DnType::OrganizationName, "steward-net");
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate()?;
        let cert = params.self_signed(&key)?;
        let key_der = key.serialize_der();
        Ok(DeploymentCa {
            name: name.to_string(),
            cert_der: cert.der().to_vec(),
            key_der,
            issuer: Issuer::new(params, key),
        })
    }

    /// The CA certificate (DER): what every node trusts.
    pub fn cert_der(&self) -> &[u8] {
        &self.cert_der
    }

    /// The CA's private key (PKCS#8 DER).
    pub fn key_der(&self) -> &[u8] {
        &self.key_der
    }

    /// Issues the certificate of node `node_name` (validated by [`validate_node_name`]), with
    /// a fresh key.
    pub fn issue(&self, node_name: &str) -> Result<NodeCert, CertError> {
        validate_node_name(node_name)?;
        let mut params = CertificateParams::new(vec![san_for(node_name)])?;
        params
            .distinguished_name
            .push(DnType::CommonName, node_name);
        params.use_authority_key_identifier_extension = true;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(NodeCert {
            cert_der: cert.der().to_vec(),
            key_der: key.serialize_der(),
        })
    }

    /// Writes the CA certificate and key as PEM (the key with mode 0600).
    pub fn save(&self, cert_path: &Path, key_path: &Path) -> Result<(), CertError> {
        write_pem(cert_path, "CERTIFICATE", &self.cert_der, false)?;
        write_pem(key_path, "PRIVATE KEY", &self.key_der, true)
    }

    /// Reads a CA written by [`DeploymentCa::save`] (PEM, or raw DER files), checking that the
    /// key belongs to the certificate.
    pub fn load(cert_path: &Path, key_path: &Path) -> Result<DeploymentCa, CertError> {
        let cert_der = load_cert(cert_path)?;
        let (key_der, key) = load_private_key(key_path)?;
        check_key_matches(&cert_der, &key, cert_path, key_path)?;
        let issuer = Issuer::from_ca_cert_der(&CertificateDer::from(cert_der.as_slice()), key)
            .map_err(|e| CertError::file(cert_path, format!("not a usable CA certificate: {e}")))?;
        let name = common_name(&cert_der).unwrap_or_default();
        Ok(DeploymentCa {
            name,
            cert_der,
            key_der,
            issuer,
        })
    }
}

/// One node's certificate (signed by the deployment CA) and private key, both DER.
#[derive(Clone, PartialEq, Eq)]
pub struct NodeCert {
    /// The X.509 certificate, DER.
    pub cert_der: Vec<u8>,
    /// The private key, PKCS#8 DER.
    pub key_der: Vec<u8>,
}

impl fmt::Debug for NodeCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeCert")
            .field("name", &self.name().ok())
            .finish_non_exhaustive()
    }
}

impl NodeCert {
    /// The node name the certificate carries.
    pub fn name(&self) -> Result<String, CertError> {
        node_name_from_cert(&self.cert_der)
    }

    /// Writes the certificate and key as PEM (the key with mode 0600).
    pub fn save(&self, cert_path: &Path, key_path: &Path) -> Result<(), CertError> {
        write_pem(cert_path, "CERTIFICATE", &self.cert_der, false)?;
        write_pem(key_path, "PRIVATE KEY", &self.key_der, true)
    }

    /// Reads a certificate and key (PEM or raw DER), checking that the certificate carries a
    /// node name and that the key belongs to it.
    pub fn load(cert_path: &Path, key_path: &Path) -> Result<NodeCert, CertError> {
        let cert_der = load_cert(cert_path)?;
        node_name_from_cert(&cert_der).map_err(|e| CertError::file(cert_path, e))?;
        let (key_der, key) = load_private_key(key_path)?;
        check_key_matches(&cert_der, &key, cert_path, key_path)?;
        Ok(NodeCert { cert_der, key_der })
    }
}

/// Reads a private key file (PEM `PRIVATE KEY` or raw DER, readable by its owner only): its
/// PKCS#8 DER and the key pair.
fn load_private_key(key_path: &Path) -> Result<(Vec<u8>, KeyPair), CertError> {
    check_private_file(key_path)?;
    let key_der = read_der(key_path, "PRIVATE KEY")?;
    let key = KeyPair::try_from(key_der.as_slice())
        .map_err(|e| CertError::file(key_path, format!("not a usable PKCS#8 private key: {e}")))?;
    Ok((key_der, key))
}

/// Reads a certificate file (PEM `CERTIFICATE` or raw DER) and checks that it parses.
pub fn load_cert(path: &Path) -> Result<Vec<u8>, CertError> {
    let der = read_der(path, "CERTIFICATE")?;
    x509_parser::parse_x509_certificate(&der)
        .map_err(|e| CertError::file(path, format!("not an X.509 certificate: {e}")))?;
    Ok(der)
}

/// Refuses a secret-key file that its group or other users may read or write (as OpenSSH
/// does): the error names the file, its mode and the fix.
pub fn check_private_file(path: &Path) -> Result<(), CertError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta =
            fs::metadata(path).map_err(|e| CertError::file(path, format!("cannot read: {e}")))?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(CertError::file(
                path,
                format!(
                    "secret key is accessible by group or others (mode {mode:04o}); \
                     refusing to use it (run: chmod 600 {})",
                    path.display()
                ),
            ));
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// Writes a certificate (DER) as a PEM file.
pub fn save_cert(path: &Path, cert_der: &[u8]) -> Result<(), CertError> {
    write_pem(path, "CERTIFICATE", cert_der, false)
}

fn common_name(cert_der: &[u8]) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(cert_der).ok()?;
    let cn = cert.subject().iter_common_name().next()?;
    cn.as_str().ok().map(str::to_string)
}

fn check_key_matches(
    cert_der: &[u8],
    key: &KeyPair,
    cert_path: &Path,
    key_path: &Path,
) -> Result<(), CertError> {
    let (_, cert) = x509_parser::parse_x509_certificate(cert_der)
        .map_err(|e| CertError::file(cert_path, format!("not an X.509 certificate: {e}")))?;
    if cert.public_key().subject_public_key.data.as_ref() != key.public_key_raw() {
        return Err(CertError::file(
            key_path,
            format!(
                "private key does not belong to the certificate {}",
                cert_path.display()
            ),
        ));
    }
    Ok(())
}

/// Reads a file holding one PEM block with `tag`, or raw DER.
fn read_der(path: &Path, tag: &str) -> Result<Vec<u8>, CertError> {
    let bytes = fs::read(path).map_err(|e| CertError::file(path, format!("cannot read: {e}")))?;
    let looks_pem = bytes
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|b| *b == b'-');
    if !looks_pem {
        if bytes.is_empty() {
            return Err(CertError::file(path, "empty file"));
        }
        return Ok(bytes);
    }
    let text =
        std::str::from_utf8(&bytes).map_err(|_| CertError::file(path, "PEM is not UTF-8"))?;
    let block = pem::parse(text).map_err(|e| CertError::file(path, format!("bad PEM: {e}")))?;
    if block.tag() != tag {
        return Err(CertError::file(
            path,
            format!("expected a PEM {tag:?} block, found {:?}", block.tag()),
        ));
    }
    Ok(block.into_contents())
}

fn write_pem(path: &Path, tag: &str, der: &[u8], secret: bool) -> Result<(), CertError> {
    let text = pem::encode_config(
        &pem::Pem::new(tag, der.to_vec()),
        pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
    );
    // A new file only, and never through a symbolic link: an existing file (or a link planted
    // where a key is to be written) is an error, not something to overwrite.
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NOFOLLOW);
        if secret {
            options.mode(0o600);
        }
    }
    #[cfg(not(unix))]
    let _ = secret;
    let mut file = options
        .open(path)
        .map_err(|e| CertError::file(path, format!("cannot create a new file: {e}")))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| CertError::file(path, format!("cannot write: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for good in ["steward-s0.3", "pbft-r5", "client-7", "a", "x_y.z"] {
            validate_node_name(good).unwrap();
        }
        for bad in [
            "",
            "Steward-s0.3",
            "a..b",
            "-a",
            "a-",
            "a b",
            "a/b",
            ".a",
            "é",
        ] {
            assert!(validate_node_name(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn issue_and_read_back_name() {
        let ca = DeploymentCa::generate("test").unwrap();
        for name in ["steward-s0.3", "pbft-r5", "client-7"] {
            let node = ca.issue(name).unwrap();
            assert_eq!(node.name().unwrap(), name);
        }
        assert!(ca.issue("Bad Name").is_err());
        // The CA certificate carries no node name.
        assert!(node_name_from_cert(ca.cert_der()).is_err());
        assert!(node_name_from_cert(b"garbage").is_err());
    }

    #[test]
    fn files_round_trip_and_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let ca = DeploymentCa::generate("files").unwrap();
        let (ca_cert, ca_key) = (dir.path().join("ca.pem"), dir.path().join("ca.key"));
        ca.save(&ca_cert, &ca_key).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&ca_key).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let loaded = DeploymentCa::load(&ca_cert, &ca_key).unwrap();
        assert_eq!(loaded.cert_der(), ca.cert_der());
        assert_eq!(loaded.name, "files deployment CA");

        // A loaded CA still issues certificates that chain to the same CA certificate.
        let node = loaded.issue("pbft-r5").unwrap();
        let (cert, key) = (dir.path().join("n.pem"), dir.path().join("n.key"));
        node.save(&cert, &key).unwrap();
        assert_eq!(NodeCert::load(&cert, &key).unwrap(), node);

        // Raw DER files load too.
        let (cert_der, key_der) = (dir.path().join("n.der"), dir.path().join("n.key.der"));
        fs::write(&cert_der, &node.cert_der).unwrap();
        fs::write(&key_der, &node.key_der).unwrap();
        set_mode(&key_der, 0o600);
        assert_eq!(NodeCert::load(&cert_der, &key_der).unwrap(), node);

        // Errors name the file.
        let missing = dir.path().join("missing.pem");
        let err = NodeCert::load(&missing, &key).unwrap_err().to_string();
        assert!(err.contains("missing.pem"), "{err}");
        let not_a_key = dir.path().join("ca-copy.pem");
        fs::copy(&ca_cert, &not_a_key).unwrap();
        set_mode(&not_a_key, 0o600);
        let err = NodeCert::load(&cert, &not_a_key).unwrap_err().to_string();
        assert!(
            err.contains("ca-copy.pem") && err.contains("PRIVATE KEY"),
            "{err}"
        );
        let other = ca.issue("pbft-r6").unwrap();
        let other_key = dir.path().join("other.key");
        other
            .save(&dir.path().join("other.pem"), &other_key)
            .unwrap();
        let err = NodeCert::load(&cert, &other_key).unwrap_err().to_string();
        assert!(
            err.contains("other.key") && err.contains("does not belong"),
            "{err}"
        );
        let garbage = dir.path().join("garbage.pem");
        fs::write(&garbage, "-----BEGIN CERTIFICATE-----\nnot base64!\n").unwrap();
        let err = load_cert(&garbage).unwrap_err().to_string();
        assert!(err.contains("garbage.pem"), "{err}");
        // The CA certificate is not a node certificate.
        let err = NodeCert::load(&ca_cert, &ca_key).unwrap_err().to_string();
        assert!(err.contains("ca.pem"), "{err}");
    }

    fn set_mode(path: &Path, mode: u32) {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
        }
    }

    /// A CA of deployment `name` and its node pbft-r1 saved as n.pem and n.key in a temporary
    /// directory.
    #[cfg(unix)]
    fn saved_node(name: &str) -> (tempfile::TempDir, DeploymentCa, NodeCert, PathBuf, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let ca = DeploymentCa::generate(name).unwrap();
        let node = ca.issue("pbft-r1").unwrap();
        let (cert, key) = (dir.path().join("n.pem"), dir.path().join("n.key"));
        node.save(&cert, &key).unwrap();
        (dir, ca, node, cert, key)
    }

    #[cfg(unix)]
    #[test]
    fn keys_readable_by_others_are_refused_naming_the_file() {
        let (dir, ca, _node, cert, key) = saved_node("modes");
        assert!(NodeCert::load(&cert, &key).is_ok());
        for mode in [0o640, 0o604, 0o660, 0o606] {
            set_mode(&key, mode);
            let err = NodeCert::load(&cert, &key).unwrap_err().to_string();
            assert!(
                err.contains("n.key")
                    && err.contains(&format!("{mode:04o}"))
                    && err.contains("chmod 600"),
                "{err}"
            );
        }
        set_mode(&key, 0o400);
        assert!(NodeCert::load(&cert, &key).is_ok());
        let (ca_cert, ca_key) = (dir.path().join("ca.pem"), dir.path().join("ca.key"));
        ca.save(&ca_cert, &ca_key).unwrap();
        set_mode(&ca_key, 0o644);
        let err = DeploymentCa::load(&ca_cert, &ca_key)
            .unwrap_err()
            .to_string();
        assert!(err.contains("ca.key") && err.contains("0644"), "{err}");
    }

    #[cfg(unix)]
    #[test]
    fn keys_are_written_to_new_files_only_never_through_links() {
        let (dir, ca, node, cert, key) = saved_node("write");
        // An existing file is not truncated or overwritten.
        let again = ca.issue("pbft-r2").unwrap();
        let err = again.save(&cert, &key).unwrap_err().to_string();
        assert!(err.contains("n.pem") && err.contains("new file"), "{err}");
        assert_eq!(NodeCert::load(&cert, &key).unwrap(), node);
        // A symbolic link where the key goes (even to a missing file) is not followed.
        let victim = dir.path().join("victim.txt");
        fs::write(&victim, "precious").unwrap();
        let (cert2, key2) = (dir.path().join("m.pem"), dir.path().join("m.key"));
        std::os::unix::fs::symlink(&victim, &key2).unwrap();
        let err = again.save(&cert2, &key2).unwrap_err().to_string();
        assert!(err.contains("m.key"), "{err}");
        assert_eq!(fs::read_to_string(&victim).unwrap(), "precious");
        let dangling = dir.path().join("dangling.pem");
        std::os::unix::fs::symlink(dir.path().join("nowhere"), &dangling).unwrap();
        assert!(save_cert(&dangling, &node.cert_der).is_err());
        assert!(!dir.path().join("nowhere").exists());
    }
}
