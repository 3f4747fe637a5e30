//! Time series of a run: every replica's metrics endpoint (`--metrics`) scraped once a second
//! into `timeseries.csv`, and the run's faults into `events.csv`, both in the results
//! directory. Times are seconds since the start of the run's measurement window (negative
//! during the warm-up).
//!
//! `timeseries.csv`: `protocol,clients,batch,scenario,time_s,node,metric,value`, where
//! protocol/clients/batch/scenario are those of the run's summary.csv row, `node` the replica
//! (its metrics' `node` label, e.g. `steward-s0.0`), `metric` the sample's name with its labels
//! except `node` and `protocol` as in the exposition text (e.g.
//! `bft_messages_sent_total{class="wan"}`).
//!
//! `events.csv`: `protocol,clients,batch,scenario,time_s,event,node`, event `kill` or
//! `restart`.

use std::collections::BTreeMap;
use std::fs;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use steward_runtime::metrics::{parse_text, Sample};

/// Header of `timeseries.csv`.
pub const TIMESERIES_HEADER: [&str; 8] = [
    "protocol", "clients", "batch", "scenario", "time_s", "node", "metric", "value",
];
/// Header of `events.csv`.
pub const EVENTS_HEADER: [&str; 7] = [
    "protocol", "clients", "batch", "scenario", "time_s", "event", "node",
];

/// How long one scrape may take.
pub const SCRAPE_TIMEOUT: Duration = Duration::from_millis(200);

/// Metrics endpoints by node name; the launcher updates it as replicas start and die.
pub type Endpoints = Arc<Mutex<BTreeMap<String, SocketAddr>>>;

/// One scrape of one node: when (seconds since the window start), which node, its samples.
pub type Scrape = (f64, String, Vec<Sample>);

/// GETs `http://<addr>/metrics` with a bounded timeout.
#[derive(Clone)]
pub struct Scraper {
    agent: ureq::Agent,
}

impl Scraper {
    /// A client that gives up on a scrape after `timeout`.
    pub fn new(timeout: Duration) -> Scraper {
        let config = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .build();
        Scraper {
            agent: ureq::Agent::new_with_config(config),
        }
    }

    /// The exposition text of the endpoint at `addr`.
    pub fn text(&self, addr: SocketAddr) -> Result<String> {
        let mut response = self
            .agent
            .get(&format!("http://{addr}/metrics"))
            .call()
            .with_context(|| format!("GET http://{addr}/metrics"))?;
        Ok(response.body_mut().read_to_string()?)
    }

    /// The samples of the endpoint at `addr`.
    pub fn samples(&self, addr: SocketAddr) -> Result<Vec<Sample>> {
        Ok(parse_text(&self.text(addr)?))
    }
}

/// A thread scraping every endpoint of [`Endpoints`] once per period until stopped.
pub struct Sampler {
    stop: mpsc::Sender<()>,
    thread: std::thread::JoinHandle<Vec<Scrape>>,
}

impl Sampler {
    /// Starts scraping `endpoints` now and then every `period`; times are relative to
    /// `origin`. A node that does not answer within [`SCRAPE_TIMEOUT`] has no sample then.
    pub fn start(endpoints: Endpoints, origin: Instant, period: Duration) -> Sampler {
        let (stop, stopped) = mpsc::channel::<()>();
        let scraper = Scraper::new(SCRAPE_TIMEOUT);
        let thread = std::thread::spawn(move || {
            let mut out = Vec::new();
            let first = Instant::now();
            for round in 1u32.. {
                let targets: Vec<(String, SocketAddr)> = endpoints
                    .lock()
                    .map(|m| m.iter().map(|(k, v)| (k.clone(), *v)).collect())
                    .unwrap_or_default();
                for (node, addr) in targets {
                    let at = Instant::now();
                    if let Ok(samples) = scraper.samples(addr) {
                        out.push((signed_secs(at, origin), node, samples));
                    }
                }
                // Pace the rounds on a fixed schedule; a message (or a dropped sender) stops.
                let next = first + period * round;
                match stopped.recv_timeout(next.saturating_duration_since(Instant::now())) {
                    Err(mpsc::RecvTimeoutError::Timeout) => {}
                    _ => break,
                }
            }
            out
        });
        Sampler { stop, thread }
    }

    /// Stops the thread and returns every scrape.
    pub fn stop(self) -> Vec<Scrape> {
        let _ = self.stop.send(());
        self.thread.join().unwrap_or_default()
    }
}

