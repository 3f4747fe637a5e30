//! TOML text → validated [`Topology`].
//!
//! The text is parsed into a generic TOML table and then walked by hand rather than through
//! `serde` derives, so that every error (wrong type, unknown field, bad value) can name the
//! exact field path, e.g. `site[2].servers`. Unknown fields are rejected everywhere, like
//! `#[serde(deny_unknown_fields)]` would.

use std::collections::{BTreeMap, HashMap};

use toml::{Table, Value};

use crate::topology::{ClientPlacement, LinkParams, PbftPlacement, Site, Topology, WanModel};
use crate::units::{ms_to_duration, parse_bandwidth, MAX_MS};
use crate::{ConfigError, SiteId};

/// The largest number of sites (a [`SiteId`] is a `u16`).
pub const MAX_SITES: usize = u16::MAX as usize;

/// The longest site name or topology name.
const MAX_NAME_LEN: usize = 64;

const TOP_FIELDS: &[&str] = &[
    "name",
    "description",
    "lan",
    "wan",
    "site",
    "clients",
    "pbft",
];
const LINK_FIELDS: &[&str] = &["latency_ms", "jitter_ms", "bandwidth", "loss_pct"];
const WAN_LINK_FIELDS: &[&str] = &[
    "between",
    "latency_ms",
    "jitter_ms",
    "bandwidth",
    "loss_pct",
];
const WAN_FIELDS: &[&str] = &["default", "link", "model"];
const SITE_FIELDS: &[&str] = &["name", "f", "servers"];
const CLIENT_FIELDS: &[&str] = &["weights", "per_site"];
const PBFT_FIELDS: &[&str] = &["servers_per_site", "primary_site", "f"];

pub(crate) fn parse(text: &str, origin: &str) -> Result<Topology, ConfigError> {
    let root: Table = text
        .parse()
        .map_err(|e: toml::de::Error| toml_error(text, origin, &e))?;
    Parser { origin }.topology(&root)
}

/// A TOML error (syntax, or a type or unknown field when deserializing) at its position.
pub(crate) fn toml_error(text: &str, origin: &str, e: &toml::de::Error) -> ConfigError {
    let (line, column) = match e.span() {
        Some(span) => line_column(text, span.start),
        None => (1, 1),
    };
    let message = e.message().trim().replace('\n', "; ");
    ConfigError::syntax(origin, line, column, format!("invalid TOML: {message}"))
}

/// 1-based line and column (in characters) of byte offset `offset`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

/// Joins a field path and a key: `join("wan", "default") == "wan.default"`.
fn join(path: &str, key: &str) -> String {
    let key = if !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        key.to_string()
    } else {
        format!("{key:?}")
    };
    if path.is_empty() {
        key
    } else {
        format!("{path}.{key}")
    }
}

/// A partially specified link: fields not given are `None`.
#[derive(Default)]
struct PartialLink {
    latency: Option<std::time::Duration>,
    jitter: Option<std::time::Duration>,
    bandwidth_bps: Option<u64>,
    loss: Option<f64>,
}

struct Parser<'o> {
    origin: &'o str,
}

