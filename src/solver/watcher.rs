//! The solver's background tasks: registering its URL in the Users contract, mirroring deal
//! states from the Storage contract's events (backfilled from the saved block), and a
//! matching tick so offers whose providers come back alive still match.

use std::sync::Arc;
use std::time::Duration;

use ethers::types::{Filter, Log};

use super::store::StoreError;
use super::Solver;
use crate::chain::follower::{Checkpoint, FollowError, Follower, StartAt};
use crate::chain::{Chain, ChainError};

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

/// The follower of `DealStateChange` events: from the saved checkpoint, or the head for a
/// new solver (older deals are not its own). A corrupt checkpoint fails the start.
pub async fn deal_states(chain: &Chain, solver: &Solver) -> Result<Follower, FollowError> {
    let filter = Filter::new()
        .address(chain.contracts.storage.address())
        .event("DealStateChange(bytes32,uint8)");
    Follower::open(
        chain,
        filter,
        Checkpoint::new(solver.store.clone()),
        StartAt::Head,
    )
    .await
}

/// Mirrors deal states from `follower` into the store until shutdown (every `interval`,
/// and on each new block when the chain's WebSocket endpoint is known).
pub async fn watch_chain(chain: Arc<Chain>, follower: Follower, solver: Arc<Solver>) {
    let shutdown = solver.shutdown.clone();
    let heads = chain.new_heads(shutdown.child_token());
    let solver = &solver;
    follower
        .run(
            "deal states on chain",
            chain.poll_interval(),
            heads,
            shutdown,
            |log| async move {
                record_state_change(solver, &log).await?;
                Ok(())
            },
        )
        .await;
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
    let _publishing = solver.publishing().await;
    if let Some(event) = solver.store.set_deal_state(&record.deal.id, state).await? {
        tracing::info!(deal_id = %record.deal.id, state, "deal state changed on chain");
        solver.publish([event]);
    }
    Ok(())
}

/// Runs a matching pass whenever new offers ask for one, until shutdown; offers that arrive
/// during a pass are matched by the next.
pub async fn match_when_wanted(solver: Arc<Solver>) {
    loop {
        tokio::select! {
            _ = solver.shutdown.cancelled() => return,
            _ = solver.match_wanted() => {}
        }
        if let Err(error) = solver.match_now().await {
            tracing::warn!(%error, "matching pass failed; the next tick tries again");
        }
    }
}

/// How often the solver forgets what its retention settings let go.
const PRUNE_EVERY: Duration = Duration::from_secs(60);

/// Runs a matching pass (and forgets stale request signatures) every `interval`, and a
/// retention pass every minute, until shutdown.
pub async fn tick(solver: Arc<Solver>, interval: Duration) {
    let interval = interval.max(Duration::from_millis(200));
    let mut pruned_at: Option<std::time::Instant> = None;
    loop {
        if pruned_at.is_none_or(|at| at.elapsed() >= PRUNE_EVERY) {
            pruned_at = Some(std::time::Instant::now());
            if let Err(error) = solver.prune().await {
                tracing::warn!(%error, "retention pass failed; will retry");
            }
        }
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
