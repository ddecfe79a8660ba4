//! The solver's HTTP API (warp) under `/api/v1`, plus `/ws`, `/health` and `/metrics`;
//! `openapi.json` beside this file describes it (served at `/api/v1/openapi.json`).
//! Writes and private reads must be signed (see `data::signing`); every handler answers
//! JSON errors with a status that says whose fault it was, and none can panic on input.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use ethers::types::Address;
use serde::{Deserialize, Serialize};
use warp::http::{HeaderMap, StatusCode};
use warp::reply::Response;
use warp::{Filter, Rejection, Reply};

use super::limits::Limited;
use super::{query, Solver, SolverError};
use crate::data::records::{DealFilter, ErrorBody, TxRecord};
use crate::data::signing::{self, AuthError};

/// The OpenAPI document of this API, served at `/api/v1/openapi.json`.
pub const OPENAPI: &str = include_str!("openapi.json");

fn respond<T: Serialize>(result: Result<T, SolverError>, ok: StatusCode) -> Response {
    match result {
        Ok(value) => warp::reply::with_status(warp::reply::json(&value), ok).into_response(),
        Err(error) => {
            if error.status().is_server_error() {
                tracing::error!(%error, "request failed");
            } else {
                tracing::debug!(%error, "request refused");
            }
            let status = error.status();
            let mut response = warp::reply::with_status(
                warp::reply::json(&ErrorBody {
                    error: error.to_string(),
                }),
                status,
            )
            .into_response();
            if let SolverError::TooMany { retry_after, .. } = error {
                response
                    .headers_mut()
                    .insert(warp::http::header::RETRY_AFTER, retry_after.into());
            }
            response
        }
    }
}

/// The parts of a request a signature covers.
#[derive(Debug, Clone)]
pub struct RequestInfo {
    pub method: String,
    pub path_and_query: String,
    pub headers: HeaderMap,
}

fn request_info() -> impl Filter<Extract = (RequestInfo,), Error = Infallible> + Clone {
    let query = warp::query::raw().or(warp::any().map(String::new)).unify();
    warp::method()
        .and(warp::path::full())
        .and(query)
        .and(warp::header::headers_cloned())
        .map(
            |method: warp::http::Method,
             path: warp::path::FullPath,
             query: String,
             headers: HeaderMap| RequestInfo {
                method: method.to_string(),
                path_and_query: if query.is_empty() {
                    path.as_str().to_string()
                } else {
                    format!("{}?{query}", path.as_str())
                },
                headers,
            },
        )
}

impl RequestInfo {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Checks the signature and the clock, then counts the request against its signer's
    /// limit; the caller's store write remembers the signature (offers: in the same
    /// transaction as the offer).
    pub fn verify(&self, solver: &Solver, body: &[u8]) -> Result<signing::Verified, SolverError> {
        let headers = signing::parse_headers(
            self.header(signing::ADDRESS_HEADER),
            self.header(signing::TIMESTAMP_HEADER),
            self.header(signing::SIGNATURE_HEADER),
        )?;
        let now = signing::now_secs();
        let verified = signing::verify(&headers, &self.method, &self.path_and_query, body, now)?;
        solver.limits.check_address(verified.signer)?;
        Ok(verified)
    }

    /// Checks the signature, the clock and replays (remembering the signature); returns
    /// the signer.
    pub async fn authenticate(&self, solver: &Solver, body: &[u8]) -> Result<Address, SolverError> {
        let verified = self.verify(solver, body)?;
        if !solver
            .store
            .remember_signature(&verified.canonical, signing::now_secs())
            .await?
        {
            return Err(AuthError::Replayed.into());
        }
        Ok(verified.signer)
    }
}

/// A request over the per-IP limit, rejected before anything else is read.
#[derive(Debug)]
struct OverLimit(Limited);

impl warp::reject::Reject for OverLimit {}

/// The client's IP (see [`super::limits::Limits::client_ip`]).
fn client_ip(
    solver: Arc<Solver>,
) -> impl Filter<Extract = (Option<std::net::IpAddr>,), Error = Infallible> + Clone {
    warp::addr::remote()
        .and(warp::header::headers_cloned())
        .map(move |peer, headers: HeaderMap| solver.limits.client_ip(peer, &headers))
}

