//! A representative relays the other sites' Accepts of a slot into its site together.
//!
//! A slot is ordered by its Proposal and ⌊S/2⌋ Accepts of other sites than the leader site.
//! Every server needs them, and a site's representative used to relay each foreign Accept to
//! its site peers as it arrived: at a holding site (accepters.rs), which signs no Accept of its
//! own, that is two messages to every peer where one would do, since a peer can do nothing
//! with the first Accept before the second. So its representative holds the foreign Accepts of a slot
//! that is not ordered here yet and relays them, in one [`AcceptRelay`], the moment the slot
//! becomes ordered here, whatever completed it (a foreign Accept, one a site peer relayed, its
//! own site's Accept, the Proposal, an order proof). That happens before the slot executes:
//! the Accepts must reach the peers before anything executing them makes the representative
//! send (its next Pre-Prepare may need the room they make in the peers' windows; see
//! `on_accept`).
//!
//! Liveness does not depend on the representative completing the slot: it holds an Accept
//! only when it has the slot's Proposal (else a peer that has it may complete the slot first);
//! a non-representative that gets an Accept directly (it forwarded the Proposal) relays it at
//! once, to the representative too; what the representative held for a whole retransmission
//! period is relayed at the next tick, and everything it holds when its local view changes.
//!
//! Bounded: at most one Accept per site for each slot of the live global window (on_accept
//! checks the window first), dropped once the slot is executed.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use steward_config::ServerId;

use super::{Dest, Replica};
use crate::msg::{Accept, AcceptRelay, Message};

/// The foreign Accepts a representative holds for one slot.
#[derive(Debug)]
pub(crate) struct HeldAccepts {
    /// When the first of them was held.
    since: Duration,
    /// One per accepting site.
    accepts: BTreeMap<u16, Arc<Accept>>,
}

impl Replica {
    /// Relay a verified foreign Accept of a slot not ordered here into the site: at once from
    /// a non-representative, held until the slot is ordered from the representative.
    pub(crate) fn relay_foreign_accept(&mut self, a: &Arc<Accept>) {
        // Only at a holding site (accepters.rs): a designated site signs its own Accept and
        // needs one foreign Accept (five sites), so there is nothing to bundle; and at the
        // leader site, whose peers order, reply and watch the global turnaround, holding cost
        // more than it saved (`withholding-reps`, paper costs: designated sites' progress
        // timers replaced their representatives 12 times in 35 s, 0.88 of fault-free). And
        // only a slot whose Proposal the representative holds can become ordered here;
        // without it (a new representative, a Proposal that reached the peers by a forwarder)
        // a peer that has the Proposal may complete the slot first, so the Accept goes at
        // once. The cheap tests first: most foreign Accepts reach non-representatives.
        let hold = self.is_rep()
            && self.cfg.bundle_accept_relays
            && self.holds_accepts()
            && self
                .global
                .get(&a.seq)
                .and_then(|slot| slot.proposal.as_ref())
                .is_some_and(|p| p.gv == a.gv && p.digest() == a.digest);
        if !hold {
            if !self.is_rep() {
                self.stats.accepts_relayed += 1;
            }
            self.send_site(Message::Accept(a.clone()));
            return;
        }
        let now = self.now;
        self.held_accepts
            .entry(a.seq)
            .or_insert_with(|| HeldAccepts {
                since: now,
                accepts: BTreeMap::new(),
            })
            .accepts
            .insert(a.site, a.clone());
    }

    /// The slot just became ordered here (before it executes): relay what was held for it,
    /// in one message when there is more than one Accept.
    pub(crate) fn release_held_accepts(&mut self, seq: u64) {
        let Some(held) = self.held_accepts.remove(&seq) else {
            return;
        };
        if held.accepts.len() > 1 {
            self.stats.accept_relays_bundled += 1;
        }
        if let Some(msg) = accepts_message(held.accepts.into_values().collect()) {
            self.send_site(msg);
        }
    }

    /// A slot just became ordered at this non-representative by an order proof from a server
    /// of another site (the answer to a Proposal it forwarded): its Accepts go to the
    /// representative too, which may lack them (the leader site's new representative after a
    /// crash had no other way to the Accepts its predecessor took down with it). One message to
    /// one server, only on the forwarding path.
    pub(crate) fn pass_on_proof_accepts(&mut self, accepts: &[Arc<Accept>]) {
        if self.is_rep() {
            return;
        }
        let rep = Dest::Server(self.rep_of(self.site()));
        if let Some(msg) = accepts_message(accepts.to_vec()) {
            self.send(rep, msg);
        }
    }

    /// Tick and local view change: forget what was held for executed slots; relay what waited
    /// a whole retransmission period, or everything once this server is no longer
    /// representative.
    pub(crate) fn flush_held_accepts(&mut self) {
        let aru = self.global_aru;
        self.held_accepts.retain(|&seq, _| seq > aru);
        let now = self.now;
        let period = self.cfg.retransmit;
        let rep = self.is_rep();
        let due: Vec<u64> = self
            .held_accepts
            .iter()
            .filter(|(_, h)| !rep || now >= h.since + period)
            .map(|(&seq, _)| seq)
            .collect();
        for seq in due {
            self.stats.accept_relays_flushed += 1;
            self.release_held_accepts(seq);
        }
    }

    /// AcceptRelay from a server of this site: each Accept is handled as if it came alone.
    pub(crate) fn on_accept_relay(&mut self, from: ServerId, r: &AcceptRelay) -> bool {
        if from.site != self.site() || r.accepts.is_empty() || r.accepts.len() >= self.num_sites() {
            return false;
        }
        let mut all_valid = true;
        for a in &r.accepts {
            all_valid &= self.on_accept(from, a);
        }
        all_valid
    }
}

/// One Accept as itself, more in one AcceptRelay; none, nothing.
fn accepts_message(mut accepts: Vec<Arc<Accept>>) -> Option<Message> {
    match accepts.len() {
        0 => None,
        1 => accepts.pop().map(Message::Accept),
        _ => Some(Message::AcceptRelay(Arc::new(AcceptRelay { accepts }))),
    }
}
