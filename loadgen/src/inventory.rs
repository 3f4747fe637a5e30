//! `loadgen inventory --topology <file> --hosts <hosts file> --out <dir>`: places every Steward
//! server (`s<site>.<i>`), PBFT replica (`r<i>`) and client on a host and writes
//!
//! * `<out>/inventory.yml`: an Ansible inventory (groups `steward`, `pbft`, `clients`,
//!   `site_<site>`; per host: `ansible_host`, `node_address`, `site`, its `steward_nodes`,
//!   `pbft_nodes` and `client_nodes` with their ports, and its rendered `tc` commands
//!   `shape_netem` / `shape_htb`, see [`crate::shaping`]);
//! * `<out>/shape/<host>.{netem,htb}.sh`: the same tc commands as shell scripts;
//! * `<out>/addresses.json`: node name -> address for both protocols and the clients (also
//!   written into `--deployment` when given).
//!
//! Placement (`--placement`): `per-site` (one host per site runs all of the site's nodes on
//! distinct ports), `per-node` (one host per node: the i-th replica host of a site runs its
//! `s<site>.<i>` and its i-th PBFT replica; the two protocols never run at once) or
//! `map:<file>` (lines `<node> <host>`, every replica exactly once). Clients go to the hosts
//! with the `clients` role of the site the topology places them in (round robin); without any
//! client host they stay unlisted and `loadgen run` binds where it runs.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;

use anyhow::{bail, Context, Result};
use clap::Args;
use serde_json::{json, Value};
use steward_config::{Protocol, ServerId, SiteId, Topology};
use steward_deploy::{write_addresses, Addresses, Deployment};

use crate::hosts::{self, Host};
use crate::shaping::{self, Leaf, ShapedHost};

/// Arguments of `loadgen inventory`.
#[derive(Args, Debug)]
pub struct InventoryArgs {
    /// Topology file (TOML).
    #[arg(long)]
    topology: PathBuf,
    /// Hosts file: `name address [site] [roles]` lines, an experiment's /etc/hosts, or a GENI
    /// manifest (Emulab / CloudLab).
    #[arg(long)]
    hosts: PathBuf,
    /// Output directory (inventory.yml, addresses.json).
    #[arg(long)]
    out: PathBuf,
    /// per-site, per-node, or map:<file> (lines `<node> <host>`).
    #[arg(long, default_value = "per-site")]
    placement: Placement,
    /// The deployment (from keygen): checked against the topology, gives the client count,
    /// and receives addresses.json.
    #[arg(long)]
    deployment: Option<PathBuf>,
    /// Clients to place when no --deployment is given.
    #[arg(long, default_value_t = 32)]
    clients: u32,
    /// First port on each host: Steward nodes from here, PBFT replicas from +500, clients
    /// from +1000.
    #[arg(long, default_value_t = 7000)]
    base_port: u16,
}

/// How replicas are placed on hosts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    /// One host per site.
    PerSite,
    /// One host per node.
    PerNode,
    /// An explicit map file.
    Map(PathBuf),
}

impl FromStr for Placement {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "per-site" => Ok(Placement::PerSite),
            "per-node" => Ok(Placement::PerNode),
            _ => match s.strip_prefix("map:") {
                Some(p) if !p.is_empty() => Ok(Placement::Map(PathBuf::from(p))),
                _ => Err(format!(
                    "unknown placement {s:?}: per-site, per-node or map:<file>"
                )),
            },
        }
    }
}

/// A replica or client node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Node {
    /// Steward server.
    Steward(ServerId),
    /// PBFT replica.
    Pbft(u32),
    /// Client.
    Client(u32),
}

impl Node {
    /// The name in commands and map files (`s0.1`, `r3`, `c7`).
    pub fn id(self) -> String {
        match self {
            Node::Steward(s) => s.to_string(),
            Node::Pbft(r) => format!("r{r}"),
            Node::Client(c) => format!("c{c}"),
        }
    }
    /// The transport name (the key in addresses.json).
    pub fn name(self) -> String {
        match self {
            Node::Steward(s) => steward_deploy::steward_node_name(s),
            Node::Pbft(r) => steward_deploy::pbft_node_name(r),
            Node::Client(c) => steward_deploy::client_node_name(c),
        }
    }
    fn parse(text: &str) -> Option<Node> {
        if let Some(r) = text.strip_prefix('r') {
            return r.parse().ok().map(Node::Pbft);
        }
        ServerId::parse(text).ok().map(Node::Steward)
    }
}

