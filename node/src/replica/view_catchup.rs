//! Bringing a server that missed a local or global view change into the current view.
//!
//! A server that was down (or cut off) while its site changed local view never sees the
//! Local_Preinstall proof, which is sent to the site once, nor, at the leader site, the new
//! representative's Local_Collected bundle, without which it cannot become locally
//! constrained. It then stays in the old view for good, rejects every Pre-Prepare and share of
//! the new one and, with f Byzantine servers in its site, leaves the site without the 2f+1
//! correct participants it needs (found by a rolling restart of the leader site in which the
//! representative was replaced while the next server to restart was down).
//!
//! So a server that hears from a peer of its site in an older local view (a message stamped
//! with it, a vote for a view it already installed) or asking for reconciliation sends it the
//! current view's proof, and a leader-site server that installed a view but is not yet
//! constrained in it asks the representative for its bundle (Request_Local_State from a
//! server other than the representative means exactly that). The proof (2f+1 signed votes)
//! goes at most once per retransmission period per peer; the bundle, which holds 2f+1 servers'
//! Proposals and Prepare certificates and can reach a few hundred kB at f = 5, at most once
//! per [`BUNDLE_PERIODS`] periods per peer, so f Byzantine peers asking all the time cost the
//! representative a bounded share of its LAN link.
//!
//! The same holds for a global view change. The Global_Preinstall proof reaches a site through
//! its servers of index at most 2f (retransmitted to the same index elsewhere), which forward it
//! to their site once; a server that was down at that moment, and above all one of higher
//! index, never gets it. It then stays in the old global view, drops every Proposal, Accept and
//! order proof of the new one, and does not even know it is behind (campaign seed 4208: s2.3
//! restarted during the view change and sat 2,000 slots behind to the end). So a server that
//! sees a peer of its site in a newer global view asks its site for help (a Recon_Request), and
//! a server that sees a peer in an older global view, or is asked, sends it the current global
//! view's proof, at most once per retransmission period per peer.

use std::sync::Arc;

use steward_config::ServerId;

use super::{Dest, Replica};
use crate::msg::{Message, RequestLocalState, SigKind};

/// Retransmission periods between two bundles to the same peer.
pub(crate) const BUNDLE_PERIODS: u32 = 4;

/// What a server sends a lagging peer (rate-limited separately).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum ViewHelp {
    /// The Local_Preinstall proof of the current local view.
    Proof,
    /// The representative's Local_Collected bundle of the current view.
    Bundle,
    /// The Global_Preinstall proof of the current global view.
    GlobalProof,
}

/// The global view a message of the sender's own site shows it in, if it shows one exactly
/// (a share of a Global_VC or of a view change's messages names another view).
fn sender_global_view(msg: &Message) -> Option<u64> {
    match msg {
        Message::PrePrepare(p) => Some(p.gv),
        Message::Prepare(p) => Some(p.gv),
        Message::PartialSig(p) if matches!(p.kind, SigKind::Proposal | SigKind::Accept) => {
            Some(p.gv)
        }
        Message::RequestLocalState(r) => Some(r.gv),
        Message::LocalServerState(s) => Some(s.gv),
        Message::ReconRequest(r) => Some(r.gv),
        Message::Proposal(p) => Some(p.gv),
        Message::Accept(a) => Some(a.gv),
        _ => None,
    }
}

/// The local view a message of the sender's own site shows it in, if it shows one: at most
/// this view (a New_Rep for lv comes from a server below lv).
fn sender_view_at_most(msg: &Message) -> Option<u64> {
    match msg {
        Message::PrePrepare(p) => Some(p.lv),
        Message::Prepare(p) => Some(p.lv),
        Message::PartialSig(p) => Some(p.lv),
        Message::RequestLocalState(r) => Some(r.lv),
        Message::LocalServerState(s) => Some(s.lv),
        Message::NewRep(n) => Some(n.lv.saturating_sub(1)),
        _ => None,
    }
}

