//! Topology files: any text is either a valid topology or an error, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = steward_config::Topology::from_toml_str(text, "fuzz.toml");
    }
});
