//! Live metrics of a replica process (`--metrics <addr:port>`): the OpenMetrics / Prometheus
//! text exposition format, served over HTTP at `GET /metrics` by a small server on a thread of
//! its own.
//!
//! The replica thread publishes a [`CoreSnapshot`] (the protocol's and the driver's counters,
//! the protocol's gauges) every [`PUBLISH_PERIOD`] between two protocol steps; a scrape reads
//! the latest snapshot under a mutex held only for a copy, and the transport's per-peer
//! counters directly (they are shared atomics), so a scrape never waits for the protocol.
//!
//! Naming (every name starts with `bft_`, except the standard `process_cpu_seconds_total`;
//! counters end in `_total`; every sample carries the labels `node` and `protocol`):
//!
//! * named metrics: `bft_executed_updates_total`, `bft_messages_sent_total{class}`,
//!   `bft_bytes_sent_total{class}`, `bft_messages_received_total{class}`,
//!   `bft_bytes_received_total{class}`, `bft_messages_dropped_total{class}`,
//!   `bft_bytes_dropped_total{class}`, `bft_send_queue_bytes{class}`,
//!   `bft_peers_connected{class}`, `bft_crypto_operations_total{kind}`,
//!   `bft_threshold_combine_fallbacks_total`, `bft_inbound_queue_messages`,
//!   `bft_inbound_queue_bytes`, `bft_inbound_queue_client_bytes`,
//!   `process_cpu_seconds_total`. `class` is `lan` (a replica of the same site), `wan` (a
//!   replica of another site) or `client` (any other peer).
//! * every other numeric key `k` of the node's final `stats` line becomes a counter by one
//!   rule: a protocol counter `k` is `bft_<k>_total` (e.g. `bft_local_view_changes_total`),
//!   a driver counter `k` is `bft_driver_<k>_total` (e.g. `bft_driver_timers_total`), a
//!   transport counter `net_<k>` is `bft_net_<k>_total` (e.g. `bft_net_connects_total`).
//! * every protocol gauge `g` ([`bft_core::Node::gauges`]) is the gauge `bft_<g>`: Steward's
//!   `bft_local_view`, `bft_global_view`, `bft_blacklisted_servers`,
//!   `bft_sequencing_deadline_ms`, `bft_combine_deadline_ms`, `bft_combine_wait_us`,
//!   `bft_combine_pace_bound_ms`; PBFT's
//!   `bft_view`; both
//!   protocols' `bft_pending_updates` and `bft_pool_updates`.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, Result};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;
use serde_json::{Map, Value};
use steward_net::{PeerName, PeerStats, Transport, TransportUsage};

use crate::core::DriveStats;
use crate::NodeKind;

/// How often the replica thread publishes its [`CoreSnapshot`].
pub const PUBLISH_PERIOD: Duration = Duration::from_millis(250);

/// What the replica thread publishes for the metrics endpoint: copies of its counters.
#[derive(Clone, Debug, Default)]
pub struct CoreSnapshot {
    /// The driver's counters ([`DriveStats::to_json`]).
    pub driver: Map<String, Value>,
    /// The protocol's counters ([`crate::Core::stats`]).
    pub stats: Map<String, Value>,
    /// The protocol's gauges ([`crate::Core::gauges`]).
    pub gauges: Vec<(&'static str, u64)>,
}

impl CoreSnapshot {
    /// A snapshot of `core` and the driver's `driver` counters.
    pub fn of<C: crate::Core + ?Sized>(core: &C, driver: &DriveStats) -> CoreSnapshot {
        CoreSnapshot {
            driver: driver.to_json(),
            stats: core.stats(),
            gauges: core.gauges(),
        }
    }
}

/// Whether a metric only goes up or may go down.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Monotonic; exposed with the suffix `_total`.
    Counter,
    /// A current value.
    Gauge,
}

/// One metric family: a name (without `_total`), its kind, help text and samples, each with
/// its own labels (besides `node` and `protocol`).
#[derive(Clone, Debug, PartialEq)]
pub struct Family {
    /// Name without the `_total` of counters, e.g. `bft_executed_updates`.
    pub name: String,
    /// Counter or gauge.
    pub kind: Kind,
    /// The `# HELP` text.
    pub help: String,
    /// (labels, value) of each sample.
    pub samples: Vec<(Vec<(String, String)>, f64)>,
}

