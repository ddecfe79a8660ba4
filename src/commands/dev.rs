//! `lilypad dev`: starts a whole local network in this process and prints how to use it.

use anyhow::{bail, Context};
use ethers::signers::Signer;

use super::shutdown_on_signals;
use crate::cli::DevArgs;
use crate::config::Settings;
use crate::dev::{DevNetwork, DevOptions};

pub(super) async fn dev(args: DevArgs, settings: Settings) -> anyhow::Result<()> {
    let dir = settings.data_dir.join("dev");
    if let Some(running) = crate::dev::find_running(&dir).await {
        bail!(
            "a dev network is already running (solver {}); stop it first",
            running.solver_url
        );
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut options = DevOptions::new(&settings, dir.clone());
    let faucet_settings = {
        let mut settings = settings.clone();
        settings.data_dir = dir.clone();
        crate::faucet::FaucetSettings::from_settings(&settings)?
    };
    options.anvil_path = args.anvil_path;
    options.geth_path = args.geth_path;
    options.block_time = settings.dev_block_time;
    options.chain = match settings.dev_chain.as_str() {
        "geth" => crate::dev::DevChain::Geth,
        "anvil" => crate::dev::DevChain::Anvil,
        other => bail!("DEV_CHAIN is {other:?}: choose anvil or geth"),
    };
    options.publish = true;
    options.roles.dishonest = args.dishonest;
    if args.dishonest {
        eprintln!("--dishonest: the resource provider alters every job's results; `lilypad run --check` shows the mediator rejecting them");
    }
    let network = DevNetwork::start(options).await?;
    println!("lilypad dev network is up");
    println!(
        "  profile: {} (other commands join with --network dev)",
        DevNetwork::profile_file(&dir).display()
    );
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
    println!(
        "  jc operator {:?}",
        network.keys.job_service_operator.address()
    );
    // The faucet pays from the deployer's key, which holds the rest of the dev chain's
    // ether and tokens. A busy FAUCET_LISTEN leaves the network up without it.
    let stop = shutdown_on_signals();
    let deployer = network.chain_as(&network.keys.deployer).await?;
    // The SaaS service runs jobs with a key of its own, funded before the faucet starts
    // paying from the deployer's.
    let saas_key = crate::keys::generate();
    crate::chain::deploy::fund(
        deployer.client.clone(),
        network.deployment.token,
        saas_key.address(),
        ethers::types::U256::exp10(20),
        ethers::types::U256::exp10(22),
    )
    .await?;
    match crate::faucet::start(deployer, faucet_settings, stop.clone()).await {
        Ok(faucet) => println!("  faucet: {} (FAUCET_LISTEN)", faucet.url),
        Err(e) => eprintln!("the faucet did not start: {e:#}"),
    }
    match start_saas(&network, &settings, &dir, saas_key, stop.clone()).await {
        Ok(saas) => println!("  saas: {} (SAAS_LISTEN)", saas.url),
        Err(e) => eprintln!("the saas service did not start: {e:#}"),
    }
    println!("In another terminal: lilypad run cowsay:v0.0.1 -i Message=moo    (Ctrl-C here stops the network)");
    println!("             or: lilypad run-cowsay-onchain moo                 (a contract asks; `jc` serves it)");
    stop.cancelled().await;
    network.stop().await;
    Ok(())
}

/// The SaaS service of a dev network: its store in DATA_DIR/dev/saas, its jobs on the
/// network's solver with `key`.
async fn start_saas(
    network: &DevNetwork,
    settings: &Settings,
    dir: &std::path::Path,
    key: ethers::signers::LocalWallet,
    stop: tokio_util::sync::CancellationToken,
) -> anyhow::Result<crate::saas::SaasHandle> {
    let mut settings = settings.clone();
    settings.data_dir = dir.to_path_buf();
    settings.poll_interval_ms = crate::dev::LOCAL_POLL.as_millis() as u64;
    let mut service = crate::saas::Service::from_settings(&settings, network.services.clone())?;
    // Its clients are on this host, never behind a proxy.
    service.trusted_proxy_hops = 0;
    let chain = network.chain_as(&key).await?;
    let client = crate::client::SolverClient::new(&network.solver.url, key);
    let store = crate::saas::open_store(&settings).await?;
    crate::saas::start(store, chain, client, service, stop).await
}
