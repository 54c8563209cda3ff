//! A shell in a workload's container, in the browser (`kubectl exec -it … sh`).
//!
//! The browser opens a WebSocket to Berth; Berth opens `pods/exec` as the
//! person (the impersonating client), so the apiserver's RBAC decides whether
//! they may, whatever Berth's own check said. Before upgrading, Berth requires
//! the signed-in session (the access middleware) and an `Origin` that is
//! Berth's own: browsers send cookies with a cross-site WebSocket handshake
//! and the same-origin policy does not apply to WebSockets, so without this a
//! page on any site could open a shell as whoever visits it.
//!
//! Each person may hold a few shells at once (`BERTH_SHELLS_PER_PERSON`); a
//! shell without input for `BERTH_SHELL_IDLE_SECS` is closed. Opening and
//! closing are audited (`shell.open`, `shell.close`); what is typed is not.
//!
//! Frames: the browser sends keystrokes as binary frames and the terminal's
//! size as a text frame `{"cols":80,"rows":24}`; Berth sends the terminal's
//! output as binary frames and its own notices (refused, idle, ended) as text.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    time::Duration,
};

use axum::{
    extract::{
        Path, Query, State,
        ws::{Message, WebSocket, WebSocketUpgrade},
    },
    http::HeaderMap,
    response::Response,
};
use futures::{SinkExt, StreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::{
    Api,
    api::{AttachParams, TerminalSize},
};
use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::lookup::{find_workload, pods_of};
use crate::{
    app::AppState,
    audit::{self, Outcome},
    auth::{CurrentUser, NamespaceMember},
    error::{AppError, AppResult},
    kube::{KubeError, cached},
};

/// The command run in the container: bash where the image has it, else sh
/// (busybox and Alpine images have only sh). One exec rather than trying
/// bash and falling back, so a missing bash costs no second round trip.
pub const SHELL: [&str; 3] = [
    "/bin/sh",
    "-c",
    "if [ -x /bin/bash ]; then exec /bin/bash; else exec /bin/sh; fi",
];

/// Largest frame a browser may send (a paste); more is refused by the socket.
const MAX_FRAME: usize = 64 * 1024;

/// The shells open now, per person.
#[derive(Debug, Default)]
pub struct Shells {
    open: Mutex<HashMap<String, usize>>,
}

impl Shells {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, usize>> {
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A slot for one more shell of `email`, or `None` when they hold `cap`.
    pub fn start(self: &Arc<Self>, email: &str, cap: usize) -> Option<ShellSlot> {
        let mut open = self.lock();
        let count = open.entry(email.to_owned()).or_insert(0);
        if *count >= cap {
            return None;
        }
        *count += 1;
        crate::metrics::add_open_shells(1);
        Some(ShellSlot {
            shells: Arc::clone(self),
            email: email.to_owned(),
        })
    }

    /// How many shells `email` holds.
    pub fn open_for(&self, email: &str) -> usize {
        self.lock().get(email).copied().unwrap_or(0)
    }
}

/// One open shell; dropping it (however the shell ended) frees the slot.
#[derive(Debug)]
pub struct ShellSlot {
    shells: Arc<Shells>,
    email: String,
}

impl Drop for ShellSlot {
    fn drop(&mut self) {
        let mut open = self.shells.lock();
        if let Some(count) = open.get_mut(&self.email) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.email);
            }
        }
        crate::metrics::add_open_shells(-1);
    }
}

/// The query of the shell socket.
#[derive(Debug, Default, Deserialize)]
pub struct ShellQuery {
    /// Which pod (default: the newest).
    pod: Option<String>,
}

/// A resize frame from the browser.
#[derive(Debug, Deserialize)]
struct Resize {
    cols: u16,
    rows: u16,
}

/// The container to open the shell in: the pod's first (Berth's pods have one).
fn container_of(pod: &cached::Pod) -> Option<String> {
    pod.spec
        .as_ref()
        .and_then(|s| s.containers.first())
        .map(|c| c.name.clone())
}

