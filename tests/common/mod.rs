//! Shared set-up for the end-to-end tests: a real dev network (anvil, contracts, solver,
//! resource provider on the real Docker engine) in a temporary directory.
#![allow(dead_code)]

pub mod bacalhau;
pub mod browser;
pub mod dev_process;
pub mod gitrepo;
pub mod kubo;
pub mod procs;

use std::time::Duration;

use ethers::signers::{LocalWallet, Signer};
use ethers::types::{Address, U256};
use lilypad::chain::terms::{deal_key, terms_of};
use lilypad::chain::Chain;
use lilypad::client::SolverClient;
use lilypad::config::Settings;
use lilypad::data::offers::{new_nonce, now_millis};
use lilypad::data::{
    ContentAddressed, Deal, DealState, JobOffer, MachineSpec, Pricing, ResourceOffer, Timeouts,
};
use lilypad::dev::{DevNetwork, DevOptions, DevRoles};
use lilypad::run::JobRequest;

pub const LP: u128 = 1_000_000_000_000_000_000;

/// The terms every test uses (the RP and the JC must offer the same).
pub fn pricing() -> Pricing {
    Pricing {
        instruction_price: 3 * LP,
        payment_collateral: 5 * LP,
        results_collateral_multiple: 2,
        mediation_fee: LP,
    }
}

pub fn timeouts() -> Timeouts {
    Timeouts {
        agree: 600,
        submit_results: 600,
        judge_results: 600,
        mediate_results: 600,
        submit_results_collateral: 7 * LP,
        judge_results_collateral: 11 * LP,
    }
}

pub async fn network(dir: &std::path::Path) -> DevNetwork {
    network_with(dir, DevRoles::default()).await
}

/// A dev network with only some roles running (the test plays or leaves out the others).
pub async fn network_with(dir: &std::path::Path, roles: DevRoles) -> DevNetwork {
    start(options(dir, roles)).await
}

/// The settings of these tests' dev networks, as `lilypad dev` takes them from its command
/// line (`extra` adds flags): the RP sells 2 CPUs and 2 GiB, both sides use these tests' terms.
pub fn settings(dir: &std::path::Path, extra: &[&str]) -> Settings {
    let mut args: Vec<String> = [
        "lilypad",
        "dev",
        "--offer-cpu",
        "2000",
        "--offer-ram",
        "2048",
        "--offer-count",
        "1",
        "--server-port",
        "0",
        "--match-timeout",
        "60",
    ]
    .iter()
    .map(|arg| arg.to_string())
    .collect();
    args.extend(terms_flags());
    args.extend(extra.iter().map(|arg| arg.to_string()));
    args.push("--data-dir".into());
    args.push(dir.display().to_string());
    Settings::from_args(args).expect("the test settings load")
}

/// These tests' terms, each as (command-line flag, environment variable, value).
fn terms_table() -> Vec<(&'static str, &'static str, String)> {
    let (pricing, timeouts) = (pricing(), timeouts());
    vec![
        (
            "--instruction-price",
            "PRICING_INSTRUCTION_PRICE",
            pricing.instruction_price.to_string(),
        ),
        (
            "--payment-collateral",
            "PRICING_PAYMENT_COLLATERAL",
            pricing.payment_collateral.to_string(),
        ),
        (
            "--results-collateral-multiple",
            "PRICING_RESULTS_COLLATERAL_MULTIPLE",
            pricing.results_collateral_multiple.to_string(),
        ),
        (
            "--mediation-fee",
            "PRICING_MEDIATION_FEE",
            pricing.mediation_fee.to_string(),
        ),
        (
            "--agree-timeout",
            "TIMEOUT_AGREE_TIME",
            timeouts.agree.to_string(),
        ),
        (
            "--submit-results-timeout",
            "TIMEOUT_SUBMIT_RESULTS_TIME",
            timeouts.submit_results.to_string(),
        ),
        (
            "--judge-results-timeout",
            "TIMEOUT_JUDGE_RESULTS_TIME",
            timeouts.judge_results.to_string(),
        ),
        (
            "--mediate-results-timeout",
            "TIMEOUT_MEDIATE_RESULTS_TIME",
            timeouts.mediate_results.to_string(),
        ),
        (
            "--submit-results-collateral",
            "TIMEOUT_SUBMIT_RESULTS_COLLATERAL",
            timeouts.submit_results_collateral.to_string(),
        ),
        (
            "--judge-results-collateral",
            "TIMEOUT_JUDGE_RESULTS_COLLATERAL",
            timeouts.judge_results_collateral.to_string(),
        ),
    ]
}

