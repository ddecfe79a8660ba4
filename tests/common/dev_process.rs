//! `lilypad dev` as a process of its own, as a person starts it: the network the web roles
//! and the API checks run against.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};

/// A `lilypad dev` process and what it printed about itself.
pub struct DevProcess {
    pub child: tokio::process::Child,
    pub network: lilypad::dev::NetworkFile,
    /// The URLs it printed by name (`faucet` …).
    pub urls: std::collections::HashMap<String, String>,
    /// The resource provider's address, as it printed it.
    pub resource_provider: ethers::types::Address,
    pub log: PathBuf,
}

impl DevProcess {
    /// Starts `lilypad dev` in `dir` with `env` (ports and such) and waits until it is up.
    pub async fn start(dir: &Path, env: &[(&str, String)]) -> DevProcess {
        DevProcess::start_with(dir, &[], env).await
    }

    /// Starts `lilypad dev ARGS` in `dir` with `env` and waits until it is up.
    pub async fn start_with(dir: &Path, args: &[&str], env: &[(&str, String)]) -> DevProcess {
        let log = dir.join("dev.log");
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_lilypad"))
            .arg("dev")
            .args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", dir)
            .env("DATA_DIR", dir)
            .env("LOG_LEVEL", "info")
            .env("SERVER_PORT", super::bacalhau::free_port().to_string())
            // The web roles on ports of their own, so that processes never contend.
            .env(
                "FAUCET_LISTEN",
                format!("127.0.0.1:{}", super::bacalhau::free_port()),
            )
            .env(
                "SAAS_LISTEN",
                format!("127.0.0.1:{}", super::bacalhau::free_port()),
            )
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdout(Stdio::piped())
            .stderr(Stdio::from(std::fs::File::create(&log).unwrap()))
            .kill_on_drop(true)
            .spawn()
            .expect("the lilypad binary starts");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut urls = std::collections::HashMap::new();
        let mut resource_provider = None;
        let started = tokio::time::timeout(Duration::from_secs(120), async {
            while let Some(line) = lines.next_line().await.unwrap() {
                // "  resource provider 0x…, job creator 0x…, mediator 0x…"
                if let Some(rest) = line.trim().strip_prefix("resource provider ") {
                    let address = rest.split(',').next().unwrap().trim();
                    resource_provider = address.parse().ok();
                }
                // "  faucet: http://127.0.0.1:PORT (FAUCET_LISTEN)"
                if let Some((name, rest)) = line.trim().split_once(": http") {
                    let url = format!("http{}", rest.split_whitespace().next().unwrap());
                    urls.insert(name.to_string(), url);
                }
                if line.starts_with("In another terminal") {
                    return;
                }
            }
            panic!(
                "lilypad dev exited: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        })
        .await;
        assert!(started.is_ok(), "lilypad dev did not start within 120 s");
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let network = lilypad::dev::find_running(&dir.join("dev"))
            .await
            .expect("the dev network answers");
        DevProcess {
            child,
            network,
            urls,
            resource_provider: resource_provider.expect("lilypad dev names its resource provider"),
            log,
        }
    }

    pub fn url(&self, name: &str) -> &str {
        self.urls
            .get(name)
            .unwrap_or_else(|| panic!("lilypad dev printed no {name} URL: {:?}", self.urls))
    }

    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}
