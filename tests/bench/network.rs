//! Network benchmark (`make bench-network`): many jobs through a `lilypad dev` network.
//!
//! 1. jobs: a `lilypad dev` process (anvil, the contracts, the solver, one resource provider
//!    with 8 slots on the real Docker engine, a mediator and `jc`) serves 200 cowsay jobs from
//!    10 job creators, each with its own key and running its 20 `lilypad run`s one after
//!    another. Prints jobs per minute, the time per job (p50, p99, from starting
//!    `lilypad run` to its exit) against a baseline measured first (one job alone, by an
//!    eleventh key), failures, the chain's transactions and gas per job (by
//!    sender), and peak memory: the `lilypad dev` process (every role but the chain), anvil,
//!    and the largest `lilypad run`.
//! 2. open offers: a `lilypad solver` process of its own holding 50,000 open offers (job
//!    offers no provider's price fits, provider offers no job can pay), signed by 400 keys:
//!    its memory once they are in and it has matched over them.
//!
//! `BENCH_JOB_CREATORS`, `BENCH_JOBS` (per job creator), `BENCH_SLOTS` and
//! `BENCH_OPEN_OFFERS` change the sizes. Under `cargo test` it runs a small, checked round.

#[path = "../common/mod.rs"]
mod common;
mod load;

use common::dev_process::DevProcess;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ethers::providers::{Http, Middleware, Provider};
use ethers::signers::{LocalWallet, Signer};
use ethers::types::{Address, U256};
use load::{
    load, metric, proc_kib, signed_job_offer, signed_resource_offer, start_solver, Request,
};
use tokio::process::Command;

#[derive(Clone, Copy)]
struct Sizes {
    job_creators: usize,
    /// Jobs each job creator runs, one after another.
    jobs: usize,
    /// The resource provider's slots.
    slots: usize,
    open_offers: usize,
}

const FULL: Sizes = Sizes {
    job_creators: 10,
    jobs: 20,
    slots: 8,
    open_offers: 50_000,
};

const CHECK: Sizes = Sizes {
    job_creators: 2,
    jobs: 2,
    slots: 2,
    open_offers: 1_000,
};

fn main() {
    let full = load::full_run();
    let number = load::env_number;
    let base = if full { FULL } else { CHECK };
    let sizes = Sizes {
        job_creators: number("BENCH_JOB_CREATORS", base.job_creators),
        jobs: number("BENCH_JOBS", base.jobs),
        slots: number("BENCH_SLOTS", base.slots),
        open_offers: number("BENCH_OPEN_OFFERS", base.open_offers),
    };
    load::runtime().block_on(async {
        jobs(&sizes).await;
        open_offers(sizes.open_offers).await;
    });
}

/// A `lilypad dev` process with `slots` slots, ready to serve `lilypad run`s.
async fn start_dev(dir: &Path, slots: usize) -> DevProcess {
    DevProcess::start_with(
        dir,
        &["--offer-count", &slots.to_string()],
        &[("LOG_LEVEL", "warn".to_string())],
    )
    .await
}

/// One `lilypad run`: how long it took and whether it printed its cow.
struct Run {
    took: Duration,
    failure: Option<String>,
}

async fn run_job(dir: &Path, key: &Path, message: &str) -> Run {
    let started = Instant::now();
    let output = Command::new(env!("CARGO_BIN_EXE_lilypad"))
        .args(["run", "cowsay:v0.0.1", "-i", &format!("Message={message}")])
        .args(["--quiet", "--timeout", "600"])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir)
        .env("DATA_DIR", dir)
        .env("WEB3_PRIVATE_KEY_FILE", key)
        .env("LOG_LEVEL", "warn")
        .kill_on_drop(true)
        .output()
        .await
        .expect("lilypad run starts");
    let took = started.elapsed();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let failure = if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        Some(format!("{}: {}", output.status, stderr.trim()))
    } else if !stdout.contains(&format!("< {message} >")) {
        Some(format!("no cow for {message:?} in {stdout:?}"))
    } else {
        None
    };
    Run { took, failure }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let at = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[at]
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

/// The largest resident set of any child process waited for so far, in KiB.
fn children_peak_kib() -> u64 {
    // SAFETY: getrusage writes one rusage into the zeroed struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    assert_eq!(rc, 0, "getrusage");
    usage.ru_maxrss as u64
}

/// The machine's CPU time so far, in clock ticks: (busy, all), from /proc/stat.
fn machine_busy() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let ticks: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|field| field.parse().ok())
        .collect();
    let all: u64 = ticks.iter().sum();
    // idle and iowait are the 4th and 5th.
    let idle = ticks.get(3).copied().unwrap_or(0) + ticks.get(4).copied().unwrap_or(0);
    (all - idle, all)
}

