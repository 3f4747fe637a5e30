//! Restarts of real processes on loopback: a peer SIGKILLed and started again must be
//! reachable again at once, not after the 60 s QUIC idle timeout, and what the kill lost must
//! show up in `messages_dropped`.
//!
//! The peer process is this test binary run again with `STEWARD_NET_CHILD` set: the
//! [`child_process`] entry point then runs a node (see [`run_child`]) instead of testing,
//! and reports on stdout in lines starting with `@@`.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use steward_net::accuracy::random_loopback_ip;
use steward_net::certs::{load_cert, save_cert};
use steward_net::transport::{Transport, TransportConfig};
use steward_net::{DeploymentCa, NodeCert};

const CHILD_ENV: &str = "STEWARD_NET_CHILD";
/// Longest a child lives (it is killed long before in a passing run).
const CHILD_LIFETIME: Duration = Duration::from_secs(40);
/// Recovery bound asserted: far below the 60 s idle timeout that recovery took before.
const RECOVERY_BOUND: Duration = Duration::from_secs(10);

/// A child process (killed, by its pid, when dropped) and the `@@` lines it prints.
struct ChildNode {
    child: Child,
    lines: std_mpsc::Receiver<String>,
}

impl ChildNode {
    /// Starts `role` as `name` bound to `bind`, with the peer `peer` at `peer_addr`.
    fn start(
        dir: &Path,
        role: &str,
        name: &str,
        bind: SocketAddr,
        peer: &str,
        peer_addr: SocketAddr,
    ) -> ChildNode {
        let exe = std::env::current_exe().unwrap();
        let mut child = Command::new(exe)
            .args([
                "--exact",
                "child_process",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, role)
            .env("CHILD_DIR", dir)
            .env("CHILD_NAME", name)
            .env("CHILD_BIND", bind.to_string())
            .env("CHILD_PEER", peer)
            .env("CHILD_PEER_ADDR", peer_addr.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout: ChildStdout = child.stdout.take().unwrap();
        let (tx, lines) = std_mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                // libtest may have printed `test child_process ... ` before it.
                if let Some(at) = line.find("@@") {
                    if tx.send(line[at + 2..].to_string()).is_err() {
                        break;
                    }
                }
            }
        });
        ChildNode { child, lines }
    }

    /// The next `@@` line, waiting at most `within`.
    fn line(&self, within: Duration) -> Option<String> {
        self.lines.recv_timeout(within).ok()
    }

    /// Waits for `ready <addr>`.
    fn ready(&self) -> SocketAddr {
        let line = self
            .line(Duration::from_secs(20))
            .expect("child did not get ready");
        line.strip_prefix("ready ")
            .unwrap_or_else(|| panic!("unexpected line {line:?}"))
            .parse()
            .unwrap()
    }

    /// Waits, at most `within` for each line, for the first `n` lines `parse` accepts; fails
    /// with `what` when a line does not come.
    fn take<T>(
        &self,
        n: usize,
        within: Duration,
        what: &str,
        parse: impl Fn(&str) -> Option<T>,
    ) -> Vec<T> {
        let mut found = Vec::with_capacity(n);
        while found.len() < n {
            let line = self.line(within).unwrap_or_else(|| panic!("{what}"));
            found.extend(parse(&line));
        }
        found
    }

    /// Waits at most [`RECOVERY_BOUND`] for the first line `parse` accepts (failing with
    /// `what`); returns it and how long it took to come.
    fn first_within_bound<T>(
        &self,
        what: &str,
        parse: impl Fn(&str) -> Option<T>,
    ) -> (T, Duration) {
        let started = Instant::now();
        let first = self.take(1, RECOVERY_BOUND, what, parse).remove(0);
        (first, started.elapsed())
    }

    /// SIGKILL, and reap.
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ChildNode {
    fn drop(&mut self) {
        self.kill();
    }
}

fn save_identity(dir: &Path, ca: &DeploymentCa, cert: &NodeCert) {
    save_cert(&dir.join("ca.pem"), ca.cert_der()).unwrap();
    cert.save(&dir.join("node.pem"), &dir.join("node.key"))
        .unwrap();
}

/// A runtime of one worker thread.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
}

/// What both restart cases start from: a CA, the child's identity saved in a temporary
/// directory, a runtime for the node in this process, and a random loopback IP for both.
struct Setup {
    /// The child's role and name, and the name of its peer in this process.
    role: &'static str,
    child: &'static str,
    me: &'static str,
    dir: tempfile::TempDir,
    ca: DeploymentCa,
    rt: tokio::runtime::Runtime,
    ip: IpAddr,
}

