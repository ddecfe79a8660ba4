//! `lilypad run MODULE -i K=V`: the job creator's side of one job. Resolves the module,
//! posts a signed job offer, checks the deal the solver makes against it, agrees (escrowing
//! payment and judge-results collateral), waits for the results (solver events plus polling,
//! with a progress display), downloads and verifies them against the results id committed
//! on chain, then accepts them or disputes them (`--check`, `--mediation-chance`, or results
//! that do not match the commitment) and waits for the mediator. While it waits it watches
//! the deal's deadlines and calls the timeouts the job creator is entitled to, so its deposit
//! never stays locked; the outcome says how the deal ended and what that did to its money.

mod deal;
mod progress;
mod unfinished;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ethers::types::Address;

use crate::chain::Chain;
use crate::client::SolverClient;
use crate::data::offers::{new_nonce, now_millis};
use crate::data::{ContentAddressed, DealState, JobOffer, OnChainJob, Pricing, Services, Timeouts};
use crate::results;
use progress::Progress;
pub use unfinished::{UnfinishedJob, UnfinishedJobs};

/// What the job creator asks for.
#[derive(Debug, Clone)]
pub struct JobRequest {
    pub module: String,
    pub inputs: BTreeMap<String, String>,
    pub pricing: Pricing,
    pub timeouts: Timeouts,
    pub services: Services,
    /// Where results are unpacked (a directory per deal under it).
    pub results_dir: PathBuf,
    /// Give up if no resource provider takes the job within this long. Once we have agreed
    /// to a deal, we wait until it ends: the deal's own deadlines bound that wait.
    pub timeout: Duration,
    pub poll: Duration,
    /// Show a spinner on stderr.
    pub progress: bool,
    /// Percent of results to dispute even when they look right (0: never; 100: `--check`).
    pub mediation_chance: u8,
    /// Accept results that say the engine could not run the job (else they are disputed).
    pub accept_failures: bool,
    /// One more address allowed to download the results (`lilypad jc`: the requester).
    pub results_reader: Option<Address>,
    /// The on-chain request the job serves (`lilypad jc`): the offer names it, and each deal
    /// is bound to it on chain before we agree.
    pub on_chain_job: Option<OnChainJob>,
    /// The module cache (modules kept in git are pinned to a commit through it).
    pub modules: crate::module::GitModules,
    /// Where the module is, when given explicitly (`--module-repo`); else `module` is located.
    pub location: Option<crate::module::Located>,
    /// Fetch the results from this IPFS daemon first (IPFS_CONNECT).
    pub ipfs: Option<results::ipfs::Ipfs>,
}

/// Results the job creator downloaded and verified against the on-chain commitment.
pub type Downloaded = results::Verified;

/// How a job ended.
#[derive(Debug, Clone)]
pub struct JobOutcome {
    pub job_offer_id: String,
    pub deal_id: String,
    /// The deal's on-chain key.
    pub deal_key: [u8; 32],
    /// The deal's final on-chain state.
    pub state: DealState,
    /// The results, if they were downloaded and matched the commitment.
    pub results: Option<Downloaded>,
    /// Why we disputed the results, if we did.
    pub disputed: Option<String>,
    /// What the end state meant for the job creator's money, in words and amounts.
    pub settlement: String,
}

impl JobOutcome {
    /// Whether the job creator got results it paid for.
    pub fn paid_for_results(&self) -> bool {
        matches!(
            self.state,
            DealState::ResultsAccepted | DealState::MediationAccepted
        )
    }

    /// The job's stdout ("" without results).
    pub fn stdout(&self) -> &str {
        self.results.as_ref().map_or("", |r| r.stdout.as_str())
    }
}

/// Runs one job to the end. Errors say what failed and, when nothing matched, why.
pub async fn run_job(
    chain: Arc<Chain>,
    client: SolverClient,
    request: JobRequest,
) -> anyhow::Result<JobOutcome> {
    let offer = job_offer(chain.address(), &request).await?;
    follow_job(chain, client, request, offer).await
}

/// The signed-to-be job offer for `request`. The module is resolved here, so a bad module
/// or input fails before anything is paid; a module kept in git is pinned to the commit its
/// ref names now, and the offer carries that pin.
pub async fn job_offer(job_creator: Address, request: &JobRequest) -> anyhow::Result<JobOffer> {
    let (module, inputs, modules, location) = (
        request.module.clone(),
        request.inputs.clone(),
        request.modules.clone(),
        request.location.clone(),
    );
    let (spec, module_source) = tokio::task::spawn_blocking(move || {
        let located = match location {
            Some(located) => located,
            None => crate::module::locate(&module, modules.shortcut_prefix())?,
        };
        let source = crate::module::pin(&located, &module, &modules)?;
        let spec = crate::module::resolve(&module, source.as_ref(), &inputs, &modules)?;
        Ok::<_, crate::module::ModuleError>((spec, source))
    })
    .await??;
    Ok(JobOffer {
        id: String::new(),
        created_at: now_millis(),
        job_creator,
        module: request.module.clone(),
        inputs: request.inputs.clone(),
        spec: spec.machine,
        pricing: request.pricing,
        timeouts: request.timeouts,
        services: request.services.clone(),
        nonce: new_nonce(),
        results_reader: request.results_reader,
        on_chain_job: request.on_chain_job.clone(),
        module_source,
    }
    .seal())
}

/// Posts `offer` (again, if it was posted before: the solver keeps one copy) and follows it
/// to the end of its deal. Resuming a job after a restart is calling this with the same offer.
pub async fn follow_job(
    chain: Arc<Chain>,
    client: SolverClient,
    request: JobRequest,
    offer: JobOffer,
) -> anyhow::Result<JobOutcome> {
    let progress = Progress::new(request.progress);
    let outcome = deal::drive(&chain, &client, &request, offer, &progress).await;
    progress.finish();
    outcome
}

/// Nothing matched the job offer in time (nothing was paid: no deal was made).
#[derive(Debug, thiserror::Error)]
#[error("no resource provider took job offer {offer} within {seconds} s; {why}")]
pub struct NoMatch {
    pub offer: String,
    pub seconds: u64,
    /// The solver's explanation of why nothing matched.
    pub why: String,
}

async fn no_match(client: &SolverClient, offer: &JobOffer, limit: Duration) -> anyhow::Error {
    let why = match client.explain(&offer.id).await {
        Ok(explanation) => explanation.describe(offer),
        Err(error) => format!("(could not ask the solver why: {error})"),
    };
    NoMatch {
        offer: offer.id.clone(),
        seconds: limit.as_secs(),
        why,
    }
    .into()
}
