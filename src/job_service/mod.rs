//! `lilypad jc`, the on-chain job service: runs jobs that smart contracts request through
//! LilypadOnChainJobCreator. (Not to be confused with the job creator of `lilypad run`, the
//! party that pays for a deal: this service is such a job creator on the contracts' behalf.)
//! It reads `JobAdded` events from its saved block (so requests made while it was down are
//! served), records each request durably, runs it as an ordinary job creator (job offer,
//! deal, results; the job offer names the request and lets the requester download the
//! results through the solver; each deal is bound to the request on chain with `startJob`
//! before we agree to it), and reports back: `completeJob` once the results were accepted
//! (the contract checks the bound deal on chain, pays this operator the request's deposit
//! and calls the client),
//! or `failJob` when no resource provider took the job in time or its deal ended without
//! accepted results (the requester is refunded and the client told why).

mod ledger;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use ethers::types::{Address, Filter, U256};
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

use crate::chain::bindings::lilypad_on_chain_job_creator::JobAddedFilter;
use crate::chain::bindings::DealTerms;
use crate::chain::follower::{Checkpoint, Follower, StartAt};
use crate::chain::Chain;
use crate::client::{ClientError, SolverClient};
use crate::config::{ConfigError, Settings};
use crate::data::{JobOffer, OnChainJob, Pricing, Services, Timeouts};
use crate::run::{follow_job, job_offer, JobOutcome, JobRequest, NoMatch};
use crate::worker::{self, Ticks, WorkId, Worker};
pub use ledger::Status;
use ledger::{Ledger, Request, Tracked};

/// `JobStatus.Pending` in LilypadOnChainJobCreator.
const PENDING: u8 = 1;

/// How the service runs requested jobs.
#[derive(Debug, Clone)]
pub struct JobServiceSettings {
    pub data_dir: PathBuf,
    pub poll: Duration,
    /// Where a brand-new jc starts reading requests (later starts resume from the saved block).
    pub from_block: u64,
    /// How long a request may wait for a resource provider before it fails and is refunded.
    pub match_timeout: Duration,
    pub pricing: Pricing,
    pub timeouts: Timeouts,
    pub services: Services,
    /// Percent of results to have a mediator check.
    pub mediation_chance: u8,
    /// The module cache (requested modules kept in git are pinned through it).
    pub modules: crate::module::GitModules,
    /// Fetch results from this IPFS daemon first (IPFS_CONNECT).
    pub ipfs: Option<crate::results::ipfs::Ipfs>,
    /// Where /health and /metrics are served (METRICS_LISTEN), if anywhere.
    pub metrics_listen: Option<std::net::SocketAddr>,
}

impl JobServiceSettings {
    /// The service's settings from the node's settings; its job offers trust `services`.
    pub fn from_settings(
        settings: &Settings,
        services: Services,
    ) -> Result<JobServiceSettings, ConfigError> {
        Ok(JobServiceSettings {
            data_dir: settings.data_dir.join("jc"),
            poll: settings.poll_interval(),
            from_block: settings.jc_from_block,
            match_timeout: Duration::from_secs(settings.jc_match_timeout),
            pricing: settings.pricing()?,
            timeouts: settings.timeouts()?,
            services,
            mediation_chance: settings.jc_mediation_chance,
            modules: crate::module::GitModules::from_settings(settings),
            ipfs: settings.ipfs()?,
            metrics_listen: settings.metrics_listen()?,
        })
    }
}

impl crate::ops::Ops for JobService {
    const ROLE: &'static str = "jc";

    fn chain(&self) -> &Chain {
        &self.chain
    }

    fn solver(&self) -> &SolverClient {
        &self.client
    }

    async fn counts(&self) -> Result<String, String> {
        let statuses = self
            .ledger
            .db()
            .counts("SELECT status, COUNT(*) FROM requests GROUP BY status ORDER BY status")
            .await
            .map_err(|e| e.to_string())?;
        Ok(crate::metrics::gauge_family(
            "lilypad_jc_requests",
            "Job requests from contracts by status",
            "status",
            &statuses,
        ))
    }
}

struct JobService {
    chain: Arc<Chain>,
    client: SolverClient,
    settings: JobServiceSettings,
    ledger: Ledger,
    /// `JobAdded` events of the job creator contract.
    requests: Mutex<Follower>,
}

