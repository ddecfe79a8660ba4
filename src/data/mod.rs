//! Protocol data shared by every role: deal states, offers, deals, results, content ids,
//! the signed-request scheme, and the solver API's wire records and events.

pub mod amount;
pub mod deal;
pub mod events;
pub mod examples;
pub mod explanation;
pub mod ids;
pub mod offers;
pub mod records;
pub mod signing;
mod state;

pub use deal::{Deal, DealRefused, JobResult, Members, Mismatch};
pub use offers::{
    ContentAddressed, JobOffer, MachineSpec, ModuleSource, OnChainJob, Pricing, ResourceOffer,
    Services, Timeouts,
};
pub use state::{DealState, UnknownDealState};
