use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use rand::SeedableRng;
use steward_config::{ServerId, SiteId};
use steward_crypto::signature::{MessageSigner, MessageVerifier, Scheme};

use super::*;

const TOPOLOGY: &str = r#"
name = "two-sites"
description = "test"

[lan]
latency_ms = 0.1
bandwidth = "1Gbps"

[wan.default]
latency_ms = 20
bandwidth = "10Mbps"

[[site]]
name = "east"
f = 1

[[site]]
name = "west"
f = 0
servers = 2

[pbft]
servers_per_site = { east = 3, west = 1 }
"#;

fn opts(seed: Option<u64>) -> KeygenOptions {
    KeygenOptions {
        scheme: Scheme::Ed25519,
        threshold_bits: 1024,
        clients: 3,
        seed,
        force: false,
    }
}

fn setup(dir: &Path) -> std::path::PathBuf {
    let topo = dir.join("t.toml");
    fs::write(&topo, TOPOLOGY).unwrap();
    topo
}

fn quiet(_: &str) {}

/// A deployment generated with `seed` as `dep` in a new temporary directory, from `t.toml`
/// there: the directory, the topology's path and the deployment's.
fn generated(seed: u64) -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let topo = setup(tmp.path());
    let out = tmp.path().join("dep");
    generate(&topo, &out, &opts(Some(seed)), &quiet).unwrap();
    (tmp, topo, out)
}