impl Setup {
    /// Runs `case` on a new setup with this process's node's runtime entered; does nothing
    /// in a child process (which runs [`child_process`], not the restart cases).
    fn run(
        deployment: &str,
        role: &'static str,
        child: &'static str,
        me: &'static str,
        case: impl FnOnce(&Setup, &tokio::runtime::Runtime),
    ) {
        let Some(setup) = Setup::new(deployment, role, child, me) else {
            return;
        };
        let _guard = setup.rt.enter();
        case(&setup, &setup.rt);
    }

    /// None in a child process.
    fn new(
        deployment: &str,
        role: &'static str,
        child: &'static str,
        me: &'static str,
    ) -> Option<Setup> {
        if std::env::var(CHILD_ENV).is_ok() {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let ca = DeploymentCa::generate(deployment).unwrap();
        save_identity(dir.path(), &ca, &ca.issue(child).unwrap());
        Some(Setup {
            role,
            child,
            me,
            dir,
            ca,
            rt: runtime(),
            ip: random_loopback_ip(),
        })
    }

    /// The loopback IP with port 0: a free port.
    fn any_port(&self) -> SocketAddr {
        SocketAddr::new(self.ip, 0)
    }

    /// The config of the node in this process, on a free port.
    fn config(&self) -> TransportConfig {
        config(
            self.me,
            self.ca.issue(self.me).unwrap(),
            self.ca.cert_der().to_vec(),
            self.any_port(),
        )
    }

    /// Starts the child bound to `bind`, with its peer (in this process) at `peer_addr`.
    fn start(&self, bind: SocketAddr, peer_addr: SocketAddr) -> ChildNode {
        ChildNode::start(
            self.dir.path(),
            self.role,
            self.child,
            bind,
            self.me,
            peer_addr,
        )
    }
}

fn config(name: &str, identity: NodeCert, ca: Vec<u8>, bind: SocketAddr) -> TransportConfig {
    let mut c = TransportConfig::new(name, identity, ca, bind);
    c.quic.initial_rtt = Duration::from_millis(10);
    c.backoff_max = Duration::from_millis(500);
    c
}

/// The entry point of the child processes; does nothing in a normal test run.
#[test]
fn child_process() {
    let Ok(role) = std::env::var(CHILD_ENV) else {
        return;
    };
    let env = |k: &str| std::env::var(k).unwrap();
    let dir = std::path::PathBuf::from(env("CHILD_DIR"));
    let identity = NodeCert::load(&dir.join("node.pem"), &dir.join("node.key")).unwrap();
    let ca = load_cert(&dir.join("ca.pem")).unwrap();
    let mut cfg = config(
        &env("CHILD_NAME"),
        identity,
        ca,
        env("CHILD_BIND").parse().unwrap(),
    );
    let peer = steward_net::PeerName::from(env("CHILD_PEER").as_str());
    cfg.peers
        .insert(peer.clone(), env("CHILD_PEER_ADDR").parse().unwrap());
    runtime().block_on(run_child(&role, cfg, peer));
}

/// `receiver`: prints `got <payload>` per message. `client`: sends `req <i>` to the peer every
/// 10 ms and prints `got <payload>` per reply. Either stops after [`CHILD_LIFETIME`].
async fn run_child(role: &str, cfg: TransportConfig, peer: steward_net::PeerName) {
    let (t, mut rx) = Transport::bind(cfg).unwrap();
    println!("@@ready {}", t.local_addr());
    let deadline = tokio::time::Instant::now() + CHILD_LIFETIME;
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    let mut i = 0u64;
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => break,
            m = rx.recv() => {
                let Some((_, payload)) = m else { break };
                println!("@@got {}", String::from_utf8_lossy(&payload));
            }
            _ = tick.tick(), if role == "client" => {
                let _ = t.send(&peer, Bytes::from(format!("req {i}")));
                i += 1;
            }
        }
    }
    t.shutdown().await;
}

/// The index in a `got m <i>` line.
fn index_of(line: &str, prefix: &str) -> Option<u64> {
    line.strip_prefix(prefix)?.trim().parse().ok()
}

