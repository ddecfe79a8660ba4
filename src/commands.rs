//! What each subcommand does: builds the role's parts from the settings and runs it under
//! one shutdown signal (Ctrl-C or SIGTERM).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use ethers::providers::Middleware;
use ethers::signers::Signer;
use ethers::types::{Address, U256};
use tokio_util::sync::CancellationToken;

use crate::chain::deploy::{deploy, fund, DeploySettings};
use crate::chain::{client::signing_client, Chain};
use crate::cli::{
    ChainCommand, Command, DevArgs, JcArgs, KeysCommand, MediatorArgs, OnchainArgs, RpArgs, RunArgs,
};
use crate::client::{solver_url, SolverClient};
use crate::config::Settings;
use crate::data::amount;
use crate::dev::{DevNetwork, DevOptions, DevRoles};
use crate::executor::docker::DockerExecutor;
use crate::jc::JcSettings;
use crate::mediator::MediatorSettings;
use crate::network::{ClientNetwork, LOCAL_POLL};
use crate::onchain::OnchainOutcome;
use crate::rp::RpSettings;
use crate::run::{follow_job, job_offer, JobOutcome, JobRequest, UnfinishedJob, UnfinishedJobs};
use crate::solver::SolverSettings;

/// Cancels the token on Ctrl-C or SIGTERM.
pub fn shutdown_on_signals() -> CancellationToken {
    let token = CancellationToken::new();
    let cancel = token.clone();
    tokio::spawn(async move {
        let terminate = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut signal) => {
                    signal.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminate => {}
        }
        tracing::info!("shutting down");
        cancel.cancel();
    });
    token
}

async fn connect(settings: &Settings) -> anyhow::Result<Arc<Chain>> {
    let chain = Chain::connect(
        &settings.rpc_url()?,
        settings.wallet()?,
        settings.controller()?,
        settings.poll_interval(),
    )
    .await?;
    if let Some(expected) = settings.web3_chain_id {
        if expected != chain.chain_id {
            bail!(
                "WEB3_CHAIN_ID is {expected} but {} is chain {}",
                chain.rpc_url,
                chain.chain_id
            );
        }
    }
    Ok(Arc::new(chain))
}

/// Runs the command.
pub async fn dispatch(command: Command, settings: Settings) -> anyhow::Result<()> {
    match command {
        Command::Solver(_) => solver(settings).await,
        Command::Rp(args) => rp(args, settings).await,
        Command::Run(args) => run(args, settings).await,
        Command::Mediator(args) => mediator(args, settings).await,
        Command::Jc(args) => jc(args, settings).await,
        Command::RunCowsayOnchain(args) => run_cowsay_onchain(args, settings).await,
        Command::Dev(args) => dev(args, settings).await,
        Command::Chain(command) => chain(command, settings).await,
        Command::Keys(KeysCommand::Generate { out }) => {
            let wallet = crate::keys::generate();
            let path = out.unwrap_or_else(|| {
                settings
                    .data_dir
                    .join("keys")
                    .join(format!("{}.key", crate::keys::address_of(&wallet)))
            });
            crate::keys::write_key(&path, &wallet)
                .with_context(|| format!("cannot create key file {}", path.display()))?;
            println!("address: {}", crate::keys::address_of(&wallet));
            println!(
                "key file: {} (mode 0600; point WEB3_PRIVATE_KEY_FILE or --key-file at it)",
                path.display()
            );
            Ok(())
        }
    }
}

async fn solver(settings: Settings) -> anyhow::Result<()> {
    let chain = connect(&settings).await?;
    let listen: SocketAddr = format!("{}:{}", settings.server_host, settings.server_port)
        .parse()
        .with_context(|| {
            format!(
                "SERVER_HOST {:?} is not an IP address",
                settings.server_host
            )
        })?;
    let shutdown = shutdown_on_signals();
    let handle = crate::solver::start(
        chain,
        SolverSettings {
            data_dir: settings.data_dir.join("solver"),
            offer_ttl_ms: settings.offer_ttl * 1000,
            max_upload_bytes: settings.max_upload_bytes,
            listen,
            public_url: settings.server_url.clone(),
        },
        shutdown,
    )
    .await?;
    handle.task.await.context("the solver task failed")?;
    Ok(())
}

