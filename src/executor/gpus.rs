//! NVIDIA GPUs on this host and who is using them. [`discover`] asks `nvidia-smi` (the
//! driver's own tool, so it sees what Docker's NVIDIA runtime will hand out) for each GPU's
//! index, UUID, name and memory. A [`GpuPool`] gives each running job GPUs of its own, named
//! by UUID, for as long as the job runs: two slots of one RP never share a card, which a
//! plain "any N GPUs" request to Docker would do (it hands every container the first N).
//! [`fit_offer`] checks what an RP offers against what the host has before it offers it.

use std::sync::Mutex;

use tokio::sync::Notify;

use crate::data::MachineSpec;

/// The program asked about GPUs; `NVIDIA_SMI` names another (a full path, say).
pub const NVIDIA_SMI: &str = "nvidia-smi";

/// One GPU as the driver reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gpu {
    pub index: u32,
    /// The driver's stable name for this card (`GPU-…`): what Docker's device requests take.
    pub uuid: String,
    pub name: String,
    /// Total memory, MiB.
    pub memory_mib: u64,
}

/// What the host's GPUs are, or why they could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GpuError {
    #[error("{0} is not installed (no NVIDIA driver on this host)")]
    NoDriver(String),
    #[error("{program} failed: {message}")]
    Failed { program: String, message: String },
    #[error("cannot read {program}'s answer: {message}")]
    Unreadable { program: String, message: String },
}

/// The program to ask: `NVIDIA_SMI` when set, else `nvidia-smi` on the PATH.
pub fn nvidia_smi() -> String {
    std::env::var("NVIDIA_SMI")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| NVIDIA_SMI.to_string())
}

/// The GPUs `nvidia-smi` reports (none is an answer too: a driver with no card).
pub async fn discover() -> Result<Vec<Gpu>, GpuError> {
    let program = nvidia_smi();
    let output = tokio::process::Command::new(&program)
        .args([
            "--query-gpu=index,uuid,name,memory.total",
            "--format=csv,noheader,nounits",
        ])
        .kill_on_drop(true)
        .output();
    let output = match tokio::time::timeout(std::time::Duration::from_secs(30), output).await {
        Err(_) => {
            return Err(GpuError::Failed {
                program,
                message: "no answer within 30 s".into(),
            })
        }
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(GpuError::NoDriver(program))
        }
        Ok(Err(e)) => {
            return Err(GpuError::Failed {
                program,
                message: e.to_string(),
            })
        }
        Ok(Ok(output)) => output,
    };
    if !output.status.success() {
        let text = String::from_utf8_lossy(if output.stderr.is_empty() {
            &output.stdout
        } else {
            &output.stderr
        });
        return Err(GpuError::Failed {
            program,
            message: format!("{} ({})", text.trim(), output.status),
        });
    }
    parse_query(&String::from_utf8_lossy(&output.stdout))
        .map_err(|message| GpuError::Unreadable { program, message })
}

/// Reads `nvidia-smi --query-gpu=index,uuid,name,memory.total --format=csv,noheader,nounits`.
pub fn parse_query(text: &str) -> Result<Vec<Gpu>, String> {
    let mut gpus = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        // The name may itself hold commas: it is everything between the UUID and the memory.
        let [index, uuid, name @ .., memory] = fields.as_slice() else {
            return Err(format!(
                "{line:?} does not have index, uuid, name and memory"
            ));
        };
        if name.is_empty() {
            return Err(format!(
                "{line:?} does not have index, uuid, name and memory"
            ));
        }
        let index = index
            .parse()
            .map_err(|_| format!("{index:?} is not a GPU index (in {line:?})"))?;
        let memory_mib = memory
            .parse()
            .map_err(|_| format!("{memory:?} is not a memory size in MiB (in {line:?})"))?;
        if !uuid.starts_with("GPU-") && !uuid.starts_with("MIG-") {
            return Err(format!("{uuid:?} is not a GPU UUID (in {line:?})"));
        }
        gpus.push(Gpu {
            index,
            uuid: uuid.to_string(),
            name: name.join(","),
            memory_mib,
        });
    }
    Ok(gpus)
}

