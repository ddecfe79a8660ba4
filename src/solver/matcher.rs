//! The matcher: deterministic and without double-booking. Job creators are served in turn,
//! fewest deals still negotiating first (see [`match_offers`]); each job creator's offers
//! in (created_at, id) order. Each job gets the cheapest compatible resource offer by
//! (price, created_at, id), which then leaves the pool. Only each deal's mediator comes
//! from `draw` (the solver passes random numbers; see [`Deal::propose`]).
//!
//! A pass never compares every job with every offer. Resource offers are grouped into
//! classes of offers alike in everything a match checks but the price and the provider
//! (machine, modules, collaterals, timeouts, services: an RP's slots are all one class), each
//! sorted by (price, created_at, id). A job looks at the cheapest offer left in each class
//! (one check says whether the whole class fits it), so a pass costs jobs x classes, however
//! many offers each class holds.

use std::borrow::Borrow;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, VecDeque};

use ethers::types::Address;

use crate::data::explanation::Explanation;
use crate::data::{Deal, JobOffer, MachineSpec, Mismatch, ResourceOffer, Services, Timeouts};

/// What resource offers of one class share: everything a match checks but the price and
/// the provider.
#[derive(PartialEq, Eq, Hash)]
struct Shape<'a> {
    spec: &'a MachineSpec,
    modules: &'a [String],
    payment_collateral: u128,
    results_collateral_multiple: u64,
    mediation_fee: u128,
    timeouts: &'a Timeouts,
    services: &'a Services,
}

impl<'a> Shape<'a> {
    fn of(offer: &'a ResourceOffer) -> Shape<'a> {
        Shape {
            spec: &offer.spec,
            modules: &offer.modules,
            payment_collateral: offer.pricing.payment_collateral,
            results_collateral_multiple: offer.pricing.results_collateral_multiple,
            mediation_fee: offer.pricing.mediation_fee,
            timeouts: &offer.timeouts,
            services: &offer.services,
        }
    }
}

/// The resource offers of one class, cheapest first; those before `next` are all taken.
struct Class<'a> {
    offers: Vec<&'a ResourceOffer>,
    taken: Vec<bool>,
    next: usize,
}

impl<'a> Class<'a> {
    /// The cheapest offer left that `job` can take (its price within the job's, not the
    /// job creator's own), or None; whether the class fits the job is checked on it.
    fn cheapest_for(&self, job: &JobOffer) -> Option<usize> {
        for index in self.next..self.offers.len() {
            if self.taken[index] {
                continue;
            }
            match Deal::mismatch(job, self.offers[index]) {
                None => return Some(index),
                // These depend on the provider (a job creator's own offer; a common mediator
                // that is this provider itself): a later offer of the class may be another's.
                Some(Mismatch::SameParty | Mismatch::NoCommonMediator) => continue,
                // Price: every later offer asks as much or more. Any other reason holds for
                // the whole class.
                Some(_) => return None,
            }
        }
        None
    }

    fn take(&mut self, index: usize) {
        self.taken[index] = true;
        while self.next < self.offers.len() && self.taken[self.next] {
            self.next += 1;
        }
    }
}

/// The sort key of resource offers: cheapest, then oldest, then by id.
fn order(offer: &ResourceOffer) -> (u128, u64, &str) {
    (
        offer.pricing.instruction_price,
        offer.created_at,
        offer.id.as_str(),
    )
}

