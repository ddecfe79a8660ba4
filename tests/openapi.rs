//! The solver's API against its own OpenAPI document, by a schema-driven fuzzer: a
//! `lilypad dev` process (after one job, so deals exist) is given schemathesis's generated
//! requests for every operation (examples, coverage, fuzzing and stateful phases, every
//! check): no 500s, every response in the documented schema, status and content type, 405s
//! naming the methods allowed. Needs `schemathesis` on the PATH (`pip install schemathesis`).

mod common;

use common::dev_process::DevProcess;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_solver_answers_as_its_openapi_document_says_under_schemathesis() {
    let dir = tempfile::tempdir().unwrap();
    let dev = DevProcess::start(
        dir.path(),
        &[
            ("EXECUTOR", "noop".to_string()),
            (
                "FAUCET_LISTEN",
                format!("127.0.0.1:{}", common::bacalhau::free_port()),
            ),
        ],
    )
    .await;
    let solver = dev.network.solver_url.clone();

    // The document served is the one in the source tree, and names every endpoint.
    let served = reqwest::get(format!("{solver}/api/v1/openapi.json"))
        .await
        .unwrap();
    assert_eq!(served.status(), 200);
    assert_eq!(
        served.headers()["content-type"].to_str().unwrap(),
        "application/json"
    );
    let document: serde_json::Value = served.json().await.unwrap();
    assert_eq!(
        document,
        serde_json::from_str::<serde_json::Value>(lilypad::solver::api::OPENAPI).unwrap()
    );
    let paths = document["paths"].as_object().unwrap();
    assert_eq!(paths.len(), 14, "{:?}", paths.keys());

    // One job, so that deals, offers and transactions exist to be read.
    let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_lilypad"))
        .args(["run", "cowsay:v0.0.1", "-i", "Message=openapi"])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir.path())
        .env("DATA_DIR", dir.path())
        .env("LILYPAD_NETWORK", "dev")
        .env("WEB3_PRIVATE_KEY_FILE", &dev.network.job_creator_key_file)
        .output()
        .await
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );

    // A wrong method is refused with the ones the path takes.
    let client = reqwest::Client::new();
    let response = client
        .delete(format!("{solver}/api/v1/deals"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
    assert_eq!(response.headers()["allow"], "GET");
    let response = client
        .put(format!("{solver}/api/v1/deals/anything/result"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
    assert_eq!(response.headers()["allow"], "GET, POST");

    let output = tokio::process::Command::new("schemathesis")
        .args([
            "run",
            &format!("{solver}/api/v1/openapi.json"),
            "--checks",
            "all",
            "--max-examples",
            "25",
            "--workers",
            "2",
            "--seed",
            "1",
            "--no-color",
        ])
        .current_dir(dir.path())
        .output()
        .await
        .expect("schemathesis runs (pip install schemathesis)");
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "schemathesis found failures:\n{report}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(report.contains("Tested: 17"), "{report}");
    assert!(!report.contains("failures"), "{report}");
    dev.stop().await;
}
