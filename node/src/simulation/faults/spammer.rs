//! A Byzantine server for the simulator that sends malformed, mis-signed, forged, conflicting
//! and replayed messages to its site and to other sites. Correct replicas must drop or absorb
//! all of it without panicking and without losing safety or progress.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use rand::seq::SliceRandom;
use rand::Rng;
use steward_config::ServerId;
use steward_sim::{Ctx, ProcId, Process};

use crate::crypto::Crypto;
use crate::msg::{
    Accept, CorruptedServer, Envelope, Message, Op, PartialSig, PrePrepare, Prepare, SigKind,
    Update,
};

/// Period of the spammer's bursts.
const PERIOD: Duration = Duration::from_millis(20);

/// The misbehaving server.
pub struct Spammer {
    id: ServerId,
    servers: Vec<ServerId>,
    crypto: Crypto,
    seen: VecDeque<Envelope>,
    /// Mutated encodings that no longer decoded (would be dropped by the transport's decoder).
    pub malformed: u64,
    /// Messages sent.
    pub sent: u64,
}

impl Spammer {
    /// A spammer posing as server `id`; `servers[p]` is the server at process `p`.
    pub fn new(id: ServerId, servers: Vec<ServerId>, crypto: Crypto) -> Self {
        Spammer {
            id,
            servers,
            crypto,
            seen: VecDeque::new(),
            malformed: 0,
            sent: 0,
        }
    }

    fn proc_of(&self, s: ServerId) -> ProcId {
        self.servers
            .iter()
            .position(|x| *x == s)
            .expect("known server")
    }

    fn burst(&mut self, ctx: &mut Ctx<'_, crate::simulation::SimPacket>) {
        let mut out: Vec<(ServerId, Message)> = Vec::new();
        let site_peers: Vec<ServerId> = self
            .servers
            .iter()
            .copied()
            .filter(|s| s.site == self.id.site && *s != self.id)
            .collect();
        let seq = ctx.rng().gen_range(1..200u64);
        let digest: [u8; 32] = ctx.rng().gen();
        let garbage_sig: Vec<u8> = (0..64).map(|_| ctx.rng().gen()).collect();
        // A well-signed Prepare with a digest no Pre-Prepare has (conflict).
        let mut prep = Prepare {
            server: self.id.index,
            gv: 0,
            lv: 0,
            seq,
            digest,
            sig: Vec::new(),
        };
        prep.sig = self
            .crypto
            .sign(&Message::Prepare(Arc::new(prep.clone())).signing_bytes());
        // A mis-signed Prepare.
        let bad = Prepare {
            sig: garbage_sig.clone(),
            ..prep.clone()
        };
        // A Pre-Prepare pretending to come from the representative.
        let update = Arc::new(Update {
            client: 0,
            ts: u64::MAX / 2,
            op: Op::Put {
                key: b"evil".to_vec(),
                value: vec![0; 8],
            },
            sig: garbage_sig.clone(),
            memo: Default::default(),
        });
        let pp = PrePrepare {
            server: 0,
            gv: 0,
            lv: 0,
            seq,
            batch: vec![update.clone()],
            sig: garbage_sig.clone(),
        };
        // A share that does not verify, and an Accept with a forged site signature.
        let share = PartialSig {
            server: self.id.index,
            kind: SigKind::Proposal,
            gv: 0,
            lv: 0,
            seq,
            content: digest,
            share: vec![7; 307],
            sig: garbage_sig.clone(),
        };
        let accept = Accept {
            site: self.id.site.0,
            gv: 0,
            lv: 0,
            seq,
            digest,
            tsig: vec![1; 128],
        };
        for peer in &site_peers {
            out.push((*peer, Message::Prepare(Arc::new(prep.clone()))));
            out.push((*peer, Message::Prepare(Arc::new(bad.clone()))));
            out.push((*peer, Message::PrePrepare(Arc::new(pp.clone()))));
            out.push((*peer, Message::PartialSig(Arc::new(share.clone()))));
            out.push((*peer, Message::Update(update.clone())));
        }
        let anyone = *self.servers.choose(ctx.rng()).expect("servers");
        out.push((anyone, Message::Accept(Arc::new(accept))));
        // False accusation using a correct server's valid share, if one was seen.
        if let Some(Message::PartialSig(p)) = self
            .seen
            .iter()
            .map(|e| e.msg.clone())
            .find(|m| matches!(m, Message::PartialSig(p) if p.server != self.id.index))
        {
            let mut c = CorruptedServer {
                server: self.id.index,
                partial: (*p).clone(),
                sig: Vec::new(),
            };
            c.sig = self
                .crypto
                .sign(&Message::Corrupted(Arc::new(c.clone())).signing_bytes());
            for peer in &site_peers {
                out.push((*peer, Message::Corrupted(Arc::new(c.clone()))));
            }
        }
        // Replays of old traffic, and mutated encodings of it.
        for _ in 0..3 {
            let Some(env) = self
                .seen
                .iter()
                .collect::<Vec<_>>()
                .choose(ctx.rng())
                .map(|e| (*e).clone())
            else {
                break;
            };
            let to = *self.servers.choose(ctx.rng()).expect("servers");
            out.push((to, env.msg.clone()));
            let mut bytes = env.msg.encode();
            let pos = ctx.rng().gen_range(0..bytes.len());
            bytes[pos] = ctx.rng().gen();
            match Message::decode(&bytes) {
                Ok(m) => out.push((to, m)),
                Err(_) => self.malformed += 1,
            }
        }
        for (to, m) in out {
            self.sent += 1;
            ctx.send(self.proc_of(to), bft_harness::Packet::new(Envelope::new(m)));
        }
    }
}

impl Process<crate::simulation::SimPacket> for Spammer {
    fn init(&mut self, ctx: &mut Ctx<'_, crate::simulation::SimPacket>) {
        ctx.set_timer(PERIOD, 0);
    }

    fn on_message(
        &mut self,
        _ctx: &mut Ctx<'_, crate::simulation::SimPacket>,
        _from: ProcId,
        msg: crate::simulation::SimPacket,
    ) {
        if self.seen.len() >= 64 {
            self.seen.pop_front();
        }
        self.seen.push_back(msg.env);
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_, crate::simulation::SimPacket>, _token: u64) {
        self.burst(ctx);
        ctx.set_timer(PERIOD, 0);
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn std::any::Any {
        self
    }
}
