//! What the caches keep of the kinds there are thousands of: Pods,
//! ReplicaSets, Events and Deployments, as Berth's own compact types holding
//! only what pages read.
//!
//! k8s-openapi's types hold every field of a kind inline, set or not: a
//! ReplicaSet is 2.4 KB before any of its strings, a Pod's one container
//! 2.1 KB more, and every object's metadata a 360-byte struct and a map per
//! label set. At Geddes' size (5,000 workloads) that was most of Berth's
//! memory. Each kind here has two shapes:
//! - the wire shape (`wire::Pod`, …): what a watch decodes, with the kind's
//!   metadata (the watch resumes from its resourceVersion) and only the
//!   fields kept, so a watch never builds the whole object; its
//!   `kube::Resource` is the kind's, so a watch of it is a watch of the kind;
//! - the kept shape (`Pod`, …): a [`Meta`] of name, namespace and age, the
//!   few labels and annotations pages read as fields, and the same field
//!   names and shapes as k8s-openapi's for the rest, so code reads them the
//!   same way. Deserializing one goes through its wire shape.
//!
//! A Deployment's edit form and "what is live" read its whole spec: the
//! cache keeps its JSON for those two pages ([`Deployment::full`]).

use std::collections::BTreeMap;

use k8s_openapi::{
    api::{apps::v1 as apps, core::v1 as core},
    apimachinery::pkg::{
        api::resource::Quantity,
        apis::meta::v1::{MicroTime, ObjectMeta, Time},
    },
};
use serde::{Deserialize, Deserializer};

use super::{
    FORM_ANNOTATION, MANAGED_BY, NAME_LABEL, NOTICE_ANNOTATION, OWNER_ANNOTATION, quantity,
};

/// The annotation numbering a ReplicaSet's version of its Deployment.
const REVISION_ANNOTATION: &str = "deployment.kubernetes.io/revision";

/// `kube::Resource` of a cached type: the kind's, from k8s-openapi.
macro_rules! resource_of {
    ($cached:ty, $kind:ty) => {
        impl kube::Resource for $cached {
            type DynamicType = ();
            type Scope = <$kind as kube::Resource>::Scope;

            fn kind(dt: &()) -> std::borrow::Cow<'_, str> {
                <$kind as kube::Resource>::kind(dt)
            }
            fn group(dt: &()) -> std::borrow::Cow<'_, str> {
                <$kind as kube::Resource>::group(dt)
            }
            fn version(dt: &()) -> std::borrow::Cow<'_, str> {
                <$kind as kube::Resource>::version(dt)
            }
            fn api_version(dt: &()) -> std::borrow::Cow<'_, str> {
                <$kind as kube::Resource>::api_version(dt)
            }
            fn plural(dt: &()) -> std::borrow::Cow<'_, str> {
                <$kind as kube::Resource>::plural(dt)
            }
            fn meta(&self) -> &ObjectMeta {
                &self.metadata
            }
            fn meta_mut(&mut self) -> &mut ObjectMeta {
                &mut self.metadata
            }
        }
    };
}

/// Name, namespace and age: all pages read of an object's metadata.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(from = "ObjectMeta")]
pub struct Meta {
    pub name: String,
    pub namespace: String,
    /// Seconds since the epoch (0 when the apiserver gave none).
    pub created: i64,
}

impl From<ObjectMeta> for Meta {
    fn from(meta: ObjectMeta) -> Self {
        Self::of(&meta)
    }
}

impl Meta {
    fn of(meta: &ObjectMeta) -> Self {
        Self {
            name: meta.name.clone().unwrap_or_default(),
            namespace: meta.namespace.clone().unwrap_or_default(),
            created: meta
                .creation_timestamp
                .as_ref()
                .map_or(0, |t| t.0.as_second()),
        }
    }
}

/// A label or annotation of an object.
fn entry(map: &Option<BTreeMap<String, String>>, key: &str) -> Option<String> {
    map.as_ref()?.get(key).cloned()
}

