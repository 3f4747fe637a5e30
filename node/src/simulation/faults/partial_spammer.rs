//! A Byzantine server that runs the protocol and, on every retransmission tick, also sends its
//! representative a burst of validly signed Partial_Sigs on random contents, for every kind of
//! threshold signature and every sequence number the representative would take (issue #14,
//! attack 6: each one used to open a new share set, and the global-view-change ones were kept
//! until the next global view change, so the representative's memory grew without bound).

use std::sync::Arc;

use bft_core::crypto::CryptoCounters;
use bft_core::{Envelope, NodeId, Output};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use steward_config::ServerId;

use super::TickAttack;
use crate::crypto::Crypto;
use crate::msg::{Message, PartialSig, SigKind};
use crate::replica::Replica;

/// Sequence numbers ahead of the execution point the representative accepts shares for
/// (4 × the release code's global window).
const ORDERING_AHEAD: u64 = 64;

/// Spams the representative with Partial_Sigs on random contents (mounted on a correct
/// replica by [`OnTick`](super::OnTick)).
pub struct PartialSigSpammer {
    crypto: Crypto,
    rng: ChaCha8Rng,
    per_tick: u32,
    site_size: u32,
    /// Partial_Sigs sent so far.
    pub sent: u64,
}

impl PartialSigSpammer {
    /// Server `id` (in a site of `site_size` servers), signing its junk with `crypto` (its
    /// own key), `per_tick` junk shares a tick.
    pub fn new(id: ServerId, site_size: u32, crypto: Crypto, per_tick: u32) -> Self {
        let seed = u64::from(id.site.0) << 32 | u64::from(id.index);
        PartialSigSpammer {
            crypto,
            rng: ChaCha8Rng::seed_from_u64(seed),
            per_tick,
            site_size,
            sent: 0,
        }
    }
}

impl TickAttack for PartialSigSpammer {
    fn on_tick(&mut self, inner: &Replica, out: &mut Vec<Output<Message>>) {
        let me = inner.id();
        let gv = inner.global_view();
        let lv = inner.local_view();
        let aru = inner.global_aru();
        let rep = ServerId::new(me.site, (lv % u64::from(self.site_size)) as u32);
        for _ in 0..self.per_tick {
            let (kind, seq, views) = match self.rng.gen_range(0..5) {
                0 => (
                    SigKind::Proposal,
                    aru + self.rng.gen_range(1..=ORDERING_AHEAD),
                    gv,
                ),
                1 => (
                    SigKind::Accept,
                    aru + self.rng.gen_range(1..=ORDERING_AHEAD),
                    gv,
                ),
                2 => (SigKind::GlobalVc, gv + 1, gv + 1),
                3 => (SigKind::Aru, gv, gv),
                _ => (SigKind::Constraint, gv, gv),
            };
            let mut p = PartialSig {
                server: me.index,
                kind,
                gv: views,
                lv,
                seq,
                content: self.rng.gen(),
                share: (0..307).map(|_| self.rng.gen()).collect(),
                sig: Vec::new(),
            };
            p.sig = self.crypto.sign(&p.signing_bytes());
            out.push(Output::Send {
                to: NodeId::Server(rep),
                env: Envelope::new(Message::PartialSig(Arc::new(p))),
            });
            self.sent += 1;
        }
    }

    fn crypto_counters(&self) -> CryptoCounters {
        self.crypto.counters()
    }
}
