//! The composition root of a real deployment: each protocol's replica and client set up from
//! a deployment directory (keys, TLS identity, addresses) and handed to the runtime's generic
//! driver. The protocol crates stay free of tokio and quinn; this crate and the binaries
//! `steward-node` and `pbft-node` join them to the runtime.

#![warn(missing_docs)]

pub mod pbft;
pub mod steward;

use steward_config::Protocol;
use steward_runtime::{serve, Log, NodeArgs};

/// The program name of a protocol's replica binary.
pub fn program(protocol: Protocol) -> &'static str {
    match protocol {
        Protocol::Steward => "steward-node",
        Protocol::Pbft => "pbft-node",
    }
}

/// Runs one replica of `protocol` until it is stopped: the whole of `steward-node`,
/// `pbft-node` and `loadgen replica`. Exits 0 after a clean stop, 1 after an error (logged).
pub fn replica_main(protocol: Protocol, args: &NodeArgs) -> ! {
    let log = Log::new(args.log, program(protocol), &args.id);
    let setup = match protocol {
        Protocol::Steward => steward::replica_setup(args),
        Protocol::Pbft => pbft::replica_setup(args),
    };
    match setup.and_then(|s| serve(s, &log)) {
        Ok(()) => std::process::exit(0),
        Err(e) => {
            log.error(&format!("error: {e:#}"));
            std::process::exit(1);
        }
    }
}