/// The result of placement: every node's host and port.
#[derive(Debug)]
pub struct Plan {
    /// The hosts, as read.
    pub hosts: Vec<Host>,
    /// Each host's site (from the file or from its nodes).
    pub sites: Vec<Option<SiteId>>,
    /// node -> (host index, port).
    pub nodes: BTreeMap<Node, (usize, u16)>,
}

fn replicas_of_site(t: &Topology, site: SiteId) -> (Vec<Node>, Vec<Node>) {
    let steward = t.site(site).server_ids().map(Node::Steward).collect();
    let pbft = t.pbft.replicas_at(site).map(Node::Pbft).collect();
    (steward, pbft)
}

/// Places the nodes of `topology` (and `clients` clients) on `hosts`.
pub fn place(
    topology: &Topology,
    hosts: Vec<Host>,
    hosts_origin: &str,
    placement: &Placement,
    clients: u32,
    base_port: u16,
) -> Result<Plan> {
    let site_of = |h: &Host| {
        h.site
            .as_deref()
            .and_then(|n| topology.site_by_name(n))
            .map(|s| s.id)
    };
    let mut sites: Vec<Option<SiteId>> = hosts.iter().map(site_of).collect();
    let mut assigned: Vec<(Node, usize)> = Vec::new();
    let replica_hosts = |s: SiteId| -> Vec<usize> {
        hosts
            .iter()
            .enumerate()
            .filter(|(_, h)| h.replicas && site_of(h) == Some(s))
            .map(|(i, _)| i)
            .collect()
    };
    match placement {
        Placement::PerSite | Placement::PerNode => {
            if let Some(h) = hosts.iter().find(|h| h.replicas && h.site.is_none()) {
                bail!(
                    "{hosts_origin}:{}: host {} has no site ({} placement needs each replica host's site)",
                    h.line,
                    h.name,
                    if *placement == Placement::PerSite { "per-site" } else { "per-node" }
                );
            }
            for s in topology.site_ids() {
                let (steward, pbft) = replicas_of_site(topology, s);
                let on = replica_hosts(s);
                let name = &topology.site(s).name;
                let need = if *placement == Placement::PerSite {
                    1
                } else {
                    steward.len().max(pbft.len())
                };
                if on.len() < need {
                    bail!(
                        "{hosts_origin}: site {name} has {} replica host(s), {} placement needs {need} ({} Steward servers, {} PBFT replicas there)",
                        on.len(),
                        if *placement == Placement::PerSite { "per-site" } else { "per-node" },
                        steward.len(),
                        pbft.len()
                    );
                }
                if on.len() > need {
                    let extra = &hosts[on[need]];
                    bail!(
                        "{hosts_origin}:{}: host {} gets no node: site {name} needs {need} replica host(s) with {} placement (use per-node or a map)",
                        extra.line,
                        extra.name,
                        if *placement == Placement::PerSite { "per-site" } else { "per-node" }
                    );
                }
                for (i, n) in steward.iter().enumerate() {
                    assigned.push((*n, on[if need == 1 { 0 } else { i }]));
                }
                for (i, n) in pbft.iter().enumerate() {
                    assigned.push((*n, on[if need == 1 { 0 } else { i }]));
                }
            }
        }
        Placement::Map(path) => {
            let origin = path.display().to_string();
            let text = fs::read_to_string(path)
                .with_context(|| format!("{origin}: cannot read the placement map"))?;
            let by_name: HashMap<&str, usize> = hosts
                .iter()
                .enumerate()
                .map(|(i, h)| (h.name.as_str(), i))
                .collect();
            let mut seen: HashMap<Node, usize> = HashMap::new();
            for (i, raw) in text.lines().enumerate() {
                let line = i + 1;
                let content = raw.split('#').next().unwrap_or("").trim();
                if content.is_empty() {
                    continue;
                }
                let w: Vec<&str> = content.split_whitespace().collect();
                if w.len() != 2 {
                    bail!("{origin}:{line}: expected `<node> <host>`, got {content:?}");
                }
                let node = Node::parse(w[0]).with_context(|| {
                    format!(
                        "{origin}:{line}: {:?} is not a node (s<site>.<i> or r<i>)",
                        w[0]
                    )
                })?;
                let site = match node {
                    Node::Steward(s) if topology.has_server(s) => s.site,
                    Node::Pbft(r) if r < topology.pbft.n() => topology.pbft.replicas[r as usize],
                    _ => bail!(
                        "{origin}:{line}: node {} is not in topology {}",
                        w[0],
                        topology.name
                    ),
                };
                let &h = by_name.get(w[1]).with_context(|| {
                    format!(
                        "{origin}:{line}: node {}: unknown host {:?} (not in {hosts_origin})",
                        w[0], w[1]
                    )
                })?;
                if let Some(first) = seen.insert(node, line) {
                    bail!(
                        "{origin}:{line}: node {} is already placed on line {first}",
                        w[0]
                    );
                }
                if !hosts[h].replicas {
                    bail!(
                        "{origin}:{line}: node {}: host {} does not run replicas",
                        w[0],
                        w[1]
                    );
                }
                match sites[h] {
                    Some(s) if s != site => bail!(
                        "{origin}:{line}: node {} belongs to site {}, host {} is at site {} ({hosts_origin}:{})",
                        w[0],
                        topology.site(site).name,
                        w[1],
                        topology.site(s).name,
                        hosts[h].line
                    ),
                    _ => sites[h] = Some(site),
                }
                assigned.push((node, h));
            }
            for s in topology.site_ids() {
                let (steward, pbft) = replicas_of_site(topology, s);
                if let Some(n) = steward.iter().chain(&pbft).find(|n| !seen.contains_key(n)) {
                    bail!("{origin}: node {} is not placed on any host", n.id());
                }
            }
        }
    }
    // Clients: round robin over the client hosts of the site the topology places each in.
    let client_hosts: Vec<usize> = (0..hosts.len()).filter(|&i| hosts[i].clients).collect();
    if !client_hosts.is_empty() && clients > 0 {
        for &i in &client_hosts {
            if sites[i].is_none() {
                bail!(
                    "{hosts_origin}:{}: host {} runs clients but has no site",
                    hosts[i].line,
                    hosts[i].name
                );
            }
        }
        let mut next: HashMap<SiteId, usize> = HashMap::new();
        for (c, site) in topology.place_clients(clients).into_iter().enumerate() {
            let at: Vec<usize> = client_hosts
                .iter()
                .copied()
                .filter(|&i| sites[i] == Some(site))
                .collect();
            if at.is_empty() {
                bail!(
                    "{hosts_origin}: site {} has clients in topology {} but no host with the `clients` role",
                    topology.site(site).name,
                    topology.name
                );
            }
            let k = next.entry(site).or_default();
            assigned.push((Node::Client(c as u32), at[*k % at.len()]));
            *k += 1;
        }
    }
    // Ports: per host, in node order within each kind.
    assigned.sort();
    let mut counters: HashMap<(usize, u8), u16> = HashMap::new();
    let mut nodes = BTreeMap::new();
    for (node, h) in assigned {
        let (kind, offset) = match node {
            Node::Steward(_) => (0, 0u16),
            Node::Pbft(_) => (1, 500),
            Node::Client(_) => (2, 1000),
        };
        let k = counters.entry((h, kind)).or_default();
        if *k >= 500 {
            bail!("host {}: more than 500 nodes of one kind", hosts[h].name);
        }
        let port = base_port.checked_add(offset + *k).with_context(|| {
            format!(
                "--base-port {base_port}: ports beyond 65535 on host {}",
                hosts[h].name
            )
        })?;
        *k += 1;
        nodes.insert(node, (h, port));
    }
    Ok(Plan {
        hosts,
        sites,
        nodes,
    })
}

