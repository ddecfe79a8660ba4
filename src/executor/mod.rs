//! Executors run a job's container and fill a results directory. The seam is a trait so
//! a Bacalhau executor can sit beside the Docker one; Docker is the one this node ships.

pub mod deal_job;
pub mod docker;

use std::path::Path;

use crate::module::JobSpec;

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
    #[error("the Docker engine is not reachable: {0}. Start it (e.g. `sudo systemctl start docker`) or check DOCKER_HOST")]
    EngineUnavailable(String),
    #[error("image {image} is not available: {message}")]
    Image { image: String, message: String },
    #[error("job exceeded its {0} s timeout and was killed")]
    Timeout(u64),
    #[error("{what}: {message}")]
    Engine { what: String, message: String },
    #[error("cannot prepare {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

/// Runs jobs.
#[allow(async_fn_in_trait)]
pub trait Executor: Send + Sync {
    /// Runs `job`, binding `outputs_dir` as its outputs; `gpus` is how many GPUs to hand it.
    async fn run(
        &self,
        job: &JobSpec,
        outputs_dir: &Path,
        gpus: u64,
    ) -> Result<RunOutput, ExecutorError>;
}
