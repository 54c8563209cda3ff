//! A workload's pod logs as plain text: the last N lines of each pod, or one
//! pod's log followed as a streamed response (works with JavaScript off; a
//! browser shows it as it arrives).
//!
//! Logs are not cached: they are read through the impersonating client, so
//! `pods/log` must be allowed to the person by RBAC (`berth-member` has it).

use axum::{
    body::Body,
    extract::{Path, Query, State},
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use futures::{AsyncBufReadExt, StreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::{Api, api::LogParams};
use serde::Deserialize;

use super::lookup::{find_workload, pods_of};
use crate::{
    app::AppState,
    auth::NamespaceMember,
    error::{AppError, AppResult},
    kube::{KubeError, cached},
};

/// Lines shown when the query does not say.
pub const DEFAULT_LINES: i64 = 100;
/// Most lines one request may ask for.
pub const MAX_LINES: i64 = 5000;
/// How long one follow response lasts. An open stream holds a connection to
/// the apiserver and delays Berth's graceful shutdown, so it is not endless.
pub const MAX_FOLLOW: std::time::Duration = std::time::Duration::from_secs(15 * 60);

/// Most bytes of log one request returns (split between the pods shown;
/// the apiserver stops reading at the limit), so a page of logs is bounded
/// in memory whatever a container writes.
pub const MAX_BYTES: i64 = 2 * 1024 * 1024;
/// Most bytes one follow response passes on before it ends (a line without
/// an end is never buffered past this).
pub const MAX_FOLLOW_BYTES: i64 = 16 * 1024 * 1024;
/// Most log streams one person may follow at once.
pub const MAX_FOLLOWS_PER_PERSON: usize = 3;

/// The log streams being followed, per person.
#[derive(Debug, Default)]
pub struct Follows {
    open: std::sync::Mutex<std::collections::HashMap<String, usize>>,
}

impl Follows {
    fn lock(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, usize>> {
        self.open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A slot for one more stream of `email`, or `None` at the limit.
    pub fn start(self: &std::sync::Arc<Self>, email: &str) -> Option<FollowSlot> {
        let mut open = self.lock();
        let count = open.entry(email.to_owned()).or_insert(0);
        if *count >= MAX_FOLLOWS_PER_PERSON {
            return None;
        }
        *count += 1;
        Some(FollowSlot {
            follows: std::sync::Arc::clone(self),
            email: email.to_owned(),
        })
    }
}

/// One followed stream; dropping it (the stream ended or the browser went
/// away) frees the slot.
#[derive(Debug)]
pub struct FollowSlot {
    follows: std::sync::Arc<Follows>,
    email: String,
}

impl Drop for FollowSlot {
    fn drop(&mut self) {
        let mut open = self.follows.lock();
        if let Some(count) = open.get_mut(&self.email) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.email);
            }
        }
    }
}

/// The query of the logs page.
#[derive(Debug, Default, Deserialize)]
pub struct LogQuery {
    /// How many lines from the end (1–5000).
    lines: Option<String>,
    /// `1` to follow one pod's log as it is written.
    follow: Option<String>,
    /// Which pod (default: all for the last lines, the newest for follow).
    pod: Option<String>,
    /// `1` for the previous container's log: what it wrote before it
    /// crashed or was restarted (`kubectl logs --previous`).
    previous: Option<String>,
}

fn is_on(flag: Option<&str>) -> bool {
    flag.is_some_and(|f| f == "1" || f == "true")
}

/// The log request for one pod's last `lines`, of its current container or
/// (`previous`) the one before it.
pub fn last_lines(pod: &cached::Pod, lines: i64, previous: bool) -> LogParams {
    LogParams {
        tail_lines: Some(lines),
        container: container_of(pod),
        previous,
        ..LogParams::default()
    }
}

/// Parses `lines`: empty means the default; otherwise 1–5000.
pub fn parse_lines(text: Option<&str>) -> Result<i64, String> {
    match text.map(str::trim) {
        None | Some("") => Ok(DEFAULT_LINES),
        Some(text) => match text.parse::<i64>() {
            Ok(n) if (1..=MAX_LINES).contains(&n) => Ok(n),
            _ => Err(format!(
                "lines must be a whole number from 1 to {MAX_LINES}."
            )),
        },
    }
}

fn text(status: StatusCode, body: String) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        )],
        body,
    )
        .into_response()
}

fn refusal(error: &KubeError) -> Response {
    text(error.status(), format!("{error}\n"))
}

/// The container whose log to read: the pod's first (Berth's pods have one).
fn container_of(pod: &cached::Pod) -> Option<String> {
    pod.spec
        .as_ref()
        .and_then(|s| s.containers.first())
        .map(|c| c.name.clone())
}

