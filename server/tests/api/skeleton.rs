//! The portal skeleton over a real socket: health, static files, security
//! headers, error pages, migrations, and the sign-in gate.

use crate::helpers::{TestApp, TestPerson, location};
use reqwest::StatusCode;

#[tokio::test]
async fn health_and_readiness_answer() {
    // Readiness includes the cluster caches; without a cluster Berth is up but
    // not ready (namespaces.rs checks it becomes ready with one).
    let app =
        TestApp::spawn_with(&["--dev-login", "--kubeconfig", "/nonexistent/kubeconfig"]).await;
    let health = app.get("/healthz").await;
    assert_eq!(health.status(), StatusCode::OK);
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(ready.text().await.expect("body"), "no cluster configured");
    app.stop().await;
}

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let app = TestApp::spawn().await;
    for path in [
        "/auth/login",
        "/static/berth.css",
        "/healthz",
        "/no-such-page",
    ] {
        let response = app.get(path).await;
        let headers = response.headers();
        let csp = headers
            .get("content-security-policy")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        assert!(csp.contains("script-src 'self'"), "{path}: {csp}");
        assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(headers["referrer-policy"], "same-origin", "{path}");
        assert!(headers.contains_key("x-request-id"), "{path}");
    }
    app.stop().await;
}

#[tokio::test]
async fn static_files_are_built_into_the_binary_and_served_with_cache_headers() {
    // No --static-dir: the copy built into the binary is served.
    let app = TestApp::spawn().await;
    let css = app.get("/static/berth.css").await;
    assert_eq!(css.status(), StatusCode::OK);
    assert_eq!(css.headers()["content-type"], "text/css; charset=utf-8");
    assert!(
        css.headers()["cache-control"]
            .to_str()
            .expect("ascii")
            .contains("max-age=")
    );
    let etag = css.headers()["etag"].clone();
    assert_eq!(
        css.text().await.expect("body"),
        include_str!("../../../static/berth.css")
    );
    let icon = app.get("/static/icon.svg").await;
    assert_eq!(icon.status(), StatusCode::OK);
    assert_eq!(icon.headers()["content-type"], "image/svg+xml");

    let again = app
        .client
        .get(app.url("/static/berth.css"))
        .header("if-none-match", etag)
        .send()
        .await
        .expect("GET");
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(
        app.get("/static/nothing.css").await.status(),
        StatusCode::NOT_FOUND
    );
    app.stop().await;
}

#[tokio::test]
async fn static_dir_overrides_the_built_in_files_for_development() {
    let dir = tempfile::tempdir().expect("a temp dir");
    std::fs::write(dir.path().join("berth.css"), "body { color: hotpink }").expect("writing");
    let path = dir.path().to_string_lossy().into_owned();
    let app = TestApp::spawn_with(&["--dev-login", "--static-dir", &path]).await;
    let css = app.get("/static/berth.css").await;
    assert_eq!(css.status(), StatusCode::OK);
    assert!(
        css.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .starts_with("text/css")
    );
    assert_eq!(css.text().await.expect("body"), "body { color: hotpink }");
    assert_eq!(
        app.get("/static/icon.svg").await.status(),
        StatusCode::NOT_FOUND
    );
    app.stop().await;
}

#[tokio::test]
async fn unknown_pages_render_the_404_page_with_a_request_id() {
    let app = TestApp::spawn().await;
    let student = TestPerson::student(&app, "student@purdue.edu").await;
    let response = student.get("/no/such/page").await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let request_id = response.headers()["x-request-id"]
        .to_str()
        .expect("ascii")
        .to_owned();
    let html = response.text().await.expect("body");
    assert!(html.contains("Not Found"), "{html}");
    assert!(html.contains(&request_id), "the page shows the request id");
    app.stop().await;
}

#[tokio::test]
async fn anonymous_visitors_are_sent_to_sign_in_and_come_back() {
    let app = TestApp::spawn().await;
    let response = app.get("/").await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/auth/login?next=%2F");
    let login = app.get("/auth/login").await.text().await.expect("body");
    assert!(login.contains("Dev sign-in"), "the dev sign-in is offered");
    assert!(
        login.contains("anyone can sign in as anyone"),
        "and says so loudly"
    );

    let student = TestPerson::student(&app, "student@purdue.edu").await;
    let home = student.get("/").await;
    assert_eq!(home.status(), StatusCode::OK);
    let html = home.text().await.expect("body");
    assert!(html.contains("Hello, student@purdue.edu"), "{html}");
    assert!(html.contains("Sign out"));
    app.stop().await;
}

#[tokio::test]
async fn migrations_are_applied_to_a_new_database_file() {
    let app = TestApp::spawn().await;
    assert!(app.db_path.exists());
    let tables: Vec<String> =
        sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
            .fetch_all(&app.db)
            .await
            .expect("listing tables");
    for table in ["audit_log", "sessions", "users"] {
        assert!(tables.iter().any(|t| t == table), "{table} in {tables:?}");
    }
    let journal: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&app.db)
        .await
        .expect("pragma");
    assert_eq!(journal, "wal");
    let fk: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
        .fetch_one(&app.db)
        .await
        .expect("pragma");
    assert_eq!(fk, 1);
    app.stop().await;
}

#[tokio::test]
async fn a_flash_message_is_shown_once() {
    let app = TestApp::spawn().await;
    let student = TestPerson::student(&app, "student@purdue.edu").await;
    sqlx::query("UPDATE sessions SET flash_kind = 'success', flash_message = 'Saved the thing.'")
        .execute(&app.db)
        .await
        .expect("leaving a flash");
    app.forget_cached();
    let first = student.html("/").await;
    assert!(first.contains("flash-success"), "{first}");
    assert!(first.contains("Saved the thing."), "{first}");
    let second = student.html("/").await;
    assert!(!second.contains("Saved the thing."), "shown only once");
    app.stop().await;
}
