//! The queue of received messages between the transport's stream readers and the node.
//!
//! It is bounded in **bytes**, per peer and overall, and it is **fair**: each peer has a queue
//! of its own, the receiver takes from the peers' queues in round robin, and replicas come
//! before clients (after [`REPLICA_STREAK`] replica messages in a row, one waiting client
//! message is taken, so clients are never starved). A reader whose peer is over its budget
//! waits, and with it that peer's QUIC stream: flow control then pushes back on that peer
//! only. One client flooding big frames therefore neither grows memory beyond its budget nor
//! delays a replica's protocol messages behind its own.
//!
//! Bounds: a replica's queue holds at most `replica_bytes` (or one message, if larger); all
//! clients together at most `client_pool_bytes`, each at most `client_bytes` (or one message).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use tokio::sync::Notify;

use crate::PeerName;

/// Replica messages taken in a row before a waiting client message is taken.
pub const REPLICA_STREAK: u32 = 16;

/// Byte budgets of the inbound queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InboundLimits {
    /// Bytes one replica may have waiting. Default 16 MiB.
    pub replica_bytes: usize,
    /// Bytes one client may have waiting. Default 1 MiB.
    pub client_bytes: usize,
    /// Bytes all clients together may have waiting. Default 16 MiB.
    pub client_pool_bytes: usize,
}

impl Default for InboundLimits {
    fn default() -> Self {
        InboundLimits {
            replica_bytes: 16 << 20,
            client_bytes: 1 << 20,
            client_pool_bytes: 16 << 20,
        }
    }
}

/// Whether a sender is a replica (a peer with an address) or a client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Class {
    Replica,
    Client,
}

#[derive(Default)]
struct PeerQueue {
    messages: VecDeque<Bytes>,
    bytes: usize,
}

#[derive(Default)]
struct State {
    queues: HashMap<PeerName, PeerQueue>,
    /// Peers with waiting messages, in round-robin order.
    ready_replicas: VecDeque<PeerName>,
    ready_clients: VecDeque<PeerName>,
    client_bytes: usize,
    total_bytes: usize,
    total_messages: usize,
    streak: u32,
    /// The receiver is gone: pushes fail.
    receiver_gone: bool,
    /// The transport is shut down: the receiver drains, then sees the end.
    senders_gone: bool,
}

pub(crate) struct Shared {
    limits: InboundLimits,
    state: Mutex<State>,
    /// Wakes the receiver.
    readable: Notify,
    /// Wakes readers waiting for room.
    room: Notify,
}

fn lock(m: &Mutex<State>) -> MutexGuard<'_, State> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The receiving end: messages from peers, as `(sender name, payload)`.
pub struct Inbound {
    shared: Arc<Shared>,
}

/// Bytes and messages waiting in an [`Inbound`] queue.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InboundUsage {
    /// Payload bytes waiting.
    pub bytes: usize,
    /// Messages waiting.
    pub messages: usize,
    /// Of the bytes, those from clients.
    pub client_bytes: usize,
}

pub(crate) fn channel(limits: InboundLimits) -> (Arc<Shared>, Inbound) {
    let shared = Arc::new(Shared {
        limits,
        state: Mutex::new(State::default()),
        readable: Notify::new(),
        room: Notify::new(),
    });
    (shared.clone(), Inbound { shared })
}

impl Shared {
    /// Queues a message from `peer`, waiting while its budget is spent; `false` once the
    /// receiver is gone.
    pub(crate) async fn push(&self, peer: &PeerName, class: Class, payload: Bytes) -> bool {
        let len = payload.len();
        loop {
            let room = {
                let mut state = lock(&self.state);
                if state.receiver_gone || state.senders_gone {
                    return false;
                }
                let queued = state.queues.get(peer).map_or(0, |q| q.bytes);
                let peer_limit = match class {
                    Class::Replica => self.limits.replica_bytes,
                    Class::Client => self.limits.client_bytes,
                };
                let fits_peer = queued == 0 || queued + len <= peer_limit;
                let fits_pool = class == Class::Replica
                    || state.client_bytes == 0
                    || state.client_bytes + len <= self.limits.client_pool_bytes;
                if fits_peer && fits_pool {
                    let st = &mut *state;
                    let queue = st.queues.entry(peer.clone()).or_default();
                    if queue.messages.is_empty() {
                        match class {
                            Class::Replica => st.ready_replicas.push_back(peer.clone()),
                            Class::Client => st.ready_clients.push_back(peer.clone()),
                        }
                    }
                    queue.messages.push_back(payload);
                    queue.bytes += len;
                    st.total_bytes += len;
                    st.total_messages += 1;
                    if class == Class::Client {
                        st.client_bytes += len;
                    }
                    drop(state);
                    self.readable.notify_one();
                    return true;
                }
                // Registered before the lock is released: no wake-up is missed.
                self.room.notified()
            };
            room.await;
        }
    }

    /// No more messages will come: the receiver drains what is queued, then sees the end.
    pub(crate) fn close(&self) {
        lock(&self.state).senders_gone = true;
        self.readable.notify_one();
        self.room.notify_waiters();
    }

    pub(crate) fn usage(&self) -> InboundUsage {
        let state = lock(&self.state);
        InboundUsage {
            bytes: state.total_bytes,
            messages: state.total_messages,
            client_bytes: state.client_bytes,
        }
    }

