//! The SaaS web layer: its pages (one page, `app.html`, that draws each from the API), and
//! the HTTP API under `/api/v1`: accounts (sign-up, login, logout, me), the module catalog,
//! jobs (async, or blocking with `?wait=SECS`), live job updates (server-sent events at
//! `/api/v1/events`), transactions and API keys. Every answer is JSON; every error
//! `{"error": …}` with a status that says what to do.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde::Deserialize;
use warp::http::{header, HeaderMap, Method, StatusCode};
use warp::reply::{Reply, Response};
use warp::Filter;

use super::auth::{self, LoginLimit};
use super::runner::{Runner, SubmitError};
use super::store::{JobState, Store, User};

/// The largest request body taken.
const MAX_BODY: u64 = 64 * 1024;
/// The longest a blocking submission waits.
const MAX_WAIT_SECS: u64 = 300;

/// The service behind the API.
pub struct Saas {
    pub runner: Arc<Runner>,
    pub store: Store,
    pub login: LoginLimit,
    pub trusted_proxy_hops: usize,
}

/// An answer that is not a success.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
    retry_after: Option<u64>,
}

fn err(status: StatusCode, message: impl Into<String>) -> ApiError {
    ApiError {
        status,
        message: message.into(),
        retry_after: None,
    }
}

impl From<crate::db::DbError> for ApiError {
    fn from(e: crate::db::DbError) -> ApiError {
        tracing::error!(error = %e, "saas database");
        err(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the service's database failed",
        )
    }
}

fn json(status: StatusCode, value: &impl serde::Serialize) -> Response {
    warp::reply::with_status(warp::reply::json(value), status).into_response()
}

impl ApiError {
    fn into_response(self) -> Response {
        let mut response = json(self.status, &serde_json::json!({ "error": self.message }));
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, seconds.into());
        }
        response
    }
}

/// Who is calling.
enum Caller {
    /// A browser session, with the CSRF token its writes must carry.
    Session { user: String, csrf: String },
    /// A program with an API key.
    Key { user: String },
}

impl Caller {
    fn user(&self) -> &str {
        match self {
            Caller::Session { user, .. } | Caller::Key { user } => user,
        }
    }
}

