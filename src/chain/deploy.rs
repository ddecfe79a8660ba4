//! Deploys the contracts (the same order and wiring as `contracts/script/Deploy.s.sol`),
//! funds accounts and reads balances: what `lilypad chain` and `lilypad dev` do.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ethers::providers::Middleware;
use ethers::types::{Address, BlockNumber, Eip1559TransactionRequest, U256};
use ethers::utils::get_contract_address;
use serde::{Deserialize, Serialize};

use super::bindings::*;
use super::client::{revert_error, ChainError, Client};

/// Where each contract lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deployment {
    pub controller: Address,
    pub token: Address,
    pub users: Address,
    pub storage: Address,
    pub payments: Address,
    pub mediation: Address,
    pub job_creator: Address,
    pub example_client: Address,
}

/// Deployment choices (the forge script reads the same from env).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeploySettings {
    /// Receives slashed collateral.
    pub treasury: Address,
    /// May complete and fail on-chain job requests (`lilypad jc`'s key).
    pub job_creator_operator: Address,
    /// Use this ERC-20 instead of deploying the Lilypad token.
    pub existing_token: Option<Address>,
    /// Supply minted to the deployer when the token is deployed.
    pub token_supply: U256,
    /// Deposit an on-chain job request must carry.
    pub job_deposit: U256,
    /// Seconds after which an unserved request may be cancelled.
    pub request_timeout: U256,
}

impl DeploySettings {
    /// A network of our own: a new token (10^9 LP to the deployer), a 2 LP deposit per
    /// on-chain request and a day before it may be cancelled (`lilypad dev`,
    /// `lilypad chain bootstrap`).
    pub fn own_network(treasury: Address, job_creator_operator: Address) -> DeploySettings {
        DeploySettings {
            treasury,
            job_creator_operator,
            existing_token: None,
            token_supply: U256::from(1_000_000_000u128 * 10u128.pow(18)),
            job_deposit: U256::from(2u128 * 10u128.pow(18)),
            request_timeout: U256::from(86_400u64),
        }
    }
}

/// How `lilypad chain deploy` deploys on a real chain.
#[derive(Debug, Clone)]
pub struct DeployOptions {
    /// Blocks each deployment waits for (1: its own block).
    pub confirmations: usize,
    /// Where progress is kept, so an interrupted deployment resumes; None: not kept.
    pub journal: Option<PathBuf>,
}

impl Default for DeployOptions {
    fn default() -> Self {
        DeployOptions {
            confirmations: 1,
            journal: None,
        }
    }
}

/// An unfinished (or finished) deployment: the contracts go at consecutive nonces of the
/// deployer from `first_nonce` on, so which are already deployed, and where, follows from
/// the deployer's transaction count.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Journal {
    pub chain_id: u64,
    pub deployer: Address,
    pub first_nonce: u64,
    pub settings: DeploySettings,
    pub complete: Option<Deployment>,
}

impl Journal {
    /// The file of `deployer`'s deployments on chain `chain_id` under `dir`.
    pub fn path(dir: &Path, chain_id: u64, deployer: Address) -> PathBuf {
        dir.join(format!("chain-{chain_id}-{deployer:?}.json"))
    }

    fn load(path: &Path) -> Result<Option<Journal>, ChainError> {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
                ChainError::Invalid(format!(
                    "the deployment journal {} is damaged ({e}); remove it to deploy afresh",
                    path.display()
                ))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(ChainError::Invalid(format!(
                "cannot read {}: {e}",
                path.display()
            ))),
        }
    }

    fn save(&self, path: &Path) -> Result<(), ChainError> {
        serde_json::to_vec_pretty(self)
            .map_err(std::io::Error::from)
            .and_then(|json| crate::files::write_replacing(path, &json))
            .map_err(|e| ChainError::Invalid(format!("cannot write {}: {e}", path.display())))
    }
}

/// Deploys everything with the client's key, waiting for one block each.
pub async fn deploy(
    client: Arc<Client>,
    settings: &DeploySettings,
) -> Result<Deployment, ChainError> {
    deploy_with(client, settings, &DeployOptions::default()).await
}

