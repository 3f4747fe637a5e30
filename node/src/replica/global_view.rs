//! GLOBAL-LEADER-ELECTION (TDSC Fig. A-14) and GLOBAL-VIEW-CHANGE with CONSTRUCT-ARU and
//! CONSTRUCT-GLOBAL-CONSTRAINT (Figs. ).
//!
//! Global timers expire at servers that know of pending updates and see no global progress;
//! each site then threshold-signs Global_VC(gv+1) and sends it reliably to every site. A global
//! view is preinstalled once a majority of sites voted for it. The new leader site signs an
//! Aru_Message (the point up to which 2f+1 of its servers executed); every site answers with a
//! threshold-signed Global_Constraint carrying the order proofs and Proposals it knows above
//! that point; the leader site applies the union of a majority of constraints before it
//! sequences anything, so that no update ordered in an earlier view can be replaced.

use std::collections::BTreeMap;
use std::sync::Arc;

use steward_config::{ServerId, SiteId};

use super::view::LOCAL_TIMER_BASE;
use super::{Action, Dest, Replica};
use crate::msg::{
    AruMessage, CollectedConstraints, GlobalCollected, GlobalConstraint, GlobalPreinstall,
    GlobalServerState, GlobalVc, Message, OrderProof, Proposal, ReconRequest, RequestGlobalState,
    SigKind,
};

/// Timer tokens at or above this value are global-timer generations.
pub(crate) const GLOBAL_TIMER_BASE: u64 = 1 << 48;

/// A representative collecting Global_Server_State messages for one invocation aru.
pub(crate) struct GlobalCollecting {
    aru: u64,
    states: BTreeMap<u32, Arc<GlobalServerState>>,
    bundled: bool,
}

/// State of the global view change in the current global view.
#[derive(Default)]
pub(crate) struct GlobalViewState {
    /// Latest Global_VC per site.
    pub latest_vc: BTreeMap<u16, Arc<GlobalVc>>,
    /// Proof of the current global view (for retransmission to healed sites).
    pub proof: Option<Arc<GlobalPreinstall>>,
    /// A Global_VC share for `gv + 1` was sent.
    pub voted: bool,
    pub collecting: Option<GlobalCollecting>,
    pub aru_msg: Option<Arc<AruMessage>>,
    pub aru_share_sent: bool,
    /// The union this server threshold-signs as its site's Global_Constraint.
    pub union: Option<(u64, Vec<OrderProof>, Vec<Arc<Proposal>>)>,
    pub my_constraint: Option<Arc<GlobalConstraint>>,
    /// Global_Constraints collected by the leader-site representative, per site.
    pub constraints: BTreeMap<u16, Arc<GlobalConstraint>>,
    pub collected_sent: bool,
    pub ticks: u64,
}

impl Replica {
    fn majority(&self) -> usize {
        self.num_sites() / 2 + 1
    }

    // --- global timer ----------------------------------------------------------------------

    fn global_timeout(&self) -> std::time::Duration {
        // GLOBAL-TIMEOUT = K·2^⌈gv/N⌉ with K = T3 = (f+3)·T2 = (f+3)(f+2)·T1.
        let f = self.f();
        let k = self.cfg.t1 * ((f + 2) * (f + 3));
        let doublings = self.gv.div_ceil(self.num_sites() as u64).min(16) as u32;
        k * 2u32.pow(doublings)
    }

    pub(crate) fn arm_global_timer(&mut self) {
        self.local_timer_gen += 1;
        self.global_timer = self.local_timer_gen;
        self.out.push(Action::Timer {
            after: self.global_timeout(),
            token: GLOBAL_TIMER_BASE + self.global_timer,
        });
    }

    pub(crate) fn on_global_timer(&mut self, generation: u64) {
        if generation != self.global_timer {
            return;
        }
        if self.pending_seen.is_empty() {
            self.global_timer = 0;
            return;
        }
        // A1–A5: vote for the next global view.
        self.gview.voted = true;
        let next = self.gv + 1;
        self.threshold_sign(
            SigKind::GlobalVc,
            next,
            self.lv,
            next,
            GlobalVc::signing_bytes(self.site().0, next),
        );
        self.arm_global_timer();
    }

    // --- leader election --------------------------------------------------------------------

    /// The site's Global_VC is threshold-signed.
    pub(crate) fn on_own_global_vc_signed(&mut self, gv: u64, tsig: Vec<u8>) {
        let vc = Arc::new(GlobalVc {
            site: self.site().0,
            gv,
            tsig,
        });
        self.send_site(Message::GlobalVc(vc.clone()));
        self.apply_global_vc(vc.clone());
        self.reliable_send_to_all_sites(Message::GlobalVc(vc));
    }

