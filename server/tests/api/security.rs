//! Attacks on Berth's identity in the test world's real apiserver, with
//! deploy/rbac applied as is: what Berth's ServiceAccount token can do on its
//! own or through impersonation, and what an impersonated admin can reach.
//! Every assertion is on what the apiserver answered.

use std::time::Duration;

use crate::helpers::{
    TestApp, TestPerson, berth_sa,
    cluster::{self, TestNamespace, eventually},
    unique,
};
use berth::kube::{Identity, Kube};
use k8s_openapi::api::{
    authentication::v1::TokenRequest,
    core::v1::{Namespace, Pod, Secret, ServiceAccount},
    rbac::v1::RoleBinding,
};
use kube::{
    Api, Client, Config,
    api::{DeleteParams, ListParams, Patch, PatchParams, PostParams},
    config::Kubeconfig,
};
use reqwest::StatusCode;
use serde_json::json;

const WAIT: Duration = Duration::from_secs(60);
const ADMIN: &str = "root@purdue.edu";

/// Berth's ServiceAccount token, impersonating `user` in `groups` (`None`:
/// no impersonation at all).
async fn berth_token_as(user: Option<&str>, groups: &[&str]) -> Client {
    let file = Kubeconfig::read_from(berth_sa::kubeconfig()).expect("the SA kubeconfig");
    let mut config = Config::from_custom_kubeconfig(file, &Default::default())
        .await
        .expect("SA config");
    config.auth_info.impersonate = user.map(str::to_owned);
    if !groups.is_empty() {
        config.auth_info.impersonate_groups =
            Some(groups.iter().map(|g| (*g).to_owned()).collect());
    }
    Client::try_from(config).expect("SA client")
}

/// The admin identity exactly as Berth builds it for a signed-in admin.
async fn as_berth_admin() -> Client {
    let kube: Kube = berth_sa::berth_kube().await;
    kube.client_for(&Identity::new(ADMIN, true))
        .expect("an impersonating client")
}

/// The status code of a refused call; panics if the call went through.
fn refused<T: std::fmt::Debug>(result: Result<T, kube::Error>, what: &str) -> (u16, String) {
    match result {
        Err(kube::Error::Api(status)) => (status.code, status.message),
        other => panic!("{what}: expected a refusal, got {other:?}"),
    }
}

fn pod(name: &str) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {"containers": [{"name": "main", "image": "registry.invalid/demo:1"}]}
    }))
    .expect("a pod")
}

#[tokio::test]
async fn berth_token_impersonating_a_system_user_is_forbidden() {
    for (user, groups) in [
        (Some("system:kube-controller-manager"), &[][..]),
        (Some("system:admin"), &["system:masters"][..]),
        (
            Some("system:serviceaccount:kube-system:namespace-controller"),
            &[][..],
        ),
        (Some("system:serviceaccount:berth-system:berth"), &[][..]),
        (Some("alice@purdue.edu"), &[][..]),
        (Some("berth:alice@purdue.edu"), &["berth:users"][..]),
    ] {
        let client = berth_token_as(user, groups).await;
        let secrets: Api<Secret> = Api::all(client.clone());
        let (code, message) = refused(
            secrets.list(&ListParams::default()).await,
            &format!("listing secrets as {user:?}"),
        );
        assert_eq!(code, 403, "{user:?}: {message}");
        assert!(message.contains("impersonate"), "{user:?}: {message}");
        // The measured escalation: a token for kube-system's controllers.
        let tokens: Api<ServiceAccount> = Api::namespaced(client, "kube-system");
        let (code, message) = refused(
            tokens
                .create_token_request(
                    "namespace-controller",
                    &PostParams::default(),
                    &TokenRequest::default(),
                )
                .await,
            &format!("a kube-system token as {user:?}"),
        );
        assert_eq!(code, 403, "{user:?}: {message}");
    }
}

#[tokio::test]
async fn berth_token_impersonating_a_foreign_group_is_forbidden() {
    let person = Identity::new("mallory@purdue.edu", false).user();
    for group in ["system:masters", "system:nodes", "berth:other"] {
        let client = berth_token_as(Some(&person), &["berth:users", group]).await;
        let (code, message) = refused(
            Api::<Secret>::all(client)
                .list(&ListParams::default())
                .await,
            &format!("listing secrets in group {group}"),
        );
        assert_eq!(code, 403, "{group}: {message}");
        assert!(message.contains("impersonate"), "{group}: {message}");
    }
}

