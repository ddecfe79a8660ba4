//! The Docker executor (bollard). Sandbox: no network unless the module asks and the RP
//! allows it, every capability dropped, no-new-privileges, read-only root filesystem with
//! a private /tmp, CPU/memory/pids limits from the deal, the outputs directory bind-mounted,
//! a wall-clock timeout that kills the container, capped stdout/stderr. GPUs are passed as
//! NVIDIA device requests naming the cards a job was given (see `super::gpus`), so jobs
//! running side by side never share one.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bollard::models::{ContainerCreateBody, DeviceRequest, HostConfig};
use bollard::query_parameters::{
    CreateImageOptions, KillContainerOptions, ListContainersOptionsBuilder, LogsOptions,
    RemoveContainerOptions, StartContainerOptions, WaitContainerOptions,
};
use bollard::Docker;
use futures::StreamExt;

use super::gpus::{self, Gpu, GpuError, GpuPool};
use super::{Executor, ExecutorError, RunOutput};
use crate::module::JobSpec;
use crate::results::ipfs::Ipfs;

/// Most bytes of stdout (and of stderr) kept from a job.
pub const MAX_LOG_BYTES: usize = 1024 * 1024;

/// Most bytes a job may write to its outputs (all output paths together): what a results tar
/// may hold, less room for stdout and stderr. A job writing more is stopped.
pub const MAX_OUTPUTS_BYTES: u64 = 200 * 1024 * 1024;

/// How often the size of a running job's outputs is measured.
const OUTPUTS_CHECK: Duration = Duration::from_millis(250);

/// Runs jobs on the local Docker engine.
#[derive(Clone)]
pub struct DockerExecutor {
    docker: Docker,
    allow_network: bool,
    /// This host's NVIDIA GPUs, or why they could not be read (a host without a driver
    /// runs CPU jobs all the same).
    gpus: Arc<Result<GpuPool, GpuError>>,
    /// Where jobs' IPFS inputs are fetched from (IPFS_CONNECT), if anywhere.
    ipfs: Option<Arc<Ipfs>>,
    /// The role instance whose containers these are (its data directory), set as
    /// [`OWNER_LABEL`] on each, so a restart after a crash finds and removes what the
    /// crashed process left running.
    owner: Option<String>,
}

impl DockerExecutor {
    /// Connects to the engine (DOCKER_HOST or the local socket) and agrees on an API version.
    pub async fn connect(allow_network: bool) -> Result<DockerExecutor, ExecutorError> {
        let docker = Docker::connect_with_local_defaults()
            .map_err(unreachable)?
            .negotiate_version()
            .await
            .map_err(unreachable)?;
        docker.ping().await.map_err(unreachable)?;
        let gpus = gpus::discover().await.map(GpuPool::new);
        match &gpus {
            Ok(pool) => tracing::info!(
                gpus = pool.gpus().len(),
                "{} GPU(s){}",
                pool.gpus().len(),
                gpus::describe(pool.gpus())
            ),
            Err(error) => tracing::debug!(%error, "no GPUs for jobs"),
        }
        Ok(DockerExecutor {
            docker,
            allow_network,
            gpus: Arc::new(gpus),
            ipfs: None,
            owner: None,
        })
    }

    /// Labels every container this executor starts as `owner`'s (see [`owner_of`]).
    pub fn with_owner(mut self, owner: String) -> DockerExecutor {
        self.owner = Some(owner);
        self
    }

