//! The workload pages against the test world's real apiserver, with Berth
//! running as its least-privilege ServiceAccount: the address once a
//! LoadBalancer IP is written, a quota refusal seen only in ReplicaSet Events
//! shown in plain words, scale/restart/delete as a member (and refused by the
//! apiserver for someone Berth wrongly thinks is one), the volume claim kept
//! unless asked, what Berth applied, and the logs.

use std::time::Duration;

use crate::helpers::{
    TestApp, TestPerson, berth_sa,
    cluster::{self, eventually},
    location, unescape, unique,
};
use berth::{
    kube::{Identity, Kube},
    namespaces::membership::{self, Role},
    workloads::{
        build::{self, ExposeSettings},
        form::{DeployForm, ImageSource, Preset, VolumeChoice},
    },
};
use k8s_openapi::api::{
    apps::v1::Deployment,
    core::v1::{PersistentVolumeClaim, Pod, Service},
};
use kube::{
    Api,
    api::{Patch, PatchParams},
};
use reqwest::StatusCode;
use serde_json::json;

const WAIT: Duration = Duration::from_secs(60);
const STUDENT: &str = "student@purdue.edu";

/// A Berth namespace made through the admin pages, with `quota` overriding
/// the form's values, and the student as a member.
async fn namespace_with_student(app: &TestApp, quota: &[(&str, &str)]) -> String {
    let name = unique("t-wl");
    let admin = TestPerson::admin(app, "prof@purdue.edu").await;
    let mut settings: Vec<(&str, &str)> = vec![
        ("limits_cpu", "8"),
        ("requests_memory", "4Gi"),
        ("limits_memory", "8Gi"),
        ("persistentvolumeclaims", "3"),
        ("default_request_memory", "128Mi"),
    ];
    settings.retain(|(k, _)| !quota.iter().any(|(key, _)| key == k));
    settings.extend_from_slice(quota);
    admin.create_namespace(&name, &settings).await;
    admin.add_member(&name, STUDENT, "member").await;
    cluster::quota_counted(&cluster::admin().await, &name).await;
    name
}

/// The add-two form as the lead's deploy form would have kept it.
fn add_two_form(replicas: &str, memory: &str) -> DeployForm {
    DeployForm {
        image_source: ImageSource::Public,
        image: "registry.invalid/cs101/add-two:1.0".into(),
        replicas: replicas.into(),
        published_port: "8080".into(),
        memory_request: memory.into(),
        memory_limit: memory.into(),
        ..DeployForm::preset(Preset::AddTwo, "unused")
    }
}

/// Applies the objects Berth builds for `form` as the student, through
/// Berth's own impersonating client (what the deploy form does), with the
/// form kept in the `berth.io/form` annotation.
async fn deploy_as_student(ns: &str, form: &DeployForm) -> String {
    let spec = form
        .parse(ns, STUDENT, "geddes-registry.rcac.purdue.edu")
        .expect("a valid form")
        .spec;
    let kube: Kube = berth_sa::berth_kube().await;
    let client = kube
        .client_for(&Identity::new(STUDENT, false))
        .expect("an impersonating client");
    let params = PatchParams::apply("berth").force();
    // RBAC follows the new RoleBinding through a watch: retry until it lets
    // the student in.
    if let Some(claim) = build::claim(&spec) {
        let api: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), ns);
        let name = claim.metadata.name.clone().unwrap_or_default();
        apply_eventually(&api, &name, &params, &claim).await;
    }
    let mut deployment = build::deployment(&spec);
    deployment
        .metadata
        .annotations
        .get_or_insert_default()
        .insert(
            "berth.io/form".to_owned(),
            serde_json::to_string(form).expect("form JSON"),
        );
    let api: Api<Deployment> = Api::namespaced(client.clone(), ns);
    apply_eventually(&api, &spec.name, &params, &deployment).await;
    let settings = ExposeSettings {
        public_annotation: (
            "metallb.io/address-pool".into(),
            "geddes-public-pool".into(),
        ),
    };
    if let Some(service) = build::service(&spec, &settings) {
        let api: Api<Service> = Api::namespaced(client, ns);
        apply_eventually(&api, &spec.name, &params, &service).await;
    }
    spec.name
}

