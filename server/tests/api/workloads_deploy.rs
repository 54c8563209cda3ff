//! The deploy form against the test world: what the form submits is what the
//! apiserver holds, applied as the signed-in student through impersonation
//! (Berth runs as its least-privilege ServiceAccount), with the quota checked
//! before anything is sent.

use std::time::Duration;

use crate::helpers::registries::{BasicRegistry, registry_args};
use crate::helpers::{
    TestApp, TestPerson,
    browser::Browser,
    cluster::{self, eventually},
    location, unique,
};
use k8s_openapi::api::{
    apps::v1::Deployment,
    core::v1::{Node, Pod, ResourceQuota, Secret, Service},
};
use kube::{Api, Client, api::ListParams};
use reqwest::StatusCode;

const STUDENT: &str = "student@purdue.edu";
const WAIT: Duration = Duration::from_secs(60);

/// Berth as its ServiceAccount, an admin browser (the default client) that
/// made a namespace with a quota and added the student, and the student's browser.
struct World {
    app: TestApp,
    admin: Client,
    student: TestPerson,
    ns: String,
    registry: BasicRegistry,
}

impl World {
    async fn new(memory_quota: &str) -> Self {
        Self::with_quota(&[("requests_memory", memory_quota)]).await
    }

    /// A namespace whose admin form has `quota` instead of the defaults below.
    async fn with_quota(quota: &[(&str, &str)]) -> Self {
        let registry = BasicRegistry::from_env();
        let args = registry_args(&registry.host);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let app = TestApp::spawn_in_cluster(&args).await;
        let ns = unique("t-deploy");
        let prof = TestPerson::admin(&app, "prof@purdue.edu").await;
        let mut settings = vec![("requests_storage", "20Gi")];
        settings.retain(|(k, _)| !quota.iter().any(|(key, _)| key == k));
        settings.extend_from_slice(quota);
        prof.create_namespace(&ns, &settings).await;
        prof.add_member(&ns, STUDENT, "member").await;
        let student = TestPerson::student(&app, STUDENT).await;
        Self {
            app,
            admin: cluster::admin().await,
            student,
            ns,
            registry,
        }
    }

    /// Saves the test registry's credentials and registers its demo image as
    /// the student; returns the image's id.
    async fn register_demo_image(&self) -> String {
        let saved = self
            .student
            .submit(
                &format!("/namespaces/{}/registry", self.ns),
                &[
                    ("host", &self.registry.host),
                    ("robot", &self.registry.user),
                    ("token", &self.registry.password),
                ],
            )
            .await;
        assert_eq!(saved.status(), StatusCode::SEE_OTHER, "saving credentials");
        let credential: i64 =
            sqlx::query_scalar("SELECT id FROM registry_credentials WHERE namespace = ?")
                .bind(&self.ns)
                .fetch_one(&self.app.db)
                .await
                .expect("credential row");
        let registered = self
            .student
            .submit(
                &format!("/namespaces/{}/images", self.ns),
                &[
                    ("reference", &self.registry.image),
                    ("credential_id", &credential.to_string()),
                ],
            )
            .await;
        assert_eq!(
            registered.status(),
            StatusCode::SEE_OTHER,
            "registering the image"
        );
        location(&registered)
            .rsplit('/')
            .next()
            .expect("image id")
            .to_owned()
    }

    async fn deploy(&self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        self.student.submit(path, form).await
    }

    async fn deployment(&self, name: &str) -> Option<Deployment> {
        Api::<Deployment>::namespaced(self.admin.clone(), &self.ns)
            .get_opt(name)
            .await
            .expect("reading the Deployment")
    }

    async fn finish(self) {
        cluster::delete_namespace(&self.admin, &self.ns).await;
        self.app.stop().await;
    }
}

