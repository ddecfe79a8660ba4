//! The real `lilypad` binary answers `--help` and `--version`.

mod common;

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

fn lilypad_in(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_lilypad"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir)
        .current_dir(dir)
        .output()
        .expect("the lilypad binary runs")
}

#[test]
fn every_role_documents_its_flags_and_variables() {
    for (command, needles) in [
        (
            "solver",
            &["SERVER_PORT", "SERVER_URL", "WEB3_RPC_URL", "OFFER_TTL"][..],
        ),
        (
            "rp",
            &[
                "OFFER_GPU",
                "OFFER_COUNT",
                "PRICING_INSTRUCTION_PRICE",
                "SERVICE_MEDIATORS",
                "--dishonest",
            ][..],
        ),
        (
            "run",
            &[
                "KEY=VALUE",
                "--timeout",
                "TIMEOUT_JUDGE_RESULTS_TIME",
                "--check",
                "--mediation-chance",
                "--resume",
            ][..],
        ),
        (
            "mediator",
            &["--parallel", "WEB3_RPC_URL", "SOLVER_URL", "DATA_DIR"][..],
        ),
        (
            "dev",
            &[
                "--anvil-path",
                "OFFER_CPU",
                "OFFER_MODULES",
                "ALLOW_NETWORK",
                "EXECUTOR",
                "JC_MATCH_TIMEOUT",
                "--dishonest",
                // every role it runs
                "the solver",
                "a resource provider",
                "a mediator",
                "the on-chain job service (jc)",
            ][..],
        ),
        (
            "jc",
            &[
                "JC_MATCH_TIMEOUT",
                "JC_FROM_BLOCK",
                "--mediation-chance",
                "WEB3_PRIVATE_KEY",
            ][..],
        ),
        (
            "run-cowsay-onchain",
            &["WEB3_EXAMPLE_CLIENT_ADDRESS", "--timeout", "<MESSAGE>"][..],
        ),
    ] {
        let output = lilypad(&[command, "--help"]);
        assert!(output.status.success(), "{command}");
        let stdout = String::from_utf8_lossy(&output.stdout);
        for needle in needles {
            assert!(
                stdout.contains(needle),
                "`lilypad {command} --help` lacks {needle}:\n{stdout}"
            );
        }
    }
}

#[test]
fn a_subcommand_lists_only_the_options_it_uses_each_variable_once() {
    let help = |args: &[&str]| String::from_utf8_lossy(&lilypad(args).stdout).into_owned();
    let keys = help(&["keys", "generate", "--help"]);
    for absent in [
        "--solver",
        "--mediators",
        "--controller",
        "--rpc-url",
        "OFFER_",
    ] {
        assert!(
            !keys.contains(absent),
            "keys generate shows {absent}:\n{keys}"
        );
    }
    assert!(
        keys.contains("--out") && keys.contains("DATA_DIR"),
        "{keys}"
    );
    let mediator = help(&["mediator", "--help"]);
    for absent in ["--mediators", "--instruction-price", "--offer-cpu"] {
        assert!(
            !mediator.contains(absent),
            "mediator shows {absent}:\n{mediator}"
        );
    }
    assert_eq!(
        help(&["--help"]).matches("LILYPAD_CONFIG").count(),
        1,
        "--config names its variable once"
    );
}

#[test]
fn bad_modules_and_inputs_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let output = lilypad_in(dir.path(), &["run", "nope"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("unknown module \"nope\"") && stderr.contains("cowsay:v0.0.1"),
        "{stderr}"
    );
    // A module kept in git that cannot be fetched fails before any network starts.
    let missing = format!("file://{}/no-repo:v1", dir.path().display());
    let output = lilypad_in(dir.path(), &["run", &missing]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("cannot fetch"), "{stderr}");
    assert!(!stderr.contains("embedded"), "{stderr}");
    let output = lilypad_in(dir.path(), &["run", "cowsay:v0.0.1"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("-i Message=VALUE"), "{stderr}");
}

#[test]
fn bootstrap_says_what_it_lacks_and_how_long_it_waited_for_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let output = lilypad_in(dir.path(), &["chain", "bootstrap", "--name", "x"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("set SOLVER_URL"), "{stderr}");

    let key_file = dir.path().join("deployer.key");
    lilypad::keys::write_key(&key_file, &lilypad::keys::generate()).unwrap();
    let output = lilypad_in(
        dir.path(),
        &[
            "chain",
            "bootstrap",
            "--name",
            "x",
            "--wait",
            "1",
            "--rpc-url",
            "http://127.0.0.1:9",
            "--key-file",
            key_file.to_str().unwrap(),
            "--solver-url",
            "http://solver:8080",
        ],
    );
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("waiting for the chain at http://127.0.0.1:9"),
        "{stderr}"
    );
    assert!(stderr.contains("did not answer within 1 s"), "{stderr}");
    assert!(
        !dir.path().join(".lilypad/keys").exists(),
        "no key made before the chain answers"
    );
}

