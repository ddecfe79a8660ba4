//! A client of the solver's API for the other roles: signed requests (see `data::signing`)
//! and an event stream over `/ws` that reconnects with exponential backoff. Roles also poll,
//! so a missed event only delays them by one tick.

use std::time::Duration;

use ethers::signers::LocalWallet;
use futures::StreamExt;
use reqwest::Method;
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::data::events::Event;
use crate::data::records::{DealRecord, ErrorBody, JobOfferRecord, ResourceOfferRecord};
use crate::data::signing::{self, ADDRESS_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use crate::data::{JobOffer, JobResult, ResourceOffer};

/// A failed call to the solver.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("the solver at {url} is unreachable: {message}")]
    Unreachable { url: String, message: String },
    #[error("the solver answered {status} to {what}: {message}")]
    Refused {
        what: String,
        status: u16,
        message: String,
        /// Seconds the solver asked us to wait (Retry-After), if it said.
        retry_after: Option<u64>,
    },
    #[error("the solver's answer to {what} is malformed: {message}")]
    Malformed { what: String, message: String },
}

impl ClientError {
    /// The HTTP status, when the solver answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Refused { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Whether trying again later may succeed: the solver was down or restarting, failed
    /// on its side, or asked us to slow down (429). Any other refusal (4xx) or a malformed
    /// answer will not fix itself.
    pub fn is_transient(&self) -> bool {
        match self {
            ClientError::Unreachable { .. } => true,
            ClientError::Refused { status, .. } => *status >= 500 || *status == 429,
            ClientError::Malformed { .. } => false,
        }
    }
}

/// Whether `error` comes from the solver being down or restarting (or busy), which waiting
/// may cure.
pub fn is_transient(error: &anyhow::Error) -> bool {
    error
        .chain()
        .filter_map(|cause| cause.downcast_ref::<ClientError>())
        .any(ClientError::is_transient)
}

/// The longest Retry-After a request waits out by itself, and how many times: longer
/// waits (an open-offer cap) are the caller's to handle.
const RATE_LIMIT_MAX_WAIT_SECS: u64 = 5;
const RATE_LIMIT_RETRIES: u32 = 3;

/// Talks to one solver as one key.
#[derive(Clone)]
pub struct SolverClient {
    base: String,
    http: reqwest::Client,
    wallet: LocalWallet,
}

impl SolverClient {
    pub fn new(base: &str, wallet: LocalWallet) -> SolverClient {
        let http = crate::tls::http_client()
            .timeout(Duration::from_secs(60))
            .connect_timeout(Duration::from_secs(5))
            .build()
            .unwrap_or_default();
        SolverClient {
            base: base.trim_end_matches('/').to_string(),
            http,
            wallet,
        }
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// Sends a request; signs it when `signed`. A signed read refused as a replay (the same
    /// request in the same second from another process with this key, or from this one
    /// before a restart: both sign the same text alike) is signed again in the next second.
    /// A request refused as too many (429) with a short Retry-After (the solver's rate
    /// limits) is sent again once that time has passed, a few times.
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        body: Vec<u8>,
        signed: bool,
    ) -> Result<reqwest::Response, ClientError> {
        // Shared, not copied, between attempts (uploads run to tens of MiB).
        let body = bytes::Bytes::from(body);
        let mut attempt = 0;
        let mut slowed = 0;
        loop {
            let sent = self
                .send_once(method.clone(), path, body.clone(), signed)
                .await;
            match sent {
                Err(ClientError::Refused {
                    status: 401,
                    ref message,
                    ..
                }) if signed
                    && method == Method::GET
                    && attempt < 2
                    && message.contains(&signing::AuthError::Replayed.to_string()) =>
                {
                    attempt += 1;
                    let into_second = crate::data::offers::now_millis() % 1000;
                    tokio::time::sleep(Duration::from_millis(1010 - into_second)).await;
                }
                Err(ClientError::Refused {
                    status: 429,
                    retry_after: Some(wait),
                    ..
                }) if wait <= RATE_LIMIT_MAX_WAIT_SECS && slowed < RATE_LIMIT_RETRIES => {
                    slowed += 1;
                    tracing::debug!(path, wait, "the solver asked us to slow down; waiting");
                    tokio::time::sleep(Duration::from_secs(wait.max(1))).await;
                }
                other => return other,
            }
        }
    }

