//! Protocol data shared by every role: deal states, offers, deals, results, content ids
//! and the signed-request scheme.

pub mod amount;
pub mod deal;
pub mod ids;
pub mod offers;
pub mod signing;
mod state;

pub use deal::{Deal, DealRefused, JobResult, Members, Mismatch};
pub use offers::{
    ContentAddressed, JobOffer, MachineSpec, Pricing, ResourceOffer, Services, Timeouts,
};
pub use state::{DealState, UnknownDealState};
