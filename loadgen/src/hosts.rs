//! Hosts files for `loadgen inventory`: the machines a deployment runs on.
//!
//! Three formats, detected from the content:
//!
//! * **Plain lines**: `name address [site] [roles] [ssh=<host>]`; `#` starts a comment. `site`
//!   is a topology site name (or `-`), `roles` is `replicas` (the default), `clients` or
//!   `replicas,clients`; `address` is the IP the nodes use, and `ssh=` an other name or address
//!   for Ansible to reach the host by (default: `address`).
//! * **An experiment's `/etc/hosts`** (Emulab and CloudLab write one on every node): lines
//!   `IP name alias...`; the last name is the node name, loopback lines are skipped.
//! * **A GENI manifest** (XML, `geni-get manifest` on a node, or the portal's "Manifest" tab):
//!   each `<node client_id=...>` with its `<host name=...>` (Ansible's address) and its first
//!   experiment-network `<ip address=...>` (the nodes' address).
//!
//! Where the format gives no site, the node name carries it, as `loadgen testbed` names nodes:
//! `<site>-<n>` is a replica host of `<site>`, `<site>-client<n>` a client host there.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;

use anyhow::{bail, Context, Result};
use steward_config::Topology;

/// One host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    /// Inventory name.
    pub name: String,
    /// The address the nodes bind to and send to.
    pub address: IpAddr,
    /// How Ansible reaches the host (`ansible_host`).
    pub ssh: String,
    /// Its site (topology site name), if the file says.
    pub site: Option<String>,
    /// Runs replicas.
    pub replicas: bool,
    /// Runs clients.
    pub clients: bool,
    /// 1-based line of the file that defined it.
    pub line: usize,
}

/// Reads and validates a hosts file against `topology` (names of sites).
pub fn load(path: &Path, topology: &Topology) -> Result<Vec<Host>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read the hosts file", path.display()))?;
    parse(&text, &path.display().to_string(), topology)
}

/// Parses a hosts file's text (`origin` names it in errors).
pub fn parse(text: &str, origin: &str, topology: &Topology) -> Result<Vec<Host>> {
    let hosts = if text.trim_start().starts_with('<') {
        parse_manifest(text, origin, topology)?
    } else {
        parse_lines(text, origin, topology)?
    };
    if hosts.is_empty() {
        bail!("{origin}: no hosts");
    }
    let mut names: HashMap<&str, usize> = HashMap::new();
    let mut addrs: HashMap<IpAddr, &str> = HashMap::new();
    for h in &hosts {
        if let Some(first) = names.insert(&h.name, h.line) {
            bail!(
                "{origin}:{}: host {} is already defined on line {first}",
                h.line,
                h.name
            );
        }
        if let Some(other) = addrs.insert(h.address, &h.name) {
            bail!(
                "{origin}:{}: host {} has the address {} of host {other}",
                h.line,
                h.name,
                h.address
            );
        }
    }
    Ok(hosts)
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
}

/// The site and roles a node name carries (`<site>-<n>`, `<site>-client<n>`, or `<site>`):
/// the longest site name that is the whole name or a prefix followed by `-`.
fn infer_site(name: &str, topology: &Topology) -> Option<(String, bool)> {
    let short = name.split('.').next().unwrap_or(name);
    let mut best: Option<&str> = None;
    for s in &topology.sites {
        let n = s.name.as_str();
        let fits = short == n
            || (short.starts_with(n) && short[n.len()..].starts_with('-'))
            || (short.starts_with(&n.replace('_', "-")) && short[n.len()..].starts_with('-'));
        if fits && best.is_none_or(|b| b.len() < n.len()) {
            best = Some(n);
        }
    }
    let site = best?;
    let client = short[site.len()..].starts_with("-client");
    Some((site.to_string(), client))
}

