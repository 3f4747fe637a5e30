//! ASSIGN-GLOBAL-ORDER (TDSC Fig. A-11): Proposals from the leader site, Accepts from the
//! others, global order with the Proposal plus ⌊S/2⌋ Accepts, and execution in order.

use std::sync::Arc;

use steward_config::{ServerId, SiteId};

use super::durable::kind;
use super::{Action, Dest, Executed, Replica};
use crate::msg::{Accept, Message, OrderProof, Proposal, Reply, SigKind};

impl Replica {
    /// Whether live ordering messages for `seq` are taken: up to four global windows ahead of
    /// the execution point.
    pub(crate) fn global_window_ok(&self, seq: u64) -> bool {
        seq <= self.global_aru + 4 * self.cfg.global_window
    }

    /// C1–C6: a threshold-signed Proposal arrives (from the leader site, or from the own
    /// representative).
    pub(crate) fn on_proposal(&mut self, from: ServerId, p: &Arc<Proposal>) -> bool {
        let leader = self.leader_site();
        if p.gv != self.gv || SiteId(p.site) != leader {
            return false;
        }
        // Leader-site servers learn the Proposal from their own representative; other sites from
        // the leader site's servers (normally its representative) or their own representative.
        let from_ok = from.site == leader || from == self.rep_of(self.site());
        if !from_ok {
            return false;
        }
        if p.seq <= self.global_aru {
            // The leader site retransmits because it lacks Accepts for a slot we already
            // executed: answer with the self-verifying order proof.
            self.answer_with_order_proof(from, p);
            return true;
        }
        if !self.global_window_ok(p.seq) {
            // Far ahead: a hint that this server is behind, but only once the signature is
            // checked (a forged one would start reconciliation for nothing, issue #14).
            if p.seq >= self.highest_seen
                && self.crypto.verify_site(leader, &p.signing_bytes(), &p.tsig)
            {
                self.saw_seq(p.seq);
            }
            return false;
        }
        // A Proposal of an earlier global view is superseded (Fig. A-4 A8–A14).
        let known = self
            .global
            .get(&p.seq)
            .and_then(|s| s.proposal.as_ref())
            .filter(|q| q.gv >= p.gv)
            .map(|q| q.tsig == p.tsig && q.signing_bytes() == p.signing_bytes());
        match known {
            Some(true) => {
                self.on_duplicate_proposal(from, p);
                return true;
            }
            Some(false) => return false, // a different Proposal for a slot we already hold
            None => {}
        }
        if self.global.get(&p.seq).is_some_and(|s| s.ordered) {
            // A later global view re-proposes a slot this server ordered (the new leader
            // site's constraint held only its Proposal): answer with the order proof. An
            // ordered slot's Proposal is final; taking the later view's copy in its place left
            // its order proof with Accepts of another view, too few for a client (campaign
            // seed 11058).
            self.answer_with_order_proof(from, p);
            return true;
        }
        if !self.crypto.verify_site(leader, &p.signing_bytes(), &p.tsig) {
            return false;
        }
        self.learn_lv(leader, p.lv);
        self.apply_proposal(p);
        self.note_accept_wanted(from, p.seq);
        if self.is_rep() && from.site != self.site() {
            self.send_site(Message::Proposal(p.clone()));
        }
        if !self.in_leader_site() {
            self.start_accept(p.seq);
        }
        true
    }

    /// The representative answers a leader-site server's Proposal for a slot this server
    /// ordered with the slot's order proof (about twice the Proposal's bytes). Only for a
    /// Proposal that carries the leader site's signature, or a forged one would make a
    /// Byzantine peer's every message cost this server twice as much to send; and at most once
    /// per peer and slot within half a retransmission period (the leader site asks once a
    /// period), or replaying a genuine one would do the same.
    fn answer_with_order_proof(&mut self, from: ServerId, p: &Arc<Proposal>) {
        if !self.is_rep() || from.site == self.site() {
            return;
        }
        let leader = self.leader_site();
        let Some(slot) = self.global.get(&p.seq) else {
            return;
        };
        let held = slot
            .proposal
            .as_ref()
            .is_some_and(|q| q.tsig == p.tsig && q.signing_bytes() == p.signing_bytes());
        if !held && !self.crypto.verify_site(leader, &p.signing_bytes(), &p.tsig) {
            return;
        }
        let (now, window) = (self.now, self.cfg.retransmit / 2);
        let Some(slot) = self.global.get_mut(&p.seq) else {
            return;
        };
        if !slot.proof_answers.admit(from.index, now, window) {
            return;
        }
        if let Some(proof) = self.order_proof(p.seq) {
            self.send(Dest::Server(from), Message::Ordered(Arc::new(proof)));
        }
    }

