//! Reading the job a rendered module describes, as Lilypad's Go node reads it: keys match
//! case-insensitively (Go's JSON decoding), the Docker part may be `Spec.Docker` or the
//! newer `Spec.EngineSpec` (`Type` + `Params`), `"Entrypoint": null` means the image's own,
//! `Resources` (CPU, Memory, Disk, GPU) are read, IPFS `Inputs` (`StorageSource` IPFS, a `CID`
//! and a `Path`) are read, and what we cannot honour (another engine, URL or other `Inputs`)
//! is refused with a clear error rather than dropped.

use serde::Deserialize;
use serde_json::Value;

use super::{Input, JobSpec, ModuleError, Resources};
use crate::data::MachineSpec;

/// Default job timeout when a module names none (seconds).
const DEFAULT_TIMEOUT_SECS: u64 = 600;

/// The rendered `lilypad_module.json.tmpl`, keys lower-cased.
#[derive(Deserialize)]
struct Rendered {
    #[serde(default)]
    machine: Machine,
    job: Job,
    #[serde(default)]
    mediation: Option<Mediation>,
}

#[derive(Deserialize, Default)]
struct Machine {
    #[serde(default)]
    gpu: u64,
    #[serde(default)]
    vram: u64,
    #[serde(default)]
    disk: u64,
    #[serde(default)]
    cpu: u64,
    #[serde(default)]
    ram: u64,
}

#[derive(Deserialize)]
struct Mediation {
    #[serde(default)]
    compare: Vec<String>,
}

#[derive(Deserialize)]
struct Job {
    spec: Spec,
}

#[derive(Deserialize)]
struct Spec {
    #[serde(default)]
    engine: Option<String>,
    #[serde(default)]
    docker: Option<Docker>,
    #[serde(default)]
    enginespec: Option<EngineSpec>,
    #[serde(default)]
    network: Option<Network>,
    #[serde(default)]
    timeout: Option<u64>,
    #[serde(default)]
    outputs: Option<Vec<Output>>,
    #[serde(default)]
    inputs: Option<Vec<RenderedInput>>,
    #[serde(default)]
    resources: Option<RenderedResources>,
}

#[derive(Deserialize, Default)]
struct Docker {
    #[serde(default)]
    image: Option<String>,
    #[serde(default)]
    entrypoint: Option<Vec<String>>,
    #[serde(default)]
    environmentvariables: Option<Vec<String>>,
    #[serde(default)]
    workingdirectory: Option<String>,
}

#[derive(Deserialize)]
struct EngineSpec {
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    params: Option<Docker>,
}

#[derive(Deserialize)]
struct Network {
    #[serde(default, rename = "type")]
    kind: Option<String>,
}

#[derive(Deserialize)]
struct Output {
    #[serde(default)]
    path: Option<String>,
}

#[derive(Deserialize)]
struct RenderedInput {
    #[serde(default)]
    storagesource: Option<String>,
    #[serde(default)]
    cid: Option<String>,
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    url: Option<String>,
}

#[derive(Deserialize)]
struct RenderedResources {
    #[serde(default)]
    cpu: Option<String>,
    #[serde(default)]
    memory: Option<String>,
    #[serde(default)]
    disk: Option<String>,
    #[serde(default)]
    gpu: Option<String>,
}

/// Every object key lower-cased, so structs match keys whatever their case (when two keys
/// differ only in case, the later one wins).
fn lower_keys(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(key, value)| (key.to_lowercase(), lower_keys(value)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(lower_keys).collect()),
        other => other,
    }
}

/// Reads the job `text` (a rendered template) describes.
pub(super) fn read(module: &str, text: &str) -> Result<JobSpec, serde_json::Error> {
    let value: Value = serde_json::from_str(text)?;
    let rendered: Rendered = serde_json::from_value(lower_keys(value))?;
    Ok(to_job(module, rendered))
}

/// Checks what the job asks for against what we can honour.
pub(super) fn check(spec: &JobSpec) -> Result<(), ModuleError> {
    let unsupported = |message: String| ModuleError::Unsupported {
        module: spec.module.clone(),
        message,
    };
    if !spec.engine.eq_ignore_ascii_case("docker") {
        return Err(unsupported(format!(
            "engine {:?} is not supported; only Docker",
            spec.engine
        )));
    }
    if spec.image.trim().is_empty() {
        return Err(unsupported("the spec names no Docker image".into()));
    }
    if let Some(kind) = &spec.unsupported_network {
        return Err(unsupported(format!(
            "network type {kind:?} is not supported (None, HTTP or Full)"
        )));
    }
    if let Some(input) = spec.unsupported_inputs.first() {
        return Err(unsupported(format!(
            "input {input} cannot be fetched: only IPFS inputs (StorageSource IPFS, a CID and a Path) are, so the job is refused rather than run without it"
        )));
    }
    let mut mounted = std::collections::HashSet::new();
    for input in &spec.inputs {
        if input.cid.parse::<cid::Cid>().is_err() {
            return Err(unsupported(format!(
                "input CID {:?} is not a CID",
                input.cid
            )));
        }
        if !plain_absolute(&input.path) || input.path == "/" {
            return Err(unsupported(format!(
                "input path {:?} must be absolute and plain",
                input.path
            )));
        }
        if !mounted.insert(input.path.trim_end_matches('/')) {
            return Err(unsupported(format!(
                "two inputs are mounted at {:?}",
                input.path
            )));
        }
        if spec
            .outputs
            .iter()
            .any(|output| output.trim_end_matches('/') == input.path.trim_end_matches('/'))
        {
            return Err(unsupported(format!(
                "input path {:?} is also an output path",
                input.path
            )));
        }
    }
    if let Some(bad) = spec.outputs.iter().find(|p| !plain_absolute(p)) {
        return Err(unsupported(format!(
            "output path {bad:?} must be absolute and plain"
        )));
    }
    if let Some(bad) = spec.compare.iter().find(|p| !comparable(p)) {
        return Err(unsupported(format!(
            "mediation compares {bad:?}: name stdout, stderr, exitCode or a path under outputs/"
        )));
    }
    Ok(())
}

