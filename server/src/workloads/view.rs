//! What the workload templates get: the list's rows and the detail page
//! (pods, address and DNS name, recent Events in plain words, rollout, what
//! Berth applied, the credential notice and the shell panel).
//!
//! The views are pure functions of the cached objects, so they are tested
//! without a cluster; [`show_page`] gathers them for one workload (the
//! detail handler and the action handlers that re-render it on an error).

use std::{collections::BTreeMap, sync::Arc};

use askama::Template;
use axum::{
    http::StatusCode,
    response::{Html, IntoResponse, Response},
};
use k8s_openapi::api::core::v1::Service;
use kube::ResourceExt;

use super::lookup::{Objects, find_workload};
use super::{
    applied, build,
    events::{self, PullCredential},
};
use crate::{
    app::AppState,
    auth::CurrentUser,
    clock,
    error::AppResult,
    kube::{
        cached::{Deployment, Event, Pod, ReplicaSet},
        event_seconds,
    },
    registries,
    web::Layout,
};

/// How many Events the detail page shows.
const MAX_EVENTS: usize = 20;

/// One row of the list, and the head of the detail page.
#[derive(Debug, Clone)]
pub struct WorkloadRow {
    /// Name of the Deployment (and its Service).
    pub name: String,
    /// The container image.
    pub image: String,
    /// Desired replicas.
    pub desired: i32,
    /// Ready replicas.
    pub ready: i32,
    /// Pod counts by phase, `("Running", 2)`, in a fixed order.
    pub phases: Vec<(String, usize)>,
    /// Container restarts over all pods.
    pub restarts: i32,
    /// Since the Deployment was created (`5m`, `3h`, `2d`).
    pub age: String,
    /// `ok`, `warn` or `bad`, for the badge.
    pub health: &'static str,
    /// One word for the badge.
    pub state: &'static str,
    /// The external address, once assigned.
    pub address: Option<String>,
    /// Who may reach it (`campus`, `public`, `cluster`, `none`).
    pub exposure: &'static str,
}

/// A pod on the detail page.
#[derive(Debug, Clone)]
pub struct PodView {
    /// Pod name.
    pub name: String,
    /// Pending, Running, Succeeded, Failed, Unknown (or Terminating).
    pub phase: String,
    /// Ready containers / all containers.
    pub ready: String,
    /// Restarts of its containers.
    pub restarts: i32,
    /// Since created.
    pub age: String,
    /// Node it runs on.
    pub node: String,
    /// What is wrong with it, in plain words.
    pub problem: Option<String>,
}

/// One published port.
#[derive(Debug, Clone)]
pub struct PortView {
    /// Port on the address.
    pub published: i32,
    /// Port in the container.
    pub target: String,
    /// TCP or UDP.
    pub protocol: String,
    /// `http://<address>[:port]/`, for TCP once an address is assigned.
    pub url: Option<String>,
}

/// How the workload is reached.
#[derive(Debug, Clone)]
pub struct ServiceView {
    /// Service name.
    pub name: String,
    /// `LoadBalancer` or `ClusterIP`.
    pub type_: String,
    /// Its ports.
    pub ports: Vec<PortView>,
    /// The LoadBalancer's address, once MetalLB assigned it.
    pub address: Option<String>,
    /// `<service>.<namespace>.<domain>` for a LoadBalancer.
    pub dns_name: Option<String>,
    /// `<service>.<namespace>.svc` inside the cluster.
    pub cluster_dns: String,
    /// The cluster-internal IP.
    pub cluster_ip: Option<String>,
    /// What the "try it" box says the request is (`POST {"num": 123} to /add_two`).
    pub try_what: Option<String>,
    /// A curl command to try it.
    pub curl: Option<String>,
    /// The same request from Python (standard library only).
    pub python: Option<String>,
}

/// An Event as the detail page shows it.
#[derive(Debug, Clone)]
pub struct EventView {
    /// Warning or Normal.
    pub warning: bool,
    /// How long ago it was last seen.
    pub age: String,
    /// When, for `<time datetime>`.
    pub at: String,
    /// What it is about (`pod web-1`).
    pub object: String,
    /// The reason, as Kubernetes says it.
    pub reason: String,
    /// In plain words.
    pub text: String,
    /// How often it happened.
    pub count: i32,
    /// Unix seconds, for sorting.
    pub seconds: i64,
}

/// `5s`, `4m`, `3h`, `2d` since `then`.
pub fn age(now: i64, then: i64) -> String {
    let s = (now - then).max(0);
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86_400 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86_400),
    }
}

