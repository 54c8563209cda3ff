//! The audit log: one row per state change, who made it and how it ended.
//!
//! Writing a row must never be what breaks a user's action, so [`record`]
//! logs a failure instead of returning it.

use sqlx::SqlitePool;

use crate::clock::now;

/// How an audited action ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// It happened.
    Ok,
    /// Berth or Kubernetes refused it.
    Denied,
    /// It was attempted and failed.
    Failed,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Denied => "denied",
            Self::Failed => "failed",
        }
    }
}

/// One audit row. Never put a secret in any field.
#[derive(Debug, Clone)]
pub struct Entry<'a> {
    /// Email of who acted, or `system`.
    pub actor: &'a str,
    /// What was done, dotted: `sign_in`, `credential.create`, `workload.deploy`.
    pub action: &'a str,
    /// The Kubernetes namespace concerned, if any.
    pub namespace: Option<&'a str>,
    /// What was acted on: a name, never a token.
    pub target: Option<&'a str>,
    /// How it ended.
    pub outcome: Outcome,
    /// Why it was denied or failed, in plain words.
    pub detail: Option<&'a str>,
}

/// Appends `entry` to the audit log.
pub async fn record(db: &SqlitePool, entry: Entry<'_>) {
    let result = sqlx::query(
        "INSERT INTO audit_log (at, actor, action, namespace, target, outcome, detail)
         VALUES (?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(now())
    .bind(entry.actor)
    .bind(entry.action)
    .bind(entry.namespace)
    .bind(entry.target)
    .bind(entry.outcome.as_str())
    .bind(entry.detail)
    .execute(db)
    .await;
    if let Err(error) = result {
        tracing::error!(%error, action = entry.action, "writing the audit log failed");
    }
}
