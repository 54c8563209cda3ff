//! The application: shared state, the router that merges each feature's routes,
//! the middleware stack, and start-up/shutdown.

pub mod assets;
pub mod middleware;

use std::{net::SocketAddr, sync::Arc};

use anyhow::Context;
use axum::{
    Router,
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::get,
};
use tokio::net::TcpListener;

pub use middleware::request_id;

use crate::{
    audit,
    auth::{self, AuthState},
    config::ServeConfig,
    db,
    error::ErrorPage,
    home,
    kube::Kube,
    namespaces::{self, spec::Limits},
};

/// Everything handlers share. Cheap to clone: every field is a handle.
#[derive(Clone)]
pub struct AppState {
    /// The SQLite pool and its memos.
    pub db: crate::db::Db,
    /// The configuration Berth was started with.
    pub config: Arc<ServeConfig>,
    /// Sign-in: provider, session lifetimes, cookie settings.
    pub auth: Arc<AuthState>,
    /// The cluster: impersonating clients and the watch caches.
    pub kube: Kube,
    /// The quota and container defaults a new namespace starts with.
    pub default_limits: Arc<Limits>,
    /// Master keys that seal registry tokens.
    pub keys: Arc<crate::crypto::Keyring>,
    /// The fenced Registry v2 client.
    pub registry: crate::registries::RegistryClient,
    /// Log streams being followed, per person.
    pub follows: Arc<crate::workloads::logs::Follows>,
    /// Shells open in containers, per person.
    pub shells: Arc<crate::workloads::shell::Shells>,
    /// The admin namespace list's orders, kept between views.
    pub namespace_orders: Arc<crate::namespaces::usage::Orders>,
}

/// The whole HTTP application: every feature's routes, static files, health
/// checks and the middleware stack.
pub fn router(state: AppState) -> Router {
    let static_files = assets::router(state.config.static_dir.as_deref());

    let pages = Router::new()
        .merge(home::router())
        .merge(auth::router())
        .merge(namespaces::router())
        .merge(audit::router())
        .merge(crate::registries::router())
        .merge(crate::workloads::deploy_router())
        .merge(crate::workloads::pages_router())
        .merge(crate::kubeconfig::router())
        .merge(crate::courses::router())
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .nest_service("/static", static_files)
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::access::enforce,
        ));

    middleware::stack(pages.with_state(state))
}

/// The process is up.
async fn healthz() -> &'static str {
    "ok"
}

/// Berth can serve requests: the database answers and the cluster caches
/// have their first full list (without them pages would show nothing).
async fn readyz(State(state): State<AppState>) -> Response {
    if !db::ping(&state.db).await {
        (StatusCode::SERVICE_UNAVAILABLE, "database unavailable").into_response()
    } else if !state.kube.is_connected() {
        (StatusCode::SERVICE_UNAVAILABLE, "no cluster configured").into_response()
    } else if !state.kube.is_ready() {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "cluster caches not synced yet",
        )
            .into_response()
    } else {
        "ready".into_response()
    }
}

async fn not_found() -> Response {
    ErrorPage::response(
        StatusCode::NOT_FOUND,
        "There is no page at this address. Check the link, or start again from the home page."
            .to_owned(),
    )
}

/// A bound, ready-to-run Berth. Tests build it on port 0 and read the port back.
pub struct Application {
    listener: TcpListener,
    /// The metrics listener, when `--metrics-addr` is set.
    metrics: Option<TcpListener>,
    /// What the metrics listener reads cache sizes from.
    metrics_kube: Kube,
    router: Router,
    /// The database, for tests that inspect what a request stored.
    pub db: crate::db::Db,
}

impl Application {
    /// Opens the database, applies migrations and binds the listener.
    pub async fn build(config: ServeConfig) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("listening on {}", config.listen))?;
        Self::build_on(config, listener).await
    }

    /// Like [`Application::build`], on a listener the caller bound (tests bind
    /// port 0 first, so they can name the public URL before Berth starts).
    pub async fn build_on(config: ServeConfig, listener: TcpListener) -> anyhow::Result<Self> {
        // Configuration errors first, so a bad flag changes nothing on disk.
        let auth = AuthState::from_config(&config, listener.local_addr()?)?;
        let metrics = match config.metrics_addr {
            Some(address) => Some(crate::metrics::bind(address).await?),
            None => None,
        };
        let default_limits = Limits::from_flag(&config.kube.default_quota)
            .map_err(|e| anyhow::anyhow!("--default-quota: {e}"))?;
        let db = db::Db::new(db::connect(&config.database).await?);
        let (keys, registry) = crate::registries::prepare(&config, &db).await?;
        auth::session::spawn_cleanup(db.clone(), auth.lifetimes);
        audit::spawn_retention(db.pool().clone(), config.kube.audit_retention_days);
        let kube = Kube::connect(&config.kube).await;
        let state = AppState {
            db: db.clone(),
            config: Arc::new(config),
            auth,
            kube,
            default_limits: Arc::new(default_limits),
            keys,
            registry,
            follows: Arc::default(),
            namespace_orders: Arc::default(),
            shells: Arc::default(),
        };
        crate::courses::ops::spawn_sweep(state.clone(), state.config.courses.course_sweep_secs);
        Ok(Self {
            listener,
            metrics,
            metrics_kube: state.kube.clone(),
            router: router(state),
            db,
        })
    }

    /// The address actually bound (the real port when configured with port 0).
    pub fn local_addr(&self) -> anyhow::Result<SocketAddr> {
        Ok(self.listener.local_addr()?)
    }

    /// The address the metrics listener bound, if there is one.
    pub fn metrics_addr(&self) -> anyhow::Result<Option<SocketAddr>> {
        Ok(match &self.metrics {
            Some(listener) => Some(listener.local_addr()?),
            None => None,
        })
    }

    /// Serves until `shutdown` completes, then finishes in-flight requests.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        // The metrics listener lives as long as the app's: it stops (and
        // drops its port) when serving ends.
        let metrics = self.metrics.map(|listener| {
            tokio::spawn(crate::metrics::serve(
                listener,
                self.metrics_kube,
                std::future::pending(),
            ))
        });
        // With the peer address: sign-in starts are limited per client.
        let served = axum::serve(
            self.listener,
            self.router
                .into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown)
        .await
        .context("serving HTTP");
        if let Some(metrics) = metrics {
            metrics.abort();
        }
        served?;
        self.db.close().await;
        Ok(())
    }
}

/// `berth serve`: build, run until SIGTERM or Ctrl-C.
pub async fn serve(config: ServeConfig) -> anyhow::Result<()> {
    let app = Application::build(config).await?;
    tracing::info!(address = %app.local_addr()?, "Berth is listening");
    if let Some(address) = app.metrics_addr()? {
        tracing::info!(%address, "metrics are served at /metrics");
    }
    app.run_until(shutdown_signal()).await?;
    tracing::info!("Berth stopped");
    Ok(())
}

/// Completes on Ctrl-C or SIGTERM (what Kubernetes sends before killing a pod).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::warn!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down, finishing requests in flight");
}
