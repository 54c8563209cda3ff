//! Pure builders: a validated [`WorkloadSpec`] → the Kubernetes objects Berth
//! applies (Deployment, Service, PersistentVolumeClaim; the image pull Secret
//! is the registries feature's, which owns the tokens).
//!
//! No I/O here, so every option is unit-tested without a cluster; the handlers
//! apply what these return with server-side apply (field manager `berth`).

use std::collections::BTreeMap;

use k8s_openapi::{
    api::{
        apps::v1::{Deployment, DeploymentSpec, DeploymentStrategy},
        core::v1::{
            Capabilities, Container, ContainerPort, EnvVar, LocalObjectReference,
            PersistentVolumeClaim, PersistentVolumeClaimSpec, PersistentVolumeClaimVolumeSource,
            PodSpec, PodTemplateSpec, ResourceRequirements, SeccompProfile, SecurityContext,
            Service, ServicePort, ServiceSpec, Volume as PodVolume, VolumeMount,
            VolumeResourceRequirements,
        },
    },
    apimachinery::pkg::{
        api::resource::Quantity,
        apis::meta::v1::{LabelSelector, ObjectMeta},
        util::intstr::IntOrString,
    },
};

use super::spec::{ClaimSource, Exposure, Resources, WorkloadSpec};
use crate::kube::{EXPOSURE_LABEL, MANAGED_BY};
pub use crate::kube::{FORM_ANNOTATION, NAME_LABEL, OWNER_ANNOTATION};

/// The value of [`EXPOSURE_LABEL`], for workloads reachable from outside
/// their namespace.
pub fn exposure_label(exposure: Exposure) -> Option<&'static str> {
    match exposure {
        Exposure::None => None,
        Exposure::Cluster => Some("cluster"),
        Exposure::Campus => Some("campus"),
        Exposure::Public => Some("public"),
    }
}

/// How exposure maps onto the cluster, from configuration.
#[derive(Debug, Clone)]
pub struct ExposeSettings {
    /// Annotation that puts a LoadBalancer on the public pool, as `key=value`
    /// (default `metallb.io/address-pool=geddes-public-pool`).
    pub public_annotation: (String, String),
}

fn labels(spec: &WorkloadSpec) -> BTreeMap<String, String> {
    BTreeMap::from([
        (NAME_LABEL.to_owned(), spec.name.clone()),
        (MANAGED_BY.0.to_owned(), MANAGED_BY.1.to_owned()),
    ])
}

fn metadata(spec: &WorkloadSpec, name: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_owned()),
        namespace: Some(spec.namespace.clone()),
        labels: Some(labels(spec)),
        annotations: Some(BTreeMap::from([(
            OWNER_ANNOTATION.to_owned(),
            spec.owner.clone(),
        )])),
        ..ObjectMeta::default()
    }
}

/// Name of the claim Berth creates for a workload's new volume.
pub fn claim_name(workload: &str) -> String {
    format!("{workload}-data")
}

fn resources(r: &Resources) -> Option<ResourceRequirements> {
    let pick = |cpu: &Option<String>, memory: &Option<String>| {
        let map: BTreeMap<String, Quantity> = [("cpu", cpu), ("memory", memory)]
            .into_iter()
            .filter_map(|(k, v)| v.as_ref().map(|v| (k.to_owned(), Quantity(v.clone()))))
            .collect();
        (!map.is_empty()).then_some(map)
    };
    let requests = pick(&r.cpu_request, &r.memory_request);
    let limits = pick(&r.cpu_limit, &r.memory_limit);
    (requests.is_some() || limits.is_some()).then(|| ResourceRequirements {
        requests,
        limits,
        ..ResourceRequirements::default()
    })
}

/// The container defaults of every workload: no privilege escalation, no
/// capabilities, the runtime's seccomp profile. What Pod Security
/// `restricted` asks, short of forcing a non-root user (many course images
/// run as root); the namespace's `baseline` enforcement refuses worse.
pub fn safe_security_context() -> SecurityContext {
    SecurityContext {
        allow_privilege_escalation: Some(false),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".to_owned()]),
            ..Capabilities::default()
        }),
        seccomp_profile: Some(SeccompProfile {
            type_: "RuntimeDefault".to_owned(),
            ..SeccompProfile::default()
        }),
        ..SecurityContext::default()
    }
}

