//! A resource provider on Bacalhau (`--executor bacalhau`), against a real Bacalhau node
//! (orchestrator and compute, `make tools`) running containers on the local Docker engine:
//! cowsay paid to the wei with its results fetched from kubo by CID; a mediator on the
//! Docker executor agreeing with the Bacalhau RP's results; Bacalhau down at start (a clear
//! preflight error), too small for the offer, killed mid-job (the RP submits nothing it
//! does not have, and recovers), and a deal that ends while its job runs (the job stops).

mod common;

use std::path::Path;
use std::time::Duration;

use common::bacalhau::{self, Bacalhau, Registry};
use common::kubo::Kubo;
use common::*;
use ethers::types::U256;
use lilypad::client::SolverClient;
use lilypad::config::Settings;
use lilypad::data::DealState;
use lilypad::dev::{DevNetwork, DevRoles};
use lilypad::executor::AnyExecutor;
use lilypad::run::run_job;
use tokio_util::sync::CancellationToken;

const COST: u128 = 3 * LP;
const M: u128 = LP;

/// A dev network whose mediator runs on Docker and which has no RP of its own; returns it
/// with its settings (the tests start a Bacalhau RP from them).
async fn network_without_an_rp(dir: &Path) -> (DevNetwork, Settings) {
    let roles = DevRoles {
        resource_provider: false,
        ..DevRoles::default()
    };
    let options = common::options(dir, roles);
    let settings = options.settings.clone();
    (common::start(options).await, settings)
}

