//! The solver's background tasks: registering its URL in the Users contract, mirroring deal
//! states from the Storage contract's events (backfilled from the saved block), and a
//! matching tick so offers whose providers come back alive still match.

use std::sync::Arc;
use std::time::Duration;

use ethers::providers::Middleware;
use ethers::types::Filter;

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
        match poller.poll().await {
            Ok(logs) => {
                backoff = chain.poll_interval();
                let mut ok = true;
                for log in logs {
                    let (Some(key), Some(&state)) = (log.topics.get(1), log.data.last()) else {
                        tracing::warn!(?log, "ignoring a malformed DealStateChange log");
                        continue;
                    };
                    let key = format!("{key:?}");
                    match solver.store.deal_by_key(&key).await {
                        Ok(Some(record)) => {
                            match solver.store.set_deal_state(&record.deal.id, state).await {
                                Ok(Some(event)) => {
                                    tracing::info!(deal_id = %record.deal.id, state, "deal state changed on chain");
                                    solver.bus.publish(event);
                                }
                                Ok(None) => {}
                                Err(error) => {
                                    tracing::error!(%error, "cannot record a deal state; will retry");
                                    ok = false;
                                }
                            }
                        }
                        Ok(None) => {} // another solver's deal
                        Err(error) => {
                            tracing::error!(%error, "cannot look up a deal; will retry");
                            ok = false;
                        }
                    }
                }
                if ok {
                    if let Err(error) = solver
                        .store
                        .set_meta(NEXT_BLOCK, &poller.next_block().to_string())
                        .await
                    {
                        tracing::error!(%error, "cannot save the last processed block");
                    }
                } else {
                    // Re-read from the saved block on the next round.
                    let saved = solver
                        .store
                        .meta(NEXT_BLOCK)
                        .await
                        .ok()
                        .flatten()
                        .and_then(|b| b.parse().ok())
                        .unwrap_or(start);
                    poller = LogPoller::new(
                        chain.client.provider().clone(),
                        Filter::new()
                            .address(chain.contracts.storage.address())
                            .event("DealStateChange(bytes32,uint8)"),
                        saved,
                    );
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

/// Runs a matching pass every `interval` until shutdown.
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
    }
}
