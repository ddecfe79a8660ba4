//! `lilypad`: parse the command line and dispatch. Nothing else lives here.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = lilypad::cli::Cli::parse();
    match lilypad::cli::dispatch(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}
