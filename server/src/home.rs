//! The home page: what Berth is and what to do next.

use askama::Template;
use axum::{Router, extract::State, response::Response, routing::get};

use crate::{
    app::{
        AppState,
        page::{Layout, render},
    },
    auth::CurrentUser,
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

async fn home(State(state): State<AppState>, user: CurrentUser) -> AppResult<Response> {
    render(&HomePage {
        layout: Layout::for_user(&state.db, &user).await?,
    })
}