/// The processes `pid` started (from every one of its threads).
fn children_of(pid: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .flatten()
        .filter_map(|task| std::fs::read_to_string(task.path().join("children")).ok())
        .flat_map(|text| {
            text.split_whitespace()
                .filter_map(|pid| pid.parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect()
}

async fn jobs(sizes: &Sizes) {
    let dir = tempfile::tempdir().unwrap();
    let total = sizes.job_creators * sizes.jobs;
    println!(
        "network benchmark: {total} cowsay jobs from {} job creators ({} each, one after another) on a lilypad dev network with {} slots",
        sizes.job_creators, sizes.jobs, sizes.slots
    );
    let mut dev = start_dev(dir.path(), sizes.slots).await;
    let dev_pid = dev.child.id().expect("lilypad dev runs");
    let network = &dev.network;

    // The job creators' keys, funded by anvil's deployer as the dev network funds its roles.
    let deployer = lilypad::config::parse_key(lilypad::dev::ANVIL_DEPLOYER_KEY).unwrap();
    let (funder, _) = lilypad::chain::client::signing_client(
        &network.rpc_url,
        deployer,
        Duration::from_millis(20),
    )
    .await
    .unwrap();
    // One more key runs the baseline: a job alone on the same network.
    let job_creators: Vec<LocalWallet> = (0..=sizes.job_creators)
        .map(|_| lilypad::keys::generate())
        .collect();
    let mut keys = Vec::new();
    for (n, wallet) in job_creators.iter().enumerate() {
        lilypad::chain::deploy::fund(
            funder.clone(),
            network.deployment.token,
            wallet.address(),
            U256::exp10(20),
            U256::exp10(22),
        )
        .await
        .unwrap();
        let key = dir.path().join(format!("job-creator-{n}.key"));
        lilypad::keys::write_key(&key, wallet).unwrap();
        keys.push(key);
    }

    let alone_key = keys.pop().unwrap();
    let alone_wallet = job_creators.last().unwrap().address();
    let _warm_up = run_job(dir.path(), &alone_key, "warm-up").await;
    let alone = run_job(dir.path(), &alone_key, "alone").await;
    assert!(alone.failure.is_none(), "{:?}", alone.failure);

    let provider = Provider::<Http>::try_from(network.rpc_url.as_str()).unwrap();
    let first_block = provider.get_block_number().await.unwrap().as_u64() + 1;
    let busy_before = machine_busy();
    let started = Instant::now();
    let creators: Vec<_> = keys
        .iter()
        .enumerate()
        .map(|(n, key)| {
            let (dir, key, jobs) = (dir.path().to_path_buf(), key.clone(), sizes.jobs);
            tokio::spawn(async move {
                let mut runs = Vec::new();
                for job in 0..jobs {
                    runs.push(run_job(&dir, &key, &format!("creator {n} job {job}")).await);
                }
                runs
            })
        })
        .collect();
    let mut runs = Vec::new();
    for creator in creators {
        runs.extend(creator.await.unwrap());
    }
    let wall = started.elapsed();
    let (busy, all) = machine_busy();
    let machine = (busy - busy_before.0) as f64 / (all - busy_before.1).max(1) as f64;
    let last_block = provider.get_block_number().await.unwrap().as_u64();

    let run_peak = children_peak_kib();
    let dev_peak = proc_kib(dev_pid, "VmHWM");
    let anvil_peak: u64 = children_of(dev_pid)
        .into_iter()
        .map(|pid| proc_kib(pid, "VmHWM"))
        .max()
        .unwrap_or(0);

    // Every transaction the jobs caused, by who sent it.
    let mut names: BTreeMap<Address, &str> = job_creators
        .iter()
        .filter(|wallet| wallet.address() != alone_wallet)
        .map(|wallet| (wallet.address(), "job creators"))
        .collect();
    names.insert(dev.resource_provider, "resource provider");
    names.insert(network.solver, "solver");
    for mediator in &network.mediators {
        names.insert(*mediator, "mediator");
    }
    let mut by_sender: BTreeMap<&str, (u64, U256)> = BTreeMap::new();
    for number in first_block..=last_block {
        let block = provider
            .get_block(number)
            .await
            .unwrap()
            .expect("a mined block");
        for hash in block.transactions {
            let receipt = provider
                .get_transaction_receipt(hash)
                .await
                .unwrap()
                .expect("a mined transaction's receipt");
            let name = names.get(&receipt.from).copied().unwrap_or("others");
            let entry = by_sender.entry(name).or_default();
            entry.0 += 1;
            entry.1 += receipt.gas_used.unwrap_or_default();
        }
    }
    let _ = dev.child.start_kill();
    let _ = dev.child.wait().await;

    let failures: Vec<&String> = runs.iter().filter_map(|run| run.failure.as_ref()).collect();
    let mut times: Vec<Duration> = runs.iter().map(|run| run.took).collect();
    times.sort();
    println!(
        "jobs: {total} in {:.1} s: {:.1} jobs/minute; time per job p50 {:.2} s, p99 {:.2} s; {} failed",
        wall.as_secs_f64(),
        total as f64 / wall.as_secs_f64() * 60.0,
        percentile(&times, 0.50).as_secs_f64(),
        percentile(&times, 0.99).as_secs_f64(),
        failures.len()
    );
    let floor = alone.took.as_secs_f64() * total as f64 / sizes.slots as f64;
    println!(
        "  baseline: a job alone {:.2} s; p50 is {:.2}x that; the {total} jobs took {:.2}x what {} slots need at that pace ({:.1} s)",
        alone.took.as_secs_f64(),
        percentile(&times, 0.50).as_secs_f64() / alone.took.as_secs_f64(),
        wall.as_secs_f64() / floor,
        sizes.slots,
        floor
    );
    println!(
        "  the machine's CPUs were {:.0}% busy during the run ({} cores)",
        machine * 100.0,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    let (transactions, gas) = by_sender
        .values()
        .fold((0, U256::zero()), |(n, g), (tn, tg)| (n + tn, g + tg));
    println!(
        "chain: {transactions} transactions, {:.2} per job; {} gas, {} per job",
        transactions as f64 / total as f64,
        gas,
        gas / U256::from(total)
    );
    for (name, (count, gas)) in &by_sender {
        println!(
            "  {name:<18} {:>6.2} transactions/job  {:>8} gas/job",
            *count as f64 / total as f64,
            gas / U256::from(total)
        );
    }
    println!(
        "peak memory: lilypad dev (solver, resource provider, mediator, jc) {}, anvil {}, the largest lilypad run {}",
        mib(dev_peak),
        mib(anvil_peak),
        mib(run_peak)
    );
    for failure in failures.iter().take(5) {
        println!("  failure: {failure}");
    }
    assert!(
        failures.is_empty(),
        "{} of {total} jobs failed",
        failures.len()
    );
    assert!(
        transactions as usize >= 2 * total,
        "each job agrees and settles on chain: {transactions} transactions for {total} jobs"
    );
}

/// Signed offers that stay open: job offers at 1 to 10 wei an instruction, provider offers
/// at 1,000, half of each.
fn unmatchable_offers(
    numbers: std::ops::Range<usize>,
    job_creators: &[LocalWallet],
    providers: &[LocalWallet],
    services: &lilypad::data::Services,
) -> Vec<Request> {
    let created = lilypad::data::offers::now_millis();
    numbers
        .map(|n| {
            if n % 2 == 0 {
                let wallet = &job_creators[n / 2 % job_creators.len()];
                let price = 1 + (n as u128 % 10);
                signed_job_offer(wallet, services, created, price, format!("open {n}")).1
            } else {
                let wallet = &providers[n / 2 % providers.len()];
                signed_resource_offer(wallet, services, created, 1000, format!("open {n}")).1
            }
        })
        .collect()
}

/// Offers signed and sent at a time in the open-offers phase.
const OPEN_OFFERS_BATCH: usize = 5_000;

async fn open_offers(count: usize) {
    let dir = tempfile::tempdir().unwrap();
    let mut solver = start_solver(dir.path(), None).await;
    let pid = solver.child.id().expect("the solver runs");
    let before = proc_kib(pid, "VmRSS");
    let keys =
        |n: usize| -> Vec<LocalWallet> { (0..n).map(|_| lilypad::keys::generate()).collect() };
    let (job_creators, providers) = (keys(200), keys(200));
    // Signed a batch at a time, so no signature is older than the solver's clock window
    // when it arrives.
    let mut intake = load(&solver.base, Vec::new(), 1).await;
    for start in (0..count).step_by(OPEN_OFFERS_BATCH) {
        let numbers = start..(start + OPEN_OFFERS_BATCH).min(count);
        let requests = unmatchable_offers(numbers, &job_creators, &providers, &solver.services);
        let batch = load(&solver.base, requests, 32).await;
        intake.latencies.extend(batch.latencies);
        intake.failures.extend(batch.failures);
        intake.wall += batch.wall;
    }
    assert!(
        intake.failures.is_empty(),
        "{} offers refused, the first: {}",
        intake.failures.len(),
        intake.failures[0]
    );
    // The matcher runs after offers arrive; give it time to go over all of them.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let open = metric(&solver.base, "lilypad_open_job_offers").await
        + metric(&solver.base, "lilypad_open_resource_offers").await;
    let deals = metric(&solver.base, "lilypad_deals{").await;
    println!(
        "open offers: a lilypad solver holding {open} open offers ({deals} deals): {} resident now, {} at most ({} when it started)",
        mib(proc_kib(pid, "VmRSS")),
        mib(proc_kib(pid, "VmHWM")),
        mib(before)
    );
    println!("{}", intake.line("  their intake"));
    let database: u64 = data_size(&solver.data_dir);
    println!("  its data directory: {}", mib(database / 1024));
    assert_eq!(open as usize, count, "every offer stays open");
    assert_eq!(deals, 0);
    let _ = solver.child.start_kill();
    let _ = solver.child.wait().await;
}

/// Bytes under `dir`.
fn data_size(dir: &PathBuf) -> u64 {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| match entry.metadata() {
            Ok(meta) if meta.is_dir() => data_size(&entry.path()),
            Ok(meta) => meta.len(),
            Err(_) => 0,
        })
        .sum()
}