/// The Deployment.
pub fn deployment(spec: &WorkloadSpec) -> Deployment {
    let claim = spec.volume.as_ref().map(|v| match &v.claim {
        ClaimSource::Existing(name) => name.clone(),
        ClaimSource::New { .. } => claim_name(&spec.name),
    });
    let container = Container {
        name: spec.name.clone(),
        image: Some(spec.image.clone()),
        command: (!spec.command.is_empty()).then(|| spec.command.clone()),
        args: (!spec.args.is_empty()).then(|| spec.args.clone()),
        env: (!spec.env.is_empty()).then(|| {
            spec.env
                .iter()
                .map(|(name, value)| EnvVar {
                    name: name.clone(),
                    value: Some(value.clone()),
                    ..EnvVar::default()
                })
                .collect()
        }),
        ports: spec.container_port.map(|port| {
            vec![ContainerPort {
                container_port: i32::from(port),
                protocol: spec
                    .ports
                    .iter()
                    .find(|m| m.target == port)
                    .map(|m| m.protocol.as_k8s().to_owned()),
                ..ContainerPort::default()
            }]
        }),
        resources: resources(&spec.resources),
        volume_mounts: spec.volume.as_ref().map(|v| {
            vec![VolumeMount {
                name: "data".to_owned(),
                mount_path: v.mount_path.clone(),
                ..VolumeMount::default()
            }]
        }),
        security_context: Some(safe_security_context()),
        ..Container::default()
    };
    Deployment {
        metadata: metadata(spec, &spec.name),
        spec: Some(DeploymentSpec {
            replicas: Some(spec.replicas),
            selector: LabelSelector {
                match_labels: Some(BTreeMap::from([(NAME_LABEL.to_owned(), spec.name.clone())])),
                ..LabelSelector::default()
            },
            // A ReadWriteOnce volume can't be attached to the old and the new
            // pod at once, so a rolling update would wait forever.
            strategy: claim.as_ref().map(|_| DeploymentStrategy {
                type_: Some("Recreate".to_owned()),
                ..DeploymentStrategy::default()
            }),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some({
                        let mut labels = labels(spec);
                        if let Some(exposure) = exposure_label(spec.exposure) {
                            labels.insert(EXPOSURE_LABEL.to_owned(), exposure.to_owned());
                        }
                        labels
                    }),
                    ..ObjectMeta::default()
                }),
                spec: Some(PodSpec {
                    containers: vec![container],
                    // A student's container has no business with the
                    // Kubernetes API; a token mounted anyway is one to steal.
                    automount_service_account_token: Some(false),
                    image_pull_secrets: spec
                        .pull_secret
                        .as_ref()
                        .map(|name| vec![LocalObjectReference { name: name.clone() }]),
                    volumes: claim.map(|claim_name| {
                        vec![PodVolume {
                            name: "data".to_owned(),
                            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                                claim_name,
                                read_only: None,
                            }),
                            ..PodVolume::default()
                        }]
                    }),
                    ..PodSpec::default()
                }),
            },
            ..DeploymentSpec::default()
        }),
        status: None,
    }
}

/// The Deployment as Berth applies it: [`deployment`] carrying the form it
/// was made from (as JSON) in [`FORM_ANNOTATION`]. Anything that re-applies
/// Berth's objects with Berth's field manager must send this, or server-side
/// apply removes the annotation and Berth forgets the form.
pub fn deployment_with_form(spec: &WorkloadSpec, form_json: &str) -> Deployment {
    let mut deployment = deployment(spec);
    deployment
        .metadata
        .annotations
        .get_or_insert_with(BTreeMap::new)
        .insert(FORM_ANNOTATION.to_owned(), form_json.to_owned());
    deployment
}

