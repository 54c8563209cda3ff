//! Storage guard rails on the deploy form: what the namespace's volume claims
//! are (size, use, who mounts them), and the checks made before anything is
//! applied — a ReadWriteOnce volume with more than one replica, a new volume
//! where the student probably meant to reuse one, a size over the quota.
//!
//! The claims are read with one list call scoped to the namespace, as the
//! person (PersistentVolumeClaims are not in the watch caches: only the form
//! needs them). Who mounts a claim comes from the Deployment cache.

use k8s_openapi::api::core::v1::{PersistentVolumeClaim, ResourceQuota};
use kube::{Api, Client, ResourceExt, api::ListParams};

use super::{
    build, quota,
    spec::{ClaimSource, FieldErrors, WorkloadSpec},
};
use crate::kube::{KubeError, cached::Deployment, quantity};

/// One volume claim of the namespace, as the form shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimView {
    /// The claim's name.
    pub name: String,
    /// Its size: the bound capacity, else what it requests.
    pub size: String,
    /// How much of it is used. Kubernetes' API does not report this (only the
    /// kubelet's stats do, which Berth does not read), so it says so rather
    /// than guess.
    pub used: String,
    /// Access modes, e.g. `ReadWriteOnce`.
    pub access_modes: Vec<String>,
    /// `Bound`, `Pending`, …
    pub phase: String,
    /// Workloads whose pods mount it.
    pub mounted_by: Vec<String>,
}

impl ClaimView {
    /// Whether only one node (in practice: one pod of a workload) may mount it.
    pub fn single_writer(&self) -> bool {
        !self
            .access_modes
            .iter()
            .any(|m| m == "ReadWriteMany" || m == "ReadOnlyMany")
    }

    /// "10Gi, ReadWriteOnce, mounted by web, api": one line for the form.
    pub fn describe(&self) -> String {
        let mounted = if self.mounted_by.is_empty() {
            "mounted by no workload".to_owned()
        } else {
            format!("mounted by {}", self.mounted_by.join(", "))
        };
        format!(
            "{} ({}), {}, used: {}, {mounted}",
            self.size,
            self.phase,
            self.access_modes.join("/"),
            self.used
        )
    }
}

/// What "used" says: Kubernetes does not report how full a volume is.
pub const USE_UNKNOWN: &str = "unknown (Kubernetes does not report how full a volume is)";

/// The claims of `ns`, read as the person with one list call.
pub async fn list_claims(
    client: &Client,
    ns: &str,
) -> Result<Vec<PersistentVolumeClaim>, KubeError> {
    let api: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), ns);
    Ok(api.list(&ListParams::default()).await?.items)
}

/// The claims as the form shows them, with who mounts each (from the
/// namespace's Deployments), sorted by name.
pub fn claim_views<'a>(
    claims: &[PersistentVolumeClaim],
    deployments: impl IntoIterator<Item = &'a Deployment> + Clone,
) -> Vec<ClaimView> {
    let mut views: Vec<ClaimView> = claims
        .iter()
        .map(|claim| {
            let name = claim.name_any();
            let status = claim.status.as_ref();
            let size = status
                .and_then(|s| s.capacity.as_ref())
                .and_then(|c| c.get("storage"))
                .or_else(|| {
                    claim
                        .spec
                        .as_ref()
                        .and_then(|s| s.resources.as_ref())
                        .and_then(|r| r.requests.as_ref())
                        .and_then(|r| r.get("storage"))
                })
                .map_or_else(|| "unknown".to_owned(), |q| q.0.clone());
            let access_modes = claim
                .spec
                .as_ref()
                .and_then(|s| s.access_modes.clone())
                .unwrap_or_default();
            let mut mounted_by: Vec<String> = deployments
                .clone()
                .into_iter()
                .filter(|d| super::view::claims_of(d).iter().any(|(c, _)| *c == name))
                .map(|d| d.metadata.name.clone())
                .collect();
            mounted_by.sort();
            ClaimView {
                name,
                size,
                used: USE_UNKNOWN.to_owned(),
                access_modes,
                phase: status
                    .and_then(|s| s.phase.clone())
                    .unwrap_or_else(|| "Pending".to_owned()),
                mounted_by,
            }
        })
        .collect();
    views.sort_by(|a, b| a.name.cmp(&b.name));
    views
}

