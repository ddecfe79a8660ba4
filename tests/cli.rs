//! The real `lilypad` binary answers `--help` and `--version`.

use std::process::Command;

fn lilypad(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_lilypad"))
        .args(args)
        .output()
        .expect("the lilypad binary runs")
}

#[test]
fn version_prints_the_crate_version() {
    let output = lilypad(&["--version"]);
    assert!(output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        stdout.trim(),
        format!("lilypad {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn help_explains_what_lilypad_is() {
    let output = lilypad(&["--help"]);
    assert!(output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("Usage: lilypad"), "{stdout}");
    assert!(stdout.contains("resource provider"), "{stdout}");
    assert!(stdout.contains("--version"), "{stdout}");
}

#[test]
fn unknown_flags_are_rejected_with_a_hint() {
    let output = lilypad(&["--no-such-flag"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("unexpected argument '--no-such-flag'"),
        "{stderr}"
    );
}
