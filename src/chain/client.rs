//! `Chain`: one key's view of the deployed contracts. It sends transactions through one
//! nonce manager per key (estimate first, so a reverting call consumes no nonce), checks
//! every receipt's status, and turns revert data into the contracts' named errors. Several
//! processes may send with the same key (many `lilypad run` at once): when the node says a
//! nonce was taken, the sender reads the key's count again and resends.

use std::sync::Arc;
use std::time::Duration;

use ethers::contract::{ContractCall, ContractError};
use ethers::middleware::SignerMiddleware;
use ethers::providers::{Http, Middleware, Provider};
use ethers::signers::{LocalWallet, Signer};
use ethers::types::{Address, BlockNumber, TransactionReceipt, U256};
use tokio::sync::{mpsc, Mutex};
use tokio_util::sync::CancellationToken;

use super::bindings::*;

/// The middleware every contract handle uses.
pub type Client = SignerMiddleware<Provider<Counted>, LocalWallet>;

/// The chain's HTTP JSON-RPC transport, counting every call (and every failed one) by
/// method for /metrics.
#[derive(Debug, Clone)]
pub struct Counted(Http);

#[async_trait::async_trait]
impl ethers::providers::JsonRpcClient for Counted {
    type Error = ethers::providers::HttpClientError;

    async fn request<T, R>(&self, method: &str, params: T) -> Result<R, Self::Error>
    where
        T: std::fmt::Debug + serde::Serialize + Send + Sync,
        R: serde::de::DeserializeOwned + Send,
    {
        let result = self.0.request(method, params).await;
        crate::metrics::chain_call(method, result.is_ok());
        result
    }
}

/// What went wrong talking to the chain.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    #[error("cannot reach the chain at {url}: {source}. Is WEB3_RPC_URL right and the node up?")]
    Unreachable {
        url: String,
        source: ethers::providers::ProviderError,
    },
    #[error("{what}: the contract refused: {reason}")]
    Reverted { what: String, reason: String },
    #[error("{what}: transaction {tx:?} failed (status 0){why}")]
    Failed {
        what: String,
        tx: ethers::types::H256,
        /// Why, as replaying it on the state before its block says (empty if unknown).
        why: String,
    },
    #[error("{what}: no receipt for {tx:?} after {secs} s; the node may be stuck or the gas price too low")]
    NoReceipt {
        what: String,
        tx: ethers::types::H256,
        secs: u64,
    },
    #[error("{what}: {message}")]
    Rpc { what: String, message: String },
    #[error("{0}")]
    Invalid(String),
}

/// Every deployed contract, found from the controller.
#[derive(Clone)]
pub struct Contracts {
    pub controller: LilypadController<Client>,
    pub storage: LilypadStorage<Client>,
    pub payments: LilypadPayments<Client>,
    pub mediation: LilypadMediation<Client>,
    pub users: LilypadUsers<Client>,
    pub token: LilypadToken<Client>,
    pub job_creator: LilypadOnChainJobCreator<Client>,
}

/// One key's connection to the chain.
pub struct Chain {
    pub client: Arc<Client>,
    pub contracts: Contracts,
    pub chain_id: u64,
    pub rpc_url: String,
    /// The node's WebSocket endpoint, for new-block subscriptions (`WEB3_WS_URL`).
    pub ws_url: Option<String>,
    poll: Duration,
    /// The next nonce to use, or None to ask the node. Held while a transaction is sent.
    nonce: Mutex<Option<U256>>,
}

/// Connects to `rpc_url` and creates an HTTP provider that polls every `poll`.
pub async fn provider(
    rpc_url: &str,
    poll: Duration,
) -> Result<(Provider<Counted>, u64), ChainError> {
    let url = reqwest::Url::parse(rpc_url)
        .map_err(|e| ChainError::Invalid(format!("WEB3_RPC_URL {rpc_url:?} is not a URL: {e}")))?;
    let http = crate::tls::http_client()
        .build()
        .map_err(|e| ChainError::Invalid(format!("cannot set up TLS for {rpc_url:?}: {e}")))?;
    let provider = Provider::new(Counted(Http::new_with_client(url, http))).interval(poll);
    let chain_id = provider
        .get_chainid()
        .await
        .map_err(|source| ChainError::Unreachable {
            url: rpc_url.to_string(),
            source,
        })?;
    Ok((provider, chain_id.as_u64()))
}

