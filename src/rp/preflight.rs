//! `lilypad rp --preflight`: everything a resource provider needs, checked once and shown as
//! a table before any offer is made: the engine, the GPUs against what is offered, disk
//! space, the chain (reachable, the contracts there, a clock that agrees), the solver
//! (reachable, a clock that agrees) and the key (ether for gas, tokens for collateral).
//! Each check says what it saw; a failed one says what to do. Nothing is sent or signed.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ethers::providers::Middleware;
use ethers::types::{Address, U256};
use ethers::utils::format_units;

use crate::config::Settings;
use crate::executor::gpus;
use crate::executor::{AnyExecutor, Executor};

/// How far apart two clocks may be before deadlines go wrong: offers are refreshed and
/// deals timed against other machines' clocks.
pub const MAX_CLOCK_SKEW: Duration = Duration::from_secs(30);

/// The outcome of one check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub name: &'static str,
    pub passed: bool,
    pub detail: String,
}

fn pass(name: &'static str, detail: impl Into<String>) -> Check {
    Check {
        name,
        passed: true,
        detail: detail.into(),
    }
}

fn fail(name: &'static str, detail: impl Into<String>) -> Check {
    Check {
        name,
        passed: false,
        detail: detail.into(),
    }
}

/// Runs every check; checks that need an earlier one (the chain's for the key) say so.
pub async fn run(settings: &Settings) -> Vec<Check> {
    let mut checks = Vec::new();
    let spec = match settings.offer_spec() {
        Ok(spec) => spec,
        Err(error) => {
            checks.push(fail("offer", error.to_string()));
            crate::data::MachineSpec::default()
        }
    };
    let slots = settings.offer_count;
    let executor = AnyExecutor::for_resource_provider(settings).await;
    checks.push(match &executor {
        Ok(executor) => pass("engine", executor.describe().await),
        Err(error) => fail("engine", error.to_string()),
    });
    // The GPUs are the driver's answer whether or not the engine is up yet.
    let found = match &executor {
        Ok(executor) => executor.gpus(),
        Err(_) if settings.executor == "docker" => Some(gpus::discover().await),
        Err(_) => None,
    };
    checks.push(gpu_check(&spec, slots, found));
    checks.push(disk(&settings.data_dir, spec.disk, slots));
    checks.extend(chain_and_solver(settings, slots).await);
    checks
}

/// The GPUs offered per slot against those the engine has (`None`: it runs nothing on GPUs).
fn gpu_check(
    spec: &crate::data::MachineSpec,
    slots: u32,
    found: Option<Result<Vec<gpus::Gpu>, gpus::GpuError>>,
) -> Check {
    // The same check the RP makes at start; here it also says what it saw.
    let fitted = match gpus::offer_on_host(spec, slots, found.as_ref()) {
        Ok(fitted) => fitted,
        Err(error) => return fail("gpus", error),
    };
    let detail = match (&found, spec.gpu) {
        (None, 0) => "none offered (this engine runs nothing on GPUs)".to_string(),
        (None, _) => "offered, but this engine runs nothing on GPUs".to_string(),
        // An unreadable driver passes only when no GPU is offered.
        (Some(Err(error)), _) => format!("none offered ({error})"),
        (Some(Ok(found)), 0) => format!(
            "none offered; {} here{}",
            found.len(),
            gpus::describe(found)
        ),
        (Some(Ok(found)), n) => format!(
            "{n} per slot x {slots} slot(s), {} MiB each{}",
            fitted.vram,
            gpus::describe(found)
        ),
    };
    pass("gpus", detail)
}