    /// Removes the containers a previous process of the same owner left behind (it was
    /// killed mid-job, so its own clean-up never ran): they would keep running beside the
    /// jobs this process starts, on slots it believes free. Returns how many were removed.
    pub async fn remove_leftovers(&self) -> usize {
        let Some(owner) = &self.owner else {
            return 0;
        };
        let filters = HashMap::from([("label", vec![format!("{OWNER_LABEL}={owner}")])]);
        let options = ListContainersOptionsBuilder::new()
            .all(true)
            .filters(&filters)
            .build();
        let containers = match self.docker.list_containers(Some(options)).await {
            Ok(containers) => containers,
            Err(error) => {
                tracing::warn!(%error, "could not list containers left by an earlier run");
                return 0;
            }
        };
        let ids: Vec<String> = containers.into_iter().filter_map(|c| c.id).collect();
        for id in &ids {
            Self::remove(&self.docker, id).await;
        }
        if !ids.is_empty() {
            tracing::info!(
                containers = ids.len(),
                "removed containers an earlier run of this role left behind"
            );
        }
        ids.len()
    }

    /// Fetches jobs' IPFS inputs from `ipfs` (without one, jobs with inputs cannot run).
    pub fn with_ipfs(mut self, ipfs: Option<Ipfs>) -> DockerExecutor {
        self.ipfs = ipfs.map(Arc::new);
        self
    }

    /// Places GPU jobs on `gpus` instead of the cards `nvidia-smi` reported.
    pub fn with_gpus(mut self, gpus: Vec<Gpu>) -> DockerExecutor {
        self.gpus = Arc::new(Ok(GpuPool::new(gpus)));
        self
    }

    /// "Docker 26.1.5 (API 1.45)", or as much of it as the engine says.
    pub async fn describe(&self) -> String {
        match self.docker.version().await {
            Ok(v) => format!(
                "Docker {} (API {})",
                v.version.as_deref().unwrap_or("?"),
                v.api_version.as_deref().unwrap_or("?")
            ),
            Err(error) => format!("Docker (version unknown: {error})"),
        }
    }

    /// Whether jobs that ask for network access get it.
    pub fn allows_network(&self) -> bool {
        self.allow_network
    }

    /// A job gets a network only if its module asks and this RP allows it.
    fn network_allowed(&self, job: &JobSpec) -> bool {
        job.network && self.allow_network
    }

    async fn ensure_image(&self, image: &str) -> Result<(), ExecutorError> {
        if self.docker.inspect_image(image).await.is_ok() {
            return Ok(());
        }
        tracing::info!(image, "pulling image");
        let options = CreateImageOptions {
            from_image: Some(image.to_string()),
            ..Default::default()
        };
        let mut progress = self.docker.create_image(Some(options), None, None);
        while let Some(step) = progress.next().await {
            if let Err(error) = step {
                // An engine that does not answer is not a missing image.
                if let Err(down) = self.docker.ping().await {
                    return Err(ExecutorError::EngineUnavailable(format!(
                        "the Docker engine stopped answering: {down}"
                    )));
                }
                return Err(ExecutorError::Image {
                    image: image.to_string(),
                    message: error.to_string(),
                });
            }
        }
        Ok(())
    }

    async fn remove(docker: &Docker, id: &str) {
        let options = RemoveContainerOptions {
            force: true,
            v: true,
            ..Default::default()
        };
        if let Err(e) = docker.remove_container(id, Some(options)).await {
            tracing::warn!(container = id, %e, "could not remove a finished container");
        }
    }

    /// The job's stdout and stderr, each cut at [`MAX_LOG_BYTES`]. Each stream is read on its
    /// own and only up to the cap, so a job that printed gigabytes costs no more to read.
    async fn collect_logs(&self, id: &str) -> Result<(Vec<u8>, Vec<u8>), ExecutorError> {
        Ok((
            self.read_log(id, true).await?,
            self.read_log(id, false).await?,
        ))
    }

    async fn read_log(&self, id: &str, stdout: bool) -> Result<Vec<u8>, ExecutorError> {
        let options = LogsOptions {
            stdout,
            stderr: !stdout,
            follow: false,
            ..Default::default()
        };
        let mut logs = self.docker.logs(id, Some(options));
        let mut kept = Vec::new();
        while let Some(chunk) = logs.next().await {
            let chunk = chunk.map_err(|e| ExecutorError::Engine {
                what: "read the job's output".into(),
                message: e.to_string(),
            })?;
            let bytes = match chunk {
                bollard::container::LogOutput::StdOut { message } if stdout => message,
                bollard::container::LogOutput::StdErr { message } if !stdout => message,
                _ => continue,
            };
            let room = MAX_LOG_BYTES.saturating_sub(kept.len());
            kept.extend_from_slice(&bytes[..bytes.len().min(room)]);
            if kept.len() >= MAX_LOG_BYTES {
                break;
            }
        }
        Ok(kept)
    }

