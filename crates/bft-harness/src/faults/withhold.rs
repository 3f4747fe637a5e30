//! A node that withholds some of its messages.

use bft_core::{Node, Output};

use super::wrapper::wrapper_node;
use super::{retain_sends, Matching, MsgFilter};

/// Wraps `N`; drops the outgoing messages `filter` matches (by destination and message, e.g.
/// [`super::kinds`]), optionally only while `when` holds of the inner node (checked after the
/// input that produced them).
pub struct Withhold<N: Node> {
    inner: N,
    matching: Matching<N>,
    /// Messages withheld so far.
    pub withheld: u64,
}

impl<N: Node> Withhold<N> {
    /// `inner`, withholding what `filter` matches.
    pub fn new(inner: N, filter: MsgFilter<N::Msg>) -> Self {
        Withhold {
            inner,
            matching: Matching::new(filter),
            withheld: 0,
        }
    }

    /// Withholds only while `when` holds of the inner node.
    pub fn when(mut self, when: impl Fn(&N) -> bool + 'static) -> Self {
        self.matching.set_when(when);
        self
    }
}

wrapper_node! {
    impl[N: Node] Wrapper for Withhold<N> {
        fn outgoing(&mut self, out: &mut Vec<Output<N::Msg>>, from: usize) {
            if !self.matching.active(&self.inner) {
                return;
            }
            let before = out.len();
            retain_sends(out, from, |to, m| self.matching.matches(to, m));
            self.withheld += (before - out.len()) as u64;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::faults::fake::{receive, sends, Fake};
    use crate::faults::kinds;
    use crate::faults::Wrapper;
    use bft_core::NodeId;

    #[test]
    fn withholds_the_kinds() {
        let mut n = Withhold::new(Fake::new(0), kinds(&["echo-secret"]));
        let mut out = Vec::new();
        n.start(Duration::ZERO, &mut out);
        receive(&mut n, 1, "secret", &mut out);
        receive(&mut n, 1, "ping", &mut out);
        assert_eq!(sends(&out), vec!["start", "echo-ping"]);
        assert_eq!(n.withheld, 1);
        assert_eq!(n.inner().inputs, 2, "the node itself saw everything");
    }

    #[test]
    fn withholds_by_destination_only_while_the_state_holds() {
        let to_two =
            Box::new(|to: NodeId, _: &crate::faults::fake::FakeMsg| to == NodeId::Replica(2));
        let mut n = Withhold::new(Fake::new(0), to_two).when(|f: &Fake| f.inputs >= 2);
        let mut out = Vec::new();
        receive(&mut n, 2, "a", &mut out);
        assert_eq!(sends(&out), vec!["echo-a"], "not yet withholding");
        out.clear();
        receive(&mut n, 2, "b", &mut out);
        receive(&mut n, 3, "c", &mut out);
        assert_eq!(sends(&out), vec!["echo-c"]);
        // Timers are kept.
        n.on_timer(Duration::ZERO, 5, &mut out);
        assert!(out
            .iter()
            .any(|o| matches!(o, Output::Timer { token: 5, .. })));
    }
}
