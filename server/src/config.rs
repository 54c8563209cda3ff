//! Command line and environment configuration (`berth --help` lists it all).
//!
//! Every option has a `BERTH_*` environment variable so the same binary can be
//! configured by flags on a laptop and by a ConfigMap in the cluster.

use std::{net::SocketAddr, path::PathBuf};

use clap::{Args, Parser, Subcommand, ValueEnum};

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
    Serve(ServeConfig),
    /// Apply database migrations and exit.
    Migrate(DatabaseConfig),
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

    /// Folder with the stylesheet and icons served under /static/.
    #[arg(long, env = "BERTH_STATIC_DIR", default_value_os_t = default_static_dir())]
    pub static_dir: PathBuf,
}

/// The repository's `static/` folder when running from a checkout, else `./static`.
fn default_static_dir() -> PathBuf {
    let in_checkout = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../static"));
    if in_checkout.is_dir() {
        in_checkout
    } else {
        PathBuf::from("static")
    }
}