    /// Apply a valid Proposal to Global_History (and Local_History at the leader site).
    pub(crate) fn apply_proposal(&mut self, p: &Arc<Proposal>) {
        self.site_signed_seq(SiteId(p.site), p.seq);
        let now = self.now;
        let slot = self.global.entry(p.seq).or_default();
        if slot.ordered {
            return; // final: its Accepts sign this Proposal's view (see on_proposal)
        }
        if slot.proposal.as_ref().is_some_and(|q| q.gv < p.gv) {
            // A new global view re-proposes the slot: accept it afresh.
            slot.accept_share_sent = false;
            slot.own_accept = None;
        }
        let changed = slot.proposal.as_ref().is_none_or(|q| q.tsig != p.tsig);
        slot.proposal = Some(p.clone());
        slot.sent_at = now;
        if slot.first_seen.is_none() {
            slot.first_seen = Some(now);
        }
        let fresh_work = !slot.ordered && p.seq > self.global_aru;
        let digest = p.digest();
        slot.accepts.retain(|_, a| a.digest == digest);
        if changed && fresh_work {
            self.persist_proposal(p);
        }
        if self.in_leader_site() {
            let local = self.local.entry(p.seq).or_default();
            let waited = match (local.share_at, &local.proposal) {
                (Some(at), None) => Some(now.saturating_sub(at)),
                _ => None,
            };
            self.local.entry(p.seq).or_default().proposal = Some(p.clone());
            self.note_room();
            while self
                .local
                .get(&(self.pending_aru + 1))
                .is_some_and(|s| s.proposal.is_some())
                || self
                    .global
                    .get(&(self.pending_aru + 1))
                    .is_some_and(|s| s.proposal.is_some())
            {
                self.pending_aru += 1;
            }
            if let Some(waited) = waited {
                self.seq_watch.combine_waited(waited, (p.gv, p.lv));
                self.check_combine_pace();
            }
            if fresh_work {
                self.forwardable(p.seq);
            }
        }
        for u in &p.batch {
            self.bound.insert(u.digest(), p.seq);
        }
        if fresh_work {
            self.work_appeared();
        }
        self.check_ordered(p.seq);
    }

    /// Non-leader site: construct the Accept and THRESHOLD-SIGN it (once per slot), unless
    /// the site holds it back for now (accepters.rs).
    pub(crate) fn start_accept(&mut self, seq: u64) {
        if self.accept_held_back(seq) {
            if self.global.get(&seq).is_some_and(|s| s.proposal.is_some()) {
                self.stats.accepts_held_back += 1;
            }
            self.arm_accept_backup();
            return;
        }
        self.sign_accept(seq);
    }

    /// Construct the Accept and THRESHOLD-SIGN it (once per slot).
    pub(crate) fn sign_accept(&mut self, seq: u64) {
        let Some(slot) = self.global.get_mut(&seq) else {
            return;
        };
        if slot.accept_share_sent {
            return;
        }
        slot.accept_share_sent = true;
        let Some(p) = slot.proposal.clone() else {
            return;
        };
        // One Accept digest per (gv, seq), whatever the local view: persisted before sharing.
        if !self.cast_vote(kind::ACCEPT_SHARE, seq, [p.gv, 0], p.digest()) {
            return;
        }
        let accept = Accept {
            site: self.site().0,
            gv: p.gv,
            lv: self.lv,
            seq,
            digest: p.digest(),
            tsig: Vec::new(),
        };
        let content = accept.signing_bytes();
        let key = (SigKind::Accept, seq, steward_crypto::sha256(&content));
        self.threshold_sign(SigKind::Accept, p.gv, self.lv, seq, content);
        if let Some(set) = self.shares.get_mut(&key) {
            set.accept = Some(accept);
        }
    }

