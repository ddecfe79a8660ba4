//! The faucet's HTTP surface: `GET /` (the page), `GET /api/info`, `POST /api/claim`.
//! Errors are JSON `{"error": …}` with a status that says what to do: 400 (fix the
//! request), 413 (over 1 KiB), 429 with `Retry-After` (wait), 503 (the faucet is dry).

use std::net::SocketAddr;
use std::sync::Arc;

use serde::Deserialize;
use warp::http::{header, HeaderMap, StatusCode};
use warp::reply::{Reply, Response};
use warp::Filter;

use super::{ClaimError, Faucet};

/// The largest claim body taken.
const MAX_BODY: u64 = 1024;

const PAGE: &str = include_str!("page.html");

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClaimRequest {
    address: String,
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    let body = warp::reply::json(&serde_json::json!({ "error": message.into() }));
    warp::reply::with_status(body, status).into_response()
}

fn claim_error(e: ClaimError) -> Response {
    let message = e.to_string();
    match e {
        ClaimError::BadRequest(_) => error(StatusCode::BAD_REQUEST, message),
        ClaimError::Captcha(_) => error(StatusCode::FORBIDDEN, message),
        ClaimError::Wait(wait) => {
            let body = warp::reply::json(&serde_json::json!({
                "error": message,
                "retry_after": wait.seconds,
            }));
            let reply = warp::reply::with_status(body, StatusCode::TOO_MANY_REQUESTS);
            warp::reply::with_header(reply, header::RETRY_AFTER, wait.seconds.to_string())
                .into_response()
        }
        ClaimError::Empty(_) => error(StatusCode::SERVICE_UNAVAILABLE, message),
        ClaimError::Chain(_) => error(StatusCode::BAD_GATEWAY, message),
        ClaimError::Internal(_) => error(StatusCode::INTERNAL_SERVER_ERROR, message),
    }
}

async fn claim(
    faucet: Arc<Faucet>,
    peer: Option<SocketAddr>,
    headers: HeaderMap,
    body: bytes::Bytes,
) -> Result<Response, warp::Rejection> {
    let request: ClaimRequest = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(e) => {
            return Ok(error(
                StatusCode::BAD_REQUEST,
                format!("the body must be JSON {{\"address\": \"0x…\"}} and nothing else: {e}"),
            ))
        }
    };
    let ip = crate::solver::limits::client_ip(faucet.settings.trusted_proxy_hops, peer, &headers);
    let captcha = headers
        .get("h-captcha-response")
        .and_then(|value| value.to_str().ok());
    Ok(match faucet.claim(&request.address, ip, captcha).await {
        Ok(claimed) => warp::reply::json(&claimed).into_response(),
        Err(e) => claim_error(e),
    })
}

async fn rejected(rejection: warp::Rejection) -> Result<Response, std::convert::Infallible> {
    Ok(if rejection.is_not_found() {
        error(
            StatusCode::NOT_FOUND,
            "no such page: the faucet serves /, /api/info and POST /api/claim",
        )
    } else if rejection.find::<warp::reject::PayloadTooLarge>().is_some() {
        error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("a claim's body is at most {MAX_BODY} bytes"),
        )
    } else if rejection.find::<warp::reject::LengthRequired>().is_some() {
        error(StatusCode::LENGTH_REQUIRED, "send a Content-Length")
    } else if rejection.find::<warp::reject::MethodNotAllowed>().is_some() {
        error(
            StatusCode::METHOD_NOT_ALLOWED,
            "claims are POSTed to /api/claim",
        )
    } else {
        error(StatusCode::BAD_REQUEST, format!("{rejection:?}"))
    })
}

pub fn routes(
    faucet: Arc<Faucet>,
) -> impl Filter<Extract = (Response,), Error = std::convert::Infallible> + Clone {
    let with_faucet = {
        let faucet = faucet.clone();
        warp::any().map(move || faucet.clone())
    };
    let page = warp::path::end()
        .and(warp::get())
        .map(|| warp::reply::html(PAGE).into_response());
    let info = warp::path!("api" / "info")
        .and(warp::get())
        .and(with_faucet.clone())
        .map(|faucet: Arc<Faucet>| warp::reply::json(&faucet.info()).into_response());
    let claim = warp::path!("api" / "claim")
        .and(warp::post())
        .and(with_faucet)
        .and(warp::addr::remote())
        .and(warp::header::headers_cloned())
        .and(warp::body::content_length_limit(MAX_BODY))
        .and(warp::body::bytes())
        .and_then(claim);
    page.or(info)
        .unify()
        .or(claim)
        .unify()
        .recover(rejected)
        .unify()
}
