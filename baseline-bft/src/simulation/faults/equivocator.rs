//! An equivocating primary: for every Pre-Prepare it sends, the upper half of the backups get
//! a conflicting one for the same sequence number (a replayed request it ordered recently),
//! validly signed with the primary's own key; the lower half get the real one.

use std::collections::VecDeque;
use std::sync::Arc;

use bft_core::crypto::{Crypto, CryptoCounters};
use bft_core::request::batch_digest;
use bft_core::{NodeId, Update};
use bft_harness::faults::Tampering;

use crate::msg::{Message, PrePrepare};

/// Requests of its own recent Pre-Prepares the primary remembers for replays.
const RECENT: usize = 4;

/// Splits the backups on every own Pre-Prepare.
pub struct Equivocator {
    id: u32,
    n: u32,
    crypto: Crypto,
    /// Requests of the primary's recent Pre-Prepares.
    recent: VecDeque<Arc<Update>>,
    /// The last Pre-Prepare and its conflicting twin (if a replay was available).
    last: Option<(Arc<PrePrepare>, Option<Arc<PrePrepare>>)>,
}

impl Equivocator {
    /// For replica `id` of `n` and its keys.
    pub fn new(id: u32, n: u32, crypto: Crypto) -> Self {
        Equivocator {
            id,
            n,
            crypto,
            recent: VecDeque::new(),
            last: None,
        }
    }

    fn twin(&mut self, pp: &Arc<PrePrepare>) -> Option<Arc<PrePrepare>> {
        if let Some((real, twin)) = &self.last {
            if real == pp {
                return twin.clone();
            }
        }
        let old = self
            .recent
            .iter()
            .find(|u| !pp.batch.iter().any(|b| b.digest() == u.digest()))
            .cloned();
        let twin = old.map(|old| {
            let batch = vec![old];
            let mut alt = PrePrepare {
                digest: batch_digest(&batch),
                batch,
                sig: Vec::new(),
                ..(**pp).clone()
            };
            alt.sig = self.crypto.sign(&alt.signing_bytes());
            Arc::new(alt)
        });
        for u in &pp.batch {
            if self.recent.len() >= RECENT {
                self.recent.pop_front();
            }
            self.recent.push_back(u.clone());
        }
        self.last = Some((pp.clone(), twin.clone()));
        twin
    }
}

impl Tampering<Message> for Equivocator {
    fn outgoing(&mut self, to: NodeId, msg: &Message) -> Option<Message> {
        let (Message::PrePrepare(pp), NodeId::Replica(i)) = (msg, to) else {
            return None;
        };
        if pp.replica != self.id {
            return None;
        }
        let twin = self.twin(pp)?;
        // The backups in order, without the primary: the lower half get the real one.
        let k = if i < self.id { i } else { i - 1 };
        let half = (self.n - 1) / 2;
        (k >= half).then_some(Message::PrePrepare(twin))
    }

    fn crypto_counters(&self) -> CryptoCounters {
        self.crypto.counters()
    }
}
