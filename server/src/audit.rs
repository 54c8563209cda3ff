//! The audit log: one row per state change, who made it and how it ended.
//!
//! Writing a row must never be what breaks a user's action, so [`record`]
//! logs a failure instead of returning it.

use sqlx::SqlitePool;

use crate::{clock::now, kube::KubeError};

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

impl<'a> Entry<'a> {
    /// `actor` did `action`, and it happened; say where and on what with
    /// [`Entry::in_namespace`] and [`Entry::on`].
    pub fn new(actor: &'a str, action: &'a str) -> Self {
        Self {
            actor,
            action,
            namespace: None,
            target: None,
            outcome: Outcome::Ok,
            detail: None,
        }
    }

    /// The namespace concerned.
    pub fn in_namespace(self, namespace: &'a str) -> Self {
        Self {
            namespace: Some(namespace),
            ..self
        }
    }

    /// What was acted on.
    pub fn on(self, target: &'a str) -> Self {
        Self {
            target: Some(target),
            ..self
        }
    }

    /// How it ended and why.
    pub fn outcome(self, outcome: Outcome, detail: Option<&'a str>) -> Self {
        Self {
            outcome,
            detail,
            ..self
        }
    }

    /// Appends the entry to the audit log.
    pub async fn record(self, db: &SqlitePool) {
        record(db, self).await;
    }

    /// Appends the entry, ended by `result`: `Ok` with an optional detail,
    /// or the cluster's refusal, classed and worded by the error itself.
    pub async fn record_result<D>(self, db: &SqlitePool, result: Result<D, &KubeError>)
    where
        D: Into<Option<&'a str>>,
    {
        match result {
            Ok(detail) => self.outcome(Outcome::Ok, detail.into()).record(db).await,
            Err(error) => self.record_refusal(db, error).await,
        }
    }

    /// Appends the entry, ended by the cluster's refusal (or failure).
    pub async fn record_refusal(self, db: &SqlitePool, error: &KubeError) {
        let detail = error.to_string();
        self.outcome(error.outcome(), Some(&detail))
            .record(db)
            .await;
    }
}

/// Appends `entry` to the audit log.
pub async fn record(db: &SqlitePool, entry: Entry<'_>) {
    crate::metrics::observe_audited(entry.action, entry.outcome);
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

// ------------------------------------------------------------- the admin page

use askama::Template;
use axum::{
    Router,
    extract::{Query, State},
    response::Response,
    routing::get,
};
use serde::Deserialize;

use crate::{
    app::AppState,
    auth::AdminUser,
    clock,
    error::AppResult,
    web::{Layout, render},
};

/// Rows per page of the audit log.
pub const PAGE_SIZE: i64 = 100;

/// Routes of the audit log page.
pub fn router() -> Router<AppState> {
    Router::new().route("/admin/audit", get(audit_page))
}

/// What the audit page filters by; empty fields do not filter.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Filter {
    /// Actor email (exact, case-insensitive).
    #[serde(default)]
    pub user: String,
    /// Namespace (exact).
    #[serde(default)]
    pub namespace: String,
    /// Action, exact (`member.add`) or a prefix ending in a dot (`member.`).
    #[serde(default)]
    pub action: String,
    /// Only rows with an id below this (the "older" link).
    #[serde(default)]
    pub before: Option<i64>,
}

/// One audit row as the page shows it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Row {
    /// Row id.
    pub id: i64,
    /// Unix seconds.
    pub at: i64,
    /// Who.
    pub actor: String,
    /// What.
    pub action: String,
    /// Where.
    pub namespace: Option<String>,
    /// On what.
    pub target: Option<String>,
    /// `ok`, `denied` or `failed`.
    pub outcome: String,
    /// Why, when it did not go through.
    pub detail: Option<String>,
}

impl Row {
    /// `2026-11-30 14:05 UTC`.
    pub fn when(&self) -> String {
        clock::display(self.at)
    }

