//! `lilypad jc`'s own record (SQLite under DATA_DIR): every job request seen on chain, the
//! job offer made for it (so a restart follows the same offer and deal instead of paying for
//! a second one), how it ended, and the block the request stream has read up to.

use std::path::Path;

use sqlx::sqlite::SqlitePool;
use sqlx::Row;

use crate::data::JobOffer;

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS requests (job_id TEXT PRIMARY KEY, client TEXT NOT NULL,
    refund_to TEXT NOT NULL, module TEXT NOT NULL, inputs TEXT NOT NULL, deposit TEXT NOT NULL,
    status TEXT NOT NULL, offer TEXT, deal_id TEXT, note TEXT);
"#;

/// A job request as the chain announced it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub job_id: String,
    pub client: String,
    pub refund_to: String,
    pub module: String,
    /// `Key=Value` strings.
    pub inputs: Vec<String>,
    /// Token wei.
    pub deposit: String,
}

/// Where a request is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Seen; nothing done yet.
    New,
    /// A job offer exists (stored); following its deal.
    Running,
    /// completeJob confirmed: the client has its results.
    Completed,
    /// failJob confirmed: the requester was refunded.
    Failed,
    /// No longer pending on chain for another reason (cancelled by the requester).
    Closed,
}

impl Status {
    fn name(self) -> &'static str {
        match self {
            Status::New => "new",
            Status::Running => "running",
            Status::Completed => "completed",
            Status::Failed => "failed",
            Status::Closed => "closed",
        }
    }
}

/// A request with what we did about it.
#[derive(Debug, Clone)]
pub struct Tracked {
    pub request: Request,
    pub offer: Option<JobOffer>,
}

#[derive(Clone)]
pub struct Ledger {
    pool: SqlitePool,
}

impl Ledger {
    pub async fn open(path: &Path) -> Result<Ledger, sqlx::Error> {
        Ok(Ledger {
            pool: crate::db::open(path, SCHEMA, 2).await?,
        })
    }

    /// Records a request (once; seeing it again changes nothing).
    pub async fn add(&self, request: &Request) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT OR IGNORE INTO requests (job_id, client, refund_to, module, inputs, deposit, status)
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&request.job_id)
        .bind(&request.client)
        .bind(&request.refund_to)
        .bind(&request.module)
        .bind(serde_json::to_string(&request.inputs).unwrap_or_default())
        .bind(&request.deposit)
        .bind(Status::New.name())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Requests still to be served (new or running), oldest first.
    pub async fn open_requests(&self) -> Result<Vec<Tracked>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT job_id, client, refund_to, module, inputs, deposit, offer FROM requests
             WHERE status IN (?, ?) ORDER BY CAST(job_id AS INTEGER)",
        )
        .bind(Status::New.name())
        .bind(Status::Running.name())
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(Self::tracked).collect())
    }

    fn tracked(row: &sqlx::sqlite::SqliteRow) -> Tracked {
        Tracked {
            request: Request {
                job_id: row.get(0),
                client: row.get(1),
                refund_to: row.get(2),
                module: row.get(3),
                inputs: serde_json::from_str(row.get::<&str, _>(4)).unwrap_or_default(),
                deposit: row.get(5),
            },
            offer: row
                .get::<Option<&str>, _>(6)
                .and_then(|text| serde_json::from_str(text).ok()),
        }
    }

    /// Stores the job offer made for a request, before it is posted.
    pub async fn set_offer(&self, job_id: &str, offer: &JobOffer) -> Result<(), sqlx::Error> {
        sqlx::query("UPDATE requests SET status = ?, offer = ? WHERE job_id = ?")
            .bind(Status::Running.name())
            .bind(serde_json::to_string(offer).unwrap_or_default())
            .bind(job_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Records how a request ended.
    pub async fn close(
        &self,
        job_id: &str,
        status: Status,
        deal_id: Option<&str>,
        note: &str,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE requests SET status = ?, deal_id = COALESCE(?, deal_id), note = ? WHERE job_id = ?",
        )
        .bind(status.name())
        .bind(deal_id)
        .bind(note)
        .bind(job_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn meta(&self, key: &str) -> Result<Option<String>, sqlx::Error> {
        crate::db::meta(&self.pool, key).await
    }

    pub async fn set_meta(&self, key: &str, value: &str) -> Result<(), sqlx::Error> {
        crate::db::set_meta(&self.pool, key, value).await
    }

    pub async fn shut(&self) {
        self.pool.close().await;
    }
}