/// A Pod: where it runs, its containers' names and images, its status.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(from = "wire::Pod")]
pub struct Pod {
    pub metadata: Meta,
    /// Being deleted (it has a deletion timestamp).
    pub deleting: bool,
    /// The workload it belongs to: its `app.kubernetes.io/name` label.
    pub workload: Option<String>,
    /// Node and containers; no volumes (its Deployment says) and no pull
    /// Secrets.
    pub spec: Option<PodSpec>,
    pub status: Option<PodStatus>,
}

impl From<wire::Pod> for Pod {
    fn from(pod: wire::Pod) -> Self {
        Self {
            metadata: Meta::of(&pod.metadata),
            deleting: pod.metadata.deletion_timestamp.is_some(),
            workload: entry(&pod.metadata.labels, NAME_LABEL),
            spec: pod.spec.map(|spec| PodSpec {
                volumes: None,
                image_pull_secrets: None,
                ..spec
            }),
            status: pod.status,
        }
    }
}

/// A pod spec (a Pod's, or a Deployment's template's): node, containers,
/// the claims it mounts and the Secrets it pulls with.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodSpec {
    pub node_name: Option<String>,
    #[serde(default)]
    pub containers: Vec<Container>,
    /// Only volumes from a claim are kept.
    #[serde(default, deserialize_with = "claim_volumes")]
    pub volumes: Option<Vec<Volume>>,
    pub image_pull_secrets: Option<Vec<core::LocalObjectReference>>,
}

/// A container: its name and image.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Container {
    #[serde(default)]
    pub name: String,
    pub image: Option<String>,
}

/// A volume from a claim.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Volume {
    #[serde(default)]
    pub name: String,
    pub persistent_volume_claim: Option<core::PersistentVolumeClaimVolumeSource>,
}

/// Volumes, without those that are not from a claim (a pod's projected
/// ServiceAccount token, a config map, …).
fn claim_volumes<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<Volume>>, D::Error> {
    let volumes: Option<Vec<Volume>> = Option::deserialize(d)?;
    Ok(volumes.map(|all| {
        all.into_iter()
            .filter(|v| v.persistent_volume_claim.is_some())
            .collect()
    }))
}

/// A Pod's status: phase, conditions, container states, addresses.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodStatus {
    pub phase: Option<String>,
    /// Only conditions that are not met (a pod not scheduled says why).
    #[serde(default, deserialize_with = "unmet")]
    pub conditions: Option<Vec<Condition>>,
    pub container_statuses: Option<Vec<ContainerStatus>>,
    pub init_container_statuses: Option<Vec<ContainerStatus>>,
    pub message: Option<String>,
    pub reason: Option<String>,
    pub pod_ip: Option<String>,
    pub host_ip: Option<String>,
    pub start_time: Option<Time>,
}

/// A container's status: ready, restarts, what it is doing and did last.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerStatus {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub ready: bool,
    pub started: Option<bool>,
    #[serde(default)]
    pub restart_count: i32,
    pub state: Option<core::ContainerState>,
    pub last_state: Option<core::ContainerState>,
}

/// A ReplicaSet: its Deployment, revision and how many pods are up.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(from = "wire::ReplicaSet")]
pub struct ReplicaSet {
    pub metadata: Meta,
    /// The Deployment that owns it.
    pub deployment: Option<String>,
    /// Its `deployment.kubernetes.io/revision` (0 when unset).
    pub revision: i64,
    pub status: Option<ReplicaSetStatus>,
}

impl From<wire::ReplicaSet> for ReplicaSet {
    fn from(rs: wire::ReplicaSet) -> Self {
        let owners = rs.metadata.owner_references.iter().flatten();
        Self {
            deployment: owners
                .filter(|o| o.kind == "Deployment")
                .map(|o| o.name.clone())
                .next(),
            revision: entry(&rs.metadata.annotations, REVISION_ANNOTATION)
                .and_then(|r| r.parse().ok())
                .unwrap_or(0),
            metadata: Meta::of(&rs.metadata),
            status: rs.status,
        }
    }
}