/// Matches `jobs` against `resources`; returns the deals in the order they were made, each
/// with the mediator `draw()` picks among those its two offers trust.
///
/// Fair share: the next job matched is the oldest of the job creator with the fewest deals
/// still negotiating (`negotiating`, plus those made in this pass), so a job creator that
/// floods the solver with offers it never agrees to is served after every other, and an
/// honest one waits for at most one freed slot.
///
/// The offers may be owned or shared (`Arc`: the solver keeps decoded offers between passes).
pub fn match_offers<J: Borrow<JobOffer>, R: Borrow<ResourceOffer>>(
    jobs: &[J],
    resources: &[R],
    negotiating: &HashMap<Address, u64>,
    mut draw: impl FnMut() -> u64,
) -> Vec<Deal> {
    let mut queues: BTreeMap<Address, Vec<&JobOffer>> = BTreeMap::new();
    for job in jobs {
        let job = job.borrow();
        queues.entry(job.job_creator).or_default().push(job);
    }
    let mut queues: BTreeMap<Address, VecDeque<&JobOffer>> = queues
        .into_iter()
        .map(|(creator, mut offers)| {
            offers.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
            (creator, offers.into())
        })
        .collect();
    // The turn order: (deals negotiating, the head offer's created_at and id, creator).
    let mut turns = BinaryHeap::new();
    for (creator, offers) in &queues {
        if let Some(head) = offers.front() {
            let count = negotiating.get(creator).copied().unwrap_or(0);
            turns.push(Reverse((
                count,
                head.created_at,
                head.id.as_str(),
                *creator,
            )));
        }
    }
    let mut classes = classes_of(resources);
    let mut left = resources.len();
    let mut pairs = Vec::new();
    while let Some(Reverse((count, _, _, creator))) = turns.pop() {
        if left == 0 {
            break;
        }
        let Some(offers) = queues.get_mut(&creator) else {
            continue;
        };
        let Some(job) = offers.pop_front() else {
            continue;
        };
        // The cheapest fitting offer of each class; the cheapest of those wins.
        let best = classes
            .iter()
            .enumerate()
            .filter_map(|(class, offers)| offers.cheapest_for(job).map(|index| (class, index)))
            .min_by(|a, b| order(classes[a.0].offers[a.1]).cmp(&order(classes[b.0].offers[b.1])));
        // `cheapest_for` checked the pair: it makes a deal.
        let matched = best.is_some();
        if let Some((class, index)) = best {
            pairs.push((job, classes[class].offers[index], draw()));
            classes[class].take(index);
            left -= 1;
        }
        if let Some(next) = offers.front() {
            let count = count + u64::from(matched);
            turns.push(Reverse((count, next.created_at, next.id.as_str(), creator)));
        }
    }
    seal_all(&pairs)
}

/// The deals of `pairs` (job, resource offer, mediator draw), in order. Building and
/// sealing a deal (canonical JSON, its CID) is most of a pass's work, so it is spread over
/// the machine's cores; the result is the same as one by one.
fn seal_all(pairs: &[(&JobOffer, &ResourceOffer, u64)]) -> Vec<Deal> {
    let propose = |(job, resource, draw): &(&JobOffer, &ResourceOffer, u64)| {
        Deal::propose(job, resource, *draw).ok()
    };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    if threads < 2 || pairs.len() < 64 {
        return pairs.iter().filter_map(propose).collect();
    }
    let chunk = pairs.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let workers: Vec<_> = pairs
            .chunks(chunk)
            .map(|part| scope.spawn(move || part.iter().filter_map(propose).collect::<Vec<_>>()))
            .collect();
        workers
            .into_iter()
            .flat_map(|worker| worker.join().unwrap_or_default())
            .collect()
    })
}

/// The classes of `resources`, each sorted cheapest first, in a fixed order (that of their
/// cheapest offer), so a pass does not depend on the order offers arrived in.
fn classes_of<R: Borrow<ResourceOffer>>(resources: &[R]) -> Vec<Class<'_>> {
    let mut by_shape: HashMap<Shape<'_>, Vec<&ResourceOffer>> = HashMap::new();
    for offer in resources {
        let offer = offer.borrow();
        by_shape.entry(Shape::of(offer)).or_default().push(offer);
    }
    let mut classes: Vec<Class<'_>> = by_shape
        .into_values()
        .map(|mut offers| {
            offers.sort_by(|a, b| order(a).cmp(&order(b)));
            Class {
                taken: vec![false; offers.len()],
                offers,
                next: 0,
            }
        })
        .collect();
    classes.sort_by(|a, b| order(a.offers[0]).cmp(&order(b.offers[0])));
    classes
}

