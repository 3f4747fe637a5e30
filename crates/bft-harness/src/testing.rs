//! What both protocols' tests share: the shipped topologies, a lossy variant, a run of any
//! world, the basic verdict on a report, and the checks of a message codec.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bft_core::{Op, Update, Wire};
use steward_config::Topology;
pub use steward_sim::{SimConfig, SimError};

use crate::report::RunReport;
use crate::CryptoMode;

/// The configuration of a simulated deployment of either protocol.
pub trait WorldSpec: Sized {
    /// The deployment it builds.
    type World: SimWorld;
    /// Its seed (for failure messages).
    fn seed(&self) -> u64;
    /// Builds the deployment.
    fn build(self) -> Result<Self::World, SimError>;
    /// Its simulator settings.
    fn sim_mut(&mut self) -> &mut SimConfig;
    /// Its crypto (fast double or real schemes).
    fn crypto_mut(&mut self) -> &mut CryptoMode;
}

/// A simulated deployment of either protocol.
pub trait SimWorld {
    /// Runs until virtual time `t`.
    fn run_until(&mut self, t: Duration) -> Result<(), SimError>;
    /// Summarises the measurement window.
    fn report(&self) -> RunReport;
    /// Messages the links' loss dropped so far.
    fn dropped_loss(&self) -> u64;
    /// The hash of the simulator's event trace so far.
    fn trace_hash(&self) -> u64;
}

/// Implements [`WorldSpec`] for a protocol's world configuration and [`SimWorld`] for its world,
/// forwarding to their inherent `build` and `run_until` (the configuration has
/// `sim: SimConfig` and `crypto: CryptoMode` fields, the world a `sim: Sim<_>` field), and
/// gives the world its inherent `report`, made from the world's `client_sites`, its
/// `update_latency_bound_ms(site)`, its configuration's warm-up and its `checker()`.
#[macro_export]
macro_rules! sim_world {
    ($world:ty, $config:ty) => {
        impl $world {
            /// Summarise the measurement window.
            pub fn report(&self) -> $crate::RunReport {
                let bounds: Vec<f64> = self
                    .client_sites
                    .iter()
                    .map(|s| self.update_latency_bound_ms(*s))
                    .collect();
                $crate::RunReport::from_sim(
                    &self.sim,
                    self.cfg.sim.warmup,
                    &bounds,
                    self.checker().verdict(),
                )
            }
        }

        impl $crate::testing::WorldSpec for $config {
            type World = $world;
            fn seed(&self) -> u64 {
                self.sim.seed
            }
            fn build(self) -> Result<$world, $crate::testing::SimError> {
                <$world>::build(self)
            }
            fn sim_mut(&mut self) -> &mut $crate::testing::SimConfig {
                &mut self.sim
            }
            fn crypto_mut(&mut self) -> &mut $crate::CryptoMode {
                &mut self.crypto
            }
        }

        impl $crate::testing::SimWorld for $world {
            fn run_until(
                &mut self,
                t: std::time::Duration,
            ) -> Result<(), $crate::testing::SimError> {
                <$world>::run_until(self, t)
            }
            fn report(&self) -> $crate::RunReport {
                <$world>::report(self)
            }
            fn dropped_loss(&self) -> u64 {
                self.sim.stats().total.dropped_loss
            }
            fn trace_hash(&self) -> u64 {
                self.sim.trace_hash()
            }
        }
    };
}

/// Builds `cfg` and runs it for `secs` virtual seconds; panics naming the seed on an error.
pub fn run<C: WorldSpec>(cfg: C, secs: u64) -> (C::World, RunReport) {
    let seed = cfg.seed();
    let mut w = cfg.build().unwrap_or_else(|e| panic!("seed {seed}: {e}"));
    w.run_until(Duration::from_secs(secs))
        .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
    let r = w.report();
    (w, r)
}

/// Runs the deployment `make` builds on [`lossy_topology`], with [`duplicate_and_reorder`], for
/// `secs` virtual seconds; asserts it stayed safe, made progress and lost messages.
pub fn run_lossy<C: WorldSpec>(
    make: impl FnOnce(Topology) -> C,
    secs: u64,
) -> (C::World, RunReport) {
    let mut cfg = make(lossy_topology());
    duplicate_and_reorder(cfg.sim_mut());
    let seed = cfg.seed();
    let (w, r) = run(cfg, secs);
    assert_ok(&r, seed, "lossy links");
    assert!(w.dropped_loss() > 0, "seed {seed}: nothing was lost");
    (w, r)
}

/// The deployment `make(seed)` builds, with duplicated and reordered messages, replays
/// identically for the same seed (seed 21) and differently for another (22).
pub fn assert_same_seed_same_run<C: WorldSpec>(make: impl Fn(u64) -> C) {
    let build = |seed| {
        let mut cfg = make(seed);
        let sim = cfg.sim_mut();
        sim.duplicate_prob = 0.05;
        sim.reorder_prob = 0.1;
        sim.reorder_max = Duration::from_millis(20);
        let mut w = cfg.build().unwrap();
        w.run_until(Duration::from_secs(3)).unwrap();
        (w.trace_hash(), w.report().updates)
    };
    assert_eq!(build(21), build(21), "seed 21 did not replay identically");
    assert_ne!(build(21).0, build(22).0);
}

