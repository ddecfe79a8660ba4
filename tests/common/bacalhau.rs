//! A real Bacalhau node for a test (orchestrator and compute in one process, on the local
//! Docker engine, built by `make tools`), and a real image registry (Debian's
//! `docker-registry`): Bacalhau runs a local image only once it has a registry digest, so
//! the tests push the images they use to a registry of their own first.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A port nothing listens on right now (the OS's pick, released at once).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_until(what: &str, limit: Duration, mut ready: impl FnMut() -> bool) {
    let started = Instant::now();
    while !ready() {
        assert!(started.elapsed() < limit, "{what} within {limit:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn http_ok(url: &str) -> bool {
    Command::new("curl")
        .args(["-sf", "-o", "/dev/null", "--max-time", "2", url])
        .status()
        .is_ok_and(|s| s.success())
}

/// `docker ARGS`, asserting success; returns stdout.
pub fn docker(args: &[&str]) -> String {
    let output = Command::new("docker")
        .args(args)
        .output()
        .expect("docker runs");
    assert!(
        output.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

/// A registry on 127.0.0.1 (which the engine trusts without TLS), storing under a temp dir.
pub struct Registry {
    pub address: String,
    /// The tags pushed here; removed on drop (an image keeps its registry digest only while
    /// a tag of that registry names it).
    pushed: Vec<String>,
    child: std::process::Child,
}

impl Registry {
    pub fn start(dir: &Path) -> Registry {
        std::fs::create_dir_all(dir).unwrap();
        let address = format!("127.0.0.1:{}", free_port());
        let config = dir.join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {address}\n",
                dir.join("data").display()
            ),
        )
        .unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("docker-registry (Debian package docker-registry; .ci/run installs it)");
        let registry = Registry {
            address,
            pushed: Vec::new(),
            child,
        };
        let url = format!("http://{}/v2/", registry.address);
        wait_until("the registry answers", Duration::from_secs(30), || {
            http_ok(&url)
        });
        registry
    }

    /// Pushes the local `image` here, which gives it a registry digest, so Bacalhau runs
    /// it as it is (by its own name: no pull).
    pub fn push(&mut self, image: &str) {
        let remote = format!("{}/{image}", self.address);
        docker(&["tag", image, &remote]);
        docker(&["push", &remote]);
        self.pushed.push(remote);
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        for tag in &self.pushed {
            let _ = Command::new("docker").args(["rmi", tag]).output();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn bacalhau_binary() -> PathBuf {
    lilypad::tools::find_tool("bacalhau", None).expect("bacalhau (make tools)")
}

/// One Bacalhau node: orchestrator and compute, loopback only, its own ports and data dir.
pub struct Bacalhau {
    /// The API, as BACALHAU_API_HOST takes it.
    pub api: String,
    dir: PathBuf,
    ports: (u16, u16, u16),
    cpu: String,
    /// More `-c KEY=VALUE` settings.
    extra: Vec<String>,
    /// The compute node's id (its containers are labelled with it).
    node_id: String,
    child: Option<std::process::Child>,
}

impl Bacalhau {
    /// Starts a node allocating `cpu` (e.g. "2") to jobs.
    pub fn start(dir: &Path, cpu: &str) -> Bacalhau {
        Bacalhau::start_with(dir, cpu, &[])
    }

    /// The same, with more settings (`KEY=VALUE`, as `bacalhau serve -c` takes them).
    pub fn start_with(dir: &Path, cpu: &str, extra: &[&str]) -> Bacalhau {
        std::fs::create_dir_all(dir).unwrap();
        let mut node = Bacalhau {
            api: String::new(),
            dir: dir.to_path_buf(),
            ports: (free_port(), free_port(), free_port()),
            cpu: cpu.to_string(),
            extra: extra.iter().map(|s| s.to_string()).collect(),
            node_id: String::new(),
            child: None,
        };
        node.api = format!("http://127.0.0.1:{}", node.ports.0);
        node.restart();
        node
    }

    /// (Re)starts the node on the same ports and data dir, and waits until its compute
    /// node has joined.
    pub fn restart(&mut self) {
        let (api, nats, publisher) = self.ports;
        let settings = [
            "API.Host=127.0.0.1".to_string(),
            format!("API.Port={api}"),
            "Orchestrator.Host=127.0.0.1".into(),
            format!("Orchestrator.Port={nats}"),
            format!("Compute.Orchestrators=nats://127.0.0.1:{nats}"),
            "Publishers.Types.Local.Address=127.0.0.1".into(),
            format!("Publishers.Types.Local.Port={publisher}"),
            format!("Compute.AllocatedCapacity.CPU={}", self.cpu),
            "Compute.Heartbeat.Interval=1s".into(),
            "UpdateConfig.Interval=0".into(),
            "WebUI.Enabled=false".into(),
            "Logging.Level=warn".into(),
        ];
        let mut command = Command::new(bacalhau_binary());
        command
            .args(["serve", "--orchestrator", "--compute", "--data-dir"])
            .arg(self.dir.join("data"));
        for setting in settings.iter().chain(&self.extra) {
            command.args(["-c", setting]);
        }
        let log = std::fs::File::create(self.dir.join("bacalhau.log")).unwrap();
        let child = command
            .env("HOME", &self.dir)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("bacalhau serve starts");
        self.child = Some(child);
        let nodes = format!("{}/api/v1/orchestrator/nodes", self.api);
        wait_until(
            "Bacalhau's compute node joins",
            Duration::from_secs(60),
            || {
                let output = Command::new("curl")
                    .args(["-sf", "--max-time", "2", &nodes])
                    .output();
                output.is_ok_and(|o| {
                    let text = String::from_utf8_lossy(&o.stdout);
                    text.contains("\"Compute\"") && text.contains("\"CONNECTED\"")
                })
            },
        );
        let node = Command::new("curl")
            .args([
                "-sf",
                "--max-time",
                "5",
                &format!("{}/api/v1/agent/node", self.api),
            ])
            .output()
            .unwrap();
        let node: serde_json::Value = serde_json::from_slice(&node.stdout).unwrap();
        self.node_id = node["NodeID"].as_str().unwrap().to_string();
    }

    /// Removes the containers this node left behind (a killed node leaves its jobs' running).
    fn remove_containers(&self) {
        if self.node_id.is_empty() {
            return;
        }
        let listed = docker(&[
            "ps",
            "-a",
            "--filter",
            "label=bacalhau-executor",
            "--format",
            "{{.ID}} {{.Label \"bacalhau-executor\"}}",
        ]);
        for line in listed.lines() {
            if let Some((id, executor)) = line.split_once(' ') {
                if executor.contains(&self.node_id) {
                    let _ = Command::new("docker").args(["rm", "-f", id]).output();
                }
            }
        }
    }

    /// Kills the node at once (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The node's jobs, as (name, state).
    pub fn jobs(&self) -> Vec<(String, String)> {
        let output = Command::new("curl")
            .args([
                "-sf",
                "--max-time",
                "5",
                &format!("{}/api/v1/orchestrator/jobs?limit=100", self.api),
            ])
            .output()
            .unwrap();
        let list: serde_json::Value =
            serde_json::from_slice(&output.stdout).unwrap_or(serde_json::Value::Null);
        list["Items"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|job| {
                (
                    job["Name"].as_str().unwrap_or_default().to_string(),
                    job["State"]["StateType"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                )
            })
            .collect()
    }

    /// Waits (60 s at most) until the node's jobs, as (name, state), satisfy `done`.
    pub fn wait_for_jobs(&self, what: &str, done: impl Fn(&[(String, String)]) -> bool) {
        wait_until(what, Duration::from_secs(60), || done(&self.jobs()));
    }
}

impl Drop for Bacalhau {
    fn drop(&mut self) {
        self.kill();
        self.remove_containers();
    }
}

/// A test image with busybox (`sh`, `sleep`, ...) and nothing else, built once from the
/// host's static busybox (Debian package busybox-static).
pub fn busybox_image() -> &'static str {
    const IMAGE: &str = "lilypad-test/busybox:latest";
    let present = Command::new("docker")
        .args(["image", "inspect", IMAGE])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !present {
        let dir = tempfile::tempdir().unwrap();
        std::fs::copy("/bin/busybox", dir.path().join("busybox"))
            .expect("/bin/busybox (Debian package busybox-static)");
        std::fs::write(
            dir.path().join("Dockerfile"),
            "FROM scratch\nCOPY busybox /bin/busybox\nENTRYPOINT [\"/bin/busybox\"]\n",
        )
        .unwrap();
        docker(&["build", "-q", "-t", IMAGE, dir.path().to_str().unwrap()]);
    }
    IMAGE
}

/// A module in a local directory that runs `script` with busybox `sh` (its outputs in
/// /outputs), with the RP's slot as its machine; returns the directory (a module name).
pub fn shell_module(dir: &Path, script: &str, timeout_secs: u64) -> String {
    let template = serde_json::json!({
        "machine": {"gpu": 0, "cpu": 500, "ram": 64},
        "job": {"APIVersion": "V1beta1", "Spec": {
            "Docker": {
                "Entrypoint": ["/bin/busybox", "sh", "-c", script],
                "Image": busybox_image(),
            },
            "Engine": "Docker",
            "Network": {"Type": "None"},
            "Outputs": [{"Name": "outputs", "Path": "/outputs"}],
            "Timeout": timeout_secs,
        }}
    });
    super::module_dir(dir, &serde_json::to_string_pretty(&template).unwrap())
}
