//! The mediator's own record (SQLite under DATA_DIR): deals it was asked to mediate (from
//! chain events), the verdict it reached for each (so a restart re-sends the verdict instead
//! of re-running the job) and the checkpoint of its chain follower.

use std::path::Path;

use sqlx::Row;

use crate::db::{Db, DbError};

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS requested (deal_key TEXT PRIMARY KEY, deal_id TEXT);
CREATE TABLE IF NOT EXISTS verdicts (deal_id TEXT PRIMARY KEY, accept INTEGER NOT NULL,
    our_cid TEXT NOT NULL, reason TEXT NOT NULL, finished INTEGER NOT NULL DEFAULT 0);
"#;

/// What the mediator concluded about a deal's results.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// The RP's results match our re-run.
    pub accept: bool,
    /// The results CID our re-run produced.
    pub our_cid: String,
    /// Why, for people.
    pub reason: String,
}

#[derive(Clone)]
pub struct Ledger {
    db: Db,
}

impl Ledger {
    pub async fn open(path: &Path) -> Result<Ledger, DbError> {
        Ok(Ledger {
            db: Db::open(path, SCHEMA, 2).await?,
        })
    }

    /// The database, for the chain follower's checkpoint.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Notes a mediation request for `deal_key` seen on chain.
    pub async fn add_requested(&self, deal_key: &str) -> Result<(), DbError> {
        sqlx::query("INSERT OR IGNORE INTO requested (deal_key) VALUES (?)")
            .bind(deal_key)
            .execute(self.db.pool())
            .await
            .map_err(|e| self.db.sql(e))?;
        Ok(())
    }

    /// Requested deal keys not yet matched to a deal.
    pub async fn unresolved(&self) -> Result<Vec<String>, DbError> {
        let rows = sqlx::query("SELECT deal_key FROM requested WHERE deal_id IS NULL")
            .fetch_all(self.db.pool())
            .await
            .map_err(|e| self.db.sql(e))?;
        Ok(rows.iter().map(|row| row.get(0)).collect())
    }

    pub async fn resolve(&self, deal_key: &str, deal_id: &str) -> Result<(), DbError> {
        sqlx::query("UPDATE requested SET deal_id = ? WHERE deal_key = ?")
            .bind(deal_id)
            .bind(deal_key)
            .execute(self.db.pool())
            .await
            .map_err(|e| self.db.sql(e))?;
        Ok(())
    }

    pub async fn verdict(&self, deal_id: &str) -> Result<Option<(Verdict, bool)>, DbError> {
        let row =
            sqlx::query("SELECT accept, our_cid, reason, finished FROM verdicts WHERE deal_id = ?")
                .bind(deal_id)
                .fetch_optional(self.db.pool())
                .await
                .map_err(|e| self.db.sql(e))?;
        Ok(row.map(|row| {
            let verdict = Verdict {
                accept: row.get::<i64, _>(0) != 0,
                our_cid: row.get(1),
                reason: row.get(2),
            };
            (verdict, row.get::<i64, _>(3) != 0)
        }))
    }

    pub async fn set_verdict(&self, deal_id: &str, verdict: &Verdict) -> Result<(), DbError> {
        sqlx::query(
            "INSERT OR IGNORE INTO verdicts (deal_id, accept, our_cid, reason) VALUES (?, ?, ?, ?)",
        )
        .bind(deal_id)
        .bind(verdict.accept as i64)
        .bind(&verdict.our_cid)
        .bind(&verdict.reason)
        .execute(self.db.pool())
        .await
        .map_err(|e| self.db.sql(e))?;
        Ok(())
    }

    /// Whether we are done with a deal (verdict on chain, or the deal ended otherwise).
    pub async fn is_finished(&self, deal_id: &str) -> Result<bool, DbError> {
        Ok(self
            .verdict(deal_id)
            .await?
            .is_some_and(|(_, finished)| finished))
    }

    /// Marks a deal done; `verdict` records why when no verdict was reached.
    pub async fn finish(&self, deal_id: &str, reason: &str) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO verdicts (deal_id, accept, our_cid, reason, finished) VALUES (?, 0, '', ?, 1)
             ON CONFLICT (deal_id) DO UPDATE SET finished = 1",
        )
        .bind(deal_id)
        .bind(reason)
        .execute(self.db.pool())
        .await
        .map_err(|e| self.db.sql(e))?;
        Ok(())
    }

    pub async fn close(&self) {
        self.db.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn requests_resolve_to_deals_and_a_verdict_is_kept_until_finished() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mediator.db");
        let ledger = Ledger::open(&path).await.unwrap();
        ledger.add_requested("0xkey").await.unwrap();
        ledger.add_requested("0xkey").await.unwrap();
        assert_eq!(ledger.unresolved().await.unwrap(), ["0xkey"]);
        ledger.resolve("0xkey", "deal1").await.unwrap();
        assert!(ledger.unresolved().await.unwrap().is_empty());

        let verdict = Verdict {
            accept: false,
            our_cid: "bafkours".into(),
            reason: "stdout differs".into(),
        };
        ledger.set_verdict("deal1", &verdict).await.unwrap();
        ledger.close().await;
        let ledger = Ledger::open(&path).await.unwrap();
        assert_eq!(
            ledger.verdict("deal1").await.unwrap(),
            Some((verdict.clone(), false)),
            "a restart re-sends the verdict it reached, without re-running"
        );
        assert!(!ledger.is_finished("deal1").await.unwrap());
        ledger.finish("deal1", "sent").await.unwrap();
        assert!(ledger.is_finished("deal1").await.unwrap());
        assert_eq!(
            ledger.verdict("deal1").await.unwrap().unwrap().0,
            verdict,
            "finishing keeps the verdict"
        );
        ledger
            .finish("deal2", "another mediator was picked")
            .await
            .unwrap();
        assert!(ledger.is_finished("deal2").await.unwrap());
    }
}
