//! The roles' own logic on a real anvil chain and a real solver, without Docker: every role
//! runs jobs on the noop engine (`--executor noop`, part of the product), so these tests need
//! anvil but no container engine. They also show that `lilypad dev`'s flags reach the roles
//! it starts, and that corrupt stored data stops a role from acting instead of making it act
//! twice.

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;
use ethers::signers::Signer;
use lilypad::client::SolverClient;
use lilypad::data::DealState;
use lilypad::dev::{DevNetwork, DevRoles};
use lilypad::run::{run_job, JobRequest, NoMatch};

const NOOP: &[&str] = &["--executor", "noop"];

/// A module in a directory whose job asks for a network (HTTP), like cowsay otherwise.
fn network_module(dir: &Path) -> String {
    module_dir(
        &dir.join("net-module"),
        r#"{
  "machine": { "gpu": 0, "cpu": 500, "ram": 64 },
  "job": {
    "APIVersion": "V1beta1",
    "Spec": {
      "Docker": { "Entrypoint": ["/usr/bin/cowsay", {{ .Message }}], "Image": "lilypad/cowsay:v0.0.1" },
      "Engine": "Docker",
      "Network": { "Type": "HTTP" },
      "Outputs": [{ "Name": "outputs", "Path": "/outputs" }],
      "Timeout": 60
    }
  }
}"#,
    )
}

fn request(network: &DevNetwork, dir: &Path, module: &str, message: &str) -> JobRequest {
    JobRequest {
        module: module.to_string(),
        ..cowsay_request(network, dir, message)
    }
}

