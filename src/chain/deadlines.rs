//! Deadlines: which on-chain timeout a party may call for a deal, from when, and what the
//! deal's end means for the job creator's money. Every role checks its open deals against
//! these on each tick and calls what it is entitled to, so no escrow stays locked (the
//! README's "Deadlines" and "Money" sections say who may call which timeout and what it pays).

use std::time::{SystemTime, UNIX_EPOCH};

use ethers::providers::Middleware;
use ethers::types::{BlockNumber, TransactionReceipt};

use super::bindings::lilypad_storage::Agreement;
use super::client::{Chain, ChainError};
use super::terms::terms_of;
use crate::data::amount::display;
use crate::data::{Deal, DealState, Timeouts};

/// Which side of a deal a role plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Party {
    JobCreator,
    ResourceProvider,
}

/// The four on-chain timeouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timeout {
    /// The second party never agreed: the first gets its deposit back.
    Agree,
    /// The RP never submitted results: the JC is refunded, the RP's collateral slashed.
    SubmitResults,
    /// The JC never judged the results: the RP is paid, the JC's collateral slashed.
    JudgeResults,
    /// The mediator never decided: everyone gets back what they paid in.
    MediateResults,
}

impl Timeout {
    /// The state the deal ends in when this timeout is called.
    pub fn state(self) -> DealState {
        match self {
            Timeout::Agree => DealState::TimeoutAgree,
            Timeout::SubmitResults => DealState::TimeoutSubmitResults,
            Timeout::JudgeResults => DealState::TimeoutJudgeResults,
            Timeout::MediateResults => DealState::TimeoutMediateResults,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Timeout::Agree => "agree",
            Timeout::SubmitResults => "submit-results",
            Timeout::JudgeResults => "judge-results",
            Timeout::MediateResults => "mediate-results",
        }
    }
}

/// A timeout a party may call once the chain's clock is past `deadline` (unix seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Due {
    pub timeout: Timeout,
    pub deadline: u64,
}

/// The timeout `party` calls in the deal's current on-chain state, if any. The contracts let
/// anyone call a due timeout (its payouts go to the members whoever calls); each party calls
/// the one that returns its own money: whoever agreed first ends a negotiation, the JC a job
/// whose results never came, the RP a judgement that never came (it is paid and gets its
/// collaterals back), either a mediation that never came.
pub fn due(agreement: &Agreement, timeouts: &Timeouts, party: Party) -> Option<Due> {
    let since = agreement.state_since;
    let state = DealState::try_from(agreement.state).ok()?;
    let (timeout, seconds) = match (state, party) {
        (DealState::DealNegotiating, Party::JobCreator)
            if agreement.job_creator_agreed && !agreement.resource_provider_agreed =>
        {
            (Timeout::Agree, timeouts.agree)
        }
        (DealState::DealNegotiating, Party::ResourceProvider)
            if agreement.resource_provider_agreed && !agreement.job_creator_agreed =>
        {
            (Timeout::Agree, timeouts.agree)
        }
        (DealState::DealAgreed, Party::JobCreator) => {
            (Timeout::SubmitResults, timeouts.submit_results)
        }
        (DealState::ResultsSubmitted, Party::ResourceProvider) => {
            (Timeout::JudgeResults, timeouts.judge_results)
        }
        (DealState::ResultsChecked, _) => (Timeout::MediateResults, timeouts.mediate_results),
        _ => return None,
    };
    Some(Due {
        timeout,
        deadline: since.saturating_add(seconds),
    })
}

/// The chain's notion of now: the later of this machine's clock and the head block's
/// timestamp (a chain whose clock runs ahead, like anvil after `evm_increaseTime`, is
/// believed). The contracts allow a timeout once `block.timestamp > deadline`.
pub async fn chain_now(chain: &Chain) -> Result<u64, ChainError> {
    let wall = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let head = chain
        .client
        .get_block(BlockNumber::Latest)
        .await
        .map_err(|e| ChainError::Rpc {
            what: "read the head block".into(),
            message: e.to_string(),
        })?;
    let block_time = head.map(|b| b.timestamp.low_u64()).unwrap_or(0);
    Ok(wall.max(block_time))
}

