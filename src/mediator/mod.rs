//! `lilypad mediator`: settles disputed results. It learns of deals assigned to it from the
//! chain's `MediationRequested` events (backfilled from its saved block), from the solver's
//! event stream and by polling the solver for checked deals; re-runs each job on its own
//! engine (Docker); compares its deterministic results with what the resource provider
//! committed on chain; and accepts or rejects through the mediation contract before the
//! mediate-results deadline.
//!
//! What is compared: by default the whole results (the results CID). A module whose output is
//! not byte-reproducible names the parts that must match in its template,
//! `"mediation": {"compare": ["stdout", "outputs/result.txt"]}`; the mediator then downloads
//! the RP's results from the solver, checks they are the ones committed on chain, and compares
//! only those files (see README, "Mediation").

mod ledger;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use ethers::types::{Filter, H256};
use tokio::sync::{Mutex, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::chain::deadlines::chain_now;
use crate::chain::follower::{Checkpoint, Follower, StartAt};
use crate::chain::terms::{deal_key, terms_of};
use crate::chain::Chain;
use crate::client::SolverClient;
use crate::config::{ConfigError, Settings};
use crate::data::ids::{digest_of, results_cid_from_digest};
use crate::data::{Deal, DealState};
use crate::executor::deal_job::run_deal_job;
use crate::executor::Executor;
use crate::results;
use crate::worker::{self, Ticks, WorkId, Worker};
use ledger::Ledger;
pub use ledger::Verdict;

/// How the mediator runs.
#[derive(Debug, Clone)]
pub struct MediatorSettings {
    pub data_dir: PathBuf,
    pub poll: Duration,
    /// How many re-runs may go on at once.
    pub parallel: usize,
    /// Where modules kept in git are checked out.
    pub modules: crate::module::GitModules,
    /// Fetch the disputed results from this IPFS daemon first (IPFS_CONNECT).
    pub ipfs: Option<crate::results::ipfs::Ipfs>,
    /// Job directories (re-runs) unmodified this long are removed (RETAIN_RESULTS).
    pub retain_results: Duration,
    /// Where /health and /metrics are served (METRICS_LISTEN), if anywhere.
    pub metrics_listen: Option<std::net::SocketAddr>,
}

impl MediatorSettings {
    /// Where a mediator with these settings keeps its data: `DATA_DIR/mediator`.
    pub fn dir_of(settings: &Settings) -> PathBuf {
        settings.data_dir.join("mediator")
    }

    /// The mediator's settings from the node's settings.
    pub fn from_settings(settings: &Settings) -> Result<MediatorSettings, ConfigError> {
        Ok(MediatorSettings {
            data_dir: Self::dir_of(settings),
            poll: settings.poll_interval(),
            parallel: settings.mediator_parallel,
            modules: crate::module::GitModules::from_settings(settings),
            ipfs: settings.ipfs()?,
            retain_results: Duration::from_secs(settings.retain_results),
            metrics_listen: settings.metrics_listen()?,
        })
    }
}

impl<E: Executor> crate::ops::Ops for Mediator<E> {
    const ROLE: &'static str = "mediator";

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
        let verdicts = self
            .ledger
            .db()
            .counts(
                "SELECT CASE WHEN accept = 1 THEN 'accept' ELSE 'reject' END || \
                 CASE WHEN finished = 1 THEN ', finished' ELSE ', open' END, COUNT(*) \
                 FROM verdicts GROUP BY 1 ORDER BY 1",
            )
            .await
            .map_err(|e| e.to_string())?;
        Ok(crate::metrics::gauge_family(
            "lilypad_mediator_verdicts",
            "The mediator's verdicts (accept or reject; open until the deal ends)",
            "verdict",
            &verdicts,
        ))
    }
}

struct Mediator<E> {
    chain: Arc<Chain>,
    client: SolverClient,
    executor: E,
    settings: MediatorSettings,
    ledger: Ledger,
    /// `MediationRequested` events naming us.
    requests: Mutex<Follower>,
    runs: Semaphore,
    job_dirs: crate::job_dirs::JobDirs,
}

