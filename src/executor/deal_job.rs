//! Runs a deal's job into a results directory (`stdout`, `stderr`, `exitCode`, `outputs/`).
//! The resource provider and the mediator both use this, so for a deterministic module
//! their packed results are byte-identical and the mediator can compare CIDs.

use std::path::Path;
use std::time::Instant;

use anyhow::Context;

use super::{Executor, ExecutorError};
use crate::results::ENGINE_FAILURE;

/// How stderr starts when the job itself could not run (its module, its size, its timeout).
const JOB_FAILURE: &str = "lilypad: the job could not run";
use crate::data::{Deal, MachineSpec};

/// How a deal's job went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DealJob {
    pub exit_code: i64,
    /// Set when this machine could not run the job at all (engine down, image missing).
    pub engine_failure: Option<EngineFailure>,
}

/// Why this machine's engine could not run a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineFailure {
    /// What the engine said.
    pub reason: String,
    /// The job's image could not be had. Every machine fails the same way on an image that
    /// exists nowhere, so the results written for it are the same everywhere and a mediator
    /// may judge on them; any other failure (the engine down) says nothing about the job.
    pub image_missing: bool,
}

/// Runs `deal`'s job with `executor` into `results` (cleared first). A job that cannot run
/// (unknown module, too large for `limit`, engine error) still leaves a results directory:
/// empty stdout, the reason in stderr and exit code -1, so the deal can be settled. When the
/// engine failed, stderr starts with [`crate::results::ENGINE_FAILURE`]; a missing image is
/// said without the engine's own words, so two machines missing it write the same results.
///
/// The container gets what the resource provider sold for the slot (the deal's resource
/// offer), never less: the module's `machine` is what matching needs, not a hard limit (a
/// module declaring 100 MB of RAM whose job uses more must not be killed for it). The
/// mediator's re-run gets the same slot, so both run under the same limits.
pub async fn run_deal_job<E: Executor>(
    executor: &E,
    deal: &Deal,
    limit: Option<&MachineSpec>,
    results: &Path,
    modules: &crate::module::GitModules,
) -> anyhow::Result<DealJob> {
    if results.exists() {
        tokio::fs::remove_dir_all(results)
            .await
            .with_context(|| format!("cannot clear {}", results.display()))?;
    }
    tokio::fs::create_dir_all(results.join("outputs"))
        .await
        .with_context(|| format!("cannot create {}", results.display()))?;
    let started = Instant::now();
    let mut engine_failure = None;
    let output = match crate::module::resolve_offer(&deal.job_offer, modules).await {
        Err(error) => Err(format!("{JOB_FAILURE}: {error}")),
        Ok(spec) if limit.is_some_and(|limit| !limit.covers(&spec.machine)) => Err(format!(
            "{JOB_FAILURE}: the module needs {:?}, more than this offer's {:?}",
            spec.machine, limit
        )),
        Ok(mut spec) => {
            spec.machine = deal.resource_offer.spec;
            tracing::info!(deal_id = %deal.id, image = %spec.image, cpu = spec.machine.cpu, ram_mb = spec.machine.ram, gpus = spec.machine.gpu, "running the job in the slot sold");
            let run = executor
                .run(&spec, &results.join("outputs"), spec.machine.gpu)
                .await;
            run.map_err(|error| {
                if error.is_the_jobs() {
                    return format!("{JOB_FAILURE}: {error}");
                }
                let image_missing = matches!(error, ExecutorError::Image { .. });
                engine_failure = Some(EngineFailure {
                    reason: error.to_string(),
                    image_missing,
                });
                match error {
                    ExecutorError::Image { image, .. } => {
                        format!("{ENGINE_FAILURE}: image {image} is not available")
                    }
                    other => format!("{ENGINE_FAILURE}: {other}"),
                }
            })
        }
    };
    let (stdout, stderr, exit_code) = match output {
        Ok(output) => (output.stdout, output.stderr, output.exit_code),
        Err(line) => {
            tracing::warn!(deal_id = %deal.id, error = %line, "the job could not run");
            let line = line.replace('\n', " ");
            (Vec::new(), format!("{line}\n").into_bytes(), -1)
        }
    };
    crate::results::write_results_dir(results, &stdout, &stderr, exit_code)?;
    tracing::info!(deal_id = %deal.id, exit_code, seconds = started.elapsed().as_secs_f32(), "job ran");
    Ok(DealJob {
        exit_code,
        engine_failure,
    })
}
