//! `loadgen`: the driver CLI of the Steward / PBFT benchmark suite.

// First, so that its `eprintln!` and `println!` (which keep progress bars intact) are the ones
// every module below uses.
#[macro_use]
mod progress;

mod campaign;

/// mimalloc instead of the system allocator: the simulator allocates and frees a message, a
/// slot or a share set at every step, and glibc's malloc and free were a quarter of a campaign.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod clients;
mod completions;
mod crypto_bench;
mod host_cpu;
mod hosts;
mod inventory;
mod keygen;
mod local;
mod matrix;
mod protocols;
mod remote;
mod results;
mod shaping;
mod simulate;
#[cfg(test)]
mod test_topology;
mod testbed;
mod timeseries;
mod topology;
mod yaml;

use clap::{CommandFactory, Parser, Subcommand};

/// Steward vs PBFT benchmark driver.
#[derive(Parser)]
#[command(name = "loadgen", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Generate every key of a deployment (threshold keys, signing keys, client keys).
    Keygen(keygen::KeygenArgs),
    /// Time the crypto operations and print CSV (op,bits,l,k,median_us).
    CryptoBench(crypto_bench::CryptoBenchArgs),
    /// Validate topology files and print a summary of each.
    Topology(topology::TopologyArgs),
    /// Run protocols in the deterministic simulator and write a results directory.
    Simulate(simulate::SimulateArgs),
    /// Run a real cluster on this machine (one process per replica, emulated WAN).
    Local(local::LocalArgs),
    /// Closed-loop clients against an already running deployment (real hosts).
    Run(remote::RunArgs),
    /// A sweep (modes × protocols × topologies × clients × write mixes × batch) from an
    /// experiment spec into one results directory; resumable.
    Matrix(matrix::MatrixArgs),
    /// Place a topology's nodes on hosts: an Ansible inventory (with each host's rendered
    /// tc shaping) and addresses.json.
    Inventory(inventory::InventoryArgs),
    /// An Emulab NS file or a CloudLab geni-lib profile for a topology (delay nodes shape
    /// the links; node names as `inventory` reads them).
    Testbed(testbed::TestbedArgs),
    /// Randomized fault campaign in the simulator (safety checker on every run).
    Campaign(campaign::CampaignArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell) on stdout.
    Completions(completions::CompletionsArgs),
    /// Print loadgen's man page (roff) on stdout, or write one page per subcommand with
    /// --out-dir.
    Man(completions::ManArgs),
    /// Run one replica (what `local` starts per replica; same as steward-node / pbft-node).
    #[command(hide = true)]
    Replica(ReplicaArgs),
}

/// Arguments of `loadgen replica`.
#[derive(clap::Args)]
struct ReplicaArgs {
    /// steward or pbft.
    #[arg(long)]
    protocol: steward_config::Protocol,
    #[command(flatten)]
    node: steward_runtime::NodeArgs,
}

fn replica(a: ReplicaArgs) -> ! {
    bft_nodes::replica_main(a.protocol, &a.node)
}

fn main() {
    let cli = Cli::parse();
    // `replica` installs its own (in the format of its --log).
    if !matches!(cli.cmd, Cmd::Replica(_)) {
        progress::init_tracing();
    }
    let result = match cli.cmd {
        Cmd::Keygen(a) => keygen::run(a),
        Cmd::CryptoBench(a) => crypto_bench::run(a),
        Cmd::Topology(a) => topology::run(a),
        Cmd::Simulate(a) => simulate::run(a),
        Cmd::Campaign(a) => campaign::run(a),
        Cmd::Local(a) => local::run(a).map(|_| ()),
        Cmd::Matrix(a) => matrix::run(a),
        Cmd::Run(a) => remote::run(a),
        Cmd::Inventory(a) => inventory::run(a),
        Cmd::Testbed(a) => testbed::run(a),
        Cmd::Completions(a) => completions::completions(&a, Cli::command(), &mut std::io::stdout()),
        Cmd::Man(a) => {
            completions::man(&a, Cli::command(), &mut std::io::stdout()).map(|written| {
                for path in written {
                    println!("{}", path.display());
                }
            })
        }
        Cmd::Replica(a) => replica(a),
    };
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
