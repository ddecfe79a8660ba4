//! The load generator the benchmarks share: prepared (signed) requests sent over loopback
//! with a fixed number in flight, a `lilypad solver` process on its own anvil chain, and
//! readings of a process's memory and the solver's `/metrics`.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ethers::signers::{LocalWallet, Signer};
use lilypad::data::signing::{now_secs, sign, ADDRESS_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use lilypad::data::{examples, ContentAddressed, Services};
use tokio::process::{Child, Command};

/// Latencies of one phase, and its wall time.
pub struct Phase {
    pub latencies: Vec<Duration>,
    pub wall: Duration,
    pub failures: Vec<String>,
}

impl Phase {
    pub fn rate(&self) -> f64 {
        self.latencies.len() as f64 / self.wall.as_secs_f64()
    }

    pub fn percentile(&self, p: f64) -> Duration {
        let mut sorted = self.latencies.clone();
        sorted.sort();
        let at = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
        sorted[at]
    }

    pub fn line(&self, what: &str) -> String {
        format!(
            "{what:<34} {:>9.0} requests/s   p50 {:>7.2} ms   p99 {:>7.2} ms   ({} requests, {} failed)",
            self.rate(),
            self.percentile(0.50).as_secs_f64() * 1e3,
            self.percentile(0.99).as_secs_f64() * 1e3,
            self.latencies.len(),
            self.failures.len()
        )
    }
}

/// One prepared request: a path and, for a POST, its body and signature headers.
pub struct Request {
    pub path: &'static str,
    pub body: Option<Vec<u8>>,
    pub headers: Vec<(&'static str, String)>,
}

pub fn signed(wallet: &LocalWallet, path: &'static str, body: Vec<u8>) -> Request {
    let headers = sign(wallet, "POST", path, now_secs(), &body);
    Request {
        path,
        headers: vec![
            (ADDRESS_HEADER, format!("{:?}", headers.address)),
            (TIMESTAMP_HEADER, headers.timestamp.to_string()),
            (SIGNATURE_HEADER, headers.signature),
        ],
        body: Some(body),
    }
}

/// Sends `requests` to `base` with `concurrency` in flight, timing each.
pub async fn load(base: &str, requests: Vec<Request>, concurrency: usize) -> Phase {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()
        .unwrap();
    let requests = Arc::new(requests);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (http, requests, next) = (http.clone(), requests.clone(), next.clone());
            let base = base.to_string();
            tokio::spawn(async move {
                let (mut latencies, mut failures) = (Vec::new(), Vec::new());
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    let Some(request) = requests.get(n) else {
                        break;
                    };
                    let url = format!("{base}{}", request.path);
                    let mut call = match &request.body {
                        Some(body) => http.post(&url).body(body.clone()),
                        None => http.get(&url),
                    };
                    for (name, value) in &request.headers {
                        call = call.header(*name, value);
                    }
                    let sent = Instant::now();
                    match call.send().await {
                        Ok(response) if response.status().is_success() => {
                            let _ = response.bytes().await;
                        }
                        Ok(response) => {
                            let status = response.status();
                            let text = response.text().await.unwrap_or_default();
                            failures.push(format!("{status}: {text}"));
                        }
                        Err(error) => failures.push(error.to_string()),
                    }
                    latencies.push(sent.elapsed());
                }
                (latencies, failures)
            })
        })
        .collect();
    let mut phase = Phase {
        latencies: Vec::new(),
        wall: Duration::ZERO,
        failures: Vec::new(),
    };
    for worker in workers {
        let (latencies, failures) = worker.await.unwrap();
        phase.latencies.extend(latencies);
        phase.failures.extend(failures);
    }
    phase.wall = started.elapsed();
    phase
}

/// The solver process and what it needs.
pub struct Solver {
    pub child: Child,
    pub base: String,
    pub data_dir: PathBuf,
    pub services: Services,
    _anvil: Child,
}

