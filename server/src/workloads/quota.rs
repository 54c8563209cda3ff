//! The quota check before submit: what a workload will take of its
//! namespace's remaining quota, in the numbers a student can act on, and
//! whether the apiserver would refuse it.
//!
//! Deployments are admitted whatever their size: it is their pods that the
//! quota refuses, later, in a ReplicaSet event nobody reads. So Berth checks
//! up front, with the same defaulting Kubernetes applies (a request defaults to
//! the limit, then to the LimitRange's default request, then its default limit).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{LimitRange, ResourceQuota};

use super::spec::{ClaimSource, Exposure, WorkloadSpec};
use crate::kube::quantity;

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
pub fn pod_resources(spec: &WorkloadSpec, defaults: &Defaults) -> PodResources {
    let r = &spec.resources;
    let effective = |request: &Option<String>, limit: &Option<String>, key: &str| {
        let limit_value = amount(limit.as_deref())
            .or_else(|| amount(defaults.limit.get(key).map(String::as_str)));
        let request_value = amount(request.as_deref())
            .or_else(|| amount(limit.as_deref()))
            .or_else(|| amount(defaults.request.get(key).map(String::as_str)))
            .or(limit_value);
        (request_value.unwrap_or(0.0), limit_value.unwrap_or(0.0))
    };
    let (cpu_request, cpu_limit) = effective(&r.cpu_request, &r.cpu_limit, "cpu");
    let (memory_request, memory_limit) = effective(&r.memory_request, &r.memory_limit, "memory");
    PodResources {
        cpu_request,
        memory_request,
        cpu_limit,
        memory_limit,
    }
}

/// What a workload asks of the quota, by quota key.
pub fn demand(spec: &WorkloadSpec, defaults: &Defaults) -> BTreeMap<&'static str, f64> {
    let pod = pod_resources(spec, defaults);
    let replicas = f64::from(spec.replicas);
    let mut demand = BTreeMap::from([
        ("pods", replicas),
        ("requests.cpu", replicas * pod.cpu_request),
        ("requests.memory", replicas * pod.memory_request),
        ("limits.cpu", replicas * pod.cpu_limit),
        ("limits.memory", replicas * pod.memory_limit),
    ]);
    if spec.exposure != Exposure::None {
        demand.insert("services", 1.0);
    }
    if matches!(spec.exposure, Exposure::Campus | Exposure::Public) {
        demand.insert("services.loadbalancers", 1.0);
    }
    if let Some(volume) = &spec.volume
        && let ClaimSource::New { size, .. } = &volume.claim
    {
        demand.insert("persistentvolumeclaims", 1.0);
        demand.insert("requests.storage", amount(Some(size)).unwrap_or(0.0));
    }
    demand
}

/// One quota line: what is used, the hard cap, and what this deploy adds.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    /// Quota key, e.g. `requests.memory`.
    pub key: &'static str,
    /// Already used (without the workload being edited).
    pub used: f64,
    /// The cap.
    pub hard: f64,
    /// What this deploy asks for.
    pub asked: f64,
}

impl Line {
    /// What is left before this deploy.
    pub fn remaining(&self) -> f64 {
        (self.hard - self.used).max(0.0)
    }

    /// Whether this deploy fits (with a hair of slack for float rounding).
    pub fn fits(&self) -> bool {
        self.asked <= self.remaining() + 1e-9
    }

    /// The line in words: "2Gi of your remaining 3Gi (requests.memory)".
    pub fn describe(&self) -> String {
        format!(
            "{} {} of your remaining {}",
            format_amount(self.key, self.asked),
            label(self.key),
            format_amount(self.key, self.remaining())
        )
    }
}

/// The quota check's result.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Check {
    /// One line per quota key this deploy touches and the quota caps.
    pub lines: Vec<Line>,
    /// "2 replicas × 500m / 1Gi = 1 CPU / 2Gi": what one pod takes, times replicas.
    pub summary: String,
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
        Some(format!(
            "This would go over the namespace's quota: it needs {}. Lower the replicas or the requests, or ask an admin for more.",
            parts.join("; ")
        ))
    }
}

/// Compares `demand` with the namespace's quotas; `already` is what the
/// workload being edited uses now (it is counted in `used` and would be
/// replaced).
pub fn check<'a>(
    spec: &WorkloadSpec,
    defaults: &Defaults,
    quotas: impl IntoIterator<Item = &'a ResourceQuota>,
    already: &BTreeMap<&'static str, f64>,
) -> Check {
    let demand = demand(spec, defaults);
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
        for (key, asked) in &demand {
            // `cpu` and `memory` are the old names of requests.cpu/memory.
            let aliases: Vec<&'static str> = match *key {
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
                let credit = already.get(key).copied().unwrap_or(0.0);
                lines.push(Line {
                    key,
                    used: (used_value - credit).max(0.0),
                    hard: hard_value,
                    asked: *asked,
                });
            }
        }
    }
    let pod = pod_resources(spec, defaults);
    let summary = format!(
        "{} replica{} × {} CPU / {} = {} CPU / {}",
        spec.replicas,
        if spec.replicas == 1 { "" } else { "s" },
        format_cpu(pod.cpu_request),
        format_bytes(pod.memory_request),
        format_cpu(f64::from(spec.replicas) * pod.cpu_request),
        format_bytes(f64::from(spec.replicas) * pod.memory_request),
    );
    Check { lines, summary }
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
        let check = check(&spec(2), &Defaults::default(), [&q], &BTreeMap::new());
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
        let check = check(&spec(2), &Defaults::default(), [&q], &BTreeMap::new());
        let refusal = check.refusal().expect("refused");
        assert!(
            refusal.contains("2Gi memory requested of your remaining 1Gi"),
            "{refusal}"
        );
    }

    #[test]
    fn an_edited_workload_gets_credit_for_what_it_already_uses() {
        let q = quota(&[("requests.memory", "4Gi")], &[("requests.memory", "4Gi")]);
        let credit = BTreeMap::from([("requests.memory", 2.0 * 1024.0 * 1024.0 * 1024.0)]);
        let check = check(&spec(2), &Defaults::default(), [&q], &credit);
        assert!(check.over().is_empty(), "{check:?}");
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
        let pod = pod_resources(&s, &defaults);
        assert_eq!(pod.cpu_request, 0.1, "defaultRequest");
        assert_eq!(
            pod.memory_request,
            512.0 * 1024.0 * 1024.0,
            "falls back to the default limit"
        );
        s.resources.memory_limit = Some("256Mi".into());
        let pod = pod_resources(&s, &defaults);
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
        let check = check(&spec(2), &Defaults::default(), [&q], &BTreeMap::new());
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
