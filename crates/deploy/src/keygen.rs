//! Key generation for a whole deployment (`loadgen keygen`).

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use steward_config::{ServerId, SiteId, Topology};
use steward_crypto::digest::sha256_parts;
use steward_crypto::signature::{MessageSigner, Scheme, SigningKey};
use steward_crypto::threshold::{deal, Dealing};

use steward_net::DeploymentCa;

use crate::layout::{client_node_name, pbft_node_name, steward_node_name};
use crate::{
    threshold_quorum, DeployError, Layout, Manifest, PbftEntry, SiteEntry, MANIFEST_FORMAT,
};

/// What `generate` should produce.
#[derive(Clone, Debug)]
pub struct KeygenOptions {
    /// Per-message signature scheme.
    pub scheme: Scheme,
    /// Threshold modulus size: 1024 (the paper), 2048 or 3072.
    pub threshold_bits: u32,
    /// Number of client key pairs.
    pub clients: u32,
    /// Derive every key from this seed (reproducible test deployments; never for real use).
    pub seed: Option<u64>,
    /// Replace an existing deployment directory.
    pub force: bool,
}

/// Generate every key of the topology at `topology_path` into `out`. `progress` receives short
/// human-readable status lines.
pub fn generate(
    topology_path: &Path,
    out: &Path,
    opts: &KeygenOptions,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<Manifest, DeployError> {
    if !matches!(opts.threshold_bits, 1024 | 2048 | 3072) {
        return Err(DeployError::Options(format!(
            "--threshold-bits must be 1024, 2048 or 3072, got {}",
            opts.threshold_bits
        )));
    }
    let text = fs::read_to_string(topology_path)
        .map_err(|e| DeployError::file(topology_path, format!("cannot read topology: {e}")))?;
    let topology = Topology::from_toml_str(&text, &topology_path.display().to_string())?;
    prepare_out_dir(out, opts.force)?;
    let layout = Layout::new(out);
    let rngs = RngSource { seed: opts.seed };

    // Threshold keys: the expensive part (safe primes), one job per site, on all cores.
    progress(&format!(
        "dealing {} site threshold keys ({} bits)",
        topology.sites.len(),
        opts.threshold_bits
    ));
    let dealings: Vec<Dealing> = parallel_map(&topology.sites, |site| {
        let l = u16::try_from(site.servers)
            .map_err(|_| DeployError::Options(format!("site {}: too many servers", site.name)))?;
        let k = threshold_quorum(site.servers, site.f) as u16;
        let mut rng = rngs.rng(&format!("threshold/site-{}", site.id.0));
        deal(&mut rng, opts.threshold_bits, l, k)
            .map_err(|e| DeployError::Options(format!("site {}: {e}", site.name)))
    })?;

    // Per-message signing keys for servers, replicas and clients.
    let mut identities: Vec<Identity> = topology.steward_servers().map(Identity::Steward).collect();
    identities.extend((0..topology.pbft.n()).map(Identity::Pbft));
    identities.extend((0..opts.clients).map(Identity::Client));
    progress(&format!(
        "generating {} {} signing keys",
        identities.len(),
        opts.scheme
    ));
    let keys: Vec<SigningKey> = parallel_map(&identities, |id| {
        SigningKey::generate(opts.scheme, &mut rngs.rng(&id.label()))
            .map_err(|e| DeployError::Options(e.to_string()))
    })?;

    // Write everything.
    write_file(&layout.topology(), text.as_bytes(), false)?;
    for (site, dealing) in topology.sites.iter().zip(&dealings) {
        write_file(
            &layout.site_threshold_key(site.id),
            with_newline(dealing.public.to_json()).as_bytes(),
            false,
        )?;
        for (share, id) in dealing.shares.iter().zip(site.server_ids()) {
            make_private_dir(&layout.steward_dir(id))?;
            write_file(
                &layout.steward_share(id),
                with_newline(share.to_json()).as_bytes(),
                true,
            )?;
        }
    }
    for (id, key) in identities.iter().zip(&keys) {
        let (public, secret) = id.paths(&layout);
        if let Some(dir) = secret.parent() {
            make_private_dir(dir)?;
        }
        write_file(&secret, with_newline(key.to_json()).as_bytes(), true)?;
        write_file(
            &public,
            with_newline(key.verifying_key().to_json()).as_bytes(),
            false,
        )?;
    }
    write_tls(&layout, &topology, opts.clients, progress)?;
    let manifest = Manifest {
        format: MANIFEST_FORMAT.to_string(),
        created_unix_s: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
        topology_name: topology.name.clone(),
        topology_source: topology_path.display().to_string(),
        scheme: opts.scheme,
        threshold_bits: opts.threshold_bits,
        clients: opts.clients,
        seed: opts.seed,
        steward_sites: topology
            .sites
            .iter()
            .zip(&dealings)
            .map(|(s, d)| SiteEntry {
                id: s.id.0,
                name: s.name.clone(),
                f: s.f,
                servers: s.servers,
                threshold_k: u32::from(d.public.quorum()),
                key_fingerprint: hex_string(&d.public.fingerprint()),
            })
            .collect(),
        pbft: PbftEntry {
            replicas: topology.pbft.n(),
            f: topology.pbft.f,
            primary: topology.pbft.primary,
            placement: topology
                .pbft
                .replicas
                .iter()
                .map(|s: &SiteId| s.0)
                .collect(),
        },
    };
    let json = serde_json::to_string_pretty(&manifest).expect("manifest serializes");
    // The manifest goes last: its presence marks a complete deployment.
    write_file(&layout.manifest(), with_newline(json).as_bytes(), false)?;
    Ok(manifest)
}

/// The deployment CA (public certificate, private key in `ca/`) and one TLS certificate and
/// key per Steward server, PBFT replica and client, in each one's private folder. TLS keys come from the
/// OS randomness even for seeded deployments (they authenticate the transport only).
fn write_tls(
    layout: &Layout,
    topology: &Topology,
    clients: u32,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<(), DeployError> {
    let names: Vec<(String, PathBuf, PathBuf)> = topology
        .steward_servers()
        .map(|id| {
            (
                steward_node_name(id),
                layout.steward_tls_cert(id),
                layout.steward_tls_key(id),
            )
        })
        .chain((0..topology.pbft.n()).map(|r| {
            (
                pbft_node_name(r),
                layout.pbft_tls_cert(r),
                layout.pbft_tls_key(r),
            )
        }))
        .chain((0..clients).map(|c| {
            (
                client_node_name(c),
                layout.client_tls_cert(c),
                layout.client_tls_key(c),
            )
        }))
        .collect();
    progress(&format!(
        "issuing a deployment CA and {} TLS certificates",
        names.len()
    ));
    let ca = DeploymentCa::generate(&format!("steward deployment {}", topology.name))
        .map_err(|e| DeployError::Options(format!("deployment CA: {e}")))?;
    for dir in [
        layout
            .ca_cert()
            .parent()
            .expect("has a parent")
            .to_path_buf(),
        layout.ca_key_dir(),
    ] {
        make_private_dir(&dir)?;
    }
    fs::set_permissions(
        layout.ca_cert().parent().expect("has a parent"),
        fs::Permissions::from_mode(0o755),
    )
    .map_err(|e| DeployError::file(&layout.ca_cert(), e))?;
    ca.save(&layout.ca_cert(), &layout.ca_key())
        .map_err(|e| DeployError::file(&layout.ca_cert(), e))?;
    for (name, cert, key) in names {
        if let Some(dir) = cert.parent() {
            make_private_dir(dir)?;
        }
        ca.issue(&name)
            .and_then(|c| c.save(&cert, &key))
            .map_err(|e| DeployError::file(&cert, e))?;
    }
    Ok(())
}

fn with_newline(mut s: String) -> String {
    s.push('\n');
    s
}

fn hex_string(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A node or client that gets a signing key.
enum Identity {
    Steward(ServerId),
    Pbft(u32),
    Client(u32),
}

impl Identity {
    fn label(&self) -> String {
        match self {
            Identity::Steward(id) => format!("signing/steward/{id}"),
            Identity::Pbft(i) => format!("signing/pbft/{i}"),
            Identity::Client(i) => format!("signing/client/{i}"),
        }
    }

    /// (public key path, secret key path).
    fn paths(&self, layout: &Layout) -> (PathBuf, PathBuf) {
        match *self {
            Identity::Steward(id) => (layout.steward_public(id), layout.steward_signing_key(id)),
            Identity::Pbft(i) => (layout.pbft_public(i), layout.pbft_signing_key(i)),
            Identity::Client(i) => (layout.client_public(i), layout.client_signing_key(i)),
        }
    }
}

/// Independent RNG streams per key: from the OS, or derived from a seed and the key's label so
/// that seeded output does not depend on thread scheduling.
struct RngSource {
    seed: Option<u64>,
}

impl RngSource {
    fn rng(&self, label: &str) -> ChaCha20Rng {
        match self.seed {
            Some(seed) => ChaCha20Rng::from_seed(sha256_parts(&[
                b"steward/keygen/v1",
                &seed.to_be_bytes(),
                label.as_bytes(),
            ])),
            None => ChaCha20Rng::from_entropy(),
        }
    }
}

/// Map `f` over `items` on all available cores, preserving order; the first error wins.
fn parallel_map<T: Sync, R: Send>(
    items: &[T],
    f: impl Fn(&T) -> Result<R, DeployError> + Sync,
) -> Result<Vec<R>, DeployError> {
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(items.len().max(1));
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Result<R, DeployError>>>> =
        Mutex::new((0..items.len()).map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(item) = items.get(i) else { break };
                let r = f(item);
                results.lock().unwrap_or_else(|p| p.into_inner())[i] = Some(r);
            });
        }
    });
    results
        .into_inner()
        .unwrap_or_else(|p| p.into_inner())
        .into_iter()
        .map(|r| r.expect("every item was processed"))
        .collect()
}

