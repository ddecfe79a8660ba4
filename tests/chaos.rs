//! Chaos: twenty jobs through separate `lilypad` processes (a solver, three resource
//! providers on the real Docker engine, a mediator, the on-chain job service `jc`, and the
//! job creators' `lilypad run`s) on a real anvil chain, while a seeded driver kills random
//! processes with SIGKILL at random moments and starts them again on the same data
//! directories (a killed `run` is started again with `--resume` and the id it saved).
//!
//! At the end of each seed: every job was paid for exactly once and printed its cow, every
//! deal is over on chain, the Payments contract and the on-chain job creator hold nothing,
//! every party's balance moved by exactly what its deals' end states say (to the wei) and the
//! token supply is all accounted for, and no resource provider ever had more containers
//! running at once than it has slots (counted from the Docker engine's own events).
//!
//! `CHAOS_SEEDS` (default `1,2,3`) picks the seeds; `make chaos` runs more.
//!
//! A second test kills job creators at set points of their deals and checks that the
//! resource provider keeps offering the slots those deals no longer need.

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::procs::{deal_ends, saved_job, settlement, wait_for_health, Proc};
use common::LP;
use ethers::signers::{LocalWallet, Signer};
use ethers::types::{Address, U256};
use futures::StreamExt;
use lilypad::chain::deploy::Deployment;
use lilypad::chain::terms::{deal_key, terms_of};
use lilypad::chain::Chain;
use lilypad::client::SolverClient;
use lilypad::data::{Deal, DealState};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::process::Child;

/// Resource providers, and the jobs each runs at once.
const RPS: usize = 3;
const SLOTS: usize = 2;
/// Job creator keys the `lilypad run`s share, and how many runs there are.
const JOB_CREATORS: usize = 4;
const RUNS: usize = 16;
/// Jobs requested by contracts (through the example client), served by `lilypad jc`.
const ONCHAIN_JOBS: usize = 4;
/// Every fourth run has its results checked by the mediator.
const CHECKED_EVERY: usize = 4;
/// Processes killed per seed.
const KILLS: usize = 12;
/// How long the jobs may take to end once the driver stops killing.
const SETTLE: Duration = Duration::from_secs(300);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_jobs_survive_processes_killed_at_random() {
    let seeds: Vec<u64> = std::env::var("CHAOS_SEEDS")
        .unwrap_or_else(|_| "1,2,3".into())
        .split(',')
        .map(|seed| {
            seed.trim()
                .parse()
                .expect("CHAOS_SEEDS: numbers, comma-separated")
        })
        .collect();
    for seed in seeds {
        let report = chaos_run(seed).await;
        eprintln!("{report}");
    }
}

/// The network of one seed: the chain (in this process) and its keys.
struct World {
    dir: PathBuf,
    _anvil: Child,
    rpc_url: String,
    deployment: Deployment,
    deployer: LocalWallet,
    solver: LocalWallet,
    rps: Vec<LocalWallet>,
    mediator: LocalWallet,
    operator: LocalWallet,
    job_creators: Vec<LocalWallet>,
    requesters: Vec<LocalWallet>,
    solver_url: String,
    solver_port: u16,
}

impl World {
    async fn start(dir: &Path) -> World {
        let anvil = lilypad::dev::find_anvil(None).expect("anvil (make deps)");
        let (node, rpc_url) = lilypad::dev::start_anvil(&anvil, &[]).await.unwrap();
        let deployer = lilypad::config::parse_key(lilypad::dev::ANVIL_DEPLOYER_KEY).unwrap();
        let new = |n: usize| {
            (0..n)
                .map(|_| lilypad::keys::generate())
                .collect::<Vec<_>>()
        };
        let (solver, mediator, operator) = (
            lilypad::keys::generate(),
            lilypad::keys::generate(),
            lilypad::keys::generate(),
        );
        let (rps, job_creators, requesters) = (new(RPS), new(JOB_CREATORS), new(ONCHAIN_JOBS));
        let funded: Vec<Address> = [&solver, &mediator, &operator]
            .into_iter()
            .chain(&rps)
            .chain(&job_creators)
            .chain(&requesters)
            .map(|wallet| wallet.address())
            .collect();
        let (deployment, _) =
            lilypad::dev::deploy_and_fund(&rpc_url, &deployer, operator.address(), &funded)
                .await
                .expect("the contracts deploy");
        let solver_port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        World {
            dir: dir.to_path_buf(),
            _anvil: node,
            rpc_url,
            deployment,
            deployer,
            solver,
            rps,
            mediator,
            operator,
            job_creators,
            requesters,
            solver_url: format!("http://127.0.0.1:{solver_port}"),
            solver_port,
        }
    }

