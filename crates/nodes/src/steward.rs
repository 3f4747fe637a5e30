//! Steward on the real network: its replica and client set up from a deployment directory,
//! driven by the runtime's generic [`NodeCore`]. Used by `steward-node` and by `loadgen`.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{anyhow, bail, Result};
use steward::client::{Client, ClientConfig};
use steward::crypto::{Crypto, RealCrypto};
use steward::replica::{Replica, ReplicaConfig};
use steward_config::ServerId;
use steward_deploy::Deployment;
use steward_runtime::{
    open_durable, replica_transport, time_seed, wan_peers, NodeArgs, NodeCore, NodeKind, NodeSetup,
    Protocol,
};

/// A Steward replica driven by the runtime.
pub type ReplicaCore = NodeCore<Replica>;
/// A closed-loop Steward client driven by the runtime.
pub type ClientCore = NodeCore<Client>;

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
    let durable = open_durable(args, NodeKind::Server(id))?;
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
    // As the simulator: T1 from the topology (long-RTT ones, planetlab: 2.3 s, need more than
    // the 0.5 s default) and the latencies the forwarding watch judges by.
    rcfg.apply_topology(&dep.topology);
    Ok(NodeSetup {
        transport,
        core: Box::new(NodeCore::new(Replica::new(rcfg, crypto))),
        wan_peers: wan_peers(Protocol::Steward, &dep.topology, id.site),
        description: format!(
            "steward, wan {}, {} sites, {} client keys, batch {}",
            args.wan,
            dep.topology.sites.len(),
            dep.manifest.clients,
            args.batch
        ),
        durable,
        protocol: Protocol::Steward,
        metrics: args.metrics,
        threads: args.threads,
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
    Ok(NodeCore::new(client))
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use bytes::Bytes;
    use steward_config::SiteId;
    use steward_net::{DeploymentCa, Transport, TransportConfig};
    use steward_runtime::drive;

    use super::*;
    use steward::crypto::{FastCrypto, FastIdentity, FastWorld};

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
        let mut core = NodeCore::new(Replica::new(
            ReplicaConfig::new(id, vec![4], vec![1]),
            crypto,
        ));
        let t = server.clone();
        let task = tokio::spawn(async move {
            drive(
                &mut core,
                &mut inbound,
                &t,
                None,
                std::future::pending(),
                |_| {},
            )
            .await
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
