//! Catching up after message loss (a light LOCAL-/GLOBAL-RECONCILIATION, TDSC Figs. ):
//! a server whose execution point has not moved for a retransmission period while it knows of
//! later slots asks its site peers (and, if it is the representative, the leader site's
//! representative) for globally ordered updates. Answers are self-verifying order proofs, so any
//! server may answer and the requester trusts only the threshold signatures.

use std::sync::Arc;
use std::time::Duration;

use steward_config::{ServerId, SiteId};

use super::{Dest, Replica};
use crate::codec::{Reader, Writer};
use crate::kv::KvStore;
use crate::msg::{Accept, Digest, Message, OrderProof, ReconRequest, Snapshot};

/// Most proofs sent in answer to one request.
const RECON_BATCH: u64 = 64;

/// Most bytes of one answer to another site: two full batches (64 order proofs of about 850
/// bytes each). A site of f Byzantine servers gets at most f + 1 answers a period from a server, so
/// its Byzantine servers can neither multiply its allowance nor use all of it up.
const RECON_ANSWER_BYTES: u64 = 128 * 1024;

/// Retransmission periods a far-ahead hint lives without being seen again.
const HINT_LIFETIME: u32 = 20;

/// Checkpoint interval: every this many sequence numbers a server keeps a snapshot of its state
/// for servers too far behind for order proofs (must be well below `KEEP_EXECUTED`).
pub(crate) const CHECKPOINT: u64 = 64;

/// What a server knows of another site's progress.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct SignedProgress {
    /// The highest sequence number in a verified Proposal or Accept of the site.
    pub seq: u64,
    /// When it last rose.
    pub at: Duration,
    /// This server's own execution point then: evidence reaches a server late (a wide-area
    /// delay, the site's signing, paced forwarding), so lag is judged against where this
    /// server was when the evidence arrived, not where it is now.
    pub own_aru: u64,
}

/// Retransmission periods an unanswered request to another site is waited for before it is
/// asked again: an answer of RECON_BATCH proofs (about 54 kB) takes over a second on the
/// slowest shipped wide-area link (405 kbit/s), plus the round trip.
const RECON_PATIENCE: u32 = 4;

/// This server's requests to another site in flight: the last one asked for the proofs after
/// `from` at `at`; together they asked for everything up to `top`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ReconAsk {
    pub from: u64,
    pub top: u64,
    pub at: Duration,
}

/// A checkpoint: the encoded state after executing `seq`.
pub(crate) struct Checkpoint {
    pub seq: u64,
    pub digest: Digest,
    pub state: Vec<u8>,
}

impl Replica {
    /// A Recon_Request for the order proofs after `aru`, stamped with this server's global view.
    pub(crate) fn recon_request(&self, aru: u64) -> Message {
        Message::ReconRequest(Arc::new(ReconRequest { aru, gv: self.gv }))
    }

