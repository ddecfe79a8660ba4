//! `lilypad chain bootstrap`: a whole network from one funded key, in one resumable command
//! (what the compose file's set-up service runs, where there is no shell to chain commands).

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use ethers::providers::Middleware;
use ethers::signers::{LocalWallet, Signer};
use ethers::types::{Address, U256};

use crate::chain::client::signing_client;
use crate::chain::deploy::{deploy_with, fund, DeployOptions, DeploySettings, Journal};
use crate::chain::Chain;
use crate::config::Settings;
use crate::profile::Profile;

/// The roles that get a key, by their file name under DATA_DIR/keys.
pub const ROLES: [&str; 5] = [
    "solver",
    "mediator",
    "resource-provider",
    "job-creator",
    "jc",
];

/// What `chain bootstrap` was asked for.
pub struct Bootstrap {
    pub name: String,
    pub eth: U256,
    pub lp: U256,
    pub wait: Duration,
    pub confirmations: usize,
}

/// Waits until the chain at `rpc_url` answers, saying so every few seconds.
async fn wait_for_chain(rpc_url: &str, wait: Duration) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut said: Option<Instant> = None;
    loop {
        match crate::chain::client::provider(rpc_url, Duration::from_millis(100)).await {
            Ok(_) => return Ok(()),
            Err(e) if started.elapsed() >= wait => {
                anyhow::bail!(
                    "the chain did not answer within {} s (--wait): {e}",
                    wait.as_secs()
                )
            }
            Err(_) => {
                if said.is_none_or(|at| at.elapsed() >= Duration::from_secs(5)) {
                    eprintln!("waiting for the chain at {rpc_url} ...");
                    said = Some(Instant::now());
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}

/// The key in `path`, or a new one written there (0600) if there is none.
fn key_at(path: &Path) -> anyhow::Result<LocalWallet> {
    match std::fs::read_to_string(path) {
        Ok(text) => crate::config::parse_key(text.trim())
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let wallet = crate::keys::generate();
            crate::keys::write_key(path, &wallet)
                .with_context(|| format!("cannot write {}", path.display()))?;
            Ok(wallet)
        }
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// The profile already written for this network, if the chain still holds its contracts.
async fn still_deployed(
    client: &crate::chain::client::Client,
    path: &Path,
    chain_id: u64,
) -> Option<Profile> {
    let profile = Profile::parse(&std::fs::read_to_string(path).ok()?).ok()?;
    if profile.chain_id != chain_id {
        return None;
    }
    let code = client.get_code(profile.controller, None).await.ok()?;
    (!code.is_empty()).then_some(profile)
}

pub async fn bootstrap(settings: &Settings, ask: Bootstrap) -> anyhow::Result<()> {
    if !Profile::valid_name(&ask.name) || ask.name.ends_with(".toml") {
        anyhow::bail!(
            "--name {:?}: letters, digits, '-', '_' and '.' (a name --network finds)",
            ask.name
        );
    }
    let solver_url = settings.solver_url.clone().context(
        "set SOLVER_URL to the URL the roles will reach the solver at: it goes into the profile",
    )?;
    let rpc_url = settings.rpc_url()?;
    let deployer = settings.wallet()?;
    wait_for_chain(&rpc_url, ask.wait).await?;

    let keys_dir = settings.data_dir.join("keys");
    let mut keys = Vec::new();
    for role in ROLES {
        keys.push((role, key_at(&keys_dir.join(format!("{role}.key")))?));
    }
    let address = |role: &str| {
        keys.iter()
            .find(|(name, _)| *name == role)
            .map(|(_, key)| key.address())
            .unwrap_or_default()
    };

    let (client, chain_id) =
        signing_client(&rpc_url, deployer.clone(), settings.poll_interval()).await?;
    let profile_path = Profile::path(&settings.data_dir, &ask.name);
    let profile = match still_deployed(&client, &profile_path, chain_id).await {
        Some(profile) => {
            eprintln!(
                "network {} is deployed already (controller {:?}); keeping it",
                ask.name, profile.controller
            );
            profile
        }
        None => {
            let journal = Journal::path(
                &settings.data_dir.join("deployments"),
                chain_id,
                deployer.address(),
            );
            eprintln!(
                "deploying to chain {chain_id} from {:?} (progress in {})",
                deployer.address(),
                journal.display()
            );
            let deploy_settings = DeploySettings::own_network(deployer.address(), address("jc"));
            let options = DeployOptions {
                confirmations: ask.confirmations.max(1),
                journal: Some(journal),
            };
            let deployment = deploy_with(client.clone(), &deploy_settings, &options).await?;
            let profile = Profile {
                name: ask.name.clone(),
                chain_id,
                rpc_url: rpc_url.clone(),
                ws_url: settings.web3_ws_url.clone(),
                controller: deployment.controller,
                solver: Some(address("solver")),
                solver_url: Some(solver_url),
                mediators: vec![address("mediator")],
                tls_ca: None,
            };
            profile
                .write(&profile_path)
                .with_context(|| format!("cannot write {}", profile_path.display()))?;
            profile
        }
    };

    let chain = Chain::connect(
        &rpc_url,
        deployer,
        profile.controller,
        settings.poll_interval(),
    )
    .await?;
    let token = chain.contracts.token.address();
    for (role, key) in &keys {
        let who: Address = key.address();
        let ether = client
            .get_balance(who, None)
            .await
            .context("cannot read an ether balance")?;
        let tokens = chain.token_balance(who).await?;
        let (eth, lp) = (ask.eth.saturating_sub(ether), ask.lp.saturating_sub(tokens));
        if !eth.is_zero() || !lp.is_zero() {
            fund(client.clone(), token, who, eth, lp)
                .await
                .with_context(|| format!("cannot fund the {role} key {who:?}"))?;
        }
        println!(
            "{role:<18} {}  {}",
            crate::keys::address_of(key),
            keys_dir.join(format!("{role}.key")).display()
        );
    }
    println!(
        "# network profile {} (--network {}):",
        profile_path.display(),
        profile.name
    );
    for line in profile.to_toml().lines() {
        println!("#   {line}");
    }
    Ok(())
}
