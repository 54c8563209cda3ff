//! Usage of a namespace as pages show it: quota used/hard as bars, workload
//! counts. Read from the watch caches only.

use k8s_openapi::api::core::v1::Namespace;
use kube::ResourceExt;

use super::{objects, spec::QUOTA};
use crate::kube::{Caches, quantity};

/// One quota bar.
#[derive(Debug, Clone)]
pub struct Bar {
    /// Kubernetes key (`requests.memory`), for sorting.
    pub key: &'static str,
    /// What it measures.
    pub label: &'static str,
    /// Used, as the apiserver counts it.
    pub used: String,
    /// The quota.
    pub hard: String,
    /// Used / hard, 0–100 (100 when over or when the quota is zero).
    pub percent: u32,
    /// `percent` rounded down to a multiple of 5, for the CSS width class.
    pub step: u32,
    /// `""`, `warn` (≥ 80 %) or `full` (≥ 100 %).
    pub class: &'static str,
}

/// One namespace's usage.
#[derive(Debug, Clone)]
pub struct NamespaceUsage {
    /// The namespace's name.
    pub name: String,
    /// Its description.
    pub description: String,
    /// Being deleted.
    pub terminating: bool,
    /// Quota bars, in the form's order.
    pub bars: Vec<Bar>,
    /// Deployments in it.
    pub deployments: usize,
    /// Pods in it.
    pub pods: usize,
    /// Members (from SQLite, filled by the caller).
    pub members: i64,
}

impl NamespaceUsage {
    /// The bar for a key, if the quota sets it.
    pub fn bar(&self, key: &str) -> Option<&Bar> {
        self.bars.iter().find(|b| b.key == key)
    }
}

/// A bar from used and hard quantities.
pub fn bar(key: &'static str, label: &'static str, used: &str, hard: &str) -> Bar {
    let used_n = quantity::parse(used).unwrap_or(0.0);
    let hard_n = quantity::parse(hard).unwrap_or(0.0);
    let ratio = if hard_n > 0.0 {
        used_n / hard_n
    } else if used_n > 0.0 {
        1.0
    } else {
        // A zero quota with nothing used: nothing may be made; show it as full.
        1.0
    };
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "clamped to 0..=100 first"
    )]
    let percent = (ratio * 100.0).clamp(0.0, 100.0).round() as u32;
    Bar {
        key,
        label,
        used: used.to_owned(),
        hard: hard.to_owned(),
        percent,
        step: percent / 5 * 5,
        class: if percent >= 100 {
            "full"
        } else if percent >= 80 {
            "warn"
        } else {
            ""
        },
    }
}

/// The usage of `namespace`, from the caches. Uses the quota's status (what
/// the apiserver enforces); before the quota controller has counted, shows
/// the spec with nothing used.
pub fn usage_of(caches: &Caches, namespace: &Namespace) -> NamespaceUsage {
    let name = namespace.name_any();
    let quota = caches.quotas.get(&name, objects::QUOTA_NAME);
    let status = quota.as_ref().and_then(|q| q.status.as_ref());
    let hard = status
        .and_then(|s| s.hard.clone())
        .or_else(|| {
            quota
                .as_ref()
                .and_then(|q| q.spec.as_ref())
                .and_then(|s| s.hard.clone())
        })
        .unwrap_or_default();
    let used = status.and_then(|s| s.used.clone()).unwrap_or_default();
    let bars = QUOTA
        .iter()
        .filter_map(|setting| {
            let hard = hard.get(setting.key)?;
            let used = used.get(setting.key).map_or("0", |q| q.0.as_str());
            Some(bar(setting.key, setting.label, used, &hard.0))
        })
        .collect();
    NamespaceUsage {
        description: objects::description_of(namespace),
        terminating: namespace.metadata.deletion_timestamp.is_some()
            || namespace.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Terminating"),
        bars,
        deployments: caches.deployments.count_in(&name),
        pods: caches.pods.count_in(&name),
        members: 0,
        name,
    }
}

/// How the overview can be sorted.
pub const SORT_KEYS: [(&str, &str); 7] = [
    ("name", "Name"),
    ("requests.cpu", "CPU"),
    ("requests.memory", "Memory"),
    ("pods", "Pods"),
    ("members", "Members"),
    ("deployments", "Deployments"),
    ("running", "Running pods"),
];

/// Sorts the overview by `key` (a [`SORT_KEYS`] key; unknown keys sort by name).
pub fn sort(rows: &mut [NamespaceUsage], key: &str, descending: bool) {
    let percent = |row: &NamespaceUsage, k: &str| row.bar(k).map_or(-1, |b| i64::from(b.percent));
    rows.sort_by(|a, b| {
        let order = match key {
            "members" => a.members.cmp(&b.members),
            "deployments" => a.deployments.cmp(&b.deployments),
            "running" => a.pods.cmp(&b.pods),
            "requests.cpu" | "requests.memory" | "pods" => percent(a, key).cmp(&percent(b, key)),
            _ => std::cmp::Ordering::Equal,
        }
        .then_with(|| a.name.cmp(&b.name));
        if descending { order.reverse() } else { order }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_compare_used_with_hard_across_units() {
        let b = bar("requests.memory", "Memory", "512Mi", "1Gi");
        assert_eq!((b.percent, b.step, b.class), (50, 50, ""));
        let b = bar("requests.cpu", "CPU", "900m", "1");
        assert_eq!((b.percent, b.class), (90, "warn"));
        let b = bar("pods", "Pods", "5", "4");
        assert_eq!((b.percent, b.class), (100, "full"));
        let b = bar("pods", "Pods", "0", "10");
        assert_eq!((b.percent, b.step), (0, 0));
        let b = bar("pods", "Pods", "3", "7");
        assert_eq!((b.percent, b.step), (43, 40));
    }

    fn row(name: &str, members: i64, memory: &str) -> NamespaceUsage {
        NamespaceUsage {
            name: name.to_owned(),
            description: String::new(),
            terminating: false,
            bars: vec![bar("requests.memory", "Memory", memory, "1Gi")],
            deployments: 0,
            pods: 0,
            members,
        }
    }

    #[test]
    fn the_overview_sorts_by_any_column() {
        let mut rows = vec![row("b", 3, "100Mi"), row("a", 1, "900Mi"), row("c", 2, "0")];
        sort(&mut rows, "name", false);
        assert_eq!(
            rows.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(),
            ["a", "b", "c"]
        );
        sort(&mut rows, "members", true);
        assert_eq!(
            rows.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(),
            ["b", "c", "a"]
        );
        sort(&mut rows, "requests.memory", true);
        assert_eq!(
            rows.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(),
            ["a", "b", "c"]
        );
    }
}
