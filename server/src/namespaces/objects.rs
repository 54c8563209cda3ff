//! Pure builders: validated domain types in, Kubernetes objects out. Nothing
//! here talks to the cluster, so every object is unit-tested as built.

use std::collections::BTreeMap;

use k8s_openapi::{
    api::{
        core::v1::{
            LimitRange, LimitRangeItem, LimitRangeSpec, Namespace, ResourceQuota, ResourceQuotaSpec,
        },
        networking::v1::{
            IPBlock, NetworkPolicy, NetworkPolicyIngressRule, NetworkPolicyPeer, NetworkPolicySpec,
        },
        rbac::v1::{RoleBinding, RoleRef, Subject},
    },
    apimachinery::pkg::{
        api::resource::Quantity,
        apis::meta::v1::{LabelSelector, LabelSelectorRequirement, ObjectMeta},
    },
};
use sha2::{Digest, Sha256};

use super::{membership::Role, spec::Limits};
use crate::kube::{self as berth_kube, MANAGED_BY};

/// Annotation holding a namespace's description.
pub const DESCRIPTION_ANNOTATION: &str = "berth.io/description";
/// Annotation on a RoleBinding naming the member's email as Berth knows it.
pub const EMAIL_ANNOTATION: &str = "berth.io/email";
/// The ResourceQuota Berth manages in each namespace.
pub const QUOTA_NAME: &str = "berth-quota";
/// The RoleBinding of Berth's admins in each namespace it manages.
pub const ADMINS_BINDING: &str = "berth-admins";
/// The NetworkPolicy that keeps other namespaces out.
pub const DEFAULT_POLICY: &str = "berth-default";
/// The NetworkPolicy that lets anyone reach exposed workloads.
pub const EXPOSED_POLICY: &str = "berth-exposed";
/// The LimitRange Berth manages in each namespace.
pub const LIMIT_RANGE_NAME: &str = "berth-defaults";

fn managed_labels() -> BTreeMap<String, String> {
    BTreeMap::from([(MANAGED_BY.0.to_owned(), MANAGED_BY.1.to_owned())])
}

fn quantities(values: &BTreeMap<String, String>) -> BTreeMap<String, Quantity> {
    values
        .iter()
        .map(|(k, v)| (k.clone(), Quantity(v.clone())))
        .collect()
}

/// Pod Security labels of every namespace Berth makes: pods that are not at
/// least `baseline` (privileged, host namespaces or paths, added
/// capabilities) are refused by the apiserver; `restricted` is warned about.
/// The admission fence (deploy/rbac/fence.yaml) refuses a namespace from
/// Berth without an enforce level of baseline or stricter.
pub const POD_SECURITY: [(&str, &str); 4] = [
    ("pod-security.kubernetes.io/enforce", "baseline"),
    ("pod-security.kubernetes.io/enforce-version", "latest"),
    ("pod-security.kubernetes.io/warn", "restricted"),
    ("pod-security.kubernetes.io/warn-version", "latest"),
];

