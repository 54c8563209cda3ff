//! The kubeconfig a person downloads: its token is their own account's, so
//! the real kubectl (the one testenv builds) with that file can do what their
//! memberships allow and nothing else. Every assertion is on what the
//! apiserver, kubectl or Berth's page actually answered.

use std::{path::Path, process::Command, time::Duration};

use crate::helpers::{
    SMALL_NAMESPACE, TestApp, TestPerson, browser::Browser, cluster, csrf_from_html,
    testenv_var as env, unique,
};
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::Api;
use reqwest::StatusCode;

const STUDENT: &str = "student@purdue.edu";
const OUTSIDER: &str = "outsider@purdue.edu";

/// Two namespaces; the student is a member of the first only.
struct World {
    app: TestApp,
    /// The admin who made them.
    prof: TestPerson,
    mine: String,
    other: String,
    dir: tempfile::TempDir,
}

impl World {
    async fn new(extra: &[&str]) -> Self {
        let app = TestApp::spawn_in_cluster(extra).await;
        let prof = TestPerson::admin(&app, "prof@purdue.edu").await;
        let mine = unique("t-kcfg");
        let other = unique("t-kcfg-other");
        prof.create_namespace(&mine, &SMALL_NAMESPACE).await;
        prof.create_namespace(&other, &SMALL_NAMESPACE).await;
        prof.add_member(&mine, STUDENT, "member").await;
        Self {
            app,
            prof,
            mine,
            other,
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    /// Downloads a kubeconfig for `ns` as `person`: the response.
    async fn download(&self, person: &TestPerson, ns: &str) -> reqwest::Response {
        person
            .submit(&format!("/namespaces/{ns}/kubeconfig"), &[])
            .await
    }

    async fn finish(self) {
        let admin = cluster::admin().await;
        for ns in [&self.mine, &self.other] {
            cluster::delete_namespace(&admin, ns).await;
        }
        self.app.stop().await;
    }
}

/// Runs the real kubectl with `kubeconfig` only (no admin file from the
/// environment): (succeeded, stdout + stderr).
fn kubectl(kubeconfig: &Path, args: &[&str]) -> (bool, String) {
    let output = Command::new(env("TESTENV_KUBECTL"))
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .env_remove("KUBECONFIG")
        .output()
        .expect("running kubectl");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text.trim().to_owned())
}

#[tokio::test]
async fn a_members_kubeconfig_works_with_the_real_kubectl_in_their_namespace_only() {
    let world = World::new(&[]).await;
    let student = TestPerson::student(&world.app, STUDENT).await;

    // The dashboard offers it and says how long it works.
    let home = student.html("/").await;
    assert!(
        home.contains(&format!("action=\"/namespaces/{}/kubeconfig\"", world.mine)),
        "{home}"
    );
    assert!(
        home.contains("expires 8 hours after you download it"),
        "{home}"
    );

    let before = time::OffsetDateTime::now_utc().unix_timestamp();
    // Pressed on the dashboard: its form, with the token it carries.
    let download = format!("/namespaces/{}/kubeconfig", world.mine);
    let response = student.submit_form("/", &download, &[]).await;
    assert_eq!(response.status(), StatusCode::OK);
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(
        header("content-disposition"),
        format!("attachment; filename=\"berth-{}.kubeconfig\"", world.mine)
    );
    assert!(header("cache-control").contains("no-store"));
    let expires = time::OffsetDateTime::parse(
        &header("x-berth-token-expires"),
        &time::format_description::well_known::Rfc3339,
    )
    .expect("an RFC 3339 expiry")
    .unix_timestamp();
    // The apiserver set it: 8 hours from the request (give or take the run).
    assert!(
        (expires - before - 8 * 3600).abs() < 300,
        "expires {expires}, asked at {before}"
    );
    let text = response.text().await.expect("the file");

    // The file: the expiry in a comment and in the user's name, one token,
    // no other secret (no client key or certificate, no password).
    let rfc = time::OffsetDateTime::from_unix_timestamp(expires)
        .expect("time")
        .format(&time::format_description::well_known::Rfc3339)
        .expect("format");
    assert!(text.starts_with("# kubeconfig from Berth for student@purdue.edu"));
    assert!(text.contains(&format!("({rfc})")), "{text}");
    let value: serde_json::Value = serde_saphyr::from_str(&text).expect("YAML");
    let users = value["users"].as_array().expect("users");
    assert_eq!(users.len(), 1);
    let account = berth::kube::account_name(STUDENT);
    assert_eq!(
        users[0]["name"].as_str(),
        Some(format!("{account}-until-{rfc}").as_str())
    );
    let user = users[0]["user"].as_object().expect("user");
    assert_eq!(user.keys().collect::<Vec<_>>(), vec!["token"]);
    for secret_field in ["client-key", "client-certificate", "password", "exec"] {
        assert!(!text.contains(secret_field), "{secret_field} in {text}");
    }
    assert_eq!(
        value["contexts"][0]["context"]["namespace"],
        world.mine.as_str()
    );
    assert_eq!(
        value["clusters"][0]["cluster"]["server"].as_str(),
        Some(env("TESTENV_KUBE_SERVER").as_str())
    );
    let file = world.dir.path().join("student.kubeconfig");
    std::fs::write(&file, &text).expect("writing the file");

    // The real kubectl with it: who it is, where it may go.
    let (ok, whoami) = kubectl(
        &file,
        &[
            "auth",
            "whoami",
            "-o",
            "jsonpath={.status.userInfo.username}",
        ],
    );
    assert!(ok, "{whoami}");
    assert_eq!(
        whoami,
        format!("system:serviceaccount:berth-people:{account}")
    );
    let (ok, out) = kubectl(&file, &["get", "pods"]);
    assert!(ok, "the context's own namespace: {out}");
    let (ok, out) = kubectl(&file, &["get", "pods", "-n", &world.mine]);
    assert!(ok, "{out}");
    let (ok, out) = kubectl(&file, &["get", "pods", "-n", &world.other]);
    assert!(!ok && out.contains("Forbidden"), "another namespace: {out}");
    let (ok, out) = kubectl(&file, &["get", "secrets", "-n", "kube-system"]);
    assert!(!ok && out.contains("Forbidden"), "kube-system: {out}");
    let (mine, other) = (world.mine.as_str(), world.other.as_str());
    for (args, expected) in [
        (vec!["create", "deployments.apps", "-n", mine], "yes"),
        (vec!["get", "pods", "--subresource=log", "-n", mine], "yes"),
        (
            vec!["create", "pods", "--subresource=exec", "-n", mine],
            "yes",
        ),
        (vec!["create", "deployments.apps", "-n", other], "no"),
        (vec!["get", "pods", "--subresource=log", "-n", other], "no"),
        (vec!["update", "resourcequotas", "-n", mine], "no"),
        (
            vec![
                "create",
                "rolebindings.rbac.authorization.k8s.io",
                "-n",
                mine,
            ],
            "no",
        ),
        (
            vec![
                "create",
                "serviceaccounts",
                "--subresource=token",
                "-n",
                "berth-people",
            ],
            "no",
        ),
        (vec!["get", "secrets", "-n", "kube-system"], "no"),
    ] {
        let mut full = vec!["auth", "can-i"];
        full.extend(&args);
        let (_, out) = kubectl(&file, &full);
        assert_eq!(out, expected, "can-i {args:?}");
    }
    // Its holder cannot mint a longer-lived token for itself.
    let (ok, out) = kubectl(&file, &["create", "token", &account, "-n", "berth-people"]);
    assert!(
        !ok && out.contains("cannot create resource \"serviceaccounts/token\""),
        "{out}"
    );

    // Removed from the namespace, the same file can do nothing there.
    let removed = world
        .prof
        .submit(
            &format!("/admin/namespaces/{}/members/remove", world.mine),
            &[("email", STUDENT)],
        )
        .await;
    assert_eq!(removed.status(), StatusCode::SEE_OTHER);
    // The apiserver's RBAC reads bindings from its own informer: a moment.
    cluster::eventually(
        Duration::from_secs(30),
        "the removal to take effect",
        || {
            let (ok, out) = kubectl(&file, &["get", "pods", "-n", &world.mine]);
            std::future::ready((!ok && out.contains("Forbidden")).then_some(()))
        },
    )
    .await;

    // The download was audited, without the token.
    let detail: String = sqlx::query_scalar(
        "SELECT detail FROM audit_log WHERE action = 'kubeconfig.download' AND actor = ? AND outcome = 'ok'",
    )
    .bind(STUDENT)
    .fetch_one(&world.app.db)
    .await
    .expect("an audit row");
    assert!(detail.starts_with("token expires"), "{detail}");
    let token = users[0]["user"]["token"].as_str().expect("token");
    let logged: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE detail LIKE ?")
        .bind(format!("%{token}%"))
        .fetch_one(&world.app.db)
        .await
        .expect("count");
    assert_eq!(logged, 0);
    world.finish().await;
}

#[tokio::test]
async fn a_shorter_validity_and_a_public_address_are_written_into_the_file() {
    let world = World::new(&[
        "--kubeconfig-hours",
        "1",
        "--kubeconfig-server",
        "https://k8s.campus.example:6443",
    ])
    .await;
    let student = TestPerson::student(&world.app, STUDENT).await;
    let home = student.html("/").await;
    assert!(
        home.contains("expires 1 hour after you download it"),
        "{home}"
    );
    let before = time::OffsetDateTime::now_utc().unix_timestamp();
    let response = world.download(&student, &world.mine).await;
    assert_eq!(response.status(), StatusCode::OK);
    let text = response.text().await.expect("file");
    let value: serde_json::Value = serde_saphyr::from_str(&text).expect("YAML");
    assert_eq!(
        value["clusters"][0]["cluster"]["server"],
        "https://k8s.campus.example:6443"
    );
    // The token really is valid for an hour: the apiserver says so when asked
    // who holds it (TokenReview as the admin).
    let token = value["users"][0]["user"]["token"].as_str().expect("token");
    let payload = token.split('.').nth(1).expect("a JWT");
    use base64::Engine;
    let claims: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .expect("base64url"),
    )
    .expect("claims");
    let exp = claims["exp"].as_i64().expect("exp");
    assert!((exp - before - 3600).abs() < 300, "exp {exp}");
    world.finish().await;
}

