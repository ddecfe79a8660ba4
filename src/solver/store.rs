//! The solver's store: offers, deals, results, files, events, seen signatures and the last
//! processed block. In SQLite under DATA_DIR by default (WAL), or in PostgreSQL when
//! SOLVER_DATABASE_URL names a server (a store that outgrows one file, or that several
//! machines back up). One transaction per matching pass; a restart loses nothing.
//!
//! Every statement is written once, in SQL both engines take (`$N` parameters, `ON
//! CONFLICT`, `RETURNING`), and compiled for each engine's own driver; the schemas differ
//! only in column types and in how rows are numbered.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ethers::types::Address;
use futures::future::BoxFuture;
use sqlx::postgres::PgPool;

use super::decoded::Decoded;
use crate::bus::{Event, EventKind};
use crate::data::records::{DealFilter, DealRecord, JobOfferRecord, ResourceOfferRecord, TxRecord};
use crate::data::{Deal, DealState, JobOffer, JobResult, ResourceOffer};
use crate::db::{encode, Db, DbError, MetaTable};

/// A store failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Sql(#[from] sqlx::Error),
    /// Stored data that does not decode ([`DbError::Corrupt`], naming the database).
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("the offers of deal {0} were taken by another matching pass")]
    Conflict(String),
    /// The request's signature was remembered before: the write did not happen.
    #[error("the request's signature was already used")]
    Replayed,
}

/// A request's signature, remembered in the same transaction as what the request writes,
/// so a request is accepted at most once and costs one commit.
#[derive(Debug, Clone, Copy)]
pub struct Seen<'a> {
    /// [`crate::data::signing::Verified::canonical`].
    pub signature: &'a str,
    pub at_secs: u64,
}

const REMEMBER_SIGNATURE: &str =
    "INSERT INTO seen_signatures (signature, seen_at) VALUES ($1, $2) ON CONFLICT DO NOTHING";

type Result<T> = std::result::Result<T, StoreError>;

/// The engine a store runs on.
#[derive(Clone)]
enum Pool {
    Sqlite(Db),
    Postgres(PgPool),
}

#[derive(Clone)]
pub struct Store {
    pool: Pool,
    /// The database in errors: the SQLite file, or the server and database without the
    /// password.
    name: PathBuf,
    /// Open offers decoded by earlier matching passes.
    open_jobs: Decoded<JobOffer>,
    open_resources: Decoded<ResourceOffer>,
}

/// A matching pass that misses more offers than this reads all open offers of the table in
/// one query (a solver's first pass) instead of one query each.
const READ_ALL_ABOVE: usize = 512;

/// Runs `$body` with `$pool` bound to the store's connection pool and `$pg` telling whether
/// it is PostgreSQL; the body is compiled once for each engine.
macro_rules! on_pool {
    ($store:expr, |$pool:ident, $pg:ident| $body:expr) => {
        match &$store.pool {
            Pool::Sqlite(db) => {
                let $pool = db.pool();
                #[allow(unused_variables)]
                let $pg = false;
                $body
            }
            Pool::Postgres(pool) => {
                let $pool = pool;
                #[allow(unused_variables)]
                let $pg = true;
                $body
            }
        }
    };
}

/// Remembers `$seen` (an `Option<Seen>`) in the transaction `$tx`, returning
/// [`StoreError::Replayed`] from the enclosing function (the transaction rolls back) if the
/// signature was remembered before.
macro_rules! remember_in {
    ($tx:ident, $seen:expr) => {
        if let Some(seen) = $seen {
            let new = sqlx::query(REMEMBER_SIGNATURE)
                .bind(seen.signature.to_ascii_lowercase())
                .bind(seen.at_secs as i64)
                .execute(&mut *$tx)
                .await?
                .rows_affected();
            if new == 0 {
                return Err(StoreError::Replayed);
            }
        }
    };
}

/// Begins a transaction that may add events. On PostgreSQL it first takes a lock that such
/// transactions share, so events commit in the order of their numbers and a reader that has
/// seen number n never later finds an n - 1 committed behind it (SQLite writes one
/// transaction at a time anyway).
macro_rules! begin_writing {
    ($pool:expr, $pg:expr) => {{
        let mut tx = $pool.begin().await?;
        if $pg {
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(EVENTS_LOCK)
                .execute(&mut *tx)
                .await?;
        }
        tx
    }};
}

/// Numbers and stores `$event` in transaction `$tx`; evaluates to the numbered event.
macro_rules! insert_event {
    ($tx:expr, $event:expr) => {{
        let mut event: Event = $event;
        let seq: i64 = sqlx::query_scalar("INSERT INTO events (json) VALUES ('') RETURNING seq")
            .fetch_one(&mut *$tx)
            .await?;
        event.seq = seq as u64;
        sqlx::query("UPDATE events SET json = $1 WHERE seq = $2")
            .bind(encode(&event))
            .bind(seq)
            .execute(&mut *$tx)
            .await?;
        event
    }};
}

/// Stores `$event` in `$tx`, commits, and evaluates to `Ok(Some(event))` to publish.
macro_rules! commit_with_event {
    ($tx:expr, $event:expr) => {{
        let mut tx = $tx;
        let event = insert_event!(tx, $event);
        tx.commit().await?;
        Ok(Some(event))
    }};
}

/// The advisory lock key of transactions that add events (any number, the same everywhere).
const EVENTS_LOCK: i64 = 0x11_1c_ba_d0;

const SQLITE_SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS job_offers (
    id TEXT PRIMARY KEY, json TEXT NOT NULL, created_at INTEGER NOT NULL, job_creator TEXT NOT NULL,
    deal_id TEXT);
CREATE INDEX IF NOT EXISTS job_offers_open ON job_offers (created_at, id) WHERE deal_id IS NULL;
CREATE INDEX IF NOT EXISTS job_offers_open_by_creator ON job_offers (job_creator) WHERE deal_id IS NULL;
CREATE TABLE IF NOT EXISTS resource_offers (
    id TEXT PRIMARY KEY, json TEXT NOT NULL, created_at INTEGER NOT NULL, resource_provider TEXT NOT NULL,
    last_seen INTEGER NOT NULL, deal_id TEXT);
