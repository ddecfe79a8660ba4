//! New blocks as the node makes them, where it offers a WebSocket subscription
//! (`WEB3_WS_URL`): roles then look at the chain as soon as a block arrives instead of at
//! their next poll. Polling stays the source of truth: a dropped subscription only means
//! waiting for the next poll until it reconnects (with backoff, 1 s to 30 s).

use std::time::Duration;

use ethers::providers::{Middleware, Provider, StreamExt, Ws};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Block numbers of new blocks on `ws_url` until `shutdown`. A slow reader misses some (it
/// is a wake-up, not a log); the channel closes only at shutdown.
pub fn subscribe(ws_url: String, shutdown: CancellationToken) -> mpsc::Receiver<u64> {
    let (sender, receiver) = mpsc::channel(16);
    tokio::spawn(async move {
        let mut backoff = Duration::from_secs(1);
        loop {
            let followed = tokio::select! {
                _ = shutdown.cancelled() => return,
                followed = follow(&ws_url, &sender) => followed,
            };
            if sender.is_closed() {
                return;
            }
            match followed {
                Ok(()) => backoff = Duration::from_secs(1),
                Err(error) => {
                    tracing::debug!(%error, url = %ws_url, "new-block subscription lost; polling until it is back");
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(backoff) => {}
            }
        }
    });
    receiver
}

/// Forwards new block numbers until the subscription ends.
async fn follow(ws_url: &str, sender: &mpsc::Sender<u64>) -> Result<(), String> {
    let provider = Provider::<Ws>::connect(ws_url)
        .await
        .map_err(|e| e.to_string())?;
    let mut blocks = provider
        .subscribe_blocks()
        .await
        .map_err(|e| e.to_string())?;
    while let Some(block) = blocks.next().await {
        let number = block.number.map(|n| n.as_u64()).unwrap_or_default();
        if let Err(mpsc::error::TrySendError::Closed(_)) = sender.try_send(number) {
            return Ok(());
        }
    }
    Err("the node ended the subscription".into())
}