/// The add-two preset as the form would post it.
fn add_two<'a>(image_id: &'a str, exposure: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("action", "deploy"),
        ("name", "add-two"),
        ("image_source", "registered"),
        ("image_id", image_id),
        ("replicas", "1"),
        ("container_port", "5000"),
        ("cpu_request", "100m"),
        ("memory_request", "64Mi"),
        ("memory_limit", "128Mi"),
        ("volume", "none"),
        ("exposure", exposure),
        ("published_port", "80"),
        ("target_port", "5000"),
        ("protocol", "TCP"),
    ]
}

#[tokio::test]
async fn the_add_two_preset_on_campus_creates_what_the_form_said_and_runs() {
    let world = World::new("2Gi").await;
    let image_id = world.register_demo_image().await;
    let ns = world.ns.clone();

    let form = world
        .student
        .get(&format!(
            "/namespaces/{ns}/workloads/new?preset=add-two&image={image_id}"
        ))
        .await;
    assert_eq!(form.status(), StatusCode::OK);
    let html = form.text().await.expect("body");
    assert!(html.contains("value=\"5000\""), "the preset fills the port");
    assert!(
        html.contains("placeholder=\"500m\""),
        "the LimitRange default is shown"
    );

    let response = world
        .deploy(
            &format!("/namespaces/{ns}/workloads"),
            &add_two(&image_id, "campus"),
        )
        .await;
    assert_eq!(
        response.status(),
        StatusCode::SEE_OTHER,
        "{}",
        response.text().await.unwrap_or_default()
    );
    assert_eq!(
        location(&response),
        format!("/namespaces/{ns}/workloads/add-two")
    );

    // What the apiserver holds.
    let deployment = world
        .deployment("add-two")
        .await
        .expect("the Deployment exists");
    let labels = deployment.metadata.labels.clone().unwrap_or_default();
    assert_eq!(
        labels
            .get("app.kubernetes.io/managed-by")
            .map(String::as_str),
        Some("berth")
    );
    assert_eq!(
        labels.get("app.kubernetes.io/name").map(String::as_str),
        Some("add-two")
    );
    let annotations = deployment.metadata.annotations.clone().unwrap_or_default();
    assert_eq!(
        annotations.get("berth.io/owner").map(String::as_str),
        Some(STUDENT)
    );
    let managers: Vec<String> = deployment
        .metadata
        .managed_fields
        .clone()
        .unwrap_or_default()
        .into_iter()
        .filter_map(|m| m.manager)
        .collect();
    assert!(managers.iter().any(|m| m == "berth"), "{managers:?}");
    let pod_spec = deployment
        .spec
        .clone()
        .and_then(|s| s.template.spec)
        .expect("pod spec");
    let container = &pod_spec.containers[0];
    assert_eq!(
        container.image.as_deref(),
        Some(world.registry.image.as_str())
    );
    assert_eq!(
        container.ports.as_ref().expect("ports")[0].container_port,
        5000
    );
    let secret_name = pod_spec.image_pull_secrets.expect("a pull secret")[0]
        .name
        .clone();

    let secret = Api::<Secret>::namespaced(world.admin.clone(), &ns)
        .get(&secret_name)
        .await
        .expect("the pull Secret");
    assert_eq!(
        secret.type_.as_deref(),
        Some("kubernetes.io/dockerconfigjson")
    );
    let config: serde_json::Value =
        serde_json::from_slice(&secret.data.expect("data")[".dockerconfigjson"].0)
            .expect("docker config");
    assert_eq!(
        config["auths"][&world.registry.host]["username"],
        world.registry.user.as_str()
    );
    assert_eq!(
        config["auths"][&world.registry.host]["password"],
        world.registry.password.as_str()
    );

    let service = Api::<Service>::namespaced(world.admin.clone(), &ns)
        .get("add-two")
        .await
        .expect("the Service");
    let spec = service.spec.expect("service spec");
    assert_eq!(spec.type_.as_deref(), Some("LoadBalancer"));
    let port = &spec.ports.expect("ports")[0];
    assert_eq!(port.port, 80);
    assert_eq!(
        port.target_port,
        Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(5000))
    );
    assert!(
        !service
            .metadata
            .annotations
            .unwrap_or_default()
            .contains_key("metallb.io/address-pool"),
        "campus uses the default pool"
    );

    // The pod reaches Running on a KWOK node.
    let pods: Api<Pod> = Api::namespaced(world.admin.clone(), &ns);
    let node = eventually(WAIT, "the add-two pod to be Running", || {
        let pods = pods.clone();
        async move {
            let list = pods
                .list(&ListParams::default().labels("app.kubernetes.io/name=add-two"))
                .await
                .ok()?;
            list.items.into_iter().find_map(|pod| {
                (pod.status.as_ref()?.phase.as_deref() == Some("Running"))
                    .then(|| pod.spec?.node_name)?
            })
        }
    })
    .await;
    let node = Api::<Node>::all(world.admin.clone())
        .get(&node)
        .await
        .expect("node");
    assert_eq!(
        node.metadata
            .annotations
            .unwrap_or_default()
            .get("kwok.x-k8s.io/node")
            .map(String::as_str),
        Some("fake")
    );

    // Applying the same form again changes nothing.
    let generation = deployment.metadata.generation;
    let edit = format!("/namespaces/{ns}/workloads/add-two/edit");
    let again = world.deploy(&edit, &add_two(&image_id, "campus")).await;
    assert_eq!(again.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        world
            .deployment("add-two")
            .await
            .expect("still there")
            .metadata
            .generation,
        generation
    );

    // The edit form is prefilled from the cluster, and a change is applied.
    let edit_html = world.student.html(&edit).await;
    assert!(edit_html.contains("value=\"add-two\""), "prefilled");
    assert!(edit_html.contains("value=\"128Mi\""), "prefilled limits");
    let mut scaled = add_two(&image_id, "campus");
    scaled.retain(|(k, _)| *k != "replicas");
    scaled.push(("replicas", "2"));
    let changed = world.deploy(&edit, &scaled).await;
    assert_eq!(changed.status(), StatusCode::SEE_OTHER);
    let updated = world.deployment("add-two").await.expect("still there");
    assert_eq!(updated.spec.and_then(|s| s.replicas), Some(2));
    assert!(updated.metadata.generation > generation);

    let audited: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM audit_log WHERE action IN ('workload.deploy', 'workload.update') AND outcome = 'ok' AND namespace = ?",
    )
    .bind(&ns)
    .fetch_one(&world.app.db)
    .await
    .expect("audit");
    assert_eq!(audited, 3);
    world.finish().await;
}