    /// A process of `lilypad ARGS` signing with `wallet`, its data in `name/` (configured
    /// the way the README tells operators: environment and a key file).
    fn proc(&self, name: &str, args: &[&str], wallet: &LocalWallet) -> Proc {
        let env: Vec<(String, String)> = [
            ("WEB3_RPC_URL", self.rpc_url.clone()),
            (
                "WEB3_CONTROLLER_ADDRESS",
                format!("{:?}", self.deployment.controller),
            ),
            (
                "WEB3_EXAMPLE_CLIENT_ADDRESS",
                format!("{:?}", self.deployment.example_client),
            ),
            ("SERVICE_SOLVER", format!("{:?}", self.solver.address())),
            (
                "SERVICE_MEDIATORS",
                format!("{:?}", self.mediator.address()),
            ),
            ("SOLVER_URL", self.solver_url.clone()),
            ("SERVER_PORT", self.solver_port.to_string()),
            ("POLL_INTERVAL_MS", "100".into()),
            ("OFFER_CPU", "1000".into()),
            ("OFFER_RAM", "512".into()),
            ("OFFER_COUNT", SLOTS.to_string()),
            ("JC_MATCH_TIMEOUT", "600".into()),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_string(), value))
        .chain(common::terms_env())
        .collect();
        Proc::new(name, args, wallet, self.dir.join(name), env)
    }

    /// A chain client (reads only) for balances and deal records.
    async fn reader(&self) -> Chain {
        Chain::connect(
            &self.rpc_url,
            self.deployer.clone(),
            self.deployment.controller,
            Duration::from_millis(100),
        )
        .await
        .unwrap()
    }
}

/// Containers running at once per owner (a role's data dir), from the engine's events.
#[derive(Default)]
struct Containers {
    running: HashMap<String, HashSet<String>>,
    most: HashMap<String, usize>,
    started: HashMap<String, usize>,
}

/// Follows the Docker engine's start and die events of containers our roles label.
fn watch_containers() -> (
    Arc<Mutex<Containers>>,
    tokio::task::JoinHandle<()>,
    tokio::sync::oneshot::Receiver<()>,
) {
    let seen = Arc::new(Mutex::new(Containers::default()));
    let (ready, listening) = tokio::sync::oneshot::channel();
    let task = tokio::spawn({
        let seen = seen.clone();
        async move {
            let docker = bollard::Docker::connect_with_local_defaults().unwrap();
            let label = lilypad::executor::docker::OWNER_LABEL;
            let filters = HashMap::from([
                ("type", vec!["container"]),
                ("label", vec![label]),
                ("event", vec!["start", "die"]),
            ]);
            let options = bollard::query_parameters::EventsOptionsBuilder::new()
                .filters(&filters)
                .build();
            let mut events = docker.events(Some(options));
            // The engine answers the request only once the stream is open.
            let _ = docker.ping().await;
            let _ = ready.send(());
            while let Some(Ok(event)) = events.next().await {
                let Some(actor) = event.actor else { continue };
                let (Some(id), Some(attributes)) = (actor.id, actor.attributes) else {
                    continue;
                };
                let Some(owner) = attributes.get(label).cloned() else {
                    continue;
                };
                let mut seen = seen.lock().unwrap();
                match event.action.as_deref() {
                    Some("start") => {
                        *seen.started.entry(owner.clone()).or_default() += 1;
                        let running = seen.running.entry(owner.clone()).or_default();
                        running.insert(id);
                        let now = running.len();
                        let most = seen.most.entry(owner).or_default();
                        *most = (*most).max(now);
                    }
                    Some("die") => {
                        seen.running.entry(owner).or_default().remove(&id);
                    }
                    _ => {}
                }
            }
        }
    });
    (seen, task, listening)
}

