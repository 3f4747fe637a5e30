//! A node that sends some of its messages late: a Byzantine server that does its part of the
//! protocol, only slowly where it hurts (a representative that holds what it forwards to other
//! sites just under the timers).

use std::collections::VecDeque;
use std::time::Duration;

use bft_core::{Node, Output};

use super::wrapper::{wrapper_node, MsgOf};
use super::{Matching, MsgFilter};

/// The wrapper's timer token (far from any protocol's own tokens).
pub const DELAY_OUTBOUND_TIMER: u64 = u64::MAX - 0xde1a;

/// Wraps `N`; the outgoing messages `filter` matches (by destination and message) leave
/// `hold` after the input that produced them, in order, optionally only while `when` holds
/// of the inner node.
pub struct DelayOutbound<N: Node> {
    inner: N,
    matching: Matching<N>,
    hold: Duration,
    /// The time of the input being handled (`outgoing` is not told).
    now: Duration,
    /// Delayed sends with the time they leave, earliest first (one hold for all).
    held: VecDeque<(Duration, Output<N::Msg>)>,
    /// Messages delayed so far.
    pub delayed: u64,
}

impl<N: Node> DelayOutbound<N> {
    /// `inner`, sending what `filter` matches `hold` late.
    pub fn new(inner: N, filter: MsgFilter<N::Msg>, hold: Duration) -> Self {
        DelayOutbound {
            inner,
            matching: Matching::new(filter),
            hold,
            now: Duration::ZERO,
            held: VecDeque::new(),
            delayed: 0,
        }
    }

    /// Delays only while `when` holds of the inner node.
    pub fn when(mut self, when: impl Fn(&N) -> bool + 'static) -> Self {
        self.matching.set_when(when);
        self
    }
}

wrapper_node! {
    impl[N: Node] Wrapper for DelayOutbound<N> {
        fn admit(&mut self, now: Duration, _msg: Option<(bft_core::NodeId, &N::Msg)>) -> bool {
            self.now = now;
            true
        }

        fn outgoing(&mut self, out: &mut Vec<Output<N::Msg>>, from: usize) {
            if !self.matching.active(&self.inner) {
                return;
            }
            let due = self.now + self.hold;
            let before = self.held.len();
            let mut i = from;
            while i < out.len() {
                if matches!(&out[i], Output::Send { to, env } if self.matching.matches(*to, &env.msg)) {
                    self.held.push_back((due, out.remove(i)));
                } else {
                    i += 1;
                }
            }
            if self.held.len() > before {
                self.delayed += (self.held.len() - before) as u64;
                out.push(Output::Timer { after: self.hold, token: DELAY_OUTBOUND_TIMER });
            }
        }

        fn own_timer(&mut self, now: Duration, token: u64, out: &mut Vec<Output<MsgOf<Self>>>) -> bool {
            if token != DELAY_OUTBOUND_TIMER {
                return false;
            }
            while self.held.front().is_some_and(|(due, _)| *due <= now) {
                if let Some((_, send)) = self.held.pop_front() {
                    out.push(send);
                }
            }
            true
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::faults::fake::{msg, receive, sends, Fake};
    use crate::faults::kinds;
    use crate::faults::Wrapper;

    #[test]
    fn delays_the_kinds_by_the_hold_in_order() {
        let hold = Duration::from_millis(30);
        let mut n = DelayOutbound::new(Fake::new(0), kinds(&["echo-secret"]), hold);
        let mut out = Vec::new();
        let at = Duration::from_millis(1);
        n.on_message(at, bft_core::NodeId::Replica(1), &msg("secret"), &mut out);
        receive(&mut n, 1, "now", &mut out);
        assert_eq!(sends(&out), vec!["echo-now"], "the secret one is held");
        assert!(out.iter().any(
            |o| matches!(o, Output::Timer { token: DELAY_OUTBOUND_TIMER, after } if *after == hold)
        ));
        out.clear();
        n.on_timer(Duration::from_millis(20), DELAY_OUTBOUND_TIMER, &mut out);
        assert!(sends(&out).is_empty(), "not due yet");
        n.on_timer(Duration::from_millis(31), DELAY_OUTBOUND_TIMER, &mut out);
        assert_eq!(sends(&out), vec!["echo-secret"]);
        assert_eq!(n.delayed, 1);
        // The inner node's own timers pass through.
        out.clear();
        n.on_timer(Duration::from_millis(40), 5, &mut out);
        assert_eq!(n.inner().inputs, 3, "message, message, its own timer");
    }
}
