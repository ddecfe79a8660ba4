//! Deals: a job offer and a resource offer joined, with the members, pricing and timeouts
//! both parties sign up to on chain. The rules that turn two offers into a deal live in
//! [`Deal::propose`], which the solver uses to match and each party uses to check a deal
//! before it agrees: a deal is acceptable exactly when it is what the rules give for its
//! two offers and the party's own offer is one of them.
//!
//! The one thing the rules leave open is the deal's mediator: the solver draws it at random
//! from the mediators both offers trust, and each party checks it is one of those. It is
//! part of the terms both parties agree to, so neither party can pick it later (on chain,
//! nothing is drawn when the job creator disputes).

use ethers::types::Address;
use serde::{Deserialize, Serialize};

use super::ids::{digest_of, IdError};
use super::offers::{ContentAddressed, JobOffer, Pricing, ResourceOffer, Timeouts};

/// Who takes part in a deal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Members {
    pub solver: Address,
    pub job_creator: Address,
    pub resource_provider: Address,
    /// Who re-runs the job if the job creator disputes the results: drawn by the solver
    /// from the mediators both offers trust.
    pub mediator: Address,
}

/// A matched pair of offers and the terms that follow from them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deal {
    /// CID of this deal's canonical JSON with `id` empty; its digest is the on-chain deal id.
    pub id: String,
    pub job_offer: JobOffer,
    pub resource_offer: ResourceOffer,
    pub members: Members,
    pub pricing: Pricing,
    pub timeouts: Timeouts,
}

impl ContentAddressed for Deal {
    fn id(&self) -> &str {
        &self.id
    }
    fn id_mut(&mut self) -> &mut String {
        &mut self.id
    }
}

/// Why two offers cannot make a deal. The solver's `explain` endpoint counts these.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    thiserror::Error,
    Serialize,
    Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Mismatch {
    #[error("the machine does not cover the job's CPU, RAM or GPU needs")]
    Spec,
    #[error("the resource provider does not run this module")]
    Module,
    #[error("the resource provider asks more per instruction than the job creator pays")]
    Price,
    #[error("collaterals or mediation fee differ")]
    Collateral,
    #[error("timeouts differ")]
    Timeouts,
    #[error("the offers name different solvers")]
    Solver,
    #[error("no mediator is trusted by both sides")]
    NoCommonMediator,
    #[error("the job creator and the resource provider are the same address")]
    SameParty,
}

/// Why a party refuses a deal the solver proposed.
#[derive(Debug, thiserror::Error)]
pub enum DealRefused {
    #[error("deal {0}: its id does not match its content")]
    BadId(String),
    #[error("deal {deal}: it does not carry our offer {ours} (it names {theirs})")]
    NotOurOffer {
        deal: String,
        ours: String,
        theirs: String,
    },
    #[error("deal {deal}: we ({me:?}) are not its {role}")]
    NotOurRole {
        deal: String,
        me: Address,
        role: &'static str,
    },
    #[error("deal {deal}: its offers cannot make a deal: {reason}")]
    Incompatible { deal: String, reason: Mismatch },
    #[error("deal {deal}: its {what} differ from what the offers give")]
    TermsDiffer { deal: String, what: &'static str },
}

impl Deal {
    /// The deal the rules make of `job` and `resource`, or why there is none.
    /// Price: what the provider asks. Everything else must be the same in both offers.
    /// The mediator is the `draw`-th (modulo their number) of the mediators both trust: the
    /// solver passes a random number.
    pub fn propose(job: &JobOffer, resource: &ResourceOffer, draw: u64) -> Result<Deal, Mismatch> {
        if let Some(reason) = Deal::mismatch(job, resource) {
            return Err(reason);
        }
        let mediators = common_mediators(job, resource);
        // The list is short (it came from two offers); the index fits in usize.
        let mediator = mediators[(draw % mediators.len() as u64) as usize];
        let deal = Deal {
            id: String::new(),
            job_offer: job.clone(),
            resource_offer: resource.clone(),
            members: Members {
                solver: job.services.solver,
                job_creator: job.job_creator,
                resource_provider: resource.resource_provider,
                mediator,
            },
            pricing: Pricing {
                instruction_price: resource.pricing.instruction_price,
                ..job.pricing
            },
            timeouts: job.timeouts,
        };
        Ok(deal.seal())
    }