fn parse_lines(text: &str, origin: &str, topology: &Topology) -> Result<Vec<Host>> {
    let mut hosts = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let content = raw.split('#').next().unwrap_or("").trim();
        if content.is_empty() {
            continue;
        }
        let words: Vec<&str> = content.split_whitespace().collect();
        if words.len() < 2 {
            bail!("{origin}:{line}: expected `name address [site] [roles]`, got {content:?}");
        }
        if let Ok(addr) = words[0].parse::<IpAddr>() {
            // /etc/hosts of an Emulab / CloudLab experiment: `IP name alias...`.
            if addr.is_loopback()
                || words[1..]
                    .iter()
                    .any(|w| *w == "localhost" || *w == "loghost")
            {
                continue;
            }
            let name = *words.last().expect("two words");
            if !valid_name(name) {
                bail!("{origin}:{line}: invalid host name {name:?}");
            }
            let (site, client) = infer_site(name, topology).with_context(|| {
                format!("{origin}:{line}: host {name}: its name names no site of topology {} (expected <site>-<n> or <site>-client<n>; sites: {})", topology.name, site_names(topology))
            })?;
            hosts.push(Host {
                name: name.to_string(),
                address: addr,
                ssh: name.to_string(),
                site: Some(site),
                replicas: !client,
                clients: client,
                line,
            });
            continue;
        }
        let name = words[0];
        if !valid_name(name) {
            bail!("{origin}:{line}: invalid host name {name:?} (letters, digits, - _ .)");
        }
        let address: IpAddr = words[1].parse().map_err(|_| {
            anyhow::anyhow!(
                "{origin}:{line}: host {name}: {:?} is not an IP address",
                words[1]
            )
        })?;
        let mut site = None;
        let mut roles = None;
        let mut ssh = None;
        for (k, w) in words[2..].iter().enumerate() {
            if let Some(v) = w.strip_prefix("ssh=") {
                ssh = Some(v.to_string());
            } else if k == 0 && !w.contains('=') && roles.is_none() && site.is_none() {
                if *w != "-" {
                    if topology.site_by_name(w).is_none() {
                        bail!(
                            "{origin}:{line}: host {name}: unknown site {w:?} (sites of {}: {})",
                            topology.name,
                            site_names(topology)
                        );
                    }
                    site = Some(w.to_string());
                }
            } else if roles.is_none() && !w.contains('=') {
                let mut r = (false, false);
                for role in w.split(',') {
                    match role {
                        "replicas" => r.0 = true,
                        "clients" => r.1 = true,
                        other => bail!(
                            "{origin}:{line}: host {name}: unknown role {other:?} (replicas, clients)"
                        ),
                    }
                }
                roles = Some(r);
            } else {
                bail!("{origin}:{line}: host {name}: unexpected {w:?} (expected `name address [site] [roles] [ssh=<host>]`)");
            }
        }
        let (replicas, clients) = roles.unwrap_or((true, false));
        hosts.push(Host {
            name: name.to_string(),
            address,
            ssh: ssh.unwrap_or_else(|| address.to_string()),
            site,
            replicas,
            clients,
            line,
        });
    }
    Ok(hosts)
}

fn site_names(t: &Topology) -> String {
    t.sites
        .iter()
        .map(|s| s.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The value of attribute `attr` in the start tag `tag` (`<tag ... attr="v" ...>`).
fn attr(tag: &str, attr: &str) -> Option<String> {
    let mut rest = tag;
    loop {
        let i = rest.find(attr)?;
        let before_ok = i == 0 || rest.as_bytes()[i - 1].is_ascii_whitespace();
        let after = rest[i + attr.len()..].trim_start();
        if before_ok {
            if let Some(v) = after.strip_prefix('=') {
                let v = v.trim_start();
                let q = v.chars().next()?;
                if q == '"' || q == '\'' {
                    let end = v[1..].find(q)?;
                    return Some(v[1..1 + end].to_string());
                }
            }
        }
        rest = &rest[i + attr.len()..];
    }
}

/// Start tags named `name` in `text` (with their attributes), in order.
fn tags<'a>(text: &'a str, name: &str) -> Vec<&'a str> {
    let open = format!("<{name}");
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find(&open) {
        let after = &rest[i + open.len()..];
        if after.starts_with(|c: char| c.is_ascii_whitespace() || c == '>' || c == '/') {
            let end = after.find('>').unwrap_or(after.len());
            out.push(&after[..end]);
        }
        rest = after;
    }
    out
}

