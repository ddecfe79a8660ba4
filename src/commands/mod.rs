//! What each subcommand does: builds the role's parts from the settings (each role's own
//! `from_settings`, the same ones `lilypad dev` uses) and runs it under one shutdown signal
//! (Ctrl-C or SIGTERM). The job creator's commands are in `run.rs`, `lilypad dev` in
//! `dev.rs`, `lilypad chain` in `chain.rs` (its `bootstrap` in `bootstrap.rs`), `lilypad module` in `module.rs`.

mod bootstrap;
mod chain;
mod dev;
mod module;
mod run;

use std::sync::Arc;

use anyhow::{bail, Context};
use tokio_util::sync::CancellationToken;

use crate::chain::Chain;
use crate::cli::{Command, KeysCommand, RpArgs};
use crate::client::{solver_url, SolverClient};
use crate::config::Settings;
use crate::executor::AnyExecutor;
use crate::job_service::JobServiceSettings;
use crate::mediator::MediatorSettings;
use crate::rp::RpSettings;
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

pub(crate) async fn connect(settings: &Settings) -> anyhow::Result<Arc<Chain>> {
    let mut chain = Chain::connect(
        &settings.rpc_url()?,
        settings.wallet()?,
        settings.controller()?,
        settings.poll_interval(),
    )
    .await?;
    chain.ws_url = settings.web3_ws_url.clone();
    settings.expect_chain_id(&chain.rpc_url, chain.chain_id)?;
    Ok(Arc::new(chain))
}

/// Runs the command.
pub async fn dispatch(command: Command, settings: Settings) -> anyhow::Result<()> {
    match command {
        Command::Solver(_) => solver(settings).await,
        Command::Rp(args) => rp(args, settings).await,
        Command::Run(args) => run::run(args, settings).await,
        Command::Mediator(_) => mediator(settings).await,
        Command::Jc(_) => jc(settings).await,
        Command::RunCowsayOnchain(args) => run::run_cowsay_onchain(args, settings).await,
        Command::Faucet(_) => faucet(settings).await,
        Command::Saas(args) => saas(args, settings).await,
        Command::Dev(args) => dev::dev(args, settings).await,
        Command::Chain(command) => chain::chain(command, settings).await,
        Command::Module(command) => module::module(command, settings).await,
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
        Command::Keys(KeysCommand::GenerateAddresses { out, stdout }) => {
            let services = crate::keys::generate_services();
            let env = crate::keys::services_env(&services);
            if stdout {
                print!("{env}");
                return Ok(());
            }
            crate::keys::write_secret(&out, &env).with_context(|| {
                format!("cannot create {} (it is never overwritten)", out.display())
            })?;
            println!("wrote {} (mode 0600): a key per service", out.display());
            for (name, wallet) in &services {
                println!("  {name:<18} {}", crate::keys::address_of(wallet));
            }
            println!(
                "fund each address, then give each service its own key (WEB3_PRIVATE_KEY_FILE)"
            );
            Ok(())
        }
    }
}

async fn solver(settings: Settings) -> anyhow::Result<()> {
    let chain = connect(&settings).await?;
    let solver_settings = SolverSettings::from_settings(&settings)?;
    let handle = crate::solver::start(chain, solver_settings, shutdown_on_signals()).await?;
    handle.task.await.context("the solver task failed")?;
    Ok(())
}

async fn rp(args: RpArgs, settings: Settings) -> anyhow::Result<()> {
    if args.preflight {
        let checks = crate::rp::preflight::run(&settings).await;
        print!("{}", crate::rp::preflight::table(&checks));
        let failed = checks.iter().filter(|c| !c.passed).count();
        if failed > 0 {
            bail!("{failed} of {} preflight checks failed", checks.len());
        }
        println!("all {} preflight checks passed", checks.len());
        return Ok(());
    }
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
    let executor = AnyExecutor::for_resource_provider(&settings).await?;
    executor.remove_leftovers().await;
    let mut rp_settings = RpSettings::from_settings(&settings, services)?;
    rp_settings.dishonest = args.dishonest;
    let client = SolverClient::new(&url, chain.client.signer().clone());
    crate::rp::run(chain, client, executor, rp_settings, shutdown_on_signals()).await
}

async fn mediator(settings: Settings) -> anyhow::Result<()> {
    let chain = connect(&settings).await?;
    let url = match &settings.solver_url {
        Some(url) => url.clone(),
        None => solver_url(&chain, settings.solver()?, None).await?,
    };
    let executor = AnyExecutor::for_mediator(&settings).await?;
    executor.remove_leftovers().await;
    let mediator_settings = MediatorSettings::from_settings(&settings)?;
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

async fn faucet(settings: Settings) -> anyhow::Result<()> {
    let chain = connect(&settings).await?;
    let faucet_settings = crate::faucet::FaucetSettings::from_settings(&settings)?;
    crate::faucet::run(chain, faucet_settings, shutdown_on_signals()).await
}

async fn saas(args: crate::cli::SaasArgs, settings: Settings) -> anyhow::Result<()> {
    if let Some(crate::cli::SaasCommand::Grant { email, amount }) = args.command {
        let store = crate::saas::open_store(&settings).await?;
        let email = email.trim().to_lowercase();
        let user = store
            .user_by_email(&email)
            .await?
            .with_context(|| format!("no account with the email {email}"))?;
        let credits = store.grant(&user.id, i64::from(amount)).await?;
        store.close().await;
        println!("granted {amount} credits to {email}: {credits} now");
        return Ok(());
    }
    let chain = connect(&settings).await?;
    let services = settings.services()?;
    let url = solver_url(&chain, services.solver, settings.solver_url.as_deref()).await?;
    let service = crate::saas::Service::from_settings(&settings, services)?;
    let client = SolverClient::new(&url, chain.client.signer().clone());
    let store = crate::saas::open_store(&settings).await?;
    let handle = crate::saas::start(store, chain, client, service, shutdown_on_signals()).await?;
    handle.task.await.context("the saas task failed")
}

async fn jc(settings: Settings) -> anyhow::Result<()> {
    let chain = connect(&settings).await?;
    let services = settings.services()?;
    let url = solver_url(&chain, services.solver, settings.solver_url.as_deref()).await?;
    let jc_settings = JobServiceSettings::from_settings(&settings, services)?;
    let client = SolverClient::new(&url, chain.client.signer().clone());
    crate::job_service::run(chain, client, jc_settings, shutdown_on_signals()).await
}
