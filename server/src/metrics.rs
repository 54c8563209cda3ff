//! Prometheus metrics, served in the text exposition format on their own
//! listener (`BERTH_METRICS_ADDR`), never on the app's: the numbers say who
//! uses Berth how often, which is for the operators' scraper, not the campus.
//!
//! A small hand-written registry rather than a crate: Berth has a handful of
//! series with label values from a closed set (route templates, status codes,
//! audited actions), and the exposition format for counters, gauges and one
//! histogram is a few lines. The registry is process-wide (like every
//! Prometheus client's default registry) so the audit log and the middleware
//! can count without every caller passing a handle.

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    net::SocketAddr,
    sync::{Mutex, MutexGuard, OnceLock, PoisonError},
    time::{Duration, Instant},
};

use anyhow::Context;
use axum::{
    Router,
    extract::{MatchedPath, Request, State},
    http::{HeaderValue, header},
    middleware::Next,
    response::{IntoResponse, Response},
    routing::get,
};
use tokio::net::TcpListener;

use crate::{audit::Outcome, kube::Kube};

/// Upper bounds (seconds) of the request latency histogram.
pub const LATENCY_BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The route label of a request no route matched (404s of made-up paths
/// would otherwise add a series per path).
pub const UNMATCHED: &str = "unmatched";

#[derive(Debug, Default)]
struct Histogram {
    /// Counts per bucket (not cumulative; summed when written).
    buckets: [u64; LATENCY_BUCKETS.len()],
    count: u64,
    sum: f64,
}

#[derive(Debug, Default)]
struct Registry {
    /// (method, route, status) → requests.
    requests: BTreeMap<(String, String, u16), u64>,
    /// (method, route) → latency.
    latency: BTreeMap<(String, String), Histogram>,
    /// outcome → sign-ins.
    sign_ins: BTreeMap<&'static str, u64>,
    /// (action, outcome) → deploys and updates applied.
    applies: BTreeMap<(String, &'static str), u64>,
    /// Shells open now.
    open_shells: i64,
}

fn registry() -> MutexGuard<'static, Registry> {
    static REGISTRY: OnceLock<Mutex<Registry>> = OnceLock::new();
    REGISTRY
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
}

/// Counts one answered request by its route template and status.
pub fn observe_request(method: &str, route: &str, status: u16, latency: Duration) {
    let mut registry = registry();
    *registry
        .requests
        .entry((method.to_owned(), route.to_owned(), status))
        .or_default() += 1;
    let histogram = registry
        .latency
        .entry((method.to_owned(), route.to_owned()))
        .or_default();
    let seconds = latency.as_secs_f64();
    if let Some(bucket) = LATENCY_BUCKETS.iter().position(|bound| seconds <= *bound) {
        histogram.buckets[bucket] += 1;
    }
    histogram.count += 1;
    histogram.sum += seconds;
}

fn outcome_label(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Ok => "succeeded",
        Outcome::Denied => "refused",
        Outcome::Failed => "failed",
    }
}

/// Counts an audited action that has a metric: sign-ins, and deploys and
/// updates (the apply outcomes). Called by [`crate::audit::record`], so every
/// place that audits is counted and none can forget to.
pub fn observe_audited(action: &str, outcome: Outcome) {
    let outcome = outcome_label(outcome);
    let mut registry = registry();
    match action {
        "sign_in" => *registry.sign_ins.entry(outcome).or_default() += 1,
        "workload.deploy" | "workload.update" => {
            *registry
                .applies
                .entry((action.to_owned(), outcome))
                .or_default() += 1;
        }
        _ => {}
    }
}

/// One more (or, negative, one fewer) shell open.
pub fn add_open_shells(delta: i64) {
    registry().open_shells += delta;
}

