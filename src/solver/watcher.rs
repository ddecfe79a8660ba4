//! The solver's background tasks: registering its URL in the Users contract, mirroring deal
//! states from the Storage contract's events (backfilled from the saved block), and a
//! matching tick so offers whose providers come back alive still match.

use std::sync::Arc;
use std::time::Duration;

use ethers::providers::Middleware;
use ethers::types::{Filter, Log};

use super::store::StoreError;
use super::Solver;
use crate::chain::events::LogPoller;
use crate::chain::{Chain, ChainError};

const NEXT_BLOCK: &str = "next_block";

/// Publishes `url` as this solver's in the Users contract (if it is not already).
pub async fn register(chain: &Chain, url: &str) -> Result<(), ChainError> {
    let users = &chain.contracts.users;
    let me = chain.address();
    let read = |e: ethers::contract::ContractError<crate::chain::Client>| ChainError::Rpc {
        what: "read our user record".into(),
        message: e.to_string(),
    };
    let user = users.get_user(me).call().await.map_err(read)?;
    // Role 0 is Solver in LilypadUsers.Role.
    if user.url != url || !user.roles.contains(&0) {
        chain
            .send(
                "register the solver URL",
                users.update_user(String::new(), url.to_string(), vec![0]),
            )
            .await?;
    }
    if !users.is_listed(me, 0).call().await.map_err(read)? {
        chain
            .send("list the solver", users.add_user_to_list(0))
            .await?;
    }
    Ok(())
}

/// Mirrors `DealStateChange` events into the store until shutdown.
pub async fn watch_chain(chain: Arc<Chain>, solver: Arc<Solver>) {
    let start = match solver.store.meta(NEXT_BLOCK).await {
        Ok(Some(block)) => block.parse().unwrap_or(0),
        _ => match chain.client.get_block_number().await {
            Ok(head) => head.as_u64(),
            Err(_) => 0,
        },
    };
    let filter = Filter::new()
        .address(chain.contracts.storage.address())
        .event("DealStateChange(bytes32,uint8)");
    let mut poller = LogPoller::new(chain.client.provider().clone(), filter, start);
    let mut backoff = chain.poll_interval();
    loop {
        let batch_start = poller.next_block();
        match poller.poll().await {
            Ok(logs) => {
                backoff = chain.poll_interval();
                let mut recorded = Ok(());
                for log in &logs {
                    recorded = record_state_change(&solver, log).await;
                    if recorded.is_err() {
                        break;
                    }
                }
                match recorded {
                    Ok(()) => {
                        let next = poller.next_block().to_string();
                        if let Err(error) = solver.store.set_meta(NEXT_BLOCK, &next).await {
                            tracing::error!(%error, "cannot save the last processed block");
                        }
                    }
                    Err(error) => {
                        tracing::error!(%error, "cannot record a deal state; will re-read the batch");
                        poller.rewind(batch_start);
                    }
                }
            }
            Err(error) => {
                tracing::warn!(%error, "cannot read chain events; retrying");
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
        }
        tokio::select! {
            _ = solver.shutdown.cancelled() => return,
            _ = tokio::time::sleep(backoff) => {}
        }
    }
}

/// Records one `DealStateChange` log (a deal of another solver, or a malformed log, is skipped).
async fn record_state_change(solver: &Solver, log: &Log) -> Result<(), StoreError> {
    let (Some(key), Some(&state)) = (log.topics.get(1), log.data.last()) else {
        tracing::warn!(?log, "ignoring a malformed DealStateChange log");
        return Ok(());
    };
    let Some(record) = solver.store.deal_by_key(&format!("{key:?}")).await? else {
        return Ok(()); // another solver's deal
    };
    if let Some(event) = solver.store.set_deal_state(&record.deal.id, state).await? {
        tracing::info!(deal_id = %record.deal.id, state, "deal state changed on chain");
        solver.bus.publish(event);
    }
    Ok(())
}

/// Runs a matching pass (and forgets stale request signatures) every `interval` until shutdown.
pub async fn tick(solver: Arc<Solver>, interval: Duration) {
    let interval = interval.max(Duration::from_millis(200));
    loop {
        tokio::select! {
            _ = solver.shutdown.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
        }
        if let Err(error) = solver.match_now().await {
            tracing::warn!(%error, "matching pass failed; will retry");
        }
        let now = crate::data::signing::now_secs();
        if let Err(error) = solver.store.forget_old_signatures(now).await {
            tracing::warn!(%error, "cannot forget old request signatures; will retry");
        }
    }
}
