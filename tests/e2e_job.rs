//! End to end on real parts: anvil, the deployed contracts, the solver over HTTP/WS, a
//! resource provider running the cowsay image on the real Docker engine, and the job
//! creator's `run` flow. Asserts the output, the final on-chain state and every balance.

mod common;

use std::time::Duration;

use common::{balances, cowsay_request, network, pricing};
use ethers::signers::Signer;
use ethers::types::U256;
use lilypad::chain::terms::{deal_key, terms_of};
use lilypad::client::SolverClient;
use lilypad::data::DealState;
use lilypad::run::run_job;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cowsay_runs_end_to_end_and_every_token_moves_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let network = network(dir.path()).await;
    let jc_chain = network.job_creator_chain().await.unwrap();
    let jc = network.keys.job_creator.address();
    let rp = network.keys.resource_provider.address();
    let escrow = network.deployment.payments;
    let before = balances(&jc_chain, &[jc, rp, escrow]).await;

    let request = cowsay_request(&network, dir.path(), "moo");
    let client = SolverClient::new(&network.solver.url, network.keys.job_creator.clone());
    let outcome = run_job(jc_chain.clone(), client.clone(), request)
        .await
        .expect("the job completes");

    assert_eq!(outcome.state, DealState::ResultsAccepted);
    assert_eq!(outcome.disputed, None);
    let results = outcome.results.clone().expect("results were downloaded");
    assert!(
        results.stdout.contains("< moo >"),
        "stdout: {}",
        results.stdout
    );
    assert!(
        results.stdout.contains("(oo)"),
        "stdout: {}",
        results.stdout
    );
    assert_eq!(results.exit_code, Some(0));
    assert_eq!(
        std::fs::read_to_string(results.dir.join("outputs/cow.txt")).unwrap(),
        results.stdout
    );

    // On chain: ResultsAccepted, with the results id the RP committed.
    let record = client.deal(&outcome.deal_id).await.unwrap();
    let key = deal_key(record.deal.chain_id().unwrap(), &terms_of(&record.deal));
    let agreement = jc_chain.agreement(key).await.unwrap();
    assert_eq!(
        DealState::try_from(agreement.state).unwrap(),
        DealState::ResultsAccepted
    );
    assert_eq!(agreement.instruction_count, 1);
    let committed = jc_chain
        .contracts
        .storage
        .results_id_of(key)
        .call()
        .await
        .unwrap();
    assert_eq!(
        committed,
        lilypad::data::ids::digest_of(&results.cid).unwrap()
    );

    // Money, to the wei: one instruction at the RP's price moves from JC to RP; escrow is empty again.
    let after = balances(&jc_chain, &[jc, rp, escrow]).await;
    let cost = U256::from(pricing().instruction_price);
    assert_eq!(
        before[0] - after[0],
        cost,
        "the job creator pays exactly the cost"
    );
    assert_eq!(
        after[1] - before[1],
        cost,
        "the resource provider earns exactly the cost"
    );
    assert_eq!(
        after[2], before[2],
        "escrow holds nothing once the deal is settled"
    );

    // The solver mirrored the chain: its record says ResultsAccepted too (it polls, so wait briefly).
    let mut mirrored = 0;
    for _ in 0..50 {
        mirrored = client.deal(&outcome.deal_id).await.unwrap().state;
        if mirrored == DealState::ResultsAccepted.number() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(mirrored, DealState::ResultsAccepted.number());
    network.stop().await;
}

/// The resource provider is killed (its task aborted, like a crash) right after it agreed,
/// and started again on the same data directory: the job still completes, paid once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_resource_provider_restarted_after_a_crash_finishes_the_job() {
    let dir = tempfile::tempdir().unwrap();
    let roles = lilypad::dev::DevRoles {
        resource_provider: false,
        ..Default::default()
    };
    let mut network = common::network_with(dir.path(), roles).await;
    let crash = network.start_resource_provider().await.unwrap();
    let jc_chain = network.job_creator_chain().await.unwrap();
    let jc = network.keys.job_creator.address();
    let rp = network.keys.resource_provider.address();
    let escrow = network.deployment.payments;
    let before = balances(&jc_chain, &[jc, rp, escrow]).await;
    let client = SolverClient::new(&network.solver.url, network.keys.job_creator.clone());
    let request = cowsay_request(&network, dir.path(), "again");
    let job = tokio::spawn(run_job(jc_chain.clone(), client.clone(), request));

    let deal = common::wait_for_deal(&client, &format!("job_creator={jc:?}")).await;
    common::wait_on_chain(&jc_chain, &deal, "the RP's agreement", |a| {
        a.resource_provider_agreed
    })
    .await;
    crash.abort();
    network.start_resource_provider().await.unwrap();

    let outcome = job
        .await
        .unwrap()
        .expect("the job completes after the restart");
    assert_eq!(outcome.state, DealState::ResultsAccepted);
    assert!(
        outcome.stdout().contains("< again >"),
        "{}",
        outcome.stdout()
    );
    let after = balances(&jc_chain, &[jc, rp, escrow]).await;
    let cost = U256::from(pricing().instruction_price);
    assert_eq!(before[0] - after[0], cost, "the job creator pays once");
    assert_eq!(
        after[1] - before[1],
        cost,
        "the resource provider is paid once"
    );
    assert_eq!(after[2], before[2]);
    network.stop().await;
}

/// Twenty `lilypad run` processes with one key (the dev network's job creator) at once, on a
/// running `lilypad dev` network: each has its own nonce manager, and every one gets its job
/// done and its own cow. Half find the network the way `lilypad run` does by itself (its
/// `network.json`), half join it by name, `--network dev`, with the key in a file.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_lilypad_run_processes_with_one_key_all_succeed() {
    let dir = tempfile::tempdir().unwrap();
    let mut options = common::options(&dir.path().join("dev"), lilypad::dev::DevRoles::default());
    options.publish = true;
    let network = common::start(options).await;
    let profile =
        lilypad::profile::Profile::find("dev", dir.path()).expect("dev wrote its profile");
    assert_eq!(profile, network.profile());
    let key = dir.path().join("dev/keys/job-creator.key");
    let runs: Vec<_> = (0..20)
        .map(|n| {
            let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_lilypad"));
            command
                .args(["run", "cowsay:v0.0.1", "-i", &format!("Message=job {n}")])
                .args(["--quiet", "--timeout", "600"])
                .args(common::terms_flags())
                .env_clear()
                .env("PATH", std::env::var_os("PATH").unwrap_or_default())
                .env("HOME", dir.path())
                .env("DATA_DIR", dir.path())
                .env("LOG_LEVEL", "warn")
                .kill_on_drop(true);
            if n % 2 == 1 {
                command
                    .env("LILYPAD_NETWORK", "dev")
                    .env("WEB3_PRIVATE_KEY_FILE", &key);
            }
            command.output()
        })
        .collect();
    let outputs = futures::future::join_all(runs).await;
    for (n, output) in outputs.into_iter().enumerate() {
        let output = output.expect("lilypad run starts");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "run {n}: {stderr}");
        assert!(
            stdout.contains(&format!("< job {n} >")),
            "run {n}: {stdout}"
        );
    }
    network.stop().await;
    assert!(
        lilypad::profile::Profile::find("dev", dir.path()).is_err(),
        "a stopped dev network leaves no profile behind"
    );
}
