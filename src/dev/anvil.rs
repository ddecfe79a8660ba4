//! Finding and starting anvil, the local chain of `lilypad dev` and of the tests.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

/// Finds anvil: the flag, then contracts/node_modules (from the working directory, the
/// executable's checkout, or this source tree), then PATH.
pub fn find_anvil(explicit: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(path) = explicit {
        if path.is_file() {
            return Ok(path.to_path_buf());
        }
        bail!("--anvil-path {} does not exist", path.display());
    }
    let relative = Path::new("contracts/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil");
    let mut roots = vec![std::env::current_dir().unwrap_or_default()];
    if let Ok(exe) = std::env::current_exe() {
        roots.extend(exe.ancestors().skip(1).map(Path::to_path_buf));
    }
    roots.push(PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    for root in roots {
        let candidate = root.join(relative);
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    for dir in std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()) {
        let candidate = dir.join("anvil");
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    bail!("anvil not found: run `make deps` (installs it under contracts/node_modules) or pass --anvil-path")
}

/// Starts anvil on a loopback port it picks itself (no race with other processes for a
/// port) with `extra` arguments; returns it (killed on drop) and its URL once it answers
/// JSON-RPC. Its log lines are read and dropped.
pub async fn start_anvil(
    path: &Path,
    extra: &[&str],
) -> anyhow::Result<(tokio::process::Child, String)> {
    use tokio::io::AsyncBufReadExt;
    let mut child = tokio::process::Command::new(path)
        .args(["--host", "127.0.0.1", "--port", "0"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("cannot start anvil at {}", path.display()))?;
    let stdout = child.stdout.take().context("anvil's stdout")?;
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let listening = tokio::time::timeout(Duration::from_secs(30), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(address) = line.trim().strip_prefix("Listening on ") {
                return Some(format!("http://{}", address.trim()));
            }
        }
        None
    })
    .await;
    let url = match listening {
        Ok(Some(url)) => url,
        Ok(None) => bail!("anvil exited before it listened"),
        Err(_) => bail!("anvil did not listen within 30 s"),
    };
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(15) {
        if crate::chain::client::provider(&url, Duration::from_millis(50))
            .await
            .is_ok()
        {
            return Ok((child, url));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("anvil at {url} does not answer JSON-RPC")
}
