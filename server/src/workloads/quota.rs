//! The quota check before submit: what a workload will take of its
//! namespace's remaining quota, in the numbers a student can act on, and
//! whether the apiserver would refuse it.
//!
//! Deployments are admitted whatever their size: it is their pods that the
//! quota refuses, later, in a ReplicaSet event nobody reads. So Berth checks
//! up front, with the same defaulting Kubernetes applies (a request defaults to
//! the limit, then to the LimitRange's default request, then its default limit).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{LimitRange, ResourceQuota, Service};

use super::spec::{ClaimSource, Exposure, Resources, WorkloadSpec};
use crate::kube::{cached::ContainerResources, quantity};

/// Per-pod CPU and memory, after defaulting, in cores and bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PodResources {
    /// `requests.cpu` in cores.
    pub cpu_request: f64,
    /// `requests.memory` in bytes.
    pub memory_request: f64,
    /// `limits.cpu` in cores (0 when unlimited).
    pub cpu_limit: f64,
    /// `limits.memory` in bytes (0 when unlimited).
    pub memory_limit: f64,
}

/// Container defaults from the namespace's LimitRange.
#[derive(Debug, Clone, Default)]
pub struct Defaults {
    /// `default` (limits) by resource.
    pub limit: BTreeMap<String, String>,
    /// `defaultRequest` by resource.
    pub request: BTreeMap<String, String>,
}

impl Defaults {
    /// The container defaults of the namespace's LimitRanges.
    pub fn from_limit_ranges<'a>(ranges: impl IntoIterator<Item = &'a LimitRange>) -> Self {
        let mut defaults = Self::default();
        for range in ranges {
            let Some(spec) = &range.spec else { continue };
            for item in spec.limits.iter().filter(|l| l.type_ == "Container") {
                for (key, value) in item.default.iter().flatten() {
                    defaults.limit.insert(key.clone(), value.0.clone());
                }
                for (key, value) in item.default_request.iter().flatten() {
                    defaults.request.insert(key.clone(), value.0.clone());
                }
            }
        }
        defaults
    }
}

fn amount(text: Option<&str>) -> Option<f64> {
    text.and_then(|t| quantity::parse(t).ok())
}

/// Per-pod resources as the apiserver will see them after defaulting.
pub fn pod_resources(r: &Resources, defaults: &Defaults) -> PodResources {
    let amount = |text: &Option<String>| amount(text.as_deref());
    defaulted(
        &ContainerResources {
            cpu_request: amount(&r.cpu_request),
            cpu_limit: amount(&r.cpu_limit),
            memory_request: amount(&r.memory_request),
            memory_limit: amount(&r.memory_limit),
        },
        defaults,
    )
}

/// One container's resources after the apiserver's defaulting.
fn defaulted(r: &ContainerResources, defaults: &Defaults) -> PodResources {
    let effective = |request: Option<f64>, limit: Option<f64>, key: &str| {
        let limit_value = limit.or_else(|| amount(defaults.limit.get(key).map(String::as_str)));
        let request_value = request
            .or(limit)
            .or_else(|| amount(defaults.request.get(key).map(String::as_str)))
            .or(limit_value);
        (request_value.unwrap_or(0.0), limit_value.unwrap_or(0.0))
    };
    let (cpu_request, cpu_limit) = effective(r.cpu_request, r.cpu_limit, "cpu");
    let (memory_request, memory_limit) = effective(r.memory_request, r.memory_limit, "memory");
    PodResources {
        cpu_request,
        memory_request,
        cpu_limit,
        memory_limit,
    }
}

/// Amounts by quota key.
pub type Amounts = BTreeMap<&'static str, f64>;

/// The quota keys one pod counts in.
const POD_KEYS: [&str; 5] = [
    "pods",
    "requests.cpu",
    "requests.memory",
    "limits.cpu",
    "limits.memory",
];