fn phase_of(pod: &Pod) -> String {
    if pod.deleting {
        return "Terminating".to_owned();
    }
    pod.status
        .as_ref()
        .and_then(|s| s.phase.clone())
        .unwrap_or_else(|| "Pending".to_owned())
}

fn restarts_of(pod: &Pod) -> i32 {
    pod.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .map_or(0, |cs| cs.iter().map(|c| c.restart_count).sum())
}

fn problem_of(pod: &Pod, credential: Option<&PullCredential>) -> Option<String> {
    let status = pod.status.as_ref()?;
    for c in status.container_statuses.iter().flatten() {
        if let Some(waiting) = c.state.as_ref().and_then(|s| s.waiting.as_ref())
            && let Some(text) = events::describe_waiting_with(
                waiting.reason.as_deref().unwrap_or_default(),
                waiting.message.as_deref().unwrap_or_default(),
                credential,
            )
        {
            return Some(text);
        }
    }
    // Not scheduled: the PodScheduled condition says why.
    status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "PodScheduled" && c.status == "False")
        .map(|c| {
            events::describe(
                c.reason.as_deref().unwrap_or("FailedScheduling"),
                c.message.as_deref().unwrap_or_default(),
            )
        })
}

fn lb_address(service: &Service) -> Option<String> {
    let ingress = service
        .status
        .as_ref()?
        .load_balancer
        .as_ref()?
        .ingress
        .as_ref()?
        .first()?;
    ingress.ip.clone().or_else(|| ingress.hostname.clone())
}

/// Who may reach it; `public_pool` is the configured annotation (key, value)
/// that puts a LoadBalancer on the public pool.
fn exposure_of(service: Option<&Service>, public_pool: &(String, String)) -> &'static str {
    let Some(service) = service else {
        return "none";
    };
    let spec = service.spec.as_ref();
    if spec.and_then(|s| s.type_.as_deref()) == Some("LoadBalancer") {
        let public = service
            .annotations()
            .get(&public_pool.0)
            .is_some_and(|value| *value == public_pool.1);
        if public { "public" } else { "campus" }
    } else {
        "cluster"
    }
}

fn image_of(deployment: &Deployment) -> String {
    deployment
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .and_then(|p| p.containers.first())
        .and_then(|c| c.image.clone())
        .unwrap_or_default()
}

/// The list row of a workload.
pub fn row(objects: &Objects, now: i64, public_pool: &(String, String)) -> WorkloadRow {
    let d = &objects.deployment;
    let desired = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let ready = d
        .status
        .as_ref()
        .and_then(|s| s.ready_replicas)
        .unwrap_or(0);
    let mut counts: BTreeMap<usize, (String, usize)> = BTreeMap::new();
    const ORDER: [&str; 6] = [
        "Running",
        "Pending",
        "Terminating",
        "Failed",
        "Succeeded",
        "Unknown",
    ];
    for pod in &objects.pods {
        let phase = phase_of(pod);
        let rank = ORDER
            .iter()
            .position(|p| *p == phase)
            .unwrap_or(ORDER.len());
        counts.entry(rank).or_insert_with(|| (phase, 0)).1 += 1;
    }
    let restarts = objects.pods.iter().map(|p| restarts_of(p)).sum();
    // A recent Warning Event counts only while the workload is not all
    // ready: once every pod is ready, a warning from its start (a failed
    // readiness probe, a cluster without DNS) is history, not trouble.
    let failing = objects.pods.iter().any(|p| problem_of(p, None).is_some())
        || (ready < desired
            && objects
                .events
                .iter()
                .any(|e| e.type_.as_deref() == Some("Warning") && is_recent(e, now)));
    let (health, state) = if desired == 0 {
        ("warn", "stopped")
    } else if ready >= desired && !failing {
        ("ok", "ready")
    } else if failing {
        ("bad", "trouble")
    } else {
        ("warn", "starting")
    };
    WorkloadRow {
        name: d.metadata.name.clone(),
        image: image_of(d),
        desired,
        ready,
        phases: counts.into_values().collect(),
        restarts,
        age: age(now, d.metadata.created),
        health,
        state,
        address: objects.service.as_deref().and_then(lb_address),
        exposure: exposure_of(objects.service.as_deref(), public_pool),
    }
}

/// A Warning from the last ten minutes still counts as trouble.
fn is_recent(e: &Event, now: i64) -> bool {
    now - event_seconds(e) < 600
}

