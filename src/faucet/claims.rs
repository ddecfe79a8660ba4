//! The faucet's memory of who claimed when (SQLite under DATA_DIR/faucet, so a restart
//! does not open the tap again): one row per address and per client IP, holding the time
//! until which that key may not claim again. A claim reserves both rows before anything is
//! sent and gives them back if sending fails.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::Row;

use crate::db::{Db, DbError};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS claims (
    key TEXT PRIMARY KEY,
    until_ms INTEGER NOT NULL
);
";

/// Claims by address and IP.
#[derive(Clone)]
pub struct Claims {
    db: Db,
}

/// Why a claim may not go ahead yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wait {
    /// What claimed already: `address 0x…` or `IP 1.2.3.4`.
    pub who: String,
    /// How long until it may claim again (whole seconds, at least 1).
    pub seconds: u64,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl Claims {
    pub async fn open(path: &Path) -> Result<Claims, DbError> {
        // One connection: reservations are checked and written one at a time.
        Ok(Claims {
            db: Db::open(path, SCHEMA, 1).await?,
        })
    }

    /// Reserves every key in `keys` (each `(key, how it is named to the client)`) for
    /// `period`, or none of them if any is still reserved.
    pub async fn reserve(
        &self,
        keys: &[(String, String)],
        period: Duration,
    ) -> Result<Result<(), Wait>, DbError> {
        let now = now_ms();
        let until = now.saturating_add(period.as_millis() as i64);
        let sql = |e| self.db.sql(e);
        let mut tx = self.db.pool().begin().await.map_err(sql)?;
        for (key, name) in keys {
            let row = sqlx::query("SELECT until_ms FROM claims WHERE key = ?")
                .bind(key)
                .fetch_optional(&mut *tx)
                .await
                .map_err(sql)?;
            if let Some(row) = row {
                let reserved: i64 = row.try_get(0).map_err(sql)?;
                if reserved > now {
                    let seconds = ((reserved - now) as u64).div_ceil(1000).max(1);
                    return Ok(Err(Wait {
                        who: name.clone(),
                        seconds,
                    }));
                }
            }
        }
        for (key, _) in keys {
            sqlx::query(
                "INSERT INTO claims (key, until_ms) VALUES (?, ?)
                 ON CONFLICT (key) DO UPDATE SET until_ms = excluded.until_ms",
            )
            .bind(key)
            .bind(until)
            .execute(&mut *tx)
            .await
            .map_err(sql)?;
        }
        tx.commit().await.map_err(sql)?;
        Ok(Ok(()))
    }

    /// Gives back reservations (a claim that could not be paid).
    pub async fn release(&self, keys: &[(String, String)]) -> Result<(), DbError> {
        for (key, _) in keys {
            sqlx::query("DELETE FROM claims WHERE key = ?")
                .bind(key)
                .execute(self.db.pool())
                .await
                .map_err(|e| self.db.sql(e))?;
        }
        Ok(())
    }

    /// Forgets reservations that have run out.
    pub async fn forget_expired(&self) -> Result<u64, DbError> {
        let done = sqlx::query("DELETE FROM claims WHERE until_ms <= ?")
            .bind(now_ms())
            .execute(self.db.pool())
            .await
            .map_err(|e| self.db.sql(e))?;
        Ok(done.rows_affected())
    }

    pub async fn close(&self) {
        self.db.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(names: &[&str]) -> Vec<(String, String)> {
        names
            .iter()
            .map(|n| (n.to_string(), format!("the {n}")))
            .collect()
    }

    #[tokio::test]
    async fn a_key_claims_once_per_period_and_a_released_claim_is_open_again() {
        let dir = tempfile::tempdir().unwrap();
        let claims = Claims::open(&dir.path().join("faucet.db")).await.unwrap();
        let hour = Duration::from_secs(3600);
        assert_eq!(
            claims.reserve(&keys(&["a", "ip1"]), hour).await.unwrap(),
            Ok(())
        );
        // The same address from another IP, and another address from the same IP: both wait.
        let wait = claims
            .reserve(&keys(&["a", "ip2"]), hour)
            .await
            .unwrap()
            .unwrap_err();
        assert_eq!(wait.who, "the a");
        assert!((3590..=3600).contains(&wait.seconds), "{wait:?}");
        let wait = claims
            .reserve(&keys(&["b", "ip1"]), hour)
            .await
            .unwrap()
            .unwrap_err();
        assert_eq!(wait.who, "the ip1");
        // A refused claim reserved nothing: b from another IP may claim.
        assert_eq!(
            claims.reserve(&keys(&["b", "ip2"]), hour).await.unwrap(),
            Ok(())
        );
        claims.release(&keys(&["a", "ip1"])).await.unwrap();
        assert_eq!(
            claims.reserve(&keys(&["a", "ip1"]), hour).await.unwrap(),
            Ok(())
        );

        // Kept across a reopen (a restarted faucet); expired rows are forgotten.
        claims.close().await;
        let claims = Claims::open(&dir.path().join("faucet.db")).await.unwrap();
        assert!(claims.reserve(&keys(&["a"]), hour).await.unwrap().is_err());
        assert_eq!(
            claims
                .reserve(&keys(&["c"]), Duration::from_millis(1))
                .await
                .unwrap(),
            Ok(())
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert_eq!(claims.forget_expired().await.unwrap(), 1);
        assert_eq!(claims.reserve(&keys(&["c"]), hour).await.unwrap(), Ok(()));
    }
}
