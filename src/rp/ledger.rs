//! The resource provider's own record (SQLite under DATA_DIR): its offers and the deals it
//! accepted, refused or ran, with each deal's stage. A restart resumes from the stage
//! instead of re-running blindly, and an offer is never sold twice.

use std::path::Path;

use sqlx::Row;

use crate::data::{Deal, ResourceOffer};
use crate::db::{encode, Db, DbError};

/// Where the RP is with a deal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// The deal does not match our offer; never agreed to.
    Refused,
    /// Checked and accepted: waiting for the job creator to agree first (it pays in first),
    /// then agreeing on chain and running the job.
    Accepted,
    /// The job creator did not agree within the agree window: its slot is offered again. If
    /// the job creator agrees after all, we agree and the job still runs; if it has not by
    /// the deal's agree timeout, we give the deal up (we never paid anything in).
    Stalled,
    /// Results packed (`results_cid` set); uploading and submitting.
    Packed,
    /// addResult confirmed.
    Submitted,
    /// The deal ended (paid, refunded or timed out).
    Finished,
}

impl Stage {
    fn name(self) -> &'static str {
        match self {
            Stage::Refused => "refused",
            Stage::Accepted => "accepted",
            Stage::Stalled => "stalled",
            Stage::Packed => "packed",
            Stage::Submitted => "submitted",
            Stage::Finished => "finished",
        }
    }

    fn parse(text: &str) -> Option<Stage> {
        [
            Stage::Refused,
            Stage::Accepted,
            Stage::Stalled,
            Stage::Packed,
            Stage::Submitted,
            Stage::Finished,
        ]
        .into_iter()
        .find(|stage| stage.name() == text)
    }
}

/// A deal the RP knows.
#[derive(Debug, Clone)]
pub struct LocalDeal {
    pub deal: Deal,
    pub stage: Stage,
    pub results_cid: Option<String>,
}