/// The workload's Events, newest first, in plain words.
pub fn event_views(
    objects: &Objects,
    now: i64,
    credential: Option<&PullCredential>,
) -> Vec<EventView> {
    let mut views: Vec<EventView> = objects
        .events
        .iter()
        .map(|e| {
            let seconds = event_seconds(e);
            let reason = e.reason.clone().unwrap_or_default();
            EventView {
                warning: e.type_.as_deref() == Some("Warning"),
                age: age(now, seconds),
                at: clock::rfc3339(seconds),
                object: format!(
                    "{} {}",
                    e.involved_object
                        .kind
                        .as_deref()
                        .unwrap_or_default()
                        .to_lowercase(),
                    e.involved_object.name.as_deref().unwrap_or_default()
                ),
                text: events::describe_with(
                    &reason,
                    e.message.as_deref().unwrap_or_default(),
                    credential,
                ),
                reason,
                count: e
                    .series
                    .as_ref()
                    .and_then(|s| s.count)
                    .or(e.count)
                    .unwrap_or(1),
                seconds,
            }
        })
        .collect();
    views.sort_by_key(|view| std::cmp::Reverse(view.seconds));
    views.truncate(MAX_EVENTS);
    views
}

/// The pods as the detail page shows them.
pub fn pod_views(objects: &Objects, now: i64, credential: Option<&PullCredential>) -> Vec<PodView> {
    objects
        .pods
        .iter()
        .map(|p| {
            let statuses = p
                .status
                .as_ref()
                .and_then(|s| s.container_statuses.clone())
                .unwrap_or_default();
            let containers = p.spec.as_ref().map_or(0, |s| s.containers.len());
            PodView {
                name: p.metadata.name.clone(),
                phase: phase_of(p),
                ready: format!(
                    "{}/{containers}",
                    statuses.iter().filter(|c| c.ready).count()
                ),
                restarts: restarts_of(p),
                age: age(now, p.metadata.created),
                node: p
                    .spec
                    .as_ref()
                    .and_then(|s| s.node_name.clone())
                    .unwrap_or_default(),
                problem: problem_of(p, credential),
            }
        })
        .collect()
}

/// Whether the workload is the add-two demo (its curl example is the exact POST).
fn is_add_two(name: &str, image: &str) -> bool {
    let repository = image.split(['@']).next().unwrap_or(image);
    let last = repository.rsplit('/').next().unwrap_or(repository);
    let last = last.split(':').next().unwrap_or(last);
    name == "add-two" || last == "add-two"
}

/// How the workload is reached, with its DNS name under `domain`.
pub fn service_view(objects: &Objects, domain: &str) -> Option<ServiceView> {
    let service = objects.service.as_deref()?;
    let ns = service.namespace().unwrap_or_default();
    let name = service.name_any();
    let spec = service.spec.as_ref();
    let type_ = spec
        .and_then(|s| s.type_.clone())
        .unwrap_or_else(|| "ClusterIP".to_owned());
    let load_balancer = type_ == "LoadBalancer";
    let address = lb_address(service);
    let ports: Vec<PortView> = spec
        .and_then(|s| s.ports.clone())
        .unwrap_or_default()
        .into_iter()
        .map(|p| {
            let protocol = p.protocol.unwrap_or_else(|| "TCP".to_owned());
            PortView {
                url: address
                    .as_ref()
                    .filter(|_| protocol == "TCP")
                    .map(|a| match p.port {
                        80 => format!("http://{a}/"),
                        port => format!("http://{a}:{port}/"),
                    }),
                published: p.port,
                target: match p.target_port {
                    Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(n)) => {
                        n.to_string()
                    }
                    Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::String(s)) => s,
                    None => p.port.to_string(),
                },
                protocol,
            }
        })
        .collect();
    let (try_what, curl, python) = match (&address, ports.first()) {
        (Some(address), Some(port)) if port.protocol == "TCP" => {
            let base = format!("http://{address}:{}", port.published);
            if is_add_two(
                &objects.deployment.metadata.name,
                &image_of(&objects.deployment),
            ) {
                (
                    Some(format!(
                        "POST {{\"num\": 123}} to {base}/add_two; it answers {{\"output\": 125}}."
                    )),
                    Some(format!(
                        "curl -X POST -H 'Content-Type: application/json' -d '{{\"num\": 123}}' {base}/add_two"
                    )),
                    Some(format!(
                        "import json, urllib.request\n\
                         request = urllib.request.Request(\n    \"{base}/add_two\",\n    \
                         data=json.dumps({{\"num\": 123}}).encode(),\n    \
                         headers={{\"Content-Type\": \"application/json\"}},\n    \
                         method=\"POST\",\n)\n\
                         print(urllib.request.urlopen(request).read().decode())"
                    )),
                )
            } else {
                (
                    Some(format!("GET {base}/")),
                    Some(format!("curl -i {base}/")),
                    Some(format!(
                        "import urllib.request\n\
                         print(urllib.request.urlopen(\"{base}/\").read().decode())"
                    )),
                )
            }
        }
        _ => (None, None, None),
    };
    Some(ServiceView {
        dns_name: load_balancer.then(|| format!("{name}.{ns}.{domain}")),
        cluster_dns: format!("{name}.{ns}.svc"),
        cluster_ip: spec
            .and_then(|s| s.cluster_ip.clone())
            .filter(|ip| ip != "None"),
        name,
        type_,
        ports,
        address,
        try_what,
        curl,
        python,
    })
}

