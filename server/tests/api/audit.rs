//! The audit log page: filters, and retention.

use crate::helpers::{TestApp, TestPerson};
use berth::audit::{self, Entry, Outcome};
use reqwest::StatusCode;

async fn seed(app: &TestApp) {
    for (actor, action, namespace, outcome) in [
        ("ann@purdue.edu", "member.add", "cs101", Outcome::Ok),
        ("ann@purdue.edu", "namespace.create", "cs101", Outcome::Ok),
        ("ben@purdue.edu", "member.add", "cs202", Outcome::Denied),
        ("ben@purdue.edu", "member.remove", "cs202", Outcome::Failed),
    ] {
        audit::record(
            &app.db,
            Entry {
                actor,
                action,
                namespace: Some(namespace),
                target: Some("target@purdue.edu"),
                outcome,
                detail: None,
            },
        )
        .await;
    }
}

fn rows_in(html: &str) -> usize {
    html.matches("<code>").count()
}

#[tokio::test]
async fn admins_filter_the_audit_log_by_user_namespace_and_action() {
    let app =
        TestApp::spawn_with(&["--dev-login", "--kubeconfig", "/nonexistent/kubeconfig"]).await;
    seed(&app).await;
    let root = TestPerson::admin(&app, "root@purdue.edu").await;

    let all = root.get("/admin/audit").await;
    assert_eq!(all.status(), StatusCode::OK);
    let html = all.text().await.expect("body");
    assert!(html.contains("sign_in"), "the admin's own sign-in is there");
    assert_eq!(rows_in(&html), 5);

    let by_user = root
        .get("/admin/audit?user=BEN@purdue.edu")
        .await
        .text()
        .await
        .expect("body");
    assert_eq!(rows_in(&by_user), 2, "{by_user}");
    assert!(by_user.contains("badge-warn") && by_user.contains("badge-bad"));

    let by_ns = root
        .get("/admin/audit?namespace=cs101")
        .await
        .text()
        .await
        .expect("body");
    assert_eq!(rows_in(&by_ns), 2);

    let by_action = root
        .get("/admin/audit?action=member.add")
        .await
        .text()
        .await
        .expect("body");
    assert_eq!(rows_in(&by_action), 2);
    let by_prefix = root
        .get("/admin/audit?action=member.")
        .await
        .text()
        .await
        .expect("body");
    assert_eq!(rows_in(&by_prefix), 3);
    let combined = root
        .get("/admin/audit?user=ann@purdue.edu&action=member.add&namespace=cs101")
        .await
        .text()
        .await
        .expect("body");
    assert_eq!(rows_in(&combined), 1);
    app.stop().await;
}

#[tokio::test]
async fn retention_deletes_only_old_rows() {
    let app =
        TestApp::spawn_with(&["--dev-login", "--kubeconfig", "/nonexistent/kubeconfig"]).await;
    seed(&app).await;
    let old = berth::clock::now() - 40 * 86_400;
    sqlx::query("UPDATE audit_log SET at = ? WHERE actor = 'ben@purdue.edu'")
        .bind(old)
        .execute(&app.db)
        .await
        .expect("ageing rows");
    let pruned = audit::prune(&app.db, 30).await.expect("prune");
    assert_eq!(pruned, 2);
    let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_log")
        .fetch_one(&app.db)
        .await
        .expect("count");
    assert_eq!(left, 2);
    app.stop().await;
}
