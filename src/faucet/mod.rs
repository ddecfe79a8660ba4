//! `lilypad faucet`: a web page and a small API that give test accounts ether and LP from
//! the faucet's own key, one claim per address and per client IP each period.
//!
//! A claim is checked (a checksummed address, a solved hCaptcha when one is configured),
//! reserved for its address and IP (kept in SQLite, so a restart does not reopen the tap),
//! checked against the faucet's balances, then paid: ether, then the token, through the
//! key's one nonce manager ([`Chain::send`]), so concurrent claims never collide. A claim
//! that cannot be paid gives its reservation back.

mod api;
pub mod claims;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use ethers::providers::Middleware;
use ethers::types::{Address, H256, U256};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::chain::Chain;
use crate::config::{ConfigError, Settings};
use claims::{Claims, Wait};

/// Gas a claim's two transactions may use at most (an ether transfer and a token transfer),
/// for the balance check before paying.
const CLAIM_GAS: u64 = 21_000 + 120_000;

/// hCaptcha, when a claim must come with a solved one.
#[derive(Debug, Clone)]
pub struct Captcha {
    pub site_key: String,
    pub secret: String,
    /// Where responses are verified (hCaptcha's siteverify).
    pub verify_url: String,
}

/// How the faucet runs.
#[derive(Debug, Clone)]
pub struct FaucetSettings {
    pub listen: SocketAddr,
    /// Wei of ether per claim.
    pub eth: U256,
    /// Token wei per claim.
    pub lp: U256,
    /// How long an address or IP waits between claims.
    pub period: Duration,
    pub trusted_proxy_hops: usize,
    pub captcha: Option<Captcha>,
    pub data_dir: PathBuf,
}

impl FaucetSettings {
    pub fn from_settings(settings: &Settings) -> Result<FaucetSettings, ConfigError> {
        let invalid =
            |name: &'static str, flag: &'static str, message: String| ConfigError::Invalid {
                name,
                flag,
                message,
            };
        let listen = settings.faucet_listen.parse().map_err(|_| {
            invalid(
                "FAUCET_LISTEN",
                "faucet-listen",
                format!("{:?} is not ADDRESS:PORT", settings.faucet_listen),
            )
        })?;
        let amount = |text: &str, name, flag| {
            crate::data::amount::parse(text)
                .map(U256::from)
                .map_err(|e| invalid(name, flag, e))
        };
        let captcha = match (&settings.hcaptcha_site_key, &settings.hcaptcha_secret_file) {
            (None, None) => None,
            (Some(site_key), Some(file)) => {
                let secret = std::fs::read_to_string(file).map_err(|e| {
                    invalid(
                        "HCAPTCHA_SECRET_FILE",
                        "hcaptcha-secret-file",
                        format!("cannot read {}: {e}", file.display()),
                    )
                })?;
                Some(Captcha {
                    site_key: site_key.clone(),
                    secret: secret.trim().to_string(),
                    verify_url: settings.hcaptcha_verify_url.clone(),
                })
            }
            _ => {
                return Err(invalid(
                    "HCAPTCHA_SITE_KEY",
                    "hcaptcha-site-key",
                    "set both HCAPTCHA_SITE_KEY and HCAPTCHA_SECRET_FILE, or neither".into(),
                ))
            }
        };
        Ok(FaucetSettings {
            listen,
            eth: amount(&settings.faucet_eth, "FAUCET_ETH", "faucet-eth")?,
            lp: amount(&settings.faucet_lp, "FAUCET_LP", "faucet-lp")?,
            period: Duration::from_secs(settings.faucet_period.max(1)),
            trusted_proxy_hops: settings.trusted_proxy_hops,
            captcha,
            data_dir: settings.data_dir.join("faucet"),
        })
    }
}

/// A paid claim.
#[derive(Debug, Clone, Serialize)]
pub struct Claimed {
    pub address: String,
    /// Wei of ether sent.
    pub eth: String,
    /// Token wei sent.
    pub lp: String,
    pub eth_tx: H256,
    pub lp_tx: H256,
}