async fn apply_eventually<K>(api: &Api<K>, name: &str, params: &PatchParams, object: &K)
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    eventually(WAIT, "the student's apply to be allowed", || async {
        match api.patch(name, params, &Patch::Apply(object)).await {
            Ok(_) => Some(()),
            Err(kube::Error::Api(status)) if status.code == 403 => None,
            Err(other) => panic!("applying {name}: {other:?}"),
        }
    })
    .await;
}

async fn audit_outcome(app: &TestApp, action: &str, ns: &str, target: &str) -> Option<String> {
    sqlx::query_scalar(
        "SELECT outcome FROM audit_log WHERE action = ? AND namespace = ? AND target = ? ORDER BY id DESC LIMIT 1",
    )
    .bind(action)
    .bind(ns)
    .bind(target)
    .fetch_optional(&app.db)
    .await
    .expect("reading the audit log")
}

/// Waits until `path` (as `person`) contains `needle`; returns the page.
async fn page_eventually(person: &TestPerson, path: &str, needle: &str) -> String {
    let mut last = String::new();
    let found = tokio::time::timeout(WAIT, async {
        loop {
            let (status, body) = person.page(path).await;
            if status == StatusCode::OK && body.contains(needle) {
                return body;
            }
            last = body;
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    })
    .await;
    match found {
        Ok(body) => body,
        Err(_) => panic!("{path} never showed {needle:?}; last page:\n{last}"),
    }
}

#[tokio::test]
async fn the_address_and_dns_name_show_once_the_load_balancer_has_an_ip() {
    let app = TestApp::spawn_in_cluster(&["--service-domain", "apps.example.edu"]).await;
    let ns = namespace_with_student(&app, &[]).await;
    let name = deploy_as_student(&ns, &add_two_form("1", "128Mi")).await;
    let student = TestPerson::student(&app, STUDENT).await;
    let detail = format!("/namespaces/{ns}/workloads/{name}");

    let services: Api<Service> = Api::namespaced(cluster::admin().await, &ns);
    let assigned = |service: &Service| {
        service
            .status
            .as_ref()
            .and_then(|s| s.load_balancer.as_ref())
            .and_then(|lb| lb.ingress.as_ref())
            .and_then(|i| i.first())
            .and_then(|i| i.ip.clone())
    };
    let before = page_eventually(&student, &detail, "<h2>Address</h2>").await;
    let list = page_eventually(&student, &format!("/namespaces/{ns}/workloads"), &name).await;
    assert!(list.contains(&format!("href=\"{detail}\"")), "{list}");
    assert!(list.contains(&format!("/namespaces/{ns}/workloads/new")));
    // MetalLB's controller assigns the address (never the test: it would
    // take back one outside its pools); until then the page says it waits.
    let service = services.get(&name).await.expect("the Service");
    if assigned(&service).is_none() && before.contains("waiting for the cluster to assign") {
        assert!(
            !before.contains("curl -X POST"),
            "no curl without an address"
        );
    }
    let ip = eventually(WAIT, "MetalLB to assign an address", || {
        let services = services.clone();
        let name = name.clone();
        async move { assigned(&services.get(&name).await.ok()?) }
    })
    .await;

    // The address itself (an Event also names it, before the cache has the
    // Service's new status).
    let after = page_eventually(&student, &detail, &format!("<code>{ip}</code>")).await;
    assert!(
        after.contains(&format!("{name}.{ns}.apps.example.edu")),
        "the DNS name under the configured domain:\n{after}"
    );
    assert!(
        after.contains(&format!(
            "curl -X POST -H 'Content-Type: application/json' -d '{{\"num\": 123}}' http://{ip}:8080/add_two"
        )),
        "{after}"
    );
    assert!(
        after.contains(&format!("href=\"http://{ip}:8080/\"")),
        "{after}"
    );
    // The try-it box: the exact request, with curl and with Python.
    assert!(
        after.contains(&format!(
            "POST {{\"num\": 123}} to http://{ip}:8080/add_two"
        )),
        "{after}"
    );
    assert!(
        after.contains(&format!(
            "request = urllib.request.Request(\n    \"http://{ip}:8080/add_two\","
        )),
        "{after}"
    );
    let list = page_eventually(&student, &format!("/namespaces/{ns}/workloads"), &ip).await;
    assert!(list.contains(&format!("{name}.{ns}.apps.example.edu")));

    // Someone who is not a member does not even learn it exists.
    let outsider = TestPerson::student(&app, "mallory@purdue.edu").await;
    assert_eq!(outsider.page(&detail).await.0, StatusCode::NOT_FOUND);

    cluster::delete_namespace(&cluster::admin().await, &ns).await;
    app.stop().await;
}

#[tokio::test]
async fn a_quota_hit_seen_only_in_replicaset_events_is_shown_in_plain_words() {
    let app = TestApp::spawn_in_cluster(&[]).await;
    // Room for one 768Mi pod, not two.
    let ns = namespace_with_student(
        &app,
        &[("requests_memory", "1Gi"), ("limits_memory", "2Gi")],
    )
    .await;
    let name = deploy_as_student(&ns, &add_two_form("2", "768Mi")).await;
    let student = TestPerson::student(&app, STUDENT).await;
    let detail = format!("/namespaces/{ns}/workloads/{name}");

    let page = page_eventually(
        &student,
        &detail,
        "your namespace's memory quota is full: 768Mi of 1Gi used and this pod asks for 768Mi",
    )
    .await;
    assert!(page.contains("FailedCreate"), "{page}");
    assert!(
        page.contains("replicaset"),
        "the event is about the ReplicaSet"
    );
    // The apiserver agrees: one pod, and the Deployment is short of one.
    let pods: Api<Pod> = Api::namespaced(cluster::admin().await, &ns);
    let listed = pods.list(&Default::default()).await.expect("pods");
    assert_eq!(listed.items.len(), 1, "only one pod fits the quota");
    assert!(page.contains("of 2 pods"), "{page}");

    cluster::delete_namespace(&cluster::admin().await, &ns).await;
    app.stop().await;
}

#[tokio::test]
async fn scale_restart_and_delete_as_a_member_keep_the_volume_claim_unless_asked() {
    let app = TestApp::spawn_in_cluster(&[]).await;
    let ns = namespace_with_student(&app, &[]).await;
    let mut form = add_two_form("1", "128Mi");
    form.volume = VolumeChoice::New;
    form.volume_size = "1Gi".into();
    form.mount_path = "/data".into();
    let name = deploy_as_student(&ns, &form).await;
    let admin = cluster::admin().await;
    let deployments: Api<Deployment> = Api::namespaced(admin.clone(), &ns);
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(admin.clone(), &ns);
    let student = TestPerson::student(&app, STUDENT).await;
    let detail = format!("/namespaces/{ns}/workloads/{name}");
    page_eventually(&student, &detail, "Scale").await;

    // Scale: out of range is refused by Berth, with the value kept.
    let response = student
        .submit(&format!("{detail}/scale"), &[("replicas", "25")])
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body = unescape(&response.text().await.unwrap_or_default());
    assert!(body.contains("from 0 to 20"), "{body}");
    assert!(body.contains("value=\"25\""), "{body}");
    let response = student
        .submit(&format!("{detail}/scale"), &[("replicas", "3")])
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), detail);
    let read = deployments.get(&name).await.expect("the deployment");
    assert_eq!(read.spec.and_then(|s| s.replicas), Some(3));
    assert_eq!(
        audit_outcome(&app, "workload.scale", &ns, &name)
            .await
            .as_deref(),
        Some("ok")
    );
    let (_, page) = student.page(&detail).await;
    assert!(page.contains("scaled to 3 pods"), "the flash says so");

    // Restart: a new restartedAt in the pod template.
    let response = student.submit(&format!("{detail}/restart"), &[]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let read = deployments.get(&name).await.expect("the deployment");
    let restarted = read
        .spec
        .and_then(|s| s.template.metadata)
        .and_then(|m| m.annotations)
        .and_then(|a| a.get("kubectl.kubernetes.io/restartedAt").cloned());
    assert!(restarted.is_some(), "the rollout was restarted");
    assert_eq!(
        audit_outcome(&app, "workload.restart", &ns, &name)
            .await
            .as_deref(),
        Some("ok")
    );

    // Delete: the confirmation page offers the claim, unticked.
    let claim = build::claim_name(&name);
    let (status, confirm) = student.page(&format!("{detail}/delete")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(confirm.contains(&claim), "{confirm}");
    assert!(!confirm.contains("checked"), "the claim is kept by default");
    let delete = format!("{detail}/delete");
    let response = student.submit_form(&delete, &delete, &[]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), format!("/namespaces/{ns}/workloads"));
    eventually(WAIT, "the deployment to be gone", || async {
        matches!(deployments.get(&name).await, Err(kube::Error::Api(s)) if s.code == 404)
            .then_some(())
    })
    .await;
    let services: Api<Service> = Api::namespaced(admin.clone(), &ns);
    assert!(
        matches!(services.get(&name).await, Err(kube::Error::Api(s)) if s.code == 404),
        "the service went with it"
    );
    let kept = claims.get(&claim).await.expect("the claim is kept");
    assert!(kept.metadata.deletion_timestamp.is_none());
    assert_eq!(
        audit_outcome(&app, "workload.delete", &ns, &name)
            .await
            .as_deref(),
        Some("ok")
    );
    let (_, list) = student.page(&format!("/namespaces/{ns}/workloads")).await;
    assert!(list.contains("were kept"), "the flash names the kept claim");
    assert!(
        !list.contains(&format!("href=\"{detail}\"")),
        "gone from the list"
    );

    // Again, this time asking for the claim to go too.
    let again = deploy_as_student(&ns, &form).await;
    assert_eq!(again, name);
    page_eventually(&student, &detail, "Scale").await;
    let response = student
        .submit_form(&delete, &delete, &[("delete_volume", "on")])
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    eventually(WAIT, "the claim to be deleted", || async {
        match claims.get(&claim).await {
            Err(kube::Error::Api(s)) if s.code == 404 => Some(()),
            Ok(c) if c.metadata.deletion_timestamp.is_some() => Some(()),
            _ => None,
        }
    })
    .await;

    cluster::delete_namespace(&cluster::admin().await, &ns).await;
    app.stop().await;
}