#[tokio::test]
async fn berth_token_alone_cannot_read_secrets_or_mint_tokens() {
    let client = berth_token_as(None, &[]).await;
    let (code, message) = refused(
        Api::<Secret>::all(client.clone())
            .list(&ListParams::default())
            .await,
        "listing secrets as Berth itself",
    );
    assert_eq!(code, 403, "{message}");
    let (code, message) = refused(
        Api::<ServiceAccount>::namespaced(client, "berth-people")
            .create_token_request(
                &Identity::new("alice@purdue.edu", false).account,
                &PostParams::default(),
                &TokenRequest::default(),
            )
            .await,
        "a token for a person's account",
    );
    assert_eq!(code, 403, "{message}");
}

#[tokio::test]
async fn berth_admin_cannot_read_kube_system_secrets() {
    let admin = as_berth_admin().await;
    let unmanaged = TestNamespace::create(&cluster::admin().await, "t-unmanaged").await;
    for namespace in [
        "kube-system",
        "berth-system",
        "berth-people",
        &unmanaged.name,
    ] {
        let secrets: Api<Secret> = Api::namespaced(admin.clone(), namespace);
        let (code, message) = refused(
            secrets.list(&ListParams::default()).await,
            &format!("admin listing secrets in {namespace}"),
        );
        assert_eq!(code, 403, "{namespace}: {message}");
        let pods: Api<Pod> = Api::namespaced(admin.clone(), namespace);
        let (code, message) = refused(
            pods.create(&PostParams::default(), &pod("intruder")).await,
            &format!("admin creating a pod in {namespace}"),
        );
        assert_eq!(code, 403, "{namespace}: {message}");
    }
    let (code, message) = refused(
        Api::<Secret>::all(admin).list(&ListParams::default()).await,
        "admin listing every secret",
    );
    assert_eq!(code, 403, "{message}");
    unmanaged.delete().await;
}

#[tokio::test]
async fn berth_admin_cannot_bind_itself_outside_berths_namespaces() {
    let admin = as_berth_admin().await;
    let unmanaged = TestNamespace::create(&cluster::admin().await, "t-unmanaged").await;
    for namespace in ["kube-system", "berth-system", &unmanaged.name] {
        let binding: RoleBinding =
            serde_json::to_value(berth::namespaces::objects::admins_binding(namespace))
                .and_then(serde_json::from_value)
                .expect("a binding");
        let (code, message) = refused(
            Api::<RoleBinding>::namespaced(admin.clone(), namespace)
                .create(&PostParams::default(), &binding)
                .await,
            &format!("admin binding itself in {namespace}"),
        );
        assert_eq!(code, 403, "{namespace}: {message}");
        assert!(message.contains("namespaces it manages"), "{message}");
    }
    // Nor label someone else's namespace as Berth's to get in.
    let (code, message) = refused(
        Api::<Namespace>::all(admin.clone())
            .patch(
                "kube-system",
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"labels": {
                    "app.kubernetes.io/managed-by": "berth"
                }}})),
            )
            .await,
        "admin labelling kube-system",
    );
    assert_eq!(code, 403, "{message}");
    // A namespace without Berth's label and Pod Security is refused outright.
    let bare = Namespace {
        metadata: kube::api::ObjectMeta {
            name: Some(format!("{}-bare", unmanaged.name)),
            ..Default::default()
        },
        ..Namespace::default()
    };
    let (code, message) = refused(
        Api::<Namespace>::all(admin)
            .create(&PostParams::default(), &bare)
            .await,
        "admin creating an unlabelled namespace",
    );
    assert_eq!(code, 403, "{message}");
    unmanaged.delete().await;
}

/// The admin form's settings for these tests' namespaces.
const SETTINGS: [(&str, &str); 13] = [
    ("description", "security test"),
    ("requests_cpu", "2"),
    ("limits_cpu", "2"),
    ("requests_memory", "2Gi"),
    ("limits_memory", "2Gi"),
    ("pods", "5"),
    ("services_loadbalancers", "1"),
    ("persistentvolumeclaims", "1"),
    ("requests_storage", "1Gi"),
    ("default_request_cpu", "100m"),
    ("default_request_memory", "128Mi"),
    ("default_limit_cpu", "200m"),
    ("default_limit_memory", "256Mi"),
];

