//! Matcher benchmark (`make bench-matcher`): one pass of the solver's matcher over N job
//! offers x N resource offers, for N = 1,000, 10,000 and 50,000 (`MATCHER_SIZES`), with a
//! realistic mix: a job creator per ten jobs, a provider per four offers, jobs needing 0.5 to
//! 4 CPUs and 64 MiB to 4 GiB, some a GPU, providers selling 1 to 8 CPUs (some a GPU),
//! prices drawn from one range, so some jobs find nothing.
//!
//! Each pass is checked (no offer used twice, the same deals from shuffled input) and timed
//! against a baseline measured in the same run: producing the same number of deals from
//! pairs known in advance (building and sealing each deal, the work no matcher avoids). The
//! ratio is the cost of finding the pairs. Peak memory (VmHWM) is read after each size.
//! Under `cargo test` it runs one checked pass of 500 offers each.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use ethers::types::Address;
use lilypad::data::{
    examples, ContentAddressed, Deal, JobOffer, MachineSpec, Pricing, ResourceOffer,
};
use lilypad::solver::matcher::match_offers;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

fn pricing(price: u128) -> Pricing {
    examples::pricing(price)
}

fn address(kind: u8, n: usize) -> Address {
    let mut bytes = [0u8; 20];
    bytes[0] = kind;
    bytes[12..20].copy_from_slice(&(n as u64).to_be_bytes());
    Address::from(bytes)
}

/// N job offers and N resource offers, the same for a given seed.
fn offers(n: usize, seed: u64) -> (Vec<JobOffer>, Vec<ResourceOffer>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let jobs = (0..n)
        .map(|i| {
            let gpu = u64::from(rng.gen_ratio(1, 10));
            let mut job = examples::job_offer(i as u64, rng.gen_range(5..100), 0);
            job.id.clear();
            job.job_creator = address(0x1c, i / 10);
            job.spec = MachineSpec {
                cpu: [500, 1000, 2000, 4000][rng.gen_range(0..4)],
                ram: [64, 512, 1024, 4096][rng.gen_range(0..4)],
                gpu,
                vram: 0,
                disk: 0,
            };
            job.pricing = pricing(job.pricing.instruction_price);
            job.seal()
        })
        .collect();
    let resources = (0..n)
        .map(|i| {
            let mut offer = examples::resource_offer(i as u64, rng.gen_range(1..100), 0);
            offer.id.clear();
            offer.resource_provider = address(0x70, i / 4);
            offer.spec = MachineSpec {
                cpu: [1000, 2000, 4000, 8000][rng.gen_range(0..4)],
                ram: [1024, 2048, 8192][rng.gen_range(0..3)],
                gpu: u64::from(rng.gen_ratio(1, 8)),
                vram: 0,
                disk: 0,
            };
            offer.seal()
        })
        .collect();
    (jobs, resources)
}

/// The median of `runs` timings of `pass`.
fn median(runs: usize, mut pass: impl FnMut() -> Duration) -> Duration {
    let mut times: Vec<Duration> = (0..runs).map(|_| pass()).collect();
    times.sort();
    times[runs / 2]
}

fn peak_memory_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|kb| kb.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn check(deals: &[Deal], jobs: &[JobOffer], resources: &[ResourceOffer]) {
    let mut used_jobs = HashSet::new();
    let mut used_resources = HashSet::new();
    for deal in deals {
        assert!(used_jobs.insert(&deal.job_offer.id), "a job matched twice");
        assert!(
            used_resources.insert(&deal.resource_offer.id),
            "a resource offer booked twice"
        );
    }
    // Every deal the matcher made is a valid proposal of its two offers.
    let job_ids: HashSet<&str> = jobs.iter().map(|j| j.id.as_str()).collect();
    let resource_ids: HashSet<&str> = resources.iter().map(|r| r.id.as_str()).collect();
    for deal in deals {
        assert!(job_ids.contains(deal.job_offer.id.as_str()));
        assert!(resource_ids.contains(deal.resource_offer.id.as_str()));
    }
}

fn main() {
    // `cargo bench` passes --bench; `cargo test` (make test) runs one small checked pass.
    let benching = std::env::args().any(|arg| arg == "--bench");
    let default = if benching { "1000,10000,50000" } else { "500" };
    let sizes: Vec<usize> = std::env::var("MATCHER_SIZES")
        .unwrap_or_else(|_| default.into())
        .split(',')
        .map(|n| {
            n.trim()
                .parse()
                .expect("MATCHER_SIZES: numbers, comma-separated")
        })
        .collect();
    println!(
        "{:>7} {:>7} {:>12} {:>14} {:>7} {:>12}",
        "offers", "deals", "matcher ms", "baseline ms", "ratio", "peak MiB"
    );
    let mut previous: Option<(usize, Duration)> = None;
    for n in sizes {
        let (jobs, resources) = offers(n, 7);
        let negotiating = HashMap::new();
        let runs = if n >= 50_000 { 3 } else { 5 };
        let mut deals = Vec::new();
        let matched = median(runs, || {
            let started = Instant::now();
            deals = match_offers(&jobs, &resources, &negotiating, || 0);
            started.elapsed()
        });
        check(&deals, &jobs, &resources);
        // Arrival order does not matter.
        let (mut shuffled_jobs, mut shuffled_resources) = (jobs.clone(), resources.clone());
        let mut rng = StdRng::seed_from_u64(11);
        shuffled_jobs.shuffle(&mut rng);
        shuffled_resources.shuffle(&mut rng);
        let again = match_offers(&shuffled_jobs, &shuffled_resources, &negotiating, || 0);
        let ids = |deals: &[Deal]| deals.iter().map(|d| d.id.clone()).collect::<HashSet<_>>();
        assert_eq!(ids(&deals), ids(&again), "the same deals from any order");

        // Baseline: the same deals from pairs known in advance.
        let job_by_id: HashMap<&str, &JobOffer> = jobs.iter().map(|j| (j.id.as_str(), j)).collect();
        let resource_by_id: HashMap<&str, &ResourceOffer> =
            resources.iter().map(|r| (r.id.as_str(), r)).collect();
        let pairs: Vec<(&JobOffer, &ResourceOffer)> = deals
            .iter()
            .map(|deal| {
                (
                    job_by_id[deal.job_offer.id.as_str()],
                    resource_by_id[deal.resource_offer.id.as_str()],
                )
            })
            .collect();
        let baseline = median(runs, || {
            let started = Instant::now();
            for (job, resource) in &pairs {
                let _ = std::hint::black_box(Deal::propose(job, resource, 0));
            }
            started.elapsed()
        });
        println!(
            "{:>7} {:>7} {:>12.1} {:>14.1} {:>7.2} {:>12.0}",
            n,
            deals.len(),
            matched.as_secs_f64() * 1000.0,
            baseline.as_secs_f64() * 1000.0,
            matched.as_secs_f64() / baseline.as_secs_f64(),
            peak_memory_mib()
        );
        if let Some((m, time)) = previous {
            println!(
                "        {}x the offers took {:.1}x the time",
                n / m,
                matched.as_secs_f64() / time.as_secs_f64()
            );
        }
        previous = Some((n, matched));
    }
}