impl Replica {
    /// Before handling `msg` from `from`: if it shows a peer of this site behind in local view
    /// (or asking to catch up), send it the current view's proof.
    pub(crate) fn help_peer_into_view(&mut self, from: ServerId, msg: &Message) {
        if from.site != self.site() || from == self.cfg.id {
            return;
        }
        self.help_peer_into_global_view(from, msg);
        let behind = match msg {
            Message::ReconRequest(_) => true,
            m => sender_view_at_most(m).is_some_and(|lv| lv < self.lv),
        };
        if !behind {
            return;
        }
        let Some(proof) = self.local_proof.clone().filter(|p| p.lv == self.lv) else {
            return;
        };
        if self.may_help(from, ViewHelp::Proof) {
            self.send(Dest::Server(from), Message::LocalPreinstall(proof));
        }
    }

    /// A peer of this site shows an older global view: send it the current global view's
    /// proof. A peer showing a newer one: note it, so that the next tick
    /// asks the site for help.
    fn help_peer_into_global_view(&mut self, from: ServerId, msg: &Message) {
        let shown = sender_global_view(msg);
        if shown.is_some_and(|gv| gv > self.gv) {
            self.newer_global_view_seen = true;
        }
        if shown.is_none_or(|gv| gv >= self.gv) {
            return;
        }
        let Some(proof) = self.gview.proof.clone().filter(|p| p.gv == self.gv) else {
            return;
        };
        if self.may_help(from, ViewHelp::GlobalProof) {
            self.send(Dest::Server(from), Message::GlobalPreinstall(proof));
        }
    }

    /// On the retransmission tick: a server that saw a peer of its site in a newer global
    /// view since the last tick asks its site for help (each peer in that view answers with
    /// the view's proof; a Byzantine peer showing a false view costs one request a period).
    pub(crate) fn ask_into_newer_global_view(&mut self) {
        if !std::mem::take(&mut self.newer_global_view_seen) {
            return;
        }
        let req = self.recon_request(self.global_aru);
        for i in 0..self.site_size(self.site()) {
            if i != self.cfg.id.index {
                self.send(Dest::Server(ServerId::new(self.site(), i)), req.clone());
            }
        }
    }

    /// Whether `peer` may get `help` now (a proof once per retransmission period, a bundle
    /// once per BUNDLE_PERIODS); records it.
    fn may_help(&mut self, peer: ServerId, help: ViewHelp) -> bool {
        if peer.index >= self.site_size(self.site()) {
            return false; // keeps the map bounded by the site's size
        }
        let interval = match help {
            ViewHelp::Proof | ViewHelp::GlobalProof => self.cfg.retransmit,
            ViewHelp::Bundle => self.cfg.retransmit * BUNDLE_PERIODS,
        };
        let key = (peer.index, help);
        let last = self.view_help_sent.get(&key).copied();
        if last.is_some_and(|t| self.now.saturating_sub(t) < interval) {
            return false;
        }
        self.view_help_sent.insert(key, self.now);
        true
    }

    /// At the representative: a Request_Local_State from another server of the site asks for
    /// the current view's bundle, which it gets if this view's constraint is complete.
    pub(crate) fn resend_bundle(&mut self, from: ServerId, r: &RequestLocalState) -> bool {
        if from.site != self.site() || (r.gv, r.lv) != (self.gv, self.lv) {
            return false;
        }
        let bundle = self
            .local_bundle
            .clone()
            .filter(|b| (b.gv, b.lv) == (self.gv, self.lv));
        if let Some(b) = bundle {
            if self.may_help(from, ViewHelp::Bundle) {
                self.send(Dest::Server(from), Message::LocalCollected(b));
            }
        }
        true
    }