/// A signing client for `wallet` on `rpc_url`.
pub async fn signing_client(
    rpc_url: &str,
    wallet: LocalWallet,
    poll: Duration,
) -> Result<(Arc<Client>, u64), ChainError> {
    let (provider, chain_id) = provider(rpc_url, poll).await?;
    let wallet = wallet.with_chain_id(chain_id);
    Ok((Arc::new(SignerMiddleware::new(provider, wallet)), chain_id))
}

/// Counts a sent transaction for /metrics: mined (with its gas), reverted, or failed
/// (refused by the node, never sent or never mined).
fn counted(
    result: Result<TransactionReceipt, ChainError>,
) -> Result<TransactionReceipt, ChainError> {
    match &result {
        Ok(receipt) => {
            crate::metrics::transaction("mined", receipt.gas_used.map(|gas| gas.low_u64()))
        }
        Err(ChainError::Failed { .. }) => crate::metrics::transaction("reverted", None),
        Err(_) => crate::metrics::transaction("failed", None),
    }
    result
}

/// What waiting for a sent transaction found.
enum Waited {
    Mined(TransactionReceipt),
    /// Mined, and reverted.
    Failed(TransactionReceipt),
    /// Its nonce was used by another transaction: it will never be mined.
    Replaced,
}

/// Looks in a row (a poll apart) that must find our nonce mined without our transaction
/// before it counts as replaced.
const REPLACED_LOOKS: u32 = 3;

/// How many times a send is retried when another sender took its nonce.
const NONCE_RETRIES: u32 = 25;

/// Whether a node's refusal means the nonce was already used (by another process sending
/// with the same key, or a transaction of ours the node already has).
fn nonce_taken(message: &str) -> bool {
    let message = message.to_ascii_lowercase();
    [
        "nonce too low",
        "already known",
        "replacement transaction underpriced",
        "nonce has already been used",
        "transaction already imported",
    ]
    .iter()
    .any(|needle| message.contains(needle))
}

impl Chain {
    /// Connects `wallet` to the contracts behind `controller`.
    pub async fn connect(
        rpc_url: &str,
        wallet: LocalWallet,
        controller: Address,
        poll: Duration,
    ) -> Result<Chain, ChainError> {
        let (client, chain_id) = signing_client(rpc_url, wallet, poll).await?;
        let code = client
            .get_code(controller, None)
            .await
            .map_err(|e| ChainError::Rpc {
                what: "read the controller's code".into(),
                message: e.to_string(),
            })?;
        if code.is_empty() {
            return Err(ChainError::Invalid(format!(
                "no contract at WEB3_CONTROLLER_ADDRESS {controller:?} on chain {chain_id}; deploy with `lilypad chain deploy` or fix the address"
            )));
        }
        let controller = LilypadController::new(controller, client.clone());
        let read = |what: &str, e: ContractError<Client>| ChainError::Rpc {
            what: format!("read {what}"),
            message: e.to_string(),
        };
        let storage = controller
            .deal_storage()
            .call()
            .await
            .map_err(|e| read("the storage address", e))?;
        let payments = controller
            .payments()
            .call()
            .await
            .map_err(|e| read("the payments address", e))?;
        let mediation = controller
            .mediation()
            .call()
            .await
            .map_err(|e| read("the mediation address", e))?;
        let users = controller
            .users()
            .call()
            .await
            .map_err(|e| read("the users address", e))?;
        let job_creator = controller
            .job_creator()
            .call()
            .await
            .map_err(|e| read("the job creator address", e))?;
        let token = controller
            .token()
            .call()
            .await
            .map_err(|e| read("the token address", e))?;
        let contracts = Contracts {
            storage: LilypadStorage::new(storage, client.clone()),
            payments: LilypadPayments::new(payments, client.clone()),
            mediation: LilypadMediation::new(mediation, client.clone()),
            users: LilypadUsers::new(users, client.clone()),
            token: LilypadToken::new(token, client.clone()),
            job_creator: LilypadOnChainJobCreator::new(job_creator, client.clone()),
            controller,
        };
        Ok(Chain {
            client,
            contracts,
            chain_id,
            rpc_url: rpc_url.to_string(),
            ws_url: None,
            poll,
            nonce: Mutex::new(None),
        })
    }

