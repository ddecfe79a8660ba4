//! The bridge from an off-chain [`Deal`] to what the contracts take: its `DealTerms` and
//! its `dealKey = keccak256(abi.encode(dealId, terms))`, computed here exactly as Solidity does.

use ethers::abi::{Token, Tokenizable};
use ethers::types::U256;
use ethers::utils::keccak256;

use super::bindings::{DealMembers, DealPricing, DealTerms, DealTimeout, DealTimeouts};
use crate::data::Deal;

/// The contract-side terms of `deal`.
pub fn terms_of(deal: &Deal) -> DealTerms {
    let timeout = |seconds: u64, collateral: u128| DealTimeout {
        timeout: seconds.into(),
        collateral: U256::from(collateral),
    };
    let t = &deal.timeouts;
    DealTerms {
        members: DealMembers {
            solver: deal.members.solver,
            job_creator: deal.members.job_creator,
            resource_provider: deal.members.resource_provider,
            mediator: deal.members.mediator,
        },
        timeouts: DealTimeouts {
            agree: timeout(t.agree, 0),
            submit_results: timeout(t.submit_results, t.submit_results_collateral),
            judge_results: timeout(t.judge_results, t.judge_results_collateral),
            mediate_results: timeout(t.mediate_results, 0),
        },
        pricing: DealPricing {
            instruction_price: U256::from(deal.pricing.instruction_price),
            payment_collateral: U256::from(deal.pricing.payment_collateral),
            results_collateral_multiple: deal.pricing.results_collateral_multiple.into(),
            mediation_fee: U256::from(deal.pricing.mediation_fee),
        },
    }
}

/// The key of the deal's on-chain record.
pub fn deal_key(deal_id: [u8; 32], terms: &DealTerms) -> [u8; 32] {
    keccak256(ethers::abi::encode(&[
        Token::FixedBytes(deal_id.to_vec()),
        terms.clone().into_token(),
    ]))
}

/// What the job creator escrows when it agrees: payment collateral + judge-results collateral.
pub fn job_creator_deposit(deal: &Deal) -> U256 {
    U256::from(deal.pricing.payment_collateral) + U256::from(deal.timeouts.judge_results_collateral)
}

/// The cost of `instructions` at the deal's price.
pub fn cost(deal: &Deal, instructions: u64) -> U256 {
    U256::from(deal.pricing.instruction_price) * U256::from(instructions)
}

/// What the RP escrows when it submits results: results collateral multiple x cost.
pub fn results_collateral(deal: &Deal, instructions: u64) -> U256 {
    cost(deal, instructions) * U256::from(deal.pricing.results_collateral_multiple)
}
