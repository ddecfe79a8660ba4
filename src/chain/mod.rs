//! The chain client: contract bindings, a transaction sender per key (nonce manager,
//! receipt status check), deal terms as the contracts take them, event streams that
//! backfill from a saved block, and deployment.

pub mod bindings;
pub mod client;
pub mod deadlines;
pub mod deploy;
pub mod follower;
pub mod heads;
pub mod terms;

pub use client::{Chain, ChainError, Client};
