//! The web roles in a real browser (Debian's headless Chromium over the DevTools protocol)
//! against a `lilypad dev` process: what a person does on each page, checked on the page,
//! on chain, and in a screenshot of each page under `target/screenshots/`.

mod common;

use common::browser::{click, fill, screenshot, wait_for_text, Chromium};
use common::dev_process::DevProcess;
use ethers::signers::Signer;
use ethers::types::U256;

/// The class attribute of the element at `selector`.
async fn class_of(page: &chromiumoxide::Page, selector: &str) -> Option<String> {
    page.find_element(selector)
        .await
        .unwrap()
        .attribute("class")
        .await
        .unwrap()
}

/// A 1x1 red PNG.
const PICTURE: &[u8] = &[
    137, 80, 78, 71, 13, 10, 26, 10, 0, 0, 0, 13, 73, 72, 68, 82, 0, 0, 0, 1, 0, 0, 0, 1, 8, 2, 0,
    0, 0, 144, 119, 83, 222, 0, 0, 0, 12, 73, 68, 65, 84, 120, 156, 99, 248, 207, 192, 0, 0, 3, 1,
    1, 0, 201, 254, 146, 239, 0, 0, 0, 0, 73, 69, 78, 68, 174, 66, 96, 130,
];

const ETH: u128 = 1_000_000_000_000_000_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_claims_from_the_faucet_page_once_and_is_told_to_wait_the_second_time() {
    let dir = tempfile::tempdir().unwrap();
    let dev = DevProcess::start(dir.path(), &[("EXECUTOR", "noop".to_string())]).await;
    let reader = lilypad::chain::Chain::connect(
        &dev.network.rpc_url,
        lilypad::keys::generate(),
        dev.network.deployment.controller,
        std::time::Duration::from_millis(50),
    )
    .await
    .unwrap();
    let claimant = lilypad::keys::generate();
    let address = lilypad::keys::address_of(&claimant);

    let chromium = Chromium::launch().await;
    let page = chromium.open(dev.url("faucet")).await;
    // The page reads the payout from /api/info.
    let payout = wait_for_text(&page, "#payout", |t| t.contains("ETH")).await;
    assert_eq!(payout, "1 ETH and 100 LP");
    assert_eq!(
        wait_for_text(&page, "#period", |t| t != "…").await,
        "1 day(s)"
    );
    screenshot(&page, "faucet").await;

    fill(&page, "#address", &address).await;
    click(&page, "#submit").await;
    let said = wait_for_text(&page, "#result", |t| !t.is_empty()).await;
    assert!(
        said.starts_with(&format!("Sent 1 ETH and 100 LP to {address}")),
        "{said}"
    );
    assert_eq!(class_of(&page, "#result").await.as_deref(), Some("ok"));
    screenshot(&page, "faucet-claimed").await;
    let paid = common::holdings(&reader, claimant.address()).await;
    assert_eq!(paid, (U256::from(ETH), U256::from(100 * ETH)));

    // Again: refused, with the wait, and nothing more paid.
    click(&page, "#submit").await;
    let said = wait_for_text(&page, "#result", |t| t.contains("wait")).await;
    assert!(
        said.contains(&format!("address {address} claimed already; wait 86")),
        "{said}"
    );
    assert_eq!(class_of(&page, "#result").await.as_deref(), Some("error"));
    screenshot(&page, "faucet-refused").await;
    assert_eq!(common::holdings(&reader, claimant.address()).await, paid);
    chromium.close().await;
    dev.stop().await;
}

