//! A real kubo (`ipfs`) daemon for a test, built by `make tools`: its own repository in a
//! temporary directory (the `test` profile: loopback only, no bootstrap peers, ports the
//! daemon picks), killed when dropped.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

pub struct Kubo {
    pub repo: PathBuf,
    /// The RPC API as a multiaddr (`/ip4/127.0.0.1/tcp/PORT`): what IPFS_CONNECT takes.
    pub api: String,
    child: std::process::Child,
}

pub fn ipfs_binary() -> PathBuf {
    lilypad::tools::find_tool("ipfs", None).expect("kubo's ipfs (make tools)")
}

/// `ipfs ARGS` against `repo`, returning stdout; panics with stderr on failure.
pub fn ipfs(repo: &Path, args: &[&str]) -> String {
    let output = std::process::Command::new(ipfs_binary())
        .args(args)
        .env("IPFS_PATH", repo)
        .output()
        .expect("ipfs runs");
    assert!(
        output.status.success(),
        "ipfs {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

/// A fresh repository (no daemon): enough for `ipfs add --only-hash`.
pub fn init(repo: &Path) {
    ipfs(repo, &["init", "--profile", "test", "--empty-repo"]);
}

impl Kubo {
    pub fn start(repo: &Path) -> Kubo {
        init(repo);
        let child = std::process::Command::new(ipfs_binary())
            .args(["daemon", "--offline=false"])
            .env("IPFS_PATH", repo)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("ipfs daemon starts");
        // Owned at once, so a failed start below still kills it (Drop).
        let mut kubo = Kubo {
            repo: repo.to_path_buf(),
            api: String::new(),
            child,
        };
        let started = Instant::now();
        loop {
            if let Ok(api) = std::fs::read_to_string(repo.join("api")) {
                let api = api.trim().to_string();
                let answers = std::process::Command::new(ipfs_binary())
                    .args(["--api", &api, "id"])
                    .env("IPFS_PATH", repo)
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success());
                if answers {
                    kubo.api = api;
                    return kubo;
                }
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "kubo did not start within 60 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Runs `ipfs ARGS` against this daemon.
    pub fn run(&self, args: &[&str]) -> String {
        let mut all = vec!["--api", &self.api];
        all.extend_from_slice(args);
        ipfs(&self.repo, &all)
    }

    /// This node's swarm address with its peer id, for another node to connect to.
    pub fn swarm_address(&self) -> String {
        let id: serde_json::Value = serde_json::from_str(&self.run(&["id"])).unwrap();
        id["Addresses"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|a| a.as_str())
            .find(|a| a.starts_with("/ip4/127.0.0.1/tcp/"))
            .expect("a loopback TCP swarm address")
            .to_string()
    }

    pub fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Kubo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A module whose job reads two IPFS inputs that it adds to `kubo` (a file at
/// /inputs/greeting, a directory at /data), prints them, copies the file to its outputs and
/// writes to the directory (a per-run copy on both engines); returns (the module, in `dir`; the stdout it should print).
pub fn reader_module(kubo: &Kubo, dir: &Path) -> (String, &'static str) {
    std::fs::create_dir_all(dir).unwrap();
    let file = dir.join("greeting.txt");
    std::fs::write(&file, "hello from ipfs\n").unwrap();
    let file_cid = kubo.run(&["add", "-Q", file.to_str().unwrap()]);
    let tree = dir.join("tree");
    std::fs::create_dir_all(tree.join("sub")).unwrap();
    std::fs::write(tree.join("a.txt"), "A").unwrap();
    std::fs::write(tree.join("sub/b.txt"), "B").unwrap();
    let tree_cid = kubo.run(&["add", "-r", "-Q", tree.to_str().unwrap()]);
    let script = "cat /inputs/greeting; cat /data/a.txt /data/sub/b.txt; echo; \
                  cp /inputs/greeting /outputs/; touch /data/x && echo written";
    let module_dir = dir.join("module");
    let module = super::bacalhau::shell_module(&module_dir, script, 60);
    let template_path = module_dir.join("lilypad_module.json.tmpl");
    let mut template: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&template_path).unwrap()).unwrap();
    template["job"]["Spec"]["Inputs"] = serde_json::json!([
        {"StorageSource": "IPFS", "CID": file_cid, "Path": "/inputs/greeting"},
        {"StorageSource": "IPFS", "CID": tree_cid, "Path": "/data"},
    ]);
    std::fs::write(&template_path, template.to_string()).unwrap();
    (module, "hello from ipfs\nAB\nwritten\n")
}
