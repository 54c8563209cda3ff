//! Smoke tests of the test world itself, through the same libraries Berth
//! uses: if one of these fails, the environment is broken, not Berth.

use crate::helpers::testenv_var as env;

use std::time::Duration;

use crate::helpers::{
    browser,
    cluster::{self, TestNamespace, eventually},
    oidc::Provider,
};
use k8s_openapi::api::{
    apps::v1::Deployment,
    core::v1::{Pod, ResourceQuota},
    rbac::v1::RoleBinding,
};
use kube::{
    Api,
    api::{ListParams, Patch, PatchParams, PostParams},
};
use reqwest::{StatusCode, Url, header};
use serde_json::json;
use sha2::{Digest, Sha256};

fn deployment(name: &str, image: &str) -> serde_json::Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/managed-by": "berth"}},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app.kubernetes.io/name": name}},
            "template": {
                "metadata": {"labels": {"app.kubernetes.io/name": name}},
                "spec": {"containers": [{
                    "name": name,
                    "image": image,
                    "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}},
                }]},
            },
        },
    })
}

#[tokio::test]
async fn server_side_apply_runs_a_deployment_to_running_on_a_fake_node() {
    let client = cluster::admin().await;
    let ns = TestNamespace::create(&client, "smoke-apply").await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns.name);
    let params = PatchParams::apply("berth");
    let applied = deployments
        .patch(
            "demo",
            &params,
            &Patch::Apply(deployment("demo", &env("TESTENV_IMAGE"))),
        )
        .await
        .expect("server-side apply");
    let managers: Vec<_> = applied
        .metadata
        .managed_fields
        .unwrap_or_default()
        .into_iter()
        .filter_map(|m| m.manager)
        .collect();
    assert!(managers.iter().any(|m| m == "berth"), "{managers:?}");

    // Applying the same thing again changes nothing.
    let again = deployments
        .patch(
            "demo",
            &params,
            &Patch::Apply(deployment("demo", &env("TESTENV_IMAGE"))),
        )
        .await
        .expect("second apply");
    assert_eq!(again.metadata.generation, applied.metadata.generation);

    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns.name);
    let node = eventually(Duration::from_secs(60), "the pod to be Running", || {
        let pods = pods.clone();
        async move {
            let list = pods
                .list(&ListParams::default().labels("app.kubernetes.io/name=demo"))
                .await
                .ok()?;
            list.items.into_iter().find_map(|pod| {
                let status = pod.status?;
                (status.phase.as_deref() == Some("Running")).then(|| pod.spec?.node_name)?
            })
        }
    })
    .await;
    let nodes: Api<k8s_openapi::api::core::v1::Node> = Api::all(client.clone());
    let node = nodes.get(&node).await.expect("the pod's node exists");
    assert_eq!(
        node.metadata
            .annotations
            .unwrap_or_default()
            .get("kwok.x-k8s.io/node")
            .map(String::as_str),
        Some("fake"),
        "scheduled onto a KWOK node"
    );
    ns.delete().await;
}

#[tokio::test]
async fn rbac_refuses_an_impersonated_user_until_a_role_binding_allows_it() {
    let admin = cluster::admin().await;
    let ns = TestNamespace::create(&admin, "smoke-rbac").await;
    let user = format!("berth:smoke-{}@purdue.edu", &ns.name);
    let as_user = cluster::impersonating(&user, &["berth:users"]).await;
    let pods: Api<Pod> = Api::namespaced(as_user.clone(), &ns.name);

    match pods.list(&ListParams::default()).await {
        Err(kube::Error::Api(status)) => assert_eq!(status.code, 403, "{status:?}"),
        other => panic!("expected 403 Forbidden, got {other:?}"),
    }

    let bindings: Api<RoleBinding> = Api::namespaced(admin.clone(), &ns.name);
    let binding = serde_json::from_value(json!({
        "metadata": {"name": "smoke-view"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}],
    }))
    .expect("binding");
    bindings
        .create(&PostParams::default(), &binding)
        .await
        .expect("creating the binding");

    // RBAC caches are updated by watch; allow a moment for it to see the binding.
    eventually(Duration::from_secs(20), "RBAC to allow the user", || {
        let pods = pods.clone();
        async move { pods.list(&ListParams::default()).await.ok() }
    })
    .await;
    ns.delete().await;
}

