//! `lilypad dev`: a whole local network in one process. Starts a chain (anvil, or geth with
//! real block times: `--chain geth`), deploys the contracts,
//! funds a key per role with ETH and LP, starts the solver, a resource provider, a mediator
//! and the on-chain job service (`lilypad jc`), and
//! writes `DATA_DIR/dev/network.json` so `lilypad run` in another terminal finds it.
//! `lilypad run` with no network configured starts the same thing for one job.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use ethers::signers::{LocalWallet, Signer};
use ethers::types::Address;
use futures::FutureExt;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

mod anvil;
pub mod geth;

pub use anvil::{find_anvil, start_anvil};

use crate::chain::deploy::{deploy, fund, DeploySettings, Deployment};
use crate::chain::{client::signing_client, Chain};
use crate::client::SolverClient;
use crate::config::Settings;
use crate::data::Services;
use crate::executor::AnyExecutor;
use crate::job_service::JobServiceSettings;
use crate::mediator::MediatorSettings;
use crate::rp::RpSettings;
use crate::solver::{SolverHandle, SolverSettings};

/// anvil's first dev account: a public test key that holds ETH on every anvil chain.
pub const ANVIL_DEPLOYER_KEY: &str =
    "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";

/// The chain id of anvil (and other local dev chains); no public network uses it.
pub const DEV_CHAIN_ID: u64 = 31337;

/// Whether `chain_id` is a local dev chain, where test-only behaviour (`rp --dishonest`)
/// is allowed.
pub fn is_dev_chain(chain_id: u64) -> bool {
    chain_id == DEV_CHAIN_ID
}

/// What each role gets from the deployer.
const FUND_ETH: u128 = 100 * 10u128.pow(18);
const FUND_LP: u128 = 10_000 * 10u128.pow(18);

/// The chain a dev network runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DevChain {
    /// anvil: a block per transaction (or every `block_time` seconds when set).
    #[default]
    Anvil,
    /// `geth --dev`: a block every `block_time` seconds (1 when unset), a real txpool.
    Geth,
}

/// How to start the network.
#[derive(Debug, Clone)]
pub struct DevOptions {
    pub chain: DevChain,
    /// Seconds between blocks (0: anvil mines on each transaction; geth's default is 1).
    pub block_time: u64,
    pub anvil_path: Option<PathBuf>,
    /// The geth binary [default: the one `make tools` installed, then PATH].
    pub geth_path: Option<PathBuf>,
    /// The settings every role of the network is built from, as `lilypad rp` and the other
    /// commands build theirs (what the resource provider sells, the terms, the engine);
    /// `data_dir` is the network's directory and the solver listens on `server_port`
    /// (0: any free port).
    pub settings: Settings,
    /// Write `network.json` (off for an embedded network).
    pub publish: bool,
    /// Which roles to start besides the solver (tests leave one out to play it themselves,
    /// or to show what happens when it is absent).
    pub roles: DevRoles,
}

impl DevOptions {
    /// A network in `data_dir` whose roles use `settings` (from the command line and the
    /// environment), polling at local speed.
    pub fn new(settings: &Settings, data_dir: PathBuf) -> DevOptions {
        let mut settings = settings.clone();
        settings.data_dir = data_dir;
        settings.poll_interval_ms = LOCAL_POLL.as_millis() as u64;
        // Every role of a dev network runs on this host: local modules are everyone's own.
        settings.allow_local_modules = true;
        // Its roles share one process: none serves a /health and /metrics port of its own.
        settings.metrics_listen = None;
        DevOptions {
            chain: DevChain::Anvil,
            block_time: 0,
            anvil_path: None,
            geth_path: None,
            settings,
            publish: false,
            roles: DevRoles::default(),
        }
    }
}

/// The roles `lilypad dev` starts in-process.
#[derive(Debug, Clone, Copy)]
pub struct DevRoles {
    pub resource_provider: bool,
    /// The resource provider alters its results (`rp --dishonest`).
    pub dishonest: bool,
    pub mediator: bool,
    /// The on-chain job service (`lilypad jc`), serving jobs requested by contracts.
    pub job_service: bool,
}

impl Default for DevRoles {
    fn default() -> Self {
        DevRoles {
            resource_provider: true,
            dishonest: false,
            mediator: true,
            job_service: true,
        }
    }
}

/// The keys of a dev network, one per role.
pub struct RoleKeys {
    pub deployer: LocalWallet,
    pub solver: LocalWallet,
    pub resource_provider: LocalWallet,
    pub job_creator: LocalWallet,
    pub mediator: LocalWallet,
    /// The operator of the on-chain job creator contract: the key `lilypad jc` runs with.
    pub job_service_operator: LocalWallet,
}

