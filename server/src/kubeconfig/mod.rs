//! A kubeconfig scoped to the person: one download from a namespace's card,
//! holding a short-lived ServiceAccount token of the person's own account in
//! `berth-people` — the name Berth impersonates and every membership
//! RoleBinding names — so `kubectl` with it can do exactly what the person's
//! memberships allow, and nothing once it expires.
//!
//! The account and its token are made as the person (impersonated, like every
//! write): Berth's own ServiceAccount holds no new right, and the admission
//! fence (deploy/rbac/fence.yaml) lets a person create and mint a token only
//! for their own account name.

pub mod build;
pub mod ops;
pub mod pages;

use std::path::PathBuf;

use axum::{Router, handler::Handler, routing::post};
use clap::Args;
use url::Url;

use crate::{app::AppState, auth::audited};

/// What goes into a downloaded kubeconfig.
#[derive(Debug, Clone, Args)]
pub struct AccessConfig {
    /// The apiserver URL people's kubectl reaches (written into downloaded
    /// kubeconfigs). Default: the address Berth itself talks to.
    #[arg(long, env = "BERTH_KUBECONFIG_SERVER")]
    pub kubeconfig_server: Option<Url>,

    /// PEM file with the CA certificate(s) of that apiserver. Default: the CA
    /// Berth itself trusts for the cluster.
    #[arg(long, env = "BERTH_KUBECONFIG_CA")]
    pub kubeconfig_ca: Option<PathBuf>,

    /// How long a downloaded kubeconfig's token is valid, in hours (1 to 168).
    #[arg(
        long,
        env = "BERTH_KUBECONFIG_HOURS",
        default_value_t = 8,
        value_parser = clap::value_parser!(u32).range(1..=168)
    )]
    pub kubeconfig_hours: u32,
}

/// Routes of this feature.
pub fn router() -> Router<AppState> {
    Router::new().route(
        "/namespaces/{ns}/kubeconfig",
        post(pages::download.layer(audited("kubeconfig.download"))),
    )
}
