//! Watch-backed caches of what pages show, so a page view never turns into
//! requests to the apiserver, and never into a scan of the cluster.
//!
//! What is kept grows with what Berth manages, not with the cluster:
//! - every watch but the Events' selects Berth's label
//!   (`app.kubernetes.io/managed-by=berth`; Berth's pod templates carry it, so
//!   its Pods and ReplicaSets do too);
//! - Events carry no labels, and a watch cannot be limited to a set of
//!   namespaces, so they are filtered as they arrive: only those in Berth's
//!   namespaces about the kinds pages explain, at most [`EVENTS_PER_OBJECT`]
//!   per object and [`EVENTS_PER_NAMESPACE`] per namespace, none older than
//!   [`EVENT_MAX_AGE`];
//! - the kinds there are thousands of are kept as Berth's own compact types
//!   with only what pages read (see `cached`); the others lose their managed
//!   fields (see `Kept`);
//! - objects are indexed by namespace and name, so a lookup is by key and a
//!   namespace's objects are found without looking at anyone else's.
//!
//! Each cache is kept by a background task that lists, then watches, and
//! lists again with backoff after an error; until a new list is complete the
//! old state keeps being served.

use std::{
    collections::{BTreeMap, HashMap},
    fmt::Debug,
    sync::{Arc, RwLock},
};

use futures::StreamExt;
use k8s_openapi::{
    api::core::v1::{LimitRange, Namespace, ResourceQuota, Service},
    apimachinery::pkg::apis::meta::v1::ObjectMeta,
};
use kube::{
    Api, Client, Resource,
    runtime::{WatchStreamExt, watcher},
};
use serde::de::DeserializeOwned;
use tokio::sync::watch;

use super::{
    MANAGED_BY_SELECTOR,
    cached::{self, Deployment, Event, Pod, ReplicaSet},
};

/// Events kept per object (a workload page shows the newest 20).
pub const EVENTS_PER_OBJECT: usize = 20;
/// Events kept per namespace.
pub const EVENTS_PER_NAMESPACE: usize = 200;
/// Events older than this are dropped (the apiserver's own TTL is one hour).
pub const EVENT_MAX_AGE: i64 = 3600;
/// Objects per page of a cache's (re)list. Each page arrives whole, before it
/// is slimmed, and all caches list at once at start: kube's default of 500
/// full Pods (managed fields and all) per page, eight caches at a time, made
/// start-up's transient memory several times what the caches keep.
const LIST_PAGE_SIZE: u32 = 100;
/// The kinds whose Events pages explain.
const EVENT_KINDS: [&str; 4] = ["Pod", "ReplicaSet", "Deployment", "Service"];

/// The caches. Cloning shares them.
#[derive(Clone)]
pub struct Caches {
    /// Namespaces Berth manages.
    pub namespaces: Cache<Namespace>,
    /// ResourceQuotas Berth manages.
    pub quotas: Cache<ResourceQuota>,
    /// LimitRanges Berth manages.
    pub limit_ranges: Cache<LimitRange>,
    /// Berth's Deployments.
    pub deployments: Cache<Deployment>,
    /// Pods of Berth's Deployments.
    pub pods: Cache<Pod>,
    /// Services Berth manages (addresses of exposed workloads).
    pub services: Cache<Service>,
    /// ReplicaSets of Berth's Deployments: a quota refusal shows up only in
    /// their Events, and the newest one tells how far a rollout got.
    pub replica_sets: Cache<ReplicaSet>,
    /// Recent Events in Berth's namespaces, bounded (see the module comment).
    pub events: Cache<Event>,
}

