//! The Byzantine primaries that need the core's [`PrimaryHook`] (see there why).

use bft_core::{ClientId, Update};

use crate::replica::PrimaryHook;

/// As primary, never sends a Pre-Prepare or a New-View; otherwise correct.
#[derive(Debug)]
pub struct SilentPrimary;

impl PrimaryHook for SilentPrimary {
    fn acts(&self) -> bool {
        false
    }
}

/// As primary, never orders the requests of `client` (censorship); otherwise correct.
#[derive(Debug)]
pub struct CensoringPrimary {
    /// The censored client.
    pub client: ClientId,
}

impl PrimaryHook for CensoringPrimary {
    fn admits(&self, u: &Update) -> bool {
        u.client != self.client
    }
}

/// As primary, orders empty batches while requests wait (fake progress).
#[derive(Debug)]
pub struct EmptyBatchPrimary;

impl PrimaryHook for EmptyBatchPrimary {
    fn fakes_progress(&self) -> bool {
        true
    }
}
