//! Experiment specs (`loadgen matrix --spec`): parsing never panics, and an accepted spec
//! keeps every promise `steward_config::spec` documents.
#![no_main]
use libfuzzer_sys::fuzz_target;
use steward_config::spec::{ExperimentSpec, RunMode};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(spec) = ExperimentSpec::from_toml_str(text, "fuzz.toml") else { return };
    assert!(!spec.runs.is_empty());
    for run in &spec.runs {
        assert!(!run.protocols.is_empty() && !run.clients.is_empty());
        assert!(!run.write_pct.is_empty() && !run.batch.is_empty());
        assert!(run.clients.iter().all(|&c| c > 0));
        assert!(run.write_pct.iter().all(|&w| w <= 100));
        assert!(run.batch.iter().all(|&b| b > 0));
        assert!(!run.duration.is_zero());
        assert_eq!(run.mode == RunMode::Remote, run.deployment.is_some());
        assert!(run.mode == RunMode::Remote || !run.topologies.is_empty());
    }
});
