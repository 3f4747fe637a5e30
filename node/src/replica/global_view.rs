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

use super::{Dest, Replica};
use crate::msg::{
    batch_digest, AruMessage, CollectedConstraints, Digest, GlobalCollected, GlobalConstraint,
    GlobalPreinstall, GlobalServerState, GlobalVc, Message, OrderProof, PrepareCert, Proposal,
    RequestGlobalState, SigKind,
};

/// Order proofs, Proposals and Prepare certificates above some aru.
pub(crate) type Knowledge = (Vec<OrderProof>, Vec<Arc<Proposal>>, Vec<PrepareCert>);

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
    /// The invocation aru this server shared an Aru_Message signature for.
    pub aru_shared: Option<u64>,
    /// Local view of the representative whose bundle `union` came from.
    pub union_lv: u64,
    /// The union this server threshold-signs as its site's Global_Constraint.
    pub union: Option<(u64, Knowledge)>,
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

    /// A1–A5: vote for the next global view.
    pub(crate) fn vote_global_vc(&mut self) {
        self.gview.voted = true;
        let next = self.gv + 1;
        self.threshold_sign(
            SigKind::GlobalVc,
            next,
            self.lv,
            next,
            GlobalVc::signing_bytes(self.site().0, next),
        );
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
        // Share sets of the earlier global views' view changes are of no use any more: drop
        // them now, not at the next execution (there may be none for a while).
        self.garbage_collect();
        self.persist_views();
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
        self.global_epoch = self.now;
        self.local_epoch = self.now;
        if self.has_pending() {
            let (g, l) = (self.global_timeout(), self.local_timeout());
            self.arm_global_timer(g);
            self.arm_local_timer(l);
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
            self.send(Dest::Server(from), self.recon_request(self.global_aru));
            return true;
        }
        let (ordered, proposals, certs) = self.global_knowledge_above(r.aru);
        let mut st = GlobalServerState {
            server: self.cfg.id.index,
            gv: self.gv,
            aru: r.aru,
            ordered,
            proposals,
            certs,
            sig: Vec::new(),
        };
        st.sig = self
            .crypto
            .sign(&Message::GlobalServerState(Arc::new(st.clone())).signing_bytes());
        self.send(Dest::Server(from), Message::GlobalServerState(Arc::new(st)));
        if self.in_leader_site() {
            if self.gview.aru_shared == Some(r.aru) {
                // A new representative asks again: its share retransmission goes to it.
                self.resend_share(SigKind::Aru, self.gv);
            } else {
                // CONSTRUCT-ARU: vouch for the invocation aru (this server executed up to it).
                self.gview.aru_shared = Some(r.aru);
                let content = AruMessage::signing_bytes(self.site().0, self.gv, r.aru);
                self.threshold_sign(SigKind::Aru, self.gv, self.lv, self.gv, content);
            }
        }
        true
    }

    /// Construct_Global_Server_State (TDSC Fig. A-20): for every slot above `aru`, the order
    /// proof if ordered, else the Proposal held and any Prepare certificate of a later view.
    pub(crate) fn global_knowledge_above(&self, aru: u64) -> Knowledge {
        let mut ordered = Vec::new();
        let mut proposals = Vec::new();
        let mut certs = Vec::new();
        for (&seq, slot) in self.global.range(aru + 1..) {
            if slot.ordered {
                if let Some(p) = self.order_proof(seq) {
                    ordered.push(p);
                }
                continue;
            }
            let prop_view = slot.proposal.as_ref().map(|p| (p.gv, p.lv));
            if let Some(p) = &slot.proposal {
                proposals.push(p.clone());
            }
            if let Some(c) = &slot.cert {
                if prop_view.is_none_or(|v| (c.pre_prepare.gv, c.pre_prepare.lv) > v) {
                    certs.push(c.clone());
                }
            }
        }
        (ordered, proposals, certs)
    }

    /// What this server would report about `seq` in a Global_Server_State above `aru`: the
    /// digest bound there, if any (for tests of the constraint invariant).
    pub fn reported_binding(&self, seq: u64) -> Option<Digest> {
        let slot = self.global.get(&seq)?;
        if slot.ordered {
            return slot.proposal.as_ref().map(|p| p.digest());
        }
        // The union rule over what `global_knowledge_above` reports for an unordered slot.
        slot.binding(u64::MAX).map(|(_, d)| d)
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

    /// Check a Prepare certificate of any site and global view up to the current one: the
    /// Pre-Prepare from that view's representative of that view's leader site, 2f matching
    /// Prepares from distinct other servers of the site, every signature valid.
    pub(crate) fn valid_any_cert(&mut self, c: &PrepareCert) -> bool {
        let pp = &c.pre_prepare;
        if pp.gv > self.gv {
            return false;
        }
        let site = SiteId((pp.gv % self.num_sites() as u64) as u16);
        let n = self.site_size(site);
        let need = 2 * self.cfg.f[site.index()] as usize;
        if u64::from(pp.server) != pp.lv % u64::from(n) {
            return false;
        }
        let digest = batch_digest(&pp.batch);
        let mut who = std::collections::BTreeSet::new();
        for p in &c.prepares {
            if p.seq != pp.seq
                || (p.gv, p.lv) != (pp.gv, pp.lv)
                || p.digest != digest
                || p.server == pp.server
                || p.server >= n
                || !who.insert(p.server)
            {
                return false;
            }
        }
        if who.len() < need {
            return false;
        }
        let rep = ServerId::new(site, pp.server);
        if !self.crypto.verify_server(
            rep,
            &Message::PrePrepare(pp.clone()).signing_bytes(),
            &pp.sig,
        ) {
            return false;
        }
        c.prepares.iter().all(|p| {
            self.crypto.verify_server(
                ServerId::new(site, p.server),
                &Message::Prepare(p.clone()).signing_bytes(),
                &p.sig,
            )
        })
    }

    /// Compute_Global_Union (TDSC Fig. A-21): per sequence number, an order proof if any;
    /// else the entry of the latest global view: its Proposal (latest local view) if one
    /// exists, else its Prepare certificate (latest local view). Invalid entries are skipped.
    fn global_union(&mut self, aru: u64, entries: Vec<Knowledge>) -> Knowledge {
        let mut ordered: BTreeMap<u64, OrderProof> = BTreeMap::new();
        let mut props: BTreeMap<u64, Arc<Proposal>> = BTreeMap::new();
        let mut certs: BTreeMap<u64, PrepareCert> = BTreeMap::new();
        for (os, ps, cs) in entries {
            for o in os {
                let seq = o.proposal.seq;
                if seq > aru && !ordered.contains_key(&seq) && self.valid_order_proof(&o) {
                    ordered.insert(seq, o);
                }
            }
            for p in ps {
                let better = props
                    .get(&p.seq)
                    .is_none_or(|q| (p.gv, p.lv) > (q.gv, q.lv));
                if p.seq > aru && better && self.valid_old_proposal(&p) {
                    props.insert(p.seq, p);
                }
            }
            for c in cs {
                let seq = c.pre_prepare.seq;
                let view = |c: &PrepareCert| (c.pre_prepare.gv, c.pre_prepare.lv);
                let better = certs.get(&seq).is_none_or(|q| view(&c) > view(q));
                if seq > aru && better && self.valid_any_cert(&c) {
                    certs.insert(seq, c);
                }
            }
        }
        props.retain(|seq, _| !ordered.contains_key(seq));
        certs.retain(|seq, c| {
            !ordered.contains_key(seq) && props.get(seq).is_none_or(|p| c.pre_prepare.gv > p.gv)
        });
        (
            ordered.into_values().collect(),
            props.into_values().collect(),
            certs.into_values().collect(),
        )
    }

    pub(crate) fn on_global_collected(&mut self, from: ServerId, c: &Arc<GlobalCollected>) -> bool {
        // One union per representative: a new representative (after a local view change
        // during the global view change) may bundle other states, and its site follows it.
        let done = self.gview.union.is_some() && self.gview.union_lv >= self.lv;
        if from != self.rep_of(self.site()) || c.gv != self.gv || done {
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
            .map(|st| (st.ordered.clone(), st.proposals.clone(), st.certs.clone()))
            .collect();
        let (ordered, proposals, certs) = self.global_union(c.aru, entries);
        let digest = GlobalConstraint::union_digest(&ordered, &proposals, &certs);
        let content = GlobalConstraint::signing_bytes(self.site().0, self.gv, c.aru, &digest);
        self.gview.union = Some((c.aru, (ordered, proposals, certs)));
        self.gview.union_lv = self.lv;
        self.threshold_sign(SigKind::Constraint, self.gv, self.lv, self.gv, content);
        true
    }

    /// The new leader site's Aru_Message is threshold-signed: send it to every site.
    pub(crate) fn on_own_aru_signed(&mut self, gv: u64, content: &[u8], tsig: Vec<u8>) {
        // The aru is the one the shares signed (a share set of an earlier representative may
        // combine here), not necessarily the one this server asked for.
        let Some(aru) = AruMessage::aru_of(content) else {
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
                } else if self.gview.collecting.is_none() {
                    // Representative since the Aru first arrived: construct it now.
                    self.start_global_state(a.aru);
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
        let Some((aru, (ordered, proposals, certs))) = self.gview.union.clone() else {
            return;
        };
        let gc = Arc::new(GlobalConstraint {
            site: self.site().0,
            gv: self.gv,
            aru,
            ordered,
            proposals,
            certs,
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
        let digest = GlobalConstraint::union_digest(&gc.ordered, &gc.proposals, &gc.certs);
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
            let digest = GlobalConstraint::union_digest(&gc.ordered, &gc.proposals, &gc.certs);
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
            .map(|gc| (gc.ordered.clone(), gc.proposals.clone(), gc.certs.clone()))
            .collect();
        let (ordered, proposals, certs) = self.global_union(cc.aru, entries);
        for o in ordered {
            self.apply_order_proof(&o);
        }
        for p in proposals {
            let slot = self.global.entry(p.seq).or_default();
            if !slot.ordered && slot.proposal.as_ref().is_none_or(|q| q.gv < p.gv) {
                slot.proposal = Some(p.clone());
                self.persist_proposal(&p);
            }
        }
        for c in certs {
            if !self
                .global
                .get(&c.pre_prepare.seq)
                .is_some_and(|g| g.ordered)
            {
                self.note_cert(c);
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

    /// A new representative takes over a global view change in progress (TDSC: the first
    /// correct representative completes it): CONSTRUCT-ARU at the leader site, the site's
    /// Global_Constraint elsewhere once the Aru_Message is known.
    pub(crate) fn resume_global_view_change(&mut self) {
        if !self.is_rep() {
            return;
        }
        if self.in_leader_site() {
            if !self.globally_constrained {
                self.start_global_state(self.global_aru);
            }
        } else if self.gview.my_constraint.is_none() {
            if let Some(a) = self.gview.aru_msg.clone() {
                self.start_global_state(a.aru);
            }
        }
    }

    /// Retransmissions of the global view change, on the periodic tick.
    pub(crate) fn global_view_retransmit(&mut self) {
        self.gview.ticks += 1;
        // Shares of a global view change in progress go again to the current representative
        // (one silent or replaced representative must not cost the whole global view).
        let constraining = if self.in_leader_site() {
            !self.globally_constrained
        } else {
            self.gview.my_constraint.is_none()
        };
        if constraining && self.gview.union.is_some() {
            self.resend_share(SigKind::Constraint, self.gv);
        }
        if self.in_leader_site() && self.gview.aru_msg.is_none() && self.gview.aru_shared.is_some()
        {
            self.resend_share(SigKind::Aru, self.gv);
        }
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
}