/// The namespace, labelled as Berth's and fenced by Pod Security, with its
/// description.
pub fn namespace(name: &str, description: &str) -> Namespace {
    let mut labels = managed_labels();
    labels.extend(
        POD_SECURITY
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    Namespace {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            labels: Some(labels),
            annotations: Some(BTreeMap::from([(
                DESCRIPTION_ANNOTATION.to_owned(),
                description.to_owned(),
            )])),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    }
}

/// The namespace's default NetworkPolicies: `berth-default` admits traffic
/// to every pod from its own namespace only; `berth-exposed` admits any
/// source to the pods of workloads the student chose to expose (label
/// `berth.io/exposure`, set by the deploy form), since a ClusterIP is for
/// other namespaces and a LoadBalancer for the campus or the world. Members
/// cannot change either (only admins hold `networkpolicies`).
pub fn network_policies(namespace: &str) -> Vec<NetworkPolicy> {
    let meta = |name: &str| ObjectMeta {
        name: Some(name.to_owned()),
        namespace: Some(namespace.to_owned()),
        labels: Some(managed_labels()),
        ..ObjectMeta::default()
    };
    let same_namespace = NetworkPolicyPeer {
        pod_selector: Some(LabelSelector::default()),
        ..NetworkPolicyPeer::default()
    };
    let anywhere = ["0.0.0.0/0", "::/0"].map(|cidr| NetworkPolicyPeer {
        ip_block: Some(IPBlock {
            cidr: cidr.to_owned(),
            except: None,
        }),
        ..NetworkPolicyPeer::default()
    });
    let every_namespace = NetworkPolicyPeer {
        namespace_selector: Some(LabelSelector::default()),
        ..NetworkPolicyPeer::default()
    };
    vec![
        NetworkPolicy {
            metadata: meta(DEFAULT_POLICY),
            spec: Some(NetworkPolicySpec {
                pod_selector: Some(LabelSelector::default()),
                policy_types: Some(vec!["Ingress".to_owned()]),
                ingress: Some(vec![NetworkPolicyIngressRule {
                    from: Some(vec![same_namespace]),
                    ports: None,
                }]),
                egress: None,
            }),
        },
        NetworkPolicy {
            metadata: meta(EXPOSED_POLICY),
            spec: Some(NetworkPolicySpec {
                pod_selector: Some(LabelSelector {
                    match_expressions: Some(vec![LabelSelectorRequirement {
                        key: berth_kube::EXPOSURE_LABEL.to_owned(),
                        operator: "Exists".to_owned(),
                        values: None,
                    }]),
                    match_labels: None,
                }),
                policy_types: Some(vec!["Ingress".to_owned()]),
                ingress: Some(vec![NetworkPolicyIngressRule {
                    from: Some(std::iter::once(every_namespace).chain(anywhere).collect()),
                    ports: None,
                }]),
                egress: None,
            }),
        },
    ]
}

/// The namespace's ResourceQuota: `spec.hard` exactly as the form said.
pub fn resource_quota(namespace: &str, limits: &Limits) -> ResourceQuota {
    ResourceQuota {
        metadata: ObjectMeta {
            name: Some(QUOTA_NAME.to_owned()),
            namespace: Some(namespace.to_owned()),
            labels: Some(managed_labels()),
            ..ObjectMeta::default()
        },
        spec: Some(ResourceQuotaSpec {
            hard: Some(quantities(&limits.quota)),
            ..ResourceQuotaSpec::default()
        }),
        ..ResourceQuota::default()
    }
}

/// The namespace's LimitRange with container defaults, or `None` when the
/// form set no defaults (then any existing one should be deleted).
pub fn limit_range(namespace: &str, limits: &Limits) -> Option<LimitRange> {
    if limits.default_request.is_empty() && limits.default_limit.is_empty() {
        return None;
    }
    let non_empty = |map: &BTreeMap<String, String>| (!map.is_empty()).then(|| quantities(map));
    Some(LimitRange {
        metadata: ObjectMeta {
            name: Some(LIMIT_RANGE_NAME.to_owned()),
            namespace: Some(namespace.to_owned()),
            labels: Some(managed_labels()),
            ..ObjectMeta::default()
        },
        spec: Some(LimitRangeSpec {
            limits: vec![LimitRangeItem {
                type_: "Container".to_owned(),
                default: non_empty(&limits.default_limit),
                default_request: non_empty(&limits.default_request),
                ..LimitRangeItem::default()
            }],
        }),
    })
}

/// The ClusterRole a role is bound to.
pub fn cluster_role(role: Role) -> &'static str {
    match role {
        Role::Member => "berth-member",
        Role::Owner => "berth-owner",
    }
}

/// The RoleBinding's name for `email` holding `role`: readable, and unique
/// because of the hash (two emails can sanitise to the same text). The role
/// is part of the name because `roleRef` cannot change: a new role is a new
/// binding, and the old one is then removed.
pub fn role_binding_name(email: &str, role: Role) -> String {
    let email = email.trim().to_lowercase();
    let readable: String = email
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(40)
        .collect();
    let hash = hex::encode(&Sha256::digest(email.as_bytes())[..4]);
    format!(
        "{}-{}-{hash}",
        cluster_role(role),
        readable.trim_matches('-')
    )
}

/// The RoleBinding that turns a membership into rights the apiserver enforces.
pub fn role_binding(namespace: &str, email: &str, role: Role) -> RoleBinding {
    let email = email.trim().to_lowercase();
    RoleBinding {
        metadata: ObjectMeta {
            name: Some(role_binding_name(&email, role)),
            namespace: Some(namespace.to_owned()),
            labels: Some(managed_labels()),
            annotations: Some(BTreeMap::from([(
                EMAIL_ANNOTATION.to_owned(),
                email.clone(),
            )])),
            ..ObjectMeta::default()
        },
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".to_owned(),
            kind: "ClusterRole".to_owned(),
            name: cluster_role(role).to_owned(),
        },
        subjects: Some(vec![Subject {
            api_group: None,
            kind: "ServiceAccount".to_owned(),
            name: berth_kube::account_name(&email),
            namespace: Some(berth_kube::PEOPLE_NAMESPACE.to_owned()),
        }]),
    }
}