#[derive(Clone)]
pub struct Ledger {
    db: Db,
}

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS offers (id TEXT PRIMARY KEY, json TEXT NOT NULL, deal_id TEXT, created_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS deals (id TEXT PRIMARY KEY, json TEXT NOT NULL, stage TEXT NOT NULL, results_cid TEXT,
    reason TEXT);
CREATE TABLE IF NOT EXISTS deals_taken (id TEXT PRIMARY KEY, at_ms INTEGER NOT NULL);
"#;

impl Ledger {
    pub async fn open(path: &Path) -> Result<Ledger, DbError> {
        Ok(Ledger {
            db: Db::open(path, SCHEMA, 2).await?,
        })
    }

    pub async fn add_offer(&self, offer: &ResourceOffer) -> Result<(), DbError> {
        sqlx::query("INSERT OR IGNORE INTO offers (id, json, created_at) VALUES (?, ?, ?)")
            .bind(&offer.id)
            .bind(encode(offer))
            .bind(offer.created_at as i64)
            .execute(self.db.pool())
            .await
            .map_err(|e| self.db.sql(e))?;
        Ok(())
    }

    pub async fn offer(&self, id: &str) -> Result<Option<ResourceOffer>, DbError> {
        let row = sqlx::query("SELECT json FROM offers WHERE id = ?")
            .bind(id)
            .fetch_optional(self.db.pool())
            .await
            .map_err(|e| self.db.sql(e))?;
        row.map(|row| {
            self.db
                .decode(format!("resource offer {id}"), row.get::<&str, _>(0))
        })
        .transpose()
    }

    /// Offers not yet sold.
    pub async fn open_offers(&self) -> Result<Vec<ResourceOffer>, DbError> {
        let rows =
            sqlx::query("SELECT id, json FROM offers WHERE deal_id IS NULL ORDER BY created_at")
                .fetch_all(self.db.pool())
                .await
                .map_err(|e| self.db.sql(e))?;
        rows.iter()
            .map(|row| {
                let id: &str = row.get(0);
                self.db
                    .decode(format!("resource offer {id}"), row.get::<&str, _>(1))
            })
            .collect()
    }

    /// Records a deal at `stage` (first sight); marks its offer sold when accepted.
    pub async fn add_deal(
        &self,
        deal: &Deal,
        stage: Stage,
        reason: Option<&str>,
    ) -> Result<(), DbError> {
        let sql = |e| self.db.sql(e);
        let mut tx = self.db.pool().begin().await.map_err(sql)?;
        sqlx::query("INSERT OR IGNORE INTO deals (id, json, stage, reason) VALUES (?, ?, ?, ?)")
            .bind(&deal.id)
            .bind(encode(deal))
            .bind(stage.name())
            .bind(reason)
            .execute(&mut *tx)
            .await
            .map_err(sql)?;
        sqlx::query("INSERT OR IGNORE INTO deals_taken (id, at_ms) VALUES (?, ?)")
            .bind(&deal.id)
            .bind(crate::data::offers::now_millis() as i64)
            .execute(&mut *tx)
            .await
            .map_err(sql)?;
        if stage != Stage::Refused {
            sqlx::query("UPDATE offers SET deal_id = ? WHERE id = ? AND deal_id IS NULL")
                .bind(&deal.id)
                .bind(&deal.resource_offer.id)
                .execute(&mut *tx)
                .await
                .map_err(sql)?;
        }
        tx.commit().await.map_err(sql)
    }

    /// When we first took up the deal (milliseconds since the epoch): the agree window and
    /// the give-up point count from here. A deal recorded before this was kept counts from
    /// `now`, its first look after the upgrade.
    pub async fn taken_at(&self, deal_id: &str, now: u64) -> Result<u64, DbError> {
        let sql = |e| self.db.sql(e);
        sqlx::query("INSERT OR IGNORE INTO deals_taken (id, at_ms) VALUES (?, ?)")
            .bind(deal_id)
            .bind(now as i64)
            .execute(self.db.pool())
            .await
            .map_err(sql)?;
        let row = sqlx::query("SELECT at_ms FROM deals_taken WHERE id = ?")
            .bind(deal_id)
            .fetch_one(self.db.pool())
            .await
            .map_err(sql)?;
        Ok(row.get::<i64, _>(0).max(0) as u64)
    }

    pub async fn set_stage(
        &self,
        deal_id: &str,
        stage: Stage,
        results_cid: Option<&str>,
    ) -> Result<(), DbError> {
        sqlx::query(
            "UPDATE deals SET stage = ?, results_cid = COALESCE(?, results_cid) WHERE id = ?",
        )
        .bind(stage.name())
        .bind(results_cid)
        .bind(deal_id)
        .execute(self.db.pool())
        .await
        .map_err(|e| self.db.sql(e))?;
        Ok(())
    }

    /// The deal, if we know it; a stored deal or stage that does not decode is an error,
    /// never a guess (a guessed "accepted" would run the job again).
    pub async fn deal(&self, id: &str) -> Result<Option<LocalDeal>, DbError> {
        let row = sqlx::query("SELECT json, stage, results_cid FROM deals WHERE id = ?")
            .bind(id)
            .fetch_optional(self.db.pool())
            .await
            .map_err(|e| self.db.sql(e))?;
        let Some(row) = row else {
            return Ok(None);
        };
        let stage_text: &str = row.get(1);
        let stage = Stage::parse(stage_text).ok_or_else(|| {
            self.db.corrupt(
                format!("the stage of deal {id}"),
                format!("{stage_text:?} is not a stage"),
            )
        })?;
        Ok(Some(LocalDeal {
            deal: self
                .db
                .decode(format!("deal {id}"), row.get::<&str, _>(0))?,
            stage,
            results_cid: row.get(2),
        }))
    }

    /// The ids of deals not yet finished or refused (their job directories are needed).
    pub async fn unfinished_deal_ids(&self) -> Result<std::collections::HashSet<String>, DbError> {
        let rows = sqlx::query("SELECT id FROM deals WHERE stage NOT IN (?, ?)")
            .bind(Stage::Finished.name())
            .bind(Stage::Refused.name())
            .fetch_all(self.db.pool())
            .await
            .map_err(|e| self.db.sql(e))?;
        Ok(rows.iter().map(|row| row.get::<String, _>(0)).collect())
    }

    /// How many deals hold a slot: those about to run or running. A deal whose results are
    /// submitted needs no machine to be judged, and one the job creator never joined is
    /// given up after the agree window (stalled).
    pub async fn active_deal_count(&self) -> Result<u32, DbError> {
        let row = sqlx::query("SELECT COUNT(*) FROM deals WHERE stage IN (?, ?)")
            .bind(Stage::Accepted.name())
            .bind(Stage::Packed.name())
            .fetch_one(self.db.pool())
            .await
            .map_err(|e| self.db.sql(e))?;
        Ok(row.get::<i64, _>(0).try_into().unwrap_or(u32::MAX))
    }

    /// Deals by stage, for /metrics.
    pub async fn stage_counts(&self) -> Result<Vec<(String, u64)>, DbError> {
        self.db
            .counts("SELECT stage, COUNT(*) FROM deals GROUP BY stage ORDER BY stage")
            .await
    }

    pub async fn close(&self) {
        self.db.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::examples;
    use crate::db::DbError;

    async fn ledger() -> (tempfile::TempDir, std::path::PathBuf, Ledger) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rp.db");
        let ledger = Ledger::open(&path).await.unwrap();
        (dir, path, ledger)
    }

    #[tokio::test]
    async fn offers_are_sold_once_and_deals_keep_their_stage_across_a_reopen() {
        let (_dir, path, ledger) = ledger().await;
        let deal = examples::deal();
        ledger.add_offer(&deal.resource_offer).await.unwrap();
        assert_eq!(ledger.open_offers().await.unwrap().len(), 1);
        ledger.add_deal(&deal, Stage::Accepted, None).await.unwrap();
        assert!(ledger.open_offers().await.unwrap().is_empty(), "sold");
        assert_eq!(ledger.active_deal_count().await.unwrap(), 1);
        ledger
            .set_stage(&deal.id, Stage::Packed, Some("bafkcid"))
            .await
            .unwrap();
        ledger.close().await;

        let ledger = Ledger::open(&path).await.unwrap();
        let local = ledger.deal(&deal.id).await.unwrap().unwrap();
        assert_eq!(local.stage, Stage::Packed);
        assert_eq!(local.results_cid.as_deref(), Some("bafkcid"));
        assert_eq!(local.deal, deal);
        ledger
            .set_stage(&deal.id, Stage::Finished, None)
            .await
            .unwrap();
        assert_eq!(ledger.active_deal_count().await.unwrap(), 0);
        let local = ledger.deal(&deal.id).await.unwrap().unwrap();
        assert_eq!(local.results_cid.as_deref(), Some("bafkcid"), "kept");
    }

    #[tokio::test]
    async fn a_refused_deal_does_not_sell_its_offer() {
        let (_dir, _path, ledger) = ledger().await;
        let deal = examples::deal();
        ledger.add_offer(&deal.resource_offer).await.unwrap();
        ledger
            .add_deal(&deal, Stage::Refused, Some("not ours"))
            .await
            .unwrap();
        assert_eq!(ledger.open_offers().await.unwrap().len(), 1);
        assert_eq!(ledger.active_deal_count().await.unwrap(), 0);
    }

    #[tokio::test]
    async fn an_unknown_stage_is_corrupt_data_naming_the_database_not_a_job_to_run_again() {
        let (_dir, path, ledger) = ledger().await;
        let deal = examples::deal();
        ledger
            .add_deal(&deal, Stage::Submitted, None)
            .await
            .unwrap();
        sqlx::query("UPDATE deals SET stage = 'submittd' WHERE id = ?")
            .bind(&deal.id)
            .execute(ledger.db.pool())
            .await
            .unwrap();
        let error = ledger.deal(&deal.id).await.unwrap_err();
        let text = error.to_string();
        assert!(matches!(error, DbError::Corrupt { .. }), "{text}");
        assert!(text.contains(&path.display().to_string()), "{text}");
        assert!(
            text.contains("submittd") && text.contains(&deal.id),
            "{text}"
        );
    }

    #[tokio::test]
    async fn a_corrupt_offer_is_an_error_not_a_missing_offer() {
        let (_dir, path, ledger) = ledger().await;
        let deal = examples::deal();
        ledger.add_offer(&deal.resource_offer).await.unwrap();
        sqlx::query("UPDATE offers SET json = '{\"id\": 3' WHERE id = ?")
            .bind(&deal.resource_offer.id)
            .execute(ledger.db.pool())
            .await
            .unwrap();
        // Read as "no such offer", the RP would refuse its own deal.
        let error = ledger.offer(&deal.resource_offer.id).await.unwrap_err();
        assert!(error.to_string().contains(&path.display().to_string()));
        assert!(ledger.open_offers().await.is_err());
    }
}
