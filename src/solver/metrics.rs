//! `GET /metrics`: the solver's counts (deals by on-chain state, unmatched offers, events
//! stored) after the process's own metrics (chain calls, transactions, match-pass latency),
//! in the OpenMetrics text format Prometheus reads.

use std::fmt::Write;

use warp::http::StatusCode;
use warp::reply::Response;
use warp::Reply;

use super::Solver;
use crate::data::DealState;

/// The metrics page, or 500 when the store cannot be read.
pub async fn page(solver: &Solver) -> Response {
    match solver.store.counts().await {
        Ok((per_state, jobs, resources, last)) => {
            crate::metrics::reply(render(&per_state, jobs, resources, last))
        }
        Err(error) => {
            tracing::error!(%error, "cannot read the counts for /metrics");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

fn render(per_state: &[(u8, u64)], jobs: u64, resources: u64, last_event: u64) -> String {
    let states: Vec<(String, u64)> = per_state
        .iter()
        .map(|(state, count)| {
            let name = DealState::try_from(*state)
                .map(DealState::name)
                .unwrap_or("Unknown");
            (name.to_string(), *count)
        })
        .collect();
    let mut text =
        crate::metrics::gauge_family("lilypad_deals", "Deals by on-chain state", "state", &states);
    for (name, help, value) in [
        ("lilypad_open_job_offers", "Unmatched job offers", jobs),
        (
            "lilypad_open_resource_offers",
            "Unmatched resource offers",
            resources,
        ),
    ] {
        let _ = write!(
            text,
            "# HELP {name} {help}.\n# TYPE {name} gauge\n{name} {value}\n"
        );
    }
    let _ = write!(
        text,
        "# HELP lilypad_events Events stored.\n# TYPE lilypad_events counter\nlilypad_events_total {last_event}\n"
    );
    text
}

#[cfg(test)]
mod tests {
    use super::render;

    #[test]
    fn renders_the_openmetrics_text_format() {
        let text = render(&[(3, 2), (42, 1)], 5, 7, 9);
        assert_eq!(
            text,
            "# HELP lilypad_deals Deals by on-chain state.\n# TYPE lilypad_deals gauge\n\
             lilypad_deals{state=\"ResultsAccepted\"} 2\nlilypad_deals{state=\"Unknown\"} 1\n\
             # HELP lilypad_open_job_offers Unmatched job offers.\n# TYPE lilypad_open_job_offers gauge\nlilypad_open_job_offers 5\n\
             # HELP lilypad_open_resource_offers Unmatched resource offers.\n# TYPE lilypad_open_resource_offers gauge\nlilypad_open_resource_offers 7\n\
             # HELP lilypad_events Events stored.\n# TYPE lilypad_events counter\nlilypad_events_total 9\n"
        );
    }
}
