//! `lilypad faucet` as a separate process on a real anvil chain with the contracts: what a
//! claim pays (to the wei, gas included), once per address and per client IP (429 with how
//! long to wait, kept across a restart), what it refuses (unchecksummed addresses, unknown
//! fields, bodies over 1 KiB), twenty concurrent claims through one nonce manager, a dry
//! faucet's clear 503 that gives the claim's turn back, and hCaptcha when configured (its
//! verify endpoint played by a local server: hCaptcha's own cannot be reached here).

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::procs::Proc;
use ethers::providers::Middleware;
use ethers::signers::{LocalWallet, Signer};
use ethers::types::{H256, U256};
use lilypad::chain::Chain;
use warp::Filter;

const ETH: u128 = 1_000_000_000_000_000_000;

fn checksum(wallet: &LocalWallet) -> String {
    lilypad::keys::address_of(wallet)
}

struct Faucet {
    proc: Proc,
    url: String,
    http: reqwest::Client,
}

impl Faucet {
    fn start(
        dir: &std::path::Path,
        key: &LocalWallet,
        chain: &Chain,
        extra: &[(&str, String)],
    ) -> Faucet {
        let port = common::bacalhau::free_port();
        let mut env = vec![
            ("WEB3_RPC_URL".to_string(), chain.rpc_url.clone()),
            (
                "WEB3_CONTROLLER_ADDRESS".to_string(),
                format!("{:?}", chain.contracts.controller.address()),
            ),
            ("FAUCET_LISTEN".to_string(), format!("127.0.0.1:{port}")),
            ("FAUCET_ETH".to_string(), "1lp".to_string()),
            ("FAUCET_LP".to_string(), "100lp".to_string()),
            ("FAUCET_PERIOD".to_string(), "3600".to_string()),
            ("TRUSTED_PROXY_HOPS".to_string(), "1".to_string()),
            ("POLL_INTERVAL_MS".to_string(), "50".to_string()),
        ];
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.clone())));
        let mut proc = Proc::new("faucet", &["faucet"], key, dir.to_path_buf(), env);
        proc.start();
        Faucet {
            proc,
            url: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::new(),
        }
    }

    async fn wait_ready(&mut self) {
        let started = Instant::now();
        while self
            .http
            .get(format!("{}/api/info", self.url))
            .send()
            .await
            .is_err()
        {
            assert!(
                self.proc.alive() && started.elapsed() < Duration::from_secs(30),
                "the faucet did not start:\n{}",
                self.proc.tails()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// POSTs `body` to /api/claim as if from `ip` (behind one proxy).
    async fn post(
        &self,
        body: String,
        ip: &str,
        captcha: Option<&str>,
    ) -> (u16, Option<String>, serde_json::Value) {
        let mut request = self
            .http
            .post(format!("{}/api/claim", self.url))
            .header("content-type", "application/json")
            .header("x-forwarded-for", ip)
            .body(body);
        if let Some(captcha) = captcha {
            request = request.header("h-captcha-response", captcha);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_string());
        let text = response.text().await.unwrap();
        let body =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text:?}"));
        (status, retry_after, body)
    }

    async fn claim(&self, address: &str, ip: &str) -> (u16, Option<String>, serde_json::Value) {
        self.post(
            serde_json::json!({ "address": address }).to_string(),
            ip,
            None,
        )
        .await
    }
}

/// What the faucet paid in gas for the transactions of a claim.
async fn fees(chain: &Chain, claimed: &serde_json::Value) -> U256 {
    let mut total = U256::zero();
    for field in ["eth_tx", "lp_tx"] {
        let hash: H256 = claimed[field].as_str().unwrap().parse().unwrap();
        let receipt = chain
            .client
            .get_transaction_receipt(hash)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(receipt.status, Some(1.into()), "{field} mined");
        total += receipt.gas_used.unwrap() * receipt.effective_gas_price.unwrap();
    }
    total
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_faucet_pays_each_address_and_ip_once_a_period_exactly_and_says_how_long_to_wait() {
    let dir = tempfile::tempdir().unwrap();
    let network = common::network_with(&dir.path().join("dev"), common::solver_only()).await;
    let deployer = network.chain_as(&network.keys.deployer).await.unwrap();
    let faucet_key = lilypad::keys::generate();
    // Enough ether for everything, and tokens for exactly 22 claims.
    lilypad::chain::deploy::fund(
        deployer.client.clone(),
        network.deployment.token,
        faucet_key.address(),
        U256::from(50 * ETH),
        U256::from(22 * 100 * ETH),
    )
    .await
    .unwrap();
    let reader = network.job_creator_chain().await.unwrap();
    let mut faucet = Faucet::start(&dir.path().join("faucet"), &faucet_key, &reader, &[]);
    faucet.wait_ready().await;

    // The page and what it shows.
    let page = reqwest::get(format!("{}/", faucet.url)).await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("Lilypad faucet"));
    let info: serde_json::Value = reqwest::get(format!("{}/api/info", faucet.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["account"], checksum(&faucet_key));
    assert_eq!(info["chain_id"], network.chain_id);
    assert_eq!(info["payout"]["eth"], ETH.to_string());
    assert_eq!(info["payout"]["lp"], (100 * ETH).to_string());
    assert_eq!(info["period_secs"], 3600);
    assert!(info["hcaptcha_site_key"].is_null());

    // A claim: the claimant gets exactly the payout; the faucet pays it plus the gas.
    let alice = lilypad::keys::generate();
    let faucet_before = common::holdings(&reader, faucet_key.address()).await;
    let (status, _, claimed) = faucet.claim(&checksum(&alice), "10.0.0.1").await;
    assert_eq!(status, 200, "{claimed}");
    assert_eq!(
        common::holdings(&reader, alice.address()).await,
        (U256::from(ETH), U256::from(100 * ETH))
    );
    let gas = fees(&reader, &claimed).await;
    assert_eq!(
        common::holdings(&reader, faucet_key.address()).await,
        (
            faucet_before.0 - U256::from(ETH) - gas,
            faucet_before.1 - U256::from(100 * ETH)
        )
    );

    // Once per address (from anywhere) and per IP (for anyone): 429 with the wait.
    let bob = lilypad::keys::generate();
    for (who, ip, named) in [
        (
            checksum(&alice),
            "10.0.0.2",
            format!("address {}", checksum(&alice)),
        ),
        (checksum(&bob), "10.0.0.1", "IP 10.0.0.1".to_string()),
    ] {
        let (status, retry_after, body) = faucet.claim(&who, ip).await;
        assert_eq!(status, 429, "{body}");
        let wait: u64 = retry_after.expect("Retry-After").parse().unwrap();
        assert!((3590..=3600).contains(&wait), "{wait}");
        assert_eq!(body["retry_after"], wait);
        let error = body["error"].as_str().unwrap();
        assert!(error.contains(&named) && error.contains("wait"), "{error}");
    }
    assert_eq!(
        common::holdings(&reader, bob.address()).await,
        (0.into(), 0.into())
    );

    // Bad requests: clear errors, nothing paid, nothing reserved.
    let bob_lower = format!("{:?}", bob.address());
    for (body, status, says) in [
        (
            serde_json::json!({ "address": bob_lower }).to_string(),
            400,
            "checksummed",
        ),
        (
            serde_json::json!({ "address": checksum(&bob), "amount": "1000lp" }).to_string(),
            400,
            "unknown field",
        ),
        ("not json".to_string(), 400, "JSON"),
        (
            serde_json::json!({ "address": checksum(&bob), "pad": "x".repeat(1100) }).to_string(),
            413,
            "1024 bytes",
        ),
    ] {
        let (got, _, answer) = faucet.post(body, "10.0.0.3", None).await;
        assert_eq!(got, status, "{answer}");
        assert!(answer["error"].as_str().unwrap().contains(says), "{answer}");
    }
    let wrong_method = reqwest::get(format!("{}/api/claim", faucet.url))
        .await
        .unwrap();
    assert_eq!(wrong_method.status(), 405);

    // Twenty claims at once, from twenty addresses and IPs: every one paid, exactly.
    let wallets: Vec<LocalWallet> = (0..20).map(|_| lilypad::keys::generate()).collect();
    let faucet = Arc::new(faucet);
    let mut tasks = Vec::new();
    for (i, wallet) in wallets.iter().enumerate() {
        let (faucet, address) = (faucet.clone(), checksum(wallet));
        tasks.push(tokio::spawn(async move {
            faucet.claim(&address, &format!("10.1.0.{i}")).await
        }));
    }
    for task in tasks {
        let (status, _, body) = task.await.unwrap();
        assert_eq!(status, 200, "{body}");
    }
    for wallet in &wallets {
        assert_eq!(
            common::holdings(&reader, wallet.address()).await,
            (U256::from(ETH), U256::from(100 * ETH))
        );
    }
    assert_eq!(
        common::holdings(&reader, faucet_key.address()).await.1,
        U256::from(100 * ETH),
        "one claim's tokens left"
    );

    // The last claim it can pay, then a dry faucet: 503 saying so, and the claim's turn is
    // given back, so once the operator tops up (two claims' worth) the same address and IP
    // are paid at once.
    let carol = lilypad::keys::generate();
    let dave = lilypad::keys::generate();
    assert_eq!(faucet.claim(&checksum(&carol), "10.2.0.1").await.0, 200);
    let (status, _, body) = faucet.claim(&checksum(&dave), "10.2.0.2").await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("running dry"),
        "{body}"
    );
    lilypad::chain::deploy::fund(
        deployer.client.clone(),
        network.deployment.token,
        faucet_key.address(),
        0.into(),
        U256::from(2 * 100 * ETH),
    )
    .await
    .unwrap();
    let (status, _, body) = faucet.claim(&checksum(&dave), "10.2.0.2").await;
    assert_eq!(status, 200, "{body}\n{}", faucet.proc.tails());

    // A restarted faucet remembers who claimed.
    let mut faucet = Arc::into_inner(faucet).expect("no task holds the faucet");
    faucet.proc.stop().await;
    faucet.proc.start();
    faucet.wait_ready().await;
    let (status, _, body) = faucet.claim(&checksum(&alice), "10.9.9.9").await;
    assert_eq!(status, 429, "{body}");
    faucet.proc.stop().await;

    // With hCaptcha configured, a claim needs a response hCaptcha accepts.
    let seen: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let verify = {
        let seen = seen.clone();
        warp::path("siteverify")
            .and(warp::post())
            .and(warp::body::form())
            .map(move |form: std::collections::HashMap<String, String>| {
                let secret = form.get("secret").cloned().unwrap_or_default();
                let response = form.get("response").cloned().unwrap_or_default();
                seen.lock()
                    .unwrap()
                    .push((secret.clone(), response.clone()));
                warp::reply::json(&serde_json::json!({
                    "success": secret == "captcha-secret" && response == "solved"
                }))
            })
    };
    let (verify_address, server): (SocketAddr, _) =
        warp::serve(verify).bind_ephemeral(([127, 0, 0, 1], 0));
    tokio::spawn(server);
    let secret_file = dir.path().join("hcaptcha.secret");
    std::fs::write(&secret_file, "captcha-secret\n").unwrap();
    let mut guarded = Faucet::start(
        &dir.path().join("faucet-captcha"),
        &faucet_key,
        &reader,
        &[
            ("HCAPTCHA_SITE_KEY", "site-key-1".to_string()),
            ("HCAPTCHA_SECRET_FILE", secret_file.display().to_string()),
            (
                "HCAPTCHA_VERIFY_URL",
                format!("http://{verify_address}/siteverify"),
            ),
        ],
    );
    guarded.wait_ready().await;
    let info: serde_json::Value = reqwest::get(format!("{}/api/info", guarded.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["hcaptcha_site_key"], "site-key-1");
    let erin = checksum(&lilypad::keys::generate());
    let body = serde_json::json!({ "address": erin }).to_string();
    for captcha in [None, Some("wrong")] {
        let (status, _, answer) = guarded.post(body.clone(), "10.3.0.1", captcha).await;
        assert_eq!(status, 403, "{answer}");
        assert!(
            answer["error"].as_str().unwrap().contains("captcha"),
            "{answer}"
        );
    }
    let (status, _, answer) = guarded.post(body, "10.3.0.1", Some("solved")).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        seen.lock().unwrap().as_slice(),
        [
            ("captcha-secret".to_string(), "wrong".to_string()),
            ("captcha-secret".to_string(), "solved".to_string())
        ]
    );
    guarded.proc.stop().await;
    network.stop().await;
}