    /// Why `job` and `resource` cannot make a deal, or None if they can; the reasons are
    /// checked in [`Mismatch`]'s order, so the first that applies is the one given.
    pub fn mismatch(job: &JobOffer, resource: &ResourceOffer) -> Option<Mismatch> {
        if job.job_creator == resource.resource_provider {
            return Some(Mismatch::SameParty);
        }
        if job.services.solver != resource.services.solver {
            return Some(Mismatch::Solver);
        }
        if !resource.spec.covers(&job.spec) {
            return Some(Mismatch::Spec);
        }
        if !resource.allows_module(job) {
            return Some(Mismatch::Module);
        }
        if resource.pricing.instruction_price > job.pricing.instruction_price {
            return Some(Mismatch::Price);
        }
        let (ours, theirs) = (&resource.pricing, &job.pricing);
        if ours.payment_collateral != theirs.payment_collateral
            || ours.results_collateral_multiple != theirs.results_collateral_multiple
            || ours.mediation_fee != theirs.mediation_fee
        {
            return Some(Mismatch::Collateral);
        }
        if resource.timeouts != job.timeouts {
            return Some(Mismatch::Timeouts);
        }
        let trusted_by_both = |m: &&Address| {
            resource.services.mediators.contains(m)
                && **m != job.job_creator
                && **m != resource.resource_provider
        };
        if !job.services.mediators.iter().any(|m| trusted_by_both(&m)) {
            return Some(Mismatch::NoCommonMediator);
        }
        None
    }

    /// The on-chain deal id: the sha2-256 digest of the deal's CID.
    pub fn chain_id(&self) -> Result<[u8; 32], IdError> {
        digest_of(&self.id)
    }

    /// The resource provider's check before it agrees: our offer, our role, exact terms.
    pub fn check_for_resource_provider(
        &self,
        ours: &ResourceOffer,
        me: Address,
    ) -> Result<(), DealRefused> {
        if self.resource_offer.id != ours.id {
            return Err(DealRefused::NotOurOffer {
                deal: self.id.clone(),
                ours: ours.id.clone(),
                theirs: self.resource_offer.id.clone(),
            });
        }
        if self.members.resource_provider != me || ours.resource_provider != me {
            return Err(DealRefused::NotOurRole {
                deal: self.id.clone(),
                me,
                role: "resource provider",
            });
        }
        self.check_against(&self.job_offer, ours)
    }

    /// The job creator's check before it agrees.
    pub fn check_for_job_creator(&self, ours: &JobOffer, me: Address) -> Result<(), DealRefused> {
        if self.job_offer.id != ours.id {
            return Err(DealRefused::NotOurOffer {
                deal: self.id.clone(),
                ours: ours.id.clone(),
                theirs: self.job_offer.id.clone(),
            });
        }
        if self.members.job_creator != me || ours.job_creator != me {
            return Err(DealRefused::NotOurRole {
                deal: self.id.clone(),
                me,
                role: "job creator",
            });
        }
        self.check_against(ours, &self.resource_offer)
    }