impl Family {
    fn new(name: impl Into<String>, kind: Kind, help: impl Into<String>) -> Family {
        Family {
            name: name.into(),
            kind,
            help: help.into(),
            samples: Vec::new(),
        }
    }

    fn single(name: &str, kind: Kind, help: &str, value: f64) -> Family {
        let mut f = Family::new(name, kind, help);
        f.samples.push((Vec::new(), value));
        f
    }
}

/// The peer class of `peer` for the `class` label: `wan` for a replica in `wan_peers`, `lan`
/// for any other replica, `client` for every other name.
pub fn peer_class(peer: &PeerName, wan_peers: &HashSet<PeerName>) -> &'static str {
    match NodeKind::parse(peer.as_str()) {
        Some(NodeKind::Server(_) | NodeKind::Pbft(_)) if wan_peers.contains(peer) => "wan",
        Some(NodeKind::Server(_) | NodeKind::Pbft(_)) => "lan",
        _ => "client",
    }
}

/// Letters, digits and `_` only (a metric name's alphabet).
fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

/// Everything a scrape reads, gathered.
#[derive(Clone, Debug, Default)]
pub struct Inputs {
    /// The replica thread's latest snapshot.
    pub core: CoreSnapshot,
    /// The transport's counters per peer ([`Transport::all_stats`]).
    pub peers: HashMap<PeerName, PeerStats>,
    /// Replicas at other sites.
    pub wan_peers: HashSet<PeerName>,
    /// The transport's buffers ([`Transport::usage`]).
    pub usage: TransportUsage,
    /// The transport's summed counters ([`crate::serve::transport_counters`]).
    pub net: Map<String, Value>,
    /// CPU time of this process, in seconds.
    pub cpu_seconds: Option<f64>,
}

/// Transport counters exposed per peer class instead (the summed ones would repeat them).
const PER_CLASS_NET_KEYS: [&str; 2] = ["net_messages_dropped", "net_bytes_dropped"];

