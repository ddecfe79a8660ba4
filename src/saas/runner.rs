//! Runs users' jobs through the network as one job creator (the service's key), with the
//! same code as `lilypad run`: a job is charged when it is submitted, its job offer is kept
//! before it is posted, and it is followed to the end of its deal. A job that ends without
//! results paid for (nothing matched, a bad module, a deal the network refunded) is
//! refunded. After a restart, [`Runner::resume`] follows every unfinished job again with the
//! job offer it kept, so nothing is offered or paid twice.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use serde::Serialize;

use super::store::{ChargeError, Job, JobState, Store};
use crate::chain::Chain;
use crate::client::SolverClient;
use crate::data::JobOffer;
use crate::run::{follow_job, job_offer, JobRequest};

/// A module users may run, and what it costs them.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogEntry {
    /// What `lilypad run` takes (`cowsay:v0.0.1`, a repository, a directory).
    pub module: String,
    pub title: String,
    /// Credits per job.
    pub cost: i64,
    /// The inputs its form asks for.
    pub inputs: Vec<String>,
}

/// Why a job was not taken.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error("no module {0:?} in the catalog")]
    UnknownModule(String),
    #[error("unknown input {0:?} for this module")]
    UnknownInput(String),
    #[error("{0}")]
    Credits(String),
    #[error(transparent)]
    Db(#[from] crate::db::DbError),
}

/// The job runner.
pub struct Runner {
    pub store: Store,
    chain: Arc<Chain>,
    client: SolverClient,
    /// Every job's request but its module and inputs.
    template: JobRequest,
    catalog: Vec<CatalogEntry>,
    results: PathBuf,
    /// Cancelled: running jobs stop being followed (they resume after a restart).
    shutdown: tokio_util::sync::CancellationToken,
}

impl Runner {
    pub fn new(
        store: Store,
        chain: Arc<Chain>,
        client: SolverClient,
        template: JobRequest,
        catalog: Vec<CatalogEntry>,
        shutdown: tokio_util::sync::CancellationToken,
    ) -> Arc<Runner> {
        let results = template.results_dir.clone();
        Arc::new(Runner {
            store,
            chain,
            client,
            template,
            catalog,
            results,
            shutdown,
        })
    }

    pub fn catalog(&self) -> &[CatalogEntry] {
        &self.catalog
    }

    /// Takes a job of `user_id`: checks it against the catalog, charges it, and starts it.
    pub async fn submit(
        self: &Arc<Self>,
        user_id: &str,
        module: &str,
        inputs: BTreeMap<String, String>,
    ) -> Result<Job, SubmitError> {
        let entry = self
            .catalog
            .iter()
            .find(|entry| entry.module == module)
            .ok_or_else(|| SubmitError::UnknownModule(module.to_string()))?;
        if let Some(unknown) = inputs.keys().find(|key| !entry.inputs.contains(key)) {
            return Err(SubmitError::UnknownInput(unknown.clone()));
        }
        let job = self
            .store
            .add_job(user_id, module, &inputs, entry.cost)
            .await?;
        match self.store.charge(user_id, &job.id, entry.cost).await {
            Ok(_) => {}
            Err(ChargeError::NotEnough { cost, credits }) => {
                let why = format!(
                    "not enough credits: the job costs {cost} and the account holds {credits}"
                );
                self.store
                    .set_job(
                        &job.id,
                        JobState::Refused,
                        &serde_json::json!({ "error": why }),
                    )
                    .await?;
                return Err(SubmitError::Credits(why));
            }
            Err(ChargeError::Db(e)) => return Err(e.into()),
        }
        self.start(job.clone());
        Ok(job)
    }

    /// Follows every unfinished job again (after a restart); returns how many.
    pub async fn resume(self: &Arc<Self>) -> Result<usize, crate::db::DbError> {
        let jobs = self.store.unfinished_jobs().await?;
        let count = jobs.len();
        for job in jobs {
            tracing::info!(job = %job.id, state = job.state.as_str(), "resuming a job");
            self.start(job);
        }
        Ok(count)
    }