    /// Whether this deal is exactly what the rules make of `job` and `resource`
    /// (our copy of our own offer, their offer as the deal carries it).
    fn check_against(&self, job: &JobOffer, resource: &ResourceOffer) -> Result<(), DealRefused> {
        if !self.id_is_valid()
            || !self.job_offer.id_is_valid()
            || !self.resource_offer.id_is_valid()
        {
            return Err(DealRefused::BadId(self.id.clone()));
        }
        let expected =
            Deal::propose(job, resource, 0).map_err(|reason| DealRefused::Incompatible {
                deal: self.id.clone(),
                reason,
            })?;
        let differs = |what| {
            Err(DealRefused::TermsDiffer {
                deal: self.id.clone(),
                what,
            })
        };
        if self.job_offer != expected.job_offer || self.resource_offer != expected.resource_offer {
            return differs("offers");
        }
        if !common_mediators(job, resource).contains(&self.members.mediator) {
            return differs("mediator");
        }
        let members = Members {
            mediator: self.members.mediator,
            ..expected.members
        };
        if self.members != members {
            return differs("members");
        }
        if self.pricing != expected.pricing {
            return differs("pricing");
        }
        if self.timeouts != expected.timeouts {
            return differs("timeouts");
        }
        Ok(())
    }
}

/// The mediators both offers trust, sorted, without either party.
pub fn common_mediators(job: &JobOffer, resource: &ResourceOffer) -> Vec<Address> {
    let mut mediators: Vec<Address> = job
        .services
        .mediators
        .iter()
        .filter(|m| resource.services.mediators.contains(m))
        .filter(|m| **m != job.job_creator && **m != resource.resource_provider)
        .copied()
        .collect();
    mediators.sort();
    mediators.dedup();
    mediators
}

/// What a resource provider reports after running a deal's job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobResult {
    pub deal_id: String,
    /// CID (raw codec) of the results tarball; its digest is committed on chain.
    pub results_cid: String,
    /// Set when the job could not run (the tarball then holds what is known).
    pub error: Option<String>,
    /// The container's exit code.
    pub exit_code: Option<i64>,
    pub instruction_count: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{MachineSpec, Services};

    fn offers() -> (JobOffer, ResourceOffer) {
        let services = Services {
            solver: Address::repeat_byte(5),
            mediators: vec![Address::repeat_byte(9), Address::repeat_byte(8)],
        };
        let pricing = Pricing {
            instruction_price: 10,
            payment_collateral: 100,
            results_collateral_multiple: 2,
            mediation_fee: 3,
        };
        let timeouts = Timeouts {
            agree: 60,
            submit_results: 60,
            judge_results: 60,
            mediate_results: 60,
            submit_results_collateral: 4,
            judge_results_collateral: 6,
        };
        let job = JobOffer {
            id: String::new(),
            created_at: 1,
            job_creator: Address::repeat_byte(1),
            module: "cowsay:v0.0.1".into(),
            inputs: [("Message".to_string(), "moo".to_string())].into(),
            spec: MachineSpec {
                cpu: 500,
                ram: 64,
                gpu: 0,
                vram: 0,
                disk: 0,
            },
            pricing,
            timeouts,
            services: services.clone(),
            nonce: "a".into(),
            results_reader: None,
            on_chain_job: None,
            module_source: None,
        }
        .seal();
        let resource = ResourceOffer {
            id: String::new(),
            created_at: 2,
            resource_provider: Address::repeat_byte(2),
            spec: MachineSpec {
                cpu: 1000,
                ram: 1024,
                gpu: 0,
                vram: 0,
                disk: 0,
            },
            pricing: Pricing {
                instruction_price: 7,
                ..pricing
            },
            timeouts,
            modules: vec!["cowsay".into()],
            services,
            nonce: "b".into(),
        }
        .seal();
        (job, resource)
    }

    #[test]
    fn a_proposed_deal_takes_the_providers_price_and_both_parties_accept_it() {
        let (job, resource) = offers();
        let deal = Deal::propose(&job, &resource, 0).unwrap();
        assert_eq!(deal.pricing.instruction_price, 7);
        assert_eq!(deal.members.mediator, Address::repeat_byte(8));
        assert!(deal
            .check_for_resource_provider(&resource, resource.resource_provider)
            .is_ok());
        assert!(deal.check_for_job_creator(&job, job.job_creator).is_ok());
        assert!(deal.chain_id().is_ok());
    }