#[tokio::test]
async fn a_non_member_a_signed_out_visitor_and_a_forged_form_get_no_kubeconfig() {
    let world = World::new(&[]).await;
    let admin = cluster::admin().await;
    let accounts: Api<ServiceAccount> = Api::namespaced(admin, "berth-people");

    // Signed in, but not a member: not found, and no account was made.
    let outsider = TestPerson::student(&world.app, OUTSIDER).await;
    let response = world.download(&outsider, &world.mine).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert!(
        !response
            .text()
            .await
            .unwrap_or_default()
            .contains("apiVersion")
    );
    let outsider_account = berth::kube::account_name(OUTSIDER);
    assert!(
        accounts
            .get_opt(&outsider_account)
            .await
            .expect("asking")
            .is_none(),
        "no account for a refused download"
    );

    // An admin who is not a member: the file would carry no rights there.
    let response = world.download(&world.prof, &world.other).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(
        response
            .text()
            .await
            .unwrap_or_default()
            .contains("you are not a member of")
    );

    // Signed out, and a member's form without the CSRF token.
    let download = format!("/namespaces/{}/kubeconfig", world.mine);
    let response = world.app.post_form(&download, &[]).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let student = TestPerson::student(&world.app, STUDENT).await;
    let response = student
        .post_form(&download, &[("csrf_token", "forged")])
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    // A GET mints nothing.
    let response = student.get(&download).await;
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);

    let refused: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM audit_log WHERE action = 'kubeconfig.download' AND outcome = 'denied'",
    )
    .fetch_one(&world.app.db)
    .await
    .expect("count");
    assert!(refused >= 2, "refusals are audited ({refused})");
    let issued: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM audit_log WHERE action = 'kubeconfig.download' AND outcome = 'ok'",
    )
    .fetch_one(&world.app.db)
    .await
    .expect("count");
    assert_eq!(issued, 0);
    world.finish().await;
}