    async fn wait(&self, id: &str) -> Result<i64, ExecutorError> {
        let mut wait = self.docker.wait_container(id, None::<WaitContainerOptions>);
        match wait.next().await {
            Some(Ok(response)) => Ok(response.status_code),
            Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => Ok(code),
            Some(Err(e)) => Err(ExecutorError::Engine {
                what: "wait for the job".into(),
                message: e.to_string(),
            }),
            None => Err(ExecutorError::Engine {
                what: "wait for the job".into(),
                message: "the engine closed the stream".into(),
            }),
        }
    }
}

impl Executor for DockerExecutor {
    async fn reachable(&self) -> Result<(), String> {
        self.docker
            .ping()
            .await
            .map(|_| ())
            .map_err(|e| format!("the Docker engine does not answer: {e}"))
    }

    async fn run(
        &self,
        job: &JobSpec,
        outputs_dir: &Path,
        gpus: u64,
    ) -> Result<RunOutput, ExecutorError> {
        self.ensure_image(&job.image).await?;
        // Held until the container is gone: these cards are this job's alone.
        let lease = match (gpus, self.gpus.as_ref()) {
            (0, _) => None,
            (_, Ok(pool)) => {
                Some(
                    pool.take(gpus)
                        .await
                        .map_err(|message| ExecutorError::Engine {
                            what: "give the job its GPUs".into(),
                            message,
                        })?,
                )
            }
            (_, Err(error)) => {
                return Err(ExecutorError::Engine {
                    what: format!("give the job {gpus} GPU(s)"),
                    message: error.to_string(),
                })
            }
        };
        let gpu_ids = lease.as_ref().map(|l| l.uuids()).unwrap_or_default();
        super::create_dir(outputs_dir)?;
        let outputs_dir = outputs_dir
            .canonicalize()
            .map_err(|source| ExecutorError::Io {
                path: outputs_dir.display().to_string(),
                source,
            })?;
        // Removed when the run ends, however it ends.
        let inputs = super::inputs::stage(self.ipfs.as_deref(), &job.inputs).await?;
        // If this future is dropped (the role stops or crashes mid-job), even while the
        // container is being created, the guard removes it by its run label.
        let run = crate::data::offers::new_nonce();
        let mut guard = ContainerGuard {
            docker: self.docker.clone(),
            run: Some(run.clone()),
        };
        let body = ContainerCreateBody {
            image: Some(job.image.clone()),
            entrypoint: (!job.entrypoint.is_empty()).then(|| job.entrypoint.clone()),
            env: Some(job.env.clone()),
            working_dir: job.working_dir.clone(),
            network_disabled: Some(!self.network_allowed(job)),
            labels: Some(
                [
                    ("org.lilypad.module".to_string(), job.module.clone()),
                    (RUN_LABEL.to_string(), run.clone()),
                ]
                .into_iter()
                .chain(self.owner.clone().map(|o| (OWNER_LABEL.to_string(), o)))
                .collect(),
            ),
            host_config: Some(host_config(
                job,
                &outputs_dir,
                &inputs.binds,
                self.network_allowed(job),
                gpu_ids,
            )),
            ..Default::default()
        };
        let created = self
            .docker
            .create_container(
                None::<bollard::query_parameters::CreateContainerOptions>,
                body,
            )
            .await
            .map_err(|e| ExecutorError::Engine {
                what: format!("create a container of {}", job.image),
                message: e.to_string(),
            })?;
        let id = created.id;
        let outcome = async {
            self.docker
                .start_container(&id, None::<StartContainerOptions>)
                .await
                .map_err(|e| ExecutorError::Engine {
                    what: "start the job".into(),
                    message: e.to_string(),
                })?;
            let waited = tokio::select! {
                waited = tokio::time::timeout(Duration::from_secs(job.timeout_secs), self.wait(&id)) => waited,
                () = outputs_exceed(&outputs_dir, MAX_OUTPUTS_BYTES) => {
                    let _ = self
                        .docker
                        .kill_container(&id, None::<KillContainerOptions>)
                        .await;
                    empty_dir(&outputs_dir);
                    return Err(ExecutorError::OutputsTooLarge(MAX_OUTPUTS_BYTES));
                }
            };
            let exit_code = match waited {
                Ok(code) => code?,
                Err(_) => {
                    let _ = self
                        .docker
                        .kill_container(&id, None::<KillContainerOptions>)
                        .await;
                    return Err(ExecutorError::Timeout(job.timeout_secs));
                }
            };
            if size_of(&outputs_dir) > MAX_OUTPUTS_BYTES {
                empty_dir(&outputs_dir);
                return Err(ExecutorError::OutputsTooLarge(MAX_OUTPUTS_BYTES));
            }
            let (stdout, stderr) = self.collect_logs(&id).await?;
            Ok(RunOutput {
                stdout,
                stderr,
                exit_code,
            })
        }
        .await;
        guard.run = None;
        Self::remove(&self.docker, &id).await;
        drop(lease);
        drop(inputs);
        outcome
    }

