//! Kernel shaping (`tc`) rendered from a topology, for real hosts: one `htb` class per
//! destination site (or per site's LAN), a `netem` leaf with that link's one-way delay, jitter
//! and loss, and `u32` filters by destination address. Traffic to addresses outside the
//! deployment falls into the unshaped default class.
//!
//! * Pairwise topologies: each destination site gets its own class at the link's bandwidth.
//! * `site-uplink` topologies: one parent class at the site's uplink bandwidth (the largest of
//!   its WAN links, as the userspace shaper and the simulator model it), with one child per
//!   destination site that may borrow the whole uplink, so all WAN traffic leaving the host
//!   shares one rate.
//! * Hosts of the same site (one host per node, or a client host) reach each other through a
//!   class with the topology's LAN parameters.
//!
//! netem delays egress only, so each host delays its own outgoing packets by the one-way
//! latency: a round trip between two sites then takes twice the one-way latency, as in the
//! topology's semantics. Two renderings exist: [`Leaf::Netem`] (bandwidth, delay, jitter and
//! loss in the kernel) and [`Leaf::HtbOnly`] (bandwidth in the kernel, each leaf a byte FIFO;
//! delay and loss then come from the binaries' userspace shaper, `--wan emulate`, for kernels
//! without `sch_netem`). Every command is an argv list with [`DEV`] standing for the
//! interface, which the playbook substitutes.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use steward_config::{LinkParams, SiteId, Topology, WanModel};

/// Placeholder for the network interface in rendered commands.
pub const DEV: &str = "%DEV%";

/// netem's queue limit in packets: the default 1000 tail-drops at high rate × delay
/// (`peers.md` §4.2); the htb class above it is the bottleneck that queues.
pub const NETEM_LIMIT_PACKETS: u32 = 100_000;

/// Rate of the default (unshaped) class.
pub const DEFAULT_RATE_BPS: u64 = 10_000_000_000;

/// One host of a deployment as the shaper sees it: its address and site.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShapedHost {
    /// Inventory name.
    pub name: String,
    /// The address the other hosts send to.
    pub address: IpAddr,
    /// Its site.
    pub site: SiteId,
}

/// What the leaf of each destination class does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leaf {
    /// netem: delay, jitter (normal distribution) and loss.
    Netem,
    /// A byte FIFO: only the htb rate shapes; delay comes from `--wan emulate`.
    HtbOnly,
}

/// One destination class of a host's egress.
#[derive(Debug, Clone, PartialEq)]
pub struct DestClass {
    /// The destination site (the host's own site for the LAN class).
    pub site: SiteId,
    /// htb minor id (hexadecimal in commands).
    pub minor: u32,
    /// The class's guaranteed and ceiling rate in bit/s.
    pub rate_bps: u64,
    /// htb ceil in bit/s (`rate_bps` except under a site uplink).
    pub ceil_bps: u64,
    /// Whether the class borrows from the site's uplink class.
    pub under_uplink: bool,
    /// The link: delay, jitter, loss.
    pub link: LinkParams,
    /// Destination addresses (sorted, unique).
    pub dsts: Vec<IpAddr>,
}

/// The shaping plan of one host.
#[derive(Debug, Clone, PartialEq)]
pub struct HostPlan {
    /// The uplink class (site-uplink topologies): minor id and rate.
    pub uplink: Option<(u32, u64)>,
    /// One class per destination site with hosts (and the LAN class when the site has
    /// other hosts).
    pub classes: Vec<DestClass>,
}

const UPLINK_MINOR: u32 = 0x2;
const FIRST_CLASS_MINOR: u32 = 0x10;

