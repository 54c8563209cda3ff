//! "What Berth applied": a workload's objects as YAML, and the `kubectl
//! apply` command that would do the same.
//!
//! The Deployment carries the deploy form it was made from (annotation
//! `berth.io/form`); parsing it again and running the same pure builders
//! gives exactly what Berth applied, without anything the cluster added.
//! Without that annotation, the live objects are shown with what the cluster
//! added (status, uid, managed fields) stripped. A pull Secret's token is
//! never shown: the Secret appears as a comment naming it.
//!
//! The command shown must change nothing if run: with the objects rebuilt
//! from the form it is `kubectl apply --server-side` with Berth's own field
//! manager and exactly the fields Berth applies (the form annotation
//! included), so server-side apply finds nothing to add or remove. The live
//! objects are not what Berth applied (applying them would make every field
//! Berth's), so for those only a read-only `kubectl get` is shown.
//!
//! YAML comes from `serde-saphyr` (pure Rust, maintained; kube-rs reads
//! kubeconfigs with it too), which quotes strings YAML would read as
//! something else (`on`, `yes`, `0755`).

use axum::{
    extract::{Path, State},
    http::{HeaderValue, header},
    response::{IntoResponse, Response},
};
use k8s_openapi::{
    api::{apps::v1::Deployment, core::v1::Service},
    apimachinery::pkg::apis::meta::v1::ObjectMeta,
};
use serde::Serialize;

use super::{
    build::{self, ExposeSettings},
    form::DeployForm,
    lookup::{self, Objects},
};
use crate::{
    app::AppState,
    auth::{CurrentUser, NamespaceMember},
    error::AppResult,
    kube::{FIELD_MANAGER, cached},
};

/// What Berth applied, ready to show or download.
#[derive(Debug, Clone)]
pub struct Applied {
    /// The YAML documents.
    pub yaml: String,
    /// Rebuilt from the form Berth kept (`true`), or the live objects.
    pub from_form: bool,
    /// `kubectl apply --server-side …` (from the form), or a read-only
    /// `kubectl get …` (live objects).
    pub command: String,
    /// `<name>.yaml`.
    pub file_name: String,
}

fn to_yaml<T: Serialize>(object: &T) -> String {
    match serde_saphyr::to_string(object) {
        Ok(text) => text,
        // Kubernetes objects always serialize; if one ever did not, the page
        // still says so instead of failing.
        Err(error) => format!("# could not be written as YAML: {error}\n"),
    }
}

/// The documents, joined with `---`.
fn documents(parts: Vec<String>) -> String {
    parts.join("---\n")
}

/// Rebuilds the objects from the form kept on the Deployment; `None` if
/// there is no form or it no longer parses.
pub fn from_form(
    deployment: &cached::Deployment,
    default_registry: &str,
    settings: &ExposeSettings,
) -> Option<String> {
    let json = deployment.form.as_deref()?;
    let form: DeployForm = serde_json::from_str(json).ok()?;
    let ns = &deployment.metadata.namespace;
    let owner = deployment.owner.clone().unwrap_or_default();
    let mut spec = form.parse(ns, &owner, default_registry).ok()?.spec;
    let pod = deployment.spec.as_ref()?.template.spec.as_ref()?;
    spec.image = pod.containers.first()?.image.clone()?;
    spec.pull_secret = pod
        .image_pull_secrets
        .as_ref()
        .and_then(|s| s.first())
        .map(|s| s.name.clone());
    // Scaling changes the Deployment, not the form: show what is applied now.
    if let Some(replicas) = deployment.spec.as_ref().and_then(|s| s.replicas) {
        spec.replicas = replicas;
    }
    let mut parts = Vec::new();
    if let Some(secret) = &spec.pull_secret {
        parts.push(format!(
            "# image pull Secret {secret} (token not shown; Berth keeps it in the namespace)\n"
        ));
    }
    if let Some(claim) = build::claim(&spec) {
        parts.push(to_yaml(&claim));
    }
    // The kept form goes back exactly as it is: re-applying without it
    // would remove it (Berth's field manager owns it).
    parts.push(to_yaml(&build::deployment_with_form(&spec, json)));
    if let Some(service) = build::service(&spec, settings) {
        parts.push(to_yaml(&service));
    }
    Some(documents(parts))
}

