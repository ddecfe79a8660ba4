//! Executors run a job's container and fill a results directory. Roles are generic over the
//! [`Executor`] trait, so an engine is chosen in one place ([`AnyExecutor`]) and the roles'
//! logic runs the same on every engine: Docker (what a resource provider uses), Bacalhau
//! (a Bacalhau network running the containers), or the noop engine (no containers: for
//! trying a network, and for testing roles, without Docker).

pub mod bacalhau;
pub mod deal_job;
pub mod docker;
pub mod gpus;
pub mod inputs;
pub mod noop;

use std::future::Future;
use std::path::Path;

use crate::config::Settings;
use crate::module::JobSpec;
use bacalhau::BacalhauExecutor;
use docker::DockerExecutor;
use gpus::{Gpu, GpuError};
use noop::NoopExecutor;

/// What a finished job left behind (stdout/stderr are capped; `outputs/` is on disk).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOutput {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub exit_code: i64,
}

/// Why a job could not be run (as opposed to a job that ran and exited non-zero).
#[derive(Debug, thiserror::Error)]
pub enum ExecutorError {
    /// The engine does not answer (the message says which, and what to do).
    #[error("{0}")]
    EngineUnavailable(String),
    #[error("image {image} is not available: {message}")]
    Image { image: String, message: String },
    #[error("job exceeded its {0} s timeout and was killed")]
    Timeout(u64),
    /// The job wrote more than the outputs cap: stopped, its outputs dropped.
    #[error(
        "job wrote more than {0} bytes to its outputs and was stopped; its outputs were dropped"
    )]
    OutputsTooLarge(u64),
    #[error("{what}: {message}")]
    Engine { what: String, message: String },
    #[error("cannot prepare {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("unknown executor {0:?}: choose docker, bacalhau or noop (EXECUTOR, --executor)")]
    Unknown(String),
}

/// Creates `dir` (and its parents) for a job, or says which path could not be made.
fn create_dir(dir: &Path) -> Result<(), ExecutorError> {
    std::fs::create_dir_all(dir).map_err(|source| ExecutorError::Io {
        path: dir.display().to_string(),
        source,
    })
}

impl ExecutorError {
    /// Whether the job itself caused this (it ran too long, wrote too much): its results say
    /// so and are submitted. Any other error is the engine's, and nothing is submitted.
    pub fn is_the_jobs(&self) -> bool {
        matches!(
            self,
            ExecutorError::Timeout(_) | ExecutorError::OutputsTooLarge(_)
        )
    }
}

/// Runs jobs.
pub trait Executor: Send + Sync + 'static {
    /// Runs `job`, binding `outputs_dir` as its outputs; `gpus` is how many GPUs to hand it.
    fn run(
        &self,
        job: &JobSpec,
        outputs_dir: &Path,
        gpus: u64,
    ) -> impl Future<Output = Result<RunOutput, ExecutorError>> + Send;

    /// Whether the engine answers now (a role's /health); the error says why not.
    fn reachable(&self) -> impl Future<Output = Result<(), String>> + Send {
        async { Ok(()) }
    }

    /// The GPUs this engine places jobs on, or why it cannot read them; `None` when the
    /// engine runs nothing on GPUs (so an offer of GPUs cannot be checked against it).
    fn gpus(&self) -> Option<Result<Vec<Gpu>, GpuError>> {
        None
    }

    /// Whether jobs that read IPFS inputs can run here (the engine can fetch them).
    fn fetches_ipfs_inputs(&self) -> bool {
        true
    }
}

/// The engine a role runs jobs on, chosen by name (`EXECUTOR`, `--executor`).
#[derive(Clone)]
pub enum AnyExecutor {
    Docker(DockerExecutor),
    Bacalhau(BacalhauExecutor),
    Noop(NoopExecutor),
}

impl AnyExecutor {
    /// Connects to the engine `settings` name (EXECUTOR: docker, bacalhau or noop; Bacalhau
    /// at BACALHAU_API_HOST). `allow_network`: jobs that ask for a network get one (the noop
    /// engine only reports it).
    pub async fn connect(
        settings: &Settings,
        allow_network: bool,
    ) -> Result<AnyExecutor, ExecutorError> {
        Self::connect_as(settings, allow_network, None).await
    }

