//! THRESHOLD-SIGN (TDSC Fig. A-9): every server sends its share to the site; the representative
//! combines the first 2f+1, checks the result, and only if that fails checks each share's proof,
//! blacklists the bad signers and tells the site (Corrupted_Server).
//!
//! Shares travel without their proofs (one exponentiation instead of three): a proof is made
//! only when the representative asks for it (ProofRequest) because a combine failed. A share
//! without a proof is never evidence against its sender; a malformed share, or one whose proof
//! fails, is. A signer whose unproven share was in a failed combine is distrusted until it
//! proves one: its unproven shares are left out and its proofs asked for at once, so a silent
//! signer cannot stall the site (see `try_combine`); once the slot combines, its unproven
//! share is tried with good ones, and the representative blacklists it if that fails.

use std::sync::Arc;

use steward_config::{ServerId, SiteId};

use super::designated::designated_kind;
use super::{ProposalRoute, Replica};
use crate::crypto::ShareForm;
use crate::msg::{
    Accept, CorruptedServer, Digest, Message, PartialSig, ProofRequest, Proposal, SigKind,
};
use crate::replica::Dest;

fn content_digest(bytes: &[u8]) -> Digest {
    steward_crypto::sha256(bytes)
}

/// Keep the own Partial_Sig for retransmissions and proof requests (only the representative
/// gets it back through the loopback, which also counts its share).
fn set_own_partial(r: &mut Replica, key: (SigKind, u64, Digest), p: &Arc<PartialSig>) {
    if let Some(set) = r.shares.get_mut(&key) {
        set.partials.entry(p.server).or_insert_with(|| p.clone());
    }
}

impl Replica {
    /// Produce and send the own share of the site signature on `content`.
    pub(crate) fn threshold_sign(
        &mut self,
        kind: SigKind,
        gv: u64,
        lv: u64,
        seq: u64,
        content: Vec<u8>,
    ) {
        let digest = content_digest(&content);
        if self.excused(kind, seq) {
            self.withhold_share((kind, seq, digest), (gv, lv), content);
            return;
        }
        let partial = self.sign_own_partial((kind, seq, digest), (gv, lv), &content);
        let backed_up = self.is_rep() && designated_kind(kind);
        let now = self.now;
        let set = self.shares.entry((kind, seq, digest)).or_default();
        set.content = Some(content);
        set.withheld = None;
        if backed_up {
            set.own_at = Some(now);
        }
        set_own_partial(self, (kind, seq, digest), &partial);
        self.send_to_rep(Message::PartialSig(partial));
        if backed_up {
            self.arm_share_backup();
        }
    }

    /// This server's share on `content`, without a proof, in a signed Partial_Sig.
    pub(crate) fn sign_own_partial(
        &mut self,
        (kind, seq, digest): (SigKind, u64, Digest),
        (gv, lv): (u64, u64),
        content: &[u8],
    ) -> Arc<PartialSig> {
        let mut partial = PartialSig {
            server: self.cfg.id.index,
            kind,
            gv,
            lv,
            seq,
            content: digest,
            share: self.crypto.share(content),
            sig: Vec::new(),
        };
        partial.sig = self.crypto.sign(&partial.signing_bytes());
        Arc::new(partial)
    }

    /// Shares go to the own representative only: it is the only server that combines, and
    /// after a local view change the retransmissions (`resend_share`) reach the new one.
    fn send_to_rep(&mut self, msg: Message) {
        let rep = self.rep_of(self.site());
        self.send(Dest::Server(rep), msg);
    }

