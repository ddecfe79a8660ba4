//! `GET /metrics`: the solver's counts in the Prometheus text format (deals by on-chain
//! state, unmatched offers, events stored).

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
            let text = render(&per_state, jobs, resources, last);
            warp::reply::with_header(text, "content-type", "text/plain; version=0.0.4")
                .into_response()
        }
        Err(error) => {
            tracing::error!(%error, "cannot read the counts for /metrics");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

fn render(per_state: &[(u8, u64)], jobs: u64, resources: u64, last_event: u64) -> String {
    let mut text = String::new();
    metric(
        &mut text,
        "lilypad_deals",
        "Deals by on-chain state.",
        "gauge",
    );
    for (state, count) in per_state {
        let name = DealState::try_from(*state)
            .map(DealState::name)
            .unwrap_or("Unknown");
        let _ = writeln!(text, "lilypad_deals{{state=\"{name}\"}} {count}");
    }
    for (name, help, kind, value) in [
        (
            "lilypad_open_job_offers",
            "Unmatched job offers.",
            "gauge",
            jobs,
        ),
        (
            "lilypad_open_resource_offers",
            "Unmatched resource offers.",
            "gauge",
            resources,
        ),
        (
            "lilypad_events_total",
            "Events stored.",
            "counter",
            last_event,
        ),
    ] {
        metric(&mut text, name, help, kind);
        let _ = writeln!(text, "{name} {value}");
    }
    text
}

fn metric(text: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(text, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

#[cfg(test)]
mod tests {
    use super::render;

    #[test]
    fn renders_the_prometheus_text_format() {
        let text = render(&[(3, 2), (42, 1)], 5, 7, 9);
        assert_eq!(
            text,
            "# HELP lilypad_deals Deals by on-chain state.\n# TYPE lilypad_deals gauge\n\
             lilypad_deals{state=\"ResultsAccepted\"} 2\nlilypad_deals{state=\"Unknown\"} 1\n\
             # HELP lilypad_open_job_offers Unmatched job offers.\n# TYPE lilypad_open_job_offers gauge\nlilypad_open_job_offers 5\n\
             # HELP lilypad_open_resource_offers Unmatched resource offers.\n# TYPE lilypad_open_resource_offers gauge\nlilypad_open_resource_offers 7\n\
             # HELP lilypad_events_total Events stored.\n# TYPE lilypad_events_total counter\nlilypad_events_total 9\n"
        );
    }
}
