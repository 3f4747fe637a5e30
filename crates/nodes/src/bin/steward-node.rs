//! `steward-node`: one Steward replica on the real network.
//!
//! Loads its keys, TLS identity and the peer address map from a deployment directory, binds
//! its QUIC transport (shaped by the topology with `--wan emulate`) and runs the sans-IO
//! replica (see `steward_runtime::serve` for its stdout lines and signals).

use clap::Parser;

/// mimalloc, as in `loadgen`: both replicas allocate a message, a slot or a vote set at every
/// step (the same allocator for both protocols keeps the comparison fair).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Run one Steward replica.
#[derive(Parser, Debug)]
#[command(name = "steward-node", version, about)]
struct Args {
    #[command(flatten)]
    node: steward_runtime::NodeArgs,
}

fn main() {
    bft_nodes::replica_main(steward_config::Protocol::Steward, &Args::parse().node)
}
