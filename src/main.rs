//! `lilypad`: parse the command line, load settings, start logging, dispatch. Nothing else.

use std::process::ExitCode;

use clap::{CommandFactory, Parser};
use lilypad::cli::{Cli, Command};
use lilypad::config::Settings;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let overrides = cli.overrides();
    let Some(command) = cli.command else {
        let _ = Cli::command().print_long_help();
        return ExitCode::SUCCESS;
    };
    let settings = match Settings::load(cli.global.config.as_deref(), None, &overrides.0) {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };
    // `lilypad run` is a client: quiet unless asked, so stdout and the progress line stay readable.
    let level = match (
        &command,
        std::env::var("LOG_LEVEL").is_ok() || overrides.0.iter().any(|(k, _)| *k == "log_level"),
    ) {
        (Command::Run(_), false) => "warn".to_string(),
        _ => settings.log_level.clone(),
    };
    lilypad::logging::init(&level, &settings.log_format);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(lilypad::commands::dispatch(command, settings)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