    /// The share sets of `kind` for the slots `seqs`, whatever their content.
    pub(crate) fn share_sets(
        &self,
        kind: SigKind,
        seqs: std::ops::RangeInclusive<u64>,
    ) -> std::collections::btree_map::Range<'_, (SigKind, u64, Digest), super::ShareSet> {
        let (lo, hi) = seqs.into_inner();
        self.shares
            .range((kind, lo, [0; 32])..=(kind, hi, [0xff; 32]))
    }

    /// Send the own share for (kind, seq) again (retransmission).
    pub(crate) fn resend_share(&mut self, kind: SigKind, seq: u64) {
        let me = self.cfg.id.index;
        // A withheld share is signed now: a new representative, or one that lost a share,
        // may need it, and a signer that lacks the Proposal says so by sending its share.
        let withheld: Vec<(SigKind, u64, Digest)> = self
            .share_sets(kind, seq..=seq)
            .filter(|(_, set)| set.withheld.is_some())
            .map(|(key, _)| *key)
            .collect();
        for key in withheld {
            self.release_withheld(key);
        }
        let mine: Vec<Arc<PartialSig>> = self
            .share_sets(kind, seq..=seq)
            .filter_map(|(_, set)| set.partials.get(&me).cloned())
            .collect();
        for p in mine {
            self.send_to_rep(Message::PartialSig(p));
        }
    }

    /// A site peer's share. Before anything is stored the share must fit (sender, kind, views,
    /// window) and its signature must check; each signer then holds at most one share per
    /// kind and slot (a correct one shares one content per kind, slot and view, and a later
    /// view's replaces an earlier's), so junk shares cannot grow this server's memory
    /// (issue #14, attack 6).
    pub(crate) fn on_partial_sig(&mut self, from: ServerId, p: &Arc<PartialSig>) -> bool {
        if from.site != self.site() || from.index != p.server || self.blacklist.contains(&p.server)
        {
            return false;
        }
        self.note_heard(p);
        if p.kind == SigKind::Proposal && from != self.cfg.id && self.answer_late_share(from, p) {
            return true;
        }
        let ordering = matches!(p.kind, SigKind::Proposal | SigKind::Accept);
        if ordering && p.seq <= self.global_aru {
            return true;
        }
        if ordering && !self.global_window_ok(p.seq) {
            return false;
        }

        if !ordering && (p.seq < self.gv || p.seq > self.gv + 2) {
            return p.seq < self.gv;
        }
        // A global-view-change share is for the global view it names; no correct server is
        // more than two global views ahead; an ordering share of an earlier global view can
        // no longer be used (its content would be dropped once signed).
        if (!ordering && p.gv != p.seq) || p.gv > self.gv + 2 {
            return false;
        }
        if ordering && p.gv < self.gv {
            return true;
        }
        let key = (p.kind, p.seq, p.content);
        let site = self.site();
        let proven = self.crypto.share_form(site, &p.share) == ShareForm::Proven;
        if let Some(set) = self.shares.get(&key) {
            if set.done {
                return true;
            }
            if let Some(old) = set.shares.get(&p.server) {
                // Only the proof asked for after a failed combine replaces a share.
                let had_proof = self.crypto.share_form(site, old) == ShareForm::Proven;
                if had_proof || !proven {
                    if p.kind == SigKind::Proposal && self.is_rep() && !proven {
                        self.nudge_missing_signers(p.seq);
                    }
                    return true;
                }
            }
        }
        let earlier = self.signers_other_share(p);
        if earlier.is_some_and(|(_, views)| views > (p.gv, p.lv)) {
            return true; // a late copy of what the signer replaced
        }
        // No signature check: a share comes only from its signer over the signer's own
        // authenticated channel (checked above), is never forwarded, and takes one place per
        // signer, kind and slot (below); the combine, and the proof asked for when it fails,
        // judge the share itself. Checking the signer's signature on junk shares proved
        // nothing the channel does not and cost the representative one verification per junk
        // share: with f = 5 spammers per site that alone halved the throughput.
        if let Some((digest, _)) = earlier {
            self.forget_share(p.kind, p.seq, digest, p.server);
        }
        let f = self.f() as usize;
        let now = self.now;
        let set = self.shares.entry(key).or_default();
        set.shares.insert(p.server, p.share.clone());
        set.partials.insert(p.server, p.clone());
        let own = self.cfg.id.index;
        if set.paced_at.is_none() && set.shares.keys().filter(|i| **i != own).count() >= f {
            set.paced_at = Some(now); // f peers' shares are in
        }
        // A new share is judged afresh; the own one needs no proof.
        set.verified.remove(&p.server);
        if from == self.cfg.id {
            set.verified.insert(p.server);
        }
        if self.is_rep() {
            self.try_combine(key);
        }
        true
    }

    /// A Proposal share for a slot this representative already combined. The first such
    /// share of a signer is the usual late one (2f+1 shares combine; the Proposal went to the
    /// whole site). A second one is the signer's retransmission: it still lacks the Proposal,
    /// whose copy to it was lost, and would soon vote to replace this representative
    /// (the combine deadline of sequencing_watch.rs), so it gets the Proposal again, once per
    /// slot and signer. Returns whether the share was handled here.
    fn answer_late_share(&mut self, from: ServerId, p: &Arc<PartialSig>) -> bool {
        if !self.is_rep() {
            return false;
        }
        let Some(set) = self.shares.get_mut(&(p.kind, p.seq, p.content)) else {
            return false;
        };
        if !set.done {
            return false;
        }
        if set.late.insert(p.server) || !set.answered.insert(p.server) {
            return true;
        }
        let proposal = self
            .local
            .get(&p.seq)
            .and_then(|s| s.proposal.clone())
            .filter(|prop| (prop.gv, prop.lv) == (p.gv, p.lv));
        if let Some(prop) = proposal {
            self.stats.proposals_resent += 1;
            self.send(Dest::Server(from), Message::Proposal(prop));
        }
        true
    }

    /// A signer sent its Proposal share for `seq` again: it is waiting for the Proposal (the
    /// combine deadline of sequencing_watch.rs runs), and this representative still lacks
    /// 2f+1 shares. A server whose share is missing may have lost the Pre-Prepare or the
    /// Prepares it needs, which the periodic retransmission would repair only after 0.5 s:
    /// send each such server the Pre-Prepare now (it answers a duplicate with its Prepare and
    /// share), once per slot.
    fn nudge_missing_signers(&mut self, seq: u64) {
        let Some(slot) = self.local.get_mut(&seq) else {
            return;
        };
        let Some(pp) = slot.pre_prepare.clone().filter(|_| !slot.signers_nudged) else {
            return;
        };
        slot.signers_nudged = true;
        let signed: std::collections::BTreeSet<u32> = self
            .shares
            .iter()
            .filter(|((k, s, _), _)| *k == SigKind::Proposal && *s == seq)
            .flat_map(|(_, set)| set.shares.keys().copied())
            .collect();
        let site = self.site();
        for i in 0..self.site_size(site) {
            if i != self.cfg.id.index && !signed.contains(&i) {
                self.send(
                    Dest::Server(ServerId::new(site, i)),
                    Message::PrePrepare(pp.clone()),
                );
            }
        }
    }

    /// The content digest and views of the share `p`'s signer holds here for another content
    /// of the same kind and slot, if any.
    fn signers_other_share(&self, p: &PartialSig) -> Option<(Digest, (u64, u64))> {
        self.share_sets(p.kind, p.seq..=p.seq)
            .filter(|((_, _, d), _)| *d != p.content)
            .find_map(|((_, _, d), set)| {
                let q = set.partials.get(&p.server)?;
                set.shares
                    .contains_key(&p.server)
                    .then_some((*d, (q.gv, q.lv)))
            })
    }

    /// Drop `server`'s share on (kind, seq, digest), and the set if nothing else is left in it.
    fn forget_share(&mut self, kind: SigKind, seq: u64, digest: Digest, server: u32) {
        let key = (kind, seq, digest);
        let Some(set) = self.shares.get_mut(&key) else {
            return;
        };
        set.shares.remove(&server);
        set.partials.remove(&server);
        set.verified.remove(&server);
        let empty =
            set.shares.is_empty() && set.partials.is_empty() && set.content.is_none() && !set.done;
        if empty {
            self.shares.remove(&key);
        }
    }

    /// Combine when the representative holds the content and 2f+1 usable shares.
    ///
    /// The fast path combines unproven shares of signers not distrusted. When it fails, the
    /// representative asks every signer of an unproven share for its proof and combines as
    /// soon as 2f+1 shares are known good (the own one included), checking each proof once.
    /// It never waits for a particular signer: a Byzantine one that sends wrong shares and
    /// never answers used to stall every slot, and each arriving proof re-checked all proofs
    /// held so far (issue #14, attack 3). Such a signer stays distrusted (its unproven shares
    /// are left out, its proofs asked for at once) until it proves a share or its unproven
    /// share is judged (`judge_suspects`); one whose proof or unproven share fails is
    /// blacklisted.
    pub(crate) fn try_combine(&mut self, key: (SigKind, u64, Digest)) {
        let site = self.site();
        let k = self.crypto.quorum(site);
        let Some(set) = self.shares.get(&key) else {
            return;
        };
        let Some(content) = set.content.clone() else {
            return;
        };
        if set.done || set.shares.len() < k {
            return;
        }
        // Check each proof once.
        let unchecked: Vec<(u32, Vec<u8>)> = set
            .shares
            .iter()
            .filter(|(i, sh)| {
                !set.verified.contains(i) && self.crypto.share_form(site, sh) == ShareForm::Proven
            })
            .map(|(i, sh)| (*i, sh.clone()))
            .collect();
        for (i, share) in unchecked {
            if self.crypto.verify_share(site, i, &content, &share) {
                self.distrusted.remove(&i);
                if let Some(set) = self.shares.get_mut(&key) {
                    set.verified.insert(i);
                }
            } else {
                self.blame(i, key);
            }
        }
        let Some(set) = self.shares.get(&key) else {
            return;
        };
        let usable = |i: &u32| !self.blacklist.contains(i);
        let good: Vec<u32> = set.verified.iter().copied().filter(usable).collect();
        let trusted: Vec<u32> = set
            .shares
            .keys()
            .copied()
            .filter(|i| usable(i) && !set.verified.contains(i) && !self.distrusted.contains(i))
            .collect();
        let chosen: Vec<u32> = if good.len() >= k {
            good[..k].to_vec()
        } else if !set.fast_failed && good.len() + trusted.len() >= k {
            good.iter().chain(&trusted).take(k).copied().collect()
        } else {
            Vec::new()
        };
        let fast = chosen.len() == k && good.len() < k;
        let tsig = if chosen.len() == k {
            let shares: Vec<(u32, Vec<u8>)> = chosen
                .iter()
                .filter_map(|i| set.shares.get(i).map(|sh| (*i, sh.clone())))
                .collect();
            let refs: Vec<(u32, &[u8])> =
                shares.iter().map(|(i, sh)| (*i, sh.as_slice())).collect();
            let out = self.crypto.combine(site, &content, &refs);
            for bad in out.bad {
                self.blame(bad, key);
            }
            if out.signature.is_none() && fast {
                // Somebody among the unproven shares is wrong, and nothing says who.
                self.stats.combine_fallbacks += 1;
                for i in chosen.iter().filter(|i| !good.contains(i)) {
                    self.distrusted.insert(*i);
                }
                if let Some(set) = self.shares.get_mut(&key) {
                    set.fast_failed = true;
                    for i in chosen.iter().filter(|i| !good.contains(i)) {
                        if let Some(sh) = set.shares.get(i) {
                            set.suspects.insert(*i, sh.clone());
                        }
                    }
                }
            }
            out.signature
        } else {
            None
        };
        let Some(tsig) = tsig else {
            // Ask for proofs: every unproven signer once a fast combine failed, the distrusted
            // ones at once.
            let me = self.cfg.id.index;
            let distrusted = &self.distrusted;
            let asked = self
                .shares
                .get_mut(&key)
                .map(|set| {
                    let all = set.fast_failed;
                    let ask: Vec<u32> = set
                        .shares
                        .keys()
                        .copied()
                        .filter(|i| {
                            *i != me && !set.verified.contains(i) && (all || distrusted.contains(i))
                        })
                        .collect();
                    ask.into_iter()
                        .filter(|i| set.asked.insert(*i))
                        .collect::<Vec<u32>>()
                })
                .unwrap_or_default();
            // Enough shares and still no signature: the excused signers' shares are needed.
            if self
                .shares
                .get(&key)
                .is_some_and(|set| set.shares.len() >= k)
            {
                self.ask_withheld(key, false);
            }
            let (kind, seq, content) = key;
            for m in asked {
                let q = ProofRequest { kind, seq, content };
                self.send(
                    Dest::Server(ServerId::new(site, m)),
                    Message::ProofRequest(Arc::new(q)),
                );
            }
            return;
        };
        self.judge_suspects(key, &content);
        if let Some(set) = self.shares.get_mut(&key) {
            set.done = true;
        }
        self.judge_combine_pace(key);
        let (kind, seq, _) = key;
        match kind {
            SigKind::Proposal => {
                let proposal = self.shares.get(&key).and_then(|s| s.proposal.clone());
                if let Some(p) = proposal {
                    self.on_own_proposal_signed(p, tsig);
                }
            }
            SigKind::Accept => {
                let accept = self.shares.get(&key).and_then(|s| s.accept.clone());
                if let Some(a) = accept {
                    self.on_own_accept_signed(a, tsig);
                }
            }
            SigKind::GlobalVc => self.on_own_global_vc_signed(seq, tsig),
            SigKind::Aru => self.on_own_aru_signed(seq, &content, tsig),
            SigKind::Constraint => self.on_own_constraint_signed(tsig),
        }
    }

    /// Once a set combined from good shares after a failed fast combine: try each unproven
    /// share of that combine with k-1 good ones. One that fails is wrong, so its signer is
    /// blacklisted here, whether it kept silent or later proved a different (right) share;
    /// otherwise a signer that answers every proof request with a right share after a wrong
    /// unproven one would cost the site a failed combine and a round of proofs on every slot.
    /// (A share without a proof convinces no peer, so nothing is broadcast.)
    fn judge_suspects(&mut self, key: (SigKind, u64, Digest), content: &[u8]) {
        let site = self.site();
        let k = self.crypto.quorum(site);
        let Some(set) = self.shares.get_mut(&key) else {
            return;
        };
        let suspects = std::mem::take(&mut set.suspects);
        for (i, unproven) in suspects {
            let Some(set) = self.shares.get(&key) else {
                return;
            };
            // Proven shares are right whoever signed them: a signer blacklisted a moment ago
            // for its wrong unproven share still proved its right one, and leaving it out left
            // too few to judge the other suspects of a combine of exactly k (a holding site's
            // rare Accepts, f = 5: two failed fast combines more than f, seed 304).
            let mut shares: Vec<(u32, Vec<u8>)> = set
                .verified
                .iter()
                .filter(|j| **j != i)
                .take(k - 1)
                .filter_map(|j| set.shares.get(j).map(|sh| (*j, sh.clone())))
                .collect();
            if shares.len() + 1 < k {
                continue;
            }
            shares.push((i, unproven));
            let refs: Vec<(u32, &[u8])> =
                shares.iter().map(|(j, sh)| (*j, sh.as_slice())).collect();
            if self
                .crypto
                .combine(site, content, &refs)
                .signature
                .is_some()
            {
                self.distrusted.remove(&i);
            } else {
                self.distrusted.remove(&i);
                if self.blacklist.insert(i) {
                    self.stats.blacklisted += 1;
                }
            }
        }
    }

    /// The representative asks for the proof of the own share on (kind, seq, content): make it
    /// once, keep it, and send the Partial_Sig again with it.
    pub(crate) fn on_proof_request(&mut self, from: ServerId, q: &Arc<ProofRequest>) -> bool {
        if from.site != self.site() {
            return false;
        }
        let me = self.cfg.id.index;
        let key = (q.kind, q.seq, q.content);
        let Some(set) = self.shares.get(&key) else {
            return true; // long gone (or never shared): nothing to prove
        };
        let (Some(content), Some(mine)) = (set.content.clone(), set.partials.get(&me).cloned())
        else {
            return true;
        };
        self.note_round_asked(from, q.kind, q.seq);
        let partial = if self.crypto.share_form(self.site(), &mine.share) == ShareForm::Proven {
            mine
        } else {
            let share = self.crypto.prove_share(&content, &mine.share);
            if share.is_empty() {
                return true;
            }
            let mut p = PartialSig {
                share,
                sig: Vec::new(),
                ..(*mine).clone()
            };
            p.sig = self.crypto.sign(&p.signing_bytes());
            let p = Arc::new(p);
            if let Some(set) = self.shares.get_mut(&key) {
                set.partials.insert(me, p.clone());
                set.shares.insert(me, p.share.clone());
            }
            p
        };
        self.send(Dest::Server(from), Message::PartialSig(partial));
        true
    }

    /// The representative asked this server for a proof or a withheld share on a Proposal
    /// slot: the combine takes another round, which the combine deadline allows for once per
    /// slot (within the grace budget of `grant_proof_round_grace`).
    pub(crate) fn note_round_asked(&mut self, from: ServerId, kind: SigKind, seq: u64) {
        if kind != SigKind::Proposal || from != self.rep_of(self.site()) {
            return;
        }
        let first = self
            .local
            .get_mut(&seq)
            .filter(|slot| slot.share_at.is_some() && !slot.proof_asked)
            .map(|slot| slot.proof_asked = true)
            .is_some();
        if first {
            self.grant_proof_round_grace();
        }
    }

    /// Blacklist `bad` and broadcast the proof of its corruption.
    fn blame(&mut self, bad: u32, key: (SigKind, u64, Digest)) {
        let partial = self.shares.get_mut(&key).and_then(|set| {
            set.shares.remove(&bad);
            set.verified.remove(&bad);
            set.partials.remove(&bad)
        });
        self.distrusted.remove(&bad);
        if self.blacklist.insert(bad) {
            self.stats.blacklisted += 1;
        }
        if let Some(partial) = partial {
            let mut c = CorruptedServer {
                server: self.cfg.id.index,
                partial: (*partial).clone(),
                sig: Vec::new(),
            };
            c.sig = self
                .crypto
                .sign(&Message::Corrupted(Arc::new(c.clone())).signing_bytes());
            self.send_site(Message::Corrupted(Arc::new(c)));
        }
    }

    /// A Corrupted_Server from a site peer: check the accuser's signature and the share itself
    /// (the content must be known locally), then blacklist.
    pub(crate) fn on_corrupted(&mut self, from: ServerId, c: &Arc<CorruptedServer>) -> bool {
        if from.site != self.site() || from.index != c.server {
            return false;
        }
        if from == self.cfg.id || self.blacklist.contains(&c.partial.server) {
            return true;
        }
        if !self
            .crypto
            .verify_server(from, &Message::Corrupted(c.clone()).signing_bytes(), &c.sig)
        {
            return false;
        }
        let p = &c.partial;
        let key = (p.kind, p.seq, p.content);
        let Some(content) = self.shares.get(&key).and_then(|s| s.content.clone()) else {
            return true; // cannot judge without the content; the accuser's word is not enough
        };
        // The evidence must be the accused's own signed message with a share that is malformed
        // or whose proof fails; a share without a proof proves nothing.
        let accused = ServerId::new(self.site(), p.server);
        let faulty = match self.crypto.share_form(self.site(), &p.share) {
            ShareForm::Malformed => true,
            ShareForm::Unproven => false,
            ShareForm::Proven => {
                !self
                    .crypto
                    .verify_share(self.site(), p.server, &content, &p.share)
            }
        };
        if content_digest(&content) == p.content
            && faulty
            && self
                .crypto
                .verify_server(accused, &p.signing_bytes(), &p.sig)
        {
            self.blacklist.insert(p.server);
            self.stats.blacklisted += 1;
            if let Some(set) = self.shares.get_mut(&key) {
                set.shares.remove(&p.server);
            }
        }
        true
    }

    /// The leader site's Proposal is threshold-signed: apply and disseminate it.
    fn on_own_proposal_signed(&mut self, unsigned: Proposal, tsig: Vec<u8>) {
        if unsigned.gv != self.gv {
            return; // a global view change overtook it
        }
        let proposal = Arc::new(Proposal { tsig, ..unsigned });
        let route = self
            .cfg
            .sequencer
            .as_ref()
            .map_or(ProposalRoute::Everywhere, |h| h.proposal_signed(self.now));
        if let ProposalRoute::OnlyTo(sites) = route {
            for s in 0..self.num_sites() as u16 {
                let site = SiteId(s);
                if site != self.site() && sites & (1 << s) != 0 {
                    let rep = self.rep_of(site);
                    self.send(Dest::Server(rep), Message::Proposal(proposal.clone()));
                }
            }
            return;
        }
        self.apply_proposal(&proposal);
        self.send_site(Message::Proposal(proposal.clone()));
        self.send_proposal_to_sites(proposal);
        self.try_propose();
    }

    /// Send a new Proposal to each other site's representative, and one Proposal in each
    /// global window to all servers of a site that has signed nothing within a window of it.
    /// Everything reaches a site through its representative, so behind a silent, crashed or
    /// slow one a site without clients of its own saw no pending work (no timer ran, the
    /// representative stayed) and did not learn that the front moved on; the other sites
    /// ordered without it, for good (campaign seeds 103, 326, 497 and 15 others of the first
    /// 1,000 with the server catch-up check). Its servers now see a live Proposal per window,
    /// so their timers replace the representative and they reconcile; the new
    /// representative signs an Accept for such a Proposal, which tells the other sites its
    /// view. Every Proposal to every server of such a site was too much for the thin links
    /// of the Cairn and Planetlab topologies: clients starved behind the copies.
    fn send_proposal_to_sites(&mut self, proposal: Arc<Proposal>) {
        let window = self.cfg.global_window.max(1);
        let absent = |r: &Self, site: SiteId| {
            proposal.seq % window == 0
                && r.site_signed
                    .get(site.index())
                    .is_some_and(|p| p.seq + window < proposal.seq)
        };
        let msg = Message::Proposal(proposal.clone());
        for s in 0..self.num_sites() as u16 {
            let site = SiteId(s);
            if site == self.site() {
                continue;
            }
            if absent(self, site) {
                for i in 0..self.site_size(site) {
                    self.send(Dest::Server(ServerId::new(site, i)), msg.clone());
                }
            } else {
                self.send(Dest::Server(self.rep_of(site)), msg.clone());
            }
        }
    }

    /// This site's Accept is threshold-signed: apply and send it everywhere. It is exactly
    /// the content the site shared, whatever happened to the views since.
    fn on_own_accept_signed(&mut self, unsigned: Accept, tsig: Vec<u8>) {
        let seq = unsigned.seq;
        let accept = Arc::new(Accept { tsig, ..unsigned });
        let current = self
            .global
            .get(&seq)
            .and_then(|s| s.proposal.as_ref())
            .is_some_and(|p| p.gv == accept.gv && p.digest() == accept.digest);
        if !current {
            return; // the slot moved on (a newer view re-proposed it)
        }
        if let Some(slot) = self.global.get_mut(&seq) {
            slot.own_accept = Some(accept.clone());
        }
        self.apply_accept(&accept);
        self.send_site(Message::Accept(accept.clone()));
        self.send_accept_wanted(seq, &accept);
        self.send_other_sites(Message::Accept(accept));
    }
}
