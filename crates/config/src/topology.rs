//! The resolved, validated topology and its queries.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use crate::{ConfigError, ServerId, SiteId};

/// A validated wide-area deployment, read from a topology file (see the crate documentation and
/// `topologies/README.md` for the file format).
///
/// Every value has been checked when the `Topology` was built: every pair of sites has a WAN
/// link, every site can tolerate its `f`, the client and PBFT placements name existing sites.
/// The queries below therefore never fail, except by panicking when given a [`SiteId`] that is
/// not part of this topology (a programming error).
#[derive(Debug, Clone, PartialEq)]
pub struct Topology {
    /// Short name of the topology (`name` in the file); by convention the file name without
    /// `.toml`.
    pub name: String,
    /// Free text (`description`; empty when absent).
    pub description: String,
    /// The sites, in file order; `sites[i].id == SiteId(i)`.
    pub sites: Vec<Site>,
    /// Link parameters between two servers of the same site.
    pub lan: LinkParams,
    /// Where closed-loop clients run; see [`Topology::place_clients`].
    pub clients: ClientPlacement,
    /// Where the replicas of the flat PBFT baseline run.
    pub pbft: PbftPlacement,
    /// Explicit WAN links, keyed by `(lower id, higher id)`.
    pub(crate) wan_links: BTreeMap<(SiteId, SiteId), LinkParams>,
    /// `wan.default`, used for pairs without an explicit link.
    pub(crate) wan_default: Option<LinkParams>,
    /// How WAN bandwidth is shared (`wan.model`).
    pub wan_model: WanModel,
}

/// How the WAN links' bandwidth is shared (`wan.model` in the file).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WanModel {
    /// `"pairwise"` (default): every ordered pair of sites has its own link of the given
    /// bandwidth, shared by all servers of those two sites.
    #[default]
    Pairwise,
    /// `"site-uplink"`: all traffic leaving a site shares one access link whose bandwidth is
    /// the largest of the site's WAN links (latency and loss stay per pair). This is how a
    /// testbed that rate-limits each site's (or host's) uplink behaves.
    SiteUplink,
}

/// One site: a group of Steward servers on one LAN that tolerates `f` Byzantine servers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Site {
    /// The site's position in the file.
    pub id: SiteId,
    /// Unique name (ASCII letters, digits, `-`, `_`).
    pub name: String,
    /// Byzantine servers tolerated in this site.
    pub f: u32,
    /// Steward servers in this site, at least `3f + 1`.
    pub servers: u32,
}

impl Site {
    /// The ids of this site's Steward servers, `s{id}.0 .. s{id}.{servers-1}`.
    pub fn server_ids(&self) -> impl Iterator<Item = ServerId> + '_ {
        (0..self.servers).map(move |index| ServerId::new(self.id, index))
    }
}

/// The parameters of one network path, in each direction independently (a link is symmetric:
/// both directions have these parameters, and each direction has its own bandwidth).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LinkParams {
    /// One-way propagation delay.
    pub latency: Duration,
    /// Random extra delay added to `latency` (the emulator decides the distribution; netem
    /// uses this as the standard deviation of a normal distribution). Zero when not given.
    pub jitter: Duration,
    /// Capacity in bits per second, greater than zero.
    pub bandwidth_bps: u64,
    /// Probability in `0.0..=1.0` that a packet is dropped (the file gives a percentage).
    pub loss: f64,
}

impl LinkParams {
    /// The time to put `bytes` bytes on this link at `bandwidth_bps` (serialization delay),
    /// rounded up to the nanosecond.
    pub fn transmission_time(&self, bytes: u64) -> Duration {
        let nanos =
            (u128::from(bytes) * 8 * 1_000_000_000).div_ceil(u128::from(self.bandwidth_bps));
        Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }
}

/// Where closed-loop clients run (`[clients]` in the file).
#[derive(Debug, Clone, PartialEq)]
pub enum ClientPlacement {
    /// Relative weights indexed by [`SiteId`] (one entry per site, sites not named in the file
    /// have weight 0). At least one weight is positive. Without a `[clients]` section every
    /// site has weight 1.
    Weights(Vec<f64>),
    /// Fixed client counts indexed by [`SiteId`] (one entry per site, sites not named in the
    /// file have 0). The total is positive.
    PerSite(Vec<u32>),
}