/// Calls `timeout` for `deal` (the estimate runs first, so a call that would revert, say
/// because the other side called first, costs nothing).
pub async fn call_timeout(
    chain: &Chain,
    deal: &Deal,
    timeout: Timeout,
) -> Result<TransactionReceipt, ChainError> {
    let deal_id = deal.chain_id().map_err(|e| ChainError::Rpc {
        what: "compute the deal id".into(),
        message: e.to_string(),
    })?;
    let terms = terms_of(deal);
    let controller = &chain.contracts.controller;
    let call = match timeout {
        Timeout::Agree => controller.timeout_agree(deal_id, terms),
        Timeout::SubmitResults => controller.timeout_submit_results(deal_id, terms),
        Timeout::JudgeResults => controller.timeout_judge_results(deal_id, terms),
        Timeout::MediateResults => controller.timeout_mediate_results(deal_id, terms),
    };
    chain
        .send(&format!("call the {} timeout", timeout.name()), call)
        .await
}

/// Calls the timeout `party` is entitled to if its deadline has passed; returns which one was
/// called. `Ok(None)` when nothing is due yet.
pub async fn call_if_due(
    chain: &Chain,
    deal: &Deal,
    agreement: &Agreement,
    party: Party,
) -> Result<Option<(Timeout, TransactionReceipt)>, ChainError> {
    let Some(due) = due(agreement, &deal.timeouts, party) else {
        return Ok(None);
    };
    if chain_now(chain).await? <= due.deadline {
        return Ok(None);
    }
    let receipt = call_due(chain, deal, agreement, due).await?;
    Ok(receipt.map(|receipt| (due.timeout, receipt)))
}

/// Calls `due`, whose deadline the caller saw pass. `Ok(None)` if the deal moved on before
/// our call landed (both sides may call the mediate-results timeout, and a verdict may land
/// at the same moment): then our call simply lost the race.
pub async fn call_due(
    chain: &Chain,
    deal: &Deal,
    agreement: &Agreement,
    due: Due,
) -> Result<Option<TransactionReceipt>, ChainError> {
    tracing::info!(deal_id = %deal.id, timeout = due.timeout.name(), "deadline passed; calling the timeout");
    let error = match call_timeout(chain, deal, due.timeout).await {
        Ok(receipt) => return Ok(Some(receipt)),
        Err(error) => error,
    };
    let Ok(id) = deal.chain_id() else {
        return Err(error);
    };
    match chain
        .agreement(super::terms::deal_key(id, &terms_of(deal)))
        .await
    {
        Ok(now) if now.state != agreement.state => {
            tracing::info!(deal_id = %deal.id, timeout = due.timeout.name(), "the deal moved on before our timeout call landed");
            Ok(None)
        }
        _ => Err(error),
    }
}