#[tokio::test]
async fn the_apiserver_refuses_scale_restart_delete_and_logs_for_a_member_only_berth_believes_in() {
    let app = TestApp::spawn_in_cluster(&[]).await;
    let ns = namespace_with_student(&app, &[]).await;
    let name = deploy_as_student(&ns, &add_two_form("1", "128Mi")).await;
    // A bug in Berth's own bookkeeping: a membership row with no RoleBinding.
    membership::upsert(&app.store, &ns, "eve@purdue.edu", Role::Member, "a bug")
        .await
        .expect("the stray row");
    let eve = TestPerson::student(&app, "eve@purdue.edu").await;
    let detail = format!("/namespaces/{ns}/workloads/{name}");
    page_eventually(&eve, &detail, "Scale").await;
    let deployments: Api<Deployment> = Api::namespaced(cluster::admin().await, &ns);

    let response = eve
        .submit(&format!("{detail}/scale"), &[("replicas", "4")])
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let body = unescape(&response.text().await.unwrap_or_default());
    assert!(
        body.contains(
            "Kubernetes refused this: your account cannot patch resource \"deployments\""
        ),
        "{body}"
    );
    assert_eq!(
        audit_outcome(&app, "workload.scale", &ns, &name)
            .await
            .as_deref(),
        Some("denied")
    );

    let response = eve.submit(&format!("{detail}/restart"), &[]).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        audit_outcome(&app, "workload.restart", &ns, &name)
            .await
            .as_deref(),
        Some("denied")
    );

    let response = eve.submit(&format!("{detail}/delete"), &[]).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let body = unescape(&response.text().await.unwrap_or_default());
    assert!(body.contains("It was not deleted"), "{body}");
    assert_eq!(
        audit_outcome(&app, "workload.delete", &ns, &name)
            .await
            .as_deref(),
        Some("denied")
    );

    // Nothing changed in the cluster.
    let read = deployments.get(&name).await.expect("still there");
    assert_eq!(read.spec.as_ref().and_then(|s| s.replicas), Some(1));
    let restarted = read
        .spec
        .and_then(|s| s.template.metadata)
        .and_then(|m| m.annotations)
        .is_some_and(|a| a.contains_key("kubectl.kubernetes.io/restartedAt"));
    assert!(!restarted);

    // Logs are read as Eve too, so RBAC refuses them.
    eventually(WAIT, "a pod", || async {
        let pods: Api<Pod> = Api::namespaced(cluster::admin().await, &ns);
        (!pods.list(&Default::default()).await.ok()?.items.is_empty()).then_some(())
    })
    .await;
    let (status, body) = page_eventually_status(&eve, &format!("{detail}/logs?lines=10")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body.contains("cannot get resource \"pods/log\""), "{body}");

    cluster::delete_namespace(&cluster::admin().await, &ns).await;
    app.stop().await;
}

