//! Command-line definitions (clap) and dispatch to the roles.

use clap::{CommandFactory, Parser};

/// Lilypad: run Docker jobs on other people's machines, paid and settled on an EVM chain.
///
/// One binary plays every role of the network: the solver that matches offers, the
/// resource provider that runs jobs, the job creator that asks for them and the mediator
/// that re-runs disputed ones. The roles arrive with the issues that build them; this
/// build ships the protocol's contracts (see contracts/ and README.md).
#[derive(Debug, Parser)]
#[command(name = "lilypad", version, about, long_about)]
pub struct Cli {}

/// Runs what the command line asked for. With nothing to run yet, that is the help text.
pub fn dispatch(_cli: Cli) -> Result<(), Box<dyn std::error::Error>> {
    Cli::command().print_long_help()?;
    Ok(())
}
