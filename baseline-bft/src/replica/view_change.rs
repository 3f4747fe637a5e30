//! View changes (OSDI'99 §4.4, signature variant): VIEW-CHANGE with the stable checkpoint's
//! certificate and the prepared certificates above it; NEW-VIEW with the View-Changes it is
//! built from and the Pre-Prepares `O` for every sequence number between min-s and max-s.
//!
//! Liveness rules (§4.5): a backup waiting for a request starts a timer; on expiry it moves to
//! the next view; a replica that sees View-Changes for later views from f+1 replicas joins the
//! highest view at least f+1 of them reached; the wait for a New-View doubles with every
//! consecutive view change and is reset by progress. To keep New-Views small, `V` travels as
//! (replica, digest) references: View-Changes are multicast, and a replica missing one gets it
//! (with the New-View) from a peer through `Status`.

use std::collections::BTreeMap;
use std::sync::Arc;

use bft_core::request::{batch_digest, Digest, Update};

use super::durable::VOTE_PRE_PREPARE;
use super::{Dest, Lag, Replica, Stable};
use crate::msg::{Checkpoint, Message, NewView, PrePrepare, PreparedCert, ViewChange};

/// Longest wait for a New-View, as a multiple of the configured timeout.
const MAX_BACKOFF: u32 = 16;

/// What a New-View must contain, computed from a set of View-Changes.
struct Plan {
    /// min-s: the highest stable checkpoint among them, with its certificate.
    min_s: u64,
    proof: Vec<Arc<Checkpoint>>,
    /// max-s: the highest prepared sequence number (min-s when none).
    max_s: u64,
    /// For every sequence number in (min-s, max-s]: the digest and batch of the prepared
    /// certificate of the highest view, or the null request.
    entries: Vec<(u64, Digest, Vec<Arc<Update>>)>,
}

fn plan(vcs: &[Arc<ViewChange>]) -> Plan {
    let best = vcs.iter().fold(None::<&Arc<ViewChange>>, |b, vc| match b {
        Some(b) if b.stable >= vc.stable => Some(b),
        _ => Some(vc),
    });
    let (min_s, proof) = best.map_or((0, Vec::new()), |b| (b.stable, b.stable_proof.clone()));
    let mut chosen: BTreeMap<u64, &PreparedCert> = BTreeMap::new();
    for vc in vcs {
        for cert in &vc.prepared {
            let n = cert.pre_prepare.seq;
            if n <= min_s {
                continue;
            }
            let better = chosen
                .get(&n)
                .is_none_or(|c| c.pre_prepare.view < cert.pre_prepare.view);
            if better {
                chosen.insert(n, cert);
            }
        }
    }
    let max_s = chosen.keys().next_back().copied().unwrap_or(min_s);
    let entries = (min_s + 1..=max_s)
        .map(|n| match chosen.get(&n) {
            Some(c) => (n, c.pre_prepare.digest, c.pre_prepare.batch.clone()),
            None => (n, batch_digest(&[]), Vec::new()),
        })
        .collect();
    Plan {
        min_s,
        proof,
        max_s,
        entries,
    }
}

impl Replica {
    /// The view timer fired: the awaited request did not execute, or no New-View came.
    pub(crate) fn on_view_timer(&mut self) {
        self.timed = None;
        if self.active && self.is_primary() {
            return;
        }
        let next = self.view.saturating_add(1);
        self.start_view_change(next);
    }