/// Checks what an RP offers per slot against the host's GPUs and fills in what it can read:
/// `slots` slots of `spec.gpu` GPUs each must fit on distinct cards, and the memory per GPU
/// offered (`spec.vram`, 0: read it) is at most the smallest card's.
pub fn fit_offer(spec: &MachineSpec, slots: u32, gpus: &[Gpu]) -> Result<MachineSpec, String> {
    let mut spec = *spec;
    if spec.gpu == 0 {
        return Ok(spec);
    }
    let needed = spec.gpu.saturating_mul(u64::from(slots));
    if (gpus.len() as u64) < needed {
        return Err(format!(
            "{slots} slot(s) of {} GPU(s) need {needed} GPU(s); this host has {}{}",
            spec.gpu,
            gpus.len(),
            describe(gpus)
        ));
    }
    let smallest = gpus.iter().map(|g| g.memory_mib).min().unwrap_or(0);
    if spec.vram == 0 {
        spec.vram = smallest;
    } else if spec.vram > smallest {
        return Err(format!(
            "the offer promises {} MiB per GPU (OFFER_VRAM) but the smallest GPU here has {smallest} MiB{}",
            spec.vram,
            describe(gpus)
        ));
    }
    Ok(spec)
}

/// What each slot can offer on this host, given the GPUs the engine reported (`None`: it
/// places nothing on GPUs, so there is nothing to check): a CPU-only offer always can; a GPU
/// offer needs the driver's answer and must fit it ([`fit_offer`]).
pub fn offer_on_host(
    spec: &MachineSpec,
    slots: u32,
    found: Option<&Result<Vec<Gpu>, GpuError>>,
) -> Result<MachineSpec, String> {
    match found {
        _ if spec.gpu == 0 => Ok(*spec),
        None => Ok(*spec),
        Some(Err(error)) => Err(format!(
            "{} per slot offered (OFFER_GPU), but {error}",
            spec.gpu
        )),
        Some(Ok(gpus)) => fit_offer(spec, slots, gpus),
    }
}

/// `: 0 NVIDIA H200 (143771 MiB), 1 …` or nothing when there are none.
pub fn describe(gpus: &[Gpu]) -> String {
    if gpus.is_empty() {
        return String::new();
    }
    let list: Vec<String> = gpus
        .iter()
        .map(|g| format!("{} {} ({} MiB)", g.index, g.name, g.memory_mib))
        .collect();
    format!(": {}", list.join(", "))
}

/// The GPUs not in use, handed out whole to one job at a time.
#[derive(Debug, Default)]
pub struct GpuPool {
    all: Vec<Gpu>,
    free: Mutex<Vec<Gpu>>,
    returned: Notify,
}

impl GpuPool {
    pub fn new(gpus: Vec<Gpu>) -> GpuPool {
        GpuPool {
            free: Mutex::new(gpus.clone()),
            all: gpus,
            returned: Notify::new(),
        }
    }

    /// Every GPU of the host.
    pub fn gpus(&self) -> &[Gpu] {
        &self.all
    }

    /// `count` GPUs for one job, waiting while others hold them; lowest indices first.
    /// Fails at once when the host has fewer than `count` in all.
    pub async fn take(&self, count: u64) -> Result<GpuLease<'_>, String> {
        if count > self.all.len() as u64 {
            return Err(format!(
                "the job needs {count} GPU(s); this host has {}{}",
                self.all.len(),
                describe(&self.all)
            ));
        }
        loop {
            let returned = self.returned.notified();
            {
                let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
                if free.len() as u64 >= count {
                    free.sort_by_key(|g| g.index);
                    let taken = free.drain(..count as usize).collect();
                    return Ok(GpuLease {
                        pool: self,
                        gpus: taken,
                    });
                }
            }
            returned.await;
        }
    }
}

/// GPUs held by one job; they go back to the pool when the lease is dropped.
#[derive(Debug)]
pub struct GpuLease<'a> {
    pool: &'a GpuPool,
    gpus: Vec<Gpu>,
}

impl GpuLease<'_> {
    /// The UUIDs to hand the container.
    pub fn uuids(&self) -> Vec<String> {
        self.gpus.iter().map(|g| g.uuid.clone()).collect()
    }
}

