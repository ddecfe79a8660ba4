//! Disputes and deadlines end to end on real parts (anvil, the deployed contracts, the solver,
//! resource provider and mediator roles on the real Docker engine). Each test ends a deal in
//! one row of the money table (README, "The contracts") and asserts its final on-chain state and every
//! party's token balance change to the wei.
//!
//! A party that "dies" is played by the test: it does what the real role does up to the
//! point of death (posts an offer, agrees on chain) and then nothing. Deadlines pass through
//! anvil's time controls, so no test waits for a wall-clock timeout.

mod common;

use common::*;
use ethers::signers::Signer;
use ethers::types::{Address, U256};
use lilypad::chain::terms::job_creator_deposit;
use lilypad::client::SolverClient;
use lilypad::data::{Deal, DealState};
use lilypad::dev::{DevNetwork, DevRoles};
use lilypad::run::{follow_job, run_job, JobOutcome, UnfinishedJob, UnfinishedJobs};
use tokio::task::JoinHandle;

/// Prices of these tests, in wei (common::pricing/timeouts): price 3 LP (one instruction, so
/// cost 3), payment collateral 5, results multiple 2 (R = 6), mediation fee 1,
/// submit-results collateral 7, judge-results collateral 11.
const COST: u128 = 3 * LP;
const R: u128 = 6 * LP;
const M: u128 = LP;
const CS: u128 = 7 * LP;
const CJ: u128 = 11 * LP;

/// Who holds tokens in a deal: JC, RP, mediator, treasury (the dev deployer) and escrow.
struct Ledger {
    who: [Address; 5],
    before: Vec<U256>,
}

impl Ledger {
    async fn open(network: &DevNetwork) -> Ledger {
        let who = [
            network.keys.job_creator.address(),
            network.keys.resource_provider.address(),
            network.keys.mediator.address(),
            network.keys.deployer.address(),
            network.deployment.payments,
        ];
        let chain = network.job_creator_chain().await.unwrap();
        let before = balances(&chain, &who).await;
        Ledger { who, before }
    }

    /// Asserts each party's change (signed wei): [JC, RP, mediator, treasury, escrow].
    async fn assert_changes(&self, network: &DevNetwork, expected: [i128; 5]) {
        let chain = network.job_creator_chain().await.unwrap();
        let after = balances(&chain, &self.who).await;
        let names = [
            "job creator",
            "resource provider",
            "mediator",
            "treasury",
            "escrow",
        ];
        let changes = signed_changes(&self.before, &after);
        for i in 0..5 {
            assert_eq!(changes[i], expected[i], "{} balance change (wei)", names[i]);
        }
    }
}

fn signed(amount: u128) -> i128 {
    i128::try_from(amount).unwrap()
}

async fn checked_job(network: &DevNetwork, dir: &std::path::Path, message: &str) -> JobOutcome {
    let (job, _) = spawn_job(network, dir, message, 100).await;
    job.await.unwrap().expect("the job ends")
}

