//! The namespace pages without a cluster: validation, access, and what Berth
//! says when it cannot reach Kubernetes.

use crate::helpers::{TestApp, TestPerson};
use reqwest::StatusCode;

async fn without_cluster() -> TestApp {
    TestApp::spawn_with(&[
        "--dev-login",
        "--kubeconfig",
        "/nonexistent/berth-kubeconfig",
    ])
    .await
}

#[tokio::test]
async fn an_invalid_namespace_form_comes_back_with_messages_and_values() {
    let app = without_cluster().await;
    let prof = TestPerson::admin(&app, "prof@purdue.edu").await;
    let form = prof.get("/admin/namespaces/new").await;
    assert_eq!(form.status(), StatusCode::OK);
    let html = form.text().await.expect("body");
    assert!(
        html.contains("value=\"4Gi\""),
        "the default quota fills the form"
    );

    let response = prof
        .submit(
            "/admin/namespaces",
            &[
                ("name", "CS_101"),
                ("description", "keep me"),
                ("requests_memory", "4 gigs"),
                ("pods", "1.5"),
                ("limits_memory", "512"),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = response.text().await.expect("body");
    assert!(html.contains("error-summary"), "a summary at the top");
    assert!(html.contains("Use only lower-case letters"), "name message");
    assert!(
        html.contains("Enter a number with an optional unit"),
        "quantity message"
    );
    assert!(html.contains("Enter a whole number"), "count message");
    assert!(html.contains("512Mi or 512Gi"), "unit hint");
    assert!(html.contains("value=\"CS_101\""), "the name is kept");
    assert!(html.contains("keep me"), "the description is kept");
    assert!(html.contains("value=\"4 gigs\""), "the bad value is kept");
    let rows: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE action = 'namespace.create'")
            .fetch_one(&app.db)
            .await
            .expect("count");
    assert_eq!(rows, 0, "nothing was attempted");
    app.stop().await;
}

#[tokio::test]
async fn without_a_cluster_berth_starts_and_says_so() {
    let app = without_cluster().await;
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(ready.text().await.expect("body"), "no cluster configured");

    let prof = TestPerson::admin(&app, "prof@purdue.edu").await;
    let overview = prof.get("/admin/namespaces").await;
    assert_eq!(overview.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        overview
            .text()
            .await
            .expect("body")
            .contains("not connected to a cluster")
    );

    // Creating is attempted, refused plainly, and audited as failed.
    let response = prof
        .submit("/admin/namespaces", &[("name", "cs101"), ("pods", "3")])
        .await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        response
            .text()
            .await
            .expect("body")
            .contains("not connected to a cluster")
    );
    let outcome: String =
        sqlx::query_scalar("SELECT outcome FROM audit_log WHERE action = 'namespace.create'")
            .fetch_one(&app.db)
            .await
            .expect("an audit row");
    assert_eq!(outcome, "failed");

    let home = prof.get("/").await;
    assert_eq!(home.status(), StatusCode::OK, "the dashboard still works");
    app.stop().await;
}

#[tokio::test]
async fn students_get_403_on_admin_pages_and_posts() {
    let app = without_cluster().await;
    let student = TestPerson::student(&app, "student@purdue.edu").await;
    for path in [
        "/admin",
        "/admin/namespaces",
        "/admin/namespaces/new",
        "/admin/namespaces/x",
        "/admin/audit",
    ] {
        assert_eq!(
            student.get(path).await.status(),
            StatusCode::FORBIDDEN,
            "{path}"
        );
    }
    let response = student
        .submit(
            "/admin/namespaces/x/members",
            &[("email", "me@purdue.edu"), ("role", "owner")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM memberships")
        .fetch_one(&app.db)
        .await
        .expect("count");
    assert_eq!(rows, 0);
    app.stop().await;
}