/// How far a rollout has got, in words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RolloutView {
    /// "2 of 3 pods run the latest version; 1 of them is ready."
    pub text: String,
    /// The Deployment gave up: its progress deadline passed.
    pub stuck: Option<String>,
    /// Every pod is updated and ready and nothing old is left.
    pub done: bool,
}

/// How many pods of the newest ReplicaSet (the latest version) are ready.
fn newest_ready(replica_sets: &[Arc<ReplicaSet>]) -> Option<i32> {
    replica_sets.iter().max_by_key(|rs| rs.revision).map(|rs| {
        rs.status
            .as_ref()
            .and_then(|s| s.ready_replicas)
            .unwrap_or(0)
    })
}

/// The rollout's progress from the Deployment's status and its newest
/// ReplicaSet: pods on the latest version and how many of them are ready,
/// and whether it is stuck (condition `Progressing=False` with reason
/// `ProgressDeadlineExceeded`).
pub fn rollout_view(deployment: &Deployment, replica_sets: &[Arc<ReplicaSet>]) -> RolloutView {
    let desired = deployment
        .spec
        .as_ref()
        .and_then(|s| s.replicas)
        .unwrap_or(1);
    let status = deployment.status.clone().unwrap_or_default();
    let seen = status.observed_generation.unwrap_or(0) >= deployment.generation;
    let updated = status.updated_replicas.unwrap_or(0);
    let ready = status.ready_replicas.unwrap_or(0);
    let available = status.available_replicas.unwrap_or(0);
    let total = status.replicas.unwrap_or(0);
    let old = (total - updated).max(0);
    let stuck = status
        .conditions
        .iter()
        .flatten()
        .find(|c| {
            c.type_ == "Progressing"
                && c.status == "False"
                && c.reason.as_deref() == Some("ProgressDeadlineExceeded")
        })
        .map(|c| {
            let seconds = deployment
                .spec
                .as_ref()
                .and_then(|s| s.progress_deadline_seconds)
                .unwrap_or(600);
            format!(
                "The rollout is stuck: Kubernetes saw no progress for {} and stopped waiting ({}). \
                 The pods and events below say why a new pod does not start or become ready; \
                 fix that and save the form again.",
                if seconds % 60 == 0 {
                    format!("{} minutes", seconds / 60)
                } else {
                    format!("{seconds} seconds")
                },
                c.message.as_deref().unwrap_or("progress deadline exceeded")
            )
        });
    let pods = |n: i32| if n == 1 { "pod" } else { "pods" };
    let done = seen && updated >= desired && ready >= desired && available >= desired && old == 0;
    let text = if desired == 0 {
        if total == 0 {
            "Stopped: scaled to 0 pods.".to_owned()
        } else {
            format!("Stopping: {total} {} still running.", pods(total))
        }
    } else if !seen {
        "Kubernetes has not picked up the latest change yet.".to_owned()
    } else if done && desired == 1 {
        "Up to date: its pod runs the latest version and is ready.".to_owned()
    } else if done {
        format!("Up to date: all {desired} pods run the latest version and are ready.")
    } else {
        let new_ready = newest_ready(replica_sets).unwrap_or(ready).min(updated);
        let mut text = format!(
            "Rolling out: {updated} of {desired} {} {} the latest version, {new_ready} of them ready.",
            pods(desired),
            if updated == 1 { "runs" } else { "run" }
        );
        if old > 0 {
            text.push_str(&format!(
                " {old} old {} still running until the new ones are ready.",
                pods(old)
            ));
        }
        text
    };
    RolloutView { text, stuck, done }
}