/// What a deal's end state means for the job creator, in words and exact amounts, as the
/// contracts settle it (`instructions` as committed by the RP).
pub fn job_creator_settlement(
    deal: &Deal,
    state: DealState,
    jc_agreed: bool,
    instructions: u64,
) -> String {
    let p = deal.pricing.payment_collateral;
    let cj = deal.timeouts.judge_results_collateral;
    let m = deal.pricing.mediation_fee;
    let cost = deal
        .pricing
        .instruction_price
        .saturating_mul(instructions.into());
    match state {
        DealState::ResultsAccepted => format!(
            "paid {} for the job; {} of the deposit came back",
            display(cost),
            display((p - cost.min(p)).saturating_add(cj))
        ),
        DealState::MediationAccepted => format!(
            "the mediator confirmed the results: paid {} for the job and {} mediation fee; {} came back",
            display(cost),
            display(m),
            display((p - cost.min(p)).saturating_add(cj))
        ),
        DealState::MediationRejected => format!(
            "the mediator rejected the results: refunded {} (payment and judge-results collateral); paid {} mediation fee; the resource provider's results and submit-results collaterals went to the treasury",
            display(p.saturating_add(cj)),
            display(m)
        ),
        DealState::TimeoutAgree if jc_agreed => format!(
            "the resource provider never agreed (agree timeout): refunded {} (payment and judge-results collateral)",
            display(p.saturating_add(cj))
        ),
        DealState::TimeoutAgree => {
            "the job creator never agreed (agree timeout); it paid nothing".to_string()
        }
        DealState::TimeoutSubmitResults => format!(
            "the resource provider never submitted results (submit-results timeout): refunded {} (payment and judge-results collateral); its submit-results collateral went to the treasury",
            display(p.saturating_add(cj))
        ),
        DealState::TimeoutJudgeResults => format!(
            "the results were never judged (judge-results timeout): paid {} for the job, {} came back, the {} judge-results collateral went to the treasury",
            display(cost),
            display(p - cost.min(p)),
            display(cj)
        ),
        DealState::TimeoutMediateResults => format!(
            "the mediator never decided (mediate-results timeout): refunded {} (payment collateral, mediation fee and judge-results collateral)",
            display(p.saturating_add(m).saturating_add(cj))
        ),
        other => format!("the deal is in state {}", other.name()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agreement(state: DealState, rp: bool, jc: bool) -> Agreement {
        Agreement {
            state: state.number(),
            resource_provider_agreed: rp,
            job_creator_agreed: jc,
            state_since: 1_000,
            instruction_count: 0,
        }
    }

    fn timeouts() -> Timeouts {
        Timeouts {
            agree: 10,
            submit_results: 20,
            judge_results: 30,
            mediate_results: 40,
            submit_results_collateral: 1,
            judge_results_collateral: 0,
        }
    }

    mod properties {
        use proptest::prelude::*;

        use super::*;

        proptest! {
            /// Any state, flags, start and windows (even near u64::MAX): a due timeout's
            /// deadline is its window after the state began, saturating, never wrapped; the
            /// agree timeout is due only to the side that agreed alone; the submit-results
            /// timeout only to the JC, the judge-results one only to the RP.
            #[test]
            fn deadlines_are_exact_saturating_and_go_to_the_right_party(
                state in 0u8..12,
                rp in any::<bool>(),
                jc in any::<bool>(),
                since in any::<u64>(),
                windows in any::<[u64; 4]>(),
            ) {
                let agreement = Agreement {
                    state,
                    resource_provider_agreed: rp,
                    job_creator_agreed: jc,
                    state_since: since,
                    instruction_count: 0,
                };
                let t = Timeouts {
                    agree: windows[0],
                    submit_results: windows[1],
                    judge_results: windows[2],
                    mediate_results: windows[3],
                    submit_results_collateral: 1,
                    judge_results_collateral: 0,
                };
                for party in [Party::JobCreator, Party::ResourceProvider] {
                    let Some(due) = due(&agreement, &t, party) else { continue };
                    let window = match due.timeout {
                        Timeout::Agree => {
                            let alone = match party {
                                Party::JobCreator => jc && !rp,
                                Party::ResourceProvider => rp && !jc,
                            };
                            prop_assert!(alone);
                            t.agree
                        }
                        Timeout::SubmitResults => {
                            prop_assert!(matches!(party, Party::JobCreator));
                            t.submit_results
                        }
                        Timeout::JudgeResults => {
                            prop_assert!(matches!(party, Party::ResourceProvider));
                            t.judge_results
                        }
                        Timeout::MediateResults => t.mediate_results,
                    };
                    prop_assert_eq!(due.deadline, since.saturating_add(window));
                    prop_assert!(due.deadline >= since);
                }
            }

            /// The settlement line never panics on any amounts, and an accepted job's refund
            /// plus its cost is exactly what was paid in (payment + judge-results collateral).
            #[test]
            fn settlements_are_exact_for_any_amounts(
                price in any::<u128>(),
                p in any::<u128>(),
                cj in any::<u128>(),
                fee in any::<u128>(),
                instructions in any::<u64>(),
                state in 0u8..12,
                jc in any::<bool>(),
            ) {
                let mut deal = crate::data::examples::deal();
                deal.pricing.instruction_price = price;
                deal.pricing.payment_collateral = p;
                deal.pricing.mediation_fee = fee;
                deal.timeouts.judge_results_collateral = cj;
                let state = DealState::try_from(state).unwrap_or(DealState::DealNegotiating);
                let _ = job_creator_settlement(&deal, state, jc, instructions);
                let cost = price.checked_mul(instructions.into());
                if let Some(back) = cost.filter(|&cost| cost <= p).and_then(|cost| (p - cost).checked_add(cj)) {
                    let text = job_creator_settlement(&deal, DealState::ResultsAccepted, true, instructions);
                    let expected = format!(
                        "paid {} for the job; {} of the deposit came back",
                        crate::data::amount::display(cost.unwrap()),
                        crate::data::amount::display(back)
                    );
                    prop_assert_eq!(text, expected);
                }
            }
        }
    }

    #[test]
    fn each_party_calls_the_timeouts_that_return_its_money() {
        use DealState::*;
        use Party::*;
        let t = timeouts();
        let at = |timeout, deadline| Some(Due { timeout, deadline });
        // Negotiating: only whoever agreed first, after the agree window.
        let jc_first = agreement(DealNegotiating, false, true);
        assert_eq!(due(&jc_first, &t, JobCreator), at(Timeout::Agree, 1_010));
        assert_eq!(due(&jc_first, &t, ResourceProvider), None);
        let rp_first = agreement(DealNegotiating, true, false);
        assert_eq!(
            due(&rp_first, &t, ResourceProvider),
            at(Timeout::Agree, 1_010)
        );
        assert_eq!(due(&rp_first, &t, JobCreator), None);
        assert_eq!(
            due(&agreement(DealNegotiating, false, false), &t, JobCreator),
            None
        );
        // Agreed: only the JC (the RP's results never came).
        let agreed = agreement(DealAgreed, true, true);
        assert_eq!(
            due(&agreed, &t, JobCreator),
            at(Timeout::SubmitResults, 1_020)
        );
        assert_eq!(due(&agreed, &t, ResourceProvider), None);
        // Submitted: only the RP (the JC never judged).
        let submitted = agreement(ResultsSubmitted, true, true);
        assert_eq!(
            due(&submitted, &t, ResourceProvider),
            at(Timeout::JudgeResults, 1_030)
        );
        assert_eq!(due(&submitted, &t, JobCreator), None);
        // Checked: either side (the mediator never decided).
        let checked = agreement(ResultsChecked, true, true);
        assert_eq!(
            due(&checked, &t, JobCreator),
            at(Timeout::MediateResults, 1_040)
        );
        assert_eq!(
            due(&checked, &t, ResourceProvider),
            at(Timeout::MediateResults, 1_040)
        );
        // Terminal states: nothing.
        for state in DealState::ALL.into_iter().filter(|s| s.is_terminal()) {
            for party in [JobCreator, ResourceProvider] {
                assert_eq!(
                    due(&agreement(state, true, true), &t, party),
                    None,
                    "{state:?}"
                );
            }
        }
    }

    #[test]
    fn each_timeout_names_the_state_it_ends_in() {
        assert_eq!(Timeout::Agree.state(), DealState::TimeoutAgree);
        assert_eq!(
            Timeout::SubmitResults.state(),
            DealState::TimeoutSubmitResults
        );
        assert_eq!(
            Timeout::JudgeResults.state(),
            DealState::TimeoutJudgeResults
        );
        assert_eq!(
            Timeout::MediateResults.state(),
            DealState::TimeoutMediateResults
        );
    }
}