/// Counts the request against its IP's limit; rejects it past the limit.
fn per_ip_limit(solver: Arc<Solver>) -> impl Filter<Extract = (), Error = Rejection> + Clone {
    client_ip(solver.clone())
        .and_then(move |ip| {
            let result = solver.limits.check_ip(ip);
            async move { result.map_err(|limited| warp::reject::custom(OverLimit(limited))) }
        })
        .untuple_one()
}

/// A JSON error with `status` and a Retry-After header.
fn retry_later(status: StatusCode, limited: &Limited) -> Response {
    let mut response = warp::reply::with_status(
        warp::reply::json(&ErrorBody {
            error: limited.message.clone(),
        }),
        status,
    )
    .into_response();
    response
        .headers_mut()
        .insert(warp::http::header::RETRY_AFTER, limited.retry_after.into());
    response
}

fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8], what: &str) -> Result<T, SolverError> {
    serde_json::from_slice(body).map_err(|e| SolverError::Invalid(format!("malformed {what}: {e}")))
}

#[derive(Debug, Deserialize)]
struct WsQuery {
    since: Option<u64>,
}

#[derive(Debug, Deserialize)]
struct OwnerQuery {
    resource_provider: Option<Address>,
}

#[derive(Debug, Deserialize)]
struct TxBody {
    action: String,
    tx_hash: String,
}

