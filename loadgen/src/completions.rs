//! `loadgen completions <shell>` and `loadgen man`: shell completion scripts and roff man
//! pages generated from the clap definitions, so they never drift from the real options.
//! Besides loadgen itself they cover the replica programs `steward-node` and `pbft-node`,
//! whose options are `steward_runtime::NodeArgs` (the `analysis` binary is not covered: its
//! CLI lives in its own crate's `main.rs`).

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use clap_complete::Shell;

/// A program whose completions or man page loadgen prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Program {
    /// This driver.
    Loadgen,
    /// The Steward replica program.
    StewardNode,
    /// The PBFT replica program.
    PbftNode,
}

impl Program {
    /// The program's clap command; `loadgen` is the driver's own (given by the caller, which
    /// owns the top-level parser).
    fn command(self, loadgen: clap::Command) -> clap::Command {
        use clap::Args as _;
        let node = |name: &'static str, about: &'static str| {
            // After the arguments: `augment_args` sets NodeArgs' own doc as the about.
            steward_runtime::NodeArgs::augment_args(clap::Command::new(name))
                .version(env!("CARGO_PKG_VERSION"))
                .about(about)
                .long_about(None)
        };
        match self {
            Program::Loadgen => loadgen,
            // The same name and about as crates/nodes/src/bin/*.rs.
            Program::StewardNode => node("steward-node", "Run one Steward replica."),
            Program::PbftNode => node("pbft-node", "Run one PBFT replica."),
        }
    }
}

/// Arguments of `loadgen completions`.
#[derive(Args, Debug)]
pub struct CompletionsArgs {
    /// Shell to print the completion script for.
    #[arg(value_enum)]
    pub shell: Shell,
    /// Program to complete.
    #[arg(long, value_enum, default_value = "loadgen")]
    pub program: Program,
}

/// Arguments of `loadgen man`.
#[derive(Args, Debug)]
pub struct ManArgs {
    /// Program whose page to print.
    #[arg(long, value_enum, default_value = "loadgen")]
    pub program: Program,
    /// Write every page into this directory (created if missing) instead of printing one:
    /// `loadgen.1`, one `loadgen-<subcommand>.1` per subcommand, `steward-node.1` and
    /// `pbft-node.1`; prints the files written.
    #[arg(long, conflicts_with = "program")]
    pub out_dir: Option<PathBuf>,
}

/// Prints the completion script of `a.shell` for `a.program` on `out`; `loadgen` is the
/// driver's command.
pub fn completions(a: &CompletionsArgs, loadgen: clap::Command, out: &mut dyn Write) -> Result<()> {
    let mut cmd = a.program.command(loadgen);
    let name = cmd.get_name().to_string();
    clap_complete::generate(a.shell, &mut cmd, name, out);
    Ok(())
}

/// Prints the man page of `a.program` on `out`, or with `--out-dir` writes every page
/// (see [`ManArgs::out_dir`]); returns the files written. `loadgen` is the driver's command.
pub fn man(a: &ManArgs, loadgen: clap::Command, out: &mut dyn Write) -> Result<Vec<PathBuf>> {
    let Some(dir) = &a.out_dir else {
        clap_mangen::Man::new(a.program.command(loadgen)).render(out)?;
        return Ok(Vec::new());
    };
    std::fs::create_dir_all(dir).with_context(|| format!("{}", dir.display()))?;
    let mut written = Vec::new();
    for program in Program::value_variants() {
        written.extend(pages(program.command(loadgen.clone()), dir)?);
    }
    Ok(written)
}

/// Writes `cmd`'s page and one per visible subcommand (`<cmd>-<subcommand>.1`, as git names
/// its pages) into `dir`; returns their paths.
fn pages(cmd: clap::Command, dir: &Path) -> Result<Vec<PathBuf>> {
    let name = cmd.get_name().to_string();
    let subs: Vec<String> = cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set())
        .map(|s| s.get_name().to_string())
        .collect();
    clap_mangen::generate_to(cmd, dir).with_context(|| format!("{}", dir.display()))?;
    let written: Vec<PathBuf> = std::iter::once(dir.join(format!("{name}.1")))
        .chain(subs.iter().map(|s| dir.join(format!("{name}-{s}.1"))))
        .collect();
    if let Some(missing) = written.iter().find(|p| !p.is_file()) {
        anyhow::bail!("clap_mangen did not write {}", missing.display());
    }
    Ok(written)
}
