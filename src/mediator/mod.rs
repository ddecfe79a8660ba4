//! `lilypad mediator`: settles disputed results. It learns of deals assigned to it from the
//! chain's `MediationRequested` events (backfilled from its saved block), from the solver's
//! event stream and by polling the solver for checked deals; re-runs each job with its own
//! Docker executor; compares its deterministic results with what the resource provider
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
use ethers::providers::Middleware;
use ethers::types::{Filter, H256};
use futures::FutureExt;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::chain::deadlines::chain_now;
use crate::chain::events::LogPoller;
use crate::chain::terms::{deal_key, terms_of};
use crate::chain::Chain;
use crate::client::SolverClient;
use crate::data::ids::{cid_of, digest_of, raw_cid_from_digest, RAW_CODEC};
use crate::data::{Deal, DealState};
use crate::executor::deal_job::run_deal_job;
use crate::executor::docker::DockerExecutor;
use crate::inflight::InFlight;
use crate::results::{self, Limits};
use ledger::Ledger;
pub use ledger::Verdict;

const NEXT_BLOCK: &str = "next_block";

/// How the mediator runs.
#[derive(Debug, Clone)]
pub struct MediatorSettings {
    pub data_dir: PathBuf,
    pub poll: Duration,
    /// How many re-runs may go on at once.
    pub parallel: usize,
}

struct Mediator {
    chain: Arc<Chain>,
    client: SolverClient,
    executor: DockerExecutor,
    settings: MediatorSettings,
    ledger: Ledger,
    busy: InFlight,
    runs: Semaphore,
}

/// Runs the mediator until `shutdown`.
pub async fn run(
    chain: Arc<Chain>,
    client: SolverClient,
    executor: DockerExecutor,
    settings: MediatorSettings,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let path = settings.data_dir.join("mediator.db");
    let ledger = Ledger::open(&path)
        .await
        .with_context(|| format!("cannot open the mediator's database {}", path.display()))?;
    let start = match ledger.meta(NEXT_BLOCK).await? {
        Some(block) => block.parse().unwrap_or(0),
        None => chain
            .client
            .get_block_number()
            .await
            .map(|b| b.as_u64())
            .unwrap_or(0),
    };
    let filter = Filter::new()
        .address(chain.contracts.mediation.address())
        .event("MediationRequested(bytes32,address)")
        .topic2(H256::from(chain.address()));
    let mut requests = LogPoller::new(chain.client.provider().clone(), filter, start);
    let mediator = Arc::new(Mediator {
        runs: Semaphore::new(settings.parallel.max(1)),
        chain,
        client,
        executor,
        ledger,
        busy: InFlight::default(),
        settings,
    });
    tracing::info!(address = ?mediator.chain.address(), "mediator started");
    let mut events = mediator.client.events(shutdown.child_token());
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        if let Err(error) = mediator.read_requests(&mut requests).await {
            tracing::warn!(
                error = format!("{error:#}"),
                "cannot read mediation requests from the chain; will retry"
            );
        }
        if let Err(error) = mediator.clone().review(&mut tasks).await {
            tracing::warn!(
                error = format!("{error:#}"),
                "cannot list deals to mediate; will retry"
            );
        }
        while let Some(Some(done)) = tasks.join_next().now_or_never() {
            if let Err(error) = done {
                tracing::error!(%error, "a mediation task ended abnormally");
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = events.recv() => {}
            _ = tokio::time::sleep(mediator.settings.poll) => {}
        }
    }
    tracing::info!(running = tasks.len(), "mediator stopping");
    tasks.shutdown().await;
    mediator.ledger.close().await;
    Ok(())
}