impl Parser<'_> {
    fn err(&self, path: impl Into<String>, reason: impl Into<String>) -> ConfigError {
        ConfigError::field(self.origin, path, reason)
    }

    fn type_err(&self, path: &str, expected: &str, got: &Value) -> ConfigError {
        self.err(path, format!("expected {expected}, got {}", describe(got)))
    }

    /// Checks that `table` has only the `allowed` keys.
    fn known_fields(&self, table: &Table, path: &str, allowed: &[&str]) -> Result<(), ConfigError> {
        for key in table.keys() {
            if !allowed.contains(&key.as_str()) {
                return Err(self.err(
                    join(path, key),
                    format!("unknown field (expected one of: {})", allowed.join(", ")),
                ));
            }
        }
        Ok(())
    }

    fn table<'v>(&self, value: &'v Value, path: &str) -> Result<&'v Table, ConfigError> {
        value
            .as_table()
            .ok_or_else(|| self.type_err(path, "a table", value))
    }

    fn string<'v>(&self, value: &'v Value, path: &str) -> Result<&'v str, ConfigError> {
        value
            .as_str()
            .ok_or_else(|| self.type_err(path, "a string", value))
    }

    /// A non-negative integer that fits in a `u32`.
    fn count(&self, value: &Value, path: &str) -> Result<u32, ConfigError> {
        let n = value
            .as_integer()
            .ok_or_else(|| self.type_err(path, "a non-negative integer", value))?;
        if n < 0 {
            return Err(self.err(path, format!("must be >= 0, got {n}")));
        }
        u32::try_from(n).map_err(|_| self.err(path, format!("must be <= {}, got {n}", u32::MAX)))
    }

    /// A finite number (integer or float) within `min..=max`.
    fn number(&self, value: &Value, path: &str, min: f64, max: f64) -> Result<f64, ConfigError> {
        let x = match value {
            Value::Integer(i) => *i as f64,
            Value::Float(x) => *x,
            other => return Err(self.type_err(path, "a number", other)),
        };
        if !x.is_finite() {
            return Err(self.err(path, format!("must be a finite number, got {x}")));
        }
        if x < min {
            return Err(self.err(
                path,
                format!("must be >= {min}, got {}", show_number(value)),
            ));
        }
        if x > max {
            return Err(self.err(
                path,
                format!("must be <= {max}, got {}", show_number(value)),
            ));
        }
        Ok(x)
    }

    /// A name: 1 to 64 ASCII letters, digits, `-`, `_` (and `.` when `allow_dot`).
    fn name(&self, value: &Value, path: &str, allow_dot: bool) -> Result<String, ConfigError> {
        let name = self.string(value, path)?;
        let ok_char =
            |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_' || (allow_dot && c == '.');
        if name.is_empty() || name.len() > MAX_NAME_LEN || !name.chars().all(ok_char) {
            let extra = if allow_dot { ", `.`" } else { "" };
            return Err(self.err(
                path,
                format!(
                    "invalid name {name:?}: use 1 to {MAX_NAME_LEN} ASCII letters, digits, `-`, `_`{extra}"
                ),
            ));
        }
        Ok(name.to_string())
    }

    fn topology(&self, root: &Table) -> Result<Topology, ConfigError> {
        self.known_fields(root, "", TOP_FIELDS)?;
        let name = match root.get("name") {
            Some(v) => self.name(v, "name", true)?,
            None => return Err(self.err("name", "missing required field")),
        };
        let description = match root.get("description") {
            Some(v) => self.string(v, "description")?.to_string(),
            None => String::new(),
        };
        let sites = self.sites(root.get("site"))?;
        let by_name: HashMap<&str, SiteId> =
            sites.iter().map(|s| (s.name.as_str(), s.id)).collect();
        let lan = match root.get("lan") {
            Some(v) => {
                let table = self.table(v, "lan")?;
                self.known_fields(table, "lan", LINK_FIELDS)?;
                let partial = self.partial_link(table, "lan")?;
                self.complete_link(partial, None, "lan")?
            }
            None => return Err(self.err("lan", "missing required table [lan]")),
        };
        let (wan_default, wan_links) = self.wan(root.get("wan"), &sites, &by_name)?;
        let wan_model = match root.get("wan").and_then(|w| w.get("model")) {
            None => WanModel::Pairwise,
            Some(v) => match self.string(v, "wan.model")? {
                "pairwise" => WanModel::Pairwise,
                "site-uplink" => WanModel::SiteUplink,
                other => {
                    return Err(self.err(
                        "wan.model",
                        format!("must be \"pairwise\" or \"site-uplink\", got {other:?}"),
                    ))
                }
            },
        };
        let clients = match root.get("clients") {
            Some(v) => self.clients(v, &sites, &by_name)?,
            None => ClientPlacement::Weights(vec![1.0; sites.len()]),
        };
        let pbft = match root.get("pbft") {
            Some(v) => self.pbft(v, &sites, &by_name)?,
            None => return Err(self.err("pbft", "missing required table [pbft]")),
        };
        Ok(Topology {
            name,
            description,
            sites,
            lan,
            clients,
            pbft,
            wan_links,
            wan_default,
            wan_model,
        })
    }

    fn sites(&self, value: Option<&Value>) -> Result<Vec<Site>, ConfigError> {
        let Some(value) = value else {
            return Err(self.err("site", "missing: at least one [[site]] is required"));
        };
        let list = value
            .as_array()
            .ok_or_else(|| self.type_err("site", "an array of tables ([[site]])", value))?;
        if list.is_empty() {
            return Err(self.err("site", "at least one [[site]] is required"));
        }
        if list.len() > MAX_SITES {
            return Err(self.err(
                "site",
                format!(
                    "{} sites given, at most {MAX_SITES} are supported",
                    list.len()
                ),
            ));
        }
        let mut sites: Vec<Site> = Vec::with_capacity(list.len());
        let mut seen: HashMap<String, usize> = HashMap::new();
        let mut total: u64 = 0;
        for (i, item) in list.iter().enumerate() {
            let path = format!("site[{i}]");
            let table = self.table(item, &path)?;
            self.known_fields(table, &path, SITE_FIELDS)?;
            let name_path = join(&path, "name");
            let name = match table.get("name") {
                Some(v) => self.name(v, &name_path, false)?,
                None => return Err(self.err(name_path, "missing required field")),
            };
            if let Some(first) = seen.insert(name.clone(), i) {
                return Err(self.err(
                    name_path,
                    format!("duplicate site name {name:?} (also site[{first}].name)"),
                ));
            }
            let f_path = join(&path, "f");
            let f = match table.get("f") {
                Some(v) => self.count(v, &f_path)?,
                None => return Err(self.err(f_path, "missing required field")),
            };
            let need = 3 * u64::from(f) + 1;
            let servers_path = join(&path, "servers");
            let servers = match table.get("servers") {
                Some(v) => {
                    let servers = self.count(v, &servers_path)?;
                    if u64::from(servers) < need {
                        return Err(self.err(
                            servers_path,
                            format!(
                                "{servers} servers cannot tolerate f = {f} (need at least 3f+1 = {need})"
                            ),
                        ));
                    }
                    servers
                }
                None => u32::try_from(need).map_err(|_| {
                    self.err(
                        f_path,
                        format!("f = {f} is too large: 3f+1 servers do not fit in 32 bits"),
                    )
                })?,
            };
            total += u64::from(servers);
            if total > u64::from(u32::MAX) {
                return Err(self.err(
                    servers_path,
                    format!("the total number of servers exceeds {}", u32::MAX),
                ));
            }
            sites.push(Site {
                id: SiteId(i as u16),
                name,
                f,
                servers,
            });
        }
        Ok(sites)
    }

    /// Reads the link fields present in `table` (already checked for unknown fields).
    fn partial_link(&self, table: &Table, path: &str) -> Result<PartialLink, ConfigError> {
        let mut link = PartialLink::default();
        if let Some(v) = table.get("latency_ms") {
            let ms = self.number(v, &join(path, "latency_ms"), 0.0, MAX_MS)?;
            link.latency = Some(ms_to_duration(ms));
        }
        if let Some(v) = table.get("jitter_ms") {
            let ms = self.number(v, &join(path, "jitter_ms"), 0.0, MAX_MS)?;
            link.jitter = Some(ms_to_duration(ms));
        }
        if let Some(v) = table.get("bandwidth") {
            let field = join(path, "bandwidth");
            let text = v.as_str().ok_or_else(|| {
                self.type_err(&field, "a string with a unit, such as \"10Mbps\"", v)
            })?;
            link.bandwidth_bps = Some(parse_bandwidth(text).map_err(|e| self.err(&field, e))?);
        }
        if let Some(v) = table.get("loss_pct") {
            let pct = self.number(v, &join(path, "loss_pct"), 0.0, 100.0)?;
            link.loss = Some(pct / 100.0);
        }
        Ok(link)
    }

    /// Fills missing fields from `inherit` (the WAN default) or, without one, requires
    /// `latency_ms` and `bandwidth` and defaults jitter and loss to zero.
    fn complete_link(
        &self,
        partial: PartialLink,
        inherit: Option<&LinkParams>,
        path: &str,
    ) -> Result<LinkParams, ConfigError> {
        let why = if inherit.is_none() && path.starts_with("wan.link") {
            "missing required field (there is no wan.default to inherit it from)"
        } else {
            "missing required field"
        };
        let latency = partial
            .latency
            .or(inherit.map(|d| d.latency))
            .ok_or_else(|| self.err(join(path, "latency_ms"), why))?;
        let bandwidth_bps = partial
            .bandwidth_bps
            .or(inherit.map(|d| d.bandwidth_bps))
            .ok_or_else(|| self.err(join(path, "bandwidth"), why))?;
        Ok(LinkParams {
            latency,
            jitter: partial
                .jitter
                .or(inherit.map(|d| d.jitter))
                .unwrap_or_default(),
            bandwidth_bps,
            loss: partial.loss.or(inherit.map(|d| d.loss)).unwrap_or(0.0),
        })
    }

    #[allow(clippy::type_complexity)]
    fn wan(
        &self,
        value: Option<&Value>,
        sites: &[Site],
        by_name: &HashMap<&str, SiteId>,
    ) -> Result<(Option<LinkParams>, BTreeMap<(SiteId, SiteId), LinkParams>), ConfigError> {
        let empty = Table::new();
        let table = match value {
            Some(v) => self.table(v, "wan")?,
            None => &empty,
        };
        self.known_fields(table, "wan", WAN_FIELDS)?;
        let default = match table.get("default") {
            Some(v) => {
                let t = self.table(v, "wan.default")?;
                self.known_fields(t, "wan.default", LINK_FIELDS)?;
                let partial = self.partial_link(t, "wan.default")?;
                Some(self.complete_link(partial, None, "wan.default")?)
            }
            None => None,
        };
        let mut links = BTreeMap::new();
        let mut origin_of: HashMap<(SiteId, SiteId), usize> = HashMap::new();
        if let Some(v) = table.get("link") {
            let list = v
                .as_array()
                .ok_or_else(|| self.type_err("wan.link", "an array of tables ([[wan.link]])", v))?;
            for (i, item) in list.iter().enumerate() {
                let path = format!("wan.link[{i}]");
                let t = self.table(item, &path)?;
                self.known_fields(t, &path, WAN_LINK_FIELDS)?;
                let key = self.between(t, &path, by_name)?;
                if let Some(first) = origin_of.insert(key, i) {
                    return Err(self.err(
                        join(&path, "between"),
                        format!(
                            "duplicate link between {:?} and {:?} (already given by wan.link[{first}])",
                            sites[key.0.index()].name,
                            sites[key.1.index()].name
                        ),
                    ));
                }
                let partial = self.partial_link(t, &path)?;
                links.insert(key, self.complete_link(partial, default.as_ref(), &path)?);
            }
        }
        if default.is_none() {
            for a in sites {
                for b in &sites[a.id.index() + 1..] {
                    if !links.contains_key(&(a.id, b.id)) {
                        return Err(self.err(
                            "wan",
                            format!(
                                "no link between {:?} and {:?} and no wan.default",
                                a.name, b.name
                            ),
                        ));
                    }
                }
            }
        }
        Ok((default, links))
    }

    /// The `between = ["a", "b"]` of a WAN link, as `(lower id, higher id)`.
    fn between(
        &self,
        table: &Table,
        path: &str,
        by_name: &HashMap<&str, SiteId>,
    ) -> Result<(SiteId, SiteId), ConfigError> {
        let path = join(path, "between");
        let value = table
            .get("between")
            .ok_or_else(|| self.err(&path, "missing required field"))?;
        let ends = value
            .as_array()
            .ok_or_else(|| self.type_err(&path, "an array of two site names", value))?;
        if ends.len() != 2 {
            return Err(self.err(
                &path,
                format!("expected two site names, got {}", ends.len()),
            ));
        }
        let mut ids = [SiteId(0); 2];
        for (slot, end) in ids.iter_mut().zip(ends) {
            let name = end
                .as_str()
                .ok_or_else(|| self.type_err(&path, "an array of two site names", value))?;
            *slot = *by_name
                .get(name)
                .ok_or_else(|| self.err(&path, format!("unknown site {name:?}")))?;
        }
        let [a, b] = ids;
        if a == b {
            return Err(self.err(
                &path,
                format!(
                    "links site {:?} to itself; links within a site are set by [lan]",
                    ends[0].as_str().unwrap_or_default()
                ),
            ));
        }
        Ok(if a < b { (a, b) } else { (b, a) })
    }

    /// Looks up a site named by a key of a per-site table (`clients.weights.us`).
    fn site_key(
        &self,
        key: &str,
        path: &str,
        by_name: &HashMap<&str, SiteId>,
    ) -> Result<SiteId, ConfigError> {
        by_name
            .get(key)
            .copied()
            .ok_or_else(|| self.err(join(path, key), format!("unknown site {key:?}")))
    }

    fn clients(
        &self,
        value: &Value,
        sites: &[Site],
        by_name: &HashMap<&str, SiteId>,
    ) -> Result<ClientPlacement, ConfigError> {
        let table = self.table(value, "clients")?;
        self.known_fields(table, "clients", CLIENT_FIELDS)?;
        match (table.get("weights"), table.get("per_site")) {
            (Some(_), Some(_)) => {
                Err(self.err("clients", "give either weights or per_site, not both"))
            }
            (None, None) => Err(self.err(
                "clients",
                "expected weights = { site = weight, .. } or per_site = { site = count, .. }",
            )),
            (Some(v), None) => {
                let path = "clients.weights";
                let t = self.table(v, path)?;
                let mut weights = vec![0.0; sites.len()];
                for (key, w) in t {
                    let site = self.site_key(key, path, by_name)?;
                    weights[site.index()] = self.number(w, &join(path, key), 0.0, f64::MAX)?;
                }
                let total: f64 = weights.iter().sum();
                if total <= 0.0 {
                    return Err(self.err(path, "at least one weight must be > 0"));
                }
                if !total.is_finite() || total > 1e15 {
                    return Err(self.err(path, "the weights add up to more than 10^15"));
                }
                Ok(ClientPlacement::Weights(weights))
            }
            (None, Some(v)) => {
                let path = "clients.per_site";
                let t = self.table(v, path)?;
                let mut counts = vec![0u32; sites.len()];
                let mut total: u64 = 0;
                for (key, c) in t {
                    let site = self.site_key(key, path, by_name)?;
                    let count = self.count(c, &join(path, key))?;
                    counts[site.index()] = count;
                    total += u64::from(count);
                }
                if total == 0 {
                    return Err(self.err(path, "at least one count must be > 0"));
                }
                if total > u64::from(u32::MAX) {
                    return Err(
                        self.err(path, format!("the counts add up to more than {}", u32::MAX))
                    );
                }
                Ok(ClientPlacement::PerSite(counts))
            }
        }
    }

    fn pbft(
        &self,
        value: &Value,
        sites: &[Site],
        by_name: &HashMap<&str, SiteId>,
    ) -> Result<PbftPlacement, ConfigError> {
        let table = self.table(value, "pbft")?;
        self.known_fields(table, "pbft", PBFT_FIELDS)?;
        let path = "pbft.servers_per_site";
        let per_site = match table.get("servers_per_site") {
            Some(v) => self.table(v, path)?,
            None => return Err(self.err(path, "missing required field")),
        };
        let mut counts = vec![0u32; sites.len()];
        let mut total: u64 = 0;
        for (key, c) in per_site {
            let site = self.site_key(key, path, by_name)?;
            let count = self.count(c, &join(path, key))?;
            counts[site.index()] = count;
            total += u64::from(count);
        }
        if total == 0 {
            return Err(self.err(path, "the total number of PBFT replicas must be >= 1"));
        }
        // A Vec of 2^32 replicas is absurd anyway; stay well inside u32 and memory.
        const MAX_REPLICAS: u64 = 1 << 24;
        if total > MAX_REPLICAS {
            return Err(self.err(
                path,
                format!("{total} PBFT replicas given, at most {MAX_REPLICAS} are supported"),
            ));
        }
        let n = total as u32;
        let f = match table.get("f") {
            Some(v) => {
                let f = self.count(v, "pbft.f")?;
                let need = 3 * u64::from(f) + 1;
                if u64::from(n) < need {
                    return Err(self.err(
                        "pbft.f",
                        format!(
                            "{n} replicas cannot tolerate f = {f} (need at least 3f+1 = {need})"
                        ),
                    ));
                }
                f
            }
            None => (n - 1) / 3,
        };
        let primary_site = match table.get("primary_site") {
            Some(v) => {
                let name = self.string(v, "pbft.primary_site")?;
                let site = *by_name.get(name).ok_or_else(|| {
                    self.err("pbft.primary_site", format!("unknown site {name:?}"))
                })?;
                if counts[site.index()] == 0 {
                    return Err(self.err(
                        "pbft.primary_site",
                        format!("site {name:?} has no PBFT replicas in pbft.servers_per_site"),
                    ));
                }
                site
            }
            None => sites
                .iter()
                .find(|s| counts[s.id.index()] > 0)
                .map(|s| s.id)
                .expect("total >= 1"),
        };
        let mut replicas = Vec::with_capacity(n as usize);
        let mut primary = 0;
        for site in sites {
            if site.id == primary_site {
                primary = replicas.len() as u32;
            }
            replicas.extend(std::iter::repeat_n(
                site.id,
                counts[site.id.index()] as usize,
            ));
        }
        Ok(PbftPlacement {
            replicas,
            f,
            primary,
        })
    }
}

/// A short description of a TOML value for type errors: `string "abc"`, `integer 5`, `a table`.
fn describe(value: &Value) -> String {
    match value {
        Value::String(s) if s.chars().count() <= 40 => format!("string {s:?}"),
        Value::String(_) => "a string".to_string(),
        Value::Integer(i) => format!("integer {i}"),
        Value::Float(x) => format!("float {x}"),
        Value::Boolean(b) => format!("boolean {b}"),
        Value::Datetime(d) => format!("datetime {d}"),
        Value::Array(_) => "an array".to_string(),
        Value::Table(_) => "a table".to_string(),
    }
}

/// A number as written (integers without a decimal point).
fn show_number(value: &Value) -> String {
    match value {
        Value::Integer(i) => i.to_string(),
        Value::Float(x) => x.to_string(),
        other => describe(other),
    }
}
