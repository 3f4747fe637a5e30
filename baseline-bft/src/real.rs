//! PBFT on the real network: the replica and client as runtime [`Core`]s, and their set-up
//! from a deployment directory. Used by `pbft-node` and by `loadgen`.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{anyhow, bail, Result};
use bft_core::crypto::{Crypto, RealCrypto};
use steward_config::ServerId;
use steward_crypto::signature::VerifyingKey;
use steward_deploy::Deployment;
use steward_runtime::{
    replica_transport, time_seed, wan_peers, Core, Effect, NodeArgs, NodeKind, NodeSetup, Protocol,
};

use crate::client::{Client, ClientAction, ClientConfig};
use crate::msg::Message;
use crate::replica::{Action, Dest, Replica, ReplicaConfig};

fn node_of(d: Dest) -> NodeKind {
    match d {
        Dest::Replica(r) => NodeKind::Pbft(r),
        Dest::Client(c) => NodeKind::Client(c),
    }
}

/// A PBFT replica as a runtime [`Core`].
pub struct ReplicaCore {
    replica: Replica,
}

impl ReplicaCore {
    /// Wraps a replica.
    pub fn new(replica: Replica) -> Self {
        ReplicaCore { replica }
    }

    fn emit(actions: Vec<Action>, out: &mut Vec<Effect>) {
        for a in actions {
            out.push(match a {
                Action::Send { to, env } => Effect::Send {
                    to: node_of(to),
                    bytes: env.wire,
                },
                Action::Timer { after, token } => Effect::Timer { after, token },
                Action::Executed(_) => Effect::Executed,
            });
        }
    }
}

impl Core for ReplicaCore {
    fn start(&mut self, now: Duration, out: &mut Vec<Effect>) {
        Self::emit(self.replica.start(now), out);
    }

    fn on_bytes(
        &mut self,
        now: Duration,
        from: NodeKind,
        bytes: &[u8],
        out: &mut Vec<Effect>,
    ) -> bool {
        let from = match from {
            NodeKind::Pbft(r) => Dest::Replica(r),
            NodeKind::Client(c) => Dest::Client(c),
            NodeKind::Server(_) => return false,
        };
        let Ok(msg) = Message::decode(bytes) else {
            return false;
        };
        Self::emit(self.replica.on_message(now, from, &msg), out);
        true
    }

    fn on_timer(&mut self, now: Duration, token: u64, out: &mut Vec<Effect>) {
        Self::emit(self.replica.on_timer(now, token), out);
    }

    fn stats(&self) -> serde_json::Map<String, serde_json::Value> {
        let r = self.replica.stats();
        let mut m = serde_json::Map::new();
        for (k, v) in [
            ("dropped_invalid", r.dropped_invalid),
            ("view_changes", r.view_changes),
            ("new_views", r.new_views),
            ("stable_checkpoints", r.stable_checkpoints),
            ("state_transfers", r.state_transfers),
            ("reads", r.reads),
        ] {
            m.insert(k.into(), v.into());
        }
        // The runtime's summary reads these two names for every protocol.
        m.insert("local_view_changes".into(), r.view_changes.into());
        m.insert("global_view_changes".into(), 0.into());
        m
    }
}

/// A closed-loop PBFT client as a runtime [`Core`].
pub struct ClientCore {
    client: Client,
}

impl ClientCore {
    fn emit(actions: Vec<ClientAction>, out: &mut Vec<Effect>) {
        for a in actions {
            out.push(match a {
                ClientAction::Send { to, env } => Effect::Send {
                    to: NodeKind::Pbft(to),
                    bytes: env.wire,
                },
                ClientAction::Timer { after, token } => Effect::Timer { after, token },
                ClientAction::Completed { latency, .. } => Effect::Completed { latency },
                ClientAction::BadReply(why) => Effect::BadReply(why),
            });
        }
    }
}

impl Core for ClientCore {
    fn start(&mut self, now: Duration, out: &mut Vec<Effect>) {
        Self::emit(self.client.start(now), out);
    }

    fn on_bytes(
        &mut self,
        now: Duration,
        from: NodeKind,
        bytes: &[u8],
        out: &mut Vec<Effect>,
    ) -> bool {
        let NodeKind::Pbft(r) = from else {
            return false;
        };
        let Ok(msg) = Message::decode(bytes) else {
            return false;
        };
        Self::emit(self.client.on_message(now, Dest::Replica(r), &msg), out);
        true
    }

