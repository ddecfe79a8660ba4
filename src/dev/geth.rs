//! geth in dev mode as a dev network's chain (`lilypad dev --chain geth`): real block times
//! (`--dev.period`), a real transaction pool, receipts that arrive a block later. The
//! deployer's key is imported into a keystore of its own so that geth makes it the funded
//! developer account; the keystore's password is empty (it guards nothing but this test
//! chain). HTTP and WebSocket JSON-RPC share one loopback port that geth picks itself.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

/// Starts `geth --dev` with a block every `period` seconds, its data in `data_dir` (made
/// fresh), `deployer` as the funded developer account. Returns it (killed on drop)
/// and its URL once it answers JSON-RPC; its log goes to `data_dir/geth.log`.
pub async fn start_geth(
    path: &Path,
    data_dir: &Path,
    deployer: &ethers::signers::LocalWallet,
    period: u64,
) -> anyhow::Result<(tokio::process::Child, String)> {
    if data_dir.exists() {
        std::fs::remove_dir_all(data_dir)
            .with_context(|| format!("cannot clear {}", data_dir.display()))?;
    }
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create {}", data_dir.display()))?;
    let password = data_dir.join("password");
    std::fs::write(&password, "").context("cannot write geth's password file")?;
    let key_file = data_dir.join("deployer.key");
    // geth reads bare hex, without 0x.
    crate::keys::write_secret(&key_file, &crate::keys::hex_key(deployer))
        .context("cannot write the deployer key for geth")?;
    let chain_dir = data_dir.join("chain");
    let import = tokio::process::Command::new(path)
        .args(["account", "import", "--datadir"])
        .arg(&chain_dir)
        .arg("--password")
        .arg(&password)
        .arg(&key_file)
        .stdin(Stdio::null())
        .output()
        .await
        .with_context(|| format!("cannot run {}", path.display()))?;
    let _ = std::fs::remove_file(&key_file);
    if !import.status.success() {
        bail!(
            "geth could not import the developer key: {}",
            String::from_utf8_lossy(&import.stderr).trim()
        );
    }
    let log_path = data_dir.join("geth.log");
    let log = std::fs::File::create(&log_path)
        .with_context(|| format!("cannot create {}", log_path.display()))?;
    let mut child = tokio::process::Command::new(path)
        .args(["--dev", "--dev.period", &period.to_string(), "--datadir"])
        .arg(&chain_dir)
        .arg("--password")
        .arg(&password)
        .args(["--http", "--http.addr", "127.0.0.1", "--http.port", "0"])
        .args(["--http.api", "eth,net,web3,txpool"])
        // The same port as HTTP (both 0): geth serves WebSockets beside it.
        .args([
            "--ws",
            "--ws.addr",
            "127.0.0.1",
            "--ws.port",
            "0",
            "--ws.api",
            "eth,net,web3",
        ])
        .args(["--nodiscover", "--maxpeers", "0", "--ipcdisable"])
        .args(["--port", "0", "--authrpc.port", "0", "--verbosity", "3"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("cannot start geth at {}", path.display()))?;
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(60) {
        if let Some(status) = child.try_wait()? {
            bail!(
                "geth exited ({status}) before it listened: see {}",
                log_path.display()
            );
        }
        let text = std::fs::read_to_string(&log_path).unwrap_or_default();
        if let Some(address) = text
            .lines()
            .filter(|l| l.contains("HTTP server started"))
            .find_map(|l| l.split("endpoint=").nth(1))
            .and_then(|rest| rest.split_whitespace().next())
        {
            let url = format!("http://{address}");
            if crate::chain::client::provider(&url, Duration::from_millis(50))
                .await
                .is_ok()
            {
                return Ok((child, url));
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!(
        "geth did not answer JSON-RPC within 60 s: see {}",
        log_path.display()
    )
}
