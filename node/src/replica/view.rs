//! LOCAL-VIEW-CHANGE (TDSC Fig. A-13) and CONSTRUCT-LOCAL-CONSTRAINT (Fig. A-17).
//!
//! A server whose local timer expires (no global progress while it knows of pending updates)
//! votes New_Rep(lv+1). When 2f+1 servers of the site vote for views ≥ lv, lv is preinstalled:
//! the representative becomes server lv mod n, the proof is sent to the site and reliably to
//! every other site, and — at the leader site — the new representative collects 2f+1
//! Local_Server_State messages so that every correct server constrains its local history to
//! the same union of Proposals and Prepare certificates before anything new is sequenced. That
//! prevents two different Proposals for one sequence number in one global view.

use std::collections::BTreeMap;
use std::sync::Arc;

use steward_config::{ServerId, SiteId};

use super::{Action, Dest, Replica};
use crate::msg::{
    LocalCollected, LocalPreinstall, LocalServerState, Message, NewRep, PrepareCert, Proposal,
    RequestLocalState,
};

/// A new leader-site representative collecting Local_Server_State messages.
pub(crate) struct Collecting {
    aru: u64,
    states: BTreeMap<u32, Arc<LocalServerState>>,
}

impl Replica {
    /// A1–A5: suggest the next local view (and keep suggesting while no progress).
    pub(crate) fn vote_new_rep(&mut self) {
        // A1–A5: suggest the next local view (and keep suggesting while no progress).
        let mine = self.new_reps.get(&self.cfg.id.index).map_or(0, |n| n.lv);
        let lv = mine.max(self.lv) + 1;
        let mut vote = NewRep {
            server: self.cfg.id.index,
            lv,
            sig: Vec::new(),
        };
        vote.sig = self
            .crypto
            .sign(&Message::NewRep(Arc::new(vote.clone())).signing_bytes());
        let vote = Arc::new(vote);
        self.new_reps.insert(self.cfg.id.index, vote.clone());
        self.send_site(Message::NewRep(vote));
    }

    // --- votes and preinstallation ----------------------------------------------------------

    fn verify_vote(&mut self, site: SiteId, v: &NewRep) -> bool {
        v.server < self.site_size(site)
            && self.crypto.verify_server(
                ServerId::new(site, v.server),
                &Message::NewRep(Arc::new(v.clone())).signing_bytes(),
                &v.sig,
            )
    }

    pub(crate) fn on_new_rep(&mut self, from: ServerId, n: &Arc<NewRep>) -> bool {
        if from.site != self.site() || from.index != n.server {
            return false;
        }
        if self.new_reps.get(&n.server).is_some_and(|x| x.lv >= n.lv) {
            return true;
        }
        if n.lv > self.lv + 1000 || !self.verify_vote(self.site(), n) {
            return false;
        }
        self.new_reps.insert(n.server, n.clone());
        self.check_preinstall();
        true
    }

    /// Preinstalled view: the highest lv that 2f+1 servers voted for (or beyond).
    fn check_preinstall(&mut self) {
        let quorum = (2 * self.f() + 1) as usize;
        // f+1 servers asking to replace the representative include a correct one: join them
        // (as in PBFT), so that misbehaviour only some correct servers can see, such as an
        // equivocation, still gathers the 2f+1 votes a new view needs.
        let mine = self.new_reps.get(&self.cfg.id.index).map_or(0, |n| n.lv);
        let asking = self.new_reps.values().filter(|n| n.lv > self.lv).count();
        if mine <= self.lv && asking > self.f() as usize {
            self.vote_new_rep();
        }
        let mut lvs: Vec<u64> = self.new_reps.values().map(|n| n.lv).collect();
        lvs.sort_unstable_by(|a, b| b.cmp(a));
        let Some(&lv) = lvs.get(quorum - 1) else {
            return;
        };
        if lv > self.lv {
            self.install_local_view(lv);
        }
    }

