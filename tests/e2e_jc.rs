//! Jobs requested by smart contracts, end to end on real parts: the example client contract
//! asks LilypadOnChainJobCreator for cowsay, `lilypad jc` (the operator) runs it through the
//! solver and a resource provider on the real Docker engine, and reports back on chain. The
//! requester fetches the results through the solver, as `lilypad run-cowsay-onchain` does.

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;
use ethers::signers::Signer;
use ethers::types::{Address, U256};
use lilypad::chain::bindings::example_client::ExampleClient;
use lilypad::client::SolverClient;
use lilypad::data::ids::digest_of;
use lilypad::data::DealState;
use lilypad::dev::{DevNetwork, DevRoles};
use lilypad::onchain::OnchainOutcome;

/// The request deposit of the dev deployment (2 LP) and the job's cost (3 LP).
const DEPOSIT: u128 = 2 * LP;
const COST: u128 = 3 * LP;

/// Token holders: requester, jc operator, RP, escrow, job creator contract, example client.
async fn holders(network: &DevNetwork) -> ([Address; 6], Vec<U256>) {
    let who = [
        network.keys.job_creator.address(),
        network.keys.job_service_operator.address(),
        network.keys.resource_provider.address(),
        network.deployment.payments,
        network.deployment.job_creator,
        network.deployment.example_client,
    ];
    let chain = network.job_creator_chain().await.unwrap();
    let balances = balances(&chain, &who).await;
    (who, balances)
}

/// Signed balance changes since `before`.
async fn changes(network: &DevNetwork, who: &[Address; 6], before: &[U256]) -> Vec<i128> {
    let chain = network.job_creator_chain().await.unwrap();
    signed_changes(before, &balances(&chain, who).await)
}

/// Asserts that one request was paid for: the requester paid the deposit, the operator got
/// it and paid the job's cost, the RP earned the cost, and nothing stayed in escrow or in
/// the contracts.
async fn assert_one_job_paid(network: &DevNetwork, who: &[Address; 6], before: &[U256]) {
    let d = i128::try_from(DEPOSIT).unwrap();
    let c = i128::try_from(COST).unwrap();
    assert_eq!(
        changes(network, who, before).await,
        vec![-d, d - c, c, 0, 0, 0]
    );
}

/// The requester (the dev network's job-creator key) asks the example client for cowsay.
async fn request(network: &DevNetwork, dir: &Path, message: &str) -> OnchainOutcome {
    spawn_onchain_request(network, dir, message)
        .await
        .await
        .unwrap()
        .expect("the request ends")
}

/// Asserts the request completed with `message` and that the example client stores the
/// results CID of a deal in ResultsAccepted.
async fn assert_completed(network: &DevNetwork, outcome: &OnchainOutcome, message: &str) {
    let OnchainOutcome::Completed {
        job_id,
        results_cid,
        deal_id,
        stdout,
        ..
    } = outcome
    else {
        panic!("the request failed: {outcome:?}");
    };
    assert!(stdout.contains(&format!("< {message} >")), "{stdout}");
    let chain = network.job_creator_chain().await.unwrap();
    let example = ExampleClient::new(network.deployment.example_client, chain.client.clone());
    let stored = example.get_job_result(*job_id).call().await.unwrap();
    assert_eq!(stored, digest_of(results_cid).unwrap());
    let client = SolverClient::new(&network.solver.url, network.keys.job_creator.clone());
    let deal = client.deal(deal_id).await.unwrap().deal;
    let agreement = chain.agreement(key_of(&deal)).await.unwrap();
    assert_eq!(agreement.state, DealState::ResultsAccepted.number());
    let committed = chain
        .contracts
        .storage
        .results_id_of(key_of(&deal))
        .call()
        .await
        .unwrap();
    assert_eq!(
        committed, stored,
        "the client holds the deal's committed results"
    );
    assert_eq!(
        deal.job_offer.results_reader,
        Some(network.keys.job_creator.address())
    );
    // The deal's job offer names the request (so the deal id commits to it), and the
    // contract paid for exactly that deal: it was bound to the job before the operator agreed.
    let named = deal
        .job_offer
        .on_chain_job
        .as_ref()
        .expect("the offer names the request");
    assert_eq!(named.job_id, job_id.to_string());
    assert_eq!(named.contract, network.deployment.job_creator);
    let job = chain
        .contracts
        .job_creator
        .get_job(*job_id)
        .call()
        .await
        .unwrap();
    assert_eq!(job.deal_key, key_of(&deal), "the job is bound to its deal");
    assert_eq!(job.results_id, committed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_contract_request_is_run_and_the_client_gets_the_results() {
    let dir = tempfile::tempdir().unwrap();
    let network = network(dir.path()).await;
    let (who, before) = holders(&network).await;

    let outcome = request(&network, dir.path(), "hello from a contract").await;

    assert_completed(&network, &outcome, "hello from a contract").await;
    assert_one_job_paid(&network, &who, &before).await;
    network.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_request_made_while_jc_is_down_is_served_when_it_starts_again() {
    let dir = tempfile::tempdir().unwrap();
    let roles = DevRoles {
        job_service: false,
        ..DevRoles::default()
    };
    let mut network = network_with(dir.path(), roles).await;
    let jc = network.start_job_service().await.unwrap();
    let first = request(&network, dir.path(), "first").await;
    assert_completed(&network, &first, "first").await;
    jc.abort(); // the jc dies, having saved the block it read up to

    let (who, before) = holders(&network).await;
    let second = spawn_onchain_request(&network, dir.path(), "second").await;
    let chain = network.job_creator_chain().await.unwrap();
    while chain
        .contracts
        .job_creator
        .next_job_id()
        .call()
        .await
        .unwrap()
        < U256::from(3)
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    network.start_job_service().await.unwrap(); // request 2 is on chain; the jc comes back

    let second = second.await.unwrap().expect("the request ends");
    assert_completed(&network, &second, "second").await;
    assert_one_job_paid(&network, &who, &before).await;
    network.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_request_no_resource_provider_takes_fails_and_refunds_the_requester() {
    let dir = tempfile::tempdir().unwrap();
    let roles = DevRoles {
        resource_provider: false,
        ..DevRoles::default()
    };
    let mut options = options(dir.path(), roles);
    options.settings.jc_match_timeout = 1;
    let network = start(options).await;
    let (who, before) = holders(&network).await;

    let outcome = request(&network, dir.path(), "nobody home").await;

    let OnchainOutcome::Failed { job_id, reason } = outcome else {
        panic!("the request should fail: {outcome:?}");
    };
    assert!(reason.contains("no resource provider took"), "{reason}");
    let chain = network.job_creator_chain().await.unwrap();
    let example = ExampleClient::new(network.deployment.example_client, chain.client.clone());
    assert_eq!(example.job_failures(job_id).call().await.unwrap(), reason);
    assert_eq!(
        example.get_job_result(job_id).call().await.unwrap(),
        [0u8; 32]
    );
    // The deposit went back to the requester; nobody else paid or earned anything.
    assert_eq!(
        changes(&network, &who, &before).await,
        vec![0, 0, 0, 0, 0, 0]
    );
    network.stop().await;
}
