//! Solver benchmark (`make bench-solver`): a `lilypad solver` process (release build, its
//! own process so its memory and profile are its own) on a real anvil chain, loaded by a
//! generator of ours over loopback:
//!
//! 1. baseline: unsigned `GET /health` at the same concurrency, to put the intake in the
//!    scale of this machine and this HTTP stack;
//! 2. intake: signed job and resource offers from many keys (requests/s, p50/p99 latency),
//!    while the solver runs a matching pass after each (some jobs find a provider: deals
//!    are made during the run);
//! 3. fan-out: 1,000 `/ws` subscribers, then more offers: every subscriber must receive
//!    every event (events delivered per second, and none lost).
//!
//! Requests are signed before each phase starts, so the generator's own signing is not in
//! the figures. `BENCH_DATABASE=postgres` runs the solver on PostgreSQL (`make bench-solver`
//! runs both); `BENCH_PROFILE=1` records the solver with `perf` during the intake and prints
//! where its time goes. Under `cargo test` it runs a small, checked round.

#[path = "../common/mod.rs"]
mod common;
mod load;

use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ethers::signers::LocalWallet;
use futures::StreamExt;
use lilypad::data::events::{Event, EventKind};
use lilypad::data::Services;
use load::{
    load, metric, proc_kib, signed_job_offer, signed_resource_offer, start_solver, Request,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::process::{Child, Command};

/// How big a round is (`BENCH_OFFERS`, `BENCH_SUBSCRIBERS` and `BENCH_EVENTS` change three).
#[derive(Clone, Copy)]
struct Sizes {
    /// Keys on each side (job creators, resource providers).
    keys: usize,
    /// Signed offers in the intake phase.
    offers: usize,
    /// Requests in flight at once.
    concurrency: usize,
    /// `/ws` subscribers, and the offers whose events each must receive.
    subscribers: usize,
    events: usize,
}

const FULL: Sizes = Sizes {
    keys: 200,
    offers: 20_000,
    concurrency: 64,
    subscribers: 1_000,
    events: 200,
};

const CHECK: Sizes = Sizes {
    keys: 4,
    offers: 200,
    concurrency: 8,
    subscribers: 20,
    events: 20,
};

fn main() {
    let full = load::full_run();
    let number = load::env_number;
    let base = if full { &FULL } else { &CHECK };
    let sizes = Sizes {
        offers: number("BENCH_OFFERS", base.offers),
        subscribers: number("BENCH_SUBSCRIBERS", base.subscribers),
        events: number("BENCH_EVENTS", base.events),
        ..*base
    };
    load::runtime().block_on(round(&sizes, full));
}

/// `count` offers, half job offers and half resource offers, from `keys` keys on each side,
/// signed now. About one job in ten can pay a provider's price, so deals are made.
fn offers(
    job_creators: &[LocalWallet],
    providers: &[LocalWallet],
    services: &Services,
    count: usize,
    seed: u64,
) -> Vec<Request> {
    let mut rng = StdRng::seed_from_u64(seed);
    let created = lilypad::data::offers::now_millis();
    (0..count)
        .map(|n| {
            let nonce = format!("{seed}-{n}");
            if n % 2 == 0 {
                let wallet = &job_creators[rng.gen_range(0..job_creators.len())];
                signed_job_offer(wallet, services, created, rng.gen_range(1..=10), nonce).1
            } else {
                let wallet = &providers[rng.gen_range(0..providers.len())];
                let price = rng.gen_range(9..=90);
                signed_resource_offer(wallet, services, created, price, nonce).1
            }
        })
        .collect()
}

/// Opens `count` `/ws` subscribers, each from event `since` on (as a client that must not
/// miss anything subscribes); each counts the resource offers in `wanted` it hears of.
/// Returns once all are connected, with a receiver of each one's finish time.
async fn subscribe(
    base: &str,
    since: u64,
    count: usize,
    wanted: Arc<std::collections::HashSet<String>>,
    heard_in_all: Arc<AtomicUsize>,
) -> tokio::sync::mpsc::Receiver<(usize, Instant)> {
    let url = format!("{}/ws?since={since}", base.replacen("http", "ws", 1));
    let (done, finished) = tokio::sync::mpsc::channel(count);
    let connected = Arc::new(tokio::sync::Barrier::new(count + 1));
    for _ in 0..count {
        let (url, wanted, done, connected, heard_in_all) = (
            url.clone(),
            wanted.clone(),
            done.clone(),
            connected.clone(),
            heard_in_all.clone(),
        );
        tokio::spawn(async move {
            let (socket, _) = tokio_tungstenite::connect_async(&url)
                .await
                .expect("a /ws connection");
            connected.wait().await;
            let (_, mut incoming) = socket.split();
            let mut heard = 0;
            while let Some(Ok(message)) = incoming.next().await {
                let Ok(text) = message.to_text() else {
                    continue;
                };
                let Ok(event) = serde_json::from_str::<Event>(text) else {
                    continue;
                };
                if event.kind == EventKind::ResourceOfferAdded
                    && event
                        .resource_offer_id
                        .as_ref()
                        .is_some_and(|id| wanted.contains(id))
                {
                    heard += 1;
                    heard_in_all.fetch_add(1, Ordering::Relaxed);
                    if heard == wanted.len() {
                        break;
                    }
                }
            }
            let _ = done.send((heard, Instant::now())).await;
        });
    }
    connected.wait().await;
    finished
}

async fn round(sizes: &Sizes, full: bool) {
    let dir = tempfile::tempdir().unwrap();
    let database = std::env::var("BENCH_DATABASE").unwrap_or_else(|_| "sqlite".into());
    let url = match database.as_str() {
        "postgres" => Some(common::postgres_database().await),
        "sqlite" => None,
        other => panic!("BENCH_DATABASE: sqlite or postgres, not {other:?}"),
    };
    let mut solver = start_solver(dir.path(), url.as_deref()).await;
    let pid = solver.child.id().expect("the solver runs");
    let job_creators: Vec<LocalWallet> =
        (0..sizes.keys).map(|_| lilypad::keys::generate()).collect();
    let providers: Vec<LocalWallet> = (0..sizes.keys).map(|_| lilypad::keys::generate()).collect();
    println!(
        "solver benchmark: a lilypad solver process on {database}, {} keys a side, {} requests in flight",
        sizes.keys, sizes.concurrency
    );

    // 1. The baseline: the cheapest request this server answers.
    let health: Vec<Request> = (0..sizes.offers)
        .map(|_| Request {
            path: "/health",
            body: None,
            headers: Vec::new(),
        })
        .collect();
    let baseline = load(&solver.base, health, sizes.concurrency).await;
    println!("{}", baseline.line("baseline: GET /health"));

    // 2. Intake of signed offers, a matching pass after each.
    let requests = offers(&job_creators, &providers, &solver.services, sizes.offers, 1);
    let profile = (full && std::env::var_os("BENCH_PROFILE").is_some())
        .then(|| start_profile(pid, dir.path()));
    let cpu_before = load::cpu_time(pid);
    let intake = load(&solver.base, requests, sizes.concurrency).await;
    let cpu = load::cpu_time(pid) - cpu_before;
    println!("{}", intake.line("intake: signed offers"));
    println!(
        "  solver CPU: {:.0} us per offer, {:.2} cores busy on average",
        cpu.as_secs_f64() * 1e6 / intake.latencies.len() as f64,
        cpu.as_secs_f64() / intake.wall.as_secs_f64()
    );
    println!(
        "  intake / baseline: {:.2} of the requests per second",
        intake.rate() / baseline.rate()
    );
    let deals = metric(&solver.base, "lilypad_deals{").await;
    println!("  deals made during the intake: {deals}");
    if let Some(profile) = profile {
        finish_profile(profile, dir.path()).await;
    }
    assert!(
        intake.failures.is_empty(),
        "{} offers refused, the first: {}",
        intake.failures.len(),
        intake.failures[0]
    );

    // 3. Fan-out to subscribers that keep up.
    let mut requests = Vec::new();
    let mut wanted = std::collections::HashSet::new();
    let created = lilypad::data::offers::now_millis();
    for n in 0..sizes.events {
        let wallet = &providers[n % providers.len()];
        let (id, request) = signed_resource_offer(
            wallet,
            &solver.services,
            created,
            200,
            format!("fan-out {n}"),
        );
        wanted.insert(id);
        requests.push(request);
    }
    let heard = Arc::new(AtomicUsize::new(0));
    let since = metric(&solver.base, "lilypad_events_total ").await;
    let mut finished = subscribe(
        &solver.base,
        since,
        sizes.subscribers,
        Arc::new(wanted),
        heard.clone(),
    )
    .await;
    let started = Instant::now();
    let posted = load(&solver.base, requests, 8).await;
    assert!(posted.failures.is_empty(), "{:?}", posted.failures.first());
    let (mut complete, mut last) = (0, started);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while complete < sizes.subscribers {
        match tokio::time::timeout_at(deadline, finished.recv()).await {
            Ok(Some((heard, at))) => {
                assert_eq!(
                    heard, sizes.events,
                    "a subscriber that keeps up lost events"
                );
                complete += 1;
                last = last.max(at);
            }
            _ => break,
        }
    }
    let wall = last - started;
    println!(
        "fan-out: {} subscribers x {} events: {} subscribers got every event, the last {:.0} ms after the first post ({:.0} events delivered/s)",
        sizes.subscribers,
        sizes.events,
        complete,
        wall.as_secs_f64() * 1e3,
        (complete * sizes.events) as f64 / wall.as_secs_f64()
    );
    println!(
        "solver memory: {:.1} MiB now, {:.1} MiB at most",
        proc_kib(pid, "VmRSS") as f64 / 1024.0,
        proc_kib(pid, "VmHWM") as f64 / 1024.0
    );
    assert_eq!(
        complete,
        sizes.subscribers,
        "some subscribers did not get every event ({} of {} events delivered)",
        heard.load(Ordering::Relaxed),
        sizes.subscribers * sizes.events
    );
    let _ = solver.child.start_kill();
    let _ = solver.child.wait().await;
    let _ = std::fs::remove_dir_all(&solver.data_dir);
}

/// `perf record` of the solver process, running until [`finish_profile`].
fn start_profile(pid: u32, dir: &Path) -> Child {
    Command::new("perf")
        .args(["record", "-F", "499", "-g", "-p", &pid.to_string(), "-o"])
        .arg(dir.join("perf.data"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("perf (BENCH_PROFILE=1 needs linux perf)")
}

/// Stops the recording and prints the functions the solver spent most time in (self time),
/// then the same grouped by library.
async fn finish_profile(mut perf: Child, dir: &Path) {
    if let Some(pid) = perf.id() {
        let _ = std::process::Command::new("kill")
            .args(["-INT", &pid.to_string()])
            .status();
    }
    let _ = perf.wait().await;
    let data = dir.join("perf.data");
    // Self time only: the release build keeps no frame pointers, so time with callees
    // cannot be laid at the solver's own functions.
    for sort in ["sym", "dso"] {
        // Only the share and the name (a wide symbol column would pad every line).
        let fields = format!("overhead,{sort}");
        let report = Command::new("perf")
            .args([
                "report",
                "--no-children",
                "--stdio",
                "--percent-limit",
                "1.5",
                "-g",
                "none",
                "-F",
                &fields,
                "-i",
            ])
            .arg(&data)
            .output()
            .await
            .expect("perf report");
        println!("  profile of the solver during the intake, by {sort} (self time):");
        for line in String::from_utf8_lossy(&report.stdout)
            .lines()
            .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
            .take(25)
        {
            println!("    {}", line.trim_end());
        }
    }
}