/// How many of a ReplicaSet's pods there are, are ready, are available.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplicaSetStatus {
    #[serde(default)]
    pub replicas: i32,
    pub ready_replicas: Option<i32>,
    pub available_replicas: Option<i32>,
}

/// An Event: about what, why, how often and when. `M` is its metadata:
/// the kind's as a watch decodes it ([`wire::Event`]), a [`Meta`] as kept.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event<M = Meta> {
    #[serde(default)]
    pub metadata: M,
    #[serde(default)]
    pub involved_object: ObjectReference,
    pub reason: Option<String>,
    pub message: Option<String>,
    #[serde(rename = "type")]
    pub type_: Option<String>,
    pub count: Option<i32>,
    pub first_timestamp: Option<Time>,
    pub last_timestamp: Option<Time>,
    pub event_time: Option<MicroTime>,
    pub series: Option<core::EventSeries>,
}

impl From<wire::Event> for Event {
    fn from(e: wire::Event) -> Self {
        Event {
            metadata: Meta::of(&e.metadata),
            involved_object: e.involved_object,
            reason: e.reason,
            message: e.message,
            type_: e.type_,
            count: e.count,
            first_timestamp: e.first_timestamp,
            last_timestamp: e.last_timestamp,
            event_time: e.event_time,
            series: e.series,
        }
    }
}

/// What an Event is about.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectReference {
    pub kind: Option<String>,
    pub name: Option<String>,
    pub namespace: Option<String>,
}

/// A Deployment: what lists, the rollout and "what Berth applied" read. The
/// pages that read its whole spec (the edit form, a Deployment without a kept
/// form) get it from the apiserver, as the person: kept here, the whole of
/// each would be most of Berth's memory.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(from = "apps::Deployment")]
pub struct Deployment {
    pub metadata: Meta,
    /// Its `metadata.generation`.
    pub generation: i64,
    /// Berth made it (its managed-by label).
    pub managed: bool,
    /// Its notice annotation ([`NOTICE_ANNOTATION`]).
    pub notice: Option<String>,
    /// The deploy form it was made from ([`FORM_ANNOTATION`]), as JSON.
    pub form: Option<String>,
    /// Who deployed it ([`OWNER_ANNOTATION`]).
    pub owner: Option<String>,
    pub spec: Option<DeploymentSpec>,
    pub status: Option<DeploymentStatus>,
    /// Its template's containers' resources, in their order: what a deploy
    /// check counts the workload as holding.
    pub resources: Box<[ContainerResources]>,
}

/// A container's CPU and memory requests and limits in cores and bytes;
/// `None` where it sets none (or sets what is not a quantity).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ContainerResources {
    pub cpu_request: Option<f64>,
    pub cpu_limit: Option<f64>,
    pub memory_request: Option<f64>,
    pub memory_limit: Option<f64>,
}

impl ContainerResources {
    fn of(container: &core::Container) -> Self {
        let resources = container.resources.as_ref();
        let amount = |map: Option<&BTreeMap<String, Quantity>>, key: &str| {
            quantity::parse(&map?.get(key)?.0).ok()
        };
        let requests = resources.and_then(|r| r.requests.as_ref());
        let limits = resources.and_then(|r| r.limits.as_ref());
        Self {
            cpu_request: amount(requests, "cpu"),
            cpu_limit: amount(limits, "cpu"),
            memory_request: amount(requests, "memory"),
            memory_limit: amount(limits, "memory"),
        }
    }
}

/// A Deployment's status: how far the rollout is, and the conditions that
/// are not met.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentStatus {
    pub observed_generation: Option<i64>,
    pub replicas: Option<i32>,
    pub updated_replicas: Option<i32>,
    pub ready_replicas: Option<i32>,
    pub available_replicas: Option<i32>,
    #[serde(default, deserialize_with = "unmet")]
    pub conditions: Option<Vec<Condition>>,
}