/// These tests' terms as command-line flags (`lilypad dev` and `lilypad run` take them).
pub fn terms_flags() -> Vec<String> {
    terms_table()
        .into_iter()
        .flat_map(|(flag, _, value)| [flag.to_string(), value])
        .collect()
}

/// These tests' terms as the environment of a role configured the way operators do.
pub fn terms_env() -> Vec<(String, String)> {
    terms_table()
        .into_iter()
        .map(|(_, name, value)| (name.to_string(), value))
        .collect()
}

/// The options of these tests' dev networks.
pub fn options(dir: &std::path::Path, roles: DevRoles) -> DevOptions {
    options_with(dir, roles, &[])
}

/// The same, with more `lilypad dev` flags.
pub fn options_with(dir: &std::path::Path, roles: DevRoles, flags: &[&str]) -> DevOptions {
    let mut options = DevOptions::new(&settings(dir, flags), dir.to_path_buf());
    options.settings.poll_interval_ms = 100;
    options.roles = roles;
    options
}

pub async fn start(options: DevOptions) -> DevNetwork {
    DevNetwork::start(options)
        .await
        .expect("the dev network starts (needs `make deps`, a Docker engine and `make images`)")
}

/// A cowsay job for `network` with these tests' terms; results go under `dir`.
pub fn cowsay_request(network: &DevNetwork, dir: &std::path::Path, message: &str) -> JobRequest {
    JobRequest {
        module: "cowsay:v0.0.1".into(),
        inputs: [("Message".to_string(), message.to_string())].into(),
        pricing: pricing(),
        timeouts: timeouts(),
        services: network.services.clone(),
        results_dir: dir.join("results"),
        timeout: Duration::from_secs(120),
        poll: Duration::from_millis(100),
        progress: false,
        mediation_chance: 0,
        accept_failures: false,
        results_reader: None,
        on_chain_job: None,
        modules: lilypad::module::GitModules::new(dir),
        location: None,
        ipfs: None,
    }
}

/// A module in the local directory `dir` whose template is `template`; returns the
/// directory (a module name `lilypad run` takes).
pub fn module_dir(dir: &std::path::Path, template: &str) -> String {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join(lilypad::module::TEMPLATE_FILE), template).unwrap();
    dir.display().to_string()
}

/// Each balance's signed change (wei) from `before` to `after`.
pub fn signed_changes(before: &[U256], after: &[U256]) -> Vec<i128> {
    after
        .iter()
        .zip(before)
        .map(|(a, b)| {
            if a >= b {
                i128::try_from((*a - *b).as_u128()).unwrap()
            } else {
                -i128::try_from((*b - *a).as_u128()).unwrap()
            }
        })
        .collect()
}

/// The parties whose balances the money tests follow: job creator, resource provider,
/// mediator, deployer (the treasury) and the Payments contract (escrow).
pub fn parties(network: &DevNetwork) -> [Address; 5] {
    [
        network.keys.job_creator.address(),
        network.keys.resource_provider.address(),
        network.keys.mediator.address(),
        network.keys.deployer.address(),
        network.deployment.payments,
    ]
}

/// Token balances of several addresses.
pub async fn balances(chain: &lilypad::chain::Chain, who: &[Address]) -> Vec<U256> {
    let mut out = Vec::new();
    for address in who {
        out.push(chain.token_balance(*address).await.unwrap());
    }
    out
}

/// The ether and token balances of `who`.
pub async fn holdings(chain: &lilypad::chain::Chain, who: Address) -> (U256, U256) {
    use ethers::providers::Middleware;
    (
        chain.client.get_balance(who, None).await.unwrap(),
        chain.token_balance(who).await.unwrap(),
    )
}

