//! The solver's limits under load, on a real solver (anvil, real HTTP and WebSockets). The
//! solver is set up as behind one proxy (TRUSTED_PROXY_HOPS=1), so this test plays clients
//! at different addresses through X-Forwarded-For, as nginx would report them.
//!
//! An attacker floods from one IP with 32 connections at once while a well-behaved client
//! at another IP asks ten times a second: the attacker gets 429 with Retry-After past its
//! budget (what it got through stays within rate × time + burst), and every one of the
//! well-behaved client's requests is answered. The same holds per signing key: one key
//! flooding signed requests from many IPs is held to its budget while another key is
//! served. Event streams are capped per IP (503 with Retry-After) without shutting others out.
//! `lilypad`'s own client waits out a short Retry-After and is answered.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lilypad::data::signing;

const PER_IP: u32 = 40;
const PER_ADDRESS: u32 = 20;
const WS_PER_IP: usize = 4;

/// One request: GET `path` as the client at `ip`, signed by `key` when given. Its status
/// and Retry-After.
async fn get(
    http: &reqwest::Client,
    base: &str,
    path: &str,
    ip: &str,
    key: Option<&ethers::signers::LocalWallet>,
) -> (u16, Option<u64>) {
    let mut request = http
        .get(format!("{base}{path}"))
        .header("x-forwarded-for", ip);
    if let Some(key) = key {
        let signed = signing::sign(key, "GET", path, signing::now_secs(), b"");
        request = request
            .header(signing::ADDRESS_HEADER, format!("{:?}", signed.address))
            .header(signing::TIMESTAMP_HEADER, signed.timestamp.to_string())
            .header(signing::SIGNATURE_HEADER, signed.signature);
    }
    let response = request.send().await.expect("the solver answers");
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    (response.status().as_u16(), retry_after)
}

/// Counts of an attack: (answered 2xx/404, refused 429 with a Retry-After).
#[derive(Default)]
struct Tally {
    through: AtomicUsize,
    limited: AtomicUsize,
    other: AtomicUsize,
}