#[test]
fn a_role_without_a_key_says_how_to_give_one() {
    let dir = tempfile::tempdir().unwrap();
    let output = lilypad_in(
        dir.path(),
        &[
            "solver",
            "--rpc-url",
            "http://127.0.0.1:9",
            "--controller",
            "0x0000000000000000000000000000000000000001",
        ],
    );
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("WEB3_PRIVATE_KEY"), "{stderr}");
}

#[test]
fn keys_generate_writes_a_private_key_file() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("rp.key");
    let output = lilypad_in(
        dir.path(),
        &["keys", "generate", "--out", key.to_str().unwrap()],
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("address: 0x"), "{stdout}");
    let text = std::fs::read_to_string(&key).unwrap();
    assert!(
        !stdout.contains(text.trim().trim_start_matches("0x")),
        "the key itself is never printed"
    );
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
}

#[test]
fn keys_generate_addresses_writes_a_private_env_file_with_a_key_per_service() {
    use ethers::signers::Signer;
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let output = lilypad_in(dir.path(), &["keys", "generate-addresses"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let file = dir.path().join("prod.env");
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let text = std::fs::read_to_string(&file).unwrap();
    let value = |name: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(&format!("{name}=")))
            .unwrap_or_else(|| panic!("{name} in {text}"))
            .to_string()
    };
    let mut addresses = std::collections::BTreeSet::new();
    for service in [
        "ADMIN",
        "FAUCET",
        "SOLVER",
        "MEDIATOR",
        "RESOURCE_PROVIDER",
        "JOB_CREATOR",
    ] {
        let key = value(&format!("{service}_PRIVATE_KEY"));
        let address = value(&format!("{service}_ADDRESS"));
        let wallet = lilypad::config::parse_key(&key).unwrap();
        assert_eq!(ethers::utils::to_checksum(&wallet.address(), None), address);
        assert!(
            stdout.contains(&address),
            "the address to fund is shown: {stdout}"
        );
        assert!(
            !stdout.contains(key.trim_start_matches("0x")),
            "never the key"
        );
        addresses.insert(address);
    }
    assert_eq!(addresses.len(), 6, "six different keys");

    // Never overwritten; printed only when asked.
    let again = lilypad_in(dir.path(), &["keys", "generate-addresses"]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("never overwritten"));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), text);
    let printed = lilypad_in(dir.path(), &["keys", "generate-addresses", "--stdout"]);
    let printed = String::from_utf8_lossy(&printed.stdout);
    assert!(printed.contains("JOB_CREATOR_PRIVATE_KEY=0x"), "{printed}");
    assert!(
        !printed.contains(&value("ADMIN_PRIVATE_KEY")),
        "new keys each time"
    );
}

/// The real binary with no network configured: it starts the embedded network, says so,
/// runs the job on the real Docker engine and prints the cow.
#[test]
fn run_without_a_network_starts_an_embedded_one_and_prints_the_cow() {
    let dir = tempfile::tempdir().unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_lilypad"));
    command
        .args([
            "run",
            "--quiet",
            "cowsay:v0.0.1",
            "-i",
            "Message=moo from the binary",
        ])
        .env_remove("WEB3_RPC_URL")
        .env("DATA_DIR", dir.path())
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    let output = command.output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("< moo from the binary >") && stdout.contains("(oo)"),
        "{stdout}"
    );
    assert!(
        stderr.contains("starting an embedded local network"),
        "{stderr}"
    );
    assert!(stderr.contains("ResultsAccepted"), "{stderr}");
    let downloaded = dir.path().join("downloaded-files");
    assert_eq!(
        std::fs::read_dir(downloaded).unwrap().count(),
        1,
        "results are kept under DATA_DIR"
    );
}

#[test]
fn resuming_an_unknown_job_says_where_jobs_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let output = lilypad_in(dir.path(), &["run", "--resume", "bafkreinosuchjob"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("no unfinished job bafkreinosuchjob") && stderr.contains("jobs"),
        "{stderr}"
    );
    let output = lilypad_in(dir.path(), &["run", "cowsay:v0.0.1", "--resume", "x"]);
    assert!(!output.status.success(), "a module and --resume conflict");
}

#[test]
fn unknown_networks_and_bad_ca_files_are_clear_errors_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let output = lilypad_in(
        dir.path(),
        &["run", "--network", "atlantis", "cowsay:v0.0.1"],
    );
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("LILYPAD_NETWORK (--network)")
            && stderr.contains("no such network")
            && stderr.contains("networks/atlantis.toml"),
        "{stderr}"
    );
    std::fs::write(
        dir.path().join("bad.toml"),
        "name = \"bad\"\nchain_id = \"one\"\n",
    )
    .unwrap();
    let output = lilypad_in(dir.path(), &["rp", "--network", "./bad.toml"]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("bad.toml"), "{stderr}");

    std::fs::write(dir.path().join("ca.pem"), "not a certificate\n").unwrap();
    for file in ["ca.pem", "missing.pem"] {
        let output = lilypad_in(dir.path(), &["run", "--tls-ca-file", file, "cowsay:v0.0.1"]);
        assert_eq!(output.status.code(), Some(2));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains(&format!("TLS_CA_FILE {file}"))
                && (stderr.contains("no certificate") || stderr.contains("cannot read")),
            "{stderr}"
        );
    }
}

