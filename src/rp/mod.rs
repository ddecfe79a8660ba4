//! `lilypad rp`: the resource provider. Keeps one live resource offer per free slot
//! (posted and refreshed), checks every deal the solver proposes against its own offer
//! before agreeing on chain, runs the job on its engine (Docker; see `crate::executor`),
//! packs the results as a deterministic tar whose CID is the results id, uploads it, and
//! calls addResult. Each deal is driven by its on-chain state, so every step is idempotent
//! and a restart resumes where it stopped. The loop around this is the shared worker
//! runtime (`crate::worker`): the RP only says what it looks at and what one step does.

mod ledger;
pub mod preflight;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::chain::deadlines::{self, Party};
use crate::chain::terms::{self, deal_key, terms_of};
use crate::chain::Chain;
use crate::client::SolverClient;
use crate::config::{ConfigError, Settings};
use crate::data::ids::digest_of;
use crate::data::offers::{new_nonce, now_millis};
use crate::data::records::DealRecord;
use crate::data::{
    ContentAddressed, Deal, DealState, JobResult, MachineSpec, Pricing, ResourceOffer, Services,
    Timeouts,
};
use crate::executor::deal_job::{run_deal_job, EngineFailure};
use crate::executor::Executor;
use crate::worker::{self, Ticks, WorkId, Worker};
use ledger::{Ledger, LocalDeal, Stage};

/// The first wait before running a job again after the engine failed, and the longest.
const ENGINE_RETRY_FIRST: Duration = Duration::from_secs(1);
const ENGINE_RETRY_MAX: Duration = Duration::from_secs(30);

/// How running a deal's job went.
enum Ran {
    /// Packed: the results CID.
    Packed(String),
    /// The engine could not run it; its results (saying so) are written, not packed.
    EngineFailed(EngineFailure),
    /// Stopped, because its results could no longer be submitted (why).
    Ended(String),
}

/// Every job counts as one instruction (cost = price x instructions; README, "Money").
pub const INSTRUCTIONS_PER_JOB: u64 = 1;

/// What the RP sells and how it behaves.
#[derive(Debug, Clone)]
pub struct RpSettings {
    pub data_dir: PathBuf,
    /// Per slot.
    pub spec: MachineSpec,
    /// How many jobs may run at once (`--offer-count`).
    pub slots: u32,
    pub pricing: Pricing,
    pub timeouts: Timeouts,
    pub modules: Vec<String>,
    /// Where modules kept in git are checked out.
    pub module_cache: crate::module::GitModules,
    pub services: Services,
    /// How often offers are refreshed (the solver drops offers not refreshed within its TTL).
    pub refresh_every: Duration,
    /// How long a deal we agreed to may wait for the job creator's agreement before its
    /// slot is offered again (`--agree-window`).
    pub agree_window: Duration,
    pub poll: Duration,
    /// Add and pin results on this IPFS daemon as well as uploading them to the solver.
    pub ipfs: Option<crate::results::ipfs::Ipfs>,
    /// Job directories of deals that ended are removed once unmodified this long.
    pub retain_results: Duration,
    /// Alter every job's stdout before packing it (`--dishonest`, dev networks only), so a
    /// mediator's rejection can be shown for real.
    pub dishonest: bool,
    /// Where /health and /metrics are served (METRICS_LISTEN), if anywhere.
    pub metrics_listen: Option<std::net::SocketAddr>,
}

impl RpSettings {
    /// Where a resource provider with these settings keeps its data: `DATA_DIR/rp`.
    pub fn dir_of(settings: &Settings) -> PathBuf {
        settings.data_dir.join("rp")
    }

    /// The resource provider's settings: what it sells and on what terms, from the node's
    /// settings; it trusts `services` (configured, or a dev network's own).
    pub fn from_settings(
        settings: &Settings,
        services: Services,
    ) -> Result<RpSettings, ConfigError> {
        Ok(RpSettings {
            data_dir: Self::dir_of(settings),
            spec: settings.offer_spec()?,
            slots: settings.offer_count,
            pricing: settings.pricing()?,
            timeouts: settings.timeouts()?,
            modules: settings.modules(),
            module_cache: crate::module::GitModules::from_settings(settings),
            services,
            refresh_every: Duration::from_secs((settings.offer_ttl / 3).max(1)),
            agree_window: Duration::from_secs(settings.offer_agree_window),
            poll: settings.poll_interval(),
            ipfs: settings.ipfs()?,
            retain_results: Duration::from_secs(settings.retain_results),
            dishonest: false,
            metrics_listen: settings.metrics_listen()?,
        })
    }
}

