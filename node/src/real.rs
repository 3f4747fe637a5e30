//! Steward on the real network: the replica and client as [`Core`]s for the runtime's driver,
//! and their set-up from a deployment directory. Used by `steward-node` and by `loadgen`.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use anyhow::{anyhow, bail, Result};
use steward_config::ServerId;
use steward_deploy::Deployment;
use steward_runtime::{
    replica_transport, time_seed, wan_peers, Core, Effect, NodeArgs, NodeKind, NodeSetup, Protocol,
};

use crate::client::{Client, ClientAction, ClientConfig};
use crate::crypto::{Crypto, RealCrypto};
use crate::msg::Message;
use crate::replica::{Action, Dest, Replica, ReplicaConfig};

fn node_of(d: Dest) -> NodeKind {
    match d {
        Dest::Server(s) => NodeKind::Server(s),
        Dest::Client(c) => NodeKind::Client(c),
    }
}

/// A Steward replica as a runtime [`Core`]; messages it sends to itself are delivered before
/// the next input.
pub struct ReplicaCore {
    replica: Replica,
    me: Dest,
}

impl ReplicaCore {
    /// Wraps a replica.
    pub fn new(replica: Replica) -> Self {
        let me = Dest::Server(replica.id());
        ReplicaCore { replica, me }
    }

    fn emit(&mut self, now: Duration, mut actions: Vec<Action>, out: &mut Vec<Effect>) {
        let mut loopback = VecDeque::new();
        loop {
            for a in actions.drain(..) {
                match a {
                    Action::Send { to, env } if to == self.me => loopback.push_back(env.msg),
                    Action::Send { to, env } => out.push(Effect::Send {
                        to: node_of(to),
                        bytes: env.wire,
                    }),
                    Action::Timer { after, token } => out.push(Effect::Timer { after, token }),
                    Action::Executed(_) => out.push(Effect::Executed),
                }
            }
            match loopback.pop_front() {
                Some(msg) => actions = self.replica.on_message(now, self.me, &msg),
                None => break,
            }
        }
    }
}

impl Core for ReplicaCore {
    fn start(&mut self, now: Duration, out: &mut Vec<Effect>) {
        let a = self.replica.start(now);
        self.emit(now, a, out);
    }

    fn on_bytes(
        &mut self,
        now: Duration,
        from: NodeKind,
        bytes: &[u8],
        out: &mut Vec<Effect>,
    ) -> bool {
        let from = match from {
            NodeKind::Server(s) => Dest::Server(s),
            NodeKind::Client(c) => Dest::Client(c),
            NodeKind::Pbft(_) => return false,
        };
        let Ok(msg) = Message::decode(bytes) else {
            return false;
        };
        let a = self.replica.on_message(now, from, &msg);
        self.emit(now, a, out);
        true
    }

    fn on_timer(&mut self, now: Duration, token: u64, out: &mut Vec<Effect>) {
        let a = self.replica.on_timer(now, token);
        self.emit(now, a, out);
    }

    fn stats(&self) -> serde_json::Map<String, serde_json::Value> {
        let r = self.replica.stats();
        let mut m = serde_json::Map::new();
        for (k, v) in [
            ("dropped_invalid", r.dropped_invalid),
            ("blacklisted", r.blacklisted),
            ("local_view_changes", r.local_view_changes),
            ("global_view_changes", r.global_view_changes),
            ("state_transfers", r.state_transfers),
            ("queries_answered", r.queries_answered),
            ("combine_fallbacks", r.combine_fallbacks),
            ("reps_suspected", r.reps_suspected),
        ] {
            m.insert(k.into(), v.into());
        }
        m
    }
}

/// A closed-loop Steward client as a runtime [`Core`].
pub struct ClientCore {
    client: Client,
}

