//! Memberships: who may act in which namespace, and as what.
//!
//! Berth checks these before it acts, but they are not the last word: each
//! membership is mirrored into a RoleBinding, and every write to the cluster
//! impersonates the user, so the apiserver refuses what RBAC does not allow
//! even if a check here had a bug.

use std::{collections::HashMap, sync::Arc};

use sqlx::SqlitePool;

use crate::{
    app::AppState,
    audit::{self, Outcome},
    auth::CurrentUser,
    db::{Db, Memoized},
    error::AppError,
};

/// A person's memberships by email, as [`namespaces_of`] last read them
/// (every page of a namespace asks); every membership write forgets them.
struct Memberships;

impl Memoized for Memberships {
    type Key = String;
    type Value = Vec<(String, Role)>;
}

/// [`member_counts`]' answer (the admin namespace list asks on each view).
struct MemberCounts;

impl Memoized for MemberCounts {
    type Key = ();
    type Value = Arc<HashMap<String, i64>>;
}

/// What a person may do in a namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// Deploys and manages workloads, images and credentials.
    Member,
    /// A member who can also add and remove members.
    Owner,
}

impl Role {
    /// The stored and displayed name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Member => "member",
            Self::Owner => "owner",
        }
    }

    /// Parses the stored name.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "member" => Some(Self::Member),
            "owner" => Some(Self::Owner),
            _ => None,
        }
    }
}

/// The role `email` holds in `namespace`, if any.
pub async fn role_of(db: &Db, email: &str, namespace: &str) -> sqlx::Result<Option<Role>> {
    Ok(namespaces_of(db, email)
        .await?
        .into_iter()
        .find_map(|(ns, role)| (ns == namespace).then_some(role)))
}

/// The namespaces `email` belongs to, with their role, by name.
pub async fn namespaces_of(db: &Db, email: &str) -> sqlx::Result<Vec<(String, Role)>> {
    let read = async {
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT namespace, role FROM memberships WHERE email = ? ORDER BY namespace",
        )
        .bind(email)
        .fetch_all(db.pool())
        .await?;
        Ok(rows
            .into_iter()
            .filter_map(|(ns, role)| Role::parse(&role).map(|r| (ns, r)))
            .collect())
    };
    db.memo::<Memberships>()
        .get_or_read(email.to_owned(), read)
        .await
}

/// Lets the request through if `user` holds at least `needed` in `namespace`
/// (admins hold every role everywhere); otherwise a 404, so namespaces a
/// person does not belong to are not revealed.
pub async fn require(
    db: &Db,
    user: &CurrentUser,
    namespace: &str,
    needed: Role,
) -> Result<(), AppError> {
    if user.is_admin {
        return Ok(());
    }
    match role_of(db, &user.email, namespace).await? {
        Some(role) if role >= needed => Ok(()),
        Some(_) => Err(AppError::Forbidden(format!(
            "You need to be an {} of {namespace} to do this.",
            needed.as_str()
        ))),
        None => Err(AppError::NotFound(format!(
            "There is no namespace {namespace} that you belong to."
        ))),
    }
}

/// One person's membership, as the members list shows it.
#[derive(Debug, Clone)]
pub struct Member {
    /// Email (as added; people may not have signed in yet).
    pub email: String,
    /// Owner or member.
    pub role: Role,
    /// Who added them.
    pub added_by: String,
    /// When, unix seconds.
    pub added_at: i64,
}

/// The members of `namespace`, owners first.
pub async fn members_of(db: &SqlitePool, namespace: &str) -> sqlx::Result<Vec<Member>> {
    let rows: Vec<(String, String, String, i64)> = sqlx::query_as(
        "SELECT email, role, added_by, added_at FROM memberships WHERE namespace = ?
         ORDER BY role = 'owner' DESC, email",
    )
    .bind(namespace)
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(email, role, added_by, added_at)| {
            Role::parse(&role).map(|role| Member {
                email,
                role,
                added_by,
                added_at,
            })
        })
        .collect())
}