/// Why a claim was refused; each maps to an HTTP status in the API.
#[derive(Debug, thiserror::Error)]
pub enum ClaimError {
    #[error("{0}")]
    BadRequest(String),
    #[error("the captcha was not solved: {0}")]
    Captcha(String),
    #[error("{} claimed already; wait {} s", .0.who, .0.seconds)]
    Wait(Wait),
    /// What the faucet holds against what a claim needs.
    #[error("the faucet is running dry: {0}; ask its operator to top it up")]
    Empty(String),
    #[error("the claim could not be paid: {0}")]
    Chain(String),
    #[error("the faucet's database failed: {0}")]
    Internal(String),
}

/// A running faucet's state.
pub struct Faucet {
    chain: Arc<Chain>,
    claims: Claims,
    settings: FaucetSettings,
    http: reqwest::Client,
}

/// A started faucet.
pub struct FaucetHandle {
    pub address: SocketAddr,
    pub url: String,
    pub task: tokio::task::JoinHandle<()>,
}

/// `address` as a checksummed (EIP-55) address, or why not.
fn checksummed(text: &str) -> Result<Address, ClaimError> {
    let bad = || {
        ClaimError::BadRequest(format!(
            "{text:?} is not a checksummed address (0x and 40 hex digits in EIP-55 mixed case)"
        ))
    };
    let hex = text.strip_prefix("0x").ok_or_else(bad)?;
    if hex.len() != 40 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(bad());
    }
    let address: Address = text.parse().map_err(|_| bad())?;
    if ethers::utils::to_checksum(&address, None) != text {
        return Err(bad());
    }
    Ok(address)
}

impl Faucet {
    /// What `GET /api/info` shows.
    pub fn info(&self) -> serde_json::Value {
        serde_json::json!({
            "account": crate::keys::address_of(self.chain.client.signer()),
            "chain_id": self.chain.chain_id,
            "token": format!("{:?}", self.chain.contracts.token.address()),
            "symbol": "LP",
            "payout": {"eth": self.settings.eth.to_string(), "lp": self.settings.lp.to_string()},
            "period_secs": self.settings.period.as_secs(),
            "hcaptcha_site_key": self.settings.captcha.as_ref().map(|c| c.site_key.clone()),
        })
    }

    async fn verify_captcha(&self, response: Option<&str>) -> Result<(), ClaimError> {
        let Some(captcha) = &self.settings.captcha else {
            return Ok(());
        };
        let response = response
            .filter(|r| !r.is_empty())
            .ok_or_else(|| ClaimError::Captcha("no h-captcha-response header".into()))?;
        #[derive(serde::Deserialize)]
        struct Verdict {
            success: bool,
        }
        let verdict: Verdict = self
            .http
            .post(&captcha.verify_url)
            .form(&[
                ("secret", captcha.secret.as_str()),
                ("response", response),
                ("sitekey", captcha.site_key.as_str()),
            ])
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| ClaimError::Captcha(format!("cannot reach hCaptcha: {e}")))?
            .json()
            .await
            .map_err(|e| ClaimError::Captcha(format!("hCaptcha's answer is unreadable: {e}")))?;
        if verdict.success {
            Ok(())
        } else {
            Err(ClaimError::Captcha("hCaptcha refused the response".into()))
        }
    }

    /// Fails if the faucet cannot pay a claim (and its gas).
    async fn check_funds(&self) -> Result<(), ClaimError> {
        let me = self.chain.address();
        let eth = self
            .chain
            .client
            .get_balance(me, None)
            .await
            .map_err(|e| ClaimError::Chain(e.to_string()))?;
        let gas_price = self
            .chain
            .client
            .get_gas_price()
            .await
            .map_err(|e| ClaimError::Chain(e.to_string()))?;
        let lp = self
            .chain
            .token_balance(me)
            .await
            .map_err(|e| ClaimError::Chain(e.to_string()))?;
        let need_eth = self.settings.eth + gas_price * CLAIM_GAS;
        if eth < need_eth || lp < self.settings.lp {
            return Err(ClaimError::Empty(format!(
                "it holds {eth} wei of ether and {lp} token wei, and a claim needs {need_eth} (gas included) and {}",
                self.settings.lp
            )));
        }
        Ok(())
    }

    /// Pays a claim for `address` from `ip`.
    pub async fn claim(
        &self,
        address: &str,
        ip: Option<IpAddr>,
        captcha: Option<&str>,
    ) -> Result<Claimed, ClaimError> {
        let to = checksummed(address)?;
        self.verify_captcha(captcha).await?;
        let mut keys = vec![(format!("address:{to:?}"), format!("address {address}"))];
        if let Some(ip) = ip {
            keys.push((format!("ip:{ip}"), format!("IP {ip}")));
        }
        let internal = |e: crate::db::DbError| ClaimError::Internal(e.to_string());
        self.claims
            .reserve(&keys, self.settings.period)
            .await
            .map_err(internal)?
            .map_err(ClaimError::Wait)?;
        match self.pay(to).await {
            Ok((eth_tx, lp_tx)) => {
                tracing::info!(address, ?ip, ?eth_tx, ?lp_tx, "claim paid");
                Ok(Claimed {
                    address: address.to_string(),
                    eth: self.settings.eth.to_string(),
                    lp: self.settings.lp.to_string(),
                    eth_tx,
                    lp_tx,
                })
            }
            Err(error) => {
                tracing::warn!(address, ?ip, %error, "claim not paid; its reservation is given back");
                self.claims.release(&keys).await.map_err(internal)?;
                Err(error)
            }
        }
    }

    async fn pay(&self, to: Address) -> Result<(H256, H256), ClaimError> {
        self.check_funds().await?;
        let paid = |e: crate::chain::ChainError| ClaimError::Chain(e.to_string());
        let eth_tx = if self.settings.eth.is_zero() {
            H256::zero()
        } else {
            self.chain
                .send_ether(to, self.settings.eth)
                .await
                .map_err(paid)?
                .transaction_hash
        };
        let lp_tx = if self.settings.lp.is_zero() {
            H256::zero()
        } else {
            let call = self.chain.contracts.token.transfer(to, self.settings.lp);
            self.chain
                .send("send LP", call)
                .await
                .map_err(paid)?
                .transaction_hash
        };
        Ok((eth_tx, lp_tx))
    }
}

