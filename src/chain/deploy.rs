//! Deploys the contracts (the same order and wiring as `contracts/script/Deploy.s.sol`),
//! funds accounts and reads balances: what `lilypad chain` and `lilypad dev` do.

use std::sync::Arc;

use ethers::providers::Middleware;
use ethers::types::{Address, TransactionRequest, U256};
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
#[derive(Debug, Clone)]
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

fn failed(what: &str) -> impl Fn(ethers::contract::ContractError<Client>) -> ChainError + '_ {
    move |e| revert_error(what, &e)
}

/// Deploys everything with the client's key. The controller goes at the deployer's
/// nonce + 5 after the token (storage, payments and mediation are built pointing at it).
pub async fn deploy(
    client: Arc<Client>,
    settings: &DeploySettings,
) -> Result<Deployment, ChainError> {
    let deployer = client.address();
    let token = match settings.existing_token {
        Some(token) => token,
        None => LilypadToken::deploy(client.clone(), settings.token_supply)
            .map_err(|e| ChainError::Invalid(e.to_string()))?
            .send()
            .await
            .map_err(failed("deploy the token"))?
            .address(),
    };
    let nonce = client
        .get_transaction_count(deployer, None)
        .await
        .map_err(|e| ChainError::Rpc {
            what: "read the deployer's nonce".into(),
            message: e.to_string(),
        })?;
    let predicted = get_contract_address(deployer, nonce + 5);
    macro_rules! deploy {
        ($what:literal, $contract:ty, $args:expr) => {
            <$contract>::deploy(client.clone(), $args)
                .map_err(|e| ChainError::Invalid(e.to_string()))?
                .send()
                .await
                .map_err(failed(concat!("deploy ", $what)))?
                .address()
        };
    }
    let users = deploy!("users", LilypadUsers<Client>, ());
    let storage = deploy!("storage", LilypadStorage<Client>, predicted);
    let payments = deploy!(
        "payments",
        LilypadPayments<Client>,
        (predicted, token, settings.treasury, deployer)
    );
    let mediation = deploy!("mediation", LilypadMediation<Client>, predicted);
    let job_creator = deploy!(
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
    let controller = deploy!(
        "the controller",
        LilypadController<Client>,
        (storage, payments, mediation, users, job_creator)
    );
    if controller != predicted {
        return Err(ChainError::Invalid(format!(
            "the controller landed at {controller:?}, not {predicted:?}: another transaction from the deployer interfered; deploy again"
        )));
    }
    let example_client = deploy!("the example client", ExampleClient<Client>, job_creator);
    Ok(Deployment {
        controller,
        token,
        users,
        storage,
        payments,
        mediation,
        job_creator,
        example_client,
    })
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
        let tx = TransactionRequest::new()
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
