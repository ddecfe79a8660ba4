//! Protocol data shared by every role: deal states, offers, deals and results.

mod state;

pub use state::{DealState, UnknownDealState};
