//! The job creator's state machine for one deal: find the deal the solver made for our
//! offer and check it, agree, wait (showing the next deadline and calling our timeouts once
//! they pass), download and verify the results, accept or dispute them, and report how the
//! deal ended. Each look is one step driven by the deal's on-chain state, so following the
//! same offer again after a restart continues where it stopped.

use std::time::Duration;

use anyhow::{bail, Context};
use rand::Rng;
use tokio_util::sync::CancellationToken;

use super::progress::Progress;
use super::{no_match, Downloaded, JobOutcome, JobRequest};
use crate::chain::bindings::lilypad_storage::Agreement;
use crate::chain::deadlines::{self, Party};
use crate::chain::terms::{deal_key, job_creator_deposit, terms_of};
use crate::chain::Chain;
use crate::client::{is_transient, SolverClient};
use crate::data::offers::now_millis;
use crate::data::{Deal, DealState, JobOffer};
use crate::results;

/// How long to wait before posting again when the solver holds too many of our offers, or
/// does not answer.
const OPEN_OFFERS_WAIT: Duration = Duration::from_secs(2);

/// What we know about our deal so far.
#[derive(Default)]
struct Tracking {
    deal: Option<Deal>,
    results: Option<Downloaded>,
    /// Decided once the results are in: None to accept, Some(reason) to dispute.
    judgement: Option<Option<String>>,
}

pub(super) async fn drive(
    chain: &Chain,
    client: &SolverClient,
    request: &JobRequest,
    offer: JobOffer,
    progress: &Progress,
) -> anyhow::Result<JobOutcome> {
    // A dispute costs the fee: when checking, and when results may say the job never ran.
    let fee = if request.mediation_chance > 0 || !request.accept_failures {
        request.pricing.mediation_fee
    } else {
        0
    };
    let deposit = request
        .pricing
        .payment_collateral
        .checked_add(request.timeouts.judge_results_collateral)
        .and_then(|deposit| deposit.checked_add(fee))
        .context("payment collateral + judge-results collateral + mediation fee is too large")?;
    let balance = chain.token_balance(chain.address()).await?;
    if balance < deposit.into() {
        bail!("{:?} holds {balance} token wei but the job needs {deposit} (payment + judge-results collateral, plus the mediation fee a dispute costs: when checking, or when results may say the job never ran, unless --accept-failures); fund it with `lilypad chain fund`", chain.address());
    }
    chain.ensure_allowance(deposit.into()).await?;
    let stop = CancellationToken::new();
    let _stop_events = stop.clone().drop_guard();
    let mut events = client.events(stop.clone());
    post_offer(client, request, &offer, progress).await?;
    progress.step(&format!(
        "job offer {} posted; waiting for a resource provider",
        offer.id
    ));

    let mut tracking = Tracking::default();
    loop {
        let waited = Duration::from_millis(now_millis().saturating_sub(offer.created_at));
        if tracking.deal.is_none() && waited > request.timeout {
            // Give up, and take the offer back so nobody is matched to a job creator that
            // left. If a deal was made meanwhile (409), follow it instead.
            let why = no_match(client, &offer, request.timeout).await;
            match client.withdraw_job_offer(&offer.id).await {
                Err(error) if error.status() == Some(409) => {}
                _ => return Err(why),
            }
        }
        match step(chain, client, request, &mut tracking, &offer, progress).await {
            Ok(Some(outcome)) => return Ok(outcome),
            Ok(None) => {}
            Err(error) if is_transient(&error) => {
                tracing::warn!("{error:#}; trying again");
                progress.step(&format!("{error}; trying again"));
            }
            Err(error) => return settled_anyway(chain, &tracking, &offer, error).await,
        }
        tokio::select! {
            _ = events.recv() => {}
            _ = tokio::time::sleep(request.poll) => {}
        }
    }
}

/// Makes sure the solver holds `offer`, posting it unless it is there already (a resumed
/// job's offer usually is, and posting it again within the same second would repeat the same
/// signed request, which the solver refuses as a replay). While the solver is down or
/// restarting it waits, as long as it would wait for a match; while too many of our offers
/// are open (other runs with this key) it waits for a match or a withdrawal to make room,
/// within the same time from the offer's creation.
async fn post_offer(
    client: &SolverClient,
    request: &JobRequest,
    offer: &JobOffer,
    progress: &Progress,
) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    loop {
        let error = match client.job_offer(&offer.id).await {
            Ok(_) => return Ok(()),
            Err(error) if error.status() == Some(404) => match client.post_job_offer(offer).await {
                Ok(_) => return Ok(()),
                Err(error) => error,
            },
            Err(error) => error,
        };
        let waiting = if error.status() == Some(429) {
            now_millis().saturating_sub(offer.created_at) < request.timeout.as_millis() as u64
        } else {
            error.is_transient() && started.elapsed() < request.timeout
        };
        if !waiting {
            return Err(error).context("the solver refused the job offer");
        }
        progress.step(&format!("{error}; waiting"));
        tokio::time::sleep(OPEN_OFFERS_WAIT).await;
    }
}

