//! Checkpoints and garbage collection (OSDI'99 §4.3), state transfer (TOCS §5.3, in its
//! simplest form: the whole state at a certified checkpoint), and the status-driven
//! retransmission that brings a replica that missed messages up to date.
//!
//! A replica that executes a multiple of `K` multicasts a signed Checkpoint with the digest of
//! its state; a quorum of matching Checkpoints makes it stable: the low water mark moves there
//! and everything below is discarded. A replica that sees a certified checkpoint above its own
//! execution point, and does not get there by itself, fetches that state (with its certificate)
//! from one of the signers in turn. A stuck replica sends `Status` to f+1 peers in turn; they
//! answer with what it misses: the New-View of a later view, their stable certificate, commit
//! certificates, or the primary's Pre-Prepare and their own Prepare / Commit of the current
//! view.

use std::collections::BTreeMap;
use std::sync::Arc;

use bft_core::request::Digest;

use super::{Dest, Lag, Replica, Stable};
use crate::msg::{
    Checkpoint, CommitProof, FetchState, Message, Snapshot, StableProof, StateTransfer, Status,
};
use crate::state::ServiceState;

/// Most sequence numbers one Status answer covers.
const CATCH_UP: usize = 64;

impl Replica {
    /// Checkpoint messages kept per replica above the stable checkpoint.
    fn checkpoints_per_replica(&self) -> usize {
        (self.cfg.log_size / self.cfg.checkpoint_interval.max(1)) as usize + 4
    }

    pub(crate) fn take_checkpoint(&mut self, seq: u64) {
        let snapshot = Arc::new(self.state.snapshot());
        let digest = snapshot.digest();
        self.snapshots.insert(seq, (digest, snapshot));
        let mut c = Checkpoint {
            seq,
            state: digest,
            replica: self.cfg.id,
            sig: Vec::new(),
        };
        c.sig = self.sign(&c.signing_bytes());
        let c = Arc::new(c);
        self.checkpoints
            .entry(seq)
            .or_default()
            .insert(self.cfg.id, c.clone());
        self.broadcast(Message::Checkpoint(c));
        self.check_stable(seq);
    }

    /// CHECKPOINT from a peer.
    pub(crate) fn on_checkpoint(&mut self, from: u32, c: &Arc<Checkpoint>) -> bool {
        if c.replica != from || c.seq == 0 || c.seq % self.cfg.checkpoint_interval.max(1) != 0 {
            return false;
        }
        if c.seq <= self.stable.seq {
            return true;
        }
        if self
            .checkpoints
            .get(&c.seq)
            .and_then(|m| m.get(&from))
            .is_some_and(|have| have == c)
        {
            return true;
        }
        if !self.verify(from, &c.signing_bytes(), &c.sig) {
            return false;
        }
        self.insert_checkpoint(c.clone());
        self.check_stable(c.seq);
        true
    }

    /// Store a verified Checkpoint, keeping at most a few per replica (the highest).
    fn insert_checkpoint(&mut self, c: Arc<Checkpoint>) {
        let who = c.replica;
        self.checkpoints.entry(c.seq).or_default().insert(who, c);
        let keep = self.checkpoints_per_replica();
        let mine: Vec<u64> = self
            .checkpoints
            .iter()
            .filter(|(_, m)| m.contains_key(&who))
            .map(|(s, _)| *s)
            .collect();
        for s in mine.iter().take(mine.len().saturating_sub(keep)) {
            if let Some(m) = self.checkpoints.get_mut(s) {
                m.remove(&who);
                if m.is_empty() {
                    self.checkpoints.remove(s);
                }
            }
        }
    }

