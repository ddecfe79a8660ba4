//! Which network a client command (`run`, `run-cowsay-onchain`) talks to: the one configured
//! with WEB3_RPC_URL; else a `lilypad dev` running under DATA_DIR/dev; else an embedded local
//! network started for this one command (and stopped after it), which the command says.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use ethers::types::Address;

use crate::chain::Chain;
use crate::client::{solver_url, SolverClient};
use crate::config::Settings;
use crate::data::Services;
use crate::dev::{DevNetwork, DevOptions};

/// How often clients poll a local (dev or embedded) network: anvil answers in microseconds.
pub use crate::dev::LOCAL_POLL;

/// A chain client and a solver client for this node's key, on the network found.
pub struct ClientNetwork {
    pub chain: Arc<Chain>,
    pub client: SolverClient,
    pub services: Services,
    pub poll: Duration,
    /// The example client contract (`run-cowsay-onchain`), when known.
    pub example_client: Option<Address>,
    embedded: Option<(DevNetwork, PathBuf)>,
}

impl ClientNetwork {
    /// Finds (or, if `allow_embedded`, starts) the network.
    pub async fn open(settings: &Settings, allow_embedded: bool) -> anyhow::Result<ClientNetwork> {
        if settings.web3_rpc_url.is_some() {
            let chain = Arc::new(
                Chain::connect(
                    &settings.rpc_url()?,
                    settings.wallet()?,
                    settings.controller()?,
                    settings.poll_interval(),
                )
                .await?,
            );
            settings.expect_chain_id(&chain.rpc_url, chain.chain_id)?;
            let services = settings.services()?;
            let url = solver_url(&chain, services.solver, settings.solver_url.as_deref()).await?;
            let client = SolverClient::new(&url, chain.client.signer().clone());
            return Ok(ClientNetwork {
                chain,
                client,
                services,
                poll: settings.poll_interval(),
                example_client: settings.example_client()?,
                embedded: None,
            });
        }
        if let Some(network) = crate::dev::find_running(&settings.data_dir.join("dev")).await {
            eprintln!(
                "using the local network of `lilypad dev` at {} (solver {})",
                network.rpc_url, network.solver_url
            );
            let wallet = match settings.wallet() {
                Ok(wallet) => wallet,
                Err(_) => {
                    let path = &network.job_creator_key_file;
                    let text = std::fs::read_to_string(path)
                        .with_context(|| format!("cannot read {}", path.display()))?;
                    crate::config::parse_key(text.trim()).map_err(anyhow::Error::msg)?
                }
            };
            let chain = Arc::new(
                Chain::connect(
                    &network.rpc_url,
                    wallet,
                    network.deployment.controller,
                    LOCAL_POLL,
                )
                .await?,
            );
            let client = SolverClient::new(&network.solver_url, chain.client.signer().clone());
            return Ok(ClientNetwork {
                chain,
                client,
                services: Services {
                    solver: network.solver,
                    mediators: network.mediators.clone(),
                },
                poll: LOCAL_POLL,
                example_client: Some(network.deployment.example_client),
                embedded: None,
            });
        }
        if !allow_embedded {
            anyhow::bail!(
                "no network: WEB3_RPC_URL is unset and no `lilypad dev` is running under {}",
                settings.data_dir.join("dev").display()
            );
        }
        eprintln!("no network configured (WEB3_RPC_URL is unset and no `lilypad dev` is running): starting an embedded local network (anvil, contracts, solver, resource provider, mediator, jc) for this command");
        let dir = std::env::temp_dir().join(format!("lilypad-embedded-{}", std::process::id()));
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let mut options = DevOptions::new(settings, dir.clone());
        options.settings.server_port = 0;
        let network = DevNetwork::start(options).await?;
        let chain = network.job_creator_chain().await?;
        let client = SolverClient::new(&network.solver.url, network.keys.job_creator.clone());
        Ok(ClientNetwork {
            chain,
            client,
            services: network.services.clone(),
            poll: LOCAL_POLL,
            example_client: Some(network.deployment.example_client),
            embedded: Some((network, dir)),
        })
    }

    /// Whether this is an embedded network (gone when the command ends).
    pub fn is_embedded(&self) -> bool {
        self.embedded.is_some()
    }

    /// Stops the embedded network, if one was started.
    pub async fn close(self) {
        if let Some((network, dir)) = self.embedded {
            network.stop().await;
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
}