#[test]
fn generates_a_complete_private_layout_and_loads_it_back() {
    let tmp = tempfile::tempdir().unwrap();
    let topo = setup(tmp.path());
    let out = tmp.path().join("dep");
    let manifest = generate(&topo, &out, &opts(Some(7)), &quiet).unwrap();
    assert_eq!(manifest.steward_sites.len(), 2);
    assert_eq!(manifest.steward_sites[0].threshold_k, 3);
    assert_eq!(manifest.steward_sites[1].threshold_k, 2);
    assert_eq!(manifest.pbft.replicas, 4);

    let dep = Deployment::load(&out).unwrap();
    assert_eq!(dep.manifest, manifest);
    let layout = &dep.layout;
    let servers: Vec<ServerId> = dep.topology.steward_servers().collect();
    assert_eq!(servers.len(), 6);
    for &id in &servers {
        // Exactly this server's secret files, private permissions.
        let dir = layout.steward_dir(id);
        let mut names: Vec<String> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(
            names,
            [
                "signing.key.json",
                "threshold.share.json",
                "tls.cert.pem",
                "tls.key.pem"
            ]
        );
        assert_eq!(
            fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
            0o700
        );
        for f in names.iter().filter(|f| f.as_str() != "tls.cert.pem") {
            let mode = fs::metadata(dir.join(f)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{id}/{f}");
        }
        // The secrets are this server's own: they match its public key and share index.
        let secrets = dep.steward_secrets(id).unwrap();
        assert_eq!(u32::from(secrets.share.id()), id.index + 1);
        let sig = secrets.signing.sign(b"hello");
        assert_eq!(
            dep.steward_public(id).unwrap().verify(b"hello", &sig),
            Ok(())
        );
        for &other in servers.iter().filter(|&&o| o != id) {
            assert!(dep
                .steward_public(other)
                .unwrap()
                .verify(b"hello", &sig)
                .is_err());
        }
    }
    // 2f+1 loaded shares of site 0 produce a valid site signature.
    let pk = dep.site_threshold_key(SiteId(0)).unwrap();
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
    let shares: Vec<_> = servers
        .iter()
        .filter(|s| s.site == SiteId(0))
        .take(3)
        .map(|&s| {
            dep.steward_secrets(s)
                .unwrap()
                .share
                .sign(&pk, b"site says", &mut rng)
                .unwrap()
        })
        .collect();
    let combined = pk.combine(b"site says", &shares).unwrap();
    assert!(pk.verify(b"site says", &combined.signature));
    // PBFT replicas and clients.
    for r in 0..4 {
        let sig = dep.pbft_secret(r).unwrap().sign(b"x");
        assert_eq!(dep.pbft_public(r).unwrap().verify(b"x", &sig), Ok(()));
    }
    for c in 0..3 {
        let sig = dep.client_secret(c).unwrap().sign(b"x");
        assert_eq!(dep.client_public(c).unwrap().verify(b"x", &sig), Ok(()));
    }
    assert!(dep
        .client_secret(3)
        .unwrap_err()
        .to_string()
        .contains("no client 3"));
    assert!(dep.pbft_public(4).is_err());
    assert!(dep.steward_public(ServerId::new(SiteId(1), 2)).is_err());
    assert_eq!(fs::read_to_string(layout.topology()).unwrap(), TOPOLOGY);
}

#[test]
fn seeded_generation_is_reproducible() {
    let tmp = tempfile::tempdir().unwrap();
    let topo = setup(tmp.path());
    let a = generate(&topo, &tmp.path().join("a"), &opts(Some(3)), &quiet).unwrap();
    let b = generate(&topo, &tmp.path().join("b"), &opts(Some(3)), &quiet).unwrap();
    assert_eq!(a.steward_sites, b.steward_sites);
    let pa = Layout::new(tmp.path().join("a")).steward_public(ServerId::new(SiteId(1), 1));
    let pb = Layout::new(tmp.path().join("b")).steward_public(ServerId::new(SiteId(1), 1));
    assert_eq!(fs::read(pa).unwrap(), fs::read(pb).unwrap());
}

#[test]
fn refuses_to_overwrite_without_force() {
    let tmp = tempfile::tempdir().unwrap();
    let topo = setup(tmp.path());
    let out = tmp.path().join("dep");
    let first = generate(&topo, &out, &opts(Some(1)), &quiet).unwrap();
    let err = generate(&topo, &out, &opts(Some(2)), &quiet).unwrap_err();
    assert!(err.to_string().contains("--force"), "{err}");
    // Nothing was lost.
    assert_eq!(Deployment::load(&out).unwrap().manifest, first);
    let forced = KeygenOptions {
        force: true,
        ..opts(Some(2))
    };
    let second = generate(&topo, &out, &forced, &quiet).unwrap();
    assert_ne!(second.steward_sites, first.steward_sites);
    // A non-empty directory that is not a deployment is never touched, even with --force.
    let other = tmp.path().join("other");
    fs::create_dir(&other).unwrap();
    fs::write(other.join("precious.txt"), "keep").unwrap();
    let err = generate(&topo, &other, &forced, &quiet).unwrap_err();
    assert!(err.to_string().contains("not a deployment"), "{err}");
    assert!(other.join("precious.txt").exists());
}

#[test]
fn bad_inputs_name_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("bad.toml");
    fs::write(&bad, TOPOLOGY.replace("f = 0", "f = 1")).unwrap();
    let err = generate(&bad, &tmp.path().join("d"), &opts(None), &quiet).unwrap_err();
    assert!(err.to_string().contains("bad.toml"), "{err}");

    let topo = setup(tmp.path());
    let bits = KeygenOptions {
        threshold_bits: 1000,
        ..opts(None)
    };
    assert!(generate(&topo, &tmp.path().join("d"), &bits, &quiet).is_err());

    let out = tmp.path().join("dep");
    generate(&topo, &out, &opts(Some(5)), &quiet).unwrap();
    let id = ServerId::new(SiteId(0), 2);
    let share = Layout::new(&out).steward_share(id);
    let text = fs::read_to_string(&share).unwrap();
    fs::write(&share, &text[..text.len() / 2]).unwrap();
    let dep = Deployment::load(&out).unwrap();
    let err = dep.steward_secrets(id).unwrap_err().to_string();
    assert!(
        err.contains("threshold.share.json") && err.contains("malformed"),
        "{err}"
    );
    fs::remove_file(Layout::new(&out).manifest()).unwrap();
    let err = Deployment::load(&out).unwrap_err().to_string();
    assert!(err.contains("manifest.json"), "{err}");
}