/// What the cluster added to an object's metadata, removed.
fn clean(meta: &mut ObjectMeta) {
    meta.managed_fields = None;
    meta.uid = None;
    meta.resource_version = None;
    meta.creation_timestamp = None;
    meta.generation = None;
    meta.owner_references = None;
    if let Some(annotations) = meta.annotations.as_mut() {
        annotations.remove("deployment.kubernetes.io/revision");
        annotations.remove("kubectl.kubernetes.io/last-applied-configuration");
    }
}

/// The live Deployment and Service, without status and server-set fields.
pub fn from_live(deployment: &Deployment, service: Option<&Service>) -> String {
    let mut parts = Vec::new();
    let pull_secrets: Vec<String> = deployment
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .and_then(|p| p.image_pull_secrets.clone())
        .unwrap_or_default()
        .into_iter()
        .map(|s| s.name)
        .collect();
    for secret in pull_secrets {
        parts.push(format!("# image pull Secret {secret} (token not shown)\n"));
    }
    let mut deployment = deployment.clone();
    clean(&mut deployment.metadata);
    deployment.status = None;
    parts.push(to_yaml(&deployment));
    if let Some(service) = service {
        let mut service = service.clone();
        clean(&mut service.metadata);
        service.status = None;
        if let Some(spec) = service.spec.as_mut() {
            // Allocated by the cluster; applying them elsewhere would fail.
            spec.cluster_ip = None;
            spec.cluster_ips = None;
        }
        parts.push(to_yaml(&service));
    }
    documents(parts)
}

/// What Berth applied for the workload in `objects`. Rebuilt from the
/// kept form from the cache alone; without one, the live Deployment is read
/// from the apiserver as `user` (a failure is said in the YAML, not as a
/// failed page).
pub async fn applied(state: &AppState, user: &CurrentUser, objects: &Objects) -> Applied {
    let settings = ExposeSettings {
        public_annotation: state.config.expose.public_pool_annotation.clone(),
    };
    let d = &objects.deployment;
    let name = d.metadata.name.clone();
    let ns = d.metadata.namespace.clone();
    let (yaml, from_form) = match from_form(d, &state.config.registry.default_registry, &settings) {
        Some(yaml) => (yaml, true),
        None => match lookup::live_workload(state, user, &ns, &name).await {
            Ok(live) => (from_live(&live, objects.service.as_deref()), false),
            Err(error) => (
                format!("# could not be read from the cluster: {error}\n"),
                false,
            ),
        },
    };
    Applied {
        yaml,
        from_form,
        command: if from_form {
            format!(
                "kubectl apply --server-side --field-manager={FIELD_MANAGER} -n {ns} -f {name}.yaml"
            )
        } else if objects.service.is_some() {
            format!("kubectl get -n {ns} deployment/{name} service/{name} -o yaml")
        } else {
            format!("kubectl get -n {ns} deployment/{name} -o yaml")
        },
        file_name: format!("{name}.yaml"),
    }
}

