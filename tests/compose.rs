//! The network in containers: builds the `node` and `chain` images of
//! `deploy/docker/Dockerfile` from this build's `lilypad` and the npm-shipped anvil (the
//! Dockerfile's offline path: nothing can be pulled here), brings `deploy/docker/compose.yaml`
//! up with `docker compose`, runs a cowsay job through it from the host with the job
//! creator's key and the profile its bootstrap wrote, checks the deal settled to the wei,
//! and takes it all down again (also when the test fails).
//!
//! Needs a Docker engine, the buildx and compose CLI plugins (`make tools TOOLS="buildx
//! compose"`, found through DOCKER_CONFIG=LILYPAD_TOOLS_DIR) and the cowsay image
//! (`make images`).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use common::procs::{deal_ends, settlement};
use ethers::signers::Signer;
use ethers::types::{Address, U256};
use lilypad::chain::Chain;
use lilypad::client::SolverClient;
use lilypad::data::DealState;

const NODE_IMAGE: &str = "lilypad-test/node:compose";
const CHAIN_IMAGE: &str = "lilypad-test/chain:compose";

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `docker ARGS` with the tools directory as the CLI's config (where its plugins are).
fn docker(args: &[&str], env: &[(String, String)]) -> Output {
    Command::new("docker")
        .args(args)
        .env("DOCKER_CONFIG", lilypad::tools::tools_dir())
        .envs(env.iter().map(|(k, v)| (k, v)))
        .current_dir(repo())
        .output()
        .expect("docker runs")
}