/// The logs page once Berth's cache has the pod (before that it says "no pods").
async fn page_eventually_status(person: &TestPerson, path: &str) -> (StatusCode, String) {
    let mut last = (StatusCode::OK, String::new());
    for _ in 0..200 {
        last = person.page(path).await;
        if !last.1.contains("has no pods right now") {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    last
}

#[tokio::test]
async fn what_berth_applied_is_yaml_kubectl_accepts_without_the_token() {
    let app = TestApp::spawn_in_cluster(&[]).await;
    let ns = namespace_with_student(&app, &[]).await;
    let name = deploy_as_student(&ns, &add_two_form("2", "128Mi")).await;
    let student = TestPerson::student(&app, STUDENT).await;
    let detail = format!("/namespaces/{ns}/workloads/{name}");
    let page = page_eventually(&student, &detail, "What Berth applied").await;
    let command =
        format!("kubectl apply --server-side --field-manager=berth -n {ns} -f {name}.yaml");
    assert!(page.contains(&command), "{page}");

    let response = student.get(&format!("{detail}/applied.yaml")).await;
    assert_eq!(response.status(), StatusCode::OK);
    let disposition = response
        .headers()
        .get("content-disposition")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert_eq!(disposition, format!("attachment; filename=\"{name}.yaml\""));
    let yaml = response.text().await.expect("the YAML");
    assert!(
        yaml.contains("kind: Deployment") && yaml.contains("kind: Service"),
        "{yaml}"
    );
    assert!(
        yaml.contains("image: registry.invalid/cs101/add-two:1.0"),
        "{yaml}"
    );
    assert!(
        !yaml.contains("resourceVersion") && !yaml.contains("status:"),
        "{yaml}"
    );

    // The command shown works: the apiserver accepts the file as it is (a
    // server-side dry run as the admin, so nothing changes).
    let dir = tempfile::tempdir().expect("a temp dir");
    let file = dir.path().join(format!("{name}.yaml"));
    std::fs::write(&file, &yaml).expect("writing the YAML");
    let output = std::process::Command::new("kubectl")
        .args([
            "apply",
            "--server-side",
            "--field-manager=berth",
            "--dry-run=server",
            "-n",
            &ns,
            "-f",
        ])
        .arg(&file)
        .output()
        .expect("running kubectl");
    assert!(
        output.status.success(),
        "kubectl refused the YAML: {}\n{yaml}",
        String::from_utf8_lossy(&output.stderr)
    );
    let said = String::from_utf8_lossy(&output.stdout);
    assert!(
        said.contains(&format!("deployment.apps/{name} serverside-applied")),
        "{said}"
    );

    cluster::delete_namespace(&cluster::admin().await, &ns).await;
    app.stop().await;
}

#[tokio::test]
async fn logs_show_what_the_fake_container_wrote_and_follow_new_lines() {
    let pod_log = std::env::var("TESTENV_POD_LOG")
        .expect("TESTENV_POD_LOG: run the tests under testenv/run (KWOK serves logs from it)");
    let app = TestApp::spawn_in_cluster(&[]).await;
    let ns = namespace_with_student(&app, &[]).await;
    let name = deploy_as_student(&ns, &add_two_form("1", "128Mi")).await;
    let student = TestPerson::student(&app, STUDENT).await;
    let detail = format!("/namespaces/{ns}/workloads/{name}");
    page_eventually(&student, &detail, "Running").await;

    // The last lines, as the student (RBAC allows members pods/log).
    let response = student.get(&format!("{detail}/logs?lines=2")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/plain"))
    );
    let text = response.text().await.expect("the log");
    assert!(
        text.contains("add-two: POST /add_two {\"num\": 123} -> {\"output\": 125}"),
        "{text}"
    );
    let response = student.get(&format!("{detail}/logs?lines=0")).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);

    // Follow: a line written after the request started arrives on the stream.
    let mut response = student
        .get(&format!("{detail}/logs?follow=1&lines=1"))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let marker = format!("written by the test {}", uuid::Uuid::new_v4().simple());
    {
        use std::io::Write;
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&pod_log)
            .expect("opening the fake container's log");
        writeln!(file, "2026-01-01T00:00:09.000000000Z stdout F {marker}")
            .expect("appending a line");
    }
    let streamed = tokio::time::timeout(WAIT, async {
        let mut seen = String::new();
        while let Some(chunk) = response.chunk().await.expect("the stream continues") {
            seen.push_str(&String::from_utf8_lossy(&chunk));
            if seen.contains(&marker) {
                break;
            }
        }
        seen
    })
    .await
    .expect("the new line arrives while following");
    assert!(streamed.contains(&marker), "{streamed}");
    // An open follow stream would hold up Berth's graceful shutdown.
    drop(response);

    cluster::delete_namespace(&cluster::admin().await, &ns).await;
    app.stop().await;
}

