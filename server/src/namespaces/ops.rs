//! The namespace feature's cluster and store side effects and lookups:
//! creating a namespace with its quota, defaults and NetworkPolicies, saving
//! and deleting one, binding and unbinding members, and reading a managed
//! namespace and its limits from the watch caches (or answering 404).
//!
//! Everything here acts through the client it is given, so the apiserver
//! checks each write against the person it impersonates. The courses feature
//! and sign-in's self-service namespace use these too.

use k8s_openapi::api::{
    core::v1::{LimitRange, Namespace, ResourceQuota},
    networking::v1::NetworkPolicy,
    rbac::v1::RoleBinding,
};
use kube::{
    Api, Client,
    api::{DeleteParams, PostParams},
};

use super::{
    membership::Role,
    objects,
    spec::{self, Limits, NamespaceSpec},
};
use crate::{
    app::AppState,
    error::{AppError, AppResult},
    kube::{Caches, FIELD_MANAGER, KubeError, apply},
};

/// Creates the namespace, then applies its quota and defaults; if those fail
/// the namespace is removed again, so there is never one without its quota.
pub async fn create_namespace(client: &Client, spec: &NamespaceSpec) -> Result<(), KubeError> {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    // POST, not apply: apply would quietly adopt a namespace that exists
    // already and is not Berth's.
    namespaces
        .create(
            &PostParams {
                field_manager: Some(FIELD_MANAGER.to_owned()),
                ..PostParams::default()
            },
            &objects::namespace(&spec.name, &spec.description),
        )
        .await?;
    // The admins' rights in the new namespace come from its own RoleBinding
    // (admins hold none cluster-wide but `create`), written first; the
    // apiserver's authorizer sees it a moment later, hence the retry.
    let bound = Api::<RoleBinding>::namespaced(client.clone(), &spec.name)
        .create(
            &PostParams {
                field_manager: Some(FIELD_MANAGER.to_owned()),
                ..PostParams::default()
            },
            &objects::admins_binding(&spec.name),
        )
        .await
        .map(|_| ())
        .map_err(KubeError::from);
    let limits = match bound {
        Ok(()) => match until_authorized(|| apply_limits(client, &spec.name, &spec.limits)).await {
            Ok(()) => apply_network_policies(client, &spec.name).await,
            Err(error) => Err(error),
        },
        Err(error) => Err(error),
    };
    if let Err(error) = limits {
        if let Err(cleanup) = namespaces
            .delete(&spec.name, &DeleteParams::default())
            .await
        {
            tracing::error!(%cleanup, namespace = spec.name, "removing a half-created namespace failed");
        }
        return Err(error);
    }
    Ok(())
}

/// Runs `attempt` until it is not refused with 403, for at most a few
/// seconds: a RoleBinding just written takes a moment to be authorized.
pub async fn until_authorized<F, Fut>(mut attempt: F) -> Result<(), KubeError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), KubeError>>,
{
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match attempt().await {
            Err(error) if error.is_denied() && tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            other => return other,
        }
    }
}

/// Applies the namespace's default NetworkPolicies.
pub async fn apply_network_policies(client: &Client, namespace: &str) -> Result<(), KubeError> {
    let policies: Api<NetworkPolicy> = Api::namespaced(client.clone(), namespace);
    for policy in objects::network_policies(namespace) {
        apply(&policies, &policy).await?;
    }
    Ok(())
}

/// Applies the quota and the container defaults (removing the LimitRange
/// when no defaults are set).
pub async fn apply_limits(
    client: &Client,
    namespace: &str,
    limits: &Limits,
) -> Result<(), KubeError> {
    let quotas: Api<ResourceQuota> = Api::namespaced(client.clone(), namespace);
    apply(&quotas, &objects::resource_quota(namespace, limits)).await?;
    let ranges: Api<LimitRange> = Api::namespaced(client.clone(), namespace);
    match objects::limit_range(namespace, limits) {
        Some(range) => {
            apply(&ranges, &range).await?;
        }
        None => match ranges
            .delete(objects::LIMIT_RANGE_NAME, &DeleteParams::default())
            .await
        {
            Ok(_) => {}
            Err(error) => {
                let error = KubeError::from(error);
                if !error.is_not_found() {
                    return Err(error);
                }
            }
        },
    }
    Ok(())
}

/// Saves an existing namespace's description, quota and defaults.
pub async fn update_namespace(client: &Client, spec: &NamespaceSpec) -> Result<(), KubeError> {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    apply(
        &namespaces,
        &objects::namespace(&spec.name, &spec.description),
    )
    .await?;
    apply_limits(client, &spec.name, &spec.limits).await
}

/// Deletes the namespace; Kubernetes removes everything in it.
pub async fn delete_namespace(client: &Client, name: &str) -> Result<(), KubeError> {
    Api::<Namespace>::all(client.clone())
        .delete(name, &DeleteParams::default())
        .await?;
    Ok(())
}

/// Binds `email` as `role` in `namespace`, then removes a binding for the
/// other role (roleRef cannot change, so a new role is a new binding; the
/// new one comes first so access never lapses).
pub async fn bind_member(
    client: &Client,
    namespace: &str,
    email: &str,
    role: Role,
) -> Result<(), KubeError> {
    let bindings: Api<RoleBinding> = Api::namespaced(client.clone(), namespace);
    apply(&bindings, &objects::role_binding(namespace, email, role)).await?;
    let other = match role {
        Role::Member => Role::Owner,
        Role::Owner => Role::Member,
    };
    delete_binding(&bindings, &objects::role_binding_name(email, other)).await
}

/// Removes every binding Berth made for `email` in `namespace`.
pub async fn unbind_member(client: &Client, namespace: &str, email: &str) -> Result<(), KubeError> {
    let bindings: Api<RoleBinding> = Api::namespaced(client.clone(), namespace);
    for role in [Role::Member, Role::Owner] {
        delete_binding(&bindings, &objects::role_binding_name(email, role)).await?;
    }
    Ok(())
}

async fn delete_binding(bindings: &Api<RoleBinding>, name: &str) -> Result<(), KubeError> {
    crate::kube::delete_opt(bindings, name).await.map(drop)
}

/// The quota and defaults as `key=value, …`, for the audit log.
pub(super) fn quota_summary(limits: &Limits) -> String {
    spec::all_settings()
        .filter_map(|s| limits.get(s).map(|v| format!("{}={v}", s.key)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The managed namespace, or 404.
pub(super) fn managed_namespace(
    state: &AppState,
    name: &str,
) -> AppResult<std::sync::Arc<Namespace>> {
    let caches = state.kube.caches()?;
    caches
        .namespace(name)
        .ok_or_else(|| AppError::NotFound(format!("There is no Berth namespace called {name}.")))
}

/// The quota and defaults the watch caches hold for `name`.
pub(super) fn current_limits(caches: &Caches, name: &str) -> Limits {
    let quota = caches.quotas.get(name, objects::QUOTA_NAME);
    let range = caches.limit_ranges.get(name, objects::LIMIT_RANGE_NAME);
    objects::limits_from_cluster(quota.as_deref(), range.as_deref())
}