impl<E: Executor> crate::ops::Ops for Rp<E> {
    const ROLE: &'static str = "rp";

    fn chain(&self) -> &Chain {
        &self.chain
    }

    fn solver(&self) -> &SolverClient {
        &self.client
    }

    fn engine(&self) -> Option<impl std::future::Future<Output = Result<(), String>> + Send> {
        Some(self.executor.reachable())
    }

    async fn counts(&self) -> Result<String, String> {
        let stages = self
            .ledger
            .stage_counts()
            .await
            .map_err(|e| e.to_string())?;
        let mut text = crate::metrics::gauge_family(
            "lilypad_rp_deals",
            "The resource provider's deals by stage",
            "stage",
            &stages,
        );
        let busy = (self.settings.slots as usize).saturating_sub(self.slots.available_permits());
        text.push_str(&crate::metrics::gauge_family(
            "lilypad_rp_slots",
            "Slots by use (running: a job holds it now)",
            "use",
            &[
                ("running".into(), busy as u64),
                ("total".into(), u64::from(self.settings.slots)),
            ],
        ));
        Ok(text)
    }
}

struct Rp<E> {
    chain: Arc<Chain>,
    client: SolverClient,
    executor: E,
    settings: RpSettings,
    ledger: Ledger,
    slots: Semaphore,
    last_refresh: Mutex<Option<Instant>>,
    job_dirs: crate::job_dirs::JobDirs,
}

/// Runs the RP until `shutdown`.
pub async fn run<E: Executor>(
    chain: Arc<Chain>,
    client: SolverClient,
    executor: E,
    mut settings: RpSettings,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    settings.spec = offer_on_this_host(&executor, &settings)?;
    let ledger = Ledger::open(&settings.data_dir.join("rp.db")).await?;
    let job_dirs =
        crate::job_dirs::JobDirs::new(settings.data_dir.join("jobs"), settings.retain_results);
    let rp = Arc::new(Rp {
        slots: Semaphore::new(settings.slots as usize),
        chain,
        client,
        executor,
        ledger,
        settings,
        last_refresh: Mutex::new(None),
        job_dirs,
    });
    tracing::info!(address = ?rp.chain.address(), slots = rp.settings.slots, spec = ?rp.settings.spec, "resource provider started");
    if let Some(listen) = rp.settings.metrics_listen {
        crate::ops::serve(listen, rp.clone(), shutdown.child_token()).await?;
    }
    let ticks = Ticks {
        poll: rp.settings.poll,
        wake: Some(rp.client.events(shutdown.child_token())),
        heads: rp.chain.new_heads(shutdown.child_token()),
    };
    worker::run(rp.clone(), ticks, shutdown).await;
    rp.ledger.close().await;
    Ok(())
}

/// What each slot offers, checked against the GPUs the engine has: the slots' GPUs must be
/// distinct cards, and the memory per GPU is read from them when not configured.
pub fn offer_on_this_host<E: Executor>(
    executor: &E,
    settings: &RpSettings,
) -> anyhow::Result<MachineSpec> {
    let found = executor.gpus();
    crate::executor::gpus::offer_on_host(&settings.spec, settings.slots, found.as_ref())
        .map_err(|error| anyhow::anyhow!("cannot offer GPUs (OFFER_GPU, OFFER_COUNT): {error}"))
}

/// The RP looks at its offers (one open per free slot) and at the deals the solver made
/// with it; one step drives one deal as far as its on-chain state allows.
impl<E: Executor> Worker for Rp<E> {
    type Item = LocalDeal;
    const ROLE: &'static str = "rp";

    async fn prepare(&self) -> anyhow::Result<()> {
        self.forget_old_jobs().await;
        self.keep_offers()
            .await
            .context("cannot post or refresh offers")
    }

