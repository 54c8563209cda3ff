//! Course rosters: an admin (or, for membership changes, the owner of every
//! namespace of a course) uploads a CSV of team, email and role; Berth shows
//! a dry run and applies it through the namespace feature's own operations,
//! as the person, each step audited. At the course's end a background sweep
//! scales its workloads to zero with a notice, and after a grace period
//! deletes them (their volumes only if the course says so).
//!
//! [`spec`] turns the form into a validated course, [`plan`] diffs it with
//! what exists, [`ops`] applies it and runs the sweep, [`pages`] are the
//! handlers.

pub mod ops;
pub mod pages;
pub mod plan;
pub mod spec;

use axum::{
    Router,
    routing::{get, post},
};
use clap::Args;

use crate::app::AppState;

/// How often the end-of-course sweep runs.
#[derive(Debug, Clone, Args)]
pub struct CourseConfig {
    /// Seconds between runs of the sweep that scales ended courses to zero
    /// and deletes their workloads after the grace period.
    #[arg(long, env = "BERTH_COURSE_SWEEP_SECS", default_value_t = 300)]
    pub course_sweep_secs: u64,
}

/// Routes of this feature.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/courses", get(pages::index))
        .route("/courses/new", get(pages::new_form))
        .route("/courses/preview", post(pages::preview))
        .route("/courses/apply", post(pages::apply))
        .route("/courses/{name}", get(pages::show))
}
