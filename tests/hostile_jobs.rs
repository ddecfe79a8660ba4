//! Hostile jobs on the real Docker engine, each a busybox script (a test image built from the
//! host's static busybox): a fork bomb, memory past the slot's limit, filling /outputs and
//! /tmp, 100 MB on stdout, reaching for a network, sleeping past the timeout. Each is stopped
//! or contained, its results are capped as documented, the engine keeps serving, and nothing
//! is left behind (no container, no volume, no staged file). Then the same through a resource
//! provider: after a hostile job it still serves an honest one.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::bacalhau::{busybox_image, docker, shell_module};
use lilypad::executor::docker::{DockerExecutor, MAX_LOG_BYTES, MAX_OUTPUTS_BYTES};
use lilypad::executor::{Executor, ExecutorError, RunOutput};
use lilypad::module::{GitModules, JobSpec};

/// The job `script` describes, in a slot of 1 CPU and `ram_mb` of memory, `timeout_secs` long.
fn job(dir: &Path, script: &str, ram_mb: u64, timeout_secs: u64) -> JobSpec {
    let module = shell_module(dir, script, timeout_secs);
    let mut spec =
        lilypad::module::resolve(&module, None, &Default::default(), &GitModules::new(dir))
            .unwrap();
    spec.machine.cpu = 1000;
    spec.machine.ram = ram_mb;
    spec
}

async fn run(
    executor: &DockerExecutor,
    dir: &Path,
    script: &str,
    ram_mb: u64,
    timeout_secs: u64,
) -> (Result<RunOutput, ExecutorError>, Duration) {
    let spec = job(&dir.join("module"), script, ram_mb, timeout_secs);
    let started = Instant::now();
    let output = executor.run(&spec, &dir.join("outputs"), 0).await;
    (output, started.elapsed())
}

/// The containers our runs left (every run labels its container).
fn our_containers() -> String {
    docker(&["ps", "-aq", "--filter", "label=org.lilypad.run"])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_jobs_are_contained_capped_and_cleaned_up() {
    busybox_image();
    let executor = DockerExecutor::connect(false)
        .await
        .expect("a Docker engine (make images starts one)");
    let dir = tempfile::tempdir().unwrap();
    let volumes_before = docker(&["volume", "ls", "-q"]);

    // A fork bomb: the pids limit holds it; the timeout ends it. The shell then becomes
    // `sleep` with exec, which needs no fork: a plain `sleep` could itself fail to fork
    // once the bomb has taken every pid and the slot's memory, and end the job early.
    let (bomb, took) = run(
        &executor,
        &dir.path().join("bomb"),
        "bomb() { bomb | bomb & }; bomb; exec sleep 60",
        256,
        5,
    )
    .await;
    assert!(matches!(bomb, Err(ExecutorError::Timeout(5))), "{bomb:?}");
    assert!(took < Duration::from_secs(40), "{took:?}");

    // Memory past the slot's 64 MiB: the kernel kills it (137), nothing else suffers.
    let (hog, _) = run(&executor, &dir.path().join("hog"), "tail /dev/zero", 64, 60).await;
    let hog = hog.expect("an out-of-memory job is a result, not an engine failure");
    assert_eq!(hog.exit_code, 137, "killed by the OOM killer");

    // Filling /outputs: stopped at the cap, outputs dropped.
    let (filler, took) = run(
        &executor,
        &dir.path().join("filler"),
        "dd if=/dev/zero of=/outputs/big bs=1M count=1000",
        256,
        120,
    )
    .await;
    assert!(
        matches!(
            filler,
            Err(ExecutorError::OutputsTooLarge(MAX_OUTPUTS_BYTES))
        ),
        "{filler:?}"
    );
    assert!(took < Duration::from_secs(60), "{took:?}");
    assert_eq!(
        std::fs::read_dir(dir.path().join("filler/outputs"))
            .unwrap()
            .count(),
        0,
        "the outputs were dropped"
    );

    // Filling /tmp: its 256 MiB tmpfs runs out; the job sees the error itself.
    let (tmp, _) = run(
        &executor,
        &dir.path().join("tmp"),
        "dd if=/dev/zero of=/tmp/big bs=1M count=400 2>&1; echo status $?",
        512,
        60,
    )
    .await;
    let tmp = tmp.unwrap();
    let said = String::from_utf8_lossy(&tmp.stdout);
    assert!(
        said.contains("No space left on device") && said.contains("status 1"),
        "{said}"
    );

    // 100 MB on stdout: the first MiB is kept.
    let (loud, _) = run(
        &executor,
        &dir.path().join("loud"),
        "head -c 100000000 /dev/zero | tr '\\0' x",
        256,
        120,
    )
    .await;
    let loud = loud.unwrap();
    assert_eq!(loud.exit_code, 0);
    assert_eq!(loud.stdout.len(), MAX_LOG_BYTES);
    assert!(loud.stdout.iter().all(|b| *b == b'x'));

    // A network: the container has none but loopback, so nothing can be reached.
    let (net, _) = run(
        &executor,
        &dir.path().join("net"),
        "cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d ' '",
        256,
        60,
    )
    .await;
    assert_eq!(String::from_utf8_lossy(&net.unwrap().stdout), "lo\n");

    // Sleeping past the timeout.
    let (sleeper, took) = run(&executor, &dir.path().join("sleeper"), "sleep 600", 256, 2).await;
    assert!(
        matches!(sleeper, Err(ExecutorError::Timeout(2))),
        "{sleeper:?}"
    );
    assert!(took < Duration::from_secs(30), "{took:?}");

    // The engine still serves, and the host is clean.
    let (fine, _) = run(&executor, &dir.path().join("fine"), "echo fine", 64, 60).await;
    assert_eq!(fine.unwrap().stdout, b"fine\n");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(our_containers(), "", "no container is left behind");
    assert_eq!(
        docker(&["volume", "ls", "-q"]),
        volumes_before,
        "no volume is left behind"
    );
}

/// Through a resource provider: a job that fills its outputs is settled with results that
/// say so, and the RP then serves an honest job.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_resource_provider_survives_a_hostile_job_and_serves_the_next() {
    use lilypad::data::DealState;
    busybox_image();
    let dir = tempfile::tempdir().unwrap();
    let network = common::network(&dir.path().join("dev")).await;
    let chain = network.job_creator_chain().await.unwrap();
    let client =
        lilypad::client::SolverClient::new(&network.solver.url, network.keys.job_creator.clone());

    let mut request = common::cowsay_request(&network, &dir.path().join("hostile"), "");
    request.module = shell_module(
        &dir.path().join("filler"),
        "dd if=/dev/zero of=/outputs/big bs=1M count=1000",
        120,
    );
    request.inputs.clear();
    let outcome = lilypad::run::run_job(chain.clone(), client.clone(), request)
        .await
        .expect("the hostile job is settled");
    assert_eq!(outcome.state, DealState::ResultsAccepted);
    let results = outcome.results.expect("results");
    assert_eq!(results.exit_code, Some(-1));
    let stderr = std::fs::read_to_string(results.dir.join("stderr")).unwrap();
    assert!(stderr.contains("wrote more than"), "{stderr}");

    let outcome = lilypad::run::run_job(
        chain,
        client,
        common::cowsay_request(&network, &dir.path().join("honest"), "still here"),
    )
    .await
    .expect("the next job completes");
    assert_eq!(outcome.state, DealState::ResultsAccepted);
    assert!(outcome.results.unwrap().stdout.contains("< still here >"));
    network.stop().await;
}

