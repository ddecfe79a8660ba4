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