/// An admin, and a namespace they made through the admin page.
async fn berth_namespace(app: &TestApp) -> (TestPerson, String) {
    let name = unique("t-sec");
    let admin = TestPerson::admin(app, ADMIN).await;
    admin.create_namespace(&name, &SETTINGS).await;
    (admin, name)
}

#[tokio::test]
async fn berth_admin_cannot_loosen_pod_security_of_its_namespace() {
    let app = TestApp::spawn_in_cluster(&[]).await;
    let (_person, name) = berth_namespace(&app).await;
    let admin = as_berth_admin().await;
    // The admin does hold rights here (the namespace is Berth's)…
    let secrets: Api<Secret> = Api::namespaced(admin.clone(), &name);
    eventually(WAIT, "the admin to read its namespace", || {
        let secrets = secrets.clone();
        async move { secrets.list(&ListParams::default()).await.ok() }
    })
    .await;
    // …but cannot make it privileged.
    let (code, message) = refused(
        Api::<Namespace>::all(admin)
            .patch(
                &name,
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"labels": {
                    "pod-security.kubernetes.io/enforce": "privileged"
                }}})),
            )
            .await,
        "admin loosening Pod Security",
    );
    assert_eq!(code, 403, "{message}");
    assert!(message.contains("Pod Security"), "{message}");
    cluster::delete_namespace(&cluster::admin().await, &name).await;
    app.stop().await;
}

