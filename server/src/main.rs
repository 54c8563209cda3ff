//! The `berth` binary: parse the command line, then hand over to the library.

use std::process::ExitCode;

use berth::config::{Cli, Command};
use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    berth::telemetry::init(&cli.log_format);
    let result = match cli.command {
        Command::Serve(serve) => berth::app::serve(*serve).await,
        Command::Migrate(db) => berth::db::migrate_only(&db).await,
        Command::RotateKeys(config) => berth::registries::keys::rotate_keys(&config).await,
        Command::Rebind(config) => berth::namespaces::rebind::run(&config).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // `{:#}` prints the whole context chain on one line, which is what an
            // operator reading a crash-looping pod's log needs.
            tracing::error!("{error:#}");
            ExitCode::FAILURE
        }
    }
}
