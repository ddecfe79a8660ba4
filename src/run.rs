//! `lilypad run MODULE -i K=V`: the job creator's side of one job. Resolves the module,
//! posts a signed job offer, checks the deal the solver makes against it, agrees (escrowing
//! payment and judge-results collateral), waits for the results (solver events plus polling,
//! with a progress display), downloads and verifies them against the results id committed
//! on chain, accepts them, and returns the job's stdout and where the results are.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressStyle};
use tokio_util::sync::CancellationToken;

use crate::chain::terms::{deal_key, job_creator_deposit, terms_of};
use crate::chain::Chain;
use crate::client::{ClientError, SolverClient};
use crate::data::ids::{digest_of, raw_cid_from_digest};
use crate::data::offers::{new_nonce, now_millis};
use crate::data::{ContentAddressed, Deal, DealState, JobOffer, Pricing, Services, Timeouts};
use crate::results::{self, Limits};

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
    /// Give up after this long.
    pub timeout: Duration,
    pub poll: Duration,
    /// Show a spinner on stderr.
    pub progress: bool,
}

/// A finished job.
#[derive(Debug, Clone)]
pub struct JobOutcome {
    pub job_offer_id: String,
    pub deal_id: String,
    pub results_cid: String,
    pub results_dir: PathBuf,
    pub stdout: String,
    pub exit_code: Option<i64>,
    pub state: DealState,
}

struct Progress {
    bar: Option<ProgressBar>,
}