/// Every route.
pub fn routes(
    solver: Arc<Solver>,
) -> impl Filter<Extract = (impl Reply,), Error = Infallible> + Clone {
    let max = solver.settings.max_upload_bytes;
    let edge = solver.clone();
    let with = warp::any().map(move || solver.clone());
    let v1 = || warp::path("api").and(warp::path("v1"));
    // A signed write: the solver, what the signature covers, and the (size-capped) body.
    let signed_post = {
        let with = with.clone();
        move || {
            warp::post()
                .and(with.clone())
                .and(request_info())
                .and(warp::body::content_length_limit(max).and(warp::body::bytes()))
        }
    };
    // A signed read of private data: the solver and what the signature covers (empty body).
    let signed_get = {
        let with = with.clone();
        move || warp::get().and(with.clone()).and(request_info())
    };

    let health = warp::path!("health")
        .and(warp::get())
        .map(|| warp::reply::json(&serde_json::json!({"status": "ok"})).into_response());
    // The API described (OpenAPI 3.0), for clients and for schema-driven testing.
    let openapi = v1()
        .and(warp::path!("openapi.json"))
        .and(warp::get())
        .map(|| {
            warp::reply::with_header(
                OPENAPI,
                warp::http::header::CONTENT_TYPE,
                "application/json",
            )
            .into_response()
        });
    let metrics = warp::path!("metrics")
        .and(warp::get())
        .and(with.clone())
        .then(|solver: Arc<Solver>| async move { super::metrics::page(&solver).await });

    let post_job = v1().and(warp::path!("job_offers")).and(signed_post()).then(
        |solver: Arc<Solver>, info: RequestInfo, body: Bytes| async move {
            let result = async {
                let signed = info.verify(&solver, &body)?;
                solver
                    .add_job_offer(parse_json(&body, "job offer")?, &signed)
                    .await
            };
            respond(result.await, StatusCode::CREATED)
        },
    );
    let get_job = v1()
        .and(warp::path!("job_offers" / String))
        .and(warp::get())
        .and(with.clone())
        .then(|id: String, solver: Arc<Solver>| async move {
            let result = async {
                solver
                    .store
                    .job_offer(&id)
                    .await?
                    .ok_or_else(|| SolverError::NotFound(format!("no job offer {id}")))
            };
            respond(result.await, StatusCode::OK)
        });
    let withdraw_job = v1()
        .and(warp::path!("job_offers" / String / "withdraw"))
        .and(signed_post())
        .then(
            |id: String, solver: Arc<Solver>, info: RequestInfo, body: Bytes| async move {
                let result = async {
                    let signer = info.authenticate(&solver, &body).await?;
                    solver.withdraw_job_offer(&id, signer).await?;
                    Ok::<_, SolverError>(serde_json::json!({ "withdrawn": id }))
                };
                respond(result.await, StatusCode::OK)
            },
        );
    let explain = v1()
        .and(warp::path!("job_offers" / String / "explain"))
        .and(warp::get())
        .and(with.clone())
        .then(|id: String, solver: Arc<Solver>| async move {
            respond(solver.explain(&id).await, StatusCode::OK)
        });
    let post_resource = v1()
        .and(warp::path!("resource_offers"))
        .and(signed_post())
        .then(
            |solver: Arc<Solver>, info: RequestInfo, body: Bytes| async move {
                let result = async {
                    let signed = info.verify(&solver, &body)?;
                    solver
                        .add_resource_offer(parse_json(&body, "resource offer")?, &signed)
                        .await
                };
                respond(result.await, StatusCode::CREATED)
            },
        );
    let refresh = v1()
        .and(warp::path!("resource_offers" / String / "refresh"))
        .and(signed_post())
        .then(
            |id: String, solver: Arc<Solver>, info: RequestInfo, body: Bytes| async move {
                let result = async {
                    let signer = info.authenticate(&solver, &body).await?;
                    solver.refresh_resource_offer(&id, signer).await
                };
                respond(result.await, StatusCode::OK)
            },
        );
    let list_resources = v1()
        .and(warp::path!("resource_offers"))
        .and(warp::get())
        .and(query::query::<OwnerQuery>(query::OWNER))
        .and(with.clone())
        .then(|query: OwnerQuery, solver: Arc<Solver>| async move {
            let offers = solver.store.resource_offers(query.resource_provider).await;
            respond(offers.map_err(SolverError::from), StatusCode::OK)
        });
    let list_deals = v1()
        .and(warp::path!("deals"))
        .and(warp::get())
        .and(query::query::<DealFilter>(query::DEAL_FILTER))
        .and(with.clone())
        .then(|filter: DealFilter, solver: Arc<Solver>| async move {
            respond(
                solver.store.deals(&filter).await.map_err(SolverError::from),
                StatusCode::OK,
            )
        });
    let get_deal = v1()
        .and(warp::path!("deals" / String))
        .and(warp::get())
        .and(with.clone())
        .then(|id: String, solver: Arc<Solver>| async move {
            respond(solver.deal_for(&id).await, StatusCode::OK)
        });
    let post_result = v1()
        .and(warp::path!("deals" / String / "result"))
        .and(signed_post())
        .then(
            |id: String, solver: Arc<Solver>, info: RequestInfo, body: Bytes| async move {
                let result = async {
                    let signer = info.authenticate(&solver, &body).await?;
                    solver
                        .add_result(&id, parse_json(&body, "result")?, signer)
                        .await
                };
                respond(result.await, StatusCode::CREATED)
            },
        );
    let get_result = v1()
        .and(warp::path!("deals" / String / "result"))
        .and(signed_get())
        .then(
            |id: String, solver: Arc<Solver>, info: RequestInfo| async move {
                let result = async {
                    let signer = info.authenticate(&solver, b"").await?;
                    solver.result_for(&id, signer).await
                };
                respond(result.await, StatusCode::OK)
            },
        );
    let upload = v1()
        .and(warp::path!("deals" / String / "files"))
        .and(signed_post())
        .then(
            |id: String, solver: Arc<Solver>, info: RequestInfo, body: Bytes| async move {
                let result = async {
                    let signer = info.authenticate(&solver, &body).await?;
                    solver.upload_files(&id, &body, signer).await
                };
                respond(result.await, StatusCode::CREATED)
            },
        );
    let download = v1()
        .and(warp::path!("deals" / String / "files"))
        .and(signed_get())
        .then(
            |id: String, solver: Arc<Solver>, info: RequestInfo| async move {
                let result = async {
                    let signer = info.authenticate(&solver, b"").await?;
                    solver.download_files(&id, signer).await
                };
                match result.await {
                    Ok(bytes) => warp::http::Response::builder()
                        .header("content-type", "application/x-tar")
                        .header(
                            "content-disposition",
                            "attachment; filename=\"results.tar\"",
                        )
                        .body(warp::hyper::Body::from(bytes))
                        .unwrap_or_default(),
                    Err(error) => respond::<()>(Err(error), StatusCode::OK),
                }
            },
        );
    let post_tx = v1()
        .and(warp::path!("deals" / String / "txs"))
        .and(signed_post())
        .then(
            |id: String, solver: Arc<Solver>, info: RequestInfo, body: Bytes| async move {
                let result = async {
                    let signer = info.authenticate(&solver, &body).await?;
                    let tx: TxBody = parse_json(&body, "transaction record")?;
                    let record = TxRecord {
                        deal_id: id,
                        address: signer,
                        action: tx.action,
                        tx_hash: tx.tx_hash,
                    };
                    solver.add_tx(record).await
                };
                respond(result.await, StatusCode::CREATED)
            },
        );
    let get_txs = v1()
        .and(warp::path!("deals" / String / "txs"))
        .and(warp::get())
        .and(with.clone())
        .then(|id: String, solver: Arc<Solver>| async move {
            respond(
                solver.store.txs(&id).await.map_err(SolverError::from),
                StatusCode::OK,
            )
        });
    let ws = warp::path!("ws")
        .and(warp::ws())
        .and(query::query::<WsQuery>(query::SINCE))
        .and(with.clone())
        .and(client_ip(edge.clone()))
        .map(
            |ws: warp::ws::Ws, query: WsQuery, solver: Arc<Solver>, ip| match solver
                .limits
                .open_ws(ip)
            {
                Ok(client) => ws
                    .on_upgrade(move |socket| async move {
                        let _client = client;
                        super::ws::serve(socket, solver, query.since).await
                    })
                    .into_response(),
                Err(limited) => retry_later(StatusCode::SERVICE_UNAVAILABLE, &limited),
            },
        );

    let limited = post_job
        .or(explain)
        .or(withdraw_job)
        .or(get_job)
        .or(post_resource)
        .or(refresh)
        .or(list_resources)
        .or(post_result)
        .or(get_result)
        .or(upload)
        .or(download)
        .or(post_tx)
        .or(get_txs)
        .or(get_deal)
        .or(list_deals)
        .or(ws);
    let answered = health
        .or(metrics)
        .or(openapi)
        .or(per_ip_limit(edge).and(limited))
        .recover(recover);
    // A 405 says which methods the path does take (RFC 9110).
    warp::path::full()
        .and(answered)
        .map(|path: warp::path::FullPath, reply| {
            let mut response = Reply::into_response(reply);
            if response.status() == StatusCode::METHOD_NOT_ALLOWED {
                if let Some(allow) = allowed_methods(path.as_str()) {
                    if let Ok(value) = warp::http::HeaderValue::from_str(&allow) {
                        response
                            .headers_mut()
                            .insert(warp::http::header::ALLOW, value);
                    }
                }
            }
            response
        })
}