    fn valid_global_vc(&mut self, vc: &GlobalVc) -> bool {
        (vc.site as usize) < self.num_sites()
            && self.crypto.verify_site(
                SiteId(vc.site),
                &GlobalVc::signing_bytes(vc.site, vc.gv),
                &vc.tsig,
            )
    }

    pub(crate) fn on_global_vc(&mut self, from: ServerId, vc: &Arc<GlobalVc>) -> bool {
        let newer = self
            .gview
            .latest_vc
            .get(&vc.site)
            .is_none_or(|x| x.gv < vc.gv);
        if !newer || vc.gv <= self.gv {
            return true;
        }
        if vc.gv > self.gv + 1000 || !self.valid_global_vc(vc) {
            return false;
        }
        if from.site == self.site() {
            self.reliable_send_to_all_sites(Message::GlobalVc(vc.clone()));
        } else {
            self.send_site(Message::GlobalVc(vc.clone()));
        }
        self.apply_global_vc(vc.clone());
        true
    }

    /// Fig. A-4 E1–E8: the preinstalled view is the highest one a majority of sites voted for.
    fn apply_global_vc(&mut self, vc: Arc<GlobalVc>) {
        let newer = self
            .gview
            .latest_vc
            .get(&vc.site)
            .is_none_or(|x| x.gv < vc.gv);
        if newer {
            self.gview.latest_vc.insert(vc.site, vc);
        }
        let mut gvs: Vec<u64> = self.gview.latest_vc.values().map(|v| v.gv).collect();
        gvs.sort_unstable_by(|a, b| b.cmp(a));
        if let Some(&g) = gvs.get(self.majority() - 1) {
            if g > self.gv {
                let votes: Vec<GlobalVc> = self
                    .gview
                    .latest_vc
                    .values()
                    .filter(|v| v.gv >= g)
                    .map(|v| (**v).clone())
                    .collect();
                self.install_global_view(Arc::new(GlobalPreinstall { gv: g, votes }));
            }
        }
    }

    pub(crate) fn on_global_preinstall(
        &mut self,
        from: ServerId,
        p: &Arc<GlobalPreinstall>,
    ) -> bool {
        if p.gv <= self.gv {
            return true;
        }
        let mut sites = std::collections::BTreeSet::new();
        for v in &p.votes {
            if v.gv < p.gv || !sites.insert(v.site) {
                return false;
            }
        }
        if sites.len() < self.majority() {
            return false;
        }
        for v in &p.votes {
            if !self.valid_global_vc(v) {
                return false;
            }
        }
        if from.site != self.site() {
            self.send_site(Message::GlobalPreinstall(p.clone()));
        }
        for v in &p.votes {
            self.apply_global_vc(Arc::new(v.clone()));
        }
        true
    }

    fn install_global_view(&mut self, proof: Arc<GlobalPreinstall>) {
        let gv = proof.gv;
        self.gv = gv;
        self.stats.global_view_changes += 1;
        let latest = std::mem::take(&mut self.gview.latest_vc);
        self.gview = Default::default();
        self.gview.latest_vc = latest;
        self.gview.proof = Some(proof.clone());
        self.globally_constrained = false;
        self.locally_constrained = true;
        self.collecting = None;
        self.pending_ts.clear();
        // Local history belongs to a global view: start the new one empty.
        let above: Vec<u64> = self
            .local
            .range(self.global_aru + 1..)
            .map(|(s, _)| *s)
            .collect();
        for s in above {
            self.local.remove(&s);
        }
        self.send_site(Message::GlobalPreinstall(proof.clone()));
        self.reliable_send_to_all_sites(Message::GlobalPreinstall(proof));
        if !self.pending_seen.is_empty() {
            self.arm_global_timer();
            self.arm_local_timer();
        }
        if self.in_leader_site() && self.is_rep() {
            self.start_global_state(self.global_aru);
        }
        self.reinject();
    }

    // --- CONSTRUCT-ARU and CONSTRUCT-GLOBAL-CONSTRAINT -------------------------------------

    fn start_global_state(&mut self, aru: u64) {
        self.gview.collecting = Some(GlobalCollecting {
            aru,
            states: BTreeMap::new(),
            bundled: false,
        });
        self.send_request_global_state();
    }

    fn send_request_global_state(&mut self) {
        let Some(c) = &self.gview.collecting else {
            return;
        };
        let req = RequestGlobalState {
            gv: self.gv,
            lv: self.lv,
            aru: c.aru,
        };
        self.send_site(Message::RequestGlobalState(Arc::new(req)));
    }