    fn install_local_view(&mut self, lv: u64) {
        let quorum = (2 * self.f() + 1) as usize;
        let votes: Vec<NewRep> = self
            .new_reps
            .values()
            .filter(|n| n.lv >= lv)
            .take(quorum)
            .map(|n| (**n).clone())
            .collect();
        self.lv = lv;
        self.persist_views();
        let own = self.site().index();
        self.lv_of[own] = lv;
        self.stats.local_view_changes += 1;
        self.collecting = None;
        self.pending_ts.clear();
        self.flush_held_accepts();
        let proof = Arc::new(LocalPreinstall {
            site: self.site().0,
            lv,
            votes,
        });
        self.local_proof = Some(proof.clone());
        // D2–D3: to the site, and reliably to every other site.
        self.send_site(Message::LocalPreinstall(proof.clone()));
        self.reliable_send_to_all_sites(Message::LocalPreinstall(proof));
        if self.in_leader_site() {
            self.locally_constrained = false;
            if self.is_rep() {
                self.start_local_constraint();
            }
        } else {
            // Accepts are signed in a local view: shares from the old view cannot combine with
            // the new one, so accept every pending Proposal again.
            let pending: Vec<u64> = self
                .global
                .range(self.global_aru + 1..)
                .filter(|(_, g)| !g.ordered && g.own_accept.is_none() && g.proposal.is_some())
                .map(|(seq, _)| *seq)
                .collect();
            for seq in pending {
                if let Some(g) = self.global.get_mut(&seq) {
                    g.accept_share_sent = false;
                }
                self.start_accept(seq);
            }
        }
        self.local_epoch = self.now;
        self.resume_global_view_change();
        if self.has_pending() {
            let t = self.local_timeout();
            self.arm_local_timer(t);
        }
        self.reinject();
    }

    /// Re-inject the updates this server owes replies for (after a view change), and at the
    /// leader site those other sites relayed to it: a new representative gets them at once.
    pub(crate) fn reinject(&mut self) {
        let mut owed: Vec<Arc<crate::msg::Update>> = self.responsible.values().cloned().collect();
        if self.in_leader_site() {
            owed.extend(self.relayed.values().cloned());
        }
        for u in owed {
            if self.is_rep() && self.in_leader_site() {
                let pending = self.pending_ts.get(&u.client).copied().unwrap_or(0);
                if u.ts > pending {
                    self.pending_ts.insert(u.client, u.ts);
                    self.pool.push_back(u);
                }
            } else {
                let to = if self.is_rep() {
                    self.rep_of(self.leader_site())
                } else {
                    self.rep_of(self.site())
                };
                self.send(Dest::Server(to), Message::Update(u));
            }
        }
    }

    /// RELIABLE-SEND-TO-ALL-SITES (TDSC Fig. A-24): each of the servers with index ≤ 2f sends
    /// to its peer (same index) in every other site, which relays within its site.
    pub(crate) fn reliable_send_to_all_sites(&mut self, msg: Message) {
        if self.cfg.id.index > 2 * self.f() {
            return;
        }
        let env = crate::msg::Envelope::new(msg);
        for s in 0..self.num_sites() as u16 {
            let site = SiteId(s);
            if site != self.site() && self.cfg.id.index < self.site_size(site) {
                self.out.push(Action::Send {
                    to: Dest::Server(ServerId::new(site, self.cfg.id.index)),
                    env: env.clone(),
                });
            }
        }
    }

    pub(crate) fn on_local_preinstall(&mut self, from: ServerId, p: &Arc<LocalPreinstall>) -> bool {
        let site = SiteId(p.site);
        if site.index() >= self.num_sites() {
            return false;
        }
        let known = if site == self.site() {
            self.lv
        } else {
            self.lv_of[site.index()]
        };
        if p.lv <= known {
            return true;
        }
        let quorum = (2 * self.cfg.f[site.index()] + 1) as usize;
        let mut voters = std::collections::BTreeSet::new();
        for v in &p.votes {
            if v.lv < p.lv || !voters.insert(v.server) {
                return false;
            }
        }
        if voters.len() < quorum {
            return false;
        }
        for v in &p.votes {
            if !self.verify_vote(site, v) {
                return false;
            }
        }
        if site == self.site() {
            for v in &p.votes {
                let newer = self.new_reps.get(&v.server).is_none_or(|x| x.lv < v.lv);
                if newer {
                    self.new_reps.insert(v.server, Arc::new(v.clone()));
                }
            }
            self.check_preinstall();
        } else {
            self.lv_of[site.index()] = p.lv;
            if from.site != self.site() {
                // Relay within the own site (Fig. A-24 C1–C2).
                self.send_site(Message::LocalPreinstall(p.clone()));
            }
        }
        true
    }

    /// Learn a site's local view from a validly signed message of that site.
    pub(crate) fn learn_lv(&mut self, site: SiteId, lv: u64) {
        if site != self.site() && lv > self.lv_of[site.index()] {
            self.lv_of[site.index()] = lv;
        }
    }

