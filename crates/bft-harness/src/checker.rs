//! The safety checker every simulated run of either protocol uses: it judges executions and
//! replies, not protocol messages.
//!
//! * S1 (safety): no two correct servers execute different updates at the same (seq, index).
//! * S2 (validity): only updates a client proposed execute, and each at most once per server.
//! * Every reply a client receives from a correct server verifies.

use std::collections::HashMap;

use steward_config::ServerId;

use bft_core::{ClientId, Digest, Executed, Proposed};

/// Incremental checker; records the first violation it sees.
#[derive(Default, Debug)]
pub struct SafetyChecker {
    slots: HashMap<(u64, u32), Digest>,
    proposed: HashMap<(ClientId, u64), Digest>,
    /// Per server incarnation (a restarted server replays what it executed before its
    /// crash) and client: the last timestamp executed.
    last_ts: HashMap<(ServerId, u64, ClientId), u64>,
    violations: Vec<String>,
    executions: u64,
    /// Virtual time at which each (seq, index) was first executed by a correct server.
    first_exec: Vec<std::time::Duration>,
    /// Result digest of each update as the correct servers computed it.
    results: HashMap<(ClientId, u64), Digest>,
    /// Result digest each client accepted for its update.
    accepted: HashMap<(ClientId, u64), Digest>,
    /// When each client completed an operation (per-client liveness).
    completions: HashMap<ClientId, Vec<std::time::Duration>>,
}

impl SafetyChecker {
    /// A client proposed an update.
    pub fn proposed(&mut self, p: &Proposed) {
        self.proposed.insert((p.client, p.ts), p.digest);
    }

    /// A client completed an operation at virtual time `now`.
    pub fn completed(&mut self, client: ClientId, now: std::time::Duration) {
        self.completions.entry(client).or_default().push(now);
    }

    /// Clients among `0..clients` that completed nothing in [from, to): per-client liveness
    /// (one starved client is a failure even when the others progress).
    pub fn starved_clients(
        &self,
        clients: u32,
        from: std::time::Duration,
        to: std::time::Duration,
    ) -> Vec<ClientId> {
        (0..clients)
            .filter(|c| {
                !self
                    .completions
                    .get(c)
                    .is_some_and(|ts| ts.iter().any(|t| *t >= from && *t < to))
            })
            .collect()
    }

    /// When `client` completed its operations, in virtual time order.
    pub fn completions_of(&self, client: ClientId) -> &[std::time::Duration] {
        self.completions.get(&client).map_or(&[], |v| v.as_slice())
    }

    /// A correct server in its `incarnation` (restarts so far) executed an update at
    /// virtual time `now`.
    pub fn executed_at(
        &mut self,
        server: ServerId,
        incarnation: u64,
        e: &Executed,
        now: std::time::Duration,
    ) {
        if !self.slots.contains_key(&(e.seq, e.index)) {
            self.first_exec.push(now);
        }
        self.executed_in(server, incarnation, e);
    }

    /// When ordering resumed after the stall a fault at `t` caused: the end of the first pause
    /// in executions after `t` that is much longer than the pauses before it (4 times their
    /// 90th percentile, at least 250 ms); without such a pause, the first execution after `t`.
    pub fn resumed_after(&self, t: std::time::Duration) -> Option<std::time::Duration> {
        let i = self.first_exec.partition_point(|x| *x < t);
        let mut before: Vec<std::time::Duration> = self.first_exec[..i]
            .windows(2)
            .map(|w| w[1] - w[0])
            .collect();
        before.sort_unstable();
        let p90 = before
            .get(before.len() * 9 / 10)
            .copied()
            .unwrap_or_default();
        let threshold = (4 * p90).max(std::time::Duration::from_millis(250));
        let after = &self.first_exec[i..];
        let mut prev = t;
        for &x in after {
            if x - prev > threshold {
                return Some(x);
            }
            prev = x;
        }
        after.first().copied()
    }

    /// Updates first executed in [from, to).
    pub fn executions_between(&self, from: std::time::Duration, to: std::time::Duration) -> usize {
        let a = self.first_exec.partition_point(|x| *x < from);
        let b = self.first_exec.partition_point(|x| *x < to);
        b - a
    }

    /// A correct server that never restarted executed an update.
    pub fn executed(&mut self, server: ServerId, e: &Executed) {
        self.executed_in(server, 0, e);
    }