/// The `kubectl exec` command that opens the same shell, for the page
/// without JavaScript. Namespace and pod names are DNS labels and the script
/// has no single quote: nothing else to quote.
pub fn kubectl_command(ns: &str, pod: &str) -> String {
    format!(
        "kubectl exec -it -n {ns} {pod} -- {} {} '{}'",
        SHELL[0], SHELL[1], SHELL[2]
    )
}

/// The exec error in words: an upgrade the apiserver refused carries only its
/// status code (kube-rs does not read the body of a failed upgrade).
fn exec_error(error: kube::Error) -> KubeError {
    if let kube::Error::UpgradeConnection(kube::client::UpgradeConnectionError::ProtocolSwitch(
        status,
    )) = &error
    {
        let reason = status
            .canonical_reason()
            .unwrap_or("Refused")
            .replace(' ', "");
        return KubeError::Api {
            code: status.as_u16(),
            reason,
            message: format!("the apiserver answered {status} to opening a shell (pods/exec)"),
        };
    }
    KubeError::from(error)
}

/// `GET /namespaces/{ns}/workloads/{name}/shell[?pod=P]`: the WebSocket.
pub async fn shell(
    State(state): State<AppState>,
    NamespaceMember {
        user,
        namespace: ns,
    }: NamespaceMember,
    Path((_, name)): Path<(String, String)>,
    Query(query): Query<ShellQuery>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> AppResult<Response> {
    if let Some(reason) = state.auth.sites.refuse_websocket(&headers) {
        tracing::warn!(reason, "shell WebSocket from another site refused");
        return Err(AppError::Forbidden(
            "A shell opens only from Berth's own pages.".to_owned(),
        ));
    }
    let caches = state.kube.caches()?;
    find_workload(caches, &ns, &name)?;
    let pods = pods_of(caches, &ns, &name);
    let pod = match query.pod.as_deref().filter(|p| !p.is_empty()) {
        Some(wanted) => pods.iter().find(|p| p.metadata.name == wanted).cloned(),
        None => pods.last().cloned(),
    };
    let Some(pod) = pod else {
        return Err(AppError::NotFound(format!(
            "{name} has no such pod right now, so there is no shell to open."
        )));
    };
    let cap = state.config.workloads.shells_per_person;
    let Some(slot) = state.shells.start(&user.email, cap) else {
        audit::record(
            &state.db,
            audit::Entry {
                actor: &user.email,
                action: "shell.open",
                namespace: Some(&ns),
                target: Some(&pod.metadata.name),
                outcome: Outcome::Denied,
                detail: Some("too many shells open"),
            },
        )
        .await;
        return Err(AppError::TooManyRequests(format!(
            "You have {cap} shells open already; close one of them first."
        )));
    };
    let container = container_of(&pod);
    let pod = pod.metadata.name.clone();
    Ok(upgrade
        .max_message_size(MAX_FRAME)
        .max_frame_size(MAX_FRAME)
        .on_upgrade(move |socket| async move {
            run(socket, state, user, ns, pod, container).await;
            drop(slot);
        }))
}

/// Sends a notice (text frame) to the browser; a browser gone is no error.
async fn notice(socket: &mut futures::stream::SplitSink<WebSocket, Message>, text: &str) {
    let _ = socket.send(Message::Text(text.into())).await;
}

async fn run(
    socket: WebSocket,
    state: AppState,
    user: CurrentUser,
    ns: String,
    pod: String,
    container: Option<String>,
) {
    let (mut to_browser, mut from_browser) = socket.split();
    let opened = async {
        let client = state.kube.client_for(&user.identity())?;
        let api: Api<Pod> = Api::namespaced(client, &ns);
        let mut params = AttachParams::interactive_tty();
        if let Some(container) = &container {
            params = params.container(container);
        }
        api.exec(&pod, SHELL, &params).await.map_err(exec_error)
    };
    let mut process = match opened.await {
        Ok(process) => process,
        Err(error) => {
            audit::Entry::new(&user.email, "shell.open")
                .in_namespace(&ns)
                .on(&pod)
                .record_refusal(&state.db, &error)
                .await;
            notice(
                &mut to_browser,
                &format!("Kubernetes did not open a shell: {error}"),
            )
            .await;
            let _ = to_browser.close().await;
            return;
        }
    };
    audit::record(
        &state.db,
        audit::Entry {
            actor: &user.email,
            action: "shell.open",
            namespace: Some(&ns),
            target: Some(&pod),
            outcome: Outcome::Ok,
            detail: None,
        },
    )
    .await;
    let started = tokio::time::Instant::now();
    let idle = Duration::from_secs(state.config.workloads.shell_idle_secs.max(1));
    let (Some(mut stdin), Some(mut stdout)) = (process.stdin(), process.stdout()) else {
        notice(&mut to_browser, "The shell has no terminal.").await;
        process.abort();
        return;
    };
    let mut resize = process.terminal_size();
    let mut buffer = vec![0_u8; 16 * 1024];
    let mut last_input = tokio::time::Instant::now();
    let reason = loop {
        tokio::select! {
            read = stdout.read(&mut buffer) => match read {
                Ok(0) | Err(_) => break "the shell ended",
                Ok(n) => {
                    let bytes = axum::body::Bytes::copy_from_slice(&buffer[..n]);
                    if to_browser.send(Message::Binary(bytes)).await.is_err() {
                        break "the browser went away";
                    }
                }
            },
            message = from_browser.next() => match message {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => break "the browser closed it",
                Some(Ok(Message::Binary(bytes))) => {
                    last_input = tokio::time::Instant::now();
                    if stdin.write_all(&bytes).await.is_err() {
                        break "the shell ended";
                    }
                }
                Some(Ok(Message::Text(text))) => {
                    last_input = tokio::time::Instant::now();
                    if let (Ok(size), Some(resize)) = (serde_json::from_str::<Resize>(&text), resize.as_mut()) {
                        // A terminal of 0 columns makes some shells divide by zero.
                        let _ = resize.send(TerminalSize { width: size.cols.max(1), height: size.rows.max(1) }).await;
                    }
                }
                Some(Ok(_)) => {}
            },
            () = tokio::time::sleep_until(last_input + idle) => break "idle",
        }
    };
    let said = match reason {
        "idle" => format!(
            "Berth closed this shell: nothing was typed for {} minutes. Reload the page to open another.",
            idle.as_secs().div_ceil(60)
        ),
        "the shell ended" => "The shell ended.".to_owned(),
        _ => String::new(),
    };
    if !said.is_empty() {
        notice(&mut to_browser, &said).await;
    }
    let _ = to_browser.close().await;
    process.abort();
    let detail = format!("{reason} after {} s", started.elapsed().as_secs());
    audit::record(
        &state.db,
        audit::Entry {
            actor: &user.email,
            action: "shell.close",
            namespace: Some(&ns),
            target: Some(&pod),
            outcome: Outcome::Ok,
            detail: Some(&detail),
        },
    )
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shells_are_capped_per_person_and_freed_when_dropped() {
        let shells = Arc::new(Shells::default());
        let held: Vec<_> = (0..2).map(|_| shells.start("a@x.edu", 2)).collect();
        assert!(held.iter().all(Option::is_some));
        assert!(shells.start("a@x.edu", 2).is_none());
        assert!(shells.start("b@x.edu", 2).is_some());
        drop(held);
        assert_eq!(shells.open_for("a@x.edu"), 0);
        assert!(shells.start("a@x.edu", 2).is_some());
    }

    #[test]
    fn the_kubectl_command_names_namespace_and_pod() {
        assert_eq!(
            kubectl_command("team-a", "web-5d9c-x2"),
            "kubectl exec -it -n team-a web-5d9c-x2 -- /bin/sh -c 'if [ -x /bin/bash ]; then exec /bin/bash; else exec /bin/sh; fi'"
        );
    }
}
