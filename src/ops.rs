//! `/health` and `/metrics` of the long-running roles without an HTTP API of their own
//! (`rp`, `mediator`, `jc`), served on `METRICS_LISTEN` (`--metrics-listen ADDR:PORT`).
//!
//! `/health` answers 200 only when the role is ready: its chain node, its solver and (for
//! roles that run jobs) its engine all answer within a few seconds; otherwise 503, with
//! each check's result in the JSON body. `/metrics` is the process's metrics (see
//! [`crate::metrics`]) plus the role's own counts read from its ledger.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ethers::providers::Middleware;
use serde_json::json;
use tokio_util::sync::CancellationToken;
use warp::http::StatusCode;
use warp::Filter;

use crate::chain::Chain;
use crate::client::SolverClient;

/// How long each readiness check may take.
const CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// What a role shows on its operations port.
pub trait Ops: Send + Sync + 'static {
    /// The role's name (`rp`, `mediator`, `jc`).
    const ROLE: &'static str;
    fn chain(&self) -> &Chain;
    fn solver(&self) -> &SolverClient;
    /// Whether the role's engine answers; roles that run no jobs have none to check.
    fn engine(&self) -> Option<impl Future<Output = Result<(), String>> + Send> {
        None::<std::future::Ready<Result<(), String>>>
    }
    /// The role's own metrics, as text (its ledger's counts).
    fn counts(&self) -> impl Future<Output = Result<String, String>> + Send;
}

/// Parses METRICS_LISTEN.
pub fn listen_address(text: &str) -> Result<SocketAddr, String> {
    text.parse()
        .map_err(|_| format!("{text:?} is not ADDRESS:PORT (e.g. 127.0.0.1:9461 or 0.0.0.0:9461)"))
}

async fn check<F: Future<Output = Result<(), String>>>(future: F) -> Result<(), String> {
    match tokio::time::timeout(CHECK_TIMEOUT, future).await {
        Ok(result) => result,
        Err(_) => Err(format!("no answer within {} s", CHECK_TIMEOUT.as_secs())),
    }
}

/// The readiness checks, as (all passed, JSON body).
pub async fn health<O: Ops>(role: &O) -> (bool, serde_json::Value) {
    let chain = check(async {
        role.chain()
            .client
            .get_block_number()
            .await
            .map(|_| ())
            .map_err(|e| {
                format!(
                    "the chain node at {} does not answer: {e}",
                    role.chain().rpc_url
                )
            })
    });
    let solver = check(async {
        role.solver().health().await.map_err(|e| {
            format!(
                "the solver at {} does not answer: {e}",
                role.solver().base_url()
            )
        })
    });
    let engine = async {
        match role.engine() {
            Some(engine) => Some(check(engine).await),
            None => None,
        }
    };
    let (chain, solver, engine) = tokio::join!(chain, solver, engine);
    let show = |result: &Result<(), String>| match result {
        Ok(()) => "ok".to_string(),
        Err(error) => error.clone(),
    };
    let mut checks = serde_json::Map::new();
    checks.insert("chain".into(), show(&chain).into());
    checks.insert("solver".into(), show(&solver).into());
    if let Some(engine) = &engine {
        checks.insert("engine".into(), show(engine).into());
    }
    let ready = chain.is_ok() && solver.is_ok() && engine.as_ref().is_none_or(Result::is_ok);
    (
        ready,
        json!({"role": O::ROLE, "ready": ready, "checks": checks}),
    )
}

/// Serves `/health` and `/metrics` for `role` on `listen` until `shutdown`; returns the
/// address bound (port 0 picks a free one).
pub async fn serve<O: Ops>(
    listen: SocketAddr,
    role: Arc<O>,
    shutdown: CancellationToken,
) -> anyhow::Result<SocketAddr> {
    let with_role = {
        let role = role.clone();
        warp::any().map(move || role.clone())
    };
    let health = warp::path!("health")
        .and(warp::get())
        .and(with_role.clone())
        .then(|role: Arc<O>| async move {
            let (ready, body) = health(role.as_ref()).await;
            let status = if ready {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            warp::reply::with_status(warp::reply::json(&body), status)
        });
    let metrics =
        warp::path!("metrics")
            .and(warp::get())
            .and(with_role)
            .then(|role: Arc<O>| async move {
                use warp::Reply;
                match role.counts().await {
                    Ok(extra) => crate::metrics::reply(extra),
                    Err(error) => {
                        tracing::error!(%error, "cannot read the counts for /metrics");
                        StatusCode::INTERNAL_SERVER_ERROR.into_response()
                    }
                }
            });
    let (address, server) = warp::serve(health.or(metrics))
        .try_bind_with_graceful_shutdown(listen, async move { shutdown.cancelled().await })
        .map_err(|e| anyhow::anyhow!("cannot listen on METRICS_LISTEN {listen}: {e}"))?;
    tokio::spawn(server);
    tracing::info!(%address, role = O::ROLE, "serving /health and /metrics");
    Ok(address)
}
