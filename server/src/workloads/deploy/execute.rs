//! Applying a deploy plan and recording it: the workload's objects through
//! the impersonating client, pull Secret and claim first, then Deployment and
//! Service (each step shown), the audit row, and what the person is told.

use k8s_openapi::api::core::v1::{Secret, Service};
use kube::{Api, Client};
use serde::{Serialize, de::DeserializeOwned};

use super::StepView;
use crate::{
    app::AppState,
    audit::{self, Outcome},
    auth::CurrentUser,
    kube::KubeError,
    workloads::{
        build::{self, ExposeSettings},
        form::Deploy,
    },
};

/// Records the submit in the audit log: the image deployed, or the
/// apiserver's refusal.
pub(super) async fn record(
    state: &AppState,
    user: &CurrentUser,
    ns: &str,
    deploy: &Deploy,
    editing: bool,
    failure: Option<&KubeError>,
) {
    let action = if editing {
        "workload.update"
    } else {
        "workload.deploy"
    };
    let entry = audit::Entry::new(&user.email, action)
        .in_namespace(ns)
        .on(&deploy.spec.name);
    match failure {
        None => {
            entry
                .outcome(Outcome::Ok, Some(&deploy.spec.image))
                .record(&state.db)
                .await;
        }
        Some(error) => entry.record_refusal(&state.db, error).await,
    }
}

/// The flash message after a workload was applied.
pub(super) fn done_message(name: &str, editing: bool) -> String {
    if editing {
        format!("Saved {name}: Kubernetes is rolling out the change.")
    } else {
        format!("Deployed {name}. It shows Running once its pod has started.")
    }
}

/// Which form field an apiserver validation error is about, from the field
/// path in its message.
pub(super) fn field_of(error: &KubeError) -> Option<&'static str> {
    let KubeError::Api {
        code: 422, message, ..
    } = error
    else {
        return None;
    };
    let rules: [(&str, &'static str); 9] = [
        (".image", "image"),
        ("containerPort", "container_port"),
        ("targetPort", "target_port"),
        ("spec.ports", "published_port"),
        ("resources", "cpu_request"),
        ("mountPath", "mount_path"),
        (".env", "env"),
        ("storageClassName", "storage_class"),
        ("metadata.name", "name"),
    ];
    rules
        .iter()
        .find(|(path, _)| message.contains(path))
        .map(|(_, field)| *field)
}

/// Applies `object` in `ns`; what it returns is not needed.
async fn apply_one<K>(client: &Client, ns: &str, object: &K) -> Result<(), KubeError>
where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + Serialize
        + std::fmt::Debug,
    K::DynamicType: Default,
{
    crate::kube::apply(&Api::namespaced(client.clone(), ns), object)
        .await
        .map(drop)
}

/// Deletes Berth's Service of a workload; one that is already gone is fine.
async fn delete_service(client: &Client, ns: &str, name: &str) -> Result<(), KubeError> {
    crate::kube::delete_opt(&Api::<Service>::namespaced(client.clone(), ns), name)
        .await
        .map(drop)
}

/// Applies the workload's objects: the pull Secret and the claim together,
/// then the Deployment and the Service together; a failure stops before
/// the next pair.
pub(super) async fn apply(
    client: &Client,
    deploy: &Deploy,
    secret: Option<Secret>,
    settings: &ExposeSettings,
    form_json: &str,
    update: bool,
) -> (Vec<StepView>, Option<KubeError>) {
    let spec = &deploy.spec;
    let ns = spec.namespace.as_str();
    let mut steps = Vec::new();
    let mut record = |what: String, result: Result<(), KubeError>| -> Option<KubeError> {
        match result {
            Ok(()) => {
                steps.push(StepView {
                    what,
                    ok: true,
                    message: if update {
                        "applied".into()
                    } else {
                        "created".into()
                    },
                });
                None
            }
            Err(error) => {
                steps.push(StepView {
                    what,
                    ok: false,
                    message: error.to_string(),
                });
                Some(error)
            }
        }
    };

    // Two round trips, not four: the pull Secret and the claim need nothing
    // from each other, nor the Deployment and its Service; the pod needs the
    // first two, so they go first.
    let secret = async {
        match &secret {
            Some(secret) => {
                let name = secret.metadata.name.clone().unwrap_or_default();
                let result = apply_one(client, ns, secret).await;
                Some((format!("Image pull Secret {name}"), result))
            }
            None => None,
        }
    };
    let claim = async {
        let claim = build::claim(spec)?;
        let name = build::claim_name(&spec.name);
        let result = apply_one(client, ns, &claim).await;
        Some((format!("Volume {name}"), result))
    };
    let (secret, claim) = futures::join!(secret, claim);
    let mut failed = None;
    for (what, result) in [secret, claim].into_iter().flatten() {
        failed = failed.or(record(what, result));
    }
    if failed.is_some() {
        return (steps, failed);
    }

    let deployment = async {
        let deployment = build::deployment_with_form(spec, form_json);
        apply_one(client, ns, &deployment).await
    };
    let service = async {
        match build::service(spec, settings) {
            Some(service) => Some((
                format!("Service {}", spec.name),
                apply_one(client, ns, &service).await,
            )),
            // Exposure switched off: the Service Berth made goes.
            None if update => Some((
                format!("Service {} (removed)", spec.name),
                delete_service(client, ns, &spec.name).await,
            )),
            None => None,
        }
    };
    let (deployment, service) = futures::join!(deployment, service);
    let deployment_failed = record(format!("Deployment {}", spec.name), deployment);
    let service_made = matches!(&service, Some((_, Ok(()))));
    let mut failed = deployment_failed;
    if let Some((what, result)) = service {
        failed = failed.or(record(what, result));
    }
    // A new workload whose Deployment was refused keeps no Service (it would
    // hold a load-balancer address for nothing).
    if !update && service_made && failed.is_some() {
        let removed = delete_service(client, ns, &spec.name).await;
        steps.push(StepView {
            what: format!("Service {}", spec.name),
            ok: removed.is_ok(),
            message: match removed {
                Ok(()) => "removed again, since the Deployment was refused".into(),
                Err(error) => format!("could not be removed again: {error}"),
            },
        });
    }
    if failed.is_some() {
        return (steps, failed);
    }
    (steps, None)
}
