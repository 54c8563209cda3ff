//! The home page: what Berth is and what to do next.

use askama::Template;
use axum::{Router, response::Response, routing::get};

use crate::{
    app::{
        AppState,
        page::{Layout, render},
    },
    error::AppResult,
};

/// Routes of this feature.
pub fn router() -> Router<AppState> {
    Router::new().route("/", get(home))
}

#[derive(Template)]
#[template(path = "home/index.html")]
struct HomePage {
    layout: Layout,
}

async fn home() -> AppResult<Response> {
    render(&HomePage {
        layout: Layout::bare(),
    })
}
