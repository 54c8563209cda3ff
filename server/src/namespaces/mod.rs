//! Namespaces, their members and quotas (the admin side), and the membership
//! checks every other feature asks before acting in a namespace.
//!
//! Kubernetes holds the truth for namespaces, quotas and RBAC; SQLite holds
//! only who belongs where (mirrored into RoleBindings).
//!
//! [`spec`] parses the forms, [`objects`] builds the Kubernetes objects,
//! [`ops`] applies them and writes the store, [`usage`] and `view` are what
//! pages show, [`admin`] holds the thin handlers.

pub mod admin;
pub mod membership;
pub mod objects;
pub mod ops;
pub mod rebind;
pub mod self_service;
pub mod spec;
pub mod usage;
mod view;

use axum::{
    Router,
    routing::{get, post},
};

use crate::app::AppState;

/// Routes of this feature (all under `/admin`, which only admins reach).
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin", get(admin::admin_index))
        .route(
            "/admin/namespaces",
            get(admin::overview).post(admin::create_submit),
        )
        .route("/admin/namespaces/new", get(admin::new_form))
        .route("/admin/namespaces/{name}", get(admin::show))
        .route(
            "/admin/namespaces/{name}/edit",
            get(admin::edit_form).post(admin::edit_submit),
        )
        .route("/admin/namespaces/{name}/members", post(admin::add_member))
        .route(
            "/admin/namespaces/{name}/members/remove",
            get(admin::remove_member_form).post(admin::remove_member),
        )
        .route(
            "/admin/namespaces/{name}/delete",
            get(admin::delete_form).post(admin::delete_submit),
        )
}