impl Drop for GpuLease<'_> {
    fn drop(&mut self) {
        let mut free = self.pool.free.lock().unwrap_or_else(|e| e.into_inner());
        free.append(&mut self.gpus);
        drop(free);
        self.pool.returned.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gpu(index: u32, memory_mib: u64) -> Gpu {
        Gpu {
            index,
            uuid: format!("GPU-{index:08x}-0000-0000-0000-000000000000"),
            name: "NVIDIA H200".into(),
            memory_mib,
        }
    }

    #[test]
    fn reads_what_nvidia_smi_prints() {
        let text = "0, GPU-3b1f0c2e-9a4d-11ee-8c90-0242ac120002, NVIDIA H200, 143771\n\
                    1, GPU-77aa0c2e-9a4d-11ee-8c90-0242ac120002, NVIDIA GeForce RTX 4090, Founders, 24564\n";
        let gpus = parse_query(text).unwrap();
        assert_eq!(gpus.len(), 2);
        assert_eq!(
            gpus[0],
            Gpu {
                index: 0,
                uuid: "GPU-3b1f0c2e-9a4d-11ee-8c90-0242ac120002".into(),
                name: "NVIDIA H200".into(),
                memory_mib: 143771,
            }
        );
        assert_eq!(gpus[1].name, "NVIDIA GeForce RTX 4090,Founders");
        assert_eq!(gpus[1].memory_mib, 24564);
        assert_eq!(parse_query("\n").unwrap(), vec![]);
    }

    #[test]
    fn refuses_what_is_not_a_gpu_line() {
        for bad in [
            "0, GPU-1, 143771",
            "x, GPU-1, H200, 1",
            "0, GPU-1, H200, [N/A]",
            "0, 1234, H200, 80",
            "No devices were found",
        ] {
            assert!(parse_query(bad).is_err(), "{bad:?} was read");
        }
    }

    #[test]
    fn an_offer_must_fit_on_distinct_gpus() {
        let spec = MachineSpec {
            cpu: 1000,
            ram: 1024,
            gpu: 1,
            vram: 0,
            disk: 0,
        };
        let fitted = fit_offer(&spec, 2, &[gpu(0, 81559), gpu(1, 143771)]).unwrap();
        assert_eq!(fitted.vram, 81559, "the smallest card bounds the offer");
        let error = fit_offer(&spec, 3, &[gpu(0, 81559), gpu(1, 143771)]).unwrap_err();
        assert!(error.contains("need 3 GPU(s); this host has 2"), "{error}");
        let error = fit_offer(&spec, 1, &[]).unwrap_err();
        assert!(error.contains("this host has 0"), "{error}");
        let promised = MachineSpec {
            vram: 100_000,
            ..spec
        };
        let error = fit_offer(&promised, 1, &[gpu(0, 81559)]).unwrap_err();
        assert!(error.contains("smallest GPU here has 81559 MiB"), "{error}");
        let cpu_only = MachineSpec { gpu: 0, ..spec };
        assert_eq!(fit_offer(&cpu_only, 4, &[]).unwrap(), cpu_only);
    }

    #[tokio::test]
    async fn each_job_gets_its_own_gpus_until_it_returns_them() {
        let pool = GpuPool::new(vec![gpu(1, 80), gpu(0, 80), gpu(2, 80)]);
        let first = pool.take(2).await.unwrap();
        let second = pool.take(1).await.unwrap();
        assert_eq!(first.uuids(), vec![gpu(0, 80).uuid, gpu(1, 80).uuid]);
        assert_eq!(second.uuids(), vec![gpu(2, 80).uuid]);
        assert!(pool.take(4).await.unwrap_err().contains("needs 4 GPU(s)"));
        let waiting = tokio::time::timeout(std::time::Duration::from_millis(50), pool.take(1));
        assert!(waiting.await.is_err(), "every GPU is held");
        drop(first);
        let third = pool.take(2).await.unwrap();
        assert_eq!(third.uuids(), vec![gpu(0, 80).uuid, gpu(1, 80).uuid]);
    }
}
