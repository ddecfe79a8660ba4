//! The noop engine: runs no container. It answers every job with exit code 0 and a stdout
//! that names what would have run (image, entrypoint, environment, GPUs, and whether the
//! job would have had a network), deterministically, so
//! two runs of the same job produce byte-identical results and a mediator's re-run agrees.
//! An operator can try a whole network with it before installing Docker
//! (`lilypad rp --executor noop`), and the roles' own tests run on it.

use std::path::Path;

use super::{Executor, ExecutorError, RunOutput};
use crate::module::JobSpec;

/// An engine that runs nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoopExecutor {
    /// Whether jobs that ask for a network would get one (ALLOW_NETWORK), as on Docker.
    pub allow_network: bool,
}

impl Executor for NoopExecutor {
    async fn run(
        &self,
        job: &JobSpec,
        outputs_dir: &Path,
        gpus: u64,
    ) -> Result<RunOutput, ExecutorError> {
        super::create_dir(outputs_dir)?;
        let network = if job.network && self.allow_network {
            "a network"
        } else {
            "no network"
        };
        let stdout = format!(
            "noop executor: would run image {} with entrypoint {:?}, env {:?}, {gpus} GPU(s), {network}\n",
            job.image, job.entrypoint, job.env
        );
        Ok(RunOutput {
            stdout: stdout.into_bytes(),
            stderr: Vec::new(),
            exit_code: 0,
        })
    }
}