async fn rp(args: RpArgs, settings: Settings) -> anyhow::Result<()> {
    if args.dishonest {
        let url = settings.rpc_url()?;
        let (_, chain_id) = crate::chain::client::provider(&url, settings.poll_interval()).await?;
        if !crate::dev::is_dev_chain(chain_id) {
            bail!(
                "--dishonest alters results on purpose and is only allowed on a local dev chain (chain id {}); {url} is chain {chain_id}",
                crate::dev::DEV_CHAIN_ID
            );
        }
        tracing::warn!(
            "dishonest mode: every job's results will be altered before they are submitted"
        );
    }
    let chain = connect(&settings).await?;
    let services = settings.services()?;
    let url = solver_url(&chain, services.solver, settings.solver_url.as_deref()).await?;
    let executor = DockerExecutor::connect(settings.allow_network).await?;
    let rp_settings = RpSettings {
        data_dir: settings.data_dir.join("rp"),
        spec: settings.offer_spec()?,
        slots: settings.offer_count,
        pricing: settings.pricing()?,
        timeouts: settings.timeouts()?,
        modules: settings.modules(),
        services,
        refresh_every: Duration::from_secs((settings.offer_ttl / 3).max(1)),
        poll: settings.poll_interval(),
        dishonest: args.dishonest,
    };
    let client = SolverClient::new(&url, chain.client.signer().clone());
    crate::rp::run(chain, client, executor, rp_settings, shutdown_on_signals()).await
}

async fn mediator(args: MediatorArgs, settings: Settings) -> anyhow::Result<()> {
    let chain = connect(&settings).await?;
    let url = match &settings.solver_url {
        Some(url) => url.clone(),
        None => solver_url(&chain, settings.solver()?, None).await?,
    };
    let executor = DockerExecutor::connect(false).await?;
    let mediator_settings = MediatorSettings {
        data_dir: settings.data_dir.join("mediator"),
        poll: settings.poll_interval(),
        parallel: args.parallel,
    };
    let client = SolverClient::new(&url, chain.client.signer().clone());
    crate::mediator::run(
        chain,
        client,
        executor,
        mediator_settings,
        shutdown_on_signals(),
    )
    .await
}

async fn jc(args: JcArgs, settings: Settings) -> anyhow::Result<()> {
    let chain = connect(&settings).await?;
    let services = settings.services()?;
    let url = solver_url(&chain, services.solver, settings.solver_url.as_deref()).await?;
    let jc_settings = JcSettings {
        data_dir: settings.data_dir.join("jc"),
        poll: settings.poll_interval(),
        from_block: settings.jc_from_block,
        match_timeout: Duration::from_secs(settings.jc_match_timeout),
        pricing: settings.pricing()?,
        timeouts: settings.timeouts()?,
        services,
        mediation_chance: args.mediation_chance,
    };
    let client = SolverClient::new(&url, chain.client.signer().clone());
    crate::jc::run(chain, client, jc_settings, shutdown_on_signals()).await
}

async fn run_cowsay_onchain(args: OnchainArgs, settings: Settings) -> anyhow::Result<()> {
    let results_dir = args
        .output
        .clone()
        .unwrap_or_else(|| settings.data_dir.join("downloaded-files"));
    let network =
        ClientNetwork::open(&settings, true, |dir| dev_options(&settings, dir, None, 0)).await?;
    let outcome = match network.example_client {
        Some(example_client) => {
            crate::onchain::run_cowsay(
                &network.chain,
                &network.client,
                example_client,
                &args.message,
                &results_dir,
                Duration::from_secs(args.timeout),
                network.poll,
            )
            .await
        }
        None => Err(anyhow::anyhow!(
            "which example client? set WEB3_EXAMPLE_CLIENT_ADDRESS or --example-client (`lilypad chain deploy` prints it)"
        )),
    };
    network.close().await;
    match outcome? {
        OnchainOutcome::Completed {
            job_id,
            results_cid,
            deal_id,
            results_dir,
            stdout,
        } => {
            print!("{stdout}");
            eprintln!(
                "job {job_id}: results {results_cid} (deal {deal_id}), unpacked in {}",
                results_dir.display()
            );
            Ok(())
        }
        OnchainOutcome::Failed { job_id, reason } => {
            bail!("job {job_id} failed and the deposit was refunded: {reason}")
        }
    }
}

