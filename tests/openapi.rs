//! The solver's and the SaaS service's APIs against their own OpenAPI documents, by a
//! schema-driven fuzzer: a `lilypad dev` process is given schemathesis's generated requests
//! for every operation (examples, coverage, fuzzing and stateful phases, every check): no
//! 500s, every response in the documented schema, status and content type, 405s naming the
//! methods allowed. Needs `schemathesis` on the PATH (`pip install schemathesis`).

mod common;

use common::dev_process::DevProcess;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_solver_answers_as_its_openapi_document_says_under_schemathesis() {
    let dir = tempfile::tempdir().unwrap();
    let dev = DevProcess::start(dir.path(), &[("EXECUTOR", "noop".to_string())]).await;
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

    let report = schemathesis(dir.path(), &format!("{solver}/api/v1/openapi.json"), &[]).await;
    assert!(report.contains("Tested: 17"), "{report}");
    dev.stop().await;
}

/// Runs schemathesis on the document at `url` with every check (and `extra` arguments);
/// fails on any failure; returns its report.
async fn schemathesis(dir: &std::path::Path, url: &str, extra: &[&str]) -> String {
    let output = tokio::process::Command::new("schemathesis")
        .args([
            "run",
            url,
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
        .args(extra)
        .current_dir(dir)
        .output()
        .await
        .expect("schemathesis runs (pip install schemathesis)");
    let report = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "schemathesis found failures:\n{report}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(!report.contains("failures"), "{report}");
    report
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_saas_api_answers_as_its_openapi_document_says_under_schemathesis() {
    let dir = tempfile::tempdir().unwrap();
    let dev = DevProcess::start(dir.path(), &[("EXECUTOR", "noop".to_string())]).await;
    let saas = dev.url("saas").to_string();
    // An account with credits and an API key, so that the fuzzer reaches past sign-in.
    let http = reqwest::Client::new();
    let signed_up = http
        .post(format!("{saas}/api/v1/signup"))
        .json(&serde_json::json!({"email": "fuzz@example.com", "password": "long enough"}))
        .send()
        .await
        .unwrap();
    assert_eq!(signed_up.status(), 201);
    let cookie = signed_up.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let account: serde_json::Value = signed_up.json().await.unwrap();
    let created: serde_json::Value = http
        .post(format!("{saas}/api/v1/api_keys"))
        .header("cookie", cookie)
        .header("x-csrf-token", account["csrf"].as_str().unwrap())
        .json(&serde_json::json!({"name": "fuzzer"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = created["key"].as_str().unwrap();
    let granted = std::process::Command::new(env!("CARGO_BIN_EXE_lilypad"))
        .args(["saas", "grant", "fuzz@example.com", "100"])
        .env("DATA_DIR", dir.path().join("dev"))
        .output()
        .unwrap();
    assert!(granted.status.success());

    // positive_data_acceptance is left out: a job's module must be in the catalog and its
    // inputs the module's, which the document cannot list (the catalog is the operator's).
    let report = schemathesis(
        dir.path(),
        &format!("{saas}/api/v1/openapi.json"),
        &[
            "--header",
            &format!("Authorization: Bearer {key}"),
            "--exclude-checks",
            "positive_data_acceptance",
        ],
    )
    .await;
    assert!(report.contains("Tested: 13"), "{report}");
    dev.stop().await;
}
