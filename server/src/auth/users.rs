//! Queries on the `users` table.

use sqlx::SqlitePool;

use crate::{clock::now, db::Db};

/// A person who has signed in at least once.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct User {
    /// Row id.
    pub id: i64,
    /// Email address (the identity Berth shows and audits).
    pub email: String,
    /// Name to show.
    pub display_name: String,
    /// Admin, as decided at their latest sign-in.
    pub is_admin: bool,
    /// Admin by the identity provider's word at their latest sign-in (the
    /// rest of `is_admin` is the configured list, checked at each request).
    pub admin_by_claim: bool,
}

/// Records a sign-in: creates the user or refreshes their email, name and admin
/// flags. Returns the user's id.
pub async fn upsert_on_sign_in(
    db: &Db,
    issuer: &str,
    subject: &str,
    email: &str,
    display_name: &str,
    is_admin: bool,
    admin_by_claim: bool,
) -> sqlx::Result<i64> {
    let now = now();
    let id = sqlx::query_scalar(
        "INSERT INTO users (issuer, subject, email, display_name, is_admin, admin_by_claim, first_login_at, last_login_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (issuer, subject) DO UPDATE SET
             email = excluded.email,
             display_name = excluded.display_name,
             is_admin = excluded.is_admin,
             admin_by_claim = excluded.admin_by_claim,
             last_login_at = excluded.last_login_at
         RETURNING id",
    )
    .bind(issuer)
    .bind(subject)
    .bind(email)
    .bind(display_name)
    .bind(is_admin)
    .bind(admin_by_claim)
    .bind(now)
    .bind(now)
    .fetch_one(db.pool())
    .await?;
    // The person's other sessions show their new name and admin flag.
    super::session::forget_all(db);
    Ok(id)
}

/// Binds `email` to the account (`issuer`, `subject`) if nobody holds it
/// yet; whether this account holds it now. An address once used by one
/// account is never handed to another, so changing one's email at the
/// identity provider to someone else's takes over nothing.
pub async fn claim_email(
    db: &SqlitePool,
    issuer: &str,
    subject: &str,
    email: &str,
) -> sqlx::Result<bool> {
    sqlx::query(
        "INSERT INTO email_owners (email, issuer, subject, bound_at) VALUES (?, ?, ?, ?)
         ON CONFLICT (email) DO NOTHING",
    )
    .bind(email)
    .bind(issuer)
    .bind(subject)
    .bind(now())
    .execute(db)
    .await?;
    let owner: Option<(String, String)> =
        sqlx::query_as("SELECT issuer, subject FROM email_owners WHERE email = ?")
            .bind(email)
            .fetch_optional(db)
            .await?;
    Ok(owner.is_some_and(|(i, s)| i == issuer && s == subject))
}

/// Ends every session of the people signed in as `email`; how many ended.
pub async fn end_sessions(db: &Db, email: &str) -> sqlx::Result<u64> {
    let done =
        sqlx::query("DELETE FROM sessions WHERE user_id IN (SELECT id FROM users WHERE email = ?)")
            .bind(email)
            .execute(db.pool())
            .await?;
    super::session::forget_all(db);
    Ok(done.rows_affected())
}