/// The storage checks, each message beside its field. `reuse_confirmed` is
/// the box a student ticks to say a new volume is what they meant although
/// the namespace has one already. Without `claims` (they could not be read)
/// only what needs no claim is checked; the apiserver still has the last word.
pub fn check(
    spec: &WorkloadSpec,
    claims: Option<&[ClaimView]>,
    quotas: &[&ResourceQuota],
    reuse_confirmed: bool,
) -> FieldErrors {
    let mut errors = super::spec::field_errors();
    let Some(volume) = &spec.volume else {
        return errors;
    };
    let own = build::claim_name(&spec.name);
    let known = claims.is_some();
    let claims = claims.unwrap_or_default();
    match &volume.claim {
        ClaimSource::Existing(name) => match claims.iter().find(|c| &c.name == name) {
            None if !known => {}
            None => errors.add(
                "existing_claim",
                format!("There is no volume claim {name} in this namespace: pick one from the list."),
            ),
            Some(claim) if spec.replicas > 1 && claim.single_writer() => errors.add(
                "replicas",
                format!(
                    "{name} is ReadWriteOnce: only one pod can mount it, so run 1 replica (or use a ReadWriteMany claim)."
                ),
            ),
            Some(_) => {}
        },
        ClaimSource::New { size, .. } => {
            if spec.replicas > 1 {
                errors.add(
                    "replicas",
                    "A new volume is ReadWriteOnce: only one pod can mount it, so run 1 replica.",
                );
            }
            // The workload's own claim, when editing, is not a second volume.
            let others: Vec<&ClaimView> = claims.iter().filter(|c| c.name != own).collect();
            if !others.is_empty() && !reuse_confirmed {
                let names: Vec<&str> = others.iter().map(|c| c.name.as_str()).collect();
                errors.add(
                    "volume",
                    format!(
                        "This namespace already has the volume {}. Did you mean to reuse it? Choose \"An existing volume claim\" to keep its data, or tick the box below to create a new, empty volume.",
                        names.join(", ")
                    ),
                );
            }
            if let Some(message) = over_storage_quota(size, claims.iter().find(|c| c.name == own), quotas) {
                errors.add("volume_size", message);
            }
        }
    }
    errors
}