    /// New block numbers as they come, when the node's WebSocket endpoint is known; None
    /// otherwise (roles then rely on polling alone).
    pub fn new_heads(&self, shutdown: CancellationToken) -> Option<mpsc::Receiver<u64>> {
        self.ws_url
            .clone()
            .map(|url| super::heads::subscribe(url, shutdown))
    }

    /// This key's address.
    pub fn address(&self) -> Address {
        self.client.address()
    }

    /// Sends `call` and waits for a successful receipt. `what` names the step in errors.
    /// Counted for /metrics as mined (with its gas), reverted, or failed (refused by the
    /// node, never sent or never mined).
    pub async fn send<D: ethers::abi::Detokenize>(
        &self,
        what: &str,
        call: ContractCall<Client, D>,
    ) -> Result<TransactionReceipt, ChainError> {
        counted(self.send_uncounted(what, call).await)
    }

    async fn send_uncounted<D: ethers::abi::Detokenize>(
        &self,
        what: &str,
        call: ContractCall<Client, D>,
    ) -> Result<TransactionReceipt, ChainError> {
        let gas = call
            .estimate_gas()
            .await
            .map_err(|e| revert_error(what, &e))?;
        let mut tx = call.tx.clone();
        tx.set_from(self.address());
        tx.set_gas(gas * 6 / 5 + 10_000);
        self.send_prepared(what, tx).await
    }

    /// Sends `value` wei of ether to `to` and waits for its receipt (counted as [`Chain::send`]
    /// counts).
    pub async fn send_ether(
        &self,
        to: Address,
        value: U256,
    ) -> Result<TransactionReceipt, ChainError> {
        let tx: ethers::types::transaction::eip2718::TypedTransaction =
            ethers::types::Eip1559TransactionRequest::new()
                .from(self.address())
                .to(to)
                .value(value)
                .gas(21_000u64)
                .into();
        let what = format!("send ether to {to:?}");
        counted(self.send_prepared(&what, tx).await)
    }

    /// Sends a transaction whose gas is set, with this key's next nonce, until mined (sent
    /// again with a fresh nonce if another sender took its nonce).
    async fn send_prepared(
        &self,
        what: &str,
        tx: ethers::types::transaction::eip2718::TypedTransaction,
    ) -> Result<TransactionReceipt, ChainError> {
        let mut replaced = 0;
        loop {
            let (hash, nonce) = self.submit(what, &tx).await?;
            match self.wait_receipt(what, hash, nonce).await {
                Ok(Waited::Mined(receipt)) => return Ok(receipt),
                Ok(Waited::Failed(receipt)) => {
                    return Err(ChainError::Failed {
                        what: what.to_string(),
                        tx: hash,
                        why: self.why_failed(&tx, nonce, receipt.block_number).await,
                    })
                }
                // Another process sent a different transaction with our nonce and the node
                // kept that one: ours can never be mined. Send it again with a fresh nonce.
                Ok(Waited::Replaced) if replaced < NONCE_RETRIES => {
                    replaced += 1;
                    tracing::info!(?hash, %nonce, "another transaction with this key took our nonce; sending ours again");
                    *self.nonce.lock().await = None;
                }
                Ok(Waited::Replaced) => {
                    *self.nonce.lock().await = None;
                    return Err(ChainError::Rpc {
                        what: what.to_string(),
                        message: format!(
                            "other senders with this key took its nonce {replaced} times; try again"
                        ),
                    });
                }
                Err(error) => {
                    if let ChainError::NoReceipt { .. } = &error {
                        // Never mined (a nonce gap, say): ask the node for the nonce next
                        // time instead of building on a stuck one.
                        *self.nonce.lock().await = None;
                    }
                    return Err(error);
                }
            }
        }
    }