/// Runs the mediator until `shutdown`.
pub async fn run<E: Executor>(
    chain: Arc<Chain>,
    client: SolverClient,
    executor: E,
    settings: MediatorSettings,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let ledger = Ledger::open(&settings.data_dir.join("mediator.db")).await?;
    let filter = Filter::new()
        .address(chain.contracts.mediation.address())
        .event("MediationRequested(bytes32,address)")
        .topic2(H256::from(chain.address()));
    let requests = Follower::open(
        &chain,
        filter,
        Checkpoint::new(ledger.db().clone()),
        StartAt::Head,
    )
    .await?;
    let mediator = Arc::new(Mediator {
        runs: Semaphore::new(settings.parallel.max(1)),
        job_dirs: crate::job_dirs::JobDirs::new(
            settings.data_dir.join("jobs"),
            settings.retain_results,
        ),
        chain,
        client,
        executor,
        ledger,
        requests: Mutex::new(requests),
        settings,
    });
    tracing::info!(address = ?mediator.chain.address(), "mediator started");
    if let Some(listen) = mediator.settings.metrics_listen {
        crate::ops::serve(listen, mediator.clone(), shutdown.child_token()).await?;
    }
    let ticks = Ticks {
        poll: mediator.settings.poll,
        wake: Some(mediator.client.events(shutdown.child_token())),
        heads: mediator.chain.new_heads(shutdown.child_token()),
    };
    worker::run(mediator.clone(), ticks, shutdown).await;
    mediator.ledger.close().await;
    Ok(())
}

/// The mediator looks at the mediation requests naming it (from the chain) and at checked
/// deals naming it (from the solver); one step judges one deal and sends the verdict.
impl<E: Executor> Worker for Mediator<E> {
    type Item = Deal;
    const ROLE: &'static str = "mediator";

    async fn prepare(&self) -> anyhow::Result<()> {
        if self.job_dirs.due() {
            // A re-run recreates its directory, so none is needed between ticks.
            self.job_dirs.forget_old(|_| false).await;
        }
        self.read_requests()
            .await
            .context("cannot read mediation requests from the chain")
    }

    async fn find_work(&self) -> anyhow::Result<Vec<Deal>> {
        let me = self.chain.address();
        let mut deals = self
            .client
            .deals(&format!(
                "mediator={me:?}&state={}",
                DealState::ResultsChecked.number()
            ))
            .await?
            .into_iter()
            .map(|record| record.deal)
            .collect::<Vec<_>>();
        for key in self.ledger.unresolved().await? {
            if let Some(record) = self.client.deals(&format!("deal_key={key}")).await?.pop() {
                self.ledger.resolve(&key, &record.deal.id).await?;
                deals.push(record.deal);
            }
        }
        let mut work = Vec::new();
        for deal in deals {
            if !self.ledger.is_finished(&deal.id).await? {
                work.push(deal);
            }
        }
        Ok(work)
    }

    fn id(deal: &Deal) -> WorkId {
        WorkId::Deal(deal.id.clone())
    }

    async fn step(&self, deal: Deal) -> anyhow::Result<()> {
        self.mediate(&deal).await
    }
}

impl<E: Executor> Mediator<E> {
    /// Records the deal keys the chain says were assigned to us.
    async fn read_requests(&self) -> anyhow::Result<()> {
        let ledger = &self.ledger;
        let mut requests = self.requests.lock().await;
        requests
            .poll(|log| async move {
                if let Some(key) = log.topics.get(1) {
                    ledger.add_requested(&format!("{key:?}")).await?;
                }
                Ok(())
            })
            .await?;
        Ok(())
    }