/// What `lilypad run` needs to use a running dev network.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NetworkFile {
    pub rpc_url: String,
    pub chain_id: u64,
    pub deployment: Deployment,
    pub solver: Address,
    pub solver_url: String,
    pub mediators: Vec<Address>,
    /// A funded job-creator key for `lilypad run`.
    pub job_creator_key_file: PathBuf,
}

/// How often the roles of a local network poll: the chain and the solver are on loopback.
pub const LOCAL_POLL: Duration = Duration::from_millis(50);

/// A running dev network. Dropping it kills anvil.
pub struct DevNetwork {
    pub rpc_url: String,
    pub chain_id: u64,
    pub deployment: Deployment,
    pub keys: RoleKeys,
    pub services: Services,
    pub solver: SolverHandle,
    pub data_dir: PathBuf,
    pub shutdown: CancellationToken,
    pub poll: Duration,
    /// The chain's node (anvil or geth).
    node: tokio::process::Child,
    roles: Vec<Role>,
    options: DevOptions,
    solver_chain: Arc<Chain>,
    solver_settings: SolverSettings,
    solver_shutdown: CancellationToken,
}

impl DevNetwork {
    /// Starts everything; returns once the solver listens and the RP has started.
    pub async fn start(options: DevOptions) -> anyhow::Result<DevNetwork> {
        let deployer = crate::config::parse_key(ANVIL_DEPLOYER_KEY).map_err(anyhow::Error::msg)?;
        let (node, rpc_url) = match options.chain {
            DevChain::Anvil => {
                let anvil_path = find_anvil(options.anvil_path.as_deref())?;
                tracing::info!(anvil = %anvil_path.display(), "starting anvil");
                let block_time = options.block_time.to_string();
                let extra: &[&str] = if options.block_time > 0 {
                    &["--block-time", &block_time]
                } else {
                    &[]
                };
                start_anvil(&anvil_path, extra).await?
            }
            DevChain::Geth => {
                let geth_path = crate::tools::find_tool("geth", options.geth_path.as_deref())?;
                let period = options.block_time.max(1);
                tracing::info!(geth = %geth_path.display(), period, "starting geth --dev");
                let dir = options.settings.data_dir.join("geth");
                geth::start_geth(&geth_path, &dir, &deployer, period).await?
            }
        };
        let keys = RoleKeys {
            deployer: deployer.clone(),
            solver: crate::keys::generate(),
            resource_provider: crate::keys::generate(),
            job_creator: crate::keys::generate(),
            mediator: crate::keys::generate(),
            job_service_operator: crate::keys::generate(),
        };
        let funded: Vec<Address> = [
            &keys.solver,
            &keys.resource_provider,
            &keys.job_creator,
            &keys.mediator,
            &keys.job_service_operator,
        ]
        .iter()
        .map(|wallet| wallet.address())
        .collect();
        let (deployment, chain_id) = deploy_and_fund(
            &rpc_url,
            &deployer,
            keys.job_service_operator.address(),
            &funded,
        )
        .await?;
        let services = Services {
            solver: keys.solver.address(),
            mediators: vec![keys.mediator.address()],
        };
        let shutdown = CancellationToken::new();
        let poll = options.settings.poll_interval();
        let connect = |wallet: &LocalWallet| {
            Chain::connect(&rpc_url, wallet.clone(), deployment.controller, poll)
        };
        let mut solver_chain = connect(&keys.solver).await?;
        solver_chain.ws_url = Some(ws_url_of(&rpc_url));
        let solver_chain = Arc::new(solver_chain);
        let solver_settings = SolverSettings::from_settings(&options.settings)?;
        let solver_shutdown = shutdown.child_token();
        let solver = crate::solver::start(
            solver_chain.clone(),
            solver_settings.clone(),
            solver_shutdown.clone(),
        )
        .await?;
        let solver_listen = solver.address;
        let mut network = DevNetwork {
            rpc_url,
            chain_id,
            deployment,
            keys,
            services,
            solver,
            data_dir: options.settings.data_dir.clone(),
            shutdown,
            poll,
            node,
            roles: Vec::new(),
            options: options.clone(),
            solver_chain,
            solver_settings: SolverSettings {
                listen: solver_listen,
                ..solver_settings
            },
            solver_shutdown,
        };
        if options.roles.resource_provider {
            network.start_resource_provider().await?;
        }
        if options.roles.mediator {
            network.start_mediator().await?;
        }
        if options.roles.job_service {
            network.start_job_service().await?;
        }
        if options.publish {
            network.publish()?;
        }
        Ok(network)
    }