    /// Sends `tx` with the next nonce of this key; returns its hash and the nonce used.
    async fn submit(
        &self,
        what: &str,
        tx: &ethers::types::transaction::eip2718::TypedTransaction,
    ) -> Result<(ethers::types::H256, U256), ChainError> {
        let mut tx = tx.clone();
        let mut next = self.nonce.lock().await;
        let mut attempt = 0;
        loop {
            let nonce = match *next {
                Some(nonce) => nonce,
                None => self
                    .client
                    .get_transaction_count(self.address(), Some(BlockNumber::Pending.into()))
                    .await
                    .map_err(|e| ChainError::Rpc {
                        what: format!("{what}: read the nonce"),
                        message: e.to_string(),
                    })?,
            };
            tx.set_nonce(nonce);
            match self.client.send_transaction(tx.clone(), None).await {
                Ok(pending) => {
                    *next = Some(nonce + 1);
                    return Ok((pending.tx_hash(), nonce));
                }
                Err(e) => {
                    // Ask the node next time: we do not know whether the nonce was used.
                    *next = None;
                    let message = e.to_string();
                    attempt += 1;
                    if nonce_taken(&message) && attempt < NONCE_RETRIES {
                        // Another process sent with this key and took the nonce: read the
                        // node's count again (after a short random pause, so processes
                        // racing for the same nonce spread out) and resend.
                        tracing::debug!(%message, nonce = %nonce, attempt, "nonce taken by another sender; retrying");
                        let pause = rand::random::<u64>() % (20 * attempt as u64 + 1);
                        tokio::time::sleep(Duration::from_millis(pause)).await;
                        continue;
                    }
                    return Err(ChainError::Rpc {
                        what: what.to_string(),
                        message,
                    });
                }
            }
        }
    }

    /// Waits for the receipt of `tx`, sent with `nonce`: mined, or replaced (the key's mined
    /// count passed `nonce` without it: another sender's transaction took the nonce).
    async fn wait_receipt(
        &self,
        what: &str,
        tx: ethers::types::H256,
        nonce: U256,
    ) -> Result<Waited, ChainError> {
        const LIMIT: Duration = Duration::from_secs(180);
        let started = std::time::Instant::now();
        let mut replaced_looks = 0;
        loop {
            match self.client.get_transaction_receipt(tx).await {
                Ok(Some(receipt)) if receipt.status == Some(1.into()) => {
                    return Ok(Waited::Mined(receipt))
                }
                Ok(Some(receipt)) => return Ok(Waited::Failed(receipt)),
                Ok(None) => {
                    // The nonce was mined, yet not with our transaction. Seen on a few looks
                    // in a row, so a receipt the node stores just after its count is not
                    // taken for a replacement.
                    let mined = self
                        .client
                        .get_transaction_count(self.address(), Some(BlockNumber::Latest.into()))
                        .await
                        .is_ok_and(|mined| mined > nonce);
                    replaced_looks = if mined { replaced_looks + 1 } else { 0 };
                    if replaced_looks >= REPLACED_LOOKS {
                        return Ok(Waited::Replaced);
                    }
                }
                Err(e) => tracing::debug!(%e, ?tx, "receipt not readable yet"),
            }
            if started.elapsed() > LIMIT {
                return Err(ChainError::NoReceipt {
                    what: what.to_string(),
                    tx,
                    secs: LIMIT.as_secs(),
                });
            }
            tokio::time::sleep(self.poll.min(Duration::from_millis(500))).await;
        }
    }

