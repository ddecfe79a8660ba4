//! The solver's store: offers, deals, results, files, events, seen signatures and the last
//! processed block, in SQLite under DATA_DIR (WAL, one transaction per matching pass), so a
//! restart loses nothing.

use std::path::Path;

use ethers::types::Address;
use sqlx::Row;

use crate::bus::{Event, EventKind};
use crate::data::records::{DealFilter, DealRecord, JobOfferRecord, ResourceOfferRecord, TxRecord};
use crate::data::{Deal, DealState, JobOffer, JobResult, ResourceOffer};
use crate::db::{encode, Db, DbError};

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
}

type Result<T> = std::result::Result<T, StoreError>;

#[derive(Clone)]
pub struct Store {
    db: Db,
}

const SCHEMA: &str = r#"
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
    /// Opens (creating if needed) `path`.
    pub async fn open(path: &Path) -> std::result::Result<Store, DbError> {
        let db = Db::open(path, SCHEMA, 4).await?;
        Ok(Store { db })
    }

    /// Decodes a stored JSON value; damage is corrupt data naming the database.
    fn decode<T: serde::de::DeserializeOwned>(&self, what: &str, json: &str) -> Result<T> {
        Ok(self.db.decode(what, json)?)
    }

    /// The database, for the chain follower's checkpoint.
    pub fn db(&self) -> &Db {
        &self.db
    }

    async fn insert_event(tx: &mut sqlx::SqliteConnection, mut event: Event) -> Result<Event> {
        let id = sqlx::query("INSERT INTO events (json) VALUES ('')")
            .execute(&mut *tx)
            .await?
            .last_insert_rowid();
        event.seq = id as u64;
        sqlx::query("UPDATE events SET json = ? WHERE seq = ?")
            .bind(encode(&event))
            .bind(id)
            .execute(&mut *tx)
            .await?;
        Ok(event)
    }

    /// Stores `event` in `tx`, commits, and returns the numbered event to publish.
    async fn commit_with_event(
        mut tx: sqlx::Transaction<'_, sqlx::Sqlite>,
        event: Event,
    ) -> Result<Option<Event>> {
        let event = Self::insert_event(&mut tx, event).await?;
        tx.commit().await?;
        Ok(Some(event))
    }

    fn resource_offer_record(&self, row: &sqlx::sqlite::SqliteRow) -> Result<ResourceOfferRecord> {
        Ok(ResourceOfferRecord {
            offer: self.decode("resource offer", row.get::<&str, _>(0))?,
            deal_id: row.get(1),
            last_seen: row.get::<i64, _>(2) as u64,
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

    /// Stores a new job offer; None if it was already known.
    pub async fn add_job_offer(&self, offer: &JobOffer) -> Result<Option<Event>> {
        let mut tx = self.db.pool().begin().await?;
        let inserted = sqlx::query("INSERT OR IGNORE INTO job_offers (id, json, created_at, job_creator) VALUES (?, ?, ?, ?)")
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
        Self::commit_with_event(
            tx,
            Event {
                job_offer_id: Some(offer.id.clone()),
                ..Self::event(EventKind::JobOfferAdded)
            },
        )
        .await
    }

    /// Deletes a job offer that has no deal; false if it has one (or is unknown).
    pub async fn withdraw_job_offer(&self, id: &str) -> Result<bool> {
        let deleted = sqlx::query("DELETE FROM job_offers WHERE id = ? AND deal_id IS NULL")
            .bind(id)
            .execute(self.db.pool())
            .await?
            .rows_affected();
        Ok(deleted == 1)
    }

    /// Stores a new resource offer (seen now); None if it was already known (then it is refreshed).
    pub async fn add_resource_offer(
        &self,
        offer: &ResourceOffer,
        now_ms: u64,
    ) -> Result<Option<Event>> {
        let mut tx = self.db.pool().begin().await?;
        let inserted = sqlx::query(
            "INSERT OR IGNORE INTO resource_offers (id, json, created_at, resource_provider, last_seen) VALUES (?, ?, ?, ?, ?)",
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
            sqlx::query("UPDATE resource_offers SET last_seen = ? WHERE id = ?")
                .bind(now_ms as i64)
                .bind(&offer.id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            return Ok(None);
        }
        Self::commit_with_event(
            tx,
            Event {
                resource_offer_id: Some(offer.id.clone()),
                ..Self::event(EventKind::ResourceOfferAdded)
            },
        )
        .await
    }

    /// Marks a resource offer as alive now. False if no such offer of `owner` exists.
    pub async fn refresh_resource_offer(
        &self,
        id: &str,
        owner: Address,
        now_ms: u64,
    ) -> Result<bool> {
        let updated = sqlx::query(
            "UPDATE resource_offers SET last_seen = ? WHERE id = ? AND resource_provider = ?",
        )
        .bind(now_ms as i64)
        .bind(id)
        .bind(address_text(owner))
        .execute(self.db.pool())
        .await?
        .rows_affected();
        Ok(updated > 0)
    }

    pub async fn job_offer(&self, id: &str) -> Result<Option<JobOfferRecord>> {
        let row = sqlx::query("SELECT json, deal_id FROM job_offers WHERE id = ?")
            .bind(id)
            .fetch_optional(self.db.pool())
            .await?;
        row.map(|row| {
            Ok(JobOfferRecord {
                offer: self.decode("job offer", row.get::<&str, _>(0))?,
                deal_id: row.get(1),
            })
        })
        .transpose()
    }

    pub async fn resource_offer(&self, id: &str) -> Result<Option<ResourceOfferRecord>> {
        let row = sqlx::query("SELECT json, deal_id, last_seen FROM resource_offers WHERE id = ?")
            .bind(id)
            .fetch_optional(self.db.pool())
            .await?;
        row.as_ref()
            .map(|row| self.resource_offer_record(row))
            .transpose()
    }

    /// Resource offers, optionally of one provider.
    pub async fn resource_offers(
        &self,
        owner: Option<Address>,
    ) -> Result<Vec<ResourceOfferRecord>> {
        let rows = match owner {
            Some(owner) => sqlx::query("SELECT json, deal_id, last_seen FROM resource_offers WHERE resource_provider = ? ORDER BY created_at, id")
                .bind(address_text(owner))
                .fetch_all(self.db.pool())
                .await?,
            None => sqlx::query("SELECT json, deal_id, last_seen FROM resource_offers ORDER BY created_at, id").fetch_all(self.db.pool()).await?,
        };
        rows.iter()
            .map(|row| self.resource_offer_record(row))
            .collect()
    }

    /// Unmatched job offers, oldest first.
    /// How many unmatched job offers `job_creator` has open.
    pub async fn open_job_offer_count(&self, job_creator: Address) -> Result<u64> {
        let row = sqlx::query(
            "SELECT COUNT(*) FROM job_offers WHERE job_creator = ? AND deal_id IS NULL",
        )
        .bind(address_text(job_creator))
        .fetch_one(self.db.pool())
        .await?;
        Ok(row.get::<i64, _>(0).max(0) as u64)
    }

    /// Per job creator, how many of its deals are still negotiating (it has not agreed, or
    /// its resource provider has not): the matcher serves job creators with fewer first.
    pub async fn negotiating_deals_by_job_creator(
        &self,
    ) -> Result<std::collections::HashMap<Address, u64>> {
        let rows = sqlx::query(
            // 0 is DealNegotiating, written out so the partial index applies.
            "SELECT job_creator, COUNT(*) FROM deals WHERE state = 0 GROUP BY job_creator",
        )
        .fetch_all(self.db.pool())
        .await?;
        let mut counts = std::collections::HashMap::new();
        for row in rows {
            let text: &str = row.get(0);
            let address = text.parse::<Address>().map_err(|e| {
                self.db
                    .corrupt("a deal's job creator", format!("{text:?}: {e}"))
            })?;
            counts.insert(address, row.get::<i64, _>(1).max(0) as u64);
        }
        Ok(counts)
    }

    pub async fn open_job_offers(&self) -> Result<Vec<JobOffer>> {
        let rows = sqlx::query(
            "SELECT json FROM job_offers WHERE deal_id IS NULL ORDER BY created_at, id",
        )
        .fetch_all(self.db.pool())
        .await?;
        rows.iter()
            .map(|row| self.decode("job offer", row.get::<&str, _>(0)))
            .collect()
    }

    /// Unmatched resource offers refreshed at or after `alive_since_ms`.
    pub async fn live_resource_offers(&self, alive_since_ms: u64) -> Result<Vec<ResourceOffer>> {
        let rows = sqlx::query(
            "SELECT json FROM resource_offers WHERE deal_id IS NULL AND last_seen >= ?",
        )
        .bind(alive_since_ms as i64)
        .fetch_all(self.db.pool())
        .await?;
        rows.iter()
            .map(|row| self.decode("resource offer", row.get::<&str, _>(0)))
            .collect()
    }

    /// Stores the deals of one matching pass in one transaction. If any deal's offers were
    /// taken meanwhile (passes are serialised, so this means a bug), nothing is stored.
    /// Returns the events to publish.
    pub async fn commit_deals(&self, deals: &[(Deal, String)]) -> Result<Vec<Event>> {
        let mut tx = self.db.pool().begin().await?;
        let mut events = Vec::new();
        for (deal, deal_key) in deals {
            let job =
                sqlx::query("UPDATE job_offers SET deal_id = ? WHERE id = ? AND deal_id IS NULL")
                    .bind(&deal.id)
                    .bind(&deal.job_offer.id)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
            let resource = sqlx::query(
                "UPDATE resource_offers SET deal_id = ? WHERE id = ? AND deal_id IS NULL",
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
                "INSERT INTO deals (id, json, deal_key, job_offer, job_creator, resource_provider, mediators, state, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?)",
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
            events.push(Self::insert_event(&mut tx, event).await?);
        }
        tx.commit().await?;
        Ok(events)
    }

    fn deal_record(&self, row: &sqlx::sqlite::SqliteRow) -> Result<DealRecord> {
        let deal: Deal = self.decode("deal", row.get::<&str, _>(0))?;
        let state = row.get::<i64, _>(1) as u8;
        let state_name = DealState::try_from(state)
            .map(|s| s.name().to_string())
            .unwrap_or_else(|e| e.to_string());
        Ok(DealRecord {
            deal,
            state,
            state_name,
            deal_key: row.get(2),
        })
    }

    pub async fn deal(&self, id: &str) -> Result<Option<DealRecord>> {
        let row = sqlx::query("SELECT json, state, deal_key FROM deals WHERE id = ?")
            .bind(id)
            .fetch_optional(self.db.pool())
            .await?;
        row.as_ref().map(|row| self.deal_record(row)).transpose()
    }

    pub async fn deal_by_key(&self, deal_key: &str) -> Result<Option<DealRecord>> {
        let row = sqlx::query("SELECT json, state, deal_key FROM deals WHERE deal_key = ?")
            .bind(deal_key)
            .fetch_optional(self.db.pool())
            .await?;
        row.as_ref().map(|row| self.deal_record(row)).transpose()
    }

    pub async fn deals(&self, filter: &DealFilter) -> Result<Vec<DealRecord>> {
        let mut sql = String::from("SELECT json, state, deal_key FROM deals WHERE 1 = 1");
        let mut binds: Vec<String> = Vec::new();
        if let Some(jc) = filter.job_creator {
            sql.push_str(" AND job_creator = ?");
            binds.push(address_text(jc));
        }
        if let Some(rp) = filter.resource_provider {
            sql.push_str(" AND resource_provider = ?");
            binds.push(address_text(rp));
        }
        if let Some(mediator) = filter.mediator {
            sql.push_str(" AND instr(mediators, ?) > 0");
            binds.push(address_text(mediator));
        }
        if let Some(job_offer) = &filter.job_offer {
            sql.push_str(" AND job_offer = ?");
            binds.push(job_offer.clone());
        }
        if let Some(state) = filter.state {
            sql.push_str(" AND state = ?");
            binds.push(state.to_string());
        }
        if let Some(key) = &filter.deal_key {
            sql.push_str(" AND deal_key = ?");
            binds.push(key.to_ascii_lowercase());
        }
        sql.push_str(" ORDER BY created_at, id");
        let mut query = sqlx::query(&sql);
        for bind in &binds {
            query = query.bind(bind);
        }
        let rows = query.fetch_all(self.db.pool()).await?;
        rows.iter().map(|row| self.deal_record(row)).collect()
    }

    /// Records a deal's on-chain state; None if it did not change.
    pub async fn set_deal_state(&self, deal_id: &str, state: u8) -> Result<Option<Event>> {
        let mut tx = self.db.pool().begin().await?;
        let changed = sqlx::query("UPDATE deals SET state = ? WHERE id = ? AND state != ?")
            .bind(state as i64)
            .bind(deal_id)
            .bind(state as i64)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if changed == 0 {
            return Ok(None);
        }
        Self::commit_with_event(
            tx,
            Event {
                deal_id: Some(deal_id.to_string()),
                state: Some(state),
                ..Self::event(EventKind::DealStateChanged)
            },
        )
        .await
    }

    /// Records a deal's result (the first one wins; a repeat of the same is fine).
    pub async fn put_result(&self, result: &JobResult) -> Result<Option<Event>> {
        let mut tx = self.db.pool().begin().await?;
        let inserted = sqlx::query("INSERT OR IGNORE INTO results (deal_id, json) VALUES (?, ?)")
            .bind(&result.deal_id)
            .bind(encode(result))
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if inserted == 0 {
            return Ok(None);
        }
        Self::commit_with_event(
            tx,
            Event {
                deal_id: Some(result.deal_id.clone()),
                ..Self::event(EventKind::ResultAdded)
            },
        )
        .await
    }

    pub async fn result(&self, deal_id: &str) -> Result<Option<JobResult>> {
        let row = sqlx::query("SELECT json FROM results WHERE deal_id = ?")
            .bind(deal_id)
            .fetch_optional(self.db.pool())
            .await?;
        row.map(|row| self.decode("result", row.get::<&str, _>(0)))
            .transpose()
    }

    pub async fn put_file(&self, deal_id: &str, results_cid: &str, path: &Path) -> Result<()> {
        sqlx::query("INSERT OR REPLACE INTO files (deal_id, results_cid, path) VALUES (?, ?, ?)")
            .bind(deal_id)
            .bind(results_cid)
            .bind(path.display().to_string())
            .execute(self.db.pool())
            .await?;
        Ok(())
    }

    /// (results CID, path) of a deal's uploaded results.
    pub async fn file(&self, deal_id: &str) -> Result<Option<(String, String)>> {
        let row = sqlx::query("SELECT results_cid, path FROM files WHERE deal_id = ?")
            .bind(deal_id)
            .fetch_optional(self.db.pool())
            .await?;
        Ok(row.map(|row| (row.get(0), row.get(1))))
    }

    /// Events after `since`, oldest first, at most `limit`.
    pub async fn events_since(&self, since: u64, limit: u32) -> Result<Vec<Event>> {
        let rows = sqlx::query("SELECT json FROM events WHERE seq > ? ORDER BY seq LIMIT ?")
            .bind(since as i64)
            .bind(limit as i64)
            .fetch_all(self.db.pool())
            .await?;
        rows.iter()
            .map(|row| self.decode("event", row.get::<&str, _>(0)))
            .collect()
    }

    /// Remembers a request signature; false if it was seen before (a replay).
    pub async fn remember_signature(&self, signature: &str, now_secs: u64) -> Result<bool> {
        let inserted =
            sqlx::query("INSERT OR IGNORE INTO seen_signatures (signature, seen_at) VALUES (?, ?)")
                .bind(signature.to_ascii_lowercase())
                .bind(now_secs as i64)
                .execute(self.db.pool())
                .await?
                .rows_affected();
        Ok(inserted == 1)
    }

    /// Forgets signatures seen more than twice the clock window ago: a request carrying one
    /// again is refused as stale, so remembering it no longer matters.
    pub async fn forget_old_signatures(&self, now_secs: u64) -> Result<()> {
        let horizon = now_secs.saturating_sub(2 * crate::data::signing::MAX_SKEW_SECS + 1);
        sqlx::query("DELETE FROM seen_signatures WHERE seen_at < ?")
            .bind(horizon as i64)
            .execute(self.db.pool())
            .await?;
        Ok(())
    }

    /// Forgets what `retention` lets go as of `now_ms`, in one transaction; returns what was
    /// forgotten and the results files to delete (the caller deletes them after the commit,
    /// so a failed pass never leaves a record pointing at a deleted file).
    pub async fn prune(
        &self,
        now_ms: u64,
        retention: &Retention,
    ) -> Result<(Pruned, Vec<std::path::PathBuf>)> {
        let states = forgettable_states();
        let deals_before = now_ms.saturating_sub(retention.deals_ms) as i64;
        let results_before = now_ms.saturating_sub(retention.results_ms) as i64;
        let old_deals =
            format!("SELECT id FROM deals WHERE state IN ({states}) AND created_at < ?");
        let mut tx = self.db.pool().begin().await?;
        // Results files: of deals that ended (state 0 is negotiating) before the results
        // horizon, and of deals forgotten.
        let files_of = format!(
            "DELETE FROM files WHERE deal_id IN (SELECT id FROM deals WHERE state IN ({states}) AND state != 0 AND created_at < ?) OR deal_id IN ({old_deals}) RETURNING path"
        );
        let paths: Vec<std::path::PathBuf> = sqlx::query(&files_of)
            .bind(results_before)
            .bind(deals_before)
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|row| std::path::PathBuf::from(row.get::<&str, _>(0)))
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
            sqlx::query("DELETE FROM job_offers WHERE deal_id IS NULL AND created_at < ?")
                .bind(deals_before)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        pruned.offers +=
            sqlx::query("DELETE FROM resource_offers WHERE deal_id IS NULL AND last_seen < ?")
                .bind(deals_before)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        pruned.events =
            sqlx::query("DELETE FROM events WHERE seq <= (SELECT MAX(seq) FROM events) - ?")
                .bind(retention.events.min(i64::MAX as u64) as i64)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        tx.commit().await?;
        if pruned != Pruned::default() {
            self.db.release_free_pages().await?;
        }
        Ok((pruned, paths))
    }

    pub async fn add_tx(&self, record: &TxRecord) -> Result<()> {
        sqlx::query(
            "INSERT OR IGNORE INTO txs (deal_id, address, action, tx_hash) VALUES (?, ?, ?, ?)",
        )
        .bind(&record.deal_id)
        .bind(address_text(record.address))
        .bind(&record.action)
        .bind(&record.tx_hash)
        .execute(self.db.pool())
        .await?;
        Ok(())
    }

    pub async fn txs(&self, deal_id: &str) -> Result<Vec<TxRecord>> {
        let rows = sqlx::query(
            "SELECT deal_id, address, action, tx_hash FROM txs WHERE deal_id = ? ORDER BY rowid",
        )
        .bind(deal_id)
        .fetch_all(self.db.pool())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(TxRecord {
                    deal_id: row.get(0),
                    address: row
                        .get::<&str, _>(1)
                        .parse()
                        .map_err(|e| self.db.corrupt("a tx record's address", e))?,
                    action: row.get(2),
                    tx_hash: row.get(3),
                })
            })
            .collect()
    }

    /// Counts for /metrics: (deals per state, open job offers, open resource offers, last event).
    pub async fn counts(&self) -> Result<(Vec<(u8, u64)>, u64, u64, u64)> {
        let rows = sqlx::query("SELECT state, COUNT(*) FROM deals GROUP BY state")
            .fetch_all(self.db.pool())
            .await?;
        let per_state = rows
            .iter()
            .map(|row| (row.get::<i64, _>(0) as u8, row.get::<i64, _>(1) as u64))
            .collect();
        let jobs: i64 = sqlx::query("SELECT COUNT(*) FROM job_offers WHERE deal_id IS NULL")
            .fetch_one(self.db.pool())
            .await?
            .get(0);
        let resources: i64 =
            sqlx::query("SELECT COUNT(*) FROM resource_offers WHERE deal_id IS NULL")
                .fetch_one(self.db.pool())
                .await?
                .get(0);
        let last: i64 = sqlx::query("SELECT COALESCE(MAX(seq), 0) FROM events")
            .fetch_one(self.db.pool())
            .await?
            .get(0);
        Ok((per_state, jobs as u64, resources as u64, last as u64))
    }

    pub async fn close(&self) {
        self.db.pool().close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::examples;

    async fn store() -> (tempfile::TempDir, std::path::PathBuf, Store) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("solver.db");
        let store = Store::open(&path).await.unwrap();
        (dir, path, store)
    }

    #[tokio::test]
    async fn offers_match_once_into_a_deal_whose_state_and_events_survive_a_reopen() {
        let (_dir, path, store) = store().await;
        let deal = examples::deal();
        let (job, resource) = (&deal.job_offer, &deal.resource_offer);
        assert!(store.add_job_offer(job).await.unwrap().is_some());
        assert!(store.add_job_offer(job).await.unwrap().is_none(), "once");
        assert!(store
            .add_resource_offer(resource, 1_000)
            .await
            .unwrap()
            .is_some());
        assert!(store
            .add_resource_offer(resource, 2_000)
            .await
            .unwrap()
            .is_none());
        assert_eq!(store.open_job_offers().await.unwrap(), vec![job.clone()]);
        assert!(
            store.live_resource_offers(2_001).await.unwrap().is_empty(),
            "not refreshed since 2000"
        );
        assert_eq!(store.live_resource_offers(2_000).await.unwrap().len(), 1);

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

        assert!(store.set_deal_state(&deal.id, 1).await.unwrap().is_some());
        assert!(
            store.set_deal_state(&deal.id, 1).await.unwrap().is_none(),
            "no event without a change"
        );
        store.close().await;

        let store = Store::open(&path).await.unwrap();
        let record = store.deal_by_key("0xkey").await.unwrap().unwrap();
        assert_eq!(record.deal, deal);
        assert_eq!(
            (record.state, record.state_name.as_str()),
            (1, "DealAgreed")
        );
        let filter = DealFilter {
            resource_provider: Some(deal.members.resource_provider),
            state: Some(1),
            ..DealFilter::default()
        };
        assert_eq!(store.deals(&filter).await.unwrap().len(), 1);
        let filter = DealFilter {
            state: Some(2),
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
    }

    #[tokio::test]
    async fn a_signature_is_accepted_once() {
        let (_dir, _path, store) = store().await;
        assert!(store.remember_signature("0xAB", 100).await.unwrap());
        assert!(
            !store.remember_signature("0xab", 101).await.unwrap(),
            "a replay"
        );
        store.forget_old_signatures(10_000).await.unwrap();
        assert!(store.remember_signature("0xab", 10_000).await.unwrap());
    }

    #[tokio::test]
    async fn a_corrupt_row_is_an_error_naming_the_database() {
        let (_dir, path, store) = store().await;
        let job = examples::job_offer(1, 5, 1000);
        store.add_job_offer(&job).await.unwrap();
        sqlx::query("UPDATE job_offers SET json = 'not json'")
            .execute(store.db.pool())
            .await
            .unwrap();
        let error = store.job_offer(&job.id).await.unwrap_err().to_string();
        assert!(error.contains(&path.display().to_string()), "{error}");
        assert!(store.open_job_offers().await.is_err());
    }
}
