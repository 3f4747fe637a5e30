//! A node that ignores some of what it receives.

use std::time::Duration;

use bft_core::{Node, NodeId};

use super::wrapper::wrapper_node;
use super::{Matching, MsgFilter};

/// Wraps `N`; drops incoming messages `filter` matches (by sender and message, e.g.
/// [`super::kinds`]) before the inner node sees them, optionally only while `when` holds of
/// the inner node.
pub struct DropInbound<N: Node> {
    inner: N,
    matching: Matching<N>,
    /// Messages dropped so far.
    pub dropped: u64,
}

impl<N: Node> DropInbound<N> {
    /// `inner`, deaf to what `filter` matches.
    pub fn new(inner: N, filter: MsgFilter<N::Msg>) -> Self {
        DropInbound {
            inner,
            matching: Matching::new(filter),
            dropped: 0,
        }
    }

    /// Drops only while `when` holds of the inner node.
    pub fn when(mut self, when: impl Fn(&N) -> bool + 'static) -> Self {
        self.matching.set_when(when);
        self
    }
}

wrapper_node! {
    impl[N: Node] Wrapper for DropInbound<N> {
        fn admit(&mut self, _now: Duration, msg: Option<(NodeId, &N::Msg)>) -> bool {
            let Some((from, msg)) = msg else {
                return true;
            };
            if self.matching.matches(from, msg) && self.matching.active(&self.inner) {
                self.dropped += 1;
                return false;
            }
            true
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::faults::fake::{receive, sends, Fake};
    use crate::faults::kinds;
    use crate::faults::Wrapper;

    #[test]
    fn drops_the_kinds_unseen() {
        let mut n = DropInbound::new(Fake::new(0), kinds(&["secret"]));
        let mut out = Vec::new();
        receive(&mut n, 1, "secret", &mut out);
        receive(&mut n, 1, "ping", &mut out);
        assert_eq!(sends(&out), vec!["echo-ping"]);
        assert_eq!((n.inner().inputs, n.dropped), (1, 1));
    }

    #[test]
    fn drops_only_while_the_state_holds() {
        let mut n = DropInbound::new(Fake::new(0), kinds(&["x"])).when(|f: &Fake| f.inputs >= 1);
        let mut out = Vec::new();
        receive(&mut n, 1, "x", &mut out);
        receive(&mut n, 1, "x", &mut out);
        assert_eq!(sends(&out), vec!["echo-x"]);
        assert_eq!(n.dropped, 1);
    }
}