/// The RoleBinding that gives Berth's admins (group `berth:admins`) their
/// rights in one namespace Berth manages; admins hold none cluster-wide.
pub fn admins_binding(namespace: &str) -> RoleBinding {
    RoleBinding {
        metadata: ObjectMeta {
            name: Some(ADMINS_BINDING.to_owned()),
            namespace: Some(namespace.to_owned()),
            labels: Some(managed_labels()),
            ..ObjectMeta::default()
        },
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".to_owned(),
            kind: "ClusterRole".to_owned(),
            name: "berth-admin".to_owned(),
        },
        subjects: Some(vec![Subject {
            api_group: Some("rbac.authorization.k8s.io".to_owned()),
            kind: "Group".to_owned(),
            name: berth_kube::ADMINS_GROUP.to_owned(),
            namespace: None,
        }]),
    }
}

/// The quota and defaults as they are in the cluster, for the edit form.
pub fn limits_from_cluster(
    quota: Option<&ResourceQuota>,
    limit_range: Option<&LimitRange>,
) -> Limits {
    let strings = |map: &BTreeMap<String, Quantity>| -> BTreeMap<String, String> {
        map.iter().map(|(k, v)| (k.clone(), v.0.clone())).collect()
    };
    let mut limits = Limits::default();
    if let Some(hard) = quota
        .and_then(|q| q.spec.as_ref())
        .and_then(|s| s.hard.as_ref())
    {
        limits.quota = strings(hard);
    }
    if let Some(item) = limit_range
        .and_then(|l| l.spec.as_ref())
        .and_then(|s| s.limits.iter().find(|i| i.type_ == "Container"))
    {
        limits.default_request = item
            .default_request
            .as_ref()
            .map(strings)
            .unwrap_or_default();
        limits.default_limit = item.default.as_ref().map(strings).unwrap_or_default();
    }
    limits
}

/// The description of a namespace, from its annotation.
pub fn description_of(namespace: &Namespace) -> String {
    namespace
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(DESCRIPTION_ANNOTATION))
        .cloned()
        .unwrap_or_default()
}

#[expect(clippy::unwrap_used, reason = "tests")]
#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            quota: BTreeMap::from([
                ("requests.memory".to_owned(), "1Gi".to_owned()),
                ("pods".to_owned(), "4".to_owned()),
            ]),
            default_request: BTreeMap::from([("memory".to_owned(), "128Mi".to_owned())]),
            default_limit: BTreeMap::from([("memory".to_owned(), "256Mi".to_owned())]),
        }
    }

    #[test]
    fn the_namespace_is_labelled_and_described() {
        let ns = namespace("cs101", "Intro <course>");
        let labels = ns.metadata.labels.as_ref().unwrap();
        assert_eq!(labels["app.kubernetes.io/managed-by"], "berth");
        assert_eq!(labels["pod-security.kubernetes.io/enforce"], "baseline");
        assert_eq!(labels["pod-security.kubernetes.io/warn"], "restricted");
        assert_eq!(description_of(&ns), "Intro <course>");
        let json = serde_json::to_value(&ns).unwrap();
        assert_eq!(json["apiVersion"], "v1");
        assert_eq!(json["kind"], "Namespace");
    }

    #[test]
    fn the_quota_and_defaults_carry_the_form_values() {
        let quota = resource_quota("cs101", &limits());
        let hard = quota.spec.as_ref().unwrap().hard.as_ref().unwrap();
        assert_eq!(hard["requests.memory"].0, "1Gi");
        assert_eq!(hard["pods"].0, "4");
        let range = limit_range("cs101", &limits()).unwrap();
        let item = &range.spec.as_ref().unwrap().limits[0];
        assert_eq!(item.type_, "Container");
        assert_eq!(item.default_request.as_ref().unwrap()["memory"].0, "128Mi");
        assert_eq!(item.default.as_ref().unwrap()["memory"].0, "256Mi");
        assert_eq!(limits_from_cluster(Some(&quota), Some(&range)), limits());
        assert!(limit_range("cs101", &Limits::default()).is_none());
    }

    #[test]
    fn a_membership_becomes_a_binding_for_the_impersonated_user() {
        let binding = role_binding("cs101", "Alice.B@purdue.edu", Role::Owner);
        assert_eq!(binding.role_ref.name, "berth-owner");
        assert_eq!(binding.role_ref.kind, "ClusterRole");
        let subject = &binding.subjects.as_ref().unwrap()[0];
        assert_eq!(subject.kind, "ServiceAccount");
        assert_eq!(subject.namespace.as_deref(), Some("berth-people"));
        assert_eq!(
            subject.name,
            crate::kube::Identity::new("alice.b@purdue.edu", false).account
        );
        let name = binding.metadata.name.unwrap();
        assert!(
            name.starts_with("berth-owner-alice-b-purdue-edu-"),
            "{name}"
        );
        assert!(name.len() <= 63);
        assert_ne!(
            role_binding_name("a.b@x.edu", Role::Member),
            role_binding_name("a-b@x.edu", Role::Member)
        );
    }
}