impl Mediator {
    /// Records the deal keys the chain says were assigned to us.
    async fn read_requests(&self, requests: &mut LogPoller) -> anyhow::Result<()> {
        let from = requests.next_block();
        let logs = requests.poll().await?;
        for log in &logs {
            if let Some(key) = log.topics.get(1) {
                if let Err(error) = self.ledger.add_requested(&format!("{key:?}")).await {
                    requests.rewind(from);
                    return Err(error.into());
                }
            }
        }
        self.ledger
            .set_meta(NEXT_BLOCK, &requests.next_block().to_string())
            .await?;
        Ok(())
    }

    /// Starts a task for every deal that may await our verdict.
    async fn review(self: Arc<Self>, tasks: &mut tokio::task::JoinSet<()>) -> anyhow::Result<()> {
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
        for deal in deals {
            if self.ledger.is_finished(&deal.id).await? {
                continue;
            }
            let Some(claim) = self.busy.claim(&deal.id) else {
                continue;
            };
            let mediator = self.clone();
            tasks.spawn(async move {
                let _claim = claim;
                if let Err(error) = mediator.mediate(&deal).await {
                    tracing::warn!(deal_id = %deal.id, error = format!("{error:#}"), "mediation step failed; will retry");
                }
            });
        }
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
            }
            return Ok(());
        }
        let picked = self
            .chain
            .contracts
            .mediation
            .mediator_of(key)
            .call()
            .await
            .context("cannot read the picked mediator")?;
        if picked != self.chain.address() {
            tracing::info!(deal_id = %deal.id, ?picked, "another mediator was picked for this deal");
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
        let receipt = if verdict.accept {
            self.chain
                .send(
                    "accept the results as mediator",
                    mediation.mediation_accept_result(deal_id, terms),
                )
                .await?
        } else {
            self.chain
                .send(
                    "reject the results as mediator",
                    mediation.mediation_reject_result(deal_id, terms),
                )
                .await?
        };
        let action = if verdict.accept {
            "mediation_accept"
        } else {
            "mediation_reject"
        };
        self.client
            .note_tx(&deal.id, action, receipt.transaction_hash)
            .await;
        tracing::info!(deal_id = %deal.id, accept = verdict.accept, reason = %verdict.reason, "verdict sent");
        self.ledger.finish(&deal.id, &verdict.reason).await?;
        Ok(())
    }

    /// Re-runs the job and compares with the committed results.
    async fn judge(&self, deal: &Deal, key: [u8; 32]) -> anyhow::Result<Verdict> {
        let committed = self.chain.committed_results(key).await?;
        let committed_cid = raw_cid_from_digest(committed);
        let dir = self.settings.data_dir.join("jobs").join(&deal.id);
        let ours = dir.join("results");
        tracing::info!(deal_id = %deal.id, committed = %committed_cid, "re-running the job to check its results");
        let run = run_deal_job(&self.executor, deal, None, &ours).await?;
        if let Some(failure) = run.engine_failure {
            // Our machine's problem, not the job's: no verdict; try again next tick (if it
            // never works, the parties call the mediate-results timeout and get refunds).
            anyhow::bail!("cannot re-run the job here: {failure}");
        }
        let (_, our_cid) = results::pack(&ours)?;
        let compare = crate::module::resolve(&deal.job_offer.module, &deal.job_offer.inputs)
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
        // Only the named parts must match: fetch the RP's results and check they are the
        // committed ones before comparing.
        let tar = self.client.download_files(&deal.id).await?;
        let theirs_cid = cid_of(RAW_CODEC, &tar);
        if digest_of(&theirs_cid)? != committed {
            return Ok(Verdict {
                accept: false,
                our_cid,
                reason: format!("the results on the solver ({theirs_cid}) are not the committed ones ({committed_cid})"),
            });
        }
        let theirs = dir.join("theirs");
        if theirs.exists() {
            tokio::fs::remove_dir_all(&theirs).await?;
        }
        if let Err(error) = results::unpack(&tar, &theirs, Limits::default()) {
            return Ok(Verdict {
                accept: false,
                our_cid,
                reason: format!("the committed results are not a valid results archive: {error}"),
            });
        }
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