    /// Reaches (or recalls) a verdict on one deal and sends it on chain.
    async fn mediate(&self, deal: &Deal) -> anyhow::Result<()> {
        let deal_id = deal.chain_id()?;
        let terms = terms_of(deal);
        let key = deal_key(deal_id, &terms);
        let agreement = self.chain.agreement(key).await?;
        let state = DealState::try_from(agreement.state)?;
        if state != DealState::ResultsChecked {
            if state.is_terminal() {
                self.ledger
                    .finish(&deal.id, &format!("ended in {}", state.name()))
                    .await?;
                crate::metrics::deal_outcome(state.name());
            }
            return Ok(());
        }
        if deal.members.mediator != self.chain.address() {
            tracing::info!(deal_id = %deal.id, mediator = ?deal.members.mediator, "this deal names another mediator");
            return self
                .ledger
                .finish(&deal.id, "another mediator was picked")
                .await
                .map_err(Into::into);
        }
        let deadline = agreement
            .state_since
            .saturating_add(deal.timeouts.mediate_results);
        let verdict = match self.ledger.verdict(&deal.id).await? {
            Some((verdict, _)) => verdict,
            None => {
                let _run = self.runs.acquire().await?;
                let verdict = self.judge(deal, key).await?;
                self.ledger.set_verdict(&deal.id, &verdict).await?;
                verdict
            }
        };
        if chain_now(&self.chain).await? > deadline {
            tracing::warn!(deal_id = %deal.id, "the mediate-results deadline passed before our verdict; the parties will call the timeout");
            return self
                .ledger
                .finish(&deal.id, "deadline passed")
                .await
                .map_err(Into::into);
        }
        let mediation = &self.chain.contracts.mediation;
        let (action, what, call) = if verdict.accept {
            let call = mediation.mediation_accept_result(deal_id, terms);
            ("mediation_accept", "accept the results as mediator", call)
        } else {
            let call = mediation.mediation_reject_result(deal_id, terms);
            ("mediation_reject", "reject the results as mediator", call)
        };
        self.client
            .send_noted(&self.chain, &deal.id, action, what, call)
            .await?;
        tracing::info!(deal_id = %deal.id, accept = verdict.accept, reason = %verdict.reason, "verdict sent");
        self.ledger.finish(&deal.id, &verdict.reason).await?;
        Ok(())
    }

    /// Re-runs the job and compares with the committed results.
    async fn judge(&self, deal: &Deal, key: [u8; 32]) -> anyhow::Result<Verdict> {
        let committed = self.chain.committed_results(key).await?;
        let committed_cid = results_cid_from_digest(committed);
        let dir = self.settings.data_dir.join("jobs").join(&deal.id);
        let ours = dir.join("results");
        tracing::info!(deal_id = %deal.id, committed = %committed_cid, "re-running the job to check its results");
        let run = run_deal_job(&self.executor, deal, None, &ours, &self.settings.modules).await?;
        match run.engine_failure {
            // The image exists nowhere we can reach either: our results say so in the same
            // words as an RP's that could not get it, and are judged like any others.
            Some(failure) if failure.image_missing => {
                tracing::warn!(deal_id = %deal.id, reason = %failure.reason, "the job's image is not available here either; judging on that");
            }
            // Our machine's problem, not the job's: no verdict; try again next tick (if it
            // never works, the parties call the mediate-results timeout and get refunds).
            Some(failure) => anyhow::bail!("cannot re-run the job here: {}", failure.reason),
            None => {}
        }
        let (_, our_cid) = results::pack(&ours)?;
        let compare = crate::module::resolve_offer(&deal.job_offer, &self.settings.modules)
            .await
            .map(|spec| spec.compare)
            .unwrap_or_default();
        if compare.is_empty() {
            let accept = digest_of(&our_cid)? == committed;
            let reason = if accept {
                format!("our re-run produced the committed results {committed_cid}")
            } else {
                format!("our re-run produced {our_cid}, the resource provider committed {committed_cid}")
            };
            return Ok(Verdict {
                accept,
                our_cid,
                reason,
            });
        }
        // Only the named parts must match: fetch the RP's results (checked against the
        // commitment) and compare those parts.
        let theirs = dir.join("theirs");
        let theirs = match results::fetch_verified(
            results::Sources {
                solver: &self.client,
                ipfs: self.settings.ipfs.as_ref(),
            },
            &deal.id,
            committed,
            &theirs,
        )
        .await?
        {
            Ok(theirs) => theirs.dir,
            Err(reason) => {
                return Ok(Verdict {
                    accept: false,
                    our_cid,
                    reason,
                })
            }
        };
        let difference = results::first_difference(&ours, &theirs, &compare)?;
        let reason = match &difference {
            None => format!("the compared parts {compare:?} match our re-run"),
            Some(path) => format!("{path} differs from our re-run"),
        };
        Ok(Verdict {
            accept: difference.is_none(),
            our_cid,
            reason,
        })
    }
}
