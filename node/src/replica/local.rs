//! ASSIGN-SEQUENCE at the leader site (TDSC Fig. A-10): the representative's Pre-Prepare, the
//! servers' Prepares, and the Prepare certificate that triggers THRESHOLD-SIGN on the Proposal.

use std::sync::Arc;

use steward_config::ServerId;

use super::{Dest, Fault, Replica};
use crate::msg::{batch_digest, Message, PrePrepare, Prepare, Proposal, SigKind, Update};

impl Replica {
    /// ASSIGN-GLOBAL-ORDER A1–A6: the leader-site representative binds queued updates to
    /// sequence numbers while both windows allow.
    pub(crate) fn try_propose(&mut self) {
        if !(self.is_rep()
            && self.in_leader_site()
            && self.locally_constrained
            && self.globally_constrained)
        {
            return;
        }
        while self.global_seq <= self.global_aru + self.cfg.global_window
            && self.global_seq <= self.pending_aru + self.cfg.local_window
        {
            // Get_Next_To_Propose (TDSC Fig. A-12): a slot already bound by a Proposal needs
            // nothing new; one bound by an earlier view's Prepare certificate re-proposes that
            // batch; otherwise take fresh updates.
            let seq = self.global_seq;
            let slot = self.local.get(&seq);
            let global = self.global.get(&seq);
            let gv = self.gv;
            if seq <= self.global_aru
                || global.is_some_and(|g| g.ordered)
                || slot.is_some_and(|s| s.proposal.as_ref().is_some_and(|p| p.gv == gv))
                || global.is_some_and(|g| g.proposal.as_ref().is_some_and(|p| p.gv == gv))
            {
                self.global_seq += 1;
                continue;
            }
            if slot.is_some_and(|s| s.pre_prepare.is_some()) {
                return; // already pre-prepared in this view
            }
            // Bound by an earlier global view's Proposal or an earlier local view's certificate.
            let carried = global
                .and_then(|g| g.proposal.as_ref())
                .map(|p| p.batch.clone())
                .or_else(|| {
                    slot.and_then(|s| s.cert.as_ref())
                        .map(|c| c.pre_prepare.batch.clone())
                });
            let constrained_later = self
                .global
                .range(seq + 1..)
                .any(|(_, g)| !g.ordered && g.proposal.as_ref().is_some_and(|p| p.gv < gv));
            let carried_some = carried.is_some();
            let mut batch: Vec<Arc<Update>> = carried.unwrap_or_default();
            while !carried_some && batch.len() < self.cfg.batch.max(1) {
                let Some(u) = self.pool.pop_front() else {
                    break;
                };
                let executed = self.executed_ts.get(&u.client).copied().unwrap_or(0);
                if u.ts > executed && !self.bound.contains_key(&u.digest()) {
                    batch.push(u);
                }
            }
            // An empty batch fills a gap below constrained slots (a no-op).
            if batch.is_empty() && !carried_some && !constrained_later {
                return;
            }
            let mut pp = PrePrepare {
                server: self.cfg.id.index,
                gv: self.gv,
                lv: self.lv,
                seq: self.global_seq,
                batch,
                sig: Vec::new(),
            };
            pp.sig = self
                .crypto
                .sign(&Message::PrePrepare(Arc::new(pp.clone())).signing_bytes());
            self.global_seq += 1;
            if self.cfg.fault == Fault::Equivocate {
                self.equivocate(pp);
                continue;
            }
            self.send_site(Message::PrePrepare(Arc::new(pp)));
        }
    }

    /// Byzantine test behaviour: two validly signed, conflicting Pre-Prepares for one slot.
    fn equivocate(&mut self, pp: PrePrepare) {
        let mut other = PrePrepare {
            batch: Vec::new(),
            sig: Vec::new(),
            ..pp.clone()
        };
        other.sig = self
            .crypto
            .sign(&Message::PrePrepare(Arc::new(other.clone())).signing_bytes());
        let (a, b) = (Arc::new(pp), Arc::new(other));
        for i in 0..self.site_size(self.site()) {
            let m = if i % 2 == 0 { a.clone() } else { b.clone() };
            self.send(
                Dest::Server(ServerId::new(self.site(), i)),
                Message::PrePrepare(m),
            );
        }
    }

    fn in_local_window(&self, seq: u64) -> bool {
        seq > self.global_aru && seq <= self.global_aru + self.cfg.global_window + 1
    }

