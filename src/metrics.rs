//! The process's Prometheus metrics, shared by every role it runs: chain calls and their
//! errors, transactions and the gas they spent, the work runtime's queue depth, in-flight
//! tasks and step outcomes, deals' outcomes, and the solver's match-pass latency. Roles add
//! their own ledger counts (jobs by state) when the page is rendered.

use std::fmt::Write;
use std::sync::OnceLock;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Method {
    pub method: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Outcome {
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct State {
    pub state: &'static str,
}

/// Every metric this process keeps.
pub struct Metrics {
    registry: Registry,
    pub chain_requests: Family<Method, Counter>,
    pub chain_errors: Family<Method, Counter>,
    pub transactions: Family<Outcome, Counter>,
    pub gas_used: Counter,
    pub work_items: Gauge,
    pub work_in_flight: Gauge,
    pub steps: Family<Outcome, Counter>,
    pub deal_outcomes: Family<State, Counter>,
    pub match_seconds: Histogram,
}

impl Metrics {
    fn new() -> Metrics {
        let mut registry = Registry::default();
        let metrics = Metrics {
            chain_requests: Family::default(),
            chain_errors: Family::default(),
            transactions: Family::default(),
            gas_used: Counter::default(),
            work_items: Gauge::default(),
            work_in_flight: Gauge::default(),
            steps: Family::default(),
            deal_outcomes: Family::default(),
            // 0.1 ms to about 3 s.
            match_seconds: Histogram::new(exponential_buckets(0.0001, 2.0, 16)),
            registry: Registry::default(),
        };
        registry.register(
            "lilypad_chain_requests",
            "JSON-RPC calls to the chain's node, by method",
            metrics.chain_requests.clone(),
        );
        registry.register(
            "lilypad_chain_request_errors",
            "JSON-RPC calls that failed (transport or node error), by method",
            metrics.chain_errors.clone(),
        );
        registry.register(
            "lilypad_transactions",
            "Transactions sent, by outcome (mined, reverted, failed)",
            metrics.transactions.clone(),
        );
        registry.register(
            "lilypad_transaction_gas_used",
            "Gas used by this node's mined transactions",
            metrics.gas_used.clone(),
        );
        registry.register(
            "lilypad_work_items",
            "Items (deals, job requests) the role found to work on at its last look",
            metrics.work_items.clone(),
        );
        registry.register(
            "lilypad_work_in_flight",
            "Steps running now",
            metrics.work_in_flight.clone(),
        );
        registry.register(
            "lilypad_work_steps",
            "Steps taken on items, by outcome (ok, failed)",
            metrics.steps.clone(),
        );
        registry.register(
            "lilypad_deal_outcomes",
            "Deals this node saw end, by on-chain end state",
            metrics.deal_outcomes.clone(),
        );
        registry.register(
            "lilypad_solver_match_seconds",
            "How long one matching pass of the solver took",
            metrics.match_seconds.clone(),
        );
        Metrics {
            registry,
            ..metrics
        }
    }
}

/// This process's metrics.
pub fn global() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::new)
}

/// Counts one JSON-RPC call.
pub fn chain_call(method: &str, ok: bool) {
    let method = Method {
        method: method.to_string(),
    };
    global().chain_requests.get_or_create(&method).inc();
    if !ok {
        global().chain_errors.get_or_create(&method).inc();
    }
}

/// Counts one transaction's outcome and, when mined, its gas.
pub fn transaction(outcome: &'static str, gas_used: Option<u64>) {
    global()
        .transactions
        .get_or_create(&Outcome { outcome })
        .inc();
    if let Some(gas) = gas_used {
        global().gas_used.inc_by(gas);
    }
}

/// A step in flight, counted in `lilypad_work_in_flight` until dropped (also when its
/// task is aborted or panics).
pub struct Running(());

impl Running {
    pub fn start() -> Running {
        global().work_in_flight.inc();
        Running(())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        global().work_in_flight.dec();
    }
}

/// Counts a deal that ended in `state` (a [`crate::data::DealState`] name).
pub fn deal_outcome(state: &'static str) {
    global().deal_outcomes.get_or_create(&State { state }).inc();
}

/// Records one matching pass.
pub fn match_pass(took: Duration) {
    global().match_seconds.observe(took.as_secs_f64());
}

/// The page: every metric in the Prometheus text format, then `extra` (a role's own
/// gauges, already rendered), then the closing `# EOF`.
pub fn render(extra: &str) -> String {
    let mut text = String::new();
    let _ = prometheus_client::encoding::text::encode_registry(&mut text, &global().registry);
    text.push_str(extra);
    text.push_str("# EOF\n");
    text
}

/// The HTTP answer of a /metrics page: [`render`] with `extra`, as OpenMetrics text.
pub fn reply(extra: String) -> warp::reply::Response {
    use warp::Reply;
    warp::reply::with_header(
        render(&extra),
        "content-type",
        "application/openmetrics-text; version=1.0.0; charset=utf-8",
    )
    .into_response()
}

/// One gauge family with a single label, as text (for a role's counts read at scrape time).
pub fn gauge_family(name: &str, help: &str, label: &str, values: &[(String, u64)]) -> String {
    let mut text = format!("# HELP {name} {help}.\n# TYPE {name} gauge\n");
    for (value, count) in values {
        let value = value.replace('\\', "\\\\").replace('"', "\\\"");
        let _ = writeln!(text, "{name}{{{label}=\"{value}\"}} {count}");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_holds_every_metric_and_the_role_counts() {
        chain_call("eth_blockNumber", true);
        chain_call("eth_blockNumber", false);
        transaction("mined", Some(21_000));
        deal_outcome("ResultsAccepted");
        match_pass(Duration::from_millis(3));
        let extra = gauge_family(
            "lilypad_rp_deals",
            "Deals by stage",
            "stage",
            &[("finished".into(), 2)],
        );
        let page = render(&extra);
        for line in [
            "lilypad_chain_requests_total{method=\"eth_blockNumber\"}",
            "lilypad_chain_request_errors_total{method=\"eth_blockNumber\"}",
            "lilypad_transactions_total{outcome=\"mined\"}",
            "lilypad_transaction_gas_used_total",
            "lilypad_deal_outcomes_total{state=\"ResultsAccepted\"}",
            "lilypad_solver_match_seconds_bucket{le=",
            "lilypad_rp_deals{stage=\"finished\"} 2",
            "# TYPE lilypad_work_in_flight gauge",
        ] {
            assert!(page.contains(line), "{line} in:\n{page}");
        }
        assert!(page.ends_with("# EOF\n"));
        assert_eq!(page.matches("# EOF").count(), 1);
    }
}