impl PodResources {
    /// What one pod counts, by key (`pods` is 1).
    fn per_key(&self, key: &str) -> f64 {
        match key {
            "pods" => 1.0,
            "requests.cpu" => self.cpu_request,
            "requests.memory" => self.memory_request,
            "limits.cpu" => self.cpu_limit,
            "limits.memory" => self.memory_limit,
            _ => 0.0,
        }
    }
}

/// What a workload's Service and new claim count: `services`,
/// `services.loadbalancers`, `services.nodeports` (a LoadBalancer allocates
/// a node port per port unless told not to, and the quota counts them),
/// `persistentvolumeclaims` and `requests.storage`.
fn object_demand(spec: &WorkloadSpec) -> Amounts {
    let mut demand = Amounts::new();
    if spec.exposure != Exposure::None {
        demand.insert("services", 1.0);
    }
    if matches!(spec.exposure, Exposure::Campus | Exposure::Public) {
        demand.insert("services.loadbalancers", 1.0);
        demand.insert("services.nodeports", spec.ports.len() as f64);
    }
    if let Some(volume) = &spec.volume
        && let ClaimSource::New { size, .. } = &volume.claim
    {
        demand.insert("persistentvolumeclaims", 1.0);
        demand.insert("requests.storage", amount(Some(size)).unwrap_or(0.0));
    }
    demand
}

/// What a workload's new claim counts: `persistentvolumeclaims` and
/// `requests.storage` (nothing for no volume or an existing claim).
pub fn claim_demand(spec: &WorkloadSpec) -> Amounts {
    object_demand(spec)
        .into_iter()
        .filter(|(key, _)| matches!(*key, "persistentvolumeclaims" | "requests.storage"))
        .collect()
}

/// What a live pod template holds, per pod: its containers' resources
/// (as the cache keeps them), defaulted, summed.
pub fn live_pod(containers: &[ContainerResources], defaults: &Defaults) -> PodResources {
    let mut total = PodResources::default();
    for container in containers {
        let one = defaulted(container, defaults);
        total.cpu_request += one.cpu_request;
        total.memory_request += one.memory_request;
        total.cpu_limit += one.cpu_limit;
        total.memory_limit += one.memory_limit;
    }
    total
}

/// What a live Service counts, the way the apiserver's quota evaluator
/// counts it: a LoadBalancer one load balancer and a node port per port
/// (unless node ports are switched off), a NodePort Service its ports.
pub fn service_demand(service: &Service) -> Amounts {
    let mut demand = Amounts::from([("services", 1.0)]);
    let Some(spec) = &service.spec else {
        return demand;
    };
    let ports = spec.ports.as_deref().unwrap_or_default();
    match spec.type_.as_deref() {
        Some("LoadBalancer") => {
            demand.insert("services.loadbalancers", 1.0);
            let node_ports = if spec.allocate_load_balancer_node_ports == Some(false) {
                ports.iter().filter(|p| p.node_port.is_some()).count()
            } else {
                ports.len()
            };
            demand.insert("services.nodeports", node_ports as f64);
        }
        Some("NodePort") => {
            demand.insert("services.nodeports", ports.len() as f64);
        }
        _ => {}
    }
    demand
}

/// What a workload holds of the quota once it runs, by quota key.
pub fn demand(spec: &WorkloadSpec, defaults: &Defaults) -> Amounts {
    let pod = pod_resources(&spec.resources, defaults);
    let replicas = f64::from(spec.replicas);
    let mut demand: Amounts = POD_KEYS
        .iter()
        .map(|key| (*key, replicas * pod.per_key(key)))
        .collect();
    demand.extend(object_demand(spec));
    demand
}

/// What the workload being edited holds now, read from the cluster.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Existing {
    /// Replicas of the live Deployment.
    pub replicas: i32,
    /// One live pod's resources, after defaulting.
    pub pod: PodResources,
    /// What its Service and claim count (see `object_demand`).
    pub objects: Amounts,
}

impl Existing {
    /// Everything it counts in the quota now.
    pub fn held(&self) -> Amounts {
        let replicas = f64::from(self.replicas);
        let mut held: Amounts = POD_KEYS
            .iter()
            .map(|key| (*key, replicas * self.pod.per_key(key)))
            .collect();
        for (key, value) in &self.objects {
            *held.entry(key).or_insert(0.0) += value;
        }
        held
    }
}