/// Counts, per reason, why each live resource offer does not fit `job`.
pub fn explain(job: &JobOffer, live: &[ResourceOffer], offline: usize) -> Explanation {
    let mut explanation = Explanation {
        job_offer_id: job.id.clone(),
        resource_offers: live.len(),
        offline,
        cheapest_price: live.iter().map(|r| r.pricing.instruction_price).min(),
        ..Default::default()
    };
    for resource in live {
        match Deal::propose(job, resource, 0) {
            Ok(_) => explanation.compatible += 1,
            Err(reason) => {
                *explanation.rejected.entry(reason).or_default() += 1;
                if reason == Mismatch::Module
                    && !explanation
                        .module_refused_by
                        .contains(&resource.resource_provider)
                {
                    explanation
                        .module_refused_by
                        .push(resource.resource_provider);
                }
            }
        }
    }
    explanation
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::examples::{job_offer as job, resource_offer as resource};

    #[test]
    fn cheapest_compatible_offer_wins_and_is_used_once() {
        let jobs = vec![job(2, 5, 1000), job(1, 5, 1000)];
        let resources = vec![
            resource(1, 4, 1000),
            resource(2, 3, 1000),
            resource(3, 1, 10),
        ];
        let deals = match_offers(&jobs, &resources, &HashMap::new(), || 0);
        assert_eq!(deals.len(), 2);
        // The older job (created_at 1) gets the cheapest offer that fits (price 3; price 1 is too small).
        assert_eq!(deals[0].job_offer.created_at, 1);
        assert_eq!(deals[0].pricing.instruction_price, 3);
        assert_eq!(deals[1].pricing.instruction_price, 4);
        assert_ne!(deals[0].resource_offer.id, deals[1].resource_offer.id);
    }

    #[test]
    fn no_offer_is_double_booked_and_order_does_not_matter() {
        let jobs: Vec<_> = (0..50).map(|n| job(n, 10, 500)).collect();
        let resources: Vec<_> = (0..20)
            .map(|n| resource(n, (n % 7) as u128 + 1, 1000))
            .collect();
        let deals = match_offers(&jobs, &resources, &HashMap::new(), || 0);
        assert_eq!(deals.len(), 20);
        let mut used: Vec<_> = deals.iter().map(|d| d.resource_offer.id.clone()).collect();
        used.sort();
        used.dedup();
        assert_eq!(used.len(), 20);
        let mut reversed_jobs = jobs.clone();
        reversed_jobs.reverse();
        let mut reversed_resources = resources.clone();
        reversed_resources.reverse();
        assert_eq!(
            match_offers(&reversed_jobs, &reversed_resources, &HashMap::new(), || 0),
            deals
        );
    }

    #[test]
    fn an_offer_that_cannot_serve_a_job_does_not_hide_its_class_from_it() {
        use crate::data::ContentAddressed;
        use ethers::types::Address;
        let job = job(1, 5, 500);
        // Alike in all but provider and price: the cheapest is the job creator's own, the
        // next one's provider is the only mediator both trust (so it cannot mediate its own
        // deal), the third can serve the job.
        let by = |provider: Address, price: u128, at: u64| {
            let mut offer = resource(at, price, 1000);
            offer.resource_provider = provider;
            offer.services.mediators = job.services.mediators.clone();
            offer.seal()
        };
        let mediator = job.services.mediators[0];
        let offers = vec![
            by(job.job_creator, 1, 1),
            by(mediator, 2, 2),
            by(Address::repeat_byte(0x99), 3, 3),
        ];
        let deals = match_offers(std::slice::from_ref(&job), &offers, &HashMap::new(), || 0);
        assert_eq!(deals.len(), 1);
        assert_eq!(
            deals[0].members.resource_provider,
            Address::repeat_byte(0x99)
        );
    }

    #[test]
    fn job_creators_take_turns_and_a_flooder_waits_behind_everyone_else() {
        use crate::data::ContentAddressed;
        use ethers::types::Address;
        let by = |creator: u8, at: u64| {
            let mut offer = job(at, 5, 500);
            offer.job_creator = Address::repeat_byte(creator);
            offer.seal()
        };
        // A flooder posted 100 offers before an honest job creator posted one.
        let mut jobs: Vec<_> = (0..100).map(|n| by(0xaa, n)).collect();
        jobs.push(by(0x11, 1000));
        let one = vec![resource(1, 1, 1000)];
        // The flooder has a deal it never agreed to: the one free slot goes to the other.
        let flooder_waiting = HashMap::from([(Address::repeat_byte(0xaa), 1)]);
        let deals = match_offers(&jobs, &one, &flooder_waiting, || 0);
        assert_eq!(deals.len(), 1);
        assert_eq!(deals[0].job_offer.job_creator, Address::repeat_byte(0x11));
        // With no deal negotiating, creators alternate within one pass, oldest first.
        let three: Vec<_> = (1..=3).map(|n| resource(n, 1, 1000)).collect();
        let deals = match_offers(&jobs, &three, &HashMap::new(), || 0);
        let creators: Vec<u8> = deals
            .iter()
            .map(|deal| deal.job_offer.job_creator.0[0])
            .collect();
        assert_eq!(creators, vec![0xaa, 0x11, 0xaa]);
        assert_eq!(deals[0].job_offer.created_at, 0);
        assert_eq!(deals[2].job_offer.created_at, 1);
    }

    #[test]
    fn each_deal_gets_a_mediator_drawn_from_those_both_offers_trust() {
        use crate::data::ContentAddressed;
        use ethers::types::Address;
        let trusted = vec![Address::repeat_byte(0x4d), Address::repeat_byte(0x4e)];
        let with_mediators = |mut services: crate::data::Services| {
            services.mediators = trusted.clone();
            services
        };
        let jobs: Vec<_> = (0..40)
            .map(|n| {
                let mut offer = job(n, 10, 500);
                offer.services = with_mediators(offer.services);
                offer.seal()
            })
            .collect();
        let resources: Vec<_> = (0..40)
            .map(|n| {
                let mut offer = resource(n, 1, 1000);
                offer.services = with_mediators(offer.services);
                offer.seal()
            })
            .collect();
        let deals = match_offers(&jobs, &resources, &HashMap::new(), rand::random);
        assert_eq!(deals.len(), 40);
        let drawn: std::collections::BTreeSet<_> =
            deals.iter().map(|deal| deal.members.mediator).collect();
        // Each of the two is drawn with probability 1/2 per deal: both appear (all but
        // certainly: 2 x 2^-40 otherwise).
        assert_eq!(drawn, trusted.iter().copied().collect());
        for deal in &deals {
            assert!(deal
                .check_for_job_creator(&deal.job_offer, deal.job_offer.job_creator)
                .is_ok());
        }
    }

    #[test]
    fn explain_counts_reasons() {
        let job = job(1, 2, 1000);
        let live = vec![
            resource(1, 5, 1000),
            resource(2, 1, 10),
            resource(3, 1, 1000),
        ];
        let explanation = explain(&job, &live, 4);
        assert_eq!(explanation.compatible, 1);
        assert_eq!(explanation.offline, 4);
        assert_eq!(explanation.rejected.get(&Mismatch::Price), Some(&1));
        assert_eq!(explanation.rejected.get(&Mismatch::Spec), Some(&1));
    }

    mod properties {
        use std::collections::HashSet;

        use ethers::types::Address;
        use proptest::prelude::*;

        use super::*;
        use crate::data::ContentAddressed;

        /// A job offer: (created_at, max price, cpu, module index).
        fn jobs() -> impl Strategy<Value = Vec<JobOffer>> {
            prop::collection::vec((0u64..50, 1u128..10, 1u64..4, 0usize..2), 0..25).prop_map(
                |specs| {
                    specs
                        .into_iter()
                        .enumerate()
                        .map(|(n, (at, price, cpu, module))| {
                            let mut offer = job(at, price, cpu * 500);
                            offer.module = ["cowsay:v0.0.1", "lilysay:0.5.2"][module].into();
                            offer.nonce = n.to_string();
                            offer.seal()
                        })
                        .collect()
                },
            )
        }

        /// A resource offer: (created_at, price, cpu, allows only cowsay?).
        fn resources() -> impl Strategy<Value = Vec<ResourceOffer>> {
            prop::collection::vec((0u64..50, 1u128..10, 1u64..4, any::<bool>()), 0..25).prop_map(
                |specs| {
                    specs
                        .into_iter()
                        .enumerate()
                        .map(|(n, (at, price, cpu, cowsay_only))| {
                            let mut offer = resource(at, price, cpu * 500);
                            if cowsay_only {
                                offer.modules = vec!["cowsay".into()];
                            }
                            offer.nonce = n.to_string();
                            offer.seal()
                        })
                        .collect()
                },
            )
        }

        proptest! {
            #[test]
            fn no_double_booking_every_deal_valid_and_order_irrelevant(
                jobs in jobs(),
                resources in resources(),
                seed in any::<u64>(),
            ) {
                let deals = match_offers(&jobs, &resources, &HashMap::new(), || 0);
                let mut job_ids = HashSet::new();
                let mut resource_ids = HashSet::new();
                for deal in &deals {
                    prop_assert!(job_ids.insert(deal.job_offer.id.clone()), "a job matched twice");
                    prop_assert!(resource_ids.insert(deal.resource_offer.id.clone()), "an offer sold twice");
                    let proposed = Deal::propose(&deal.job_offer, &deal.resource_offer, 0);
                    prop_assert_eq!(proposed.as_ref(), Ok(deal));
                }
                // No unmatched job could have had an unsold offer it fits.
                for job in jobs.iter().filter(|job| !job_ids.contains(&job.id)) {
                    for resource in resources.iter().filter(|r| !resource_ids.contains(&r.id)) {
                        prop_assert!(Deal::propose(job, resource, 0).is_err(), "a match was missed");
                    }
                }
                // The same offers in another order give the same deals.
                let rotate = |n: usize| if n == 0 { 0 } else { seed as usize % n };
                let mut shuffled_jobs = jobs.clone();
                shuffled_jobs.rotate_left(rotate(jobs.len()));
                shuffled_jobs.reverse();
                let mut shuffled_resources = resources.clone();
                shuffled_resources.rotate_left(rotate(resources.len()));
                prop_assert_eq!(match_offers(&shuffled_jobs, &shuffled_resources, &HashMap::new(), || 0), deals);
            }
        }

        /// Each way a resource offer can fail a job, one offer each: explain counts every one.
        #[test]
        fn every_rejection_reason_is_reachable() {
            let job = job(1, 5, 1000);
            let base = || resource(2, 3, 1000);
            let mut offers = Vec::new();
            let mut add = |change: &dyn Fn(&mut ResourceOffer)| {
                let mut offer = base();
                change(&mut offer);
                offer.nonce = offers.len().to_string();
                offers.push(offer.seal());
            };
            add(&|o| o.spec.cpu = 10);
            add(&|o| o.modules = vec!["lilysay".into()]);
            add(&|o| o.pricing.instruction_price = 6);
            add(&|o| o.pricing.payment_collateral = 11);
            add(&|o| o.timeouts.agree = 61);
            add(&|o| o.services.solver = Address::repeat_byte(0x51));
            add(&|o| o.services.mediators = vec![Address::repeat_byte(0x4e)]);
            add(&|o| o.resource_provider = job.job_creator);
            let explanation = explain(&job, &offers, 0);
            let all = [
                Mismatch::Spec,
                Mismatch::Module,
                Mismatch::Price,
                Mismatch::Collateral,
                Mismatch::Timeouts,
                Mismatch::Solver,
                Mismatch::NoCommonMediator,
                Mismatch::SameParty,
            ];
            for reason in all {
                assert_eq!(explanation.rejected.get(&reason), Some(&1), "{reason:?}");
            }
            assert_eq!(explanation.compatible, 0);
            // The offer whose allow-list refused the module is named, and said so.
            assert_eq!(
                explanation.module_refused_by,
                vec![base().resource_provider]
            );
            let text = explanation.describe(&job);
            assert!(
                text.contains(&format!(
                    "1 does not run cowsay:v0.0.1 (their allow-lists refuse it: {:?})",
                    base().resource_provider
                )),
                "{text}"
            );
        }
    }
}