fn ok(args: &[&str], env: &[(String, String)]) -> String {
    let output = docker(args, env);
    assert!(
        output.status.success(),
        "docker {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Builds `target` of the Dockerfile from a root file system of `binary` (rootfs.sh).
fn build_image(dir: &Path, target: &str, binary: &Path, tag: &str) {
    let root = dir.join(format!("{target}-root"));
    let status = Command::new(repo().join("deploy/docker/rootfs.sh"))
        .arg(&root)
        .arg(binary)
        .status()
        .unwrap();
    assert!(status.success(), "rootfs.sh {}", binary.display());
    let dockerfile = repo().join("deploy/docker/Dockerfile");
    ok(
        &[
            "buildx",
            "build",
            "--quiet",
            "--load",
            "--file",
            dockerfile.to_str().unwrap(),
            "--target",
            target,
            "--build-arg",
            "FROM=prebuilt",
            "--tag",
            tag,
            root.to_str().unwrap(),
        ],
        &[],
    );
}

/// A compose project of `deploy/docker/compose.yaml`; `down -v` when dropped.
struct Project {
    name: String,
    env: Vec<(String, String)>,
    host_data: PathBuf,
}

impl Project {
    fn compose(&self, args: &[&str]) -> Output {
        let mut all = vec![
            "compose",
            "--project-name",
            &self.name,
            "--file",
            "deploy/docker/compose.yaml",
        ];
        all.extend_from_slice(args);
        docker(&all, &self.env)
    }

    fn ok(&self, args: &[&str]) -> String {
        let output = self.compose(args);
        assert!(
            output.status.success(),
            "docker compose {args:?} failed:\n{}\n{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
            self.logs()
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    fn logs(&self) -> String {
        let output = self.compose(&["logs", "--no-color", "--tail", "30"]);
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// The containers and volumes of the project that exist.
    fn leftovers(&self) -> String {
        let label = format!("label=com.docker.compose.project={}", self.name);
        let containers = ok(&["ps", "--all", "--quiet", "--filter", &label], &[]);
        let volumes = ok(&["volume", "ls", "--quiet", "--filter", &label], &[]);
        format!("{containers}{volumes}").trim().to_string()
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        let _ = self.compose(&["down", "--volumes", "--timeout", "5"]);
        // The RP's and mediator's data, written by root in their containers.
        let _ = std::fs::remove_dir_all(&self.host_data);
    }
}

fn key_address(path: &Path) -> Address {
    let text = std::fs::read_to_string(path).unwrap();
    lilypad::config::parse_key(text.trim()).unwrap().address()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compose_brings_up_a_network_that_runs_a_job_from_the_host() {
    let dir = tempfile::tempdir().unwrap();
    let lilypad = PathBuf::from(env!("CARGO_BIN_EXE_lilypad"));
    let anvil = repo().join("contracts/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil");
    build_image(dir.path(), "node", &lilypad, NODE_IMAGE);
    build_image(dir.path(), "chain", &anvil, CHAIN_IMAGE);

    let (chain_port, solver_port) = (common::bacalhau::free_port(), common::bacalhau::free_port());
    let host_data = dir.path().join("host-data");
    let project = Project {
        name: format!("lilypad-test-{}", std::process::id()),
        env: vec![
            ("LILYPAD_NODE_IMAGE".into(), NODE_IMAGE.into()),
            ("LILYPAD_CHAIN_IMAGE".into(), CHAIN_IMAGE.into()),
            ("LILYPAD_CHAIN_PORT".into(), chain_port.to_string()),
            ("LILYPAD_SOLVER_PORT".into(), solver_port.to_string()),
            ("LILYPAD_HOST_DATA".into(), host_data.display().to_string()),
        ],
        host_data,
    };
    // `up` returns once bootstrap has finished and the roles have started.
    project.ok(&["up", "--detach", "--no-build"]);

    // What an operator copies out to run jobs from the host.
    let profile_file = dir.path().join("compose.toml");
    let keys = dir.path().join("keys");
    project.ok(&[
        "cp",
        "bootstrap:/var/lib/lilypad/networks/compose.toml",
        profile_file.to_str().unwrap(),
    ]);
    project.ok(&[
        "cp",
        "bootstrap:/var/lib/lilypad/keys",
        keys.to_str().unwrap(),
    ]);
    let profile =
        lilypad::profile::Profile::parse(&std::fs::read_to_string(&profile_file).unwrap()).unwrap();
    assert_eq!(profile.rpc_url, "http://chain:8545", "{profile:?}");
    assert_eq!(profile.solver_url.as_deref(), Some("http://solver:8080"));
    assert_eq!(profile.solver, Some(key_address(&keys.join("solver.key"))));
    assert_eq!(
        profile.mediators,
        vec![key_address(&keys.join("mediator.key"))]
    );

    let rpc_url = format!("http://127.0.0.1:{chain_port}");
    let solver_url = format!("http://127.0.0.1:{solver_port}");
    let reader = Chain::connect(
        &rpc_url,
        lilypad::keys::generate(),
        profile.controller,
        Duration::from_millis(100),
    )
    .await
    .unwrap();
    let job_creator = key_address(&keys.join("job-creator.key"));
    let rp = key_address(&keys.join("resource-provider.key"));
    let deployer = lilypad::config::parse_key(lilypad::dev::ANVIL_DEPLOYER_KEY)
        .unwrap()
        .address();
    let parties = [
        job_creator,
        rp,
        profile.mediators[0],
        reader.contracts.payments.address(),
        deployer,
    ];
    let before = common::balances(&reader, &parties).await;

    // The job, from the host: the profile and a key, and the two published ports.
    let message = format!("moo from the host {}", std::process::id());
    let run = tokio::time::timeout(
        Duration::from_secs(300),
        tokio::process::Command::new(&lilypad)
            .args(["run", "cowsay:v0.0.1", "-i", &format!("Message={message}")])
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("LILYPAD_NETWORK", &profile_file)
            .env("WEB3_PRIVATE_KEY_FILE", keys.join("job-creator.key"))
            .env("WEB3_RPC_URL", &rpc_url)
            .env("SOLVER_URL", &solver_url)
            .env("DATA_DIR", dir.path().join("laptop"))
            .output(),
    )
    .await
    .expect("lilypad run finishes within 5 minutes")
    .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success() && stdout.contains(&message),
        "lilypad run: {:?}\n{stdout}\n{}\n{}",
        run.status,
        String::from_utf8_lossy(&run.stderr),
        project.logs()
    );

    // The deal settled on chain, and every balance moved by exactly what that says.
    let solver = SolverClient::new(&solver_url, lilypad::keys::generate());
    let ends = deal_ends(&solver, &reader, &[rp]).await;
    assert_eq!(ends.len(), 1, "{ends:?}");
    let (deal, state, instructions) = &ends[0];
    assert_eq!(*state, DealState::ResultsAccepted);
    let after = common::balances(&reader, &parties).await;
    let changes = common::signed_changes(&before, &after);
    let mut expected = [0i128; 5];
    for (who, change) in settlement(deal, *state, *instructions) {
        let who = if who.is_zero() { deployer } else { who };
        let at = parties.iter().position(|p| *p == who).unwrap();
        expected[at] += change;
    }
    assert_eq!(
        changes,
        expected.to_vec(),
        "balance changes (wei) of {parties:?}"
    );
    assert_eq!(after[3], U256::zero(), "Payments holds nothing");

    // The roles that need no Docker socket run unprivileged.
    for (service, user) in [
        ("solver", "65532:65532"),
        ("jc", "65532:65532"),
        ("rp", "0:0"),
    ] {
        let id = project.ok(&["ps", "--quiet", service]);
        let config_user = ok(&["inspect", "--format", "{{.Config.User}}", id.trim()], &[]);
        assert_eq!(config_user.trim(), user, "{service}'s user");
        let running = ok(
            &["inspect", "--format", "{{.State.Running}}", id.trim()],
            &[],
        );
        assert_eq!(running.trim(), "true", "{service} runs\n{}", project.logs());
    }

    // Bootstrap again (as `up` does after a restart): the same network, keys and profile.
    let again = project.compose(&["run", "--rm", "--no-deps", "bootstrap"]);
    let said = String::from_utf8_lossy(&again.stderr);
    assert!(again.status.success(), "{said}");
    assert!(said.contains("deployed already"), "{said}");
    let reread = dir.path().join("again.toml");
    project.ok(&[
        "cp",
        "bootstrap:/var/lib/lilypad/networks/compose.toml",
        reread.to_str().unwrap(),
    ]);
    assert_eq!(
        std::fs::read_to_string(&reread).unwrap(),
        std::fs::read_to_string(&profile_file).unwrap()
    );

    // Down leaves nothing of the project behind.
    project.ok(&["down", "--volumes", "--timeout", "10"]);
    assert_eq!(project.leftovers(), "", "containers or volumes left");
}