/// An edit of a workload that exists.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Edit {
    /// What it holds now.
    pub existing: Existing,
    /// Whether the pod template changes (a rollout), or only the replicas.
    pub template_changes: bool,
}

/// How many extra pods a rolling update may start: Kubernetes' default
/// `maxSurge` of 25%, rounded up (Berth sets no strategy of its own for a
/// rolling update).
pub fn max_surge(replicas: i32) -> i32 {
    (replicas.max(0) + 3) / 4
}

/// The most a change holds at any moment, by key. A rolling update keeps at
/// most `replicas + maxSurge` pods, old and new together, so for each key the
/// peak is at a corner of {old ≤ R_old, new ≤ R_new, old + new ≤ R_new + S}.
/// `Recreate` (a workload with a volume) stops the old pods first. Pods that
/// are terminating still count in the quota for their grace period; the
/// Deployment controller does not wait for them, so this is a lower bound of
/// the worst case, which is what admission would refuse.
fn peak(spec: &WorkloadSpec, defaults: &Defaults, edit: Option<&Edit>) -> Amounts {
    let mut needed = demand(spec, defaults);
    let Some(edit) = edit else {
        return needed;
    };
    let rolling = edit.template_changes && spec.volume.is_none();
    let r_new = f64::from(spec.replicas.max(0));
    let surge = f64::from(max_surge(spec.replicas));
    let r_old = f64::from(edit.existing.replicas.max(0)).min(r_new + surge);
    if !rolling || r_new == 0.0 || r_old == 0.0 {
        return needed;
    }
    let new_pod = pod_resources(&spec.resources, defaults);
    for key in POD_KEYS {
        let (o, n) = (edit.existing.pod.per_key(key), new_pod.per_key(key));
        let first = r_old * o + r_new.min(r_new + surge - r_old) * n;
        let last = r_old.min(surge) * o + r_new * n;
        needed.insert(key, first.max(last).max(r_new * n));
    }
    needed
}

/// One quota line: what is used, the hard cap, and what this deploy needs.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    /// Quota key, e.g. `requests.memory`.
    pub key: &'static str,
    /// Used now, as the quota controller counted it.
    pub used: f64,
    /// The cap.
    pub hard: f64,
    /// The most this deploy holds at once (during a rolling update, old and
    /// new pods together).
    pub asked: f64,
    /// What the workload being edited holds now (0 for a new one).
    pub held: f64,
}

impl Line {
    /// What is left now.
    pub fn remaining(&self) -> f64 {
        (self.hard - self.used).max(0.0)
    }

    /// What this deploy adds to what is used.
    pub fn extra(&self) -> f64 {
        self.asked - self.held
    }

    /// Whether this deploy fits (with a hair of slack for float rounding).
    pub fn fits(&self) -> bool {
        self.used + self.extra() <= self.hard + 1e-9
    }

    /// The line in words: "2Gi memory requested of your remaining 3Gi", or
    /// for an edit "1 more pods of your remaining 0".
    pub fn describe(&self) -> String {
        let label = label(self.key);
        let remaining = format_amount(self.key, self.remaining());
        if self.held <= 0.0 {
            return format!(
                "{} {label} of your remaining {remaining}",
                format_amount(self.key, self.asked)
            );
        }
        let extra = self.extra();
        if extra > 1e-9 {
            format!(
                "{} more {label} of your remaining {remaining}",
                format_amount(self.key, extra)
            )
        } else if extra < -1e-9 {
            format!(
                "{} {label} fewer than now (remaining: {remaining})",
                format_amount(self.key, -extra)
            )
        } else {
            format!("no more {label} than now (remaining: {remaining})")
        }
    }
}

/// The quota check's result.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Check {
    /// One line per quota key this deploy touches and the quota caps.
    pub lines: Vec<Line>,
    /// "2 replicas × 500m / 1Gi = 1 CPU / 2Gi": what one pod takes, times replicas.
    pub summary: String,
    /// For a rolling update: how many pods run at most while it rolls out.
    pub rollout: Option<String>,
}

