//! A resource provider that offers GPUs: `lilypad rp` processes on a real dev network (anvil,
//! contracts, solver) and the real Docker engine. No NVIDIA GPU can run on the machines these
//! tests run on, so the driver's `nvidia-smi` is replaced by a named stand-in (a script that
//! answers the executor's query as the driver does) through `NVIDIA_SMI`. On a GPU host the
//! same commands read the real driver.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::row;
use ethers::signers::Signer;
use lilypad::client::SolverClient;
use lilypad::dev::{DevNetwork, DevRoles};

/// STAND-IN for the NVIDIA driver's `nvidia-smi`: prints `gpus` (name, MiB) for exactly the
/// query the executor makes, and fails on anything else.
fn stand_in_nvidia_smi(dir: &Path, gpus: &[(&str, u64)]) -> PathBuf {
    let lines: String = gpus
        .iter()
        .enumerate()
        .map(|(index, (name, mib))| {
            format!("{index}, GPU-{index:08x}-1111-2222-3333-444444444444, {name}, {mib}\n")
        })
        .collect();
    let path = dir.join("nvidia-smi");
    std::fs::write(
        &path,
        format!(
            "#!/bin/sh\n# STAND-IN for the NVIDIA driver's nvidia-smi (no GPU on this machine)\n\
             [ \"$1 $2\" = '--query-gpu=index,uuid,name,memory.total --format=csv,noheader,nounits' ] \
             || {{ echo \"unexpected query: $*\" >&2; exit 2; }}\nprintf '%s' '{lines}'\n"
        ),
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// A `lilypad rp` for `network` (see `common::rp_command`), on the Docker engine, with
/// `nvidia_smi` as the GPU driver's tool.
fn rp_command(
    network: &DevNetwork,
    dir: &Path,
    nvidia_smi: &Path,
    env: &[(&str, &str)],
) -> tokio::process::Command {
    let nvidia_smi = nvidia_smi.display().to_string();
    let mut all = vec![("EXECUTOR", "docker"), ("NVIDIA_SMI", nvidia_smi.as_str())];
    all.extend_from_slice(env);
    common::rp_command(network, dir, &all)
}

async fn preflight(
    network: &DevNetwork,
    dir: &Path,
    nvidia_smi: &Path,
    env: &[(&str, &str)],
) -> (bool, String, String) {
    common::preflight_output(rp_command(network, dir, nvidia_smi, env)).await
}

/// A dev network without its own resource provider: the test runs `lilypad rp` processes.
async fn network_for_an_rp_process(dir: &Path) -> DevNetwork {
    let roles = DevRoles {
        resource_provider: false,
        ..DevRoles::default()
    };
    common::network_with(&dir.join("dev"), roles).await
}

#[tokio::test]
async fn preflight_checks_the_gpus_offered_against_the_host_and_everything_else() {
    let dir = tempfile::tempdir().unwrap();
    let network = network_for_an_rp_process(dir.path()).await;
    let two_cards = stand_in_nvidia_smi(
        dir.path(),
        &[("NVIDIA H200", 143771), ("NVIDIA A100-SXM4-80GB", 81559)],
    );

    let (passed, table, stderr) = preflight(
        &network,
        dir.path(),
        &two_cards,
        &[("OFFER_GPU", "1"), ("OFFER_COUNT", "2")],
    )
    .await;
    assert!(passed, "{table}{stderr}");
    for check in [
        "engine",
        "gpus",
        "disk",
        "rpc",
        "clock",
        "contracts",
        "key",
        "solver",
    ] {
        assert!(row(&table, check).contains(" ok "), "{check}: {table}");
    }
    assert!(row(&table, "engine").contains("Docker"), "{table}");
    let gpus = row(&table, "gpus");
    assert!(
        gpus.contains("1 per slot x 2 slot(s), 81559 MiB each"),
        "{gpus}"
    );
    assert!(
        gpus.contains("0 NVIDIA H200 (143771 MiB), 1 NVIDIA A100-SXM4-80GB (81559 MiB)"),
        "{gpus}"
    );
    assert!(
        row(&table, "rpc").contains(&format!("chain {}", network.chain_id)),
        "{table}"
    );
    assert!(
        row(&table, "key").contains(&format!("{:?}", network.keys.resource_provider.address())),
        "{table}"
    );
    assert!(table.contains("all 8 preflight checks passed"), "{table}");

    // Three slots of one GPU on two cards: the GPU row fails, the others still pass.
    let (passed, table, stderr) = preflight(
        &network,
        dir.path(),
        &two_cards,
        &[("OFFER_GPU", "1"), ("OFFER_COUNT", "3")],
    )
    .await;
    assert!(!passed, "{table}");
    let gpus = row(&table, "gpus");
    assert!(
        gpus.contains("FAIL") && gpus.contains("need 3 GPU(s); this host has 2"),
        "{gpus}"
    );
    assert!(row(&table, "solver").contains(" ok "), "{table}");
    assert!(
        stderr.contains("1 of 8 preflight checks failed"),
        "{stderr}"
    );

    // More memory promised than the smallest card has.
    let (passed, table, _) = preflight(
        &network,
        dir.path(),
        &two_cards,
        &[("OFFER_GPU", "1"), ("OFFER_VRAM", "100000")],
    )
    .await;
    assert!(!passed);
    assert!(
        row(&table, "gpus").contains("smallest GPU here has 81559 MiB"),
        "{table}"
    );

    // No driver at all.
    let missing = dir.path().join("no-such-nvidia-smi");
    let (passed, table, _) = preflight(&network, dir.path(), &missing, &[("OFFER_GPU", "1")]).await;
    assert!(!passed);
    assert!(
        row(&table, "gpus").contains("is not installed (no NVIDIA driver on this host)"),
        "{table}"
    );
    let (passed, table, stderr) = preflight(&network, dir.path(), &missing, &[]).await;
    assert!(passed, "a CPU-only RP needs no driver: {table}{stderr}");
    assert!(row(&table, "gpus").contains("none offered"), "{table}");

    // A chain that is not there: the chain's rows fail and say where they looked.
    let (passed, table, _) = preflight(
        &network,
        dir.path(),
        &two_cards,
        &[("WEB3_RPC_URL", "http://127.0.0.1:9")],
    )
    .await;
    assert!(!passed);
    assert!(
        row(&table, "rpc").contains("FAIL") && row(&table, "rpc").contains("127.0.0.1:9"),
        "{table}"
    );
    network.stop().await;
}

#[tokio::test]
async fn an_rp_offers_only_the_gpus_it_has_with_their_memory() {
    let dir = tempfile::tempdir().unwrap();
    let network = network_for_an_rp_process(dir.path()).await;
    let two_cards = stand_in_nvidia_smi(
        dir.path(),
        &[("NVIDIA H200", 143771), ("NVIDIA H200", 143771)],
    );

    // Asking for more GPUs than the host has stops the RP before it offers anything.
    let output = rp_command(
        &network,
        dir.path(),
        &two_cards,
        &[("OFFER_GPU", "2"), ("OFFER_COUNT", "2")],
    )
    .output()
    .await
    .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("cannot offer GPUs") && stderr.contains("need 4 GPU(s); this host has 2"),
        "{stderr}"
    );

    // Within what it has, it offers each slot one card with the card's memory.
    let mut rp = rp_command(
        &network,
        dir.path(),
        &two_cards,
        &[("OFFER_GPU", "1"), ("OFFER_COUNT", "2")],
    )
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::null())
    .spawn()
    .unwrap();
    let client = SolverClient::new(&network.solver.url, network.keys.job_creator.clone());
    let provider = network.keys.resource_provider.address();
    let mut offers = Vec::new();
    for _ in 0..300 {
        offers = client.resource_offers(provider).await.unwrap();
        if offers.len() == 2 {
            break;
        }
        assert!(rp.try_wait().unwrap().is_none(), "the RP stopped");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(offers.len(), 2, "one offer per slot");
    for record in &offers {
        assert_eq!((record.offer.spec.gpu, record.offer.spec.vram), (1, 143771));
    }
    rp.kill().await.unwrap();
    network.stop().await;
}