/// Starts the network's resource provider on Bacalhau at `api` (results also added to
/// `ipfs` when given); cancel the token to stop it.
async fn start_bacalhau_rp(
    network: &DevNetwork,
    settings: &Settings,
    api: &str,
    ipfs: Option<&str>,
) -> CancellationToken {
    let mut settings = settings.clone();
    settings.executor = "bacalhau".into();
    settings.bacalhau_api_host = api.to_string();
    settings.ipfs_connect = ipfs.map(str::to_string);
    let executor = AnyExecutor::for_resource_provider(&settings)
        .await
        .expect("the Bacalhau RP connects");
    assert!(
        executor.describe().await.starts_with("Bacalhau v1."),
        "{}",
        executor.describe().await
    );
    let rp_settings =
        lilypad::rp::RpSettings::from_settings(&settings, network.services.clone()).unwrap();
    let chain = network
        .chain_as(&network.keys.resource_provider)
        .await
        .unwrap();
    let client = SolverClient::new(&network.solver.url, network.keys.resource_provider.clone());
    let stop = CancellationToken::new();
    let token = stop.clone();
    tokio::spawn(async move {
        lilypad::rp::run(chain, client, executor, rp_settings, token)
            .await
            .expect("the Bacalhau RP runs")
    });
    stop
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_bacalhau_rp_is_paid_its_results_travel_by_ipfs_and_a_docker_mediator_agrees() {
    let dir = tempfile::tempdir().unwrap();
    let mut registry = Registry::start(&dir.path().join("registry"));
    registry.push("lilypad/cowsay:v0.0.1");
    registry.push(bacalhau::busybox_image());
    let kubo = Kubo::start(&dir.path().join("kubo"));
    // The compute node reads jobs' IPFS inputs from the same kubo.
    let ipfs_endpoint = format!("InputSources.Types.IPFS.Endpoint={}", kubo.api);
    let node = Bacalhau::start_with(&dir.path().join("bacalhau"), "2", &[&ipfs_endpoint]);
    let (network, settings) = network_without_an_rp(&dir.path().join("dev")).await;
    let rp = start_bacalhau_rp(&network, &settings, &node.api, Some(&kubo.api)).await;
    let chain = network.job_creator_chain().await.unwrap();
    let client = SolverClient::new(&network.solver.url, network.keys.job_creator.clone());
    let who = parties(&network);

    // Accepted: the cost moves from JC to RP and nothing else; the job creator read the
    // results from kubo by the CID committed on chain.
    let before = balances(&chain, &who).await;
    let mut request = cowsay_request(&network, dir.path(), "on bacalhau");
    request.ipfs = Some(lilypad::results::ipfs::Ipfs::new(&kubo.api).unwrap());
    let outcome = run_job(chain.clone(), client.clone(), request)
        .await
        .expect("the job completes on Bacalhau");
    assert_eq!(outcome.state, DealState::ResultsAccepted);
    let results = outcome.results.clone().expect("results");
    assert!(
        results.stdout.contains("< on bacalhau >"),
        "{}",
        results.stdout
    );
    assert_eq!(results.source, format!("IPFS at {}", kubo.api));
    let out = dir.path().join("from-ipfs.tar");
    kubo.run(&["get", &results.cid, "-o", out.to_str().unwrap()]);
    assert_eq!(
        std::fs::read(&out).unwrap(),
        client.download_files(&outcome.deal_id).await.unwrap(),
        "`ipfs get CID` returns the committed results"
    );
    let after = balances(&chain, &who).await;
    let cost = i128::try_from(COST).unwrap();
    assert_eq!(signed_changes(&before, &after), vec![-cost, cost, 0, 0, 0]);
    assert!(
        node.jobs()
            .iter()
            .any(|(name, state)| name.starts_with("lilypad-") && state == "Completed"),
        "the job ran on Bacalhau: {:?}",
        node.jobs()
    );

    // Disputed: the mediator re-runs the job on Docker, gets the same results CID, accepts.
    let before = after;
    let mut request = cowsay_request(&network, &dir.path().join("checked"), "checked");
    request.mediation_chance = 100;
    let outcome = run_job(chain.clone(), client.clone(), request)
        .await
        .expect("the checked job ends");
    assert_eq!(outcome.state, DealState::MediationAccepted);
    assert!(outcome.disputed.is_some());
    let after = balances(&chain, &who).await;
    let fee = i128::try_from(M).unwrap();
    assert_eq!(
        signed_changes(&before, &after),
        vec![-(cost + fee), cost, fee, 0, 0]
    );
    assert_eq!(after[4], U256::zero(), "escrow holds nothing");

    // A module with IPFS inputs: Bacalhau's compute node fetches them and mounts them.
    let (module, expected) = common::kubo::reader_module(&kubo, &dir.path().join("reader"));
    let mut request = cowsay_request(&network, &dir.path().join("reader-job"), "");
    request.module = module;
    request.inputs.clear();
    let outcome = run_job(chain.clone(), client.clone(), request)
        .await
        .expect("the job with inputs completes on Bacalhau");
    assert_eq!(outcome.state, DealState::ResultsAccepted);
    let results = outcome.results.expect("results");
    assert_eq!(results.stdout, expected);
    assert_eq!(
        std::fs::read_to_string(results.dir.join("outputs/greeting")).unwrap(),
        "hello from ipfs\n"
    );
    rp.cancel();
    network.stop().await;
}

/// `lilypad rp --preflight` on Bacalhau at `api` with `extra` settings: (passed, stdout).
async fn preflight(
    network: &DevNetwork,
    dir: &Path,
    api: &str,
    extra: &[(&str, &str)],
) -> (bool, String) {
    let mut env = vec![("EXECUTOR", "bacalhau"), ("BACALHAU_API_HOST", api)];
    env.extend_from_slice(extra);
    let (passed, table, _) = preflight_output(rp_command(network, dir, &env)).await;
    (passed, table)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bacalhau_down_or_too_small_is_a_clear_error_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let (network, _) = network_without_an_rp(&dir.path().join("dev")).await;

    // Nothing listens there: the preflight says so, and `lilypad rp` refuses to start.
    let nowhere = format!("127.0.0.1:{}", bacalhau::free_port());
    let (passed, table) = preflight(&network, dir.path(), &nowhere, &[]).await;
    assert!(!passed, "{table}");
    let engine = row(&table, "engine");
    assert!(engine.contains("FAIL"), "{engine}");
    assert!(
        engine.contains(&format!("Bacalhau is not reachable at http://{nowhere}"))
            && engine.contains("BACALHAU_API_HOST"),
        "{engine}"
    );
    let started = rp_command(
        &network,
        dir.path(),
        &[("EXECUTOR", "bacalhau"), ("BACALHAU_API_HOST", &nowhere)],
    )
    .output();
    let output = tokio::time::timeout(Duration::from_secs(60), started)
        .await
        .expect("lilypad rp gives up at once")
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("Bacalhau is not reachable"), "{stderr}");

    // Up, and big enough: the engine row names it. Asked for more than any node has: refused.
    let node = Bacalhau::start(&dir.path().join("bacalhau"), "2");
    let (_, table) = preflight(&network, dir.path(), &node.api, &[]).await;
    let engine = row(&table, "engine");
    assert!(
        engine.contains("ok")
            && engine.contains("Bacalhau v1.9.3")
            && engine.contains("1 compute node"),
        "{engine}"
    );
    let (passed, table) =
        preflight(&network, dir.path(), &node.api, &[("OFFER_CPU", "64000")]).await;
    assert!(!passed);
    let engine = row(&table, "engine");
    assert!(
        engine.contains("FAIL") && engine.contains("no compute node is that large"),
        "{engine}"
    );
    network.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bacalhau_killed_mid_job_loses_nothing_and_an_ended_deal_stops_its_job() {
    let dir = tempfile::tempdir().unwrap();
    let mut registry = Registry::start(&dir.path().join("registry"));
    registry.push(bacalhau::busybox_image());
    let mut node = Bacalhau::start(&dir.path().join("bacalhau"), "2");
    let (network, settings) = network_without_an_rp(&dir.path().join("dev")).await;
    let rp = start_bacalhau_rp(&network, &settings, &node.api, None).await;
    let chain = network.job_creator_chain().await.unwrap();
    let client = SolverClient::new(&network.solver.url, network.keys.job_creator.clone());
    let who = parties(&network);

    // Bacalhau dies while the job runs and comes back: the RP submits nothing meanwhile,
    // runs the job again, and is paid for the real results.
    let slow = bacalhau::shell_module(
        &dir.path().join("slow-module"),
        "sleep 4; echo slept > /outputs/note; echo done sleeping",
        120,
    );
    let before = balances(&chain, &who).await;
    let mut request = cowsay_request(&network, &dir.path().join("slow"), "");
    request.module = slow;
    request.inputs.clear();
    let job = tokio::spawn(run_job(chain.clone(), client.clone(), request));
    tokio::task::block_in_place(|| {
        node.wait_for_jobs("a job running", |jobs| {
            jobs.iter().any(|(_, s)| s == "Running")
        })
    });
    node.kill();
    // Longer than the executor waits for an engine to come back: the run fails as an
    // engine failure, and the RP tries again until the restarted node takes the job.
    tokio::time::sleep(Duration::from_secs(12)).await;
    tokio::task::block_in_place(|| node.restart());
    let outcome = job
        .await
        .unwrap()
        .expect("the job completes after Bacalhau's restart");
    assert_eq!(outcome.state, DealState::ResultsAccepted);
    let results = outcome.results.clone().expect("results");
    assert_eq!(
        results.stdout, "done sleeping\n",
        "the real results, not a failure"
    );
    let jobs = node.jobs();
    assert!(
        jobs.len() >= 2 && jobs.iter().any(|(_, state)| state == "Completed"),
        "the job was submitted again after the failure: {jobs:?}"
    );
    let after = balances(&chain, &who).await;
    let cost = i128::try_from(COST).unwrap();
    assert_eq!(signed_changes(&before, &after), vec![-cost, cost, 0, 0, 0]);

    // The deal ends (its submit deadline passes and the job creator calls the timeout)
    // while the job still runs: the RP stops the job on Bacalhau.
    let endless = bacalhau::shell_module(&dir.path().join("endless-module"), "sleep 3000", 3000);
    let mut request = cowsay_request(&network, &dir.path().join("endless"), "");
    request.module = endless;
    request.inputs.clear();
    let earlier: Vec<String> = node.jobs().into_iter().map(|(name, _)| name).collect();
    let job = tokio::spawn(run_job(chain.clone(), client.clone(), request));
    let new_job = |jobs: &[(String, String)], state: &str| {
        jobs.iter()
            .any(|(name, s)| s == state && !earlier.contains(name))
    };
    tokio::task::block_in_place(|| {
        node.wait_for_jobs("the new job running", |jobs| new_job(jobs, "Running"))
    });
    advance_chain_time(&network, timeouts().submit_results + 1).await;
    let outcome = job.await.unwrap().expect("the job creator ends the deal");
    assert_eq!(outcome.state, DealState::TimeoutSubmitResults);
    tokio::task::block_in_place(|| {
        node.wait_for_jobs("the new job stopped", |jobs| new_job(jobs, "Stopped"))
    });
    rp.cancel();
    network.stop().await;
}
