//! Namespaces, quotas and members through the admin pages, against the test
//! world's real apiserver, with Berth running as its least-privilege
//! ServiceAccount. Each test makes its own namespace (random suffix) and
//! deletes it.

use std::time::Duration;

use crate::helpers::{
    TestApp, TestPerson, berth_sa,
    cluster::{self, eventually},
    unique,
};
use berth::kube::{Identity, Kube};
use k8s_openapi::api::{
    apps::v1::Deployment,
    core::v1::{LimitRange, Namespace, Pod, ResourceQuota},
    rbac::v1::RoleBinding,
};
use kube::{
    Api, Client,
    api::{DeleteParams, PostParams},
};
use reqwest::StatusCode;
use serde_json::json;

const WAIT: Duration = Duration::from_secs(60);

/// A complete, valid namespace form (without the name).
fn namespace_form() -> Vec<(&'static str, &'static str)> {
    vec![
        ("description", "Test course <b>not bold</b>"),
        ("requests_cpu", "1"),
        ("limits_cpu", "2"),
        ("requests_memory", "1Gi"),
        ("limits_memory", "1Gi"),
        ("pods", "5"),
        ("services_loadbalancers", "1"),
        ("persistentvolumeclaims", "2"),
        ("requests_storage", "5Gi"),
        ("default_request_cpu", "100m"),
        ("default_request_memory", "256Mi"),
        ("default_limit_cpu", "500m"),
        ("default_limit_memory", "512Mi"),
    ]
}

/// An admin, and a namespace they made through the page.
async fn admin_with_namespace(app: &TestApp, prefix: &str) -> (TestPerson, String) {
    let prof = TestPerson::admin(app, "prof@purdue.edu").await;
    let name = unique(prefix);
    prof.create_namespace(&name, &namespace_form()).await;
    (prof, name)
}

fn deployment(name: &str) -> Deployment {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "main", "image": "registry.invalid/demo:1"}]}
            }
        }
    }))
    .expect("a deployment")
}

fn pod(name: &str, memory: Option<&str>) -> Pod {
    let resources = match memory {
        Some(m) => {
            json!({"requests": {"memory": m, "cpu": "100m"}, "limits": {"memory": m, "cpu": "100m"}})
        }
        None => json!({}),
    };
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {"containers": [{"name": "main", "image": "registry.invalid/demo:1", "resources": resources}]}
    }))
    .expect("a pod")
}

/// The apiserver's status code for a refused call, or `None` if it succeeded.
fn refused<T: std::fmt::Debug>(result: &Result<T, kube::Error>) -> Option<(u16, String)> {
    match result {
        Ok(_) => None,
        Err(kube::Error::Api(status)) => Some((status.code, status.message.clone())),
        Err(other) => panic!("not an apiserver answer: {other:?}"),
    }
}

async fn audit_outcome(
    app: &TestApp,
    action: &str,
    namespace: &str,
    target: &str,
) -> Option<String> {
    sqlx::query_scalar(
        "SELECT outcome FROM audit_log WHERE action = ? AND namespace = ? AND target = ? ORDER BY id DESC LIMIT 1",
    )
    .bind(action)
    .bind(namespace)
    .bind(target)
    .fetch_optional(&app.db)
    .await
    .expect("reading the audit log")
}

/// Retries `create` as `client` until RBAC (whose cache follows bindings by
/// watch) lets it through; returns the created object.
async fn create_eventually<K>(api: &Api<K>, object: &K, what: &str) -> K
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    eventually(WAIT, what, || async {
        match api.create(&PostParams::default(), object).await {
            Ok(created) => Some(created),
            Err(kube::Error::Api(status))
                if status.code == 403 && !status.message.contains("quota") =>
            {
                None
            }
            Err(other) => panic!("{what}: {other:?}"),
        }
    })
    .await
}