/// A condition of a Pod or a Deployment.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    #[serde(default, rename = "type")]
    pub type_: String,
    #[serde(default)]
    pub status: String,
    pub reason: Option<String>,
    pub message: Option<String>,
}

/// Conditions, without those that are met: pages explain only what is not.
fn unmet<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<Condition>>, D::Error> {
    let all: Option<Vec<Condition>> = Option::deserialize(d)?;
    Ok(all
        .map(|all| {
            all.into_iter()
                .filter(|c| c.status != "True")
                .collect::<Vec<_>>()
        })
        .filter(|kept| !kept.is_empty()))
}

/// The parts of a Deployment's spec lists and the rollout read.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentSpec {
    pub replicas: Option<i32>,
    pub progress_deadline_seconds: Option<i32>,
    #[serde(default)]
    pub template: PodTemplateSpec,
}

/// A Deployment's pod template (its spec; its metadata is in the whole).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodTemplateSpec {
    pub spec: Option<PodSpec>,
}

/// kubectl's copy of the whole object, dropped from a Deployment's whole.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

impl From<apps::Deployment> for Deployment {
    fn from(whole: apps::Deployment) -> Self {
        let meta = &whole.metadata;
        Self {
            metadata: Meta::of(meta),
            generation: meta.generation.unwrap_or(0),
            managed: entry(&meta.labels, MANAGED_BY.0).as_deref() == Some(MANAGED_BY.1),
            notice: entry(&meta.annotations, NOTICE_ANNOTATION),
            form: entry(&meta.annotations, FORM_ANNOTATION),
            owner: entry(&meta.annotations, OWNER_ANNOTATION),
            spec: whole.spec.as_ref().and_then(reshape),
            status: whole.status.as_ref().and_then(reshape),
            resources: whole
                .spec
                .iter()
                .filter_map(|spec| spec.template.spec.as_ref())
                .flat_map(|pod| &pod.containers)
                .map(ContainerResources::of)
                .collect(),
        }
    }
}

/// A Deployment as a page that reads all of it shows it: without managed
/// fields, kubectl's last-applied copy or its status.
pub fn slimmed(mut whole: apps::Deployment) -> apps::Deployment {
    whole.metadata.managed_fields = None;
    if let Some(annotations) = whole.metadata.annotations.as_mut() {
        annotations.remove(LAST_APPLIED);
    }
    whole.status = None;
    whole
}

/// A k8s-openapi value as one of the types here, through its JSON.
fn reshape<T: serde::de::DeserializeOwned>(value: &impl serde::Serialize) -> Option<T> {
    serde_json::to_value(value)
        .and_then(serde_json::from_value)
        .ok()
}

/// The shapes watches decode: the kind's metadata and the fields kept.
pub mod wire {
    use k8s_openapi::{
        api::{apps::v1 as apps, core::v1 as core},
        apimachinery::pkg::apis::meta::v1::ObjectMeta,
    };
    use serde::Deserialize;

    use super::{PodSpec, PodStatus, ReplicaSetStatus};

    /// A Pod as a watch decodes it.
    #[derive(Clone, Debug, Default, Deserialize)]
    pub struct Pod {
        #[serde(default)]
        pub metadata: ObjectMeta,
        pub spec: Option<PodSpec>,
        pub status: Option<PodStatus>,
    }
    resource_of!(Pod, core::Pod);

    /// A ReplicaSet as a watch decodes it.
    #[derive(Clone, Debug, Default, Deserialize)]
    pub struct ReplicaSet {
        #[serde(default)]
        pub metadata: ObjectMeta,
        pub status: Option<ReplicaSetStatus>,
    }
    resource_of!(ReplicaSet, apps::ReplicaSet);

    /// An Event as a watch decodes it.
    pub type Event = super::Event<ObjectMeta>;
    resource_of!(Event, core::Event);
}
