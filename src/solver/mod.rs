//! `lilypad solver`: the market. Takes signed offers over HTTP, matches them into deals,
//! relays result files, mirrors deal states from chain events, and streams numbered events
//! over `/ws`. State lives in SQLite under DATA_DIR, so a restart loses nothing.

pub mod api;
mod decoded;
pub mod limits;
pub mod matcher;
mod metrics;
mod query;
pub mod store;
mod watcher;
mod ws;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use ethers::types::Address;
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

use crate::bus::{Bus, Event};
use crate::chain::terms::{deal_key, terms_of};
use crate::chain::Chain;
use crate::data::offers::now_millis;
use crate::data::records::{DealRecord, JobOfferRecord, ResourceOfferRecord, TxRecord};
use crate::data::signing::{AuthError, Verified};
use crate::data::{ContentAddressed, JobOffer, JobResult, ResourceOffer};
use crate::results::{self, Limits};
use store::{Store, StoreError};

/// What the solver can fail with (the API maps these to statuses).
#[derive(Debug, thiserror::Error)]
pub enum SolverError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Io(String),
    /// Refused for now (a limit); the client may try again after `retry_after` seconds.
    #[error("{message}")]
    TooMany { message: String, retry_after: u64 },
}

impl From<limits::Limited> for SolverError {
    fn from(limited: limits::Limited) -> SolverError {
        SolverError::TooMany {
            message: limited.message,
            retry_after: limited.retry_after,
        }
    }
}