    /// Leave the current view for `view`: multicast a View-Change and wait for the New-View.
    pub(crate) fn start_view_change(&mut self, view: u64) {
        if view <= self.view {
            return;
        }
        self.stats.view_changes += 1;
        self.view = view;
        self.active = false;
        // Durable before the View-Change leaves: a restarted replica never sends a second,
        // different one for this view.
        self.persist_view();
        if self
            .waiting_new_view
            .as_ref()
            .is_some_and(|nv| nv.view < view)
        {
            self.waiting_new_view = None;
        }
        for u in std::mem::take(&mut self.pool) {
            if self.pending.get(&u.client).is_none_or(|p| p.ts < u.ts) {
                self.pending.insert(u.client, u);
            }
        }
        self.assigned.clear();
        let prepared: Vec<PreparedCert> = self
            .log
            .range(self.stable.seq + 1..)
            .filter_map(|(_, s)| s.prepared.clone())
            .collect();
        let mut vc = ViewChange {
            view,
            replica: self.cfg.id,
            stable: self.stable.seq,
            stable_proof: self.stable.proof.clone(),
            prepared,
            sig: Vec::new(),
        };
        vc.sig = self.sign(&vc.signing_bytes());
        let vc = Arc::new(vc);
        self.persist_view_change(&vc);
        self.view_changes.retain(|v, _| *v >= view);
        self.view_changes
            .entry(view)
            .or_default()
            .insert(self.cfg.id, vc.clone());
        self.broadcast(Message::ViewChange(vc));
        let wait = self.view_timeout;
        self.timed = None;
        self.arm_view_timer(wait);
        self.view_timeout = (self.view_timeout * 2).min(self.cfg.view_change_timeout * MAX_BACKOFF);
        self.try_new_view();
    }

    /// VIEW-CHANGE from a peer.
    pub(crate) fn on_view_change(&mut self, from: u32, vc: &Arc<ViewChange>) -> bool {
        if vc.replica != from {
            return false;
        }
        self.saw_view(from, vc.view);
        if vc.view < self.view || (vc.view == self.view && self.active) {
            return true;
        }
        let digest = vc.digest();
        if self
            .view_changes
            .get(&vc.view)
            .and_then(|m| m.get(&from))
            .is_some_and(|have| have.digest() == digest)
        {
            return true;
        }
        if !self.valid_view_change(vc) {
            return false;
        }
        self.view_changes
            .entry(vc.view)
            .or_default()
            .insert(from, vc.clone());
        // At most two views per replica.
        let views: Vec<u64> = self
            .view_changes
            .iter()
            .filter(|(_, m)| m.contains_key(&from))
            .map(|(v, _)| *v)
            .collect();
        for v in views.iter().take(views.len().saturating_sub(2)) {
            if let Some(m) = self.view_changes.get_mut(v) {
                m.remove(&from);
            }
        }
        self.view_changes.retain(|_, m| !m.is_empty());
        // Join: the highest view that f+1 replicas have reached.
        let mut highest: BTreeMap<u32, u64> = BTreeMap::new();
        for (v, m) in self.view_changes.range(self.view + 1..) {
            for r in m.keys().filter(|r| **r != self.cfg.id) {
                highest.insert(*r, *v);
            }
        }
        let mut views: Vec<u64> = highest.into_values().collect();
        views.sort_unstable_by(|a, b| b.cmp(a));
        if let Some(&target) = views.get(self.cfg.f as usize) {
            if target > self.view {
                self.start_view_change(target);
            }
        }
        if vc.view == self.view && !self.active {
            self.try_new_view();
        }
        if self
            .waiting_new_view
            .as_ref()
            .is_some_and(|nv| nv.view == vc.view)
        {
            self.retry_new_view();
        }
        true
    }

    /// Checks a View-Change completely: signature, checkpoint certificate, every prepared
    /// certificate (primary's signature, batch digest, a quorum minus one of Prepares).
    fn valid_view_change(&mut self, vc: &ViewChange) -> bool {
        let (k, l) = (self.cfg.checkpoint_interval.max(1), self.cfg.log_size);
        if vc.view == 0 || !self.verify(vc.replica, &vc.signing_bytes(), &vc.sig) {
            return false;
        }
        if vc.stable == 0 {
            if !vc.stable_proof.is_empty() {
                return false;
            }
        } else {
            let Some(digest) = vc.stable_proof.first().map(|c| c.state) else {
                return false;
            };
            if vc.stable % k != 0 || !self.verify_stable_proof(vc.stable, &digest, &vc.stable_proof)
            {
                return false;
            }
        }
        if vc.prepared.len() as u64 > l {
            return false;
        }
        let mut last = vc.stable;
        for cert in &vc.prepared {
            let pp = &cert.pre_prepare;
            if pp.seq <= last
                || pp.seq > vc.stable.saturating_add(l)
                || pp.view >= vc.view
                || !self.valid_prepared(cert)
            {
                return false;
            }
            last = pp.seq;
        }
        true
    }

