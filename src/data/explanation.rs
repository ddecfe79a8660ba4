//! Why a job offer has no deal (the solver's `GET /job_offers/{id}/explain`): counts of the
//! resource offers rejected for each reason, and the same in sentences for the person
//! waiting ("2 offers online, none cheap enough: the cheapest asks 3 LP, you pay at most
//! 1 LP").

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{amount, JobOffer, Mismatch};

/// How many resource offers were rejected for each reason.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Explanation {
    pub job_offer_id: String,
    /// Set when the job offer already has a deal.
    #[serde(default)]
    pub deal_id: Option<String>,
    /// Live resource offers considered.
    pub resource_offers: usize,
    /// Resource offers that would match (but may be taken by older job offers).
    pub compatible: usize,
    /// Resource offers not refreshed within their TTL (not considered).
    pub offline: usize,
    pub rejected: BTreeMap<Mismatch, usize>,
    /// The lowest price per instruction a live offer asks, in wei.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "amount::optional"
    )]
    pub cheapest_price: Option<u128>,
    /// The resource providers whose allow-list (`OFFER_MODULES`) refuses the job's module.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub module_refused_by: Vec<ethers::types::Address>,
}

impl Explanation {
    /// The explanation in sentences, for the job creator of `job`.
    pub fn describe(&self, job: &JobOffer) -> String {
        if let Some(deal) = &self.deal_id {
            return format!("it was matched: deal {deal}");
        }
        let offline = match self.offline {
            0 => String::new(),
            n => format!(
                " ({} not refreshed recently, so not considered)",
                count(n, "offer", "offers")
            ),
        };
        if self.resource_offers == 0 {
            return format!("no resource provider has an offer online{offline}");
        }
        let online = format!(
            "{} online{offline}",
            count(self.resource_offers, "offer", "offers")
        );
        if self.compatible > 0 {
            return format!(
                "{online}; {} would take the job but went to older job offers first: try again, or pay more",
                count(self.compatible, "offer", "offers")
            );
        }
        let reasons: Vec<String> = self
            .rejected
            .iter()
            .map(|(reason, &n)| format!("{} {}", n, self.reason(*reason, n, job)))
            .collect();
        format!("{online}, none fits: {}", reasons.join("; "))
    }

    fn reason(&self, reason: Mismatch, n: usize, job: &JobOffer) -> String {
        let (is, does, asks) = if n == 1 {
            ("is", "does", "asks")
        } else {
            ("are", "do", "ask")
        };
        match reason {
            Mismatch::Price => {
                let cheapest = self
                    .cheapest_price
                    .map(|price| format!("the cheapest asks {}, ", amount::display(price)))
                    .unwrap_or_default();
                format!(
                    "{asks} more than you pay ({cheapest}you pay at most {} per instruction)",
                    amount::display(job.pricing.instruction_price)
                )
            }
            Mismatch::Spec => format!(
                "{is} too small (the job needs {} millicores, {} MiB, {} GPU(s))",
                job.spec.cpu, job.spec.ram, job.spec.gpu
            ),
            Mismatch::Module => {
                let who: Vec<String> = self
                    .module_refused_by
                    .iter()
                    .map(|rp| format!("{rp:?}"))
                    .collect();
                format!(
                    "{does} not run {} (their allow-lists refuse it: {})",
                    job.module,
                    who.join(", ")
                )
            }
            Mismatch::Collateral => {
                format!("{asks} for other collaterals or another mediation fee")
            }
            Mismatch::Timeouts => format!("{asks} for other timeouts"),
            Mismatch::Solver => format!("{is} for another solver"),
            Mismatch::NoCommonMediator => "trust none of your mediators".to_string(),
            Mismatch::SameParty => format!("{is} your own"),
        }
    }
}

fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::examples;
    use crate::solver::matcher::explain;

    #[test]
    fn says_in_sentences_why_nothing_matched() {
        let job = examples::job_offer(1, 10u128.pow(18), 1000);
        let dear = examples::resource_offer(2, 3 * 10u128.pow(18), 1000);
        let dearer = examples::resource_offer(3, 4 * 10u128.pow(18), 1000);
        let text = explain(&job, &[dear, dearer], 0).describe(&job);
        assert_eq!(
            text,
            "2 offers online, none fits: 2 ask more than you pay (the cheapest asks 3 LP, you pay at most 1 LP per instruction)"
        );

        let small = examples::resource_offer(4, 1, 10);
        let text = explain(&job, &[small], 1).describe(&job);
        assert_eq!(text, "1 offer online (1 offer not refreshed recently, so not considered), none fits: 1 is too small (the job needs 1000 millicores, 10 MiB, 0 GPU(s))");

        assert_eq!(
            explain(&job, &[], 0).describe(&job),
            "no resource provider has an offer online"
        );
        let fits = examples::resource_offer(5, 1, 1000);
        assert!(explain(&job, &[fits], 0)
            .describe(&job)
            .contains("1 offer would take the job but went to older job offers"));
    }

    #[test]
    fn round_trips_on_the_wire() {
        let job = examples::job_offer(1, 1, 1000);
        let explanation = explain(&job, &[examples::resource_offer(2, 3, 10)], 0);
        let json = serde_json::to_string(&explanation).unwrap();
        assert!(json.contains("\"cheapest_price\":\"3\""), "{json}");
        let back: Explanation = serde_json::from_str(&json).unwrap();
        assert_eq!(back, explanation);
    }
}
