//! PBFT on the real network: its replica and client set up from a deployment directory,
//! driven by the runtime's generic [`NodeCore`]. Used by `pbft-node` and by `loadgen`.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{anyhow, bail, Result};
use bft_core::crypto::{Crypto, RealCrypto};
use pbft::client::{Client, ClientConfig};
use pbft::replica::{Replica, ReplicaConfig};
use steward_config::ServerId;
use steward_crypto::signature::VerifyingKey;
use steward_deploy::Deployment;
use steward_runtime::{
    open_durable, replica_transport, time_seed, wan_peers, NodeArgs, NodeCore, NodeKind, NodeSetup,
    Protocol,
};

/// A PBFT replica driven by the runtime.
pub type ReplicaCore = NodeCore<Replica>;
/// A closed-loop PBFT client driven by the runtime.
pub type ClientCore = NodeCore<Client>;

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
    let durable = open_durable(args, NodeKind::Pbft(r))?;
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
        core: Box::new(NodeCore::new(Replica::new(cfg, crypto))),
        wan_peers: wan_peers(Protocol::Pbft, &dep.topology, site),
        description: format!(
            "pbft, wan {}, {} replicas (f = {}), {} client keys, batch {}",
            args.wan,
            placement.n(),
            placement.f,
            dep.manifest.clients,
            args.batch
        ),
        durable,
        protocol: Protocol::Pbft,
        metrics: args.metrics,
        threads: args.threads,
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
    Ok(NodeCore::new(client))
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
