//! The home page: what Berth is and what to do next, and each of the person's
//! namespaces with its usage (from the watch caches).

use askama::Template;
use axum::{Router, extract::State, response::Response, routing::get};

use crate::{
    app::{
        AppState,
        page::{Layout, render},
    },
    auth::CurrentUser,
    error::AppResult,
    namespaces::{
        membership::{self, Role},
        self_service,
        usage::{self, NamespaceUsage},
    },
};

/// Routes of this feature.
pub fn router() -> Router<AppState> {
    Router::new().route("/", get(home))
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
}

async fn home(State(state): State<AppState>, user: CurrentUser) -> AppResult<Response> {
    self_service::ensure_personal_namespace(&state, &user).await?;
    let memberships = membership::namespaces_of(&state.db, &user.email).await?;
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
    })
}