/// Floods `path_of(n)` for `length` with 32 concurrent senders; what came through, and how
/// long the flood lasted until its last answer.
async fn flood(
    base: &str,
    length: Duration,
    path_of: impl Fn(usize) -> (String, String) + Send + Sync + 'static,
    key: Option<ethers::signers::LocalWallet>,
) -> (Arc<Tally>, Duration) {
    let started = Instant::now();
    let tally = Arc::new(Tally::default());
    let next = Arc::new(AtomicUsize::new(0));
    let path_of = Arc::new(path_of);
    let until = Instant::now() + length;
    let senders: Vec<_> = (0..32)
        .map(|_| {
            let (tally, next, path_of, key) =
                (tally.clone(), next.clone(), path_of.clone(), key.clone());
            let base = base.to_string();
            tokio::spawn(async move {
                let http = reqwest::Client::new();
                while Instant::now() < until {
                    let (path, ip) = path_of(next.fetch_add(1, Ordering::Relaxed));
                    match get(&http, &base, &path, &ip, key.as_ref()).await {
                        (429, Some(wait)) if wait >= 1 => &tally.limited,
                        (200 | 404, _) => &tally.through,
                        _ => &tally.other,
                    }
                    .fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    futures::future::join_all(senders).await;
    (tally, started.elapsed())
}

/// The most a bucket of `rate` a second (bursts of twice that) lets through in `lasted`.
fn most_allowed(rate: u32, lasted: Duration) -> usize {
    (f64::from(rate) * lasted.as_secs_f64()).ceil() as usize + 2 * rate as usize + 1
}

/// A client that asks ten times a second for `length`; how many answers were not 429 (and
/// any that was).
async fn well_behaved(
    base: &str,
    length: Duration,
    path_of: impl Fn(usize) -> (String, String),
    key: Option<&ethers::signers::LocalWallet>,
) -> (usize, usize, Vec<u16>) {
    let http = reqwest::Client::new();
    let until = Instant::now() + length;
    let (mut asked, mut served, mut refused) = (0, 0, Vec::new());
    while Instant::now() < until {
        let (path, ip) = path_of(asked);
        let (status, _) = get(&http, base, &path, &ip, key).await;
        asked += 1;
        if status == 200 || status == 404 {
            served += 1;
        } else {
            refused.push(status);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    (asked, served, refused)
}

/// A flood held to a bucket of `rate` a second while it `lasted`: only 2xx/404 or 429
/// answers, no more through than the bucket allows (twice the rate at once, refilled at the
/// rate until the flood's last answer), most of it refused, and every polite request served.
fn judge(
    what: &str,
    attack: &Tally,
    lasted: Duration,
    rate: u32,
    polite: &(usize, usize, Vec<u16>),
) {
    let through = attack.through.load(Ordering::Relaxed);
    let limited = attack.limited.load(Ordering::Relaxed);
    eprintln!("{what}: the flood got {through} through and {limited} refused with 429; the polite client {} of {} served", polite.1, polite.0);
    assert_eq!(
        attack.other.load(Ordering::Relaxed),
        0,
        "{what}: only 2xx/404 or 429"
    );
    let allowed = most_allowed(rate, lasted);
    assert!(
        through <= allowed,
        "{what}: {through} passed, at most {allowed} may"
    );
    assert!(
        limited > through,
        "{what}: most of the flood was refused: {limited}"
    );
    assert_eq!(
        polite.1, polite.0,
        "{what}: every polite request was served: refused {:?}",
        polite.2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn limits_hold_under_a_flood_and_a_well_behaved_client_is_still_served() {
    let dir = tempfile::tempdir().unwrap();
    let roles = common::solver_only();
    let mut options = common::options(dir.path(), roles);
    options.settings.rate_limit_per_ip = PER_IP;
    options.settings.rate_limit_per_address = PER_ADDRESS;
    options.settings.max_ws_clients_per_ip = WS_PER_IP;
    options.settings.trusted_proxy_hops = 1;
    let network = common::start(options).await;
    let base = network.solver.url.clone();
    let length = Duration::from_secs(3);

    // Per IP: an unsigned flood from one address, a polite client at another.
    let ((attack, lasted), polite) = tokio::join!(
        flood(
            &base,
            length,
            |_| ("/api/v1/deals".into(), "203.0.113.66".into()),
            None
        ),
        well_behaved(
            &base,
            length,
            |_| ("/api/v1/deals".into(), "198.51.100.7".into()),
            None
        ),
    );
    judge("per IP", &attack, lasted, PER_IP, &polite);
    assert!(polite.0 >= 20, "the polite client asked {} times", polite.0);

    // Per key: one key floods signed reads from many IPs (every request from a new one, so
    // no IP runs dry); another key is served meanwhile.
    let flooder = lilypad::keys::generate();
    let polite_key = lilypad::keys::generate();
    let ((attack, lasted), polite) = tokio::join!(
        flood(
            &base,
            length,
            |n| (
                format!("/api/v1/deals/nosuch{n}/result"),
                format!("10.{}.{}.{}", n / 65536 % 256, n / 256 % 256, n % 256)
            ),
            Some(flooder.clone())
        ),
        well_behaved(
            &base,
            length,
            |n| (
                format!("/api/v1/deals/polite{n}/result"),
                "198.51.100.8".into()
            ),
            Some(&polite_key)
        ),
    );
    judge("per key", &attack, lasted, PER_ADDRESS, &polite);

    // Event streams: an address holds at most WS_PER_IP open; others still connect.
    let ws = base.replacen("http", "ws", 1) + "/ws";
    let open = |ip: &'static str| {
        let ws = ws.clone();
        async move {
            use tokio_tungstenite::tungstenite::client::IntoClientRequest;
            let mut request = ws.into_client_request().unwrap();
            request
                .headers_mut()
                .insert("x-forwarded-for", ip.parse().unwrap());
            tokio_tungstenite::connect_async(request).await
        }
    };
    let mut held = Vec::new();
    for _ in 0..WS_PER_IP {
        held.push(open("203.0.113.66").await.expect("under the cap").0);
    }
    let refused = open("203.0.113.66").await.expect_err("past the cap");
    match refused {
        tokio_tungstenite::tungstenite::Error::Http(response) => {
            assert_eq!(response.status().as_u16(), 503);
            assert!(response.headers().contains_key("retry-after"));
        }
        other => panic!("expected 503, got {other}"),
    }
    let (mut other, _) = open("198.51.100.7")
        .await
        .expect("another address connects");
    // Closing one frees its place.
    held.pop().unwrap().close(None).await.unwrap();
    let mut again = None;
    for _ in 0..50 {
        if let Ok((stream, _)) = open("203.0.113.66").await {
            again = Some(stream);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(again.is_some(), "a closed stream's place is given again");
    other.close(None).await.unwrap();

    // Our own client waits out a short Retry-After: more signed requests in a row than the
    // key's burst all get their answer (404 here), none a 429.
    let client = lilypad::client::SolverClient::new(&base, lilypad::keys::generate());
    for n in 0..(3 * PER_ADDRESS) {
        let path = format!("/api/v1/deals/waited{n}/result");
        let error = client
            .request(reqwest::Method::GET, &path, Vec::new(), true)
            .await
            .expect_err("no such deal");
        assert_eq!(error.status(), Some(404), "{error}");
    }
    network.stop().await;
}
