//! `lilypad chain deploy | fund | balances`: operators' chain commands on any EVM chain.

use anyhow::Context;
use ethers::providers::Middleware;
use ethers::signers::Signer;
use ethers::types::{Address, U256};

use super::connect;
use crate::chain::deploy::{deploy_with, fund, DeployOptions, DeploySettings, Journal};
use crate::chain::{client::signing_client, Chain};
use crate::cli::ChainCommand;
use crate::config::Settings;
use crate::data::amount;
use crate::profile::Profile;

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

/// The profile of a network just deployed: its chain and controller, plus the solver, its
/// URL, the mediators and a private CA where the settings name them.
fn deployed_profile(
    settings: &Settings,
    name: String,
    chain_id: u64,
    controller: Address,
) -> anyhow::Result<Profile> {
    let tls_ca = match &settings.tls_ca_file {
        Some(path) => {
            crate::tls::read_file(path)?;
            Some(
                std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read {}", path.display()))?,
            )
        }
        None => None,
    };
    let mediators = match settings.service_mediators {
        Some(_) => settings.mediators()?,
        None => Vec::new(),
    };
    let profile = Profile {
        name,
        chain_id,
        rpc_url: settings.rpc_url()?,
        ws_url: settings.web3_ws_url.clone(),
        controller,
        solver: settings
            .service_solver
            .as_ref()
            .map(|_| settings.solver())
            .transpose()?,
        solver_url: settings.solver_url.clone(),
        mediators,
        tls_ca,
    };
    Ok(profile)
}

pub(super) async fn chain(command: ChainCommand, settings: Settings) -> anyhow::Result<()> {
    match command {
        ChainCommand::Deploy {
            treasury,
            operator,
            token,
            supply,
            job_deposit,
            request_timeout,
            name,
            confirmations,
            ..
        } => {
            if let Some(name) = &name {
                if !Profile::valid_name(name) || name.ends_with(".toml") {
                    anyhow::bail!(
                        "--name {name:?}: letters, digits, '-', '_' and '.' (a name --network finds)"
                    );
                }
            }
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
            let journal = Journal::path(&settings.data_dir.join("deployments"), chain_id, deployer);
            eprintln!(
                "deploying to chain {chain_id} from {deployer:?} (progress in {}: run the same command again to resume if interrupted)",
                journal.display()
            );
            let options = DeployOptions {
                confirmations: confirmations.max(1),
                journal: Some(journal),
            };
            let deployment = deploy_with(client, &deploy_settings, &options).await?;
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
            let profile = deployed_profile(
                &settings,
                name.unwrap_or_else(|| format!("chain-{chain_id}")),
                chain_id,
                deployment.controller,
            )?;
            let path = Profile::path(&settings.data_dir, &profile.name);
            profile
                .write(&path)
                .with_context(|| format!("cannot write {}", path.display()))?;
            println!(
                "# network profile {} (--network {}):",
                path.display(),
                profile.name
            );
            for line in profile.to_toml().lines() {
                println!("#   {line}");
            }
            Ok(())
        }
        ChainCommand::Bootstrap {
            name,
            eth,
            lp,
            wait,
            confirmations,
            ..
        } => {
            let ask = super::bootstrap::Bootstrap {
                name,
                eth: parse_amount(&eth)?,
                lp: parse_amount(&lp)?,
                wait: std::time::Duration::from_secs(wait),
                confirmations,
            };
            super::bootstrap::bootstrap(&settings, ask).await
        }
        ChainCommand::Fund { to, eth, lp, .. } => {
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
        ChainCommand::Balances { addresses, .. } => {
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
