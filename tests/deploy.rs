//! The deployment files in deploy/: every role's env example loads as settings the role
//! accepts, names only variables the README documents, and holds no key; every systemd unit
//! runs its role with the key as a credential file.

use std::collections::HashMap;
use std::path::Path;

use lilypad::config::Settings;

fn env_file(path: &Path) -> HashMap<String, String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| {
            let (key, value) = line.split_once('=').expect("KEY=VALUE");
            (key.to_string(), value.to_string())
        })
        .collect()
}

#[test]
fn every_env_example_loads_and_is_documented() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let mut seen = 0;
    for entry in std::fs::read_dir(root.join("deploy/env")).unwrap() {
        let path = entry.unwrap().path();
        let role = path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .replace(".env.example", "");
        let env = env_file(&path);
        assert!(
            !env.contains_key("WEB3_PRIVATE_KEY"),
            "{role}: no key in env files"
        );
        for key in env.keys() {
            assert!(
                readme.contains(key),
                "{role}: {key} is not documented in README.md"
            );
        }
        let settings = Settings::load(None, Some(env.clone()), &[]).expect(&role);
        settings.rpc_url().expect(&role);
        settings.controller().expect(&role);
        if env.contains_key("PRICING_INSTRUCTION_PRICE") {
            settings.pricing().expect(&role);
            settings.timeouts().expect(&role);
            settings.services().expect(&role);
        }
        if env.contains_key("OFFER_CPU") {
            let spec = settings.offer_spec().expect(&role);
            assert_eq!(
                spec.gpu > 0,
                role == "rp-gpu",
                "{role}: GPUs only in rp-gpu"
            );
        }
        seen += 1;
    }
    assert_eq!(seen, 5, "solver, rp, rp-gpu, mediator, jc");
}

#[test]
fn every_systemd_unit_runs_its_role_with_the_key_as_a_credential() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for (unit, command, docker) in [
        ("solver", "solver", false),
        ("rp", "rp", true),
        ("rp-gpu", "rp", true),
        ("mediator", "mediator", true),
        ("jc", "jc", false),
    ] {
        let path = root.join(format!("deploy/systemd/lilypad-{unit}.service"));
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains(&format!("ExecStart=/usr/local/bin/lilypad {command}\n")),
            "{unit}"
        );
        assert!(text.contains(&format!("LoadCredential=key:/etc/lilypad/keys/{unit}.key")));
        assert!(text.contains("Environment=WEB3_PRIVATE_KEY_FILE=%d/key"));
        assert!(text.contains(&format!("EnvironmentFile=/etc/lilypad/{unit}.env")));
        assert!(root.join(format!("deploy/env/{unit}.env.example")).exists());
        assert_eq!(
            text.contains("SupplementaryGroups=docker"),
            docker,
            "{unit}"
        );
        assert!(
            !text.contains("WEB3_PRIVATE_KEY="),
            "{unit}: no key in units"
        );
    }
}

/// `systemd-analyze verify` accepts every unit, with the binary installed where the units
/// expect it (/usr/local/bin/lilypad) in a root of its own beside the system's units (the
/// Docker engine's among them): no error and no warning.
#[test]
fn systemd_analyze_verify_passes_on_the_units() {
    let project = Path::new(env!("CARGO_MANIFEST_DIR"));
    let root = tempfile::tempdir().unwrap();
    let install = |dir: &str| {
        let dir = root.path().join(dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    };
    std::fs::copy(
        env!("CARGO_BIN_EXE_lilypad"),
        install("usr/local/bin").join("lilypad"),
    )
    .unwrap();
    let system = install("usr/lib/systemd/system");
    for entry in std::fs::read_dir("/lib/systemd/system").expect("systemd's units") {
        let path = entry.unwrap().path();
        if path.is_file() {
            std::fs::copy(&path, system.join(path.file_name().unwrap())).unwrap();
        }
    }
    let units = install("etc/systemd/system");
    let mut names = Vec::new();
    for entry in std::fs::read_dir(project.join("deploy/systemd")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        std::fs::copy(&path, units.join(&name)).unwrap();
        names.push(units.join(&name));
    }
    assert_eq!(names.len(), 5, "a unit per role");
    let output = std::process::Command::new("systemd-analyze")
        .arg("verify")
        .arg(format!("--root={}", root.path().display()))
        .args(&names)
        .output()
        .expect("systemd-analyze (Debian package systemd)");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.trim().is_empty(), "warnings: {stderr}");

    // The same check fails when the binary is not where the units expect it.
    std::fs::remove_file(root.path().join("usr/local/bin/lilypad")).unwrap();
    let output = std::process::Command::new("systemd-analyze")
        .arg("verify")
        .arg(format!("--root={}", root.path().display()))
        .args(&names)
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("/usr/local/bin/lilypad"));
}
