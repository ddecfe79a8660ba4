//! The in-process event bus: numbered solver events (offers added, deals created, deal
//! states, results) fanned out to WebSocket clients and to any role in the same process.
//! Events are stored before they are published, so `/ws?since=N` can replay what a client missed.

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    JobOfferAdded,
    ResourceOfferAdded,
    DealCreated,
    DealStateChanged,
    ResultAdded,
}

impl EventKind {
    pub fn name(self) -> &'static str {
        match self {
            EventKind::JobOfferAdded => "job_offer_added",
            EventKind::ResourceOfferAdded => "resource_offer_added",
            EventKind::DealCreated => "deal_created",
            EventKind::DealStateChanged => "deal_state_changed",
            EventKind::ResultAdded => "result_added",
        }
    }
}

/// One numbered event. `seq` increases by one per stored event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub seq: u64,
    pub kind: EventKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deal_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_offer_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_offer_id: Option<String>,
    /// The deal's state number, for deal events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<u8>,
}

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
