//! Command line and environment configuration (`berth --help` lists it all).
//!
//! Every option has a `BERTH_*` environment variable so the same binary can be
//! configured by flags on a laptop and by a ConfigMap in the cluster.

use std::{net::SocketAddr, path::PathBuf};

use clap::{Args, Parser, Subcommand, ValueEnum};
use secrecy::SecretString;
use url::Url;

/// Berth: deploy and expose container images on a campus Kubernetes cluster.
#[derive(Debug, Parser)]
#[command(name = "berth", version, about, long_about = None)]
pub struct Cli {
    /// Log format: human-readable text or one JSON object per line.
    #[arg(long, env = "BERTH_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,

    #[command(subcommand)]
    pub command: Command,
}

/// What `berth` should do.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the web portal.
    Serve(Box<ServeConfig>),
    /// Apply database migrations and exit.
    Migrate(DatabaseConfig),
    /// Re-seal every saved secret under the active master key, in one transaction.
    RotateKeys(crate::crypto::RotateKeysConfig),
    /// Once after upgrading: give every Berth namespace its admins' RoleBinding
    /// and move membership bindings to the people's ServiceAccount names.
    Rebind(Box<crate::namespaces::rebind::RebindConfig>),
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable, for a terminal.
    Text,
    /// One JSON object per line, for a log collector.
    Json,
}

/// Where the SQLite database lives.
#[derive(Debug, Clone, Args)]
pub struct DatabaseConfig {
    /// SQLite database file; its folder is created if missing.
    #[arg(
        long = "database",
        env = "BERTH_DATABASE",
        default_value = "./data/berth.db"
    )]
    pub path: PathBuf,
}

/// Everything `berth serve` needs.
#[derive(Debug, Clone, Args)]
pub struct ServeConfig {
    /// Address and port to listen on.
    #[arg(long, env = "BERTH_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    #[command(flatten)]
    pub database: DatabaseConfig,

    /// Address and port of a second listener that serves only Prometheus
    /// metrics at /metrics (e.g. 0.0.0.0:9090). Off unless set: the app's
    /// own listener never serves them.
    #[arg(long, env = "BERTH_METRICS_ADDR")]
    pub metrics_addr: Option<SocketAddr>,

    /// Serve /static/ from this folder instead of the copy built into the
    /// binary (for development: edits to static/ show without a rebuild).
    #[arg(long, env = "BERTH_STATIC_DIR")]
    pub static_dir: Option<PathBuf>,

    /// The URL people use to reach Berth (scheme, host, port; no path). Cookies
    /// are marked Secure when it is https. Default: http:// plus the listen address.
    #[arg(long, env = "BERTH_PUBLIC_URL")]
    pub public_url: Option<Url>,

    #[command(flatten)]
    pub auth: AuthConfig,

    #[command(flatten)]
    pub kube: KubeConfig,

    #[command(flatten)]
    pub registry: crate::registries::RegistryConfig,

    #[command(flatten)]
    pub keys: crate::crypto::KeyConfig,

    #[command(flatten)]
    pub expose: crate::workloads::ExposeConfig,

    #[command(flatten)]
    pub workloads: crate::workloads::WorkloadConfig,

    #[command(flatten)]
    pub access: crate::kubeconfig::AccessConfig,

    #[command(flatten)]
    pub courses: crate::courses::CourseConfig,
}

/// Sign-in: the campus OpenID Connect provider, who may enter, who is an admin.
#[derive(Debug, Clone, Args)]
pub struct AuthConfig {
    /// Issuer URL of the OpenID Connect provider (its discovery document lives
    /// under /.well-known/openid-configuration).
    #[arg(long, env = "BERTH_OIDC_ISSUER")]
    pub oidc_issuer: Option<Url>,

    /// Client id Berth is registered under at the provider.
    #[arg(long, env = "BERTH_OIDC_CLIENT_ID", default_value = "berth")]
    pub oidc_client_id: String,

    /// Client secret (prefer --oidc-client-secret-file; never logged).
    #[arg(long, env = "BERTH_OIDC_CLIENT_SECRET", hide_env_values = true)]
    pub oidc_client_secret: Option<SecretString>,

    /// File holding the client secret (e.g. a mounted Kubernetes Secret).
    #[arg(long, env = "BERTH_OIDC_CLIENT_SECRET_FILE")]
    pub oidc_client_secret_file: Option<PathBuf>,

    /// Redirect URL registered at the provider. Default: <public URL>/auth/callback.
    #[arg(long, env = "BERTH_OIDC_REDIRECT_URL")]
    pub oidc_redirect_url: Option<Url>,