impl Check {
    /// The lines that do not fit.
    pub fn over(&self) -> Vec<&Line> {
        self.lines.iter().filter(|l| !l.fits()).collect()
    }

    /// A sentence for a refusal, naming every key that does not fit.
    pub fn refusal(&self) -> Option<String> {
        let over = self.over();
        if over.is_empty() {
            return None;
        }
        let parts: Vec<String> = over.iter().map(|l| l.describe()).collect();
        let during = if self.rollout.is_some() {
            " while the old and new pods run side by side during the rolling update"
        } else {
            ""
        };
        Some(format!(
            "This would go over the namespace's quota: it needs {}{during}. Lower the replicas or the requests, or ask an admin for more.",
            parts.join("; ")
        ))
    }
}

/// Compares what `spec` needs with the namespace's quotas. For an edit,
/// only the difference from what exists counts (what it holds now is in
/// `used` already), including the extra pods a rolling update briefly runs.
pub fn check<'a>(
    spec: &WorkloadSpec,
    defaults: &Defaults,
    quotas: impl IntoIterator<Item = &'a ResourceQuota>,
    edit: Option<&Edit>,
) -> Check {
    let needed = peak(spec, defaults, edit);
    let held = edit.map(|e| e.existing.held()).unwrap_or_default();
    let mut lines = Vec::new();
    for quota in quotas {
        // A quota the controller has not counted yet has no status: its spec
        // is the cap and nothing is used (the namespace is new).
        let status = quota.status.clone().unwrap_or_default();
        let hard = status
            .hard
            .or_else(|| quota.spec.as_ref().and_then(|s| s.hard.clone()))
            .unwrap_or_default();
        let used = status.used.unwrap_or_default();
        let keys: std::collections::BTreeSet<&'static str> =
            needed.keys().chain(held.keys()).copied().collect();
        for key in keys {
            // `cpu` and `memory` are the old names of requests.cpu/memory.
            let aliases: Vec<&'static str> = match key {
                "requests.cpu" => vec!["requests.cpu", "cpu"],
                "requests.memory" => vec!["requests.memory", "memory"],
                other => vec![other],
            };
            for alias in aliases {
                let Some(hard_value) = hard.get(alias).and_then(|q| quantity::parse(&q.0).ok())
                else {
                    continue;
                };
                let used_value = used
                    .get(alias)
                    .and_then(|q| quantity::parse(&q.0).ok())
                    .unwrap_or(0.0);
                lines.push(Line {
                    key,
                    used: used_value,
                    hard: hard_value,
                    asked: needed.get(key).copied().unwrap_or(0.0),
                    held: held.get(key).copied().unwrap_or(0.0),
                });
            }
        }
    }
    let pod = pod_resources(&spec.resources, defaults);
    let summary = format!(
        "{} replica{} × {} CPU / {} = {} CPU / {}",
        spec.replicas,
        if spec.replicas == 1 { "" } else { "s" },
        format_cpu(pod.cpu_request),
        format_bytes(pod.memory_request),
        format_cpu(f64::from(spec.replicas) * pod.cpu_request),
        format_bytes(f64::from(spec.replicas) * pod.memory_request),
    );
    let rollout = edit
        .filter(|e| e.template_changes && spec.volume.is_none() && e.existing.replicas > 0)
        .filter(|_| spec.replicas > 0)
        .map(|_| {
            let most = needed.get("pods").copied().unwrap_or(0.0);
            format!(
                "While the change rolls out, Kubernetes starts new pods before it stops old ones: up to {} pods at once.",
                most.round()
            )
        });
    Check {
        lines,
        summary,
        rollout,
    }
}

fn label(key: &str) -> &'static str {
    match key {
        "pods" => "pods",
        "requests.cpu" => "CPU requested",
        "requests.memory" => "memory requested",
        "limits.cpu" => "CPU limit",
        "limits.memory" => "memory limit",
        "services" => "services",
        "services.loadbalancers" => "load balancers",
        "services.nodeports" => "node ports",
        "persistentvolumeclaims" => "volumes",
        "requests.storage" => "storage",
        _ => "",
    }
}