fn to_job(module: &str, rendered: Rendered) -> JobSpec {
    let spec = rendered.job.spec;
    // The EngineSpec form, when present, is what newer modules use (their Docker part is {}).
    let (engine, docker) = match spec.enginespec {
        Some(engine_spec) if engine_spec.kind.is_some() || engine_spec.params.is_some() => (
            engine_spec.kind.unwrap_or_else(|| "docker".into()),
            engine_spec.params.unwrap_or_default(),
        ),
        _ => (
            spec.engine.unwrap_or_else(|| "Docker".into()),
            spec.docker.unwrap_or_default(),
        ),
    };
    let (inputs, unsupported_inputs) = read_inputs(spec.inputs.unwrap_or_default());
    let network_kind = spec.network.and_then(|n| n.kind).unwrap_or_default();
    let (network, unsupported_network) = match network_kind.to_ascii_lowercase().as_str() {
        "" | "none" => (false, None),
        "full" | "http" => (true, None),
        _ => (false, Some(network_kind)),
    };
    let mut outputs: Vec<String> = spec
        .outputs
        .unwrap_or_default()
        .into_iter()
        .filter_map(|o| o.path)
        .filter(|p| !p.is_empty())
        .collect();
    if outputs.is_empty() {
        outputs.push("/outputs".into());
    }
    let resources = spec
        .resources
        .map(|r| Resources {
            cpu: r.cpu.filter(|s| !s.is_empty()),
            memory: r.memory.filter(|s| !s.is_empty()),
            disk: r.disk.filter(|s| !s.is_empty()),
            gpu: r.gpu.filter(|s| !s.is_empty()),
        })
        .unwrap_or_default();
    JobSpec {
        module: module.to_string(),
        machine: MachineSpec {
            cpu: rendered.machine.cpu,
            ram: rendered.machine.ram,
            gpu: rendered.machine.gpu,
            vram: rendered.machine.vram,
            disk: rendered.machine.disk,
        },
        engine,
        image: docker.image.unwrap_or_default(),
        entrypoint: docker.entrypoint.unwrap_or_default(),
        env: docker.environmentvariables.unwrap_or_default(),
        working_dir: docker.workingdirectory.filter(|d| !d.is_empty()),
        network,
        unsupported_network,
        timeout_secs: spec
            .timeout
            .filter(|t| *t > 0)
            .unwrap_or(DEFAULT_TIMEOUT_SECS),
        outputs,
        inputs,
        unsupported_inputs,
        resources,
        compare: rendered.mediation.map(|m| m.compare).unwrap_or_default(),
    }
}

/// An absolute path without `..`.
fn plain_absolute(path: &str) -> bool {
    path.starts_with('/') && !path.split('/').any(|part| part == "..")
}

/// Reads a job's `Inputs`: those from IPFS, and a description of each other one.
fn read_inputs(rendered: Vec<RenderedInput>) -> (Vec<Input>, Vec<String>) {
    let (mut inputs, mut unsupported) = (Vec::new(), Vec::new());
    for input in rendered {
        let source = input.storagesource.unwrap_or_default();
        match (source.to_ascii_lowercase().as_str(), input.cid) {
            ("ipfs", Some(cid)) => inputs.push(Input {
                cid,
                path: input.path.unwrap_or_else(|| "/inputs".into()),
            }),
            _ => unsupported.push(format!(
                "{:?} from {}",
                input.path.unwrap_or_default(),
                match input.url {
                    Some(url) => format!("{source} {url}"),
                    None if source.is_empty() => "no StorageSource".into(),
                    None => format!("{source} without a CID"),
                }
            )),
        }
    }
    (inputs, unsupported)
}

