//! The solver API's wire records: what the solver returns for offers, deals and
//! transactions, the deal filter it accepts, and the body of every error. Both the solver
//! (server) and its client use these; neither owns them.

use ethers::types::Address;
use serde::{Deserialize, Serialize};

use super::{Deal, JobOffer, ResourceOffer};

/// A deal as the solver knows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct DealRecord {
    pub deal: Deal,
    /// The on-chain state number (0 until the chain says otherwise).
    pub state: u8,
    /// Name of the state, for people.
    pub state_name: String,
    /// keccak256(abi.encode(dealId, terms)), hex.
    pub deal_key: String,
}

/// A job offer and what became of it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct JobOfferRecord {
    pub offer: JobOffer,
    pub deal_id: Option<String>,
}

/// A resource offer and what became of it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ResourceOfferRecord {
    pub offer: ResourceOffer,
    pub deal_id: Option<String>,
    /// Unix ms of the last post or refresh.
    pub last_seen: u64,
}

/// A transaction a party reports for a deal.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TxRecord {
    pub deal_id: String,
    pub address: Address,
    pub action: String,
    pub tx_hash: String,
}

/// Which deals to list.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct DealFilter {
    pub job_creator: Option<Address>,
    pub resource_provider: Option<Address>,
    pub mediator: Option<Address>,
    pub job_offer: Option<String>,
    pub state: Option<u8>,
    /// The on-chain key (hex, as in [`DealRecord::deal_key`]).
    pub deal_key: Option<String>,
}

/// The JSON body of every error the solver returns.
#[derive(Debug, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: String,
}
