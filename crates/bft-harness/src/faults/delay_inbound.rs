//! A node that takes some of its messages late: a Byzantine server that handles what it
//! receives correctly, only after holding it (a representative that holds the shares it must
//! combine just under what its site's watch allows). An [`InboundHold`] decides each message's
//! hand-over time.

use std::time::Duration;

use bft_core::{Node, NodeId, Output};

use super::wrapper::{wrapper_node, MsgOf};

/// The wrapper's timer token (far from any protocol's own tokens and from
/// [`super::DELAY_OUTBOUND_TIMER`]).
pub const DELAY_INBOUND_TIMER: u64 = u64::MAX - 0x51_0c;

/// When a [`DelayInbound`] hands a message to its inner node.
pub trait InboundHold<N: Node> {
    /// When `msg` from `from`, arriving at `now`, reaches `inner`: `None` or a time not after
    /// `now` hands it over at once.
    fn due(&mut self, now: Duration, inner: &N, from: NodeId, msg: &N::Msg) -> Option<Duration>;
}

/// Wraps `N`; each inbound message reaches it when `H` says.
pub struct DelayInbound<N: Node, H> {
    inner: N,
    hold: H,
    /// Held messages with their hand-over time.
    held: Vec<(Duration, NodeId, N::Msg)>,
    /// Messages held so far.
    pub delayed: u64,
}

impl<N: Node, H: InboundHold<N>> DelayInbound<N, H> {
    /// `inner`, taking its messages when `hold` says.
    pub fn new(inner: N, hold: H) -> Self {
        DelayInbound {
            inner,
            hold,
            held: Vec::new(),
            delayed: 0,
        }
    }
}

wrapper_node! {
    impl[N: Node, H: InboundHold<N>] Wrapper for DelayInbound<N, H> {
        fn intercept(
            &mut self,
            now: Duration,
            from: NodeId,
            msg: &N::Msg,
            out: &mut Vec<Output<N::Msg>>,
        ) -> bool {
            let Some(due) = self.hold.due(now, &self.inner, from, msg).filter(|d| *d > now) else {
                return false;
            };
            self.held.push((due, from, msg.clone()));
            self.delayed += 1;
            out.push(Output::Timer { after: due - now, token: DELAY_INBOUND_TIMER });
            true
        }

        fn own_timer(&mut self, now: Duration, token: u64, out: &mut Vec<Output<MsgOf<Self>>>) -> bool {
            if token != DELAY_INBOUND_TIMER {
                return false;
            }
            let (due, later): (Vec<_>, Vec<_>) =
                self.held.drain(..).partition(|(at, _, _)| *at <= now);
            self.held = later;
            for (_, from, msg) in due {
                self.inner.on_message(now, from, &msg, out);
            }
            true
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::faults::fake::{msg, sends, Fake, FakeMsg};
    use crate::faults::Wrapper;

    /// Holds "secret" messages 30 ms.
    struct Secrets;

    impl InboundHold<Fake> for Secrets {
        fn due(&mut self, now: Duration, _: &Fake, _: NodeId, m: &FakeMsg) -> Option<Duration> {
            (m.0 == "secret").then(|| now + Duration::from_millis(30))
        }
    }

    #[test]
    fn holds_what_the_policy_says_until_it_is_due() {
        let mut n = DelayInbound::new(Fake::new(0), Secrets);
        let mut out = Vec::new();
        let from = NodeId::Replica(1);
        n.on_message(Duration::from_millis(1), from, &msg("secret"), &mut out);
        n.on_message(Duration::from_millis(2), from, &msg("now"), &mut out);
        assert_eq!(sends(&out), vec!["echo-now"], "the secret one is held");
        assert!(out.iter().any(|o| matches!(
            o,
            Output::Timer { token: DELAY_INBOUND_TIMER, after } if *after == Duration::from_millis(30)
        )));
        out.clear();
        n.on_timer(Duration::from_millis(20), DELAY_INBOUND_TIMER, &mut out);
        assert!(sends(&out).is_empty(), "not due yet");
        n.on_timer(Duration::from_millis(31), DELAY_INBOUND_TIMER, &mut out);
        assert_eq!(sends(&out), vec!["echo-secret"]);
        assert_eq!((n.delayed, n.inner().inputs), (1, 2));
        // The inner node's own timers pass through.
        n.on_timer(Duration::from_millis(40), 5, &mut out);
        assert_eq!(n.inner().inputs, 3);
    }
}