/// After a failed step: if the deal has ended on chain all the same (the other side called a
/// timeout first, or a verdict landed), that end is the outcome; otherwise the error is.
async fn settled_anyway(
    chain: &Chain,
    tracking: &Tracking,
    offer: &JobOffer,
    error: anyhow::Error,
) -> anyhow::Result<JobOutcome> {
    let Some(deal) = &tracking.deal else {
        return Err(error);
    };
    let Ok(id) = deal.chain_id() else {
        return Err(error);
    };
    match chain.agreement(deal_key(id, &terms_of(deal))).await {
        Ok(agreement) if DealState::try_from(agreement.state).is_ok_and(DealState::is_terminal) => {
            tracing::info!(
                error = format!("{error:#}"),
                "a step failed but the deal has ended on chain"
            );
            Ok(ended(tracking, offer, deal, &agreement))
        }
        _ => Err(error),
    }
}

/// One look for our deal, then at its on-chain state, doing what is ours to do; Some when
/// the deal has ended.
async fn step(
    chain: &Chain,
    client: &SolverClient,
    request: &JobRequest,
    tracking: &mut Tracking,
    offer: &JobOffer,
    progress: &Progress,
) -> anyhow::Result<Option<JobOutcome>> {
    let deal = match &tracking.deal {
        Some(deal) => deal.clone(),
        None => {
            let found = client.deals(&format!("job_offer={}", offer.id)).await?;
            let Some(record) = found.into_iter().next() else {
                return Ok(None);
            };
            record
                .deal
                .check_for_job_creator(offer, chain.address())
                .context("refusing the solver's deal")?;
            progress.step(&format!(
                "matched: deal {} with {:?}",
                record.deal.id, record.deal.members.resource_provider
            ));
            tracking.deal = Some(record.deal.clone());
            record.deal
        }
    };
    let deal_id = deal.chain_id()?;
    let terms = terms_of(&deal);
    let key = deal_key(deal_id, &terms);
    let agreement = chain.agreement(key).await?;
    let state = DealState::try_from(agreement.state)?;
    let controller = &chain.contracts.controller;
    match state {
        DealState::DealNegotiating if !agreement.job_creator_agreed => {
            if let Some(job) = &request.on_chain_job {
                crate::job_service::bind_deal(chain, job, deal_id, &terms, key).await?;
            }
            chain.ensure_allowance(job_creator_deposit(&deal)).await?;
            let call = controller.agree(deal_id, terms);
            client
                .send_noted(chain, &deal.id, "agree", "agree to the deal", call)
                .await?;
            progress.step("agreed on chain; waiting for the resource provider to agree");
        }
        DealState::DealNegotiating => {
            wait_or_time_out(
                chain,
                client,
                &deal,
                &agreement,
                progress,
                "waiting for the resource provider to agree",
            )
            .await?;
        }
        DealState::DealAgreed => {
            wait_or_time_out(
                chain,
                client,
                &deal,
                &agreement,
                progress,
                "both agreed; the job is running on the resource provider",
            )
            .await?;
        }
        DealState::ResultsSubmitted => {
            if tracking.judgement.is_none() {
                progress.step("results submitted; downloading");
                let dispute = match download(chain, client, request, &deal, key).await? {
                    Ok(downloaded)
                        if downloaded.engine_failure.is_some() && !request.accept_failures =>
                    {
                        let line = downloaded.engine_failure.clone().unwrap_or_default();
                        tracking.results = Some(downloaded);
                        Some(format!("the results say the job never ran: {line:?}; a mediator decides (--accept-failures to pay for such results)"))
                    }
                    Ok(downloaded) => {
                        tracking.results = Some(downloaded);
                        let roll = rand::thread_rng().gen_range(0..100u8);
                        (roll < request.mediation_chance).then(|| {
                            if request.mediation_chance >= 100 {
                                "--check: every result is checked by a mediator".to_string()
                            } else {
                                format!(
                                    "picked for checking (--mediation-chance {})",
                                    request.mediation_chance
                                )
                            }
                        })
                    }
                    Err(reason) => Some(reason),
                };
                tracking.judgement = Some(dispute);
            }
            match tracking.judgement.clone().flatten() {
                None => {
                    progress.step("results verified; accepting on chain");
                    let call = controller.accept_result(deal_id, terms);
                    client
                        .send_noted(chain, &deal.id, "accept_result", "accept the results", call)
                        .await?;
                    let mut agreement = agreement;
                    agreement.state = DealState::ResultsAccepted.number();
                    return Ok(Some(ended(tracking, offer, &deal, &agreement)));
                }
                Some(reason) => {
                    progress.step(&format!(
                        "disputing the results ({reason}); asking for a mediator"
                    ));
                    chain
                        .ensure_allowance(deal.pricing.mediation_fee.into())
                        .await?;
                    let call = controller.check_result(deal_id, terms);
                    client
                        .send_noted(chain, &deal.id, "check_result", "dispute the results", call)
                        .await?;
                }
            }
        }
        DealState::ResultsChecked => {
            if tracking.judgement.is_none() {
                // Disputed before this process saw the results (it cannot happen in one run,
                // but say so rather than guess).
                tracking.judgement = Some(Some("disputed earlier".into()));
            }
            wait_or_time_out(
                chain,
                client,
                &deal,
                &agreement,
                progress,
                "results disputed; waiting for the mediator's verdict",
            )
            .await?;
        }
        // Paid for, but this process has not seen the results (it was started again after
        // the deal moved on): fetch them, as they were paid for.
        state if state.is_success() && tracking.results.is_none() => {
            progress.step("the deal ended with accepted results; downloading them");
            match download(chain, client, request, &deal, key).await? {
                Ok(downloaded) => tracking.results = Some(downloaded),
                Err(reason) => tracing::warn!(reason, "the accepted results cannot be had"),
            }
            return Ok(Some(ended(tracking, offer, &deal, &agreement)));
        }
        _ => return Ok(Some(ended(tracking, offer, &deal, &agreement))),
    }
    Ok(None)
}

