//! The SQLite store: connection pool and migrations.
//!
//! SQLite holds only what the cluster does not (users, sessions, memberships,
//! sealed credentials, images, the audit log): the design's "Where truth lives".

use std::{path::Path, str::FromStr, time::Duration};

use anyhow::Context;
use sqlx::{
    SqlitePool,
    migrate::Migrator,
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
};

use crate::config::DatabaseConfig;

/// Migrations from the repository's top-level `migrations/`, embedded in the binary.
pub static MIGRATOR: Migrator = sqlx::migrate!("../migrations");

/// Opens (creating if needed) the database file and applies pending migrations.
pub async fn connect(config: &DatabaseConfig) -> anyhow::Result<SqlitePool> {
    let path = &config.path;
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating the database folder {}", parent.display()))?;
    }
    let pool = open(path).await?;
    MIGRATOR
        .run(&pool)
        .await
        .with_context(|| format!("applying migrations to {}", path.display()))?;
    Ok(pool)
}

async fn open(path: &Path) -> anyhow::Result<SqlitePool> {
    let options = SqliteConnectOptions::from_str("sqlite:")?
        .filename(path)
        .create_if_missing(true)
        // WAL lets page views read while a form submit writes.
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .foreign_keys(true)
        // Writers queue instead of failing with SQLITE_BUSY under a burst of submits.
        .busy_timeout(Duration::from_secs(5));
    // Each connection is a thread of sqlx's and a page cache of SQLite's; on
    // a 2-core node four keep both cores busy (WAL readers run in parallel).
    SqlitePoolOptions::new()
        .max_connections(4)
        .connect_with(options)
        .await
        .with_context(|| format!("opening the database {}", path.display()))
}

/// `berth migrate`: apply migrations and report what was done.
pub async fn migrate_only(config: &DatabaseConfig) -> anyhow::Result<()> {
    let pool = connect(config).await?;
    let applied: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations WHERE success")
        .fetch_one(&pool)
        .await?;
    println!(
        "{}: {applied} migration(s) applied, schema is current",
        config.path.display()
    );
    pool.close().await;
    Ok(())
}

/// Answers whether the database can serve a query (for `/readyz`).
/// A transaction that will write: `BEGIN IMMEDIATE`, so it holds the write
/// lock from the start. A deferred one that reads and then writes is refused
/// at once ("database is locked") when another connection wrote in between,
/// since SQLite cannot upgrade a stale snapshot; the busy timeout does not
/// apply to that.
pub async fn begin_write(
    pool: &SqlitePool,
) -> sqlx::Result<sqlx::Transaction<'static, sqlx::Sqlite>> {
    pool.begin_with("BEGIN IMMEDIATE").await
}

pub async fn ping(pool: &SqlitePool) -> bool {
    sqlx::query_scalar::<_, i64>("SELECT 1")
        .fetch_one(pool)
        .await
        .is_ok()
}