impl SolverError {
    /// The HTTP status that says whose fault this was.
    pub fn status(&self) -> warp::http::StatusCode {
        use warp::http::StatusCode;
        match self {
            SolverError::Auth(AuthError::NotTheParty { .. }) => StatusCode::FORBIDDEN,
            SolverError::Auth(_) => StatusCode::UNAUTHORIZED,
            SolverError::Invalid(_) => StatusCode::BAD_REQUEST,
            SolverError::NotFound(_) => StatusCode::NOT_FOUND,
            SolverError::Conflict(_) => StatusCode::CONFLICT,
            SolverError::TooMany { .. } => StatusCode::TOO_MANY_REQUESTS,
            SolverError::Store(_) | SolverError::Io(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// What a job creator at its open-offer limit is told to wait before trying again.
const OPEN_OFFERS_RETRY_AFTER_SECS: u64 = 10;

/// Solver settings.
#[derive(Debug, Clone)]
pub struct SolverSettings {
    pub data_dir: PathBuf,
    /// A resource offer not refreshed for this long is not matched.
    pub offer_ttl_ms: u64,
    pub max_upload_bytes: u64,
    /// Unmatched job offers one job creator may have open at once.
    pub max_open_job_offers: u32,
    /// What is forgotten when.
    pub retention: store::Retention,
    pub listen: SocketAddr,
    /// Published in the Users contract so clients find the solver.
    pub public_url: Option<String>,
    /// A PostgreSQL database for the store (SOLVER_DATABASE_URL); None: SQLite under
    /// `data_dir`.
    pub database_url: Option<crate::config::Secret>,
    /// Requests per IP and per key, open event streams.
    pub limits: limits::LimitSettings,
}

impl SolverSettings {
    /// The solver's settings from the node's settings.
    pub fn from_settings(settings: &crate::config::Settings) -> anyhow::Result<SolverSettings> {
        use anyhow::Context;
        let listen = format!("{}:{}", settings.server_host, settings.server_port);
        let listen = listen.parse().with_context(|| {
            format!(
                "SERVER_HOST (--server-host) {:?} is not an IP address",
                settings.server_host
            )
        })?;
        Ok(SolverSettings {
            data_dir: settings.data_dir.join("solver"),
            offer_ttl_ms: settings.offer_ttl.saturating_mul(1000),
            max_upload_bytes: settings.max_upload_bytes,
            max_open_job_offers: settings.max_open_job_offers,
            retention: store::Retention {
                deals_ms: settings.retain_deals.saturating_mul(1000),
                results_ms: settings.retain_results.saturating_mul(1000),
                events: settings.retain_events,
            },
            listen,
            public_url: settings.server_url.clone(),
            database_url: settings
                .solver_database_url
                .clone()
                .filter(|url| !url.expose().is_empty()),
            limits: limits::LimitSettings {
                per_ip: settings.rate_limit_per_ip,
                per_address: settings.rate_limit_per_address,
                ws_clients: settings.max_ws_clients,
                ws_clients_per_ip: settings.max_ws_clients_per_ip,
                trusted_proxy_hops: settings.trusted_proxy_hops,
            },
        })
    }
}

/// The solver's shared state.
pub struct Solver {
    pub store: Store,
    pub bus: Bus,
    pub address: Address,
    pub settings: SolverSettings,
    pub shutdown: CancellationToken,
    /// One matching pass at a time.
    matching: Mutex<()>,
    /// Wakes the matcher task: an offer arrived. Wake-ups while a pass runs fold into one
    /// more pass, so a burst of offers costs a few passes, not one each.
    match_wanted: tokio::sync::Notify,
    /// Held from a write that stores events until they are published, so subscribers get
    /// events in the order of their numbers (a `/ws` client resumes after the last number it
    /// saw; one published out of order would be lost to it).
    publishing: Mutex<()>,
    /// Requests per IP and per key, open event streams.
    pub limits: Arc<limits::Limits>,
}

/// A running solver.
pub struct SolverHandle {
    pub address: SocketAddr,
    pub url: String,
    pub solver: Arc<Solver>,
    pub task: tokio::task::JoinHandle<()>,
}

impl Solver {
    fn files_dir(&self) -> PathBuf {
        self.settings.data_dir.join("files")
    }

    /// Taken around a store write that adds events and the publishing of those events.
    pub async fn publishing(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.publishing.lock().await
    }

    pub fn publish(&self, events: impl IntoIterator<Item = Event>) {
        for event in events {
            self.bus.publish(event);
        }
    }

    /// Checks a posted offer: the signer is the party it names (`named.0`), its id matches
    /// its content, and the solver it names (`named.1`) is this one.
    fn check_offer(
        &self,
        offer: &impl ContentAddressed,
        named: (Address, Address),
        signer: Address,
        role: &'static str,
        what: &'static str,
    ) -> Result<(), SolverError> {
        let (party, solver) = named;
        if party != signer {
            return Err(AuthError::NotTheParty { signer, role, what }.into());
        }
        if !offer.id_is_valid() {
            return Err(SolverError::Invalid(format!(
                "{what} id {:?} does not match its content (expected {})",
                offer.id(),
                offer.compute_id()
            )));
        }
        if solver != self.address {
            return Err(SolverError::Invalid(format!(
                "the offer names solver {solver:?}; this solver is {:?}",
                self.address
            )));
        }
        Ok(())
    }

    /// Takes a job offer posted by the request `signed`; the request's signature is
    /// remembered in the same transaction, so the same request is never taken twice.
    pub async fn add_job_offer(
        &self,
        offer: JobOffer,
        signed: &Verified,
    ) -> Result<JobOfferRecord, SolverError> {
        let signer = signed.signer;
        let named = (offer.job_creator, offer.services.solver);
        self.check_offer(&offer, named, signer, "the job creator", "job offer")?;
        let open = self.store.open_job_offer_count(offer.job_creator).await?;
        let cap = self.settings.max_open_job_offers;
        if open >= u64::from(cap) && self.store.job_offer(&offer.id).await?.is_none() {
            return Err(SolverError::TooMany {
                message: format!(
                    "{:?} already has {open} unmatched job offers open, the most this solver takes from one job creator (MAX_OPEN_JOB_OFFERS = {cap}); post more once some are matched or withdrawn",
                    offer.job_creator
                ),
                retry_after: OPEN_OFFERS_RETRY_AFTER_SECS,
            });
        }
        let publishing = self.publishing().await;
        let added = replayed_if_seen(self.store.add_job_offer(&offer, Some(seen(signed))).await)?;
        if let Some(event) = added {
            tracing::info!(job_offer_id = %offer.id, module = %offer.module, "job offer added");
            self.publish([event]);
            drop(publishing);
            self.match_soon();
            // New, so no deal yet.
            return Ok(JobOfferRecord {
                offer,
                deal_id: None,
            });
        }
        drop(publishing);
        Ok(self
            .store
            .job_offer(&offer.id)
            .await?
            .unwrap_or(JobOfferRecord {
                offer,
                deal_id: None,
            }))
    }

    /// Takes a resource offer posted (or posted again, which refreshes it) by the request
    /// `signed`, remembering its signature as [`Solver::add_job_offer`] does.
    pub async fn add_resource_offer(
        &self,
        offer: ResourceOffer,
        signed: &Verified,
    ) -> Result<ResourceOfferRecord, SolverError> {
        let signer = signed.signer;
        let named = (offer.resource_provider, offer.services.solver);
        self.check_offer(
            &offer,
            named,
            signer,
            "the resource provider",
            "resource offer",
        )?;
        let publishing = self.publishing().await;
        let now = now_millis();
        let added = replayed_if_seen(
            self.store
                .add_resource_offer(&offer, now, Some(seen(signed)))
                .await,
        )?;
        if let Some(event) = added {
            tracing::info!(resource_offer_id = %offer.id, "resource offer added");
            self.publish([event]);
            drop(publishing);
            self.match_soon();
            return Ok(ResourceOfferRecord {
                offer,
                deal_id: None,
                last_seen: now,
            });
        }
        drop(publishing);
        self.match_soon();
        self.store
            .resource_offer(&offer.id)
            .await?
            .ok_or_else(|| SolverError::NotFound(offer.id.clone()))
    }

    pub async fn refresh_resource_offer(
        &self,
        id: &str,
        signer: Address,
    ) -> Result<ResourceOfferRecord, SolverError> {
        if !self
            .store
            .refresh_resource_offer(id, signer, now_millis())
            .await?
        {
            return Err(SolverError::NotFound(format!(
                "no resource offer {id} of {signer:?}"
            )));
        }
        self.store
            .resource_offer(id)
            .await?
            .ok_or_else(|| SolverError::NotFound(id.to_string()))
    }

    /// Withdraws a job offer that has no deal yet, at its job creator's request (it gave up
    /// waiting): it is never matched afterwards. Conflict if a deal was made for it already.
    pub async fn withdraw_job_offer(&self, id: &str, signer: Address) -> Result<(), SolverError> {
        let _pass = self.matching.lock().await;
        let record = self
            .store
            .job_offer(id)
            .await?
            .ok_or_else(|| SolverError::NotFound(format!("no job offer {id}")))?;
        if record.offer.job_creator != signer {
            return Err(AuthError::NotTheParty {
                signer,
                role: "the job creator",
                what: "job offer",
            }
            .into());
        }
        if let Some(deal_id) = record.deal_id {
            return Err(SolverError::Conflict(format!(
                "job offer {id} already has deal {deal_id}"
            )));
        }
        self.store.withdraw_job_offer(id).await?;
        tracing::info!(job_offer_id = %id, "job offer withdrawn");
        Ok(())
    }

    /// Asks the matcher task for a pass soon (it runs one pass for any number of requests
    /// made while the last one ran).
    pub fn match_soon(&self) {
        self.match_wanted.notify_one();
    }

    /// Waits until a pass is wanted ([`Solver::match_soon`]).
    pub async fn match_wanted(&self) {
        self.match_wanted.notified().await;
    }

    /// One matching pass over everything open; stores the deals in one transaction.
    pub async fn match_now(&self) -> Result<usize, SolverError> {
        let _pass = self.matching.lock().await;
        let started = std::time::Instant::now();
        let jobs = self.store.open_job_offers().await?;
        if jobs.is_empty() {
            return Ok(0);
        }
        let alive_since = now_millis().saturating_sub(self.settings.offer_ttl_ms);
        let resources = self.store.live_resource_offers(alive_since).await?;
        let negotiating = self.store.negotiating_deals_by_job_creator().await?;
        // A pass over many offers is tens of milliseconds of work: off the async threads.
        let deals = tokio::task::spawn_blocking(move || {
            matcher::match_offers(&jobs, &resources, &negotiating, rand::random)
        })
        .await
        .map_err(|e| SolverError::Io(format!("the matching pass failed: {e}")))?;
        let mut keyed = Vec::with_capacity(deals.len());
        for deal in deals {
            let id = deal
                .chain_id()
                .map_err(|e| SolverError::Invalid(e.to_string()))?;
            let key = format!("0x{}", hex::encode(deal_key(id, &terms_of(&deal))));
            keyed.push((deal, key));
        }
        let publishing = self.publishing().await;
        let events = self.store.commit_deals(&keyed).await?;
        for (deal, _) in &keyed {
            tracing::info!(deal_id = %deal.id, job_offer_id = %deal.job_offer.id, resource_offer_id = %deal.resource_offer.id, "deal created");
        }
        let count = events.len();
        self.publish(events);
        drop(publishing);
        crate::metrics::match_pass(started.elapsed());
        Ok(count)
    }

    pub async fn explain(
        &self,
        job_offer_id: &str,
    ) -> Result<crate::data::explanation::Explanation, SolverError> {
        let record = self
            .store
            .job_offer(job_offer_id)
            .await?
            .ok_or_else(|| SolverError::NotFound(format!("no job offer {job_offer_id}")))?;
        let alive_since = now_millis().saturating_sub(self.settings.offer_ttl_ms);
        let open: Vec<_> = self
            .store
            .resource_offers(None)
            .await?
            .into_iter()
            .filter(|r| r.deal_id.is_none())
            .collect();
        let offline = open.iter().filter(|r| r.last_seen < alive_since).count();
        let live: Vec<ResourceOffer> = open
            .into_iter()
            .filter(|r| r.last_seen >= alive_since)
            .map(|r| r.offer)
            .collect();
        let mut explanation = matcher::explain(&record.offer, &live, offline);
        explanation.deal_id = record.deal_id;
        Ok(explanation)
    }

    /// The deal, if `signer` is its resource provider (who alone may post its results).
    async fn resource_providers_deal(
        &self,
        deal_id: &str,
        signer: Address,
    ) -> Result<DealRecord, SolverError> {
        let record = self.deal_for(deal_id).await?;
        if record.deal.members.resource_provider != signer {
            return Err(AuthError::NotTheParty {
                signer,
                role: "the resource provider",
                what: "deal",
            }
            .into());
        }
        Ok(record)
    }

    pub async fn deal_for(&self, deal_id: &str) -> Result<DealRecord, SolverError> {
        self.store
            .deal(deal_id)
            .await?
            .ok_or_else(|| SolverError::NotFound(format!("no deal {deal_id}")))
    }

    pub async fn upload_files(
        &self,
        deal_id: &str,
        tar: &[u8],
        signer: Address,
    ) -> Result<serde_json::Value, SolverError> {
        self.resource_providers_deal(deal_id, signer).await?;
        let limits = Limits {
            max_bytes: self.settings.max_upload_bytes * 4,
            ..Limits::default()
        };
        results::validate(tar, limits)
            .map_err(|e| SolverError::Invalid(format!("results of deal {deal_id} refused: {e}")))?;
        let cid = crate::data::ids::file_cid_of(tar);
        let dir = self.files_dir();
        let path = dir.join(format!("{cid}.tar"));
        let write = async {
            tokio::fs::create_dir_all(&dir).await?;
            let partial = dir.join(format!("{cid}.tar.partial"));
            tokio::fs::write(&partial, tar).await?;
            tokio::fs::rename(&partial, &path).await
        };
        write
            .await
            .map_err(|e| SolverError::Io(format!("cannot store results of deal {deal_id}: {e}")))?;
        self.store.put_file(deal_id, &cid, &path).await?;
        tracing::info!(deal_id, results_cid = %cid, bytes = tar.len(), "results uploaded");
        Ok(serde_json::json!({ "deal_id": deal_id, "results_cid": cid }))
    }

    pub async fn add_result(
        &self,
        deal_id: &str,
        result: JobResult,
        signer: Address,
    ) -> Result<JobResult, SolverError> {
        self.resource_providers_deal(deal_id, signer).await?;
        if result.deal_id != deal_id {
            return Err(SolverError::Invalid(format!(
                "the result names deal {} but was posted to {deal_id}",
                result.deal_id
            )));
        }
        match self.store.file(deal_id).await? {
            Some((cid, _)) if cid == result.results_cid => {}
            Some((cid, _)) => {
                return Err(SolverError::Conflict(format!(
                    "the uploaded results of deal {deal_id} are {cid}, not {}",
                    result.results_cid
                )))
            }
            None => {
                return Err(SolverError::Conflict(format!(
                    "upload the results of deal {deal_id} before posting the result"
                )))
            }
        }
        let publishing = self.publishing().await;
        if let Some(event) = self.store.put_result(&result).await? {
            self.publish([event]);
        }
        drop(publishing);
        self.store
            .result(deal_id)
            .await?
            .ok_or_else(|| SolverError::NotFound(deal_id.to_string()))
    }

    /// Who may read a deal's result record: its JC, its RP, its mediator and the reader
    /// the JC named.
    fn may_read(record: &DealRecord, signer: Address) -> Result<(), SolverError> {
        let members = &record.deal.members;
        if members.job_creator == signer
            || members.resource_provider == signer
            || members.mediator == signer
            || record.deal.job_offer.results_reader == Some(signer)
        {
            Ok(())
        } else {
            Err(AuthError::NotTheParty {
                signer,
                role: "the job creator, resource provider or mediator",
                what: "deal",
            }
            .into())
        }
    }

    pub async fn result_for(
        &self,
        deal_id: &str,
        signer: Address,
    ) -> Result<JobResult, SolverError> {
        let record = self.deal_for(deal_id).await?;
        Self::may_read(&record, signer)?;
        self.store
            .result(deal_id)
            .await?
            .ok_or_else(|| SolverError::NotFound(format!("deal {deal_id} has no result yet")))
    }

    pub async fn download_files(
        &self,
        deal_id: &str,
        signer: Address,
    ) -> Result<Vec<u8>, SolverError> {
        let record = self.deal_for(deal_id).await?;
        let members = &record.deal.members;
        let reader = record.deal.job_offer.results_reader == Some(signer);
        if members.job_creator != signer && members.mediator != signer && !reader {
            return Err(AuthError::NotTheParty {
                signer,
                role: "the job creator, the mediator or the reader the job creator named",
                what: "deal",
            }
            .into());
        }
        let (_, path) =
            self.store.file(deal_id).await?.ok_or_else(|| {
                SolverError::NotFound(format!("deal {deal_id} has no results yet"))
            })?;
        tokio::fs::read(&path)
            .await
            .map_err(|e| SolverError::Io(format!("cannot read the results of deal {deal_id}: {e}")))
    }

    /// Forgets what the retention settings let go, and deletes the results files of it.
    pub async fn prune(&self) -> Result<store::Pruned, SolverError> {
        let (pruned, files) = self
            .store
            .prune(now_millis(), &self.settings.retention)
            .await?;
        for file in files {
            match tokio::fs::remove_file(&file).await {
                Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
                    tracing::warn!(file = %file.display(), %error, "cannot delete an expired results file")
                }
                _ => {}
            }
        }
        if pruned != store::Pruned::default() {
            tracing::info!(
                deals = pruned.deals,
                offers = pruned.offers,
                files = pruned.files,
                events = pruned.events,
                "forgot what the retention settings let go"
            );
        }
        Ok(pruned)
    }

    pub async fn add_tx(&self, record: TxRecord) -> Result<TxRecord, SolverError> {
        let deal = self.deal_for(&record.deal_id).await?;
        Self::may_read(&deal, record.address)?;
        self.store.add_tx(&record).await?;
        Ok(record)
    }
}

/// Starts the solver: opens the store, registers the URL on chain, serves the API, watches
/// the chain and re-matches every tick. Returns once listening.
pub async fn start(
    chain: Arc<Chain>,
    settings: SolverSettings,
    shutdown: CancellationToken,
) -> anyhow::Result<SolverHandle> {
    use anyhow::Context;
    let db = settings.data_dir.join("solver.db");
    let url = settings.database_url.as_ref().map(|url| url.expose());
    let store = Store::open_or_connect(url, &db).await.context(
        "cannot open the solver database (SOLVER_DATABASE_URL, or solver.db under DATA_DIR)",
    )?;
    tracing::info!(database = %store.name().display(), "solver store open");
    let solver = Arc::new(Solver {
        store,
        bus: Bus::default(),
        address: chain.address(),
        settings: settings.clone(),
        shutdown: shutdown.clone(),
        matching: Mutex::new(()),
        match_wanted: tokio::sync::Notify::new(),
        publishing: Mutex::new(()),
        limits: Arc::new(limits::Limits::new(settings.limits.clone())),
    });
    limits::spawn_cleanup(solver.limits.clone(), shutdown.clone());
    let routes = api::routes(solver.clone());
    let signal = shutdown.clone();
    let (address, server) = warp::serve(routes)
        .try_bind_with_graceful_shutdown(settings.listen, async move { signal.cancelled().await })
        .with_context(|| {
            format!(
                "cannot listen on {} (SERVER_HOST/SERVER_PORT); is another solver running?",
                settings.listen
            )
        })?;
    let url = settings
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{address}"));
    watcher::register(&chain, &url)
        .await
        .context("cannot register the solver's URL in the Users contract")?;
    tracing::info!(%address, %url, solver = ?solver.address, "solver listening");
    let deal_states = watcher::deal_states(&chain, &solver)
        .await
        .context("cannot follow deal states on chain")?;
    let watcher = tokio::spawn(watcher::watch_chain(
        chain.clone(),
        deal_states,
        solver.clone(),
    ));
    let ticker = tokio::spawn(watcher::tick(solver.clone(), chain.poll_interval()));
    let matcher = tokio::spawn(watcher::match_when_wanted(solver.clone()));
    let closing = solver.clone();
    let task = tokio::spawn(async move {
        server.await;
        let _ = watcher.await;
        let _ = ticker.await;
        let _ = matcher.await;
        closing.store.close().await;
        tracing::info!("solver stopped");
    });
    Ok(SolverHandle {
        address,
        url,
        solver,
        task,
    })
}

/// What a store write remembers of the request `signed`, as of now.
fn seen(signed: &Verified) -> store::Seen<'_> {
    store::Seen {
        signature: &signed.canonical,
        at_secs: crate::data::signing::now_secs(),
    }
}

/// A store write refused because its request's signature was used before is a replay.
fn replayed_if_seen<T>(result: Result<T, StoreError>) -> Result<T, SolverError> {
    match result {
        Err(StoreError::Replayed) => Err(AuthError::Replayed.into()),
        other => Ok(other?),
    }
}
