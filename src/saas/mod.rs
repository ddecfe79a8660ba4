//! `lilypad saas`: the network for people without wallets. They sign up, get credits and API
//! keys, and run modules; the service is the job creator, with its own key.

pub mod runner;
pub mod store;