    async fn find_work(&self) -> anyhow::Result<Vec<LocalDeal>> {
        let records = self
            .client
            .deals(&format!("resource_provider={:?}", self.chain.address()))
            .await?;
        let mut work = Vec::new();
        for record in records {
            let id = record.deal.id.clone();
            match self.take_up(record).await {
                Ok(Some(local)) => work.push(local),
                Ok(None) => {}
                Err(error) => {
                    tracing::error!(deal_id = %id, error = format!("{error:#}"), "cannot take up this deal; it is left alone until this is fixed")
                }
            }
        }
        Ok(work)
    }

    fn id(local: &LocalDeal) -> WorkId {
        WorkId::Deal(local.deal.id.clone())
    }

    async fn step(&self, local: LocalDeal) -> anyhow::Result<()> {
        self.drive(local).await
    }
}

impl<E: Executor> Rp<E> {
    fn new_offer(&self) -> ResourceOffer {
        ResourceOffer {
            id: String::new(),
            created_at: now_millis(),
            resource_provider: self.chain.address(),
            spec: self.settings.spec,
            pricing: self.settings.pricing,
            timeouts: self.settings.timeouts,
            modules: self.settings.modules.clone(),
            services: self.settings.services.clone(),
            nonce: new_nonce(),
        }
        .seal()
    }

    /// Once a minute: removes the job directories of deals that ended (RETAIN_RESULTS).
    async fn forget_old_jobs(&self) {
        if !self.job_dirs.due() {
            return;
        }
        match self.ledger.unfinished_deal_ids().await {
            Ok(needed) => self.job_dirs.forget_old(|id| needed.contains(id)).await,
            Err(error) => {
                tracing::warn!(%error, "cannot read which deals are unfinished; keeping every job directory")
            }
        }
    }

    /// One open offer per free slot; refreshes them so the solver knows we are alive.
    async fn keep_offers(&self) -> anyhow::Result<()> {
        let active = self.ledger.active_deal_count().await?;
        let mut open = self.ledger.open_offers().await?;
        let want = self.settings.slots.saturating_sub(active) as usize;
        while open.len() < want {
            let offer = self.new_offer();
            self.ledger.add_offer(&offer).await?;
            self.client.post_resource_offer(&offer).await?;
            tracing::info!(resource_offer_id = %offer.id, "resource offer posted");
            open.push(offer);
        }
        let due = self
            .last_refresh
            .lock()
            .map(|at| at.is_none_or(|at| at.elapsed() >= self.settings.refresh_every))
            .unwrap_or(true);
        if due {
            for offer in &open {
                match self.client.refresh_resource_offer(&offer.id).await {
                    Ok(_) => {}
                    Err(error) if error.status() == Some(404) => {
                        self.client.post_resource_offer(offer).await?;
                    }
                    Err(error) => return Err(error.into()),
                }
            }
            if let Ok(mut at) = self.last_refresh.lock() {
                *at = Some(Instant::now());
            }
        }
        Ok(())
    }

    /// Our record of a deal the solver lists, deciding on a new one; None when there is
    /// nothing (more) to do for it.
    async fn take_up(&self, record: DealRecord) -> anyhow::Result<Option<LocalDeal>> {
        let deal = record.deal;
        let local = match self.ledger.deal(&deal.id).await? {
            Some(local) => local,
            None => {
                if DealState::try_from(record.state)
                    .map(DealState::is_terminal)
                    .unwrap_or(true)
                {
                    return Ok(None);
                }
                self.accept_or_refuse(&deal).await?
            }
        };
        Ok((!matches!(local.stage, Stage::Refused | Stage::Finished)).then_some(local))
    }