#[tokio::test]
async fn public_exposure_carries_the_pool_annotation_and_none_removes_the_service() {
    let world = World::new("2Gi").await;
    let ns = world.ns.clone();
    let form = |exposure: &'static str| -> Vec<(&'static str, &'static str)> {
        vec![
            ("name", "web"),
            ("image_source", "public"),
            ("image", "quay.io/example/web:1.0"),
            ("replicas", "1"),
            ("container_port", "8080"),
            ("exposure", exposure),
            ("published_port", "443"),
            ("target_port", "8080"),
            ("protocol", "TCP"),
            ("volume", "none"),
        ]
    };
    let response = world
        .deploy(&format!("/namespaces/{ns}/workloads"), &form("public"))
        .await;
    assert_eq!(
        response.status(),
        StatusCode::SEE_OTHER,
        "{}",
        response.text().await.unwrap_or_default()
    );
    let services: Api<Service> = Api::namespaced(world.admin.clone(), &ns);
    let service = services.get("web").await.expect("the Service");
    assert_eq!(
        service
            .metadata
            .annotations
            .unwrap_or_default()
            .get("metallb.io/address-pool")
            .map(String::as_str),
        Some("geddes-public-pool")
    );
    let deployment = world.deployment("web").await.expect("Deployment");
    assert!(
        deployment
            .spec
            .and_then(|s| s.template.spec)
            .and_then(|s| s.image_pull_secrets)
            .is_none(),
        "a public image needs no pull Secret"
    );

    let edited = world
        .deploy(
            &format!("/namespaces/{ns}/workloads/web/edit"),
            &form("none"),
        )
        .await;
    assert_eq!(edited.status(), StatusCode::SEE_OTHER);
    assert!(
        services.get_opt("web").await.expect("reading").is_none(),
        "the Service is gone"
    );
    world.finish().await;
}

