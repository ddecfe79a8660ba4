//! `lilypad jc`'s own record (SQLite under DATA_DIR): every job request seen on chain, the
//! job offer made for it (so a restart follows the same offer and deal instead of paying for
//! a second one), how it ended, and the checkpoint of its chain follower.

use std::path::Path;

use sqlx::Row;

use crate::data::JobOffer;
use crate::db::{encode, Db, DbError};

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

    /// Records a request (once; seeing it again changes nothing).
    pub async fn add(&self, request: &Request) -> Result<(), DbError> {
        sqlx::query(
            "INSERT OR IGNORE INTO requests (job_id, client, refund_to, module, inputs, deposit, status)
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&request.job_id)
        .bind(&request.client)
        .bind(&request.refund_to)
        .bind(&request.module)
        .bind(encode(&request.inputs))
        .bind(&request.deposit)
        .bind(Status::New.name())
        .execute(self.db.pool())
        .await
        .map_err(|e| self.db.sql(e))?;
        Ok(())
    }

    /// Requests still to be served (new or running), oldest first. A request whose stored
    /// row does not decode comes back as its error (naming the database), never as a
    /// request without an offer: that would post and pay for a second job offer.
    pub async fn open_requests(&self) -> Result<Vec<Result<Tracked, DbError>>, DbError> {
        let rows = sqlx::query(
            "SELECT job_id, client, refund_to, module, inputs, deposit, offer FROM requests
             WHERE status IN (?, ?) ORDER BY CAST(job_id AS INTEGER)",
        )
        .bind(Status::New.name())
        .bind(Status::Running.name())
        .fetch_all(self.db.pool())
        .await
        .map_err(|e| self.db.sql(e))?;
        Ok(rows.iter().map(|row| self.tracked(row)).collect())
    }

    fn tracked(&self, row: &sqlx::sqlite::SqliteRow) -> Result<Tracked, DbError> {
        let job_id: String = row.get(0);
        let offer = row
            .get::<Option<&str>, _>(6)
            .map(|text| {
                self.db
                    .decode(format!("the job offer of job request {job_id}"), text)
            })
            .transpose()?;
        Ok(Tracked {
            request: Request {
                client: row.get(1),
                refund_to: row.get(2),
                module: row.get(3),
                inputs: self.db.decode(
                    format!("the inputs of job request {job_id}"),
                    row.get::<&str, _>(4),
                )?,
                deposit: row.get(5),
                job_id,
            },
            offer,
        })
    }

    /// Stores the job offer made for a request, before it is posted.
    pub async fn set_offer(&self, job_id: &str, offer: &JobOffer) -> Result<(), DbError> {
        sqlx::query("UPDATE requests SET status = ?, offer = ? WHERE job_id = ?")
            .bind(Status::Running.name())
            .bind(encode(offer))
            .bind(job_id)
            .execute(self.db.pool())
            .await
            .map_err(|e| self.db.sql(e))?;
        Ok(())
    }

    /// Records how a request ended.
    pub async fn close(
        &self,
        job_id: &str,
        status: Status,
        deal_id: Option<&str>,
        note: &str,
    ) -> Result<(), DbError> {
        sqlx::query(
            "UPDATE requests SET status = ?, deal_id = COALESCE(?, deal_id), note = ? WHERE job_id = ?",
        )
        .bind(status.name())
        .bind(deal_id)
        .bind(note)
        .bind(job_id)
        .execute(self.db.pool())
        .await
        .map_err(|e| self.db.sql(e))?;
        Ok(())
    }

    pub async fn shut(&self) {
        self.db.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::examples;

    fn request(job_id: &str) -> Request {
        Request {
            job_id: job_id.into(),
            client: "0x00000000000000000000000000000000000000c1".into(),
            refund_to: "0x00000000000000000000000000000000000000c2".into(),
            module: "cowsay:v0.0.1".into(),
            inputs: vec!["Message=moo".into()],
            deposit: "2000000000000000000".into(),
        }
    }

    #[tokio::test]
    async fn requests_are_recorded_once_keep_their_offer_and_close() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jc.db");
        let ledger = Ledger::open(&path).await.unwrap();
        ledger.add(&request("10")).await.unwrap();
        ledger.add(&request("9")).await.unwrap();
        ledger.add(&request("10")).await.unwrap(); // seen again: no change
        let offer = examples::job_offer(1, 5, 1000);
        ledger.set_offer("10", &offer).await.unwrap();
        ledger.shut().await;

        let ledger = Ledger::open(&path).await.unwrap();
        let open: Vec<Tracked> = ledger
            .open_requests()
            .await
            .unwrap()
            .into_iter()
            .map(Result::unwrap)
            .collect();
        let ids: Vec<&str> = open.iter().map(|t| t.request.job_id.as_str()).collect();
        assert_eq!(ids, ["9", "10"], "numeric order");
        assert_eq!(open[0].offer, None);
        assert_eq!(open[1].offer.as_ref(), Some(&offer));
        assert_eq!(open[1].request, request("10"));
        ledger
            .close("9", Status::Failed, None, "nobody home")
            .await
            .unwrap();
        assert_eq!(ledger.open_requests().await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_corrupt_job_offer_is_an_error_naming_the_database_not_a_request_without_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jc.db");
        let ledger = Ledger::open(&path).await.unwrap();
        ledger.add(&request("1")).await.unwrap();
        ledger.add(&request("2")).await.unwrap();
        ledger
            .set_offer("1", &examples::job_offer(1, 5, 1000))
            .await
            .unwrap();
        sqlx::query("UPDATE requests SET offer = '{\"module\": ' WHERE job_id = '1'")
            .execute(ledger.db.pool())
            .await
            .unwrap();
        let open = ledger.open_requests().await.unwrap();
        assert_eq!(open.len(), 2, "one bad row does not hide the others");
        let error = open[0].as_ref().unwrap_err().to_string();
        assert!(error.contains(&path.display().to_string()), "{error}");
        assert!(error.contains("job request 1"), "{error}");
        assert_eq!(open[1].as_ref().unwrap().request.job_id, "2");
    }
}
