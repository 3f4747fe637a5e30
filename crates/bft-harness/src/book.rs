//! Who is who in a simulation: node identities and simulator process ids, both ways.

use std::collections::HashMap;

use bft_core::NodeId;
use steward_config::{ServerId, SiteId};
use steward_sim::ProcId;

/// One registered process.
#[derive(Clone, Copy, Debug)]
struct Entry {
    id: NodeId,
    site: SiteId,
    correct: bool,
}

/// The address book of a simulated deployment: processes are registered in the order they
/// are added to the simulator, so a process id is the registration index.
#[derive(Debug, Default)]
pub struct AddressBook {
    entries: Vec<Entry>,
    /// `servers[site][index]`: the process of a Steward server.
    servers: Vec<Vec<ProcId>>,
    replicas: Vec<ProcId>,
    clients: Vec<ProcId>,
    /// Identities that are not registered densely (never in the shipped worlds).
    others: HashMap<NodeId, ProcId>,
}

impl AddressBook {
    /// Registers the next process: node `id` at `site`; `correct` is false for a Byzantine or
    /// crashing node (its bad replies are expected, its executions are not checked).
    pub fn register(&mut self, id: NodeId, site: SiteId, correct: bool) -> ProcId {
        let p = self.entries.len();
        self.entries.push(Entry { id, site, correct });
        let dense = match id {
            NodeId::Server(s) => {
                let site = s.site.index();
                if self.servers.len() <= site {
                    self.servers.resize(site + 1, Vec::new());
                }
                push_at(&mut self.servers[site], s.index as usize, p)
            }
            NodeId::Replica(i) => push_at(&mut self.replicas, i as usize, p),
            NodeId::Client(c) => push_at(&mut self.clients, c as usize, p),
        };
        if !dense {
            self.others.insert(id, p);
        }
        p
    }

    /// The process of node `id`.
    ///
    /// # Panics
    /// If `id` was never registered: the cores only address nodes of their deployment.
    pub fn proc_of(&self, id: NodeId) -> ProcId {
        let dense = match id {
            NodeId::Server(s) => self
                .servers
                .get(s.site.index())
                .and_then(|v| v.get(s.index as usize)),
            NodeId::Replica(i) => self.replicas.get(i as usize),
            NodeId::Client(c) => self.clients.get(c as usize),
        };
        match dense.or_else(|| self.others.get(&id)) {
            Some(p) => *p,
            None => panic!("no process for {id:?}"),
        }
    }

    /// The node of process `p`.
    pub fn id_of(&self, p: ProcId) -> NodeId {
        self.entries[p].id
    }

    /// Whether process `p` is a correct node.
    pub fn is_correct(&self, p: ProcId) -> bool {
        self.entries[p].correct
    }

    /// The server identity the safety checker uses for process `p`: the Steward server id,
    /// or `s<site>.<i>` for flat replica `i`.
    pub fn server_of(&self, p: ProcId) -> Option<ServerId> {
        let e = &self.entries[p];
        match e.id {
            NodeId::Server(s) => Some(s),
            NodeId::Replica(i) => Some(ServerId::new(e.site, i)),
            NodeId::Client(_) => None,
        }
    }

    /// Registered processes.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True before the first registration.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Records `p` at `v[i]` if `i` is the next free index; false otherwise.
fn push_at(v: &mut Vec<ProcId>, i: usize, p: ProcId) -> bool {
    if v.len() == i {
        v.push(p);
        true
    } else {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_both_ways() {
        let mut b = AddressBook::default();
        let s = |site, i| NodeId::Server(ServerId::new(SiteId(site), i));
        assert_eq!(b.register(s(0, 0), SiteId(0), true), 0);
        assert_eq!(b.register(s(0, 1), SiteId(0), false), 1);
        assert_eq!(b.register(s(1, 0), SiteId(1), true), 2);
        assert_eq!(b.register(NodeId::Client(0), SiteId(1), true), 3);
        assert_eq!(b.register(NodeId::Replica(0), SiteId(1), true), 4);
        for p in 0..5 {
            assert_eq!(b.proc_of(b.id_of(p)), p);
        }
        assert!(!b.is_correct(1));
        assert_eq!(b.server_of(4), Some(ServerId::new(SiteId(1), 0)));
        assert_eq!(b.server_of(3), None);
    }
}
