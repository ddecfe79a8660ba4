//! `/ws?since=N`: replays stored events after N, then streams live ones. Each client reads
//! from its own bounded broadcast receiver; a client that falls behind is disconnected (it
//! reconnects with `since` and replays), so a slow client never blocks the solver.

use std::sync::Arc;

use futures::{SinkExt, StreamExt};
use tokio::sync::broadcast::error::RecvError;
use warp::ws::{Message, WebSocket};

use super::Solver;

/// Events per replay page.
const PAGE: u32 = 500;

/// `since`: replay events after it; None: only events from now on.
pub async fn serve(socket: WebSocket, solver: Arc<Solver>, since: Option<u64>) {
    let (mut sink, mut incoming) = socket.split();
    // Subscribe before replaying, so nothing falls between the replay and the live stream.
    let mut live = solver.bus.subscribe();
    let mut last = since.unwrap_or(0);
    while since.is_some() {
        let page = match solver.store.events_since(last, PAGE).await {
            Ok(page) => page,
            Err(error) => {
                tracing::error!(%error, "cannot replay events");
                return;
            }
        };
        let done = page.len() < PAGE as usize;
        for event in page {
            last = event.seq;
            let text = serde_json::to_string(&event).unwrap_or_default();
            if sink.send(Message::text(text)).await.is_err() {
                return;
            }
        }
        if done {
            break;
        }
    }
    let shutdown = solver.shutdown.clone();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            received = live.recv() => match received {
                Ok(event) if event.seq <= last => continue,
                Ok(event) => {
                    last = event.seq;
                    let text = serde_json::to_string(&event).unwrap_or_default();
                    if sink.send(Message::text(text)).await.is_err() {
                        return;
                    }
                }
                Err(RecvError::Lagged(missed)) => {
                    tracing::info!(missed, "dropping a slow WebSocket client; it will reconnect and replay");
                    break;
                }
                Err(RecvError::Closed) => break,
            },
            message = incoming.next() => match message {
                Some(Ok(message)) if message.is_close() => break,
                Some(Ok(_)) => continue,
                _ => break,
            },
        }
    }
    let _ = sink.send(Message::close()).await;
}
