//! Counters kept by the simulator.

use steward_config::SiteId;

/// Network counters over some period (see [`SimStats`]).
///
/// A message is counted as delivered when it reaches its destination process, before it may
/// wait for that process's CPU. Bytes are [`crate::SimMessage::wire_size`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetStats {
    /// Messages delivered between two processes of the same site.
    pub lan_messages: u64,
    /// Bytes of those messages.
    pub lan_bytes: u64,
    /// Messages delivered between processes of different sites (cross-site, over the WAN).
    pub wan_messages: u64,
    /// Bytes of those messages.
    pub wan_bytes: u64,
    /// Messages a process sent to itself (no network).
    pub self_messages: u64,
    /// Messages delivered through [`crate::Sim::inject`] (no network).
    pub injected: u64,
    /// Messages dropped by the link's loss probability.
    pub dropped_loss: u64,
    /// Messages dropped because a queue (a process's egress or a directed WAN queue) was full.
    pub dropped_queue: u64,
    /// Messages dropped because a partition separated their sites.
    pub dropped_partition: u64,
    /// Extra copies made by [`crate::SimConfig::duplicate_prob`].
    pub duplicated: u64,
    /// Messages given an extra reordering delay by [`crate::SimConfig::reorder_prob`].
    pub reordered: u64,
}

impl NetStats {
    /// All messages delivered over the network (LAN and WAN).
    pub fn network_messages(&self) -> u64 {
        self.lan_messages + self.wan_messages
    }

    /// All messages dropped, whatever the cause.
    pub fn dropped(&self) -> u64 {
        self.dropped_loss + self.dropped_queue + self.dropped_partition
    }
}

/// What the simulator counted so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SimStats {
    /// Network counters from the warm-up end ([`crate::SimConfig::warmup`]) on: an event
    /// counts when it happens at or after the warm-up end (a delivery at its arrival time, a
    /// drop at the time the message is dropped).
    pub measured: NetStats,
    /// Network counters since the start.
    pub total: NetStats,
    /// Events processed since the start.
    pub events: u64,
    /// Handlers run since the start (init, message and timer handlers).
    pub handlers: u64,
    /// Timers fired since the start.
    pub timers: u64,
    /// Bytes delivered per directed pair of distinct sites from the warm-up end on, indexed
    /// `from * sites + to`.
    pub(crate) wan_pair_bytes: Vec<u64>,
    pub(crate) sites: usize,
}

impl SimStats {
    /// Bytes delivered from site `from` to site `to` (distinct) from the warm-up end on.
    ///
    /// # Panics
    /// If a site is not part of the topology.
    pub fn wan_bytes_between(&self, from: SiteId, to: SiteId) -> u64 {
        assert!(from.index() < self.sites && to.index() < self.sites);
        self.wan_pair_bytes[from.index() * self.sites + to.index()]
    }
}
