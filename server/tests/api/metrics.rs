//! Prometheus metrics on their own listener: requests by route template and
//! status, latency, sign-ins, apply outcomes and cache sizes change as Berth
//! is used, and the app's own listener does not serve them.
//!
//! One test in this binary: the registry is process-wide, so a second test
//! running beside it would move the same counters.

use crate::helpers::{TestApp, unique};
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
    let app = TestApp::spawn_in_cluster(&["--metrics-addr", "127.0.0.1:0"]).await;
    let metrics = app.metrics_addr.expect("a metrics address");
    assert_ne!(metrics.port(), app.addr.port());
    let before = scrape(&app).await;

    // A namespace made by an admin; a person with a membership row but no
    // RoleBinding (a bug in Berth's check): the apiserver refuses the deploy.
    app.sign_in_dev("prof@purdue.edu", true).await;
    let ns = unique("t-metrics");
    let created = app
        .submit(
            "/admin/namespaces",
            &[
                ("name", &ns),
                ("description", "metrics test"),
                ("requests_cpu", "1"),
                ("requests_memory", "1Gi"),
                ("pods", "5"),
                ("services_loadbalancers", "0"),
                ("persistentvolumeclaims", "0"),
                ("requests_storage", "1Gi"),
                ("default_request_cpu", "100m"),
                ("default_request_memory", "64Mi"),
                ("default_limit_cpu", "500m"),
                ("default_limit_memory", "256Mi"),
            ],
        )
        .await;
    assert_eq!(created.status(), StatusCode::SEE_OTHER);
    sqlx::query("INSERT INTO memberships (namespace, email, role, added_by, added_at) VALUES (?, 'eve@purdue.edu', 'member', 'test', 0)")
        .bind(&ns)
        .execute(&app.db)
        .await
        .expect("membership row");
    let eve = app.browser_for("eve@purdue.edu", false).await;
    let refused = app
        .submit_as(
            &eve,
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
    let outsider = crate::helpers::browser();
    let denied = crate::helpers::post_form(
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
        let response = app.get(&path).await;
        assert!(response.status().is_success() || response.status().is_client_error());
    }
    let own = app.get(&format!("/namespaces/{ns}/workloads")).await;
    assert_eq!(own.status(), StatusCode::OK);

    // The app's listener does not serve metrics: it is an unknown page there.
    let on_app = app.get("/metrics").await;
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
