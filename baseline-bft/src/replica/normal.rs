//! The normal case: requests, PRE-PREPARE / PREPARE / COMMIT, in-order execution, replies and
//! the read-only optimisation (OSDI'99 §4.2–4.3, TOCS §5.1.3).

use std::collections::BTreeMap;
use std::sync::Arc;

use bft_core::request::{batch_digest, ClientId, Digest, Op, Update};

use super::durable::{VOTE_COMMIT, VOTE_PREPARE, VOTE_PRE_PREPARE};
use super::{Action, Dest, Executed, Replica};
use crate::msg::{Commit, CommitProof, Message, PrePrepare, Prepare, PreparedCert, Reply};

/// Requests remembered for the equivocation fault.
const RECENT: usize = 4;

impl Replica {
    /// A request from a client, or forwarded by a backup to the primary.
    pub(crate) fn on_request(&mut self, from: Dest, u: &Arc<Update>) -> bool {
        match from {
            Dest::Client(c) if c != u.client => return false,
            Dest::Replica(j) if j >= self.n() || j == self.cfg.id => return false,
            _ => {}
        }
        let last = self.state.last_ts(u.client);
        if u.ts <= last {
            if matches!(from, Dest::Client(_)) && u.ts == last {
                self.resend_reply(u.client);
            }
            return true;
        }
        let leading = self.active && self.is_primary();
        let known = if leading {
            self.assigned.get(&u.client).is_some_and(|&t| t >= u.ts)
                || self
                    .pool
                    .iter()
                    .any(|p| p.client == u.client && p.ts >= u.ts)
        } else {
            self.pending
                .get(&u.client)
                .is_some_and(|p| p.ts > u.ts || **p == **u)
        };
        if !known {
            if !self.client_sigs.verify(&mut self.crypto, u) {
                return false;
            }
            if leading {
                self.pool.retain(|p| p.client != u.client);
                self.pool.push_back(u.clone());
                self.try_issue();
                return true;
            }
            self.pending.insert(u.client, u.clone());
        }
        if !leading && self.active {
            if matches!(from, Dest::Client(_)) {
                let primary = self.primary_of(self.view);
                self.send(Dest::Replica(primary), Message::Request(u.clone()));
            }
            self.start_request_timer();
        }
        true
    }

    /// A read-only request: answered from the current state, without ordering.
    pub(crate) fn on_read(&mut self, client: ClientId, u: &Arc<Update>) -> bool {
        let Op::Get { key } = &u.op else {
            return false;
        };
        if u.client != client
            || !self
                .crypto
                .verify_client(client, &u.signing_bytes(), &u.sig)
        {
            return false;
        }
        self.stats.reads += 1;
        let result = self.state.read(key);
        self.reply(client, u.ts, true, result);
        true
    }

    fn reply(&mut self, client: ClientId, ts: u64, read: bool, result: Vec<u8>) {
        let mut r = Reply {
            view: self.view,
            client,
            ts,
            replica: self.cfg.id,
            read,
            result,
            sig: Vec::new(),
        };
        r.sig = self.sign(&r.signing_bytes());
        self.send(Dest::Client(client), Message::Reply(Arc::new(r)));
    }

    /// Answer a retransmitted request that was already executed.
    fn resend_reply(&mut self, client: ClientId) {
        if let Some((ts, result)) = self.state.last_result(client) {
            let result = result.to_vec();
            self.reply(client, ts, false, result);
        }
    }