impl ClientPlacement {
    /// The total of the fixed counts (`per_site`), the natural number of clients for this
    /// topology; `None` for weights.
    pub fn fixed_total(&self) -> Option<u32> {
        match self {
            ClientPlacement::Weights(_) => None,
            // Validated not to overflow when the topology was built.
            ClientPlacement::PerSite(counts) => Some(counts.iter().sum()),
        }
    }
}

/// Where the replicas of the flat PBFT baseline run (`[pbft]` in the file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PbftPlacement {
    /// `replicas[i]` is the site of PBFT replica `i`. Replicas are numbered site by site in file
    /// order: the replicas of site 0 first, then those of site 1, and so on.
    pub replicas: Vec<SiteId>,
    /// Byzantine replicas tolerated; `replicas.len() >= 3f + 1`.
    pub f: u32,
    /// The primary of view 0: the first replica placed at `pbft.primary_site`. A PBFT
    /// implementation that rotates the primary should use `(primary + view) % n`.
    pub primary: u32,
}

impl PbftPlacement {
    /// Number of PBFT replicas, `n`.
    pub fn n(&self) -> u32 {
        // Validated to fit when the topology was built.
        self.replicas.len() as u32
    }

    /// The indices of the replicas placed at `site`.
    pub fn replicas_at(&self, site: SiteId) -> impl Iterator<Item = u32> + '_ {
        (0u32..)
            .zip(&self.replicas)
            .filter(move |(_, s)| **s == site)
            .map(|(i, _)| i)
    }
}

impl Topology {
    /// Reads and validates a topology file. Errors name the file as given in `path`.
    pub fn load(path: &Path) -> Result<Topology, ConfigError> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::file(&origin, format!("cannot read topology file: {e}")))?;
        Topology::from_toml_str(&text, &origin)
    }

    /// Parses and validates a topology from TOML text; `origin` (usually the file name) is
    /// used in error messages.
    pub fn from_toml_str(text: &str, origin: &str) -> Result<Topology, ConfigError> {
        crate::parse::parse(text, origin)
    }

    /// The parameters of the path between a server of site `a` and a server of site `b`: the
    /// LAN parameters when `a == b`, the WAN link otherwise. Symmetric in `a` and `b`.
    ///
    /// # Panics
    /// If `a` or `b` is not a site of this topology.
    pub fn link(&self, a: SiteId, b: SiteId) -> &LinkParams {
        assert!(
            a.index() < self.sites.len() && b.index() < self.sites.len(),
            "site {a} or {b} is not part of topology {:?} ({} sites)",
            self.name,
            self.sites.len()
        );
        if a == b {
            return &self.lan;
        }
        let key = if a < b { (a, b) } else { (b, a) };
        self.wan_links
            .get(&key)
            .or(self.wan_default.as_ref())
            .expect("validated: every pair of sites has a WAN link")
    }

    /// Every unordered pair of distinct sites `(a, b)` with `a < b`, with its WAN link, in
    /// order of `a` then `b`. Convenient for rendering shaping rules.
    pub fn wan_pairs(&self) -> impl Iterator<Item = (SiteId, SiteId, &LinkParams)> + '_ {
        self.site_ids().flat_map(move |a| {
            self.site_ids()
                .filter(move |b| a < *b)
                .map(move |b| (a, b, self.link(a, b)))
        })
    }

    /// The site with this id.
    ///
    /// # Panics
    /// If `id` is not a site of this topology.
    pub fn site(&self, id: SiteId) -> &Site {
        &self.sites[id.index()]
    }

    /// The site with this name, if any.
    pub fn site_by_name(&self, name: &str) -> Option<&Site> {
        self.sites.iter().find(|site| site.name == name)
    }

    /// The ids of all sites, in order.
    pub fn site_ids(&self) -> impl Iterator<Item = SiteId> + '_ {
        self.sites.iter().map(|site| site.id)
    }

    /// The number of Steward servers over all sites.
    pub fn total_steward_servers(&self) -> u32 {
        // Validated not to overflow when the topology was built.
        self.sites.iter().map(|site| site.servers).sum()
    }

    /// All Steward servers: site 0's servers in index order, then site 1's, and so on.
    pub fn steward_servers(&self) -> impl Iterator<Item = ServerId> + '_ {
        self.sites.iter().flat_map(Site::server_ids)
    }

    /// Whether `id` names a Steward server of this topology.
    pub fn has_server(&self, id: ServerId) -> bool {
        self.sites
            .get(id.site.index())
            .is_some_and(|site| id.index < site.servers)
    }

    /// The sites of `n` closed-loop clients: client `i` runs at `place_clients(n)[i]`.
    ///
    /// Deterministic, by smooth weighted round-robin (the algorithm of nginx's upstream
    /// balancer) over the weights or fixed counts of [`ClientPlacement`]: each step adds every
    /// site's weight to its credit, picks the site with the highest credit (the lowest id on
    /// ties) and takes the total weight off its credit. Consequences:
    ///
    /// * placement for `n` is a prefix of placement for `n + 1`, so clients keep their site
    ///   when the client count grows;
    /// * sites of weight 0 never get a client;
    /// * with integer weights (and always with `per_site` counts) every run of `W` consecutive
    ///   clients, `W` the total weight, starting at a multiple of `W`, holds exactly `w_i`
    ///   clients at site `i`; in particular `n` equal to the sum of the `per_site` counts gives
    ///   exactly those counts, and other `n` follow the same proportions, spread evenly.
    pub fn place_clients(&self, n: u32) -> Vec<SiteId> {
        let weights: Vec<f64> = match &self.clients {
            ClientPlacement::Weights(w) => w.clone(),
            ClientPlacement::PerSite(counts) => counts.iter().map(|&c| f64::from(c)).collect(),
        };
        smooth_weighted_round_robin(&weights, n)
            .into_iter()
            .map(|i| SiteId(i as u16))
            .collect()
    }
}