#[tokio::test]
async fn removed_member_next_page_is_404() {
    let app = TestApp::spawn_in_cluster(&[]).await;
    let (admin, name) = berth_namespace(&app).await;
    admin.add_member(&name, "erin@purdue.edu", "member").await;
    let erin = TestPerson::student(&app, "erin@purdue.edu").await;
    let page = format!("/namespaces/{name}/workloads");
    let before = erin.get(&page).await;
    assert_eq!(before.status(), StatusCode::OK);
    let response = admin
        .submit(
            &format!("/admin/namespaces/{name}/members/remove"),
            &[("email", "erin@purdue.edu")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    // The very next request, in the session she already had.
    for path in [
        page.clone(),
        format!("/namespaces/{name}/registry"),
        format!("/namespaces/{name}/images"),
    ] {
        let after = erin.get(&path).await;
        assert_eq!(after.status(), StatusCode::NOT_FOUND, "{path}");
    }
    let home = erin.html("/").await;
    assert!(!home.contains(&name), "the dashboard no longer lists it");
    cluster::delete_namespace(&cluster::admin().await, &name).await;
    app.stop().await;
}

#[tokio::test]
async fn recreated_namespace_shows_no_old_credential() {
    let app = TestApp::spawn_in_cluster(&[]).await;
    let (admin, name) = berth_namespace(&app).await;
    admin.add_member(&name, "frank@purdue.edu", "member").await;
    // A credential saved in the first namespace of that name.
    sqlx::query(
        "INSERT INTO registry_credentials
            (namespace, host, robot, key_id, nonce, sealed_token, created_by, created_at, updated_by, updated_at)
         VALUES (?, 'registry.example.edu', 'robot$old+ci', 'k1', x'00', x'00', ?, 0, ?, 0)",
    )
    .bind(&name)
    .bind(ADMIN)
    .bind(ADMIN)
    .execute(&app.db)
    .await
    .expect("a credential row");
    app.forget_cached();
    let response = admin
        .submit(
            &format!("/admin/namespaces/{name}/delete"),
            &[("confirm", name.as_str())],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let namespaces: Api<Namespace> = Api::all(cluster::admin().await);
    eventually(WAIT * 2, "the namespace to be gone", || {
        let namespaces = namespaces.clone();
        let name = name.clone();
        async move {
            match namespaces.get_opt(&name).await {
                Ok(None) => Some(()),
                _ => None,
            }
        }
    })
    .await;
    // The same name again.
    admin.create_namespace(&name, &SETTINGS).await;
    let credentials = admin.html(&format!("/namespaces/{name}/registry")).await;
    assert!(!credentials.contains("robot$old+ci"), "{credentials}");
    let members = admin.html(&format!("/admin/namespaces/{name}")).await;
    assert!(!members.contains("frank@purdue.edu"), "{members}");
    let rows: i64 = sqlx::query_scalar(
        "SELECT (SELECT COUNT(*) FROM registry_credentials WHERE namespace = ?1)
              + (SELECT COUNT(*) FROM memberships WHERE namespace = ?1)",
    )
    .bind(&name)
    .fetch_one(&app.db)
    .await
    .expect("count");
    assert_eq!(rows, 0);
    let _ = namespaces.delete(&name, &DeleteParams::background()).await;
    app.stop().await;
}

#[tokio::test]
async fn pod_asking_for_hostpath_or_privileged_is_refused() {
    let app = TestApp::spawn_in_cluster(&[]).await;
    let (admin, name) = berth_namespace(&app).await;
    admin.add_member(&name, "gina@purdue.edu", "member").await;
    let kube: Kube = berth_sa::berth_kube().await;
    let gina = kube
        .client_for(&Identity::new("gina@purdue.edu", false))
        .expect("client");
    let pods: Api<Pod> = Api::namespaced(gina, &name);
    let resources = json!({"limits": {"cpu": "100m", "memory": "64Mi"}});
    let privileged: Pod = serde_json::from_value(json!({
        "metadata": {"name": "privileged"},
        "spec": {"containers": [{"name": "main", "image": "registry.invalid/x:1",
            "resources": resources, "securityContext": {"privileged": true}}]}
    }))
    .expect("pod");
    let host_path: Pod = serde_json::from_value(json!({
        "metadata": {"name": "host-path"},
        "spec": {
            "containers": [{"name": "main", "image": "registry.invalid/x:1", "resources": resources,
                "volumeMounts": [{"name": "root", "mountPath": "/host"}]}],
            "volumes": [{"name": "root", "hostPath": {"path": "/"}}]
        }
    }))
    .expect("pod");
    let host_network: Pod = serde_json::from_value(json!({
        "metadata": {"name": "host-network"},
        "spec": {"hostNetwork": true,
            "containers": [{"name": "main", "image": "registry.invalid/x:1", "resources": resources}]}
    }))
    .expect("pod");
    // RBAC lets the member create pods; wait until it does (a harmless dry run).
    let dry_run = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    eventually(WAIT, "RBAC to let the member create pods", || {
        let pods = pods.clone();
        let dry_run = dry_run.clone();
        async move {
            pods.create(&dry_run, &pod("harmless"))
                .await
                .ok()
                .map(|_| ())
        }
    })
    .await;
    for attempt in [privileged, host_path, host_network] {
        let what = attempt.metadata.name.clone().unwrap_or_default();
        let (code, message) = refused(pods.create(&PostParams::default(), &attempt).await, &what);
        assert_eq!(code, 403, "{what}: {message}");
        assert!(message.contains("PodSecurity"), "{what}: {message}");
    }
    cluster::delete_namespace(&cluster::admin().await, &name).await;
    app.stop().await;
}

#[tokio::test]
async fn a_berth_namespace_keeps_other_namespaces_out() {
    let app = TestApp::spawn_in_cluster(&[]).await;
    let (admin, name) = berth_namespace(&app).await;
    let policies: Api<k8s_openapi::api::networking::v1::NetworkPolicy> =
        Api::namespaced(cluster::admin().await, &name);
    let default = policies
        .get("berth-default")
        .await
        .expect("the default policy");
    let spec = default.spec.expect("spec");
    assert_eq!(spec.policy_types, Some(vec!["Ingress".to_owned()]));
    let from = spec.ingress.expect("rules")[0].from.clone().expect("from");
    assert_eq!(from.len(), 1);
    assert!(from[0].namespace_selector.is_none() && from[0].ip_block.is_none());
    let exposed = policies
        .get("berth-exposed")
        .await
        .expect("the exposed policy");
    let selector = exposed.spec.expect("spec").pod_selector.expect("selector");
    assert_eq!(
        selector.match_expressions.expect("expressions")[0].key,
        "berth.io/exposure"
    );
    let labels = Api::<Namespace>::all(cluster::admin().await)
        .get(&name)
        .await
        .expect("namespace")
        .metadata
        .labels
        .unwrap_or_default();
    assert_eq!(
        labels
            .get("pod-security.kubernetes.io/enforce")
            .map(String::as_str),
        Some("baseline")
    );
    // A member cannot lift the fence.
    let kube: Kube = berth_sa::berth_kube().await;
    admin.add_member(&name, "hal@purdue.edu", "member").await;
    let hal = kube
        .client_for(&Identity::new("hal@purdue.edu", false))
        .expect("client");
    let (code, message) = refused(
        Api::<k8s_openapi::api::networking::v1::NetworkPolicy>::namespaced(hal, &name)
            .delete("berth-default", &DeleteParams::default())
            .await,
        "a member deleting the default NetworkPolicy",
    );
    assert_eq!(code, 403, "{message}");
    cluster::delete_namespace(&cluster::admin().await, &name).await;
    app.stop().await;
}

#[tokio::test]
async fn an_upgraded_namespace_is_rebound_to_berths_people() {
    let cluster_admin = cluster::admin().await;
    let name = unique("t-old");
    // A namespace Berth made before: labelled, with a binding for the old
    // `berth:<email>` user and no admins' binding.
    let namespace: Namespace = serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"app.kubernetes.io/managed-by": "berth"}}
    }))
    .expect("namespace");
    Api::<Namespace>::all(cluster_admin.clone())
        .create(&PostParams::default(), &namespace)
        .await
        .expect("creating the old namespace");
    let binding_name = berth::namespaces::objects::role_binding_name(
        "ivy@purdue.edu",
        berth::namespaces::membership::Role::Member,
    );
    let old: RoleBinding = serde_json::from_value(json!({
        "metadata": {"name": binding_name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "berth-member"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "berth:ivy@purdue.edu"}]
    }))
    .expect("binding");
    let bindings: Api<RoleBinding> = Api::namespaced(cluster_admin.clone(), &name);
    bindings
        .create(&PostParams::default(), &old)
        .await
        .expect("the old binding");
    let app = TestApp::spawn_in_cluster(&[]).await;
    berth::namespaces::membership::upsert(
        &app.store,
        &name,
        "ivy@purdue.edu",
        berth::namespaces::membership::Role::Member,
        ADMIN,
    )
    .await
    .expect("the membership row");
    let kube: Kube = berth_sa::berth_kube().await;
    eventually(WAIT, "Berth's caches", || {
        let ready = kube.is_ready();
        async move { ready.then_some(()) }
    })
    .await;
    // Before: neither the member nor an admin gets in.
    let ivy = Api::<Secret>::namespaced(
        kube.client_for(&Identity::new("ivy@purdue.edu", false))
            .expect("client"),
        &name,
    );
    let admin = Api::<Secret>::namespaced(as_berth_admin().await, &name);
    assert_eq!(
        refused(ivy.list(&ListParams::default()).await, "ivy").0,
        403
    );
    assert_eq!(
        refused(admin.list(&ListParams::default()).await, "admin").0,
        403
    );

    let done = berth::namespaces::rebind::rebind(&kube, &app.db)
        .await
        .expect("rebinding");
    assert!(done.namespaces >= 1 && done.members >= 1, "{done:?}");
    assert!(
        !done.failed.iter().any(|f| f.starts_with(&name)),
        "{done:?}"
    );
    let subject = bindings
        .get(&binding_name)
        .await
        .expect("the binding")
        .subjects
        .expect("subjects")
        .remove(0);
    assert_eq!(subject.kind, "ServiceAccount");
    assert!(bindings.get("berth-admins").await.is_ok());
    for (who, api) in [("ivy", ivy), ("admin", admin)] {
        eventually(WAIT, &format!("{who} to get in"), || {
            let api = api.clone();
            async move { api.list(&ListParams::default()).await.ok().map(|_| ()) }
        })
        .await;
    }
    cluster::delete_namespace(&cluster_admin, &name).await;
    app.stop().await;
}