    /// A prepared certificate: the Pre-Prepare signed by its view's primary, its batch, and a
    /// quorum minus one of matching Prepares from distinct backups.
    fn valid_prepared(&mut self, cert: &PreparedCert) -> bool {
        let pp = &cert.pre_prepare;
        let need = self.quorum() - 1;
        if pp.replica != self.primary_of(pp.view)
            || pp.batch.len() > self.cfg.batch.max(1)
            || !pp.batch_matches()
            || cert.prepares.len() < need
            || cert.prepares.len() > self.n() as usize
        {
            return false;
        }
        let mut seen = std::collections::BTreeSet::new();
        for p in &cert.prepares {
            if p.view != pp.view
                || p.seq != pp.seq
                || p.digest != pp.digest
                || p.replica == pp.replica
                || p.replica >= self.n()
                || !seen.insert(p.replica)
            {
                return false;
            }
        }
        self.verify(pp.replica, &pp.signing_bytes(), &pp.sig)
            && cert
                .prepares
                .iter()
                .all(|p| self.verify(p.replica, &p.signing_bytes(), &p.sig))
    }

    /// The new primary: with a quorum of View-Changes (its own among them), send the New-View.
    fn try_new_view(&mut self) {
        if self.active || !self.is_primary() || !self.acts_as_primary() {
            return;
        }
        let q = self.quorum();
        let Some(map) = self.view_changes.get(&self.view) else {
            return;
        };
        let Some(own) = map.get(&self.cfg.id).cloned() else {
            return;
        };
        if map.len() < q {
            return;
        }
        let mut chosen = vec![own];
        chosen.extend(
            map.iter()
                .filter(|(r, _)| **r != self.cfg.id)
                .map(|(_, vc)| vc.clone())
                .take(q - 1),
        );
        let plan = plan(&chosen);
        // Every Pre-Prepare of `O` is a vote; a restarted primary that sent another New-View
        // for this view does not send a contradicting one.
        let view = self.view;
        for (seq, digest, _) in &plan.entries {
            if !self.cast_vote(VOTE_PRE_PREPARE, *seq, view, *digest) {
                return;
            }
        }
        let mut pre_prepares = Vec::with_capacity(plan.entries.len());
        for (seq, digest, batch) in &plan.entries {
            let mut pp = PrePrepare {
                view: self.view,
                seq: *seq,
                digest: *digest,
                replica: self.cfg.id,
                batch: batch.clone(),
                sig: Vec::new(),
            };
            pp.sig = self.sign(&pp.signing_bytes());
            pre_prepares.push(Arc::new(pp));
        }
        let mut nv = NewView {
            view: self.view,
            replica: self.cfg.id,
            view_changes: chosen.iter().map(|vc| (vc.replica, vc.digest())).collect(),
            pre_prepares,
            sig: Vec::new(),
        };
        nv.sig = self.sign(&nv.signing_bytes());
        let nv = Arc::new(nv);
        self.broadcast(Message::NewView(nv.clone()));
        self.enter_view(nv, chosen, plan);
    }

    /// NEW-VIEW from the primary of a later view (or of the view being entered).
    pub(crate) fn on_new_view(&mut self, from: u32, nv: &Arc<NewView>) -> bool {
        if nv.replica != from {
            return false;
        }
        self.saw_view(from, nv.view);
        if nv.view < self.view || (nv.view == self.view && self.active) {
            return true;
        }
        let n = self.n() as usize;
        let mut refs = std::collections::BTreeSet::new();
        if nv.view == 0
            || from != self.primary_of(nv.view)
            || nv.view_changes.len() < self.quorum()
            || nv.view_changes.len() > n
            || !nv
                .view_changes
                .iter()
                .all(|(r, _)| (*r as usize) < n && refs.insert(*r))
            || nv.pre_prepares.len() as u64 > self.cfg.log_size
        {
            return false;
        }
        if self
            .waiting_new_view
            .as_ref()
            .is_some_and(|w| w.view == nv.view && w.sig == nv.sig)
        {
            return true;
        }
        if !self.verify(from, &nv.signing_bytes(), &nv.sig) {
            return false;
        }
        self.waiting_new_view = Some(nv.clone());
        self.retry_new_view();
        true
    }