/// The Service, unless the workload is not exposed.
pub fn service(spec: &WorkloadSpec, settings: &ExposeSettings) -> Option<Service> {
    let type_ = match spec.exposure {
        Exposure::None => return None,
        Exposure::Cluster => "ClusterIP",
        Exposure::Campus | Exposure::Public => "LoadBalancer",
    };
    let mut meta = metadata(spec, &spec.name);
    if spec.exposure == Exposure::Public {
        let (key, value) = &settings.public_annotation;
        meta.annotations
            .get_or_insert_with(BTreeMap::new)
            .insert(key.clone(), value.clone());
    }
    Some(Service {
        metadata: meta,
        spec: Some(ServiceSpec {
            type_: Some(type_.to_owned()),
            selector: Some(BTreeMap::from([(NAME_LABEL.to_owned(), spec.name.clone())])),
            ports: Some(
                spec.ports
                    .iter()
                    .map(|m| ServicePort {
                        name: Some(format!(
                            "{}-{}",
                            m.protocol.as_k8s().to_lowercase(),
                            m.published
                        )),
                        port: i32::from(m.published),
                        target_port: Some(IntOrString::Int(i32::from(m.target))),
                        protocol: Some(m.protocol.as_k8s().to_owned()),
                        ..ServicePort::default()
                    })
                    .collect(),
            ),
            ..ServiceSpec::default()
        }),
        status: None,
    })
}

