//! Catching up after message loss (a light LOCAL-/GLOBAL-RECONCILIATION, TDSC Figs. ):
//! a server whose execution point has not moved for a retransmission period while it knows of
//! later slots asks its site peers (and, if it is the representative, the leader site's
//! representative) for globally ordered updates. Answers are self-verifying order proofs, so any
//! server may answer and the requester trusts only the threshold signatures.

use std::sync::Arc;

use steward_config::{ServerId, SiteId};

use super::{Dest, Replica};
use crate::msg::{Message, OrderProof, ReconRequest};

/// Most proofs sent in answer to one request.
const RECON_BATCH: u64 = 64;

impl Replica {
    /// On the retransmission tick: ask for help if stuck.
    pub(crate) fn maybe_request_recon(&mut self) {
        let stuck = self.global_aru == self.aru_at_last_tick;
        self.aru_at_last_tick = self.global_aru;
        let highest_known = self
            .global
            .range(self.global_aru + 1..)
            .filter(|(_, s)| s.proposal.is_some() || !s.accepts.is_empty())
            .map(|(seq, _)| *seq)
            .chain(self.local.range(self.global_aru + 1..).map(|(seq, _)| *seq))
            .max();
        let Some(highest) = highest_known else { return };
        // Stuck for a whole period, or clearly behind the rest of the system.
        let far_behind = highest > self.global_aru + self.cfg.global_window;
        if !(stuck || far_behind) {
            return;
        }
        let req = Message::ReconRequest(Arc::new(ReconRequest {
            aru: self.global_aru,
        }));
        for i in 0..self.site_size(self.site()) {
            if i != self.cfg.id.index {
                self.send(Dest::Server(ServerId::new(self.site(), i)), req.clone());
            }
        }
        if self.is_rep() && !self.in_leader_site() {
            let leader_rep = self.rep_of(self.leader_site());
            self.send(Dest::Server(leader_rep), req);
        }
    }

    /// Answer with the order proofs this server holds above the requester's aru, at most once
    /// per retransmission period per requester.
    pub(crate) fn on_recon_request(&mut self, from: ServerId, r: &ReconRequest) -> bool {
        if from == self.cfg.id {
            return false;
        }
        let last = self.recon_answered.get(&from).copied();
        if last.is_some_and(|t| self.now.saturating_sub(t) < self.cfg.retransmit) {
            return true;
        }
        self.recon_answered.insert(from, self.now);
        let proofs: Vec<OrderProof> = (r.aru + 1..=r.aru + RECON_BATCH)
            .filter(|s| self.global.get(s).is_some_and(|g| g.ordered))
            .filter_map(|s| self.order_proof(s))
            .collect();
        for p in proofs {
            self.send(Dest::Server(from), Message::Ordered(Arc::new(p)));
        }
        true
    }

    /// A globally ordered update from a peer: verify every threshold signature, then apply.
    pub(crate) fn on_ordered(&mut self, o: &OrderProof) -> bool {
        let p = &o.proposal;
        if p.seq <= self.global_aru {
            return true;
        }
        if p.seq > self.global_aru + 4 * self.cfg.global_window
            || p.gv != self.gv
            || SiteId(p.site) != self.leader_site()
            || p.batch.is_empty()
        {
            return false;
        }
        if self.global.get(&p.seq).is_some_and(|s| s.ordered) {
            return true;
        }
        let digest = p.digest();
        let mut sites = std::collections::HashSet::new();
        let accepts_ok = o.accepts.iter().all(|a| {
            a.seq == p.seq
                && a.gv == p.gv
                && a.digest == digest
                && a.site != p.site
                && (a.site as usize) < self.num_sites()
                && sites.insert(a.site)
        });
        if !accepts_ok || sites.len() < self.num_sites() / 2 {
            return false;
        }
        let have_same = self
            .global
            .get(&p.seq)
            .and_then(|s| s.proposal.as_ref())
            .is_some_and(|q| q.tsig == p.tsig);
        if !have_same
            && !self
                .crypto
                .verify_site(SiteId(p.site), &p.signing_bytes(), &p.tsig)
        {
            return false;
        }
        for a in &o.accepts {
            if !self
                .crypto
                .verify_site(SiteId(a.site), &a.signing_bytes(), &a.tsig)
            {
                return false;
            }
        }
        if !have_same {
            if self
                .global
                .get(&p.seq)
                .is_some_and(|s| s.proposal.is_some())
            {
                // A different, validly signed Proposal for the slot: only possible across
                // views, which the normal case does not have. Keep ours.
                return false;
            }
            self.apply_proposal(p);
        }
        for a in &o.accepts {
            self.apply_accept(a);
        }
        true
    }
}
