//! One module per command; `run` dispatches.

pub mod build;
pub mod diff;
pub mod expand;
pub mod generate;
pub mod init;
pub mod probe;
pub mod show;
pub mod toolchains;

use crate::cli::{Cli, Command};
use crate::error::{Exit, Result};
use clap::CommandFactory;

/// Runs the parsed command; returns the exit code.
pub fn run(cli: Cli) -> Result<Exit> {
    let g = &cli.global;
    // `build` has the scheduler's own handler (it records interrupted variants); every other
    // command removes its scratch directories on Ctrl-C, and any a killed run left behind.
    if !matches!(cli.command, Command::Build(_)) {
        crate::leftovers::install_handler();
    }
    if matches!(
        cli.command,
        Command::Build(_)
            | Command::Probe(_)
            | Command::Expand(_)
            | Command::Generate(_)
            | Command::Init(_)
    ) {
        crate::leftovers::sweep_temp();
    }
    match cli.command {
        Command::Init(a) => init::run(g, a),
        Command::Expand(a) => expand::run(g, a),
        Command::Probe(a) => probe::run(g, a),
        Command::Show(a) => show::run(g, a),
        Command::Generate(a) => generate::run(g, a),
        Command::Diff(a) => diff::run(g, a),
        Command::Build(a) => build::run_build(g, a),
        Command::Report(a) => build::run_report(g, a),
        Command::Env(a) => build::run_env(g, a),
        Command::Reproduce(a) => build::run_reproduce(g, a),
        Command::Toolchains(a) => toolchains::run(g, a),
        Command::Providers(a) => toolchains::run_providers(g, a),
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "cfgmx", &mut std::io::stdout());
            Ok(Exit::Ok)
        }
    }
}