    /// The primary assigns sequence numbers to waiting requests while the water marks and
    /// the pipeline allow.
    pub(crate) fn try_issue(&mut self) {
        if !self.active || !self.is_primary() || !self.acts_as_primary() {
            return;
        }
        loop {
            let in_flight = self.next_seq.saturating_sub(self.executed + 1);
            if !self.in_window(self.next_seq) || in_flight >= self.cfg.pipeline.max(1) {
                return;
            }
            let mut batch: Vec<Arc<Update>> = Vec::new();
            while batch.len() < self.cfg.batch.max(1) {
                let Some(u) = self.pool.pop_front() else {
                    break;
                };
                let assigned = self.assigned.get(&u.client).copied().unwrap_or(0);
                if let Some(h) = &self.cfg.primary_hook {
                    if !h.admits(&u) {
                        continue;
                    }
                    if h.fakes_progress() {
                        self.pool.push_front(u);
                        break; // the batch stays empty
                    }
                }
                if u.ts > self.state.last_ts(u.client) && u.ts > assigned {
                    self.assigned.insert(u.client, u.ts);
                    batch.push(u);
                }
            }
            let faking = self
                .cfg
                .primary_hook
                .as_ref()
                .is_some_and(|h| h.fakes_progress())
                && !self.pool.is_empty();
            if batch.is_empty() && !faking {
                return;
            }
            if !self.issue(batch) {
                return;
            }
        }
    }

    /// Pre-prepares `batch` at the next sequence number; false (the batch back in the pool)
    /// if the ledger holds a different Pre-Prepare of this view there.
    fn issue(&mut self, batch: Vec<Arc<Update>>) -> bool {
        let (view, seq, digest) = (self.view, self.next_seq, batch_digest(&batch));
        if !self.cast_vote(VOTE_PRE_PREPARE, seq, view, digest) {
            for u in batch.into_iter().rev() {
                self.assigned.remove(&u.client);
                self.pool.push_front(u);
            }
            return false;
        }
        let mut pp = PrePrepare {
            view,
            seq,
            digest,
            replica: self.cfg.id,
            batch,
            sig: Vec::new(),
        };
        pp.sig = self.sign(&pp.signing_bytes());
        self.next_seq += 1;
        let pp = Arc::new(pp);
        self.persist_own_pre_prepare(&pp);
        self.broadcast(Message::PrePrepare(pp.clone()));
        for u in &pp.batch {
            if self.recent.len() >= RECENT {
                self.recent.pop_front();
            }
            self.recent.push_back(u.clone());
        }
        self.accept_pre_prepare(pp);
        true
    }

    /// PRE-PREPARE of the current view's primary, from the primary or forwarded by a peer
    /// (its signature makes it self-verifying).
    pub(crate) fn on_pre_prepare(&mut self, from: u32, pp: &Arc<PrePrepare>) -> bool {
        if pp.replica == from {
            self.saw_view(from, pp.view);
        }
        if !self.active || pp.view != self.view || pp.seq <= self.executed {
            return true; // another view, or late: nothing to do now
        }
        if pp.replica != self.primary_of(self.view)
            || !self.in_window(pp.seq)
            || pp.batch.is_empty()
            || pp.batch.len() > self.cfg.batch.max(1)
        {
            return false;
        }
        if let Some(have) = self.log.get(&pp.seq).and_then(|s| s.pp.as_ref()) {
            if have.view == pp.view {
                return have.digest == pp.digest; // a duplicate, or equivocation
            }
        }
        if !pp.batch_matches() || !self.verify(pp.replica, &pp.signing_bytes(), &pp.sig) {
            return false;
        }
        for u in &pp.batch {
            if !self.client_sigs.verify(&mut self.crypto, u) {
                return false;
            }
        }
        self.accept_pre_prepare(pp.clone());
        true
    }