/// Volume claims the workload mounts, and whether Berth made each for it
/// (named `<workload>-data`, so deleting the workload may offer to delete it).
pub fn claims_of(deployment: &Deployment) -> Vec<(String, bool)> {
    let name = &deployment.metadata.name;
    deployment
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .and_then(|p| p.volumes.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|v| v.persistent_volume_claim.as_ref())
        .map(|c| {
            let own = c.claim_name == build::claim_name(name);
            (c.claim_name.clone(), own)
        })
        .collect()
}

pub(super) fn page(status: StatusCode, template: &impl Template) -> AppResult<Response> {
    Ok((status, Html(template.render()?)).into_response())
}

#[derive(Template)]
#[template(path = "workloads/list.html")]
pub(super) struct ListPage {
    pub(super) layout: Layout,
    pub(super) namespace: String,
    pub(super) notice: Option<String>,
    pub(super) rows: Vec<WorkloadRow>,
    pub(super) domain: String,
    /// How long a downloaded kubeconfig works ("8 hours").
    pub(super) kubeconfig_validity: String,
}

/// The detail page, with room for a form error and a cluster error.
#[derive(Template)]
#[template(path = "workloads/show.html")]
pub struct ShowPage {
    layout: Layout,
    namespace: String,
    row: WorkloadRow,
    pods: Vec<PodView>,
    service: Option<ServiceView>,
    events: Vec<EventView>,
    claims: Vec<(String, bool)>,
    rollout: RolloutView,
    /// Offer a reload, and with JavaScript reload by itself (static/refresh.js,
    /// which a person can stop), while the workload is starting or rolling
    /// out, or its address is not assigned. Not a `<meta http-equiv="refresh">`:
    /// a timed refresh nobody can turn off fails WCAG 2.2.1.
    refresh: bool,
    applied: applied::Applied,
    replicas: String,
    replicas_error: Option<String>,
    cluster_error: Option<String>,
    max_replicas: i32,
    /// The robot token this workload pulls with expires soon or has expired.
    credential_notice: Option<CredentialNotice>,
    notice: Option<String>,
    /// A shell in the newest running pod, if there is one.
    shell: Option<ShellView>,
}

/// A warning about the registry credential a workload pulls with.
pub struct CredentialNotice {
    /// `warn` (within the warning days) or `bad` (past).
    pub level: &'static str,
    /// What to say.
    pub text: String,
    /// Where to replace the token.
    pub replace_href: String,
}

/// The credential id behind a Deployment's pull Secret (`berth-registry-<id>`).
pub fn pull_credential_id(deployment: &Deployment) -> Option<i64> {
    deployment
        .spec
        .as_ref()?
        .template
        .spec
        .as_ref()?
        .image_pull_secrets
        .as_ref()?
        .iter()
        .find_map(|r| registries::pull::credential_of_secret(&r.name))
}

/// What the page says about a credential's expiry, and what a refused pull
/// is explained with. Pure: `today` is passed in.
pub fn credential_context(
    ns: &str,
    row: &registries::store::CredentialRow,
    today: time::Date,
) -> (Option<CredentialNotice>, PullCredential) {
    let expiry = row
        .expires_on
        .as_deref()
        .and_then(|d| registries::forms::expiry(d, today));
    let today_text = registries::forms::format_date(today);
    let expired_on = row
        .expires_on
        .clone()
        .filter(|d| d.as_str() <= today_text.as_str());
    let replace_href = crate::web::urls::credential_replace(ns, row.id);
    let notice = expiry.filter(|e| e.level != "ok").map(|e| CredentialNotice {
        level: e.level,
        text: if e.level == "bad" {
            format!(
                "The robot token {} this workload pulls with {} ({}): new pods cannot pull the image. Create a new token in the registry and replace it.",
                row.robot, e.text, row.expires_on.as_deref().unwrap_or_default()
            )
        } else {
            format!(
                "The robot token {} this workload pulls with {} ({}): replace it before then, or new pods will fail to pull.",
                row.robot, e.text, row.expires_on.as_deref().unwrap_or_default()
            )
        },
        replace_href,
    });
    (
        notice,
        PullCredential {
            robot: row.robot.clone(),
            expired_on,
        },
    )
}

/// The notice Berth left on an object (e.g. a course that ended).
pub(super) fn notice_of(meta: &kube::api::ObjectMeta) -> Option<String> {
    meta.annotations
        .as_ref()?
        .get(crate::kube::NOTICE_ANNOTATION)
        .cloned()
}