impl Caches {
    /// Starts one watch task per cache with Berth's own (non-impersonating)
    /// client: its ServiceAccount may list and watch exactly these.
    pub fn start(client: Client) -> Self {
        let managed = || watcher::Config::default().labels(MANAGED_BY_SELECTOR);
        let namespaces = Cache::new();
        namespaces.spawn(Api::all(client.clone()), managed(), "namespaces", None);
        let caches = Self {
            quotas: Cache::watching(Api::all(client.clone()), managed(), "resourcequotas"),
            limit_ranges: Cache::watching(Api::all(client.clone()), managed(), "limitranges"),
            deployments: Cache::watching(Api::all(client.clone()), managed(), "deployments"),
            pods: Cache::watching(Api::all(client.clone()), managed(), "pods"),
            services: Cache::watching(Api::all(client.clone()), managed(), "services"),
            replica_sets: Cache::watching(Api::all(client.clone()), managed(), "replicasets"),
            events: Cache::new(),
            namespaces,
        };
        // Node events are most of a cluster's own chatter; the rest is
        // filtered by namespace, which needs the namespaces listed first.
        let ours = caches.namespaces.clone();
        let events = caches.events.clone();
        tokio::spawn(async move {
            ours.wait_until_ready().await;
            let keep: Filter<cached::wire::Event> = Arc::new(move |event| {
                let ns = event.metadata.namespace.as_deref().unwrap_or_default();
                ours.get("", ns).is_some()
                    && EVENT_KINDS.contains(&event.involved_object.kind.as_deref().unwrap_or(""))
            });
            events.spawn(
                Api::all(client),
                watcher::Config::default().fields("involvedObject.kind!=Node"),
                "events",
                Some(keep),
            );
        });
        caches
    }

    /// Every cache has completed its first list.
    pub fn is_ready(&self) -> bool {
        self.namespaces.is_ready()
            && self.quotas.is_ready()
            && self.limit_ranges.is_ready()
            && self.deployments.is_ready()
            && self.pods.is_ready()
            && self.services.is_ready()
            && self.replica_sets.is_ready()
            && self.events.is_ready()
    }

    /// Waits (up to `timeout`) until every cache has its first list; for
    /// start-up and tests.
    pub async fn wait_until_ready(&self, timeout: std::time::Duration) -> bool {
        let all = async {
            self.namespaces.wait_until_ready().await;
            self.quotas.wait_until_ready().await;
            self.limit_ranges.wait_until_ready().await;
            self.deployments.wait_until_ready().await;
            self.pods.wait_until_ready().await;
            self.services.wait_until_ready().await;
            self.replica_sets.wait_until_ready().await;
            self.events.wait_until_ready().await;
        };
        tokio::time::timeout(timeout, all).await.is_ok()
    }

