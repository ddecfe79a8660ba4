//! Chain event streams: fetch logs from a saved block up to the head, then keep polling.
//! A caller saves [`LogPoller::next_block`] after handling a batch, so a restart backfills
//! exactly what it missed and nothing is lost between a crash and the next start.

use ethers::providers::{Http, Middleware, Provider};
use ethers::types::{Filter, Log};

use super::client::ChainError;

/// Largest block range asked for in one `eth_getLogs` call.
const MAX_RANGE: u64 = 5_000;

/// Polls logs matching a filter, in block order, without gaps or repeats.
pub struct LogPoller {
    provider: Provider<Http>,
    filter: Filter,
    next_block: u64,
}

impl LogPoller {
    /// Starts at `from_block` (the saved block, or 0 for a new node).
    pub fn new(provider: Provider<Http>, filter: Filter, from_block: u64) -> LogPoller {
        LogPoller {
            provider,
            filter,
            next_block: from_block,
        }
    }

    /// The first block not yet returned: save it after handling a batch.
    pub fn next_block(&self) -> u64 {
        self.next_block
    }

    /// Goes back to `block`, so the next poll returns its logs again (after a failed batch).
    pub fn rewind(&mut self, block: u64) {
        self.next_block = self.next_block.min(block);
    }

    /// The next batch of logs (possibly empty), up to the current head.
    pub async fn poll(&mut self) -> Result<Vec<Log>, ChainError> {
        let head = self
            .provider
            .get_block_number()
            .await
            .map_err(|e| ChainError::Rpc {
                what: "read the block number".into(),
                message: e.to_string(),
            })?
            .as_u64();
        let mut logs = Vec::new();
        while self.next_block <= head {
            let to = head.min(self.next_block + MAX_RANGE - 1);
            let filter = self.filter.clone().from_block(self.next_block).to_block(to);
            let batch = self
                .provider
                .get_logs(&filter)
                .await
                .map_err(|e| ChainError::Rpc {
                    what: format!("read logs {}..={to}", self.next_block),
                    message: e.to_string(),
                })?;
            logs.extend(batch);
            self.next_block = to + 1;
        }
        Ok(logs)
    }
}
