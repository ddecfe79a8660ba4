//! `lilypad saas`: the network for people without wallets. They sign up, get credits from
//! the operator (`lilypad saas grant`), make API keys, and run modules from the catalog; the
//! service runs each job through the network as a job creator, with its own key, and keeps
//! accounts, credits and jobs in SQLite under DATA_DIR or the PostgreSQL database
//! `DATABASE_URL` names.

pub mod api;
pub mod auth;
pub mod runner;
pub mod store;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use crate::chain::Chain;
use crate::client::SolverClient;
use crate::config::Settings;
use crate::run::JobRequest;
use runner::{CatalogEntry, Runner};
use store::Store;

/// The modules a service offers unless configured otherwise.
pub fn default_catalog() -> Vec<CatalogEntry> {
    vec![CatalogEntry {
        module: "cowsay:v0.0.1".into(),
        title: "Cowsay: a cow says your message".into(),
        cost: 1,
        inputs: vec!["Message".into()],
    }]
}

/// The catalog SAAS_CATALOG names, or [`default_catalog`].
pub fn catalog(settings: &Settings) -> anyhow::Result<Vec<CatalogEntry>> {
    let Some(path) = &settings.saas_catalog else {
        return Ok(default_catalog());
    };
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("SAAS_CATALOG: cannot read {}", path.display()))?;
    let catalog: Vec<CatalogEntry> = serde_json::from_str(&text).with_context(|| {
        format!(
            "SAAS_CATALOG {}: not a list of {{\"module\", \"title\", \"cost\", \"inputs\"}}",
            path.display()
        )
    })?;
    if let Some(entry) = catalog.iter().find(|entry| entry.cost < 0) {
        anyhow::bail!(
            "SAAS_CATALOG: {} costs {} credits",
            entry.module,
            entry.cost
        );
    }
    Ok(catalog)
}

/// The store `settings` name: PostgreSQL (`DATABASE_URL`) or DATA_DIR/saas/saas.db.
pub async fn open_store(settings: &Settings) -> anyhow::Result<Store> {
    let path = settings.data_dir.join("saas").join("saas.db");
    let url = settings
        .database_url
        .as_ref()
        .map(|url| url.expose())
        .filter(|url| !url.is_empty());
    Ok(Store::open_or_connect(url, &path).await?)
}

/// Every job's request but its module and inputs, from the settings (the terms, the
/// network's services, the module cache), results under DATA_DIR/saas/results.
pub fn job_template(
    settings: &Settings,
    services: crate::data::Services,
) -> anyhow::Result<JobRequest> {
    Ok(JobRequest {
        module: String::new(),
        inputs: Default::default(),
        pricing: settings.pricing()?,
        timeouts: settings.timeouts()?,
        services,
        results_dir: settings.data_dir.join("saas").join("results"),
        timeout: Duration::from_secs(600),
        poll: settings.poll_interval(),
        progress: false,
        mediation_chance: 0,
        accept_failures: false,
        results_reader: None,
        on_chain_job: None,
        modules: crate::module::GitModules::from_settings(settings),
        location: None,
        ipfs: settings.ipfs()?,
    })
}

/// A started service.
pub struct SaasHandle {
    pub address: SocketAddr,
    pub url: String,
    pub runner: Arc<Runner>,
    pub task: tokio::task::JoinHandle<()>,
}

/// How a service runs: every job's request but module and inputs, the catalog, where it
/// listens and how many proxies are in front of it.
pub struct Service {
    pub template: JobRequest,
    pub catalog: Vec<CatalogEntry>,
    pub listen: SocketAddr,
    pub trusted_proxy_hops: usize,
}

impl Service {
    /// The service `settings` describe (SAAS_LISTEN, SAAS_CATALOG, TRUSTED_PROXY_HOPS, the
    /// terms), running its jobs with the network's `services`.
    pub fn from_settings(
        settings: &Settings,
        services: crate::data::Services,
    ) -> anyhow::Result<Service> {
        let listen = settings.saas_listen.parse().map_err(|_| {
            anyhow::anyhow!("SAAS_LISTEN {:?} is not ADDRESS:PORT", settings.saas_listen)
        })?;
        Ok(Service {
            template: job_template(settings, services)?,
            catalog: catalog(settings)?,
            listen,
            trusted_proxy_hops: settings.trusted_proxy_hops,
        })
    }
}

/// Starts the service: resumes unfinished jobs, then serves the pages and the API until
/// `shutdown`.
pub async fn start(
    store: Store,
    chain: Arc<Chain>,
    client: SolverClient,
    service: Service,
    shutdown: CancellationToken,
) -> anyhow::Result<SaasHandle> {
    let Service {
        template,
        catalog,
        listen,
        trusted_proxy_hops,
    } = service;
    let runner = Runner::new(
        store.clone(),
        chain,
        client,
        template,
        catalog,
        shutdown.clone(),
    );
    let resumed = runner.resume().await?;
    if resumed > 0 {
        tracing::info!(resumed, "following unfinished jobs again");
    }
    let saas = Arc::new(api::Saas {
        runner: runner.clone(),
        store: store.clone(),
        login: auth::LoginLimit::default(),
        trusted_proxy_hops,
    });
    let signal = shutdown.clone();
    let (address, server) = warp::serve(api::routes(saas))
        .try_bind_with_graceful_shutdown(listen, async move { signal.cancelled().await })
        .with_context(|| format!("cannot listen on SAAS_LISTEN {listen}"))?;
    let url = format!("http://{address}");
    tracing::info!(%url, "saas serving");
    let task = tokio::spawn(async move {
        server.await;
        store.close().await;
    });
    Ok(SaasHandle {
        address,
        url,
        runner,
        task,
    })
}
