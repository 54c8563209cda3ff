//! Prometheus metrics on their own listener: requests by route template and
//! status, latency, sign-ins, apply outcomes and cache sizes change as Berth
//! is used, and the app's own listener does not serve them.
//!
//! The registry is process-wide, so a Berth of another test running beside
//! this one would move the same counters: this test's Berth runs alone
//! (`helpers::alone`).

use crate::helpers::{TestApp, TestPerson, alone, browser, post_form, unique};
use reqwest::StatusCode;

/// Scrapes the metrics listener; returns its text.
async fn scrape(app: &TestApp) -> String {
    let address = app.metrics_addr.expect("started with --metrics-addr");
    let response = reqwest::get(format!("http://{address}/metrics"))
        .await
        .expect("the metrics listener answers");
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    response.text().await.expect("metrics body")
}

/// The value of the series written exactly as `series` (name and labels), 0
/// when absent.
fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map_or(0.0, |v| v.parse().expect("a number"))
}

#[tokio::test]
async fn metrics_count_requests_sign_ins_and_applies_on_their_own_listener_only() {
    let app =
        TestApp::spawn_in_cluster_alone(&["--metrics-addr", "127.0.0.1:0"], alone().await).await;
    let metrics = app.metrics_addr.expect("a metrics address");
    assert_ne!(metrics.port(), app.addr.port());
    let before = scrape(&app).await;

    // A namespace made by an admin; a person with a membership row but no
    // RoleBinding (a bug in Berth's check): the apiserver refuses the deploy.
    let prof = TestPerson::admin(&app, "prof@purdue.edu").await;
    let ns = unique("t-metrics");
    prof.create_namespace(
        &ns,
        &[
            ("requests_cpu", "1"),
            ("requests_memory", "1Gi"),
            ("pods", "5"),
            ("services_loadbalancers", "0"),
            ("persistentvolumeclaims", "0"),
            ("requests_storage", "1Gi"),
        ],
    )
    .await;
    sqlx::query("INSERT INTO memberships (namespace, email, role, added_by, added_at) VALUES (?, 'eve@purdue.edu', 'member', 'test', 0)")
        .bind(&ns)
        .execute(&app.db)
        .await
        .expect("membership row");
    app.forget_cached();
    let eve = TestPerson::student(&app, "eve@purdue.edu").await;
    let refused = eve
        .submit(
            &format!("/namespaces/{ns}/workloads"),
            &[
                ("name", "counted"),
                ("image_source", "public"),
                ("image", "quay.io/example/web:1.0"),
                ("replicas", "1"),
                ("exposure", "none"),
                ("volume", "none"),
            ],
        )
        .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);

    // A sign-in refused for its domain.
    let outsider = browser();
    let denied = post_form(
        &outsider,
        &app.url("/auth/dev"),
        &[("email", "mallory@elsewhere.example"), ("next", "/")],
    )
    .await;
    assert_eq!(denied.status(), StatusCode::FORBIDDEN);

    // Pages by route template: three views of the workload list with two
    // different namespace names are one series.
    for path in [
        format!("/namespaces/{ns}/workloads"),
        format!("/namespaces/{ns}/workloads"),
        "/namespaces/t-metrics-nowhere/workloads".to_owned(),
    ] {
        let response = prof.get(&path).await;
        assert!(response.status().is_success() || response.status().is_client_error());
    }
    let own = prof.get(&format!("/namespaces/{ns}/workloads")).await;
    assert_eq!(own.status(), StatusCode::OK);

    // The app's listener does not serve metrics: it is an unknown page there.
    let on_app = prof.get("/metrics").await;
    assert_eq!(on_app.status(), StatusCode::NOT_FOUND);
    let on_app = on_app.text().await.expect("body");
    assert!(!on_app.contains("berth_http_requests_total"), "{on_app}");

    let after = scrape(&app).await;
    let delta = |series: &str| value(&after, series) - value(&before, series);

    let list = "berth_http_requests_total{method=\"GET\",route=\"/namespaces/{ns}/workloads\"";
    // Two views before and one after the loop as the admin, status 200.
    assert!(delta(&format!("{list},status=\"200\"}}")) >= 3.0, "{after}");
    assert!(
        !after.contains("t-metrics-nowhere"),
        "raw paths never become labels"
    );
    assert!(!after.contains(&ns), "raw paths never become labels");
    assert_eq!(
        delta(
            "berth_http_requests_total{method=\"POST\",route=\"/namespaces/{ns}/workloads\",status=\"403\"}"
        ),
        1.0,
        "{after}"
    );
    assert_eq!(
        delta("berth_http_requests_total{method=\"GET\",route=\"unmatched\",status=\"404\"}"),
        1.0,
        "/metrics on the app listener is counted as an unmatched 404: {after}"
    );
    assert!(
        delta(
            "berth_http_request_duration_seconds_count{method=\"GET\",route=\"/namespaces/{ns}/workloads\"}"
        ) >= 4.0,
        "{after}"
    );
    assert!(
        value(
            &after,
            "berth_http_request_duration_seconds_bucket{method=\"GET\",route=\"/namespaces/{ns}/workloads\",le=\"+Inf\"}"
        ) >= 4.0
    );
    // prof and eve signed in; mallory was refused.
    assert_eq!(
        delta("berth_sign_ins_total{outcome=\"succeeded\"}"),
        2.0,
        "{after}"
    );
    assert_eq!(
        delta("berth_sign_ins_total{outcome=\"refused\"}"),
        1.0,
        "{after}"
    );
    assert_eq!(
        delta("berth_applies_total{action=\"workload.deploy\",outcome=\"refused\"}"),
        1.0,
        "{after}"
    );
    // The caches hold at least the namespace just made.
    assert!(
        value(&after, "berth_cache_objects{cache=\"namespaces\"}") >= 1.0,
        "{after}"
    );
    assert!(value(&after, "berth_cache_objects{cache=\"pods\"}") >= 0.0);
    assert!(after.contains("# TYPE berth_open_shells gauge"), "{after}");
    app.stop().await;
}
