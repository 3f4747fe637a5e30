//! The simulation harness shared by both protocols: any [`bft_core::Node`] as a process of the
//! deterministic simulator ([`NodeProc`]), the address book, the CPU cost model
//! ([`CostTable`]), the protocol-neutral [`SafetyChecker`] and the [`RunReport`] of a run.

#![warn(missing_docs)]

pub mod book;
pub mod checker;
pub mod costs;
pub mod faults;
pub mod keys;
pub mod node_proc;
pub mod report;
pub mod testing;

pub use book::AddressBook;
pub use checker::SafetyChecker;
pub use costs::CostTable;
pub use node_proc::{NodeProc, Packet, Shared};
pub use report::RunReport;

/// Which crypto the simulated nodes use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CryptoMode {
    /// Keyed-hash double with the real schemes' sizes and accept/reject behaviour.
    Fast,
    /// The real schemes (Ed25519 or RSA signatures, 1024-bit Shoup threshold RSA).
    Real,
}
