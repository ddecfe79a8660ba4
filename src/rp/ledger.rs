//! The resource provider's own record (SQLite under DATA_DIR): its offers and the deals it
//! accepted, refused or ran, with each deal's stage. A restart resumes from the stage
//! instead of re-running blindly, and an offer is never sold twice.

use std::path::Path;

use sqlx::sqlite::SqlitePool;
use sqlx::Row;

use crate::data::{Deal, ResourceOffer};

/// Where the RP is with a deal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// The deal does not match our offer; never agreed to.
    Refused,
    /// Checked and accepted; agreeing on chain.
    Accepted,
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
            Stage::Packed => "packed",
            Stage::Submitted => "submitted",
            Stage::Finished => "finished",
        }
    }

    fn parse(text: &str) -> Stage {
        match text {
            "refused" => Stage::Refused,
            "packed" => Stage::Packed,
            "submitted" => Stage::Submitted,
            "finished" => Stage::Finished,
            _ => Stage::Accepted,
        }
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
    pool: SqlitePool,
}

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS offers (id TEXT PRIMARY KEY, json TEXT NOT NULL, deal_id TEXT, created_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS deals (id TEXT PRIMARY KEY, json TEXT NOT NULL, stage TEXT NOT NULL, results_cid TEXT,
    reason TEXT);
"#;

impl Ledger {
    pub async fn open(path: &Path) -> Result<Ledger, sqlx::Error> {
        let pool = crate::db::open(path, SCHEMA, 2).await?;
        Ok(Ledger { pool })
    }

    pub async fn add_offer(&self, offer: &ResourceOffer) -> Result<(), sqlx::Error> {
        sqlx::query("INSERT OR IGNORE INTO offers (id, json, created_at) VALUES (?, ?, ?)")
            .bind(&offer.id)
            .bind(serde_json::to_string(offer).unwrap_or_default())
            .bind(offer.created_at as i64)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn offer(&self, id: &str) -> Result<Option<ResourceOffer>, sqlx::Error> {
        let row = sqlx::query("SELECT json FROM offers WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.and_then(|row| serde_json::from_str(row.get::<&str, _>(0)).ok()))
    }

    /// Offers not yet sold.
    pub async fn open_offers(&self) -> Result<Vec<ResourceOffer>, sqlx::Error> {
        let rows = sqlx::query("SELECT json FROM offers WHERE deal_id IS NULL ORDER BY created_at")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .iter()
            .filter_map(|row| serde_json::from_str(row.get::<&str, _>(0)).ok())
            .collect())
    }

    /// Records a deal at `stage` (first sight); marks its offer sold when accepted.
    pub async fn add_deal(
        &self,
        deal: &Deal,
        stage: Stage,
        reason: Option<&str>,
    ) -> Result<(), sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("INSERT OR IGNORE INTO deals (id, json, stage, reason) VALUES (?, ?, ?, ?)")
            .bind(&deal.id)
            .bind(serde_json::to_string(deal).unwrap_or_default())
            .bind(stage.name())
            .bind(reason)
            .execute(&mut *tx)
            .await?;
        if stage != Stage::Refused {
            sqlx::query("UPDATE offers SET deal_id = ? WHERE id = ? AND deal_id IS NULL")
                .bind(&deal.id)
                .bind(&deal.resource_offer.id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await
    }

    pub async fn set_stage(
        &self,
        deal_id: &str,
        stage: Stage,
        results_cid: Option<&str>,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE deals SET stage = ?, results_cid = COALESCE(?, results_cid) WHERE id = ?",
        )
        .bind(stage.name())
        .bind(results_cid)
        .bind(deal_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn deal(&self, id: &str) -> Result<Option<LocalDeal>, sqlx::Error> {
        let row = sqlx::query("SELECT json, stage, results_cid FROM deals WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.and_then(|row| {
            Some(LocalDeal {
                deal: serde_json::from_str(row.get::<&str, _>(0)).ok()?,
                stage: Stage::parse(row.get::<&str, _>(1)),
                results_cid: row.get(2),
            })
        }))
    }

    /// How many deals are accepted and not finished: each holds a slot.
    pub async fn active_deal_count(&self) -> Result<u32, sqlx::Error> {
        let row = sqlx::query(
            "SELECT COUNT(*) FROM deals WHERE stage IN ('accepted', 'packed', 'submitted')",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(row.get::<i64, _>(0) as u32)
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}
