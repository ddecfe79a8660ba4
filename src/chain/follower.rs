//! The one way a role follows chain logs: from a saved checkpoint up to the head, in block
//! order, without gaps or repeats. Each log goes to the role's handler; the checkpoint is
//! saved only after a whole batch was handled, and a failed handler rewinds the batch, so a
//! crash or an error re-reads what was not recorded and nothing is lost or skipped.
//!
//! Where a brand-new follower starts is explicit ([`StartAt`]); a checkpoint that cannot be
//! read is an error naming the database, never a silent rescan from block 0.

use std::future::Future;
use std::time::Duration;

use ethers::providers::{Middleware, Provider};
use ethers::types::{Filter, Log};
use tokio_util::sync::CancellationToken;

use super::client::{Chain, ChainError};
use crate::db::{DbError, MetaTable};
use crate::worker::Ticks;

/// Largest block range asked for in one `eth_getLogs` call.
const MAX_RANGE: u64 = 5_000;

/// The longest wait between polls after repeated RPC errors.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// The `meta` key a follower's checkpoint is stored under.
const CHECKPOINT_KEY: &str = "next_block";

/// Where a follower with no checkpoint starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartAt {
    /// The current head: only what happens from now on (the solver, the mediator).
    Head,
    /// A given block: what was asked before this node first started (`lilypad jc`).
    Block(u64),
}

/// Why a poll failed.
#[derive(Debug, thiserror::Error)]
pub enum FollowError {
    #[error(transparent)]
    Chain(#[from] ChainError),
    #[error(transparent)]
    Db(#[from] DbError),
    /// The handler refused a log; the batch will be read again.
    #[error("{0:#}")]
    Handler(anyhow::Error),
}

/// The first block a follower has not handled, kept in its role's database.
#[derive(Clone)]
pub struct Checkpoint {
    db: std::sync::Arc<dyn MetaTable>,
}

impl Checkpoint {
    pub fn new(db: impl MetaTable + 'static) -> Checkpoint {
        Checkpoint {
            db: std::sync::Arc::new(db),
        }
    }

    /// The saved block, if any; a value that is not a block number is corrupt data.
    pub async fn load(&self) -> Result<Option<u64>, DbError> {
        match self.db.meta(CHECKPOINT_KEY).await? {
            None => Ok(None),
            Some(text) => text.trim().parse().map(Some).map_err(|_| {
                self.db.corrupt(
                    "the chain checkpoint (meta key next_block)",
                    &format!("{text:?} is not a block number"),
                )
            }),
        }
    }

    pub async fn save(&self, next_block: u64) -> Result<(), DbError> {
        self.db
            .set_meta(CHECKPOINT_KEY, &next_block.to_string())
            .await
    }
}

/// Follows the logs matching one filter.
pub struct Follower {
    provider: Provider<super::client::Counted>,
    filter: Filter,
    next_block: u64,
    checkpoint: Checkpoint,
}

impl Follower {
    /// Resumes from the checkpoint, or starts where `start` says.
    pub async fn open(
        chain: &Chain,
        filter: Filter,
        checkpoint: Checkpoint,
        start: StartAt,
    ) -> Result<Follower, FollowError> {
        let provider = chain.client.provider().clone();
        let next_block = match checkpoint.load().await? {
            Some(block) => block,
            None => match start {
                StartAt::Block(block) => block,
                StartAt::Head => block_number(&provider).await?,
            },
        };
        Ok(Follower {
            provider,
            filter,
            next_block,
            checkpoint,
        })
    }

    /// The first block not yet handled.
    pub fn next_block(&self) -> u64 {
        self.next_block
    }

    /// Reads the logs up to the head and hands each to `handle`, in order; saves the
    /// checkpoint once all were handled. If `handle` fails, the batch is read again next
    /// time. Returns how many logs were handled.
    pub async fn poll<F, Fut>(&mut self, mut handle: F) -> Result<usize, FollowError>
    where
        F: FnMut(Log) -> Fut,
        Fut: Future<Output = anyhow::Result<()>>,
    {
        let from = self.next_block;
        let logs = self.fetch().await?;
        let count = logs.len();
        for log in logs {
            if let Err(error) = handle(log).await {
                self.next_block = from;
                return Err(FollowError::Handler(error));
            }
        }
        if self.next_block != from {
            if let Err(error) = self.checkpoint.save(self.next_block).await {
                self.next_block = from;
                return Err(error.into());
            }
        }
        Ok(count)
    }

    /// Polls every `interval`, and on every new block `heads` announces, until `shutdown`,
    /// backing off (up to 30 s) while the node or the handler fails. For a role whose whole
    /// job is following (the solver's mirror of deal states); roles with other work call
    /// [`Follower::poll`] from their own tick.
    pub async fn run<F, Fut>(
        mut self,
        what: &str,
        interval: Duration,
        heads: Option<tokio::sync::mpsc::Receiver<u64>>,
        shutdown: CancellationToken,
        mut handle: F,
    ) where
        F: FnMut(Log) -> Fut,
        Fut: Future<Output = anyhow::Result<()>>,
    {
        let mut ticks = Ticks {
            poll: interval,
            wake: None,
            heads,
        };
        let mut wait = interval;
        loop {
            match self.poll(&mut handle).await {
                Ok(_) => wait = interval,
                Err(error) => {
                    wait = (wait * 2).min(MAX_BACKOFF);
                    tracing::warn!(
                        error = format!("{error:#}"),
                        "cannot follow {what}; retrying in {} ms",
                        wait.as_millis()
                    );
                }
            }
            if !ticks.wait(wait, &shutdown).await {
                return;
            }
        }
    }

    async fn fetch(&mut self) -> Result<Vec<Log>, ChainError> {
        let head = block_number(&self.provider).await?;
        let mut logs = Vec::new();
        let mut next = self.next_block;
        while next <= head {
            let to = head.min(next.saturating_add(MAX_RANGE - 1));
            let filter = self.filter.clone().from_block(next).to_block(to);
            let batch = self
                .provider
                .get_logs(&filter)
                .await
                .map_err(|e| ChainError::Rpc {
                    what: format!("read logs {next}..={to}"),
                    message: e.to_string(),
                })?;
            logs.extend(batch);
            next = to + 1;
        }
        self.next_block = next;
        Ok(logs)
    }
}

async fn block_number(provider: &Provider<super::client::Counted>) -> Result<u64, ChainError> {
    provider
        .get_block_number()
        .await
        .map(|block| block.as_u64())
        .map_err(|e| ChainError::Rpc {
            what: "read the block number".into(),
            message: e.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_checkpoint_that_is_not_a_block_is_an_error_naming_the_database() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mediator.db");
        let db = crate::db::Db::open(&path, "", 1).await.unwrap();
        let checkpoint = Checkpoint::new(db.clone());
        assert_eq!(checkpoint.load().await.unwrap(), None);
        checkpoint.save(42).await.unwrap();
        assert_eq!(checkpoint.load().await.unwrap(), Some(42));
        db.set_meta(CHECKPOINT_KEY, "forty-two").await.unwrap();
        let error = checkpoint.load().await.unwrap_err();
        let text = error.to_string();
        assert!(matches!(error, DbError::Corrupt { .. }), "{text}");
        assert!(text.contains(&path.display().to_string()), "{text}");
        assert!(text.contains("forty-two"), "{text}");
    }
}