    fn executed_in(&mut self, server: ServerId, incarnation: u64, e: &Executed) {
        self.executions += 1;
        match self.slots.get(&(e.seq, e.index)) {
            Some(d) if *d != e.digest => self.violate(format!(
                "S1: {server} executed a different update at seq {} index {}",
                e.seq, e.index
            )),
            Some(_) => {}
            None => {
                self.slots.insert((e.seq, e.index), e.digest);
            }
        }
        match self.proposed.get(&(e.client, e.ts)) {
            Some(d) if *d == e.digest => {}
            _ => self.violate(format!(
                "S2: {server} executed update (client {}, ts {}) that no client proposed",
                e.client, e.ts
            )),
        }
        // State agreement: correct servers compute the same result for an update, and it is
        // the one the client accepted.
        let key = (e.client, e.ts);
        match self.results.get(&key) {
            Some(r) if *r != e.result => self.violate(format!(
                "state: {server} computed another result for (client {}, ts {})",
                e.client, e.ts
            )),
            Some(_) => {}
            None => {
                self.results.insert(key, e.result);
            }
        }
        if self.accepted.get(&key).is_some_and(|a| *a != e.result) {
            self.violate(format!(
                "result: client {} accepted for ts {} a result no correct server computed",
                e.client, e.ts
            ));
        }
        let last = self
            .last_ts
            .insert((server, incarnation, e.client), e.ts)
            .unwrap_or(0);
        if e.ts <= last {
            self.violate(format!(
                "S2: {server} executed (client {}, ts {}) after ts {last}",
                e.client, e.ts
            ));
        }
    }

    /// A client accepted `result` (its digest) as the result of its update `ts`.
    pub fn accepted_result(&mut self, client: ClientId, ts: u64, result: Digest) {
        if self
            .results
            .get(&(client, ts))
            .is_some_and(|r| *r != result)
        {
            self.violate(format!(
                "result: client {client} accepted for ts {ts} a result no correct server computed"
            ));
        }
        self.accepted.insert((client, ts), result);
    }

    /// A client rejected a reply from a correct server.
    pub fn bad_reply(&mut self, client: ClientId, server: ServerId, why: &str) {
        self.violate(format!(
            "reply from correct server {server} to client {client} failed verification: {why}"
        ));
    }

    fn violate(&mut self, v: String) {
        if self.violations.len() < 16 {
            self.violations.push(v);
        }
    }

    /// Violations seen (at most 16 are kept).
    pub fn violations(&self) -> &[String] {
        &self.violations
    }

    /// Executions checked.
    pub fn executions(&self) -> u64 {
        self.executions
    }

    /// "ok" or the first violation.
    pub fn verdict(&self) -> String {
        self.violations
            .first()
            .cloned()
            .unwrap_or_else(|| "ok".to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use steward_config::SiteId;

    fn prop(client: u32, ts: u64, d: u8) -> Proposed {
        Proposed {
            client,
            ts,
            digest: [d; 32],
        }
    }

    fn ex(seq: u64, client: u32, ts: u64, d: u8) -> Executed {
        Executed {
            seq,
            index: 0,
            client,
            ts,
            digest: [d; 32],
            result: [0; 32],
        }
    }

    #[test]
    fn detects_each_violation() {
        let s0 = ServerId::new(SiteId(0), 0);
        let s1 = ServerId::new(SiteId(0), 1);
        let mut c = SafetyChecker::default();
        c.proposed(&prop(1, 1, 1));
        c.proposed(&prop(1, 2, 2));
        c.executed(s0, &ex(1, 1, 1, 1));
        c.executed(s1, &ex(1, 1, 1, 1));
        assert_eq!(c.verdict(), "ok");
        c.executed(s1, &ex(2, 1, 2, 3)); // digest not proposed
        assert!(c.verdict().starts_with("S2"), "{}", c.verdict());
        let mut c2 = SafetyChecker::default();
        c2.proposed(&prop(1, 1, 1));
        c2.proposed(&prop(2, 1, 2));
        c2.executed(s0, &ex(1, 1, 1, 1));
        c2.executed(s1, &ex(1, 2, 1, 2));
        assert!(c2.verdict().starts_with("S1"), "{}", c2.verdict());
        let mut c3 = SafetyChecker::default();
        c3.proposed(&prop(1, 1, 1));
        c3.executed(s0, &ex(1, 1, 1, 1));
        c3.executed(s0, &ex(2, 1, 1, 1));
        assert!(c3.verdict().contains("after ts"), "{}", c3.verdict());
    }
}