#[test]
fn a_mediation_chance_above_100_percent_is_refused() {
    let output = lilypad(&["run", "cowsay:v0.0.1", "--mediation-chance", "101"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("101 is not in 0..=100"), "{stderr}");
    let output = lilypad(&["run", "cowsay:v0.0.1", "--check", "--mediation-chance", "5"]);
    assert!(
        !output.status.success(),
        "--check and --mediation-chance conflict"
    );
}

/// `rp --dishonest` is refused on any chain but a local dev chain (a real anvil started with
/// another chain id stands for a public network).
#[tokio::test]
async fn a_dishonest_resource_provider_is_refused_outside_a_dev_chain() {
    let anvil = lilypad::dev::find_anvil(None).expect("anvil (make deps)");
    let (mut child, url) = lilypad::dev::start_anvil(&anvil, &["--chain-id", "1337"])
        .await
        .expect("anvil starts");
    let dir = tempfile::tempdir().unwrap();
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_lilypad"))
        .args(["rp", "--dishonest", "--rpc-url", &url])
        .args(["--controller", "0x0000000000000000000000000000000000000001"])
        .env("WEB3_PRIVATE_KEY", lilypad::dev::ANVIL_DEPLOYER_KEY)
        .env("DATA_DIR", dir.path())
        .output()
        .await
        .unwrap();
    let _ = child.kill().await;
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("only allowed on a local dev chain") && stderr.contains("chain 1337"),
        "{stderr}"
    );
    assert!(
        !stderr.contains(lilypad::dev::ANVIL_DEPLOYER_KEY.trim_start_matches("0x")),
        "the key never appears in errors"
    );
}

/// `run-cowsay-onchain` with no network configured: the embedded network (with its jc)
/// serves the example client's request, and the command prints the cow and the result CID.
#[test]
fn run_cowsay_onchain_prints_the_cow_a_contract_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_lilypad"))
        .args(["run-cowsay-onchain", "moo from a contract"])
        .env_remove("WEB3_RPC_URL")
        .env("DATA_DIR", dir.path())
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("< moo from a contract >"), "{stdout}");
    assert!(stderr.contains("job 1: results Qm"), "{stderr}");
}

/// `lilypad module`: render (as Go renders), pull (pins and checks out), ls (the cache),
/// on a real git repository made by the test; and clear errors, with nothing paid.
#[test]
fn module_commands_render_pull_and_list_real_git_modules() {
    let dir = tempfile::tempdir().unwrap();
    let (repo, v1, _) = common::gitrepo::module_repo(dir.path());
    let module = format!("file://{}:v1", repo.display());

    let rendered = lilypad_in(
        dir.path(),
        &["module", "render", &module, "-i", "Message=a <b>"],
    );
    let stdout = String::from_utf8_lossy(&rendered.stdout);
    let stderr = String::from_utf8_lossy(&rendered.stderr);
    assert!(rendered.status.success(), "{stderr}");
    assert!(stdout.contains(r#""v1 a <b>""#), "{stdout}");
    assert!(stdout.contains(r#"NOTE=\"a \\u003cb\\u003e\""#), "{stdout}");
    assert!(stderr.contains(&format!("at commit {v1}")), "{stderr}");
    assert!(
        stderr.contains("image        lilypad/cowsay:v0.0.1"),
        "{stderr}"
    );

    let pulled = lilypad_in(dir.path(), &["module", "pull", &module]);
    let stdout = String::from_utf8_lossy(&pulled.stdout);
    assert!(pulled.status.success());
    assert!(stdout.contains(&v1), "{stdout}");
    let listed = lilypad_in(dir.path(), &["module", "ls"]);
    let stdout = String::from_utf8_lossy(&listed.stdout);
    assert!(stdout.lines().any(|line| line.ends_with(&v1)), "{stdout}");

    let missing = lilypad_in(dir.path(), &["module", "render", "cowsay:v0.0.1"]);
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(!missing.status.success());
    assert!(stderr.contains("pass -i Message=VALUE"), "{stderr}");
    let half = lilypad_in(dir.path(), &["run", "--module-repo", "file:///x"]);
    assert!(!half.status.success());
    assert!(String::from_utf8_lossy(&half.stderr).contains("--module-ref"));
    let unknown = lilypad_in(dir.path(), &["module", "render", "no such module"]);
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("unknown module"));
}