    /// Starts (another) resource provider with the network's RP key and data directory, as
    /// an operator's restart would; returns a handle that kills it abruptly, like a crash.
    pub async fn start_resource_provider(&mut self) -> anyhow::Result<tokio::task::AbortHandle> {
        let chain = self.chain_as(&self.keys.resource_provider).await?;
        let (mut rp_settings, executor) = self.resource_provider_setup().await?;
        executor.remove_leftovers().await;
        rp_settings.dishonest = self.options.roles.dishonest;
        tracing::info!(
            modules = ?rp_settings.modules,
            allow_network = executor.allows_network(),
            "starting the resource provider"
        );
        let client = SolverClient::new(&self.solver.url, self.keys.resource_provider.clone());
        let role = spawn_role("resource provider", &self.shutdown, |stop| {
            crate::rp::run(chain, client, executor, rp_settings, stop)
        });
        let abort = role.1.abort_handle();
        self.roles.push(role);
        Ok(abort)
    }

    /// Starts `lilypad jc` with the operator key; returns a handle that kills it abruptly.
    pub async fn start_job_service(&mut self) -> anyhow::Result<tokio::task::AbortHandle> {
        let chain = self.chain_as(&self.keys.job_service_operator).await?;
        let settings =
            JobServiceSettings::from_settings(&self.options.settings, self.services.clone())?;
        let client = SolverClient::new(&self.solver.url, self.keys.job_service_operator.clone());
        let role = spawn_role("jc", &self.shutdown, |stop| {
            crate::job_service::run(chain, client, settings, stop)
        });
        let abort = role.1.abort_handle();
        self.roles.push(role);
        Ok(abort)
    }

    /// Starts the mediator with the network's mediator key.
    pub async fn start_mediator(&mut self) -> anyhow::Result<()> {
        let chain = self.chain_as(&self.keys.mediator).await?;
        let executor = AnyExecutor::for_mediator(&self.options.settings).await?;
        executor.remove_leftovers().await;
        let settings = MediatorSettings::from_settings(&self.options.settings)?;
        let client = SolverClient::new(&self.solver.url, self.keys.mediator.clone());
        let role = spawn_role("mediator", &self.shutdown, |stop| {
            crate::mediator::run(chain, client, executor, settings, stop)
        });
        self.roles.push(role);
        Ok(())
    }

    /// The resource provider's settings and engine, as this network starts them.
    pub async fn resource_provider_setup(&self) -> anyhow::Result<(RpSettings, AnyExecutor)> {
        let settings = &self.options.settings;
        Ok((
            RpSettings::from_settings(settings, self.services.clone())?,
            AnyExecutor::for_resource_provider(settings).await?,
        ))
    }

    /// Where `network.json` lives for a data dir.
    pub fn network_file(data_dir: &Path) -> PathBuf {
        data_dir.join("network.json")
    }

    /// The network's profile (`--network dev` on this host).
    pub fn profile(&self) -> crate::profile::Profile {
        crate::profile::Profile {
            name: "dev".into(),
            chain_id: self.chain_id,
            rpc_url: self.rpc_url.clone(),
            ws_url: None,
            controller: self.deployment.controller,
            solver: Some(self.services.solver),
            solver_url: Some(self.solver.url.clone()),
            mediators: self.services.mediators.clone(),
            tls_ca: None,
        }
    }

    /// Where a published dev network's profile lives: DATA_DIR/networks/dev.toml, for the
    /// network's directory DATA_DIR/dev.
    pub fn profile_file(data_dir: &Path) -> PathBuf {
        crate::profile::Profile::path(data_dir.parent().unwrap_or(data_dir), "dev")
    }

