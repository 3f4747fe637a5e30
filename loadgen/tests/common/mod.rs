//! Helpers shared by loadgen's integration tests: running the binary, the two-site topology,
//! a keygen'd deployment with a local address map, replica processes killed on drop, and the
//! summary CSV read by column name.
#![allow(dead_code)] // each test file uses a part

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

/// A topology of `sites` of 4 servers (f = 1) each, `wan_ms` apart at 10 Mbit/s, clients at
/// the first site and PBFT's `servers_per_site` table `pbft`.
pub fn topology(name: &str, wan_ms: u32, sites: &[&str], pbft: &str) -> String {
    let mut text = format!(
        "name = \"{name}\"\n[lan]\nlatency_ms = 0.1\nbandwidth = \"1Gbps\"\n\
         [wan.default]\nlatency_ms = {wan_ms}\nbandwidth = \"10Mbps\"\n"
    );
    for site in sites {
        text += &format!("[[site]]\nname = \"{site}\"\nf = 1\nservers = 4\n");
    }
    text + &format!(
        "[clients]\nweights = {{ {} = 1 }}\n[pbft]\nservers_per_site = {pbft}\n",
        sites[0]
    )
}

/// Two sites of 4, 5 ms apart; PBFT places two replicas at each.
pub fn two_sites() -> String {
    topology("two-sites", 5, &["a", "b"], "{ a = 2, b = 2 }")
}

/// The loadgen binary, to be given arguments.
pub fn loadgen_cmd() -> Command {
    Command::new(env!("CARGO_BIN_EXE_loadgen"))
}

/// The loadgen binary with `args` (split at white space), then each `(option, path)` of
/// `paths`.
pub fn loadgen_with(args: &str, paths: &[(&str, &Path)]) -> Command {
    let mut cmd = loadgen_cmd();
    cmd.args(args.split_whitespace());
    for (option, path) in paths {
        cmd.arg(option).arg(path);
    }
    cmd
}

/// Runs loadgen with `args` to completion.
pub fn loadgen(args: &[&str]) -> Output {
    loadgen_cmd().args(args).output().expect("run loadgen")
}

/// loadgen with `args`, stdout and stderr piped (so neither is a terminal) and without
/// `LOADGEN_PROGRESS`; asserts success.
pub fn piped(args: &[&str]) -> Output {
    let mut cmd = loadgen_cmd();
    cmd.env_remove("LOADGEN_PROGRESS").args(args);
    let o = cmd.output().expect("run loadgen");
    assert_ok(&o);
    o
}

/// A command's stdout, as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A path of the repository (the workspace root), as a string.
pub fn repo(path: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(path)
        .display()
        .to_string()
}

/// Writes `text` as `name` in `dir` and returns its path.
pub fn write_topology(dir: &Path, name: &str, text: &str) -> PathBuf {
    let topo = dir.join(name);
    std::fs::write(&topo, text).unwrap();
    topo
}

/// `loadgen keygen` of `topo` into `dep` with keys for `clients` clients; asserts success.
pub fn keygen(topo: &Path, dep: &Path, clients: u32) {
    let paths = [("--topology", topo), ("--out", dep)];
    let args = format!("keygen --clients {clients}");
    assert_ok(&loadgen_with(&args, &paths).output().unwrap());
}

/// [`two_sites`] in `dir`, keygen'd into `dir/dep` with keys for `clients` clients and
/// [`write_local_addresses`]; returns the deployment.
pub fn local_deployment(dir: &Path, clients: u32) -> PathBuf {
    let topo = write_topology(dir, "two.toml", &two_sites());
    let dep = dir.join("dep");
    keygen(&topo, &dep, clients);
    write_local_addresses(&dep);
    dep
}

/// Four PBFT replicas on distinct 127.0.0.1 ports (chosen by binding port 0), written as the
/// deployment's `addresses.json`.
pub fn write_local_addresses(dep: &Path) {
    let mut map = serde_json::Map::new();
    let probes: Vec<std::net::UdpSocket> = (0..4)
        .map(|_| std::net::UdpSocket::bind("127.0.0.1:0").unwrap())
        .collect();
    for (r, probe) in probes.iter().enumerate() {
        map.insert(
            format!("pbft-r{r}"),
            probe.local_addr().unwrap().to_string().into(),
        );
    }
    drop(probes);
    std::fs::write(
        dep.join("addresses.json"),
        serde_json::Value::Object(map).to_string(),
    )
    .unwrap();
}

/// Starts `loadgen replica --protocol pbft --wan off --id <id>` of deployment `dep`, its stdout
/// piped, its stderr to `stderr`.
pub fn spawn_pbft_replica(dep: &Path, id: &str, stderr: Stdio) -> Child {
    loadgen_cmd()
        .args(["replica", "--protocol", "pbft", "--wan", "off", "--id", id])
        .arg("--deployment")
        .arg(dep)
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .unwrap()
}

/// Reads a replica's first stdout line and asserts it is its ready line.
pub fn await_ready(child: &mut Child, id: &str) {
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.starts_with(&format!("ready pbft-{id}")), "{line}");
}

/// Kills (by pid) and reaps the children it holds when dropped, also when an assertion fails.
pub struct Children(pub Vec<Child>);

impl Drop for Children {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A summary CSV: its header and rows, read by column name.
pub struct Summary {
    pub text: String,
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Summary {
    /// Reads `dir/summary.csv`.
    pub fn read(dir: &Path) -> Summary {
        let text = std::fs::read_to_string(dir.join("summary.csv")).unwrap();
        let split = |l: &str| l.split(',').map(str::to_owned).collect::<Vec<_>>();
        let mut lines = text.lines();
        let header = split(lines.next().unwrap());
        let rows = lines.map(split).collect();
        Summary { text, header, rows }
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Row `row`'s value in column `name`.
    pub fn col(&self, row: usize, name: &str) -> &str {
        let i = self.header.iter().position(|h| h == name).unwrap();
        &self.rows[row][i]
    }
}

/// `dir/manifest.json`, parsed.
pub fn manifest(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).unwrap()).unwrap()
}

/// A finished run's stderr, as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts the run succeeded, showing its stdout and stderr if not.
pub fn assert_ok(o: &Output) {
    assert!(
        o.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        stderr(o)
    );
}

/// Asserts the run failed; returns its stderr.
pub fn refused(o: &Output) -> String {
    assert!(!o.status.success(), "{}", stderr(o));
    stderr(o)
}