/// One request, as the handlers see it.
struct Request {
    method: Method,
    path: String,
    query: String,
    headers: HeaderMap,
    peer: Option<SocketAddr>,
    body: Bytes,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn body<T: serde::de::DeserializeOwned>(&self, what: &str) -> Result<T, ApiError> {
        serde_json::from_slice(&self.body).map_err(|e| {
            err(
                StatusCode::BAD_REQUEST,
                format!("the body must be {what}: {e}"),
            )
        })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Credentials {
    email: String,
    password: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JobSubmission {
    module: String,
    #[serde(default)]
    inputs: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyRequest {
    name: String,
}

fn account(user: &User, csrf: Option<&str>) -> serde_json::Value {
    serde_json::json!({
        "id": user.id,
        "email": user.email,
        "credits": user.credits,
        "csrf": csrf,
    })
}

impl Saas {
    async fn caller(&self, request: &Request) -> Result<Caller, ApiError> {
        if let Some(value) = request.header("authorization") {
            let key = value
                .strip_prefix("Bearer ")
                .filter(|key| key.starts_with(auth::KEY_PREFIX))
                .ok_or_else(|| {
                    err(
                        StatusCode::UNAUTHORIZED,
                        "Authorization must be `Bearer lp-…` (an API key)",
                    )
                })?;
            return match self.store.api_key_user(&auth::digest(key)).await? {
                Some(user) => Ok(Caller::Key { user }),
                None => Err(err(StatusCode::UNAUTHORIZED, "unknown or revoked API key")),
            };
        }
        let token = auth::cookie_token(request.header("cookie")).ok_or_else(|| {
            err(
                StatusCode::UNAUTHORIZED,
                "sign in, or send an API key (Authorization: Bearer lp-…)",
            )
        })?;
        match self.store.session(&auth::digest(&token)).await? {
            Some((user, csrf)) => Ok(Caller::Session { user, csrf }),
            None => Err(err(
                StatusCode::UNAUTHORIZED,
                "the session has ended: sign in again",
            )),
        }
    }

    /// A caller allowed to change state: an API key, or a session whose request carries its
    /// CSRF token.
    async fn writer(&self, request: &Request) -> Result<Caller, ApiError> {
        let caller = self.caller(request).await?;
        if let Caller::Session { csrf, .. } = &caller {
            if request.header("x-csrf-token") != Some(csrf.as_str()) {
                return Err(err(
                    StatusCode::FORBIDDEN,
                    "missing or wrong X-CSRF-Token (GET /api/v1/me gives the session's)",
                ));
            }
        }
        Ok(caller)
    }

    async fn start_session(&self, user: &User, status: StatusCode) -> Result<Response, ApiError> {
        let token = auth::token();
        let csrf = auth::token();
        let expires = super::store::now_ms() + auth::SESSION_SECS * 1000;
        self.store
            .add_session(&auth::digest(&token), &user.id, &csrf, expires)
            .await?;
        let mut response = json(status, &account(user, Some(&csrf)));
        if let Ok(cookie) = auth::session_cookie(&token).parse() {
            response.headers_mut().insert(header::SET_COOKIE, cookie);
        }
        Ok(response)
    }

    async fn signup(&self, request: &Request) -> Result<Response, ApiError> {
        let Credentials { email, password } = request.body("{\"email\", \"password\"}")?;
        let email = email.trim().to_lowercase();
        if email.len() > 254
            || !email.contains('@')
            || email.starts_with('@')
            || email.ends_with('@')
        {
            return Err(err(StatusCode::BAD_REQUEST, "that is not an email address"));
        }
        if password.chars().count() < 8 || password.len() > 1024 {
            return Err(err(
                StatusCode::BAD_REQUEST,
                "a password has 8 to 1024 characters",
            ));
        }
        let hash = tokio::task::spawn_blocking(move || auth::hash_password(&password))
            .await
            .map_err(|_| err(StatusCode::INTERNAL_SERVER_ERROR, "hashing failed"))?
            .map_err(|e| err(StatusCode::INTERNAL_SERVER_ERROR, e))?;
        match self.store.add_user(&email, &hash).await? {
            Some(user) => self.start_session(&user, StatusCode::CREATED).await,
            None => Err(err(
                StatusCode::CONFLICT,
                "an account with that email exists: sign in",
            )),
        }
    }

    async fn login(&self, request: &Request) -> Result<Response, ApiError> {
        let Credentials { email, password } = request.body("{\"email\", \"password\"}")?;
        let email = email.trim().to_lowercase();
        let ip = crate::solver::limits::client_ip(
            self.trusted_proxy_hops,
            request.peer,
            &request.headers,
        );
        let mut keys = vec![format!("email:{email}")];
        if let Some(ip) = ip {
            keys.push(format!("ip:{ip}"));
        }
        if let Err(seconds) = self.login.check(&keys) {
            return Err(ApiError {
                status: StatusCode::TOO_MANY_REQUESTS,
                message: format!("too many sign-in attempts; try again in {seconds} s"),
                retry_after: Some(seconds),
            });
        }
        let user = self.store.user_by_email(&email).await?;
        let hash = user.as_ref().map(|u| u.password_hash.clone());
        let matches = tokio::task::spawn_blocking(move || match hash {
            Some(hash) => auth::password_matches(&password, &hash),
            None => false,
        })
        .await
        .unwrap_or(false);
        match (user, matches) {
            (Some(user), true) => self.start_session(&user, StatusCode::OK).await,
            _ => Err(err(StatusCode::UNAUTHORIZED, "wrong email or password")),
        }
    }

    async fn submit(&self, request: &Request, user: &str) -> Result<Response, ApiError> {
        let JobSubmission { module, inputs } = request.body("{\"module\", \"inputs\"}")?;
        let wait = query_value(&request.query, "wait")
            .map(|text| {
                text.parse::<u64>().map_err(|_| {
                    err(
                        StatusCode::BAD_REQUEST,
                        "wait takes whole seconds (at most 300)",
                    )
                })
            })
            .transpose()?
            .map(|secs| secs.min(MAX_WAIT_SECS));
        let job = match self.runner.submit(user, &module, inputs).await {
            Ok(job) => job,
            Err(SubmitError::Credits(why)) => return Err(err(StatusCode::PAYMENT_REQUIRED, why)),
            Err(SubmitError::Db(e)) => return Err(e.into()),
            Err(e) => return Err(err(StatusCode::BAD_REQUEST, e.to_string())),
        };
        let Some(wait) = wait else {
            return Ok(json(StatusCode::ACCEPTED, &job));
        };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(wait);
        loop {
            let now = self.store.job(user, &job.id).await?.unwrap_or(job.clone());
            let over = matches!(now.state, JobState::Done | JobState::Failed);
            if over || tokio::time::Instant::now() >= deadline {
                let status = if over {
                    StatusCode::OK
                } else {
                    StatusCode::ACCEPTED
                };
                return Ok(json(status, &now));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn handle(&self, request: Request) -> Result<Response, ApiError> {
        let path = request.path.trim_end_matches('/').to_string();
        let segments: Vec<&str> = path
            .strip_prefix("/api/v1/")
            .map(|rest| rest.split('/').collect())
            .unwrap_or_default();
        let method = request.method.clone();
        match (method, segments.as_slice()) {
            (Method::GET, ["modules"]) => Ok(json(StatusCode::OK, &self.runner.catalog())),
            (Method::POST, ["signup"]) => self.signup(&request).await,
            (Method::POST, ["login"]) => self.login(&request).await,
            (Method::POST, ["logout"]) => {
                if let Some(token) = auth::cookie_token(request.header("cookie")) {
                    self.store.end_session(&auth::digest(&token)).await?;
                }
                let mut response = StatusCode::NO_CONTENT.into_response();
                if let Ok(cookie) = auth::session_cookie("").parse() {
                    response.headers_mut().insert(header::SET_COOKIE, cookie);
                }
                Ok(response)
            }
            (Method::GET, ["me"]) => {
                let caller = self.caller(&request).await?;
                let user =
                    self.store.user(caller.user()).await?.ok_or_else(|| {
                        err(StatusCode::UNAUTHORIZED, "the account no longer exists")
                    })?;
                let csrf = match &caller {
                    Caller::Session { csrf, .. } => Some(csrf.as_str()),
                    Caller::Key { .. } => None,
                };
                Ok(json(StatusCode::OK, &account(&user, csrf)))
            }
            (Method::GET, ["jobs"]) => {
                let caller = self.caller(&request).await?;
                Ok(json(StatusCode::OK, &self.store.jobs(caller.user()).await?))
            }
            (Method::POST, ["jobs"]) => {
                let caller = self.writer(&request).await?;
                self.submit(&request, caller.user()).await
            }
            (Method::GET, ["jobs", id]) => {
                let caller = self.caller(&request).await?;
                match self.store.job(caller.user(), id).await? {
                    Some(job) => Ok(json(StatusCode::OK, &job)),
                    None => Err(err(StatusCode::NOT_FOUND, format!("you have no job {id}"))),
                }
            }
            (Method::GET, ["events"]) => {
                let caller = self.caller(&request).await?;
                Ok(job_events(self.store.clone(), caller.user().to_string()))
            }
            (Method::GET, ["jobs", id, "files", name @ ..]) if !name.is_empty() => {
                let caller = self.caller(&request).await?;
                let job =
                    self.store.job(caller.user(), id).await?.ok_or_else(|| {
                        err(StatusCode::NOT_FOUND, format!("you have no job {id}"))
                    })?;
                let name = name.join("/");
                let path = self.runner.file_path(&job, &name).ok_or_else(|| {
                    err(
                        StatusCode::NOT_FOUND,
                        format!("job {id} has no file {name}"),
                    )
                })?;
                let bytes = tokio::fs::read(&path).await.map_err(|e| {
                    tracing::warn!(path = %path.display(), error = %e, "a listed results file cannot be read");
                    err(StatusCode::GONE, format!("job {id}'s file {name} is no longer kept"))
                })?;
                Ok(file_response(&name, bytes))
            }
            (Method::GET, ["transactions"]) => {
                let caller = self.caller(&request).await?;
                Ok(json(
                    StatusCode::OK,
                    &self.store.transfers(caller.user()).await?,
                ))
            }
            (Method::GET, ["api_keys"]) => {
                let caller = self.caller(&request).await?;
                Ok(json(
                    StatusCode::OK,
                    &self.store.api_keys(caller.user()).await?,
                ))
            }
            (Method::POST, ["api_keys"]) => {
                let caller = self.writer(&request).await?;
                let KeyRequest { name } = request.body("{\"name\"}")?;
                let name = name.trim();
                if name.is_empty() || name.chars().count() > 100 {
                    return Err(err(
                        StatusCode::BAD_REQUEST,
                        "a key's name has 1 to 100 characters",
                    ));
                }
                let key = auth::new_api_key();
                let record = self
                    .store
                    .add_api_key(caller.user(), name, &auth::digest(&key))
                    .await?;
                Ok(json(
                    StatusCode::CREATED,
                    &serde_json::json!({
                        "id": record.id,
                        "name": record.name,
                        "created_ms": record.created_ms,
                        "key": key,
                        "note": "the key is shown this once; only its hash is kept",
                    }),
                ))
            }
            (Method::DELETE, ["api_keys", id]) => {
                let caller = self.writer(&request).await?;
                if self.store.revoke_api_key(caller.user(), id).await? {
                    Ok(StatusCode::NO_CONTENT.into_response())
                } else {
                    Err(err(
                        StatusCode::NOT_FOUND,
                        format!("you have no live API key {id}"),
                    ))
                }
            }
            (Method::GET, ["openapi.json"]) => {
                Ok(
                    warp::reply::with_header(OPENAPI, header::CONTENT_TYPE, "application/json")
                        .into_response(),
                )
            }
            _ => {
                static PATHS: std::sync::OnceLock<crate::openapi::Paths> =
                    std::sync::OnceLock::new();
                let paths = PATHS.get_or_init(|| {
                    crate::openapi::Paths::of(OPENAPI, &[("/api/v1/events", &["GET"])])
                });
                match paths.allow(&path) {
                    Some(allow) => {
                        let mut response = err(
                            StatusCode::METHOD_NOT_ALLOWED,
                            format!("{path} takes {allow}"),
                        )
                        .into_response();
                        if let Ok(value) = allow.parse() {
                            response.headers_mut().insert(header::ALLOW, value);
                        }
                        Ok(response)
                    }
                    None => Err(err(
                        StatusCode::NOT_FOUND,
                        "no such endpoint (GET /api/v1/openapi.json lists them)",
                    )),
                }
            }
        }
    }
}

/// A results file as a download; pictures and text are shown in place. Nothing a job wrote
/// may run in the page: no HTML or SVG is served as such, and the file is sandboxed.
fn file_response(name: &str, bytes: Vec<u8>) -> Response {
    let extension = name
        .rsplit_once('.')
        .map(|(_, ext)| ext.to_ascii_lowercase())
        .unwrap_or_default();
    let inline = match extension.as_str() {
        "png" => Some("image/png"),
        "jpg" | "jpeg" => Some("image/jpeg"),
        "gif" => Some("image/gif"),
        "webp" => Some("image/webp"),
        "txt" | "log" | "json" | "csv" => Some("text/plain; charset=utf-8"),
        _ => None,
    };
    let file = name.rsplit('/').next().unwrap_or(name).replace('"', "");
    let mut builder = warp::http::Response::builder()
        .header("x-content-type-options", "nosniff")
        .header("content-security-policy", "sandbox; default-src 'none'");
    builder = match inline {
        Some(kind) => builder.header(header::CONTENT_TYPE, kind),
        None => builder
            .header(header::CONTENT_TYPE, "application/octet-stream")
            .header(
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{file}\""),
            ),
    };
    builder
        .body(warp::hyper::Body::from(bytes))
        .unwrap_or_default()
}

/// How often a job stream looks for changes.
const EVENTS_EVERY: Duration = Duration::from_millis(500);

/// Server-sent events: `job` with a job's JSON each time one of `user`'s jobs changes (every
/// job once at the start), so pages show state live.
fn job_events(store: Store, user: String) -> Response {
    use futures::StreamExt;
    let seen: std::collections::HashMap<String, i64> = Default::default();
    let stream = futures::stream::unfold(
        (store, user, seen, true),
        |(store, user, mut seen, first)| async move {
            if !first {
                tokio::time::sleep(EVENTS_EVERY).await;
            }
            let jobs = store.jobs(&user).await.unwrap_or_default();
            let changed: Vec<_> = jobs
                .into_iter()
                .filter(|job| seen.get(&job.id) != Some(&job.updated_ms))
                .collect();
            for job in &changed {
                seen.insert(job.id.clone(), job.updated_ms);
            }
            Some((changed, (store, user, seen, false)))
        },
    )
    .flat_map(futures::stream::iter)
    .map(|job| {
        warp::sse::Event::default()
            .event("job")
            .json_data(&job)
            .map_err(|e| std::io::Error::other(e.to_string()))
    });
    warp::sse::reply(warp::sse::keep_alive().stream(stream)).into_response()
}

/// The OpenAPI document of this API, served at `/api/v1/openapi.json`.
pub const OPENAPI: &str = include_str!("openapi.json");

/// `name`'s value in a raw query string.
fn query_value<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// Bodies of at most [`MAX_BODY`] bytes, with a Content-Length (none: no body).
fn body_limit() -> impl Filter<Extract = (), Error = warp::Rejection> + Clone {
    warp::header::optional::<u64>("content-length")
        .and(warp::header::optional::<String>("transfer-encoding"))
        .and_then(|length: Option<u64>, chunked: Option<String>| async move {
            if chunked.is_some() {
                Err(warp::reject::custom(Unsized))
            } else if length.unwrap_or(0) > MAX_BODY {
                Err(warp::reject::custom(TooLarge))
            } else {
                Ok(())
            }
        })
        .untuple_one()
}

#[derive(Debug)]
struct TooLarge;
impl warp::reject::Reject for TooLarge {}

#[derive(Debug)]
struct Unsized;
impl warp::reject::Reject for Unsized {}

/// The web pages: one page that shows the sign-in form, the modules, the jobs, a job or the
/// account, by its path, using the API.
const APP: &str = include_str!("app.html");

/// Whether `path` is one of the pages.
fn is_page(path: &str) -> bool {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    matches!(
        segments.as_slice(),
        [""] | ["login"] | ["modules"] | ["jobs"] | ["account"] | ["jobs", _]
    )
}

/// Every route: the pages, and the API under `/api/v1/`.
pub fn routes(
    saas: Arc<Saas>,
) -> impl Filter<Extract = (Response,), Error = std::convert::Infallible> + Clone {
    let pages = warp::get()
        .and(warp::path::full())
        .and_then(|path: warp::path::FullPath| async move {
            if is_page(path.as_str()) {
                let page = warp::reply::html(APP);
                // The page runs only its own script and talks only to this origin.
                let page = warp::reply::with_header(
                    page,
                    "content-security-policy",
                    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; frame-ancestors 'none'",
                );
                Ok(warp::reply::with_header(page, "x-content-type-options", "nosniff").into_response())
            } else {
                Err(warp::reject::not_found())
            }
        });
    let query = warp::query::raw().or(warp::any().map(String::new)).unify();
    let api = warp::path("api")
        .and(warp::path("v1"))
        .and(warp::method())
        .and(warp::path::full())
        .and(query)
        .and(warp::header::headers_cloned())
        .and(warp::addr::remote())
        .and(body_limit())
        .and(warp::body::bytes())
        .then(
            move |method, path: warp::path::FullPath, query, headers, peer, body| {
                let saas = saas.clone();
                async move {
                    let request = Request {
                        method,
                        path: path.as_str().to_string(),
                        query,
                        headers,
                        peer,
                        body,
                    };
                    saas.handle(request)
                        .await
                        .unwrap_or_else(ApiError::into_response)
                }
            },
        );
    pages
        .or(api)
        .unify()
        .recover(|rejection: warp::Rejection| async move {
            let error = if rejection.find::<TooLarge>().is_some() {
                err(StatusCode::PAYLOAD_TOO_LARGE, "the body is over 64 KiB")
            } else if rejection.find::<Unsized>().is_some() {
                err(
                    StatusCode::LENGTH_REQUIRED,
                    "send the body with a Content-Length",
                )
            } else if rejection.is_not_found() {
                err(StatusCode::NOT_FOUND, "no such page")
            } else {
                err(StatusCode::BAD_REQUEST, format!("{rejection:?}"))
            };
            Ok::<_, std::convert::Infallible>(error.into_response())
        })
        .unify()
}
