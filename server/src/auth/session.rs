//! Server-side sessions in SQLite.
//!
//! The browser holds a random 256-bit token; the table holds its SHA-256, the
//! user, a per-session CSRF token, the idle and absolute deadlines, and at most
//! one flash message.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use rand::RngCore;
use sha2::{Digest, Sha256};
use sqlx::SqlitePool;

use super::users::User;

use crate::{
    clock::now,
    web::{Flash, FlashKind},
};

/// A fresh random token, URL-safe, for cookies and CSRF fields.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The stored form of a cookie token.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A live session, as loaded for a request.
#[derive(Debug, Clone)]
pub struct Session {
    /// SHA-256 of the cookie token (the row key).
    pub id_hash: String,
    /// Who is signed in.
    pub user_id: i64,
    /// The token every state-changing form must carry.
    pub csrf_token: String,
    /// Last request seen, unix seconds.
    pub last_seen_at: i64,
    /// The flash message waiting when the request came in; a page shows it
    /// through [`take_flash`], which clears it.
    pub flash: Option<Flash>,
}

/// Session deadlines, from configuration.
#[derive(Debug, Clone, Copy)]
pub struct Lifetimes {
    /// Seconds without a request before the session ends.
    pub idle_secs: i64,
    /// Seconds after sign-in before the session ends regardless.
    pub absolute_secs: i64,
}

/// Starts a session for `user_id` and returns the cookie token.
///
/// Called at every sign-in, so the session id always changes at login (no
/// fixation): any session the browser had before is deleted by the caller.
pub async fn create(db: &SqlitePool, user_id: i64, lifetimes: Lifetimes) -> sqlx::Result<String> {
    let token = random_token();
    let now = now();
    sqlx::query(
        "INSERT INTO sessions (id_hash, user_id, csrf_token, created_at, last_seen_at, expires_at)
         VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(hash_token(&token))
    .bind(user_id)
    .bind(random_token())
    .bind(now)
    .bind(now)
    .bind(now + lifetimes.absolute_secs)
    .execute(db)
    .await?;
    Ok(token)
}

/// The row [`load`] reads: the session, its person and its flash in one
/// query, since every signed-in request needs all three.
#[derive(sqlx::FromRow)]
struct Row {
    csrf_token: String,
    last_seen_at: i64,
    expires_at: i64,
    flash_kind: Option<String>,
    flash_message: Option<String>,
    #[sqlx(flatten)]
    user: User,
}

/// Loads the live session for a cookie token and its person; expired ones
/// are deleted and reported as absent. Activity is recorded at most once a
/// minute, to keep page views from turning into writes.
pub async fn load(
    db: &SqlitePool,
    token: &str,
    lifetimes: Lifetimes,
) -> sqlx::Result<Option<(Session, User)>> {
    let id_hash = hash_token(token);
    let row: Option<Row> = sqlx::query_as(
        "SELECT s.csrf_token, s.last_seen_at, s.expires_at, s.flash_kind, s.flash_message,
                u.id, u.email, u.display_name, u.is_admin, u.admin_by_claim
         FROM sessions s JOIN users u ON u.id = s.user_id
         WHERE s.id_hash = ?",
    )
    .bind(&id_hash)
    .fetch_optional(db)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let now = now();
    if now >= row.expires_at || now - row.last_seen_at >= lifetimes.idle_secs {
        delete(db, &id_hash).await?;
        return Ok(None);
    }
    if now - row.last_seen_at >= 60 {
        sqlx::query("UPDATE sessions SET last_seen_at = ? WHERE id_hash = ?")
            .bind(now)
            .bind(&id_hash)
            .execute(db)
            .await?;
    }
    let flash = row.flash_message.map(|message| Flash {
        kind: match row.flash_kind.as_deref() {
            Some("success") => FlashKind::Success,
            Some("error") => FlashKind::Error,
            _ => FlashKind::Info,
        },
        message,
    });
    let session = Session {
        id_hash,
        user_id: row.user.id,
        csrf_token: row.csrf_token,
        last_seen_at: row.last_seen_at,
        flash,
    };
    Ok(Some((session, row.user)))
}

/// Ends a session (sign-out, expiry).
pub async fn delete(db: &SqlitePool, id_hash: &str) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM sessions WHERE id_hash = ?")
        .bind(id_hash)
        .execute(db)
        .await?;
    Ok(())
}

/// Deletes every expired session and stale pending sign-in; returns how many
/// sessions went.
pub async fn cleanup(db: &SqlitePool, lifetimes: Lifetimes) -> sqlx::Result<u64> {
    let now = now();
    let sessions = sqlx::query("DELETE FROM sessions WHERE expires_at <= ? OR last_seen_at <= ?")
        .bind(now)
        .bind(now - lifetimes.idle_secs)
        .execute(db)
        .await?
        .rows_affected();
    sqlx::query("DELETE FROM pending_logins WHERE created_at <= ?")
        .bind(now - super::oidc::PENDING_LOGIN_TTL_SECS)
        .execute(db)
        .await?;
    Ok(sessions)
}

/// Leaves a message for the next page this session sees.
pub async fn set_flash(
    db: &SqlitePool,
    id_hash: &str,
    kind: FlashKind,
    message: &str,
) -> sqlx::Result<()> {
    let kind = kind.class();
    sqlx::query("UPDATE sessions SET flash_kind = ?, flash_message = ? WHERE id_hash = ?")
        .bind(kind)
        .bind(message)
        .bind(id_hash)
        .execute(db)
        .await?;
    Ok(())
}

/// Takes the flash message the session had when the request came in: it
/// is shown only if clearing it succeeds, so a message is shown exactly once
/// even when two requests of the session race (the clear matches the
/// message, so one set since is kept for the next page). No transaction: a
/// read transaction that then writes fails at once with "database is
/// locked" when another connection wrote in between.
pub async fn take_flash(db: &SqlitePool, session: &Session) -> sqlx::Result<Option<Flash>> {
    let Some(flash) = &session.flash else {
        return Ok(None);
    };
    let cleared = sqlx::query(
        "UPDATE sessions SET flash_kind = NULL, flash_message = NULL
         WHERE id_hash = ? AND flash_message = ?",
    )
    .bind(&session.id_hash)
    .bind(&flash.message)
    .execute(db)
    .await?;
    // Nothing cleared: another request of the same session showed it.
    Ok((cleared.rows_affected() == 1).then(|| flash.clone()))
}

/// Deletes expired sessions every few minutes, for as long as Berth runs.
pub fn spawn_cleanup(db: SqlitePool, lifetimes: Lifetimes) {
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(std::time::Duration::from_secs(300));
        loop {
            interval.tick().await;
            match cleanup(&db, lifetimes).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(sessions = n, "expired sessions removed"),
                Err(error) => tracing::warn!(%error, "session cleanup failed"),
            }
        }
    });
}
