//! Usage of a namespace as pages show it: quota used/hard as bars, workload
//! counts. Read from the watch caches only.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
};

use k8s_openapi::api::core::v1::{Namespace, ResourceQuota};
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

/// Used / hard as 0–100 (100 when over, or when the quota is zero).
fn percent(used: &str, hard: &str) -> u32 {
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
    percent
}

/// A bar from used and hard quantities.
pub fn bar(key: &'static str, label: &'static str, used: &str, hard: &str) -> Bar {
    let percent = percent(used, hard);
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
    let bars = QUOTA
        .iter()
        .filter_map(|setting| {
            let (used, hard) = used_and_hard(quota.as_deref(), setting.key)?;
            Some(bar(setting.key, setting.label, used, hard))
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

/// A column the overview can be sorted by; its wire value is the `sort`
/// query parameter.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum SortKey {
    /// The namespace's name (the default).
    #[default]
    Name,
    /// The share of the CPU request quota used.
    Cpu,
    /// The share of the memory request quota used.
    Memory,
    /// The share of the pod quota used.
    Pods,
    /// How many members it has.
    Members,
    /// How many Deployments are in it.
    Deployments,
    /// How many pods are in it.
    Running,
}

impl SortKey {
    /// Every column, in the order the overview shows them.
    pub const ALL: [Self; 7] = [
        Self::Name,
        Self::Cpu,
        Self::Memory,
        Self::Pods,
        Self::Members,
        Self::Deployments,
        Self::Running,
    ];

    /// The wire value (for quota columns, the quota key).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Name => "name",
            Self::Cpu => "requests.cpu",
            Self::Memory => "requests.memory",
            Self::Pods => "pods",
            Self::Members => "members",
            Self::Deployments => "deployments",
            Self::Running => "running",
        }
    }

    /// The column's heading.
    pub fn label(self) -> &'static str {
        match self {
            Self::Name => "Name",
            Self::Cpu => "CPU",
            Self::Memory => "Memory",
            Self::Pods => "Pods",
            Self::Members => "Members",
            Self::Deployments => "Deployments",
            Self::Running => "Running pods",
        }
    }

    /// The column of a wire value; `None` for one the overview does not know.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|key| key.as_str() == text)
    }
}

/// The quota columns of the admin overview, in its order.
const OVERVIEW_BARS: [SortKey; 3] = [SortKey::Cpu, SortKey::Memory, SortKey::Pods];

/// Member counts by namespace, as [`super::membership::member_counts`]
/// answers them.
pub type MemberCounts = Arc<HashMap<String, i64>>;

/// Every namespace's row and each order the overview sorts them in, kept
/// until a cache or the member counts they were built from change: while
/// the cluster stands still a page view builds and sorts nothing, and
/// after a change the rows are built once for every sort order.
#[derive(Default)]
pub struct Orders {
    kept: Mutex<Option<Kept>>,
}

struct Kept {
    versions: [u64; 4],
    /// The counts built from; the same `Arc` while unchanged.
    members: MemberCounts,
    rows: Arc<[Arc<NamespaceUsage>]>,
    /// Indexes into `rows` per sort key, made when first asked for.
    orders: HashMap<SortKey, Arc<[usize]>>,
}

/// Every namespace's row in one sort order, ascending.
pub struct Sorted {
    rows: Arc<[Arc<NamespaceUsage>]>,
    order: Arc<[usize]>,
}

impl Sorted {
    /// The rows in order; `.rev()` for descending.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &Arc<NamespaceUsage>> {
        self.order.iter().map(|&i| &self.rows[i])
    }

    /// How many namespaces there are.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }
}

impl Orders {
    /// Every namespace's row (members filled from `members`), by its value
    /// in `key`, then by name, ascending.
    pub fn sorted(&self, caches: &Caches, members: &MemberCounts, key: SortKey) -> Sorted {
        // Read before the caches are: a change made while building is then
        // seen as one on the next view.
        let versions = [
            caches.namespaces.version(),
            caches.quotas.version(),
            caches.deployments.version(),
            caches.pods.version(),
        ];
        let mut kept = self.kept.lock().unwrap_or_else(PoisonError::into_inner);
        // Built under the lock: views that arrive meanwhile wait for these
        // rows rather than each building their own.
        let kept = match &mut *kept {
            Some(kept) if kept.versions == versions && Arc::ptr_eq(&kept.members, members) => kept,
            slot => slot.insert(Kept {
                versions,
                members: members.clone(),
                rows: overview_rows(caches, members),
                orders: HashMap::new(),
            }),
        };
        let rows = &kept.rows;
        let order = kept
            .orders
            .entry(key)
            .or_insert_with(|| {
                let mut order: Vec<usize> = (0..rows.len()).collect();
                order.sort_by(|&a, &b| {
                    let (a, b) = (&rows[a], &rows[b]);
                    (a.sort_value(key), &a.name).cmp(&(b.sort_value(key), &b.name))
                });
                order.into()
            })
            .clone();
        Sorted {
            rows: rows.clone(),
            order,
        }
    }
}

/// Every namespace's overview row: the bars it shows and sorts by, and
/// its member count.
fn overview_rows(caches: &Caches, members: &MemberCounts) -> Arc<[Arc<NamespaceUsage>]> {
    caches
        .namespaces
        .all()
        .iter()
        .map(|ns| {
            let mut row = usage_of(caches, ns);
            row.bars
                .retain(|bar| OVERVIEW_BARS.iter().any(|k| k.as_str() == bar.key));
            row.bars.shrink_to_fit();
            row.members = members.get(&row.name).copied().unwrap_or(0);
            Arc::new(row)
        })
        .collect()
}

