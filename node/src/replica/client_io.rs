//! Client-facing handling: updates (forwarding towards the leader-site representative,
//! duplicate suppression, replies to retransmissions) and read-only queries answered locally.

use std::sync::Arc;

use super::{Dest, Replica};
use crate::msg::{Message, Query, QueryReply, Update};

impl Replica {
    /// Update(u), from a client of this site or forwarded by a server.
    pub(crate) fn on_update(&mut self, from: Dest, u: &Arc<Update>) -> bool {
        match from {
            Dest::Client(c) if c != u.client => return false,
            Dest::Server(s) if s.site != self.site() && !self.in_leader_site() => return false,
            _ => {}
        }
        // One outstanding update per client, as the paper's clients have: a newer update
        // while the client's last one is pending here and younger than a retransmission period
        // is dropped unverified (a correct client sends its next update only after f+1
        // replies, so at worst it waits for this server to catch up or for its own
        // retransmission). A client cannot flood the pool, the WAN or this server's CPU.
        if let Some((pending, since)) = self.pending_seen.get(&u.client) {
            if u.ts > *pending && self.now < *since + self.cfg.retransmit {
                self.stats.updates_deferred += 1;
                return true;
            }
        }
        if !self
            .crypto
            .verify_client(u.client, &u.signing_bytes(), &u.sig)
        {
            return false;
        }
        let executed = self.executed_ts.get(&u.client).copied().unwrap_or(0);
        if u.ts <= executed {
            // Already executed: answer a direct retransmission with the cached proof (or, after
            // a state transfer, with the kept result alone).
            let cached = self.last_reply.get(&u.client).is_some_and(|r| r.ts == u.ts);
            if let Dest::Client(c) = from {
                if !cached && u.ts == executed {
                    if let Some(r) = self.proofless_reply(c, u.ts) {
                        self.send(Dest::Client(c), Message::Reply(r));
                    }
                    return true;
                }
            }
            if let (Dest::Client(c), Some(r)) = (from, self.last_reply.get(&u.client).cloned()) {
                if r.ts == u.ts {
                    let r = if r.sig.is_empty() {
                        let mut signed = (*r).clone();
                        signed.server = self.cfg.id;
                        signed.sig = self
                            .crypto
                            .sign(&Message::Reply(Arc::new(signed.clone())).signing_bytes());
                        let signed = Arc::new(signed);
                        self.last_reply.insert(u.client, signed.clone());
                        signed
                    } else {
                        r
                    };
                    self.send(Dest::Client(c), Message::Reply(r));
                }
            }
            return true;
        }
        if matches!(from, Dest::Client(_)) {
            self.responsible.insert(u.client, u.clone());
        }
        self.note_pending(u.client, u.ts);
        if self.in_leader_site() && self.is_rep() {
            let pending = self.pending_ts.get(&u.client).copied().unwrap_or(0);
            if u.ts > pending {
                self.pending_ts.insert(u.client, u.ts);
                // At most one queued update per client: the newer replaces the older in its
                // place (the client moved on, so the older one is ordered or abandoned).
                match self.pool.iter().position(|q| q.client == u.client) {
                    Some(i) => self.pool[i] = u.clone(),
                    None => self.pool.push_back(u.clone()),
                }
                self.try_propose();
            }
        } else if self.is_rep() {
            // f+1 servers of the client's site forward the same update: send it over the WAN
            // once per retransmission period.
            let now = self.now;
            let recent = self
                .forwarded
                .get(&u.client)
                .is_some_and(|(ts, at)| *ts == u.ts && now < *at + self.cfg.retransmit);
            if !recent {
                self.forwarded.insert(u.client, (u.ts, now));
                let leader_rep = self.rep_of(self.leader_site());
                self.send(Dest::Server(leader_rep), Message::Update(u.clone()));
            }
        } else {
            let rep = self.rep_of(self.site());
            self.send(Dest::Server(rep), Message::Update(u.clone()));
        }
        true
    }

    /// A read-only query from a client of this site: answer from the local state.
    pub(crate) fn on_query(&mut self, client: u32, q: &Arc<Query>) -> bool {
        if q.client != client
            || !self.crypto.verify_client(
                client,
                &Message::Query(q.clone()).signing_bytes(),
                &q.sig,
            )
        {
            return false;
        }
        let mut reply = QueryReply {
            server: self.cfg.id,
            client,
            ts: q.ts,
            result: self.kv.read(&q.key),
            sig: Vec::new(),
        };
        reply.sig = self
            .crypto
            .sign(&Message::QueryReply(Arc::new(reply.clone())).signing_bytes());
        self.send(Dest::Client(client), Message::QueryReply(Arc::new(reply)));
        self.stats.queries_answered += 1;
        true
    }
}
