//! The solver's events on the wire (`/ws`): what happened (offers added, deals created,
//! deal states, results), numbered so a client that reconnects asks for what it missed.

use serde::{Deserialize, Serialize};

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
