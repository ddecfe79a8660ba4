//! The SaaS API over real HTTP on a `lilypad dev` process (its saas on SQLite in the dev
//! directory): sign-up and login with secure session cookies and CSRF on writes, the
//! operator's `lilypad saas grant`, jobs through the network (async and blocking), API keys
//! (shown once, scoped to their owner, revocable), isolation between users, and credits
//! exact under 50 concurrent submissions.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::dev_process::DevProcess;
use reqwest::StatusCode;
use serde_json::{json, Value};

struct Api {
    base: String,
    http: reqwest::Client,
}

/// How a request is authenticated.
#[derive(Clone)]
enum As {
    Nobody,
    /// Session cookie, and the CSRF token (None: left out).
    Session(String, Option<String>),
    Key(String),
}

impl Api {
    async fn call(
        &self,
        method: &str,
        path: &str,
        who: &As,
        body: Option<Value>,
    ) -> (StatusCode, Value, reqwest::header::HeaderMap) {
        let url = format!("{}/api/v1/{path}", self.base);
        let mut request = self.http.request(method.parse().unwrap(), &url);
        match who {
            As::Nobody => {}
            As::Session(cookie, csrf) => {
                request = request.header("cookie", cookie);
                if let Some(csrf) = csrf {
                    request = request.header("x-csrf-token", csrf);
                }
            }
            As::Key(key) => request = request.header("authorization", format!("Bearer {key}")),
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{method} {path}: not JSON ({e}): {text}"))
        };
        (status, value, headers)
    }