    /// Retransmissions of the view-change protocol, on the periodic tick.
    pub(crate) fn view_retransmit(&mut self) {
        if let Some(mine) = self.new_reps.get(&self.cfg.id.index).cloned() {
            if mine.lv > self.lv {
                self.send_site(Message::NewRep(mine));
            }
        }
        if self.collecting.is_some() {
            self.send_request_local_state();
        }
        self.ask_for_bundle();
        // Sites cut off when the view changed learn it when connectivity returns.
        self.view_ticks += 1;
        if self.view_ticks % 4 == 0 {
            if let Some(p) = self.local_proof.clone() {
                self.reliable_send_to_all_sites(Message::LocalPreinstall(p));
            }
        }
    }

    // --- CONSTRUCT-LOCAL-CONSTRAINT -----------------------------------------------------------

    fn start_local_constraint(&mut self) {
        self.collecting = Some(Collecting {
            aru: self.pending_aru,
            states: BTreeMap::new(),
        });
        self.send_request_local_state();
    }

    fn send_request_local_state(&mut self) {
        let Some(c) = &self.collecting else { return };
        let req = RequestLocalState {
            gv: self.gv,
            lv: self.lv,
            aru: c.aru,
        };
        self.send_site(Message::RequestLocalState(Arc::new(req)));
    }

    pub(crate) fn on_request_local_state(&mut self, from: ServerId, r: &RequestLocalState) -> bool {
        if self.is_rep() && from != self.cfg.id {
            return self.resend_bundle(from, r);
        }
        if from != self.rep_of(self.site())
            || !self.in_leader_site()
            || (r.gv, r.lv) != (self.gv, self.lv)
        {
            return false;
        }
        if self.locally_constrained && from != self.cfg.id {
            return true; // already applied this view's constraint
        }
        if self.pending_aru < r.aru {
            // Missing Proposals up to the invocation aru: fetch them first (the representative
            // retransmits its request).
            self.send(Dest::Server(from), self.recon_request(self.global_aru));
            return true;
        }
        let mut proposals = Vec::new();
        let mut certs = Vec::new();
        for seq in r.aru + 1..=self.global_aru.max(r.aru) + 4 * self.cfg.global_window {
            let local = self.local.get(&seq);
            let prop = local
                .and_then(|l| l.proposal.clone())
                .or_else(|| self.global.get(&seq).and_then(|g| g.proposal.clone()));
            if let Some(p) = prop {
                proposals.push(p);
            } else if let Some(c) = local.and_then(|l| self.prepare_cert(l)) {
                certs.push(c);
            }
        }
        let mut st = LocalServerState {
            server: self.cfg.id.index,
            gv: self.gv,
            lv: self.lv,
            aru: r.aru,
            proposals,
            certs,
            sig: Vec::new(),
        };
        st.sig = self
            .crypto
            .sign(&Message::LocalServerState(Arc::new(st.clone())).signing_bytes());
        self.send(Dest::Server(from), Message::LocalServerState(Arc::new(st)));
        true
    }

    /// The Prepare certificate a slot holds: from the current view, or one carried over.
    fn prepare_cert(&self, slot: &super::LocalSlot) -> Option<PrepareCert> {
        if let Some(pp) = &slot.pre_prepare {
            let need = 2 * self.f() as usize;
            if slot.prepares.len() >= need {
                return Some(PrepareCert {
                    pre_prepare: pp.clone(),
                    prepares: slot.prepares.values().take(need).cloned().collect(),
                });
            }
        }
        slot.cert.clone()
    }

    /// A Prepare certificate of this global view (the leader site's own, since the local
    /// constraint runs there): structure and signatures as for any certificate.
    fn valid_cert(&mut self, c: &PrepareCert) -> bool {
        c.pre_prepare.gv == self.gv && self.valid_any_cert(c)
    }

    fn valid_proposal(&mut self, p: &Proposal) -> bool {
        p.gv == self.gv
            && SiteId(p.site) == self.leader_site()
            && self
                .crypto
                .verify_site(SiteId(p.site), &p.signing_bytes(), &p.tsig)
    }

    fn valid_state(&mut self, st: &LocalServerState, aru: u64) -> bool {
        if (st.gv, st.lv, st.aru) != (self.gv, self.lv, aru)
            || st.server >= self.site_size(self.site())
        {
            return false;
        }
        let signer = ServerId::new(self.site(), st.server);
        if !self.crypto.verify_server(
            signer,
            &Message::LocalServerState(Arc::new(st.clone())).signing_bytes(),
            &st.sig,
        ) {
            return false;
        }
        st.proposals.iter().all(|p| p.seq > aru) && st.certs.iter().all(|c| c.pre_prepare.seq > aru)
    }

