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
    db::{Db, Memoized},
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
#[derive(sqlx::FromRow, Clone)]
pub struct Row {
    csrf_token: String,
    last_seen_at: i64,
    expires_at: i64,
    flash_kind: Option<String>,
    flash_message: Option<String>,
    #[sqlx(flatten)]
    user: User,
}

/// Session rows by the hash of their token, as [`load`] last read them:
/// every write to a session row or its person forgets it (see [`Memo`]).
///
/// [`Memo`]: crate::db::Memo
pub struct Sessions;

impl Memoized for Sessions {
    type Key = String;
    type Value = Row;
}

/// Loads the live session for a cookie token and its person; expired ones
/// are deleted and reported as absent. Activity is recorded at most once a
/// minute, to keep page views from turning into writes.
pub async fn load(
    db: &Db,
    token: &str,
    lifetimes: Lifetimes,
) -> sqlx::Result<Option<(Session, User)>> {
    let id_hash = hash_token(token);
    let memo = db.memo::<Sessions>();
    let row = match memo.get(&id_hash) {
        Some(row) => row,
        None => {
            let generation = memo.generation();
            let row: Option<Row> = sqlx::query_as(
                "SELECT s.csrf_token, s.last_seen_at, s.expires_at, s.flash_kind,
                        s.flash_message, u.id, u.email, u.display_name, u.is_admin,
                        u.admin_by_claim
                 FROM sessions s JOIN users u ON u.id = s.user_id
                 WHERE s.id_hash = ?",
            )
            .bind(&id_hash)
            .fetch_optional(db.pool())
            .await?;
            let Some(row) = row else {
                return Ok(None);
            };
            memo.put(id_hash.clone(), generation, row.clone());
            row
        }
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
            .execute(db.pool())
            .await?;
        memo.forget(&id_hash);
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
pub async fn delete(db: &Db, id_hash: &str) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM sessions WHERE id_hash = ?")
        .bind(id_hash)
        .execute(db.pool())
        .await?;
    db.memo::<Sessions>().forget(&id_hash.to_owned());
    Ok(())
}

/// A write changed people or sessions in bulk (sign-in updating a person,
/// ending someone's sessions, the cleanup): forget every kept session.
pub fn forget_all(db: &Db) {
    db.memo::<Sessions>().forget_all();
}

/// Deletes every expired session and stale pending sign-in; returns how many
/// sessions went.
pub async fn cleanup(db: &Db, lifetimes: Lifetimes) -> sqlx::Result<u64> {
    let now = now();
    let sessions = sqlx::query("DELETE FROM sessions WHERE expires_at <= ? OR last_seen_at <= ?")
        .bind(now)
        .bind(now - lifetimes.idle_secs)
        .execute(db.pool())
        .await?
        .rows_affected();
    if sessions > 0 {
        forget_all(db);
    }
    sqlx::query("DELETE FROM pending_logins WHERE created_at <= ?")
        .bind(now - super::oidc::PENDING_LOGIN_TTL_SECS)
        .execute(db.pool())
        .await?;
    Ok(sessions)
}

/// Leaves a message for the next page this session sees.
pub async fn set_flash(db: &Db, id_hash: &str, kind: FlashKind, message: &str) -> sqlx::Result<()> {
    let kind = kind.class();
    sqlx::query("UPDATE sessions SET flash_kind = ?, flash_message = ? WHERE id_hash = ?")
        .bind(kind)
        .bind(message)
        .bind(id_hash)
        .execute(db.pool())
        .await?;
    db.memo::<Sessions>().forget(&id_hash.to_owned());
    Ok(())
}

/// Takes the flash message the session had when the request came in: it
/// is shown only if clearing it succeeds, so a message is shown exactly once
/// even when two requests of the session race (the clear matches the
/// message, so one set since is kept for the next page). No transaction: a
/// read transaction that then writes fails at once with "database is
/// locked" when another connection wrote in between.
pub async fn take_flash(db: &Db, session: &Session) -> sqlx::Result<Option<Flash>> {
    let Some(flash) = &session.flash else {
        return Ok(None);
    };
    let cleared = sqlx::query(
        "UPDATE sessions SET flash_kind = NULL, flash_message = NULL
         WHERE id_hash = ? AND flash_message = ?",
    )
    .bind(&session.id_hash)
    .bind(&flash.message)
    .execute(db.pool())
    .await?;
    db.memo::<Sessions>().forget(&session.id_hash);
    // Nothing cleared: another request of the same session showed it.
    Ok((cleared.rows_affected() == 1).then(|| flash.clone()))
}

/// Deletes expired sessions every few minutes, for as long as Berth runs.
pub fn spawn_cleanup(db: Db, lifetimes: Lifetimes) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{auth::users, config::DatabaseConfig};

    const LIFETIMES: Lifetimes = Lifetimes {
        idle_secs: 600,
        absolute_secs: 3600,
    };

    async fn current(db: &Db, token: &str) -> Option<(Session, String)> {
        load(db, token, LIFETIMES)
            .await
            .expect("loading")
            .map(|(session, user)| (session, user.display_name))
    }

    /// Each write path is seen by the very next load, though loads are
    /// answered from the memo.
    #[tokio::test]
    async fn every_write_is_seen_by_the_next_load() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let pool = crate::db::connect(&DatabaseConfig {
            path: dir.path().join("berth.db"),
        })
        .await
        .expect("the store");
        let db = Db::new(pool);
        let sign_in = |name: &'static str| {
            let db = db.clone();
            async move {
                users::upsert_on_sign_in(&db, "iss", "sub", "ann@purdue.edu", name, false, false)
                    .await
                    .expect("the person")
            }
        };
        let user = sign_in("Ann").await;
        let token = create(&db, user, LIFETIMES).await.expect("a session");
        let (session, name) = current(&db, &token).await.expect("live");
        assert_eq!((name.as_str(), session.flash.is_none()), ("Ann", true));
        assert!(
            current(&db, &token).await.is_some(),
            "a second load, from the memo"
        );

        set_flash(&db, &session.id_hash, FlashKind::Success, "Saved.")
            .await
            .expect("flash");
        let (session, _) = current(&db, &token).await.expect("live");
        assert_eq!(
            session.flash.as_ref().map(|f| f.message.as_str()),
            Some("Saved.")
        );
        assert!(take_flash(&db, &session).await.expect("take").is_some());
        assert!(
            current(&db, &token).await.expect("live").0.flash.is_none(),
            "taken"
        );

        sign_in("Ann Lee").await;
        assert_eq!(
            current(&db, &token).await.expect("live").1,
            "Ann Lee",
            "renamed"
        );

        assert_eq!(
            users::end_sessions(&db, "ann@purdue.edu")
                .await
                .expect("end"),
            1
        );
        assert!(current(&db, &token).await.is_none(), "ended");

        let token = create(&db, user, LIFETIMES).await.expect("a session");
        let (session, _) = load(&db, &token, LIFETIMES)
            .await
            .expect("loading")
            .expect("live");
        delete(&db, &session.id_hash).await.expect("sign-out");
        assert!(
            load(&db, &token, LIFETIMES)
                .await
                .expect("loading")
                .is_none(),
            "signed out"
        );
    }
}
