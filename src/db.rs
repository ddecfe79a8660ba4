//! A role's SQLite database under DATA_DIR: created if missing, write-ahead logged, synced
//! at commit boundaries, waiting (not failing) on a busy lock, schema applied. Every database
//! also gets a `meta` table of named values (such as a chain follower's checkpoint).
//!
//! Every error names the database file. Stored data that does not decode is
//! [`DbError::Corrupt`], never a default: a ledger that silently read a damaged row as
//! "nothing done yet" would run a job, or pay for one, a second time.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use futures::future::BoxFuture;
use sqlx::sqlite::{
    SqliteAutoVacuum, SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};
use sqlx::Row;

/// A database failure; both kinds name the file.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database {db}: {source}")]
    Sql { db: PathBuf, source: sqlx::Error },
    #[error("database {db} holds corrupt data: {what} ({detail}). Nothing was run or paid on its account; restore the file from a backup, or delete that row if the item is finished")]
    Corrupt {
        db: PathBuf,
        what: String,
        detail: String,
    },
}

/// An open database and where it lives.
#[derive(Clone)]
pub struct Db {
    pool: SqlitePool,
    path: PathBuf,
}

impl Db {
    /// Opens (creating it and its directory if needed) the database at `path` and applies
    /// `schema` (idempotent DDL).
    pub async fn open(path: &Path, schema: &str, connections: u32) -> Result<Db, DbError> {
        let sql = |source| DbError::Sql {
            db: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent() {
            tokio::fs::create_dir_all(dir)
                .await
                .map_err(|e| sql(sqlx::Error::Io(e)))?;
        }
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))
            .map_err(sql)?
            .create_if_missing(true)
            // Pages freed by forgetting old rows can be handed back to the file system
            // ([`Db::release_free_pages`]); takes effect for databases created with it.
            .auto_vacuum(SqliteAutoVacuum::Incremental)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(connections)
            .connect_with(options)
            .await
            .map_err(sql)?;
        sqlx::raw_sql(META_SCHEMA)
            .execute(&pool)
            .await
            .map_err(sql)?;
        sqlx::raw_sql(schema).execute(&pool).await.map_err(sql)?;
        Ok(Db {
            pool,
            path: path.to_path_buf(),
        })
    }

    /// Gives the pages that deleted rows freed back to the file system, so the file shrinks
    /// (it otherwise keeps them for reuse).
    pub async fn release_free_pages(&self) -> Result<(), DbError> {
        sqlx::query("PRAGMA incremental_vacuum")
            .execute(&self.pool)
            .await
            .map_err(|e| self.sql(e))?;
        Ok(())
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Wraps an SQL error with this database's path.
    pub fn sql(&self, source: sqlx::Error) -> DbError {
        DbError::Sql {
            db: self.path.clone(),
            source,
        }
    }

    /// A corrupt-data error naming this database, `what` was damaged and how.
    pub fn corrupt(&self, what: impl Into<String>, detail: impl std::fmt::Display) -> DbError {
        DbError::Corrupt {
            db: self.path.clone(),
            what: what.into(),
            detail: detail.to_string(),
        }
    }

    /// Decodes a stored JSON value; damage is [`DbError::Corrupt`].
    pub fn decode<T: serde::de::DeserializeOwned>(
        &self,
        what: impl Into<String>,
        json: &str,
    ) -> Result<T, DbError> {
        serde_json::from_str(json).map_err(|e| self.corrupt(what, e))
    }

    /// A named value from the `meta` table.
    pub async fn meta(&self, key: &str) -> Result<Option<String>, DbError> {
        let row = sqlx::query("SELECT value FROM meta WHERE key = ?")
            .bind(key)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| self.sql(e))?;
        Ok(row.map(|row| row.get(0)))
    }

    /// Sets a named value in the `meta` table.
    pub async fn set_meta(&self, key: &str, value: &str) -> Result<(), DbError> {
        sqlx::query("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)")
            .bind(key)
            .bind(value)
            .execute(&self.pool)
            .await
            .map_err(|e| self.sql(e))?;
        Ok(())
    }

    /// Rows of (text, count) from `sql`, e.g. `SELECT stage, COUNT(*) FROM deals GROUP BY
    /// stage`, for /metrics.
    pub async fn counts(&self, sql: &str) -> Result<Vec<(String, u64)>, DbError> {
        use sqlx::Row;
        let rows = sqlx::query(sql)
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.sql(e))?;
        Ok(rows
            .iter()
            .map(|row| {
                let count: i64 = row.get(1);
                (row.get::<String, _>(0), u64::try_from(count).unwrap_or(0))
            })
            .collect())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// A table of named values a role keeps, such as a chain follower's checkpoint: a role's own