/// Runs the service until `shutdown`.
pub async fn run(
    chain: Arc<Chain>,
    client: SolverClient,
    settings: JobServiceSettings,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let ledger = Ledger::open(&settings.data_dir.join("jc.db")).await?;
    let operator = chain
        .contracts
        .job_creator
        .operator()
        .call()
        .await
        .context("cannot read the job creator contract's operator")?;
    if operator != chain.address() {
        anyhow::bail!(
            "this key ({:?}) is not the operator of the job creator contract {:?} (its operator is {operator:?}): completeJob and failJob would be refused",
            chain.address(),
            chain.contracts.job_creator.address()
        );
    }
    let filter = Filter::new()
        .address(chain.contracts.job_creator.address())
        .event("JobAdded(uint256,address,address,string,string[],uint256)");
    let requests = Follower::open(
        &chain,
        filter,
        Checkpoint::new(ledger.db().clone()),
        StartAt::Block(settings.from_block),
    )
    .await?;
    tracing::info!(operator = ?chain.address(), from_block = requests.next_block(), "on-chain job creator started");
    let service = Arc::new(JobService {
        chain,
        client,
        settings,
        ledger,
        requests: Mutex::new(requests),
    });
    if let Some(listen) = service.settings.metrics_listen {
        crate::ops::serve(listen, service.clone(), shutdown.child_token()).await?;
    }
    let ticks = Ticks {
        poll: service.settings.poll,
        wake: None,
        heads: service.chain.new_heads(shutdown.child_token()),
    };
    worker::run(service.clone(), ticks, shutdown).await;
    service.ledger.shut().await;
    Ok(())
}

/// The service looks at the job requests on chain (recorded in its ledger); one step serves one
/// request to its end.
impl Worker for JobService {
    type Item = Tracked;
    const ROLE: &'static str = "jc";

    async fn prepare(&self) -> anyhow::Result<()> {
        self.read_requests()
            .await
            .context("cannot read job requests from the chain")
    }

    async fn find_work(&self) -> anyhow::Result<Vec<Tracked>> {
        let mut work = Vec::new();
        for tracked in self.ledger.open_requests().await? {
            match tracked {
                Ok(tracked) => work.push(tracked),
                Err(error) => tracing::error!(
                    error = format!("{error:#}"),
                    "cannot serve a job request; it is left alone until this is fixed"
                ),
            }
        }
        Ok(work)
    }

    fn id(tracked: &Tracked) -> WorkId {
        WorkId::Job(tracked.request.job_id.clone())
    }

    async fn step(&self, tracked: Tracked) -> anyhow::Result<()> {
        self.serve_one(tracked).await
    }
}

impl JobService {
    /// Records the requests announced since the checkpoint.
    async fn read_requests(&self) -> anyhow::Result<()> {
        let ledger = &self.ledger;
        let mut requests = self.requests.lock().await;
        requests
            .poll(|log| async move {
                let added: JobAddedFilter = match ethers::contract::parse_log(log) {
                    Ok(added) => added,
                    Err(error) => {
                        tracing::warn!(%error, "ignoring a malformed JobAdded log");
                        return Ok(());
                    }
                };
                let request = Request {
                    job_id: added.job_id.to_string(),
                    client: format!("{:?}", added.client),
                    refund_to: format!("{:?}", added.refund_to),
                    module: added.module,
                    inputs: added.inputs,
                    deposit: added.deposit.to_string(),
                };
                ledger.add(&request).await?;
                tracing::info!(job_id = %request.job_id, module = %request.module, client = %request.client, "job requested on chain");
                Ok(())
            })
            .await?;
        Ok(())
    }

    /// Serves one request to its end (or until a step fails; the next tick retries).
    async fn serve_one(&self, tracked: Tracked) -> anyhow::Result<()> {
        let request = &tracked.request;
        let job_id = parse_job_id(&request.job_id)?;
        let job = self
            .chain
            .contracts
            .job_creator
            .get_job(job_id)
            .call()
            .await
            .context("cannot read the job request")?;
        if job.status != PENDING {
            tracing::info!(job_id = %request.job_id, status = job.status, "the request is no longer pending on chain");
            self.ledger
                .close(
                    &request.job_id,
                    Status::Closed,
                    None,
                    "no longer pending on chain",
                )
                .await?;
            return Ok(());
        }
        let job_request = match self.job_request(request) {
            Ok(job_request) => job_request,
            Err(reason) => return self.fail(request, None, &reason).await,
        };
        let offer = match tracked.offer {
            Some(offer) => offer,
            None => match job_offer(self.chain.address(), &job_request).await {
                Ok(offer) => {
                    self.ledger.set_offer(&request.job_id, &offer).await?;
                    offer
                }
                Err(error) => return self.fail(request, None, &format!("{error:#}")).await,
            },
        };
        tracing::info!(job_id = %request.job_id, job_offer_id = %offer.id, "running the requested job");
        match follow_job(
            self.chain.clone(),
            self.client.clone(),
            job_request,
            offer.clone(),
        )
        .await
        {
            Ok(outcome) if outcome.paid_for_results() => self.complete(request, &outcome).await,
            Ok(outcome) => {
                let reason = format!(
                    "deal {} ended in {}: {}",
                    outcome.deal_id,
                    outcome.state.name(),
                    outcome.settlement
                );
                self.fail(request, Some(&outcome.deal_id), &reason).await
            }
            Err(error) if self.never_dealt(&offer, &error).await => {
                self.fail(request, None, &format!("{error:#}")).await
            }
            Err(error) => Err(error.context("following the job's deal; will resume")),
        }
    }