/// How many members each namespace has.
pub async fn member_counts(db: &Db) -> sqlx::Result<Arc<HashMap<String, i64>>> {
    let read = async {
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT namespace, COUNT(*) FROM memberships GROUP BY namespace")
                .fetch_all(db.pool())
                .await?;
        Ok(Arc::new(rows.into_iter().collect()))
    };
    db.memo::<MemberCounts>().get_or_read((), read).await
}

/// After a membership write of `email` (or of everyone, for `None`) is
/// committed: the memos' answers may be stale.
fn changed(db: &Db, email: Option<&str>) {
    let memberships = db.memo::<Memberships>();
    match email {
        Some(email) => memberships.forget(&email.to_owned()),
        None => memberships.forget_all(),
    }
    db.memo::<MemberCounts>().forget_all();
}

/// Adds `email` to `namespace` as `role`, or changes their role.
pub async fn upsert(
    db: &Db,
    namespace: &str,
    email: &str,
    role: Role,
    added_by: &str,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO memberships (namespace, email, role, added_by, added_at) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (namespace, email) DO UPDATE SET role = excluded.role",
    )
    .bind(namespace)
    .bind(email)
    .bind(role.as_str())
    .bind(added_by)
    .bind(crate::clock::now())
    .execute(db.pool())
    .await?;
    changed(db, Some(email));
    Ok(())
}

/// Removes `email` from `namespace`; whether there was such a membership.
pub async fn remove(db: &Db, namespace: &str, email: &str) -> sqlx::Result<bool> {
    let done = sqlx::query("DELETE FROM memberships WHERE namespace = ? AND email = ?")
        .bind(namespace)
        .bind(email)
        .execute(db.pool())
        .await?;
    changed(db, Some(email));
    Ok(done.rows_affected() > 0)
}

/// Forgets everything Berth stored about a namespace: its memberships and
/// its registry credentials and images. Called when Berth deletes a
/// namespace and again when it creates one (the name may have been used by a
/// namespace deleted behind Berth's back), so nothing outlives its namespace.
pub async fn forget_namespace(db: &Db, namespace: &str) -> sqlx::Result<()> {
    remove_namespace(db, namespace).await?;
    let credentials = crate::registries::store::forget_namespace(db, namespace).await?;
    if credentials > 0 {
        tracing::info!(
            namespace,
            credentials,
            "forgot the credentials of a namespace"
        );
    }
    Ok(())
}

/// Forgets every membership of a deleted namespace.
pub async fn remove_namespace(db: &Db, namespace: &str) -> sqlx::Result<u64> {
    let done = sqlx::query("DELETE FROM memberships WHERE namespace = ?")
        .bind(namespace)
        .execute(db.pool())
        .await?;
    changed(db, None);
    Ok(done.rows_affected())
}

/// Whether `name` can be a namespace at all (a DNS-1123 label); checked before
/// anything is looked up, so a path segment never reaches a query unchecked.
pub fn valid_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    let ok = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes.first().is_some_and(ok)
        && bytes.last().is_some_and(ok)
        && bytes.iter().all(|b| ok(b) || *b == b'-')
}

/// The check every namespace page makes: a valid name, and `user` a member
/// (or admin) of it. When `audit` names an action (and optionally its target),
/// a refusal is recorded as `denied`.
pub async fn authorize(
    state: &AppState,
    user: &CurrentUser,
    namespace: &str,
    audit: Option<(&str, Option<&str>)>,
) -> Result<(), AppError> {
    if !valid_name(namespace) {
        return Err(AppError::NotFound(format!(
            "There is no namespace {namespace}: namespace names are lowercase letters, digits and dashes."
        )));
    }
    let result = require(&state.db, user, namespace, Role::Member).await;
    if let (Err(error), Some((action, target))) = (&result, audit) {
        audit::record(
            &state.db,
            audit::Entry {
                actor: &user.email,
                action,
                namespace: Some(namespace),
                target,
                outcome: Outcome::Denied,
                detail: Some(&error.to_string()),
            },
        )
        .await;
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_names_are_dns_labels() {
        for good in ["cs101", "a", "team-7", &"a".repeat(63)] {
            assert!(valid_name(good), "{good}");
        }
        for bad in ["", "-a", "a-", "A", "a_b", "a.b", &"a".repeat(64), "../x"] {
            assert!(!valid_name(bad), "{bad}");
        }
    }
}