    /// On the retransmission tick: a leader-site server that installed a view a period ago
    /// and is still not constrained in it asks the representative for the bundle.
    pub(crate) fn ask_for_bundle(&mut self) {
        if !self.in_leader_site()
            || self.is_rep()
            || self.locally_constrained
            || self.now.saturating_sub(self.local_epoch) < self.cfg.retransmit
        {
            return;
        }
        let req = RequestLocalState {
            gv: self.gv,
            lv: self.lv,
            aru: self.pending_aru,
        };
        let rep = self.rep_of(self.site());
        self.send(Dest::Server(rep), Message::RequestLocalState(Arc::new(req)));
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use bft_core::{NodeExt, Output};
    use steward_config::SiteId;

    use super::*;
    use crate::crypto::{Crypto, FastCrypto, FastIdentity, FastWorld};
    use crate::msg::ReconRequest;
    use crate::replica::ReplicaConfig;

    fn server(index: u32) -> Replica {
        let id = ServerId::new(SiteId(1), index);
        let world = FastWorld::new(7, 64, 307, 128, vec![3; 3]);
        let crypto = Crypto::new(Box::new(FastCrypto::new(world, FastIdentity::Server(id))));
        let mut r = Replica::new(ReplicaConfig::new(id, vec![4; 3], vec![1; 3]), crypto);
        r.started(Duration::ZERO);
        r
    }

    fn proofs_to(out: &[Output<Message>], to: ServerId) -> usize {
        out.iter()
            .filter(|o| {
                matches!(o, Output::Send { to: t, env }
                    if *t == Dest::Server(to) && matches!(env.msg, Message::LocalPreinstall(_)))
            })
            .count()
    }

    /// A server of a non-leader site that installed local view 1 sends the view's proof to a
    /// peer that asks for reconciliation (it may have missed the view change), once per
    /// retransmission period however often the peer asks, and never to other sites' servers.
    #[test]
    fn a_peer_behind_in_local_view_gets_the_proof_once_a_period() {
        let mut s1 = server(1);
        let t = Duration::from_secs(1);
        for i in 1..4 {
            let mut voter = server(i);
            voter.vote_new_rep();
            let vote = voter
                .out
                .iter()
                .find_map(|a| match a {
                    crate::replica::Action::Send { env, .. } => match &env.msg {
                        Message::NewRep(n) => Some(n.clone()),
                        _ => None,
                    },
                    _ => None,
                })
                .expect("a vote");
            s1.handle(
                t,
                Dest::Server(ServerId::new(SiteId(1), i)),
                &Message::NewRep(vote),
            );
        }
        assert_eq!(s1.local_view(), 1, "2f+1 votes install view 1");
        let behind = ServerId::new(SiteId(1), 0);
        let ask = Message::ReconRequest(Arc::new(ReconRequest { aru: 0, gv: 0 }));
        let first = s1.handle(t, Dest::Server(behind), &ask);
        assert_eq!(proofs_to(&first, behind), 1);
        for k in 1..10 {
            let again = s1.handle(t + Duration::from_millis(k), Dest::Server(behind), &ask);
            assert_eq!(proofs_to(&again, behind), 0, "rate-limited");
        }
        let later = s1.handle(t + s1.cfg.retransmit, Dest::Server(behind), &ask);
        assert_eq!(proofs_to(&later, behind), 1, "again after a period");
        let other_site = ServerId::new(SiteId(2), 0);
        let out = s1.handle(t * 3, Dest::Server(other_site), &ask);
        assert_eq!(proofs_to(&out, other_site), 0, "only the own site's peers");
    }

    /// A server that sees a peer of its site in a newer global view asks its site for help on
    /// the next tick (a Recon_Request stamped with its own view, to every peer), once per
    /// evidence; a message from another site's server does not count.
    #[test]
    fn a_peer_in_a_newer_global_view_makes_a_server_ask_its_site() {
        let mut s1 = server(1);
        let accept = |gv| {
            Message::Accept(Arc::new(crate::msg::Accept {
                site: 1,
                gv,
                lv: 0,
                seq: 1,
                digest: [0; 32],
                tsig: vec![],
            }))
        };
        let asks = |out: &[Output<Message>]| {
            out.iter()
                .filter(|o| {
                    matches!(o, Output::Send { env, .. }
                        if matches!(&env.msg, Message::ReconRequest(r) if r.gv == 0))
                })
                .count()
        };
        let t = Duration::from_secs(1);
        let elsewhere = Dest::Server(ServerId::new(SiteId(2), 0));
        s1.handle(t, elsewhere, &accept(3));
        assert_eq!(asks(&s1.fire(t, crate::replica::TICK)), 0, "another site");
        let peer = Dest::Server(ServerId::new(SiteId(1), 2));
        s1.handle(t, peer, &accept(0));
        assert_eq!(asks(&s1.fire(t * 2, crate::replica::TICK)), 0, "same view");
        s1.handle(t, peer, &accept(3));
        assert_eq!(asks(&s1.fire(t * 3, crate::replica::TICK)), 3, "every peer");
        assert_eq!(
            asks(&s1.fire(t * 4, crate::replica::TICK)),
            0,
            "once per evidence"
        );
    }
}