/// Starts the faucet's server; it stops when `shutdown` is cancelled.
pub async fn start(
    chain: Arc<Chain>,
    settings: FaucetSettings,
    shutdown: CancellationToken,
) -> anyhow::Result<FaucetHandle> {
    let db = settings.data_dir.join("faucet.db");
    let claims = Claims::open(&db).await?;
    let faucet = Arc::new(Faucet {
        chain,
        claims: claims.clone(),
        http: crate::tls::http_client()
            .timeout(Duration::from_secs(10))
            .build()
            .context("cannot set up the HTTP client")?,
        settings: settings.clone(),
    });
    let signal = shutdown.clone();
    let (address, server) = warp::serve(api::routes(faucet.clone()))
        .try_bind_with_graceful_shutdown(settings.listen, async move { signal.cancelled().await })
        .with_context(|| format!("cannot listen on FAUCET_LISTEN {}", settings.listen))?;
    let url = format!("http://{address}");
    tracing::info!(%url, account = ?faucet.chain.address(), "faucet serving");
    let task = tokio::spawn(async move {
        let cleanup = async {
            loop {
                tokio::time::sleep(Duration::from_secs(60)).await;
                if let Err(e) = claims.forget_expired().await {
                    tracing::warn!(error = %e, "cannot forget expired claims");
                }
            }
        };
        tokio::select! {
            _ = server => {}
            _ = cleanup => {}
        }
        claims.close().await;
    });
    Ok(FaucetHandle { address, url, task })
}

/// Runs the faucet until `shutdown`.
pub async fn run(
    chain: Arc<Chain>,
    settings: FaucetSettings,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let handle = start(chain, settings, shutdown).await?;
    handle.task.await.context("the faucet task failed")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_checksummed_addresses_are_taken() {
        let good = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed";
        assert!(checksummed(good).is_ok());
        for bad in [
            "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed",
            "0x5AAEB6053F3E94C9B9A09F33669435E7EF1BEAED",
            "5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
            "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAe",
            "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAedd",
            "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeg",
            "",
        ] {
            assert!(
                matches!(checksummed(bad), Err(ClaimError::BadRequest(_))),
                "{bad}"
            );
        }
    }
}
