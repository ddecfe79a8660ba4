//! The Docker executor against the real engine: a job's output and exit code, its timeout,
//! and GPU jobs carrying NVIDIA device requests. (No NVIDIA GPU or runtime exists on these
//! machines: a STAND-IN card stands for what `nvidia-smi` would report, and the engine
//! refuses the request with the same error `docker run --gpus 1` gives; that it gets that
//! far shows the request was made.)

use std::time::Instant;

use lilypad::executor::docker::DockerExecutor;
use lilypad::executor::{Executor, ExecutorError};
use lilypad::module::resolve;

fn cowsay(message: &str) -> lilypad::module::JobSpec {
    resolve(
        "cowsay:v0.0.1",
        None,
        &[("Message".to_string(), message.to_string())].into(),
        &lilypad::module::GitModules::new(&std::env::temp_dir()),
    )
    .unwrap()
}

#[tokio::test]
async fn a_job_runs_in_the_sandbox_and_writes_its_outputs() {
    let executor = DockerExecutor::connect(false)
        .await
        .expect("a Docker engine (make images starts one)");
    let dir = tempfile::tempdir().unwrap();
    let output = executor
        .run(&cowsay("sandboxed"), &dir.path().join("outputs"), 0)
        .await
        .unwrap();
    assert_eq!(output.exit_code, 0);
    assert!(String::from_utf8_lossy(&output.stdout).contains("< sandboxed >"));
    assert_eq!(
        std::fs::read(dir.path().join("outputs/cow.txt")).unwrap(),
        output.stdout
    );
}

#[tokio::test]
async fn a_failing_job_reports_its_exit_code_and_a_slow_one_is_killed() {
    let executor = DockerExecutor::connect(false).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut missing = cowsay("x");
    missing.entrypoint = vec!["/no/such/binary".into()];
    let error = executor.run(&missing, &dir.path().join("a"), 0).await;
    // The engine refuses to start a missing entrypoint: an error, not a hang or a panic.
    assert!(error.is_err() || error.as_ref().unwrap().exit_code != 0);

    // A zero-second limit is over before the container can finish: it is killed and removed.
    let mut slow = cowsay("x");
    slow.timeout_secs = 0;
    let started = Instant::now();
    let result = executor.run(&slow, &dir.path().join("b"), 0).await;
    assert!(started.elapsed().as_secs() < 30);
    assert!(
        matches!(result, Err(ExecutorError::Timeout(0))),
        "{result:?}"
    );
}

#[tokio::test]
async fn gpu_jobs_ask_the_engine_for_nvidia_devices() {
    let stand_in = lilypad::executor::gpus::Gpu {
        index: 0,
        uuid: "GPU-00000000-1111-2222-3333-444444444444".into(),
        name: "STAND-IN for an NVIDIA card".into(),
        memory_mib: 81559,
    };
    let executor = DockerExecutor::connect(false)
        .await
        .unwrap()
        .with_gpus(vec![stand_in]);
    let dir = tempfile::tempdir().unwrap();
    let error = executor
        .run(&cowsay("gpu"), &dir.path().join("outputs"), 1)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("could not select device driver") && error.contains("nvidia"),
        "{error}"
    );
    // More GPUs than the host has: refused before the engine is asked.
    let error = executor
        .run(&cowsay("gpu"), &dir.path().join("outputs"), 2)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("the job needs 2 GPU(s); this host has 1"),
        "{error}"
    );
}

/// The container gets the slot the RP sold, not the module's `machine`: a module declaring
/// 1 MiB of RAM (less than any container needs; the engine refuses limits under 6 MiB) still
/// runs, within the slot's 100 MiB.
#[tokio::test]
async fn a_job_runs_with_the_slot_it_was_sold_not_the_modules_declared_machine() {
    use lilypad::data::{examples, ContentAddressed, Deal};
    let executor = DockerExecutor::connect(false).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let module_dir = dir.path().join("tiny-module");
    std::fs::create_dir_all(&module_dir).unwrap();
    let template = lilypad::module::template_of(
        "cowsay:v0.0.1",
        None,
        &lilypad::module::GitModules::new(dir.path()),
    )
    .unwrap()
    .replace(r#""ram": 64"#, r#""ram": 1"#);
    assert!(template.contains(r#""ram": 1"#));
    std::fs::write(module_dir.join("lilypad_module.json.tmpl"), template).unwrap();

    let mut job = examples::job_offer(1, 5, 500);
    job.module = module_dir.display().to_string();
    job.spec.ram = 1;
    let deal = Deal::propose(&job.seal(), &examples::resource_offer(2, 3, 1000), 0).unwrap();
    assert_eq!(deal.resource_offer.spec.ram, 100);
    let results = dir.path().join("results");
    let modules = lilypad::module::GitModules::new(dir.path());
    let run = lilypad::executor::deal_job::run_deal_job(
        &executor,
        &deal,
        Some(&deal.resource_offer.spec),
        &results,
        &modules,
    )
    .await
    .unwrap();
    let stderr = std::fs::read_to_string(results.join("stderr")).unwrap();
    assert_eq!(run.exit_code, 0, "{stderr}");
    assert_eq!(run.engine_failure, None);
    let stdout = std::fs::read_to_string(results.join("stdout")).unwrap();
    assert!(stdout.contains("< moo >"), "{stdout}");
}
