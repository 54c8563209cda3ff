//! Workloads: deploy and expose an image with one form, applied as the user.
//!
//! The form ([`form`]) and the validated domain type it parses into
//! ([`spec`]); the pure builders that turn it into Kubernetes objects
//! ([`build`]); the deploy and edit form ([`deploy`]: its handlers, the plan
//! of what a submit applies, and applying it), with quota and storage checks
//! ([`quota`], [`volumes`]). Finding Berth's workloads in the watch caches
//! ([`lookup`]) and what the templates get from them ([`view`]) serve the
//! thin handlers: the list and detail pages ([`pages`]), logs ([`logs`]), a
//! shell in a container ([`shell`]), what Berth applied ([`applied`]), and
//! scale, restart and delete ([`actions`]). Events are told in plain words by
//! [`events`]. Handler files share only through `lookup` and `view`.

pub mod actions;
pub mod applied;
pub mod build;
pub mod deploy;
pub mod events;
pub mod form;
pub mod logs;
pub mod lookup;
pub mod pages;
pub mod quota;
pub mod shell;
pub mod spec;
pub mod view;
pub mod volumes;

pub use deploy::{ExposeConfig, deploy_router};

use axum::{
    Router,
    handler::Handler,
    routing::{get, post},
};
use clap::Args;

use crate::{app::AppState, auth::audited};

/// How workloads are shown and exposed.
#[derive(Debug, Clone, Args)]
pub struct WorkloadConfig {
    /// DNS domain under which exposed services are named
    /// (`<service>.<namespace>.<domain>`).
    #[arg(
        long,
        env = "BERTH_SERVICE_DOMAIN",
        default_value = "geddes.rcac.purdue.edu"
    )]
    pub service_domain: String,

    /// A shell in a container (the workload page's terminal) is closed after
    /// this many seconds without anything typed.
    #[arg(long, env = "BERTH_SHELL_IDLE_SECS", default_value_t = 15 * 60)]
    pub shell_idle_secs: u64,

    /// Shells one person may have open at once (each holds a connection to
    /// the apiserver and a process in a container).
    #[arg(long, env = "BERTH_SHELLS_PER_PERSON", default_value_t = 3)]
    pub shells_per_person: usize,
}

/// Routes of the workload pages: list, detail, logs, what Berth applied, and
/// scale, restart and delete. (The deploy and edit forms are in their own router.)
pub fn pages_router() -> Router<AppState> {
    Router::new()
        .route("/namespaces/{ns}/workloads", get(pages::list))
        .route("/namespaces/{ns}/workloads/{name}", get(pages::show))
        .route("/namespaces/{ns}/workloads/{name}/logs", get(logs::logs))
        .route("/namespaces/{ns}/workloads/{name}/shell", get(shell::shell))
        .route(
            "/namespaces/{ns}/workloads/{name}/applied.yaml",
            get(applied::download),
        )
        .route(
            "/namespaces/{ns}/workloads/{name}/scale",
            post(actions::scale.layer(audited("workload.scale"))),
        )
        .route(
            "/namespaces/{ns}/workloads/{name}/restart",
            post(actions::restart.layer(audited("workload.restart"))),
        )
        .route(
            "/namespaces/{ns}/workloads/{name}/delete",
            get(actions::delete_form)
                .post(actions::delete_submit.layer(audited("workload.delete"))),
        )
}