impl ClientCore {
    fn emit(&mut self, actions: Vec<ClientAction>, out: &mut Vec<Effect>) {
        for a in actions {
            out.push(match a {
                ClientAction::Send { to, env } => Effect::Send {
                    to: NodeKind::Server(to),
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
        let a = self.client.start(now);
        self.emit(a, out);
    }

    fn on_bytes(
        &mut self,
        now: Duration,
        from: NodeKind,
        bytes: &[u8],
        out: &mut Vec<Effect>,
    ) -> bool {
        let NodeKind::Server(s) = from else {
            return false;
        };
        let Ok(msg) = Message::decode(bytes) else {
            return false;
        };
        let a = self.client.on_message(now, Dest::Server(s), &msg);
        self.emit(a, out);
        true
    }

    fn on_timer(&mut self, now: Duration, token: u64, out: &mut Vec<Effect>) {
        let a = self.client.on_timer(now, token);
        self.emit(a, out);
    }

    fn stop(&mut self) {
        self.client.stop();
    }
}

/// Verifying keys of every Steward server of a deployment.
fn server_keys(
    dep: &Deployment,
) -> Result<HashMap<ServerId, steward_crypto::signature::VerifyingKey>> {
    let mut servers = HashMap::new();
    for s in dep.topology.steward_servers() {
        servers.insert(s, dep.steward_public(s)?);
    }
    Ok(servers)
}

fn site_keys(dep: &Deployment) -> Result<Vec<steward_crypto::threshold::ThresholdPublicKey>> {
    Ok(dep
        .topology
        .sites
        .iter()
        .map(|s| dep.site_threshold_key(s.id))
        .collect::<Result<Vec<_>, _>>()?)
}

fn client_keys(dep: &Deployment) -> Result<Vec<steward_crypto::signature::VerifyingKey>> {
    Ok((0..dep.manifest.clients)
        .map(|c| dep.client_public(c))
        .collect::<Result<Vec<_>, _>>()?)
}

/// Everything a Steward replica process needs, from its command-line arguments.
pub fn replica_setup(args: &NodeArgs) -> Result<NodeSetup> {
    let id = ServerId::parse(&args.id).map_err(|e| anyhow!("--id: {e}"))?;
    if args.batch == 0 {
        bail!("--batch must be at least 1");
    }
    let dep = Deployment::load(&args.deployment)?;
    if !dep.topology.has_server(id) {
        bail!(
            "{}: no Steward server {id} in this deployment",
            args.deployment.display()
        );
    }
    let secrets = dep.steward_secrets(id)?;
    let sites = site_keys(&dep)?;
    let transport = replica_transport(
        &dep,
        args,
        Protocol::Steward,
        NodeKind::Server(id),
        id.site,
        dep.steward_tls(id)?,
    )?;
    let own_site = sites[id.site.index()].clone();
    let crypto = Crypto::new(Box::new(RealCrypto::new(
        Some(secrets.signing),
        Some((own_site, secrets.share)),
        sites,
        server_keys(&dep)?,
        client_keys(&dep)?,
        time_seed(),
    )));
    let sizes: Vec<u32> = dep.topology.sites.iter().map(|s| s.servers).collect();
    let fs: Vec<u32> = dep.topology.sites.iter().map(|s| s.f).collect();
    let mut rcfg = ReplicaConfig::new(id, sizes, fs);
    rcfg.batch = args.batch;
    Ok(NodeSetup {
        transport,
        core: Box::new(ReplicaCore::new(Replica::new(rcfg, crypto))),
        wan_peers: wan_peers(Protocol::Steward, &dep.topology, id.site),
        description: format!(
            "steward, wan {}, {} sites, {} client keys, batch {}",
            args.wan,
            dep.topology.sites.len(),
            dep.manifest.clients,
            args.batch
        ),
    })
}

/// The public keys a client needs, loaded once for many clients.
#[derive(Clone)]
pub struct ClientKeys {
    sites: Vec<steward_crypto::threshold::ThresholdPublicKey>,
    servers: HashMap<ServerId, steward_crypto::signature::VerifyingKey>,
    clients: Vec<steward_crypto::signature::VerifyingKey>,
}

impl ClientKeys {
    /// Loads them from a deployment.
    pub fn load(dep: &Deployment) -> Result<Self> {
        Ok(ClientKeys {
            sites: site_keys(dep)?,
            servers: server_keys(dep)?,
            clients: client_keys(dep)?,
        })
    }
}

/// Client `c` of a deployment, issuing `write_pct`% updates of 200-byte values.
pub fn client_core(
    dep: &Deployment,
    keys: &ClientKeys,
    c: u32,
    write_pct: u32,
    seed: u64,
) -> Result<ClientCore> {
    let site = steward_runtime::client_site(&dep.topology, dep.manifest.clients, c);
    let crypto = Crypto::new(Box::new(RealCrypto::new(
        Some(dep.client_secret(c)?),
        None,
        keys.sites.clone(),
        keys.servers.clone(),
        keys.clients.clone(),
        seed ^ 0x5eed,
    )));
    let client = Client::new(
        ClientConfig {
            id: c,
            site,
            servers: dep.topology.sites.iter().map(|s| s.servers).collect(),
            f: dep.topology.sites.iter().map(|s| s.f).collect(),
            write_pct,
            value_len: 200,
            timeout: Duration::from_secs(2),
            seed,
        },
        crypto,
    );
    Ok(ClientCore { client })
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use bytes::Bytes;
    use steward_config::SiteId;
    use steward_net::{DeploymentCa, Transport, TransportConfig};
    use steward_runtime::drive;

    use super::*;
    use crate::crypto::{FastCrypto, FastIdentity, FastWorld};

    /// Garbage from an authenticated client is counted and dropped; the replica keeps running
    /// and the driver ends cleanly when the transport closes.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn malformed_input_is_counted_and_dropped() {
        let ca = DeploymentCa::generate("test").unwrap();
        let id = ServerId::new(SiteId(0), 0);
        let rname = NodeKind::Server(id).name();
        let cname = NodeKind::Client(0).name();
        let local = "127.0.0.1:0".parse().unwrap();
        let mut rcfg = TransportConfig::new(
            rname.clone(),
            ca.issue(rname.as_str()).unwrap(),
            ca.cert_der().to_vec(),
            local,
        );
        rcfg.allowed_peers.insert(cname.clone());
        let (server, mut inbound) = Transport::bind(rcfg).unwrap();
        let mut ccfg = TransportConfig::new(
            cname.clone(),
            ca.issue(cname.as_str()).unwrap(),
            ca.cert_der().to_vec(),
            local,
        );
        ccfg.peers.insert(rname.clone(), server.local_addr());
        let (client, _client_inbound) = Transport::bind(ccfg).unwrap();

        let world = FastWorld::new(1, 64, 307, 128, vec![3]);
        let crypto = Crypto::new(Box::new(FastCrypto::new(world, FastIdentity::Server(id))));
        let mut core = ReplicaCore::new(Replica::new(
            ReplicaConfig::new(id, vec![4], vec![1]),
            crypto,
        ));
        let t = server.clone();
        let task = tokio::spawn(async move {
            drive(&mut core, &mut inbound, &t, std::future::pending(), |_| {}).await
        });

        for junk in [&b"\xff\xff\xff"[..], b"x", &[0u8; 300]] {
            client.send(&rname, Bytes::copy_from_slice(junk)).unwrap();
        }
        // Wait (bounded) until the transport delivered all three, then close it: the driver
        // drains what was delivered and stops.
        let deadline = Instant::now() + Duration::from_secs(10);
        while server.stats(&cname).map_or(0, |s| s.messages_received) < 3 {
            assert!(Instant::now() < deadline, "messages not delivered");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        server.shutdown().await;
        drop(server);
        let stats = tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .expect("the driver ends when the transport closes")
            .unwrap();
        assert_eq!(stats.received, 3);
        assert_eq!(stats.malformed, 3);
        client.shutdown().await;
    }
}
