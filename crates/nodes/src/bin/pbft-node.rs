//! `pbft-node`: one PBFT replica on the real network.
//!
//! Loads its keys, TLS identity and the peer address map from a deployment directory, binds
//! its QUIC transport (shaped by the topology with `--wan emulate`) and runs the sans-IO
//! replica (see `steward_runtime::serve` for its stdout lines and signals).

use clap::Parser;
use steward_runtime::{serve, Log, NodeArgs};

/// Run one PBFT replica.
#[derive(Parser, Debug)]
#[command(name = "pbft-node", version, about)]
struct Args {
    #[command(flatten)]
    node: NodeArgs,
}

fn main() {
    let args = Args::parse();
    let log = Log::new(args.node.log, "pbft-node", &args.node.id);
    let result = bft_nodes::pbft::replica_setup(&args.node).and_then(|setup| serve(setup, &log));
    if let Err(e) = result {
        log.error(&format!("error: {e:#}"));
        std::process::exit(1);
    }
}
