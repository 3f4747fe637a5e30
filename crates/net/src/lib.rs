//! The real-network transport of Steward and PBFT replicas: QUIC ([quinn]) with mutual TLS
//! between the nodes of one deployment, plus a userspace WAN shaper for emulated runs.
//!
//! * [`certs`]: the deployment CA and per-node certificates (rcgen), to and from files. A
//!   node's certificate carries its name (for example `steward-s0.3`, `pbft-r5`, `client-7`);
//!   a peer's identity is read back from the certificate it presents.
//! * [`transport`]: one quinn endpoint per node, server and client on one UDP socket; mutual
//!   TLS restricted to the deployment CA and a set of allowed peer names; long-lived
//!   connections per peer (lazy connect, reconnect with exponential backoff); length-prefixed
//!   frames on one ordered unidirectional stream per connection and direction, so messages
//!   from one peer arrive in order and intact; a non-blocking [`Transport::send`].
//! * [`shaper`]: a quinn [`quinn::AsyncUdpSocket`] wrapper that applies per-destination
//!   one-way delay, jitter, bandwidth (serialization delay and a drop-tail queue), loss and
//!   partitions on the send side, timed by a dedicated thread; changeable at run time through
//!   a [`ShaperHandle`]. WAN bandwidth can be shared as the topology's WAN model says, between
//!   the sockets of a process or the processes of a local cluster ([`SharedWanQueues`], a
//!   memory-mapped file of lock-free queue timestamps).
//!
//! * [`accuracy`]: loopback measurements of the shaper's RTT and bandwidth accuracy (used by
//!   the tests and by `cargo run --release -p steward-net --example wan_accuracy`).
//!
//! Everything is loopback-testable: tests bind nodes to random `127.x.y.z` addresses.

pub mod accuracy;
pub mod certs;
pub mod inbound;
pub mod shaper;
pub mod transport;

/// Keeps the timing-sensitive tests of this crate (which take it for writing) from running
/// alongside any other network test (which take it for reading): on a two-core machine they
/// would otherwise measure each other's CPU use.
#[cfg(test)]
pub(crate) static TIMING_TESTS: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

pub use certs::{CertError, DeploymentCa, NodeCert};
pub use inbound::{Inbound, InboundLimits, InboundUsage};
pub use shaper::{
    LinkStats, ShaperConfig, ShaperHandle, ShaperMode, SharedWan, SharedWanError, SharedWanQueues,
    WanQueueModel,
};
pub use steward_config::LinkParams;
pub use transport::{
    HandshakeStats, PeerStats, QuicTuning, SendError, Transport, TransportConfig, TransportError,
    TransportUsage, DEFAULT_MAX_FRAME_LEN,
};

use std::borrow::Borrow;
use std::fmt;
use std::sync::Arc;

/// The name of a node of a deployment (`steward-s0.3`, `pbft-r5`, `client-7`, ...): what its
/// certificate carries and what the transport addresses messages to. Cheap to clone.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerName(Arc<str>);

impl PeerName {
    /// A name; no validation here (see [`certs::validate_node_name`] for what a certificate
    /// accepts).
    pub fn new(name: impl Into<Arc<str>>) -> Self {
        PeerName(name.into())
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PeerName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for PeerName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl From<&str> for PeerName {
    fn from(name: &str) -> Self {
        PeerName::new(name)
    }
}

impl From<String> for PeerName {
    fn from(name: String) -> Self {
        PeerName::new(name)
    }
}

impl Borrow<str> for PeerName {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for PeerName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}