impl Plan {
    /// addresses.json: every node's name -> address:port.
    pub fn addresses(&self) -> Addresses {
        self.nodes
            .iter()
            .map(|(n, (h, port))| (n.name(), SocketAddr::new(self.hosts[*h].address, *port)))
            .collect()
    }

    fn shaped_hosts(&self) -> Vec<ShapedHost> {
        self.hosts
            .iter()
            .zip(&self.sites)
            .filter_map(|(h, s)| {
                s.map(|site| ShapedHost {
                    name: h.name.clone(),
                    address: h.address,
                    site,
                })
            })
            .collect()
    }

    /// The Ansible inventory.
    pub fn inventory(&self, topology: &Topology) -> Value {
        let shaped = self.shaped_hosts();
        let mut hosts = serde_json::Map::new();
        let mut groups: BTreeMap<String, serde_json::Map<String, Value>> = BTreeMap::new();
        for (i, h) in self.hosts.iter().enumerate() {
            let mut steward = Vec::new();
            let mut pbft = Vec::new();
            let mut clients = Vec::new();
            for (n, (hi, port)) in &self.nodes {
                if *hi != i {
                    continue;
                }
                let entry = json!({ "id": n.id(), "name": n.name(), "port": port });
                match n {
                    Node::Steward(_) => steward.push(entry),
                    Node::Pbft(_) => pbft.push(entry),
                    Node::Client(_) => clients.push(entry),
                }
            }
            let mut vars = serde_json::Map::new();
            vars.insert("ansible_host".into(), json!(h.ssh));
            vars.insert("node_address".into(), json!(h.address.to_string()));
            vars.insert(
                "site".into(),
                json!(self.sites[i].map(|s| topology.site(s).name.clone())),
            );
            let mut member = |g: String| {
                groups
                    .entry(g)
                    .or_default()
                    .insert(h.name.clone(), json!({}));
            };
            if !steward.is_empty() {
                member(Protocol::Steward.name().into());
            }
            if !pbft.is_empty() {
                member(Protocol::Pbft.name().into());
            }
            if !clients.is_empty() {
                member("clients".into());
            }
            if let Some(s) = self.sites[i] {
                member(group_name(&topology.site(s).name));
            }
            vars.insert("steward_nodes".into(), Value::Array(steward));
            vars.insert("pbft_nodes".into(), Value::Array(pbft));
            vars.insert("client_nodes".into(), Value::Array(clients));
            if let Some(me) = shaped.iter().position(|s| s.name == h.name) {
                let plan = shaping::plan(topology, &shaped, me);
                vars.insert(
                    "shape_netem".into(),
                    json!(shaping::render(&plan, Leaf::Netem)),
                );
                vars.insert(
                    "shape_htb".into(),
                    json!(shaping::render(&plan, Leaf::HtbOnly)),
                );
            }
            hosts.insert(h.name.clone(), Value::Object(vars));
        }
        let children: serde_json::Map<String, Value> = groups
            .into_iter()
            .map(|(g, members)| (g, json!({ "hosts": members })))
            .collect();
        json!({
            "all": {
                "vars": {
                    "topology_name": topology.name,
                    "wan_model": format!("{:?}", topology.wan_model),
                },
                "hosts": hosts,
                "children": children,
            }
        })
    }
}

