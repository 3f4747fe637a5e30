//! The one hook a Byzantine primary needs inside the PBFT core
//! ([`super::ReplicaConfig::primary_hook`], `None` outside of tests).
//!
//! Every other simulated misbehaviour (corrupted messages, equivocating Pre-Prepares) is a
//! wrapper around the replica as a [`bft_core::Node`] (`crate::simulation::faults`). These
//! cannot be: *which waiting requests the primary orders* and *whether it takes up its role
//! at all* are decided on state no message shows (the request pool, the pipeline, the
//! activation of a new view). Dropping the Pre-Prepares or the New-View outside would leave
//! the core believing it runs a view nobody else sees, which is not the attack the tests mean.

use bft_core::Update;

/// A Byzantine primary's sequencing decisions. The defaults are the protocol.
pub trait PrimaryHook: std::fmt::Debug + Send + Sync {
    /// Whether the replica acts as primary at all (issues Pre-Prepares, sends the New-View).
    fn acts(&self) -> bool {
        true
    }
    /// Whether `u` may be ordered (a censoring primary skips some clients).
    fn admits(&self, _u: &Update) -> bool {
        true
    }
    /// Whether the primary orders empty batches while requests wait (fake progress).
    fn fakes_progress(&self) -> bool {
        false
    }
}