    fn fetches_ipfs_inputs(&self) -> bool {
        self.ipfs.is_some()
    }

    fn gpus(&self) -> Option<Result<Vec<Gpu>, GpuError>> {
        Some(match self.gpus.as_ref() {
            Ok(pool) => Ok(pool.gpus().to_vec()),
            Err(error) => Err(error.clone()),
        })
    }
}

/// Returns once the files under `dir` hold more than `limit` bytes (measured every
/// [`OUTPUTS_CHECK`]); never, otherwise.
async fn outputs_exceed(dir: &Path, limit: u64) {
    loop {
        tokio::time::sleep(OUTPUTS_CHECK).await;
        let dir = dir.to_path_buf();
        let size = tokio::task::spawn_blocking(move || size_of(&dir))
            .await
            .unwrap_or(0);
        if size > limit {
            return;
        }
    }
}

/// The bytes of the regular files under `dir` (links are not followed).
fn size_of(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .map(|entry| match entry.file_type() {
            Ok(kind) if kind.is_dir() => size_of(&entry.path()),
            Ok(kind) if kind.is_file() => entry.metadata().map_or(0, |m| m.len()),
            _ => 0,
        })
        .fold(0u64, u64::saturating_add)
}

/// Removes everything under `dir`, keeping `dir`.
pub(super) fn empty_dir(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.filter_map(Result::ok) {
            let path = entry.path();
            let removed = if entry.file_type().is_ok_and(|k| k.is_dir()) {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
            if let Err(error) = removed {
                tracing::warn!(path = %path.display(), %error, "could not remove a job's output");
            }
        }
    }
}