/// The shell panel: the terminal (with JavaScript) and the same shell as a
/// kubectl command (always).
#[derive(Debug, Clone)]
pub struct ShellView {
    /// The pod the shell opens in.
    pub pod: String,
    /// The `kubectl exec` command that opens the same shell.
    pub command: String,
    /// Path of the WebSocket (static/shell.js opens it).
    pub socket: String,
}

fn shell_view(objects: &Objects, ns: &str, name: &str) -> Option<ShellView> {
    let pod = objects.pods.iter().rev().find(|p| {
        !p.deleting && p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
    })?;
    let pod = pod.metadata.name.clone();
    Some(ShellView {
        command: super::shell::kubectl_command(ns, &pod),
        socket: crate::web::urls::workload_shell(ns, name, &pod),
        pod,
    })
}

/// Builds the detail page of workload `name`.
pub async fn show_page(
    state: &AppState,
    user: &CurrentUser,
    ns: &str,
    name: &str,
    replicas: Option<String>,
    replicas_error: Option<String>,
    cluster_error: Option<String>,
) -> AppResult<ShowPage> {
    let caches = state.kube.caches()?;
    let deployment = find_workload(caches, ns, name)?;
    let objects = Objects::collect(caches, deployment);
    let now = clock::now();
    let row = row(&objects, now, &state.config.expose.public_pool_annotation);
    let rollout = rollout_view(&objects.deployment, &objects.replica_sets);
    let service = service_view(&objects, &state.config.workloads.service_domain);
    let waiting_for_address = service
        .as_ref()
        .is_some_and(|s| s.type_ == "LoadBalancer" && s.address.is_none());
    let refresh = rollout.stuck.is_none() && (!rollout.done || waiting_for_address);
    let credential_row = match pull_credential_id(&objects.deployment) {
        Some(id) => registries::store::credential(&state.db, ns, id).await?,
        None => None,
    };
    let today = time::OffsetDateTime::now_utc().date();
    let (credential_notice, pull_credential) = match &credential_row {
        Some(row) => {
            let (notice, credential) = credential_context(ns, row, today);
            (notice, Some(credential))
        }
        None => (None, None),
    };
    let notice = objects.deployment.notice.clone();
    let shell = shell_view(&objects, ns, name);
    Ok(ShowPage {
        notice,
        layout: Layout::for_user(&state.db, user).await?,
        namespace: ns.to_owned(),
        replicas: replicas.unwrap_or_else(|| row.desired.to_string()),
        row,
        pods: pod_views(&objects, now, pull_credential.as_ref()),
        service,
        events: event_views(&objects, now, pull_credential.as_ref()),
        claims: claims_of(&objects.deployment),
        rollout,
        refresh,
        applied: applied::applied(state, user, &objects).await,
        replicas_error,
        cluster_error,
        max_replicas: super::form::MAX_REPLICAS,
        credential_notice,
        shell,
    })
}