/// The metric families of `inputs`, by the naming rules of the module documentation.
pub fn families(inputs: &Inputs) -> Vec<Family> {
    let mut out: Vec<Family> = Vec::new();
    // Named metrics first.
    let executed = inputs.core.driver.get("executed").and_then(Value::as_u64);
    out.push(Family::single(
        "bft_executed_updates",
        Kind::Counter,
        "Updates this replica executed (in order).",
        executed.unwrap_or(0) as f64,
    ));
    let classes = ["lan", "wan", "client"];
    let mut by_class: BTreeMap<&str, PeerStats> =
        classes.iter().map(|c| (*c, PeerStats::default())).collect();
    let mut connected: BTreeMap<&str, u64> = classes.iter().map(|c| (*c, 0)).collect();
    for (peer, st) in &inputs.peers {
        let class = peer_class(peer, &inputs.wan_peers);
        let sum = by_class.get_mut(class).expect("every class");
        sum.messages_sent += st.messages_sent;
        sum.bytes_sent += st.bytes_sent;
        sum.messages_received += st.messages_received;
        sum.bytes_received += st.bytes_received;
        sum.messages_dropped += st.messages_dropped;
        sum.bytes_dropped += st.bytes_dropped;
        sum.queued_bytes += st.queued_bytes;
        *connected.get_mut(class).expect("every class") += u64::from(st.rtt.is_some());
    }
    type Get = fn(&PeerStats) -> u64;
    let per_class: [(&str, Kind, &str, Get); 7] = [
        (
            "bft_messages_sent",
            Kind::Counter,
            "Messages written to peers' streams, by peer class.",
            |s| s.messages_sent,
        ),
        (
            "bft_bytes_sent",
            Kind::Counter,
            "Payload bytes of the messages sent, by peer class.",
            |s| s.bytes_sent,
        ),
        (
            "bft_messages_received",
            Kind::Counter,
            "Messages received from peers, by peer class.",
            |s| s.messages_received,
        ),
        (
            "bft_bytes_received",
            Kind::Counter,
            "Payload bytes of the messages received, by peer class.",
            |s| s.bytes_received,
        ),
        (
            "bft_messages_dropped",
            Kind::Counter,
            "Messages to peers dropped by the transport (full send queue, failed connection), by peer class.",
            |s| s.messages_dropped,
        ),
        (
            "bft_bytes_dropped",
            Kind::Counter,
            "Payload bytes of the messages dropped, by peer class.",
            |s| s.bytes_dropped,
        ),
        (
            "bft_send_queue_bytes",
            Kind::Gauge,
            "Bytes waiting in the send queues, by peer class.",
            |s| s.queued_bytes,
        ),
    ];
    for (name, kind, help, get) in per_class {
        let mut f = Family::new(name, kind, help);
        for class in classes {
            f.samples.push((
                vec![("class".into(), class.into())],
                get(&by_class[class]) as f64,
            ));
        }
        out.push(f);
    }
    let mut f = Family::new(
        "bft_peers_connected",
        Kind::Gauge,
        "Peers with an open connection, by peer class.",
    );
    for class in classes {
        f.samples.push((
            vec![("class".into(), class.into())],
            connected[class] as f64,
        ));
    }
    out.push(f);
    let usage = &inputs.usage;
    out.push(Family::single(
        "bft_inbound_queue_messages",
        Kind::Gauge,
        "Received messages waiting for the protocol (the queue is bounded in bytes per peer and applies backpressure: it never drops).",
        usage.inbound.messages as f64,
    ));
    out.push(Family::single(
        "bft_inbound_queue_bytes",
        Kind::Gauge,
        "Payload bytes of the received messages waiting for the protocol.",
        usage.inbound.bytes as f64,
    ));
    out.push(Family::single(
        "bft_inbound_queue_client_bytes",
        Kind::Gauge,
        "Of those bytes, the ones from clients.",
        usage.inbound.client_bytes as f64,
    ));
    if let Some(cpu) = inputs.cpu_seconds {
        out.push(Family::single(
            "process_cpu_seconds",
            Kind::Counter,
            "User and system CPU time of this process, in seconds.",
            cpu,
        ));
    }
    // Protocol counters: crypto operations and named renames, then the rule.
    let mut crypto = Family::new(
        "bft_crypto_operations",
        Kind::Counter,
        "Crypto operations by kind (sign, verify, share_sign, share_verify, combine, threshold_verify, share_prove).",
    );
    let mut generic = Vec::new();
    for (key, value) in &inputs.core.stats {
        let Some(v) = value.as_u64() else { continue };
        if let Some(kind) = key.strip_prefix("crypto_") {
            crypto
                .samples
                .push((vec![("kind".into(), sanitize(kind))], v as f64));
        } else if key == "combine_fallbacks" {
            out.push(Family::single(
                "bft_threshold_combine_fallbacks",
                Kind::Counter,
                "Threshold combines that needed the fallback (share proofs) because a share was bad.",
                v as f64,
            ));
        } else {
            generic.push((
                format!("bft_{}", sanitize(key)),
                format!("Protocol counter `{key}` of the stats line."),
                v,
            ));
        }
    }
    if !crypto.samples.is_empty() {
        out.push(crypto);
    }
    for (key, value) in &inputs.core.driver {
        let Some(v) = value.as_u64() else { continue };
        if key != "executed" {
            generic.push((
                format!("bft_driver_{}", sanitize(key)),
                format!("Driver counter `{key}` of the stats line."),
                v,
            ));
        }
    }
    for (key, value) in &inputs.net {
        let Some(v) = value.as_u64() else { continue };
        if !PER_CLASS_NET_KEYS.contains(&key.as_str()) {
            generic.push((
                format!("bft_{}", sanitize(key)),
                format!("Transport counter `{key}` of the stats line."),
                v,
            ));
        }
    }
    for (name, help, v) in generic {
        if !out.iter().any(|f| f.name == name) {
            out.push(Family::single(&name, Kind::Counter, &help, v as f64));
        }
    }
    for (key, v) in &inputs.core.gauges {
        let name = format!("bft_{}", sanitize(key));
        if !out.iter().any(|f| f.name == name) {
            let help = format!("Protocol gauge `{key}`.");
            out.push(Family::single(&name, Kind::Gauge, &help, *v as f64));
        }
    }
    out
}

