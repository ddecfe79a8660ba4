//! The web roles in a real browser (Debian's headless Chromium over the DevTools protocol)
//! against a `lilypad dev` process: what a person does on each page, checked on the page,
//! on chain, and in a screenshot of each page under `target/screenshots/`.

mod common;

use common::browser::{click, fill, screenshot, wait_for_text, Chromium};
use common::dev_process::DevProcess;
use ethers::providers::Middleware;
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

const ETH: u128 = 1_000_000_000_000_000_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_claims_from_the_faucet_page_once_and_is_told_to_wait_the_second_time() {
    let dir = tempfile::tempdir().unwrap();
    let faucet_port = common::bacalhau::free_port();
    let dev = DevProcess::start(
        dir.path(),
        &[
            ("EXECUTOR", "noop".to_string()),
            ("FAUCET_LISTEN", format!("127.0.0.1:{faucet_port}")),
        ],
    )
    .await;
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
    let paid = (
        reader
            .client
            .get_balance(claimant.address(), None)
            .await
            .unwrap(),
        reader.token_balance(claimant.address()).await.unwrap(),
    );
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
    assert_eq!(
        (
            reader
                .client
                .get_balance(claimant.address(), None)
                .await
                .unwrap(),
            reader.token_balance(claimant.address()).await.unwrap(),
        ),
        paid
    );
    chromium.close().await;
    dev.stop().await;
}