/// Middleware: times every request and counts it by route template (the
/// matched route, never the raw path, so the number of series is bounded by
/// the routes Berth has) and status.
pub async fn track(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or(UNMATCHED, MatchedPath::as_str)
        .to_owned();
    let method = request.method().as_str().to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    observe_request(
        &method,
        &route,
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

/// Escapes a label value for the text format.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The sizes of the watch caches: (cache name, objects held).
fn cache_sizes(kube: &Kube) -> Vec<(&'static str, usize)> {
    let Ok(caches) = kube.caches() else {
        return Vec::new();
    };
    caches.sizes().to_vec()
}

/// Everything, in the Prometheus text exposition format (version 0.0.4).
pub fn render(kube: &Kube) -> String {
    let mut out = String::new();
    {
        let registry = registry();
        out.push_str("# HELP berth_http_requests_total HTTP requests answered, by route template and status.\n");
        out.push_str("# TYPE berth_http_requests_total counter\n");
        for ((method, route, status), count) in &registry.requests {
            let _ = writeln!(
                out,
                "berth_http_requests_total{{method=\"{}\",route=\"{}\",status=\"{status}\"}} {count}",
                label(method),
                label(route)
            );
        }
        out.push_str("# HELP berth_http_request_duration_seconds Time to answer an HTTP request, by route template.\n");
        out.push_str("# TYPE berth_http_request_duration_seconds histogram\n");
        for ((method, route), histogram) in &registry.latency {
            let labels = format!("method=\"{}\",route=\"{}\"", label(method), label(route));
            let mut cumulative = 0;
            for (bound, count) in LATENCY_BUCKETS.iter().zip(histogram.buckets) {
                cumulative += count;
                let _ = writeln!(
                    out,
                    "berth_http_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {cumulative}"
                );
            }
            let _ = writeln!(
                out,
                "berth_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                histogram.count
            );
            let _ = writeln!(
                out,
                "berth_http_request_duration_seconds_sum{{{labels}}} {}",
                histogram.sum
            );
            let _ = writeln!(
                out,
                "berth_http_request_duration_seconds_count{{{labels}}} {}",
                histogram.count
            );
        }
        out.push_str("# HELP berth_sign_ins_total Sign-ins, by outcome.\n");
        out.push_str("# TYPE berth_sign_ins_total counter\n");
        for (outcome, count) in &registry.sign_ins {
            let _ = writeln!(out, "berth_sign_ins_total{{outcome=\"{outcome}\"}} {count}");
        }
        out.push_str(
            "# HELP berth_applies_total Workloads deployed or updated, by action and outcome.\n",
        );
        out.push_str("# TYPE berth_applies_total counter\n");
        for ((action, outcome), count) in &registry.applies {
            let _ = writeln!(
                out,
                "berth_applies_total{{action=\"{}\",outcome=\"{outcome}\"}} {count}",
                label(action)
            );
        }
        out.push_str("# HELP berth_open_shells Shells in containers open now.\n");
        out.push_str("# TYPE berth_open_shells gauge\n");
        let _ = writeln!(out, "berth_open_shells {}", registry.open_shells);
    }
    out.push_str("# HELP berth_cache_objects Objects held by each watch cache.\n");
    out.push_str("# TYPE berth_cache_objects gauge\n");
    for (cache, size) in cache_sizes(kube) {
        let _ = writeln!(out, "berth_cache_objects{{cache=\"{cache}\"}} {size}");
    }
    out
}

async fn scrape(State(kube): State<Kube>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        render(&kube),
    )
        .into_response()
}

/// The metrics listener's router: `/metrics` and nothing else.
pub fn router(kube: Kube) -> Router {
    Router::new()
        .route("/metrics", get(scrape))
        .with_state(kube)
}

/// Binds the metrics listener.
pub async fn bind(address: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(address)
        .await
        .with_context(|| format!("listening for metrics on {address}"))
}

/// Serves `/metrics` on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    kube: Kube,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    if let Err(error) = axum::serve(listener, router(kube))
        .with_graceful_shutdown(shutdown)
        .await
    {
        tracing::error!(%error, "the metrics listener failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_format_has_cumulative_buckets_and_escaped_labels() {
        let route = "/test/{weird\"route}";
        observe_request("GET", route, 200, Duration::from_millis(3));
        observe_request("GET", route, 200, Duration::from_millis(300));
        observe_request("GET", route, 404, Duration::from_secs(60));
        let text = render(&Kube::unavailable("none"));
        let labels = "method=\"GET\",route=\"/test/{weird\\\"route}\"";
        assert!(
            text.contains(&format!(
                "berth_http_requests_total{{{labels},status=\"200\"}} 2\n"
            )),
            "{text}"
        );
        assert!(text.contains(&format!(
            "berth_http_request_duration_seconds_bucket{{{labels},le=\"0.005\"}} 1\n"
        )));
        assert!(text.contains(&format!(
            "berth_http_request_duration_seconds_bucket{{{labels},le=\"0.5\"}} 2\n"
        )));
        assert!(text.contains(&format!(
            "berth_http_request_duration_seconds_bucket{{{labels},le=\"10\"}} 2\n"
        )));
        assert!(text.contains(&format!(
            "berth_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} 3\n"
        )));
        assert!(text.contains(&format!(
            "berth_http_request_duration_seconds_count{{{labels}}} 3\n"
        )));
    }
}