    /// A quorum of matching Checkpoints for `seq`: stable if we are there with the same
    /// state; otherwise we are behind and remember the certificate for state transfer.
    fn check_stable(&mut self, seq: u64) {
        let q = self.quorum();
        let Some(by) = self.checkpoints.get(&seq) else {
            return;
        };
        let mut groups: BTreeMap<Digest, Vec<Arc<Checkpoint>>> = BTreeMap::new();
        for c in by.values() {
            groups.entry(c.state).or_default().push(c.clone());
        }
        let Some((digest, mut proof)) = groups.into_iter().find(|(_, v)| v.len() >= q) else {
            return;
        };
        proof.truncate(q);
        if self.executed >= seq {
            if let Some((d, snap)) = self.snapshots.get(&seq).cloned() {
                if d == digest {
                    self.make_stable(seq, proof, Some(snap));
                }
            }
            return;
        }
        if self.lag.as_ref().is_none_or(|l| l.seq < seq) {
            self.lag = Some(Lag {
                seq,
                proof,
                next: 0,
                since: self.now,
            });
        }
        if seq >= self.stable.seq.saturating_add(self.cfg.log_size) {
            self.fetch_state();
        }
    }

    /// Move the low water mark to `seq` and discard everything below.
    pub(crate) fn make_stable(
        &mut self,
        seq: u64,
        proof: Vec<Arc<Checkpoint>>,
        snapshot: Option<Arc<Snapshot>>,
    ) {
        if seq <= self.stable.seq {
            return;
        }
        self.stable = Stable {
            seq,
            proof,
            snapshot,
        };
        self.stats.stable_checkpoints += 1;
        self.log = self.log.split_off(&(seq + 1));
        self.checkpoints = self.checkpoints.split_off(&(seq + 1));
        self.snapshots = self.snapshots.split_off(&(seq + 1));
        if self.lag.as_ref().is_some_and(|l| l.seq <= self.executed) {
            self.lag = None;
        }
        self.persist_stable();
        self.try_issue();
    }

    /// On the tick: still behind a certified checkpoint after a whole period? Fetch it.
    pub(crate) fn maybe_fetch_state(&mut self) {
        let Some(lag) = &self.lag else {
            return;
        };
        if lag.seq <= self.executed {
            self.lag = None;
            return;
        }
        let idle = self.now.saturating_sub(self.progress_at) >= self.cfg.tick / 2;
        if idle && self.now.saturating_sub(lag.since) >= self.cfg.tick / 2 {
            self.fetch_state();
        }
    }

    /// Ask the next signer of the lag certificate for a newer state.
    fn fetch_state(&mut self) {
        let me = self.cfg.id;
        let executed = self.executed;
        let Some(lag) = &mut self.lag else {
            return;
        };
        let signers: Vec<u32> = lag
            .proof
            .iter()
            .map(|c| c.replica)
            .filter(|r| *r != me)
            .collect();
        if signers.is_empty() {
            return;
        }
        let to = signers[lag.next % signers.len()];
        lag.next += 1;
        self.send(
            Dest::Replica(to),
            Message::FetchState(Arc::new(FetchState { executed })),
        );
    }

    /// At most four answers of each kind (`Status`: 0, `FetchState`: 1) per peer and tick
    /// period.
    fn rate_limited(&mut self, peer: u32, kind: u8) -> bool {
        let last = self.answered.get(&(peer, kind)).copied();
        if last.is_some_and(|t| self.now.saturating_sub(t) < self.cfg.tick / 4) {
            return true;
        }
        self.answered.insert((peer, kind), self.now);
        false
    }

    /// FETCH-STATE: send the stable state with its certificate if it is newer.
    pub(crate) fn on_fetch_state(&mut self, from: u32, f: &FetchState) -> bool {
        if self.stable.seq <= f.executed || self.rate_limited(from, 1) {
            return true;
        }
        if let Some(snapshot) = &self.stable.snapshot {
            let st = StateTransfer {
                seq: self.stable.seq,
                snapshot: (**snapshot).clone(),
                proof: self.stable.proof.clone(),
            };
            self.send(Dest::Replica(from), Message::State(Arc::new(st)));
        }
        true
    }

