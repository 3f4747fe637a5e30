//! ASSIGN-SEQUENCE at the leader site (TDSC Fig. A-10): the representative's Pre-Prepare, the
//! servers' Prepares, and the Prepare certificate that triggers THRESHOLD-SIGN on the Proposal.

use std::sync::Arc;

use steward_config::ServerId;

use super::durable::kind;
use super::{Dest, Replica, Sequencing, HOLD_AHEAD};
use crate::msg::{batch_digest, Digest, Message, PrePrepare, Prepare, Proposal, SigKind, Update};

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
            // Bound by an earlier global view's Proposal or certificate (from the global
            // constraint), or by an earlier local view's certificate.
            let carried = global
                .and_then(|g| g.binding(gv))
                .map(|(batch, _)| batch.to_vec())
                .or_else(|| {
                    slot.and_then(|s| s.cert.as_ref())
                        .map(|c| c.pre_prepare.batch.clone())
                });
            let constrained_later = self
                .global
                .range(seq + 1..)
                .any(|(_, g)| g.bound_earlier(gv));
            let carried_some = carried.is_some();
            let hook = match &self.cfg.sequencer {
                Some(h) => h.next_slot(self.now, self.pool.len()),
                None => Sequencing::Normal,
            };
            if hook == Sequencing::Stop {
                return;
            }
            let fake = hook == Sequencing::Empty && !carried_some && !self.pool.is_empty();
            let mut batch: Vec<Arc<Update>> = carried.unwrap_or_default();
            while !carried_some && !fake && batch.len() < self.cfg.batch.max(1) {
                let Some(u) = self.pool.pop_front() else {
                    break;
                };
                let executed = self.executed_ts.get(&u.client).copied().unwrap_or(0);
                if u.ts > executed && !self.bound.contains_key(&u.digest()) {
                    batch.push(u);
                }
            }
            // An empty batch fills a gap below constrained slots (a no-op).
            if batch.is_empty() && !carried_some && !constrained_later && !fake {
                return;
            }
            let views = [self.gv, self.lv];
            if !self.cast_vote(kind::PRE_PREPARE, seq, views, batch_digest(&batch)) {
                // Pre-prepared differently here before a restart: never equivocate.
                if !carried_some {
                    for u in batch.into_iter().rev() {
                        self.pool.push_front(u);
                    }
                }
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
            self.send_site(Message::PrePrepare(Arc::new(pp)));
        }
    }

    fn in_local_window(&self, seq: u64) -> bool {
        seq > self.global_aru && seq <= self.global_aru + self.cfg.global_window + 1
    }

    /// A Pre-Prepare of the current representative and views a little beyond this server's
    /// window: the representative executed further (an Accept or order proof reached it
    /// first) and sequenced into the room that made. Refused, it would come back only with the
    /// retransmission, half a second later, while the sequencing deadline (a few hundred ms)
    /// ran at the servers that lacked the slot: real processes on Planetlab at 20 clients
    /// replaced correct representatives for it. Held instead (at most [`HOLD_AHEAD`], the
    /// nearest kept, unverified until offered again) and offered again as execution makes
    /// room (`offer_held_pre_prepares`).
    fn hold_ahead(&mut self, pp: &Arc<PrePrepare>) -> bool {
        let limit = self.global_aru + self.cfg.global_window + 1 + HOLD_AHEAD;
        if pp.seq > limit {
            return false;
        }
        self.held_pre_prepares.insert(pp.seq, pp.clone());
        while self.held_pre_prepares.len() > HOLD_AHEAD as usize {
            self.held_pre_prepares.pop_last();
        }
        self.stats.pre_prepares_held += 1;
        true
    }

    /// Execution made room: offer the held Pre-Prepares that fit the window now (each is
    /// judged afresh, signature included; one of another view is dropped).
    pub(crate) fn offer_held_pre_prepares(&mut self) {
        let aru = self.global_aru;
        self.held_pre_prepares.retain(|seq, _| *seq > aru);
        let limit = aru + self.cfg.global_window + 1;
        let ready: Vec<u64> = self
            .held_pre_prepares
            .range(..=limit)
            .map(|(s, _)| *s)
            .collect();
        let rep = self.rep_of(self.site());
        for seq in ready {
            if let Some(pp) = self.held_pre_prepares.remove(&seq) {
                self.on_pre_prepare(rep, &pp);
            }
        }
    }

    /// True when `digest` is the batch an earlier view bound to `seq` here: an earlier global
    /// view's Proposal or certificate (from the global constraint), or an earlier local
    /// view's certificate or Proposal (from the local constraint).
    fn rebinds_earlier_view(&self, seq: u64, digest: Digest) -> bool {
        let global = self
            .global
            .get(&seq)
            .and_then(|g| g.binding(self.gv))
            .is_some_and(|(_, d)| d == digest);
        let local = self.local.get(&seq).is_some_and(|s| {
            s.cert
                .as_ref()
                .is_some_and(|c| batch_digest(&c.pre_prepare.batch) == digest)
                || s.proposal.as_ref().is_some_and(|p| p.digest() == digest)
        });
        global || local
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
            return self.hold_ahead(pp);
        }
        // An empty batch is only a no-op filling a gap below a slot an earlier view bound
        // (every correct server applied the same global constraint, so each can check it);
        // anything else is a representative faking progress.
        let gv = self.gv;
        if pp.batch.is_empty()
            && !self
                .global
                .range(pp.seq + 1..)
                .any(|(_, g)| g.bound_earlier(gv))
        {
            self.suspect_rep_if_signed(pp);
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
        // Fig. A-8 A15/A18: a Proposal, certificate or order from an earlier global view
        // binds the slot.
        if let Some(g) = self.global.get(&pp.seq) {
            if g.ordered || g.binding(self.gv).is_some_and(|(_, d)| d != digest) {
                return false;
            }
        }
        if let Some(existing) = self.local.get(&pp.seq).and_then(|s| s.digest) {
            if existing != digest {
                // Conflicting binding for seq (TDSC A8). Two signed Pre-Prepares for one
                // (gv, lv, seq) are proof that the representative equivocates.
                let same_view = self
                    .local
                    .get(&pp.seq)
                    .and_then(|s| s.pre_prepare.as_ref())
                    .is_some_and(|mine| (mine.gv, mine.lv) == (pp.gv, pp.lv));
                if same_view {
                    self.suspect_rep_if_signed(pp);
                }
                return false;
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
        // Validity (TDSC Fig. A-6) and A25: every update client-signed and bound nowhere else,
        // unless the batch is the one an earlier view bound to this slot. That batch must be
        // re-proposed whatever happened to its updates since (one may have been ordered again
        // at a later slot: it executes once); refusing it would stall the slot for good.
        let rebinding = self.rebinds_earlier_view(pp.seq, digest);
        for u in &pp.batch {
            if !rebinding && self.bound.get(&u.digest()).is_some_and(|&s| s != pp.seq) {
                return false;
            }
            if !self.client_sigs.verify(&mut self.crypto, u) {
                return false;
            }
        }
        // The Prepare this server is about to send is a vote: never a second one for the slot.
        if self.cfg.id != rep && !self.cast_vote(kind::PREPARE, pp.seq, [pp.gv, pp.lv], digest) {
            return false;
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
        self.work_appeared();
        self.note_room();
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
        let (is_rep, now) = (self.is_rep(), self.now);
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
        if !is_rep {
            // Pre-Prepare to certificate: what the deadline of sequencing_watch.rs scales.
            self.seq_watch.sample(now.saturating_sub(slot.sent_at));
            slot.share_at = Some(now);
        }
        let cert = crate::msg::PrepareCert {
            pre_prepare: pp.clone(),
            prepares: slot.prepares.values().take(needed).cloned().collect(),
        };
        self.note_cert(cert);
        // The certificate is written (by note_cert) before the share that depends on it.
        let digest = batch_digest(&pp.batch);
        if !self.cast_vote(kind::PROPOSAL_SHARE, seq, [pp.gv, pp.lv], digest) {
            return;
        }
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
        if !is_rep {
            // The share is out: the combine watch expects the Proposal within the deadline.
            self.watch_sequencing();
        }
    }

    /// A Pre-Prepare that no correct representative sends (an unjustified empty batch, or a
    /// second binding for a slot): if the representative really signed it, vote to replace
    /// it now instead of waiting for a timeout.
    fn suspect_rep_if_signed(&mut self, pp: &Arc<PrePrepare>) {
        let rep = self.rep_of(self.site());
        let voted = self.new_reps.get(&self.cfg.id.index).map_or(0, |n| n.lv);
        if voted > self.lv
            || !self.crypto.verify_server(
                rep,
                &Message::PrePrepare(pp.clone()).signing_bytes(),
                &pp.sig,
            )
        {
            return;
        }
        self.stats.reps_suspected += 1;
        self.vote_new_rep();
    }

    /// Remember a Prepare certificate for its slot's global record if it is the latest known.
    pub(crate) fn note_cert(&mut self, cert: crate::msg::PrepareCert) {
        let view = |c: &crate::msg::PrepareCert| (c.pre_prepare.gv, c.pre_prepare.lv);
        let slot = self.global.entry(cert.pre_prepare.seq).or_default();
        if slot.cert.as_ref().is_none_or(|c| view(c) < view(&cert)) {
            self.persist_cert(&cert);
            let seq = cert.pre_prepare.seq;
            self.global.entry(seq).or_default().cert = Some(cert);
        }
    }

    /// Answer a retransmitted Pre-Prepare: the Proposal if formed, else Prepare and share again.
    pub(crate) fn resend_local(&mut self, seq: u64) {
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