async fn chaos_run(seed: u64) -> String {
    let tmp = tempfile::tempdir().unwrap();
    let world = World::start(tmp.path()).await;
    let reader = world.reader().await;
    let token = reader.contracts.token.clone();
    let supply = token.total_supply().call().await.unwrap();
    let deposit = reader
        .contracts
        .job_creator
        .required_deposit()
        .call()
        .await
        .unwrap();
    let treasury = world.deployer.address();
    let mut parties: Vec<Address> = [
        treasury,
        world.solver.address(),
        world.mediator.address(),
        world.operator.address(),
        world.deployment.payments,
        world.deployment.job_creator,
        world.deployment.example_client,
    ]
    .into_iter()
    .chain(world.rps.iter().map(|w| w.address()))
    .chain(world.job_creators.iter().map(|w| w.address()))
    .chain(world.requesters.iter().map(|w| w.address()))
    .collect();
    parties.dedup();
    let before = common::balances(&reader, &parties).await;
    let sum = |balances: &[U256]| balances.iter().fold(U256::zero(), |a, b| a + b);
    assert_eq!(
        sum(&before),
        supply,
        "every token starts with a known party"
    );

    let (containers, watcher, listening) = watch_containers();
    listening.await.unwrap();

    // The long-running roles, then the jobs.
    let mut roles = vec![world.proc("solver", &["solver"], &world.solver)];
    for (i, rp) in world.rps.iter().enumerate() {
        roles.push(world.proc(&format!("rp{i}"), &["rp"], rp));
    }
    roles.push(world.proc("mediator", &["mediator"], &world.mediator));
    roles.push(world.proc("jc", &["jc"], &world.operator));
    for role in &mut roles {
        role.start();
    }
    let solver = SolverClient::new(&world.solver_url, lilypad::keys::generate());
    wait_for_health(&solver).await;
    let mut jobs: Vec<Proc> = Vec::new();
    for n in 0..RUNS {
        let message = format!("Message=chaos {n}");
        let mut args = vec![
            "run",
            "cowsay:v0.0.1",
            "-i",
            &message,
            "--quiet",
            "--timeout",
            "600",
        ];
        if n % CHECKED_EVERY == 0 {
            args.extend(["--mediation-chance", "100"]);
        }
        let key = &world.job_creators[n % JOB_CREATORS];
        jobs.push(world.proc(&format!("run{n}"), &args, key));
    }
    for (n, requester) in world.requesters.iter().enumerate() {
        let message = format!("onchain {n}");
        jobs.push(world.proc(
            &format!("onchain{n}"),
            &["run-cowsay-onchain", &message, "--timeout", "600"],
            requester,
        ));
    }
    for job in &mut jobs {
        job.start();
    }

    // The driver: kill a process at random, wait, start it again on the same data.
    let started = Instant::now();
    let mut rng = StdRng::seed_from_u64(seed);
    let mut kills = Vec::new();
    for _ in 0..KILLS {
        tokio::time::sleep(Duration::from_millis(rng.gen_range(300..2000))).await;
        let mut live: Vec<&mut Proc> = roles.iter_mut().collect();
        live.extend(
            jobs.iter_mut()
                .filter(|job| job.args[0] == "run")
                .filter_map(|job| job.alive().then_some(job)),
        );
        let victim = rng.gen_range(0..live.len());
        let victim = &mut live[victim];
        victim.kill().await;
        let down = Duration::from_millis(rng.gen_range(0..1500));
        kills.push(format!(
            "{} at {:.1} s (down {} ms)",
            victim.name,
            started.elapsed().as_secs_f64(),
            down.as_millis()
        ));
        tokio::time::sleep(down).await;
        victim.start();
    }

    // Every job ends by itself.
    let deadline = Instant::now() + SETTLE;
    while jobs.iter_mut().any(Proc::alive) {
        if Instant::now() > deadline {
            let tails: Vec<String> = roles.iter().chain(&jobs).map(Proc::tails).collect();
            panic!(
                "seed {seed}: jobs still running after {} s; kills: {kills:?}\n{}",
                SETTLE.as_secs(),
                tails.join("\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for job in &jobs {
        let status = job.exit.expect("reaped");
        assert!(
            status.success(),
            "seed {seed}: {} failed ({status}); kills: {kills:?}\n{}\n{}",
            job.name,
            job.tails(),
            roles.iter().map(Proc::tails).collect::<Vec<_>>().join("\n")
        );
        let cow = if job.args[0] == "run" {
            format!("< chaos {} >", &job.name[3..])
        } else {
            format!("< onchain {} >", &job.name[7..])
        };
        assert!(
            job.last("stdout").contains(&cow),
            "seed {seed}: {} printed no {cow:?}: {}",
            job.name,
            job.last("stdout")
        );
    }

    // Every deal the solver made is over on chain (the roles, still running, finish what is
    // theirs to finish: the RP is paid, the mediator decides).
    wait_for_health(&solver).await;
    let rps: Vec<Address> = world.rps.iter().map(|rp| rp.address()).collect();
    let ends = deal_ends(&solver, &reader, &rps).await;
    for (deal, state, _) in &ends {
        assert!(
            state.is_terminal(),
            "seed {seed}: deal {} is still {state}; kills: {kills:?}",
            deal.id
        );
    }

    for role in &mut roles {
        role.stop().await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    watcher.abort();

    // Each job was paid for once: one deal with accepted results per job.
    let mut paid: BTreeMap<String, usize> = BTreeMap::new();
    let mut states: BTreeMap<&str, usize> = BTreeMap::new();
    for (deal, state, _) in &ends {
        *states.entry(state.name()).or_default() += 1;
        if state.is_success() {
            let message = deal
                .job_offer
                .inputs
                .get("Message")
                .cloned()
                .unwrap_or_default();
            *paid.entry(message).or_default() += 1;
        }
    }
    let wanted: Vec<String> = (0..RUNS)
        .map(|n| format!("chaos {n}"))
        .chain((0..ONCHAIN_JOBS).map(|n| format!("onchain {n}")))
        .collect();
    for message in &wanted {
        assert_eq!(
            paid.get(message).copied().unwrap_or(0),
            1,
            "seed {seed}: job {message:?} paid for once; paid deals per job: {paid:?}"
        );
    }
    assert_eq!(paid.len(), wanted.len(), "no other job was paid: {paid:?}");

    // Money: each party moved by exactly what its deals' ends say, escrow is empty and every
    // token is still held by a known party.
    let after = common::balances(&reader, &parties).await;
    let mut expected: HashMap<Address, i128> = HashMap::new();
    for (deal, state, instructions) in &ends {
        for (who, change) in settlement(deal, *state, *instructions) {
            let who = if who.is_zero() { treasury } else { who };
            *expected.entry(who).or_default() += change;
        }
    }
    let deposit = i128::try_from(deposit.as_u128()).unwrap();
    for requester in &world.requesters {
        *expected.entry(requester.address()).or_default() -= deposit;
    }
    *expected.entry(world.operator.address()).or_default() += deposit * ONCHAIN_JOBS as i128;
    let changes = common::signed_changes(&before, &after);
    for (i, who) in parties.iter().enumerate() {
        assert_eq!(
            changes[i],
            expected.get(who).copied().unwrap_or(0),
            "seed {seed}: balance change of {who:?} (wei); deal ends: {states:?}"
        );
    }
    let payments = parties
        .iter()
        .position(|p| *p == world.deployment.payments)
        .unwrap();
    let onchain = parties
        .iter()
        .position(|p| *p == world.deployment.job_creator)
        .unwrap();
    assert_eq!(
        after[payments],
        U256::zero(),
        "seed {seed}: Payments holds nothing"
    );
    assert_eq!(
        after[onchain],
        U256::zero(),
        "seed {seed}: the job creator contract holds nothing"
    );
    assert_eq!(sum(&after), supply, "seed {seed}: token supply conserved");

    // No resource provider ran more jobs at once than its slots, and none is left running.
    let mut most = Vec::new();
    {
        let containers = containers.lock().unwrap();
        for i in 0..RPS {
            let owner = lilypad::executor::docker::owner_of(&world.dir.join(format!("rp{i}/rp")));
            let at_once = containers.most.get(&owner).copied().unwrap_or(0);
            let started = containers.started.get(&owner).copied().unwrap_or(0);
            assert!(
                at_once <= SLOTS,
                "seed {seed}: rp{i} ran {at_once} containers at once with {SLOTS} slots"
            );
            most.push(format!(
                "rp{i} {started} started, at most {at_once} at once"
            ));
        }
    }
    let docker = bollard::Docker::connect_with_local_defaults().unwrap();
    let filters = HashMap::from([("label", vec![lilypad::executor::docker::OWNER_LABEL])]);
    let options = bollard::query_parameters::ListContainersOptionsBuilder::new()
        .all(true)
        .filters(&filters)
        .build();
    let left: Vec<_> = docker
        .list_containers(Some(options))
        .await
        .unwrap()
        .into_iter()
        .filter(|c| {
            c.labels
                .as_ref()
                .and_then(|l| l.get(lilypad::executor::docker::OWNER_LABEL))
                .is_some_and(|owner| owner.starts_with(&world.dir.display().to_string()))
        })
        .collect();
    assert!(
        left.is_empty(),
        "seed {seed}: containers left behind: {left:?}"
    );

    let lp = |i: usize| format!("{:.0}", after[i].as_u128() as f64 / LP as f64);
    let treasury_at = parties.iter().position(|p| *p == treasury).unwrap();
    // Net changes in LP of each group of parties (exact per party, checked above).
    let net = |who: &[Address]| {
        let wei: i128 = parties
            .iter()
            .zip(&changes)
            .filter(|(p, _)| who.contains(p))
            .map(|(_, c)| *c)
            .sum();
        format!("{:+}", wei as f64 / LP as f64)
    };
    let addresses =
        |wallets: &[LocalWallet]| wallets.iter().map(|w| w.address()).collect::<Vec<_>>();
    format!(
        "chaos seed {seed}: {} jobs in {:.0} s, {} kills [{}]; deals {states:?}; {}; LP moved: job creators {}, requesters {}, jc operator {}, RPs {}, mediator {}, treasury {}; end: Payments {} wei, job creator contract {} wei, treasury {} LP, supply {} LP conserved",
        wanted.len(),
        started.elapsed().as_secs_f64(),
        kills.len(),
        kills.join(", "),
        most.join(", "),
        net(&addresses(&world.job_creators)),
        net(&addresses(&world.requesters)),
        net(&[world.operator.address()]),
        net(&addresses(&world.rps)),
        net(&[world.mediator.address()]),
        net(&[treasury]),
        after[payments],
        after[onchain],
        lp(treasury_at),
        supply / U256::from(LP),
    )
}

/// How long a deal holds its slot waiting for the job creator to agree, in the test below.
const AGREE_WINDOW_SECS: u64 = 2;

/// When a victim `lilypad run` is killed.
#[derive(Clone, Copy, Debug)]
enum KillAt {
    /// As soon as the solver shows its deal, which it was kept from agreeing to.
    DealMade,
    /// Once the chain shows it agreed: the resource provider then agrees and runs its job,
    /// and nobody is left to judge the results.
    JobCreatorAgreed,
}

/// Job creators are killed with SIGKILL in the middle of their deals, and every deal's
/// timeouts are ten minutes away. The resource provider does not wait for them: a slot whose
/// deal the job creator never agreed to is offered again after the agree window, one whose
/// results were submitted is offered again at once (judging needs no machine). Two honest
/// jobs then run on its two slots while every dead job creator's deal is still open on chain.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn job_creators_killed_mid_deal_do_not_keep_the_resource_providers_slots() {
    let tmp = tempfile::tempdir().unwrap();
    let world = World::start(tmp.path()).await;
    let reader = world.reader().await;
    let (containers, watcher, listening) = watch_containers();
    listening.await.unwrap();

    let mut solver = world.proc("solver", &["solver"], &world.solver);
    let mut rp = world.proc("rp0", &["rp"], &world.rps[0]);
    rp.env
        .push(("OFFER_AGREE_WINDOW".into(), AGREE_WINDOW_SECS.to_string()));
    solver.start();
    let client = SolverClient::new(&world.solver_url, lilypad::keys::generate());
    wait_for_health(&client).await;
    let provider = world.rps[0].address();
    let free_slots = || async {
        client
            .resource_offers(provider)
            .await
            .map(|offers| offers.iter().filter(|o| o.deal_id.is_none()).count())
            .unwrap_or(0)
    };
    let until_all_free = |what: &'static str| async move {
        let since = Instant::now();
        while free_slots().await < SLOTS {
            assert!(
                since.elapsed() < Duration::from_secs(60),
                "{what}: the resource provider offers {} of its {SLOTS} slots",
                free_slots().await
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        since.elapsed()
    };

    // Four job creators, each with its own key, two killed at each point. They post their
    // job offers before the resource provider starts; those to be killed before agreeing are
    // frozen (SIGSTOP) then, so they cannot agree to the deal they are about to get.
    let plan = [
        KillAt::DealMade,
        KillAt::JobCreatorAgreed,
        KillAt::DealMade,
        KillAt::JobCreatorAgreed,
    ];
    let mut victims: Vec<(Proc, KillAt, Option<Deal>)> = plan
        .iter()
        .enumerate()
        .map(|(n, at)| {
            let message = format!("Message=victim {n}");
            let args = ["run", "cowsay:v0.0.1", "-i", &message, "--timeout", "600"];
            let run = world.proc(&format!("victim{n}"), &args, &world.job_creators[n]);
            (run, *at, None)
        })
        .collect();
    for (run, _, _) in &mut victims {
        run.start();
    }
    for (n, (run, at, _)) in victims.iter_mut().enumerate() {
        let since = Instant::now();
        loop {
            let posted = match saved_job(&run.data_dir) {
                Some(id) => client.job_offer(&id).await.is_ok(),
                None => false,
            };
            if posted {
                break;
            }
            assert!(
                run.alive() && since.elapsed() < Duration::from_secs(60),
                "victim {n} posted no job offer: {}",
                run.tails()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if let (KillAt::DealMade, Some(pid)) = (at, run.child.as_ref().and_then(Child::id)) {
            let frozen = std::process::Command::new("kill")
                .args(["-STOP", &pid.to_string()])
                .status()
                .unwrap();
            assert!(frozen.success());
        }
    }
    rp.start();
    let since = Instant::now();
    while victims.iter().any(|(run, _, _)| run.child.is_some()) {
        for (n, (run, at, deal)) in victims.iter_mut().enumerate() {
            if run.child.is_none() {
                continue;
            }
            assert!(
                run.alive(),
                "victim {n} ended before it was killed: {}",
                run.tails()
            );
            let query = format!("job_creator={:?}", world.job_creators[n].address());
            let Some(record) = client.deals(&query).await.unwrap().into_iter().next() else {
                continue;
            };
            let due = match at {
                KillAt::DealMade => true,
                KillAt::JobCreatorAgreed => {
                    let key = deal_key(record.deal.chain_id().unwrap(), &terms_of(&record.deal));
                    reader.agreement(key).await.unwrap().job_creator_agreed
                }
            };
            if due {
                run.kill().await;
                *deal = Some(record.deal);
            }
        }
        assert!(
            since.elapsed() < Duration::from_secs(120),
            "the victims' deals were not all made"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let freed = until_all_free("after the job creators died").await;
    eprintln!(
        "all {SLOTS} slots offered again {} ms after the last job creator died",
        freed.as_millis()
    );

    // Two honest jobs at once, with keys that have no history here.
    let mut honest: Vec<Proc> = (0..SLOTS)
        .map(|n| {
            let message = format!("Message=honest {n}");
            let args = [
                "run",
                "cowsay:v0.0.1",
                "-i",
                &message,
                "--quiet",
                "--timeout",
                "600",
            ];
            world.proc(&format!("honest{n}"), &args, &world.requesters[n])
        })
        .collect();
    for run in &mut honest {
        run.start();
    }
    let since = Instant::now();
    while honest.iter_mut().any(Proc::alive) {
        assert!(
            since.elapsed() < Duration::from_secs(120),
            "the honest jobs did not end: {}\n{}",
            honest
                .iter()
                .map(Proc::tails)
                .collect::<Vec<_>>()
                .join("\n"),
            rp.tails()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for (n, run) in honest.iter().enumerate() {
        let status = run.exit.expect("reaped");
        assert!(status.success(), "honest {n}: {status}\n{}", run.tails());
        let cow = format!("< honest {n} >");
        assert!(run.last("stdout").contains(&cow), "{}", run.last("stdout"));
    }

    // Every dead job creator's deal is still open: no timeout freed those slots.
    for (n, (_, at, deal)) in victims.iter().enumerate() {
        let deal = deal.as_ref().expect("killed with a deal");
        let key = deal_key(deal.chain_id().unwrap(), &terms_of(deal));
        let agreement = reader.agreement(key).await.unwrap();
        let state = DealState::try_from(agreement.state).unwrap();
        let open = match at {
            KillAt::DealMade => DealState::DealNegotiating,
            KillAt::JobCreatorAgreed => DealState::ResultsSubmitted,
        };
        assert_eq!(
            state, open,
            "victim {n} (killed at {at:?}): deal {} is {state}",
            deal.id
        );
        eprintln!("victim {n}, killed at {at:?}: its deal is {state}");
    }
    {
        let containers = containers.lock().unwrap();
        let owner = lilypad::executor::docker::owner_of(&world.dir.join("rp0/rp"));
        let at_once = containers.most.get(&owner).copied().unwrap_or(0);
        assert!(at_once <= SLOTS, "{at_once} containers at once");
    }
    rp.stop().await;
    solver.stop().await;
    watcher.abort();
}