/// The plan for `hosts[me]` among `hosts`.
pub fn plan(topology: &Topology, hosts: &[ShapedHost], me: usize) -> HostPlan {
    let my = &hosts[me];
    let mut by_site: BTreeMap<SiteId, Vec<IpAddr>> = BTreeMap::new();
    for (i, h) in hosts.iter().enumerate() {
        if i != me && h.address != my.address {
            by_site.entry(h.site).or_default().push(h.address);
        }
    }
    let uplink_bps = uplink_bandwidth(topology, my.site);
    let uplink = match topology.wan_model {
        WanModel::SiteUplink if by_site.keys().any(|s| *s != my.site) => {
            Some((UPLINK_MINOR, uplink_bps))
        }
        _ => None,
    };
    let mut classes = Vec::new();
    for (k, (site, mut dsts)) in by_site.into_iter().enumerate() {
        dsts.sort();
        dsts.dedup();
        let link = *topology.link(my.site, site);
        let (rate_bps, ceil_bps, under_uplink) = match uplink {
            Some((_, up)) if site != my.site => {
                let wan_sites = topology.sites.len().saturating_sub(1).max(1) as u64;
                ((up / wan_sites).max(1_000), up, true)
            }
            _ => (link.bandwidth_bps, link.bandwidth_bps, false),
        };
        classes.push(DestClass {
            site,
            minor: FIRST_CLASS_MINOR + k as u32,
            rate_bps,
            ceil_bps,
            under_uplink,
            link,
            dsts,
        });
    }
    HostPlan { uplink, classes }
}

/// A site's uplink bandwidth in the site-uplink model: the largest of its WAN links.
pub fn uplink_bandwidth(topology: &Topology, site: SiteId) -> u64 {
    topology
        .site_ids()
        .filter(|s| *s != site)
        .map(|s| topology.link(site, s).bandwidth_bps)
        .max()
        .unwrap_or(topology.lan.bandwidth_bps)
}

fn argv(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| w.to_string()).collect()
}

/// tc's time format in microseconds (exact for every topology value, which the format keeps to
/// the nanosecond but no file gives below 1 µs).
fn usecs(d: Duration) -> String {
    format!("{}us", d.as_micros())
}

/// The `tc` commands that install `plan` on [`DEV`], in order; the first deletes nothing (the
/// playbook removes an existing root qdisc first, so re-running replaces, never stacks).
pub fn render(plan: &HostPlan, leaf: Leaf) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    out.push(argv(&[
        "tc", "qdisc", "add", "dev", DEV, "root", "handle", "1:", "htb", "default", "1",
    ]));
    out.push(htb_class("1:", "1:1", DEFAULT_RATE_BPS, None));
    if let Some((minor, minor_rate)) = plan.uplink {
        out.push(htb_class(
            "1:",
            &format!("1:{minor:x}"),
            minor_rate,
            Some(minor_rate),
        ));
    }
    for c in &plan.classes {
        let parent = match plan.uplink {
            Some((minor, _)) if c.under_uplink => format!("1:{minor:x}"),
            _ => "1:".to_string(),
        };
        let classid = format!("1:{:x}", c.minor);
        out.push(htb_class(&parent, &classid, c.rate_bps, Some(c.ceil_bps)));
        let handle = format!("{:x}:", c.minor);
        let mut q = argv(&[
            "tc", "qdisc", "add", "dev", DEV, "parent", &classid, "handle", &handle,
        ]);
        match leaf {
            Leaf::Netem => {
                q.extend(argv(&["netem", "delay", &usecs(c.link.latency)]));
                if !c.link.jitter.is_zero() {
                    q.extend(argv(&[&usecs(c.link.jitter), "distribution", "normal"]));
                }
                if c.link.loss > 0.0 {
                    q.extend(argv(&["loss", &format!("{}%", c.link.loss * 100.0)]));
                }
                q.extend(argv(&["limit", &NETEM_LIMIT_PACKETS.to_string()]));
            }
            Leaf::HtbOnly => q.extend(argv(&["bfifo", "limit", &queue_bytes(c).to_string()])),
        }
        out.push(q);
        for dst in &c.dsts {
            let (proto, matcher, len) = match dst {
                IpAddr::V4(_) => ("ip", "ip", 32),
                IpAddr::V6(_) => ("ipv6", "ip6", 128),
            };
            out.push(argv(&[
                "tc",
                "filter",
                "add",
                "dev",
                DEV,
                "parent",
                "1:",
                "protocol",
                proto,
                "prio",
                "1",
                "u32",
                "match",
                matcher,
                "dst",
                &format!("{dst}/{len}"),
                "flowid",
                &classid,
            ]));
        }
    }
    out
}