    /// A quorum of valid Checkpoints from distinct replicas for (`seq`, `digest`).
    pub(crate) fn verify_stable_proof(
        &mut self,
        seq: u64,
        digest: &Digest,
        proof: &[Arc<Checkpoint>],
    ) -> bool {
        let q = self.quorum();
        if proof.len() < q || proof.len() > self.n() as usize {
            return false;
        }
        let mut seen = std::collections::BTreeSet::new();
        for c in proof {
            if c.seq != seq
                || c.state != *digest
                || c.replica >= self.n()
                || !seen.insert(c.replica)
            {
                return false;
            }
        }
        proof
            .iter()
            .all(|c| self.verify(c.replica, &c.signing_bytes(), &c.sig))
    }

    /// STATE: install a certified state newer than ours.
    pub(crate) fn on_state(&mut self, st: &StateTransfer) -> bool {
        if st.seq <= self.executed {
            return true;
        }
        if st.seq % self.cfg.checkpoint_interval.max(1) != 0 {
            return false;
        }
        let digest = st.snapshot.digest();
        if !self.verify_stable_proof(st.seq, &digest, &st.proof) {
            return false;
        }
        let Ok(state) = ServiceState::from_snapshot(&st.snapshot) else {
            return false;
        };
        self.state = state;
        self.executed = st.seq;
        self.stats.state_transfers += 1;
        if st.seq > self.stable.seq {
            self.make_stable(
                st.seq,
                st.proof.clone(),
                Some(Arc::new(st.snapshot.clone())),
            );
        } else {
            // The stable certificate was adopted from a New-View; now we hold its state.
            self.stable.snapshot = Some(Arc::new(st.snapshot.clone()));
            self.log = self.log.split_off(&(st.seq + 1));
            self.persist_stable();
        }
        if self.lag.as_ref().is_some_and(|l| l.seq <= self.executed) {
            self.lag = None;
        }
        self.next_seq = self.next_seq.max(self.executed + 1);
        self.after_progress();
        self.execute_ready();
        true
    }

    /// A peer's stable certificate: learn that we are behind.
    pub(crate) fn on_stable_proof(&mut self, p: &StableProof) -> bool {
        let Some(first) = p.checkpoints.first() else {
            return false;
        };
        let (seq, digest) = (first.seq, first.state);
        if seq <= self.stable.seq || seq <= self.executed {
            return true;
        }
        if seq % self.cfg.checkpoint_interval.max(1) != 0
            || !self.verify_stable_proof(seq, &digest, &p.checkpoints)
        {
            return false;
        }
        for c in &p.checkpoints {
            if c.replica != self.cfg.id {
                self.insert_checkpoint(c.clone());
            }
        }
        self.check_stable(seq);
        true
    }

    /// A committed certificate from a peer: decide the slot and execute.
    pub(crate) fn on_commit_proof(&mut self, p: &Arc<CommitProof>) -> bool {
        let pp = &p.pre_prepare;
        if pp.seq <= self.executed {
            return true;
        }
        if !self.in_window(pp.seq) {
            return false;
        }
        if self.log.get(&pp.seq).is_some_and(|s| s.committed.is_some()) {
            return true;
        }
        let q = self.quorum();
        if !pp.batch_matches()
            || pp.batch.len() > self.cfg.batch.max(1)
            || p.commits.len() < q
            || p.commits.len() > self.n() as usize
        {
            return false;
        }
        let mut seen = std::collections::BTreeSet::new();
        for c in &p.commits {
            if c.seq != pp.seq
                || c.view != pp.view
                || c.digest != pp.digest
                || c.replica >= self.n()
                || !seen.insert(c.replica)
            {
                return false;
            }
        }
        if !p
            .commits
            .iter()
            .all(|c| self.verify(c.replica, &c.signing_bytes(), &c.sig))
        {
            return false;
        }
        let slot = self.log.entry(pp.seq).or_default();
        slot.committed = Some(p.clone());
        slot.committed_checked = true;
        self.stats.commit_proofs += 1;
        self.execute_ready();
        true
    }

