//! Forged results: every reply the server sends carries a result no correct server computed,
//! signed with the server's own key (the order proof in it stays genuine).

use std::sync::Arc;

use bft_core::crypto::CryptoCounters;
use bft_core::NodeId;
use bft_harness::faults::Tampering;
use steward_config::ServerId;

use crate::crypto::Crypto;
use crate::msg::{Message, Reply};

/// The result every forged reply carries.
pub const FORGED: &[u8] = b"forged";

/// Rewrites the result of every own reply.
pub struct WrongResults {
    id: ServerId,
    crypto: Crypto,
}

impl WrongResults {
    /// For server `id` and its keys.
    pub fn new(id: ServerId, crypto: Crypto) -> Self {
        WrongResults { id, crypto }
    }
}

impl Tampering<Message> for WrongResults {
    fn outgoing(&mut self, _to: NodeId, msg: &Message) -> Option<Message> {
        let Message::Reply(r) = msg else {
            return None;
        };
        if r.server != self.id || r.result == FORGED {
            return None;
        }
        let mut forged = Reply {
            result: FORGED.to_vec(),
            sig: Vec::new(),
            ..(**r).clone()
        };
        if !r.sig.is_empty() {
            forged.sig = self
                .crypto
                .sign(&Message::Reply(Arc::new(forged.clone())).signing_bytes());
        }
        Some(Message::Reply(Arc::new(forged)))
    }

    fn crypto_counters(&self) -> CryptoCounters {
        self.crypto.counters()
    }
}
