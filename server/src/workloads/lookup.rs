//! Finding Berth's workloads in the watch caches: a namespace's Deployments,
//! one by name (404 when it is not Berth's), its pods, and everything about
//! it the pages read ([`Objects`]). Never a request to the apiserver.

use std::sync::Arc;

use k8s_openapi::{
    api::{
        apps::v1::{Deployment, ReplicaSet},
        core::v1::{Event, Pod, Service},
    },
    apimachinery::pkg::apis::meta::v1::Time,
};
use kube::ResourceExt;

use super::build;
use crate::{
    error::{AppError, AppResult},
    kube::{Caches, MANAGED_BY},
};

/// Whether Berth made the object (its managed-by label).
fn is_managed(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> bool {
    meta.labels
        .as_ref()
        .and_then(|l| l.get(MANAGED_BY.0))
        .is_some_and(|v| v == MANAGED_BY.1)
}

/// Berth's Deployments in `ns`, by name.
pub fn workloads_in(caches: &Caches, ns: &str) -> Vec<Arc<Deployment>> {
    let mut list: Vec<_> = caches
        .deployments
        .in_namespace(ns)
        .into_iter()
        .filter(|d| is_managed(&d.metadata))
        .collect();
    list.sort_by_key(|d| d.name_any());
    list
}

/// The Deployment of workload `name` in `ns`, if Berth manages it. Berth
/// does not show or touch Deployments it did not make.
pub fn find_workload(caches: &Caches, ns: &str, name: &str) -> AppResult<Arc<Deployment>> {
    caches
        .deployments
        .get(ns, name)
        .filter(|d| is_managed(&d.metadata))
        .ok_or_else(|| AppError::NotFound(format!("There is no workload {name} in {ns}.")))
}

/// The pods of workload `name` (label `app.kubernetes.io/name=<name>`), oldest first.
pub fn pods_of(caches: &Caches, ns: &str, name: &str) -> Vec<Arc<Pod>> {
    let mut pods: Vec<_> = caches
        .pods
        .in_namespace(ns)
        .into_iter()
        .filter(|p| p.labels().get(build::NAME_LABEL).map(String::as_str) == Some(name))
        .collect();
    pods.sort_by_key(|p| (created(&p.metadata.creation_timestamp), p.name_any()));
    pods
}

pub(super) fn created(time: &Option<Time>) -> i64 {
    time.as_ref().map_or(0, |t| t.0.as_second())
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
        let ns = deployment.namespace().unwrap_or_default();
        let name = deployment.name_any();
        let pods = pods_of(caches, &ns, &name);
        let replica_sets: Vec<_> = caches
            .replica_sets
            .in_namespace(&ns)
            .into_iter()
            .filter(|rs| {
                rs.owner_references()
                    .iter()
                    .any(|o| o.kind == "Deployment" && o.name == name)
            })
            .collect();
        let service = caches.services.get(&ns, &name);
        let about = |kind: &str, object: &str| match kind {
            "Deployment" | "Service" => object == name,
            "ReplicaSet" => replica_sets.iter().any(|rs| rs.name_any() == object),
            "Pod" => pods.iter().any(|p| p.name_any() == object),
            _ => false,
        };
        let events = caches
            .events
            .in_namespace(&ns)
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