    /// Checks a new deal against our own offer; records the decision.
    async fn accept_or_refuse(&self, deal: &Deal) -> anyhow::Result<LocalDeal> {
        let decision = match self.ledger.offer(&deal.resource_offer.id).await? {
            None => Err(format!(
                "deal {} names resource offer {} which we never made",
                deal.id, deal.resource_offer.id
            )),
            Some(ours) => deal
                .check_for_resource_provider(&ours, self.chain.address())
                .map_err(|e| e.to_string())
                .and_then(|()| match &deal.job_offer.module_source {
                    Some(source) if self.settings.module_cache.refuses(&source.repo) => Err(format!(
                        "deal {}: its module is in the local repository {}, which this node does not read for others (ALLOW_LOCAL_MODULES)",
                        deal.id, source.repo
                    )),
                    _ => Ok(()),
                }),
        };
        // A job that reads IPFS inputs this engine cannot fetch would fail after we agreed.
        let decision = match decision {
            Ok(()) if !self.executor.fetches_ipfs_inputs() => {
                match crate::module::resolve_offer(&deal.job_offer, &self.settings.module_cache)
                    .await
                {
                    Ok(spec) if !spec.inputs.is_empty() => Err(format!(
                        "deal {}: its job reads {} IPFS input(s) and this node cannot fetch them (set IPFS_CONNECT, or give Bacalhau's compute nodes an IPFS endpoint)",
                        deal.id,
                        spec.inputs.len()
                    )),
                    // Other problems with the module are the job's: its results will say so.
                    _ => Ok(()),
                }
            }
            other => other,
        };
        let stage = match &decision {
            Ok(()) => {
                tracing::info!(deal_id = %deal.id, "deal matches our offer; agreeing");
                Stage::Accepted
            }
            Err(reason) => {
                tracing::warn!(deal_id = %deal.id, %reason, "refusing a deal that does not match our offer");
                Stage::Refused
            }
        };
        self.ledger
            .add_deal(deal, stage, decision.err().as_deref())
            .await?;
        Ok(LocalDeal {
            deal: deal.clone(),
            stage,
            results_cid: None,
        })
    }

    /// Moves one deal forward as far as its on-chain state allows.
    async fn drive(&self, mut local: LocalDeal) -> anyhow::Result<()> {
        let deal = local.deal.clone();
        let deal_id = deal.chain_id()?;
        let terms = terms_of(&deal);
        let key = deal_key(deal_id, &terms);
        let controller = &self.chain.contracts.controller;
        let mut retry = Duration::ZERO;
        loop {
            let agreement = self.chain.agreement(key).await?;
            let state = DealState::try_from(agreement.state)?;
            match state {
                DealState::DealNegotiating
                    if !agreement.job_creator_agreed && !agreement.resource_provider_agreed =>
                {
                    // The side that asked pays in first: until the job creator has agreed we
                    // spend no gas and lock no collateral, so job offers that are never
                    // agreed to cost their poster, not us.
                    let waited = self.note_stall(&mut local).await?;
                    if waited > deal.timeouts.agree {
                        tracing::info!(deal_id = %deal.id, waited, "the job creator never agreed; giving the deal up (we paid nothing in)");
                        self.ledger
                            .set_stage(&deal.id, Stage::Finished, None)
                            .await?;
                    }
                    return Ok(());
                }
                DealState::DealNegotiating if !agreement.resource_provider_agreed => {
                    self.chain
                        .ensure_allowance(deal.timeouts.submit_results_collateral.into())
                        .await?;
                    let call = controller.agree(deal_id, terms.clone());
                    self.client
                        .send_noted(&self.chain, &deal.id, "agree", "agree to the deal", call)
                        .await?;
                    tracing::info!(deal_id = %deal.id, "agreed on chain");
                }
                DealState::DealAgreed => {
                    let deadline = agreement
                        .state_since
                        .saturating_add(deal.timeouts.submit_results);
                    if deadlines::chain_now(&self.chain).await? > deadline {
                        // Too late to submit (we were down): running the job would be wasted;
                        // the job creator's submit-results timeout ends the deal.
                        tracing::warn!(deal_id = %deal.id, "the submit-results deadline passed before we submitted; the job creator's timeout will end the deal");
                        self.ledger
                            .set_stage(&deal.id, Stage::Finished, None)
                            .await?;
                        return Ok(());
                    }
                    let slot = self.slots.acquire().await?;
                    if matches!(local.stage, Stage::Accepted | Stage::Stalled) {
                        let cid = match self.run_job(&deal, key, deadline).await? {
                            Ran::Packed(cid) => cid,
                            Ran::Ended(why) => {
                                tracing::warn!(deal_id = %deal.id, %why, "the job was stopped: its results can no longer be submitted");
                                return Ok(());
                            }
                            Ran::EngineFailed(failure) => {
                                // Try again while the deadline leaves time to submit; then
                                // submit results that say the engine failed (the job
                                // creator disputes them, and a mediator decides).
                                retry = (retry * 2).clamp(ENGINE_RETRY_FIRST, ENGINE_RETRY_MAX);
                                let now = deadlines::chain_now(&self.chain).await?;
                                let give_up_at = deadline
                                    .saturating_sub(give_up_margin(deal.timeouts.submit_results));
                                if now.saturating_add(retry.as_secs()) < give_up_at {
                                    drop(slot);
                                    tracing::warn!(deal_id = %deal.id, reason = %failure.reason, retry_in_secs = retry.as_secs(), "the engine could not run the job; retrying before the deadline");
                                    tokio::time::sleep(retry).await;
                                    continue;
                                }
                                tracing::warn!(deal_id = %deal.id, reason = %failure.reason, "the engine could not run the job and the deadline is near; submitting results that say so");
                                self.pack(&deal).await?
                            }
                        };
                        self.ledger
                            .set_stage(&deal.id, Stage::Packed, Some(&cid))
                            .await?;
                        local.stage = Stage::Packed;
                        local.results_cid = Some(cid);
                    }
                    let cid = local
                        .results_cid
                        .clone()
                        .context("packed results have no CID")?;
                    self.submit(&deal, &cid).await?;
                    self.ledger
                        .set_stage(&deal.id, Stage::Submitted, None)
                        .await?;
                    local.stage = Stage::Submitted;
                }
                state if state.is_terminal() => {
                    self.ledger
                        .set_stage(&deal.id, Stage::Finished, None)
                        .await?;
                    tracing::info!(deal_id = %deal.id, state = state.name(), "deal finished");
                    crate::metrics::deal_outcome(state.name());
                    return Ok(());
                }
                _ => {
                    // Waiting on the other side: the JC's agreement, its judgement or the
                    // mediator. Past the deadline we call the timeout we are entitled to.
                    if state != DealState::DealNegotiating && local.stage != Stage::Submitted {
                        self.ledger
                            .set_stage(&deal.id, Stage::Submitted, None)
                            .await?;
                        local.stage = Stage::Submitted;
                    }
                    if state == DealState::DealNegotiating {
                        // We agreed before the job creator (a deal taken up before we
                        // waited for it to agree first).
                        self.note_stall(&mut local).await?;
                    }
                    if !self.call_due_timeout(&deal, &agreement).await? {
                        return Ok(());
                    }
                }
            }
        }
    }