    /// The same, for the role whose data is in `role_dir`: its containers are labelled as
    /// its own, so [`AnyExecutor::remove_leftovers`] finds them after a crash.
    async fn connect_as(
        settings: &Settings,
        allow_network: bool,
        role_dir: Option<&Path>,
    ) -> Result<AnyExecutor, ExecutorError> {
        match settings.executor.as_str() {
            "docker" => {
                let ipfs = settings.ipfs().map_err(|e| ExecutorError::Engine {
                    what: "use IPFS for the jobs' inputs".into(),
                    message: e.to_string(),
                })?;
                let mut docker = DockerExecutor::connect(allow_network)
                    .await?
                    .with_ipfs(ipfs);
                if let Some(dir) = role_dir {
                    docker = docker.with_owner(docker::owner_of(dir));
                }
                Ok(AnyExecutor::Docker(docker))
            }
            "bacalhau" => Ok(AnyExecutor::Bacalhau(
                BacalhauExecutor::connect(&settings.bacalhau_api_host, allow_network).await?,
            )),
            "noop" => Ok(AnyExecutor::Noop(NoopExecutor { allow_network })),
            other => Err(ExecutorError::Unknown(other.to_string())),
        }
    }

    /// The engine a resource provider runs jobs on (EXECUTOR, ALLOW_NETWORK). On Bacalhau,
    /// a compute node must be able to run one slot of the offer.
    pub async fn for_resource_provider(settings: &Settings) -> Result<AnyExecutor, ExecutorError> {
        let role_dir = crate::rp::RpSettings::dir_of(settings);
        let executor =
            AnyExecutor::connect_as(settings, settings.allow_network, Some(&role_dir)).await?;
        if let (AnyExecutor::Bacalhau(bacalhau), Ok(slot)) = (&executor, settings.offer_spec()) {
            bacalhau.check_capacity(&slot)?;
        }
        Ok(executor)
    }

    /// The engine a mediator re-runs jobs on (EXECUTOR). Never with a network: a verdict
    /// must not depend on what the internet answered.
    pub async fn for_mediator(settings: &Settings) -> Result<AnyExecutor, ExecutorError> {
        let role_dir = crate::mediator::MediatorSettings::dir_of(settings);
        AnyExecutor::connect_as(settings, false, Some(&role_dir)).await
    }

    /// Removes what an earlier process of this role left running when it was killed (Docker:
    /// its labelled containers). A role calls this once as it starts, before taking any job.
    pub async fn remove_leftovers(&self) {
        if let AnyExecutor::Docker(docker) = self {
            docker.remove_leftovers().await;
        }
    }

    /// The engine in a few words (its name and version), for operators.
    pub async fn describe(&self) -> String {
        match self {
            AnyExecutor::Docker(docker) => docker.describe().await,
            AnyExecutor::Bacalhau(bacalhau) => bacalhau.describe(),
            AnyExecutor::Noop(_) => "noop (runs no containers)".into(),
        }
    }

    /// Whether jobs that ask for network access get it.
    pub fn allows_network(&self) -> bool {
        match self {
            AnyExecutor::Docker(docker) => docker.allows_network(),
            AnyExecutor::Bacalhau(bacalhau) => bacalhau.allows_network(),
            AnyExecutor::Noop(noop) => noop.allow_network,
        }
    }
}

impl Executor for AnyExecutor {
    async fn reachable(&self) -> Result<(), String> {
        match self {
            AnyExecutor::Docker(docker) => docker.reachable().await,
            AnyExecutor::Bacalhau(bacalhau) => bacalhau.reachable().await,
            AnyExecutor::Noop(noop) => noop.reachable().await,
        }
    }

    async fn run(
        &self,
        job: &JobSpec,
        outputs_dir: &Path,
        gpus: u64,
    ) -> Result<RunOutput, ExecutorError> {
        match self {
            AnyExecutor::Docker(docker) => docker.run(job, outputs_dir, gpus).await,
            AnyExecutor::Bacalhau(bacalhau) => bacalhau.run(job, outputs_dir, gpus).await,
            AnyExecutor::Noop(noop) => noop.run(job, outputs_dir, gpus).await,
        }
    }

    fn gpus(&self) -> Option<Result<Vec<Gpu>, GpuError>> {
        match self {
            AnyExecutor::Docker(docker) => docker.gpus(),
            AnyExecutor::Bacalhau(bacalhau) => bacalhau.gpus(),
            AnyExecutor::Noop(noop) => noop.gpus(),
        }
    }

    fn fetches_ipfs_inputs(&self) -> bool {
        match self {
            AnyExecutor::Docker(docker) => docker.fetches_ipfs_inputs(),
            AnyExecutor::Bacalhau(bacalhau) => bacalhau.fetches_ipfs_inputs(),
            AnyExecutor::Noop(noop) => noop.fetches_ipfs_inputs(),
        }
    }
}
