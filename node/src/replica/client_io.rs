//! Client-facing handling: updates (forwarding towards the leader-site representative,
//! duplicate suppression, replies to retransmissions) and read-only queries answered locally.

use std::sync::Arc;
use std::time::Duration;

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
        if !self.client_sigs.verify(&mut self.crypto, u) {
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
        } else if self.in_leader_site() && !self.responsible.contains_key(&u.client) {
            let newer = self.relayed.get(&u.client).is_none_or(|r| r.ts < u.ts);
            if newer {
                self.relayed.insert(u.client, u.clone());
            }
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
    ///
    /// A client's queries are answered in timestamp order, each once: a copy of the last
    /// answered query gets the cached reply (at most once per retransmission period, and
    /// without checking or making a signature again), an older one nothing. A fresh query
    /// takes a token from the client's bucket before its signature is checked; without one it
    /// waits for a later tick. So neither a replayed query nor a flood of fresh ones can buy
    /// more than a bounded share of this server's CPU (issue #14, attack 2).
    pub(crate) fn on_query(&mut self, client: u32, q: &Arc<Query>) -> bool {
        if q.client != client {
            return false;
        }
        let now = self.now;
        let period = self.cfg.retransmit;
        let st = self
            .queries
            .entry(client)
            .or_insert_with(|| QueryState::new(now));
        st.refill(now);
        if let Some((last, reply)) = &st.answered {
            if q.ts < last.ts {
                return true;
            }
            if q.ts == last.ts {
                if **q != **last {
                    return false; // another query under a timestamp already used
                }
                if now < st.sent_at + period {
                    return true;
                }
                st.sent_at = now;
                // A retransmission: the client got no f+1 matching answers. The cached reply
                // does if the store has not moved since; otherwise a fresh read may, for a
                // token.
                let current = self.kv.read(&q.key);
                if current != reply.result && st.tokens > 0 {
                    st.tokens -= 1;
                    self.answer_query(q);
                } else {
                    let reply = reply.clone();
                    self.send(Dest::Client(client), Message::QueryReply(reply));
                }
                return true;
            }
        }
        if st.tokens == 0 {
            self.stats.queries_deferred += 1;
            if st.deferred.as_ref().is_none_or(|d| d.ts < q.ts) {
                st.deferred = Some(q.clone());
            }
            return true;
        }
        st.tokens -= 1;
        if !self
            .crypto
            .verify_client(client, &Message::Query(q.clone()).signing_bytes(), &q.sig)
        {
            return false;
        }
        self.answer_query(q);
        true
    }

    /// Read, sign and send the answer to a verified query, and cache it.
    fn answer_query(&mut self, q: &Arc<Query>) {
        let mut reply = QueryReply {
            server: self.cfg.id,
            client: q.client,
            ts: q.ts,
            result: self.kv.read(&q.key),
            sig: Vec::new(),
        };
        reply.sig = self
            .crypto
            .sign(&Message::QueryReply(Arc::new(reply.clone())).signing_bytes());
        let reply = Arc::new(reply);
        self.send(Dest::Client(q.client), Message::QueryReply(reply.clone()));
        self.stats.queries_answered += 1;
        let now = self.now;
        if let Some(st) = self.queries.get_mut(&q.client) {
            st.answered = Some((q.clone(), reply));
            st.sent_at = now;
            if st.deferred.as_ref().is_some_and(|d| d.ts <= q.ts) {
                st.deferred = None;
            }
        }
    }

    /// On the retransmission tick: answer the queries deferred for want of tokens, as far as
    /// the clients' buckets have refilled.
    pub(crate) fn answer_deferred_queries(&mut self) {
        let now = self.now;
        let ready: Vec<Arc<Query>> = self
            .queries
            .values_mut()
            .filter_map(|st| {
                st.refill(now);
                if st.tokens == 0 {
                    return None;
                }
                let q = st.deferred.take()?;
                st.tokens -= 1;
                Some(q)
            })
            .collect();
        for q in ready {
            let valid = self.crypto.verify_client(
                q.client,
                &Message::Query(q.clone()).signing_bytes(),
                &q.sig,
            );
            if valid {
                self.answer_query(&q);
            }
        }
    }
}

/// Fresh queries a client may have answered in a burst (its bucket's size).
const QUERY_BURST: u32 = 50;

/// One token returns to a client's bucket every this long (200 fresh queries a second).
const QUERY_REFILL: Duration = Duration::from_millis(5);

/// What a server keeps per client for its queries: constant-size (one query, one reply, one
/// deferred query, a token bucket).
pub(crate) struct QueryState {
    /// The last query answered (its signature checked) and the reply sent for it.
    answered: Option<(Arc<Query>, Arc<QueryReply>)>,
    /// When that reply was last sent.
    sent_at: Duration,
    /// Fresh queries the client may have checked and answered right now.
    tokens: u32,
    /// When the bucket was last refilled.
    refilled: Duration,
    /// The newest fresh query that found the bucket empty; answered on a later tick.
    deferred: Option<Arc<Query>>,
}

impl QueryState {
    fn new(now: Duration) -> Self {
        QueryState {
            answered: None,
            sent_at: Duration::ZERO,
            tokens: QUERY_BURST,
            refilled: now,
            deferred: None,
        }
    }

    fn refill(&mut self, now: Duration) {
        let elapsed = now.saturating_sub(self.refilled);
        let earned = (elapsed.as_nanos() / QUERY_REFILL.as_nanos()) as u64;
        if earned == 0 {
            return;
        }
        let tokens = u64::from(self.tokens) + earned;
        if tokens >= u64::from(QUERY_BURST) {
            self.tokens = QUERY_BURST;
            self.refilled = now;
        } else {
            self.tokens = tokens as u32;
            self.refilled += QUERY_REFILL * earned as u32;
        }
    }
}