    /// On the retransmission tick: ask for help if stuck.
    pub(crate) fn maybe_request_recon(&mut self) {
        // The hint expires unless verified far-ahead content keeps coming: even a true one
        // must not keep a server asking for ever once nobody repeats it.
        if self.now.saturating_sub(self.highest_seen_at) > HINT_LIFETIME * self.cfg.retransmit {
            self.highest_seen = self.highest_seen.min(self.global_aru);
        }
        let stuck = self.global_aru == self.aru_at_last_tick;
        self.aru_at_last_tick = self.global_aru;
        let highest_known = self
            .global
            .range(self.global_aru + 1..)
            .filter(|(_, s)| s.proposal.is_some() || !s.accepts.is_empty())
            .map(|(seq, _)| *seq)
            .chain(self.local.range(self.global_aru + 1..).map(|(seq, _)| *seq))
            .chain((self.highest_seen > self.global_aru).then_some(self.highest_seen))
            .max();
        let Some(highest) = highest_known else { return };
        // Stuck for a whole period, or clearly behind: more than a window behind the front with
        // a Proposal missing below the highest one held (it was refused or lost: only proofs
        // bring it), or so far behind that live messages are refused (beyond four windows). A
        // server that holds every Proposal up to the front catches up from the live Accepts
        // alone. Asking whenever it was a window behind hurt a site far from the leader:
        // Planetlab's Brazil holds every Proposal but trails the front by a window or a little
        // more at 80 updates/s; it asked every period, the order proofs it fetched (up to 64,
        // 54 kB: 0.5 s of its 800 kbit/s link) queued the live Proposals behind them, it fell
        // further behind, went through state transfers and stalls, and replaced correct
        // representatives.
        let far_behind = !self.global_window_ok(highest)
            || (highest > self.global_aru + self.cfg.global_window && self.proposal_missing());
        if !(stuck || far_behind) {
            self.stuck_ticks = 0;
            return;
        }
        self.stuck_ticks += 1;
        let req = self.recon_request(self.global_aru);
        for i in 0..self.site_size(self.site()) {
            if i != self.cfg.id.index {
                self.send(Dest::Server(ServerId::new(self.site(), i)), req.clone());
            }
        }
        if self.stuck_ticks >= 2 {
            // Still stuck: ask another site (the leader site, or the next one for the leader
            // site itself), but not all of it at once. Wide-area links are slow (hundreds of
            // kbit/s) behind long drop-tail queues and an answer is up to RECON_BATCH proofs
            // (about 54 kB): every lagging server asking every server of the leader site each
            // period overloaded the link a dozen times over, so answers and the live Proposals
            // and local-view messages queued behind them arrived seconds late or were dropped,
            // and the lagging site never caught up (campaign seed 2279). So only the
            // representative asks every period, each other server once per 2·(site size)
            // periods (the first to catch up answers its peers over the LAN), each time a
            // different server of the other site so that a faulty one cannot hide what we
            // need.
            let leader = self.leader_site();
            let other = if self.in_leader_site() {
                SiteId(((leader.0 as usize + 1) % self.num_sites()) as u16)
            } else {
                leader
            };
            let own_size = self.site_size(self.site());
            let my_turn = self.is_rep() || self.stuck_ticks % (2 * own_size) == self.cfg.id.index;
            let remote_from = self.next_remote_recon(highest);
            if let (true, true, Some(from)) = (other != self.site(), my_turn, remote_from) {
                self.recon_asked = Some(ReconAsk {
                    from,
                    top: from + RECON_BATCH,
                    at: self.now,
                });
                let req = self.recon_request(from);
                // Proofs gone (more than KEEP_EXECUTED behind): a snapshot needs f+1 servers of
                // one site vouching for the same checkpoint, which moves every CHECKPOINT
                // slots, so ask f+1 servers at once (one snapshot each).
                let count = if highest > self.global_aru + super::KEEP_EXECUTED {
                    self.cfg.f[other.index()] + 1
                } else {
                    1
                };
                let size = self.site_size(other);
                // Counted in requests, not periods: requests go every 2 or 4 periods (the
                // patience above) or every 2·(site size) (a non-representative's turn), so
                // the period count picked the same server of a site of four every time, and a
                // lagging server whose pick was a Byzantine or lagging one was never answered
                // (campaign seed 115: s0.2 asked s1.2, Byzantine and itself behind, from 40 s
                // to the end of the run).
                let start = self
                    .recon_asks
                    .wrapping_mul(count)
                    .wrapping_add(self.cfg.id.index);
                self.recon_asks = self.recon_asks.wrapping_add(1);
                for k in 0..count.min(size) {
                    let target = start.wrapping_add(k) % size;
                    self.send(Dest::Server(ServerId::new(other, target)), req.clone());
                }
            }
        } else if self.is_rep() && !self.in_leader_site() {
            let leader_rep = self.rep_of(self.leader_site());
            self.send(Dest::Server(leader_rep), req);
        }
    }

