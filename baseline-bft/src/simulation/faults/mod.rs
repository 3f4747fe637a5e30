//! PBFT's simulated Byzantine replicas: [`Fault`] names a behaviour; [`replica_node`] builds
//! it as a wrapper around a correct [`Replica`] ([`Corrupter`], [`Equivocator`]) or, for the
//! sequencing decisions only the primary's core can make, as a
//! [`PrimaryHook`](crate::replica::PrimaryHook) ([`hooks`]).

mod corrupter;
mod equivocator;
mod hooks;

pub use corrupter::Corrupter;
pub use equivocator::Equivocator;
pub use hooks::{CensoringPrimary, EmptyBatchPrimary, SilentPrimary};

use std::sync::Arc;

use bft_core::crypto::Crypto;
use bft_harness::faults::Tamper;

use crate::msg::Message;
use crate::replica::{Replica, ReplicaConfig};

/// How a simulated replica misbehaves.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Fault {
    /// A correct replica.
    #[default]
    None,
    /// As primary, never sends a Pre-Prepare or a New-View; otherwise correct.
    SilentPrimary,
    /// As primary, sends two conflicting, validly signed Pre-Prepares for each sequence number
    /// (the real batch to half of the backups, a replayed old request to the other half).
    EquivocatingPrimary,
    /// Runs the protocol but corrupts two of every three messages it sends: garbage
    /// signatures, or wrong digests, results and states signed with its own key.
    Corrupt,
    /// As primary, never orders the requests of client 0 (censorship); otherwise correct.
    CensoringPrimary,
    /// As primary, orders empty batches while requests wait (fake progress).
    EmptyBatchPrimary,
}

bft_harness::replica_node! {
    /// A simulated PBFT replica: a [`Replica`], possibly inside fault wrappers; the replica
    /// stays reachable for the tests' inspection.
    pub trait ReplicaNode: Node<Msg = Message> { replica: Replica }
}

/// Sets the core hook of the faults that need one.
pub fn configure(rc: &mut ReplicaConfig, fault: Fault) {
    rc.primary_hook = match fault {
        Fault::SilentPrimary => Some(Arc::new(SilentPrimary)),
        Fault::CensoringPrimary => Some(Arc::new(CensoringPrimary { client: 0 })),
        Fault::EmptyBatchPrimary => Some(Arc::new(EmptyBatchPrimary)),
        _ => None,
    };
}

/// `replica` (configured by [`configure`]) inside the wrapper of `fault`; `keys` gives the
/// replica's own keys (a Byzantine replica re-signs what it changes).
pub fn replica_node(
    replica: Replica,
    fault: Fault,
    keys: impl FnOnce() -> Crypto,
) -> Box<dyn ReplicaNode> {
    let (id, n) = (replica.id(), replica.n_replicas());
    match fault {
        Fault::Corrupt => Box::new(Tamper::new(replica, Corrupter::new(keys()))),
        Fault::EquivocatingPrimary => {
            Box::new(Tamper::new(replica, Equivocator::new(id, n, keys())))
        }
        Fault::None | Fault::SilentPrimary | Fault::CensoringPrimary | Fault::EmptyBatchPrimary => {
            Box::new(replica)
        }
    }
}