    /// Seconds since we took up a deal the job creator has not agreed to; past the agree
    /// window its slot is offered again (the deal becomes Stalled).
    async fn note_stall(&self, local: &mut LocalDeal) -> anyhow::Result<u64> {
        let now = now_millis();
        let waited = now.saturating_sub(self.ledger.taken_at(&local.deal.id, now).await?) / 1000;
        let window = self.settings.agree_window.as_secs();
        if local.stage == Stage::Accepted && waited > window {
            tracing::info!(deal_id = %local.deal.id, window, "the job creator has not agreed; offering the slot again");
            self.ledger
                .set_stage(&local.deal.id, Stage::Stalled, None)
                .await?;
            local.stage = Stage::Stalled;
        }
        Ok(waited)
    }

    fn job_dir(&self, deal: &Deal) -> PathBuf {
        self.settings.data_dir.join("jobs").join(&deal.id)
    }

    /// Runs the deal's job and packs its results. The job is stopped if the deal leaves
    /// DealAgreed (a timeout ended it) or its submit deadline passes while it runs.
    async fn run_job(&self, deal: &Deal, key: [u8; 32], deadline: u64) -> anyhow::Result<Ran> {
        let dir = self.job_dir(deal);
        let results = dir.join("results");
        let run = run_deal_job(
            &self.executor,
            deal,
            Some(&deal.resource_offer.spec),
            &results,
            &self.settings.module_cache,
        );
        let ran = tokio::select! {
            ran = run => ran?,
            why = self.until_unsubmittable(key, deadline) => return Ok(Ran::Ended(why)),
        };
        if let Some(failure) = ran.engine_failure {
            return Ok(Ran::EngineFailed(failure));
        }
        if self.settings.dishonest {
            tamper(&results)?;
            tracing::warn!(deal_id = %deal.id, "dishonest mode: the results were altered before packing");
        }
        Ok(Ran::Packed(self.pack(deal).await?))
    }

    /// Packs the deal's results directory into `results.tar`; its CID.
    async fn pack(&self, deal: &Deal) -> anyhow::Result<String> {
        let dir = self.job_dir(deal);
        let (tar, cid) = crate::results::pack(&dir.join("results"))?;
        tokio::fs::write(dir.join("results.tar"), &tar).await?;
        tracing::info!(deal_id = %deal.id, results_cid = %cid, "results packed");
        Ok(cid)
    }