    fn pop(&self) -> Option<(PeerName, Bytes)> {
        let mut state = lock(&self.state);
        let state = &mut *state;
        let take_replica = !state.ready_replicas.is_empty()
            && (state.ready_clients.is_empty() || state.streak < REPLICA_STREAK);
        let (ready, class) = if take_replica {
            state.streak += 1;
            (&mut state.ready_replicas, Class::Replica)
        } else {
            state.streak = 0;
            (&mut state.ready_clients, Class::Client)
        };
        let peer = ready.pop_front()?;
        let queue = state.queues.get_mut(&peer)?;
        let payload = queue.messages.pop_front()?;
        queue.bytes -= payload.len();
        if queue.messages.is_empty() {
            state.queues.remove(&peer);
        } else {
            ready.push_back(peer.clone());
        }
        state.total_bytes -= payload.len();
        state.total_messages -= 1;
        if class == Class::Client {
            state.client_bytes -= payload.len();
        }
        Some((peer, payload))
    }
}

impl std::fmt::Debug for Inbound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inbound")
            .field("usage", &self.usage())
            .finish_non_exhaustive()
    }
}

impl Inbound {
    /// The next message, `None` once the transport is shut down and the queue is empty.
    pub async fn recv(&mut self) -> Option<(PeerName, Bytes)> {
        loop {
            let readable = self.shared.readable.notified();
            if let Some(message) = self.shared.pop() {
                self.shared.room.notify_waiters();
                return Some(message);
            }
            if lock(&self.shared.state).senders_gone {
                return None;
            }
            readable.await;
        }
    }

    /// The next message if one is waiting now (never waits; `None` also after shutdown).
    pub fn try_recv(&mut self) -> Option<(PeerName, Bytes)> {
        let message = self.shared.pop()?;
        self.shared.room.notify_waiters();
        Some(message)
    }

    /// What is waiting now.
    pub fn usage(&self) -> InboundUsage {
        self.shared.usage()
    }
}

impl Drop for Inbound {
    fn drop(&mut self) {
        let mut state = lock(&self.shared.state);
        state.receiver_gone = true;
        state.queues.clear();
        state.ready_clients.clear();
        state.ready_replicas.clear();
        drop(state);
        self.shared.room.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn limits() -> InboundLimits {
        InboundLimits {
            replica_bytes: 100,
            client_bytes: 30,
            client_pool_bytes: 50,
        }
    }

    fn msg(len: usize) -> Bytes {
        Bytes::from(vec![0u8; len])
    }

    #[tokio::test]
    async fn replicas_first_then_round_robin_and_clients_not_starved() {
        let (shared, mut rx) = channel(limits());
        let (r1, r2, c) = (
            PeerName::from("pbft-r1"),
            PeerName::from("pbft-r2"),
            PeerName::from("client-0"),
        );
        assert!(shared.push(&c, Class::Client, msg(1)).await);
        for _ in 0..20 {
            assert!(shared.push(&r1, Class::Replica, msg(1)).await);
        }
        assert!(shared.push(&r2, Class::Replica, msg(2)).await);
        let mut order = Vec::new();
        for _ in 0..22 {
            order.push(rx.recv().await.unwrap().0);
        }
        // r1, r2 alternate while both wait; the client comes after REPLICA_STREAK replicas.
        assert_eq!(order[0], r1);
        assert_eq!(order[1], r2);
        assert_eq!(order[REPLICA_STREAK as usize], c);
        assert!(order[..REPLICA_STREAK as usize].iter().all(|p| *p != c));
        assert_eq!(rx.usage(), InboundUsage::default());
    }

    #[tokio::test]
    async fn budgets_hold_back_only_the_peer_over_them() {
        let (shared, mut rx) = channel(limits());
        let flood = PeerName::from("client-1");
        let other = PeerName::from("client-2");
        let replica = PeerName::from("pbft-r0");
        // A message larger than the budget is taken into an empty queue...
        assert!(shared.push(&flood, Class::Client, msg(40)).await);
        // ...but the next one waits.
        let blocked = {
            let shared = shared.clone();
            let flood = flood.clone();
            tokio::spawn(async move { shared.push(&flood, Class::Client, msg(10)).await })
        };
        tokio::task::yield_now().await;
        assert!(!blocked.is_finished());
        // Another client fits the pool (40 + 10 <= 50); a replica is not limited by the pool.
        assert!(shared.push(&other, Class::Client, msg(10)).await);
        assert!(shared.push(&replica, Class::Replica, msg(90)).await);
        let usage = rx.usage();
        assert_eq!((usage.bytes, usage.client_bytes), (140, 50));
        assert_eq!(rx.recv().await.unwrap().0, replica);
        let first = rx.recv().await.unwrap();
        assert_eq!((first.0, first.1.len()), (flood.clone(), 40));
        // Room again: the waiting message gets in.
        assert!(tokio::time::timeout(Duration::from_secs(5), blocked)
            .await
            .unwrap()
            .unwrap());
        assert_eq!(rx.recv().await.unwrap().0, other);
        assert_eq!(rx.recv().await.unwrap().0, flood);
    }

    #[tokio::test]
    async fn close_drains_then_ends_and_a_dropped_receiver_fails_pushes() {
        let (shared, mut rx) = channel(limits());
        let p = PeerName::from("pbft-r0");
        assert!(shared.push(&p, Class::Replica, msg(3)).await);
        shared.close();
        assert!(rx.recv().await.is_some());
        assert!(rx.recv().await.is_none());
        assert!(!shared.push(&p, Class::Replica, msg(3)).await);

        let (shared, rx) = channel(limits());
        assert!(shared.push(&p, Class::Client, msg(40)).await);
        let blocked = {
            let shared = shared.clone();
            let p = p.clone();
            tokio::spawn(async move { shared.push(&p, Class::Client, msg(40)).await })
        };
        tokio::task::yield_now().await;
        drop(rx);
        assert!(!tokio::time::timeout(Duration::from_secs(5), blocked)
            .await
            .unwrap()
            .unwrap());
    }
}