/// Deploys everything with the client's key (EIP-1559 transactions, fees from the node's
/// fee history): the token (unless an existing one is used), then users, storage, payments,
/// mediation, the on-chain job creator, the controller and the example client, at
/// consecutive nonces. Storage, payments and mediation are built pointing at the address the
/// controller will get. With a journal, a deployment that was interrupted half way resumes:
/// contracts already mined are kept, a transaction still in the pool is waited for, and the
/// rest are sent.
pub async fn deploy_with(
    client: Arc<Client>,
    settings: &DeploySettings,
    options: &DeployOptions,
) -> Result<Deployment, ChainError> {
    let deployer = client.address();
    let chain_id = client
        .get_chainid()
        .await
        .map_err(|e| rpc("read the chain id", e))?
        .as_u64();
    let resumed = match &options.journal {
        Some(path) => Journal::load(path)?.filter(|journal| {
            journal.complete.is_none()
                && journal.chain_id == chain_id
                && journal.deployer == deployer
        }),
        None => None,
    };
    let journal = match resumed {
        Some(journal) => {
            if journal.settings != *settings {
                return Err(ChainError::Invalid(format!(
                    "an unfinished deployment in {} was started with other settings ({:?}); finish it with the same flags, or remove the file to deploy afresh",
                    options.journal.as_deref().unwrap_or(Path::new("?")).display(),
                    journal.settings
                )));
            }
            eprintln!(
                "resuming the deployment that started at nonce {} of {deployer:?}",
                journal.first_nonce
            );
            journal
        }
        None => {
            let mined = nonce(&client, deployer, BlockNumber::Latest).await?;
            let pending = nonce(&client, deployer, BlockNumber::Pending).await?;
            if pending != mined {
                return Err(ChainError::Invalid(format!(
                    "{deployer:?} has {} transaction(s) waiting in the pool; deploy once they are mined (the contracts' addresses follow from the deployer's nonces)",
                    pending - mined
                )));
            }
            let journal = Journal {
                chain_id,
                deployer,
                first_nonce: mined,
                settings: settings.clone(),
                complete: None,
            };
            if let Some(path) = &options.journal {
                journal.save(path)?;
            }
            journal
        }
    };
    let step = Step {
        client: client.clone(),
        deployer,
        confirmations: options.confirmations,
    };
    let mut next = journal.first_nonce;
    let token = match settings.existing_token {
        Some(token) => token,
        None => {
            let deploying = LilypadToken::deploy(client.clone(), settings.token_supply)
                .map_err(|e| ChainError::Invalid(e.to_string()))?;
            step.place("the token", take(&mut next), deploying).await?
        }
    };
    macro_rules! place {
        ($what:literal, $contract:ty, $args:expr) => {{
            let nonce = take(&mut next);
            let deploying = <$contract>::deploy(client.clone(), $args)
                .map_err(|e| ChainError::Invalid(e.to_string()))?;
            step.place($what, nonce, deploying).await?
        }};
    }
    let predicted = get_contract_address(deployer, next + 5);
    let users = place!("users", LilypadUsers<Client>, ());
    let storage = place!("storage", LilypadStorage<Client>, predicted);
    let payments = place!(
        "payments",
        LilypadPayments<Client>,
        (predicted, token, settings.treasury, deployer)
    );
    let mediation = place!("mediation", LilypadMediation<Client>, predicted);
    let job_creator = place!(
        "the on-chain job creator",
        LilypadOnChainJobCreator<Client>,
        (
            token,
            storage,
            settings.job_creator_operator,
            settings.job_deposit,
            settings.request_timeout,
            deployer
        )
    );
    let controller = place!(
        "the controller",
        LilypadController<Client>,
        (storage, payments, mediation, users, job_creator)
    );
    if controller != predicted {
        return Err(ChainError::Invalid(format!(
            "the controller landed at {controller:?}, not {predicted:?}: another transaction from the deployer interfered; deploy again"
        )));
    }
    let example_client = place!("the example client", ExampleClient<Client>, job_creator);
    let deployment = Deployment {
        controller,
        token,
        users,
        storage,
        payments,
        mediation,
        job_creator,
        example_client,
    };
    if let Some(path) = &options.journal {
        Journal {
            complete: Some(deployment),
            ..journal
        }
        .save(path)?;
    }
    Ok(deployment)
}

/// The next nonce, counted on.
fn take(next: &mut u64) -> u64 {
    *next += 1;
    *next - 1
}

fn rpc(what: &str, error: impl std::fmt::Display) -> ChainError {
    ChainError::Rpc {
        what: what.into(),
        message: error.to_string(),
    }
}