/// A replica (a child process) is SIGKILLed while a peer sends to it every 5 ms, and started
/// again at the same address with the same key: the first message must reach the new
/// process well before the idle timeout, and the messages lost must be counted as dropped.
#[test]
fn sigkilled_replica_is_reachable_again_at_once() {
    Setup::run(
        "restart",
        "receiver",
        "steward-s1.0",
        "steward-s0.0",
        |setup, rt| {
            let (a, _a_rx) = Transport::bind(setup.config()).unwrap();
            let mut b = setup.start(setup.any_port(), a.local_addr());
            let b_addr = b.ready();
            let b_name = steward_net::PeerName::from("steward-s1.0");
            a.set_peer_addr(b_name.clone(), b_addr);

            // The sender: one message every 5 ms, bounded in count (and so in time).
            let sender = {
                let a = a.clone();
                let b_name = b_name.clone();
                rt.spawn(async move {
                    let mut tick = tokio::time::interval(Duration::from_millis(5));
                    for i in 0..8_000u64 {
                        tick.tick().await;
                        let _ = a.send(&b_name, Bytes::from(format!("m {i}")));
                    }
                })
            };
            let mut received: BTreeSet<u64> = b
                .take(
                    50,
                    Duration::from_secs(10),
                    "no message before the kill",
                    |line| index_of(line, "got m "),
                )
                .into_iter()
                .collect();
            b.kill();
            let killed = Instant::now();
            // Whatever the dead process printed before it died.
            while let Some(line) = b.line(Duration::from_millis(100)) {
                received.extend(index_of(&line, "got m "));
            }
            let last_before = *received.last().unwrap();

            let b2 = setup.start(b_addr, a.local_addr());
            assert_eq!(b2.ready(), b_addr);
            let (first, recovery) = b2
                .first_within_bound("no message reached the restarted replica", |line| {
                    index_of(line, "got m ")
                });
            let since_kill = killed.elapsed();
            // Let a few more arrive so the counters have settled past the gap.
            for _ in 0..20 {
                if let Some(line) = b2.line(Duration::from_secs(2)) {
                    received.extend(index_of(&line, "got m "));
                }
            }
            received.insert(first);
            let lost = (last_before + 1..first)
                .filter(|i| !received.contains(i))
                .count() as u64;
            let stats = a.stats(&b_name).unwrap();
            eprintln!(
                "replica restart: first message {recovery:?} after the new process was ready \
             ({since_kill:?} after the kill); {lost} messages lost (indices {}..{first}); \
             messages_dropped={} bytes_dropped={} connects={}",
                last_before + 1,
                stats.messages_dropped,
                stats.bytes_dropped,
                stats.connects
            );
            assert!(recovery < RECOVERY_BOUND, "recovery took {recovery:?}");
            assert!(stats.connects >= 2, "{stats:?}");
            if lost > 0 {
                assert!(
                    stats.messages_dropped > 0,
                    "{lost} messages lost but none counted: {stats:?}"
                );
            }
            sender.abort();
            drop(b2);
            rt.block_on(a.shutdown());
        },
    );
}

/// A client (a child process) sends requests to a replica (in this process), which answers
/// each one over the connection the client dialed. The client is SIGKILLed and started again
/// on another port: the replica must answer the new process at once, not keep writing into the
/// dead connection until it times out.
#[test]
fn sigkilled_client_gets_replies_again_at_once() {
    Setup::run(
        "client-restart",
        "client",
        "client-3",
        "pbft-r0",
        |setup, rt| {
            let mut cfg = setup.config();
            cfg.allowed_peers
                .insert(steward_net::PeerName::from("client-3"));
            let (replica, mut rx) = Transport::bind(cfg).unwrap();
            // The replica answers every request, for at most 60 s.
            let answering = {
                let replica = replica.clone();
                rt.spawn(async move {
                    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
                    while let Ok(Some((from, payload))) =
                        tokio::time::timeout_at(deadline, rx.recv()).await
                    {
                        let mut reply = b"re ".to_vec();
                        reply.extend_from_slice(&payload);
                        let _ = replica.send(&from, Bytes::from(reply));
                    }
                })
            };
            let mut c = setup.start(setup.any_port(), replica.local_addr());
            let c_addr = c.ready();
            let reply = |line: &str| line.starts_with("got re req ").then_some(());
            c.take(
                20,
                Duration::from_secs(10),
                "no reply before the kill",
                reply,
            );
            c.kill();
            // The replica keeps answering into the old connection for a while: the client's last
            // requests were in flight.
            let c2 = setup.start(setup.any_port(), replica.local_addr());
            let c2_addr = c2.ready();
            assert_ne!(c2_addr, c_addr, "the new client must use another port");
            let ((), recovery) =
                c2.first_within_bound("no reply reached the restarted client", reply);
            let stats = replica
                .stats(&steward_net::PeerName::from("client-3"))
                .unwrap();
            eprintln!(
                "client restart: first reply {recovery:?} after the new process was ready; \
             accepts={} messages_dropped={} bytes_dropped={}",
                stats.accepts, stats.messages_dropped, stats.bytes_dropped
            );
            assert!(recovery < RECOVERY_BOUND, "recovery took {recovery:?}");
            assert_eq!(stats.accepts, 2, "{stats:?}");
            answering.abort();
            drop(c2);
            rt.block_on(replica.shutdown());
        },
    );
}
