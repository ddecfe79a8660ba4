//! Lilypad: a decentralised compute network. Job creators pay ERC-20 tokens to run Docker
//! containers on resource providers' machines; contracts hold deal state, escrow and
//! collateral; an off-chain solver matches offers; mediators re-run disputed jobs.
//!
//! The crate is one binary whose roles are modules; the README's "Layout" lists them.

pub mod bus;
pub mod chain;
pub mod cli;
pub mod client;
pub mod commands;
pub mod config;
pub mod data;
pub mod db;
pub mod dev;
pub mod executor;
pub mod faucet;
pub mod files;
pub mod inflight;
pub mod job_dirs;
pub mod job_service;
pub mod keys;
pub mod logging;
pub mod mediator;
pub mod metrics;
pub mod module;
pub mod network;
pub mod onchain;
pub mod openapi;
pub mod ops;
pub mod profile;
pub mod results;
pub mod rp;
pub mod run;
pub mod saas;
pub mod solver;
pub mod tls;
pub mod tools;
pub mod worker;