#[tokio::test]
async fn a_fourth_log_follow_of_one_person_is_refused() {
    let app = TestApp::spawn_in_cluster(&[]).await;
    let ns = namespace_with_student(&app, &[]).await;
    let name = deploy_as_student(&ns, &add_two_form("1", "128Mi")).await;
    let student = TestPerson::student(&app, STUDENT).await;
    let detail = format!("/namespaces/{ns}/workloads/{name}");
    page_eventually(&student, &detail, "Running").await;
    let follow = format!("{detail}/logs?follow=1&lines=1");
    let mut open = Vec::new();
    for _ in 0..berth::workloads::logs::MAX_FOLLOWS_PER_PERSON {
        let response = student.get(&follow).await;
        assert_eq!(response.status(), StatusCode::OK);
        open.push(response);
    }
    // Each open stream holds a connection to the apiserver and a task; one
    // person cannot open them without end.
    let refused = student.get(&follow).await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    // The last lines (not followed) still work.
    assert_eq!(
        student
            .get(&format!("{detail}/logs?lines=2"))
            .await
            .status(),
        StatusCode::OK
    );
    drop(open);
    // Closed streams give their slots back (the server notices the browser
    // went away).
    eventually(WAIT, "a follow slot to be free again", || {
        let student = &student;
        let follow = follow.clone();
        async move {
            let response = student.get(&follow).await;
            (response.status() == StatusCode::OK).then_some(())
        }
    })
    .await;
}