fn format_amount(key: &str, value: f64) -> String {
    if key.ends_with("cpu") {
        format_cpu(value)
    } else if key.ends_with("memory") || key == "requests.storage" {
        format_bytes(value)
    } else {
        format!("{}", value.round())
    }
}

/// Cores as `500m` or `1.5`.
pub fn format_cpu(cores: f64) -> String {
    let millis = (cores * 1000.0).round();
    if millis % 1000.0 == 0.0 {
        format!("{}", millis / 1000.0)
    } else if millis < 1000.0 {
        format!("{millis}m")
    } else {
        format!("{}", (millis / 10.0).round() / 100.0)
    }
}

/// Bytes as `512Mi`, `2Gi`, `1.5Gi`.
pub fn format_bytes(bytes: f64) -> String {
    const GI: f64 = 1024.0 * 1024.0 * 1024.0;
    const MI: f64 = 1024.0 * 1024.0;
    if bytes >= GI {
        let gi = (bytes / GI * 100.0).round() / 100.0;
        format!("{gi}Gi")
    } else {
        format!("{}Mi", (bytes / MI).round())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workloads::spec::{PortMapping, Protocol, Resources, Volume};

    fn spec(replicas: i32) -> WorkloadSpec {
        WorkloadSpec {
            namespace: "cs101".into(),
            name: "app".into(),
            image: "r.example/p/app:1".into(),
            pull_secret: None,
            replicas,
            container_port: Some(80),
            command: vec![],
            args: vec![],
            env: vec![],
            resources: Resources {
                cpu_request: Some("500m".into()),
                cpu_limit: None,
                memory_request: Some("1Gi".into()),
                memory_limit: None,
            },
            volume: None,
            exposure: Exposure::Campus,
            ports: vec![PortMapping {
                published: 80,
                target: 80,
                protocol: Protocol::Tcp,
            }],
            owner: "s@purdue.edu".into(),
        }
    }

    fn quota(hard: &[(&str, &str)], used: &[(&str, &str)]) -> ResourceQuota {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "berth-quota"},
            "status": {
                "hard": hard.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect::<BTreeMap<_, _>>(),
                "used": used.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect::<BTreeMap<_, _>>(),
            },
        }))
        .expect("quota")
    }

    #[test]
    fn a_live_pod_is_its_containers_defaulted_as_the_apiserver_would_and_summed() {
        let defaults = Defaults {
            limit: BTreeMap::from([("memory".into(), "512Mi".into())]),
            request: BTreeMap::from([("cpu".into(), "100m".into())]),
        };
        let pod = live_pod(
            &[
                // A limit alone is also the request.
                ContainerResources {
                    cpu_limit: Some(1.0),
                    ..Default::default()
                },
                // Nothing set: both defaults.
                ContainerResources::default(),
            ],
            &defaults,
        );
        let mib = 1024.0 * 1024.0;
        assert_eq!(
            pod,
            PodResources {
                cpu_request: 1.1,
                memory_request: 1024.0 * mib,
                cpu_limit: 1.0,
                memory_limit: 1024.0 * mib,
            }
        );
    }

    #[test]
    fn the_summary_and_lines_say_what_it_takes_of_what_is_left() {
        let q = quota(
            &[
                ("requests.cpu", "4"),
                ("requests.memory", "6Gi"),
                ("services.loadbalancers", "1"),
            ],
            &[
                ("requests.cpu", "1"),
                ("requests.memory", "2Gi"),
                ("services.loadbalancers", "0"),
            ],
        );
        let check = check(&spec(2), &Defaults::default(), [&q], None);
        assert_eq!(check.summary, "2 replicas × 500m CPU / 1Gi = 1 CPU / 2Gi");
        assert!(check.over().is_empty(), "{check:?}");
        let memory = check
            .lines
            .iter()
            .find(|l| l.key == "requests.memory")
            .expect("memory line");
        assert_eq!(
            memory.describe(),
            "2Gi memory requested of your remaining 4Gi"
        );
        let lb = check
            .lines
            .iter()
            .find(|l| l.key == "services.loadbalancers")
            .expect("lb line");
        assert_eq!(lb.describe(), "1 load balancers of your remaining 1");
    }

    #[test]
    fn over_quota_is_refused_with_the_numbers() {
        let q = quota(&[("requests.memory", "4Gi")], &[("requests.memory", "3Gi")]);
        let check = check(&spec(2), &Defaults::default(), [&q], None);
        let refusal = check.refusal().expect("refused");
        assert!(
            refusal.contains("2Gi memory requested of your remaining 1Gi"),
            "{refusal}"
        );
    }

    fn gib(n: f64) -> f64 {
        n * 1024.0 * 1024.0 * 1024.0
    }

    /// An exposed workload as it runs: `replicas` pods of 500m / `memory_gib`
    /// and a LoadBalancer with one port.
    fn running(replicas: i32, memory_gib: f64) -> Existing {
        Existing {
            replicas,
            pod: PodResources {
                cpu_request: 0.5,
                memory_request: gib(memory_gib),
                ..PodResources::default()
            },
            objects: BTreeMap::from([
                ("services", 1.0),
                ("services.loadbalancers", 1.0),
                ("services.nodeports", 1.0),
            ]),
        }
    }

    #[test]
    fn scaling_an_exposed_workload_does_not_ask_for_its_load_balancer_again() {
        // The namespace's one load balancer is the workload's own.
        let q = quota(
            &[
                ("services.loadbalancers", "1"),
                ("services", "1"),
                ("services.nodeports", "1"),
                ("pods", "2"),
                ("requests.memory", "4Gi"),
            ],
            &[
                ("services.loadbalancers", "1"),
                ("services", "1"),
                ("services.nodeports", "1"),
                ("pods", "1"),
                ("requests.memory", "1Gi"),
            ],
        );
        let edit = Edit {
            existing: running(1, 1.0),
            template_changes: false,
        };
        let check = check(&spec(2), &Defaults::default(), [&q], Some(&edit));
        assert!(check.over().is_empty(), "{check:?}");
        let line = |key: &str| {
            check
                .lines
                .iter()
                .find(|l| l.key == key)
                .unwrap_or_else(|| panic!("{key} line"))
                .describe()
        };
        assert_eq!(
            line("services.loadbalancers"),
            "no more load balancers than now (remaining: 0)"
        );
        assert_eq!(line("pods"), "1 more pods of your remaining 1");
        assert!(check.rollout.is_none(), "scaling is not a rollout");

        // A third replica is one pod too many, and says so in the difference.
        let check = super::check(&spec(3), &Defaults::default(), [&q], Some(&edit));
        let refusal = check.refusal().expect("refused");
        assert!(
            refusal.contains("2 more pods of your remaining 1"),
            "{refusal}"
        );
        assert!(!refusal.contains("load balancers"), "{refusal}");
    }

    #[test]
    fn a_rolling_update_needs_room_for_its_surge_pods() {
        let q = quota(&[("pods", "1")], &[("pods", "1")]);
        let edit = Edit {
            existing: running(1, 1.0),
            template_changes: true,
        };
        let check = check(&spec(1), &Defaults::default(), [&q], Some(&edit));
        let refusal = check.refusal().expect("no room for the new pod");
        assert!(
            refusal.contains("1 more pods of your remaining 0"),
            "{refusal}"
        );
        assert!(refusal.contains("rolling update"), "{refusal}");
        assert!(
            check
                .rollout
                .as_deref()
                .is_some_and(|r| r.contains("up to 2 pods")),
            "{check:?}"
        );
        // The same edit with a volume recreates: old pods go first.
        let mut with_volume = spec(1);
        with_volume.volume = Some(Volume {
            claim: ClaimSource::Existing("data".into()),
            mount_path: "/data".into(),
        });
        let check = super::check(&with_volume, &Defaults::default(), [&q], Some(&edit));
        assert!(check.over().is_empty(), "{check:?}");
    }

    #[test]
    fn the_rollout_peak_mixes_old_and_new_pod_sizes() {
        assert_eq!(
            [0, 1, 2, 4, 5, 8].map(max_surge),
            [0, 1, 1, 1, 2, 2],
            "25%, rounded up"
        );
        // 2 × 1Gi now, 2 × 512Mi wanted: at first both old pods and one new
        // one run (2.5Gi), which is 512Mi more than now.
        let mut smaller = spec(2);
        smaller.resources.memory_request = Some("512Mi".into());
        let edit = Edit {
            existing: running(2, 1.0),
            template_changes: true,
        };
        let q = quota(&[("requests.memory", "3Gi")], &[("requests.memory", "2Gi")]);
        let check = check(&smaller, &Defaults::default(), [&q], Some(&edit));
        let line = &check.lines[0];
        assert_eq!(line.asked, gib(2.5));
        assert_eq!(line.held, gib(2.0));
        assert_eq!(
            line.describe(),
            "512Mi more memory requested of your remaining 1Gi"
        );
        assert!(line.fits());
        // Growing instead: at the end two new pods and one old run (5Gi).
        let mut bigger = spec(2);
        bigger.resources.memory_request = Some("2Gi".into());
        let check = super::check(&bigger, &Defaults::default(), [&q], Some(&edit));
        assert_eq!(check.lines[0].asked, gib(5.0));
        assert!(!check.lines[0].fits());
    }

    #[test]
    fn a_load_balancer_counts_its_node_ports() {
        let q = quota(
            &[("services.nodeports", "0")],
            &[("services.nodeports", "0")],
        );
        let check = check(&spec(1), &Defaults::default(), [&q], None);
        assert!(
            check
                .refusal()
                .expect("refused")
                .contains("1 node ports of your remaining 0"),
            "{check:?}"
        );
    }

    #[test]
    fn defaults_follow_kubernetes_order() {
        let defaults = Defaults {
            limit: BTreeMap::from([
                ("memory".into(), "512Mi".into()),
                ("cpu".into(), "1".into()),
            ]),
            request: BTreeMap::from([("cpu".into(), "100m".into())]),
        };
        let mut s = spec(1);
        s.resources = Resources::default();
        let pod = pod_resources(&s.resources, &defaults);
        assert_eq!(pod.cpu_request, 0.1, "defaultRequest");
        assert_eq!(
            pod.memory_request,
            512.0 * 1024.0 * 1024.0,
            "falls back to the default limit"
        );
        s.resources.memory_limit = Some("256Mi".into());
        let pod = pod_resources(&s.resources, &defaults);
        assert_eq!(
            pod.memory_request,
            256.0 * 1024.0 * 1024.0,
            "request defaults to its own limit"
        );
        assert_eq!(pod.memory_limit, 256.0 * 1024.0 * 1024.0);
    }

    #[test]
    fn a_quota_not_yet_counted_is_checked_against_its_spec() {
        let q: ResourceQuota = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "berth-quota"},
            "spec": {"hard": {"pods": "1"}},
        }))
        .expect("quota");
        let check = check(&spec(2), &Defaults::default(), [&q], None);
        assert!(
            check
                .refusal()
                .expect("refused")
                .contains("2 pods of your remaining 1")
        );
    }

    #[test]
    fn a_new_volume_counts_claims_and_storage() {
        let mut s = spec(1);
        s.exposure = Exposure::None;
        s.volume = Some(Volume {
            claim: ClaimSource::New {
                size: "10Gi".into(),
                storage_class: None,
            },
            mount_path: "/data".into(),
        });
        let d = demand(&s, &Defaults::default());
        assert_eq!(d["persistentvolumeclaims"], 1.0);
        assert_eq!(d["requests.storage"], 10.0 * 1024.0 * 1024.0 * 1024.0);
        assert!(!d.contains_key("services.loadbalancers"));
    }
}