    fn start(self: &Arc<Self>, job: Job) {
        let runner = self.clone();
        tokio::spawn(async move {
            let id = job.id.clone();
            tokio::select! {
                result = runner.drive(job) => {
                    if let Err(e) = result {
                        tracing::error!(job = %id, error = %e, "a job's record could not be written");
                    }
                }
                _ = runner.shutdown.cancelled() => {}
            }
        });
    }

    fn request(&self, job: &Job) -> JobRequest {
        let mut request = self.template.clone();
        request.module = job.module.clone();
        request.inputs = job.inputs.clone();
        request.results_dir = self.results.join(&job.id);
        request.progress = false;
        request
    }

    /// Takes a job from where its record says to its end.
    async fn drive(&self, job: Job) -> Result<(), crate::db::DbError> {
        let request = self.request(&job);
        let offer = match job.state {
            JobState::Offered => match serde_json::from_value::<JobOffer>(job.detail.clone()) {
                Ok(offer) => offer,
                Err(e) => {
                    return self
                        .fail(&job, format!("its kept job offer is damaged: {e}"))
                        .await
                }
            },
            _ => match job_offer(self.chain.address(), &request).await {
                Ok(offer) => {
                    let kept = serde_json::to_value(&offer).unwrap_or_default();
                    self.store
                        .set_job(&job.id, JobState::Offered, &kept)
                        .await?;
                    offer
                }
                Err(e) => return self.fail(&job, format!("{e:#}")).await,
            },
        };
        match follow_job(self.chain.clone(), self.client.clone(), request, offer).await {
            Ok(outcome) if outcome.paid_for_results() => {
                let results = outcome.results.as_ref();
                let stderr = results
                    .and_then(|r| std::fs::read_to_string(r.dir.join("stderr")).ok())
                    .unwrap_or_default();
                let files = results.map(|r| listed_files(&r.dir)).unwrap_or_default();
                let detail = serde_json::json!({
                    "files": files,
                    "deal_id": outcome.deal_id,
                    "deal_state": outcome.state.to_string(),
                    "results_cid": results.map(|r| r.cid.clone()),
                    "stdout": outcome.stdout(),
                    "stderr": stderr,
                    "exit_code": results.and_then(|r| r.exit_code),
                });
                self.store.set_job(&job.id, JobState::Done, &detail).await
            }
            Ok(outcome) => {
                self.fail(
                    &job,
                    format!(
                        "deal {} ended in {} without results paid for: {}",
                        outcome.deal_id, outcome.state, outcome.settlement
                    ),
                )
                .await
            }
            Err(e) => self.fail(&job, format!("{e:#}")).await,
        }
    }

    /// Where a finished job's file `name` (one its detail lists) is.
    pub fn file_path(&self, job: &Job, name: &str) -> Option<PathBuf> {
        let listed = job.detail["files"]
            .as_array()?
            .iter()
            .any(|file| file.as_str() == Some(name));
        let deal = job.detail["deal_id"].as_str()?;
        listed.then(|| self.results.join(&job.id).join(deal).join(name))
    }

    /// Ends a job without results and gives its credits back.
    async fn fail(&self, job: &Job, why: String) -> Result<(), crate::db::DbError> {
        tracing::warn!(job = %job.id, %why, "job failed; refunding it");
        let credits = self.store.refund(&job.user_id, &job.id).await?;
        self.store
            .set_job(
                &job.id,
                JobState::Failed,
                &serde_json::json!({ "error": why, "refunded": job.cost, "credits": credits }),
            )
            .await
    }
}

/// The most files a job's detail lists.
const MAX_LISTED_FILES: usize = 1000;

/// The regular files under `dir`, as sorted relative paths with `/` (at most
/// [`MAX_LISTED_FILES`]).
fn listed_files(dir: &std::path::Path) -> Vec<String> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(at) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&at) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                pending.push(entry.path());
            } else if kind.is_file() {
                if let Ok(relative) = entry.path().strip_prefix(dir) {
                    let parts: Vec<String> = relative
                        .components()
                        .map(|c| c.as_os_str().to_string_lossy().into_owned())
                        .collect();
                    files.push(parts.join("/"));
                }
            }
        }
    }
    files.sort();
    files.truncate(MAX_LISTED_FILES);
    files
}