async fn run(args: RunArgs, settings: Settings) -> anyhow::Result<()> {
    let results_dir = args
        .output
        .clone()
        .unwrap_or_else(|| settings.data_dir.join("downloaded-files"));
    let timeout = Duration::from_secs(args.timeout);
    let unfinished = UnfinishedJobs::new(&settings.data_dir);
    let resumed = match &args.resume {
        Some(id) => Some(unfinished.load(id)?),
        None => None,
    };
    let new_job = match (&resumed, &args.module) {
        (Some(_), _) => None,
        (None, Some(module)) => {
            let inputs = crate::module::parse_inputs(&args.inputs).map_err(anyhow::Error::msg)?;
            crate::module::resolve(module, &inputs)?; // fail fast on a bad module or input
            Some((module.clone(), inputs))
        }
        (None, None) => bail!("name a module (e.g. cowsay:v0.0.1) or --resume JOB_OFFER_ID"),
    };
    let network = ClientNetwork::open(&settings, resumed.is_none(), |dir| {
        dev_options(&settings, dir, None, 0)
    })
    .await?;
    let job = match resumed {
        Some(job) => job,
        None => {
            let (module, inputs) = new_job.context("name a module or --resume JOB_OFFER_ID")?;
            let mediation_chance = if args.check {
                100
            } else {
                args.mediation_chance
            };
            let request = JobRequest {
                module,
                inputs,
                pricing: settings.pricing()?,
                timeouts: settings.timeouts()?,
                services: network.services.clone(),
                results_dir: results_dir.clone(),
                timeout,
                poll: network.poll,
                progress: !args.quiet,
                mediation_chance,
                results_reader: None,
            };
            let job = UnfinishedJob {
                offer: job_offer(network.chain.address(), &request)?,
                mediation_chance,
            };
            if !network.is_embedded() {
                unfinished.save(&job)?;
                eprintln!(
                    "job offer {id}: if this command stops, `lilypad run --resume {id}` continues it",
                    id = job.offer.id
                );
            }
            job
        }
    };
    if job.offer.job_creator != network.chain.address() {
        bail!(
            "job offer {} belongs to {:?}, not to this key ({:?})",
            job.offer.id,
            job.offer.job_creator,
            network.chain.address()
        );
    }
    let request = job.request(network.poll, results_dir, timeout, !args.quiet);
    let outcome = follow_job(
        network.chain.clone(),
        network.client.clone(),
        request,
        job.offer.clone(),
    )
    .await;
    network.close().await;
    if outcome.is_ok()
        || outcome
            .as_ref()
            .is_err_and(|e| e.chain().any(|cause| cause.is::<crate::run::NoMatch>()))
    {
        unfinished.forget(&job.offer.id);
    }
    report(&outcome?)
}

/// Prints how the job ended; an error (non-zero exit) unless it ran and exited 0.
fn report(outcome: &JobOutcome) -> anyhow::Result<()> {
    if outcome.paid_for_results() {
        print!("{}", outcome.stdout());
    }
    if let Some(reason) = &outcome.disputed {
        eprintln!("disputed: {reason}");
    }
    eprintln!(
        "deal {} ended in {}: {}",
        outcome.deal_id,
        outcome.state.name(),
        outcome.settlement
    );
    let Some(results) = &outcome.results else {
        bail!(
            "the job produced no accepted results (deal ended in {})",
            outcome.state.name()
        );
    };
    eprintln!("results {} in {}", results.cid, results.dir.display());
    if !outcome.paid_for_results() {
        bail!(
            "the results were not accepted (deal ended in {}); they are kept in {} for inspection",
            outcome.state.name(),
            results.dir.display()
        );
    }
    match results.exit_code {
        Some(0) => Ok(()),
        Some(code) => bail!(
            "the job exited with code {code}; see {}/stderr",
            results.dir.display()
        ),
        None => bail!("the job left no exit code; see {}", results.dir.display()),
    }
}

fn dev_options(
    settings: &Settings,
    data_dir: PathBuf,
    anvil_path: Option<PathBuf>,
    port: u16,
) -> anyhow::Result<DevOptions> {
    Ok(DevOptions {
        data_dir,
        anvil_path,
        solver_port: port,
        rp_spec: settings.offer_spec()?,
        rp_slots: settings.offer_count,
        pricing: settings.pricing()?,
        timeouts: settings.timeouts()?,
        poll: LOCAL_POLL,
        publish: false,
        jc_match_timeout: Duration::from_secs(settings.jc_match_timeout),
        roles: DevRoles::default(),
    })
}