    /// A retransmitted Proposal: a non-leader representative answers with its Accept if it has
    /// one, otherwise the site resends its shares.
    fn on_duplicate_proposal(&mut self, from: ServerId, p: &Arc<Proposal>) {
        // Only a retransmission from the leader site calls for an answer; copies circulating
        // inside the own site (including the representative's loopback) do not.
        if self.in_leader_site() || (self.is_rep() && from.site == self.site()) {
            return;
        }
        // A copy from the leader site means it lacks Accepts; one from the own representative
        // passes such a copy on: a site holding its Accept back signs now.
        // (The fresh share needs no resending.)
        let asked = from.site == self.leader_site() || from == self.rep_of(self.site());
        let signed_now = asked && !self.global.get(&p.seq).is_some_and(|s| s.accept_share_sent);
        if signed_now {
            self.stats.accepts_on_request += 1;
            self.sign_accept(p.seq);
            let window = self.cfg.global_window;
            self.open_accept_span(p.seq, window);
        }
        let own = self.global.get(&p.seq).and_then(|s| s.own_accept.clone());
        if self.is_rep() {
            if let Some(a) = own {
                self.send(Dest::Server(from), Message::Accept(a));
            } else {
                self.note_accept_wanted(from, p.seq);
                self.send_site(Message::Proposal(p.clone()));
                if !signed_now {
                    self.resend_share(SigKind::Accept, p.seq);
                }
            }
        } else if !signed_now {
            self.resend_share(SigKind::Accept, p.seq);
        }
    }

    /// E1–E7: a threshold-signed Accept.
    pub(crate) fn on_accept(&mut self, from: ServerId, a: &Arc<Accept>) -> bool {
        let site = SiteId(a.site);
        if a.gv != self.gv
            || site == self.leader_site()
            || site.index() >= self.num_sites()
            || !(from.site == site || from.site == self.site())
        {
            return false;
        }
        if a.seq <= self.global_aru {
            self.late_accept(from, site, a);
            return true;
        }
        if !self.global_window_ok(a.seq) {
            // As for a far-ahead Proposal: verified content only.
            if a.seq >= self.highest_seen
                && self.crypto.verify_site(site, &a.signing_bytes(), &a.tsig)
            {
                self.saw_seq(a.seq);
            }
            return false;
        }
        if let Some(slot) = self.global.get(&a.seq) {
            if slot.accepts.get(&a.site).is_some_and(|x| x.tsig == a.tsig) {
                return true;
            }
            if slot
                .proposal
                .as_ref()
                .is_some_and(|p| p.digest() != a.digest)
            {
                return false;
            }
        }
        if !self.crypto.verify_site(site, &a.signing_bytes(), &a.tsig) {
            return false;
        }
        self.learn_lv(site, a.lv);
        // The site needs only the Accepts that complete the order proof: once the slot is
        // ordered here, the peers already got (or get, by reconciliation) a complete proof.
        let was_ordered = self.global.get(&a.seq).is_some_and(|s| s.ordered);
        // The representative relays other sites' Accepts into its site (together, once the
        // slot is ordered here: accept_relay.rs); so does any server that got one directly (it
        // forwarded the Proposal: see forwarding.rs), at once, in case the representative
        // relays late. The relay goes out before the Accept's effects: applying
        // it may execute slots and open the global window, and the representative's next
        // Pre-Prepare must not reach a site peer before the Accept that made room for it. A
        // peer that has not executed as far refuses a Pre-Prepare beyond its window; when one
        // Accept completed two slots, every peer refused the slot at the window's edge, the
        // site's execution stopped at the gap, and the sequencing watch replaced a correct
        // representative (real processes, Planetlab, 20 clients: 43 local view changes in
        // 15 s, 39 instead of 83 updates/s).
        if from.site != self.site() && !was_ordered {
            self.relay_foreign_accept(a);
        }
        self.apply_accept(a);
        true
    }

    pub(crate) fn apply_accept(&mut self, a: &Arc<Accept>) {
        self.site_signed_seq(SiteId(a.site), a.seq);
        let slot = self.global.entry(a.seq).or_default();
        if slot.ordered {
            // Final, like its Proposal: a site's Accept of a later view's copy must not take
            // the place of the one the order proof holds (campaign seed 9629: the proof was
            // left with one Accept of the Proposal's view).
            return;
        }
        slot.accepts.insert(a.site, a.clone());
        if a.site == self.site().0 {
            self.forwardable(a.seq);
        }
        self.check_ordered(a.seq);
    }