    /// Signs up; the session (cookie and CSRF token).
    async fn signup(&self, email: &str) -> As {
        let (status, body, headers) = self
            .call(
                "POST",
                "signup",
                &As::Nobody,
                Some(json!({"email": email, "password": "correct horse battery"})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let cookie = headers["set-cookie"].to_str().unwrap().to_string();
        for part in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/"] {
            assert!(cookie.contains(part), "{cookie}");
        }
        let pair = cookie.split(';').next().unwrap().to_string();
        As::Session(pair, Some(body["csrf"].as_str().unwrap().to_string()))
    }

    async fn credits(&self, who: &As) -> i64 {
        let (status, body, _) = self.call("GET", "me", who, None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["credits"].as_i64().unwrap()
    }
}

fn grant(dir: &std::path::Path, database: &Option<String>, email: &str, amount: u32) {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_lilypad"));
    command
        .args(["saas", "grant", email, &amount.to_string()])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir)
        .env("DATA_DIR", dir.join("dev"));
    if let Some(url) = database {
        command.env("DATABASE_URL", url);
    }
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout)
        .contains(&format!("granted {amount} credits to {email}")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn people_sign_up_pay_with_credits_and_see_only_their_own_jobs_on_sqlite() {
    scenario(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn people_sign_up_pay_with_credits_and_see_only_their_own_jobs_on_postgresql() {
    scenario(Some(common::postgres_database().await)).await;
}

/// The whole story, with the service's store in SQLite (None) or that PostgreSQL database.
async fn scenario(database: Option<String>) {
    let dir = tempfile::tempdir().unwrap();
    let mut env = Vec::new();
    if let Some(url) = &database {
        env.push(("DATABASE_URL", url.clone()));
    }
    let dev = DevProcess::start(dir.path(), &env).await;
    let api = Api {
        base: dev.url("saas").to_string(),
        http: reqwest::Client::new(),
    };

    // Accounts.
    let (status, modules, _) = api.call("GET", "modules", &As::Nobody, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(modules[0]["module"], "cowsay:v0.0.1");
    assert_eq!(modules[0]["cost"], 1);
    let alice = api.signup("alice@example.com").await;
    for (body, status) in [
        (
            json!({"email": "alice@example.com", "password": "another password"}),
            StatusCode::CONFLICT,
        ),
        (
            json!({"email": "not-an-email", "password": "long enough"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"email": "carol@example.com", "password": "short"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"email": "carol@example.com", "password": "long enough", "admin": true}),
            StatusCode::BAD_REQUEST,
        ),
    ] {
        assert_eq!(
            api.call("POST", "signup", &As::Nobody, Some(body)).await.0,
            status
        );
    }
    let (status, _, _) = api
        .call(
            "POST",
            "login",
            &As::Nobody,
            Some(json!({"email": "alice@example.com", "password": "wrong horse"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, body, headers) = api
        .call(
            "POST",
            "login",
            &As::Nobody,
            Some(json!({"email": "Alice@Example.com", "password": "correct horse battery"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(headers["set-cookie"]
        .to_str()
        .unwrap()
        .starts_with("lilypad_session="));
    assert_eq!(api.credits(&alice).await, 0);
    assert_eq!(
        api.call("GET", "me", &As::Nobody, None).await.0,
        StatusCode::UNAUTHORIZED
    );

    // The operator grants credits; a job needs the session's CSRF token.
    grant(dir.path(), &database, "alice@example.com", 5);
    assert_eq!(api.credits(&alice).await, 5);
    let As::Session(cookie, _) = alice.clone() else {
        unreachable!()
    };
    let no_csrf = As::Session(cookie.clone(), None);
    let job = json!({"module": "cowsay:v0.0.1", "inputs": {"Message": "moo from the api"}});
    let (status, body, _) = api.call("POST", "jobs", &no_csrf, Some(job.clone())).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let wrong_csrf = As::Session(cookie.clone(), Some("0".repeat(64)));
    assert_eq!(
        api.call("POST", "jobs", &wrong_csrf, Some(job.clone()))
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    let (status, body, _) = api.call("POST", "jobs?wait=120", &alice, Some(job)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["state"], "done", "{body}");
    assert!(body["detail"]["stdout"]
        .as_str()
        .unwrap()
        .contains("moo from the api"));
    let alice_job = body["id"].as_str().unwrap().to_string();
    assert_eq!(api.credits(&alice).await, 4);

    // An API key: shown once, listed without it, good for submitting without CSRF.
    let (status, created, _) = api
        .call("POST", "api_keys", &alice, Some(json!({"name": "ci"})))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let key = created["key"].as_str().unwrap().to_string();
    assert!(key.starts_with("lp-"));
    let (_, keys, _) = api.call("GET", "api_keys", &alice, None).await;
    assert_eq!(keys.as_array().unwrap().len(), 1);
    assert!(
        !keys.to_string().contains(&key),
        "the key itself is never listed"
    );
    let with_key = As::Key(key.clone());
    let (status, body, _) = api
        .call("POST", "jobs", &with_key, Some(json!({"module": "cowsay:v0.0.1", "inputs": {"Message": "<script>alert(1)</script>"}})))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let (_, jobs, _) = api.call("GET", "jobs", &with_key, None).await;
    assert_eq!(jobs.as_array().unwrap().len(), 2);
    assert_eq!(
        api.call(
            "POST",
            "jobs",
            &As::Key(format!("lp-{}", "0".repeat(64))),
            None
        )
        .await
        .0,
        StatusCode::UNAUTHORIZED
    );

    // Bob sees nothing of Alice's, cannot touch her key, and cannot pay.
    let bob = api.signup("bob@example.com").await;
    let file = |who: &As| {
        let request = api
            .http
            .get(format!("{}/api/v1/jobs/{alice_job}/files/stdout", api.base));
        match who {
            As::Session(cookie, _) => request.header("cookie", cookie),
            _ => request,
        }
    };
    let mine = file(&alice).send().await.unwrap();
    assert_eq!(mine.status(), StatusCode::OK);
    assert!(mine.text().await.unwrap().contains("moo from the api"));
    assert_eq!(
        file(&bob).send().await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        api.call("GET", &format!("jobs/{alice_job}"), &bob, None)
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        api.call("GET", &format!("jobs/{alice_job}"), &alice, None)
            .await
            .0,
        StatusCode::OK
    );
    let (_, bobs, _) = api.call("GET", "jobs", &bob, None).await;
    assert_eq!(bobs, json!([]));
    let key_id = created["id"].as_str().unwrap();
    assert_eq!(
        api.call("DELETE", &format!("api_keys/{key_id}"), &bob, None)
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    let (status, body, _) = api
        .call(
            "POST",
            "jobs",
            &bob,
            Some(json!({"module": "cowsay:v0.0.1", "inputs": {"Message": "free?"}})),
        )
        .await;
    assert_eq!(status, StatusCode::PAYMENT_REQUIRED, "{body}");
    let (_, transactions, _) = api.call("GET", "transactions", &bob, None).await;
    assert_eq!(transactions, json!([]));
    // Bob's live stream carries his own jobs only (the one refused), none of Alice's.
    let As::Session(bob_cookie, _) = bob.clone() else {
        unreachable!()
    };
    let mut stream = api
        .http
        .get(format!("{}/api/v1/events", api.base))
        .header("cookie", bob_cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.headers()["content-type"], "text/event-stream");
    let mut heard = String::new();
    let until = tokio::time::Instant::now() + Duration::from_millis(1500);
    while let Ok(Ok(Some(chunk))) = tokio::time::timeout_at(until, stream.chunk()).await {
        heard.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert_eq!(heard.matches("event:job").count(), 1, "{heard}");
    assert!(
        heard.contains("\"state\":\"refused\"") && !heard.contains(&alice_job),
        "{heard}"
    );

    // Sign-in attempts are limited to 10 a minute per email and per IP (this IP made two
    // before): the next ones wait, and say how long.
    let mut refused_at = None;
    for attempt in 1..=11 {
        let wrong = json!({"email": "bob@example.com", "password": "not bob's password"});
        let (status, body, headers) = api.call("POST", "login", &As::Nobody, Some(wrong)).await;
        if status == StatusCode::TOO_MANY_REQUESTS {
            assert!(headers.contains_key("retry-after"), "{body}");
            refused_at = Some(attempt);
            break;
        }
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    }
    let refused_at = refused_at.expect("the attempts were limited");
    assert!(
        (8..=11).contains(&refused_at),
        "limited at attempt {refused_at}"
    );

    // Fifty submissions at once on ten credits: exactly ten are taken.
    grant(dir.path(), &database, "alice@example.com", 7);
    assert_eq!(api.credits(&alice).await, 10);
    let api = Arc::new(api);
    let mut tasks = Vec::new();
    for i in 0..50 {
        let (api, who) = (api.clone(), with_key.clone());
        tasks.push(tokio::spawn(async move {
            api.call(
                "POST",
                "jobs",
                &who,
                Some(
                    json!({"module": "cowsay:v0.0.1", "inputs": {"Message": format!("crowd {i}")}}),
                ),
            )
            .await
            .0
        }));
    }
    let mut taken = 0;
    for task in tasks {
        match task.await.unwrap() {
            StatusCode::ACCEPTED => taken += 1,
            StatusCode::PAYMENT_REQUIRED => {}
            other => panic!("{other}"),
        }
    }
    assert_eq!(taken, 10);
    assert_eq!(api.credits(&alice).await, 0);
    let (_, transactions, _) = api.call("GET", "transactions", &alice, None).await;
    let charges: i64 = transactions
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["kind"] == "charge")
        .map(|t| t["amount"].as_i64().unwrap())
        .sum();
    assert_eq!(charges, -12, "two earlier jobs and ten of the fifty");
    // They all run, each paid once.
    let started = Instant::now();
    loop {
        let (_, jobs, _) = api.call("GET", "jobs", &alice, None).await;
        let jobs = jobs.as_array().unwrap().clone();
        let open = jobs
            .iter()
            .filter(|j| j["state"] == "queued" || j["state"] == "offered")
            .count();
        if open == 0 {
            let done = jobs.iter().filter(|j| j["state"] == "done").count();
            assert_eq!(done, 12, "{jobs:?}");
            let refused = jobs.iter().filter(|j| j["state"] == "refused").count();
            assert_eq!(refused, 40);
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(240),
            "{open} jobs still open"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(api.credits(&alice).await, 0);
    let stdout_with_html = {
        let (_, jobs, _) = api.call("GET", "jobs", &alice, None).await;
        jobs.as_array()
            .unwrap()
            .iter()
            .find(|j| j["inputs"]["Message"] == "<script>alert(1)</script>")
            .unwrap()["detail"]["stdout"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert!(
        stdout_with_html.contains("<script>alert(1)</script>"),
        "kept as text: {stdout_with_html}"
    );

    // A revoked key and an ended session are refused.
    assert_eq!(
        api.call("DELETE", &format!("api_keys/{key_id}"), &alice, None)
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    let (status, body, _) = api.call("GET", "jobs", &with_key, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(body["error"].as_str().unwrap().contains("revoked"));
    let (status, _, headers) = api.call("POST", "logout", &alice, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(headers["set-cookie"]
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));
    assert_eq!(
        api.call("GET", "me", &alice, None).await.0,
        StatusCode::UNAUTHORIZED
    );
    // The store was where the settings said.
    let sqlite = dir.path().join("dev/saas/saas.db");
    assert_eq!(sqlite.exists(), database.is_none(), "{}", sqlite.display());
    dev.stop().await;
}