/// Signs up on the page, gets credits from the operator, runs cowsay from the modules page
/// and watches its state change on the job page until the cow shows; makes an API key on
/// the account page and submits with it from a program; stdout holding HTML stays text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_signs_up_runs_cowsay_from_the_modules_page_and_sees_the_cow() {
    let dir = tempfile::tempdir().unwrap();
    // The catalog: cowsay, and a module that draws a picture (a stand-in for a GPU image
    // module: no GPU here) with busybox.
    let script = format!(
        "printf '{}' > /outputs/picture.png",
        PICTURE
            .iter()
            .map(|b| format!("\\{b:03o}"))
            .collect::<String>()
    );
    let picture = common::bacalhau::shell_module(&dir.path().join("picture"), &script, 60);
    let catalog = dir.path().join("catalog.json");
    std::fs::write(
        &catalog,
        serde_json::json!([
            {"module": "cowsay:v0.0.1", "title": "Cowsay", "cost": 1, "inputs": ["Message"]},
            {"module": picture, "title": "A picture", "cost": 2, "inputs": []},
        ])
        .to_string(),
    )
    .unwrap();
    let dev = DevProcess::start(
        dir.path(),
        &[("SAAS_CATALOG", catalog.display().to_string())],
    )
    .await;
    let saas = dev.url("saas").to_string();
    let chromium = Chromium::launch().await;
    let page = chromium.open(&saas).await;

    // Signing up lands on the modules page, with no credits yet.
    wait_for_text(&page, "#signup", |t| t == "Create an account").await;
    screenshot(&page, "saas-sign-in").await;
    fill(&page, "#email", "dana@example.com").await;
    fill(&page, "#password", "a long password").await;
    click(&page, "#signup").await;
    let who = wait_for_text(&page, "#who", |t| t.contains("credits")).await;
    assert_eq!(who, "Signed in as dana@example.com (0 credits)");
    wait_for_text(&page, ".tile strong", |t| t.starts_with("Cowsay")).await;
    let granted = std::process::Command::new(env!("CARGO_BIN_EXE_lilypad"))
        .args(["saas", "grant", "dana@example.com", "5"])
        .env("DATA_DIR", dir.path().join("dev"))
        .output()
        .unwrap();
    assert!(granted.status.success());
    page.reload().await.unwrap();
    wait_for_text(&page, "#who", |t| t.ends_with("(5 credits)")).await;
    screenshot(&page, "saas-modules").await;

    // Run cowsay; the job page follows its state live until the cow is there.
    fill(&page, "#input-0-Message", "hello from chromium").await;
    click(&page, "#run-0").await;
    let first = wait_for_text(&page, "#job-state", |t| !t.is_empty()).await;
    assert!(
        first == "queued" || first == "offered",
        "the page opened on {first}"
    );
    wait_for_text(&page, "#job-state", |t| t == "done").await;
    let stdout = wait_for_text(&page, "#stdout", |t| !t.is_empty()).await;
    assert!(
        stdout.contains("hello from chromium") && stdout.contains("(oo)"),
        "{stdout}"
    );
    wait_for_text(&page, "#who", |t| t.ends_with("(4 credits)")).await;
    screenshot(&page, "saas-job").await;

    // The account page: credits, the charge, and a new API key shown once.
    click(&page, "#nav-account").await;
    assert_eq!(
        wait_for_text(&page, "#credits", |t| !t.is_empty()).await,
        "4"
    );
    let ledger = wait_for_text(&page, "#transactions", |t| t.contains("charge")).await;
    assert!(
        ledger.contains("grant") && ledger.contains("-1"),
        "{ledger}"
    );
    click(&page, "#create-key").await;
    let key = wait_for_text(&page, "#secret", |t| t.starts_with("lp-")).await;
    screenshot(&page, "saas-account").await;

    // A program submits with the key; HTML in the input comes back as text.
    let html = "<img src=x onerror=alert(1)>";
    let output = std::process::Command::new("curl")
        .args([
            "--silent",
            "--fail-with-body",
            "--header",
            &format!("Authorization: Bearer {key}"),
            "--json",
            &serde_json::json!({"module": "cowsay:v0.0.1", "inputs": {"Message": html}})
                .to_string(),
            &format!("{saas}/api/v1/jobs?wait=120"),
        ])
        .output()
        .expect("curl runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    let job: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(job["state"], "done");

    // Both jobs are listed, done; the second's page shows the HTML as text.
    click(&page, "#nav-jobs").await;
    let listed = wait_for_text(&page, "#jobs", |t| t.matches("done").count() == 2).await;
    assert_eq!(listed.matches("cowsay:v0.0.1").count(), 2, "{listed}");
    screenshot(&page, "saas-jobs").await;
    let id = job["id"].as_str().unwrap();
    page.goto(format!("{saas}/jobs/{id}")).await.unwrap();
    let stdout = wait_for_text(&page, "#stdout", |t| !t.is_empty()).await;
    assert!(stdout.contains(html), "{stdout}");
    assert!(
        page.find_elements("#stdout img").await.unwrap().is_empty(),
        "no element was made from the job's output"
    );
    screenshot(&page, "saas-job-html").await;

    // The picture module, from the modules page: its output is shown in the page, and
    // downloads as the bytes the job wrote; nothing outside the job's files is served.
    click(&page, "#nav-modules").await;
    wait_for_text(&page, "#run-1", |t| t == "Run").await;
    click(&page, "#run-1").await;
    wait_for_text(&page, "#job-state", |t| t == "done").await;
    let url = page.url().await.unwrap().unwrap();
    let id = url.rsplit('/').next().unwrap().to_string();
    let http = reqwest::Client::new();
    let job: serde_json::Value = http
        .get(format!("{saas}/api/v1/jobs/{id}"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        job["detail"]["files"],
        serde_json::json!(["exitCode", "outputs/picture.png", "stderr", "stdout"]),
        "{job}"
    );
    let started = std::time::Instant::now();
    loop {
        let width: i64 = page
            .evaluate("document.querySelector('img.output') ? document.querySelector('img.output').naturalWidth : 0")
            .await
            .unwrap()
            .into_value()
            .unwrap();
        if width == 1 {
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "the picture was not shown"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    screenshot(&page, "saas-picture").await;
    let file = http
        .get(format!("{saas}/api/v1/jobs/{id}/files/outputs/picture.png"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(file.status(), 200);
    assert_eq!(file.headers()["content-type"], "image/png");
    assert_eq!(file.bytes().await.unwrap().as_ref(), PICTURE);
    for path in [
        "outputs/../../../../etc/passwd",
        "outputs/%2e%2e/%2e%2e/etc/passwd",
        "stdout2",
    ] {
        let refused = http
            .get(format!("{saas}/api/v1/jobs/{id}/files/{path}"))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), 404, "{path}");
    }
    chromium.close().await;
    dev.stop().await;
}