/// The first `n` picks of smooth weighted round-robin over `weights` (at least one positive,
/// all finite and non-negative). Exact for integer weights whose sum is below 2^53.
fn smooth_weighted_round_robin(weights: &[f64], n: u32) -> Vec<usize> {
    let total: f64 = weights.iter().sum();
    let mut credit = vec![0.0f64; weights.len()];
    let mut picks = Vec::with_capacity(n as usize);
    for _ in 0..n {
        let mut best = 0;
        for (i, w) in weights.iter().enumerate() {
            credit[i] += w;
            if credit[i] > credit[best] {
                best = i;
            }
        }
        credit[best] -= total;
        picks.push(best);
    }
    picks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swrr_spreads_smoothly() {
        let picks = smooth_weighted_round_robin(&[5.0, 1.0, 1.0], 7);
        assert_eq!(picks, vec![0, 0, 1, 0, 2, 0, 0]);
        assert_eq!(
            smooth_weighted_round_robin(&[1.0, 1.0, 1.0], 4),
            vec![0, 1, 2, 0]
        );
        assert_eq!(
            smooth_weighted_round_robin(&[0.0, 2.0, 0.0], 3),
            vec![1, 1, 1]
        );
        assert!(smooth_weighted_round_robin(&[1.0], 0).is_empty());
    }

    #[test]
    fn transmission_time() {
        let link = LinkParams {
            latency: Duration::ZERO,
            jitter: Duration::ZERO,
            bandwidth_bps: 10_000_000,
            loss: 0.0,
        };
        assert_eq!(link.transmission_time(1250), Duration::from_millis(1));
        assert_eq!(link.transmission_time(0), Duration::ZERO);
        let slow = LinkParams {
            bandwidth_bps: 3,
            ..link
        };
        assert_eq!(
            slow.transmission_time(1),
            Duration::from_nanos(2_666_666_667)
        );
    }
}
