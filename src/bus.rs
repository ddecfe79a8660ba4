//! The in-process event bus: the solver's numbered events fanned out to WebSocket clients
//! and to any role in the same process. Events are stored before they are published, so
//! `/ws?since=N` can replay what a client missed.

use tokio::sync::broadcast;

pub use crate::data::events::{Event, EventKind};

/// A broadcast channel of events. Slow receivers lag and are told so; senders never block.
#[derive(Clone)]
pub struct Bus {
    sender: broadcast::Sender<Event>,
}

impl Default for Bus {
    fn default() -> Self {
        Bus::new(4096)
    }
}

impl Bus {
    pub fn new(capacity: usize) -> Bus {
        Bus {
            sender: broadcast::channel(capacity).0,
        }
    }

    /// Publishes a stored event (no one listening is fine).
    pub fn publish(&self, event: Event) {
        let _ = self.sender.send(event);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.sender.subscribe()
    }
}
