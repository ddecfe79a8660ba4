//! Tracing set-up: human-readable on a terminal, JSON lines with LOG_FORMAT=json, filtered
//! by LOG_LEVEL (RUST_LOG syntax). Logs go to stderr so stdout carries only results.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. Safe to call once per process.
pub fn init(level: &str, format: &str) {
    let filter = EnvFilter::try_new(level).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if format.eq_ignore_ascii_case("json") {
        builder.json().try_init()
    } else {
        builder.compact().try_init()
    };
}
