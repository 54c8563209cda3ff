//! Watch-backed caches (kube-rs reflectors) of what pages show, so a page view
//! never turns into requests to the apiserver. Each cache is filled by a
//! background task that re-lists and re-watches with backoff on errors.

use std::{fmt::Debug, future::ready};

use futures::{FutureExt, StreamExt};
use k8s_openapi::{
    api::{
        apps::v1::{Deployment, ReplicaSet},
        core::v1::{Event, LimitRange, Namespace, Pod, ResourceQuota, Service},
    },
    apimachinery::pkg::apis::meta::v1::ObjectMeta,
};
use kube::{
    Api, Client, Resource, ResourceExt,
    runtime::{WatchStreamExt, reflector, reflector::Store, watcher},
};
use serde::de::DeserializeOwned;

use super::MANAGED_BY_SELECTOR;

/// The caches. Cloning shares them.
#[derive(Clone)]
pub struct Caches {
    /// Namespaces Berth manages (label `app.kubernetes.io/managed-by=berth`).
    pub namespaces: Store<Namespace>,
    /// ResourceQuotas Berth manages, in every namespace.
    pub quotas: Store<ResourceQuota>,
    /// LimitRanges Berth manages, in every namespace.
    pub limit_ranges: Store<LimitRange>,
    /// Every Deployment (workload counts now, workload pages later).
    pub deployments: Store<Deployment>,
    /// Every Pod (counts and status).
    pub pods: Store<Pod>,
    /// Services Berth manages (addresses of exposed workloads).
    pub services: Store<Service>,
    /// ReplicaSets of Berth's Deployments (they inherit the managed-by label
    /// from the pod template): a quota refusal shows up only in their Events.
    pub replica_sets: Store<ReplicaSet>,
    /// Events (core/v1) about everything but Nodes, in every namespace.
    pub events: Store<Event>,
}

impl Caches {
    /// Starts one watch task per cache with Berth's own (non-impersonating)
    /// client: its ServiceAccount may list and watch exactly these.
    pub fn start(client: Client) -> Self {
        let managed = watcher::Config::default().labels(MANAGED_BY_SELECTOR);
        Self {
            namespaces: reflect(Api::all(client.clone()), managed.clone(), "namespaces"),
            quotas: reflect(Api::all(client.clone()), managed.clone(), "resourcequotas"),
            limit_ranges: reflect(Api::all(client.clone()), managed.clone(), "limitranges"),
            deployments: reflect(
                Api::all(client.clone()),
                watcher::Config::default(),
                "deployments",
            ),
            pods: reflect(Api::all(client.clone()), watcher::Config::default(), "pods"),
            services: reflect(Api::all(client.clone()), managed.clone(), "services"),
            replica_sets: reflect(Api::all(client.clone()), managed, "replicasets"),
            // Events carry no labels to select Berth's by, and a watch cannot
            // be limited to a set of namespaces; the apiserver's event TTL
            // (one hour by default) bounds how many there are. Node events
            // are the bulk of a cluster's own chatter and never shown.
            events: reflect(
                Api::all(client),
                watcher::Config::default().fields("involvedObject.kind!=Node"),
                "events",
            ),
        }
    }

    /// Every cache has completed its first list.
    pub fn is_ready(&self) -> bool {
        is_ready(&self.namespaces)
            && is_ready(&self.quotas)
            && is_ready(&self.limit_ranges)
            && is_ready(&self.deployments)
            && is_ready(&self.pods)
            && is_ready(&self.services)
            && is_ready(&self.replica_sets)
            && is_ready(&self.events)
    }

    /// Waits (up to `timeout`) until every cache has its first list; for
    /// start-up and tests.
    pub async fn wait_until_ready(&self, timeout: std::time::Duration) -> bool {
        let all = async {
            let _ = self.namespaces.wait_until_ready().await;
            let _ = self.quotas.wait_until_ready().await;
            let _ = self.limit_ranges.wait_until_ready().await;
            let _ = self.deployments.wait_until_ready().await;
            let _ = self.pods.wait_until_ready().await;
            let _ = self.services.wait_until_ready().await;
            let _ = self.replica_sets.wait_until_ready().await;
            let _ = self.events.wait_until_ready().await;
        };
        tokio::time::timeout(timeout, all).await.is_ok() && self.is_ready()
    }

    /// A managed namespace by name.
    pub fn namespace(&self, name: &str) -> Option<std::sync::Arc<Namespace>> {
        self.namespaces.find(|ns| ns.name_any() == name)
    }

    /// Waits (up to `timeout`) until the cache has seen namespace `name`, so a
    /// redirect right after creating it does not land on a "not found" page.
    pub async fn wait_for_namespace(&self, name: &str, timeout: std::time::Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        while self.namespace(name).is_none() {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        true
    }

    /// Objects of a namespaced cache that live in `namespace`.
    pub fn in_namespace<K>(store: &Store<K>, namespace: &str) -> Vec<std::sync::Arc<K>>
    where
        K: Resource<DynamicType = ()> + Clone + 'static,
    {
        store.state_filter(|o| o.meta().namespace.as_deref() == Some(namespace))
    }
}

fn is_ready<K>(store: &Store<K>) -> bool
where
    K: Resource<DynamicType = ()> + Clone + 'static,
{
    matches!(store.wait_until_ready().now_or_never(), Some(Ok(())))
}

/// Spawns the watch that keeps a store current; managed fields are dropped
/// first since nothing reads them and they are most of an object's size.
fn reflect<K>(api: Api<K>, config: watcher::Config, what: &'static str) -> Store<K>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    let (reader, writer) = reflector::store();
    let stream = watcher(api, config)
        .default_backoff()
        .modify(|object: &mut K| strip(object.meta_mut()))
        .reflect(writer)
        .applied_objects()
        .for_each(move |event| {
            if let Err(error) = event {
                tracing::warn!(%error, cache = what, "watching the cluster failed; retrying");
            }
            ready(())
        });
    tokio::spawn(stream);
    reader
}

fn strip(meta: &mut ObjectMeta) {
    meta.managed_fields = None;
}
