//! The home page: what Berth is and what to do next, and each of the person's
//! namespaces with its usage (from the watch caches).

use askama::Template;
use axum::{Router, extract::State, response::Response, routing::get};

use crate::{
    app::AppState,
    auth::CurrentUser,
    error::AppResult,
    namespaces::{
        membership::{self, Role},
        usage::{self, NamespaceUsage},
    },
    registries::{forms, store},
    web::{Layout, render, urls},
};

/// Routes of this feature.
pub fn router() -> Router<AppState> {
    Router::new().route("/", get(home))
}

/// A robot token of one of the person's namespaces that expires within the
/// warning days, or has expired: pulls fail once it does, with no warning
/// from the registry.
struct ExpiringToken {
    namespace: String,
    robot: String,
    host: String,
    /// "expires in 3 days", "expired yesterday".
    text: String,
    /// `warn` or `bad`.
    level: &'static str,
    expires_on: String,
    replace_href: String,
}

async fn expiring_tokens(state: &AppState, namespaces: &[String]) -> AppResult<Vec<ExpiringToken>> {
    let today = time::OffsetDateTime::now_utc().date();
    let until = forms::format_date(today + time::Duration::days(forms::EXPIRY_WARN_DAYS));
    let rows = store::expiring_credentials(&state.db, namespaces, &until).await?;
    Ok(rows
        .into_iter()
        .filter_map(|row| {
            let expires_on = row.expires_on.clone()?;
            let expiry = forms::expiry(&expires_on, today)?;
            Some(ExpiringToken {
                replace_href: urls::credential_replace(&row.namespace, row.id),
                namespace: row.namespace,
                robot: row.robot,
                host: row.host,
                text: expiry.text,
                level: expiry.level,
                expires_on,
            })
        })
        .collect())
}

/// One of the person's namespaces on the dashboard.
struct MyNamespace {
    name: String,
    role: Role,
    /// `None` while the cache has not seen it (just created, or deleted).
    usage: Option<NamespaceUsage>,
}

#[derive(Template)]
#[template(path = "home/index.html")]
struct HomePage {
    layout: Layout,
    namespaces: Vec<MyNamespace>,
    cluster_error: Option<String>,
    expiring: Vec<ExpiringToken>,
    /// "8 hours": how long a downloaded kubeconfig works.
    kubeconfig_validity: String,
}

async fn home(State(state): State<AppState>, user: CurrentUser) -> AppResult<Response> {
    let memberships = membership::namespaces_of(&state.db, &user.email).await?;
    let names: Vec<String> = memberships.iter().map(|(name, _)| name.clone()).collect();
    let expiring = expiring_tokens(&state, &names).await?;
    let (namespaces, cluster_error) = match state.kube.caches() {
        Ok(caches) => (
            memberships
                .into_iter()
                .map(|(name, role)| MyNamespace {
                    usage: caches
                        .namespace(&name)
                        .map(|ns| usage::usage_of(caches, &ns)),
                    name,
                    role,
                })
                .collect(),
            None,
        ),
        Err(error) => (
            memberships
                .into_iter()
                .map(|(name, role)| MyNamespace {
                    name,
                    role,
                    usage: None,
                })
                .collect(),
            Some(error.to_string()),
        ),
    };
    render(&HomePage {
        layout: Layout::for_user(&state.db, &user).await?,
        namespaces,
        cluster_error,
        expiring,
        kubeconfig_validity: crate::kubeconfig::build::validity_words(
            state.config.access.kubeconfig_hours,
        ),
    })
}
