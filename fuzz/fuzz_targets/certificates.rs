//! Certificates presented by peers: reading the node name out of arbitrary DER never panics.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = steward_net::certs::node_name_from_cert(data);
});
