//! The solver over real HTTP and WebSockets, on a real dev network (anvil + Docker):
//! signed-request checks, results upload sanitising and access rules, event replay,
//! refusal of a deal whose terms differ from the RP's offer, and a solver restart mid-job.

mod common;

use std::time::Duration;

use common::{cowsay_request, network};
use ethers::signers::{LocalWallet, Signer};
use futures::StreamExt;
use lilypad::chain::terms::{deal_key, terms_of};
use lilypad::client::SolverClient;
use lilypad::data::signing::{self, now_secs, ADDRESS_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use lilypad::data::{ContentAddressed, Deal, DealState};
use lilypad::dev::DevRoles;
use lilypad::run::run_job;

/// Sends a POST with explicit signature headers.
async fn post(
    url: &str,
    path: &str,
    body: &[u8],
    headers: &signing::SignedHeaders,
) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{url}{path}"))
        .header(ADDRESS_HEADER, format!("{:?}", headers.address))
        .header(TIMESTAMP_HEADER, headers.timestamp.to_string())
        .header(SIGNATURE_HEADER, headers.signature.clone())
        .body(body.to_vec())
        .send()
        .await
        .unwrap()
}

async fn error_text(response: reqwest::Response) -> String {
    response.json::<serde_json::Value>().await.unwrap()["error"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// A tar with one regular entry whose name is written raw (the tar crate refuses to build these).
fn hostile_tar(name: &str) -> Vec<u8> {
    let mut header = tar::Header::new_old();
    header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
    header.set_entry_type(tar::EntryType::Regular);
    header.set_mode(0o644);
    header.set_size(3);
    header.set_cksum();
    let mut builder = tar::Builder::new(Vec::new());
    builder.append(&header, &b"bad"[..]).unwrap();
    builder.into_inner().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn signed_requests_uploads_downloads_and_events_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let network = network(dir.path()).await;
    let url = network.solver.url.clone();
    let jc = network.keys.job_creator.clone();
    let path = "/api/v1/job_offers";

    // A stale timestamp is refused.
    let offer = common::job_offer_by(&network, &jc, "stale");
    let body = serde_json::to_vec(&offer).unwrap();
    let stale = signing::sign(&jc, "POST", path, now_secs() - 120, &body);
    let response = post(&url, path, &body, &stale).await;
    assert_eq!(response.status(), 401);
    assert!(error_text(response)
        .await
        .contains("from the solver's clock"));

    // A signature by another key than the named address is refused.
    let stranger = LocalWallet::new(&mut rand::thread_rng());
    let mut forged = signing::sign(&stranger, "POST", path, now_secs(), &body);
    forged.address = jc.address();
    let response = post(&url, path, &body, &forged).await;
    assert_eq!(response.status(), 401);
    assert!(error_text(response).await.contains("signature is not by"));

    // A correct signature by someone who is not the offer's job creator is refused.
    let not_party = signing::sign(&stranger, "POST", path, now_secs(), &body);
    let response = post(&url, path, &body, &not_party).await;
    assert_eq!(response.status(), 403);

    // A signature over a different body is refused.
    let other = signing::sign(&jc, "POST", path, now_secs(), b"{}");
    assert_eq!(post(&url, path, &body, &other).await.status(), 401);

    // The right signature works once; the same request replayed is refused.
    let good = signing::sign(&jc, "POST", path, now_secs(), &body);
    assert_eq!(post(&url, path, &body, &good).await.status(), 201);
    let replay = post(&url, path, &body, &good).await;
    assert_eq!(replay.status(), 401);
    assert!(error_text(replay).await.contains("already used"));
    // Re-encoded, it is still the same signature: hex case, no 0x, v as 0/1, and the
    // malleable twin (s -> n - s, v's parity flipped) are all refused as replays.
    let bytes = hex::decode(good.signature.trim_start_matches("0x")).unwrap();
    let parity = (bytes[64] - 27) % 2;
    let n = ethers::types::U256::from_str_radix(
        "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141",
        16,
    )
    .unwrap();
    let twin_s = n - ethers::types::U256::from_big_endian(&bytes[32..64]);
    let twin = format!(
        "{}{}",
        hex::encode(&bytes[..32]),
        hex::encode(<[u8; 32]>::from(twin_s))
    );
    for encoded in [
        good.signature.to_uppercase().replacen("0X", "0x", 1),
        good.signature.trim_start_matches("0x").to_string(),
        format!("0x{}{:02x}", hex::encode(&bytes[..64]), parity),
        format!("0x{twin}{:02x}", 28 - parity),
        format!("{twin}{:02x}", 1 - parity),
    ] {
        let again = signing::SignedHeaders {
            signature: encoded.clone(),
            ..good.clone()
        };
        let replay = post(&url, path, &body, &again).await;
        assert_eq!(replay.status(), 401, "{encoded}");
        assert!(
            error_text(replay).await.contains("already used"),
            "{encoded}"
        );
    }

    // The offer is matched with the dev RP; wait for its deal.
    let client = SolverClient::new(&url, jc.clone());
    let mut deals = Vec::new();
    for _ in 0..100 {
        deals = client
            .deals(&format!("job_offer={}", offer.id))
            .await
            .unwrap();
        if !deals.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let deal = deals.pop().expect("the offer is matched").deal;

    // Results uploads with '..' or absolute paths are refused, even from the deal's RP.
    let rp = SolverClient::new(&url, network.keys.resource_provider.clone());
    for name in ["../escape", "outputs/../../escape", "/etc/evil"] {
        let error = rp
            .upload_files(&deal.id, hostile_tar(name))
            .await
            .unwrap_err();
        assert_eq!(error.status(), Some(400), "{name}: {error}");
    }
    // Only the deal's RP may upload; only its JC or mediators may download.
    let outsider = SolverClient::new(&url, stranger.clone());
    assert_eq!(
        outsider
            .upload_files(&deal.id, Vec::new())
            .await
            .unwrap_err()
            .status(),
        Some(403)
    );
    assert_eq!(
        outsider
            .download_files(&deal.id)
            .await
            .unwrap_err()
            .status(),
        Some(403)
    );

    // Two processes with one key reading the same thing in the same second sign the same
    // text alike: the second is refused as a replay, and its client signs again a second
    // later, so both reads get their answer (no results yet: 404), not a 401.
    let (first, second) = (
        SolverClient::new(&url, network.keys.job_creator.clone()),
        SolverClient::new(&url, network.keys.job_creator.clone()),
    );
    let into_second = lilypad::data::offers::now_millis() % 1000;
    tokio::time::sleep(Duration::from_millis(1010 - into_second)).await;
    for reader in [&first, &second] {
        let error = reader.result(&deal.id).await.unwrap_err();
        assert_eq!(error.status(), Some(404), "{error}");
    }

    // /explain answers for a job offer nobody can serve (a GPU job on a CPU-only network).
    let mut gpu_job = common::job_offer_by(&network, &jc, "gpu");
    gpu_job.spec.gpu = 1;
    let gpu_job = gpu_job.seal();
    client.post_job_offer(&gpu_job).await.unwrap();
    let explanation = client.explain(&gpu_job.id).await.unwrap();
    assert_eq!(explanation.deal_id, None);
    assert_eq!(explanation.compatible, 0);
    let said = explanation.describe(&gpu_job);
    if explanation.resource_offers == 0 {
        assert_eq!(said, "no resource provider has an offer online");
    } else {
        assert!(
            said.contains("too small") && said.contains("1 GPU(s)"),
            "{said}"
        );
    }

    // A bad query names the parameter and what it accepts; /metrics counts the deals.
    let response = reqwest::get(format!("{url}/api/v1/deals?state=eleven"))
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let said = error_text(response).await;
    assert!(said.contains("state takes a deal state number"), "{said}");
    let metrics = reqwest::get(format!("{url}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("# TYPE lilypad_deals gauge"), "{metrics}");
    assert!(metrics.contains("lilypad_open_job_offers "), "{metrics}");

    // /ws?since=0 replays every stored event, numbered from 1 without gaps.
    let ws = url.replacen("http", "ws", 1);
    let (mut stream, _) = tokio_tungstenite::connect_async(format!("{ws}/ws?since=0"))
        .await
        .unwrap();
    let mut seqs = Vec::new();
    let mut kinds = Vec::new();
    while let Ok(Some(Ok(message))) =
        tokio::time::timeout(Duration::from_millis(500), stream.next()).await
    {
        let event: lilypad::bus::Event = serde_json::from_str(message.to_text().unwrap()).unwrap();
        seqs.push(event.seq);
        kinds.push(event.kind);
    }
    assert!(seqs.len() >= 4, "events: {kinds:?}");
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>());
    assert!(kinds.contains(&lilypad::bus::EventKind::DealCreated));
    network.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_rp_refuses_a_deal_whose_terms_differ_from_its_offer() {
    let dir = tempfile::tempdir().unwrap();
    let network = network(dir.path()).await;
    let rp = network.keys.resource_provider.address();
    let solver = &network.solver.solver;
    // Find the RP's live offer, then make a deal for it with a higher price than it asked.
    let mut offers = Vec::new();
    for _ in 0..100 {
        offers = solver.store.resource_offers(Some(rp)).await.unwrap();
        if !offers.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let resource_offer = offers.pop().expect("the RP posts an offer").offer;
    let job = common::job_offer_by(&network, &network.keys.job_creator, "tampered");
    let honest = Deal::propose(&job, &resource_offer, 0).unwrap();
    let mut tampered = honest.clone();
    tampered.pricing.instruction_price += 1;
    tampered.timeouts.submit_results_collateral *= 10;
    let tampered = tampered.seal();
    solver.store.add_job_offer(&job, None).await.unwrap();
    let key = deal_key(tampered.chain_id().unwrap(), &terms_of(&tampered));
    solver
        .store
        .commit_deals(&[(tampered.clone(), format!("0x{}", hex::encode(key)))])
        .await
        .unwrap();

    // The job creator agrees first, as it must; the RP sees the deal (it polls every
    // 100 ms) and must never agree to it.
    let jc_chain = network.job_creator_chain().await.unwrap();
    common::agree_as(
        &jc_chain,
        &tampered,
        lilypad::chain::terms::job_creator_deposit(&tampered),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let agreement = jc_chain.agreement(key).await.unwrap();
    assert!(agreement.job_creator_agreed);
    assert!(
        !agreement.resource_provider_agreed,
        "the RP agreed to a deal that differs from its offer"
    );
    network.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn restarting_the_solver_mid_job_loses_nothing() {
    restart_mid_job(None).await;
}

/// The same on a solver whose store is PostgreSQL (SOLVER_DATABASE_URL).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn restarting_a_solver_on_postgresql_mid_job_loses_nothing() {
    let url = common::postgres_database().await;
    restart_mid_job(Some(url)).await;
}

async fn restart_mid_job(database_url: Option<String>) {
    let dir = tempfile::tempdir().unwrap();
    let mut options = common::options_with(dir.path(), DevRoles::default(), &[]);
    options.settings.solver_database_url = database_url.clone().map(Into::into);
    let mut network = common::start(options).await;
    if let Some(url) = &database_url {
        let name = network.solver.solver.store.name().display().to_string();
        assert!(
            name.starts_with("postgres://") && url.ends_with(name.rsplit('/').next().unwrap()),
            "{name}"
        );
    }
    let jc_chain = network.job_creator_chain().await.unwrap();
    let request = cowsay_request(&network, dir.path(), "restart");
    let client = SolverClient::new(&network.solver.url, network.keys.job_creator.clone());
    let job = tokio::spawn(run_job(jc_chain.clone(), client.clone(), request));

    // As soon as the solver has made the deal, restart it.
    let store = network.solver.solver.store.clone();
    let mut deal_id = None;
    for _ in 0..400 {
        if let Some(record) = store.deals(&Default::default()).await.unwrap().pop() {
            deal_id = Some(record.deal.id);
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let deal_id = deal_id.expect("a deal is made");
    network.restart_solver().await.unwrap();

    let outcome = job
        .await
        .unwrap()
        .expect("the job completes across the restart");
    assert_eq!(outcome.deal_id, deal_id);
    assert!(
        outcome.stdout().contains("< restart >"),
        "{}",
        outcome.stdout()
    );
    let record = client
        .deal(&deal_id)
        .await
        .expect("the restarted solver still has the deal");
    let key = deal_key(record.deal.chain_id().unwrap(), &terms_of(&record.deal));
    assert_eq!(
        DealState::try_from(jc_chain.agreement(key).await.unwrap().state).unwrap(),
        DealState::ResultsAccepted
    );
    // The restarted solver catches up with the chain from its saved block.
    let mut state = 0;
    for _ in 0..50 {
        state = client.deal(&deal_id).await.unwrap().state;
        if state == DealState::ResultsAccepted.number() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(state, DealState::ResultsAccepted.number());
    network.stop().await;
    if let Some(url) = &database_url {
        // The deal and its events are in PostgreSQL, not in a file under DATA_DIR.
        let pool = sqlx::PgPool::connect(url).await.unwrap();
        let stored: i64 = sqlx::query_scalar("SELECT state FROM deals WHERE id = $1")
            .bind(&deal_id)
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(stored, i64::from(DealState::ResultsAccepted.number()));
        let events: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM events")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert!(events >= 6, "{events} events");
        pool.close().await;
    }
    let file = dir.path().join("solver/solver.db");
    assert_eq!(file.exists(), database_url.is_none(), "{}", file.display());
}

/// A job creator that gives up takes its offer back, so no resource provider is matched to
/// it later; only its job creator may, and not once a deal exists.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_job_offer_nobody_took_is_withdrawn_and_one_with_a_deal_cannot_be() {
    let dir = tempfile::tempdir().unwrap();
    let roles = lilypad::dev::DevRoles {
        resource_provider: false,
        ..Default::default()
    };
    let network = common::network_with(dir.path(), roles).await;
    let jc_chain = network.job_creator_chain().await.unwrap();
    let jc = SolverClient::new(&network.solver.url, network.keys.job_creator.clone());

    // No resource provider: `run` gives up after its timeout and withdraws the offer.
    let mut request = cowsay_request(&network, dir.path(), "anyone?");
    request.timeout = Duration::from_secs(1);
    let error = run_job(jc_chain.clone(), jc.clone(), request)
        .await
        .expect_err("nothing matches");
    let no_match = error
        .downcast_ref::<lilypad::run::NoMatch>()
        .expect("a no-match error");
    assert_eq!(no_match.why, "no resource provider has an offer online");
    let gone = jc.job_offer(&no_match.offer).await.unwrap_err();
    assert_eq!(gone.status(), Some(404), "{gone}");
    // An RP arriving now is not matched with the job creator that left.
    let rp = SolverClient::new(&network.solver.url, network.keys.resource_provider.clone());
    rp.post_resource_offer(&common::resource_offer(&network))
        .await
        .unwrap();
    let query = format!("job_creator={:?}", network.keys.job_creator.address());
    assert!(jc.deals(&query).await.unwrap().is_empty());

    // With a deal, the offer stays; and nobody else may withdraw an offer.
    let offer = common::job_offer(&network, "matched");
    jc.post_job_offer(&offer).await.unwrap();
    let stranger = SolverClient::new(&network.solver.url, lilypad::keys::generate());
    let refused = stranger.withdraw_job_offer(&offer.id).await.unwrap_err();
    assert_eq!(refused.status(), Some(403), "{refused}");
    common::wait_for_deal(&jc, &format!("job_offer={}", offer.id)).await;
    let refused = jc.withdraw_job_offer(&offer.id).await.unwrap_err();
    assert_eq!(refused.status(), Some(409), "{refused}");
    network.stop().await;
}