/// The container's sandbox and resources: `inputs` its read-only input binds, `network`
/// whether it gets one, `gpus` the UUIDs of the cards it was given.
fn host_config(
    job: &JobSpec,
    outputs_dir: &Path,
    inputs: &[String],
    network: bool,
    gpus: Vec<String>,
) -> HostConfig {
    let outputs = outputs_dir.display().to_string();
    let binds = job
        .outputs
        .iter()
        .enumerate()
        .map(|(index, path)| {
            if index == 0 {
                format!("{outputs}:{path}:rw")
            } else {
                let name = path
                    .trim_end_matches('/')
                    .rsplit('/')
                    .next()
                    .unwrap_or("output");
                format!("{outputs}/{name}:{path}:rw")
            }
        })
        .chain(inputs.iter().cloned())
        .collect();
    HostConfig {
        binds: Some(binds),
        network_mode: Some(if network {
            "bridge".into()
        } else {
            "none".into()
        }),
        cap_drop: Some(vec!["ALL".into()]),
        security_opt: Some(vec!["no-new-privileges".into()]),
        readonly_rootfs: Some(true),
        tmpfs: Some([("/tmp".to_string(), "rw,size=268435456".to_string())].into()),
        pids_limit: Some(512),
        memory: (job.machine.ram > 0).then(|| (job.machine.ram as i64) * 1024 * 1024),
        nano_cpus: (job.machine.cpu > 0).then(|| (job.machine.cpu as i64) * 1_000_000),
        device_requests: (!gpus.is_empty()).then(|| {
            vec![DeviceRequest {
                driver: Some("nvidia".into()),
                device_ids: Some(gpus),
                capabilities: Some(vec![vec!["gpu".into()]]),
                ..Default::default()
            }]
        }),
        ..Default::default()
    }
}

fn unreachable(error: bollard::errors::Error) -> ExecutorError {
    ExecutorError::EngineUnavailable(format!(
        "the Docker engine is not reachable: {error}. Start it (e.g. `sudo systemctl start docker`) or check DOCKER_HOST"
    ))
}

/// Label naming one run's container, so it can be found without its id.
const RUN_LABEL: &str = "org.lilypad.run";

/// Label naming the role instance that started a container (see [`owner_of`]).
pub const OWNER_LABEL: &str = "org.lilypad.owner";

/// The owner label of the role whose data lives in `role_dir` (e.g. `DATA_DIR/rp`): its
/// absolute path, which stays the same across restarts and differs between roles on a host.
pub fn owner_of(role_dir: &Path) -> String {
    std::path::absolute(role_dir)
        .unwrap_or_else(|_| role_dir.to_path_buf())
        .display()
        .to_string()
}

/// Removes the container of a run when dropped while still armed (`run` set).
struct ContainerGuard {
    docker: Docker,
    run: Option<String>,
}

impl Drop for ContainerGuard {
    fn drop(&mut self) {
        let (Some(run), Ok(runtime)) = (self.run.take(), tokio::runtime::Handle::try_current())
        else {
            return;
        };
        let docker = self.docker.clone();
        runtime.spawn(async move {
            let filters = HashMap::from([("label", vec![format!("{RUN_LABEL}={run}")])]);
            let options = ListContainersOptionsBuilder::new()
                .all(true)
                .filters(&filters)
                .build();
            // The create call may still be on its way to the engine: look a few times, until
            // the run's container has been found and removed.
            for _ in 0..5 {
                if let Ok(containers) = docker.list_containers(Some(options.clone())).await {
                    let ids: Vec<String> = containers.into_iter().filter_map(|c| c.id).collect();
                    for id in &ids {
                        DockerExecutor::remove(&docker, id).await;
                    }
                    if !ids.is_empty() {
                        return;
                    }
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gpu_job_is_given_the_cards_it_holds_by_uuid_not_any_n() {
        let job = JobSpec {
            image: "gpu-job:latest".into(),
            outputs: vec!["/outputs".into()],
            ..JobSpec::default()
        };
        let uuid = "GPU-3b1f0c2e-9a4d-11ee-8c90-0242ac120002".to_string();
        let config = host_config(&job, Path::new("/tmp/out"), &[], false, vec![uuid.clone()]);
        let requests = config.device_requests.expect("a device request");
        assert_eq!(requests.len(), 1);
        assert_eq!(requests[0].device_ids, Some(vec![uuid]));
        assert_eq!(
            requests[0].count, None,
            "a count would hand out the first N cards to every job"
        );
        assert_eq!(requests[0].driver.as_deref(), Some("nvidia"));
        let cpu_only = host_config(&job, Path::new("/tmp/out"), &[], false, Vec::new());
        assert!(cpu_only.device_requests.is_none());
        assert_eq!(cpu_only.network_mode.as_deref(), Some("none"));
    }
}