    /// Email domains allowed to sign in, comma-separated; `*` allows every domain.
    #[arg(
        long,
        env = "BERTH_ALLOWED_EMAIL_DOMAINS",
        value_delimiter = ',',
        default_value = "purdue.edu"
    )]
    pub allowed_email_domains: Vec<String>,

    /// Emails of admins, comma-separated.
    #[arg(long, env = "BERTH_ADMIN_EMAILS", value_delimiter = ',')]
    pub admin_emails: Vec<String>,

    /// ID-token claim that lists the person's groups (e.g. `groups`); with
    /// --admin-group-value, members of that group are admins.
    #[arg(long, env = "BERTH_ADMIN_GROUP_CLAIM", requires = "admin_group_value")]
    pub admin_group_claim: Option<String>,

    /// Group (in --admin-group-claim) whose members are admins.
    #[arg(long, env = "BERTH_ADMIN_GROUP_VALUE", requires = "admin_group_claim")]
    pub admin_group_value: Option<String>,

    /// Offer a local sign-in that asks only for an email. For trying Berth on a
    /// laptop: refused unless listening on a loopback address.
    #[arg(long, env = "BERTH_DEV_LOGIN")]
    pub dev_login: bool,

    /// A session ends after this many seconds without a request.
    #[arg(long, env = "BERTH_SESSION_IDLE_SECS", default_value_t = 8 * 3600)]
    pub session_idle_secs: i64,

    /// A session ends this many seconds after sign-in, whatever the activity.
    #[arg(long, env = "BERTH_SESSION_LIFETIME_SECS", default_value_t = 7 * 24 * 3600)]
    pub session_lifetime_secs: i64,

    /// Sign-ins one client address may start a minute (each stores a pending
    /// sign-in). Behind a proxy Berth sees only the proxy's address, so the
    /// limit is shared: raise it for a class signing in at once.
    #[arg(long, env = "BERTH_SIGN_IN_STARTS_PER_MINUTE", default_value_t = 20)]
    pub sign_in_starts_per_minute: u32,
}

impl AuthConfig {
    /// Whether `email` belongs to an allowed domain.
    pub fn email_allowed(&self, email: &str) -> bool {
        let Some((_, domain)) = email.rsplit_once('@') else {
            return false;
        };
        self.allowed_email_domains
            .iter()
            .map(|d| d.trim())
            .any(|allowed| allowed == "*" || allowed.eq_ignore_ascii_case(domain))
    }

    /// Whether `email` is an admin by configuration.
    pub fn is_admin_email(&self, email: &str) -> bool {
        self.admin_emails
            .iter()
            .any(|admin| admin.trim().eq_ignore_ascii_case(email))
    }
}

/// The cluster: how to reach it, and what new namespaces get by default.
#[derive(Debug, Clone, Args)]
pub struct KubeConfig {
    /// Kubeconfig file for reaching the cluster. Default: $KUBECONFIG or
    /// ~/.kube/config, else the in-cluster ServiceAccount. Berth starts without
    /// any; pages that need the cluster then say so and /readyz is not ready.
    #[arg(long, env = "BERTH_KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,

    /// Give each person a personal namespace (with the default quota) at their
    /// first sign-in.
    #[arg(long, env = "BERTH_SELF_SERVICE_NAMESPACES")]
    pub self_service_namespaces: bool,

    /// Quota and container defaults a new namespace form starts with (and a
    /// personal namespace gets), as `key=value` pairs separated by commas. Keys:
    /// requests.cpu, requests.memory, limits.cpu, limits.memory, pods,
    /// services.loadbalancers, persistentvolumeclaims, requests.storage,
    /// default.cpu, default.memory, defaultRequest.cpu, defaultRequest.memory.
    #[arg(
        long,
        env = "BERTH_DEFAULT_QUOTA",
        default_value = "requests.cpu=2,requests.memory=4Gi,limits.cpu=4,limits.memory=8Gi,\
pods=20,services.loadbalancers=2,persistentvolumeclaims=5,requests.storage=20Gi,\
default.cpu=500m,default.memory=512Mi,defaultRequest.cpu=100m,defaultRequest.memory=256Mi"
    )]
    pub default_quota: String,

    /// Audit rows older than this many days are deleted (checked hourly).
    #[arg(long, env = "BERTH_AUDIT_RETENTION_DAYS", default_value_t = 365)]
    pub audit_retention_days: u32,
}