/// Starts `lilypad run`'s flow for a cowsay job (disputing `mediation_chance`% of results)
/// and returns it with the deal the solver made for it.
async fn spawn_job(
    network: &DevNetwork,
    dir: &std::path::Path,
    message: &str,
    mediation_chance: u8,
) -> (JoinHandle<anyhow::Result<JobOutcome>>, Deal) {
    let chain = network.job_creator_chain().await.unwrap();
    let client = SolverClient::new(&network.solver.url, network.keys.job_creator.clone());
    let mut request = cowsay_request(network, dir, message);
    request.mediation_chance = mediation_chance;
    let job = tokio::spawn(run_job(chain, client.clone(), request));
    let query = format!("job_creator={:?}", network.keys.job_creator.address());
    (job, wait_for_deal(&client, &query).await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn honest_results_checked_by_the_mediator_are_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let network = network(dir.path()).await;
    let ledger = Ledger::open(&network).await;

    let outcome = checked_job(&network, dir.path(), "honest").await;

    assert_eq!(outcome.state, DealState::MediationAccepted);
    assert!(outcome.disputed.is_some());
    assert!(outcome.paid_for_results());
    assert!(
        outcome.stdout().contains("< honest >"),
        "{}",
        outcome.stdout()
    );
    assert!(
        outcome.settlement.contains("confirmed"),
        "{}",
        outcome.settlement
    );
    // JC pays the cost and the fee; RP earns the cost; the mediator earns the fee.
    ledger
        .assert_changes(&network, [-signed(COST + M), signed(COST), signed(M), 0, 0])
        .await;
    network.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dishonest_results_are_rejected_and_the_collateral_slashed() {
    let dir = tempfile::tempdir().unwrap();
    let roles = DevRoles {
        dishonest: true,
        ..DevRoles::default()
    };
    let network = network_with(dir.path(), roles).await;
    let ledger = Ledger::open(&network).await;

    let outcome = checked_job(&network, dir.path(), "lie").await;

    assert_eq!(outcome.state, DealState::MediationRejected);
    assert!(!outcome.paid_for_results());
    let results = outcome
        .results
        .as_ref()
        .expect("the altered results were downloaded");
    assert!(
        results.stdout.contains("altered by a dishonest"),
        "{}",
        results.stdout
    );
    assert!(
        outcome.settlement.contains("rejected"),
        "{}",
        outcome.settlement
    );
    // JC gets P and Cj back and pays only the fee; the RP loses its results collateral and
    // its submit-results collateral (staked until the results are judged) to the treasury.
    ledger
        .assert_changes(
            &network,
            [-signed(M), -signed(R + CS), signed(M), signed(R + CS), 0],
        )
        .await;
    network.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_resource_provider_that_never_agrees_lets_the_job_creator_take_its_deposit_back() {
    let dir = tempfile::tempdir().unwrap();
    // The RP posts an offer and dies before agreeing.
    let (network, _rp) = network_with_a_silent_rp(dir.path()).await;
    let ledger = Ledger::open(&network).await;

    let jc_chain = network.job_creator_chain().await.unwrap();
    let (job, deal) = spawn_job(&network, dir.path(), "alone", 0).await;
    wait_on_chain(&jc_chain, &deal, "the job creator's agreement", |a| {
        a.job_creator_agreed
    })
    .await;
    advance_chain_time(&network, timeouts().agree + 1).await;

    let outcome = job.await.unwrap().expect("the job ends");
    assert_eq!(outcome.state, DealState::TimeoutAgree);
    assert!(
        outcome.settlement.contains("refunded 16 LP"),
        "{}",
        outcome.settlement
    );
    ledger.assert_changes(&network, [0, 0, 0, 0, 0]).await;
    network.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_resource_provider_that_dies_after_agreeing_loses_its_submit_collateral() {
    let dir = tempfile::tempdir().unwrap();
    let (network, _rp) = network_with_a_silent_rp(dir.path()).await;
    let ledger = Ledger::open(&network).await;
    let rp_chain = network
        .chain_as(&network.keys.resource_provider)
        .await
        .unwrap();

    let jc_chain = network.job_creator_chain().await.unwrap();
    let (job, deal) = spawn_job(&network, dir.path(), "abandoned", 0).await;
    // The RP agrees to the deal, then dies without running the job.
    agree_as(&rp_chain, &deal, U256::from(CS)).await;
    wait_for_state(&jc_chain, &deal, DealState::DealAgreed).await;
    advance_chain_time(&network, timeouts().submit_results + 1).await;

    let outcome = job.await.unwrap().expect("the job ends");
    assert_eq!(outcome.state, DealState::TimeoutSubmitResults);
    assert!(
        outcome.settlement.contains("refunded 16 LP"),
        "{}",
        outcome.settlement
    );
    ledger
        .assert_changes(&network, [0, -signed(CS), 0, signed(CS), 0])
        .await;
    network.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_job_creator_that_dies_after_results_are_submitted_still_pays_the_resource_provider() {
    let dir = tempfile::tempdir().unwrap();
    let network = network(dir.path()).await;
    let ledger = Ledger::open(&network).await;
    // The JC posts its offer and agrees, then dies before judging the results.
    let jc_chain = network.job_creator_chain().await.unwrap();
    let jc = SolverClient::new(&network.solver.url, network.keys.job_creator.clone());
    let offer = job_offer(&network, "orphan");
    jc.post_job_offer(&offer).await.unwrap();
    let deal = wait_for_deal(&jc, &format!("job_offer={}", offer.id)).await;
    agree_as(&jc_chain, &deal, job_creator_deposit(&deal)).await;
    wait_for_state(&jc_chain, &deal, DealState::ResultsSubmitted).await;
    advance_chain_time(&network, timeouts().judge_results + 1).await;

    // The RP calls the judge-results timeout itself.
    wait_for_state(&jc_chain, &deal, DealState::TimeoutJudgeResults).await;
    ledger
        .assert_changes(
            &network,
            [-signed(COST + CJ), signed(COST), 0, signed(CJ), 0],
        )
        .await;
    network.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_absent_mediator_lets_everyone_take_back_what_they_paid_in() {
    let dir = tempfile::tempdir().unwrap();
    let roles = DevRoles {
        mediator: false,
        ..DevRoles::default()
    };
    let network = network_with(dir.path(), roles).await;
    let ledger = Ledger::open(&network).await;
    let jc_chain = network.job_creator_chain().await.unwrap();
    let (job, deal) = spawn_job(&network, dir.path(), "anyone there", 100).await;
    wait_for_state(&jc_chain, &deal, DealState::ResultsChecked).await;
    advance_chain_time(&network, timeouts().mediate_results + 1).await;

    let outcome = job.await.unwrap().expect("the job ends");
    assert_eq!(outcome.state, DealState::TimeoutMediateResults);
    assert!(!outcome.paid_for_results());
    assert!(
        outcome.settlement.contains("refunded 17 LP"),
        "{}",
        outcome.settlement
    );
    ledger.assert_changes(&network, [0, 0, 0, 0, 0]).await;
    network.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_module_that_names_what_to_compare_is_judged_on_those_parts_only() {
    let dir = tempfile::tempdir().unwrap();
    // cowsay again, as a local module that asks mediators to compare only outputs/ (as a
    // module whose stdout carries timings would). The dishonest RP alters only stdout.
    let catalog: serde_json::Value = serde_json::from_str(
        include_str!("../src/module/catalog/cowsay-v0.0.1.json.tmpl")
            .replace("{{ .Message }}", "\"MESSAGE\"")
            .as_str(),
    )
    .unwrap();
    let mut template = catalog;
    template["mediation"] = serde_json::json!({ "compare": ["exitCode", "outputs"] });
    let text = serde_json::to_string_pretty(&template)
        .unwrap()
        .replace("\"MESSAGE\"", "{{ .Message }}");
    let module = common::module_dir(&dir.path().join("cowsay-outputs-only"), &text);

    let roles = DevRoles {
        dishonest: true,
        ..DevRoles::default()
    };
    let network = network_with(dir.path(), roles).await;
    let ledger = Ledger::open(&network).await;
    let chain = network.job_creator_chain().await.unwrap();
    let mut request = cowsay_request(&network, dir.path(), "outputs only");
    request.module = module;
    request.mediation_chance = 100;
    let client = SolverClient::new(&network.solver.url, network.keys.job_creator.clone());
    let outcome = run_job(chain, client, request).await.expect("the job ends");

    assert_eq!(
        outcome.state,
        DealState::MediationAccepted,
        "{}",
        outcome.settlement
    );
    assert!(outcome.stdout().contains("altered by a dishonest"));
    ledger
        .assert_changes(&network, [-signed(COST + M), signed(COST), signed(M), 0, 0])
        .await;
    network.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_mediator_that_was_down_when_the_dispute_came_decides_once_it_starts() {
    let dir = tempfile::tempdir().unwrap();
    let roles = DevRoles {
        mediator: false,
        ..DevRoles::default()
    };
    let mut network = network_with(dir.path(), roles).await;
    let jc_chain = network.job_creator_chain().await.unwrap();
    let (job, deal) = spawn_job(&network, dir.path(), "late", 100).await;
    wait_for_state(&jc_chain, &deal, DealState::ResultsChecked).await;

    // Now the mediator starts, with the dispute already on chain.
    network.start_mediator().await.unwrap();
    let outcome = job.await.unwrap().expect("the job ends");
    assert_eq!(outcome.state, DealState::MediationAccepted);
    network.stop().await;
}

/// `lilypad run` is stopped after both sides agreed and the RP dies too; `run --resume`
/// (the same offer, saved under DATA_DIR/jobs) follows the deal again and takes the job
/// creator's deposit back through the submit-results timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stopped_job_creator_resumes_its_job_and_is_refunded() {
    let dir = tempfile::tempdir().unwrap();
    let (network, rp) = network_with_a_silent_rp(dir.path()).await;
    let ledger = Ledger::open(&network).await;
    let rp_chain = network
        .chain_as(&network.keys.resource_provider)
        .await
        .unwrap();

    let jc_chain = network.job_creator_chain().await.unwrap();
    let jc = SolverClient::new(&network.solver.url, network.keys.job_creator.clone());
    let request = cowsay_request(&network, dir.path(), "interrupted");
    let unfinished = UnfinishedJobs::new(dir.path());
    let job = UnfinishedJob {
        offer: lilypad::run::job_offer(jc_chain.address(), &request)
            .await
            .unwrap(),
        mediation_chance: 0,
        accept_failures: false,
    };
    unfinished.save(&job).unwrap();
    let first = tokio::spawn(follow_job(
        jc_chain.clone(),
        jc.clone(),
        request.clone(),
        job.offer.clone(),
    ));
    let deal = wait_for_deal(&rp, &format!("job_offer={}", job.offer.id)).await;
    agree_as(&rp_chain, &deal, U256::from(CS)).await;
    wait_for_state(&jc_chain, &deal, DealState::DealAgreed).await;
    first.abort(); // the job creator's process stops

    let saved = unfinished.load(&job.offer.id).unwrap();
    assert_eq!(saved.offer, job.offer);
    advance_chain_time(&network, timeouts().submit_results + 1).await;
    let resumed = saved.request(
        request.poll,
        request.results_dir.clone(),
        request.timeout,
        false,
        request.modules.clone(),
        None,
    );
    let outcome = follow_job(jc_chain.clone(), jc.clone(), resumed, saved.offer.clone())
        .await
        .expect("the resumed job ends");
    assert_eq!(outcome.deal_id, deal.id);
    assert_eq!(outcome.state, DealState::TimeoutSubmitResults);
    ledger
        .assert_changes(&network, [0, -signed(CS), 0, signed(CS), 0])
        .await;
    assert!(unfinished.load("bafknotanid").is_err());
    assert!(unfinished.load("../escape").is_err());
    network.stop().await;
}

/// A module whose image no machine can get: its registry (a closed port on loopback) refuses
/// every pull, on the RP and on the mediator alike.
fn module_with_a_missing_image(dir: &std::path::Path) -> String {
    common::module_dir(
        &dir.join("missing-image"),
        r#"{
  "machine": { "gpu": 0, "cpu": 500, "ram": 64 },
  "job": {
    "APIVersion": "V1beta1",
    "Spec": {
      "Docker": { "Entrypoint": ["/bin/true"], "Image": "127.0.0.1:1/lilypad/absent:v1" },
      "Engine": "Docker",
      "Outputs": [{ "Name": "outputs", "Path": "/outputs" }],
      "Timeout": 60
    }
  }
}"#,
    )
}

/// Runs a job of the missing-image module: once the RP is retrying it, the chain's clock is
/// moved to where the RP must give up and submit results that say the job never ran.
async fn job_that_never_runs(
    network: &DevNetwork,
    dir: &std::path::Path,
    accept_failures: bool,
) -> JobOutcome {
    let chain = network.job_creator_chain().await.unwrap();
    let client = SolverClient::new(&network.solver.url, network.keys.job_creator.clone());
    let mut request = cowsay_request(network, dir, "never");
    request.module = module_with_a_missing_image(dir);
    request.accept_failures = accept_failures;
    let job = tokio::spawn(run_job(chain.clone(), client.clone(), request));
    let query = format!(
        "job_creator={:?}&state=1",
        network.keys.job_creator.address()
    );
    let deal = wait_for_deal(&client, &query).await;
    // The RP tries, fails (the pull is refused) and retries with backoff meanwhile.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    assert_eq!(
        chain.agreement(key_of(&deal)).await.unwrap().state,
        DealState::DealAgreed.number(),
        "nothing is submitted while the deadline leaves time to retry"
    );
    // 40 s before the submit deadline: past the point where it stops retrying (60 s).
    advance_chain_time(network, timeouts().submit_results - 40).await;
    job.await.unwrap().expect("the job ends")
}

/// The RP's engine cannot get the job's image: it retries, then (near its deadline) submits
/// results that say the job never ran. `lilypad run` disputes them instead of paying; the
/// mediator cannot get the image either, gets the same results and accepts: a module whose
/// image exists nowhere is the job creator's loss (cost + fee). With --accept-failures the
/// job creator pays for such results without a dispute.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn results_of_a_job_that_never_ran_say_so_and_are_disputed_unless_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let network = network(dir.path()).await;
    let ledger = Ledger::open(&network).await;

    let outcome = job_that_never_runs(&network, dir.path(), false).await;
    let disputed = outcome.disputed.clone().expect("disputed");
    assert!(disputed.contains("never ran"), "{disputed}");
    assert!(
        disputed.contains("image 127.0.0.1:1/lilypad/absent:v1 is not available"),
        "{disputed}"
    );
    assert_eq!(outcome.state, DealState::MediationAccepted);
    let results = outcome.results.as_ref().expect("downloaded");
    assert_eq!(results.exit_code, Some(-1));
    assert!(results.engine_failure.is_some());
    let stderr = std::fs::read_to_string(results.dir.join("stderr")).unwrap();
    assert_eq!(
        stderr,
        "lilypad: the engine could not run the job: image 127.0.0.1:1/lilypad/absent:v1 is not available\n"
    );
    ledger
        .assert_changes(&network, [-signed(COST + M), signed(COST), signed(M), 0, 0])
        .await;

    let ledger = Ledger::open(&network).await;
    let outcome = job_that_never_runs(&network, dir.path(), true).await;
    assert_eq!(outcome.state, DealState::ResultsAccepted);
    assert!(outcome.disputed.is_none());
    ledger
        .assert_changes(&network, [-signed(COST), signed(COST), 0, 0, 0])
        .await;
    network.stop().await;
}