    /// Install a Pre-Prepare of the current view (normal case or New-View) and prepare it.
    pub(crate) fn accept_pre_prepare(&mut self, pp: Arc<PrePrepare>) {
        let (view, seq, digest) = (pp.view, pp.seq, pp.digest);
        let backup = self.primary_of(view) != self.cfg.id;
        // A backup that prepared another batch here (before a crash) neither prepares nor
        // installs this one.
        if backup && !self.cast_vote(VOTE_PREPARE, seq, view, digest) {
            return;
        }
        let slot = self.log.entry(seq).or_default();
        slot.pp = Some(pp);
        slot.prepares
            .retain(|_, p| p.view == view && p.digest == digest);
        slot.commits
            .retain(|_, c| c.view == view && c.digest == digest);
        if backup {
            let mut p = Prepare {
                view,
                seq,
                digest,
                replica: self.cfg.id,
                sig: Vec::new(),
            };
            p.sig = self.sign(&p.signing_bytes());
            let p = Arc::new(p);
            if let Some(slot) = self.log.get_mut(&seq) {
                slot.prepares.insert(self.cfg.id, p.clone());
            }
            self.broadcast(Message::Prepare(p));
        }
        self.check_prepared(seq);
    }

    /// PREPARE from a backup.
    pub(crate) fn on_prepare(&mut self, from: u32, p: &Arc<Prepare>) -> bool {
        if p.replica != from {
            return false;
        }
        self.saw_view(from, p.view);
        if !self.active || p.view != self.view || p.seq <= self.executed {
            return true;
        }
        if from == self.primary_of(self.view) || !self.in_window(p.seq) {
            return false;
        }
        if let Some(slot) = self.log.get(&p.seq) {
            if slot
                .prepares
                .get(&from)
                .is_some_and(|q| q.view == p.view && q.digest == p.digest)
                || slot
                    .prepared
                    .as_ref()
                    .is_some_and(|c| c.pre_prepare.view == p.view)
            {
                return true; // duplicate, or already prepared: no need to check it
            }
            if slot
                .pp
                .as_ref()
                .is_some_and(|pp| pp.view == p.view && pp.digest != p.digest)
            {
                return true; // for another Pre-Prepare of an equivocating primary
            }
        }
        if !self.verify(from, &p.signing_bytes(), &p.sig) {
            return false;
        }
        self.log
            .entry(p.seq)
            .or_default()
            .prepares
            .insert(from, p.clone());
        self.check_prepared(p.seq);
        true
    }

    /// prepared(m, v, n, i): the Pre-Prepare and a quorum minus one matching Prepares from
    /// distinct backups. Sends the Commit.
    fn check_prepared(&mut self, seq: u64) {
        let need = self.quorum() - 1;
        let Some(slot) = self.log.get_mut(&seq) else {
            return;
        };
        let Some(pp) = slot.pp.clone() else {
            return;
        };
        let primary = {
            let n = self.cfg.sites.len().max(1) as u64;
            ((u64::from(self.cfg.primary) + pp.view % n) % n) as u32
        };
        if slot
            .prepared
            .as_ref()
            .is_none_or(|c| c.pre_prepare.view < pp.view)
        {
            let matching: Vec<Arc<Prepare>> = slot
                .prepares
                .values()
                .filter(|p| p.view == pp.view && p.digest == pp.digest && p.replica != primary)
                .take(need)
                .cloned()
                .collect();
            if matching.len() < need {
                return;
            }
            let cert = PreparedCert {
                pre_prepare: pp.clone(),
                prepares: matching,
            };
            slot.prepared = Some(cert.clone());
            // Durable before the Commit leaves: a restarted replica's View-Changes still
            // report it.
            self.persist_prepared(&cert);
        }
        let Some(slot) = self.log.get(&seq) else {
            return;
        };
        if slot.commit_sent != Some(pp.view)
            && pp.view == self.view
            && self.active
            && self.cast_vote(VOTE_COMMIT, seq, pp.view, pp.digest)
        {
            let Some(slot) = self.log.get_mut(&seq) else {
                return;
            };
            slot.commit_sent = Some(pp.view);
            let mut c = Commit {
                view: pp.view,
                seq,
                digest: pp.digest,
                replica: self.cfg.id,
                sig: Vec::new(),
            };
            c.sig = self.crypto.sign(&c.signing_bytes());
            let c = Arc::new(c);
            slot.commits.insert(self.cfg.id, c.clone());
            slot.commits_checked.insert(self.cfg.id);
            self.broadcast(Message::Commit(c));
        }
        self.check_committed(seq);
    }