/// Refuse to touch a non-empty directory unless it is a deployment and `force` is set.
fn prepare_out_dir(out: &Path, force: bool) -> Result<(), DeployError> {
    if out.exists() {
        let meta = fs::metadata(out).map_err(|e| DeployError::file(out, e))?;
        if !meta.is_dir() {
            return Err(DeployError::file(out, "exists and is not a directory"));
        }
        let empty = fs::read_dir(out)
            .map_err(|e| DeployError::file(out, e))?
            .next()
            .is_none();
        if !empty {
            let manifest = Layout::new(out).manifest();
            if !is_deployment_manifest(&manifest) {
                return Err(DeployError::file(
                    out,
                    format!(
                        "exists, is not empty and is not a deployment directory (no manifest.json \
                         with format {MANIFEST_FORMAT:?}); refusing to touch it"
                    ),
                ));
            }
            if !force {
                return Err(DeployError::file(
                    out,
                    "a deployment already exists here; pass --force to replace it",
                ));
            }
            fs::remove_dir_all(out).map_err(|e| DeployError::file(out, e))?;
        }
    }
    remove_old_ca_key_dir(&Layout::new(out), force)?;
    fs::create_dir_all(out).map_err(|e| DeployError::file(out, e))
}

/// Whether `path` is a deployment's manifest: JSON whose `format` is [`MANIFEST_FORMAT`] (a
/// results directory also has a `manifest.json`, of another format).
fn is_deployment_manifest(path: &Path) -> bool {
    #[derive(serde::Deserialize)]
    struct Tag {
        format: String,
    }
    fs::read_to_string(path)
        .ok()
        .and_then(|text| serde_json::from_str::<Tag>(&text).ok())
        .is_some_and(|tag| tag.format == MANIFEST_FORMAT)
}

