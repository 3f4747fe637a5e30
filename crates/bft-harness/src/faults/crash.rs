//! A node that crashes: from time `at` on it hears nothing and says nothing.

use std::time::Duration;

use bft_core::{Node, NodeId};

use super::wrapper::wrapper_node;

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
}

wrapper_node! {
    impl[N: Node] Wrapper for Crash<N> {
        fn admit(&mut self, now: Duration, _msg: Option<(NodeId, &N::Msg)>) -> bool {
            now < self.at
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::faults::fake::{msg, sends, Fake};
    use crate::faults::Wrapper;

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