    pub(crate) fn on_request_global_state(
        &mut self,
        from: ServerId,
        r: &RequestGlobalState,
    ) -> bool {
        if from != self.rep_of(self.site()) || (r.gv, r.lv) != (self.gv, self.lv) {
            return false;
        }
        if self.globally_constrained && self.in_leader_site() {
            return true;
        }
        if self.global_aru < r.aru {
            self.send(
                Dest::Server(from),
                Message::ReconRequest(Arc::new(ReconRequest {
                    aru: self.global_aru,
                })),
            );
            return true;
        }
        let mut ordered = Vec::new();
        let mut proposals = Vec::new();
        let top = self.global.keys().next_back().copied().unwrap_or(0);
        for seq in r.aru + 1..=top {
            let Some(slot) = self.global.get(&seq) else {
                continue;
            };
            if slot.ordered {
                if let Some(p) = self.order_proof(seq) {
                    ordered.push(p);
                }
            } else if let Some(p) = &slot.proposal {
                proposals.push(p.clone());
            }
        }
        let mut st = GlobalServerState {
            server: self.cfg.id.index,
            gv: self.gv,
            aru: r.aru,
            ordered,
            proposals,
            sig: Vec::new(),
        };
        st.sig = self
            .crypto
            .sign(&Message::GlobalServerState(Arc::new(st.clone())).signing_bytes());
        self.send(Dest::Server(from), Message::GlobalServerState(Arc::new(st)));
        if self.in_leader_site() && !self.gview.aru_share_sent {
            // CONSTRUCT-ARU: vouch for the invocation aru (this server executed up to it).
            self.gview.aru_share_sent = true;
            let content = AruMessage::signing_bytes(self.site().0, self.gv, r.aru);
            self.threshold_sign(SigKind::Aru, self.gv, self.lv, self.gv, content);
        }
        true
    }

    pub(crate) fn on_global_server_state(
        &mut self,
        from: ServerId,
        st: &Arc<GlobalServerState>,
    ) -> bool {
        let Some(aru) = self.gview.collecting.as_ref().map(|c| c.aru) else {
            return true;
        };
        if from.site != self.site() || from.index != st.server || st.gv != self.gv || st.aru != aru
        {
            return false;
        }
        if !self.crypto.verify_server(
            from,
            &Message::GlobalServerState(st.clone()).signing_bytes(),
            &st.sig,
        ) {
            return false;
        }
        let quorum = (2 * self.f() + 1) as usize;
        let c = self.gview.collecting.as_mut().expect("collecting");
        c.states.insert(st.server, st.clone());
        if c.states.len() < quorum || c.bundled {
            return true;
        }
        c.bundled = true;
        let bundle = GlobalCollected {
            gv: self.gv,
            aru,
            states: c.states.values().take(quorum).cloned().collect(),
        };
        self.send_site(Message::GlobalCollected(Arc::new(bundle)));
        true
    }

    /// Check an order proof's signatures (any global view up to the current one).
    pub(crate) fn valid_order_proof(&mut self, o: &OrderProof) -> bool {
        let p = &o.proposal;
        if p.gv > self.gv || p.site as u64 != p.gv % self.num_sites() as u64 {
            return false;
        }
        let digest = p.digest();
        let mut sites = std::collections::BTreeSet::new();
        for a in &o.accepts {
            if a.seq != p.seq
                || a.gv != p.gv
                || a.digest != digest
                || a.site == p.site
                || (a.site as usize) >= self.num_sites()
                || !sites.insert(a.site)
            {
                return false;
            }
        }
        if sites.len() < self.num_sites() / 2 {
            return false;
        }
        self.crypto
            .verify_site(SiteId(p.site), &p.signing_bytes(), &p.tsig)
            && o.accepts.iter().all(|a| {
                self.crypto
                    .verify_site(SiteId(a.site), &a.signing_bytes(), &a.tsig)
            })
    }

    fn valid_old_proposal(&mut self, p: &Proposal) -> bool {
        p.gv <= self.gv
            && p.site as u64 == p.gv % self.num_sites() as u64
            && self
                .crypto
                .verify_site(SiteId(p.site), &p.signing_bytes(), &p.tsig)
    }