#[test]
fn writes_a_ca_and_tls_identities_and_an_address_map() {
    let (_tmp, _, out) = generated(3);
    let dep = Deployment::load(&out).unwrap();
    let ca = dep.ca_cert().unwrap();
    assert!(!ca.is_empty());
    let ca_dir = dep.layout.ca_key().parent().unwrap().to_path_buf();
    assert_eq!(
        fs::metadata(&ca_dir).unwrap().permissions().mode() & 0o777,
        0o700
    );
    for id in dep.topology.steward_servers() {
        let cert = dep.steward_tls(id).unwrap();
        assert_eq!(cert.name().unwrap(), steward_node_name(id));
        let mode = fs::metadata(dep.layout.steward_tls_key(id))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    for c in 0..3 {
        assert_eq!(
            dep.client_tls(c).unwrap().name().unwrap(),
            client_node_name(c)
        );
    }
    assert!(dep.client_tls(3).is_err());
    for r in 0..dep.manifest.pbft.replicas {
        assert_eq!(dep.pbft_tls(r).unwrap().name().unwrap(), pbft_node_name(r));
    }
    assert!(dep.pbft_tls(dep.manifest.pbft.replicas).is_err());
    // A missing key file is a one-line error naming the file.
    let id = ServerId::new(SiteId(0), 1);
    fs::remove_file(dep.layout.steward_tls_key(id)).unwrap();
    let err = dep.steward_tls(id).unwrap_err().to_string();
    assert!(err.contains("tls.key.pem"), "{err}");

    // Address map: missing, round trip, malformed.
    let err = dep.addresses().unwrap_err().to_string();
    assert!(err.contains("addresses.json"), "{err}");
    let mut map = Addresses::new();
    map.insert("steward-s0.0".into(), "127.0.0.2:4000".parse().unwrap());
    map.insert("client-0".into(), "127.0.0.9:4001".parse().unwrap());
    write_addresses(&dep.layout.addresses(), &map).unwrap();
    assert_eq!(dep.addresses().unwrap(), map);
    fs::write(dep.layout.addresses(), "{\"x\": 3}").unwrap();
    let err = dep.addresses().unwrap_err().to_string();
    assert!(err.contains("malformed address map"), "{err}");
}

#[test]
fn force_replaces_only_a_deployment_never_a_results_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let topo = setup(tmp.path());
    let forced = KeygenOptions {
        force: true,
        ..opts(Some(1))
    };
    // A results directory also has a manifest.json, of another format.
    let results = tmp.path().join("results");
    fs::create_dir(&results).unwrap();
    fs::write(
        results.join("manifest.json"),
        r#"{"format": "steward-results/v1", "git": "abc"}"#,
    )
    .unwrap();
    fs::write(results.join("summary.csv"), "precious").unwrap();
    let err = generate(&topo, &results, &forced, &quiet)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("results") && err.contains(MANIFEST_FORMAT),
        "{err}"
    );
    assert_eq!(
        fs::read_to_string(results.join("summary.csv")).unwrap(),
        "precious"
    );
    // A malformed manifest.json is no licence either.
    fs::write(results.join("manifest.json"), "not json").unwrap();
    assert!(generate(&topo, &results, &forced, &quiet).is_err());
    assert!(results.join("summary.csv").exists());
}