    /// Why a mined transaction failed: it is replayed on the state before its block (the
    /// state it met, unless another transaction of that block came first).
    async fn why_failed(
        &self,
        tx: &ethers::types::transaction::eip2718::TypedTransaction,
        nonce: U256,
        block: Option<ethers::types::U64>,
    ) -> String {
        use ethers::middleware::MiddlewareError;
        let Some(block) = block else {
            return String::new();
        };
        let mut tx = tx.clone();
        tx.set_nonce(nonce);
        let before = BlockNumber::Number(block.saturating_sub(1.into()));
        match self.client.call(&tx, Some(before.into())).await {
            Ok(_) => "; replayed on the state before its block it succeeds, so an earlier transaction in that block changed what it met".into(),
            Err(error) => {
                let reason = error
                    .as_error_response()
                    .and_then(|response| response.as_revert_data())
                    .map(|data| describe_revert(&data))
                    .unwrap_or_else(|| error.to_string());
                format!(": {reason}")
            }
        }
    }

    /// Makes sure the Payments contract may take at least `amount` of our tokens.
    pub async fn ensure_allowance(&self, amount: U256) -> Result<(), ChainError> {
        let payments = self.contracts.payments.address();
        let current = self
            .contracts
            .token
            .allowance(self.address(), payments)
            .call()
            .await
            .map_err(|e| ChainError::Rpc {
                what: "read the token allowance".into(),
                message: e.to_string(),
            })?;
        if current < amount {
            self.send(
                "approve the payments contract",
                self.contracts.token.approve(payments, U256::MAX),
            )
            .await?;
        }
        Ok(())
    }

    /// The token balance of `who`.
    pub async fn token_balance(&self, who: Address) -> Result<U256, ChainError> {
        self.contracts
            .token
            .balance_of(who)
            .call()
            .await
            .map_err(|e| ChainError::Rpc {
                what: format!("read the token balance of {who:?}"),
                message: e.to_string(),
            })
    }

    /// The on-chain record of a deal (all zero if no party has agreed yet).
    /// The results id (sha2-256 digest of the results CID) the RP committed for a deal.
    pub async fn committed_results(&self, deal_key: [u8; 32]) -> Result<[u8; 32], ChainError> {
        self.contracts
            .storage
            .results_id_of(deal_key)
            .call()
            .await
            .map_err(|e| ChainError::Rpc {
                what: "read a deal's committed results id".into(),
                message: e.to_string(),
            })
    }

    pub async fn agreement(
        &self,
        deal_key: [u8; 32],
    ) -> Result<lilypad_storage::Agreement, ChainError> {
        self.contracts
            .storage
            .agreement(deal_key)
            .call()
            .await
            .map_err(|e| ChainError::Rpc {
                what: "read a deal's agreement".into(),
                message: e.to_string(),
            })
    }

    /// The poll interval this client was made with.
    pub fn poll_interval(&self) -> Duration {
        self.poll
    }
}

/// Names the contract error in `error`, if its revert data is one of ours.
pub fn revert_error(what: &str, error: &ContractError<Client>) -> ChainError {
    let reason = error
        .as_revert()
        .map(describe_revert)
        .unwrap_or_else(|| error.to_string());
    ChainError::Reverted {
        what: what.to_string(),
        reason,
    }
}

/// A readable form of revert data from any of our contracts.
pub fn describe_revert(data: &ethers::types::Bytes) -> String {
    use ethers::abi::AbiDecode;
    if let Ok(error) = lilypad_controller::LilypadControllerErrors::decode(data) {
        return format!("{error:?}");
    }
    if let Ok(error) = lilypad_storage::LilypadStorageErrors::decode(data) {
        return format!("{error:?}");
    }
    if let Ok(error) = lilypad_payments::LilypadPaymentsErrors::decode(data) {
        return format!("{error:?}");
    }
    if let Ok(error) = lilypad_mediation::LilypadMediationErrors::decode(data) {
        return format!("{error:?}");
    }
    if let Ok(error) = lilypad_on_chain_job_creator::LilypadOnChainJobCreatorErrors::decode(data) {
        return format!("{error:?}");
    }
    if let Ok(error) = lilypad_token::LilypadTokenErrors::decode(data) {
        return format!("{error:?}");
    }
    format!("revert data 0x{}", hex::encode(data))
}