async fn run(
    network: &DevNetwork,
    request: JobRequest,
) -> anyhow::Result<lilypad::run::JobOutcome> {
    let chain = network.job_creator_chain().await.unwrap();
    let client = SolverClient::new(&network.solver.url, network.keys.job_creator.clone());
    run_job(chain, client, request).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_roles_settle_a_job_and_a_dispute_on_the_noop_engine_without_docker() {
    let dir = tempfile::tempdir().unwrap();
    let network = start(options_with(dir.path(), DevRoles::default(), NOOP)).await;

    let outcome = run(&network, cowsay_request(&network, dir.path(), "moo"))
        .await
        .expect("the job completes");
    assert_eq!(outcome.state, DealState::ResultsAccepted);
    assert!(
        outcome
            .stdout()
            .contains("noop executor: would run image lilypad/cowsay:v0.0.1"),
        "{}",
        outcome.stdout()
    );
    assert!(outcome.stdout().contains("\"moo\""), "{}", outcome.stdout());

    // The mediator re-runs on the same engine and gets byte-identical results.
    let mut checked = cowsay_request(&network, dir.path(), "check me");
    checked.mediation_chance = 100;
    let outcome = run(&network, checked).await.expect("the dispute settles");
    assert_eq!(outcome.state, DealState::MediationAccepted);
    assert!(outcome.disputed.is_some());
    network.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dev_offer_modules_and_allow_network_reach_the_resource_provider() {
    let dir = tempfile::tempdir().unwrap();
    let module = network_module(dir.path());
    let flags = [NOOP, &["--offer-modules", &module, "--allow-network"]].concat();
    let network = start(options_with(dir.path(), DevRoles::default(), &flags)).await;

    // --offer-modules: the offers the RP posted name only that module.
    let client = SolverClient::new(&network.solver.url, network.keys.job_creator.clone());
    let rp = network.keys.resource_provider.address();
    let mut offers = client.resource_offers(rp).await.unwrap();
    for _ in 0..50 {
        if !offers.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        offers = client.resource_offers(rp).await.unwrap();
    }
    assert!(!offers.is_empty(), "the RP posted an offer");
    for record in &offers {
        assert_eq!(record.offer.modules, vec![module.clone()]);
    }
    // A module it does not offer finds no provider.
    let mut other = cowsay_request(&network, dir.path(), "not offered");
    other.timeout = Duration::from_secs(2);
    let error = run(&network, other).await.unwrap_err();
    assert!(
        error.chain().any(|cause| cause.is::<NoMatch>()),
        "{error:#}"
    );

    // --allow-network: the job that asks for a network gets one.
    let outcome = run(&network, request(&network, dir.path(), &module, "online"))
        .await
        .expect("the offered module runs");
    assert_eq!(outcome.state, DealState::ResultsAccepted);
    assert!(
        outcome.stdout().contains(", a network"),
        "{}",
        outcome.stdout()
    );
    network.stop().await;

    // Without the flag the same job runs with no network.
    let dir = tempfile::tempdir().unwrap();
    let module = network_module(dir.path());
    let network = start(options_with(dir.path(), DevRoles::default(), NOOP)).await;
    let outcome = run(&network, request(&network, dir.path(), &module, "offline"))
        .await
        .expect("the module runs");
    assert!(
        outcome.stdout().contains(", no network"),
        "{}",
        outcome.stdout()
    );
    network.stop().await;
}

/// The jc's stored row for job request 1: (status, offer JSON).
async fn jc_row(dir: &Path) -> Option<(String, Option<String>)> {
    use sqlx::Row;
    let url = format!("sqlite://{}", dir.join("jc/jc.db").display());
    let pool = sqlx::SqlitePool::connect(&url).await.ok()?;
    let row = sqlx::query("SELECT status, offer FROM requests WHERE job_id = '1'")
        .fetch_optional(&pool)
        .await
        .ok()??;
    let out = (row.get(0), row.get(1));
    pool.close().await;
    Some(out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_corrupt_job_offer_in_the_jc_ledger_is_never_replaced_by_a_second_paid_one() {
    let dir = tempfile::tempdir().unwrap();
    // No resource provider: the request stays waiting for a match, its offer stored.
    let roles = DevRoles {
        resource_provider: false,
        job_service: false,
        ..DevRoles::default()
    };
    let mut network = start(options_with(dir.path(), roles, NOOP)).await;
    let jc = network.start_job_service().await.unwrap();
    let _request = spawn_onchain_request(&network, dir.path(), "corrupt me").await;
    let mut stored = None;
    for _ in 0..200 {
        stored = jc_row(dir.path()).await.and_then(|(_, offer)| offer);
        if stored.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        stored.is_some(),
        "the jc stored a job offer for the request"
    );
    jc.abort();
    tokio::time::sleep(Duration::from_millis(200)).await;

    let url = format!("sqlite://{}", dir.path().join("jc/jc.db").display());
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    sqlx::query("UPDATE requests SET offer = '{\"module\": \"cows' WHERE job_id = '1'")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let chain = network.job_creator_chain().await.unwrap();
    let operator = network.keys.job_service_operator.address();
    let before = chain.token_balance(operator).await.unwrap();

    network.start_job_service().await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;

    // The jc neither made a new offer (it stores one before posting it) nor failed the
    // request: it left the damaged row alone.
    let (status, offer) = jc_row(dir.path()).await.unwrap();
    assert_eq!(status, "running");
    assert_eq!(offer.as_deref(), Some("{\"module\": \"cows"));
    assert_eq!(chain.token_balance(operator).await.unwrap(), before);
    let job = chain
        .contracts
        .job_creator
        .get_job(1.into())
        .call()
        .await
        .unwrap();
    assert_eq!(
        job.status, 1,
        "still pending on chain: not failed, not refunded"
    );
    network.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_mediator_whose_checkpoint_is_corrupt_refuses_to_start_and_names_its_database() {
    let dir = tempfile::tempdir().unwrap();
    let roles = DevRoles {
        mediator: false,
        ..DevRoles::default()
    };
    let network = start(options_with(dir.path(), roles, NOOP)).await;
    let data_dir = dir.path().join("mediator");
    let db = data_dir.join("mediator.db");
    let database = lilypad::db::Db::open(&db, "", 1).await.unwrap();
    database.set_meta("next_block", "12a").await.unwrap();
    database.close().await;

    let chain = network.chain_as(&network.keys.mediator).await.unwrap();
    let client = SolverClient::new(&network.solver.url, network.keys.mediator.clone());
    let settings = lilypad::mediator::MediatorSettings {
        modules: lilypad::module::GitModules::new(&data_dir),
        data_dir,
        poll: Duration::from_millis(50),
        parallel: 1,
        ipfs: None,
        retain_results: Duration::from_secs(3600),
        metrics_listen: None,
    };
    let executor = lilypad::executor::noop::NoopExecutor::default();
    let stop = tokio_util::sync::CancellationToken::new();
    let error = lilypad::mediator::run(chain, client, executor, settings, stop)
        .await
        .expect_err("a corrupt checkpoint stops the start");
    let text = format!("{error:#}");
    assert!(text.contains(&db.display().to_string()), "{text}");
    assert!(text.contains("\"12a\""), "{text}");
    network.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn roles_hear_of_new_blocks_over_the_nodes_websocket() {
    let dir = tempfile::tempdir().unwrap();
    let roles = solver_only();
    let network = start(options_with(dir.path(), roles, NOOP)).await;
    let chain = network.chain_as(&network.keys.mediator).await.unwrap();
    let stop = tokio_util::sync::CancellationToken::new();
    let mut heads = chain
        .new_heads(stop.clone())
        .expect("anvil has a WebSocket endpoint");
    // The subscription connects in the background; mine until a block is announced.
    let mut announced = None;
    for _ in 0..50 {
        advance_chain_time(&network, 1).await;
        if let Ok(Some(block)) =
            tokio::time::timeout(Duration::from_millis(100), heads.recv()).await
        {
            announced = Some(block);
            break;
        }
    }
    let block = announced.expect("a new block was announced");
    let head = {
        use ethers::providers::Middleware;
        chain.client.get_block_number().await.unwrap().as_u64()
    };
    assert!(block > 0 && block <= head, "block {block}, head {head}");
    stop.cancel();
    network.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_resource_provider_whose_stored_stage_is_corrupt_leaves_that_deal_alone() {
    let dir = tempfile::tempdir().unwrap();
    let roles = DevRoles {
        resource_provider: false,
        ..DevRoles::default()
    };
    let mut network = start(options_with(dir.path(), roles, NOOP)).await;
    let rp = network.start_resource_provider().await.unwrap();
    // The test is the job creator: it posts an offer and agrees only when it chooses to.
    let jc_chain = network.job_creator_chain().await.unwrap();
    let client = SolverClient::new(&network.solver.url, network.keys.job_creator.clone());
    let offer = job_offer(&network, "held back");
    client.post_job_offer(&offer).await.unwrap();
    let deal = wait_for_deal(&client, &format!("job_offer={}", offer.id)).await;
    // The RP took the deal up (it waits for the job creator to agree first).
    let url = format!("sqlite://{}", dir.path().join("rp/rp.db").display());
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    let mut stage = None;
    for _ in 0..100 {
        stage = sqlx::query_scalar::<_, String>("SELECT stage FROM deals WHERE id = ?")
            .bind(&deal.id)
            .fetch_optional(&pool)
            .await
            .unwrap();
        if stage.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(stage.as_deref(), Some("accepted"));
    rp.abort();

    // The RP's record of the deal is damaged while it is down.
    sqlx::query("UPDATE deals SET stage = 'acepted' WHERE id = ?")
        .bind(&deal.id)
        .execute(&pool)
        .await
        .unwrap();
    network.start_resource_provider().await.unwrap();
    let deposit = lilypad::chain::terms::job_creator_deposit(&deal);
    agree_as(&jc_chain, &deal, deposit).await;
    tokio::time::sleep(Duration::from_secs(2)).await;

    // Read as "accepted" the RP would agree, run the job and submit; it does none of it.
    let agreement = jc_chain.agreement(key_of(&deal)).await.unwrap();
    assert!(agreement.job_creator_agreed && !agreement.resource_provider_agreed);
    assert_eq!(agreement.state, DealState::DealNegotiating.number());
    assert!(!dir.path().join("rp/jobs").join(&deal.id).exists());
    let stage: String = sqlx::query_scalar("SELECT stage FROM deals WHERE id = ?")
        .bind(&deal.id)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(stage, "acepted", "the damaged row is left for the operator");
    pool.close().await;
    network.stop().await;
}

/// Waits (at most 15 s) until the RP has an offer no deal took.
async fn wait_for_a_free_offer(network: &DevNetwork, client: &SolverClient, what: &str) {
    let rp = network.keys.resource_provider.address();
    for _ in 0..150 {
        let offers = client.resource_offers(rp).await.unwrap();
        if offers.iter().any(|record| record.deal_id.is_none()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the resource provider offered no free slot: {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_job_creator_that_goes_silent_does_not_keep_the_resource_providers_slot() {
    let dir = tempfile::tempdir().unwrap();
    let flags = [NOOP, &["--agree-window", "1"]].concat();
    let network = start(options_with(dir.path(), DevRoles::default(), &flags)).await;
    let jc_chain = network.job_creator_chain().await.unwrap();
    let client = SolverClient::new(&network.solver.url, network.keys.job_creator.clone());

    // A job creator agrees, the job runs and its results are submitted; then it goes silent
    // and never judges them. Judging needs no machine: the slot is offered again.
    let first = job_offer(&network, "judged never");
    client.post_job_offer(&first).await.unwrap();
    let deal = wait_for_deal(&client, &format!("job_offer={}", first.id)).await;
    agree_as(
        &jc_chain,
        &deal,
        lilypad::chain::terms::job_creator_deposit(&deal),
    )
    .await;
    wait_for_state(&jc_chain, &deal, DealState::ResultsSubmitted).await;
    wait_for_a_free_offer(&network, &client, "after results were submitted").await;

    // Another job creator's deal takes that offer; the job creator never agrees, so the RP
    // (which agrees second) never does either: nothing of its is locked. After the agree
    // window the slot is offered again.
    let second = job_offer(&network, "agreed never");
    client.post_job_offer(&second).await.unwrap();
    let stalled = wait_for_deal(&client, &format!("job_offer={}", second.id)).await;
    wait_for_a_free_offer(&network, &client, "after the agree window").await;
    let agreement = jc_chain.agreement(key_of(&stalled)).await.unwrap();
    assert!(
        !agreement.resource_provider_agreed && !agreement.job_creator_agreed,
        "the RP waits for the job creator to agree first"
    );

    // If that job creator agrees after all, the RP agrees and the job still runs.
    agree_as(
        &jc_chain,
        &stalled,
        lilypad::chain::terms::job_creator_deposit(&stalled),
    )
    .await;
    wait_for_state(&jc_chain, &stalled, DealState::ResultsSubmitted).await;
    network.stop().await;
}

/// An attacker posts 100 job offers (they cost nothing) and never agrees to a deal. The
/// solver takes at most MAX_OPEN_JOB_OFFERS of them (429 for the rest), the RP agrees to
/// none (the job creator agrees first), and an honest job creator arriving after them is
/// served within a minute: the attacker's deal gives its slot back after the agree window
/// (20 s by default) and the matcher serves the job creator with fewer deals negotiating.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_attacker_flooding_job_offers_cannot_keep_an_honest_job_creator_waiting() {
    let dir = tempfile::tempdir().unwrap();
    // Default settings but the engine: one slot, a 20 s agree window, 50 open offers.
    let network = start(options_with(dir.path(), DevRoles::default(), NOOP)).await;
    let attacker = ethers::signers::LocalWallet::new(&mut rand::thread_rng());
    let attacker_client = SolverClient::new(&network.solver.url, attacker.clone());
    wait_for_a_free_offer(&network, &attacker_client, "at the start").await;
    let mut taken = 0;
    let mut refused = Vec::new();
    for n in 0..100 {
        let offer = job_offer_by(&network, &attacker, &format!("grief {n}"));
        match attacker_client.post_job_offer(&offer).await {
            Ok(_) => taken += 1,
            Err(error) => refused.push(error),
        }
    }
    // MAX_OPEN_JOB_OFFERS defaults to 50 unmatched offers; the first was matched at once.
    assert_eq!(taken, 51);
    assert_eq!(refused.len(), 49);
    for error in &refused {
        assert_eq!(error.status(), Some(429), "{error}");
        assert!(error.to_string().contains("MAX_OPEN_JOB_OFFERS"), "{error}");
    }
    let query = format!("job_creator={:?}", attacker.address());
    let grief = wait_for_deal(&attacker_client, &query).await;

    // The honest job creator arrives with the only slot taken by the attacker's deal.
    let started = std::time::Instant::now();
    let outcome = tokio::time::timeout(
        Duration::from_secs(60),
        run(&network, cowsay_request(&network, dir.path(), "served")),
    )
    .await
    .expect("the honest job is served within a minute")
    .expect("the honest job completes");
    assert_eq!(outcome.state, DealState::ResultsAccepted);
    assert!(outcome.stdout().contains("served"), "{}", outcome.stdout());
    eprintln!("honest job served in {} s", started.elapsed().as_secs());

    // The RP agreed to none of the attacker's deals: it paid in nothing for them.
    let chain = network.job_creator_chain().await.unwrap();
    let deals = attacker_client.deals(&query).await.unwrap();
    assert!(deals.iter().any(|record| record.deal.id == grief.id));
    for record in &deals {
        let agreement = chain.agreement(key_of(&record.deal)).await.unwrap();
        assert!(!agreement.resource_provider_agreed, "{}", record.deal.id);
    }
    network.stop().await;
}

/// Twenty senders with one key and a nonce manager each, as twenty `lilypad run` processes
/// would have, sending at once: every transaction lands (a sender whose nonce another took
/// reads the count again and resends), none is lost or doubled.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_senders_with_one_key_all_get_their_transactions_in() {
    let dir = tempfile::tempdir().unwrap();
    let roles = solver_only();
    let network = network_with(dir.path(), roles).await;
    let key = network.keys.job_creator.clone();
    let recipient = ethers::types::Address::repeat_byte(0x7e);
    let mut senders = Vec::new();
    for _ in 0..20 {
        senders.push(network.chain_as(&key).await.unwrap());
    }
    let first = &senders[0];
    let nonce_before = ethers::providers::Middleware::get_transaction_count(
        first.client.as_ref(),
        key.address(),
        None,
    )
    .await
    .unwrap();
    let sends = senders.iter().enumerate().map(|(n, chain)| async move {
        let call = chain
            .contracts
            .token
            .transfer(recipient, ethers::types::U256::from(n + 1));
        chain.send(&format!("transfer {n}"), call).await
    });
    let results = futures::future::join_all(sends).await;
    for (n, result) in results.iter().enumerate() {
        assert!(result.is_ok(), "sender {n}: {result:?}");
    }
    // 1 + 2 + … + 20 wei arrived, in exactly 20 transactions.
    assert_eq!(
        first.token_balance(recipient).await.unwrap(),
        ethers::types::U256::from(210)
    );
    let nonce_after = ethers::providers::Middleware::get_transaction_count(
        first.client.as_ref(),
        key.address(),
        None,
    )
    .await
    .unwrap();
    assert_eq!(nonce_after - nonce_before, ethers::types::U256::from(20));
    network.stop().await;
}
