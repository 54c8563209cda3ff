//! Finding Berth's workloads in the watch caches: a namespace's Deployments,
//! one by name (404 when it is not Berth's), its pods, and everything about
//! it the pages read ([`Objects`]). Only [`live_workload`], for the pages
//! that read a Deployment's whole spec, asks the apiserver.

use std::sync::Arc;

use k8s_openapi::api::{apps::v1 as apps, core::v1::Service};

use crate::{
    app::AppState,
    auth::CurrentUser,
    error::{AppError, AppResult},
    kube::{
        Caches, KubeError,
        cached::{self, Deployment, Event, Pod, ReplicaSet},
    },
};

/// Berth's Deployments in `ns`, by name.
pub fn workloads_in(caches: &Caches, ns: &str) -> Vec<Arc<Deployment>> {
    let mut list: Vec<_> = caches
        .deployments
        .in_namespace(ns)
        .into_iter()
        .filter(|d| d.managed)
        .collect();
    list.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    list
}

/// The Deployment of workload `name` in `ns`, if Berth manages it. Berth
/// does not show or touch Deployments it did not make.
pub fn find_workload(caches: &Caches, ns: &str, name: &str) -> AppResult<Arc<Deployment>> {
    caches
        .deployments
        .get(ns, name)
        .filter(|d| d.managed)
        .ok_or_else(|| AppError::NotFound(format!("There is no workload {name} in {ns}.")))
}

/// The whole Deployment of workload `name` in `ns`, read from the apiserver
/// as `user` (so RBAC decides), slimmed ([`cached::slimmed`]): for the pages
/// that read all of its spec. 404 unless the cache knows it as Berth's.
pub async fn live_workload(
    state: &AppState,
    user: &CurrentUser,
    ns: &str,
    name: &str,
) -> AppResult<apps::Deployment> {
    find_workload(state.kube.caches()?, ns, name)?;
    let api =
        kube::Api::<apps::Deployment>::namespaced(state.kube.client_for(&user.identity())?, ns);
    match api.get_opt(name).await.map_err(KubeError::from)? {
        Some(whole) => Ok(cached::slimmed(whole)),
        // Deleted since the cache last heard.
        None => Err(AppError::NotFound(format!(
            "There is no workload {name} in {ns}."
        ))),
    }
}

/// The pods of workload `name` (label `app.kubernetes.io/name=<name>`), oldest first.
pub fn pods_of(caches: &Caches, ns: &str, name: &str) -> Vec<Arc<Pod>> {
    let mut pods: Vec<_> = caches
        .pods
        .in_namespace(ns)
        .into_iter()
        .filter(|p| p.workload.as_deref() == Some(name))
        .collect();
    pods.sort_by(|a, b| {
        (a.metadata.created, &a.metadata.name).cmp(&(b.metadata.created, &b.metadata.name))
    });
    pods
}

/// Everything about one workload the pages need, from the caches.
pub struct Objects {
    /// The Deployment.
    pub deployment: Arc<Deployment>,
    /// Its pods.
    pub pods: Vec<Arc<Pod>>,
    /// Its ReplicaSets.
    pub replica_sets: Vec<Arc<ReplicaSet>>,
    /// Its Service, if exposed.
    pub service: Option<Arc<Service>>,
    /// Events about any of them.
    pub events: Vec<Arc<Event>>,
}

impl Objects {
    /// Collects the workload's objects from the caches.
    pub fn collect(caches: &Caches, deployment: Arc<Deployment>) -> Self {
        let ns = deployment.metadata.namespace.as_str();
        let name = deployment.metadata.name.as_str();
        let pods = pods_of(caches, ns, name);
        let replica_sets: Vec<_> = caches
            .replica_sets
            .in_namespace(ns)
            .into_iter()
            .filter(|rs| rs.deployment.as_deref() == Some(name))
            .collect();
        let service = caches.services.get(ns, name);
        let about = |kind: &str, object: &str| match kind {
            "Deployment" | "Service" => object == name,
            "ReplicaSet" => replica_sets.iter().any(|rs| rs.metadata.name == object),
            "Pod" => pods.iter().any(|p| p.metadata.name == object),
            _ => false,
        };
        let events = caches
            .events
            .in_namespace(ns)
            .into_iter()
            .filter(|e| {
                about(
                    e.involved_object.kind.as_deref().unwrap_or_default(),
                    e.involved_object.name.as_deref().unwrap_or_default(),
                )
            })
            .collect();
        Self {
            deployment,
            pods,
            replica_sets,
            service,
            events,
        }
    }
}
