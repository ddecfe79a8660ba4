//! A module kept in a real git repository (made by the test, read over `file://`) runs
//! through the whole network: the job creator pins its tag to a commit, the tag then moves,
//! and the resource provider and the mediator still run the pinned commit; the dispute over
//! it settles. A later job naming the tag gets the commit it names now.

mod common;

use common::gitrepo::{module_repo, move_tag};
use common::{cowsay_request, network};
use lilypad::client::SolverClient;
use lilypad::data::DealState;
use lilypad::module::{git::cache_key, GitModules};
use lilypad::run::{follow_job, job_offer, run_job};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_git_module_runs_pinned_everywhere_even_after_its_tag_moves() {
    let dir = tempfile::tempdir().unwrap();
    let (repo, v1, v2) = module_repo(dir.path());
    let url = format!("file://{}", repo.display());
    let network = network(dir.path()).await;
    let chain = network.job_creator_chain().await.unwrap();
    let client = SolverClient::new(&network.solver.url, network.keys.job_creator.clone());

    // The job creator (with a module cache of its own) pins v1, and disputes every result.
    let mut request = cowsay_request(&network, dir.path(), "moo");
    request.module = format!("{url}:v1");
    request.modules = GitModules::new(&dir.path().join("job-creator"));
    request.mediation_chance = 100;
    let offer = job_offer(chain.address(), &request).await.unwrap();
    let source = offer
        .module_source
        .clone()
        .expect("the offer carries the pin");
    assert_eq!(
        (source.repo.as_str(), source.commit.as_str()),
        (url.as_str(), v1.as_str())
    );

    // The tag moves before any node runs the job.
    move_tag(&repo, "v1", &v2);
    let outcome = follow_job(chain.clone(), client.clone(), request.clone(), offer)
        .await
        .unwrap();
    assert_eq!(
        outcome.state,
        DealState::MediationAccepted,
        "{}",
        outcome.settlement
    );
    assert!(outcome.stdout().contains("v1 moo"), "{}", outcome.stdout());
    // The network's roles (RP and mediator share DATA_DIR/modules) checked out v1 only.
    let cached = dir.path().join("modules").join(cache_key(&url).unwrap());
    assert!(cached.join(&v1).is_dir());
    assert!(!cached.join(&v2).exists());

    // A new job naming v1 now runs what v1 names now.
    request.mediation_chance = 0;
    let outcome = run_job(chain, client, request).await.unwrap();
    assert_eq!(
        outcome.state,
        DealState::ResultsAccepted,
        "{}",
        outcome.settlement
    );
    assert!(outcome.stdout().contains("v2 moo"), "{}", outcome.stdout());
    assert!(cached.join(&v2).is_dir());
    network.stop().await;
}