    /// Whether a slot above the execution point and below the highest Proposal held has no
    /// Proposal here.
    fn proposal_missing(&self) -> bool {
        let held = self
            .global
            .range(self.global_aru + 1..)
            .filter(|(_, g)| g.proposal.is_some())
            .map(|(seq, _)| *seq);
        let (count, top) = held.fold((0u64, self.global_aru), |(n, _), seq| (n + 1, seq));
        count < top - self.global_aru
    }

    /// Where this server's next request to another site starts, or None to wait for the
    /// last one's answer. An answer of up to RECON_BATCH proofs takes longer than a
    /// retransmission period over a slow wide-area link, and asking again from the execution
    /// point every period made the other site send the same proofs again and again: campaign
    /// seed 70376 (local-planetlab, site 1 cut off for 10 s) caught up at about 12 slots/s
    /// over an 800 kbit/s link while the front moved at 23, and its clients starved. So while
    /// the last request is fresh, wait until its answer starts arriving (the execution point
    /// passes its start), then ask for the range after everything asked: at most two answers
    /// are in flight and each carries new proofs. A stale request, or one fully answered, is
    /// followed by one from the execution point (an answer lost or cut short is asked again).
    fn next_remote_recon(&self, highest: u64) -> Option<u64> {
        let aru = self.global_aru;
        let Some(last) = self.recon_asked else {
            return Some(aru);
        };
        let fresh = self.now.saturating_sub(last.at) < self.cfg.retransmit * RECON_PATIENCE;
        if highest > aru + super::KEEP_EXECUTED || !fresh || aru >= last.top {
            return Some(aru);
        }
        if aru <= last.from {
            return None;
        }
        Some(last.top)
    }

    /// Raise the reconciliation hint to `seq`, which the caller verified was signed by a
    /// site (so at least one correct server is that far), or refresh it.
    pub(crate) fn saw_seq(&mut self, seq: u64) {
        if seq >= self.highest_seen {
            self.highest_seen = seq;
            self.highest_seen_at = self.now;
        }
    }

    /// Take a checkpoint after executing `seq` if it is on the interval.
    pub(crate) fn maybe_checkpoint(&mut self, seq: u64) {
        if seq % CHECKPOINT != 0 {
            return;
        }
        let mut w = Writer::default();
        w.u64(seq);
        self.kv.encode_into(&mut w);
        let mut clients: Vec<(&u32, &u64)> = self.executed_ts.iter().collect();
        clients.sort_unstable();
        w.u32(clients.len() as u32);
        for (c, ts) in clients {
            let result = self.last_result.get(c).map_or(&[][..], Vec::as_slice);
            w.u32(*c).u64(*ts).bytes(result);
        }
        let digest = steward_crypto::sha256(&w.buf);
        self.checkpoint = Some(Checkpoint {
            seq,
            digest,
            state: w.buf,
        });
        self.persist_checkpoint();
    }

    /// A snapshot from a peer: install it once f+1 servers of one site vouch for the same one.
    pub(crate) fn on_snapshot(&mut self, from: ServerId, sn: &Snapshot) -> bool {
        if sn.seq <= self.global_aru {
            return true;
        }
        if sn.seq == u64::MAX {
            return false;
        }
        // A snapshot with an empty state only vouches for the digest. Each server holds one
        // vote and at most one state here (its latest): memory is bounded by the number of
        // servers, and nobody can evict another server's vote.
        if !sn.state.is_empty() {
            if steward_crypto::sha256(&sn.state) != sn.digest {
                return false;
            }
            self.snapshot_state
                .insert(from, (sn.digest, sn.state.clone()));
        }
        self.snapshot_votes.insert(from, (sn.seq, sn.digest));
        let needed = self.cfg.f[from.site.index()] as usize + 1;
        let vouched = self
            .snapshot_votes
            .iter()
            .filter(|(s, v)| s.site == from.site && **v == (sn.seq, sn.digest))
            .count();
        if vouched < needed {
            return true;
        }
        let Some(state) = self
            .snapshot_state
            .values()
            .find(|(d, _)| *d == sn.digest)
            .map(|(_, st)| st.clone())
        else {
            return true; // vouched for, but nobody sent the state yet
        };
        if !self.install_checkpoint(sn.seq, sn.digest, state) {
            return false;
        }
        self.snapshot_votes.clear();
        self.snapshot_state.clear();
        self.stats.state_transfers += 1;
        self.reply_after_state_transfer();
        self.execute_ready();
        self.on_global_progress();
        true
    }