/// `tc class add` of htb class `classid` under `parent`: `rate_bps`, and `ceil_bps` if given
/// (htb's default ceiling is the rate).
fn htb_class(parent: &str, classid: &str, rate_bps: u64, ceil_bps: Option<u64>) -> Vec<String> {
    let rate = format!("{rate_bps}bit");
    let mut c = argv(&[
        "tc", "class", "add", "dev", DEV, "parent", parent, "classid", classid, "htb", "rate",
        &rate,
    ]);
    if let Some(ceil) = ceil_bps {
        c.extend(argv(&["ceil", &format!("{ceil}bit")]));
    }
    c.extend(argv(&["quantum", &quantum(rate_bps)]));
    c
}

/// htb's quantum (bytes a class sends per round): rate / 10 as htb's default r2q gives, but
/// at least one full-size packet and at most 60000 (htb warns outside that range).
fn quantum(rate_bps: u64) -> String {
    (rate_bps / 8 / 10).clamp(1600, 60_000).to_string()
}

/// The byte FIFO under an htb-only class: the simulator's WAN buffer (1 MiB) or one second
/// of the class's ceiling rate, whichever is smaller, but at least 64 KiB.
fn queue_bytes(c: &DestClass) -> u64 {
    (c.ceil_bps / 8).clamp(64 * 1024, 1024 * 1024)
}

