//! Jobs `lilypad run` started and has not seen to the end, kept so `--resume` can follow
//! them again.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};

use super::JobRequest;
use crate::data::{ContentAddressed, JobOffer};

/// The jobs `lilypad run` has started and not seen to the end, one file per job offer under
/// `DATA_DIR/jobs/`, so `lilypad run --resume ID` can follow the same offer and deal after
/// the process was stopped (and call the job creator's timeouts, so no deposit stays locked).
pub struct UnfinishedJobs {
    dir: PathBuf,
}

/// What is kept of an unfinished job.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct UnfinishedJob {
    pub offer: JobOffer,
    pub mediation_chance: u8,
    /// `--accept-failures` (absent in files written before it existed: dispute them).
    #[serde(default)]
    pub accept_failures: bool,
}

impl UnfinishedJobs {
    pub fn new(data_dir: &std::path::Path) -> UnfinishedJobs {
        UnfinishedJobs {
            dir: data_dir.join("jobs"),
        }
    }

    fn path(&self, id: &str) -> anyhow::Result<PathBuf> {
        if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric()) {
            bail!("{id:?} is not a job offer id");
        }
        Ok(self.dir.join(format!("{id}.json")))
    }

    pub fn save(&self, job: &UnfinishedJob) -> anyhow::Result<()> {
        let path = self.path(&job.offer.id)?;
        crate::files::write_replacing(&path, &serde_json::to_vec_pretty(job)?)
            .with_context(|| format!("cannot write {}", path.display()))
    }

    pub fn load(&self, id: &str) -> anyhow::Result<UnfinishedJob> {
        let path = self.path(id)?;
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!(
                "no unfinished job {id} (looked for {}); `ls {}` lists them",
                path.display(),
                self.dir.display()
            )
        })?;
        let job: UnfinishedJob = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a saved job", path.display()))?;
        if !job.offer.id_is_valid() {
            bail!(
                "{} holds a job offer whose id does not match its contents",
                path.display()
            );
        }
        Ok(job)
    }

    /// Forgets a job that has ended.
    pub fn forget(&self, id: &str) {
        if let Ok(path) = self.path(id) {
            let _ = std::fs::remove_file(path);
        }
    }
}

impl UnfinishedJob {
    /// The request that follows this job again.
    pub fn request(
        &self,
        poll: Duration,
        results_dir: PathBuf,
        timeout: Duration,
        progress: bool,
        modules: crate::module::GitModules,
        ipfs: Option<crate::results::ipfs::Ipfs>,
    ) -> JobRequest {
        let offer = &self.offer;
        JobRequest {
            module: offer.module.clone(),
            inputs: offer.inputs.clone(),
            pricing: offer.pricing,
            timeouts: offer.timeouts,
            services: offer.services.clone(),
            results_dir,
            timeout,
            poll,
            progress,
            mediation_chance: self.mediation_chance,
            accept_failures: self.accept_failures,
            results_reader: offer.results_reader,
            on_chain_job: offer.on_chain_job.clone(),
            modules,
            ipfs,
            location: None,
        }
    }
}