/// `GET /namespaces/{ns}/workloads/{name}/logs?lines=N[&pod=P]` or `?follow=1`.
pub async fn logs(
    State(state): State<AppState>,
    NamespaceMember {
        user,
        namespace: ns,
    }: NamespaceMember,
    Path((_, name)): Path<(String, String)>,
    Query(query): Query<LogQuery>,
) -> AppResult<Response> {
    let caches = state.kube.caches()?;
    find_workload(caches, &ns, &name)?;
    let lines = match parse_lines(query.lines.as_deref()) {
        Ok(n) => n,
        Err(message) => return Ok(text(StatusCode::UNPROCESSABLE_ENTITY, message)),
    };
    let mut pods = pods_of(caches, &ns, &name);
    if let Some(wanted) = query.pod.as_deref().filter(|p| !p.is_empty()) {
        pods.retain(|p| p.metadata.name == wanted);
        if pods.is_empty() {
            return Err(AppError::NotFound(format!(
                "{name} has no pod called {wanted}."
            )));
        }
    }
    if pods.is_empty() {
        return Ok(text(
            StatusCode::OK,
            format!("{name} has no pods right now, so there are no logs.\n"),
        ));
    }
    let client = state.kube.client_for(&user.identity())?;
    let api: Api<Pod> = Api::namespaced(client, &ns);

    let previous = is_on(query.previous.as_deref());
    // A previous container's log is finished: there is nothing to follow.
    if is_on(query.follow.as_deref()) && !previous {
        // The newest pod: after a restart or a rollout it is the one running.
        let Some(pod) = pods.last() else {
            return Ok(text(StatusCode::OK, String::new()));
        };
        let Some(slot) = state.follows.start(&user.email) else {
            return Ok(text(
                StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "You are following {MAX_FOLLOWS_PER_PERSON} logs already; close one of them first.\n"
                ),
            ));
        };
        let params = LogParams {
            follow: true,
            tail_lines: Some(lines),
            limit_bytes: Some(MAX_FOLLOW_BYTES),
            container: container_of(pod),
            ..LogParams::default()
        };
        let reader = match api.log_stream(&pod.metadata.name, &params).await {
            Ok(reader) => reader,
            Err(error) => return Ok(refusal(&KubeError::from(error))),
        };
        let end = futures::stream::once(async {
            Ok(format!(
                "--- Berth stopped following (the pod stopped, or {} minutes passed); reload to follow again ---\n",
                MAX_FOLLOW.as_secs() / 60
            ))
        });
        let stream = reader
            .lines()
            .map(move |line| {
                // Held as long as the stream is: the slot frees when it ends.
                let _slot = &slot;
                line.map(|l| format!("{l}\n"))
            })
            .take_until(tokio::time::sleep(MAX_FOLLOW))
            .chain(end);
        let mut response = Body::from_stream(stream).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        // Proxies must pass lines on as they come, not buffer the stream.
        headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        return Ok(response);
    }

    let mut body = String::new();
    if previous {
        body.push_str(
            "The previous container of each pod: what it wrote before it crashed or was restarted.\n",
        );
    }
    let many = pods.len() > 1;
    let per_pod = MAX_BYTES / i64::try_from(pods.len()).unwrap_or(i64::MAX).max(1);
    for pod in &pods {
        let params = LogParams {
            limit_bytes: Some(per_pod.max(1)),
            ..last_lines(pod, lines, previous)
        };
        if many || previous {
            body.push_str(&format!("==> pod {} <==\n", pod.metadata.name));
        }
        match api.logs(&pod.metadata.name, &params).await {
            Ok(log) => {
                body.push_str(&log);
                if !log.is_empty() && !log.ends_with('\n') {
                    body.push('\n');
                }
            }
            Err(error) => {
                let error = KubeError::from(error);
                // RBAC refusing is the answer for every pod: say it once.
                if error.is_denied() {
                    return Ok(refusal(&error));
                }
                if previous && matches!(error, KubeError::Api { code: 400, .. }) {
                    body.push_str("(no previous container: this pod has not restarted)\n");
                } else {
                    body.push_str(&format!("(no log: {error})\n"));
                }
            }
        }
    }
    Ok(text(StatusCode::OK, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_are_limited_per_person_and_freed_when_dropped() {
        let follows = std::sync::Arc::new(Follows::default());
        let slots: Vec<_> = (0..MAX_FOLLOWS_PER_PERSON)
            .map(|_| follows.start("a@x.edu"))
            .collect();
        assert!(slots.iter().all(Option::is_some));
        assert!(follows.start("a@x.edu").is_none());
        assert!(follows.start("b@x.edu").is_some());
        drop(slots);
        assert!(follows.start("a@x.edu").is_some());
    }

    #[test]
    fn previous_asks_kubernetes_for_the_container_before_the_restart() {
        let pod: cached::Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web-1"},
            "spec": {"containers": [{"name": "web"}]},
        }))
        .expect("pod");
        let params = last_lines(&pod, 50, true);
        assert!(params.previous);
        assert_eq!(params.tail_lines, Some(50));
        assert_eq!(params.container.as_deref(), Some("web"));
        assert!(!last_lines(&pod, 50, false).previous);
        assert!(is_on(Some("1")) && is_on(Some("true")) && !is_on(Some("0")) && !is_on(None));
    }

    #[test]
    fn lines_default_and_bounds() {
        assert_eq!(parse_lines(None), Ok(DEFAULT_LINES));
        assert_eq!(parse_lines(Some("")), Ok(DEFAULT_LINES));
        assert_eq!(parse_lines(Some("20")), Ok(20));
        for bad in ["0", "-5", "5001", "all"] {
            assert!(parse_lines(Some(bad)).is_err(), "{bad}");
        }
    }
}
