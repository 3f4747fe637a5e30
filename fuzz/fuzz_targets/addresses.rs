//! Address maps: parsed and checked, or an error; never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(map) =
            steward_deploy::parse_addresses(text, std::path::Path::new("addresses.json"))
        {
            assert!(map
                .values()
                .all(|a| !a.ip().is_unspecified() && a.port() != 0));
        }
    }
});