    /// The job request for a chain request: its module and `Key=Value` inputs, our terms,
    /// and the requester allowed to download the results.
    fn job_request(&self, request: &Request) -> Result<JobRequest, String> {
        let inputs = crate::module::parse_inputs(&request.inputs)?;
        let reader: Option<Address> = request.refund_to.parse().ok();
        let on_chain_job = OnChainJob {
            contract: self.chain.contracts.job_creator.address(),
            job_id: request.job_id.clone(),
        };
        Ok(JobRequest {
            module: request.module.clone(),
            inputs,
            pricing: self.settings.pricing,
            timeouts: self.settings.timeouts,
            services: self.settings.services.clone(),
            results_dir: self.settings.data_dir.join("results"),
            timeout: self.settings.match_timeout,
            poll: self.settings.poll,
            progress: false,
            mediation_chance: self.settings.mediation_chance,
            accept_failures: false,
            results_reader: reader,
            on_chain_job: Some(on_chain_job),
            modules: self.settings.modules.clone(),
            location: None,
            ipfs: self.settings.ipfs.clone(),
        })
    }

    /// Whether a failed follow means the job never got a deal and never will (nothing was
    /// paid, so failing the request is safe): no match in time, or the solver refused it.
    async fn never_dealt(&self, offer: &JobOffer, error: &anyhow::Error) -> bool {
        let final_error = error.chain().any(|cause| {
            cause.is::<NoMatch>()
                || cause
                    .downcast_ref::<ClientError>()
                    .is_some_and(|e| !e.is_transient())
        });
        if !final_error {
            return false;
        }
        match self.client.deals(&format!("job_offer={}", offer.id)).await {
            Ok(deals) => deals.is_empty(),
            Err(_) => false,
        }
    }

    async fn complete(&self, request: &Request, outcome: &JobOutcome) -> anyhow::Result<()> {
        let call = self
            .chain
            .contracts
            .job_creator
            .complete_job(parse_job_id(&request.job_id)?);
        self.chain.send("complete the job request", call).await?;
        tracing::info!(job_id = %request.job_id, deal_id = %outcome.deal_id, "job request completed on chain");
        self.ledger
            .close(
                &request.job_id,
                Status::Completed,
                Some(&outcome.deal_id),
                outcome.state.name(),
            )
            .await?;
        Ok(())
    }

    async fn fail(
        &self,
        request: &Request,
        deal_id: Option<&str>,
        reason: &str,
    ) -> anyhow::Result<()> {
        // The client stores the reason within the contract's callback gas: keep it short.
        let short: String = reason.chars().take(200).collect();
        let call = self
            .chain
            .contracts
            .job_creator
            .fail_job(parse_job_id(&request.job_id)?, short.clone());
        self.chain.send("fail the job request", call).await?;
        tracing::warn!(job_id = %request.job_id, reason = %short, "job request failed; the requester was refunded");
        self.ledger
            .close(&request.job_id, Status::Failed, deal_id, &short)
            .await?;
        Ok(())
    }
}

/// Binds the deal to the on-chain request `job` before the operator agrees to it
/// (`startJob`), unless it is bound already: the contract then pays for this deal only, and
/// the requester cannot cancel while it can still succeed. Fails, so that we do not agree,
/// if the request is no longer pending (cancelled, say) or holds another deal that can
/// still succeed.
pub(crate) async fn bind_deal(
    chain: &Chain,
    job: &OnChainJob,
    deal_id: [u8; 32],
    terms: &DealTerms,
    key: [u8; 32],
) -> anyhow::Result<()> {
    let contract = &chain.contracts.job_creator;
    if contract.address() != job.contract {
        anyhow::bail!(
            "the job offer serves a request on {:?}, but this network's job creator contract is {:?}",
            job.contract,
            contract.address()
        );
    }
    let job_id = parse_job_id(&job.job_id)?;
    let on_chain = contract
        .get_job(job_id)
        .call()
        .await
        .context("cannot read the job request")?;
    if on_chain.deal_key == key {
        return Ok(());
    }
    if on_chain.status != PENDING {
        anyhow::bail!(
            "job request {} is no longer pending (status {}); not agreeing to a deal for it",
            job.job_id,
            on_chain.status
        );
    }
    let call = contract.start_job(job_id, deal_id, terms.clone());
    chain
        .send("bind the deal to the job request", call)
        .await
        .with_context(|| format!("cannot bind the deal to job request {}", job.job_id))?;
    tracing::info!(job_id = %job.job_id, deal_key = %hex::encode(key), "deal bound to the job request");
    Ok(())
}

fn parse_job_id(text: &str) -> anyhow::Result<U256> {
    U256::from_dec_str(text).with_context(|| format!("job id {text:?} is not a number"))
}