/// The families as a prometheus-client collector (encoded at each scrape).
#[derive(Debug)]
struct Families(Vec<Family>);

impl Collector for Families {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        for f in &self.0 {
            match f.kind {
                Kind::Counter => {
                    let metric_type = ConstCounter::new(0u64).metric_type();
                    let mut m = encoder.encode_descriptor(&f.name, &f.help, None, metric_type)?;
                    for (labels, v) in &f.samples {
                        ConstCounter::new(*v).encode(m.encode_family(labels)?)?;
                    }
                }
                Kind::Gauge => {
                    let metric_type = ConstGauge::new(0i64).metric_type();
                    let mut m = encoder.encode_descriptor(&f.name, &f.help, None, metric_type)?;
                    for (labels, v) in &f.samples {
                        ConstGauge::new(*v).encode(m.encode_family(labels)?)?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// `families` in the OpenMetrics text format (what Prometheus scrapes), every sample labelled
/// `node` and `protocol`, ending with `# EOF`.
pub fn render(families: Vec<Family>, node: &str, protocol: &str) -> String {
    let labels = [
        (Cow::Borrowed("node"), Cow::Owned(node.to_string())),
        (Cow::Borrowed("protocol"), Cow::Owned(protocol.to_string())),
    ];
    let mut registry = Registry::with_labels(labels.into_iter());
    registry.register_collector(Box::new(Families(families)));
    let mut text = String::new();
    if prometheus_client::encoding::text::encode(&mut text, &registry).is_err() {
        // Writing to a String cannot fail; keep the endpoint answering if it ever did.
        let _ = writeln!(text, "# encoding failed\n# EOF");
    }
    text
}

/// The content type of [`render`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// What a metrics endpoint serves: the replica thread's snapshot (shared) and the transport.
#[derive(Clone)]
pub struct Source {
    /// The node's name (label `node`).
    pub node: String,
    /// `steward` or `pbft` (label `protocol`).
    pub protocol: String,
    /// Published by the replica thread.
    pub core: Arc<Mutex<CoreSnapshot>>,
    /// The replica's transport.
    pub transport: Transport,
    /// Replicas at other sites.
    pub wan_peers: HashSet<PeerName>,
}

impl Source {
    /// The exposition text now.
    pub fn scrape(&self) -> String {
        let core = self.core.lock().map(|c| c.clone()).unwrap_or_default();
        let inputs = Inputs {
            core,
            peers: self.transport.all_stats(),
            wan_peers: self.wan_peers.clone(),
            usage: self.transport.usage(),
            net: crate::serve::transport_counters(&self.transport),
            cpu_seconds: crate::process_cpu_time(std::process::id()).map(|d| d.as_secs_f64()),
        };
        render(families(&inputs), &self.node, &self.protocol)
    }
}

/// A running metrics endpoint; [`Server::stop`] (or dropping it) ends its thread.
pub struct Server {
    http: Arc<tiny_http::Server>,
    addr: SocketAddr,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    /// Binds `addr` (port 0: any free port) and answers `GET /metrics` with `source`'s text
    /// (404 for other paths) on a thread of its own.
    pub fn start(addr: SocketAddr, source: Source) -> Result<Server> {
        let http = tiny_http::Server::http(addr)
            .map_err(|e| anyhow!("--metrics {addr}: cannot listen: {e}"))?;
        let addr = http
            .server_addr()
            .to_ip()
            .ok_or_else(|| anyhow!("--metrics {addr}: not an IP listener"))?;
        let http = Arc::new(http);
        let h = http.clone();
        let thread = std::thread::Builder::new()
            .name("metrics".into())
            .spawn(move || {
                for req in h.incoming_requests() {
                    let path = req.url().split('?').next().unwrap_or("");
                    let ok = *req.method() == tiny_http::Method::Get && path == "/metrics";
                    let response = if ok {
                        let header = tiny_http::Header::from_bytes("Content-Type", CONTENT_TYPE)
                            .expect("a valid header");
                        tiny_http::Response::from_string(source.scrape()).with_header(header)
                    } else {
                        tiny_http::Response::from_string("not found: try GET /metrics\n")
                            .with_status_code(404)
                    };
                    // A client that went away is its own problem.
                    let _ = req.respond(response);
                }
            })?;
        Ok(Server {
            http,
            addr,
            thread: Some(thread),
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops answering and joins the thread.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.http.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// One sample of exposition text.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// The sample's name (with `_total` for counters).
    pub name: String,
    /// Its labels, in the order written.
    pub labels: Vec<(String, String)>,
    /// Its value.
    pub value: f64,
}

impl Sample {
    /// The value of label `key`.
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The name with every label except those in `without`, as written in exposition text:
    /// `bft_messages_sent_total{class="wan"}`, or the bare name when no label is left.
    pub fn key(&self, without: &[&str]) -> String {
        let kept: Vec<String> = self
            .labels
            .iter()
            .filter(|(k, _)| !without.contains(&k.as_str()))
            .map(|(k, v)| {
                let v = v.replace('\\', "\\\\").replace('"', "\\\"");
                format!("{k}=\"{v}\"")
            })
            .collect();
        if kept.is_empty() {
            self.name.clone()
        } else {
            format!("{}{{{}}}", self.name, kept.join(","))
        }
    }
}

/// The samples of Prometheus / OpenMetrics exposition text (comments and malformed lines are
/// skipped; timestamps are not expected).
pub fn parse_text(text: &str) -> Vec<Sample> {
    text.lines().filter_map(parse_sample).collect()
}

fn parse_sample(line: &str) -> Option<Sample> {
    if line.starts_with('#') || line.trim().is_empty() {
        return None;
    }
    let (name, rest) = match line.find('{') {
        Some(i) => (&line[..i], &line[i + 1..]),
        None => {
            let (name, value) = line.split_once(' ')?;
            return Some(Sample {
                name: name.to_string(),
                labels: Vec::new(),
                value: value.trim().parse().ok()?,
            });
        }
    };
    let mut labels = Vec::new();
    let mut chars = rest.char_indices().peekable();
    let end = loop {
        // key="value" pairs separated by commas, then `}`.
        let (start, c) = *chars.peek()?;
        if c == '}' {
            break start + 1;
        }
        if c == ',' || c == ' ' {
            chars.next();
            continue;
        }
        let eq = rest[start..].find('=')? + start;
        let key = rest[start..eq].to_string();
        while chars.peek()?.0 <= eq {
            chars.next();
        }
        if chars.next()?.1 != '"' {
            return None;
        }
        let mut value = String::new();
        loop {
            match chars.next()?.1 {
                '\\' => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                '"' => break,
                other => value.push(other),
            }
        }
        labels.push((key, value));
    };
    let value = rest[end..].split_whitespace().next()?.parse().ok()?;
    Some(Sample {
        name: name.to_string(),
        labels,
        value,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The value of the sample `name` with labels `labels` (besides node and protocol).
    fn value(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
        let samples = parse_text(text);
        let found = samples.iter().find(|s| {
            s.name == name
                && s.labels.len() == labels.len() + 2
                && s.label("node") == Some("steward-s0.0")
                && s.label("protocol") == Some("steward")
                && labels.iter().all(|(k, v)| s.label(k) == Some(*v))
        });
        found
            .unwrap_or_else(|| panic!("no {name}{labels:?} in\n{text}"))
            .value
    }

    #[test]
    fn snapshot_and_transport_counters_render_with_their_names_labels_and_types() {
        let mut peers = HashMap::new();
        let st = |sent, bytes| PeerStats {
            messages_sent: sent,
            bytes_sent: bytes,
            messages_received: 1,
            bytes_received: 10,
            messages_dropped: 2,
            bytes_dropped: 20,
            ..PeerStats::default()
        };
        peers.insert(PeerName::from("steward-s0.1"), st(3, 30));
        peers.insert(PeerName::from("steward-s0.2"), st(4, 40));
        peers.insert(PeerName::from("steward-s1.0"), st(5, 500));
        peers.insert(PeerName::from("client-7"), st(6, 60));
        let wan_peers: HashSet<PeerName> = [PeerName::from("steward-s1.0")].into();
        let driver = DriveStats {
            executed: 42,
            timers: 9,
            ..DriveStats::default()
        };
        let mut stats = Map::new();
        stats.insert("local_view_changes".into(), 2.into());
        stats.insert("combine_fallbacks".into(), 1.into());
        stats.insert("crypto_sign".into(), 11.into());
        stats.insert("crypto_combine".into(), 3.into());
        let mut net = Map::new();
        net.insert("net_connects".into(), 4.into());
        net.insert("net_messages_dropped".into(), 8.into());
        let inputs = Inputs {
            core: CoreSnapshot {
                driver: driver.to_json(),
                stats,
                gauges: vec![("local_view", 3), ("global_view", 1)],
            },
            peers,
            wan_peers,
            net,
            cpu_seconds: Some(1.5),
            ..Inputs::default()
        };
        let text = render(families(&inputs), "steward-s0.0", "steward");
        let v = |name: &str| value(&text, name, &[]);
        let c = |name: &str, class: &str| value(&text, name, &[("class", class)]);
        assert_eq!(v("bft_executed_updates_total"), 42.0);
        assert!(
            text.contains("# TYPE bft_executed_updates counter"),
            "{text}"
        );
        assert!(text.contains("# TYPE bft_local_view gauge"), "{text}");
        assert_eq!(c("bft_messages_sent_total", "lan"), 7.0);
        assert_eq!(c("bft_bytes_sent_total", "wan"), 500.0);
        assert_eq!(c("bft_messages_sent_total", "client"), 6.0);
        assert_eq!(c("bft_bytes_received_total", "lan"), 20.0);
        assert_eq!(c("bft_messages_dropped_total", "client"), 2.0);
        assert_eq!(c("bft_peers_connected", "wan"), 0.0);
        let sign = value(&text, "bft_crypto_operations_total", &[("kind", "sign")]);
        assert_eq!(sign, 11.0);
        assert_eq!(v("bft_threshold_combine_fallbacks_total"), 1.0);
        assert_eq!(v("bft_local_view_changes_total"), 2.0);
        assert_eq!(v("bft_driver_timers_total"), 9.0);
        assert_eq!(v("bft_net_connects_total"), 4.0);
        assert_eq!(v("bft_local_view"), 3.0);
        assert_eq!(v("bft_global_view"), 1.0);
        assert_eq!(v("process_cpu_seconds_total"), 1.5);
        assert_eq!(v("bft_inbound_queue_messages"), 0.0);
        // The summed drop counter is replaced by the per-class one; executed is not repeated.
        assert!(!text.contains("bft_net_messages_dropped"), "{text}");
        assert!(!text.contains("bft_driver_executed"), "{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
        // One TYPE line per family: no name is exposed twice.
        let mut types: Vec<&str> = text.lines().filter(|l| l.starts_with("# TYPE")).collect();
        let n = types.len();
        types.sort_unstable();
        types.dedup();
        assert_eq!(types.len(), n, "{text}");
    }

    #[test]
    fn exposition_lines_parse_back_into_samples() {
        let text = "# TYPE a counter\na_total{node=\"n\",class=\"w\\\"x\"} 3.0\nb 2\n# EOF\n";
        let samples = parse_text(text);
        assert_eq!(samples.len(), 2, "{samples:?}");
        assert_eq!(samples[0].name, "a_total");
        assert_eq!(samples[0].label("class"), Some("w\"x"));
        assert_eq!(samples[0].value, 3.0);
        assert_eq!(samples[0].key(&["node"]), "a_total{class=\"w\\\"x\"}");
        assert_eq!(samples[1].key(&[]), "b");
        assert_eq!(samples[1].value, 2.0);
    }

    #[test]
    fn peers_are_classed_by_site_and_kind() {
        let wan: HashSet<PeerName> = [PeerName::from("pbft-r2")].into();
        assert_eq!(peer_class(&PeerName::from("pbft-r2"), &wan), "wan");
        assert_eq!(peer_class(&PeerName::from("pbft-r1"), &wan), "lan");
        assert_eq!(peer_class(&PeerName::from("client-3"), &wan), "client");
        assert_eq!(peer_class(&PeerName::from("somebody"), &wan), "client");
    }
}