    pub(crate) fn on_local_server_state(
        &mut self,
        from: ServerId,
        st: &Arc<LocalServerState>,
    ) -> bool {
        let Some(aru) = self.collecting.as_ref().map(|c| c.aru) else {
            return true;
        };
        if from.site != self.site() || from.index != st.server || !self.valid_state(st, aru) {
            return false;
        }
        let quorum = (2 * self.f() + 1) as usize;
        let c = self.collecting.as_mut().expect("collecting");
        c.states.insert(st.server, st.clone());
        if c.states.len() < quorum {
            return true;
        }
        let bundle = LocalCollected {
            gv: self.gv,
            lv: self.lv,
            aru,
            states: c.states.values().take(quorum).cloned().collect(),
        };
        self.collecting = None;
        let bundle = Arc::new(bundle);
        self.local_bundle = Some(bundle.clone());
        self.send_site(Message::LocalCollected(bundle));
        true
    }

    /// Apply the representative's bundle: every correct server computes the same union and
    /// replaces its old-view local history with it.
    pub(crate) fn on_local_collected(&mut self, from: ServerId, c: &Arc<LocalCollected>) -> bool {
        if from != self.rep_of(self.site())
            || !self.in_leader_site()
            || (c.gv, c.lv) != (self.gv, self.lv)
        {
            return false;
        }
        if self.locally_constrained {
            return true;
        }
        if self.pending_aru < c.aru {
            return true; // fetch Proposals first; the representative retransmits
        }
        let quorum = (2 * self.f() + 1) as usize;
        let mut who = std::collections::BTreeSet::new();
        for st in c.states.clone() {
            if !who.insert(st.server) || !self.valid_state(&st, c.aru) {
                return false;
            }
        }
        if who.len() < quorum {
            return false;
        }
        // Compute_Local_Union: per sequence number, the Proposal of the latest local view, else
        // the Prepare certificate of the latest local view. Invalid entries are skipped.
        let mut props: BTreeMap<u64, Arc<Proposal>> = BTreeMap::new();
        let mut certs: BTreeMap<u64, PrepareCert> = BTreeMap::new();
        for st in &c.states {
            for p in &st.proposals {
                let better = props.get(&p.seq).is_none_or(|q| p.lv > q.lv);
                if better && self.valid_proposal(p) {
                    props.insert(p.seq, p.clone());
                }
            }
            for pc in &st.certs {
                let seq = pc.pre_prepare.seq;
                let better = certs
                    .get(&seq)
                    .is_none_or(|q| pc.pre_prepare.lv > q.pre_prepare.lv);
                if better && self.valid_cert(pc) {
                    certs.insert(seq, pc.clone());
                }
            }
        }
        // Fig. A-3 D5–D17: drop old-view local entries above the invocation aru, add the union.
        let above: Vec<u64> = self.local.range(c.aru + 1..).map(|(s, _)| *s).collect();
        for seq in above {
            if let Some(slot) = self.local.get_mut(&seq) {
                if let Some(pp) = slot.pre_prepare.take() {
                    for u in &pp.batch {
                        if self.bound.get(&u.digest()) == Some(&seq) {
                            self.bound.remove(&u.digest());
                        }
                    }
                }
                slot.digest = None;
                slot.prepares.clear();
                slot.share_sent = false;
                slot.share_at = None;
                slot.share_resends = 0;
                slot.proof_asked = false;
                slot.signers_nudged = false;
                slot.cert = None;
                if slot.proposal.as_ref().is_some_and(|p| p.lv < c.lv) && !props.contains_key(&seq)
                {
                    // Keep: a threshold-signed Proposal of this global view binds the slot.
                }
            }
        }
        // A server applying the bundle late (it missed the view change) may have executed
        // some of these slots since: they need no binding.
        let executed = self.global_aru;
        props.retain(|seq, _| *seq > executed);
        certs.retain(|seq, _| *seq > executed);
        for (seq, p) in props {
            let slot = self.local.entry(seq).or_default();
            slot.proposal = Some(p.clone());
            for u in &p.batch {
                self.bound.insert(u.digest(), seq);
            }
            let g = self.global.entry(seq).or_default();
            if g.proposal.is_none() {
                g.proposal = Some(p.clone());
                self.persist_proposal(&p);
            }
        }
        for (seq, pc) in certs {
            self.note_cert(pc.clone());
            let slot = self.local.entry(seq).or_default();
            if slot.proposal.is_none() {
                for u in &pc.pre_prepare.batch {
                    self.bound.insert(u.digest(), seq);
                }
                slot.cert = Some(pc);
            }
        }
        self.locally_constrained = true;
        if self.is_rep() {
            self.global_seq = c.aru + 1;
            self.try_propose();
        }
        true
    }
}