/// `GET /namespaces/{ns}/workloads/{name}/applied.yaml`: the YAML as a download.
pub async fn download(
    State(state): State<AppState>,
    NamespaceMember {
        user,
        namespace: ns,
    }: NamespaceMember,
    Path((_, name)): Path<(String, String)>,
) -> AppResult<Response> {
    let caches = state.kube.caches()?;
    let deployment = lookup::find_workload(caches, &ns, &name)?;
    let applied = applied(&state, &user, &Objects::collect(caches, deployment)).await;
    // The name is a DNS label (checked by the lookup), so it is safe in the header.
    let disposition =
        HeaderValue::from_str(&format!("attachment; filename=\"{}\"", applied.file_name))
            .unwrap_or(HeaderValue::from_static("attachment"));
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/yaml; charset=utf-8"),
            ),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        applied.yaml,
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workloads::build::FORM_ANNOTATION;
    use kube::ResourceExt;

    #[test]
    fn strings_that_yaml_would_misread_stay_strings() {
        let env = serde_json::json!({
            "env": [
                {"name": "DEBUG", "value": "on"},
                {"name": "ANSWER", "value": "yes"},
                {"name": "MODE", "value": "0755"},
                {"name": "EMPTY", "value": ""},
                {"name": "NULLISH", "value": "null"},
                {"name": "PORT", "value": "8080"},
            ]
        });
        let yaml = to_yaml(&env);
        let back: serde_json::Value = serde_saphyr::from_str(&yaml).expect("reads back");
        assert_eq!(back, env, "{yaml}");
        for word in ["on", "yes", "0755", "null", "8080"] {
            assert!(
                yaml.contains(&format!("\"{word}\"")) || yaml.contains(&format!("'{word}'")),
                "{word} is quoted in:\n{yaml}"
            );
        }
    }
    use crate::workloads::form::{DeployForm, Preset};
    use serde_json::json;

    fn settings() -> ExposeSettings {
        ExposeSettings {
            public_annotation: (
                "metallb.io/address-pool".to_owned(),
                "geddes-public-pool".to_owned(),
            ),
        }
    }

    fn deployment_with_form(form: Option<&DeployForm>) -> Deployment {
        let mut annotations = json!({"berth.io/owner": "s@purdue.edu"});
        if let Some(form) = form {
            annotations[FORM_ANNOTATION] = json!(serde_json::to_string(form).expect("form json"));
        }
        serde_json::from_value(json!({
            "metadata": {"name": "add-two", "namespace": "cs101", "uid": "abc", "resourceVersion": "42",
                         "annotations": annotations,
                         "managedFields": [{"manager": "berth", "operation": "Apply"}]},
            "spec": {"replicas": 3, "selector": {}, "template": {"spec": {
                "containers": [{"name": "add-two", "image": "reg.example/cs101/add-two@sha256:abcd"}],
                "imagePullSecrets": [{"name": "berth-pull-1"}]}}},
            "status": {"readyReplicas": 3}
        }))
        .expect("deployment")
    }

    #[test]
    fn the_form_is_rebuilt_with_the_live_image_secret_and_replicas() {
        let form = DeployForm {
            image_id: "7".into(),
            ..DeployForm::preset(Preset::AddTwo, "cs101")
        };
        let yaml = from_form(
            &deployment_with_form(Some(&form)).into(),
            "reg.example",
            &settings(),
        )
        .expect("rebuilt");
        assert!(
            yaml.starts_with("# image pull Secret berth-pull-1 (token not shown"),
            "{yaml}"
        );
        let docs: Vec<serde_json::Value> = yaml
            .split("---\n")
            .filter(|d| !d.trim_start().starts_with('#'))
            .map(|d| serde_saphyr::from_str(d).expect("valid YAML"))
            .collect();
        assert_eq!(docs.len(), 2, "{yaml}");
        assert_eq!(docs[0]["kind"], "Deployment");
        assert_eq!(docs[0]["spec"]["replicas"], 3);
        let pod = &docs[0]["spec"]["template"]["spec"];
        assert_eq!(
            pod["containers"][0]["image"],
            "reg.example/cs101/add-two@sha256:abcd"
        );
        assert_eq!(pod["imagePullSecrets"][0]["name"], "berth-pull-1");
        assert_eq!(docs[1]["kind"], "Service");
        assert_eq!(docs[1]["spec"]["ports"][0]["port"], 80);
        assert!(!yaml.contains("dockerconfigjson"));
        assert!(!yaml.contains("status"));
        // The kept form goes back as it is, so applying it keeps it.
        let kept = deployment_with_form(Some(&form));
        assert_eq!(
            docs[0]["metadata"]["annotations"][FORM_ANNOTATION].as_str(),
            kept.annotations().get(FORM_ANNOTATION).map(String::as_str)
        );
        assert_eq!(
            docs[0]["metadata"]["annotations"]["berth.io/owner"],
            "s@purdue.edu"
        );
    }

    #[test]
    fn without_the_form_the_live_objects_are_cleaned() {
        let d = deployment_with_form(None);
        assert!(from_form(&d.clone().into(), "reg.example", &settings()).is_none());
        let yaml = from_live(&d, None);
        for gone in ["uid", "resourceVersion", "managedFields", "readyReplicas"] {
            assert!(!yaml.contains(gone), "{gone} in {yaml}");
        }
        assert!(yaml.contains("# image pull Secret berth-pull-1 (token not shown)"));
        assert!(yaml.contains("kind: Deployment"));
    }
}