/// Creates a ServiceAccount as the test world's admin (what an attacker would
/// want a token for), ignoring "already exists".
async fn admin_made_account(namespace: &str, name: &str) {
    let api: Api<ServiceAccount> = Api::namespaced(cluster::admin().await, namespace);
    let account: ServiceAccount =
        serde_json::from_value(json!({"metadata": {"name": name}})).expect("an account");
    match api.create(&PostParams::default(), &account).await {
        Ok(_) => {}
        Err(kube::Error::Api(status)) if status.code == 409 => {}
        Err(error) => panic!("creating {namespace}/{name}: {error}"),
    }
}

fn token_request() -> TokenRequest {
    serde_json::from_value(json!({"spec": {"audiences": [], "expirationSeconds": 600}}))
        .expect("a token request")
}

#[tokio::test]
async fn a_person_can_mint_a_token_only_for_their_own_account() {
    let kube: Kube = berth_sa::berth_kube().await;
    let alice = Identity::new(&format!("{}@purdue.edu", unique("alice")), false);
    let bob = Identity::new(&format!("{}@purdue.edu", unique("bob")), false);
    let as_alice = kube.client_for(&alice).expect("client");
    let people: Api<ServiceAccount> = Api::namespaced(as_alice.clone(), "berth-people");

    // Their own: the account and a token, as the kubeconfig download does.
    people
        .create(
            &PostParams::default(),
            &berth::kubeconfig::ops::account(&alice.account),
        )
        .await
        .expect("alice makes her own account");
    let issued = people
        .create_token_request(&alice.account, &PostParams::default(), &token_request())
        .await
        .expect("alice gets her own token");
    let token = issued.status.expect("status").token;

    // Someone else's account: refused by the fence, whether it exists or not.
    let (code, message) = refused(
        people
            .create(
                &PostParams::default(),
                &berth::kubeconfig::ops::account(&bob.account),
            )
            .await,
        "alice making bob's account",
    );
    assert_eq!(code, 403, "{message}");
    assert!(message.contains("only their own account"), "{message}");
    admin_made_account("berth-people", &bob.account).await;
    admin_made_account("berth-people", "berth-system").await;
    for name in [bob.account.as_str(), "berth-system"] {
        let (code, message) = refused(
            people
                .create_token_request(name, &PostParams::default(), &token_request())
                .await,
            &format!("alice minting a token for {name}"),
        );
        assert_eq!(code, 403, "{name}: {message}");
    }
    // Berth acting on its own (with the admin group) cannot mint one for its
    // own name in berth-people either: not a person's name.
    let system = kube.client_for(&Identity::system()).expect("client");
    let (code, message) = refused(
        Api::<ServiceAccount>::namespaced(system, "berth-people")
            .create_token_request("berth-system", &PostParams::default(), &token_request())
            .await,
        "berth-system minting its own token",
    );
    assert_eq!(code, 403, "{message}");

    // Outside berth-people: kube-system's controllers and Berth's own account.
    for (namespace, name) in [
        ("kube-system", "namespace-controller"),
        ("kube-system", "default"),
        ("berth-system", "berth"),
    ] {
        for (who, client) in [
            ("alice", as_alice.clone()),
            ("Berth itself", berth_token_as(None, &[]).await),
        ] {
            let (code, message) = refused(
                Api::<ServiceAccount>::namespaced(client, namespace)
                    .create_token_request(name, &PostParams::default(), &token_request())
                    .await,
                &format!("{who} minting {namespace}/{name}"),
            );
            assert_eq!(code, 403, "{who}, {namespace}/{name}: {message}");
        }
    }
    // Berth's token on its own may not make accounts in berth-people at all.
    let (code, message) = refused(
        Api::<ServiceAccount>::namespaced(berth_token_as(None, &[]).await, "berth-people")
            .create(
                &PostParams::default(),
                &berth::kubeconfig::ops::account(&unique("p-x")),
            )
            .await,
        "Berth itself making an account",
    );
    assert_eq!(code, 403, "{message}");

    // The minted token's holder is not in berth:users: it cannot mint again,
    // nor impersonate anyone.
    let mut config = cluster::admin_config().await;
    config.auth_info = Default::default();
    config.auth_info.token = Some(token.into());
    let holder = Client::try_from(config).expect("a client with alice's token");
    let (code, message) = refused(
        Api::<ServiceAccount>::namespaced(holder.clone(), "berth-people")
            .create_token_request(&alice.account, &PostParams::default(), &token_request())
            .await,
        "the token's holder minting another",
    );
    assert_eq!(code, 403, "{message}");
    let (code, message) = refused(
        Api::<Secret>::all(holder)
            .list(&ListParams::default())
            .await,
        "the token's holder listing secrets",
    );
    assert_eq!(code, 403, "{message}");
}