    /// COMMIT from any replica.
    pub(crate) fn on_commit(&mut self, from: u32, c: &Arc<Commit>) -> bool {
        if c.replica != from {
            return false;
        }
        self.saw_view(from, c.view);
        // After the decision a Commit is still kept until the certificate is checked: it may
        // replace a badly signed one (`transferable_proof`).
        let (decided, checked, duplicate) =
            self.log.get(&c.seq).map_or((false, false, false), |s| {
                let dup = s
                    .commits
                    .get(&from)
                    .is_some_and(|d| d.view == c.view && d.digest == c.digest);
                (s.committed.is_some(), s.committed_checked, dup)
            });
        let unchecked_certificate = decided && !checked;
        if !self.active || c.view != self.view || (c.seq <= self.executed && !unchecked_certificate)
        {
            return true;
        }
        if !self.in_window(c.seq) {
            return false;
        }
        if (decided && checked) || duplicate {
            return true;
        }
        // The Commit counts toward this replica's own decision on the sender's authenticated
        // channel alone (c.replica == from): only a copy forwarded in a commit certificate has
        // to prove itself to a third party, so its signature is checked when a certificate goes
        // to another replica (`transferable_proof`), once. That spares 2f signature checks per
        // slot and replica. A replica caught with a bad one has its Commits checked here.
        let checked = self.distrusted_commits.contains(&from);
        if checked && !self.verify(from, &c.signing_bytes(), &c.sig) {
            return false;
        }
        let slot = self.log.entry(c.seq).or_default();
        slot.commits.insert(from, c.clone());
        if checked {
            slot.commits_checked.insert(from);
        } else {
            slot.commits_checked.remove(&from);
        }
        self.check_committed(c.seq);
        true
    }

    /// The slot's commit certificate with every signature checked, for another replica. Each
    /// Commit is checked once; a bad one is dropped, its sender's later Commits are checked on
    /// arrival, and it is replaced by another matching Commit if there is one. `None` without
    /// a certificate or when fewer than a quorum of good Commits remain.
    pub(crate) fn transferable_proof(&mut self, seq: u64) -> Option<Arc<CommitProof>> {
        let slot = self.log.get(&seq)?;
        let proof = slot.committed.clone()?;
        if slot.committed_checked {
            return Some(proof);
        }
        let (view, digest) = (proof.pre_prepare.view, proof.pre_prepare.digest);
        let mut candidates = proof.commits.clone();
        for c in slot.commits.values() {
            if c.view == view
                && c.digest == digest
                && !candidates.iter().any(|x| x.replica == c.replica)
            {
                candidates.push(c.clone());
            }
        }
        let checked = slot.commits_checked.clone();
        let q = self.quorum();
        let (mut good, mut bad) = (Vec::new(), Vec::new());
        for c in candidates {
            if good.len() == q {
                break;
            }
            if checked.contains(&c.replica) || self.verify(c.replica, &c.signing_bytes(), &c.sig) {
                good.push(c);
            } else {
                bad.push(c.replica);
            }
        }
        self.stats.bad_commit_signatures += bad.len() as u64;
        self.distrusted_commits.extend(bad.iter().copied());
        let slot = self.log.get_mut(&seq)?;
        for r in &bad {
            slot.commits.remove(r);
            slot.commits_checked.remove(r);
        }
        slot.commits_checked.extend(good.iter().map(|c| c.replica));
        if good.len() < q {
            return None;
        }
        let proof = if bad.is_empty() {
            proof
        } else {
            Arc::new(CommitProof {
                pre_prepare: proof.pre_prepare.clone(),
                commits: good,
            })
        };
        slot.committed = Some(proof.clone());
        slot.committed_checked = true;
        Some(proof)
    }

