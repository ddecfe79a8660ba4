//! Opening a role's SQLite database under DATA_DIR: created if missing, write-ahead logged,
//! synced at commit boundaries, waiting (not failing) on a busy lock, schema applied. Every
//! database also gets a `meta` table of named values (such as the block an event stream has
//! read up to).

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::Row;

/// Opens (creating it and its directory if needed) the database at `path` and applies
/// `schema` (idempotent DDL).
pub async fn open(path: &Path, schema: &str, connections: u32) -> Result<SqlitePool, sqlx::Error> {
    if let Some(dir) = path.parent() {
        tokio::fs::create_dir_all(dir).await?;
    }
    let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(Duration::from_secs(10));
    let pool = SqlitePoolOptions::new()
        .max_connections(connections)
        .connect_with(options)
        .await?;
    sqlx::raw_sql(META_SCHEMA).execute(&pool).await?;
    sqlx::raw_sql(schema).execute(&pool).await?;
    Ok(pool)
}

const META_SCHEMA: &str =
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);";

/// A named value from the `meta` table.
pub async fn meta(pool: &SqlitePool, key: &str) -> Result<Option<String>, sqlx::Error> {
    let row = sqlx::query("SELECT value FROM meta WHERE key = ?")
        .bind(key)
        .fetch_optional(pool)
        .await?;
    Ok(row.map(|row| row.get(0)))
}

/// Sets a named value in the `meta` table.
pub async fn set_meta(pool: &SqlitePool, key: &str, value: &str) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)")
        .bind(key)
        .bind(value)
        .execute(pool)
        .await?;
    Ok(())
}