/// SQLite database, or the solver's store (SQLite or PostgreSQL).
pub trait MetaTable: Send + Sync {
    /// A named value, if set.
    fn meta<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<String>, DbError>>;
    /// Sets a named value.
    fn set_meta<'a>(&'a self, key: &'a str, value: &'a str) -> BoxFuture<'a, Result<(), DbError>>;
    /// A corrupt-data error naming this database.
    fn corrupt(&self, what: &str, detail: &str) -> DbError;
}

impl MetaTable for Db {
    fn meta<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<String>, DbError>> {
        Box::pin(Db::meta(self, key))
    }

    fn set_meta<'a>(&'a self, key: &'a str, value: &'a str) -> BoxFuture<'a, Result<(), DbError>> {
        Box::pin(Db::set_meta(self, key, value))
    }

    fn corrupt(&self, what: &str, detail: &str) -> DbError {
        Db::corrupt(self, what, detail)
    }
}

/// Encodes one of our own plain data types as JSON (they always serialise).
pub fn encode<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| unreachable!("plain data serialises"))
}

const META_SCHEMA: &str =
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);";

/// Connects to the PostgreSQL database `url` names (`postgres://USER:PASSWORD@HOST:PORT/DB`,
/// from the setting `setting`) with up to `connections` connections, and applies `schema`
/// (idempotent DDL). Returns the pool and the database's name for errors: server and
/// database, never the password.
pub async fn connect_postgres(
    url: &str,
    setting: &str,
    schema: &str,
    connections: u32,
) -> Result<(sqlx::PgPool, PathBuf), DbError> {
    let options = sqlx::postgres::PgConnectOptions::from_str(url).map_err(|e| DbError::Sql {
        db: PathBuf::from(setting),
        source: redacted(e, url),
    })?;
    let name = PathBuf::from(format!(
        "postgres://{}@{}:{}/{}",
        options.get_username(),
        options.get_host(),
        options.get_port(),
        options.get_database().unwrap_or(options.get_username()),
    ));
    let sql = |source| DbError::Sql {
        db: name.clone(),
        source,
    };
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(connections)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options)
        .await
        .map_err(sql)?;
    sqlx::raw_sql(schema).execute(&pool).await.map_err(sql)?;
    Ok((pool, name))
}

/// `error` with the password of `url` blotted out.
fn redacted(error: sqlx::Error, url: &str) -> sqlx::Error {
    let mut text = error.to_string();
    // postgres://USER:PASSWORD@HOST…: the password runs from the first ':' after the scheme
    // to the last '@'.
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    if let Some((userinfo, _)) = after_scheme.rsplit_once('@') {
        if let Some((_, password)) = userinfo.split_once(':') {
            if !password.is_empty() {
                text = text.replace(password, "***");
            }
        }
    }
    sqlx::Error::Configuration(text.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn corrupt_json_is_an_error_naming_the_database() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("role.db");
        let db = Db::open(&path, "", 1).await.unwrap();
        db.set_meta("k", "v").await.unwrap();
        assert_eq!(db.meta("k").await.unwrap().as_deref(), Some("v"));
        let error = db.decode::<Vec<u8>>("row 7", "{not json").unwrap_err();
        let text = error.to_string();
        assert!(matches!(error, DbError::Corrupt { .. }));
        assert!(
            text.contains(&path.display().to_string()) && text.contains("row 7"),
            "{text}"
        );
    }
}