    /// Installs the state after executing `seq` (a checkpoint's encoding, from a peer's
    /// snapshot or from this server's own durable store): store, client results, execution
    /// point. False, with nothing changed, when the state is not a checkpoint of `seq`.
    pub(crate) fn install_checkpoint(&mut self, seq: u64, digest: Digest, state: Vec<u8>) -> bool {
        let mut r = Reader::new(&state);
        let Ok(encoded_seq) = r.u64("seq") else {
            return false;
        };
        let Ok(kv) = KvStore::decode_from(&mut r) else {
            return false;
        };
        let Ok(n) = r.u32("clients") else {
            return false;
        };
        let mut executed = std::collections::BTreeMap::new();
        let mut results = std::collections::BTreeMap::new();
        for _ in 0..n {
            let (Ok(c), Ok(ts), Ok(result)) = (r.u32("client"), r.u64("ts"), r.bytes("result"))
            else {
                return false;
            };
            executed.insert(c, ts);
            results.insert(c, result);
        }
        if encoded_seq != seq || r.finish().is_err() {
            return false;
        }
        self.kv = kv;
        self.executed_ts = executed;
        self.last_result = results;
        self.global_aru = seq;
        self.pending_aru = self.pending_aru.max(seq);
        self.global_seq = self.global_seq.max(seq + 1);
        super::drop_slots_below(&mut self.global, seq + 1);
        super::drop_slots_below(&mut self.local, seq + 1);
        self.bound.retain(|_, s| *s > seq);
        self.checkpoint = Some(Checkpoint { seq, digest, state });
        self.persist_checkpoint();
        true
    }

    /// Replies owed for updates the snapshot executed: without their order proofs (gone with
    /// the state), the client counts them towards its f+1 matching results.
    fn reply_after_state_transfer(&mut self) {
        let owed: Vec<Arc<crate::msg::Update>> = self
            .responsible
            .values()
            .filter(|u| {
                self.executed_ts
                    .get(&u.client)
                    .is_some_and(|ts| *ts >= u.ts)
            })
            .cloned()
            .collect();
        for u in owed {
            self.responsible.remove(&u.client);
            if self.executed_ts.get(&u.client) == Some(&u.ts) {
                if let Some(reply) = self.proofless_reply(u.client, u.ts) {
                    self.send(Dest::Client(u.client), Message::Reply(reply));
                }
            }
        }
    }

    /// A signed reply without order proof from the last result kept for `client`.
    pub(crate) fn proofless_reply(
        &mut self,
        client: crate::msg::ClientId,
        ts: u64,
    ) -> Option<Arc<crate::msg::Reply>> {
        let result = self.last_result.get(&client)?.clone();
        let mut reply = crate::msg::Reply {
            server: self.cfg.id,
            client,
            ts,
            proof: None,
            result,
            sig: Vec::new(),
        };
        reply.sig = self
            .crypto
            .sign(&Message::Reply(Arc::new(reply.clone())).signing_bytes());
        let reply = Arc::new(reply);
        self.last_reply.insert(client, reply.clone());
        Some(reply)
    }