async fn nonce(client: &Client, who: Address, at: BlockNumber) -> Result<u64, ChainError> {
    client
        .get_transaction_count(who, Some(at.into()))
        .await
        .map(|count| count.as_u64())
        .map_err(|e| rpc("read the deployer's nonce", e))
}

/// How long a deployment sent before an interruption may take to be mined.
const PENDING_LIMIT: std::time::Duration = std::time::Duration::from_secs(600);

/// Places one contract at one nonce of the deployer.
struct Step {
    client: Arc<Client>,
    deployer: Address,
    confirmations: usize,
}

impl Step {
    /// The contract `what` at the deployer's `nonce`: already there (kept), sent before an
    /// interruption (waited for), or deployed now.
    async fn place<C>(
        &self,
        what: &str,
        nonce: u64,
        deploying: ethers::contract::ContractDeployer<Client, C>,
    ) -> Result<Address, ChainError>
    where
        C: From<ethers::contract::ContractInstance<Arc<Client>, Client>>,
    {
        let address = get_contract_address(self.deployer, nonce);
        let started = std::time::Instant::now();
        loop {
            let mined = nonce_of(self, BlockNumber::Latest).await?;
            if mined > nonce {
                let code = self
                    .client
                    .get_code(address, None)
                    .await
                    .map_err(|e| rpc("read deployed code", e))?;
                if code.is_empty() {
                    return Err(ChainError::Invalid(format!(
                        "nonce {nonce} of {:?} was used by another transaction, not by {what}: this deployment cannot be finished; remove its journal and deploy afresh",
                        self.deployer
                    )));
                }
                eprintln!("{what}: at {address:?} (deployed before)");
                return Ok(address);
            }
            if nonce_of(self, BlockNumber::Pending).await? <= nonce {
                break;
            }
            if started.elapsed() > PENDING_LIMIT {
                return Err(ChainError::Invalid(format!(
                    "{what}, sent before the interruption with nonce {nonce}, was not mined in {} s; the node may be stuck or its fee too low",
                    PENDING_LIMIT.as_secs()
                )));
            }
            tokio::time::sleep(self.client.provider().get_interval()).await;
        }
        let (_, receipt) = deploying
            .nonce(nonce)
            .confirmations(self.confirmations)
            .send_with_receipt()
            .await
            .map_err(|e| revert_error(&format!("deploy {what}"), &e))?;
        let deployed = receipt.contract_address.unwrap_or(address);
        eprintln!(
            "{what}: deployed at {deployed:?} (nonce {nonce}, block {}, {} confirmation(s))",
            receipt.block_number.unwrap_or_default(),
            self.confirmations
        );
        Ok(deployed)
    }
}

async fn nonce_of(step: &Step, at: BlockNumber) -> Result<u64, ChainError> {
    nonce(&step.client, step.deployer, at).await
}

/// Sends `eth` wei of ether and `tokens` wei of `token` from the client's key to `to`.
pub async fn fund(
    client: Arc<Client>,
    token: Address,
    to: Address,
    eth: U256,
    tokens: U256,
) -> Result<(), ChainError> {
    if !eth.is_zero() {
        let tx = Eip1559TransactionRequest::new()
            .to(to)
            .value(eth)
            .from(client.address());
        let pending = client
            .send_transaction(tx, None)
            .await
            .map_err(|e| ChainError::Rpc {
                what: format!("send ether to {to:?}"),
                message: e.to_string(),
            })?;
        let receipt = pending.await.map_err(|e| ChainError::Rpc {
            what: format!("send ether to {to:?}"),
            message: e.to_string(),
        })?;
        if receipt.and_then(|r| r.status) != Some(1.into()) {
            return Err(ChainError::Invalid(format!(
                "sending ether to {to:?} failed"
            )));
        }
    }
    if !tokens.is_zero() {
        let token = LilypadToken::new(token, client.clone());
        let call = token.transfer(to, tokens);
        let what = format!("send tokens to {to:?}");
        let receipt = call
            .send()
            .await
            .map_err(|e| revert_error(&what, &e))?
            .await
            .map_err(|e| ChainError::Rpc {
                what: what.clone(),
                message: e.to_string(),
            })?;
        if receipt.and_then(|r| r.status) != Some(1.into()) {
            return Err(ChainError::Invalid(format!("{what} failed")));
        }
    }
    Ok(())
}