/// Free space where jobs' files go, against `disk_mib` per slot (0: none promised).
fn disk(data_dir: &Path, disk_mib: u64, slots: u32) -> Check {
    // The data directory may not exist yet: the nearest existing parent is on the same disk.
    let mut at = data_dir;
    while !at.exists() {
        match at.parent() {
            Some(parent) => at = parent,
            None => break,
        }
    }
    let stat = match rustix::fs::statvfs(at) {
        Ok(stat) => stat,
        Err(error) => {
            return fail(
                "disk",
                format!("cannot read free space at {}: {error}", at.display()),
            )
        }
    };
    let free_mib = stat.f_bavail.saturating_mul(stat.f_frsize) / (1024 * 1024);
    let needed = disk_mib.saturating_mul(u64::from(slots));
    let detail = format!("{free_mib} MiB free at {}", at.display());
    if free_mib < needed {
        fail(
            "disk",
            format!("{detail}; {slots} slot(s) of {disk_mib} MiB (OFFER_DISK) need {needed} MiB"),
        )
    } else if needed > 0 {
        pass("disk", format!("{detail}; {needed} MiB offered"))
    } else {
        pass("disk", detail)
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

async fn chain_and_solver(settings: &Settings, slots: u32) -> Vec<Check> {
    let mut checks = Vec::new();
    let url = match settings.rpc_url() {
        Ok(url) => url,
        Err(error) => {
            checks.push(fail("rpc", error.to_string()));
            return checks;
        }
    };
    let (provider, chain_id) =
        match crate::chain::client::provider(&url, settings.poll_interval()).await {
            Ok(found) => found,
            Err(error) => {
                checks.push(fail("rpc", error.to_string()));
                return checks;
            }
        };
    checks.push(match settings.web3_chain_id {
        Some(expected) if expected != chain_id => fail(
            "rpc",
            format!("{url} is chain {chain_id}, but WEB3_CHAIN_ID is {expected}"),
        ),
        _ => pass("rpc", format!("{url}: chain {chain_id}")),
    });
    checks.push(match provider.get_block(ethers::types::BlockNumber::Latest).await {
        Ok(Some(block)) => {
            let block_time = block.timestamp.low_u64();
            let now = now_secs();
            if block_time > now + MAX_CLOCK_SKEW.as_secs() {
                fail(
                    "clock",
                    format!("the latest block is {} s ahead of this machine's clock: set the clock (e.g. enable NTP)", block_time - now),
                )
            } else {
                pass(
                    "clock",
                    format!("the latest block is {} s old", now.saturating_sub(block_time)),
                )
            }
        }
        Ok(None) => fail("clock", "the node has no latest block"),
        Err(error) => fail("clock", format!("cannot read the latest block: {error}")),
    });
    let wallet = match settings.wallet() {
        Ok(wallet) => wallet,
        Err(error) => {
            checks.push(fail("key", error.to_string()));
            return checks;
        }
    };
    let controller = match settings.controller() {
        Ok(controller) => controller,
        Err(error) => {
            checks.push(fail("contracts", error.to_string()));
            return checks;
        }
    };
    let chain = match crate::chain::Chain::connect(
        &url,
        wallet,
        controller,
        settings.poll_interval(),
    )
    .await
    {
        Ok(chain) => chain,
        Err(error) => {
            checks.push(fail("contracts", error.to_string()));
            return checks;
        }
    };
    checks.push(pass("contracts", format!("controller {controller:?}")));
    checks.push(funds(&chain, chain.address(), settings, slots).await);
    let solver = match settings.services() {
        Ok(services) => {
            crate::client::solver_url(&chain, services.solver, settings.solver_url.as_deref()).await
        }
        Err(error) => Err(error.into()),
    };
    checks.push(match solver {
        Ok(solver) => solver_check(&solver).await,
        Err(error) => fail("solver", error.to_string()),
    });
    checks
}

async fn funds(
    chain: &crate::chain::Chain,
    address: Address,
    settings: &Settings,
    slots: u32,
) -> Check {
    let ether = match chain.client.get_balance(address, None).await {
        Ok(balance) => balance,
        Err(error) => {
            return fail(
                "key",
                format!("cannot read the balance of {address:?}: {error}"),
            )
        }
    };
    let tokens = match chain.token_balance(address).await {
        Ok(balance) => balance,
        Err(error) => return fail("key", error.to_string()),
    };
    let collateral = settings
        .timeouts()
        .map(|t| U256::from(t.submit_results_collateral))
        .unwrap_or_default()
        .saturating_mul(U256::from(slots));
    let show = |amount: U256| {
        let text = format_units(amount, 18).unwrap_or_else(|_| amount.to_string());
        match text.split_once('.') {
            Some((whole, fraction)) if fraction.trim_end_matches('0').is_empty() => {
                whole.to_string()
            }
            Some((whole, fraction)) => format!("{whole}.{}", fraction.trim_end_matches('0')),
            None => text,
        }
    };
    let detail = format!("{address:?}: {} ETH, {} LP", show(ether), show(tokens));
    if ether.is_zero() {
        fail("key", format!("{detail}: no ether to pay gas with"))
    } else if tokens < collateral {
        fail(
            "key",
            format!(
                "{detail}: {slots} slot(s) need {} LP of results collateral (TIMEOUT_SUBMIT_RESULTS_COLLATERAL)",
                show(collateral)
            ),
        )
    } else {
        pass("key", detail)
    }
}

/// The solver answers its health check, and its clock (the HTTP `Date`) agrees with ours.
async fn solver_check(url: &str) -> Check {
    let client = crate::tls::http_client()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap_or_default();
    let health = format!("{}/health", url.trim_end_matches('/'));
    let response = match client.get(&health).send().await {
        Ok(response) => response,
        Err(error) => return fail("solver", format!("{health}: {error}")),
    };
    if !response.status().is_success() {
        return fail("solver", format!("{health} answered {}", response.status()));
    }
    let date = response
        .headers()
        .get(reqwest::header::DATE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| httpdate::parse_http_date(v).ok());
    let Some(date) = date else {
        return pass("solver", format!("{url} (its clock is not shown)"));
    };
    let theirs = date
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let skew = theirs.abs_diff(now_secs());
    if skew > MAX_CLOCK_SKEW.as_secs() {
        fail(
            "solver",
            format!(
                "{url}: its clock and ours differ by {skew} s: set the clock (e.g. enable NTP)"
            ),
        )
    } else {
        pass("solver", format!("{url}, clocks within {skew} s"))
    }
}

/// The checks as an aligned table, one per line.
pub fn table(checks: &[Check]) -> String {
    let width = checks.iter().map(|c| c.name.len()).max().unwrap_or(0);
    checks
        .iter()
        .map(|c| {
            format!(
                "{:<width$}  {}  {}\n",
                c.name,
                if c.passed { "ok  " } else { "FAIL" },
                c.detail
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disk_space_is_checked_against_what_is_offered() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("not/yet/made");
        let check = disk(&missing, 0, 1);
        assert!(check.passed, "{check:?}");
        assert!(
            check.detail.contains(&dir.path().display().to_string()),
            "{check:?}"
        );
        let check = disk(&missing, u64::MAX / 4, 3);
        assert!(!check.passed, "{check:?}");
        assert!(check.detail.contains("OFFER_DISK"), "{check:?}");
    }

    #[test]
    fn the_table_lines_up() {
        let text = table(&[pass("gpus", "1 per slot"), fail("key", "no ether")]);
        assert_eq!(text, "gpus  ok    1 per slot\nkey   FAIL  no ether\n");
    }
}
