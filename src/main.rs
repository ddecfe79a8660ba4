//! `lilypad`: parse the command line, load settings, start logging, dispatch. Nothing else.

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};
use lilypad::cli::{Cli, Command};
use lilypad::config::Settings;

fn main() -> ExitCode {
    let mut definition = Cli::command();
    let matches = definition.get_matches_mut();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|error| error.exit());
    let overrides = lilypad::cli::overrides(&definition, &matches);
    let Some(command) = cli.command else {
        let _ = definition.print_long_help();
        return ExitCode::SUCCESS;
    };
    let settings = match Settings::load(cli.global.config.as_deref(), None, &overrides) {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };
    // `lilypad run` is a client: quiet unless asked, so stdout and the progress line stay readable.
    let level = match (
        &command,
        overrides.iter().any(|(key, _)| key == "log_level"),
    ) {
        (Command::Run(_), false) => "warn".to_string(),
        _ => settings.log_level.clone(),
    };
    lilypad::logging::init(&level, &settings.log_format);
    if let Err(error) = lilypad::tls::trust_settings(&settings) {
        eprintln!("error: {error:#}");
        return ExitCode::from(2);
    }
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
