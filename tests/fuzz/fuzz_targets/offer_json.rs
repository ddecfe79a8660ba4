//! Job offers, resource offers and deals as JSON from the network. Whatever parses must
//! survive every check run on it (ids, deal rules) and read back unchanged from our own JSON.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lilypad::data::{ContentAddressed, Deal, JobOffer, ResourceOffer};

fn round_trips<T>(value: &T)
where
    T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let json = serde_json::to_vec(value).expect("serialises");
    let back: T = serde_json::from_slice(&json).expect("our own JSON reads back");
    assert_eq!(&back, value);
}

fuzz_target!(|data: &[u8]| {
    if let Ok(offer) = serde_json::from_slice::<JobOffer>(data) {
        let _ = offer.id_is_valid();
        round_trips(&offer);
    }
    if let Ok(offer) = serde_json::from_slice::<ResourceOffer>(data) {
        let _ = offer.id_is_valid();
        round_trips(&offer);
    }
    if let Ok(deal) = serde_json::from_slice::<Deal>(data) {
        let _ = deal.id_is_valid();
        let _ = deal.chain_id();
        let _ = deal.check_for_job_creator(&deal.job_offer, deal.job_offer.job_creator);
        let _ = deal.check_for_resource_provider(
            &deal.resource_offer,
            deal.resource_offer.resource_provider,
        );
        if let Ok(proposed) = Deal::propose(&deal.job_offer, &deal.resource_offer, 0) {
            assert!(proposed.id_is_valid());
        }
        round_trips(&deal);
    }
});