    /// Compute_Global_Union: per sequence number, an order proof if any, else the Proposal
    /// of the highest global view. Invalid entries are skipped.
    fn global_union(
        &mut self,
        aru: u64,
        entries: Vec<(Vec<OrderProof>, Vec<Arc<Proposal>>)>,
    ) -> (Vec<OrderProof>, Vec<Arc<Proposal>>) {
        let mut ordered: BTreeMap<u64, OrderProof> = BTreeMap::new();
        let mut props: BTreeMap<u64, Arc<Proposal>> = BTreeMap::new();
        for (os, ps) in entries {
            for o in os {
                let seq = o.proposal.seq;
                if seq > aru && !ordered.contains_key(&seq) && self.valid_order_proof(&o) {
                    ordered.insert(seq, o);
                }
            }
            for p in ps {
                let better = props.get(&p.seq).is_none_or(|q| p.gv > q.gv);
                if p.seq > aru && better && self.valid_old_proposal(&p) {
                    props.insert(p.seq, p);
                }
            }
        }
        props.retain(|seq, _| !ordered.contains_key(seq));
        (
            ordered.into_values().collect(),
            props.into_values().collect(),
        )
    }

    pub(crate) fn on_global_collected(&mut self, from: ServerId, c: &Arc<GlobalCollected>) -> bool {
        if from != self.rep_of(self.site()) || c.gv != self.gv || self.gview.union.is_some() {
            return from == self.rep_of(self.site());
        }
        let quorum = (2 * self.f() + 1) as usize;
        let mut who = std::collections::BTreeSet::new();
        for st in &c.states {
            let signer = ServerId::new(self.site(), st.server);
            if st.gv != c.gv
                || st.aru != c.aru
                || st.server >= self.site_size(self.site())
                || !who.insert(st.server)
                || !self.crypto.verify_server(
                    signer,
                    &Message::GlobalServerState(st.clone()).signing_bytes(),
                    &st.sig,
                )
            {
                return false;
            }
        }
        if who.len() < quorum {
            return false;
        }
        let entries = c
            .states
            .iter()
            .map(|st| (st.ordered.clone(), st.proposals.clone()))
            .collect();
        let (ordered, proposals) = self.global_union(c.aru, entries);
        let digest = GlobalConstraint::union_digest(&ordered, &proposals);
        let content = GlobalConstraint::signing_bytes(self.site().0, self.gv, c.aru, &digest);
        self.gview.union = Some((c.aru, ordered, proposals));
        self.threshold_sign(SigKind::Constraint, self.gv, self.lv, self.gv, content);
        true
    }

    /// The new leader site's Aru_Message is threshold-signed: send it to every site.
    pub(crate) fn on_own_aru_signed(&mut self, gv: u64, tsig: Vec<u8>) {
        let Some(aru) = self.gview.collecting.as_ref().map(|c| c.aru) else {
            return;
        };
        let msg = Arc::new(AruMessage {
            site: self.site().0,
            gv,
            aru,
            tsig,
        });
        self.gview.aru_msg = Some(msg.clone());
        self.send_other_sites(Message::Aru(msg));
    }

    pub(crate) fn on_aru(&mut self, from: ServerId, a: &Arc<AruMessage>) -> bool {
        if a.gv != self.gv || SiteId(a.site) != self.leader_site() || self.in_leader_site() {
            return a.gv <= self.gv;
        }
        if self
            .gview
            .aru_msg
            .as_ref()
            .is_some_and(|x| x.tsig == a.tsig)
        {
            // Retransmission: answer with the constraint if it is ready.
            if self.is_rep() && from.site != self.site() {
                if let Some(gc) = self.gview.my_constraint.clone() {
                    self.send(Dest::Server(from), Message::GlobalConstraint(gc));
                } else {
                    self.send_request_global_state();
                }
            }
            return true;
        }
        if !self.crypto.verify_site(
            SiteId(a.site),
            &AruMessage::signing_bytes(a.site, a.gv, a.aru),
            &a.tsig,
        ) {
            return false;
        }
        self.gview.aru_msg = Some(a.clone());
        if self.is_rep() {
            self.send_site(Message::Aru(a.clone()));
            self.start_global_state(a.aru);
        }
        true
    }

    /// This site's Global_Constraint is threshold-signed.
    pub(crate) fn on_own_constraint_signed(&mut self, tsig: Vec<u8>) {
        let Some((aru, ordered, proposals)) = self.gview.union.clone() else {
            return;
        };
        let gc = Arc::new(GlobalConstraint {
            site: self.site().0,
            gv: self.gv,
            aru,
            ordered,
            proposals,
            tsig,
        });
        self.gview.my_constraint = Some(gc.clone());
        if self.in_leader_site() {
            self.collect_constraint(gc);
        } else {
            let leader_rep = self.rep_of(self.leader_site());
            self.send(Dest::Server(leader_rep), Message::GlobalConstraint(gc));
        }
    }