impl NamespaceUsage {
    /// The row's value in the column `key`: 0 for the name, which sorts by
    /// name alone; -1 for a quota the namespace does not set.
    fn sort_value(&self, key: SortKey) -> i64 {
        let count = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        match key {
            SortKey::Members => self.members,
            SortKey::Deployments => count(self.deployments),
            SortKey::Running => count(self.pods),
            SortKey::Cpu | SortKey::Memory | SortKey::Pods => self
                .bar(key.as_str())
                .map_or(-1, |bar| i64::from(bar.percent)),
            SortKey::Name => 0,
        }
    }
}

/// Used and hard of one quota key: the quota's status (what the apiserver
/// enforces), or before the quota controller has counted, the spec with
/// nothing used; `None` when the quota does not set the key.
fn used_and_hard<'q>(quota: Option<&'q ResourceQuota>, key: &str) -> Option<(&'q str, &'q str)> {
    let quota = quota?;
    let status = quota.status.as_ref();
    let hard = status
        .and_then(|s| s.hard.as_ref())
        .or_else(|| quota.spec.as_ref().and_then(|s| s.hard.as_ref()))?
        .get(key)?;
    let used = status
        .and_then(|s| s.used.as_ref())
        .and_then(|used| used.get(key))
        .map_or("0", |q| q.0.as_str());
    Some((used, &hard.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kube::Cache;

    #[test]
    fn the_overview_sorts_by_any_column() {
        let namespace = |name: &str| -> Namespace {
            serde_json::from_value(serde_json::json!({"metadata": {"name": name}}))
                .expect("a namespace")
        };
        let quota = |ns: &str, used: &str| -> ResourceQuota {
            serde_json::from_value(serde_json::json!({
                "metadata": {"name": objects::QUOTA_NAME, "namespace": ns},
                "spec": {"hard": {"requests.memory": "1Gi", "limits.memory": "2Gi"}},
                "status": {
                    "hard": {"requests.memory": "1Gi", "limits.memory": "2Gi"},
                    "used": {"requests.memory": used, "limits.memory": used},
                },
            }))
            .expect("a quota")
        };
        let caches = Caches {
            namespaces: Cache::from_objects([namespace("b"), namespace("a"), namespace("c")]),
            quotas: Cache::from_objects([quota("b", "100Mi"), quota("a", "900Mi")]),
            limit_ranges: Cache::from_objects([]),
            deployments: Cache::from_objects([]),
            pods: Cache::from_objects([]),
            services: Cache::from_objects([]),
            replica_sets: Cache::from_objects([]),
            events: Cache::from_objects([]),
        };
        let members: MemberCounts = Arc::new(HashMap::from([
            ("b".to_owned(), 3),
            ("a".to_owned(), 1),
            ("c".to_owned(), 2),
        ]));
        let orders = Orders::default();
        let sorted = |key: &str, descending: bool| {
            let key = SortKey::parse(key).expect("a sort key");
            let mut names: Vec<_> = orders
                .sorted(&caches, &members, key)
                .iter()
                .map(|row| row.name.clone())
                .collect();
            if descending {
                names.reverse();
            }
            names
        };
        assert_eq!(sorted("name", false), ["a", "b", "c"]);
        assert_eq!(sorted("name", true), ["c", "b", "a"]);
        assert_eq!(sorted("members", true), ["b", "c", "a"]);
        assert_eq!(
            sorted("requests.memory", true),
            ["a", "b", "c"],
            "c sets no quota"
        );
        assert_eq!(
            sorted("requests.cpu", false),
            ["a", "b", "c"],
            "none sets it"
        );

        // Kept while nothing changes; built and sorted again once the counts do.
        let once = orders.sorted(&caches, &members, SortKey::Members);
        let again = orders.sorted(&caches, &members, SortKey::Members);
        assert!(Arc::ptr_eq(&once.rows, &again.rows) && Arc::ptr_eq(&once.order, &again.order));
        assert!(
            Arc::ptr_eq(
                &once.rows,
                &orders.sorted(&caches, &members, SortKey::Name).rows
            ),
            "every order shares one set of rows"
        );
        let kept: Vec<_> = once
            .iter()
            .map(|row| row.bars.iter().map(|bar| bar.key).collect::<Vec<_>>())
            .collect();
        assert_eq!(
            kept,
            [vec!["requests.memory"], vec![], vec!["requests.memory"]],
            "only the overview's bars are kept"
        );
        let changed: MemberCounts = Arc::new(HashMap::from([("a".to_owned(), 9)]));
        let rows: Vec<_> = orders
            .sorted(&caches, &changed, SortKey::Members)
            .iter()
            .map(|row| (row.name.clone(), row.members))
            .collect();
        assert_eq!(
            rows,
            [
                ("b".to_owned(), 0),
                ("c".to_owned(), 0),
                ("a".to_owned(), 9)
            ]
        );
    }

    #[test]
    fn sort_keys_keep_their_wire_values() {
        for key in SortKey::ALL {
            assert_eq!(SortKey::parse(key.as_str()), Some(key));
        }
        assert_eq!(SortKey::parse("requests.memory"), Some(SortKey::Memory));
        assert_eq!(SortKey::parse("running"), Some(SortKey::Running));
        assert_eq!(SortKey::parse("bogus"), None);
        assert_eq!(SortKey::parse(""), None);
    }
}
