//! Shared set-up for the end-to-end tests: a real dev network (anvil, contracts, solver,
//! resource provider on the real Docker engine) in a temporary directory.
#![allow(dead_code)]

use std::time::Duration;

use ethers::types::{Address, U256};
use lilypad::data::{MachineSpec, Pricing, Timeouts};
use lilypad::dev::{DevNetwork, DevOptions};
use lilypad::run::JobRequest;

pub const LP: u128 = 1_000_000_000_000_000_000;

/// The terms every test uses (the RP and the JC must offer the same).
pub fn pricing() -> Pricing {
    Pricing {
        instruction_price: 3 * LP,
        payment_collateral: 5 * LP,
        results_collateral_multiple: 2,
        mediation_fee: LP,
    }
}

pub fn timeouts() -> Timeouts {
    Timeouts {
        agree: 600,
        submit_results: 600,
        judge_results: 600,
        mediate_results: 600,
        submit_results_collateral: 7 * LP,
        judge_results_collateral: 11 * LP,
    }
}

pub async fn network(dir: &std::path::Path) -> DevNetwork {
    DevNetwork::start(DevOptions {
        data_dir: dir.to_path_buf(),
        anvil_path: None,
        solver_port: 0,
        rp_spec: MachineSpec {
            cpu: 2000,
            ram: 2048,
            gpu: 0,
            vram: 0,
        },
        rp_slots: 1,
        pricing: pricing(),
        timeouts: timeouts(),
        poll: Duration::from_millis(100),
        publish: false,
    })
    .await
    .expect("the dev network starts (needs `make deps`, a Docker engine and `make images`)")
}

/// A cowsay job for `network` with these tests' terms; results go under `dir`.
pub fn cowsay_request(network: &DevNetwork, dir: &std::path::Path, message: &str) -> JobRequest {
    JobRequest {
        module: "cowsay:v0.0.1".into(),
        inputs: [("Message".to_string(), message.to_string())].into(),
        pricing: pricing(),
        timeouts: timeouts(),
        services: network.services.clone(),
        results_dir: dir.join("results"),
        timeout: Duration::from_secs(120),
        poll: Duration::from_millis(100),
        progress: false,
    }
}

/// Token balances of several addresses.
pub async fn balances(chain: &lilypad::chain::Chain, who: &[Address]) -> Vec<U256> {
    let mut out = Vec::new();
    for address in who {
        out.push(chain.token_balance(*address).await.unwrap());
    }
    out
}