    fn publish(&self) -> anyhow::Result<()> {
        let key_file = self.data_dir.join("keys/job-creator.key");
        let _ = std::fs::remove_file(&key_file);
        crate::keys::write_key(&key_file, &self.keys.job_creator)
            .with_context(|| format!("cannot write {}", key_file.display()))?;
        let file = NetworkFile {
            rpc_url: self.rpc_url.clone(),
            chain_id: self.chain_id,
            deployment: self.deployment,
            solver: self.services.solver,
            solver_url: self.solver.url.clone(),
            mediators: self.services.mediators.clone(),
            job_creator_key_file: key_file,
        };
        let path = Self::network_file(&self.data_dir);
        std::fs::write(&path, serde_json::to_vec_pretty(&file)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
        let path = Self::profile_file(&self.data_dir);
        self.profile()
            .write(&path)
            .with_context(|| format!("cannot write {}", path.display()))?;
        Ok(())
    }

    /// A chain client for this network's job creator.
    pub async fn job_creator_chain(&self) -> anyhow::Result<Arc<Chain>> {
        self.chain_as(&self.keys.job_creator).await
    }

    /// A chain client on this network signing with `wallet`.
    /// The node serves WebSocket subscriptions on its HTTP port, so roles are woken by each block.
    pub async fn chain_as(&self, wallet: &LocalWallet) -> anyhow::Result<Arc<Chain>> {
        let mut chain = Chain::connect(
            &self.rpc_url,
            wallet.clone(),
            self.deployment.controller,
            self.poll,
        )
        .await?;
        chain.ws_url = Some(ws_url_of(&self.rpc_url));
        Ok(Arc::new(chain))
    }

    /// Stops the solver and starts it again on the same address and data (what an operator's
    /// restart does): it must lose nothing.
    pub async fn restart_solver(&mut self) -> anyhow::Result<()> {
        self.solver_shutdown.cancel();
        (&mut self.solver.task)
            .await
            .context("the solver task failed")?;
        self.solver_shutdown = self.shutdown.child_token();
        self.solver = crate::solver::start(
            self.solver_chain.clone(),
            self.solver_settings.clone(),
            self.solver_shutdown.clone(),
        )
        .await?;
        Ok(())
    }

    /// Stops the roles, then the solver, then the chain's node.
    pub async fn stop(mut self) {
        for (token, mut role) in self.roles.drain(..) {
            token.cancel();
            stop_within(&mut role, "a role").await;
        }
        self.shutdown.cancel();
        stop_within(&mut self.solver.task, "the solver").await;
        if self.options.publish {
            let _ = std::fs::remove_file(Self::network_file(&self.data_dir));
            let _ = std::fs::remove_file(Self::profile_file(&self.data_dir));
        }
        let _ = self.node.kill().await;
    }
}

/// Deploys the contracts from `deployer` (also the treasury) on the chain at `rpc_url`, with
/// `operator` as the on-chain job service's operator, and gives each of `funded` 100 ETH and
/// 10,000 LP, as `lilypad dev` does for its roles. Returns the deployment and the chain id.
pub async fn deploy_and_fund(
    rpc_url: &str,
    deployer: &LocalWallet,
    operator: Address,
    funded: &[Address],
) -> anyhow::Result<(Deployment, u64)> {
    let (client, chain_id) =
        signing_client(rpc_url, deployer.clone(), Duration::from_millis(20)).await?;
    let settings = DeploySettings::own_network(deployer.address(), operator);
    let deployment = deploy(client.clone(), &settings)
        .await
        .context("cannot deploy the contracts")?;
    tracing::info!(controller = ?deployment.controller, token = ?deployment.token, "contracts deployed");
    for address in funded {
        fund(
            client.clone(),
            deployment.token,
            *address,
            FUND_ETH.into(),
            FUND_LP.into(),
        )
        .await
        .with_context(|| format!("cannot fund {address:?}"))?;
    }
    Ok((deployment, chain_id))
}

/// How long a stopping role may take before it is cut off: its own grace for running
/// steps, and a little more to close its database.
const STOP_GRACE: Duration = Duration::from_secs(crate::worker::STOP_GRACE.as_secs() + 5);

/// Waits for a cancelled task to end, aborting it after [`STOP_GRACE`].
async fn stop_within<T>(task: &mut tokio::task::JoinHandle<T>, what: &str) {
    if tokio::time::timeout(STOP_GRACE, &mut *task).await.is_err() {
        tracing::warn!(
            "{what} did not stop within {} s; aborting it",
            STOP_GRACE.as_secs()
        );
        task.abort();
        let _ = task.await;
    }
}

type Role = (CancellationToken, tokio::task::JoinHandle<()>);

/// Runs one role as a task with its own stop token (a child of `shutdown`).
fn spawn_role<F, Fut>(name: &'static str, shutdown: &CancellationToken, role: F) -> Role
where
    F: FnOnce(CancellationToken) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let stop = shutdown.child_token();
    let task = tokio::spawn(role(stop.clone()).map(move |result| {
        if let Err(error) = result {
            tracing::error!(role = name, error = format!("{error:#}"), "role stopped");
        }
    }));
    (stop, task)
}

/// The node's WebSocket endpoint: its HTTP address with the ws scheme (anvil and geth, as
/// started here, serve both on one port).
fn ws_url_of(rpc_url: &str) -> String {
    rpc_url.replacen("http", "ws", 1)
}

/// Reads a running dev network's file, if the network answers.
pub async fn find_running(data_dir: &Path) -> Option<NetworkFile> {
    let text = std::fs::read_to_string(DevNetwork::network_file(data_dir)).ok()?;
    let file: NetworkFile = serde_json::from_str(&text).ok()?;
    let probe = SolverClient::new(&file.solver_url, crate::keys::generate());
    probe.health().await.ok()?;
    crate::chain::client::provider(&file.rpc_url, Duration::from_millis(100))
        .await
        .ok()?;
    Some(file)
}
