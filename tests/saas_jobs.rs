//! The SaaS layer's job runner on a real network (anvil, solver, a resource provider on
//! Docker): a user's job is charged once and runs through the network as the service's job
//! creator; a job nothing matches is refunded; a job whose runner stops after its offer was
//! made is followed again by a new runner on the same store and paid for once; a job the
//! account cannot pay for is refused without a charge.

mod common;

use std::time::{Duration, Instant};

use lilypad::client::SolverClient;
use lilypad::saas::runner::{CatalogEntry, Runner, SubmitError};
use lilypad::saas::store::{Job, JobState, Store};
use tokio_util::sync::CancellationToken;

/// Waits (at most 3 minutes) for `job` to be over (done or failed).
async fn wait_over(store: &Store, user: &str, job: &str) -> Job {
    let started = Instant::now();
    loop {
        let now = store.job(user, job).await.unwrap().unwrap();
        if matches!(now.state, JobState::Done | JobState::Failed) {
            return now;
        }
        assert!(
            started.elapsed() < Duration::from_secs(180),
            "job {job} stuck in {:?}: {}",
            now.state,
            now.detail
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn gpu_module(dir: &std::path::Path) -> String {
    common::module_dir(
        &dir.join("needs-a-gpu"),
        r#"{
  "machine": { "gpu": 1, "cpu": 500, "ram": 64 },
  "job": {
    "APIVersion": "V1beta1",
    "Spec": {
      "Docker": { "Entrypoint": ["/bin/true"], "Image": "lilypad/cowsay:v0.0.1" },
      "Engine": "Docker",
      "Outputs": [{ "Name": "outputs", "Path": "/outputs" }],
      "Timeout": 60
    }
  }
}"#,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn jobs_are_charged_once_refunded_when_the_network_does_not_serve_them_and_resumed() {
    let dir = tempfile::tempdir().unwrap();
    let network = common::network(&dir.path().join("dev")).await;
    let store = Store::open(&dir.path().join("saas.db")).await.unwrap();
    let alice = store
        .add_user("alice@example.com", "h")
        .await
        .unwrap()
        .unwrap();
    store.grant(&alice.id, 5).await.unwrap();

    let mut template = common::cowsay_request(&network, dir.path(), "");
    template.timeout = Duration::from_secs(4);
    template.results_dir = dir.path().join("saas-results");
    let gpu = gpu_module(dir.path());
    let catalog = vec![
        CatalogEntry {
            module: "cowsay:v0.0.1".into(),
            title: "Cowsay".into(),
            cost: 1,
            inputs: vec!["Message".into()],
        },
        CatalogEntry {
            module: gpu.clone(),
            title: "Needs a GPU".into(),
            cost: 3,
            inputs: vec![],
        },
    ];
    let chain = network.job_creator_chain().await.unwrap();
    let client = SolverClient::new(&network.solver.url, network.keys.job_creator.clone());
    let runner = |shutdown: CancellationToken| {
        Runner::new(
            store.clone(),
            chain.clone(),
            client.clone(),
            template.clone(),
            catalog.clone(),
            shutdown,
        )
    };
    let first = runner(CancellationToken::new());

    // A cowsay job: charged 1, done, with the cow.
    let inputs = [("Message".to_string(), "moo from the saas".to_string())].into();
    let job = first
        .submit(&alice.id, "cowsay:v0.0.1", inputs)
        .await
        .unwrap();
    let done = wait_over(&store, &alice.id, &job.id).await;
    assert_eq!(done.state, JobState::Done, "{}", done.detail);
    assert!(done.detail["stdout"]
        .as_str()
        .unwrap()
        .contains("moo from the saas"));
    assert_eq!(done.detail["deal_state"], "ResultsAccepted");
    assert_eq!(store.user(&alice.id).await.unwrap().unwrap().credits, 4);

    // Nothing offers a GPU: no match within the timeout, so the 3 credits come back.
    let job = first
        .submit(&alice.id, &gpu, Default::default())
        .await
        .unwrap();
    assert_eq!(store.user(&alice.id).await.unwrap().unwrap().credits, 1);
    let failed = wait_over(&store, &alice.id, &job.id).await;
    assert_eq!(failed.state, JobState::Failed);
    assert!(
        failed.detail["error"]
            .as_str()
            .unwrap()
            .contains("no resource provider took"),
        "{}",
        failed.detail
    );
    assert_eq!(failed.detail["refunded"], 3);
    assert_eq!(store.user(&alice.id).await.unwrap().unwrap().credits, 4);

    // Unknown modules and inputs, and a job the account cannot pay for, are refused.
    assert!(matches!(
        first
            .submit(&alice.id, "sdxl:v0.9", Default::default())
            .await,
        Err(SubmitError::UnknownModule(_))
    ));
    let bad = [("Prompt".to_string(), "x".to_string())].into();
    assert!(matches!(
        first.submit(&alice.id, "cowsay:v0.0.1", bad).await,
        Err(SubmitError::UnknownInput(_))
    ));
    let bob = store
        .add_user("bob@example.com", "h")
        .await
        .unwrap()
        .unwrap();
    let inputs = [("Message".to_string(), "no credits".to_string())].into();
    match first.submit(&bob.id, "cowsay:v0.0.1", inputs).await {
        Err(SubmitError::Credits(why)) => assert!(why.contains("not enough credits"), "{why}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        store.jobs(&bob.id).await.unwrap()[0].state,
        JobState::Refused
    );
    assert!(store.transfers(&bob.id).await.unwrap().is_empty());
    // Alice's jobs are hers alone.
    assert!(store.job(&bob.id, &job.id).await.unwrap().is_none());

    // A runner stopped once the job offer is made; a new one on the same store finishes it.
    let stopping = CancellationToken::new();
    let second = runner(stopping.clone());
    let inputs = [("Message".to_string(), "after a restart".to_string())].into();
    let job = second
        .submit(&alice.id, "cowsay:v0.0.1", inputs)
        .await
        .unwrap();
    // Stopped at once: the job is queued (charged) or offered (its offer kept), never over.
    stopping.cancel();
    let third = runner(CancellationToken::new());
    assert_eq!(
        third.resume().await.unwrap(),
        1,
        "the unfinished job is picked up"
    );
    let done = wait_over(&store, &alice.id, &job.id).await;
    assert_eq!(done.state, JobState::Done, "{}", done.detail);
    assert!(done.detail["stdout"]
        .as_str()
        .unwrap()
        .contains("after a restart"));
    let deal_id = done.detail["deal_id"].as_str().unwrap();
    let deal = client.deal(deal_id).await.unwrap();
    let deals = client
        .deals(&format!("job_offer={}", deal.deal.job_offer.id))
        .await
        .unwrap();
    assert_eq!(deals.len(), 1, "one deal for the resumed job");
    // Every deal the service's key made: one per job that ran (the GPU job made none).
    let all = client
        .deals(&format!("job_creator={:?}", chain.address()))
        .await
        .unwrap();
    assert_eq!(all.len(), 2, "two jobs ran, each in one deal");
    let transfers = store.transfers(&alice.id).await.unwrap();
    let charges = transfers.iter().filter(|t| t.kind == "charge").count();
    assert_eq!(charges, 3, "each job charged once: {transfers:?}");
    assert_eq!(store.user(&alice.id).await.unwrap().unwrap().credits, 3);
    network.stop().await;
}

/// A job whose deal the network refunds (a dishonest resource provider's results, checked by
/// the mediator and rejected) gives the user's credits back.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_job_the_network_refunds_is_refunded() {
    let dir = tempfile::tempdir().unwrap();
    let roles = lilypad::dev::DevRoles {
        dishonest: true,
        ..Default::default()
    };
    let network = common::network_with(&dir.path().join("dev"), roles).await;
    let store = Store::open(&dir.path().join("saas.db")).await.unwrap();
    let alice = store
        .add_user("alice@example.com", "h")
        .await
        .unwrap()
        .unwrap();
    store.grant(&alice.id, 2).await.unwrap();
    let mut template = common::cowsay_request(&network, dir.path(), "");
    // Every result is checked by the mediator, who re-runs the job and sees the lie.
    template.mediation_chance = 100;
    let chain = network.job_creator_chain().await.unwrap();
    let client = SolverClient::new(&network.solver.url, network.keys.job_creator.clone());
    let runner = Runner::new(
        store.clone(),
        chain,
        client,
        template,
        vec![CatalogEntry {
            module: "cowsay:v0.0.1".into(),
            title: "Cowsay".into(),
            cost: 2,
            inputs: vec!["Message".into()],
        }],
        CancellationToken::new(),
    );
    let inputs = [("Message".to_string(), "checked".to_string())].into();
    let job = runner
        .submit(&alice.id, "cowsay:v0.0.1", inputs)
        .await
        .unwrap();
    assert_eq!(store.user(&alice.id).await.unwrap().unwrap().credits, 0);
    let failed = wait_over(&store, &alice.id, &job.id).await;
    assert_eq!(failed.state, JobState::Failed, "{}", failed.detail);
    assert!(
        failed.detail["error"]
            .as_str()
            .unwrap()
            .contains("MediationRejected"),
        "{}",
        failed.detail
    );
    assert_eq!(store.user(&alice.id).await.unwrap().unwrap().credits, 2);
    let kinds: Vec<String> = store
        .transfers(&alice.id)
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.kind)
        .collect();
    assert_eq!(kinds, ["refund", "charge", "grant"]);
    network.stop().await;
}
