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
