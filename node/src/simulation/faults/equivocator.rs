//! An equivocating leader-site representative: for every Pre-Prepare it sends, the
//! odd-indexed servers of its site get a conflicting one (same slot and views, empty batch),
//! validly signed with the representative's own key; the even-indexed ones get the real one.

use std::sync::Arc;

use bft_core::crypto::CryptoCounters;
use bft_core::NodeId;
use bft_harness::faults::Tampering;
use steward_config::ServerId;

use crate::crypto::Crypto;
use crate::msg::{Message, PrePrepare};

/// Splits the site on every own Pre-Prepare.
pub struct Equivocator {
    id: ServerId,
    crypto: Crypto,
    /// The conflicting twin of the last Pre-Prepare (one signature per broadcast).
    last: Option<(Arc<PrePrepare>, Arc<PrePrepare>)>,
}

impl Equivocator {
    /// For server `id` and its keys.
    pub fn new(id: ServerId, crypto: Crypto) -> Self {
        Equivocator {
            id,
            crypto,
            last: None,
        }
    }
}

impl Tampering<Message> for Equivocator {
    fn outgoing(&mut self, to: NodeId, msg: &Message) -> Option<Message> {
        let Message::PrePrepare(pp) = msg else {
            return None;
        };
        let odd = matches!(to, NodeId::Server(s) if s.site == self.id.site && s.index % 2 == 1);
        if !odd || pp.server != self.id.index || pp.batch.is_empty() {
            return None;
        }
        if let Some((real, twin)) = &self.last {
            if real == pp {
                return Some(Message::PrePrepare(twin.clone()));
            }
        }
        let mut twin = PrePrepare {
            batch: Vec::new(),
            sig: Vec::new(),
            ..(**pp).clone()
        };
        twin.sig = self
            .crypto
            .sign(&Message::PrePrepare(Arc::new(twin.clone())).signing_bytes());
        let twin = Arc::new(twin);
        self.last = Some((pp.clone(), twin.clone()));
        Some(Message::PrePrepare(twin))
    }

    fn crypto_counters(&self) -> CryptoCounters {
        self.crypto.counters()
    }
}