    /// Globally_Ordered_Ready: the Proposal plus ⌊S/2⌋ matching Accepts from distinct sites.
    fn check_ordered(&mut self, seq: u64) {
        let needed = self.num_sites() / 2;
        let Some(slot) = self.global.get_mut(&seq) else {
            return;
        };
        let Some(p) = &slot.proposal else { return };
        if slot.ordered {
            return;
        }
        let digest = p.digest();
        let matching = slot
            .accepts
            .values()
            .filter(|a| a.digest == digest && a.gv == p.gv && a.site != p.site)
            .count();
        if matching >= needed {
            slot.ordered = true;
            self.note_turnaround(seq);
            // The held Accepts go out before anything executing the slot sends (on_accept).
            self.release_held_accepts(seq);
            self.execute_ready();
        }
    }

    pub(crate) fn order_proof(&self, seq: u64) -> Option<OrderProof> {
        let slot = self.global.get(&seq)?;
        let proposal = slot.proposal.clone()?;
        let digest = proposal.digest();
        let accepts: Vec<Arc<Accept>> = slot
            .accepts
            .values()
            .filter(|a| a.digest == digest && a.gv == proposal.gv && a.site != proposal.site)
            .take(self.num_sites() / 2)
            .cloned()
            .collect();
        Some(OrderProof { proposal, accepts })
    }

    /// Execute every contiguous globally ordered slot, reply to clients this server owes.
    pub(crate) fn execute_ready(&mut self) {
        let mut progressed = false;
        while self
            .global
            .get(&(self.global_aru + 1))
            .is_some_and(|s| s.ordered)
        {
            let seq = self.global_aru + 1;
            let proof = self.order_proof(seq).expect("ordered slots have a proof");
            for (index, u) in proof.proposal.batch.iter().enumerate() {
                self.bound.remove(&u.digest());
                let done = self.executed_ts.get(&u.client).copied().unwrap_or(0);
                if u.ts <= done {
                    continue; // an update is executed at most once
                }
                let result = self.kv.apply(&u.op);
                let result_digest = steward_crypto::sha256(&result);
                self.last_result.insert(u.client, result.clone());
                self.executed_ts.insert(u.client, u.ts);
                self.client_served(u.client);
                self.stats.executed += 1;
                self.out.push(Action::Executed(Executed {
                    seq,
                    index: index as u32,
                    client: u.client,
                    ts: u.ts,
                    digest: u.digest(),
                    result: result_digest,
                }));
                let mut reply = Reply {
                    server: self.cfg.id,
                    client: u.client,
                    ts: u.ts,
                    proof: Some(proof.clone()),
                    result,
                    sig: Vec::new(),
                };
                let owed = self
                    .responsible
                    .get(&u.client)
                    .is_some_and(|r| r.ts == u.ts);
                if owed {
                    reply.sig = self
                        .crypto
                        .sign(&Message::Reply(Arc::new(reply.clone())).signing_bytes());
                    let reply = Arc::new(reply);
                    self.last_reply.insert(u.client, reply.clone());
                    self.responsible.remove(&u.client);
                    self.send(Dest::Client(u.client), Message::Reply(reply));
                } else {
                    // Kept unsigned; signed only if the client asks again.
                    self.last_reply.insert(u.client, Arc::new(reply));
                }
            }
            self.global_aru = seq;
            // An executed slot needs no Proposal any more: the local view change waits for a
            // server's Proposals up to the invocation aru (pending_aru), and a server that
            // executed a slot from an order proof without holding its Proposal locally kept a
            // pending_aru below its execution point for good, never applied another local
            // constraint, and with one Byzantine signer blacklisted its site could no longer
            // combine (campaign seed 100184: 195 local view changes, no progress after 29 s).
            self.pending_aru = self.pending_aru.max(seq);
            self.maybe_checkpoint(seq);
            progressed = true;
        }
        if progressed {
            self.garbage_collect();
            self.offer_held_pre_prepares();
            self.on_global_progress();
            self.try_propose();
        }
    }
}