#[test]
fn the_ca_key_lives_beside_the_deployment_not_in_it() {
    let (tmp, topo, out) = generated(3);
    let layout = Layout::new(&out);
    let key = layout.ca_key();
    assert_eq!(key, tmp.path().join("dep.ca").join("ca.key.pem"));
    assert!(key.exists());
    assert!(!key.starts_with(&out));
    // No file inside the deployment holds the CA key: copying it never ships one.
    let ca = steward_net::DeploymentCa::load(&layout.ca_cert(), &key).unwrap();
    let key_text = fs::read(&key).unwrap();
    let mut stack = vec![out.clone()];
    let mut files = 0;
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files += 1;
                assert_ne!(fs::read(&path).unwrap(), key_text, "{}", path.display());
            }
        }
    }
    assert!(files > 20);
    // --force replaces the deployment and its CA key folder.
    let forced = KeygenOptions {
        force: true,
        ..opts(Some(4))
    };
    generate(&topo, &out, &forced, &quiet).unwrap();
    let again = steward_net::DeploymentCa::load(&layout.ca_cert(), &key).unwrap();
    assert_ne!(again.key_der(), ca.key_der());
    // A folder of that name holding anything else is refused, even with --force.
    fs::write(tmp.path().join("dep.ca").join("notes.txt"), "mine").unwrap();
    let err = generate(&topo, &out, &forced, &quiet)
        .unwrap_err()
        .to_string();
    assert!(err.contains("dep.ca"), "{err}");
    assert!(tmp.path().join("dep.ca/notes.txt").exists());
}

#[test]
fn secret_keys_readable_by_others_are_refused_naming_the_file() {
    let (_tmp, _, out) = generated(6);
    let dep = Deployment::load(&out).unwrap();
    let id = ServerId::new(SiteId(0), 1);
    let chmod = |path: &Path, mode: u32| {
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap()
    };
    for (path, load) in [
        (
            dep.layout.steward_signing_key(id),
            Box::new(|| dep.steward_secrets(id).map(drop))
                as Box<dyn Fn() -> Result<(), DeployError>>,
        ),
        (
            dep.layout.steward_share(id),
            Box::new(|| dep.steward_secrets(id).map(drop)),
        ),
        (
            dep.layout.pbft_signing_key(0),
            Box::new(|| dep.pbft_secret(0).map(drop)),
        ),
        (
            dep.layout.client_signing_key(2),
            Box::new(|| dep.client_secret(2).map(drop)),
        ),
        (
            dep.layout.pbft_tls_key(1),
            Box::new(|| dep.pbft_tls(1).map(drop)),
        ),
    ] {
        assert!(load().is_ok(), "{}", path.display());
        chmod(&path, 0o644);
        let err = load().unwrap_err().to_string();
        let file = path.file_name().unwrap().to_str().unwrap();
        assert!(
            err.contains(file) && err.contains("0644") && err.contains("chmod 600"),
            "{err}"
        );
        chmod(&path, 0o600);
        assert!(load().is_ok());
    }
}

#[test]
fn address_maps_with_unreachable_or_shared_addresses_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("addresses.json");
    let check = |json: &str| {
        fs::write(&path, json).unwrap();
        read_addresses(&path).map_err(|e| e.to_string())
    };
    assert!(check(r#"{"pbft-r0": "127.0.0.1:4000", "pbft-r1": "127.0.0.1:4001"}"#).is_ok());
    let err = check(r#"{"pbft-r0": "0.0.0.0:4000"}"#).unwrap_err();
    assert!(
        err.contains("addresses.json") && err.contains("pbft-r0") && err.contains("unspecified"),
        "{err}"
    );
    let err = check(r#"{"pbft-r0": "[::]:4000"}"#).unwrap_err();
    assert!(err.contains("unspecified"), "{err}");
    let err = check(r#"{"pbft-r0": "127.0.0.1:0"}"#).unwrap_err();
    assert!(err.contains("port 0"), "{err}");
    let err = check(r#"{"pbft-r0": "127.0.0.1:4000", "client-1": "127.0.0.1:4000"}"#).unwrap_err();
    assert!(
        err.contains("client-1") && err.contains("pbft-r0") && err.contains("same address"),
        "{err}"
    );
}