/// Why `size` does not fit the namespace's `requests.storage` quota, if it
/// does not. An existing claim of the same name counts only its growth.
fn over_storage_quota(
    size: &str,
    existing: Option<&ClaimView>,
    quotas: &[&ResourceQuota],
) -> Option<String> {
    let asked = quantity::parse(size).ok()?;
    let held = existing
        .and_then(|c| quantity::parse(&c.size).ok())
        .unwrap_or(0.0);
    for quota in quotas {
        let status = quota.status.clone().unwrap_or_default();
        let hard = status
            .hard
            .or_else(|| quota.spec.as_ref().and_then(|s| s.hard.clone()))
            .unwrap_or_default();
        let Some(cap) = hard
            .get("requests.storage")
            .and_then(|q| quantity::parse(&q.0).ok())
        else {
            continue;
        };
        let used = status
            .used
            .as_ref()
            .and_then(|u| u.get("requests.storage"))
            .and_then(|q| quantity::parse(&q.0).ok())
            .unwrap_or(0.0);
        if used + asked - held > cap + 1e-9 {
            let left = (cap - used).max(0.0);
            return Some(format!(
                "{size} is more than this namespace's storage quota allows: {} of {} left. Choose a smaller size, or ask an admin for more.",
                quota::format_bytes(left),
                quota::format_bytes(cap)
            ));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workloads::spec::{Exposure, Resources, Volume};
    use k8s_openapi::api::core::v1::ResourceQuotaStatus;
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

    fn spec(replicas: i32, claim: ClaimSource) -> WorkloadSpec {
        WorkloadSpec {
            name: "web".into(),
            namespace: "ns".into(),
            image: "r/x:1".into(),
            pull_secret: None,
            replicas,
            container_port: None,
            ports: Vec::new(),
            command: Vec::new(),
            args: Vec::new(),
            env: Vec::new(),
            resources: Resources::default(),
            volume: Some(Volume {
                claim,
                mount_path: "/data".into(),
            }),
            exposure: Exposure::None,
            owner: "a@x.edu".into(),
        }
    }

    fn claim(name: &str, modes: &[&str]) -> ClaimView {
        ClaimView {
            name: name.into(),
            size: "1Gi".into(),
            used: USE_UNKNOWN.into(),
            access_modes: modes.iter().map(|m| (*m).to_owned()).collect(),
            phase: "Bound".into(),
            mounted_by: vec!["old".into()],
        }
    }

    fn new(size: &str) -> ClaimSource {
        ClaimSource::New {
            size: size.into(),
            storage_class: None,
        }
    }

    fn storage_quota(hard: &str, used: &str) -> ResourceQuota {
        let q = |v: &str| [("requests.storage".to_owned(), Quantity(v.to_owned()))].into();
        ResourceQuota {
            status: Some(ResourceQuotaStatus {
                hard: Some(q(hard)),
                used: Some(q(used)),
            }),
            ..ResourceQuota::default()
        }
    }

    #[test]
    fn read_write_once_with_more_than_one_replica_is_refused_beside_replicas() {
        let errors = check(&spec(2, new("1Gi")), Some(&[]), &[], false);
        assert!(
            errors
                .get("replicas")
                .is_some_and(|m| m.contains("ReadWriteOnce"))
        );
        let rwo = [claim("data", &["ReadWriteOnce"])];
        let errors = check(
            &spec(3, ClaimSource::Existing("data".into())),
            Some(&rwo),
            &[],
            false,
        );
        assert!(errors.has("replicas"));
        let rwx = [claim("data", &["ReadWriteMany"])];
        let errors = check(
            &spec(3, ClaimSource::Existing("data".into())),
            Some(&rwx),
            &[],
            false,
        );
        assert!(errors.is_empty(), "{errors:?}");
        assert!(check(&spec(1, new("1Gi")), Some(&[]), &[], false).is_empty());
    }

    #[test]
    fn a_new_volume_beside_an_existing_one_asks_first() {
        let claims = [claim("notes-data", &["ReadWriteOnce"])];
        let errors = check(&spec(1, new("1Gi")), Some(&claims), &[], false);
        assert!(
            errors
                .get("volume")
                .is_some_and(|m| m.contains("notes-data"))
        );
        assert!(check(&spec(1, new("1Gi")), Some(&claims), &[], true).is_empty());
        // Its own claim (an edit) is not a second volume.
        let own = [claim("web-data", &["ReadWriteOnce"])];
        assert!(check(&spec(1, new("1Gi")), Some(&own), &[], false).is_empty());
    }

    #[test]
    fn an_unknown_existing_claim_is_named() {
        let errors = check(
            &spec(1, ClaimSource::Existing("nope".into())),
            Some(&[]),
            &[],
            false,
        );
        assert!(
            errors
                .get("existing_claim")
                .is_some_and(|m| m.contains("nope"))
        );
        // Claims that could not be read are not claimed missing.
        let errors = check(
            &spec(1, ClaimSource::Existing("nope".into())),
            None,
            &[],
            false,
        );
        assert!(errors.is_empty());
        let errors = check(
            &spec(1, ClaimSource::Existing("nope".into())),
            Some(&[]),
            &[],
            false,
        );
        assert!(
            errors
                .get("existing_claim")
                .is_some_and(|m| m.contains("nope"))
        );
    }

    #[test]
    fn the_size_is_checked_against_the_storage_quota() {
        let quota = storage_quota("5Gi", "2Gi");
        let errors = check(&spec(1, new("4Gi")), Some(&[]), &[&quota], false);
        let message = errors.get("volume_size").expect("refused");
        assert!(message.contains("3Gi of 5Gi left"), "{message}");
        assert!(check(&spec(1, new("3Gi")), Some(&[]), &[&quota], false).is_empty());
        // Editing its own 1Gi claim to 4Gi grows it by 3Gi: that fits.
        let own = [claim("web-data", &["ReadWriteOnce"])];
        assert!(check(&spec(1, new("4Gi")), Some(&own), &[&quota], false).is_empty());
    }

    #[test]
    fn use_is_never_invented() {
        let pvc: PersistentVolumeClaim = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "data", "namespace": "ns"},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "2Gi"}}},
        }))
        .expect("a claim");
        let views = claim_views(&[pvc], std::iter::empty::<&Deployment>());
        assert_eq!(views[0].size, "2Gi");
        assert_eq!(views[0].used, USE_UNKNOWN);
        assert!(views[0].mounted_by.is_empty());
    }
}
