//! The layering rule of the workspace, checked on the real dependency graph (`cargo tree`):
//! the protocol cores build on `bft-core` only, neither protocol depends on the other, and no
//! core links the async runtime or the QUIC stack (those belong to `steward-runtime` and the
//! composition crate `bft-nodes`).

use std::path::PathBuf;
use std::process::Command;

/// The packages `package` depends on (all edge kinds, this platform), by name.
fn dependencies(package: &str) -> Vec<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../Cargo.toml");
    let out = Command::new(cargo)
        .args(["tree", "--offline", "--prefix", "none", "--format", "{p}"])
        .args(["-p", package, "--manifest-path"])
        .arg(&manifest)
        .output()
        .expect("run cargo tree");
    assert!(
        out.status.success(),
        "cargo tree -p {package} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

fn assert_excludes(package: &str, forbidden: &[&str]) {
    let deps = dependencies(package);
    assert!(
        deps.iter().any(|d| d == package),
        "cargo tree -p {package} did not list the package itself: {deps:?}"
    );
    for f in forbidden {
        assert!(
            !deps.iter().any(|d| d == f),
            "{package} depends on {f}, which the layering rule forbids"
        );
    }
}

const IO: [&str; 4] = ["tokio", "quinn", "quinn-proto", "rustls"];

#[test]
fn pbft_depends_neither_on_steward_nor_on_io() {
    let mut forbidden = vec!["steward"];
    forbidden.extend(IO);
    assert_excludes("pbft", &forbidden);
}

#[test]
fn steward_depends_neither_on_pbft_nor_on_io() {
    let mut forbidden = vec!["pbft"];
    forbidden.extend(IO);
    assert_excludes("steward", &forbidden);
}

#[test]
fn foundation_and_harness_are_protocol_neutral_and_sans_io() {
    let mut forbidden = vec!["steward", "pbft"];
    forbidden.extend(IO);
    assert_excludes("bft-core", &forbidden);
    assert_excludes("bft-harness", &forbidden);
}