/// The PersistentVolumeClaim, when the workload asks for a new volume.
pub fn claim(spec: &WorkloadSpec) -> Option<PersistentVolumeClaim> {
    let volume = spec.volume.as_ref()?;
    let ClaimSource::New {
        size,
        storage_class,
    } = &volume.claim
    else {
        return None;
    };
    Some(PersistentVolumeClaim {
        metadata: metadata(spec, &claim_name(&spec.name)),
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec!["ReadWriteOnce".to_owned()]),
            storage_class_name: storage_class.clone(),
            resources: Some(VolumeResourceRequirements {
                requests: Some(BTreeMap::from([(
                    "storage".to_owned(),
                    Quantity(size.clone()),
                )])),
                limits: None,
            }),
            ..PersistentVolumeClaimSpec::default()
        }),
        status: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workloads::spec::{PortMapping, Protocol, Volume};

    fn add_two() -> WorkloadSpec {
        WorkloadSpec {
            namespace: "cs101".into(),
            name: "add-two".into(),
            image: "geddes-registry.rcac.purdue.edu/cs101/add-two:1.0".into(),
            pull_secret: Some("berth-pull-1".into()),
            replicas: 2,
            container_port: Some(5000),
            command: vec![],
            args: vec![],
            env: vec![],
            resources: Resources {
                cpu_request: Some("250m".into()),
                cpu_limit: None,
                memory_request: Some("256Mi".into()),
                memory_limit: Some("512Mi".into()),
            },
            volume: None,
            exposure: Exposure::Campus,
            ports: vec![PortMapping {
                published: 80,
                target: 5000,
                protocol: Protocol::Tcp,
            }],
            owner: "student@purdue.edu".into(),
        }
    }

    fn settings() -> ExposeSettings {
        ExposeSettings {
            public_annotation: (
                "metallb.io/address-pool".into(),
                "geddes-public-pool".into(),
            ),
        }
    }

    #[test]
    fn containers_get_safe_defaults_and_no_service_account_token() {
        let d = serde_json::to_value(deployment(&add_two())).expect("serializes");
        let pod = &d["spec"]["template"]["spec"];
        assert_eq!(pod["automountServiceAccountToken"], false);
        let security = &pod["containers"][0]["securityContext"];
        assert_eq!(security["allowPrivilegeEscalation"], false);
        assert_eq!(security["capabilities"]["drop"][0], "ALL");
        assert_eq!(security["seccompProfile"]["type"], "RuntimeDefault");
    }

    #[test]
    fn deployment_carries_labels_owner_image_secret_port_and_resources() {
        let d = serde_json::to_value(deployment(&add_two())).expect("serializes");
        assert_eq!(
            d["metadata"]["labels"]["app.kubernetes.io/managed-by"],
            "berth"
        );
        assert_eq!(d["metadata"]["labels"]["app.kubernetes.io/name"], "add-two");
        assert_eq!(
            d["metadata"]["annotations"]["berth.io/owner"],
            "student@purdue.edu"
        );
        assert_eq!(d["spec"]["replicas"], 2);
        assert_eq!(
            d["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"],
            "add-two"
        );
        let pod = &d["spec"]["template"]["spec"];
        assert_eq!(pod["imagePullSecrets"][0]["name"], "berth-pull-1");
        let c = &pod["containers"][0];
        assert_eq!(
            c["image"],
            "geddes-registry.rcac.purdue.edu/cs101/add-two:1.0"
        );
        assert_eq!(c["ports"][0]["containerPort"], 5000);
        assert_eq!(c["resources"]["requests"]["cpu"], "250m");
        assert_eq!(c["resources"]["limits"]["memory"], "512Mi");
        assert!(c["resources"]["limits"].get("cpu").is_none());
        assert!(c.get("command").is_none() && c.get("env").is_none());
        assert!(
            d["spec"].get("strategy").is_none(),
            "rolling update without a volume"
        );
    }

    #[test]
    fn command_args_env_and_a_new_volume() {
        let mut spec = add_two();
        spec.command = vec!["jupyter".into(), "lab".into()];
        spec.args = vec!["--ServerApp.base_url=/lab".into()];
        spec.env = vec![("A".into(), "1".into())];
        spec.pull_secret = None;
        spec.volume = Some(Volume {
            claim: ClaimSource::New {
                size: "10Gi".into(),
                storage_class: Some("fast".into()),
            },
            mount_path: "/workspace".into(),
        });
        let d = serde_json::to_value(deployment(&spec)).expect("serializes");
        let pod = &d["spec"]["template"]["spec"];
        let c = &pod["containers"][0];
        assert_eq!(c["command"], serde_json::json!(["jupyter", "lab"]));
        assert_eq!(c["args"][0], "--ServerApp.base_url=/lab");
        assert_eq!(c["env"][0], serde_json::json!({"name": "A", "value": "1"}));
        assert_eq!(c["volumeMounts"][0]["mountPath"], "/workspace");
        assert_eq!(
            pod["volumes"][0]["persistentVolumeClaim"]["claimName"],
            "add-two-data"
        );
        assert!(pod.get("imagePullSecrets").is_none());
        assert_eq!(d["spec"]["strategy"]["type"], "Recreate");

        let pvc = serde_json::to_value(claim(&spec).expect("a new claim")).expect("serializes");
        assert_eq!(pvc["metadata"]["name"], "add-two-data");
        assert_eq!(pvc["spec"]["resources"]["requests"]["storage"], "10Gi");
        assert_eq!(pvc["spec"]["storageClassName"], "fast");
        assert_eq!(pvc["spec"]["accessModes"][0], "ReadWriteOnce");
    }

    #[test]
    fn an_existing_claim_is_mounted_not_created() {
        let mut spec = add_two();
        spec.volume = Some(Volume {
            claim: ClaimSource::Existing("shared".into()),
            mount_path: "/data".into(),
        });
        assert!(claim(&spec).is_none());
        let d = serde_json::to_value(deployment(&spec)).expect("serializes");
        assert_eq!(
            d["spec"]["template"]["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"],
            "shared"
        );
    }

    #[test]
    fn exposure_picks_the_service_type_and_pool() {
        let mut spec = add_two();
        let campus = serde_json::to_value(service(&spec, &settings())).expect("serializes");
        assert_eq!(campus["spec"]["type"], "LoadBalancer");
        assert_eq!(campus["spec"]["ports"][0]["port"], 80);
        assert_eq!(campus["spec"]["ports"][0]["targetPort"], 5000);
        assert_eq!(campus["spec"]["ports"][0]["protocol"], "TCP");
        assert_eq!(
            campus["spec"]["selector"]["app.kubernetes.io/name"],
            "add-two"
        );
        assert!(
            campus["metadata"]["annotations"]
                .get("metallb.io/address-pool")
                .is_none()
        );

        spec.exposure = Exposure::Public;
        let public = serde_json::to_value(service(&spec, &settings())).expect("serializes");
        assert_eq!(
            public["metadata"]["annotations"]["metallb.io/address-pool"],
            "geddes-public-pool"
        );

        spec.exposure = Exposure::Cluster;
        spec.ports[0].protocol = Protocol::Udp;
        let cluster = serde_json::to_value(service(&spec, &settings())).expect("serializes");
        assert_eq!(cluster["spec"]["type"], "ClusterIP");
        assert_eq!(cluster["spec"]["ports"][0]["protocol"], "UDP");
        assert_eq!(cluster["spec"]["ports"][0]["name"], "udp-80");

        spec.exposure = Exposure::None;
        assert!(service(&spec, &settings()).is_none());
    }
}