    /// For `<time datetime>`.
    pub fn when_rfc3339(&self) -> String {
        clock::rfc3339(self.at)
    }

    /// Badge class for the outcome.
    pub fn badge(&self) -> &'static str {
        match self.outcome.as_str() {
            "ok" => "badge-ok",
            "denied" => "badge-warn",
            _ => "badge-bad",
        }
    }
}

/// The newest rows matching `filter`, at most `limit`.
pub async fn search(db: &SqlitePool, filter: &Filter, limit: i64) -> sqlx::Result<Vec<Row>> {
    let user = filter.user.trim();
    let namespace = filter.namespace.trim();
    let action = filter.action.trim();
    let (action_exact, action_prefix) = match action.strip_suffix('.') {
        Some(prefix) => (String::new(), format!("{prefix}.")),
        None => (action.to_owned(), String::new()),
    };
    sqlx::query_as::<_, Row>(
        "SELECT id, at, actor, action, namespace, target, outcome, detail FROM audit_log
             WHERE (?1 = '' OR actor = ?1 COLLATE NOCASE)
               AND (?2 = '' OR namespace = ?2)
               AND (?3 = '' OR action = ?3)
               AND (?4 = '' OR substr(action, 1, length(?4)) = ?4)
               AND (?5 IS NULL OR id < ?5)
             ORDER BY id DESC LIMIT ?6",
    )
    .bind(user)
    .bind(namespace)
    .bind(action_exact)
    .bind(action_prefix)
    .bind(filter.before)
    .bind(limit)
    .fetch_all(db)
    .await
}

/// Every action recorded so far, for the filter's choices.
pub async fn actions(db: &SqlitePool) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar("SELECT DISTINCT action FROM audit_log ORDER BY action")
        .fetch_all(db)
        .await
}

/// Deletes rows older than `days`; how many went.
pub async fn prune(db: &SqlitePool, days: u32) -> sqlx::Result<u64> {
    let cutoff = now() - i64::from(days) * 86_400;
    let done = sqlx::query("DELETE FROM audit_log WHERE at < ?")
        .bind(cutoff)
        .execute(db)
        .await?;
    Ok(done.rows_affected())
}

/// Prunes the audit log to `days` now and then every hour.
pub fn spawn_retention(db: SqlitePool, days: u32) {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(std::time::Duration::from_secs(3600));
        loop {
            every.tick().await;
            match prune(&db, days).await {
                Ok(0) => {}
                Ok(count) => tracing::info!(count, days, "pruned old audit rows"),
                Err(error) => tracing::warn!(%error, "pruning the audit log failed"),
            }
        }
    });
}

#[derive(Template)]
#[template(path = "admin/audit.html")]
struct AuditPage {
    layout: Layout,
    filter: Filter,
    rows: Vec<Row>,
    actions: Vec<String>,
    older: Option<String>,
    retention_days: u32,
}

/// `GET /admin/audit`: the audit log, newest first, filtered.
async fn audit_page(
    State(state): State<AppState>,
    AdminUser(user): AdminUser,
    Query(filter): Query<Filter>,
) -> AppResult<Response> {
    let rows = search(&state.db, &filter, PAGE_SIZE).await?;
    let older = match rows.last() {
        Some(last) if i64::try_from(rows.len()).unwrap_or(0) == PAGE_SIZE => Some(
            serde_urlencoded::to_string([
                ("user", filter.user.as_str()),
                ("namespace", filter.namespace.as_str()),
                ("action", filter.action.as_str()),
                ("before", &last.id.to_string()),
            ])
            .unwrap_or_default(),
        ),
        _ => None,
    };
    render(&AuditPage {
        layout: Layout::for_user(&state.db, &user).await?,
        actions: actions(&state.db).await?,
        filter,
        rows,
        older,
        retention_days: state.config.kube.audit_retention_days,
    })
}