/// The methods `path` takes, from the OpenAPI document (`/ws` besides), as an Allow value.
fn allowed_methods(path: &str) -> Option<String> {
    static PATHS: std::sync::OnceLock<crate::openapi::Paths> = std::sync::OnceLock::new();
    PATHS
        .get_or_init(|| crate::openapi::Paths::of(OPENAPI, &[("/ws", &["GET"])]))
        .allow(path)
}

async fn recover(rejection: Rejection) -> Result<Response, Infallible> {
    if let Some(OverLimit(limited)) = rejection.find::<OverLimit>() {
        return Ok(retry_later(StatusCode::TOO_MANY_REQUESTS, limited));
    }
    let (status, message) = if rejection.is_not_found() {
        (
            StatusCode::NOT_FOUND,
            "no such endpoint; see the API list in README.md".to_string(),
        )
    } else if let Some(e) = rejection.find::<warp::reject::PayloadTooLarge>() {
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("{e}: the body exceeds MAX_UPLOAD_BYTES"),
        )
    } else if let Some(e) = rejection.find::<warp::reject::LengthRequired>() {
        (StatusCode::LENGTH_REQUIRED, e.to_string())
    } else if let Some(message) = query::bad_query(&rejection) {
        (StatusCode::BAD_REQUEST, message)
    } else if rejection.find::<warp::reject::MethodNotAllowed>().is_some() {
        (
            StatusCode::METHOD_NOT_ALLOWED,
            "method not allowed on this endpoint".to_string(),
        )
    } else {
        (StatusCode::BAD_REQUEST, format!("{rejection:?}"))
    };
    Ok(
        warp::reply::with_status(warp::reply::json(&ErrorBody { error: message }), status)
            .into_response(),
    )
}