    async fn send_once(
        &self,
        method: Method,
        path: &str,
        body: bytes::Bytes,
        signed: bool,
    ) -> Result<reqwest::Response, ClientError> {
        let mut request = self
            .http
            .request(method.clone(), format!("{}{path}", self.base));
        if signed {
            let headers = signing::sign(
                &self.wallet,
                method.as_str(),
                path,
                signing::now_secs(),
                &body,
            );
            request = request
                .header(ADDRESS_HEADER, format!("{:?}", headers.address))
                .header(TIMESTAMP_HEADER, headers.timestamp.to_string())
                .header(SIGNATURE_HEADER, headers.signature);
        }
        if method == Method::POST {
            request = request
                .header(reqwest::header::CONTENT_LENGTH, body.len())
                .body(body);
        }
        let what = format!("{method} {path}");
        let response = request.send().await.map_err(|e| ClientError::Unreachable {
            url: self.base.clone(),
            message: e.to_string(),
        })?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok());
        let text = response.text().await.unwrap_or_default();
        let message = serde_json::from_str::<ErrorBody>(&text)
            .map(|b| b.error)
            .unwrap_or(text);
        Err(ClientError::Refused {
            what,
            status: status.as_u16(),
            message,
            retry_after,
        })
    }

    async fn json<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Vec<u8>,
        signed: bool,
    ) -> Result<T, ClientError> {
        let what = format!("{method} {path}");
        let response = self.request(method, path, body, signed).await?;
        response.json().await.map_err(|e| ClientError::Malformed {
            what,
            message: e.to_string(),
        })
    }

    fn body<T: serde::Serialize>(value: &T) -> Vec<u8> {
        // Our own data types always serialise.
        serde_json::to_vec(value).expect("serialisable")
    }

    pub async fn health(&self) -> Result<(), ClientError> {
        self.request(Method::GET, "/health", Vec::new(), false)
            .await
            .map(|_| ())
    }

    pub async fn post_job_offer(&self, offer: &JobOffer) -> Result<JobOfferRecord, ClientError> {
        self.json(Method::POST, "/api/v1/job_offers", Self::body(offer), true)
            .await
    }

    pub async fn job_offer(&self, id: &str) -> Result<JobOfferRecord, ClientError> {
        self.json(
            Method::GET,
            &format!("/api/v1/job_offers/{id}"),
            Vec::new(),
            false,
        )
        .await
    }

    pub async fn explain(
        &self,
        id: &str,
    ) -> Result<crate::data::explanation::Explanation, ClientError> {
        self.json(
            Method::GET,
            &format!("/api/v1/job_offers/{id}/explain"),
            Vec::new(),
            false,
        )
        .await
    }

    pub async fn post_resource_offer(
        &self,
        offer: &ResourceOffer,
    ) -> Result<ResourceOfferRecord, ClientError> {
        self.json(
            Method::POST,
            "/api/v1/resource_offers",
            Self::body(offer),
            true,
        )
        .await
    }

    pub async fn refresh_resource_offer(
        &self,
        id: &str,
    ) -> Result<ResourceOfferRecord, ClientError> {
        self.json(
            Method::POST,
            &format!("/api/v1/resource_offers/{id}/refresh"),
            Vec::new(),
            true,
        )
        .await
    }

    /// The resource offers `provider` has posted.
    pub async fn resource_offers(
        &self,
        provider: ethers::types::Address,
    ) -> Result<Vec<ResourceOfferRecord>, ClientError> {
        self.json(
            Method::GET,
            &format!("/api/v1/resource_offers?resource_provider={provider:?}"),
            Vec::new(),
            false,
        )
        .await
    }

    /// Withdraws our job offer (no deal yet): the solver never matches it afterwards.
    pub async fn withdraw_job_offer(&self, id: &str) -> Result<(), ClientError> {
        self.request(
            Method::POST,
            &format!("/api/v1/job_offers/{id}/withdraw"),
            Vec::new(),
            true,
        )
        .await
        .map(|_| ())
    }

    /// Deals matching a query string such as `resource_provider=0x...`.
    pub async fn deals(&self, query: &str) -> Result<Vec<DealRecord>, ClientError> {
        self.json(
            Method::GET,
            &format!("/api/v1/deals?{query}"),
            Vec::new(),
            false,
        )
        .await
    }

    pub async fn deal(&self, id: &str) -> Result<DealRecord, ClientError> {
        self.json(
            Method::GET,
            &format!("/api/v1/deals/{id}"),
            Vec::new(),
            false,
        )
        .await
    }

    /// Uploads a results tarball; returns its CID as the solver computed it.
    pub async fn upload_files(&self, deal_id: &str, tar: Vec<u8>) -> Result<String, ClientError> {
        let answer: serde_json::Value = self
            .json(
                Method::POST,
                &format!("/api/v1/deals/{deal_id}/files"),
                tar,
                true,
            )
            .await?;
        answer["results_cid"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| ClientError::Malformed {
                what: "upload".into(),
                message: "no results_cid".into(),
            })
    }

    pub async fn post_result(&self, result: &JobResult) -> Result<JobResult, ClientError> {
        self.json(
            Method::POST,
            &format!("/api/v1/deals/{}/result", result.deal_id),
            Self::body(result),
            true,
        )
        .await
    }

    pub async fn result(&self, deal_id: &str) -> Result<JobResult, ClientError> {
        self.json(
            Method::GET,
            &format!("/api/v1/deals/{deal_id}/result"),
            Vec::new(),
            true,
        )
        .await
    }

    pub async fn download_files(&self, deal_id: &str) -> Result<Vec<u8>, ClientError> {
        let response = self
            .request(
                Method::GET,
                &format!("/api/v1/deals/{deal_id}/files"),
                Vec::new(),
                true,
            )
            .await?;
        let bytes = response.bytes().await.map_err(|e| ClientError::Malformed {
            what: "download".into(),
            message: e.to_string(),
        })?;
        Ok(bytes.to_vec())
    }

    pub async fn record_tx(
        &self,
        deal_id: &str,
        action: &str,
        tx_hash: &str,
    ) -> Result<(), ClientError> {
        let body = serde_json::json!({ "action": action, "tx_hash": tx_hash });
        self.request(
            Method::POST,
            &format!("/api/v1/deals/{deal_id}/txs"),
            Self::body(&body),
            true,
        )
        .await
        .map(|_| ())
    }

    /// Sends a deal's transaction (`what` names it in errors) and notes it with the solver
    /// as `action` in the deal's history.
    pub async fn send_noted<D: ethers::abi::Detokenize>(
        &self,
        chain: &crate::chain::Chain,
        deal_id: &str,
        action: &str,
        what: &str,
        call: ethers::contract::ContractCall<crate::chain::Client, D>,
    ) -> Result<ethers::types::TransactionReceipt, crate::chain::ChainError> {
        let receipt = chain.send(what, call).await?;
        self.note_tx(deal_id, action, receipt.transaction_hash)
            .await;
        Ok(receipt)
    }

    /// Records a transaction with the solver for the deal's history; a failure is only
    /// logged, since the chain is the record that counts.
    pub async fn note_tx(&self, deal_id: &str, action: &str, hash: ethers::types::H256) {
        if let Err(error) = self.record_tx(deal_id, action, &format!("{hash:?}")).await {
            tracing::debug!(%error, deal_id, action, "cannot record a transaction with the solver");
        }
    }

    /// Streams live solver events until `shutdown`, reconnecting with backoff (1 s .. 30 s).
    /// The receiver sees events in order; after a reconnect it resumes after the last one seen.
    pub fn events(&self, shutdown: CancellationToken) -> mpsc::Receiver<Event> {
        let (sender, receiver) = mpsc::channel(256);
        let ws_base = self.base.replacen("http", "ws", 1);
        tokio::spawn(async move {
            let mut last: Option<u64> = None;
            let mut backoff = Duration::from_millis(250);
            loop {
                let url = match last {
                    Some(seq) => format!("{ws_base}/ws?since={seq}"),
                    None => format!("{ws_base}/ws"),
                };
                let connect = tokio::select! {
                    _ = shutdown.cancelled() => return,
                    connect = crate::tls::connect_ws(&url) => connect,
                };
                match connect {
                    Ok(mut stream) => {
                        backoff = Duration::from_millis(250);
                        loop {
                            let message = tokio::select! {
                                _ = shutdown.cancelled() => return,
                                message = stream.next() => message,
                            };
                            let Some(Ok(message)) = message else { break };
                            let Ok(text) = message.to_text() else {
                                continue;
                            };
                            let Ok(event) = serde_json::from_str::<Event>(text) else {
                                continue;
                            };
                            last = Some(event.seq);
                            if sender.send(event).await.is_err() {
                                return;
                            }
                        }
                    }
                    Err(error) => {
                        tracing::debug!(%error, %url, "event stream unavailable; retrying")
                    }
                }
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
        });
        receiver
    }
}

/// The solver's URL: SOLVER_URL if set, else what the solver published in the Users contract.
pub async fn solver_url(
    chain: &crate::chain::Chain,
    solver: ethers::types::Address,
    configured: Option<&str>,
) -> anyhow::Result<String> {
    if let Some(url) = configured {
        return Ok(url.to_string());
    }
    let user = chain
        .contracts
        .users
        .get_user(solver)
        .call()
        .await
        .map_err(|e| {
            anyhow::anyhow!("cannot read the solver's record in the Users contract: {e}")
        })?;
    if user.url.is_empty() {
        anyhow::bail!("solver {solver:?} has not published a URL in the Users contract; start it with SERVER_URL set, or set SOLVER_URL");
    }
    Ok(user.url)
}