    fn on_timer(&mut self, now: Duration, token: u64, out: &mut Vec<Effect>) {
        Self::emit(self.client.on_timer(now, token), out);
    }

    fn stop(&mut self) {
        self.client.stop();
    }
}

/// The public keys of a PBFT deployment: replica `i` signs as `ServerId::new(its site, i)`.
#[derive(Clone)]
pub struct PublicKeys {
    replicas: HashMap<ServerId, VerifyingKey>,
    clients: Vec<VerifyingKey>,
}

impl PublicKeys {
    /// Loads them from a deployment.
    pub fn load(dep: &Deployment) -> Result<Self> {
        let mut replicas = HashMap::new();
        for (i, site) in dep.topology.pbft.replicas.iter().enumerate() {
            let i = i as u32;
            replicas.insert(ServerId::new(*site, i), dep.pbft_public(i)?);
        }
        let clients = (0..dep.manifest.clients)
            .map(|c| dep.client_public(c))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(PublicKeys { replicas, clients })
    }
}

fn parse_replica(id: &str) -> Result<u32> {
    let digits = id
        .strip_prefix('r')
        .ok_or_else(|| anyhow!("--id: expected r<index>, got {id:?}"))?;
    match NodeKind::parse(&format!("pbft-r{digits}")) {
        Some(NodeKind::Pbft(r)) => Ok(r),
        _ => bail!("--id: expected r<index>, got {id:?}"),
    }
}

/// Everything a PBFT replica process needs, from its command-line arguments (`--id r<i>`).
pub fn replica_setup(args: &NodeArgs) -> Result<NodeSetup> {
    let r = parse_replica(&args.id)?;
    if args.batch == 0 {
        bail!("--batch must be at least 1");
    }
    let dep = Deployment::load(&args.deployment)?;
    let placement = &dep.topology.pbft;
    let Some(&site) = placement.replicas.get(r as usize) else {
        bail!(
            "{}: no PBFT replica r{r} (the deployment has {})",
            args.deployment.display(),
            placement.n()
        );
    };
    let signing = dep.pbft_secret(r)?;
    let transport = replica_transport(
        &dep,
        args,
        Protocol::Pbft,
        NodeKind::Pbft(r),
        site,
        dep.pbft_tls(r)?,
    )?;
    let keys = PublicKeys::load(&dep)?;
    let crypto = Crypto::new(Box::new(RealCrypto::new(
        Some(signing),
        None,
        Vec::new(),
        keys.replicas,
        keys.clients,
        time_seed(),
    )));
    let mut cfg = ReplicaConfig::new(
        r,
        placement.replicas.clone(),
        placement.f,
        placement.primary,
    );
    cfg.batch = args.batch;
    Ok(NodeSetup {
        transport,
        core: Box::new(ReplicaCore::new(Replica::new(cfg, crypto))),
        wan_peers: wan_peers(Protocol::Pbft, &dep.topology, site),
        description: format!(
            "pbft, wan {}, {} replicas (f = {}), {} client keys, batch {}",
            args.wan,
            placement.n(),
            placement.f,
            dep.manifest.clients,
            args.batch
        ),
    })
}

/// Client `c` of a deployment, issuing `write_pct`% updates of 200-byte values; reads use the
/// read-only optimisation.
pub fn client_core(
    dep: &Deployment,
    keys: &PublicKeys,
    c: u32,
    write_pct: u32,
    seed: u64,
) -> Result<ClientCore> {
    let placement = &dep.topology.pbft;
    let crypto = Crypto::new(Box::new(RealCrypto::new(
        Some(dep.client_secret(c)?),
        None,
        Vec::new(),
        keys.replicas.clone(),
        keys.clients.clone(),
        seed ^ 0x5eed,
    )));
    let client = Client::new(
        ClientConfig {
            id: c,
            sites: placement.replicas.clone(),
            f: placement.f,
            primary: placement.primary,
            write_pct,
            value_len: 200,
            timeout: Duration::from_secs(2),
            read_only: true,
            seed,
        },
        crypto,
    );
    Ok(ClientCore { client })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replica_ids_parse() {
        assert_eq!(parse_replica("r0").unwrap(), 0);
        assert_eq!(parse_replica("r15").unwrap(), 15);
        for bad in ["0", "r", "r01", "rx", "s0.1", "r-1"] {
            assert!(parse_replica(bad).is_err(), "{bad}");
        }
    }
}