async fn dev(args: DevArgs, settings: Settings) -> anyhow::Result<()> {
    let dir = settings.data_dir.join("dev");
    if let Some(running) = crate::dev::find_running(&dir).await {
        bail!(
            "a dev network is already running (solver {}); stop it first",
            running.solver_url
        );
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut options = dev_options(
        &settings,
        dir.clone(),
        args.anvil_path,
        settings.server_port,
    )?;
    options.publish = true;
    options.roles.dishonest = args.dishonest;
    if args.dishonest {
        eprintln!("--dishonest: the resource provider alters every job's results; `lilypad run --check` shows the mediator rejecting them");
    }
    let network = DevNetwork::start(options).await?;
    println!("lilypad dev network is up");
    println!("  WEB3_RPC_URL={}", network.rpc_url);
    println!("  WEB3_CHAIN_ID={}", network.chain_id);
    println!(
        "  WEB3_CONTROLLER_ADDRESS={:?}",
        network.deployment.controller
    );
    println!("  WEB3_TOKEN_ADDRESS={:?}", network.deployment.token);
    println!("  SERVICE_SOLVER={:?}", network.services.solver);
    println!("  SERVICE_MEDIATORS={:?}", network.services.mediators[0]);
    println!(
        "  resource provider {:?}, job creator {:?}, mediator {:?}",
        network.keys.resource_provider.address(),
        network.keys.job_creator.address(),
        network.keys.mediator.address()
    );
    println!("  SOLVER_URL={}", network.solver.url);
    println!(
        "  network file {}",
        DevNetwork::network_file(&dir).display()
    );
    println!(
        "  WEB3_EXAMPLE_CLIENT_ADDRESS={:?}",
        network.deployment.example_client
    );
    println!("  jc operator {:?}", network.keys.jc_operator.address());
    println!("In another terminal: lilypad run cowsay:v0.0.1 -i Message=moo    (Ctrl-C here stops the network)");
    println!("             or: lilypad run-cowsay-onchain moo                 (a contract asks; `jc` serves it)");
    let stop = shutdown_on_signals();
    stop.cancelled().await;
    network.stop().await;
    Ok(())
}

fn parse_address(text: &str) -> anyhow::Result<Address> {
    text.trim()
        .parse()
        .map_err(|_| anyhow::anyhow!("{text:?} is not an address (0x + 40 hex digits)"))
}

fn parse_amount(text: &str) -> anyhow::Result<U256> {
    amount::parse(text)
        .map(U256::from)
        .map_err(anyhow::Error::msg)
}

async fn chain(command: ChainCommand, settings: Settings) -> anyhow::Result<()> {
    match command {
        ChainCommand::Deploy {
            treasury,
            operator,
            token,
            supply,
            job_deposit,
            request_timeout,
        } => {
            let wallet = settings.wallet()?;
            let deployer = wallet.address();
            let (client, chain_id) =
                signing_client(&settings.rpc_url()?, wallet, settings.poll_interval()).await?;
            let deploy_settings = DeploySettings {
                treasury: treasury
                    .as_deref()
                    .map(parse_address)
                    .transpose()?
                    .unwrap_or(deployer),
                job_creator_operator: operator
                    .as_deref()
                    .map(parse_address)
                    .transpose()?
                    .unwrap_or(deployer),
                existing_token: token.as_deref().map(parse_address).transpose()?,
                token_supply: parse_amount(&supply)?,
                job_deposit: parse_amount(&job_deposit)?,
                request_timeout: request_timeout.into(),
            };
            eprintln!("deploying to chain {chain_id} from {deployer:?}");
            let deployment = deploy(client, &deploy_settings).await?;
            println!("WEB3_CHAIN_ID={chain_id}");
            println!("WEB3_CONTROLLER_ADDRESS={:?}", deployment.controller);
            println!("WEB3_TOKEN_ADDRESS={:?}", deployment.token);
            println!("WEB3_USERS_ADDRESS={:?}", deployment.users);
            println!("WEB3_STORAGE_ADDRESS={:?}", deployment.storage);
            println!("WEB3_PAYMENTS_ADDRESS={:?}", deployment.payments);
            println!("WEB3_MEDIATION_ADDRESS={:?}", deployment.mediation);
            println!("WEB3_JOBCREATOR_ADDRESS={:?}", deployment.job_creator);
            println!(
                "WEB3_EXAMPLE_CLIENT_ADDRESS={:?}",
                deployment.example_client
            );
            Ok(())
        }
        ChainCommand::Fund { to, eth, lp } => {
            let chain = connect(&settings).await?;
            let (eth, lp) = (parse_amount(&eth)?, parse_amount(&lp)?);
            for address in to {
                let address = parse_address(&address)?;
                fund(
                    chain.client.clone(),
                    chain.contracts.token.address(),
                    address,
                    eth,
                    lp,
                )
                .await?;
                println!("funded {address:?}: {eth} wei of ether, {lp} token wei");
            }
            Ok(())
        }
        ChainCommand::Balances { addresses } => {
            let wallet = settings
                .wallet()
                .unwrap_or_else(|_| crate::keys::generate());
            let chain = Chain::connect(
                &settings.rpc_url()?,
                wallet,
                settings.controller()?,
                settings.poll_interval(),
            )
            .await?;
            for address in addresses {
                let address = parse_address(&address)?;
                let ether = chain
                    .client
                    .get_balance(address, None)
                    .await
                    .context("cannot read an ether balance")?;
                let tokens = chain.token_balance(address).await?;
                println!("{address:?}  ether {ether} wei  LP {tokens} wei");
            }
            Ok(())
        }
    }
}