#[tokio::test]
async fn a_deploy_over_quota_is_refused_before_anything_is_sent() {
    let world = World::new("512Mi").await;
    let ns = world.ns.clone();
    let response = world
        .deploy(
            &format!("/namespaces/{ns}/workloads"),
            &[
                ("name", "big"),
                ("image_source", "public"),
                ("image", "quay.io/example/big:1.0"),
                ("replicas", "3"),
                ("memory_request", "256Mi"),
                ("exposure", "none"),
                ("volume", "none"),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = response.text().await.expect("body");
    assert!(
        html.contains("3 replicas × 100m CPU / 256Mi = 300m CPU / 768Mi"),
        "{html}"
    );
    assert!(
        html.contains("768Mi memory requested of your remaining 512Mi"),
        "{html}"
    );
    assert!(
        world.deployment("big").await.is_none(),
        "nothing was created"
    );
    world.finish().await;
}

#[tokio::test]
async fn invalid_fields_get_messages_beside_them_and_create_nothing() {
    let world = World::new("2Gi").await;
    let ns = world.ns.clone();
    let response = world
        .deploy(
            &format!("/namespaces/{ns}/workloads"),
            &[
                ("name", "Bad_Name"),
                ("image_source", "public"),
                ("image", "nginx"),
                ("replicas", "1"),
                ("container_port", "0"),
                ("memory_request", "lots"),
                ("exposure", "campus"),
                ("published_port", "99999"),
                ("volume", "none"),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = response.text().await.expect("body");
    for expected in [
        "Use only lowercase letters",
        "Start with the registry host",
        "is not a port",
        "is not an amount Kubernetes understands",
    ] {
        assert!(html.contains(expected), "{expected} in {html}");
    }
    assert!(html.contains("value=\"Bad_Name\""), "values are kept");
    let list = Api::<Deployment>::namespaced(world.admin.clone(), &ns)
        .list(&ListParams::default())
        .await
        .expect("list");
    assert!(list.items.is_empty(), "nothing was created");
    world.finish().await;
}

#[tokio::test]
async fn a_submit_berth_lets_through_is_still_refused_by_the_apiserver_without_a_role_binding() {
    let world = World::new("2Gi").await;
    let ns = world.ns.clone();
    // Simulate a bug in Berth's own check: a membership row without its RoleBinding.
    sqlx::query("INSERT INTO memberships (namespace, email, role, added_by, added_at) VALUES (?, 'eve@purdue.edu', 'member', 'test', 0)")
        .bind(&ns)
        .execute(&world.app.db)
        .await
        .expect("membership row");
    world.app.forget_cached();
    let eve = TestPerson::student(&world.app, "eve@purdue.edu").await;
    let response = eve
        .submit(
            &format!("/namespaces/{ns}/workloads"),
            &[
                ("name", "sneaky"),
                ("image_source", "public"),
                ("image", "quay.io/example/web:1.0"),
                ("replicas", "1"),
                ("exposure", "none"),
                ("volume", "none"),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let html = response.text().await.expect("body");
    assert!(html.contains("Kubernetes refused this"), "{html}");
    assert!(html.contains("failed"), "the step that failed is named");
    assert!(world.deployment("sneaky").await.is_none());
    let denied: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM audit_log WHERE action = 'workload.deploy' AND outcome = 'denied' AND actor = 'eve@purdue.edu'",
    )
    .fetch_one(&world.app.db)
    .await
    .expect("audit");
    assert_eq!(denied, 1);
    world.finish().await;
}

#[tokio::test]
async fn a_student_deploys_add_two_from_the_form_in_a_real_browser() {
    let world = World::new("2Gi").await;
    let image_id = world.register_demo_image().await;
    let ns = world.ns.clone();
    let browser = Browser::start().await;
    browser.sign_in(&world.app.base, STUDENT, false).await;

    browser
        .goto(&world.app.url(&format!(
            "/namespaces/{ns}/workloads/new?preset=add-two&image={image_id}"
        )))
        .await;
    if let Ok(dir) = std::env::var("BERTH_SCREENSHOT_DIR") {
        let _ = std::fs::write(format!("{dir}/deploy-form.png"), browser.screenshot().await);
    }
    browser.click("button[value=deploy]").await;
    let page = world
        .app
        .url(&format!("/namespaces/{ns}/workloads/add-two"));
    assert_eq!(browser.wait_for_url(&page).await, page);
    let html = browser.source().await;
    assert!(
        html.contains("Deployed add-two"),
        "the flash says what happened: {html}"
    );
    if let Ok(dir) = std::env::var("BERTH_SCREENSHOT_DIR") {
        let _ = std::fs::write(format!("{dir}/workload.png"), browser.screenshot().await);
    }
    let deployment = world
        .deployment("add-two")
        .await
        .expect("deployed from the browser");
    let image = deployment
        .spec
        .and_then(|s| s.template.spec)
        .and_then(|s| s.containers.into_iter().next())
        .and_then(|c| c.image);
    assert_eq!(image.as_deref(), Some(world.registry.image.as_str()));
    browser.quit().await;
    world.finish().await;
}

/// The edit page's text, once Berth's quota cache shows `needle`.
async fn edit_page_showing(world: &World, name: &str, needle: &str) -> String {
    let url = world
        .student
        .url(&format!("/namespaces/{}/workloads/{name}/edit", world.ns));
    eventually(WAIT, &format!("the edit page to show {needle:?}"), || {
        let request = world.student.client.get(&url);
        async move {
            let html = request.send().await.ok()?.text().await.ok()?;
            html.contains(needle).then_some(html)
        }
    })
    .await
}

#[tokio::test]
async fn an_exposed_workload_under_a_one_load_balancer_quota_can_still_be_edited() {
    let world = World::with_quota(&[("services_loadbalancers", "1"), ("pods", "3")]).await;
    let ns = world.ns.clone();
    // A second quota, as an admin might add by hand, on the keys the admin
    // form does not set: one Service, one node port.
    let quotas: Api<ResourceQuota> = Api::namespaced(world.admin.clone(), &ns);
    let extra: ResourceQuota = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "services", "labels": {"app.kubernetes.io/managed-by": "berth"}},
        "spec": {"hard": {"services": "1", "services.nodeports": "1"}},
    }))
    .expect("quota");
    quotas
        .create(&Default::default(), &extra)
        .await
        .expect("creating the services quota");
    let form = |replicas: &'static str, env: &'static str| -> Vec<(&'static str, &'static str)> {
        vec![
            ("action", "deploy"),
            ("name", "web"),
            ("image_source", "public"),
            ("image", "quay.io/example/web:1.0"),
            ("replicas", replicas),
            ("container_port", "8080"),
            ("memory_request", "64Mi"),
            ("env", env),
            ("exposure", "campus"),
            ("published_port", "80"),
            ("target_port", "8080"),
            ("protocol", "TCP"),
            ("volume", "none"),
        ]
    };
    let response = world
        .deploy(&format!("/namespaces/{ns}/workloads"), &form("1", ""))
        .await;
    assert_eq!(
        response.status(),
        StatusCode::SEE_OTHER,
        "{}",
        response.text().await.unwrap_or_default()
    );
    // Wait until the quota controller counted the load balancer and Berth's
    // cache shows it: the namespace has none left, the workload holds it.
    edit_page_showing(
        &world,
        "web",
        "no more load balancers than now (remaining: 0)",
    )
    .await;
    edit_page_showing(&world, "web", "no more node ports than now (remaining: 0)").await;

    // 1 → 2 replicas: only a pod more, no second load balancer.
    let edit = format!("/namespaces/{ns}/workloads/web/edit");
    let response = world.deploy(&edit, &form("2", "")).await;
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    let replicas = world
        .deployment("web")
        .await
        .and_then(|d| d.spec)
        .and_then(|s| s.replicas);
    assert_eq!(replicas, Some(2));
    let quota = quotas.get("berth-quota").await.expect("berth-quota");
    assert_eq!(
        quota
            .status
            .and_then(|s| s.used)
            .and_then(|u| u.get("services.loadbalancers").cloned())
            .map(|q| q.0),
        Some("1".to_owned()),
        "the apiserver counts the one load balancer"
    );

    // Wait until both pods count, then ask for 3 replicas with a new
    // environment: a rolling update runs 3 + 1 surge pods, over a quota of 3.
    edit_page_showing(&world, "web", "no more pods than now (remaining: 1)").await;
    let response = world.deploy(&edit, &form("3", "MODE=new")).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = response.text().await.expect("body");
    assert!(html.contains("2 more pods of your remaining 1"), "{html}");
    assert!(html.contains("rolling update"), "{html}");
    assert!(!html.contains("load balancers of your remaining"), "{html}");
    let env = world
        .deployment("web")
        .await
        .and_then(|d| d.spec)
        .and_then(|s| s.template.spec)
        .and_then(|p| p.containers.into_iter().next())
        .and_then(|c| c.env);
    assert!(env.is_none(), "nothing was sent: {env:?}");

    // The same change at 2 replicas fits: 2 + 1 surge pods.
    let response = world.deploy(&edit, &form("2", "MODE=new")).await;
    assert_eq!(
        response.status(),
        StatusCode::SEE_OTHER,
        "{}",
        response.text().await.unwrap_or_default()
    );

    // A second exposed workload is still refused: the quota's load balancer is taken.
    let mut other = form("1", "");
    other.retain(|(k, _)| *k != "name");
    other.push(("name", "web2"));
    let response = world
        .deploy(&format!("/namespaces/{ns}/workloads"), &other)
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = response.text().await.expect("body");
    assert!(
        html.contains("1 load balancers of your remaining 0"),
        "{html}"
    );
    assert!(world.deployment("web2").await.is_none());
    world.finish().await;
}

#[tokio::test]
async fn the_error_summary_lists_fields_in_form_order() {
    let world = World::new("2Gi").await;
    let ns = world.ns.clone();
    let response = world
        .deploy(
            &format!("/namespaces/{ns}/workloads"),
            &[
                ("name", "Bad_Name"),
                ("image_source", "public"),
                ("image", "nginx"),
                ("replicas", "-1"),
                ("memory_request", "lots"),
                ("exposure", "campus"),
                ("published_port", "99999"),
                ("volume", "none"),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = response.text().await.expect("body");
    let summary_start = html.find("class=\"error-summary\"").expect("a summary");
    let summary = &html[summary_start..];
    let summary = &summary[..summary.find("</div>").expect("summary end")];
    let links: Vec<&str> = summary
        .split("<a href=\"#")
        .skip(1)
        .filter_map(|part| part.split('"').next())
        .collect();
    assert_eq!(
        links,
        vec![
            "name",
            "image",
            "replicas",
            "memory_request",
            "published_port",
            "target_port"
        ],
        "{summary}"
    );
    world.finish().await;
}