/// Moves the chain's clock forward by `seconds` and mines a block (anvil's time controls),
/// so deadlines pass without the test waiting for them.
pub async fn advance_chain_time(network: &DevNetwork, seconds: u64) {
    use ethers::providers::{Http, Provider};
    let provider = Provider::<Http>::try_from(network.rpc_url.as_str()).unwrap();
    let _: serde_json::Value = provider
        .request("evm_increaseTime", serde_json::json!([seconds]))
        .await
        .expect("anvil moves its clock");
    let _: serde_json::Value = provider
        .request("evm_mine", serde_json::json!([]))
        .await
        .expect("anvil mines a block");
}

/// The on-chain key of `deal`.
pub fn key_of(deal: &Deal) -> [u8; 32] {
    deal_key(deal.chain_id().unwrap(), &terms_of(deal))
}

/// Waits (polling every 50 ms, at most 60 s) until the deal's on-chain record satisfies `done`.
pub async fn wait_on_chain(
    chain: &Chain,
    deal: &Deal,
    what: &str,
    done: impl Fn(&lilypad::chain::bindings::lilypad_storage::Agreement) -> bool,
) {
    let key = key_of(deal);
    for _ in 0..1200 {
        let agreement = chain.agreement(key).await.unwrap();
        if done(&agreement) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what} on deal {}", deal.id);
}

/// Waits until the deal reaches `state` on chain.
pub async fn wait_for_state(chain: &Chain, deal: &Deal, state: DealState) {
    wait_on_chain(chain, deal, state.name(), |a| a.state == state.number()).await;
}

