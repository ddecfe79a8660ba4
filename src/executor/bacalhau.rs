//! The Bacalhau executor: runs a job on a Bacalhau network through its orchestrator's v1
//! REST API (`BACALHAU_API_HOST`). The job is submitted as a one-task batch job on the Docker
//! engine with the slot's CPU, memory, disk and GPUs as its resources, no network unless the
//! module asks and the RP allows it, and the local publisher for its results. We wait with a
//! clock of our own, then download the published results and read them as the Docker
//! executor would have left them (`stdout`, `stderr`, `exitCode`, `outputs/`), so a job that
//! is reproducible gives byte-identical results, and the same results CID, on either engine.
//!
//! A job whose future is dropped (a cancelled deal, a stopping role) is stopped on Bacalhau.
//!
//! Images: Bacalhau resolves a job's image to a digest before it runs it. A compute node
//! uses a local image only when the image has a registry digest (it was pulled from, or
//! pushed to, a registry); otherwise it asks the image's registry.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::json;

use super::gpus::Gpu;
use super::{Executor, ExecutorError, RunOutput};
use crate::data::MachineSpec;
use crate::module::JobSpec;

/// Where Bacalhau's API is when BACALHAU_API_HOST is not set.
pub const DEFAULT_API: &str = "http://127.0.0.1:1234";

/// The oldest Bacalhau (major, minor) whose API this executor speaks: v1 jobs with result
/// paths and a local publisher. Tested with v1.9.3.
pub const OLDEST_SUPPORTED: (u64, u64) = (1, 5);

/// How long one API call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// How often a running job's state is read.
const POLL: Duration = Duration::from_millis(200);

/// Time allowed beyond a job's own timeout for queueing, loading the image and publishing.
const GRACE: Duration = Duration::from_secs(60);

/// How long Bacalhau may stay unreachable while a job runs before the run is given up.
const UNREACHABLE_FOR: Duration = Duration::from_secs(10);

/// Most bytes of published results downloaded (compressed and unpacked alike).
const MAX_RESULTS_BYTES: u64 = 256 * 1024 * 1024;

/// A Bacalhau network, reached through one orchestrator.
#[derive(Clone)]
pub struct BacalhauExecutor {
    http: reqwest::Client,
    api: String,
    allow_network: bool,
    version: String,
    /// The compute nodes connected when we started, with what they can run.
    nodes: Vec<ComputeNode>,
}

