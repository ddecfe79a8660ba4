//! The SaaS layer's data: accounts, sessions, API keys, the credits ledger and jobs, in
//! SQLite under DATA_DIR (one command, nothing to install) or the PostgreSQL database
//! `DATABASE_URL` names. The same SQL runs on both.
//!
//! Credits: every movement is a row of `transfers` (an admin grant, a job's charge, its
//! refund) and `users.credits` is their sum, both written in one transaction. A charge is a
//! conditional update (`credits >= cost`), so concurrent submissions can never take the
//! balance below zero; a job is charged and refunded at most once (unique per job and kind).

use std::path::{Path, PathBuf};

use serde::Serialize;
use sqlx::postgres::PgPool;
use sqlx::Row;

use crate::db::{Db, DbError};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS users (
    id TEXT PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    credits BIGINT NOT NULL DEFAULT 0 CHECK (credits >= 0),
    created_ms BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
    token_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id),
    csrf TEXT NOT NULL,
    expires_ms BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS api_keys (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id),
    name TEXT NOT NULL,
    key_hash TEXT NOT NULL UNIQUE,
    created_ms BIGINT NOT NULL,
    revoked_ms BIGINT
);
CREATE TABLE IF NOT EXISTS transfers (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id),
    kind TEXT NOT NULL,
    amount BIGINT NOT NULL,
    job_id TEXT,
    created_ms BIGINT NOT NULL,
    UNIQUE (job_id, kind)
);
CREATE INDEX IF NOT EXISTS transfers_by_user ON transfers (user_id, created_ms);
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id),
    module TEXT NOT NULL,
    inputs TEXT NOT NULL,
    cost BIGINT NOT NULL,
    state TEXT NOT NULL,
    detail TEXT,
    created_ms BIGINT NOT NULL,
    updated_ms BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_by_user ON jobs (user_id, created_ms);
";

/// The database a store runs on.
#[derive(Clone)]
enum Engine {
    Sqlite(Db),
    Postgres(PgPool),
}

/// Runs `$body` with `$pool` bound to the store's pool; compiled once per engine.
macro_rules! on_engine {
    ($store:expr, |$pool:ident| $body:expr) => {
        match &$store.engine {
            Engine::Sqlite(db) => {
                let $pool = db.pool();
                $body
            }
            Engine::Postgres(pool) => {
                let $pool = pool;
                $body
            }
        }
    };
}

#[derive(Clone)]
pub struct Store {
    engine: Engine,
    /// The database in errors (the SQLite file, or server and database without password).
    name: PathBuf,
}

/// A credits movement, as `GET /api/v1/transactions` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Transfer {
    pub id: String,
    /// `grant`, `charge` or `refund`.
    pub kind: String,
    /// Signed: a charge is negative.
    pub amount: i64,
    pub job_id: Option<String>,
    pub created_ms: i64,
}

/// An account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct User {
    pub id: String,
    pub email: String,
    pub credits: i64,
    #[serde(skip)]
    pub password_hash: String,
}

/// An API key's record (never the key itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiKey {
    pub id: String,
    pub name: String,
    pub created_ms: i64,
    pub revoked_ms: Option<i64>,
}

/// Where a job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Charged; its job offer not made yet.
    Queued,
    /// Its job offer is made (kept in the detail) and being followed to the end of its deal.
    Offered,
    /// Results paid for and downloaded.
    Done,
    /// Over without results; its credits were refunded.
    Failed,
    /// Refused before anything ran (not enough credits).
    Refused,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Offered => "offered",
            JobState::Done => "done",
            JobState::Failed => "failed",
            JobState::Refused => "refused",
        }
    }

    fn parse(text: &str) -> Option<JobState> {
        [
            JobState::Queued,
            JobState::Offered,
            JobState::Done,
            JobState::Failed,
            JobState::Refused,
        ]
        .into_iter()
        .find(|state| state.as_str() == text)
    }
}

/// A job a user asked the service for.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Job {
    pub id: String,
    #[serde(skip)]
    pub user_id: String,
    pub module: String,
    pub inputs: std::collections::BTreeMap<String, String>,
    pub cost: i64,
    pub state: JobState,
    /// Offered: the job offer; done: the deal and what the job printed; failed: why.
    pub detail: serde_json::Value,
    pub created_ms: i64,
    pub updated_ms: i64,
}

