//! Registry credentials and images, per namespace.
//!
//! A team saves its registry robot account once (the token is sealed before it
//! reaches SQLite, see [`crate::crypto`]); Berth checks it against the registry,
//! registers image references under it, resolves their tags to digests and
//! shows the docker commands to push them. The deploy feature opens a
//! credential with [`credential_for_image`] to write an image pull Secret.

pub mod client;
mod credentials;
pub mod forms;
mod images;
pub mod keys;
mod ops;
pub mod pull;
pub mod reference;
pub mod store;
mod view;

use axum::{
    Router,
    handler::Handler,
    routing::{get, post},
};
use clap::Args;
use secrecy::SecretString;
use sqlx::SqlitePool;

pub use client::{Login, Policy, RegistryClient, RegistryError};

use std::sync::Arc;

use crate::{app::AppState, auth::audited, config::ServeConfig, crypto::Keyring};

/// Which registries Berth offers and may contact.
#[derive(Debug, Clone, Args)]
pub struct RegistryConfig {
    /// The registry offered by default in forms (`host[:port]`).
    #[arg(
        long,
        env = "BERTH_DEFAULT_REGISTRY",
        default_value = "geddes-registry.rcac.purdue.edu"
    )]
    pub default_registry: String,

    /// Registry hosts Berth may contact, comma-separated `host[:port]`.
    /// Default: the default registry only. Link-local and metadata addresses
    /// are refused even when listed; loopback only when listed as such.
    #[arg(long, env = "BERTH_ALLOWED_REGISTRIES", value_delimiter = ',')]
    pub allowed_registries: Vec<String>,

    /// Listed registries to reach over plain http instead of https
    /// (a local test registry), comma-separated `host[:port]`.
    #[arg(long, env = "BERTH_INSECURE_REGISTRIES", value_delimiter = ',')]
    pub insecure_registries: Vec<String>,
}

impl RegistryClient {
    /// The client for the configured allow-list.
    pub fn from_config(config: &RegistryConfig) -> anyhow::Result<Self> {
        let policy = Policy::new(
            &config.default_registry,
            &config.allowed_registries,
            &config.insecure_registries,
        )
        .map_err(|e| anyhow::anyhow!("registry configuration: {e}"))?;
        Self::new(policy)
    }
}

/// Routes of this feature.
pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/namespaces/{ns}/registry",
            get(credentials::credentials_page)
                .post(credentials::credential_create.layer(audited("credential.create"))),
        )
        .route(
            "/namespaces/{ns}/credentials/{id}/replace",
            get(credentials::replace_form)
                .post(credentials::replace_submit.layer(audited("credential.replace"))),
        )
        .route(
            "/namespaces/{ns}/credentials/{id}/delete",
            get(credentials::credential_delete_form)
                .post(credentials::credential_delete.layer(audited("credential.delete"))),
        )
        .route(
            "/namespaces/{ns}/images",
            get(images::images_page).post(images::image_register.layer(audited("image.register"))),
        )
        .route("/namespaces/{ns}/images/{id}", get(images::image_page))
        .route(
            "/namespaces/{ns}/images/{id}/recheck",
            post(images::image_recheck.layer(audited("image.recheck"))),
        )
        .route(
            "/namespaces/{ns}/images/{id}/delete",
            get(images::image_delete_form)
                .post(images::image_delete.layer(audited("image.delete"))),
        )
}

/// At start-up: the master keys, proven to open what the database holds, and
/// the fenced registry client.
pub async fn prepare(
    config: &ServeConfig,
    db: &SqlitePool,
) -> anyhow::Result<(Arc<Keyring>, RegistryClient)> {
    let has_secrets = !store::sealed_samples(db).await?.is_empty();
    let keys = Keyring::for_serve(&config.keys, &config.database, has_secrets)?;
    keys::check_database(db, &keys).await?;
    tracing::info!(active_key = keys.active_id(), keys = ?keys.ids(), "master keys loaded");
    let registry = RegistryClient::from_config(&config.registry)?;
    Ok((Arc::new(keys), registry))
}

/// A credential opened for use. `Debug` prints the token as redacted.
#[derive(Debug, Clone)]
pub struct OpenedCredential {
    /// Registry `host[:port]`.
    pub host: String,
    /// Robot account name.
    pub robot: String,
    /// The robot's token.
    pub token: SecretString,
}

/// The credential an image in `namespace` is pulled with, opened (for the
/// image pull Secret the deploy feature writes). `None` if there is no such
/// image in that namespace; an error if the token does not open.
pub async fn credential_for_image(
    db: &crate::db::Db,
    keys: &Keyring,
    namespace: &str,
    image_id: i64,
) -> anyhow::Result<Option<OpenedCredential>> {
    let Some(image) = store::image(db, namespace, image_id).await? else {
        return Ok(None);
    };
    let Some(credential) = store::credential(db, namespace, image.credential_id).await? else {
        return Ok(None);
    };
    let Some(token) = store::open_token(db, keys, namespace, credential.id).await? else {
        return Ok(None);
    };
    Ok(Some(OpenedCredential {
        host: credential.host,
        robot: credential.robot,
        token,
    }))
}