    /// Returns (why) once results for the deal could no longer be submitted: it left
    /// DealAgreed, or the chain passed `deadline`. Read errors are waited out.
    async fn until_unsubmittable(&self, key: [u8; 32], deadline: u64) -> String {
        let every = self.settings.poll.max(Duration::from_secs(1));
        loop {
            tokio::time::sleep(every).await;
            if let Ok(agreement) = self.chain.agreement(key).await {
                match DealState::try_from(agreement.state) {
                    Ok(DealState::DealAgreed) => {}
                    Ok(state) => return format!("the deal is now {}", state.name()),
                    Err(_) => continue,
                }
            }
            if deadlines::chain_now(&self.chain)
                .await
                .is_ok_and(|now| now > deadline)
            {
                return "the submit-results deadline passed".into();
            }
        }
    }

    /// Uploads the results, posts the result and commits it on chain.
    async fn submit(&self, deal: &Deal, cid: &str) -> anyhow::Result<()> {
        let tar = tokio::fs::read(self.job_dir(deal).join("results.tar"))
            .await
            .context("the packed results are missing")?;
        if let Some(ipfs) = &self.settings.ipfs {
            // The solver's copy is enough for the deal; IPFS is where anyone can get them.
            match ipfs.add(tar.clone(), cid).await {
                Ok(()) => {
                    tracing::info!(deal_id = %deal.id, results_cid = %cid, ipfs = ipfs.api(), "results added to IPFS and pinned")
                }
                Err(error) => {
                    tracing::warn!(deal_id = %deal.id, %error, "results not on IPFS; the solver relay has them")
                }
            }
        }
        let uploaded = self.client.upload_files(&deal.id, tar).await?;
        anyhow::ensure!(
            uploaded == cid,
            "the solver computed results CID {uploaded}, we computed {cid}"
        );
        let exit_code = tokio::fs::read_to_string(self.job_dir(deal).join("results/exitCode"))
            .await
            .ok()
            .and_then(|t| t.trim().parse().ok());
        let result = JobResult {
            deal_id: deal.id.clone(),
            results_cid: cid.to_string(),
            error: crate::results::engine_failure_in(&self.job_dir(deal).join("results")),
            exit_code,
            instruction_count: INSTRUCTIONS_PER_JOB,
        };
        self.client.post_result(&result).await?;
        self.chain
            .ensure_allowance(terms::results_collateral(deal, INSTRUCTIONS_PER_JOB))
            .await?;
        let call = self.chain.contracts.controller.add_result(
            deal.chain_id()?,
            terms_of(deal),
            digest_of(cid)?,
            INSTRUCTIONS_PER_JOB,
        );
        self.client
            .send_noted(
                &self.chain,
                &deal.id,
                "add_result",
                "submit the results",
                call,
            )
            .await?;
        tracing::info!(deal_id = %deal.id, results_cid = %cid, "results submitted on chain");
        Ok(())
    }

    /// Calls the timeout we are entitled to once its deadline has passed; true if called.
    async fn call_due_timeout(
        &self,
        deal: &Deal,
        agreement: &crate::chain::bindings::lilypad_storage::Agreement,
    ) -> anyhow::Result<bool> {
        let called =
            deadlines::call_if_due(&self.chain, deal, agreement, Party::ResourceProvider).await?;
        let Some((timeout, receipt)) = called else {
            return Ok(false);
        };
        let action = format!("timeout_{}", timeout.name());
        self.client
            .note_tx(&deal.id, &action, receipt.transaction_hash)
            .await;
        Ok(true)
    }
}

/// How long before the submit deadline the RP stops retrying a job its engine could not run
/// and submits results saying so: a quarter of the submit window, at most a minute (time
/// to upload the results and get `addResult` mined).
fn give_up_margin(submit_window: u64) -> u64 {
    (submit_window / 4).min(60)
}

/// What `--dishonest` does to a job's results: a line added to its stdout, so the packed
/// results differ from what an honest re-run produces.
fn tamper(results: &Path) -> std::io::Result<()> {
    use std::io::Write;
    let mut stdout = std::fs::OpenOptions::new()
        .append(true)
        .open(results.join("stdout"))?;
    stdout.write_all(b"(altered by a dishonest resource provider)\n")
}