/// An Ansible group name for a site: `site_<name>` with `-` and `.` as `_`.
pub fn group_name(site: &str) -> String {
    format!("site_{}", site.replace(['-', '.'], "_"))
}

/// Run `loadgen inventory`.
pub fn run(a: InventoryArgs) -> Result<()> {
    let topology = Topology::load(&a.topology)?;
    let mut clients = a.clients;
    let dep = match &a.deployment {
        Some(d) => {
            let dep = Deployment::load(d)?;
            if dep.topology != topology {
                bail!(
                    "{}: the deployment was generated for topology {} ({}), not for {} ({}); run keygen with this topology",
                    d.display(),
                    dep.topology.name,
                    dep.layout.root().join("topology.toml").display(),
                    topology.name,
                    a.topology.display()
                );
            }
            clients = dep.manifest.clients;
            Some(dep)
        }
        None => None,
    };
    let hosts = hosts::load(&a.hosts, &topology)?;
    let origin = a.hosts.display().to_string();
    let mut groups_seen: HashMap<String, &str> = HashMap::new();
    for s in &topology.sites {
        if let Some(other) = groups_seen.insert(group_name(&s.name), &s.name) {
            bail!(
                "{}: sites {other} and {} map to the same Ansible group {}",
                a.topology.display(),
                s.name,
                group_name(&s.name)
            );
        }
    }
    let plan = place(
        &topology,
        hosts,
        &origin,
        &a.placement,
        clients,
        a.base_port,
    )?;
    fs::create_dir_all(&a.out).with_context(|| format!("{}: cannot create", a.out.display()))?;
    let inv = a.out.join("inventory.yml");
    fs::write(&inv, crate::yaml::to_yaml(&plan.inventory(&topology)))
        .with_context(|| format!("{}: cannot write", inv.display()))?;
    let shape_dir = a.out.join("shape");
    fs::create_dir_all(&shape_dir)
        .with_context(|| format!("{}: cannot create", shape_dir.display()))?;
    let shaped = plan.shaped_hosts();
    for (me, h) in shaped.iter().enumerate() {
        let p = shaping::plan(&topology, &shaped, me);
        for (leaf, suffix) in [(Leaf::Netem, "netem"), (Leaf::HtbOnly, "htb")] {
            let script = format!(
                "#!/bin/sh\n# {} ({}, site {}): tc shaping of topology {} ({suffix}); written by loadgen inventory.\n# Usage: sh {}.{suffix}.sh <interface>\nset -e\nDEV=\"${{1:?interface}}\"\ntc qdisc del dev \"$DEV\" root 2>/dev/null || true\n{}\n",
                h.name,
                h.address,
                topology.site(h.site).name,
                topology.name,
                h.name,
                shaping::to_shell(&shaping::render(&p, leaf), "\"$DEV\"")
            );
            let path = shape_dir.join(format!("{}.{suffix}.sh", h.name));
            fs::write(&path, script)
                .with_context(|| format!("{}: cannot write", path.display()))?;
        }
    }
    let addresses = plan.addresses();
    write_addresses(&a.out.join("addresses.json"), &addresses)?;
    if let Some(dep) = &dep {
        write_addresses(&dep.layout.addresses(), &addresses)?;
    }
    let used: Vec<&str> = plan
        .hosts
        .iter()
        .enumerate()
        .filter(|(i, _)| plan.nodes.values().any(|(h, _)| h == i))
        .map(|(_, h)| h.name.as_str())
        .collect();
    println!(
        "wrote {} and {}: {} hosts, {} Steward servers, {} PBFT replicas, {} clients placed",
        inv.display(),
        a.out.join("addresses.json").display(),
        used.len(),
        plan.nodes
            .keys()
            .filter(|n| matches!(n, Node::Steward(_)))
            .count(),
        plan.nodes
            .keys()
            .filter(|n| matches!(n, Node::Pbft(_)))
            .count(),
        plan.nodes
            .keys()
            .filter(|n| matches!(n, Node::Client(_)))
            .count(),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topo() -> Topology {
        crate::test_topology::parse(
            "three",
            crate::test_topology::WAN_10MS,
            &[("a", "f = 1"), ("b", "f = 1"), ("c", "f = 0\nservers = 2")],
            r#"[clients]
weights = { a = 3, b = 1 }
[pbft]
servers_per_site = { a = 2, b = 1, c = 1 }
"#,
        )
    }

    fn hosts(text: &str) -> Vec<Host> {
        hosts::parse(text, "hosts.txt", &topo()).unwrap()
    }

    fn err(text: &str, p: &Placement, clients: u32) -> String {
        format!(
            "{:#}",
            place(&topo(), hosts(text), "hosts.txt", p, clients, 7000).unwrap_err()
        )
    }

    #[test]
    fn per_site_puts_a_site_on_one_host_with_distinct_ports() {
        let p = place(
            &topo(),
            hosts("ha 10.0.0.1 a\nhb 10.0.0.2 b\nhc 10.0.0.3 c\nca 10.0.0.9 a clients\ncb 10.0.0.8 b clients\n"),
            "hosts.txt",
            &Placement::PerSite,
            8,
            7000,
        )
        .unwrap();
        let a = p.addresses();
        assert_eq!(a["steward-s0.0"].to_string(), "10.0.0.1:7000");
        assert_eq!(a["steward-s0.3"].to_string(), "10.0.0.1:7003");
        assert_eq!(a["steward-s1.0"].to_string(), "10.0.0.2:7000");
        assert_eq!(a["steward-s2.1"].to_string(), "10.0.0.3:7001");
        assert_eq!(a["pbft-r0"].to_string(), "10.0.0.1:7500");
        assert_eq!(a["pbft-r1"].to_string(), "10.0.0.1:7501");
        assert_eq!(a["pbft-r2"].to_string(), "10.0.0.2:7500");
        assert_eq!(a["pbft-r3"].to_string(), "10.0.0.3:7500");
        // 8 clients, weights 3:1 -> 6 at a, 2 at b.
        let at = |ip: &str| {
            a.iter()
                .filter(|(k, v)| k.starts_with("client-") && v.ip().to_string() == ip)
                .count()
        };
        assert_eq!((at("10.0.0.9"), at("10.0.0.8")), (6, 2));
        assert_eq!(a.len(), 4 + 4 + 2 + 4 + 8);
        let mut ports: Vec<_> = a.values().collect();
        ports.sort();
        ports.dedup();
        assert_eq!(ports.len(), a.len(), "every address is distinct");
    }

    #[test]
    fn per_node_gives_each_node_its_own_host() {
        let mut text = String::new();
        for (s, n) in [("a", 4), ("b", 4), ("c", 2)] {
            for i in 0..n {
                text += &format!("{s}-{i} 10.1.{}.{i} {s}\n", s.as_bytes()[0]);
            }
        }
        let p = place(
            &topo(),
            hosts(&text),
            "hosts.txt",
            &Placement::PerNode,
            0,
            7000,
        )
        .unwrap();
        let a = p.addresses();
        assert_eq!(a["steward-s0.3"].to_string(), "10.1.97.3:7000");
        assert_eq!(a["pbft-r1"].to_string(), "10.1.97.1:7500");
        assert_eq!(a["pbft-r3"].to_string(), "10.1.99.0:7500");
        assert!(!a.keys().any(|k| k.starts_with("client-")));
    }

    #[test]
    fn explicit_map() {
        let dir = tempfile::tempdir().unwrap();
        let map = dir.path().join("map.txt");
        let mut text = String::from("# node host\n");
        for s in ["s0.0", "s0.1", "s0.2", "s0.3", "r0", "r1"] {
            text += &format!("{s} x\n");
        }
        for s in ["s1.0", "s1.1", "s1.2", "s1.3", "r2"] {
            text += &format!("{s} y\n");
        }
        text += "s2.0 z\ns2.1 z\n";
        fs::write(&map, &text).unwrap();
        let p = Placement::Map(map.clone());
        let h = "x 10.0.0.1\ny 10.0.0.2 b\nz 10.0.0.3\n";
        let e = err(h, &p, 0);
        assert_eq!(
            e,
            format!("{}: node r3 is not placed on any host", map.display())
        );
        fs::write(&map, text.clone() + "r3 z\n").unwrap();
        let plan = place(&topo(), hosts(h), "hosts.txt", &p, 0, 7000).unwrap();
        assert_eq!(
            plan.sites,
            vec![Some(SiteId(0)), Some(SiteId(1)), Some(SiteId(2))]
        );
        fs::write(&map, text.clone() + "r3 y\n").unwrap();
        assert_eq!(
            err(h, &p, 0),
            format!(
                "{}:15: node r3 belongs to site c, host y is at site b (hosts.txt:2)",
                map.display()
            )
        );
        fs::write(&map, text.clone() + "r3 w\n").unwrap();
        assert_eq!(
            err(h, &p, 0),
            format!(
                "{}:15: node r3: unknown host \"w\" (not in hosts.txt)",
                map.display()
            )
        );
        fs::write(&map, text.clone() + "r3 z\ns0.0 z\n").unwrap();
        assert_eq!(
            err(h, &p, 0),
            format!(
                "{}:16: node s0.0 is already placed on line 2",
                map.display()
            )
        );
        fs::write(&map, text.clone() + "s9.0 z\n").unwrap();
        assert_eq!(
            err(h, &p, 0),
            format!("{}:15: node s9.0 is not in topology three", map.display())
        );
    }

    #[test]
    fn placement_errors_name_the_site_host_and_line() {
        let ps = Placement::PerSite;
        assert_eq!(
            err("ha 10.0.0.1 a\nhb 10.0.0.2 b\n", &ps, 0),
            "hosts.txt: site c has 0 replica host(s), per-site placement needs 1 (2 Steward servers, 1 PBFT replicas there)"
        );
        assert_eq!(
            err("ha 10.0.0.1 a\nhb 10.0.0.2 b\nhc 10.0.0.3 c\nhx 10.0.0.4 a\n", &ps, 0),
            "hosts.txt:4: host hx gets no node: site a needs 1 replica host(s) with per-site placement (use per-node or a map)"
        );
        assert_eq!(
            err("ha 10.0.0.1 a\nhb 10.0.0.2\n", &ps, 0),
            "hosts.txt:2: host hb has no site (per-site placement needs each replica host's site)"
        );
        assert_eq!(
            err(
                "ha 10.0.0.1 a\nhb 10.0.0.2 b\nhc 10.0.0.3 c\ncl 10.0.0.4 a clients\n",
                &ps,
                4
            ),
            "hosts.txt: site b has clients in topology three but no host with the `clients` role"
        );
        assert_eq!(
            err("ha 10.0.0.1 a\nhb 10.0.0.2 b\nhc 10.0.0.3 c\n", &Placement::PerNode, 0),
            "hosts.txt: site a has 1 replica host(s), per-node placement needs 4 (4 Steward servers, 2 PBFT replicas there)"
        );
        assert_eq!(
            "map:".parse::<Placement>().unwrap_err(),
            "unknown placement \"map:\": per-site, per-node or map:<file>"
        );
    }

    #[test]
    fn inventory_groups_vars_and_shaping() {
        let t = topo();
        let p = place(
            &t,
            hosts("ha 10.0.0.1 a\nhb 10.0.0.2 b\nhc 10.0.0.3 c\nca 10.0.0.9 a clients ssh=ctl\ncb 10.0.0.8 b clients\n"),
            "hosts.txt",
            &Placement::PerSite,
            4,
            7000,
        )
        .unwrap();
        let inv = p.inventory(&t);
        let all = &inv["all"];
        let ha = &all["hosts"]["ha"];
        assert_eq!(ha["ansible_host"], "10.0.0.1");
        assert_eq!(ha["site"], "a");
        assert_eq!(ha["steward_nodes"].as_array().unwrap().len(), 4);
        assert_eq!(
            ha["pbft_nodes"][1],
            json!({"id": "r1", "name": "pbft-r1", "port": 7501})
        );
        assert_eq!(all["hosts"]["ca"]["ansible_host"], "ctl");
        assert_eq!(all["hosts"]["ca"]["client_nodes"][0]["name"], "client-0");
        let group = |g: &str| {
            let mut v: Vec<String> = all["children"][g]["hosts"]
                .as_object()
                .unwrap()
                .keys()
                .cloned()
                .collect();
            v.sort();
            v
        };
        assert_eq!(group("steward"), ["ha", "hb", "hc"]);
        assert_eq!(group("pbft"), ["ha", "hb", "hc"]);
        assert_eq!(group("clients"), ["ca", "cb"]);
        assert_eq!(group("site_a"), ["ca", "ha"]);
        // ha shapes towards hb (site b: 10 ms) and towards its site's client host (LAN).
        let shell = shaping::to_shell(
            &serde_json::from_value::<Vec<Vec<String>>>(ha["shape_netem"].clone()).unwrap(),
            "eth0",
        );
        assert!(shell.contains("match ip dst 10.0.0.2/32"), "{shell}");
        assert!(shell.contains("match ip dst 10.0.0.9/32"), "{shell}");
        assert!(shell.contains("netem delay 10000us"), "{shell}");
        assert!(shell.contains("netem delay 100us"), "{shell}");
        let yaml = crate::yaml::to_yaml(&inv);
        assert!(
            yaml.contains("\n    ha:\n      ansible_host: \"10.0.0.1\"\n"),
            "{yaml}"
        );
    }
}