/// The CA key folder beside the deployment: absent, or (with `force`) a folder holding only
/// `ca.key.pem`, which is removed; anything else is refused.
fn remove_old_ca_key_dir(layout: &Layout, force: bool) -> Result<(), DeployError> {
    let dir = layout.ca_key_dir();
    let Ok(meta) = fs::symlink_metadata(&dir) else {
        return Ok(());
    };
    let only_the_key = meta.is_dir()
        && fs::read_dir(&dir)
            .map_err(|e| DeployError::file(&dir, e))?
            .map(|entry| entry.map(|e| e.file_name()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| DeployError::file(&dir, e))?
            .iter()
            .all(|name| name == "ca.key.pem");
    if !only_the_key {
        return Err(DeployError::file(
            &dir,
            "exists and is not a deployment's CA key folder (it should hold only ca.key.pem); \
             refusing to touch it",
        ));
    }
    if !force {
        return Err(DeployError::file(
            &dir,
            "the CA key of an earlier deployment is here; pass --force to replace it",
        ));
    }
    fs::remove_dir_all(&dir).map_err(|e| DeployError::file(&dir, e))
}

fn make_private_dir(dir: &Path) -> Result<(), DeployError> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| DeployError::file(dir, e))
}

fn write_file(path: &Path, bytes: &[u8], secret: bool) -> Result<(), DeployError> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(|e| DeployError::file(parent, e))?;
    }
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(if secret { 0o600 } else { 0o644 })
        .open(path)
        .map_err(|e| DeployError::file(path, e))?;
    f.write_all(bytes).map_err(|e| DeployError::file(path, e))
}