    #[test]
    fn the_draw_picks_any_mediator_both_trust_and_both_parties_accept_each() {
        let (job, resource) = offers();
        let mut drawn = std::collections::BTreeSet::new();
        for draw in 0..4 {
            let deal = Deal::propose(&job, &resource, draw).unwrap();
            assert!(deal
                .check_for_resource_provider(&resource, resource.resource_provider)
                .is_ok());
            assert!(deal.check_for_job_creator(&job, job.job_creator).is_ok());
            drawn.insert(deal.members.mediator);
        }
        let both: std::collections::BTreeSet<_> =
            common_mediators(&job, &resource).into_iter().collect();
        assert_eq!(drawn, both);
        assert_eq!(both.len(), 2);
    }

    #[test]
    fn a_deal_whose_terms_differ_from_the_offers_is_refused() {
        let (job, resource) = offers();
        let honest = Deal::propose(&job, &resource, 0).unwrap();
        let rp = resource.resource_provider;
        let tamper = |change: &dyn Fn(&mut Deal)| {
            let mut deal = honest.clone();
            change(&mut deal);
            deal.seal()
        };
        let cases: Vec<(&str, Deal)> = vec![
            ("price", tamper(&|d| d.pricing.instruction_price = 8)),
            (
                "payment collateral",
                tamper(&|d| d.pricing.payment_collateral = 1),
            ),
            (
                "submit collateral",
                tamper(&|d| d.timeouts.submit_results_collateral = 40),
            ),
            ("timeout", tamper(&|d| d.timeouts.submit_results = 1)),
            (
                "a mediator neither offer trusts",
                tamper(&|d| d.members.mediator = Address::repeat_byte(7)),
            ),
            (
                "a party as its own mediator",
                tamper(&|d| d.members.mediator = d.members.resource_provider),
            ),
            (
                "solver",
                tamper(&|d| d.members.solver = Address::repeat_byte(6)),
            ),
        ];
        for (what, deal) in cases {
            let error = deal.check_for_resource_provider(&resource, rp).unwrap_err();
            assert!(
                matches!(error, DealRefused::TermsDiffer { .. }),
                "{what}: {error}"
            );
        }
        // An id that does not match the content.
        let mut unsealed = honest.clone();
        unsealed.pricing.instruction_price = 1;
        assert!(matches!(
            unsealed.check_for_resource_provider(&resource, rp),
            Err(DealRefused::BadId(_))
        ));
        // Someone else's offer, or our offer named for someone else.
        let mut other = resource.clone();
        other.nonce = "c".into();
        let other = other.seal();
        assert!(matches!(
            honest.check_for_resource_provider(&other, rp),
            Err(DealRefused::NotOurOffer { .. })
        ));
        assert!(matches!(
            honest.check_for_resource_provider(&resource, Address::repeat_byte(3)),
            Err(DealRefused::NotOurRole { .. })
        ));
    }

    #[test]
    fn incompatible_offers_make_no_deal() {
        let (job, resource) = offers();
        let mut cheap = job.clone();
        cheap.pricing.instruction_price = 6;
        assert_eq!(
            Deal::propose(&cheap.seal(), &resource, 0),
            Err(Mismatch::Price)
        );
        let mut big = job.clone();
        big.spec.gpu = 1;
        assert_eq!(
            Deal::propose(&big.seal(), &resource, 0),
            Err(Mismatch::Spec)
        );
        let mut other_module = job.clone();
        other_module.module = "sdxl:v1".into();
        assert_eq!(
            Deal::propose(&other_module.seal(), &resource, 0),
            Err(Mismatch::Module)
        );
        let mut lonely = job.clone();
        lonely.services.mediators = vec![Address::repeat_byte(4)];
        assert_eq!(
            Deal::propose(&lonely.seal(), &resource, 0),
            Err(Mismatch::NoCommonMediator)
        );
    }
}