fn line_of(text: &str, part: &str) -> usize {
    let offset = part.as_ptr() as usize - text.as_ptr() as usize;
    text[..offset].matches('\n').count() + 1
}

fn parse_manifest(text: &str, origin: &str, topology: &Topology) -> Result<Vec<Host>> {
    let mut hosts = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("<node") {
        let after = &rest[i..];
        if !after[5..].starts_with(|c: char| c.is_ascii_whitespace()) {
            rest = &after[5..];
            continue;
        }
        let end = after
            .find("</node>")
            .map(|e| e + 7)
            .unwrap_or_else(|| after.find("/>").map(|e| e + 2).unwrap_or(after.len()));
        let block = &after[..end];
        let line = line_of(text, block);
        let head = tags(block, "node").into_iter().next().unwrap_or("");
        let name = attr(head, "client_id")
            .with_context(|| format!("{origin}:{line}: <node> without client_id"))?;
        if !valid_name(&name) {
            bail!("{origin}:{line}: invalid node name {name:?}");
        }
        let host_tag = tags(block, "host").into_iter().next();
        let ssh = host_tag.and_then(|t| attr(t, "name"));
        let ip = tags(block, "ip")
            .into_iter()
            .find_map(|t| attr(t, "address"))
            .or_else(|| host_tag.and_then(|t| attr(t, "ipv4")))
            .with_context(|| {
                format!("{origin}:{line}: node {name}: no <ip address=...> and no <host ipv4=...>")
            })?;
        let address: IpAddr = ip.parse().map_err(|_| {
            anyhow::anyhow!("{origin}:{line}: node {name}: {ip:?} is not an IP address")
        })?;
        let (site, client) = infer_site(&name, topology).with_context(|| {
            format!("{origin}:{line}: node {name}: its name names no site of topology {} (expected <site>-<n> or <site>-client<n>; sites: {})", topology.name, site_names(topology))
        })?;
        hosts.push(Host {
            ssh: ssh.unwrap_or_else(|| address.to_string()),
            name,
            address,
            site: Some(site),
            replicas: !client,
            clients: client,
            line,
        });
        rest = &after[end.max(5)..];
    }
    Ok(hosts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topo() -> Topology {
        crate::test_topology::parse(
            "three",
            crate::test_topology::WAN_10MS,
            &[("east", "f = 1"), ("east_2", "f = 1"), ("west", "f = 1")],
            r#"[pbft]
servers_per_site = { east = 2, west = 2 }
"#,
        )
    }

    #[test]
    fn plain_lines_with_sites_roles_and_ssh() {
        let h = parse(
            "# comment\n\nh0 10.0.0.1 east\nh1 10.0.0.2 west replicas,clients ssh=node1.example\n  c 10.0.0.3 - clients # trailing\nh3 fd00::4\n",
            "hosts.txt",
            &topo(),
        )
        .unwrap();
        assert_eq!(h.len(), 4);
        assert_eq!(
            (h[0].site.as_deref(), h[0].replicas, h[0].clients, h[0].line),
            (Some("east"), true, false, 3)
        );
        assert_eq!(h[1].ssh, "node1.example");
        assert!(h[1].replicas && h[1].clients);
        assert_eq!(
            (h[2].site.as_deref(), h[2].replicas, h[2].clients),
            (None, false, true)
        );
        assert_eq!(h[2].ssh, "10.0.0.3");
        assert_eq!(h[3].address, "fd00::4".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn plain_line_errors_name_file_line_and_host() {
        let t = topo();
        let err = |text: &str| format!("{:#}", parse(text, "hosts.txt", &t).unwrap_err());
        assert_eq!(
            err("h0 10.0.0.1 north\n"),
            "hosts.txt:1: host h0: unknown site \"north\" (sites of three: east, east_2, west)"
        );
        assert_eq!(
            err("h0 10.0.0.1\nh0 10.0.0.2\n"),
            "hosts.txt:2: host h0 is already defined on line 1"
        );
        assert_eq!(
            err("h0 10.0.0.1\nh1 10.0.0.1\n"),
            "hosts.txt:2: host h1 has the address 10.0.0.1 of host h0"
        );
        assert_eq!(
            err("\nh0 ten\n"),
            "hosts.txt:2: host h0: \"ten\" is not an IP address"
        );
        assert_eq!(
            err("h0\n"),
            "hosts.txt:1: expected `name address [site] [roles]`, got \"h0\""
        );
        assert_eq!(
            err("h0 10.0.0.1 east servers\n"),
            "hosts.txt:1: host h0: unknown role \"servers\" (replicas, clients)"
        );
        assert_eq!(err("# nothing\n"), "hosts.txt: no hosts");
    }

    #[test]
    fn emulab_etc_hosts() {
        let text = "127.0.0.1\tlocalhost loghost\n10.1.1.2\teast-0-lan-east east-0-0 east-0\n10.1.2.2\teast_2-0-lan east-2-0\n10.1.3.2\twest-0-link west-0\n10.1.1.9 east-client0-lan east-client0\n";
        // Emulab names cannot hold `_`: `east-2-0` is a host of site east_2 (the longest site
        // whose name, with `-` for `_`, prefixes the node name).
        let h = parse(text, "hosts", &topo()).unwrap();
        let got: Vec<_> = h
            .iter()
            .map(|h| (h.name.as_str(), h.site.as_deref().unwrap(), h.clients))
            .collect();
        assert_eq!(
            got,
            [
                ("east-0", "east", false),
                ("east-2-0", "east_2", false),
                ("west-0", "west", false),
                ("east-client0", "east", true)
            ]
        );
        assert_eq!(h[0].ssh, "east-0");
        let err = format!(
            "{:#}",
            parse("10.1.1.2 north-0\n", "hosts", &topo()).unwrap_err()
        );
        assert!(
            err.starts_with("hosts:1: host north-0: its name names no site of topology three"),
            "{err}"
        );
    }

    #[test]
    fn geni_manifest() {
        let text = r#"<?xml version="1.0" encoding="UTF-8"?>
<rspec xmlns="http://www.geni.net/resources/rspec/3" type="manifest">
  <node client_id="east-0" component_id="urn:publicid:IDN+emulab.net+node+pc412" exclusive="true">
    <sliver_type name="raw-pc"/>
    <interface client_id="east-0:if0"><ip address="10.10.1.1" type="ipv4" netmask="255.255.255.0"/></interface>
    <host name="east-0.steward.proj.emulab.net" ipv4="155.98.36.12"/>
  </node>
  <node client_id="west-client0">
    <host name="pc5.emulab.net" ipv4="155.98.36.13"/>
  </node>
</rspec>
"#;
        let h = parse(text, "manifest.xml", &topo()).unwrap();
        assert_eq!(h.len(), 2);
        assert_eq!(h[0].name, "east-0");
        assert_eq!(h[0].address, "10.10.1.1".parse::<IpAddr>().unwrap());
        assert_eq!(h[0].ssh, "east-0.steward.proj.emulab.net");
        assert_eq!(h[0].line, 3);
        assert_eq!((h[1].site.as_deref(), h[1].clients), (Some("west"), true));
        assert_eq!(h[1].address, "155.98.36.13".parse::<IpAddr>().unwrap());
        let err = format!(
            "{:#}",
            parse("<rspec><node client_id=\"x-1\"/></rspec>", "m.xml", &topo()).unwrap_err()
        );
        assert!(err.starts_with("m.xml:1: node x-1: no <ip"), "{err}");
    }
}
