//! Sample offers and deals with small, readable numbers, for tests and examples: a job
//! creator (0x1c…), a resource provider (0x70…), one solver (0x50…) and one mediator
//! (0x4d…) that both trust, the same collaterals and timeouts on both sides.

use ethers::types::Address;

use super::{
    ContentAddressed, Deal, JobOffer, MachineSpec, Pricing, ResourceOffer, Services, Timeouts,
};

pub fn job_creator() -> Address {
    Address::repeat_byte(0x1c)
}

pub fn resource_provider() -> Address {
    Address::repeat_byte(0x70)
}

pub fn services() -> Services {
    Services {
        solver: Address::repeat_byte(0x50),
        mediators: vec![Address::repeat_byte(0x4d)],
    }
}

/// Collaterals 10 (payment) and 1 (fee), multiple 2, at `price` per instruction.
pub fn pricing(price: u128) -> Pricing {
    Pricing {
        instruction_price: price,
        payment_collateral: 10,
        results_collateral_multiple: 2,
        mediation_fee: 1,
    }
}

/// 60 s for every step, collaterals of 1.
pub fn timeouts() -> Timeouts {
    Timeouts {
        agree: 60,
        submit_results: 60,
        judge_results: 60,
        mediate_results: 60,
        submit_results_collateral: 1,
        judge_results_collateral: 1,
    }
}

/// A cowsay job offer made at `created_at` (also its nonce), paying at most `max_price`,
/// needing `cpu` millicores and 10 MiB.
pub fn job_offer(created_at: u64, max_price: u128, cpu: u64) -> JobOffer {
    JobOffer {
        id: String::new(),
        created_at,
        job_creator: job_creator(),
        module: "cowsay:v0.0.1".into(),
        inputs: [("Message".to_string(), "moo".to_string())].into(),
        spec: MachineSpec {
            cpu,
            ram: 10,
            gpu: 0,
            vram: 0,
            disk: 0,
        },
        pricing: pricing(max_price),
        timeouts: timeouts(),
        services: services(),
        nonce: created_at.to_string(),
        results_reader: None,
        on_chain_job: None,
        module_source: None,
    }
    .seal()
}

/// A resource offer made at `created_at` (also its nonce), asking `price`, selling `cpu`
/// millicores and 100 MiB, for any module.
pub fn resource_offer(created_at: u64, price: u128, cpu: u64) -> ResourceOffer {
    ResourceOffer {
        id: String::new(),
        created_at,
        resource_provider: resource_provider(),
        spec: MachineSpec {
            cpu,
            ram: 100,
            gpu: 0,
            vram: 0,
            disk: 0,
        },
        pricing: pricing(price),
        timeouts: timeouts(),
        modules: vec![],
        services: services(),
        nonce: created_at.to_string(),
    }
    .seal()
}

/// The deal of `job_offer(1, 5, 1000)` and `resource_offer(2, 3, 1000)`.
pub fn deal() -> Deal {
    Deal::propose(&job_offer(1, 5, 1000), &resource_offer(2, 3, 1000), 0)
        .unwrap_or_else(|reason| unreachable!("the sample offers match: {reason}"))
}