    /// committed-local(m, v, n, i): prepared in view v and a quorum of matching Commits. A
    /// quorum of matching signed Commits is also a commit certificate by itself (at least f+1
    /// correct replicas prepared), so a replica that missed Prepares decides with the
    /// Pre-Prepare alone; one that missed the Pre-Prepare asks its peers at once.
    fn check_committed(&mut self, seq: u64) {
        let q = self.quorum();
        let Some(slot) = self.log.get_mut(&seq) else {
            return;
        };
        if slot.committed.is_some() {
            return;
        }
        let mut by: BTreeMap<(u64, Digest), Vec<Arc<Commit>>> = BTreeMap::new();
        for c in slot.commits.values() {
            by.entry((c.view, c.digest)).or_default().push(c.clone());
        }
        let Some(((view, digest), mut commits)) = by.into_iter().find(|(_, v)| v.len() >= q) else {
            return;
        };
        commits.truncate(q);
        let pp = match (&slot.prepared, &slot.pp) {
            (Some(c), _) if c.pre_prepare.view == view && c.pre_prepare.digest == digest => {
                c.pre_prepare.clone()
            }
            (_, Some(pp)) if pp.digest == digest => pp.clone(),
            _ => {
                self.ask_for_help();
                return;
            }
        };
        slot.committed = Some(Arc::new(CommitProof {
            pre_prepare: pp,
            commits,
        }));
        self.execute_ready();
    }

    /// Execute committed batches in sequence-number order; reply, checkpoint, move timers.
    pub(crate) fn execute_ready(&mut self) {
        let before = self.executed;
        loop {
            let n = self.executed + 1;
            let Some(proof) = self.log.get(&n).and_then(|s| s.committed.clone()) else {
                break;
            };
            self.executed = n;
            for (index, u) in proof.pre_prepare.batch.iter().enumerate() {
                if let Some(result) = self.state.execute(u) {
                    self.stats.executed += 1;
                    self.out.push(Action::Executed(Executed {
                        seq: n,
                        index: index as u32,
                        client: u.client,
                        ts: u.ts,
                        digest: u.digest(),
                        result: steward_crypto::sha256(&result),
                    }));
                    self.reply(u.client, u.ts, false, result);
                }
            }
            if n % self.cfg.checkpoint_interval.max(1) == 0 {
                self.take_checkpoint(n);
            }
        }
        if self.executed > before {
            self.after_progress();
        }
        // A later slot is decided but this one is not: something was lost.
        if self
            .log
            .range(self.executed + 2..)
            .any(|(_, s)| s.committed.is_some())
        {
            self.ask_for_help();
        }
    }

    /// Send Status at once (at most four times per tick period) instead of waiting for the
    /// tick to notice being stuck.
    fn ask_for_help(&mut self) {
        if self.now.saturating_sub(self.last_help) >= self.cfg.tick / 4 {
            self.last_help = self.now;
            self.send_status();
        }
    }

    /// After execution moved: forget satisfied requests, reset the view timer, issue more.
    pub(crate) fn after_progress(&mut self) {
        self.progress_at = self.now;
        let state = &self.state;
        self.pending.retain(|c, u| u.ts > state.last_ts(*c));
        if self.active {
            // Progress in the current view; catching up while waiting for a New-View is not.
            self.view_timeout = self.cfg.view_change_timeout;
        }
        if let Some((c, ts)) = self.timed {
            if self.state.last_ts(c) >= ts {
                self.stop_view_timer();
            }
        }
        self.start_request_timer();
        self.try_issue();
    }

    /// A backup that waits for a request starts the view timer, if it is not running.
    pub(crate) fn start_request_timer(&mut self) {
        if !self.active || self.is_primary() || self.timed.is_some() {
            return;
        }
        let Some((c, u)) = self.pending.iter().next() else {
            return;
        };
        self.timed = Some((*c, u.ts));
        let after = self.view_timeout;
        self.arm_view_timer(after);
    }
}
