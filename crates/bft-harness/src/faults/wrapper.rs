//! What every fault wrapper shares: a [`Wrapper`] says only what it changes (which inputs the
//! inner node sees, what becomes of its outputs, the crypto work it adds) and `wrapper_node!`
//! writes its [`Node`] impl, forwarding everything else to the inner node.

use std::time::Duration;

use bft_core::crypto::CryptoCounters;
use bft_core::{Node, NodeId, Output};

/// The messages of the node a [`Wrapper`] wraps.
pub type MsgOf<W> = <<W as Wrapper>::Inner as Node>::Msg;

/// A [`Node`] that drives an inner node and changes some of what goes in and out. The
/// defaults change nothing; the node's identity, recovery, threshold combines, `stop` and
/// `stats` are always the inner node's.
pub trait Wrapper {
    /// The wrapped node.
    type Inner: Node;
    /// The wrapped node.
    fn inner(&self) -> &Self::Inner;
    /// The wrapped node, mutably.
    fn inner_mut(&mut self) -> &mut Self::Inner;
    /// Whether the inner node gets an input at `now`: `msg` is the sender and message of a
    /// message, `None` for `start` and timers. An input not admitted is dropped unseen.
    fn admit(&mut self, _now: Duration, _msg: Option<(NodeId, &MsgOf<Self>)>) -> bool {
        true
    }
    /// Takes the message `msg` from `from` at `now` instead of the inner node (to hand it over
    /// later, say) and returns true; false lets it go on to [`Wrapper::admit`].
    fn intercept(
        &mut self,
        _now: Duration,
        _from: NodeId,
        _msg: &MsgOf<Self>,
        _out: &mut Vec<Output<MsgOf<Self>>>,
    ) -> bool {
        false
    }
    /// Changes `out[from..]`, what the inner node output for one admitted input.
    fn outgoing(&mut self, _out: &mut Vec<Output<MsgOf<Self>>>, _from: usize) {}
    /// A timer the wrapper set for itself (with a token the inner node never uses): handle it
    /// and return true; false passes the timer on to the inner node.
    fn own_timer(
        &mut self,
        _now: Duration,
        _token: u64,
        _out: &mut Vec<Output<MsgOf<Self>>>,
    ) -> bool {
        false
    }
    /// Crypto work of the wrapper itself (re-signing), charged on top of the inner node's.
    fn own_crypto(&self) -> CryptoCounters {
        CryptoCounters::default()
    }

    /// Runs one input through [`Wrapper::admit`], the inner node and [`Wrapper::outgoing`].
    fn step(
        &mut self,
        now: Duration,
        msg: Option<(NodeId, &MsgOf<Self>)>,
        out: &mut Vec<Output<MsgOf<Self>>>,
        input: impl FnOnce(&mut Self::Inner, &mut Vec<Output<MsgOf<Self>>>),
    ) {
        if self.admit(now, msg) {
            let from = out.len();
            input(self.inner_mut(), out);
            self.outgoing(out, from);
        }
    }

    /// The inner node's crypto work plus the wrapper's own.
    fn total_crypto(&self) -> CryptoCounters {
        let mut c = Node::crypto_counters(self.inner());
        for (a, b) in c.0.iter_mut().zip(self.own_crypto().0) {
            *a += b;
        }
        c
    }
}

