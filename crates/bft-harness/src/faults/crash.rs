//! A node that crashes: from time `at` on it hears nothing and says nothing.

use std::time::Duration;

use bft_core::crypto::CryptoCounters;
use bft_core::{Node, NodeId, Output};

/// Wraps `N`; from `at` on every input is dropped unseen and nothing is output. A crash at
/// time zero is a silent node (its `start` outputs are dropped too).
pub struct Crash<N: Node> {
    inner: N,
    at: Duration,
}

impl<N: Node> Crash<N> {
    /// `inner`, crashing at `at`.
    pub fn at(inner: N, at: Duration) -> Self {
        Crash { inner, at }
    }

    /// `inner`, silent from the start.
    pub fn silent(inner: N) -> Self {
        Crash::at(inner, Duration::ZERO)
    }

    /// The wrapped node.
    pub fn inner(&self) -> &N {
        &self.inner
    }

    fn up(&self, now: Duration) -> bool {
        now < self.at
    }
}

impl<N: Node> Node for Crash<N> {
    type Msg = N::Msg;
    fn id(&self) -> NodeId {
        self.inner.id()
    }
    fn start(&mut self, now: Duration, out: &mut Vec<Output<N::Msg>>) {
        if self.up(now) {
            self.inner.start(now, out);
        }
    }
    fn on_message(
        &mut self,
        now: Duration,
        from: NodeId,
        msg: &N::Msg,
        out: &mut Vec<Output<N::Msg>>,
    ) {
        if self.up(now) {
            self.inner.on_message(now, from, msg, out);
        }
    }
    fn on_timer(&mut self, now: Duration, token: u64, out: &mut Vec<Output<N::Msg>>) {
        if self.up(now) {
            self.inner.on_timer(now, token, out);
        }
    }
    fn crypto_counters(&self) -> CryptoCounters {
        self.inner.crypto_counters()
    }
    fn combine_shares(&self) -> usize {
        self.inner.combine_shares()
    }
    fn stop(&mut self) {
        self.inner.stop()
    }
    fn stats(&self) -> Vec<(&'static str, u64)> {
        self.inner.stats()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::faults::fake::{msg, sends, Fake};

    #[test]
    fn crashes_at_its_time() {
        let mut n = Crash::at(Fake::new(0), Duration::from_secs(1));
        let mut out = Vec::new();
        n.start(Duration::ZERO, &mut out);
        n.on_message(
            Duration::from_millis(999),
            NodeId::Replica(1),
            &msg("ping"),
            &mut out,
        );
        assert_eq!(sends(&out), vec!["start", "echo-ping"]);
        out.clear();
        n.on_message(
            Duration::from_secs(1),
            NodeId::Replica(1),
            &msg("ping"),
            &mut out,
        );
        n.on_timer(Duration::from_secs(2), 7, &mut out);
        assert!(out.is_empty());
        assert_eq!(
            n.inner().inputs,
            1,
            "inputs after the crash never reach the node"
        );
    }

    #[test]
    fn silent_never_starts() {
        let mut n = Crash::silent(Fake::new(0));
        let mut out = Vec::new();
        n.start(Duration::ZERO, &mut out);
        n.on_timer(Duration::ZERO, 1, &mut out);
        assert!(out.is_empty());
        assert_eq!(n.inner().inputs, 0);
    }
}