#[tokio::test]
async fn in_chromium_the_namespace_page_has_the_button_and_says_when_the_file_expires() {
    let world = World::new(&[]).await;
    let browser = Browser::start().await;
    browser.sign_in(&world.app.base, STUDENT, false).await;
    let page = world
        .app
        .url(&format!("/namespaces/{}/workloads", world.mine));
    browser.goto(&page).await;
    let html = browser.source().await;
    assert!(html.contains("Download kubeconfig"), "{html}");
    assert!(
        html.contains("expires 8 hours after you download it"),
        "{html}"
    );
    assert!(csrf_from_html(&html).is_some());
    // Pressing it posts the form (with the page's CSRF token); the download
    // leaves the browser on the page, and Berth issued the file.
    browser.click("form.kubeconfig-download button").await;
    let issued = cluster::eventually(Duration::from_secs(30), "the download", || async {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM audit_log WHERE action = 'kubeconfig.download' AND outcome = 'ok' AND actor = ?",
        )
        .bind(STUDENT)
        .fetch_one(&world.app.db)
        .await
        .ok()?;
        (n > 0).then_some(n)
    })
    .await;
    assert_eq!(issued, 1);
    assert_eq!(browser.url().await, page);
    // The account now exists in berth-people, made as the student.
    let accounts: Api<ServiceAccount> = Api::namespaced(cluster::admin().await, "berth-people");
    let made = accounts
        .get(&berth::kube::account_name(STUDENT))
        .await
        .expect("the student's account");
    assert_eq!(made.automount_service_account_token, Some(false));
    browser.quit().await;
    world.finish().await;
}