impl Progress {
    fn new(show: bool) -> Progress {
        let bar = show.then(|| {
            let bar = ProgressBar::new_spinner();
            bar.set_style(
                ProgressStyle::with_template("{spinner} [{elapsed}] {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.enable_steady_tick(Duration::from_millis(100));
            bar
        });
        Progress { bar }
    }

    fn step(&self, message: &str) {
        tracing::info!("{message}");
        if let Some(bar) = &self.bar {
            bar.set_message(message.to_string());
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// Runs one job to the end. Errors say what failed and, when nothing matched, why.
pub async fn run_job(
    chain: Arc<Chain>,
    client: SolverClient,
    request: JobRequest,
) -> anyhow::Result<JobOutcome> {
    let progress = Progress::new(request.progress);
    let outcome = drive(&chain, &client, &request, &progress).await;
    progress.finish();
    outcome
}

async fn drive(
    chain: &Chain,
    client: &SolverClient,
    request: &JobRequest,
    progress: &Progress,
) -> anyhow::Result<JobOutcome> {
    let started = Instant::now();
    let spec = crate::module::resolve(&request.module, &request.inputs)?;
    let offer = JobOffer {
        id: String::new(),
        created_at: now_millis(),
        job_creator: chain.address(),
        module: request.module.clone(),
        inputs: request.inputs.clone(),
        spec: spec.machine,
        pricing: request.pricing,
        timeouts: request.timeouts,
        services: request.services.clone(),
        nonce: new_nonce(),
    }
    .seal();
    let deposit = request.pricing.payment_collateral + request.timeouts.judge_results_collateral;
    let balance = chain.token_balance(chain.address()).await?;
    if balance < deposit.into() {
        bail!("{:?} holds {balance} token wei but the job needs {deposit} (payment + judge-results collateral); fund it with `lilypad chain fund`", chain.address());
    }
    chain.ensure_allowance(deposit.into()).await?;
    let stop = CancellationToken::new();
    let _stop_events = stop.clone().drop_guard();
    let mut events = client.events(stop.clone());
    client
        .post_job_offer(&offer)
        .await
        .context("the solver refused the job offer")?;
    progress.step(&format!(
        "job offer {} posted; waiting for a resource provider",
        offer.id
    ));

    let mut deal: Option<Deal> = None;
    loop {
        if started.elapsed() > request.timeout {
            return Err(timed_out(client, &offer, deal.as_ref(), request.timeout).await);
        }
        match look(chain, client, request, &mut deal, &offer, progress).await {
            Ok(Some(outcome)) => return Ok(outcome),
            Ok(None) => {}
            Err(error) if is_transient(&error) => {
                tracing::warn!("{error:#}; trying again");
                progress.step(&format!("{error}; trying again"));
            }
            Err(error) => return Err(error),
        }
        tokio::select! {
            _ = events.recv() => {}
            _ = tokio::time::sleep(request.poll) => {}
        }
    }
}

/// Whether an error is the solver being down or restarting, which waiting may cure.
fn is_transient(error: &anyhow::Error) -> bool {
    error
        .chain()
        .filter_map(|cause| cause.downcast_ref::<ClientError>())
        .any(ClientError::is_transient)
}

/// One look for the deal, then at its state; Some when the job is done.
async fn look(
    chain: &Chain,
    client: &SolverClient,
    request: &JobRequest,
    deal: &mut Option<Deal>,
    offer: &JobOffer,
    progress: &Progress,
) -> anyhow::Result<Option<JobOutcome>> {
    if deal.is_none() {
        let found = client.deals(&format!("job_offer={}", offer.id)).await?;
        let Some(record) = found.into_iter().next() else {
            return Ok(None);
        };
        record
            .deal
            .check_for_job_creator(offer, chain.address())
            .context("refusing the solver's deal")?;
        progress.step(&format!(
            "matched: deal {} with {:?}",
            record.deal.id, record.deal.members.resource_provider
        ));
        *deal = Some(record.deal);
    }
    match deal {
        Some(deal) => step(chain, client, request, deal, offer, progress).await,
        None => Ok(None),
    }
}

/// One look at the deal's on-chain state; Some when the job is done.
async fn step(
    chain: &Chain,
    client: &SolverClient,
    request: &JobRequest,
    deal: &Deal,
    offer: &JobOffer,
    progress: &Progress,
) -> anyhow::Result<Option<JobOutcome>> {
    let deal_id = deal.chain_id()?;
    let terms = terms_of(deal);
    let key = deal_key(deal_id, &terms);
    let agreement = chain.agreement(key).await?;
    let state = DealState::try_from(agreement.state)?;
    let controller = &chain.contracts.controller;
    match state {
        DealState::DealNegotiating if !agreement.job_creator_agreed => {
            chain.ensure_allowance(job_creator_deposit(deal)).await?;
            let receipt = chain
                .send("agree to the deal", controller.agree(deal_id, terms))
                .await?;
            let _ = client
                .record_tx(
                    &deal.id,
                    "agree",
                    &format!("{:?}", receipt.transaction_hash),
                )
                .await;
            progress.step("agreed on chain; waiting for the resource provider to agree");
        }
        DealState::DealNegotiating => {}
        DealState::DealAgreed => {
            progress.step("both agreed; the job is running on the resource provider")
        }
        DealState::ResultsSubmitted => {
            progress.step("results submitted; downloading");
            let committed = chain
                .contracts
                .storage
                .results_id_of(key)
                .call()
                .await
                .context("cannot read the committed results id")?;
            let results_cid = raw_cid_from_digest(committed);
            let tar = client.download_files(&deal.id).await?;
            let downloaded = crate::data::ids::cid_of(crate::data::ids::RAW_CODEC, &tar);
            if digest_of(&downloaded)? != committed {
                bail!("the downloaded results ({downloaded}) are not the ones committed on chain ({results_cid}); not accepting. Dispute with `lilypad run --check` once mediation lands");
            }
            let dir = request.results_dir.join(&deal.id);
            if dir.exists() {
                std::fs::remove_dir_all(&dir)
                    .with_context(|| format!("cannot clear {}", dir.display()))?;
            }
            results::unpack(&tar, &dir, Limits::default())
                .context("refusing the downloaded results")?;
            progress.step("results verified; accepting on chain");
            let receipt = chain
                .send(
                    "accept the results",
                    controller.accept_result(deal_id, terms),
                )
                .await?;
            let _ = client
                .record_tx(
                    &deal.id,
                    "accept_result",
                    &format!("{:?}", receipt.transaction_hash),
                )
                .await;
            let stdout = std::fs::read_to_string(dir.join("stdout")).unwrap_or_default();
            let exit_code = std::fs::read_to_string(dir.join("exitCode"))
                .ok()
                .and_then(|t| t.trim().parse().ok());
            return Ok(Some(JobOutcome {
                job_offer_id: offer.id.clone(),
                deal_id: deal.id.clone(),
                results_cid,
                results_dir: dir,
                stdout,
                exit_code,
                state: DealState::ResultsAccepted,
            }));
        }
        other => bail!(
            "deal {} ended in state {} before results were accepted",
            deal.id,
            other.name()
        ),
    }
    Ok(None)
}

async fn timed_out(
    client: &SolverClient,
    offer: &JobOffer,
    deal: Option<&Deal>,
    limit: Duration,
) -> anyhow::Error {
    match deal {
        Some(deal) => anyhow::anyhow!(
            "no results within {} s (deal {}); raise --timeout or check the resource provider",
            limit.as_secs(),
            deal.id
        ),
        None => {
            let why = match client.explain(&offer.id).await {
                Ok(explanation) => format!("the solver explains: {explanation}"),
                Err(error) => format!("(could not ask the solver why: {error})"),
            };
            anyhow::anyhow!(
                "no resource provider took job offer {} within {} s; {why}",
                offer.id,
                limit.as_secs()
            )
        }
    }
}