/// Runs `cfg` with the real schemes for 3 virtual seconds; asserts it stayed safe and completed
/// at least `min_updates` updates.
pub fn assert_real_crypto_run<C: WorldSpec>(mut cfg: C, min_updates: u64) {
    *cfg.crypto_mut() = CryptoMode::Real;
    let seed = cfg.seed();
    let (_, r) = run(cfg, 3);
    assert_ok(&r, seed, "real crypto");
    assert!(r.updates >= min_updates, "seed {seed}: {}", r.updates);
}

/// The run was safe and made progress.
pub fn assert_ok(r: &RunReport, seed: u64, what: &str) {
    assert_eq!(r.safety, "ok", "{what}: seed {seed}: safety violation");
    assert!(r.updates > 0, "{what}: seed {seed}: no progress");
}

/// A topology of the repository's topologies/ folder.
pub fn shipped_topology(name: &str) -> Topology {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../topologies")
        .join(name);
    Topology::load(&path).unwrap_or_else(|e| panic!("shipped topology {name}: {e}"))
}

/// local-symmetric-10mbps with 5% loss on WAN links and 1% inside sites.
pub fn lossy_topology() -> Topology {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../topologies/local-symmetric-10mbps.toml");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .replace("latency_ms = 50\n", "latency_ms = 50\nloss_pct = 5\n")
        .replace("latency_ms = 0.1\n", "latency_ms = 0.1\nloss_pct = 1\n");
    Topology::from_toml_str(&text, "lossy").expect("lossy topology")
}

/// Duplicates 5% of messages and reorders 20% by up to 30 ms.
pub fn duplicate_and_reorder(sim: &mut SimConfig) {
    sim.duplicate_prob = 0.05;
    sim.reorder_prob = 0.2;
    sim.reorder_max = Duration::from_millis(30);
}

/// Every sample decodes from its encoding to itself, and every truncation of the encoding and
/// the encoding with a byte more are rejected.
pub fn assert_wire_roundtrips<M: Wire + PartialEq>(samples: &[M]) {
    for m in samples {
        let bytes = m.encode();
        assert_eq!(&M::decode(&bytes).unwrap(), m, "{}", m.kind());
        for cut in 0..bytes.len() {
            assert!(M::decode(&bytes[..cut]).is_err(), "{} cut {cut}", m.kind());
        }
        let mut longer = bytes;
        longer.push(0);
        assert!(M::decode(&longer).is_err(), "{}", m.kind());
    }
}

/// A client's signed Put of 200 bytes under key `k` (a sample for message tests).
pub fn sample_put(client: u32, ts: u64) -> Arc<Update> {
    Arc::new(Update {
        client,
        ts,
        op: Op::Put {
            key: b"k".to_vec(),
            value: vec![1; 200],
        },
        sig: vec![9; 64],
        memo: Default::default(),
    })
}

/// The encoding of `sample` with another version byte is rejected for its version, and with
/// an unknown type byte (200) for its type.
pub fn assert_bad_version_and_type_rejected<M: Wire>(sample: &M, version: u8) {
    let mut bytes = sample.encode();
    bytes[0] = 9;
    assert!(M::decode(&bytes).unwrap_err().0.contains("version"));
    bytes[0] = version;
    bytes[1] = 200;
    assert!(M::decode(&bytes).unwrap_err().0.contains("type"));
}

/// Decodes the encoding of `m` with the byte at `pos` (modulo its length) set to `val`: for
/// property tests that the decoder never panics on a damaged message.
pub fn decode_mutated<M: Wire>(m: &M, pos: usize, val: u8) {
    let mut bytes = m.encode();
    let p = pos % bytes.len();
    bytes[p] = val;
    let _ = M::decode(&bytes);
}

/// The codec tests every protocol's message type gets, inside its test module: every sample
/// roundtrips and its truncations fail, a wrong version or type byte is refused, and neither
/// random bytes (up to `max_len`) nor a damaged sample ever make the decoder panic.
/// The calling crate needs `proptest` (a dev-dependency) and `bft-core`.
///
/// ```ignore
/// bft_harness::wire_codec_tests!(Message, samples(), WIRE_VERSION, 800);
/// ```
#[macro_export]
macro_rules! wire_codec_tests {
    ($msg:ty, $samples:expr, $version:expr, $max_len:expr) => {
        #[test]
        fn every_message_roundtrips_and_truncations_fail() {
            $crate::testing::assert_wire_roundtrips(&$samples);
        }

        #[test]
        fn bad_version_and_type_are_rejected() {
            $crate::testing::assert_bad_version_and_type_rejected(&$samples[0], $version);
        }

        proptest::proptest! {
            #[test]
            fn decode_never_panics(
                bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..$max_len)
            ) {
                let _ = <$msg as bft_core::Wire>::decode(&bytes);
            }

            #[test]
            fn mutated_encodings_never_panic(
                idx in proptest::prelude::any::<usize>(),
                pos in proptest::prelude::any::<usize>(),
                val in proptest::prelude::any::<u8>(),
            ) {
                let all = $samples;
                $crate::testing::decode_mutated(&all[idx % all.len()], pos, val);
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lossy_topology_has_loss_on_every_link() {
        let t = lossy_topology();
        assert!(t.wan_pairs().all(|(_, _, l)| l.loss > 0.0));
    }
}