/// `at - origin` in seconds, negative when `at` is earlier.
pub fn signed_secs(at: Instant, origin: Instant) -> f64 {
    match at.checked_duration_since(origin) {
        Some(d) => d.as_secs_f64(),
        None => -origin.duration_since(at).as_secs_f64(),
    }
}

/// The run a series belongs to (the summary row's fields).
pub struct RunKey<'a> {
    /// `steward` or `pbft`.
    pub protocol: &'a str,
    /// Client count.
    pub clients: u32,
    /// Batch size.
    pub batch: usize,
    /// The scenario label (`none`, `kill-s0.0@5s`, ...).
    pub scenario: &'a str,
}

/// Creates `dir/timeseries.csv` and `dir/events.csv` with their headers only (a new results
/// table).
pub fn create(dir: &Path) -> Result<()> {
    for (name, header) in [
        ("timeseries.csv", &TIMESERIES_HEADER[..]),
        ("events.csv", &EVENTS_HEADER[..]),
    ] {
        let path = dir.join(name);
        fs::write(&path, header.join(",") + "\n").with_context(|| format!("{}", path.display()))?;
    }
    Ok(())
}

fn append(path: &Path, rows: Vec<Vec<String>>) -> Result<()> {
    let file = fs::OpenOptions::new()
        .append(true)
        .open(path)
        .with_context(|| format!("{}", path.display()))?;
    let mut w = csv::Writer::from_writer(std::io::BufWriter::new(file));
    for row in rows {
        w.write_record(&row)?;
    }
    w.flush().with_context(|| format!("{}", path.display()))?;
    Ok(())
}

/// Appends one run's scrapes to `dir/timeseries.csv` ([`create`]d before).
pub fn append_series(dir: &Path, run: &RunKey, scrapes: &[Scrape]) -> Result<()> {
    let mut rows = Vec::new();
    for (t, node, samples) in scrapes {
        for s in samples {
            rows.push(vec![
                run.protocol.to_string(),
                run.clients.to_string(),
                run.batch.to_string(),
                run.scenario.to_string(),
                format!("{t:.3}"),
                node.clone(),
                s.key(&["node", "protocol"]),
                s.value.to_string(),
            ]);
        }
    }
    append(&dir.join("timeseries.csv"), rows)
}

/// Appends one run's faults (time, `kill` or `restart`, node) to `dir/events.csv`.
pub fn append_events(dir: &Path, run: &RunKey, events: &[(f64, &str, String)]) -> Result<()> {
    let rows = events
        .iter()
        .map(|(t, event, node)| {
            vec![
                run.protocol.to_string(),
                run.clients.to_string(),
                run.batch.to_string(),
                run.scenario.to_string(),
                format!("{t:.3}"),
                event.to_string(),
                node.clone(),
            ]
        })
        .collect();
    append(&dir.join("events.csv"), rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_rows_have_the_promised_columns_and_quoting() {
        let dir = tempfile::tempdir().unwrap();
        create(dir.path()).unwrap();
        let text = "a_total{node=\"pbft-r0\",protocol=\"pbft\",class=\"wan\"} 3.0\n\
                    b{node=\"pbft-r0\",protocol=\"pbft\"} 2.5\n";
        let run = RunKey {
            protocol: "pbft",
            clients: 2,
            batch: 1,
            scenario: "kill-r0@5s",
        };
        let scrapes = vec![(-1.23456, "pbft-r0".to_string(), parse_text(text))];
        append_series(dir.path(), &run, &scrapes).unwrap();
        append_events(dir.path(), &run, &[(5.0004, "kill", "pbft-r0".into())]).unwrap();
        let series = fs::read_to_string(dir.path().join("timeseries.csv")).unwrap();
        assert_eq!(
            series,
            "protocol,clients,batch,scenario,time_s,node,metric,value\n\
             pbft,2,1,kill-r0@5s,-1.235,pbft-r0,\"a_total{class=\"\"wan\"\"}\",3\n\
             pbft,2,1,kill-r0@5s,-1.235,pbft-r0,b,2.5\n"
        );
        let events = fs::read_to_string(dir.path().join("events.csv")).unwrap();
        assert_eq!(
            events,
            "protocol,clients,batch,scenario,time_s,event,node\n\
             pbft,2,1,kill-r0@5s,5.000,kill,pbft-r0\n"
        );
    }

    #[test]
    fn times_before_the_origin_are_negative() {
        let origin = Instant::now();
        let later = origin + Duration::from_millis(1500);
        assert_eq!(signed_secs(later, origin), 1.5);
        assert_eq!(signed_secs(origin, later), -1.5);
    }
}
