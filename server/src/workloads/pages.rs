//! The workload pages of a namespace: the list, and one workload's detail
//! (its views are built in [`super::view`] from what [`super::lookup`] finds
//! in the watch caches).

use axum::{
    extract::{Path, State},
    http::StatusCode,
    response::Response,
};

use super::{
    lookup::{Objects, workloads_in},
    view::{ListPage, notice_of, page, row, show_page},
};
use crate::{app::AppState, auth::NamespaceMember, clock, error::AppResult, web::Layout};

/// `GET /namespaces/{ns}/workloads`: the namespace's workloads.
pub async fn list(
    State(state): State<AppState>,
    NamespaceMember {
        user,
        namespace: ns,
    }: NamespaceMember,
) -> AppResult<Response> {
    let caches = state.kube.caches()?;
    let now = clock::now();
    let rows = workloads_in(caches, &ns)
        .into_iter()
        .map(|d| {
            row(
                &Objects::collect(caches, d),
                now,
                &state.config.expose.public_pool_annotation,
            )
        })
        .collect();
    page(
        StatusCode::OK,
        &ListPage {
            layout: Layout::for_user(&state.db, &user).await?,
            notice: caches.namespace(&ns).and_then(|n| notice_of(&n.metadata)),
            namespace: ns,
            rows,
            domain: state.config.workloads.service_domain.clone(),
            kubeconfig_validity: crate::kubeconfig::build::validity_words(
                state.config.access.kubeconfig_hours,
            ),
        },
    )
}

/// `GET /namespaces/{ns}/workloads/{name}`: one workload.
pub async fn show(
    State(state): State<AppState>,
    NamespaceMember {
        user,
        namespace: ns,
    }: NamespaceMember,
    Path((_, name)): Path<(String, String)>,
) -> AppResult<Response> {
    let data = show_page(&state, &user, &ns, &name, None, None, None).await?;
    page(StatusCode::OK, &data)
}