    pub(crate) fn on_global_constraint(
        &mut self,
        _from: ServerId,
        gc: &Arc<GlobalConstraint>,
    ) -> bool {
        if gc.gv != self.gv || !self.in_leader_site() || !self.is_rep() {
            return gc.gv <= self.gv;
        }
        if self.gview.constraints.contains_key(&gc.site) {
            return true;
        }
        if !self.valid_constraint(gc) {
            return false;
        }
        self.collect_constraint(gc.clone());
        true
    }

    fn valid_constraint(&mut self, gc: &GlobalConstraint) -> bool {
        let expected_aru = self.gview.aru_msg.as_ref().map(|a| a.aru);
        if (gc.site as usize) >= self.num_sites()
            || Some(gc.aru) != expected_aru && expected_aru.is_some()
        {
            return false;
        }
        let digest = GlobalConstraint::union_digest(&gc.ordered, &gc.proposals);
        self.crypto.verify_site(
            SiteId(gc.site),
            &GlobalConstraint::signing_bytes(gc.site, gc.gv, gc.aru, &digest),
            &gc.tsig,
        )
    }

    fn collect_constraint(&mut self, gc: Arc<GlobalConstraint>) {
        self.gview.constraints.insert(gc.site, gc);
        if self.gview.constraints.len() < self.majority() || self.gview.collected_sent {
            return;
        }
        self.gview.collected_sent = true;
        let aru = self
            .gview
            .aru_msg
            .as_ref()
            .map_or(self.global_aru, |a| a.aru);
        let cc = CollectedConstraints {
            gv: self.gv,
            aru,
            constraints: self.gview.constraints.values().cloned().collect(),
        };
        self.send_site(Message::CollectedConstraints(Arc::new(cc)));
    }

    /// Fig. A-16 F1–F4 / A-4 D: apply a majority of constraints; then sequence.
    pub(crate) fn on_collected_constraints(
        &mut self,
        from: ServerId,
        cc: &Arc<CollectedConstraints>,
    ) -> bool {
        if from != self.rep_of(self.site()) || cc.gv != self.gv || !self.in_leader_site() {
            return false;
        }
        if self.globally_constrained {
            return true;
        }
        let mut sites = std::collections::BTreeSet::new();
        for gc in &cc.constraints {
            if gc.gv != cc.gv || gc.aru != cc.aru || !sites.insert(gc.site) {
                return false;
            }
            let digest = GlobalConstraint::union_digest(&gc.ordered, &gc.proposals);
            if !self.crypto.verify_site(
                SiteId(gc.site),
                &GlobalConstraint::signing_bytes(gc.site, gc.gv, gc.aru, &digest),
                &gc.tsig,
            ) {
                return false;
            }
        }
        if sites.len() < self.majority() {
            return false;
        }
        let entries = cc
            .constraints
            .iter()
            .map(|gc| (gc.ordered.clone(), gc.proposals.clone()))
            .collect();
        let (ordered, proposals) = self.global_union(cc.aru, entries);
        for o in ordered {
            self.apply_order_proof(&o);
        }
        for p in proposals {
            let slot = self.global.entry(p.seq).or_default();
            if !slot.ordered && slot.proposal.as_ref().is_none_or(|q| q.gv < p.gv) {
                slot.proposal = Some(p);
            }
        }
        self.globally_constrained = true;
        self.pending_aru = self.global_aru;
        if self.is_rep() {
            self.global_seq = self.global_aru + 1;
            self.try_propose();
        }
        true
    }

    /// Retransmissions of the global view change, on the periodic tick.
    pub(crate) fn global_view_retransmit(&mut self) {
        self.gview.ticks += 1;
        if self.gview.voted {
            self.resend_share(SigKind::GlobalVc, self.gv + 1);
        }
        if self.gview.ticks % 4 == 0 {
            if let Some(p) = self.gview.proof.clone() {
                self.reliable_send_to_all_sites(Message::GlobalPreinstall(p));
            }
        }
        if self.is_rep() && !self.globally_constrained && self.in_leader_site() {
            if let Some(a) = self.gview.aru_msg.clone() {
                self.send_other_sites(Message::Aru(a));
            } else {
                self.send_request_global_state();
            }
        }
        if self.is_rep() && !self.in_leader_site() && self.gview.my_constraint.is_none() {
            self.send_request_global_state();
        }
    }

    /// Whether a token belongs to the global timer.
    pub(crate) fn is_global_token(token: u64) -> bool {
        token >= GLOBAL_TIMER_BASE
    }

    /// Whether a token belongs to the local timer.
    pub(crate) fn is_local_token(token: u64) -> bool {
        (LOCAL_TIMER_BASE..GLOBAL_TIMER_BASE).contains(&token)
    }
}
