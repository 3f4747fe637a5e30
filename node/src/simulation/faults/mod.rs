//! Steward's simulated Byzantine servers: each [`Byzantine`](super::Byzantine) behaviour is a
//! wrapper around a correct [`Replica`] (the generic ones of [`bft_harness::faults`], and the
//! Steward-specific rewrites here, which re-sign what they change with the server's own keys;
//! a server with corrupted shares has `bft_harness::faults::CorruptShares` as its crypto),
//! except for the two decisions only the representative's sequencing can make, which go
//! through [`crate::replica::SequencerHook`] ([`sequencer`]). The [`Spammer`] replaces the
//! replica altogether.

mod byzantine_client;
mod equivocator;
mod forged_accepts;
mod on_tick;
mod partial_spammer;
mod recon_requester;
mod sequencer;
mod slow_combiner;
mod spammer;
mod wrong_results;

pub use byzantine_client::{ByzantineClient, ClientLoad};
pub use equivocator::Equivocator;
pub use forged_accepts::ForgedAccepts;
pub use on_tick::{to_other_sites, OnTick, TickAttack};
pub use partial_spammer::PartialSigSpammer;
pub use recon_requester::ReconRequester;
pub use sequencer::{EmptyBatches, SelectiveProposal, SlowSequencer};
pub use slow_combiner::{slow_combiner, CombineHolds, Holds, SlowCombiner};
pub use spammer::Spammer;
pub use wrong_results::WrongResults;

use bft_core::NodeId;
use std::time::Duration;

use bft_harness::faults::{DelayOutbound, DropInbound, MsgFilter, Withhold};
use steward_config::{ServerId, SiteId};

use crate::msg::{Message, SigKind};
use crate::replica::Replica;

bft_harness::replica_node! {
    /// A simulated Steward server: a [`Replica`], possibly inside fault wrappers; the replica
    /// stays reachable for the tests' inspection.
    pub trait ServerNode: Node<Msg = Message> { replica: Replica }
}

/// The messages of the global view change (CONSTRUCT-ARU and CONSTRUCT-GLOBAL-CONSTRAINT).
pub fn global_view_change_message(msg: &Message) -> bool {
    match msg {
        Message::PartialSig(p) => matches!(p.kind, SigKind::Aru | SigKind::Constraint),
        Message::RequestGlobalState(_)
        | Message::GlobalServerState(_)
        | Message::GlobalCollected(_)
        | Message::Aru(_)
        | Message::GlobalConstraint(_)
        | Message::CollectedConstraints(_) => true,
        _ => false,
    }
}

/// Correct in everything but the global view change, where it stays silent: it drops every
/// global-view-change message it receives, and as the leader site's representative it never
/// starts collecting (it withholds its Request_Global_State, the only message a collector
/// sends unasked).
pub fn silent_in_global_view_change<N: ServerNode + 'static>(inner: N) -> impl ServerNode {
    let deaf: MsgFilter<Message> = Box::new(|_, m| global_view_change_message(m));
    let mute: MsgFilter<Message> = Box::new(|_, m| matches!(m, Message::RequestGlobalState(_)));
    Withhold::new(DropInbound::new(inner, deaf), mute)
}

/// Never answers its representative's requests for share proofs (ProofRequest) or for a
/// withheld share (ShareRequest): with corrupted shares (`CorruptShares` as its crypto) it is
/// a silent signer (issue #14, attack 3), whose wrong shares were never proven wrong.
pub fn ignore_proof_requests<N: ServerNode + 'static>(inner: N) -> impl ServerNode {
    let requests: MsgFilter<Message> =
        Box::new(|_, m| matches!(m, Message::ProofRequest(_) | Message::ShareRequest(_)));
    DropInbound::new(inner, requests)
}

/// Sends its threshold shares `hold` late (a designated signer holding each share back just
/// short of its representative's backup timer; replica/designated.rs).
pub fn shares_late<N: ServerNode + 'static>(inner: N, hold: Duration) -> impl ServerNode {
    let shares: MsgFilter<Message> = Box::new(|_, m| matches!(m, Message::PartialSig(_)));
    DelayOutbound::new(inner, shares, hold)
}

/// As representative, silently drops the client updates it receives (from clients and
/// forwarding servers alike) instead of forwarding or sequencing them.
pub fn drop_updates<N: ServerNode + 'static>(inner: N) -> impl ServerNode {
    let updates: MsgFilter<Message> = Box::new(|_, m| matches!(m, Message::Update(_)));
    DropInbound::new(inner, updates).when(|n: &N| n.replica().is_representative())
}

/// Never sends its site's Accepts to other sites (what a non-leader-site representative
/// alone does); its own site still gets them.
pub fn withhold_accepts<N: ServerNode + 'static>(inner: N, me: ServerId) -> impl ServerNode {
    let abroad: MsgFilter<Message> = Box::new(move |to, m| {
        matches!(m, Message::Accept(_)) && matches!(to, NodeId::Server(s) if s.site != me.site)
    });
    Withhold::new(inner, abroad)
}

/// As representative, sends the messages `which` matches to the servers of other sites
/// `hold` late (what only a representative sends abroad: the leader site's Proposals, a
/// site's Accepts); its own site gets them at once, so no correct server of its site sees
/// anything amiss.
pub fn to_other_sites_late<N: ServerNode + 'static>(
    inner: N,
    site: SiteId,
    which: fn(&Message) -> bool,
    hold: Duration,
) -> impl ServerNode {
    let abroad: MsgFilter<Message> =
        Box::new(move |to, m| which(m) && matches!(to, NodeId::Server(s) if s.site != site));
    DelayOutbound::new(inner, abroad, hold).when(|n: &N| n.replica().is_representative())
}

/// As representative, sends the messages `which` matches to the other servers of its own
/// site `hold` late (the leader site's representative alone relays the other sites' Accepts
/// into its site); other sites get them at once.
pub fn to_own_site_late<N: ServerNode + 'static>(
    inner: N,
    me: ServerId,
    which: fn(&Message) -> bool,
    hold: Duration,
) -> impl ServerNode {
    let home: MsgFilter<Message> = Box::new(move |to, m| {
        which(m) && matches!(to, NodeId::Server(s) if s.site == me.site && s != me)
    });
    DelayOutbound::new(inner, home, hold).when(|n: &N| n.replica().is_representative())
}