    /// A managed namespace by name.
    pub fn namespace(&self, name: &str) -> Option<Arc<Namespace>> {
        self.namespaces.get("", name)
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

    /// How many objects each cache holds, for logs and benchmarks.
    pub fn sizes(&self) -> [(&'static str, usize); 8] {
        [
            ("namespaces", self.namespaces.len()),
            ("resourcequotas", self.quotas.len()),
            ("limitranges", self.limit_ranges.len()),
            ("deployments", self.deployments.len()),
            ("pods", self.pods.len()),
            ("services", self.services.len()),
            ("replicasets", self.replica_sets.len()),
            ("events", self.events.len()),
        ]
    }
}

/// Objects of one kind, by namespace (`""` for cluster-scoped ones) and name.
/// Cloning shares it.
pub struct Cache<K> {
    index: Arc<RwLock<Index<K>>>,
    ready: watch::Sender<bool>,
}

impl<K> Clone for Cache<K> {
    fn clone(&self) -> Self {
        Self {
            index: self.index.clone(),
            ready: self.ready.clone(),
        }
    }
}

type Filter<W> = Arc<dyn Fn(&W) -> bool + Send + Sync>;

impl<K: Kept> Cache<K> {
    fn new() -> Self {
        Self {
            index: Arc::default(),
            ready: watch::Sender::new(false),
        }
    }

    fn watching(api: Api<K::Wire>, config: watcher::Config, what: &'static str) -> Self {
        let cache = Self::new();
        cache.spawn(api, config, what, None);
        cache
    }

    /// A cache filled by hand, for tests of what reads it.
    pub fn from_objects(objects: impl IntoIterator<Item = K::Wire>) -> Self {
        let cache = Self::new();
        {
            let mut index = cache.write();
            for object in objects {
                index.insert(K::keep(object));
            }
        }
        cache.ready.send_replace(true);
        cache
    }

    /// The object `name` in `namespace` (`""` for cluster-scoped kinds).
    pub fn get(&self, namespace: &str, name: &str) -> Option<Arc<K>> {
        self.read().by_namespace.get(namespace)?.get(name).cloned()
    }

    /// The objects in `namespace`, by name.
    pub fn in_namespace(&self, namespace: &str) -> Vec<Arc<K>> {
        self.read()
            .by_namespace
            .get(namespace)
            .map(|objects| objects.values().cloned().collect())
            .unwrap_or_default()
    }

    /// How many objects are in `namespace`.
    pub fn count_in(&self, namespace: &str) -> usize {
        self.read()
            .by_namespace
            .get(namespace)
            .map_or(0, BTreeMap::len)
    }

    /// Every object, by namespace and name.
    pub fn all(&self) -> Vec<Arc<K>> {
        self.read()
            .by_namespace
            .values()
            .flat_map(|objects| objects.values().cloned())
            .collect()
    }

    /// How many objects it holds.
    pub fn len(&self) -> usize {
        self.read().len
    }

    /// Changes whenever what it holds does: an answer derived from it at
    /// one version holds as long as the version is the same.
    pub fn version(&self) -> u64 {
        self.read().version
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the first list is complete.
    pub fn is_ready(&self) -> bool {
        *self.ready.borrow()
    }

    /// Returns once the first list is complete.
    pub async fn wait_until_ready(&self) {
        let mut ready = self.ready.subscribe();
        // Only the cache's own task sends, and it lives as long as the
        // sender this cache holds: the wait cannot fail.
        let _ = ready.wait_for(|ready| *ready).await;
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Index<K>> {
        // A panic while holding the lock leaves the index as consistent as
        // any single insert or removal leaves it; keep serving it.
        self.index
            .read()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Index<K>> {
        self.index
            .write()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// Spawns the task that keeps the cache current; with a filter, only
    /// objects it accepts are kept.
    fn spawn(
        &self,
        api: Api<K::Wire>,
        config: watcher::Config,
        what: &'static str,
        keep: Option<Filter<K::Wire>>,
    ) {
        let cache = self.clone();
        let config = config.page_size(LIST_PAGE_SIZE);
        tokio::spawn(async move {
            let mut relist: Option<Index<K>> = None;
            let mut events = std::pin::pin!(watcher(api, config).default_backoff());
            while let Some(event) = events.next().await {
                let accepts = |object: &K::Wire| keep.as_ref().is_none_or(|keep| keep(object));
                match event {
                    Ok(watcher::Event::Init) => relist = Some(Index::default()),
                    Ok(watcher::Event::InitApply(object)) => {
                        if let Some(index) = relist.as_mut()
                            && accepts(&object)
                        {
                            index.insert(K::keep(object));
                        }
                    }
                    Ok(watcher::Event::InitDone) => {
                        if let Some(mut index) = relist.take() {
                            let mut kept = cache.write();
                            index.version = kept.version + 1;
                            *kept = index;
                        }
                        cache.ready.send_replace(true);
                    }
                    Ok(watcher::Event::Apply(object)) => {
                        if accepts(&object) {
                            cache.write().insert(K::keep(object));
                        } else {
                            // It may have been kept before it changed.
                            cache.write().remove(object.meta());
                        }
                    }
                    Ok(watcher::Event::Delete(object)) => cache.write().remove(object.meta()),
                    Err(error) => {
                        tracing::warn!(%error, cache = what, "watching the cluster failed; retrying");
                    }
                }
            }
        });
    }
}

struct Index<K> {
    by_namespace: HashMap<String, BTreeMap<String, Arc<K>>>,
    len: usize,
    /// Bumped by every change: what was derived from an older version may
    /// be stale.
    version: u64,
}

impl<K> Default for Index<K> {
    fn default() -> Self {
        Self {
            by_namespace: HashMap::new(),
            len: 0,
            version: 0,
        }
    }
}

impl<K: Kept> Index<K> {
    fn insert(&mut self, object: K) {
        self.version += 1;
        let (namespace, name) = object.key();
        let (namespace, name) = (namespace.to_owned(), name.to_owned());
        let objects = self.by_namespace.entry(namespace).or_default();
        if objects.insert(name, Arc::new(object)).is_none() {
            self.len += 1;
        }
        let before = objects.len();
        K::bound(objects);
        self.len -= before - objects.len();
    }

    fn remove(&mut self, meta: &ObjectMeta) {
        self.version += 1;
        let namespace = meta.namespace.as_deref().unwrap_or_default();
        let name = meta.name.as_deref().unwrap_or_default();
        if let Some(objects) = self.by_namespace.get_mut(namespace) {
            if objects.remove(name).is_some() {
                self.len -= 1;
            }
            if objects.is_empty() {
                self.by_namespace.remove(namespace);
            }
        }
    }
}

/// What a cache keeps of each object of its kind, and how many per
/// namespace.
pub trait Kept: Clone + Debug + Send + Sync + Sized + 'static {
    /// The kind as a watch decodes it.
    type Wire: Resource<DynamicType = ()> + Clone + Debug + DeserializeOwned + Send + Sync + 'static;

    /// What is kept of one object.
    fn keep(object: Self::Wire) -> Self;

    /// Its namespace (`""` for cluster-scoped kinds) and name.
    fn key(&self) -> (&str, &str);

    /// Drops objects of one namespace beyond what is kept (Events only).
    fn bound(_objects: &mut BTreeMap<String, Arc<Self>>) {}
}

/// The kinds kept as k8s-openapi has them, but their managed fields: there
/// are a few per namespace.
macro_rules! kept_whole {
    ($($kind:ty),*) => {$(
        impl Kept for $kind {
            type Wire = Self;

            fn keep(mut object: Self) -> Self {
                object.metadata.managed_fields = None;
                object
            }

            fn key(&self) -> (&str, &str) {
                (
                    self.metadata.namespace.as_deref().unwrap_or_default(),
                    self.metadata.name.as_deref().unwrap_or_default(),
                )
            }
        }
    )*};
}

kept_whole!(Namespace, ResourceQuota, LimitRange, Service);

/// The kinds kept as Berth's compact types (see `cached`).
macro_rules! kept_compact {
    ($($kind:ty => $wire:ty),*) => {$(
        impl Kept for $kind {
            type Wire = $wire;

            fn keep(object: $wire) -> Self {
                object.into()
            }

            fn key(&self) -> (&str, &str) {
                (&self.metadata.namespace, &self.metadata.name)
            }
        }
    )*};
}

kept_compact!(
    Deployment => k8s_openapi::api::apps::v1::Deployment,
    Pod => cached::wire::Pod,
    ReplicaSet => cached::wire::ReplicaSet
);

impl Kept for Event {
    type Wire = cached::wire::Event;

    fn keep(object: Self::Wire) -> Self {
        object.into()
    }

    fn key(&self) -> (&str, &str) {
        (&self.metadata.namespace, &self.metadata.name)
    }

    /// The newest per object and per namespace, none too old.
    fn bound(objects: &mut BTreeMap<String, Arc<Self>>) {
        let now = crate::clock::now();
        objects.retain(|_, e| now - event_seconds(e) <= EVENT_MAX_AGE);
        let mut newest: Vec<(i64, String, String)> = objects
            .iter()
            .map(|(key, e)| {
                let about = format!(
                    "{}/{}",
                    e.involved_object.kind.as_deref().unwrap_or_default(),
                    e.involved_object.name.as_deref().unwrap_or_default()
                );
                (event_seconds(e), about, key.clone())
            })
            .collect();
        if newest.len() <= EVENTS_PER_OBJECT.min(EVENTS_PER_NAMESPACE) {
            return;
        }
        newest.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.2.cmp(&b.2)));
        let mut per_object: HashMap<&str, usize> = HashMap::new();
        let mut kept = 0;
        for (_, about, key) in &newest {
            let seen = per_object.entry(about).or_default();
            *seen += 1;
            if *seen > EVENTS_PER_OBJECT || kept >= EVENTS_PER_NAMESPACE {
                objects.remove(key);
            } else {
                kept += 1;
            }
        }
    }
}

/// When an Event last happened, in seconds since the epoch.
pub fn event_seconds(e: &Event) -> i64 {
    e.series
        .as_ref()
        .and_then(|s| s.last_observed_time.as_ref().map(|t| t.0.as_second()))
        .or_else(|| e.last_timestamp.as_ref().map(|t| t.0.as_second()))
        .or_else(|| e.event_time.as_ref().map(|t| t.0.as_second()))
        .unwrap_or(e.metadata.created)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// The types of the conditions kept.
    fn unmet(conditions: &Option<Vec<cached::Condition>>) -> Vec<&str> {
        conditions
            .iter()
            .flatten()
            .map(|c| c.type_.as_str())
            .collect()
    }

    fn event(name: &str, about: &str, seconds_ago: i64) -> Event {
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "ns"},
            "involvedObject": {"kind": "Pod", "name": about, "uid": "uid"},
            "lastTimestamp": crate::clock::rfc3339(crate::clock::now() - seconds_ago),
            "reason": "Pulled",
        }))
        .expect("an event")
    }

    #[test]
    fn objects_are_found_by_namespace_and_name_and_removed() {
        let mut index = Index::default();
        let pod = |ns: &str, name: &str| -> Pod {
            serde_json::from_value(json!({"metadata": {"namespace": ns, "name": name}}))
                .expect("a pod")
        };
        index.insert(pod("a", "p1"));
        index.insert(pod("a", "p2"));
        index.insert(pod("b", "p1"));
        index.insert(pod("a", "p1"));
        assert_eq!(index.len, 3);
        assert_eq!(index.by_namespace["a"].len(), 2);
        let meta = |ns: &str, name: &str| ObjectMeta {
            namespace: Some(ns.to_owned()),
            name: Some(name.to_owned()),
            ..ObjectMeta::default()
        };
        index.remove(&meta("a", "p1"));
        index.remove(&meta("a", "p2"));
        index.remove(&meta("a", "never"));
        assert_eq!(index.len, 1);
        assert!(!index.by_namespace.contains_key("a"), "empty namespaces go");
    }

    #[test]
    fn events_are_bounded_per_object_per_namespace_and_by_age() {
        let mut index = Index::default();
        for i in 0..30 {
            index.insert(event(&format!("busy-{i:02}"), "busy", i));
        }
        index.insert(event("old", "quiet", EVENT_MAX_AGE + 60));
        index.insert(event("recent", "quiet", 5));
        let kept = &index.by_namespace["ns"];
        let busy = kept.keys().filter(|k| k.starts_with("busy-")).count();
        assert_eq!(busy, EVENTS_PER_OBJECT, "the newest per object");
        assert!(kept.contains_key("busy-00") && !kept.contains_key("busy-29"));
        assert!(kept.contains_key("recent") && !kept.contains_key("old"));
        assert_eq!(index.len, EVENTS_PER_OBJECT + 1);

        for i in 0..(EVENTS_PER_NAMESPACE + 50) {
            index.insert(event(&format!("e-{i:03}"), &format!("pod-{i}"), 1));
        }
        assert_eq!(index.by_namespace["ns"].len(), EVENTS_PER_NAMESPACE);
        assert_eq!(index.len, EVENTS_PER_NAMESPACE);
    }

    #[test]
    fn pods_keep_what_pages_read_and_nothing_else() {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {
                "name": "web-1", "namespace": "cs101",
                "labels": {"app.kubernetes.io/name": "web"},
                "annotations": {"big": "x".repeat(4096)},
                "managedFields": [{"manager": "kubelet"}],
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-abc", "uid": "u"}],
            },
            "spec": {
                "nodeName": "node-1",
                "volumes": [{"name": "data", "emptyDir": {}}],
                "containers": [{"name": "web", "image": "r/web:1",
                    "env": [{"name": "A", "value": "1"}],
                    "volumeMounts": [{"name": "data", "mountPath": "/data"}]}],
            },
            "status": {
                "phase": "Running",
                "conditions": [{"type": "Ready", "status": "True"},
                    {"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}],
                "containerStatuses": [{"name": "web", "ready": true, "restartCount": 2,
                    "image": "r/web:1", "imageID": "sha256:0"}],
            },
        }))
        .expect("a pod");
        let meta = &pod.metadata;
        assert_eq!(
            (meta.namespace.as_str(), meta.name.as_str()),
            ("cs101", "web-1")
        );
        assert_eq!(pod.workload.as_deref(), Some("web"));
        assert!(!pod.deleting);
        let slim = pod;
        let spec = slim.spec.as_ref().expect("spec");
        assert_eq!(spec.node_name.as_deref(), Some("node-1"));
        assert!(spec.volumes.is_none());
        assert_eq!(spec.containers[0].name, "web");
        assert_eq!(spec.containers[0].image.as_deref(), Some("r/web:1"));
        let status = slim.status.as_ref().expect("status");
        assert_eq!(status.phase.as_deref(), Some("Running"));
        assert_eq!(
            unmet(&status.conditions),
            ["PodScheduled"],
            "only conditions not met"
        );
        assert_eq!(
            status.container_statuses.as_ref().expect("statuses")[0].restart_count,
            2
        );
    }

    #[test]
    fn deployments_keep_what_pages_read_and_the_form_annotation_alone() {
        let deployment: Deployment = serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "cs101", "resourceVersion": "7",
                "annotations": {"berth.io/form": "{}", "berth.io/notice": "Moved.",
                    "kubectl.kubernetes.io/last-applied-configuration": "{…}"},
                "managedFields": [{"manager": "berth"}]},
            "spec": {"replicas": 2, "selector": {}, "template": {"spec": {
                "containers": [{"name": "web", "image": "r/web:1", "env": [{"name": "A", "value": "1"}],
                    "resources": {"requests": {"cpu": "250m"}, "limits": {"memory": "1Gi"}}},
                    {"name": "side", "image": "r/side:1"}],
                "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "web-data"}},
                            {"name": "tmp", "emptyDir": {}}]}}},
            "status": {"readyReplicas": 1, "conditions": [
                {"type": "Available", "status": "True"},
                {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}]},
        }))
        .expect("a deployment");
        let slim = deployment;
        assert_eq!(slim.metadata.name, "web");
        assert_eq!(slim.notice.as_deref(), Some("Moved."));
        assert!(!slim.managed, "it has no managed-by label");
        let spec = slim.spec.as_ref().expect("spec");
        assert_eq!(spec.replicas, Some(2));
        let template = spec.template.spec.as_ref().expect("pod spec");
        assert_eq!(template.containers[0].image.as_deref(), Some("r/web:1"));
        let volumes = template.volumes.as_ref().expect("volumes");
        assert_eq!(volumes.len(), 1, "only claims");
        assert_eq!(
            volumes[0]
                .persistent_volume_claim
                .as_ref()
                .expect("claim")
                .claim_name,
            "web-data"
        );

        let status = slim.status.as_ref().expect("status");
        assert_eq!(status.ready_replicas, Some(1));
        assert_eq!(
            unmet(&status.conditions),
            ["Progressing"],
            "only conditions not met"
        );

        assert_eq!(
            *slim.resources,
            [
                cached::ContainerResources {
                    cpu_request: Some(0.25),
                    memory_limit: Some(1024.0 * 1024.0 * 1024.0),
                    ..Default::default()
                },
                cached::ContainerResources::default(),
            ],
            "a deploy check counts what each container holds"
        );
        assert_eq!(slim.form.as_deref(), Some("{}"), "the edit form reads it");
        assert_eq!(slim.owner, None);
    }

    #[test]
    fn a_deployment_read_whole_drops_what_kubectl_and_the_apiserver_added() {
        let whole: k8s_openapi::api::apps::v1::Deployment = serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "cs101",
                "annotations": {"berth.io/form": "{}",
                    "kubectl.kubernetes.io/last-applied-configuration": "{…}"},
                "managedFields": [{"manager": "berth"}]},
            "spec": {"replicas": 2, "selector": {}, "template": {"spec": {
                "containers": [{"name": "web", "image": "r/web:1", "env": [{"name": "A", "value": "1"}]}],
                "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "web-data"}},
                            {"name": "tmp", "emptyDir": {}}]}}},
            "status": {"readyReplicas": 1},
        }))
        .expect("a deployment");
        let slim = cached::slimmed(whole);
        assert!(slim.status.is_none());
        assert_eq!(slim.metadata.managed_fields, None);
        let annotations = slim.metadata.annotations.as_ref().expect("annotations");
        assert!(annotations.contains_key("berth.io/form"));
        assert!(!annotations.contains_key("kubectl.kubernetes.io/last-applied-configuration"));
        let template = slim.spec.expect("spec").template.spec.expect("pod spec");
        assert!(
            template.containers[0].env.is_some(),
            "the edit form reads the spec"
        );
        assert_eq!(template.volumes.expect("volumes").len(), 2);
    }
}