    /// Record that `site` threshold-signed a Proposal or Accept for `seq` (verified by the
    /// caller): its correct signers, at least f+1, had executed up to `seq` less the window
    /// they sign in.
    pub(crate) fn site_signed_seq(&mut self, site: SiteId, seq: u64) {
        let (now, own_aru) = (self.now, self.global_aru);
        if let Some(p) = self.site_signed.get_mut(site.index()) {
            if seq > p.seq {
                *p = SignedProgress {
                    seq,
                    at: now,
                    own_aru,
                };
            }
        }
    }

    /// An Accept of `site` for a slot this server already executed: still evidence of the
    /// site's progress, worth a signature check a few times a period (not for every late
    /// Accept: most arrive after the slot is ordered). Other sites send their Accepts to the
    /// representative only, so it passes such evidence on to its peers at the same pace.
    pub(crate) fn late_accept(&mut self, from: ServerId, site: SiteId, a: &Arc<Accept>) {
        let p = self.site_signed[site.index()];
        if a.seq > p.seq
            && self.now.saturating_sub(p.at) >= self.cfg.retransmit / 4
            && self.crypto.verify_site(site, &a.signing_bytes(), &a.tsig)
        {
            self.site_signed_seq(site, a.seq);
            if self.is_rep() && from.site != self.site() {
                self.send_site(Message::Accept(a.clone()));
            }
        }
    }

    /// Take `bytes` of the period's reconciliation allowance for `site`; false when it is
    /// spent. One message may overdraw it (a snapshot is bigger than a period's allowance).
    fn spend_recon_budget(&mut self, site: SiteId, bytes: u64) -> bool {
        let (left, since) = self.recon_budget[site.index()];
        let left = if self.now.saturating_sub(since) >= self.cfg.retransmit {
            self.recon_budget[site.index()].1 = self.now;
            u64::from(self.cfg.f[site.index()] + 1) * RECON_ANSWER_BYTES
        } else {
            left
        };
        if left == 0 {
            return false;
        }
        self.recon_budget[site.index()].0 = left.saturating_sub(bytes);
        true
    }