/// What a transfer did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Moved {
    Now,
    /// The job had that transfer already.
    Before,
    /// It would have taken the balance below zero.
    Short,
}

/// Why a charge did not happen.
#[derive(Debug, thiserror::Error)]
pub enum ChargeError {
    #[error("not enough credits: the job costs {cost} and the account holds {credits}")]
    NotEnough { cost: i64, credits: i64 },
    #[error(transparent)]
    Db(#[from] DbError),
}

pub fn now_ms() -> i64 {
    crate::data::offers::now_millis() as i64
}

/// A new random id (128 bits, hex).
pub fn new_id() -> String {
    crate::data::offers::new_nonce()
}

impl Store {
    /// The SQLite store at `path` (created if missing).
    pub async fn open(path: &Path) -> Result<Store, DbError> {
        Ok(Store {
            engine: Engine::Sqlite(Db::open(path, SCHEMA, 4).await?),
            name: path.to_path_buf(),
        })
    }

    /// The PostgreSQL store `url` names (tables created on first start).
    pub async fn connect(url: &str) -> Result<Store, DbError> {
        let (pool, name) = crate::db::connect_postgres(url, "DATABASE_URL", SCHEMA, 8).await?;
        Ok(Store {
            engine: Engine::Postgres(pool),
            name,
        })
    }

    /// PostgreSQL when `url` is set, else SQLite at `path`.
    pub async fn open_or_connect(url: Option<&str>, path: &Path) -> Result<Store, DbError> {
        match url {
            Some(url) => Store::connect(url).await,
            None => Store::open(path).await,
        }
    }

    fn sql(&self, source: sqlx::Error) -> DbError {
        DbError::Sql {
            db: self.name.clone(),
            source,
        }
    }

    /// Creates an account; None if the email is taken.
    pub async fn add_user(
        &self,
        email: &str,
        password_hash: &str,
    ) -> Result<Option<User>, DbError> {
        let id = new_id();
        let done = on_engine!(self, |pool| {
            sqlx::query(
                "INSERT INTO users (id, email, password_hash, credits, created_ms)
                 VALUES ($1, $2, $3, 0, $4) ON CONFLICT (email) DO NOTHING",
            )
            .bind(&id)
            .bind(email)
            .bind(password_hash)
            .bind(now_ms())
            .execute(pool)
            .await
            .map(|done| done.rows_affected())
        })
        .map_err(|e| self.sql(e))?;
        Ok((done == 1).then(|| User {
            id,
            email: email.to_string(),
            credits: 0,
            password_hash: password_hash.to_string(),
        }))
    }

    async fn user_where(&self, column: &str, value: &str) -> Result<Option<User>, DbError> {
        let query =
            format!("SELECT id, email, credits, password_hash FROM users WHERE {column} = $1");
        on_engine!(self, |pool| {
            match sqlx::query(&query).bind(value).fetch_optional(pool).await {
                Ok(Some(row)) => (|| {
                    Ok(Some(User {
                        id: row.try_get(0)?,
                        email: row.try_get(1)?,
                        credits: row.try_get(2)?,
                        password_hash: row.try_get(3)?,
                    }))
                })(),
                Ok(None) => Ok(None),
                Err(e) => Err(e),
            }
        })
        .map_err(|e| self.sql(e))
    }

    pub async fn user_by_email(&self, email: &str) -> Result<Option<User>, DbError> {
        self.user_where("email", email).await
    }

    pub async fn user(&self, id: &str) -> Result<Option<User>, DbError> {
        self.user_where("id", id).await
    }

    /// Records a session (by its token's hash) with its CSRF token.
    pub async fn add_session(
        &self,
        token_hash: &str,
        user_id: &str,
        csrf: &str,
        expires_ms: i64,
    ) -> Result<(), DbError> {
        on_engine!(self, |pool| {
            sqlx::query(
                "INSERT INTO sessions (token_hash, user_id, csrf, expires_ms) VALUES ($1, $2, $3, $4)",
            )
            .bind(token_hash)
            .bind(user_id)
            .bind(csrf)
            .bind(expires_ms)
            .execute(pool)
            .await
            .map(|_| ())
        })
        .map_err(|e| self.sql(e))?;
        Ok(())
    }

