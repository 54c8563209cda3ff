//! `berth rebind`: brings the RBAC of namespaces Berth made before it acted
//! as ServiceAccount names in `berth-people` up to date, once, after the
//! upgrade (deploy/README.md). Each namespace gets the `berth-admins`
//! RoleBinding (admins no longer hold rights cluster-wide), and each
//! membership's RoleBinding is re-applied, which moves its subject from the
//! old `berth:<email>` user (whom Berth can no longer impersonate) to the
//! person's ServiceAccount name. Idempotent; made as Berth acting on its own.

use std::time::Duration;

use anyhow::Context;
use clap::Args;
use k8s_openapi::api::rbac::v1::RoleBinding;
use kube::{Api, Client, ResourceExt, api::PostParams};
use sqlx::SqlitePool;

use super::{membership, objects, ops};
use crate::{
    config::{DatabaseConfig, KubeConfig},
    kube::{FIELD_MANAGER, Identity, Kube, KubeError},
};

/// `berth rebind`: what it needs.
#[derive(Debug, Clone, Args)]
pub struct RebindConfig {
    #[command(flatten)]
    pub database: DatabaseConfig,

    #[command(flatten)]
    pub kube: KubeConfig,
}

/// What [`rebind`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Rebound {
    /// Namespaces that got (or already had) their admins' RoleBinding.
    pub namespaces: usize,
    /// Membership RoleBindings re-applied.
    pub members: usize,
    /// Namespaces that could not be rebound, with why.
    pub failed: Vec<String>,
}

/// The command: connect, wait for the caches, rebind, report.
pub async fn run(config: &RebindConfig) -> anyhow::Result<()> {
    let db = crate::db::connect(&config.database).await?;
    let kube = Kube::connect(&config.kube).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while !kube.is_ready() {
        anyhow::ensure!(
            kube.is_connected() && tokio::time::Instant::now() < deadline,
            "the cluster caches did not sync"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let result = rebind(&kube, &db).await;
    db.close().await;
    let done = result?;
    println!(
        "rebound {} namespace(s) and {} membership(s)",
        done.namespaces, done.members
    );
    for failure in &done.failed {
        println!("not rebound: {failure}");
    }
    anyhow::ensure!(
        done.failed.is_empty(),
        "{} namespace(s) could not be rebound; run it again",
        done.failed.len()
    );
    Ok(())
}

/// Rebinds every namespace Berth manages (see the module docs). A namespace
/// that fails is reported and the rest are still done.
pub async fn rebind(kube: &Kube, db: &SqlitePool) -> anyhow::Result<Rebound> {
    let client = kube.client_for(&Identity::system())?;
    let caches = kube.caches()?;
    let mut done = Rebound::default();
    for namespace in caches.namespaces.all() {
        if namespace.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let name = namespace.name_any();
        match rebind_one(&client, db, &name).await {
            Ok(members) => {
                done.namespaces += 1;
                done.members += members;
            }
            Err(error) => {
                tracing::warn!(namespace = name, "{error:#}");
                done.failed.push(format!("{name}: {error:#}"));
            }
        }
    }
    Ok(done)
}

async fn rebind_one(client: &Client, db: &SqlitePool, name: &str) -> anyhow::Result<usize> {
    let bindings: Api<RoleBinding> = Api::namespaced(client.clone(), name);
    let created = bindings
        .create(
            &PostParams {
                field_manager: Some(FIELD_MANAGER.to_owned()),
                ..PostParams::default()
            },
            &objects::admins_binding(name),
        )
        .await
        .map(|_| ())
        .map_err(KubeError::from);
    match created {
        Err(KubeError::Api { code: 409, .. }) | Ok(()) => {}
        Err(error) => return Err(error).context("the admins' binding"),
    }
    let members = membership::members_of(db, name).await?;
    for member in &members {
        ops::until_authorized(|| ops::bind_member(client, name, &member.email, member.role))
            .await
            .with_context(|| format!("the binding of {}", member.email))?;
    }
    Ok(members.len())
}