    /// B1–B3: accept a Pre-Prepare from the representative and answer with a Prepare.
    pub(crate) fn on_pre_prepare(&mut self, from: ServerId, pp: &Arc<PrePrepare>) -> bool {
        let rep = self.rep_of(self.site());
        if from != rep
            || pp.server != rep.index
            || !self.in_leader_site()
            || !self.locally_constrained
            || !self.globally_constrained
            || (pp.gv, pp.lv) != (self.gv, self.lv)
            || pp.batch.len() > self.cfg.batch.max(1)
        {
            return false;
        }
        if pp.seq <= self.global_aru {
            return true; // already executed: a harmless late retransmission
        }
        if !self.in_local_window(pp.seq) {
            return false;
        }
        let digest = batch_digest(&pp.batch);
        // TDSC Fig. A-8 A10/A12: a slot bound by an earlier view keeps its update.
        if let Some(slot) = self.local.get(&pp.seq) {
            let cert_conflict = slot
                .cert
                .as_ref()
                .is_some_and(|c| batch_digest(&c.pre_prepare.batch) != digest);
            let prop_conflict = slot.proposal.as_ref().is_some_and(|p| p.digest() != digest);
            if cert_conflict || prop_conflict {
                return false;
            }
        }
        // Fig. A-8 A15/A18: a Proposal or order from an earlier global view binds the slot.
        if let Some(g) = self.global.get(&pp.seq) {
            if g.ordered || g.proposal.as_ref().is_some_and(|p| p.digest() != digest) {
                return false;
            }
        }
        if let Some(existing) = self.local.get(&pp.seq).and_then(|s| s.digest) {
            if existing != digest {
                return false; // conflicting binding for seq (TDSC A8)
            }
            // Duplicate: the representative is retransmitting; answer again.
            self.resend_local(pp.seq);
            return true;
        }
        if !self.crypto.verify_server(
            from,
            &Message::PrePrepare(pp.clone()).signing_bytes(),
            &pp.sig,
        ) {
            return false;
        }
        // Validity (TDSC Fig. A-6) and A25: every update client-signed and bound nowhere else.
        for u in &pp.batch {
            if self.bound.get(&u.digest()).is_some_and(|&s| s != pp.seq) {
                return false;
            }
            if !self
                .crypto
                .verify_client(u.client, &u.signing_bytes(), &u.sig)
            {
                return false;
            }
        }
        for u in &pp.batch {
            self.bound.insert(u.digest(), pp.seq);
        }
        let now = self.now;
        let slot = self.local.entry(pp.seq).or_default();
        slot.pre_prepare = Some(pp.clone());
        slot.digest = Some(digest);
        slot.sent_at = now;
        // Prepares that arrived first and do not match are dropped now.
        slot.prepares.retain(|_, p| p.digest == digest);
        if self.cfg.id != rep {
            let mut prep = Prepare {
                server: self.cfg.id.index,
                gv: self.gv,
                lv: self.lv,
                seq: pp.seq,
                digest,
                sig: Vec::new(),
            };
            prep.sig = self
                .crypto
                .sign(&Message::Prepare(Arc::new(prep.clone())).signing_bytes());
            self.send_site(Message::Prepare(Arc::new(prep)));
        }
        self.check_prepare_certificate(pp.seq);
        true
    }

    /// C1–C7: collect Prepares; a Prepare certificate starts THRESHOLD-SIGN on the Proposal.
    pub(crate) fn on_prepare(&mut self, from: ServerId, p: &Arc<Prepare>) -> bool {
        let rep = self.rep_of(self.site());
        if from.site != self.site()
            || from.index != p.server
            || from == rep
            || !self.in_leader_site()
            || !self.locally_constrained
            || (p.gv, p.lv) != (self.gv, self.lv)
        {
            return false;
        }
        if p.seq <= self.global_aru {
            return true;
        }
        if !self.in_local_window(p.seq) {
            return false;
        }
        if let Some(slot) = self.local.get(&p.seq) {
            if slot.digest.is_some_and(|d| d != p.digest) {
                return false;
            }
            if slot.prepares.contains_key(&p.server) {
                return true;
            }
        }
        if !self
            .crypto
            .verify_server(from, &Message::Prepare(p.clone()).signing_bytes(), &p.sig)
        {
            return false;
        }
        self.local
            .entry(p.seq)
            .or_default()
            .prepares
            .insert(p.server, p.clone());
        self.check_prepare_certificate(p.seq);
        true
    }

    fn check_prepare_certificate(&mut self, seq: u64) {
        let needed = 2 * self.f() as usize;
        let Some(slot) = self.local.get_mut(&seq) else {
            return;
        };
        let (Some(pp), false) = (slot.pre_prepare.clone(), slot.share_sent) else {
            return;
        };
        if slot.prepares.len() < needed {
            return;
        }
        slot.share_sent = true;
        let proposal = Proposal {
            site: self.site().0,
            gv: pp.gv,
            lv: pp.lv,
            seq,
            batch: pp.batch.clone(),
            tsig: Vec::new(),
        };
        let content = proposal.signing_bytes();
        let key = (SigKind::Proposal, seq, steward_crypto::sha256(&content));
        self.threshold_sign(SigKind::Proposal, pp.gv, pp.lv, seq, content);
        if let Some(set) = self.shares.get_mut(&key) {
            set.proposal = Some(proposal);
        }
    }

    /// Answer a retransmitted Pre-Prepare: the Proposal if formed, else Prepare and share again.
    fn resend_local(&mut self, seq: u64) {
        let Some(slot) = self.local.get(&seq) else {
            return;
        };
        let (proposal, share_sent) = (slot.proposal.clone(), slot.share_sent);
        let mine = slot.prepares.get(&self.cfg.id.index).cloned();
        if let Some(p) = proposal {
            self.send(Dest::Server(self.rep_of(self.site())), Message::Proposal(p));
            return;
        }
        if let Some(mine) = mine {
            self.send_site(Message::Prepare(mine));
        }
        if share_sent {
            self.resend_share(SigKind::Proposal, seq);
        }
    }
}