CREATE INDEX IF NOT EXISTS resource_offers_open ON resource_offers (last_seen) WHERE deal_id IS NULL;
CREATE TABLE IF NOT EXISTS deals (
    id TEXT PRIMARY KEY, json TEXT NOT NULL, deal_key TEXT NOT NULL UNIQUE, job_offer TEXT NOT NULL,
    job_creator TEXT NOT NULL, resource_provider TEXT NOT NULL, mediators TEXT NOT NULL,
    state INTEGER NOT NULL, created_at INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS deals_negotiating ON deals (job_creator) WHERE state = 0;
CREATE INDEX IF NOT EXISTS deals_age ON deals (created_at);
CREATE TABLE IF NOT EXISTS results (deal_id TEXT PRIMARY KEY, json TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS files (deal_id TEXT PRIMARY KEY, results_cid TEXT NOT NULL, path TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY AUTOINCREMENT, json TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS seen_signatures (signature TEXT PRIMARY KEY, seen_at INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS seen_signatures_age ON seen_signatures (seen_at);
CREATE TABLE IF NOT EXISTS txs (deal_id TEXT NOT NULL, address TEXT NOT NULL, action TEXT NOT NULL,
    tx_hash TEXT NOT NULL, PRIMARY KEY (deal_id, tx_hash));
"#;

/// The same tables on PostgreSQL: 64-bit integers throughout, rows numbered by sequences
/// (`txs.seq` where SQLite has its implicit rowid), and the `meta` table SQLite roles share.
const POSTGRES_SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS job_offers (
    id TEXT PRIMARY KEY, json TEXT NOT NULL, created_at BIGINT NOT NULL, job_creator TEXT NOT NULL,
    deal_id TEXT);
CREATE INDEX IF NOT EXISTS job_offers_open ON job_offers (created_at, id) WHERE deal_id IS NULL;
CREATE INDEX IF NOT EXISTS job_offers_open_by_creator ON job_offers (job_creator) WHERE deal_id IS NULL;
CREATE TABLE IF NOT EXISTS resource_offers (
    id TEXT PRIMARY KEY, json TEXT NOT NULL, created_at BIGINT NOT NULL, resource_provider TEXT NOT NULL,
    last_seen BIGINT NOT NULL, deal_id TEXT);
CREATE INDEX IF NOT EXISTS resource_offers_open ON resource_offers (last_seen) WHERE deal_id IS NULL;
CREATE INDEX IF NOT EXISTS resource_offers_by_provider ON resource_offers (resource_provider);
CREATE TABLE IF NOT EXISTS deals (
    id TEXT PRIMARY KEY, json TEXT NOT NULL, deal_key TEXT NOT NULL UNIQUE, job_offer TEXT NOT NULL,
    job_creator TEXT NOT NULL, resource_provider TEXT NOT NULL, mediators TEXT NOT NULL,
    state BIGINT NOT NULL, created_at BIGINT NOT NULL);
CREATE INDEX IF NOT EXISTS deals_negotiating ON deals (job_creator) WHERE state = 0;
CREATE INDEX IF NOT EXISTS deals_age ON deals (created_at);
CREATE TABLE IF NOT EXISTS results (deal_id TEXT PRIMARY KEY, json TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS files (deal_id TEXT PRIMARY KEY, results_cid TEXT NOT NULL, path TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events (seq BIGSERIAL PRIMARY KEY, json TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS seen_signatures (signature TEXT PRIMARY KEY, seen_at BIGINT NOT NULL);
CREATE INDEX IF NOT EXISTS seen_signatures_age ON seen_signatures (seen_at);
CREATE TABLE IF NOT EXISTS txs (seq BIGSERIAL, deal_id TEXT NOT NULL, address TEXT NOT NULL,
    action TEXT NOT NULL, tx_hash TEXT NOT NULL, PRIMARY KEY (deal_id, tx_hash));
"#;

/// How long the solver keeps what it no longer needs (`RETAIN_*` settings).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Deals that ended (or never got past negotiating) older than this are forgotten, with
    /// their offers, result and transactions; so are offers left unmatched this long.
    pub deals_ms: u64,
    /// The results files of deals that ended, older than this, are deleted.
    pub results_ms: u64,
    /// The newest this many events are kept (a subscriber further behind resumes from the
    /// oldest kept; roles also poll, so a missed event only delays them).
    pub events: u64,
}

/// What one pruning pass forgot.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pruned {
    pub deals: u64,
    pub offers: u64,
    pub files: u64,
    pub events: u64,
}

/// The deal states a deal is forgotten in once old: every end state, and negotiating (a
/// negotiation that old can no longer be joined: its agree timeout passed long ago).
fn forgettable_states() -> String {
    (0..=u8::MAX)
        .filter(|&n| {
            DealState::try_from(n)
                .is_ok_and(|state| state.is_terminal() || state == DealState::DealNegotiating)
        })
        .map(|n| n.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

fn address_text(address: Address) -> String {
    format!("{address:?}")
}

impl Store {
    /// Opens (creating if needed) the SQLite database at `path`.
    pub async fn open(path: &Path) -> std::result::Result<Store, DbError> {
        let db = Db::open(path, SQLITE_SCHEMA, 4).await?;
        Ok(Store {
            pool: Pool::Sqlite(db),
            name: path.to_path_buf(),
            open_jobs: Decoded::default(),
            open_resources: Decoded::default(),
        })
    }

    /// Connects to the PostgreSQL database `url` names (`postgres://USER:PASSWORD@HOST:PORT/DB`)
    /// and creates the tables it lacks. The password never appears in errors.
    pub async fn connect(url: &str) -> std::result::Result<Store, DbError> {
        let (pool, name) =
            crate::db::connect_postgres(url, "SOLVER_DATABASE_URL", POSTGRES_SCHEMA, 8).await?;
        Ok(Store {
            pool: Pool::Postgres(pool),
            name,
            open_jobs: Decoded::default(),
            open_resources: Decoded::default(),
        })
    }

    /// The store SOLVER_DATABASE_URL names, or else the SQLite file `path`.
    pub async fn open_or_connect(
        url: Option<&str>,
        path: &Path,
    ) -> std::result::Result<Store, DbError> {
        match url {
            Some(url) => Store::connect(url).await,
            None => Store::open(path).await,
        }
    }

    /// The database in messages: the SQLite file, or the PostgreSQL server and database.
    pub fn name(&self) -> &Path {
        &self.name
    }

    /// The SQLite database, when the store is one.
    pub fn sqlite(&self) -> Option<&Db> {
        match &self.pool {
            Pool::Sqlite(db) => Some(db),
            Pool::Postgres(_) => None,
        }
    }

    fn corrupt(&self, what: impl Into<String>, detail: impl std::fmt::Display) -> DbError {
        DbError::Corrupt {
            db: self.name.clone(),
            what: what.into(),
            detail: detail.to_string(),
        }
    }

    /// Decodes a stored JSON value; damage is corrupt data naming the database.
    fn decode<T: serde::de::DeserializeOwned>(&self, what: &str, json: &str) -> Result<T> {
        serde_json::from_str(json).map_err(|e| self.corrupt(what, e).into())
    }

    fn resource_offer_record(
        &self,
        (json, deal_id, last_seen): (String, Option<String>, i64),
    ) -> Result<ResourceOfferRecord> {
        Ok(ResourceOfferRecord {
            offer: self.decode("resource offer", &json)?,
            deal_id,
            last_seen: last_seen as u64,
        })
    }

    fn event(kind: EventKind) -> Event {
        Event {
            seq: 0,
            kind,
            deal_id: None,
            job_offer_id: None,
            resource_offer_id: None,
            state: None,
        }
    }

    /// Stores a new job offer, and the signature of the request that posted it if `seen`;
    /// None if the offer was already known, [`StoreError::Replayed`] (nothing written) if
    /// the signature was.
    pub async fn add_job_offer(
        &self,
        offer: &JobOffer,
        seen: Option<Seen<'_>>,
    ) -> Result<Option<Event>> {
        on_pool!(self, |pool, pg| {
            let mut tx = begin_writing!(pool, pg);
            remember_in!(tx, seen);
            let inserted = sqlx::query("INSERT INTO job_offers (id, json, created_at, job_creator) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING")
                .bind(&offer.id)
                .bind(encode(offer))
                .bind(offer.created_at as i64)
                .bind(address_text(offer.job_creator))
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if inserted == 0 {
                return Ok(None);
            }
            commit_with_event!(
                tx,
                Event {
                    job_offer_id: Some(offer.id.clone()),
                    ..Self::event(EventKind::JobOfferAdded)
                }
            )
        })
    }

    /// Deletes a job offer that has no deal; false if it has one (or is unknown).
    pub async fn withdraw_job_offer(&self, id: &str) -> Result<bool> {
        on_pool!(self, |pool, pg| {
            let deleted = sqlx::query("DELETE FROM job_offers WHERE id = $1 AND deal_id IS NULL")
                .bind(id)
                .execute(pool)
                .await?
                .rows_affected();
            Ok(deleted == 1)
        })
    }

    /// Stores a new resource offer (seen now), and the signature of the request that posted
    /// it if `seen`; None if it was already known (then it is refreshed),
    /// [`StoreError::Replayed`] (nothing written) if the signature was.
    pub async fn add_resource_offer(
        &self,
        offer: &ResourceOffer,
        now_ms: u64,
        seen: Option<Seen<'_>>,
    ) -> Result<Option<Event>> {
        on_pool!(self, |pool, pg| {
            let mut tx = begin_writing!(pool, pg);
            remember_in!(tx, seen);
            let inserted = sqlx::query(
                "INSERT INTO resource_offers (id, json, created_at, resource_provider, last_seen) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
            )
            .bind(&offer.id)
            .bind(encode(offer))
            .bind(offer.created_at as i64)
            .bind(address_text(offer.resource_provider))
            .bind(now_ms as i64)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if inserted == 0 {
                sqlx::query("UPDATE resource_offers SET last_seen = $1 WHERE id = $2")
                    .bind(now_ms as i64)
                    .bind(&offer.id)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                return Ok(None);
            }
            commit_with_event!(
                tx,
                Event {
                    resource_offer_id: Some(offer.id.clone()),
                    ..Self::event(EventKind::ResourceOfferAdded)
                }
            )
        })
    }

    /// Marks a resource offer as alive now. False if no such offer of `owner` exists.
    pub async fn refresh_resource_offer(
        &self,
        id: &str,
        owner: Address,
        now_ms: u64,
    ) -> Result<bool> {
        on_pool!(self, |pool, pg| {
            let updated = sqlx::query(
                "UPDATE resource_offers SET last_seen = $1 WHERE id = $2 AND resource_provider = $3",
            )
            .bind(now_ms as i64)
            .bind(id)
            .bind(address_text(owner))
            .execute(pool)
            .await?
            .rows_affected();
            Ok(updated > 0)
        })
    }

    pub async fn job_offer(&self, id: &str) -> Result<Option<JobOfferRecord>> {
        let row: Option<(String, Option<String>)> = on_pool!(self, |pool, pg| {
            sqlx::query_as("SELECT json, deal_id FROM job_offers WHERE id = $1")
                .bind(id)
                .fetch_optional(pool)
                .await?
        });
        row.map(|(json, deal_id)| {
            Ok(JobOfferRecord {
                offer: self.decode("job offer", &json)?,
                deal_id,
            })
        })
        .transpose()
    }

    pub async fn resource_offer(&self, id: &str) -> Result<Option<ResourceOfferRecord>> {
        let row = on_pool!(self, |pool, pg| {
            sqlx::query_as("SELECT json, deal_id, last_seen FROM resource_offers WHERE id = $1")
                .bind(id)
                .fetch_optional(pool)
                .await?
        });
        row.map(|row| self.resource_offer_record(row)).transpose()
    }

    /// Resource offers, optionally of one provider.
    pub async fn resource_offers(
        &self,
        owner: Option<Address>,
    ) -> Result<Vec<ResourceOfferRecord>> {
        let rows: Vec<(String, Option<String>, i64)> = on_pool!(self, |pool, pg| {
            match owner {
            Some(owner) => sqlx::query_as("SELECT json, deal_id, last_seen FROM resource_offers WHERE resource_provider = $1 ORDER BY created_at, id")
                .bind(address_text(owner))
                .fetch_all(pool)
                .await?,
            None => sqlx::query_as("SELECT json, deal_id, last_seen FROM resource_offers ORDER BY created_at, id")
                .fetch_all(pool)
                .await?,
        }
        });
        rows.into_iter()
            .map(|row| self.resource_offer_record(row))
            .collect()
    }

    /// How many unmatched job offers `job_creator` has open.
    pub async fn open_job_offer_count(&self, job_creator: Address) -> Result<u64> {
        let count: i64 = on_pool!(self, |pool, pg| {
            sqlx::query_scalar(
                "SELECT COUNT(*) FROM job_offers WHERE job_creator = $1 AND deal_id IS NULL",
            )
            .bind(address_text(job_creator))
            .fetch_one(pool)
            .await?
        });
        Ok(count.max(0) as u64)
    }

    /// Per job creator, how many of its deals are still negotiating (it has not agreed, or
    /// its resource provider has not): the matcher serves job creators with fewer first.
    pub async fn negotiating_deals_by_job_creator(
        &self,
    ) -> Result<std::collections::HashMap<Address, u64>> {
        let rows: Vec<(String, i64)> = on_pool!(self, |pool, pg| {
            sqlx::query_as(
                // 0 is DealNegotiating, written out so the partial index applies.
                "SELECT job_creator, COUNT(*) FROM deals WHERE state = 0 GROUP BY job_creator",
            )
            .fetch_all(pool)
            .await?
        });
        let mut counts = std::collections::HashMap::new();
        for (text, count) in rows {
            let address = text
                .parse::<Address>()
                .map_err(|e| self.corrupt("a deal's job creator", format!("{text:?}: {e}")))?;
            counts.insert(address, count.max(0) as u64);
        }
        Ok(counts)
    }

    /// Unmatched job offers, oldest first. Only offers no earlier call returned are read
    /// and decoded (an id names one offer forever).
    pub async fn open_job_offers(&self) -> Result<Vec<Arc<JobOffer>>> {
        let open: Vec<String> = on_pool!(self, |pool, pg| {
            sqlx::query_scalar(
                "SELECT id FROM job_offers WHERE deal_id IS NULL ORDER BY created_at, id",
            )
            .fetch_all(pool)
            .await?
        });
        let missing = self.open_jobs.missing(&open);
        for (id, json) in self.offers_json("job_offers", &missing).await? {
            self.open_jobs.insert(id, self.decode("job offer", &json)?);
        }
        Ok(self.open_jobs.take_open(&open))
    }

    /// Unmatched resource offers refreshed at or after `alive_since_ms`, read and decoded
    /// as [`Store::open_job_offers`] does.
    pub async fn live_resource_offers(
        &self,
        alive_since_ms: u64,
    ) -> Result<Vec<Arc<ResourceOffer>>> {
        let open: Vec<String> = on_pool!(self, |pool, pg| {
            sqlx::query_scalar(
                "SELECT id FROM resource_offers WHERE deal_id IS NULL AND last_seen >= $1",
            )
            .bind(alive_since_ms as i64)
            .fetch_all(pool)
            .await?
        });
        let missing = self.open_resources.missing(&open);
        for (id, json) in self.offers_json("resource_offers", &missing).await? {
            self.open_resources
                .insert(id, self.decode("resource offer", &json)?);
        }
        Ok(self.open_resources.take_open(&open))
    }

    /// The JSON of the unmatched offers `ids` of `table` (`job_offers` or `resource_offers`)
    /// that are still there: one query each on a single connection, or, when many are
    /// missing, one query over every unmatched offer of the table.
    async fn offers_json(&self, table: &str, ids: &[&str]) -> Result<Vec<(String, String)>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        if ids.len() > READ_ALL_ABOVE {
            let sql = format!("SELECT id, json FROM {table} WHERE deal_id IS NULL");
            let rows: Vec<(String, String)> = on_pool!(self, |pool, pg| {
                sqlx::query_as(&sql).fetch_all(pool).await?
            });
            let wanted: std::collections::HashSet<&str> = ids.iter().copied().collect();
            return Ok(rows
                .into_iter()
                .filter(|(id, _)| wanted.contains(id.as_str()))
                .collect());
        }
        let sql = format!("SELECT json FROM {table} WHERE id = $1 AND deal_id IS NULL");
        let mut found = Vec::with_capacity(ids.len());
        on_pool!(self, |pool, pg| {
            let mut connection = pool.acquire().await?;
            for id in ids {
                let json: Option<String> = sqlx::query_scalar(&sql)
                    .bind(*id)
                    .fetch_optional(&mut *connection)
                    .await?;
                if let Some(json) = json {
                    found.push((id.to_string(), json));
                }
            }
        });
        Ok(found)
    }

    /// Stores the deals of one matching pass in one transaction. If any deal's offers were
    /// taken meanwhile (passes are serialised, so this means a bug), nothing is stored.
    /// Returns the events to publish.
    pub async fn commit_deals(&self, deals: &[(Deal, String)]) -> Result<Vec<Event>> {
        on_pool!(self, |pool, pg| {
            let mut tx = begin_writing!(pool, pg);
            let mut events = Vec::new();
            for (deal, deal_key) in deals {
                let job = sqlx::query(
                    "UPDATE job_offers SET deal_id = $1 WHERE id = $2 AND deal_id IS NULL",
                )
                .bind(&deal.id)
                .bind(&deal.job_offer.id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                let resource = sqlx::query(
                    "UPDATE resource_offers SET deal_id = $1 WHERE id = $2 AND deal_id IS NULL",
                )
                .bind(&deal.id)
                .bind(&deal.resource_offer.id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if job != 1 || resource != 1 {
                    return Err(StoreError::Conflict(deal.id.clone()));
                }
                sqlx::query(
                    "INSERT INTO deals (id, json, deal_key, job_offer, job_creator, resource_provider, mediators, state, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, 0, $8)",
                )
                .bind(&deal.id)
                .bind(encode(deal))
                .bind(deal_key)
                .bind(&deal.job_offer.id)
                .bind(address_text(deal.members.job_creator))
                .bind(address_text(deal.members.resource_provider))
                .bind(address_text(deal.members.mediator))
                .bind(crate::data::offers::now_millis() as i64)
                .execute(&mut *tx)
                .await?;
                let event = Event {
                    deal_id: Some(deal.id.clone()),
                    job_offer_id: Some(deal.job_offer.id.clone()),
                    resource_offer_id: Some(deal.resource_offer.id.clone()),
                    state: Some(0),
                    ..Self::event(EventKind::DealCreated)
                };
                events.push(insert_event!(tx, event));
            }
            tx.commit().await?;
            Ok(events)
        })
    }

    fn deal_record(&self, (json, state, deal_key): (String, i64, String)) -> Result<DealRecord> {
        let deal: Deal = self.decode("deal", &json)?;
        let state = u8::try_from(state)
            .map_err(|_| self.corrupt(format!("deal {}'s state", deal.id), state))?;
        let state_name = DealState::try_from(state)
            .map(|s| s.name().to_string())
            .unwrap_or_else(|e| e.to_string());
        Ok(DealRecord {
            deal,
            state,
            state_name,
            deal_key,
        })
    }

    pub async fn deal(&self, id: &str) -> Result<Option<DealRecord>> {
        let row = on_pool!(self, |pool, pg| {
            sqlx::query_as("SELECT json, state, deal_key FROM deals WHERE id = $1")
                .bind(id)
                .fetch_optional(pool)
                .await?
        });
        row.map(|row| self.deal_record(row)).transpose()
    }

    pub async fn deal_by_key(&self, deal_key: &str) -> Result<Option<DealRecord>> {
        let row = on_pool!(self, |pool, pg| {
            sqlx::query_as("SELECT json, state, deal_key FROM deals WHERE deal_key = $1")
                .bind(deal_key)
                .fetch_optional(pool)
                .await?
        });
        row.map(|row| self.deal_record(row)).transpose()
    }

    pub async fn deals(&self, filter: &DealFilter) -> Result<Vec<DealRecord>> {
        let mut sql = String::from("SELECT json, state, deal_key FROM deals WHERE 1 = 1");
        let mut binds: Vec<String> = Vec::new();
        let mut condition = |sql: &mut String, template: &str, value: String| {
            binds.push(value);
            sql.push_str(&template.replace('?', &format!("${}", binds.len())));
        };
        if let Some(jc) = filter.job_creator {
            condition(&mut sql, " AND job_creator = ?", address_text(jc));
        }
        if let Some(rp) = filter.resource_provider {
            condition(&mut sql, " AND resource_provider = ?", address_text(rp));
        }
        if let Some(mediator) = filter.mediator {
            // `mediators` lists addresses; an address has no LIKE wildcards in it.
            condition(
                &mut sql,
                " AND mediators LIKE '%' || ? || '%'",
                address_text(mediator),
            );
        }
        if let Some(job_offer) = &filter.job_offer {
            condition(&mut sql, " AND job_offer = ?", job_offer.clone());
        }
        if let Some(state) = filter.state {
            condition(
                &mut sql,
                " AND state = CAST(? AS BIGINT)",
                state.to_string(),
            );
        }
        if let Some(key) = &filter.deal_key {
            condition(&mut sql, " AND deal_key = ?", key.to_ascii_lowercase());
        }
        sql.push_str(" ORDER BY created_at, id");
        let rows: Vec<(String, i64, String)> = on_pool!(self, |pool, pg| {
            let mut query = sqlx::query_as(&sql);
            for bind in &binds {
                query = query.bind(bind);
            }
            query.fetch_all(pool).await?
        });
        rows.into_iter().map(|row| self.deal_record(row)).collect()
    }

    /// Records a deal's on-chain state; None if it did not change.
    pub async fn set_deal_state(&self, deal_id: &str, state: u8) -> Result<Option<Event>> {
        on_pool!(self, |pool, pg| {
            let mut tx = begin_writing!(pool, pg);
            let changed = sqlx::query("UPDATE deals SET state = $1 WHERE id = $2 AND state != $1")
                .bind(state as i64)
                .bind(deal_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if changed == 0 {
                return Ok(None);
            }
            commit_with_event!(
                tx,
                Event {
                    deal_id: Some(deal_id.to_string()),
                    state: Some(state),
                    ..Self::event(EventKind::DealStateChanged)
                }
            )
        })
    }

    /// Records a deal's result (the first one wins; a repeat of the same is fine).
    pub async fn put_result(&self, result: &JobResult) -> Result<Option<Event>> {
        on_pool!(self, |pool, pg| {
            let mut tx = begin_writing!(pool, pg);
            let inserted = sqlx::query(
                "INSERT INTO results (deal_id, json) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            )
            .bind(&result.deal_id)
            .bind(encode(result))
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if inserted == 0 {
                return Ok(None);
            }
            commit_with_event!(
                tx,
                Event {
                    deal_id: Some(result.deal_id.clone()),
                    ..Self::event(EventKind::ResultAdded)
                }
            )
        })
    }

    pub async fn result(&self, deal_id: &str) -> Result<Option<JobResult>> {
        let json: Option<String> = on_pool!(self, |pool, pg| {
            sqlx::query_scalar("SELECT json FROM results WHERE deal_id = $1")
                .bind(deal_id)
                .fetch_optional(pool)
                .await?
        });
        json.map(|json| self.decode("result", &json)).transpose()
    }

    pub async fn put_file(&self, deal_id: &str, results_cid: &str, path: &Path) -> Result<()> {
        on_pool!(self, |pool, pg| {
            sqlx::query(
                "INSERT INTO files (deal_id, results_cid, path) VALUES ($1, $2, $3) ON CONFLICT (deal_id) DO UPDATE SET results_cid = excluded.results_cid, path = excluded.path",
            )
            .bind(deal_id)
            .bind(results_cid)
            .bind(path.display().to_string())
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// (results CID, path) of a deal's uploaded results.
    pub async fn file(&self, deal_id: &str) -> Result<Option<(String, String)>> {
        Ok(on_pool!(self, |pool, pg| {
            sqlx::query_as("SELECT results_cid, path FROM files WHERE deal_id = $1")
                .bind(deal_id)
                .fetch_optional(pool)
                .await?
        }))
    }

    /// Events after `since`, oldest first, at most `limit`.
    pub async fn events_since(&self, since: u64, limit: u32) -> Result<Vec<Event>> {
        let rows: Vec<String> = on_pool!(self, |pool, pg| {
            sqlx::query_scalar("SELECT json FROM events WHERE seq > $1 ORDER BY seq LIMIT $2")
                .bind(since.min(i64::MAX as u64) as i64)
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await?
        });
        rows.iter().map(|json| self.decode("event", json)).collect()
    }

    /// Remembers a request signature; false if it was seen before (a replay).
    pub async fn remember_signature(&self, signature: &str, now_secs: u64) -> Result<bool> {
        let inserted = on_pool!(self, |pool, pg| {
            sqlx::query(REMEMBER_SIGNATURE)
                .bind(signature.to_ascii_lowercase())
                .bind(now_secs as i64)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(inserted == 1)
    }

    /// Forgets signatures seen more than twice the clock window ago: a request carrying one
    /// again is refused as stale, so remembering it no longer matters.
    pub async fn forget_old_signatures(&self, now_secs: u64) -> Result<()> {
        let horizon = now_secs.saturating_sub(2 * crate::data::signing::MAX_SKEW_SECS + 1);
        on_pool!(self, |pool, pg| {
            sqlx::query("DELETE FROM seen_signatures WHERE seen_at < $1")
                .bind(horizon as i64)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Forgets what `retention` lets go as of `now_ms`, in one transaction; returns what was
    /// forgotten and the results files to delete (the caller deletes them after the commit,
    /// so a failed pass never leaves a record pointing at a deleted file).
    pub async fn prune(
        &self,
        now_ms: u64,
        retention: &Retention,
    ) -> Result<(Pruned, Vec<PathBuf>)> {
        let states = forgettable_states();
        let deals_before = now_ms.saturating_sub(retention.deals_ms) as i64;
        let results_before = now_ms.saturating_sub(retention.results_ms) as i64;
        let old_deals =
            format!("SELECT id FROM deals WHERE state IN ({states}) AND created_at < $1");
        // Results files: of deals that ended (state 0 is negotiating) before the results
        // horizon, and of deals forgotten.
        let files_of = format!(
            "DELETE FROM files WHERE deal_id IN (SELECT id FROM deals WHERE state IN ({states}) AND state != 0 AND created_at < $2) OR deal_id IN ({old_deals}) RETURNING path"
        );
        let (pruned, paths) = on_pool!(self, |pool, pg| {
            let mut tx = pool.begin().await?;
            let paths: Vec<PathBuf> = sqlx::query_scalar::<_, String>(&files_of)
                .bind(deals_before)
                .bind(results_before)
                .fetch_all(&mut *tx)
                .await?
                .into_iter()
                .map(PathBuf::from)
                .collect();
            let mut pruned = Pruned {
                files: paths.len() as u64,
                ..Pruned::default()
            };
            for table in ["results", "txs"] {
                sqlx::query(&format!(
                    "DELETE FROM {table} WHERE deal_id IN ({old_deals})"
                ))
                .bind(deals_before)
                .execute(&mut *tx)
                .await?;
            }
            for table in ["job_offers", "resource_offers"] {
                pruned.offers += sqlx::query(&format!(
                    "DELETE FROM {table} WHERE deal_id IN ({old_deals})"
                ))
                .bind(deals_before)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            }
            pruned.deals = sqlx::query(&format!("DELETE FROM deals WHERE id IN ({old_deals})"))
                .bind(deals_before)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            // Offers nobody took: job offers that old, resource offers not refreshed since.
            pruned.offers +=
                sqlx::query("DELETE FROM job_offers WHERE deal_id IS NULL AND created_at < $1")
                    .bind(deals_before)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
            pruned.offers +=
                sqlx::query("DELETE FROM resource_offers WHERE deal_id IS NULL AND last_seen < $1")
                    .bind(deals_before)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
            pruned.events =
                sqlx::query("DELETE FROM events WHERE seq <= (SELECT MAX(seq) FROM events) - $1")
                    .bind(retention.events.min(i64::MAX as u64) as i64)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
            tx.commit().await?;
            (pruned, paths)
        });
        if let (Some(db), true) = (self.sqlite(), pruned != Pruned::default()) {
            db.release_free_pages().await?;
        }
        Ok((pruned, paths))
    }

    pub async fn add_tx(&self, record: &TxRecord) -> Result<()> {
        on_pool!(self, |pool, pg| {
            sqlx::query(
                "INSERT INTO txs (deal_id, address, action, tx_hash) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
            )
            .bind(&record.deal_id)
            .bind(address_text(record.address))
            .bind(&record.action)
            .bind(&record.tx_hash)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    pub async fn txs(&self, deal_id: &str) -> Result<Vec<TxRecord>> {
        let rows: Vec<(String, String, String, String)> = on_pool!(self, |pool, pg| {
            // In the order they were noted: SQLite's implicit rowid, PostgreSQL's `seq`.
            let order = if pg { "seq" } else { "rowid" };
            sqlx::query_as(&format!(
                "SELECT deal_id, address, action, tx_hash FROM txs WHERE deal_id = $1 ORDER BY {order}"
            ))
            .bind(deal_id)
            .fetch_all(pool)
            .await?
        });
        rows.into_iter()
            .map(|(deal_id, address, action, tx_hash)| {
                Ok(TxRecord {
                    deal_id,
                    address: address
                        .parse()
                        .map_err(|e| self.corrupt("a tx record's address", e))?,
                    action,
                    tx_hash,
                })
            })
            .collect()
    }

    /// Counts for /metrics: (deals per state, open job offers, open resource offers, last event).
    pub async fn counts(&self) -> Result<(Vec<(u8, u64)>, u64, u64, u64)> {
        let (rows, jobs, resources, last): (Vec<(i64, i64)>, i64, i64, i64) =
            on_pool!(self, |pool, pg| {
                let rows = sqlx::query_as("SELECT state, COUNT(*) FROM deals GROUP BY state")
                    .fetch_all(pool)
                    .await?;
                let jobs =
                    sqlx::query_scalar("SELECT COUNT(*) FROM job_offers WHERE deal_id IS NULL")
                        .fetch_one(pool)
                        .await?;
                let resources = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM resource_offers WHERE deal_id IS NULL",
                )
                .fetch_one(pool)
                .await?;
                let last = sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM events")
                    .fetch_one(pool)
                    .await?;
                (rows, jobs, resources, last)
            });
        let per_state = rows
            .into_iter()
            .map(|(state, count)| (state as u8, count as u64))
            .collect();
        Ok((per_state, jobs as u64, resources as u64, last as u64))
    }

    pub async fn close(&self) {
        match &self.pool {
            Pool::Sqlite(db) => db.close().await,
            Pool::Postgres(pool) => pool.close().await,
        }
    }
}

/// The chain follower's checkpoint lives in the store's `meta` table.
impl MetaTable for Store {
    fn meta<'a>(
        &'a self,
        key: &'a str,
    ) -> BoxFuture<'a, std::result::Result<Option<String>, DbError>> {
        Box::pin(async move {
            match &self.pool {
                Pool::Sqlite(db) => db.meta(key).await,
                Pool::Postgres(pool) => sqlx::query_scalar("SELECT value FROM meta WHERE key = $1")
                    .bind(key)
                    .fetch_optional(pool)
                    .await
                    .map_err(|source| self.sql(source)),
            }
        })
    }

    fn set_meta<'a>(
        &'a self,
        key: &'a str,
        value: &'a str,
    ) -> BoxFuture<'a, std::result::Result<(), DbError>> {
        Box::pin(async move {
            match &self.pool {
                Pool::Sqlite(db) => db.set_meta(key, value).await,
                Pool::Postgres(pool) => sqlx::query(
                    "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                )
                .bind(key)
                .bind(value)
                .execute(pool)
                .await
                .map(|_| ())
                .map_err(|source| self.sql(source)),
            }
        })
    }

    fn corrupt(&self, what: &str, detail: &str) -> DbError {
        Store::corrupt(self, what, detail)
    }
}

impl Store {
    fn sql(&self, source: sqlx::Error) -> DbError {
        DbError::Sql {
            db: self.name.clone(),
            source,
        }
    }
}

/// A connection string that did not parse, said without repeating the string (it may
/// hold a password).
#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::examples;
    use crate::data::offers::ContentAddressed;

    /// Where a test's store lives, to open it again.
    struct Place {
        _dir: tempfile::TempDir,
        /// The SQLite file, or the PostgreSQL database's URL.
        path: PathBuf,
        url: Option<String>,
    }

    impl Place {
        async fn open(&self) -> Store {
            Store::open_or_connect(self.url.as_deref(), &self.path)
                .await
                .unwrap()
        }
    }

    /// The PostgreSQL server the tests use: LILYPAD_TEST_POSTGRES_URL, or the role
    /// `deploy/postgres.sh` sets up on the local cluster (`make test` runs it).
    fn postgres_admin_url() -> String {
        std::env::var("LILYPAD_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://lilypad:lilypad@127.0.0.1:5432/postgres".into())
    }

    /// A new, empty store: a SQLite file in a temporary directory, or a database of its own
    /// on the PostgreSQL server.
    async fn fresh(postgres: bool) -> (Place, Store) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("solver.db");
        let url = if postgres {
            let admin = postgres_admin_url();
            let name = format!("lilypad_test_{}", crate::data::offers::new_nonce());
            let connection = PgPool::connect(&admin).await.unwrap_or_else(|e| {
                panic!("no PostgreSQL server for the store tests ({e}): run deploy/postgres.sh, or set LILYPAD_TEST_POSTGRES_URL")
            });
            sqlx::query(&format!("CREATE DATABASE {name}"))
                .execute(&connection)
                .await
                .unwrap();
            connection.close().await;
            let (server, _) = admin.rsplit_once('/').unwrap();
            Some(format!("{server}/{name}"))
        } else {
            None
        };
        let place = Place {
            _dir: dir,
            path,
            url,
        };
        let store = place.open().await;
        (place, store)
    }

    /// Drops a test's PostgreSQL database (a SQLite one goes with its directory).
    async fn remove(place: Place) {
        if let Some(url) = &place.url {
            let name = url.rsplit_once('/').unwrap().1;
            let connection = PgPool::connect(&postgres_admin_url()).await.unwrap();
            sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(&connection)
                .await
                .unwrap();
            connection.close().await;
        }
    }

    /// Runs each test body on SQLite and on PostgreSQL.
    macro_rules! on_both {
        ($($name:ident => $body:ident;)*) => {
            mod on_sqlite {
                $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$body(false).await
                })*
            }
            mod on_postgres {
                $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$body(true).await
                })*
            }
        };
    }

    on_both! {
        offers_match_once_into_a_deal_whose_state_and_events_survive_a_reopen => matches_once;
        a_signature_is_accepted_once => signature_once;
        a_corrupt_row_is_an_error_naming_the_database => corrupt_row;
        events_written_at_once_are_all_seen_by_a_reader_that_follows_them => events_in_order;
        files_txs_checkpoints_counts_and_pruning_work_alike => the_rest;
        open_offers_are_read_once_in_order_and_leave_when_taken => open_offers_read_once;
    }

    /// More open offers than one pass reads one by one: all come back oldest first, from
    /// a fresh store (one query) and again (nothing read); a withdrawn one leaves, and a
    /// second store on the same database sees what the first wrote.
    async fn open_offers_read_once(postgres: bool) {
        let (place, store) = fresh(postgres).await;
        let count = READ_ALL_ABOVE + 88;
        let mut ids = Vec::new();
        for n in 0..count {
            // Created in reverse order of n, so the order is not that of insertion.
            let mut offer = examples::job_offer(10_000 - n as u64, 5, 500);
            offer.id.clear();
            offer.nonce = format!("offer {n}");
            let offer = offer.seal();
            store.add_job_offer(&offer, None).await.unwrap();
            ids.push(offer.id.clone());
        }
        ids.reverse();
        let open =
            |offers: Vec<Arc<JobOffer>>| offers.iter().map(|o| o.id.clone()).collect::<Vec<_>>();
        assert_eq!(open(store.open_job_offers().await.unwrap()), ids);
        assert_eq!(store.open_jobs.len(), count);
        assert_eq!(open(store.open_job_offers().await.unwrap()), ids);

        assert!(store.withdraw_job_offer(&ids[3]).await.unwrap());
        let gone = ids.remove(3);
        assert_eq!(open(store.open_job_offers().await.unwrap()), ids);
        assert_eq!(store.open_jobs.len(), count - 1, "{gone} is dropped");

        let mut late = examples::job_offer(1, 5, 500);
        late.id.clear();
        late.nonce = "late".into();
        let late = late.seal();
        let other = place.open().await;
        other.add_job_offer(&late, None).await.unwrap();
        ids.insert(0, late.id.clone());
        assert_eq!(open(store.open_job_offers().await.unwrap()), ids);
        drop((store, other));
        remove(place).await;
    }

    async fn matches_once(postgres: bool) {
        let (place, store) = fresh(postgres).await;
        let deal = examples::deal();
        let (job, resource) = (&deal.job_offer, &deal.resource_offer);
        let seen = |signature| {
            Some(Seen {
                signature,
                at_secs: 1,
            })
        };
        assert!(store
            .add_job_offer(job, seen("aa"))
            .await
            .unwrap()
            .is_some());
        assert!(
            store.add_job_offer(job, None).await.unwrap().is_none(),
            "once"
        );
        // A request whose signature was seen writes nothing, even a new offer.
        assert!(matches!(
            store.add_resource_offer(resource, 1_000, seen("AA")).await,
            Err(StoreError::Replayed)
        ));
        assert!(store.resource_offer(&resource.id).await.unwrap().is_none());
        assert!(!store.remember_signature("aa", 2).await.unwrap());
        assert!(store
            .add_resource_offer(resource, 1_000, seen("bb"))
            .await
            .unwrap()
            .is_some());
        assert!(store
            .add_resource_offer(resource, 2_000, None)
            .await
            .unwrap()
            .is_none());
        assert_eq!(
            store.open_job_offers().await.unwrap(),
            vec![Arc::new(job.clone())]
        );
        assert_eq!(
            store.open_job_offer_count(job.job_creator).await.unwrap(),
            1
        );
        assert!(
            store.live_resource_offers(2_001).await.unwrap().is_empty(),
            "not refreshed since 2000"
        );
        assert_eq!(store.live_resource_offers(2_000).await.unwrap().len(), 1);
        assert!(store
            .refresh_resource_offer(&resource.id, resource.resource_provider, 3_000)
            .await
            .unwrap());
        assert!(
            !store
                .refresh_resource_offer(&resource.id, job.job_creator, 4_000)
                .await
                .unwrap(),
            "only by its owner"
        );
        let record = store.resource_offer(&resource.id).await.unwrap().unwrap();
        assert_eq!((record.last_seen, record.deal_id), (3_000, None));

        let events = store
            .commit_deals(&[(deal.clone(), "0xkey".into())])
            .await
            .unwrap();
        assert_eq!(events.len(), 1);
        assert!(store.open_job_offers().await.unwrap().is_empty());
        assert!(store.live_resource_offers(0).await.unwrap().is_empty());
        let again = store.commit_deals(&[(deal.clone(), "0xkey".into())]).await;
        assert!(
            matches!(again, Err(StoreError::Conflict(_))),
            "no double booking"
        );
        assert_eq!(
            store.job_offer(&job.id).await.unwrap().unwrap().deal_id,
            Some(deal.id.clone())
        );
        assert!(
            !store.withdraw_job_offer(&job.id).await.unwrap(),
            "it has a deal"
        );
        let negotiating = store.negotiating_deals_by_job_creator().await.unwrap();
        assert_eq!(negotiating.get(&job.job_creator), Some(&1));

        assert!(store.set_deal_state(&deal.id, 1).await.unwrap().is_some());
        assert!(
            store.set_deal_state(&deal.id, 1).await.unwrap().is_none(),
            "no event without a change"
        );
        store.close().await;

        let store = place.open().await;
        let record = store.deal_by_key("0xkey").await.unwrap().unwrap();
        assert_eq!(record.deal, deal);
        assert_eq!(
            (record.state, record.state_name.as_str()),
            (1, "DealAgreed")
        );
        assert_eq!(store.deal(&deal.id).await.unwrap().unwrap().deal, deal);
        let filter = DealFilter {
            resource_provider: Some(deal.members.resource_provider),
            mediator: Some(deal.members.mediator),
            job_creator: Some(deal.members.job_creator),
            job_offer: Some(job.id.clone()),
            deal_key: Some("0xKEY".into()),
            state: Some(1),
        };
        assert_eq!(store.deals(&filter).await.unwrap().len(), 1);
        let filter = DealFilter {
            state: Some(2),
            ..DealFilter::default()
        };
        assert!(store.deals(&filter).await.unwrap().is_empty());
        let filter = DealFilter {
            mediator: Some(Address::repeat_byte(9)),
            ..DealFilter::default()
        };
        assert!(store.deals(&filter).await.unwrap().is_empty());
        let seqs: Vec<u64> = store
            .events_since(0, 100)
            .await
            .unwrap()
            .iter()
            .map(|event| event.seq)
            .collect();
        assert_eq!(seqs, vec![1, 2, 3, 4], "every event, numbered without gaps");
        assert_eq!(store.events_since(3, 100).await.unwrap()[0].seq, 4);
        store.close().await;
        remove(place).await;
    }

    #[tokio::test]
    async fn a_database_url_s_password_never_reaches_an_error() {
        for url in [
            "postgres://lilypad:s3cret-pw@127.0.0.1:1/solver",
            "postgres://lilypad:s3cret-pw@127.0.0.1:notaport/solver",
            "postgres://lilypad:s3cret-pw@[::1/solver",
        ] {
            let error = match Store::connect(url).await {
                Ok(_) => panic!("{url} connected"),
                Err(error) => error.to_string(),
            };
            assert!(!error.contains("s3cret-pw"), "{error}");
            assert!(error.contains("database"), "{error}");
        }
    }

    async fn signature_once(postgres: bool) {
        let (place, store) = fresh(postgres).await;
        assert!(store.remember_signature("0xAB", 100).await.unwrap());
        assert!(
            !store.remember_signature("0xab", 101).await.unwrap(),
            "a replay"
        );
        store.forget_old_signatures(10_000).await.unwrap();
        assert!(store.remember_signature("0xab", 10_000).await.unwrap());
        store.close().await;
        remove(place).await;
    }

    async fn corrupt_row(postgres: bool) {
        let (place, store) = fresh(postgres).await;
        let job = examples::job_offer(1, 5, 1000);
        store.add_job_offer(&job, None).await.unwrap();
        on_pool!(store, |pool, pg| {
            sqlx::query("UPDATE job_offers SET json = 'not json'")
                .execute(pool)
                .await
                .unwrap();
        });
        let error = store.job_offer(&job.id).await.unwrap_err().to_string();
        assert!(
            error.contains(&store.name().display().to_string()),
            "{error}"
        );
        assert!(store.open_job_offers().await.is_err());
        if let Some(url) = &place.url {
            let password = url.split_once("://").unwrap().1.split_once('@').unwrap().0;
            let password = password.split_once(':').unwrap().1;
            assert!(!error.contains(&format!(":{password}@")), "{error}");
        }
        store.close().await;
        remove(place).await;
    }

    /// Writers add offers from several tasks at once while a reader follows the events the
    /// way a `/ws` subscriber resumes (everything after the last number it saw): it misses
    /// none, so no event ever commits behind a later-numbered one.
    async fn events_in_order(postgres: bool) {
        let (place, store) = fresh(postgres).await;
        const WRITERS: u64 = 8;
        const EACH: u64 = 25;
        let writers: Vec<_> = (0..WRITERS)
            .map(|writer| {
                let store = store.clone();
                tokio::spawn(async move {
                    for n in 0..EACH {
                        let offer = examples::job_offer(writer * 1000 + n, 5, 1000);
                        store.add_job_offer(&offer, None).await.unwrap().unwrap();
                    }
                })
            })
            .collect();
        let mut seen: Vec<u64> = Vec::new();
        let follow = |store: Store, cursor: u64| async move {
            let events = store.events_since(cursor, 1000).await.unwrap();
            events.iter().map(|event| event.seq).collect::<Vec<_>>()
        };
        while !writers.iter().all(|writer| writer.is_finished()) {
            let cursor = seen.last().copied().unwrap_or(0);
            seen.extend(follow(store.clone(), cursor).await);
        }
        for writer in writers {
            writer.await.unwrap();
        }
        let cursor = seen.last().copied().unwrap_or(0);
        seen.extend(follow(store.clone(), cursor).await);
        let all: Vec<u64> = store
            .events_since(0, 1000)
            .await
            .unwrap()
            .iter()
            .map(|event| event.seq)
            .collect();
        assert_eq!(seen, all, "the follower saw every event, in order");
        store.close().await;
        remove(place).await;
    }

    async fn the_rest(postgres: bool) {
        let (place, store) = fresh(postgres).await;
        let deal = examples::deal();
        store.add_job_offer(&deal.job_offer, None).await.unwrap();
        store
            .add_resource_offer(&deal.resource_offer, 1_000, None)
            .await
            .unwrap();
        store
            .commit_deals(&[(deal.clone(), "0xkey".into())])
            .await
            .unwrap();
        let result = JobResult {
            deal_id: deal.id.clone(),
            results_cid: "cid-1".into(),
            error: None,
            exit_code: Some(0),
            instruction_count: 1,
        };
        assert!(store.put_result(&result).await.unwrap().is_some());
        assert!(store.put_result(&result).await.unwrap().is_none(), "once");
        assert_eq!(store.result(&deal.id).await.unwrap(), Some(result));
        let file = place._dir.path().join("results.tar");
        store.put_file(&deal.id, "cid-1", &file).await.unwrap();
        store.put_file(&deal.id, "cid-2", &file).await.unwrap();
        assert_eq!(
            store.file(&deal.id).await.unwrap(),
            Some(("cid-2".into(), file.display().to_string())),
            "the latest upload"
        );
        for (n, action) in ["agree", "submit", "agree"].iter().enumerate() {
            let record = TxRecord {
                deal_id: deal.id.clone(),
                address: deal.members.resource_provider,
                action: action.to_string(),
                tx_hash: format!("0x{}", if n == 2 { 0 } else { n }),
            };
            store.add_tx(&record).await.unwrap();
        }
        let actions: Vec<String> = store
            .txs(&deal.id)
            .await
            .unwrap()
            .into_iter()
            .map(|tx| tx.action)
            .collect();
        assert_eq!(actions, ["agree", "submit"], "in order, each hash once");

        let checkpoint = crate::chain::follower::Checkpoint::new(store.clone());
        assert_eq!(checkpoint.load().await.unwrap(), None);
        checkpoint.save(41).await.unwrap();
        checkpoint.save(42).await.unwrap();
        assert_eq!(checkpoint.load().await.unwrap(), Some(42));

        store
            .set_deal_state(&deal.id, DealState::ResultsAccepted.number())
            .await
            .unwrap();
        let (states, jobs, resources, last) = store.counts().await.unwrap();
        assert_eq!(states, vec![(DealState::ResultsAccepted.number(), 1)]);
        assert_eq!((jobs, resources, last), (0, 0, 5));

        let retention = Retention {
            deals_ms: 1_000,
            results_ms: 1_000,
            events: 2,
        };
        let later = crate::data::offers::now_millis() + 10_000;
        let (pruned, paths) = store.prune(later, &retention).await.unwrap();
        assert_eq!(
            pruned,
            Pruned {
                deals: 1,
                offers: 2,
                files: 1,
                events: 3
            }
        );
        assert_eq!(paths, vec![file]);
        assert!(store.deal(&deal.id).await.unwrap().is_none());
        assert!(store.result(&deal.id).await.unwrap().is_none());
        assert!(store.txs(&deal.id).await.unwrap().is_empty());
        assert_eq!(store.events_since(0, 100).await.unwrap().len(), 2);
        store.close().await;
        remove(place).await;
    }
}