/// The deploy form's fields as the edit page shows them (the flash above
/// and the quota panel below them, which follows what the cluster counts,
/// are left out).
fn edit_fields(html: &str) -> String {
    let start = html.find("<h1>Edit ").expect("the edit form");
    let end = html.find("id=\"quota\"").expect("the quota panel");
    html[start..end].to_owned()
}

#[tokio::test]
async fn running_the_shown_kubectl_command_changes_nothing_berth_applied() {
    let kubectl =
        std::env::var("TESTENV_KUBECTL").expect("TESTENV_KUBECTL: run the tests under testenv/run");
    let app = TestApp::spawn_in_cluster(&[]).await;
    let ns = namespace_with_student(&app, &[]).await;
    let student = TestPerson::student(&app, STUDENT).await;
    // Deployed through the form (so Berth keeps the form), then scaled and
    // restarted, which Berth does with patches of its own.
    let name = "web";
    let response = student
        .submit(
            &format!("/namespaces/{ns}/workloads"),
            &[
                ("action", "deploy"),
                ("name", name),
                ("image_source", "public"),
                ("image", "quay.io/example/web:1.0"),
                ("replicas", "1"),
                ("container_port", "8080"),
                ("env", "GREETING=hello"),
                ("memory_request", "64Mi"),
                ("exposure", "public"),
                ("published_port", "80"),
                ("target_port", "8080"),
                ("protocol", "TCP"),
                ("volume", "none"),
            ],
        )
        .await;
    assert_eq!(
        response.status(),
        StatusCode::SEE_OTHER,
        "{}",
        response.text().await.unwrap_or_default()
    );
    let detail = format!("/namespaces/{ns}/workloads/{name}");
    page_eventually(&student, &detail, "What Berth applied").await;
    let response = student
        .submit(&format!("{detail}/scale"), &[("replicas", "2")])
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let response = student.submit(&format!("{detail}/restart"), &[]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);

    let admin = cluster::admin().await;
    let deployments: Api<Deployment> = Api::namespaced(admin.clone(), &ns);
    let services: Api<Service> = Api::namespaced(admin.clone(), &ns);
    // The Deployment controller has caught up with the restart (it writes a
    // new revision annotation), so what follows compares settled objects.
    let before = eventually(WAIT, "the controller to observe the restart", || {
        let deployments = deployments.clone();
        async move {
            let d = deployments.get(name).await.ok()?;
            let observed = d.status.as_ref()?.observed_generation?;
            let revision = d
                .metadata
                .annotations
                .as_ref()?
                .get("deployment.kubernetes.io/revision")?
                .clone();
            (Some(observed) == d.metadata.generation && revision == "2").then_some(d)
        }
    })
    .await;
    assert!(
        before
            .metadata
            .annotations
            .as_ref()
            .is_some_and(|a| a.contains_key("berth.io/form")),
        "Berth kept the form"
    );
    let service_before = services.get(name).await.expect("the Service");
    let edit = format!("{detail}/edit");
    let (_, edit_before) = student.page(&edit).await;
    let fields_before = edit_fields(&edit_before);
    assert!(
        fields_before.contains("value=\"public\" checked"),
        "{fields_before}"
    );

    // The command exactly as the page shows it, run on the downloaded file.
    let page = page_eventually(&student, &detail, "replicas: 2").await;
    // The apply command; the shell panel shows a `kubectl exec` too.
    let start = page
        .find("<code>kubectl apply ")
        .expect("a kubectl apply command on the page")
        + "<code>".len();
    let command = &page[start..start + page[start..].find("</code>").expect("end of command")];
    assert_eq!(
        command,
        format!("kubectl apply --server-side --field-manager=berth -n {ns} -f {name}.yaml")
    );
    let yaml = student
        .get(&format!("{detail}/applied.yaml"))
        .await
        .text()
        .await
        .expect("the YAML");
    let dir = tempfile::tempdir().expect("a temp dir");
    std::fs::write(dir.path().join(format!("{name}.yaml")), &yaml).expect("writing the YAML");
    let words = shell_words::split(command).expect("the command splits");
    let output = std::process::Command::new(&kubectl)
        .args(&words[1..])
        .current_dir(dir.path())
        .output()
        .expect("running kubectl");
    assert!(
        output.status.success(),
        "kubectl failed: {}\n{yaml}",
        String::from_utf8_lossy(&output.stderr)
    );

    // Nothing changed: the same annotations, labels and spec, no new generation.
    let after = deployments.get(name).await.expect("the Deployment");
    assert_eq!(after.metadata.annotations, before.metadata.annotations);
    assert_eq!(after.metadata.labels, before.metadata.labels);
    assert_eq!(after.metadata.generation, before.metadata.generation);
    assert_eq!(after.spec, before.spec);
    let service_after = services.get(name).await.expect("the Service");
    // MetalLB notes which pool it allocated from on its own time; that is
    // its annotation, not one Berth or kubectl wrote.
    let ours = |service: &Service| {
        let mut annotations = service.metadata.annotations.clone().unwrap_or_default();
        annotations.remove("metallb.io/ip-allocated-from-pool");
        annotations
    };
    assert_eq!(ours(&service_after), ours(&service_before));
    assert_eq!(service_after.spec, service_before.spec);
    // And the edit page still shows what the student chose.
    let (_, edit_after) = student.page(&edit).await;
    assert_eq!(edit_fields(&edit_after), fields_before);

    // Even if Berth's record of the form is removed by hand, the edit page
    // reads who may reach it, its port and environment from the live objects.
    deployments
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {"berth.io/form": null}}})),
        )
        .await
        .expect("removing the annotation");
    let detail_live = page_eventually(&student, &detail, "Berth has no record of the form").await;
    assert!(
        detail_live.contains(&format!(
            "<code>kubectl get -n {ns} deployment/{name} service/{name} -o yaml</code>"
        )),
        "without the form only a read-only command is shown: {detail_live}"
    );
    let (_, edit_live) = student.page(&edit).await;
    assert!(
        edit_live.contains("name=\"exposure\" value=\"public\" checked"),
        "{edit_live}"
    );
    assert_eq!(edit_fields(&edit_live), fields_before);

    cluster::delete_namespace(&cluster::admin().await, &ns).await;
    app.stop().await;
}

