//! The network on geth (`geth --dev`, a block every second): real block times, a real
//! transaction pool, receipts that come a block later. The happy path and a dispute, with
//! every balance asserted to the wei. geth comes from `make tools` (LILYPAD_TOOLS_DIR).

mod common;

use common::*;
use ethers::providers::Middleware;
use ethers::types::U256;
use lilypad::client::SolverClient;
use lilypad::data::DealState;
use lilypad::dev::{DevChain, DevNetwork, DevRoles};
use lilypad::run::run_job;

const COST: u128 = 3 * LP;
const M: u128 = LP;

async fn geth_network(dir: &std::path::Path) -> DevNetwork {
    let mut options = options(dir, DevRoles::default());
    options.chain = DevChain::Geth;
    options.block_time = 1;
    DevNetwork::start(options)
        .await
        .expect("the dev network starts on geth (needs `make tools`)")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_geth_a_job_is_paid_and_a_disputed_one_is_mediated_to_the_wei() {
    let dir = tempfile::tempdir().unwrap();
    let network = geth_network(dir.path()).await;
    let chain = network.job_creator_chain().await.unwrap();
    assert_eq!(network.chain_id, 1337, "geth's dev chain");
    let first = chain.client.get_block_number().await.unwrap();
    let who = parties(&network);
    let client = SolverClient::new(&network.solver.url, network.keys.job_creator.clone());

    // The happy path: accepted, the cost moves from JC to RP, nothing else.
    let before = balances(&chain, &who).await;
    let outcome = run_job(
        chain.clone(),
        client.clone(),
        cowsay_request(&network, dir.path(), "geth"),
    )
    .await
    .expect("the job completes on geth");
    assert_eq!(outcome.state, DealState::ResultsAccepted);
    assert!(
        outcome.stdout().contains("< geth >"),
        "{}",
        outcome.stdout()
    );
    let after = balances(&chain, &who).await;
    let cost = i128::try_from(COST).unwrap();
    assert_eq!(signed_changes(&before, &after), vec![-cost, cost, 0, 0, 0]);

    // A dispute: the mediator re-runs the job, agrees, and earns the fee.
    let before = after;
    let mut request = cowsay_request(&network, &dir.path().join("checked"), "checked on geth");
    request.mediation_chance = 100;
    let outcome = run_job(chain.clone(), client, request)
        .await
        .expect("the checked job ends on geth");
    assert_eq!(outcome.state, DealState::MediationAccepted);
    assert!(outcome.disputed.is_some());
    let after = balances(&chain, &who).await;
    let fee = i128::try_from(M).unwrap();
    assert_eq!(
        signed_changes(&before, &after),
        vec![-(cost + fee), cost, fee, 0, 0]
    );
    assert_eq!(after[4], U256::zero(), "escrow holds nothing");

    // Blocks came with time, not with transactions: many seconds, many blocks.
    let last = chain.client.get_block_number().await.unwrap();
    let (a, b) = (
        chain.client.get_block(first).await.unwrap().unwrap(),
        chain.client.get_block(last).await.unwrap().unwrap(),
    );
    let blocks = (last - first).as_u64();
    let seconds = (b.timestamp - a.timestamp).as_u64();
    assert!(
        blocks >= 3 && seconds >= blocks - 1,
        "{blocks} blocks in {seconds} s"
    );
    network.stop().await;
}

/// `lilypad chain deploy` on geth (a block a second, two confirmations each), killed with
/// SIGKILL once three contracts are deployed and run again: it resumes from its journal,
/// keeps what was deployed, waits for what was in flight, and finishes with every contract
/// deployed exactly once (the deployer's nonce moved by eight), all in EIP-1559
/// transactions, and a controller wired to the rest.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn chain_deploy_killed_half_way_resumes_and_deploys_each_contract_once() {
    let dir = tempfile::tempdir().unwrap();
    let geth = lilypad::tools::find_tool("geth", None).expect("geth (make tools)");
    let deployer = lilypad::config::parse_key(lilypad::dev::ANVIL_DEPLOYER_KEY).unwrap();
    let (_node, rpc_url) =
        lilypad::dev::geth::start_geth(&geth, &dir.path().join("geth"), &deployer, 1)
            .await
            .expect("geth starts");
    let key = dir.path().join("deployer.key");
    lilypad::keys::write_key(&key, &deployer).unwrap();
    let data_dir = dir.path().join("operator");
    let deploy = |log: &str| {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_lilypad"));
        command
            .args([
                "chain",
                "deploy",
                "--name",
                "resumed",
                "--confirmations",
                "2",
            ])
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("DATA_DIR", &data_dir)
            .env("WEB3_RPC_URL", &rpc_url)
            .env("WEB3_PRIVATE_KEY_FILE", &key)
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(dir.path().join(log)).unwrap())
            .kill_on_drop(true);
        command
    };
    let read = |log: &str| std::fs::read_to_string(dir.path().join(log)).unwrap_or_default();

    let mut first = deploy("first.log").spawn().unwrap();
    let started = std::time::Instant::now();
    while read("first.log").matches("deployed at").count() < 3 {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(120),
            "three contracts deployed: {}",
            read("first.log")
        );
        assert!(first.try_wait().unwrap().is_none(), "{}", read("first.log"));
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    first.start_kill().unwrap();
    first.wait().await.unwrap();

    let status = deploy("second.log").status().await.unwrap();
    let second = read("second.log");
    assert!(status.success(), "{second}");
    assert!(second.contains("resuming the deployment"), "{second}");
    assert!(
        second.matches("(deployed before)").count() >= 3,
        "the contracts deployed before the kill were kept: {second}"
    );

    // The journal says where it started and what it deployed.
    let provider =
        lilypad::chain::client::provider(&rpc_url, std::time::Duration::from_millis(100))
            .await
            .unwrap()
            .0;
    let chain_id = provider.get_chainid().await.unwrap().as_u64();
    let journal_path = lilypad::chain::deploy::Journal::path(
        &data_dir.join("deployments"),
        chain_id,
        ethers::signers::Signer::address(&deployer),
    );
    let journal: lilypad::chain::deploy::Journal =
        serde_json::from_slice(&std::fs::read(&journal_path).unwrap()).unwrap();
    let deployment = journal.complete.expect("the journal says it is complete");
    let who = ethers::signers::Signer::address(&deployer);
    let nonce = provider.get_transaction_count(who, None).await.unwrap();
    assert_eq!(
        nonce.as_u64(),
        journal.first_nonce + 8,
        "eight contracts, each deployed once"
    );

    // Every deployment transaction is EIP-1559, and the controller is wired to the rest.
    let head = provider.get_block_number().await.unwrap().as_u64();
    let mut sent = 0;
    for number in 0..=head {
        let block = provider.get_block_with_txs(number).await.unwrap().unwrap();
        for tx in block.transactions.iter().filter(|tx| tx.from == who) {
            assert_eq!(tx.transaction_type, Some(2.into()), "{tx:?}");
            sent += 1;
        }
    }
    assert_eq!(sent, 8);
    let chain = lilypad::chain::Chain::connect(
        &rpc_url,
        deployer.clone(),
        deployment.controller,
        std::time::Duration::from_millis(100),
    )
    .await
    .expect("the controller answers with its parts");
    assert_eq!(chain.contracts.payments.address(), deployment.payments);
    assert_eq!(chain.contracts.token.address(), deployment.token);
    let profile = lilypad::profile::Profile::find("resumed", &data_dir).unwrap();
    assert_eq!(profile.controller, deployment.controller);
    assert_eq!(profile.chain_id, chain_id);
}