/// Waits (at most 60 s) until the solver lists a deal for `query`, and returns it.
pub async fn wait_for_deal(client: &SolverClient, query: &str) -> Deal {
    for _ in 0..1200 {
        if let Some(record) = client.deals(query).await.unwrap().pop() {
            return record.deal;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the solver made no deal for {query}");
}

/// Agrees to `deal` on chain as the party `chain` signs for, escrowing `deposit`.
pub async fn agree_as(chain: &Chain, deal: &Deal, deposit: U256) {
    chain.ensure_allowance(deposit).await.unwrap();
    chain
        .send(
            "agree",
            chain
                .contracts
                .controller
                .agree(deal.chain_id().unwrap(), terms_of(deal)),
        )
        .await
        .unwrap();
}

/// A resource offer as the network's RP would post it, signed by its key.
pub fn resource_offer(network: &DevNetwork) -> ResourceOffer {
    ResourceOffer {
        id: String::new(),
        created_at: now_millis(),
        resource_provider: network.keys.resource_provider.address(),
        spec: MachineSpec {
            cpu: 2000,
            ram: 2048,
            gpu: 0,
            vram: 0,
            disk: 0,
        },
        pricing: pricing(),
        timeouts: timeouts(),
        modules: Vec::new(),
        services: network.services.clone(),
        nonce: new_nonce(),
    }
    .seal()
}

/// A cowsay job offer as `lilypad run` would post it for the network's job creator.
pub fn job_offer(network: &DevNetwork, message: &str) -> JobOffer {
    job_offer_by(network, &network.keys.job_creator, message)
}

/// The same, for any job creator key.
pub fn job_offer_by(network: &DevNetwork, job_creator: &LocalWallet, message: &str) -> JobOffer {
    let inputs = [("Message".to_string(), message.to_string())].into();
    let modules = lilypad::module::GitModules::new(&std::env::temp_dir());
    let spec = lilypad::module::resolve("cowsay:v0.0.1", None, &inputs, &modules).unwrap();
    JobOffer {
        id: String::new(),
        created_at: now_millis(),
        job_creator: job_creator.address(),
        module: "cowsay:v0.0.1".into(),
        inputs,
        spec: spec.machine,
        pricing: pricing(),
        timeouts: timeouts(),
        services: network.services.clone(),
        nonce: new_nonce(),
        results_reader: None,
        on_chain_job: None,
        module_source: None,
    }
    .seal()
}

/// Only the solver (and the chain): no resource provider, mediator or on-chain job service;
/// the test plays whatever role it needs.
pub fn solver_only() -> DevRoles {
    DevRoles {
        resource_provider: false,
        dishonest: false,
        mediator: false,
        job_service: false,
    }
}

/// A network with no resource provider running, and an offer posted with the RP's key (an
/// RP that posts and then dies, or that the test plays by hand); returns the RP's solver client.
pub async fn network_with_a_silent_rp(dir: &std::path::Path) -> (DevNetwork, SolverClient) {
    let roles = DevRoles {
        resource_provider: false,
        ..DevRoles::default()
    };
    let network = network_with(dir, roles).await;
    let rp = SolverClient::new(&network.solver.url, network.keys.resource_provider.clone());
    rp.post_resource_offer(&resource_offer(&network))
        .await
        .unwrap();
    (network, rp)
}

/// The network's requester (its job-creator key) asks the example client contract for
/// cowsay, as a task: what `lilypad run-cowsay-onchain` does.
pub async fn spawn_onchain_request(
    network: &DevNetwork,
    dir: &std::path::Path,
    message: &str,
) -> tokio::task::JoinHandle<anyhow::Result<lilypad::onchain::OnchainOutcome>> {
    let chain = network.job_creator_chain().await.unwrap();
    let client = SolverClient::new(&network.solver.url, network.keys.job_creator.clone());
    let example_client = network.deployment.example_client;
    let (message, results) = (message.to_string(), dir.join("onchain-results"));
    tokio::spawn(async move {
        lilypad::onchain::run_cowsay(
            &chain,
            lilypad::results::Sources {
                solver: &client,
                ipfs: None,
            },
            example_client,
            &message,
            &results,
            Duration::from_secs(120),
            Duration::from_millis(50),
        )
        .await
    })
}

/// A `lilypad rp` process for `network`, configured the way the README tells operators
/// (environment and a key file, data under `dir`), with `env` added.
pub fn rp_command(
    network: &DevNetwork,
    dir: &std::path::Path,
    env: &[(&str, &str)],
) -> tokio::process::Command {
    let key_file = dir.join("rp.key");
    if !key_file.exists() {
        lilypad::keys::write_key(&key_file, &network.keys.resource_provider).unwrap();
    }
    let mediators: Vec<String> = network
        .services
        .mediators
        .iter()
        .map(|m| format!("{m:?}"))
        .collect();
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_lilypad"));
    command
        .arg("rp")
        .args(terms_flags())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir)
        .env("DATA_DIR", dir.join("data"))
        .env("LOG_LEVEL", "info")
        .env("WEB3_RPC_URL", &network.rpc_url)
        .env("WEB3_PRIVATE_KEY_FILE", &key_file)
        .env(
            "WEB3_CONTROLLER_ADDRESS",
            format!("{:?}", network.deployment.controller),
        )
        .env("SERVICE_SOLVER", format!("{:?}", network.services.solver))
        .env("SERVICE_MEDIATORS", mediators.join(","))
        .env("SOLVER_URL", &network.solver.url)
        .kill_on_drop(true);
    for (name, value) in env {
        command.env(name, value);
    }
    command
}

/// Runs `lilypad rp --preflight` as `command` sets it up: (all passed, the table, stderr).
pub async fn preflight_output(mut command: tokio::process::Command) -> (bool, String, String) {
    let output = command
        .arg("--preflight")
        .output()
        .await
        .expect("lilypad rp starts");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The line of a preflight table for `check`.
pub fn row<'a>(table: &'a str, check: &str) -> &'a str {
    table
        .lines()
        .find(|line| line.split_whitespace().next() == Some(check))
        .unwrap_or_else(|| panic!("no {check} row in\n{table}"))
}

/// A new, empty PostgreSQL database for one test, as a URL: on the server in
/// LILYPAD_TEST_POSTGRES_URL, or the local one `deploy/postgres.sh` prepares (`make test`
/// runs it).
pub async fn postgres_database() -> String {
    let admin = std::env::var("LILYPAD_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://lilypad:lilypad@127.0.0.1:5432/postgres".into());
    let server = sqlx::PgPool::connect(&admin).await.unwrap_or_else(|e| {
        panic!(
            "no PostgreSQL server ({e}): run deploy/postgres.sh, or set LILYPAD_TEST_POSTGRES_URL"
        )
    });
    let name = format!("lilypad_e2e_{}", lilypad::data::offers::new_nonce());
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&server)
        .await
        .unwrap();
    server.close().await;
    let (base, _) = admin.rsplit_once('/').unwrap();
    format!("{base}/{name}")
}