/// A role killed with SIGKILL mid-job cannot remove its container; the same role started
/// again (same data directory, so the same owner label) removes it before taking any job,
/// and leaves other roles' containers alone.
#[tokio::test]
async fn containers_a_killed_role_left_running_are_removed_when_it_starts_again() {
    let image = busybox_image();
    let dir = tempfile::tempdir().unwrap();
    let (ours, theirs) = (dir.path().join("rp"), dir.path().join("mediator"));
    let owner = |role_dir: &Path| {
        format!(
            "{}={}",
            lilypad::executor::docker::OWNER_LABEL,
            lilypad::executor::docker::owner_of(role_dir)
        )
    };
    // What the killed processes left: a job still running, one labelled by another role.
    let left = docker(&["run", "-d", "--label", &owner(&ours), image, "sleep", "300"]);
    let other = docker(&[
        "run",
        "-d",
        "--label",
        &owner(&theirs),
        image,
        "sleep",
        "300",
    ]);
    let listed = |label: &str| {
        docker(&[
            "ps",
            "-aq",
            "--no-trunc",
            "--filter",
            &format!("label={label}"),
        ])
    };
    assert!(
        left.starts_with(&listed(&owner(&ours))),
        "the leftover runs"
    );

    let executor = DockerExecutor::connect(false)
        .await
        .expect("a Docker engine (make images starts one)")
        .with_owner(lilypad::executor::docker::owner_of(&ours));
    assert_eq!(executor.remove_leftovers().await, 1);
    assert_eq!(listed(&owner(&ours)), "", "the leftover is gone");
    assert_eq!(
        listed(&owner(&theirs)),
        other,
        "another role's job is left alone"
    );
    assert_eq!(
        executor.remove_leftovers().await,
        0,
        "nothing more to remove"
    );
    docker(&["rm", "-f", &other]);
}