/// Waiting on another party: shows the deadline, and calls our timeout once it has passed.
async fn wait_or_time_out(
    chain: &Chain,
    client: &SolverClient,
    deal: &Deal,
    agreement: &Agreement,
    progress: &Progress,
    waiting: &str,
) -> anyhow::Result<()> {
    let Some(due) = deadlines::due(agreement, &deal.timeouts, Party::JobCreator) else {
        progress.step(waiting);
        return Ok(());
    };
    let now = deadlines::chain_now(chain).await?;
    if now <= due.deadline {
        progress.step(&format!(
            "{waiting} (the {} timeout can be called in {} s)",
            due.timeout.name(),
            (due.deadline - now).saturating_add(1)
        ));
        return Ok(());
    }
    progress.step(&format!(
        "the {} deadline passed; calling the timeout",
        due.timeout.name()
    ));
    if let Some(receipt) = deadlines::call_due(chain, deal, agreement, due).await? {
        let action = format!("timeout_{}", due.timeout.name());
        client
            .note_tx(&deal.id, &action, receipt.transaction_hash)
            .await;
    }
    Ok(())
}

/// Downloads the results and checks them against the commitment. The inner error is a
/// reason to dispute (results missing, not the committed ones, or not a valid archive).
async fn download(
    chain: &Chain,
    client: &SolverClient,
    request: &JobRequest,
    deal: &Deal,
    key: [u8; 32],
) -> anyhow::Result<Result<Downloaded, String>> {
    let committed = chain.committed_results(key).await?;
    let dir = request.results_dir.join(&deal.id);
    let sources = results::Sources {
        solver: client,
        ipfs: request.ipfs.as_ref(),
    };
    results::fetch_verified(sources, &deal.id, committed, &dir).await
}

/// The outcome of a deal in a terminal state.
fn ended(tracking: &Tracking, offer: &JobOffer, deal: &Deal, agreement: &Agreement) -> JobOutcome {
    let state = DealState::try_from(agreement.state).unwrap_or(DealState::DealNegotiating);
    JobOutcome {
        job_offer_id: offer.id.clone(),
        deal_id: deal.id.clone(),
        deal_key: deal
            .chain_id()
            .map(|id| deal_key(id, &terms_of(deal)))
            .unwrap_or_default(),
        state,
        results: tracking.results.clone(),
        disputed: tracking.judgement.clone().flatten(),
        settlement: deadlines::job_creator_settlement(
            deal,
            state,
            agreement.job_creator_agreed,
            agreement.instruction_count,
        ),
    }
}