/// Declares a fault wrapper whose inner node is its field `inner`:
///
/// ```ignore
/// wrapper_node! {
///     impl[N: Node] Wrapper for Crash<N> {
///         fn admit(&mut self, now: Duration, _msg: Option<(NodeId, &N::Msg)>) -> bool { .. }
///     }
/// }
/// ```
///
/// writes its [`Wrapper`] impl (the accessors, then the hooks given) and its [`Node`] impl (a
/// blanket impl of the foreign trait is not allowed, so each wrapper is named here). The inner
/// node's type is the generic parameter `N` unless named: `impl[A: Attack] Wrapper<Inner =
/// Replica> for OnTick<A> { .. }`.
#[macro_export]
macro_rules! wrapper_node {
    (impl[$($gen:tt)*] Wrapper for $ty:ty { $($hooks:tt)* }) => {
        $crate::wrapper_node! { impl[$($gen)*] Wrapper<Inner = N> for $ty { $($hooks)* } }
    };
    (impl[$($gen:tt)*] Wrapper<Inner = $inner:ty> for $ty:ty { $($hooks:tt)* }) => {
        impl<$($gen)*> $crate::faults::Wrapper for $ty {
            type Inner = $inner;
            fn inner(&self) -> &$inner {
                &self.inner
            }
            fn inner_mut(&mut self) -> &mut $inner {
                &mut self.inner
            }
            $($hooks)*
        }

        impl<$($gen)*> bft_core::Node for $ty {
            type Msg = $crate::faults::MsgOf<Self>;
            fn id(&self) -> bft_core::NodeId {
                bft_core::Node::id($crate::faults::Wrapper::inner(self))
            }
            fn recover(&mut self, store: &bft_core::durable::Store) {
                bft_core::Node::recover($crate::faults::Wrapper::inner_mut(self), store)
            }
            fn start(&mut self, now: std::time::Duration, out: &mut Vec<bft_core::Output<Self::Msg>>) {
                $crate::faults::Wrapper::step(self, now, None, out, |n, out| bft_core::Node::start(n, now, out));
            }
            fn on_message(
                &mut self,
                now: std::time::Duration,
                from: bft_core::NodeId,
                msg: &Self::Msg,
                out: &mut Vec<bft_core::Output<Self::Msg>>,
            ) {
                if !$crate::faults::Wrapper::intercept(self, now, from, msg, out) {
                    $crate::faults::Wrapper::step(self, now, Some((from, msg)), out, |n, out| bft_core::Node::on_message(n, now, from, msg, out));
                }
            }
            fn on_timer(
                &mut self,
                now: std::time::Duration,
                token: u64,
                out: &mut Vec<bft_core::Output<Self::Msg>>,
            ) {
                if !$crate::faults::Wrapper::own_timer(self, now, token, out) {
                    $crate::faults::Wrapper::step(self, now, None, out, |n, out| bft_core::Node::on_timer(n, now, token, out));
                }
            }
            fn crypto_counters(&self) -> bft_core::crypto::CryptoCounters {
                $crate::faults::Wrapper::total_crypto(self)
            }
            fn combine_shares(&self) -> usize {
                bft_core::Node::combine_shares($crate::faults::Wrapper::inner(self))
            }
            fn stop(&mut self) {
                bft_core::Node::stop($crate::faults::Wrapper::inner_mut(self))
            }
            fn stats(&self) -> Vec<(&'static str, u64)> {
                bft_core::Node::stats($crate::faults::Wrapper::inner(self))
            }
            fn gauges(&self) -> Vec<(&'static str, u64)> {
                bft_core::Node::gauges($crate::faults::Wrapper::inner(self))
            }
            fn incarnation(&self) -> u64 {
                bft_core::Node::incarnation($crate::faults::Wrapper::inner(self))
            }
        }
    };
}

pub(crate) use wrapper_node;

/// Declares a protocol's simulated replica: the trait `$name` of the nodes of messages `$msg`
/// whose `$replica` stays reachable (`replica()`, for the tests' inspection) through any fault
/// wrappers, with its impls for the bare replica, a boxed node and every [`Wrapper`].
///
/// ```ignore
/// bft_harness::replica_node! {
///     /// A simulated PBFT replica.
///     pub trait ReplicaNode: Node<Msg = Message> { replica: Replica }
/// }
/// ```
#[macro_export]
macro_rules! replica_node {
    ($(#[$meta:meta])* pub trait $name:ident: Node<Msg = $msg:ty> { replica: $replica:ty }) => {
        $(#[$meta])*
        pub trait $name: bft_core::Node<Msg = $msg> {
            /// The replica inside.
            fn replica(&self) -> &$replica;
        }

        impl $name for $replica {
            fn replica(&self) -> &$replica {
                self
            }
        }

        impl $name for Box<dyn $name> {
            fn replica(&self) -> &$replica {
                (**self).replica()
            }
        }

        /// Every fault wrapper of `bft_harness::faults` around a replica.
        impl<W> $name for W
        where
            W: $crate::faults::Wrapper + bft_core::Node<Msg = $msg>,
            W::Inner: $name,
        {
            fn replica(&self) -> &$replica {
                $crate::faults::Wrapper::inner(self).replica()
            }
        }
    };
}