    /// Answer with the order proofs this server holds above the requester's aru, at most once
    /// per retransmission period per requester.
    ///
    /// A request costs 20 bytes and an answer up to 64 order proofs, so a Byzantine server
    /// asking every server of every other site on every tick took most of the wide-area
    /// bandwidth (issue #14, attack 4). Requests from other sites are therefore answered only
    /// where this server's own evidence makes them plausible: never below what the
    /// requester's site has provably executed (its correct servers have that and answer over
    /// the LAN), only while that site's signed progress has stalled for a period or lags
    /// behind this server's (a site whose Proposals or Accepts keep up is not stuck, and its
    /// lagging servers catch up from their peers), and within a byte allowance per
    /// requesting site and period of f + 1 answers, which its f Byzantine servers can neither
    /// multiply nor use up.
    pub(crate) fn on_recon_request(&mut self, from: ServerId, r: &ReconRequest) -> bool {
        if from == self.cfg.id {
            return false;
        }
        if r.aru >= self.global_aru {
            return true; // not behind us: nothing to give (also keeps `aru + n` from overflowing)
        }
        let remote = from.site != self.site();
        // Its site's correct servers have executed this far: below it, they are the ones to
        // ask.
        let floor = if remote {
            let Some(p) = self.site_signed.get(from.site.index()).copied() else {
                return false;
            };
            // A site whose correct servers are stuck at some point still signs up to a
            // window beyond it, so it is stuck when that signing stalls, or lags when this
            // server was already far ahead of it when its latest signature arrived (two
            // windows: the front moves on while the evidence travels).
            let stalled = self.now.saturating_sub(p.at) >= self.cfg.retransmit;
            let lagging = p.own_aru > p.seq + 2 * self.cfg.global_window;
            if !stalled && !lagging {
                return true; // its site keeps up: it is not stuck, whatever it claims
            }
            p.seq.saturating_sub(4 * self.cfg.global_window)
        } else {
            0
        };
        let from_aru = r.aru.max(floor);
        if from_aru >= self.global_aru {
            return true;
        }
        let last = self.recon_answered.get(&from).copied();
        if last.is_some_and(|t| self.now.saturating_sub(t) < self.cfg.retransmit) {
            return true;
        }
        self.recon_answered.insert(from, self.now);
        // Too far behind for order proofs (garbage-collected): send the checkpoint.
        let oldest = self
            .global
            .keys()
            .next()
            .copied()
            .unwrap_or(self.global_aru + 1);
        // Order proofs are preferred whenever they are still held: executing them sends the
        // replies the requester owes its clients, which a snapshot cannot (it carries the state,
        // not the proofs), so a client whose site was cut off would wait forever.
        if from_aru + 1 < oldest {
            if let Some(c) = self.checkpoint.as_ref().filter(|c| c.seq > from_aru) {
                let sn = Message::Snapshot(Arc::new(Snapshot {
                    seq: c.seq,
                    digest: c.digest,
                    state: c.state.clone(),
                }));
                if !remote || self.spend_recon_budget(from.site, sn.encode().len() as u64) {
                    self.send(Dest::Server(from), sn);
                }
            }
            return true;
        }
        // Another site is answered only once its signing stalls, a window (64) behind the
        // front: the rest of the gap then goes with this answer too, or the site would lag
        // by about a window for good, answered each time the front moved one window further.
        let top = if remote && self.global_aru <= r.aru + 2 * RECON_BATCH {
            self.global_aru
        } else {
            r.aru + RECON_BATCH
        };
        let proofs: Vec<OrderProof> = (from_aru + 1..=top)
            .filter(|s| self.global.get(s).is_some_and(|g| g.ordered))
            .filter_map(|s| self.order_proof(s))
            .collect();
        let mut answer = 0;
        for p in proofs {
            let m = Message::Ordered(Arc::new(p));
            let bytes = m.encode().len() as u64;
            answer += bytes;
            if remote && (answer > RECON_ANSWER_BYTES || !self.spend_recon_budget(from.site, bytes))
            {
                break;
            }
            self.send(Dest::Server(from), m);
        }
        true
    }

    /// A globally ordered update from a peer: verify every threshold signature, then apply.
    pub(crate) fn on_ordered(&mut self, from: ServerId, o: &OrderProof) -> bool {
        let p = &o.proposal;
        if p.seq <= self.global_aru {
            return true;
        }
        if !self.global_window_ok(p.seq) {
            // Verified content only may make this server believe it is behind.
            if p.seq >= self.highest_seen && self.valid_order_proof(o) {
                self.saw_seq(p.seq);
            }
            return false;
        }
        if self.global.get(&p.seq).is_some_and(|s| s.ordered) {
            return true;
        }
        if !self.valid_order_proof(o) {
            return false;
        }
        // Before applying, as for any relayed Accept (see on_accept).
        if from.site != self.site() {
            self.pass_on_proof_accepts(&o.accepts);
        }
        self.apply_order_proof(o);
        true
    }

    /// Apply a verified order proof: its Proposal replaces any other for the slot (an update
    /// ordered in any view is final), its Accepts order it.
    pub(crate) fn apply_order_proof(&mut self, o: &OrderProof) {
        let p = &o.proposal;
        if self.global.get(&p.seq).is_some_and(|s| s.ordered) || p.seq <= self.global_aru {
            return;
        }
        let same = self
            .global
            .get(&p.seq)
            .and_then(|s| s.proposal.as_ref())
            .is_some_and(|q| q.tsig == p.tsig);
        if !same {
            if let Some(slot) = self.global.get_mut(&p.seq) {
                slot.proposal = None;
                slot.accepts.clear();
            }
            self.apply_proposal(p);
        }
        for a in &o.accepts {
            self.apply_accept(a);
        }
    }
}