    /// On the tick: resend what may have been lost, and ask for help when stuck.
    pub(crate) fn retransmit(&mut self) {
        if !self.active {
            let mine = self
                .view_changes
                .get(&self.view)
                .and_then(|m| m.get(&self.cfg.id))
                .cloned();
            let primary = self.primary_of(self.view);
            if let (Some(vc), false) = (mine, primary == self.cfg.id) {
                self.send(Dest::Replica(primary), Message::ViewChange(vc));
            }
            self.send_status();
            return;
        }
        let view = self.view;
        let f = self.cfg.f as usize;
        let ahead = self.seen_views.values().filter(|v| **v > view).count();
        let known_work = self
            .log
            .range(self.executed + 1..)
            .any(|(_, s)| s.pp.is_some() || !s.prepares.is_empty() || !s.commits.is_empty())
            || !self.pending.is_empty()
            || self.lag.is_some();
        let stuck = known_work && self.now.saturating_sub(self.progress_at) >= self.cfg.tick / 2;
        if stuck || ahead > f || self.waiting_new_view.is_some() {
            self.send_status();
        }
    }

    /// Status to f+1 peers in turn (and to the primary of the view being entered).
    pub(crate) fn send_status(&mut self) {
        let s = Message::Status(Arc::new(Status {
            view: self.view,
            active: self.active,
            stable: self.stable.seq,
            executed: self.executed,
        }));
        self.stats.status_sent += 1;
        let others: Vec<u32> = (0..self.n()).filter(|i| *i != self.cfg.id).collect();
        if others.is_empty() {
            return;
        }
        let k = (self.cfg.f as usize + 1).min(others.len());
        let start = self.status_round as usize * k;
        self.status_round = self.status_round.wrapping_add(1);
        let mut targets: Vec<u32> = (0..k).map(|i| others[(start + i) % others.len()]).collect();
        let leader = match &self.waiting_new_view {
            Some(nv) => nv.replica,
            None => self.primary_of(self.view),
        };
        if leader != self.cfg.id && !targets.contains(&leader) {
            targets.push(leader);
        }
        for t in targets {
            self.send(Dest::Replica(t), s.clone());
        }
    }

    /// STATUS from a stuck peer: send what it misses.
    pub(crate) fn on_status(&mut self, from: u32, s: &Status) -> bool {
        if self.rate_limited(from, 0) {
            return true;
        }
        if self.active && (s.view < self.view || (s.view == self.view && !s.active)) {
            if let Some((nv, vcs)) = self.new_view.clone() {
                for vc in vcs {
                    self.send(Dest::Replica(from), Message::ViewChange(vc));
                }
                self.send(Dest::Replica(from), Message::NewView(nv));
            }
        }
        if s.executed < self.stable.seq && !self.stable.proof.is_empty() {
            let proof = StableProof {
                checkpoints: self.stable.proof.clone(),
            };
            self.send(Dest::Replica(from), Message::StableProof(Arc::new(proof)));
        }
        let same_view = self.active && s.active && s.view == self.view;
        let first = s.executed.max(self.stable.seq).saturating_add(1);
        let mut sends: Vec<Message> = Vec::new();
        let seqs: Vec<u64> = self
            .log
            .range(first..)
            .take(CATCH_UP)
            .map(|(n, _)| *n)
            .collect();
        for n in seqs {
            if let Some(proof) = self.transferable_proof(n) {
                sends.push(Message::CommitProof(proof));
                continue;
            }
            let Some(slot) = self.log.get(&n) else {
                continue;
            };
            if !same_view {
                continue;
            }
            // The primary's signed Pre-Prepare is self-verifying: any replica may forward it.
            if let Some(pp) = slot.pp.as_ref().filter(|pp| pp.view == self.view) {
                sends.push(Message::PrePrepare(pp.clone()));
            }
            if let Some(p) = slot
                .prepares
                .get(&self.cfg.id)
                .filter(|p| p.view == self.view)
            {
                sends.push(Message::Prepare(p.clone()));
            }
            if let Some(c) = slot
                .commits
                .get(&self.cfg.id)
                .filter(|c| c.view == self.view)
            {
                sends.push(Message::Commit(c.clone()));
            }
        }
        for m in sends {
            self.send(Dest::Replica(from), m);
        }
        true
    }
}