/// A compute node that runs Docker jobs, as the orchestrator reported it.
#[derive(Debug, Clone)]
struct ComputeNode {
    id: String,
    capacity: Capacity,
    /// Where it can fetch inputs from ("ipfs" when it has an IPFS endpoint).
    storage_sources: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Capacity {
    #[serde(rename = "CPU", default)]
    cpu: f64,
    #[serde(default)]
    memory: u64,
    #[serde(default)]
    disk: u64,
    #[serde(rename = "GPU", default)]
    gpu: u64,
    #[serde(rename = "GPUs", default)]
    gpus: Vec<NodeGpu>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct NodeGpu {
    #[serde(default)]
    index: u64,
    #[serde(default)]
    name: String,
    #[serde(default)]
    memory: u64,
    #[serde(rename = "PCIAddress", default)]
    pci_address: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Version {
    git_version: String,
    #[serde(default)]
    major: String,
    #[serde(default)]
    minor: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Nodes {
    #[serde(default)]
    nodes: Vec<NodeState>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct NodeState {
    info: NodeInfo,
    #[serde(default)]
    connection: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct NodeInfo {
    #[serde(rename = "NodeID")]
    node_id: String,
    #[serde(default)]
    node_type: String,
    compute_node_info: Option<ComputeInfo>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ComputeInfo {
    #[serde(default)]
    execution_engines: Vec<String>,
    #[serde(default)]
    storage_sources: Vec<String>,
    #[serde(default)]
    max_capacity: Capacity,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Submitted {
    #[serde(rename = "JobID")]
    job_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct JobEnvelope {
    job: JobState,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct JobState {
    state: State,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct State {
    state_type: serde_json::Value,
    #[serde(default)]
    message: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Executions {
    #[serde(default)]
    items: Vec<Execution>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Execution {
    compute_state: Option<State>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Results {
    #[serde(default)]
    items: Vec<Published>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Published {
    #[serde(rename = "Type", default)]
    kind: String,
    #[serde(default)]
    params: HashMap<String, serde_json::Value>,
}

/// Normalises BACALHAU_API_HOST: a URL, or `host:port` (taken as http).
pub fn api_url(text: &str) -> String {
    let text = text.trim().trim_end_matches('/');
    if text.contains("://") {
        text.to_string()
    } else {
        format!("http://{text}")
    }
}

impl BacalhauExecutor {
    /// Connects to the orchestrator at `api`: it must answer, run a supported version, and
    /// have at least one connected compute node that runs Docker jobs.
    pub async fn connect(
        api: &str,
        allow_network: bool,
    ) -> Result<BacalhauExecutor, ExecutorError> {
        let api = api_url(api);
        let http = reqwest::Client::builder()
            .timeout(CALL_TIMEOUT)
            .build()
            .map_err(|e| unavailable(&api, e))?;
        let mut executor = BacalhauExecutor {
            http,
            api,
            allow_network,
            version: String::new(),
            nodes: Vec::new(),
        };
        let version: Version = executor.get("/api/v1/agent/version").await?;
        if !supported(&version.major, &version.minor) {
            return Err(ExecutorError::Engine {
                what: format!("use Bacalhau at {}", executor.api),
                message: format!(
                    "version {} is not supported: lilypad needs v{}.{} or a later v1",
                    version.git_version, OLDEST_SUPPORTED.0, OLDEST_SUPPORTED.1
                ),
            });
        }
        executor.version = version.git_version;
        let nodes: Nodes = executor.get("/api/v1/orchestrator/nodes").await?;
        executor.nodes = nodes
            .nodes
            .into_iter()
            .filter(|node| node.connection.eq_ignore_ascii_case("connected"))
            .filter(|node| node.info.node_type.eq_ignore_ascii_case("compute"))
            .filter_map(|node| {
                let compute = node.info.compute_node_info?;
                compute
                    .execution_engines
                    .iter()
                    .any(|engine| engine == "docker")
                    .then_some(ComputeNode {
                        id: node.info.node_id,
                        capacity: compute.max_capacity,
                        storage_sources: compute.storage_sources,
                    })
            })
            .collect();
        if executor.nodes.is_empty() {
            return Err(ExecutorError::Engine {
                what: format!("use Bacalhau at {}", executor.api),
                message: "no connected compute node runs Docker jobs (start one with `bacalhau serve --compute`, or check that it joined this orchestrator)".into(),
            });
        }
        tracing::info!(api = %executor.api, version = %executor.version, nodes = executor.nodes.len(), "Bacalhau is ready");
        Ok(executor)
    }

    /// "Bacalhau v1.9.3 at http://127.0.0.1:1234, 1 compute node(s)".
    pub fn describe(&self) -> String {
        format!(
            "Bacalhau {} at {}, {} compute node(s)",
            self.version,
            self.api,
            self.nodes.len()
        )
    }

    /// Whether jobs that ask for network access get it.
    pub fn allows_network(&self) -> bool {
        self.allow_network
    }

    /// Checks that one compute node can run a job the size of `slot`.
    pub fn check_capacity(&self, slot: &MachineSpec) -> Result<(), ExecutorError> {
        let fits = |c: &Capacity| {
            c.cpu * 1000.0 + 0.5 >= slot.cpu as f64
                && c.memory >= slot.ram.saturating_mul(1024 * 1024)
                && c.disk >= slot.disk.saturating_mul(1024 * 1024)
                && c.gpu.max(c.gpus.len() as u64) >= slot.gpu
        };
        if self.nodes.iter().any(|node| fits(&node.capacity)) {
            return Ok(());
        }
        let seen: Vec<String> = self
            .nodes
            .iter()
            .map(|node| {
                let c = &node.capacity;
                format!(
                    "{}: {} m CPU, {} MiB RAM, {} MiB disk, {} GPU(s)",
                    node.id,
                    (c.cpu * 1000.0).round(),
                    c.memory / (1024 * 1024),
                    c.disk / (1024 * 1024),
                    c.gpu.max(c.gpus.len() as u64)
                )
            })
            .collect();
        Err(ExecutorError::Engine {
            what: format!(
                "offer a slot of {} m CPU, {} MiB RAM, {} MiB disk and {} GPU(s) on Bacalhau",
                slot.cpu, slot.ram, slot.disk, slot.gpu
            ),
            message: format!("no compute node is that large ({})", seen.join("; ")),
        })
    }

    async fn get<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<T, ExecutorError> {
        let response = self
            .http
            .get(format!("{}{path}", self.api))
            .send()
            .await
            .map_err(|e| unavailable(&self.api, e))?;
        read_json(response, path).await
    }

    /// Submits `job`; returns Bacalhau's job id.
    async fn submit(&self, job: &serde_json::Value) -> Result<String, ExecutorError> {
        let response = self
            .http
            .put(format!("{}/api/v1/orchestrator/jobs", self.api))
            .json(job)
            .send()
            .await
            .map_err(|e| unavailable(&self.api, e))?;
        let submitted: Submitted = read_json(response, "/api/v1/orchestrator/jobs").await?;
        Ok(submitted.job_id)
    }

    /// Waits until the job ends; Ok when it completed.
    async fn wait(&self, job_id: &str, timeout_secs: u64) -> Result<(), ExecutorError> {
        let limit = Duration::from_secs(timeout_secs) + GRACE;
        let started = Instant::now();
        let mut unreachable_since: Option<Instant> = None;
        loop {
            match self
                .get::<JobEnvelope>(&format!("/api/v1/orchestrator/jobs/{job_id}"))
                .await
            {
                Ok(envelope) => {
                    unreachable_since = None;
                    let state = envelope.job.state;
                    match state.state_type.as_str().unwrap_or_default() {
                        "Completed" => return Ok(()),
                        "Failed" | "Stopped" => {
                            return Err(self.failure(job_id, timeout_secs, &state).await)
                        }
                        _ => {}
                    }
                }
                Err(error @ ExecutorError::EngineUnavailable(_)) => {
                    let since = *unreachable_since.get_or_insert_with(Instant::now);
                    if since.elapsed() >= UNREACHABLE_FOR {
                        return Err(error);
                    }
                }
                Err(error) => return Err(error),
            }
            if started.elapsed() >= limit {
                return Err(ExecutorError::Timeout(timeout_secs));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Why a job failed, from its executions: a timeout, or the engine's own words.
    async fn failure(&self, job_id: &str, timeout_secs: u64, job: &State) -> ExecutorError {
        let executions = self
            .get::<Executions>(&format!("/api/v1/orchestrator/jobs/{job_id}/executions"))
            .await
            .map(|e| e.items)
            .unwrap_or_default();
        let messages: Vec<String> = executions
            .into_iter()
            .filter_map(|e| e.compute_state.map(|s| s.message))
            .filter(|m| !m.is_empty())
            .collect();
        if messages.iter().any(|m| m.contains("timed out")) {
            return ExecutorError::Timeout(timeout_secs);
        }
        let mut message = job.message.clone();
        for m in messages {
            if !message.contains(&m) {
                message.push_str(&format!("; {m}"));
            }
        }
        ExecutorError::Engine {
            what: format!("run Bacalhau job {job_id}"),
            message,
        }
    }

    /// Downloads the published results of a completed job (gzipped tar).
    async fn download(&self, job_id: &str) -> Result<Vec<u8>, ExecutorError> {
        let results: Results = self
            .get(&format!("/api/v1/orchestrator/jobs/{job_id}/results"))
            .await?;
        let url = results
            .items
            .iter()
            .find(|p| p.kind == "urlDownload")
            .and_then(|p| p.params.get("URL"))
            .and_then(|url| url.as_str())
            .ok_or_else(|| ExecutorError::Engine {
                what: format!("find the results of Bacalhau job {job_id}"),
                message: "no downloadable results were published (the compute node needs the local publisher)".into(),
            })?
            .to_string();
        let fail = |message: String| ExecutorError::Engine {
            what: format!("download the results of Bacalhau job {job_id} from {url}"),
            message,
        };
        let mut response = self
            .http
            .get(&url)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| fail(e.to_string()))?;
        let mut bytes = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| fail(e.to_string()))? {
            if bytes.len() as u64 + chunk.len() as u64 > MAX_RESULTS_BYTES {
                return Err(fail(format!("more than {MAX_RESULTS_BYTES} bytes")));
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(bytes)
    }
}

fn supported(major: &str, minor: &str) -> bool {
    match (major.parse::<u64>(), minor.parse::<u64>()) {
        (Ok(major), Ok(minor)) => major == OLDEST_SUPPORTED.0 && minor >= OLDEST_SUPPORTED.1,
        _ => false,
    }
}

fn unavailable(api: &str, error: impl std::fmt::Display) -> ExecutorError {
    ExecutorError::EngineUnavailable(format!(
        "Bacalhau is not reachable at {api} ({error}). Start it (`bacalhau serve --orchestrator --compute`) or set BACALHAU_API_HOST"
    ))
}

async fn read_json<T: serde::de::DeserializeOwned>(
    response: reqwest::Response,
    path: &str,
) -> Result<T, ExecutorError> {
    let status = response.status();
    let body = response.bytes().await.unwrap_or_default();
    let fail = |message: String| ExecutorError::Engine {
        what: format!("call Bacalhau's {path}"),
        message,
    };
    if !status.is_success() {
        let text = String::from_utf8_lossy(&body[..body.len().min(2000)]).into_owned();
        return Err(fail(format!("{status}: {}", text.trim())));
    }
    serde_json::from_slice(&body).map_err(|e| fail(format!("unexpected answer: {e}")))
}

/// The names Bacalhau publishes a job's output paths under: the first is the results'
/// `outputs/`, each other one `outputs/NAME` (NAME: the path's last component), as the
/// Docker executor binds them.
fn result_paths(job: &JobSpec) -> Vec<(String, String, PathBuf)> {
    job.outputs
        .iter()
        .enumerate()
        .map(|(index, path)| {
            if index == 0 {
                ("outputs".to_string(), path.clone(), PathBuf::new())
            } else {
                let name = path
                    .trim_end_matches('/')
                    .rsplit('/')
                    .next()
                    .filter(|name| !name.is_empty())
                    .unwrap_or("output");
                (format!("output-{index}"), path.clone(), PathBuf::from(name))
            }
        })
        .collect()
}

/// The Bacalhau job for `job` with `gpus` GPUs; `name` is unique per run (Bacalhau updates
/// a job submitted again under the same name).
fn job_request(job: &JobSpec, name: &str, gpus: u64, network: bool) -> serde_json::Value {
    let mut params = json!({
        "Image": job.image,
        "EnvironmentVariables": job.env,
    });
    if !job.entrypoint.is_empty() {
        params["Entrypoint"] = json!(job.entrypoint);
    }
    if let Some(dir) = &job.working_dir {
        params["WorkingDirectory"] = json!(dir);
    }
    let mut resources = serde_json::Map::new();
    if job.machine.cpu > 0 {
        resources.insert("CPU".into(), json!(format!("{}m", job.machine.cpu)));
    }
    if job.machine.ram > 0 {
        resources.insert("Memory".into(), json!(format!("{}MiB", job.machine.ram)));
    }
    if job.machine.disk > 0 {
        resources.insert("Disk".into(), json!(format!("{}MiB", job.machine.disk)));
    }
    if gpus > 0 {
        resources.insert("GPU".into(), json!(gpus.to_string()));
    }
    let result_paths: Vec<serde_json::Value> = result_paths(job)
        .into_iter()
        .map(|(name, path, _)| json!({"Name": name, "Path": path}))
        .collect();
    let input_sources: Vec<serde_json::Value> = job
        .inputs
        .iter()
        .map(|input| {
            json!({"Source": {"Type": "ipfs", "Params": {"CID": input.cid}}, "Target": input.path})
        })
        .collect();
    json!({
        "Job": {
            "Name": name,
            "Type": "batch",
            "Count": 1,
            "Meta": {"lilypad.module": job.module},
            "Tasks": [{
                "Name": "main",
                "Engine": {"Type": "docker", "Params": params},
                "Publisher": {"Type": "local"},
                "InputSources": input_sources,
                "ResultPaths": result_paths,
                "Network": {"Type": if network { "Bridge" } else { "None" }},
                "Resources": resources,
                "Timeouts": {"ExecutionTimeout": job.timeout_secs.max(1)},
            }],
        }
    })
}

/// Reads Bacalhau's published results (gzipped tar: `stdout`, `stderr`, `exitCode` and one
/// directory per result path) into `outputs_dir` and a [`RunOutput`].
fn read_results(
    job: &JobSpec,
    gzipped: &[u8],
    outputs_dir: &Path,
) -> Result<RunOutput, ExecutorError> {
    let fail = |message: String| ExecutorError::Engine {
        what: "read the results Bacalhau published".into(),
        message,
    };
    let mut tar = Vec::new();
    flate2::read::GzDecoder::new(gzipped)
        .take(MAX_RESULTS_BYTES + 1)
        .read_to_end(&mut tar)
        .map_err(|e| fail(format!("not a gzipped tar: {e}")))?;
    if tar.len() as u64 > MAX_RESULTS_BYTES {
        return Err(fail(format!(
            "they unpack to more than {MAX_RESULTS_BYTES} bytes"
        )));
    }
    let places: HashMap<String, PathBuf> = result_paths(job)
        .into_iter()
        .map(|(name, _, place)| (name, outputs_dir.join(place)))
        .collect();
    let (mut stdout, mut stderr, mut exit_code) = (Vec::new(), Vec::new(), None);
    let mut outputs_bytes = 0u64;
    let limits = crate::results::Limits {
        max_bytes: MAX_RESULTS_BYTES,
        ..Default::default()
    };
    let walked = crate::results::walk(&tar, limits, |path, data| {
        let mut parts = path.components();
        let first = parts
            .next()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .unwrap_or_default();
        let rest = parts.as_path();
        match (first.as_str(), data) {
            ("stdout", Some(data)) => stdout = capped(data),
            ("stderr", Some(data)) => stderr = capped(data),
            ("exitCode", Some(data)) => {
                exit_code = String::from_utf8_lossy(data).trim().parse::<i64>().ok()
            }
            (name, data) => {
                // Anything else is a result path's contents; what is not ours is dropped.
                if let Some(place) = places.get(name) {
                    outputs_bytes += data.map_or(0, |d| d.len() as u64);
                    if outputs_bytes > super::docker::MAX_OUTPUTS_BYTES {
                        return Err(crate::results::TarError::TooLarge(
                            super::docker::MAX_OUTPUTS_BYTES,
                        ));
                    }
                    let destination = place.join(rest);
                    match data {
                        None => std::fs::create_dir_all(&destination)?,
                        Some(data) => {
                            if let Some(parent) = destination.parent() {
                                std::fs::create_dir_all(parent)?;
                            }
                            std::fs::write(&destination, data)?;
                        }
                    }
                }
            }
        }
        Ok(())
    });
    match walked {
        Ok(()) => {}
        // Too much output is the job's doing, as on Docker: stopped there, dropped here.
        Err(crate::results::TarError::TooLarge(_)) => {
            super::docker::empty_dir(outputs_dir);
            return Err(ExecutorError::OutputsTooLarge(
                super::docker::MAX_OUTPUTS_BYTES,
            ));
        }
        Err(error) => return Err(fail(error.to_string())),
    }
    let exit_code = exit_code.ok_or_else(|| fail("they have no exitCode".into()))?;
    Ok(RunOutput {
        stdout,
        stderr,
        exit_code,
    })
}

fn capped(data: &[u8]) -> Vec<u8> {
    data[..data.len().min(super::docker::MAX_LOG_BYTES)].to_vec()
}

impl Executor for BacalhauExecutor {
    async fn reachable(&self) -> Result<(), String> {
        self.get::<Version>("/api/v1/agent/version")
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    async fn run(
        &self,
        job: &JobSpec,
        outputs_dir: &Path,
        gpus: u64,
    ) -> Result<RunOutput, ExecutorError> {
        if !job.inputs.is_empty() && !self.fetches_ipfs_inputs() {
            return Err(ExecutorError::Engine {
                what: "fetch the job's IPFS inputs on Bacalhau".into(),
                message: "no compute node can read IPFS (start them with -c InputSources.Types.IPFS.Endpoint=<kubo's API multiaddr>)".into(),
            });
        }
        super::create_dir(outputs_dir)?;
        let name = format!("lilypad-{}", crate::data::offers::new_nonce());
        let request = job_request(job, &name, gpus, job.network && self.allow_network);
        let job_id = self.submit(&request).await?;
        tracing::info!(bacalhau_job = %job_id, image = %job.image, "job submitted to Bacalhau");
        // Stops the job on Bacalhau if this future is dropped before it ends.
        let mut guard = StopGuard {
            http: self.http.clone(),
            api: self.api.clone(),
            job_id: Some(job_id.clone()),
        };
        let waited = self.wait(&job_id, job.timeout_secs).await;
        if waited.is_ok() {
            guard.job_id = None;
        }
        waited?;
        let gzipped = self.download(&job_id).await?;
        read_results(job, &gzipped, outputs_dir)
    }

    fn fetches_ipfs_inputs(&self) -> bool {
        self.nodes.iter().any(|node| {
            node.storage_sources
                .iter()
                .any(|s| s.eq_ignore_ascii_case("ipfs"))
        })
    }

    fn gpus(&self) -> Option<Result<Vec<Gpu>, super::gpus::GpuError>> {
        // A job's GPUs all come from one node: the node with the most is what a slot can use.
        let node = self
            .nodes
            .iter()
            .max_by_key(|node| node.capacity.gpus.len())?;
        Some(Ok(node
            .capacity
            .gpus
            .iter()
            .map(|gpu| Gpu {
                index: gpu.index as u32,
                uuid: if gpu.pci_address.is_empty() {
                    format!("{}/{}", node.id, gpu.index)
                } else {
                    gpu.pci_address.clone()
                },
                name: gpu.name.clone(),
                memory_mib: gpu.memory,
            })
            .collect()))
    }
}

/// Stops a Bacalhau job when dropped while still armed (`job_id` set).
struct StopGuard {
    http: reqwest::Client,
    api: String,
    job_id: Option<String>,
}

impl Drop for StopGuard {
    fn drop(&mut self) {
        let (Some(job_id), Ok(runtime)) =
            (self.job_id.take(), tokio::runtime::Handle::try_current())
        else {
            return;
        };
        let (http, url) = (
            self.http.clone(),
            format!("{}/api/v1/orchestrator/jobs/{job_id}", self.api),
        );
        runtime.spawn(async move {
            let stopped = http
                .delete(&url)
                .json(&json!({"Reason": "lilypad: the deal no longer needs this job"}))
                .send()
                .await
                .and_then(|r| r.error_for_status());
            match stopped {
                Ok(_) => tracing::info!(bacalhau_job = %job_id, "Bacalhau job stopped"),
                Err(error) => {
                    tracing::warn!(bacalhau_job = %job_id, %error, "could not stop a Bacalhau job")
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> JobSpec {
        JobSpec {
            module: "cowsay:v0.0.1".into(),
            image: "lilypad/cowsay:v0.0.1".into(),
            entrypoint: vec!["/usr/bin/cowsay".into(), "moo".into()],
            env: vec!["A=1".into()],
            outputs: vec!["/outputs".into(), "/data/extra/".into()],
            timeout_secs: 30,
            machine: MachineSpec {
                cpu: 1500,
                ram: 512,
                gpu: 0,
                vram: 0,
                disk: 100,
            },
            ..JobSpec::default()
        }
    }

    #[test]
    fn the_job_carries_the_slot_as_resources_and_no_network_unless_allowed() {
        let request = job_request(&spec(), "lilypad-1", 2, false);
        let task = &request["Job"]["Tasks"][0];
        assert_eq!(request["Job"]["Name"], "lilypad-1");
        assert_eq!(task["Engine"]["Params"]["Image"], "lilypad/cowsay:v0.0.1");
        assert_eq!(
            task["Engine"]["Params"]["Entrypoint"],
            json!(["/usr/bin/cowsay", "moo"])
        );
        assert_eq!(
            task["Engine"]["Params"]["EnvironmentVariables"],
            json!(["A=1"])
        );
        assert_eq!(
            task["Resources"],
            json!({"CPU": "1500m", "Memory": "512MiB", "Disk": "100MiB", "GPU": "2"})
        );
        assert_eq!(task["Network"]["Type"], "None");
        assert_eq!(
            task["ResultPaths"],
            json!([{"Name": "outputs", "Path": "/outputs"}, {"Name": "output-1", "Path": "/data/extra/"}])
        );
        assert_eq!(task["Timeouts"]["ExecutionTimeout"], 30);
        assert_eq!(task["InputSources"], json!([]));
        let mut reading = spec();
        reading.inputs = vec![crate::module::Input {
            cid: "QmPZ9gcCEpqKTo6aq61g2nXGUhM4iCL3ewB6LDXZCtioEB".into(),
            path: "/inputs".into(),
        }];
        assert_eq!(
            job_request(&reading, "lilypad-3", 0, false)["Job"]["Tasks"][0]["InputSources"],
            json!([{"Source": {"Type": "ipfs", "Params": {"CID": "QmPZ9gcCEpqKTo6aq61g2nXGUhM4iCL3ewB6LDXZCtioEB"}}, "Target": "/inputs"}])
        );
        let networked = job_request(&spec(), "lilypad-2", 0, true);
        assert_eq!(networked["Job"]["Tasks"][0]["Network"]["Type"], "Bridge");
        assert!(networked["Job"]["Tasks"][0]["Resources"]
            .get("GPU")
            .is_none());
    }

    /// A gzipped tar of `entries` (None: a directory), names written as given, `..` included.
    fn gzipped_tar(entries: &[(&str, Option<&[u8]>)]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (path, data) in entries {
            let mut header = tar::Header::new_old();
            header.as_old_mut().name[..path.len()].copy_from_slice(path.as_bytes());
            header.set_mode(0o644);
            let data = data.unwrap_or_else(|| {
                header.set_entry_type(tar::EntryType::Directory);
                b""
            });
            header.set_size(data.len() as u64);
            header.set_cksum();
            builder.append(&header, data).unwrap();
        }
        let tar = builder.into_inner().unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &tar).unwrap();
        gz.finish().unwrap()
    }

    #[test]
    fn published_results_are_read_as_the_docker_executor_leaves_them() {
        let dir = tempfile::tempdir().unwrap();
        let outputs = dir.path().join("outputs");
        let gz = gzipped_tar(&[
            (".", None),
            ("exitCode", Some(b"3")),
            ("stdout", Some(b"out\n")),
            ("stderr", Some(b"err\n")),
            ("outputs", None),
            ("outputs/cow.txt", Some(b"moo")),
            ("output-1/deep/x", Some(b"extra")),
            ("stranger/y", Some(b"not a result path")),
        ]);
        let output = read_results(&spec(), &gz, &outputs).unwrap();
        assert_eq!(output.exit_code, 3);
        assert_eq!(output.stdout, b"out\n");
        assert_eq!(output.stderr, b"err\n");
        assert_eq!(std::fs::read(outputs.join("cow.txt")).unwrap(), b"moo");
        assert_eq!(
            std::fs::read(outputs.join("extra/deep/x")).unwrap(),
            b"extra"
        );
        assert!(!dir.path().join("stranger").exists() && !outputs.join("stranger").exists());

        let escaping = gzipped_tar(&[("exitCode", Some(b"0")), ("outputs/../../x", Some(b"x"))]);
        assert!(read_results(&spec(), &escaping, &outputs).is_err());
        let no_exit_code = gzipped_tar(&[("stdout", Some(b"x"))]);
        assert!(read_results(&spec(), &no_exit_code, &outputs).is_err());
        assert!(read_results(&spec(), b"not gzip", &outputs).is_err());
    }

    /// An executor that saw these nodes (as `/api/v1/orchestrator/nodes` lists them).
    fn seeing(nodes: serde_json::Value) -> BacalhauExecutor {
        let nodes: Nodes = serde_json::from_value(nodes).unwrap();
        BacalhauExecutor {
            http: reqwest::Client::new(),
            api: DEFAULT_API.into(),
            allow_network: false,
            version: "v1.9.3".into(),
            nodes: nodes
                .nodes
                .into_iter()
                .map(|node| {
                    let compute = node.info.compute_node_info.unwrap();
                    ComputeNode {
                        id: node.info.node_id,
                        capacity: compute.max_capacity,
                        storage_sources: compute.storage_sources,
                    }
                })
                .collect(),
        }
    }

    #[test]
    fn the_offer_is_checked_against_the_largest_node_and_its_gpus() {
        let gpu = |index: u64, memory: u64| {
            json!({"Index": index, "Name": "NVIDIA H100", "Vendor": "NVIDIA", "Memory": memory,
                   "PCIAddress": format!("0000:0{index}:00.0")})
        };
        let executor = seeing(json!({"Nodes": [
            {"Info": {"NodeID": "n-small", "NodeType": "Compute", "ComputeNodeInfo": {
                "ExecutionEngines": ["docker"], "StorageSources": ["urldownload"],
                "MaxCapacity": {"CPU": 1.6, "Memory": 4294967296u64, "Disk": 10737418240u64}}},
             "Connection": "CONNECTED"},
            {"Info": {"NodeID": "n-gpu", "NodeType": "Compute", "ComputeNodeInfo": {
                "ExecutionEngines": ["docker"], "StorageSources": ["ipfs"],
                "MaxCapacity": {"CPU": 8.0, "Memory": 68719476736u64, "Disk": 107374182400u64,
                                "GPU": 2, "GPUs": [gpu(0, 81559), gpu(1, 81559)]}}},
             "Connection": "CONNECTED"}
        ]}));
        let slot = |cpu, ram, gpu| MachineSpec {
            cpu,
            ram,
            gpu,
            vram: 0,
            disk: 1024,
        };
        assert!(executor.check_capacity(&slot(1600, 4096, 0)).is_ok());
        assert!(executor.check_capacity(&slot(8000, 65536, 2)).is_ok());
        let error = executor
            .check_capacity(&slot(8000, 65536, 3))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("no compute node is that large") && error.contains("n-gpu: 8000 m CPU"),
            "{error}"
        );
        // The GPUs a slot can use are the largest node's; an offer is checked against them.
        let gpus = executor.gpus().unwrap().unwrap();
        assert_eq!(gpus.len(), 2);
        assert_eq!((gpus[1].index, gpus[1].memory_mib), (1, 81559));
        assert_eq!(gpus[1].uuid, "0000:01:00.0");
        let offer = slot(4000, 8192, 1);
        let fitted = crate::executor::gpus::offer_on_host(&offer, 2, Some(&Ok(gpus.clone())))
            .expect("two slots of one GPU fit on two cards");
        assert_eq!(fitted.vram, 81559);
        assert!(crate::executor::gpus::offer_on_host(&offer, 3, Some(&Ok(gpus))).is_err());
        assert!(executor.fetches_ipfs_inputs(), "n-gpu reads IPFS");
    }

    #[test]
    fn versions_and_addresses() {
        assert!(supported("1", "9"));
        assert!(supported("1", "5"));
        assert!(!supported("1", "4"));
        assert!(!supported("2", "0"));
        assert!(!supported("", "9"));
        assert_eq!(api_url("127.0.0.1:1234"), "http://127.0.0.1:1234");
        assert_eq!(api_url("https://b.example/"), "https://b.example");
    }
}