#[tokio::test]
async fn the_quota_saved_through_the_page_is_the_quota_the_apiserver_enforces() {
    let app = TestApp::spawn_in_cluster(&[]).await;
    let admin = cluster::admin().await;
    let (prof, name) = admin_with_namespace(&app, "t-quota").await;
    // The redirect target answers at once: Berth waited for its cache.
    let shown = prof.get(&format!("/admin/namespaces/{name}")).await;
    assert_eq!(shown.status(), StatusCode::OK);

    // What the apiserver holds is what the form said.
    let ns = Api::<Namespace>::all(admin.clone())
        .get(&name)
        .await
        .expect("namespace exists");
    let labels = ns.metadata.labels.unwrap_or_default();
    assert_eq!(
        labels
            .get("app.kubernetes.io/managed-by")
            .map(String::as_str),
        Some("berth")
    );
    let annotations = ns.metadata.annotations.unwrap_or_default();
    assert_eq!(
        annotations.get("berth.io/description").map(String::as_str),
        Some("Test course <b>not bold</b>")
    );
    let quotas: Api<ResourceQuota> = Api::namespaced(admin.clone(), &name);
    let quota = quotas.get("berth-quota").await.expect("the quota exists");
    let hard = quota.spec.and_then(|s| s.hard).unwrap_or_default();
    let hard: Vec<(String, String)> = hard.into_iter().map(|(k, v)| (k, v.0)).collect();
    let expected: Vec<(String, String)> = [
        ("limits.cpu", "2"),
        ("limits.memory", "1Gi"),
        ("persistentvolumeclaims", "2"),
        ("pods", "5"),
        ("requests.cpu", "1"),
        ("requests.memory", "1Gi"),
        ("requests.storage", "5Gi"),
        ("services.loadbalancers", "1"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    assert_eq!(hard, expected);
    let ranges: Api<LimitRange> = Api::namespaced(admin.clone(), &name);
    assert!(
        ranges.get("berth-defaults").await.is_ok(),
        "the LimitRange exists"
    );

    prof.add_member(&name, "alice@purdue.edu", "member").await;

    cluster::quota_counted(&admin, &name).await;

    // Through Berth's own impersonating client, as the member.
    let kube: Kube = berth_sa::berth_kube().await;
    let alice = kube
        .client_for(&Identity::new("alice@purdue.edu", false))
        .expect("an impersonating client");
    let pods: Api<Pod> = Api::namespaced(alice.clone(), &name);

    // A pod that states nothing gets the LimitRange defaults.
    let created = create_eventually(
        &pods,
        &pod("no-requests", None),
        "the member to create a pod",
    )
    .await;
    let resources = created
        .spec
        .and_then(|s| s.containers.into_iter().next())
        .and_then(|c| c.resources)
        .expect("resources were defaulted");
    let requests = resources.requests.unwrap_or_default();
    let limits = resources.limits.unwrap_or_default();
    assert_eq!(requests.get("memory").map(|q| q.0.as_str()), Some("256Mi"));
    assert_eq!(requests.get("cpu").map(|q| q.0.as_str()), Some("100m"));
    assert_eq!(limits.get("memory").map(|q| q.0.as_str()), Some("512Mi"));
    assert_eq!(limits.get("cpu").map(|q| q.0.as_str()), Some("500m"));

    // A pod over the memory quota is refused by the apiserver.
    cluster::wait_until_quota_refuses(&pods, &pod("too-big", Some("2Gi"))).await;
    let result = pods
        .create(&PostParams::default(), &pod("too-big", Some("2Gi")))
        .await;
    let (code, message) = refused(&result).expect("the apiserver refuses a pod over the quota");
    assert_eq!(code, 403, "{message}");
    assert!(message.contains("exceeded quota"), "{message}");

    // The member can create a Deployment through the impersonating client.
    let deployments: Api<Deployment> = Api::namespaced(alice, &name);
    create_eventually(
        &deployments,
        &deployment("web"),
        "the member to create a deployment",
    )
    .await;
    let read_back = Api::<Deployment>::namespaced(admin.clone(), &name)
        .get("web")
        .await;
    assert!(read_back.is_ok(), "the deployment is in the cluster");

    assert_eq!(
        audit_outcome(&app, "namespace.create", &name, &name)
            .await
            .as_deref(),
        Some("ok")
    );
    assert_eq!(
        audit_outcome(&app, "member.add", &name, "alice@purdue.edu")
            .await
            .as_deref(),
        Some("ok")
    );

    cluster::delete_namespace(&admin, &name).await;
    app.stop().await;
}

#[tokio::test]
async fn only_members_get_in_and_removing_a_member_removes_access() {
    let app = TestApp::spawn_in_cluster(&[]).await;
    let admin = cluster::admin().await;
    let (prof, name) = admin_with_namespace(&app, "t-members").await;
    prof.add_member(&name, "Carol@Purdue.edu", "member").await;

    let bindings: Api<RoleBinding> = Api::namespaced(admin.clone(), &name);
    let list = bindings
        .list(&Default::default())
        .await
        .expect("listing bindings");
    let binding = list
        .items
        .iter()
        .find(|b| b.role_ref.name == "berth-member")
        .expect("a RoleBinding to berth-member");
    let subject = &binding.subjects.as_ref().expect("subjects")[0];
    assert_eq!(
        (
            subject.kind.as_str(),
            subject.namespace.as_deref(),
            subject.name.as_str()
        ),
        (
            "ServiceAccount",
            Some("berth-people"),
            Identity::new("carol@purdue.edu", false).account.as_str()
        )
    );

    let kube = berth_sa::berth_kube().await;
    let carol: Api<Deployment> = Api::namespaced(
        kube.client_for(&Identity::new("carol@purdue.edu", false))
            .expect("client"),
        &name,
    );
    create_eventually(
        &carol,
        &deployment("first"),
        "the member to create a deployment",
    )
    .await;

    // A non-member is refused by the apiserver itself: the test calls the
    // impersonating client directly, so no check in Berth is involved.
    let dave: Api<Deployment> = Api::namespaced(
        kube.client_for(&Identity::new("dave@purdue.edu", false))
            .expect("client"),
        &name,
    );
    let result = dave
        .create(&PostParams::default(), &deployment("intruder"))
        .await;
    let (code, message) = refused(&result).expect("a non-member is refused");
    assert_eq!(code, 403, "{message}");
    assert!(
        message.contains(&Identity::new("dave@purdue.edu", false).user()),
        "{message}"
    );

    // Berth's ServiceAccount on its own (no impersonation) cannot write either.
    let sa_only = Client::try_from(
        kube::Config::from_custom_kubeconfig(
            kube::config::Kubeconfig::read_from(berth_sa::kubeconfig()).expect("the SA kubeconfig"),
            &Default::default(),
        )
        .await
        .expect("SA config"),
    )
    .expect("SA client");
    let result = Api::<Deployment>::namespaced(sa_only, &name)
        .create(&PostParams::default(), &deployment("as-berth-itself"))
        .await;
    let (code, message) = refused(&result).expect("the ServiceAccount alone is refused");
    assert_eq!(code, 403, "{message}");
    assert!(
        message.contains("system:serviceaccount:berth-system:berth"),
        "{message}"
    );

    // Removing asks first: the namespace page links to a confirm page whose
    // button posts the removal, and showing it removes nothing.
    let page = prof.html(&format!("/admin/namespaces/{name}")).await;
    let confirm_path = format!("/admin/namespaces/{name}/members/remove?email=carol%40purdue.edu");
    assert!(page.contains(&format!("href=\"{confirm_path}\"")), "{page}");
    let confirm = prof.get(&confirm_path).await;
    assert_eq!(confirm.status(), StatusCode::OK);
    let confirm = confirm.text().await.expect("confirm page");
    assert!(
        confirm.contains(&format!(
            "<form method=\"post\" action=\"/admin/namespaces/{name}/members/remove\""
        )) && confirm.contains("name=\"email\" value=\"carol@purdue.edu\""),
        "{confirm}"
    );
    let still = bindings
        .list(&Default::default())
        .await
        .expect("listing bindings");
    assert!(
        still
            .items
            .iter()
            .any(|b| b.role_ref.name.starts_with("berth-")),
        "asking removed nothing"
    );

    // Removing the member (the confirm page's button) removes the binding,
    // and with it the access.
    let response = prof
        .submit_form(
            &confirm_path,
            &format!("/admin/namespaces/{name}/members/remove"),
            &[("email", "carol@purdue.edu")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let left = bindings
        .list(&Default::default())
        .await
        .expect("listing bindings");
    assert!(
        left.items
            .iter()
            .all(|b| b.role_ref.name == "berth-admin" || !b.role_ref.name.starts_with("berth-")),
        "no Berth binding but the admins' is left: {:?}",
        left.items
            .iter()
            .map(|b| b.metadata.name.clone())
            .collect::<Vec<_>>()
    );
    eventually(WAIT, "RBAC to refuse the removed member", || {
        let carol = carol.clone();
        async move {
            let result = carol
                .create(&PostParams::default(), &deployment("after-removal"))
                .await;
            match refused(&result) {
                Some((403, _)) => Some(()),
                Some(other) => panic!("unexpected refusal {other:?}"),
                None => {
                    let _ = carol
                        .delete("after-removal", &DeleteParams::default())
                        .await;
                    None
                }
            }
        }
    })
    .await;
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM memberships WHERE namespace = ?")
        .bind(&name)
        .fetch_one(&app.db)
        .await
        .expect("count");
    assert_eq!(rows, 0);
    assert_eq!(
        audit_outcome(&app, "member.remove", &name, "carol@purdue.edu")
            .await
            .as_deref(),
        Some("ok")
    );

    cluster::delete_namespace(&admin, &name).await;
    app.stop().await;
}

#[tokio::test]
async fn a_member_sees_their_namespace_and_its_usage_on_the_dashboard() {
    let app = TestApp::spawn_in_cluster(&[]).await;
    let admin = cluster::admin().await;
    let (prof, name) = admin_with_namespace(&app, "t-dash").await;
    prof.add_member(&name, "erin@purdue.edu", "owner").await;

    let student = TestPerson::student(&app, "erin@purdue.edu").await;
    let html = eventually(WAIT, "the dashboard to show the quota", || {
        let student = student.client.clone();
        let url = app.url("/");
        async move {
            let html = student.get(url).send().await.ok()?.text().await.ok()?;
            html.contains("of 1Gi").then_some(html)
        }
    })
    .await;
    assert!(html.contains(&name), "the namespace is listed");
    assert!(html.contains("Memory requested"), "with its bars");
    assert!(html.contains(">owner<"), "and the role");
    assert!(
        html.contains(&format!("href=\"/namespaces/{name}/workloads/new\"")),
        "with a way to deploy there"
    );

    // The student is not an admin: every admin page is refused.
    for path in [
        "/admin",
        "/admin/namespaces",
        &format!("/admin/namespaces/{name}"),
        "/admin/audit",
    ] {
        let response = student.get(path).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{path}");
    }

    // The admin's page of the namespace shows members, quota and usage.
    let html = prof.html(&format!("/admin/namespaces/{name}")).await;
    assert!(
        html.contains("erin@purdue.edu") && html.contains("512Mi"),
        "{html}"
    );
    assert!(prof.html("/admin").await.contains("/admin/audit"));

    // The admin overview lists it with its members count, and sorts.
    let overview = prof.get("/admin/namespaces?sort=members&dir=desc").await;
    assert_eq!(overview.status(), StatusCode::OK);
    let html = overview.text().await.expect("body");
    assert!(
        html.contains(&format!("/admin/namespaces/{name}")),
        "listed"
    );
    assert!(
        html.contains("aria-sort=\"descending\""),
        "sorted by members"
    );

    cluster::delete_namespace(&admin, &name).await;
    app.stop().await;
}

#[tokio::test]
async fn deleting_a_namespace_needs_its_name_typed() {
    let app = TestApp::spawn_in_cluster(&[]).await;
    let admin = cluster::admin().await;
    let (prof, name) = admin_with_namespace(&app, "t-delete").await;
    prof.add_member(&name, "frank@purdue.edu", "member").await;

    let delete = format!("/admin/namespaces/{name}/delete");
    let page = prof.get(&delete).await;
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.expect("body");
    assert!(html.contains("cannot be undone"), "{html}");

    let wrong = prof
        .submit_form(&delete, &delete, &[("confirm", "yes")])
        .await;
    assert_eq!(wrong.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let namespaces: Api<Namespace> = Api::all(admin.clone());
    let still = namespaces.get(&name).await.expect("still there");
    assert!(still.metadata.deletion_timestamp.is_none());

    let right = prof
        .submit_form(&delete, &delete, &[("confirm", name.as_str())])
        .await;
    assert_eq!(right.status(), StatusCode::SEE_OTHER);
    match namespaces.get(&name).await {
        Ok(ns) => assert!(ns.metadata.deletion_timestamp.is_some(), "being deleted"),
        Err(kube::Error::Api(status)) => assert_eq!(status.code, 404),
        Err(other) => panic!("{other:?}"),
    }
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM memberships WHERE namespace = ?")
        .bind(&name)
        .fetch_one(&app.db)
        .await
        .expect("count");
    assert_eq!(rows, 0, "its memberships are gone");
    assert_eq!(
        audit_outcome(&app, "namespace.delete", &name, &name)
            .await
            .as_deref(),
        Some("ok")
    );
    app.stop().await;
}

#[tokio::test]
async fn editing_the_quota_changes_what_the_apiserver_holds() {
    let app = TestApp::spawn_in_cluster(&[]).await;
    let admin = cluster::admin().await;
    let (prof, name) = admin_with_namespace(&app, "t-edit").await;

    // The edit form shows what the cluster has (once the cache has it).
    let html = eventually(WAIT, "the edit form", || async {
        let response = prof.get(&format!("/admin/namespaces/{name}/edit")).await;
        (response.status() == StatusCode::OK).then_some(response.text().await.ok()?)
    })
    .await;
    assert!(html.contains("value=\"1Gi\""), "{html}");

    let mut form = namespace_form();
    form.retain(|(k, _)| {
        !matches!(
            *k,
            "pods"
                | "requests_storage"
                | "requests_cpu"
                | "limits_cpu"
                | "default_request_cpu"
                | "default_limit_cpu"
        )
    });
    form.push(("pods", "9"));
    let edit = format!("/admin/namespaces/{name}/edit");
    let response = prof.submit_form(&edit, &edit, &form).await;
    let status = response.status();
    assert_eq!(
        status,
        StatusCode::SEE_OTHER,
        "{}",
        response.text().await.unwrap_or_default()
    );

    let quota = Api::<ResourceQuota>::namespaced(admin.clone(), &name)
        .get("berth-quota")
        .await
        .expect("quota");
    let hard = quota.spec.and_then(|s| s.hard).unwrap_or_default();
    assert_eq!(hard.get("pods").map(|q| q.0.as_str()), Some("9"));
    assert!(!hard.contains_key("requests.cpu"), "nor is one removed");
    assert!(
        !hard.contains_key("requests.storage"),
        "an emptied field is no longer limited"
    );
    let range = Api::<LimitRange>::namespaced(admin.clone(), &name)
        .get("berth-defaults")
        .await
        .expect("limit range");
    let item = &range.spec.expect("spec").limits[0];
    assert!(!item.default.clone().unwrap_or_default().contains_key("cpu"));
    assert_eq!(
        audit_outcome(&app, "namespace.update", &name, &name)
            .await
            .as_deref(),
        Some("ok")
    );

    cluster::delete_namespace(&admin, &name).await;
    app.stop().await;
}

#[tokio::test]
async fn berth_is_ready_once_its_caches_have_synced() {
    // spawn_in_cluster itself waits for /readyz; this checks the answer.
    let app = TestApp::spawn_in_cluster(&[]).await;
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status(), StatusCode::OK);
    assert_eq!(ready.text().await.expect("body"), "ready");
    app.stop().await;
}

#[tokio::test]
async fn self_service_gives_a_first_time_user_a_personal_namespace() {
    let app = TestApp::spawn_in_cluster(&["--self-service-namespaces"]).await;
    let admin = cluster::admin().await;
    let local = unique("self");
    let email = format!("{local}@purdue.edu");
    let name = format!("u-{local}");
    let person = TestPerson::student(&app, &email).await;
    let home = person.get("/").await;
    assert_eq!(home.status(), StatusCode::OK);
    assert!(
        home.text().await.expect("body").contains(&name),
        "listed on the dashboard"
    );

    let ns = Api::<Namespace>::all(admin.clone())
        .get(&name)
        .await
        .expect("the namespace exists");
    assert_eq!(
        ns.metadata
            .labels
            .unwrap_or_default()
            .get("app.kubernetes.io/managed-by")
            .map(String::as_str),
        Some("berth")
    );
    let quota = Api::<ResourceQuota>::namespaced(admin.clone(), &name)
        .get("berth-quota")
        .await
        .expect("with the default quota");
    let hard = quota.spec.and_then(|s| s.hard).unwrap_or_default();
    assert_eq!(
        hard.get("requests.memory").map(|q| q.0.as_str()),
        Some("4Gi")
    );
    let bindings = Api::<RoleBinding>::namespaced(admin.clone(), &name)
        .list(&Default::default())
        .await
        .expect("bindings");
    assert!(
        bindings
            .items
            .iter()
            .any(|b| b.role_ref.name == "berth-owner"),
        "owned by the person"
    );
    assert_eq!(
        audit_outcome(&app, "namespace.self_service", &name, &name)
            .await
            .as_deref(),
        Some("ok")
    );

    // Only once: a second visit makes nothing new.
    person.get("/").await;
    let rows: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM audit_log WHERE action = 'namespace.self_service'",
    )
    .fetch_one(&app.db)
    .await
    .expect("count");
    assert_eq!(rows, 1);

    cluster::delete_namespace(&admin, &name).await;
    app.stop().await;
}