pub async fn start_solver(dir: &Path, database_url: Option<&str>) -> Solver {
    let anvil = lilypad::dev::find_anvil(None).expect("anvil (make deps)");
    let (node, rpc_url) = lilypad::dev::start_anvil(&anvil, &[]).await.unwrap();
    let deployer = lilypad::config::parse_key(lilypad::dev::ANVIL_DEPLOYER_KEY).unwrap();
    let solver = lilypad::keys::generate();
    let (deployment, _) =
        lilypad::dev::deploy_and_fund(&rpc_url, &deployer, deployer.address(), &[solver.address()])
            .await
            .expect("the contracts deploy");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let data_dir = dir.join("solver");
    std::fs::create_dir_all(&data_dir).unwrap();
    let key = data_dir.join("key");
    lilypad::keys::write_key(&key, &solver).unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_lilypad"));
    command
        .arg("solver")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", &data_dir)
        .env("DATA_DIR", &data_dir)
        .env("LOG_LEVEL", "warn")
        .env("WEB3_PRIVATE_KEY_FILE", &key)
        .env("WEB3_RPC_URL", &rpc_url)
        .env(
            "WEB3_CONTROLLER_ADDRESS",
            format!("{:?}", deployment.controller),
        )
        .env("SERVER_PORT", port.to_string())
        .env("MAX_OPEN_JOB_OFFERS", "1000000")
        // The benchmark measures the solver itself: one load generator on one IP, no limits.
        .env("RATE_LIMIT_PER_IP", "0")
        .env("RATE_LIMIT_PER_ADDRESS", "0")
        .env("MAX_WS_CLIENTS", "0")
        .env("MAX_WS_CLIENTS_PER_IP", "0")
        .env("OFFER_TTL", "3600")
        .env("POLL_INTERVAL_MS", "1000")
        .stdout(Stdio::null())
        .stderr(Stdio::from(
            std::fs::File::create(dir.join("solver.log")).unwrap(),
        ))
        .kill_on_drop(true);
    if let Some(url) = database_url {
        command.env("SOLVER_DATABASE_URL", url);
    }
    let child = command.spawn().expect("the lilypad binary starts");
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    for _ in 0..300 {
        if http.get(format!("{base}/health")).send().await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Solver {
        child,
        base,
        data_dir,
        services: Services {
            solver: solver.address(),
            mediators: vec![lilypad::keys::generate().address()],
        },
        _anvil: node,
    }
}

/// The sum of the solver's `/metrics` samples whose line starts with `prefix`.
pub async fn metric(base: &str, prefix: &str) -> u64 {
    let text = reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|line| line.starts_with(prefix))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// A value from /proc/PID/status, in KiB (VmRSS, VmHWM).
pub fn proc_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// CPU time (user and system) process `pid` has used so far.
pub fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) close with ')'; utime and
    // stime are the 12th and 13th after it, in clock ticks.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let ticks: u64 = after
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|field| field.parse::<u64>().ok())
        .sum();
    // SAFETY: sysconf only reads a configuration value.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Duration::from_millis(ticks * 1000 / per_second)
}

/// A cowsay job offer of `wallet` for `services` (`cpu` millicores, paying up to `max_price`
/// an instruction), sealed and signed as a POST: its id and the request.
pub fn signed_job_offer(
    wallet: &LocalWallet,
    services: &Services,
    created: u64,
    max_price: u128,
    nonce: String,
) -> (String, Request) {
    let mut offer = examples::job_offer(created, max_price, 500);
    offer.id.clear();
    offer.job_creator = wallet.address();
    offer.services = services.clone();
    offer.nonce = nonce;
    let offer = offer.seal();
    let body = serde_json::to_vec(&offer).unwrap();
    (offer.id, signed(wallet, "/api/v1/job_offers", body))
}

/// A resource offer of `wallet` for `services` at `price` an instruction, sealed and signed
/// as a POST: its id and the request.
pub fn signed_resource_offer(
    wallet: &LocalWallet,
    services: &Services,
    created: u64,
    price: u128,
    nonce: String,
) -> (String, Request) {
    let mut offer = examples::resource_offer(created, price, 1000);
    offer.id.clear();
    offer.resource_provider = wallet.address();
    offer.services = services.clone();
    offer.nonce = nonce;
    let offer = offer.seal();
    let body = serde_json::to_vec(&offer).unwrap();
    (offer.id, signed(wallet, "/api/v1/resource_offers", body))
}

/// Whether this is `cargo bench` (a full run) rather than `cargo test` (a small, checked one).
pub fn full_run() -> bool {
    std::env::args().any(|arg| arg == "--bench")
}

/// The number in environment variable `name`, or `default`.
pub fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .map(|value| value.parse().expect("a number"))
        .unwrap_or(default)
}

/// The runtime a benchmark's generator runs on.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime")
}