#[tokio::test]
async fn a_resource_quota_makes_the_apiserver_refuse_a_pod_over_it() {
    let client = cluster::admin().await;
    let ns = TestNamespace::create(&client, "smoke-quota").await;
    let quotas: Api<ResourceQuota> = Api::namespaced(client.clone(), &ns.name);
    let quota = serde_json::from_value(json!({
        "metadata": {"name": "limits"},
        "spec": {"hard": {"requests.memory": "128Mi", "requests.cpu": "1", "limits.memory": "256Mi", "limits.cpu": "1"}},
    }))
    .expect("quota");
    quotas
        .create(&PostParams::default(), &quota)
        .await
        .expect("creating the quota");
    // The quota controller must have computed status before admission counts usage.
    eventually(Duration::from_secs(30), "quota status", || {
        let quotas = quotas.clone();
        async move { quotas.get("limits").await.ok()?.status?.hard }
    })
    .await;

    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns.name);
    let pod = |name: &str, memory: &str| -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": name},
            "spec": {"containers": [{
                "name": "c", "image": "example.invalid/x:1",
                "resources": {"requests": {"cpu": "100m", "memory": memory}, "limits": {"cpu": "100m", "memory": memory}},
            }]},
        }))
        .expect("pod")
    };
    cluster::wait_until_quota_refuses(&pods, &pod("too-big", "512Mi")).await;
    match pods
        .create(&PostParams::default(), &pod("too-big", "512Mi"))
        .await
    {
        Err(kube::Error::Api(status)) => {
            assert_eq!(status.code, 403, "{status:?}");
            assert!(
                status.message.contains("exceeded quota"),
                "{}",
                status.message
            );
        }
        other => panic!("expected the quota to refuse the pod, got {other:?}"),
    }
    pods.create(&PostParams::default(), &pod("fits", "64Mi"))
        .await
        .expect("a pod within the quota is admitted");
    ns.delete().await;
}

#[tokio::test]
async fn the_registry_serves_the_test_image_with_credentials_and_refuses_without() {
    let registry = env("TESTENV_REGISTRY");
    let image = env("TESTENV_IMAGE");
    let (repository, tag) = image
        .strip_prefix(&format!("{registry}/"))
        .and_then(|rest| rest.rsplit_once(':'))
        .expect("TESTENV_IMAGE is host/repo:tag");
    let url = format!("http://{registry}/v2/{repository}/manifests/{tag}");
    let accept = "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json";
    let client = reqwest::Client::new();

    let anonymous = client
        .get(&url)
        .header(header::ACCEPT, accept)
        .send()
        .await
        .expect("registry");
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);

    let authorized = client
        .get(&url)
        .header(header::ACCEPT, accept)
        .basic_auth(
            env("TESTENV_REGISTRY_USER"),
            Some(env("TESTENV_REGISTRY_PASSWORD")),
        )
        .send()
        .await
        .expect("registry");
    assert_eq!(authorized.status(), StatusCode::OK);
    let digest = authorized.headers()["docker-content-digest"]
        .to_str()
        .expect("ascii")
        .to_owned();
    let body = authorized.bytes().await.expect("manifest");
    assert_eq!(
        digest,
        format!("sha256:{}", hex::encode(Sha256::digest(&body)))
    );
    let manifest: serde_json::Value = serde_json::from_slice(&body).expect("manifest is JSON");
    assert!(
        manifest["layers"].as_array().is_some_and(|l| !l.is_empty()),
        "{manifest}"
    );
}

#[tokio::test]
async fn the_oidc_provider_publishes_discovery_and_issues_a_token_for_the_test_user() {
    let provider = Provider::from_env();
    let client = browser();
    let discovery: serde_json::Value = client
        .get(format!(
            "{}/.well-known/openid-configuration",
            provider.issuer
        ))
        .send()
        .await
        .expect("discovery")
        .json()
        .await
        .expect("discovery JSON");
    assert_eq!(discovery["issuer"], provider.issuer.as_str());
    let jwks: serde_json::Value = client
        .get(discovery["jwks_uri"].as_str().expect("jwks_uri"))
        .send()
        .await
        .expect("JWKS")
        .json()
        .await
        .expect("JWKS JSON");
    assert!(jwks["keys"].as_array().is_some_and(|k| !k.is_empty()));

    let redirect = "http://localhost:9/callback";
    let mut authorize = Url::parse(
        discovery["authorization_endpoint"]
            .as_str()
            .expect("endpoint"),
    )
    .expect("URL");
    authorize
        .query_pairs_mut()
        .append_pair("client_id", &provider.client_id)
        .append_pair("redirect_uri", redirect)
        .append_pair("response_type", "code")
        .append_pair("scope", "openid email")
        .append_pair("state", "smoke-state");
    let back = provider
        .log_in(&client, authorize, "student@purdue.edu", redirect)
        .await;
    let code = back
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .expect("code");
    let token: serde_json::Value = client
        .post(
            discovery["token_endpoint"]
                .as_str()
                .expect("token endpoint"),
        )
        .basic_auth(&provider.client_id, Some(&provider.client_secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", redirect),
        ])
        .send()
        .await
        .expect("token endpoint")
        .json()
        .await
        .expect("token JSON");
    let id_token = token["id_token"].as_str().expect("an ID token");
    let payload = id_token.split('.').nth(1).expect("JWT payload");
    use base64::Engine;
    let claims: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .expect("base64url"),
    )
    .expect("claims");
    assert_eq!(claims["email"], "student@purdue.edu");
    assert_eq!(claims["iss"], provider.issuer.as_str());
}