/// The rendered commands as shell lines (for `--print` and the README).
pub fn to_shell(commands: &[Vec<String>], dev: &str) -> String {
    commands
        .iter()
        .map(|c| {
            c.iter()
                .map(|w| if w == DEV { dev } else { w.as_str() })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::net::Ipv4Addr;
    use std::path::PathBuf;

    /// What the kernel would do with a packet to one destination, read back from the rendered
    /// commands (not from the plan): the class chain's rates and the leaf's parameters.
    #[derive(Debug, Default)]
    struct Effective {
        rate_bps: u64,
        ceil_bps: u64,
        parent_rate_bps: Option<u64>,
        delay_us: Option<u64>,
        jitter_us: Option<u64>,
        loss_pct: Option<f64>,
        netem_limit: Option<u32>,
        fifo: bool,
    }

    fn bits(s: &str) -> u64 {
        s.strip_suffix("bit").unwrap().parse().unwrap()
    }
    fn us(s: &str) -> u64 {
        s.strip_suffix("us").unwrap().parse().unwrap()
    }

    /// Parses the commands like tc would and returns the path of a packet to `dst`.
    fn effective(cmds: &[Vec<String>], dst: IpAddr) -> Option<Effective> {
        let mut classes: HashMap<String, (String, u64, u64)> = HashMap::new();
        let mut leaves: HashMap<String, Vec<String>> = HashMap::new();
        let mut filters: HashMap<String, String> = HashMap::new();
        for c in cmds {
            assert_eq!(c[0], "tc");
            assert_eq!(&c[3..5], &["dev".to_string(), DEV.to_string()], "{c:?}");
            let kv = |k: &str| c.iter().position(|w| w == k).map(|i| c[i + 1].clone());
            match (c[1].as_str(), c[2].as_str()) {
                ("qdisc", "add") if kv("parent").is_some() => {
                    let parent = kv("parent").unwrap();
                    assert!(
                        leaves.insert(parent.clone(), c[9..].to_vec()).is_none(),
                        "two leaves on {parent}"
                    );
                }
                ("qdisc", "add") => assert_eq!(
                    c[5..],
                    argv(&["root", "handle", "1:", "htb", "default", "1"])
                ),
                ("class", "add") => {
                    let rate = bits(&kv("rate").unwrap());
                    let ceil = kv("ceil").map(|s| bits(&s)).unwrap_or(rate);
                    let id = kv("classid").unwrap();
                    assert!(
                        classes
                            .insert(id.clone(), (kv("parent").unwrap(), rate, ceil))
                            .is_none(),
                        "class {id} twice"
                    );
                }
                ("filter", "add") => {
                    let d = kv("dst").unwrap();
                    let flow = kv("flowid").unwrap();
                    assert!(
                        filters.insert(d.clone(), flow).is_none(),
                        "two filters for {d}"
                    );
                    assert_eq!(kv("prio").unwrap(), "1");
                }
                other => panic!("unexpected command {other:?}"),
            }
        }
        let len = if dst.is_ipv4() { 32 } else { 128 };
        let flow = filters.get(&format!("{dst}/{len}"))?;
        let (parent, rate, ceil) = classes[flow].clone();
        let mut e = Effective {
            rate_bps: rate,
            ceil_bps: ceil,
            parent_rate_bps: (parent != "1:").then(|| classes[&parent].1),
            ..Effective::default()
        };
        let leaf = &leaves[flow];
        match leaf[0].as_str() {
            "netem" => {
                assert_eq!(leaf[1], "delay");
                e.delay_us = Some(us(&leaf[2]));
                let mut i = 3;
                if leaf.get(i).is_some_and(|w| w.ends_with("us")) {
                    e.jitter_us = Some(us(&leaf[i]));
                    assert_eq!(leaf[i + 1..i + 3], argv(&["distribution", "normal"]));
                    i += 3;
                }
                if leaf.get(i).map(String::as_str) == Some("loss") {
                    e.loss_pct = Some(leaf[i + 1].strip_suffix('%').unwrap().parse().unwrap());
                    i += 2;
                }
                assert_eq!(leaf[i], "limit");
                e.netem_limit = Some(leaf[i + 1].parse().unwrap());
                assert_eq!(leaf.len(), i + 2, "{leaf:?}");
            }
            "bfifo" => e.fifo = true,
            other => panic!("leaf {other}"),
        }
        Some(e)
    }

    fn shipped() -> Vec<(PathBuf, Topology)> {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../topologies");
        let mut v: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "toml"))
            .map(|p| (p.clone(), Topology::load(&p).unwrap()))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        assert!(
            v.len() >= 10,
            "shipped topologies not found in {}",
            dir.display()
        );
        v
    }

    /// Two hosts per site (one host per node would give more; two exercise the LAN class).
    fn hosts(t: &Topology) -> Vec<ShapedHost> {
        let mut v = Vec::new();
        for s in t.site_ids() {
            for h in 0..2u8 {
                v.push(ShapedHost {
                    name: format!("h{}-{h}", s.0),
                    address: IpAddr::V4(Ipv4Addr::new(10, 77, s.0 as u8, 10 + h)),
                    site: s,
                });
            }
        }
        v
    }

    #[test]
    fn every_shipped_topology_renders_each_destinations_link() {
        for (path, t) in shipped() {
            let hosts = hosts(&t);
            for (me, my) in hosts.iter().enumerate() {
                let p = plan(&t, &hosts, me);
                for leaf in [Leaf::Netem, Leaf::HtbOnly] {
                    let cmds = render(&p, leaf);
                    // Its own address is never shaped.
                    assert!(effective(&cmds, my.address).is_none());
                    for other in hosts.iter().filter(|h| h.address != my.address) {
                        let e = effective(&cmds, other.address).unwrap_or_else(|| {
                            panic!(
                                "{}: {} has no class for {}",
                                path.display(),
                                my.name,
                                other.name
                            )
                        });
                        let link = t.link(my.site, other.site);
                        let ctx = format!(
                            "{}: {} -> {} ({leaf:?})",
                            path.display(),
                            my.name,
                            other.name
                        );
                        let uplink = t.wan_model == WanModel::SiteUplink && other.site != my.site;
                        if uplink {
                            // All WAN traffic shares the site's uplink: the parent's rate is
                            // the largest WAN bandwidth of the site, and a child may use it all.
                            let up = uplink_bandwidth(&t, my.site);
                            assert_eq!(e.parent_rate_bps, Some(up), "{ctx}");
                            assert_eq!(e.ceil_bps, up, "{ctx}");
                            assert!(e.rate_bps <= up, "{ctx}");
                        } else {
                            assert_eq!(e.parent_rate_bps, None, "{ctx}");
                            assert_eq!(
                                (e.rate_bps, e.ceil_bps),
                                (link.bandwidth_bps, link.bandwidth_bps),
                                "{ctx}"
                            );
                        }
                        match leaf {
                            Leaf::Netem => {
                                assert_eq!(
                                    e.delay_us,
                                    Some(link.latency.as_micros() as u64),
                                    "{ctx}"
                                );
                                assert_eq!(
                                    e.jitter_us,
                                    (!link.jitter.is_zero())
                                        .then_some(link.jitter.as_micros() as u64),
                                    "{ctx}"
                                );
                                let loss = e.loss_pct.unwrap_or(0.0);
                                assert!((loss - link.loss * 100.0).abs() < 1e-9, "{ctx}");
                                assert_eq!(e.netem_limit, Some(NETEM_LIMIT_PACKETS));
                            }
                            Leaf::HtbOnly => assert!(e.fifo, "{ctx}"),
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn planetlab_matrix_values_per_destination() {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../topologies");
        let t = Topology::load(&dir.join("paper-planetlab.toml")).unwrap();
        let hosts: Vec<ShapedHost> = t
            .site_ids()
            .map(|s| ShapedHost {
                name: t.site(s).name.clone(),
                address: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1 + s.0 as u8)),
                site: s,
            })
            .collect();
        let by_name = |n: &str| hosts.iter().position(|h| h.name == n).unwrap();
        // (from, to, one-way µs, bit/s) straight from the file's comments.
        for (a, b, delay, rate) in [
            ("us", "korea", 59_000, 1_100_000),
            ("korea", "us", 59_000, 1_100_000),
            ("brazil", "korea", 289_000, 405_000),
            ("us", "australia", 95_000, 1_300_000),
            ("us", "sweden", 86_000, 1_200_000),
            ("sweden", "australia", 165_000, 750_000),
        ] {
            let cmds = render(&plan(&t, &hosts, by_name(a)), Leaf::Netem);
            let e = effective(&cmds, hosts[by_name(b)].address).unwrap();
            assert_eq!(
                (e.delay_us, e.rate_bps, e.ceil_bps),
                (Some(delay), rate, rate),
                "{a}->{b}"
            );
            assert_eq!(e.parent_rate_bps, None);
        }
    }

    #[test]
    fn site_uplink_shares_one_class_per_site() {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../topologies");
        let t = Topology::load(&dir.join("local-symmetric-10mbps.toml")).unwrap();
        assert_eq!(t.wan_model, WanModel::SiteUplink);
        let hosts = hosts(&t);
        let cmds = render(&plan(&t, &hosts, 0), Leaf::Netem);
        let shell = to_shell(&cmds, "eth0");
        // Exactly one uplink class at 10 Mbit/s, and every WAN class borrows from it.
        assert_eq!(
            shell
                .matches("classid 1:2 htb rate 10000000bit ceil 10000000bit")
                .count(),
            1,
            "{shell}"
        );
        assert_eq!(shell.matches("parent 1:2 classid").count(), 4, "{shell}");
        assert!(
            shell.contains("netem delay 50000us limit 100000"),
            "{shell}"
        );
        // The LAN peer (same site) gets the LAN, outside the uplink.
        assert!(
            shell.contains("parent 1: classid 1:10 htb rate 1000000000bit ceil 1000000000bit"),
            "{shell}"
        );
        assert!(shell.contains("netem delay 100us limit"), "{shell}");
        assert!(!shell.contains("%DEV%"));
    }

    #[test]
    fn jitter_and_loss_render_in_netem() {
        let t = crate::test_topology::parse(
            "jl",
            "latency_ms = 20.5\njitter_ms = 2\nloss_pct = 1.5\nbandwidth = \"2500kbps\"",
            &[("a", "f = 0"), ("b", "f = 0")],
            r#"[pbft]
servers_per_site = { a = 1 }
"#,
        );
        let hosts: Vec<ShapedHost> = (0..2)
            .map(|i| ShapedHost {
                name: format!("h{i}"),
                address: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1 + i)),
                site: SiteId(i as u16),
            })
            .collect();
        let shell = to_shell(&render(&plan(&t, &hosts, 0), Leaf::Netem), "veth0");
        assert!(
            shell.contains("tc qdisc add dev veth0 parent 1:10 handle 10: netem delay 20500us 2000us distribution normal loss 1.5% limit 100000"),
            "{shell}"
        );
        assert!(
            shell.contains("match ip dst 10.0.0.2/32 flowid 1:10"),
            "{shell}"
        );
        let htb = to_shell(&render(&plan(&t, &hosts, 0), Leaf::HtbOnly), "veth0");
        assert!(
            htb.contains("parent 1:10 handle 10: bfifo limit 312500"),
            "{htb}"
        );
        assert!(!htb.contains("netem"));
    }
}