/// Whether a mediation `compare` entry names a part of the results directory.
fn comparable(path: &str) -> bool {
    let plain =
        !path.starts_with('/') && path.split('/').all(|part| !matches!(part, "" | "." | ".."));
    plain
        && (matches!(path, "stdout" | "stderr" | "exitCode" | "outputs")
            || path.starts_with("outputs/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(text: &str) -> Result<JobSpec, ModuleError> {
        let spec = read("m", text).map_err(|e| ModuleError::Spec {
            module: "m".into(),
            message: e.to_string(),
        })?;
        check(&spec)?;
        Ok(spec)
    }

    #[test]
    fn the_engine_spec_form_with_a_null_entrypoint_and_resources_is_read() {
        let spec = job(r#"{
            "machine": {"gpu": 1, "cpu": 1000, "ram": 8000},
            "job": {"APIVersion": "V1beta1", "Spec": {
                "Docker": {},
                "EngineSpec": {"Params": {"Entrypoint": null, "EnvironmentVariables": ["A=1"],
                    "Image": "zorlin/sdxl:v1", "WorkingDirectory": ""}, "Type": "docker"},
                "Network": {"Type": "None"},
                "Outputs": [{"Name": "outputs", "Path": "/outputs"}],
                "Resources": {"GPU": "1", "Memory": "8gb"},
                "Timeout": 1800}}}"#)
        .unwrap();
        assert_eq!(spec.image, "zorlin/sdxl:v1");
        assert!(
            spec.entrypoint.is_empty(),
            "null: the image's own entrypoint"
        );
        assert_eq!(spec.env, vec!["A=1"]);
        assert_eq!(spec.working_dir, None);
        assert_eq!(spec.timeout_secs, 1800);
        assert_eq!(spec.resources.gpu.as_deref(), Some("1"));
        assert_eq!(spec.resources.memory.as_deref(), Some("8gb"));
        assert_eq!(spec.machine.gpu, 1);
    }

    #[test]
    fn keys_match_whatever_their_case() {
        let spec = job(
            r#"{"MACHINE": {"CPU": 500, "Gpu": 1, "VRAM": 24000}, "Job": {"spec": {"docker": {
            "image": "x", "ENTRYPOINT": ["a"], "environmentVariables": ["B=2"]},
            "network": {"type": "full"}, "TIMEOUT": 5}}}"#,
        )
        .unwrap();
        assert_eq!(spec.machine.cpu, 500);
        assert_eq!((spec.machine.gpu, spec.machine.vram), (1, 24000));
        assert_eq!(spec.image, "x");
        assert_eq!(spec.entrypoint, vec!["a"]);
        assert_eq!(spec.env, vec!["B=2"]);
        assert!(spec.network);
        assert_eq!(spec.timeout_secs, 5);
    }

    #[test]
    fn what_we_cannot_honour_is_refused_by_name() {
        let with_inputs = |inputs: &str| {
            job(&format!(
                r#"{{"machine": {{}}, "job": {{"Spec": {{"Docker": {{"Image": "x"}},
                "Outputs": [{{"Name": "outputs", "Path": "/outputs"}}], "Inputs": {inputs}}}}}}}"#
            ))
        };
        let cid = "QmPZ9gcCEpqKTo6aq61g2nXGUhM4iCL3ewB6LDXZCtioEB";
        let read = with_inputs(&format!(
            r#"[{{"storageSource": "ipfs", "cid": "{cid}", "path": "/inputs/data"}}]"#
        ))
        .unwrap();
        assert_eq!(
            read.inputs,
            vec![Input {
                cid: cid.into(),
                path: "/inputs/data".into()
            }]
        );
        for (inputs, error) in [
            (
                r#"[{"StorageSource": "URLDownload", "URL": "https://x.example/a", "Path": "/a"}]"#,
                "\"/a\" from URLDownload https://x.example/a cannot be fetched",
            ),
            (
                r#"[{"StorageSource": "IPFS", "CID": "Qm", "Path": "/inputs"}]"#,
                "\"Qm\" is not a CID",
            ),
            (
                &format!(r#"[{{"StorageSource": "IPFS", "CID": "{cid}", "Path": "../x"}}]"#),
                "must be absolute and plain",
            ),
            (
                &format!(
                    r#"[{{"StorageSource": "IPFS", "CID": "{cid}", "Path": "/a"}},
                        {{"StorageSource": "IPFS", "CID": "{cid}", "Path": "/a/"}}]"#
                ),
                "two inputs are mounted at",
            ),
            (
                &format!(r#"[{{"StorageSource": "IPFS", "CID": "{cid}", "Path": "/outputs"}}]"#),
                "is also an output path",
            ),
        ] {
            let message = with_inputs(inputs).unwrap_err().to_string();
            assert!(message.contains(error), "{message}");
        }
        let wasm = job(
            r#"{"machine": {}, "job": {"Spec": {"EngineSpec": {"Type": "wasm",
            "Params": {}}}}}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(wasm.contains("\"wasm\" is not supported"), "{wasm}");
        let network = job(
            r#"{"machine": {}, "job": {"Spec": {"Docker": {"Image": "x"},
            "Network": {"Type": "Mesh"}}}}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(network.contains("\"Mesh\""), "{network}");
    }
}