#[tokio::test]
async fn a_starting_workload_offers_a_reload_and_a_stuck_rollout_is_explained() {
    let app = TestApp::spawn_in_cluster(&[]).await;
    let ns = namespace_with_student(&app, &[]).await;
    let mut form = add_two_form("1", "128Mi");
    form.exposure = "cluster".into();
    let name = deploy_as_student(&ns, &form).await;
    let student = TestPerson::student(&app, STUDENT).await;
    let detail = format!("/namespaces/{ns}/workloads/{name}");
    // Once its pod is ready the rollout is told done and the page stops
    // offering to reload (nothing is starting).
    let done = page_eventually(
        &student,
        &detail,
        "Up to date: its pod runs the latest version and is ready.",
    )
    .await;
    assert!(!done.contains("id=\"auto-refresh\""), "{done}");

    // A change whose pods can never be scheduled, with a progress deadline
    // of 2 seconds: the Deployment controller gives up, and the page says so.
    let deployments: Api<Deployment> = Api::namespaced(cluster::admin().await, &ns);
    deployments
        .patch(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {
                "progressDeadlineSeconds": 2,
                "template": {"spec": {"nodeSelector": {"berth-test/nowhere": "true"}}},
            }})),
        )
        .await
        .expect("patching the Deployment");
    let rolling = page_eventually(
        &student,
        &detail,
        "Rolling out: 1 of 1 pod runs the latest version, 0 of them ready.",
    )
    .await;
    assert!(
        rolling.contains("1 old pod still running until the new ones are ready."),
        "{rolling}"
    );
    let stuck = page_eventually(&student, &detail, "The rollout is stuck").await;
    assert!(
        stuck.contains("Kubernetes saw no progress for 2 seconds and stopped waiting"),
        "{stuck}"
    );
    assert!(stuck.contains("has timed out progressing"), "{stuck}");
    assert!(
        !stuck.contains("id=\"auto-refresh\""),
        "a stuck rollout does not keep reloading"
    );

    cluster::delete_namespace(&cluster::admin().await, &ns).await;
    app.stop().await;
}