    /// The user and CSRF token of a live session.
    pub async fn session(&self, token_hash: &str) -> Result<Option<(String, String)>, DbError> {
        on_engine!(self, |pool| {
            match sqlx::query(
                "SELECT user_id, csrf FROM sessions WHERE token_hash = $1 AND expires_ms > $2",
            )
            .bind(token_hash)
            .bind(now_ms())
            .fetch_optional(pool)
            .await
            {
                Ok(Some(row)) => (|| Ok(Some((row.try_get(0)?, row.try_get(1)?))))(),
                Ok(None) => Ok(None),
                Err(e) => Err(e),
            }
        })
        .map_err(|e| self.sql(e))
    }

    pub async fn end_session(&self, token_hash: &str) -> Result<(), DbError> {
        on_engine!(self, |pool| {
            sqlx::query("DELETE FROM sessions WHERE token_hash = $1 OR expires_ms <= $2")
                .bind(token_hash)
                .bind(now_ms())
                .execute(pool)
                .await
                .map(|_| ())
        })
        .map_err(|e| self.sql(e))?;
        Ok(())
    }

    /// Records an API key (by its hash) for `user_id`.
    pub async fn add_api_key(
        &self,
        user_id: &str,
        name: &str,
        key_hash: &str,
    ) -> Result<ApiKey, DbError> {
        let key = ApiKey {
            id: new_id(),
            name: name.to_string(),
            created_ms: now_ms(),
            revoked_ms: None,
        };
        on_engine!(self, |pool| {
            sqlx::query(
                "INSERT INTO api_keys (id, user_id, name, key_hash, created_ms) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(&key.id)
            .bind(user_id)
            .bind(name)
            .bind(key_hash)
            .bind(key.created_ms)
            .execute(pool)
            .await
            .map(|_| ())
        })
        .map_err(|e| self.sql(e))?;
        Ok(key)
    }

    /// The user an unrevoked API key (by hash) belongs to.
    pub async fn api_key_user(&self, key_hash: &str) -> Result<Option<String>, DbError> {
        on_engine!(self, |pool| {
            match sqlx::query(
                "SELECT user_id FROM api_keys WHERE key_hash = $1 AND revoked_ms IS NULL",
            )
            .bind(key_hash)
            .fetch_optional(pool)
            .await
            {
                Ok(Some(row)) => row.try_get(0).map(Some),
                Ok(None) => Ok(None),
                Err(e) => Err(e),
            }
        })
        .map_err(|e| self.sql(e))
    }

    pub async fn api_keys(&self, user_id: &str) -> Result<Vec<ApiKey>, DbError> {
        on_engine!(self, |pool| {
            sqlx::query(
                "SELECT id, name, created_ms, revoked_ms FROM api_keys WHERE user_id = $1 ORDER BY created_ms, id",
            )
            .bind(user_id)
            .fetch_all(pool)
            .await
            .and_then(|rows| {
                rows.iter()
                    .map(|row| {
                        Ok(ApiKey {
                            id: row.try_get(0)?,
                            name: row.try_get(1)?,
                            created_ms: row.try_get(2)?,
                            revoked_ms: row.try_get(3)?,
                        })
                    })
                    .collect::<Result<Vec<_>, sqlx::Error>>()
            })
        })
        .map_err(|e| self.sql(e))
    }

    /// Revokes `user_id`'s key `key_id`; false if it has no such live key.
    pub async fn revoke_api_key(&self, user_id: &str, key_id: &str) -> Result<bool, DbError> {
        let done = on_engine!(self, |pool| {
            sqlx::query(
                "UPDATE api_keys SET revoked_ms = $1 WHERE id = $2 AND user_id = $3 AND revoked_ms IS NULL",
            )
            .bind(now_ms())
            .bind(key_id)
            .bind(user_id)
            .execute(pool)
            .await
            .map(|done| done.rows_affected())
        })
        .map_err(|e| self.sql(e))?;
        Ok(done == 1)
    }

    /// Moves `amount` credits (signed) for `user_id` as a transfer of `kind`, if the balance
    /// stays at or above zero and (for a job's transfer) the job has no transfer of that kind
    /// yet. Returns what happened, and the balance after.
    async fn transfer(
        &self,
        user_id: &str,
        kind: &str,
        amount: i64,
        job_id: Option<&str>,
    ) -> Result<(Moved, i64), DbError> {
        let id = new_id();
        let result: Result<(Moved, i64), sqlx::Error> = on_engine!(self, |pool| {
            async {
                let mut tx = pool.begin().await?;
                // The job's transfer of this kind first: a second one changes nothing.
                let recorded = sqlx::query(
                    "INSERT INTO transfers (id, user_id, kind, amount, job_id, created_ms)
                     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (job_id, kind) DO NOTHING",
                )
                .bind(&id)
                .bind(user_id)
                .bind(kind)
                .bind(amount)
                .bind(job_id)
                .bind(now_ms())
                .execute(&mut *tx)
                .await?
                .rows_affected()
                    == 1;
                let moved = recorded
                    && sqlx::query(
                        "UPDATE users SET credits = credits + $1 WHERE id = $2 AND credits + $1 >= 0",
                    )
                    .bind(amount)
                    .bind(user_id)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected()
                        == 1;
                let credits: i64 = sqlx::query("SELECT credits FROM users WHERE id = $1")
                    .bind(user_id)
                    .fetch_one(&mut *tx)
                    .await?
                    .try_get(0)?;
                let outcome = if !recorded {
                    Moved::Before
                } else if moved {
                    Moved::Now
                } else {
                    Moved::Short
                };
                if moved {
                    tx.commit().await?;
                } else {
                    tx.rollback().await?;
                }
                Ok((outcome, credits))
            }
            .await
        });
        result.map_err(|e| self.sql(e))
    }

    /// An operator's grant; the balance after.
    pub async fn grant(&self, user_id: &str, amount: i64) -> Result<i64, DbError> {
        let (_, credits) = self.transfer(user_id, "grant", amount.max(0), None).await?;
        Ok(credits)
    }

    /// Charges `cost` for job `job_id`; charging a job again changes nothing. The balance
    /// after.
    pub async fn charge(&self, user_id: &str, job_id: &str, cost: i64) -> Result<i64, ChargeError> {
        match self
            .transfer(user_id, "charge", -cost.max(0), Some(job_id))
            .await?
        {
            (Moved::Short, credits) => Err(ChargeError::NotEnough { cost, credits }),
            (_, credits) => Ok(credits),
        }
    }

    /// Refunds job `job_id`'s charge (once; nothing if it was never charged); the balance.
    pub async fn refund(&self, user_id: &str, job_id: &str) -> Result<i64, DbError> {
        let charged: Option<i64> = on_engine!(self, |pool| {
            match sqlx::query(
                "SELECT amount FROM transfers WHERE job_id = $1 AND kind = 'charge' AND user_id = $2",
            )
            .bind(job_id)
            .bind(user_id)
            .fetch_optional(pool)
            .await
            {
                Ok(Some(row)) => row.try_get(0).map(Some),
                Ok(None) => Ok(None),
                Err(e) => Err(e),
            }
        })
        .map_err(|e| self.sql(e))?;
        match charged {
            Some(amount) => Ok(self
                .transfer(user_id, "refund", -amount, Some(job_id))
                .await?
                .1),
            None => Ok(self.user(user_id).await?.map_or(0, |u| u.credits)),
        }
    }

    /// `user_id`'s transfers, newest first.
    pub async fn transfers(&self, user_id: &str) -> Result<Vec<Transfer>, DbError> {
        on_engine!(self, |pool| {
            sqlx::query(
                "SELECT id, kind, amount, job_id, created_ms FROM transfers WHERE user_id = $1
                 ORDER BY created_ms DESC, id DESC",
            )
            .bind(user_id)
            .fetch_all(pool)
            .await
            .and_then(|rows| {
                rows.iter()
                    .map(|row| {
                        Ok(Transfer {
                            id: row.try_get(0)?,
                            kind: row.try_get(1)?,
                            amount: row.try_get(2)?,
                            job_id: row.try_get(3)?,
                            created_ms: row.try_get(4)?,
                        })
                    })
                    .collect::<Result<Vec<_>, sqlx::Error>>()
            })
        })
        .map_err(|e| self.sql(e))
    }

    /// Records a job of `user_id` in state `queued`.
    pub async fn add_job(
        &self,
        user_id: &str,
        module: &str,
        inputs: &std::collections::BTreeMap<String, String>,
        cost: i64,
    ) -> Result<Job, DbError> {
        let now = now_ms();
        let job = Job {
            id: new_id(),
            user_id: user_id.to_string(),
            module: module.to_string(),
            inputs: inputs.clone(),
            cost,
            state: JobState::Queued,
            detail: serde_json::Value::Null,
            created_ms: now,
            updated_ms: now,
        };
        on_engine!(self, |pool| {
            sqlx::query(
                "INSERT INTO jobs (id, user_id, module, inputs, cost, state, detail, created_ms, updated_ms)
                 VALUES ($1, $2, $3, $4, $5, $6, NULL, $7, $7)",
            )
            .bind(&job.id)
            .bind(user_id)
            .bind(module)
            .bind(crate::db::encode(inputs))
            .bind(cost)
            .bind(job.state.as_str())
            .bind(now)
            .execute(pool)
            .await
            .map(|_| ())
        })
        .map_err(|e| self.sql(e))?;
        Ok(job)
    }

    /// Moves job `id` to `state` with `detail`.
    pub async fn set_job(
        &self,
        id: &str,
        state: JobState,
        detail: &serde_json::Value,
    ) -> Result<(), DbError> {
        on_engine!(self, |pool| {
            sqlx::query("UPDATE jobs SET state = $1, detail = $2, updated_ms = $3 WHERE id = $4")
                .bind(state.as_str())
                .bind(detail.to_string())
                .bind(now_ms())
                .bind(id)
                .execute(pool)
                .await
                .map(|_| ())
        })
        .map_err(|e| self.sql(e))
    }

    async fn jobs_where(&self, condition: &str, value: &str) -> Result<Vec<Job>, DbError> {
        let query = format!(
            "SELECT id, user_id, module, inputs, cost, state, detail, created_ms, updated_ms
             FROM jobs WHERE {condition} ORDER BY created_ms DESC, id DESC"
        );
        let rows = on_engine!(self, |pool| {
            sqlx::query(&query)
                .bind(value)
                .fetch_all(pool)
                .await
                .and_then(|rows| {
                    rows.iter()
                        .map(|row| {
                            Ok((
                                row.try_get::<String, _>(0)?,
                                row.try_get::<String, _>(1)?,
                                row.try_get::<String, _>(2)?,
                                row.try_get::<String, _>(3)?,
                                row.try_get::<i64, _>(4)?,
                                row.try_get::<String, _>(5)?,
                                row.try_get::<Option<String>, _>(6)?,
                                row.try_get::<i64, _>(7)?,
                                row.try_get::<i64, _>(8)?,
                            ))
                        })
                        .collect::<Result<Vec<_>, sqlx::Error>>()
                })
        })
        .map_err(|e| self.sql(e))?;
        rows.into_iter()
            .map(
                |(id, user_id, module, inputs, cost, state, detail, created_ms, updated_ms)| {
                    let corrupt = |what: &str, detail: String| DbError::Corrupt {
                        db: self.name.clone(),
                        what: format!("job {id}'s {what}"),
                        detail,
                    };
                    Ok(Job {
                        inputs: serde_json::from_str(&inputs)
                            .map_err(|e| corrupt("inputs", e.to_string()))?,
                        state: JobState::parse(&state)
                            .ok_or_else(|| corrupt("state", state.clone()))?,
                        detail: match detail {
                            Some(text) => serde_json::from_str(&text)
                                .map_err(|e| corrupt("detail", e.to_string()))?,
                            None => serde_json::Value::Null,
                        },
                        id,
                        user_id,
                        module,
                        cost,
                        created_ms,
                        updated_ms,
                    })
                },
            )
            .collect()
    }

    /// `user_id`'s jobs, newest first.
    pub async fn jobs(&self, user_id: &str) -> Result<Vec<Job>, DbError> {
        self.jobs_where("user_id = $1", user_id).await
    }

    /// Job `id` if it is `user_id`'s.
    pub async fn job(&self, user_id: &str, id: &str) -> Result<Option<Job>, DbError> {
        Ok(self
            .jobs_where("id = $1", id)
            .await?
            .into_iter()
            .find(|job| job.user_id == user_id))
    }

    /// Jobs not yet over (queued or offered): what a restarted service picks up again.
    pub async fn unfinished_jobs(&self) -> Result<Vec<Job>, DbError> {
        self.jobs_where("state IN ('queued', $1)", JobState::Offered.as_str())
            .await
    }

    pub async fn close(&self) {
        match &self.engine {
            Engine::Sqlite(db) => db.close().await,
            Engine::Postgres(pool) => pool.close().await,
        }
    }
}