    /// Check a waiting New-View once every View-Change it refers to is known: recompute `O`
    /// and compare. A New-View that does not match proves its primary faulty.
    fn retry_new_view(&mut self) {
        let Some(nv) = self.waiting_new_view.clone() else {
            return;
        };
        let mut vcs = Vec::with_capacity(nv.view_changes.len());
        for (r, d) in &nv.view_changes {
            match self.view_changes.get(&nv.view).and_then(|m| m.get(r)) {
                Some(vc) if vc.digest() == *d => vcs.push(vc.clone()),
                _ => return, // the tick's Status asks peers for it
            }
        }
        self.waiting_new_view = None;
        let plan = plan(&vcs);
        let matches = nv.pre_prepares.len() == plan.entries.len()
            && nv
                .pre_prepares
                .iter()
                .zip(&plan.entries)
                .all(|(pp, (seq, digest, _))| {
                    pp.view == nv.view
                        && pp.seq == *seq
                        && pp.digest == *digest
                        && pp.replica == nv.replica
                        && pp.batch_matches()
                });
        let signed = matches
            && nv
                .pre_prepares
                .iter()
                .all(|pp| self.verify(pp.replica, &pp.signing_bytes(), &pp.sig));
        if !signed {
            self.stats.dropped_invalid += 1;
            self.start_view_change(nv.view.saturating_add(1));
            return;
        }
        self.enter_view(nv, vcs, plan);
    }

    /// Enter the view of a checked New-View.
    fn enter_view(&mut self, nv: Arc<NewView>, vcs: Vec<Arc<ViewChange>>, plan: Plan) {
        let view = nv.view;
        self.view = view;
        self.active = true;
        self.persist_view();
        self.persist_new_view(&nv, &vcs);
        self.waiting_new_view = None;
        self.stats.new_views += 1;
        // The stable checkpoint of the new view.
        if plan.min_s > self.stable.seq {
            let own = self.snapshots.get(&plan.min_s).cloned();
            match own {
                Some((d, snap))
                    if self.executed >= plan.min_s
                        && plan.proof.first().is_some_and(|c| c.state == d) =>
                {
                    self.make_stable(plan.min_s, plan.proof.clone(), Some(snap));
                }
                _ if self.executed < plan.min_s => {
                    self.stable = Stable {
                        seq: plan.min_s,
                        proof: plan.proof.clone(),
                        snapshot: None,
                    };
                    self.log = self.log.split_off(&(plan.min_s + 1));
                    self.checkpoints = self.checkpoints.split_off(&(plan.min_s + 1));
                    self.snapshots = self.snapshots.split_off(&(plan.min_s + 1));
                    self.lag = Some(Lag {
                        seq: plan.min_s,
                        proof: plan.proof.clone(),
                        next: 0,
                        since: self.now,
                    });
                }
                _ => {}
            }
        }
        // Forget what no quorum prepared above max-s (it cannot have committed).
        let max_s = plan.max_s;
        self.log.retain(|n, s| *n <= max_s || s.committed.is_some());
        self.next_seq = max_s.max(self.executed).max(self.stable.seq) + 1;
        self.assigned.clear();
        for pp in &nv.pre_prepares {
            for u in &pp.batch {
                let a = self.assigned.entry(u.client).or_default();
                *a = (*a).max(u.ts);
            }
            if pp.seq > self.stable.seq {
                self.accept_pre_prepare(pp.clone());
            }
        }
        self.view_changes.retain(|v, _| *v > view);
        self.new_view = Some((nv, vcs));
        self.stop_view_timer();
        let pending: Vec<Arc<Update>> = self.pending.values().cloned().collect();
        if self.is_primary() {
            self.pending.clear();
            self.pool.extend(pending);
            self.try_issue();
        } else {
            let primary = self.primary_of(view);
            for u in pending {
                self.send(Dest::Replica(primary), Message::Request(u));
            }
            self.start_request_timer();
        }
        self.execute_ready();
    }
}