/// Renders the detail page with `status`.
pub fn show_response(status: StatusCode, page_data: &ShowPage) -> AppResult<Response> {
    page(status, page_data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn objects(service: Option<serde_json::Value>) -> Objects {
        let deployment: Deployment = serde_json::from_value(json!({
            "metadata": {"name": "add-two", "namespace": "cs101", "creationTimestamp": "2026-01-01T00:00:00Z",
                         "labels": {"app.kubernetes.io/managed-by": "berth"}},
            "spec": {"replicas": 2, "selector": {}, "template": {"spec": {
                "containers": [{"name": "add-two", "image": "reg.example/cs101/add-two:1.0"}],
                "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "add-two-data"}}]}}},
            "status": {"readyReplicas": 1}
        }))
        .expect("deployment");
        let pod = |name: &str,
                   phase: &str,
                   waiting: Option<(&str, &str)>,
                   restarts: i32|
         -> Arc<Pod> {
            let state = match waiting {
                Some((reason, message)) => {
                    json!({"waiting": {"reason": reason, "message": message}})
                }
                None => json!({"running": {}}),
            };
            Arc::new(
                serde_json::from_value(json!({
                    "metadata": {"name": name, "namespace": "cs101", "creationTimestamp": "2026-01-01T00:00:00Z"},
                    "spec": {"containers": [{"name": "add-two"}], "nodeName": "kwok-node-0"},
                    "status": {"phase": phase, "containerStatuses": [{
                        "name": "add-two", "image": "", "imageID": "", "ready": phase == "Running",
                        "restartCount": restarts, "state": state}]}
                }))
                .expect("pod"),
            )
        };
        let event: Event = serde_json::from_value(json!({
            "metadata": {"name": "e1", "namespace": "cs101"},
            "involvedObject": {"kind": "ReplicaSet", "name": "add-two-5d8f"},
            "reason": "FailedCreate", "type": "Warning", "count": 3,
            "lastTimestamp": "2026-01-01T00:59:00Z",
            "message": "Error creating: pods \"add-two-5d8f-x\" is forbidden: exceeded quota: berth-quota, requested: requests.memory=2Gi, used: requests.memory=3Gi, limited: requests.memory=4Gi"
        }))
        .expect("event");
        Objects {
            deployment: Arc::new(deployment),
            pods: vec![
                pod("add-two-5d8f-a", "Running", None, 2),
                pod(
                    "add-two-5d8f-b",
                    "Pending",
                    Some((
                        "ImagePullBackOff",
                        "Back-off pulling image \"reg.example/cs101/add-two:1.0\": 401 Unauthorized",
                    )),
                    0,
                ),
            ],
            replica_sets: Vec::new(),
            service: service.map(|s| Arc::new(serde_json::from_value(s).expect("service"))),
            events: vec![Arc::new(event)],
        }
    }

    const NOW: i64 = 1_767_229_200; // 2026-01-01T01:00:00Z

    fn pool() -> (String, String) {
        (
            "metallb.io/address-pool".to_owned(),
            "geddes-public-pool".to_owned(),
        )
    }

    #[test]
    fn a_row_counts_phases_restarts_and_readiness() {
        let row = row(&objects(None), NOW, &pool());
        assert_eq!((row.desired, row.ready, row.restarts), (2, 1, 2));
        assert_eq!(
            row.phases,
            vec![("Running".to_owned(), 1), ("Pending".to_owned(), 1)]
        );
        assert_eq!(row.age, "1h");
        assert_eq!(row.state, "trouble");
        assert_eq!(row.exposure, "none");
        assert!(row.address.is_none());
    }

    #[test]
    fn a_warning_from_the_start_does_not_make_a_ready_workload_trouble() {
        let mut objects = objects(None);
        // Both pods ready now; the recent Warning Event stays.
        let ready_pod = objects
            .pods
            .iter()
            .find(|p| phase_of(p) == "Running")
            .cloned()
            .expect("a running pod");
        objects.pods = vec![ready_pod.clone(), ready_pod];
        let mut deployment = (*objects.deployment).clone();
        if let Some(status) = deployment.status.as_mut() {
            status.ready_replicas = Some(2);
        }
        objects.deployment = Arc::new(deployment);
        let row = row(&objects, NOW, &pool());
        assert_eq!(row.ready, row.desired);
        assert!(!objects.events.is_empty());
        assert_eq!(row.state, "ready");
    }

    #[test]
    fn pods_and_events_are_in_plain_words() {
        let objects = objects(None);
        let pods = pod_views(&objects, NOW, None);
        assert_eq!(pods[0].ready, "1/1");
        assert!(
            pods[1]
                .problem
                .as_deref()
                .is_some_and(|p| p.contains("refused the credentials")),
            "{:?}",
            pods[1].problem
        );
        let events = event_views(&objects, NOW, None);
        assert_eq!(events[0].object, "replicaset add-two-5d8f");
        assert_eq!(events[0].age, "1m");
        assert_eq!(events[0].count, 3);
        assert!(events[0].text.starts_with(
            "your namespace's memory quota is full: 3Gi of 4Gi used and this pod asks for 2Gi"
        ));
    }

    #[test]
    fn a_load_balancer_shows_its_address_dns_name_and_the_add_two_curl() {
        let service = json!({
            "metadata": {"name": "add-two", "namespace": "cs101"},
            "spec": {"type": "LoadBalancer", "clusterIP": "10.96.0.12",
                     "ports": [{"port": 8080, "targetPort": 5000, "protocol": "TCP"}]},
            "status": {"loadBalancer": {"ingress": [{"ip": "128.211.0.7"}]}}
        });
        let objects = objects(Some(service));
        let view = service_view(&objects, "geddes.rcac.purdue.edu").expect("a service");
        assert_eq!(view.address.as_deref(), Some("128.211.0.7"));
        assert_eq!(
            view.dns_name.as_deref(),
            Some("add-two.cs101.geddes.rcac.purdue.edu")
        );
        assert_eq!(
            view.ports[0].url.as_deref(),
            Some("http://128.211.0.7:8080/")
        );
        assert_eq!(view.ports[0].target, "5000");
        assert_eq!(
            view.curl.as_deref(),
            Some(
                "curl -X POST -H 'Content-Type: application/json' -d '{\"num\": 123}' http://128.211.0.7:8080/add_two"
            )
        );
        assert_eq!(
            view.python.as_deref(),
            Some(
                "import json, urllib.request\n\
                 request = urllib.request.Request(\n    \"http://128.211.0.7:8080/add_two\",\n    \
                 data=json.dumps({\"num\": 123}).encode(),\n    \
                 headers={\"Content-Type\": \"application/json\"},\n    \
                 method=\"POST\",\n)\n\
                 print(urllib.request.urlopen(request).read().decode())"
            )
        );
        assert_eq!(
            view.try_what.as_deref(),
            Some(
                "POST {\"num\": 123} to http://128.211.0.7:8080/add_two; it answers {\"output\": 125}."
            )
        );
        assert_eq!(row(&objects, NOW, &pool()).exposure, "campus");
    }

    #[test]
    fn a_pending_load_balancer_has_no_address_yet() {
        let service = json!({
            "metadata": {"name": "add-two", "namespace": "cs101"},
            "spec": {"type": "LoadBalancer", "ports": [{"port": 80}]},
        });
        let view = service_view(&objects(Some(service)), "example.edu").expect("a service");
        assert!(view.address.is_none() && view.curl.is_none());
        assert!(view.ports[0].url.is_none());
        assert_eq!(view.dns_name.as_deref(), Some("add-two.cs101.example.edu"));
    }

    fn deployment_status(generation: i64, status: serde_json::Value) -> Deployment {
        serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "cs101", "generation": generation},
            "spec": {"replicas": 2, "selector": {}, "template": {}},
            "status": status,
        }))
        .expect("deployment")
    }

    #[test]
    fn rollout_progress_is_told_in_words() {
        let replica_set = |revision: &str, ready: i32| -> Arc<ReplicaSet> {
            Arc::new(
                serde_json::from_value(json!({
                    "metadata": {"name": format!("web-{revision}"),
                                 "annotations": {"deployment.kubernetes.io/revision": revision}},
                    "status": {"replicas": 1, "readyReplicas": ready},
                }))
                .expect("replica set"),
            )
        };
        let rolling = rollout_view(
            &deployment_status(
                2,
                json!({"observedGeneration": 2, "replicas": 3, "updatedReplicas": 1, "readyReplicas": 2, "availableReplicas": 2}),
            ),
            &[replica_set("10", 0), replica_set("9", 2)],
        );
        assert_eq!(
            rolling.text,
            "Rolling out: 1 of 2 pods runs the latest version, 0 of them ready. 2 old pods still running until the new ones are ready."
        );
        assert!(!rolling.done && rolling.stuck.is_none());

        let done = rollout_view(
            &deployment_status(
                2,
                json!({"observedGeneration": 2, "replicas": 2, "updatedReplicas": 2, "readyReplicas": 2, "availableReplicas": 2}),
            ),
            &[],
        );
        assert!(done.done);
        assert_eq!(
            done.text,
            "Up to date: all 2 pods run the latest version and are ready."
        );

        let unseen = rollout_view(&deployment_status(3, json!({"observedGeneration": 2})), &[]);
        assert!(!unseen.done);

        let stuck = rollout_view(
            &deployment_status(
                2,
                json!({"observedGeneration": 2, "replicas": 3, "updatedReplicas": 1, "readyReplicas": 2,
                       "conditions": [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
                                       "message": "ReplicaSet \"web-7c9\" has timed out progressing."}]}),
            ),
            &[],
        );
        let why = stuck.stuck.expect("stuck");
        assert!(
            why.starts_with("The rollout is stuck: Kubernetes saw no progress for 10 minutes and stopped waiting (ReplicaSet \"web-7c9\" has timed out progressing.)"),
            "{why}"
        );
    }

    #[test]
    fn claims_named_after_the_workload_are_its_own() {
        assert_eq!(
            claims_of(&objects(None).deployment),
            vec![("add-two-data".to_owned(), true)]
        );
    }

    #[test]
    fn ages_are_short() {
        assert_eq!(age(100, 95), "5s");
        assert_eq!(age(1000, 0), "16m");
        assert_eq!(age(7200, 0), "2h");
        assert_eq!(age(200_000, 0), "2d");
        assert_eq!(age(0, 10), "0s");
    }
}
