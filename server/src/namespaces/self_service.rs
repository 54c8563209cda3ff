//! Self-service (off unless `--self-service-namespaces`): a person's first
//! visit after their first sign-in gives them a personal namespace with the
//! default quota, owned by them.
//!
//! Berth makes it as the account `berth-people:berth-system` in the admin
//! group, through impersonation like every other write, so its
//! ServiceAccount keeps no write rights.

use sqlx::SqlitePool;

use super::{membership, ops, spec::NamespaceSpec};
use crate::{
    app::AppState,
    audit::{self},
    kube::{Identity, KubeError},
};

/// Audit action of a self-service namespace; also marks that it was tried,
/// so a failure is not retried on every page view.
pub const ACTION: &str = "namespace.self_service";

/// The personal namespace name for `email`: `u-` and the mailbox part,
/// cleaned to a DNS label.
pub fn personal_name(email: &str) -> String {
    let local = email.split('@').next().unwrap_or_default().to_lowercase();
    let mut name = String::from("u-");
    for c in local.chars() {
        let c = if c.is_ascii_alphanumeric() { c } else { '-' };
        if !(c == '-' && name.ends_with('-')) {
            name.push(c);
        }
    }
    name.truncate(63);
    name.trim_end_matches('-').to_owned()
}

async fn tried_before(db: &SqlitePool, email: &str) -> sqlx::Result<bool> {
    let found: Option<i64> =
        sqlx::query_scalar("SELECT 1 FROM audit_log WHERE actor = ? AND action = ? LIMIT 1")
            .bind(email)
            .bind(ACTION)
            .fetch_optional(db)
            .await?;
    Ok(found.is_some())
}

/// Makes the personal namespace at sign-in if self-service is on, the person
/// belongs to no namespace yet and it was never tried for them (so a failure
/// is not retried at every sign-in). Failures are logged and audited, never
/// an error page: the sign-in still works.
pub async fn ensure_personal_namespace(state: &AppState, email: &str) -> sqlx::Result<()> {
    if !state.config.kube.self_service_namespaces || !state.kube.is_connected() {
        return Ok(());
    }
    if !membership::namespaces_of(&state.db, email)
        .await?
        .is_empty()
        || tried_before(&state.db, email).await?
    {
        return Ok(());
    }
    let email = email.to_lowercase();
    let spec = NamespaceSpec {
        name: personal_name(&email),
        description: format!("Personal namespace of {email}"),
        limits: (*state.default_limits).clone(),
    };
    let result = async {
        let client = state.kube.client_for(&Identity::system())?;
        ops::create_namespace(&client, &spec).await?;
        ops::bind_member(&client, &spec.name, &email, membership::Role::Owner).await?;
        Ok::<(), KubeError>(())
    }
    .await;
    if result.is_ok() {
        // The namespace is new, so nothing stored under its name is its.
        membership::forget_namespace(&state.db, &spec.name).await?;
        membership::upsert(
            &state.db,
            &spec.name,
            &email,
            membership::Role::Owner,
            "system",
        )
        .await?;
    }
    if let Err(error) = &result {
        tracing::warn!(email, %error, "creating a personal namespace failed");
    }
    audit::Entry::new(&email, ACTION)
        .in_namespace(&spec.name)
        .on(&spec.name)
        .record_result(&state.db, result.as_ref().map(|()| None::<&str>))
        .await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn personal_names_are_dns_labels() {
        assert_eq!(personal_name("alice@purdue.edu"), "u-alice");
        assert_eq!(personal_name("Bob.Smith_2@purdue.edu"), "u-bob-smith-2");
        let long = personal_name(&format!("{}@x.edu", "a".repeat(100)));
        assert!(long.len() <= 63);
        assert!(super::super::spec::check_namespace_name(&personal_name("x..y--@z.edu")).is_ok());
    }
}
