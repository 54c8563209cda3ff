//! The small web toolkit every feature's pages share: the layout and its
//! flash message, form field messages, rendering with a status, redirects,
//! and the extractors that answer with Berth's own error page.

pub mod extract;
pub mod form;
pub mod layout;
pub mod urls;

use askama::Template;
use axum::{
    http::StatusCode,
    response::{Html, IntoResponse, Redirect, Response},
};

pub use extract::{Form, Path};
pub use form::FieldErrors;
pub use layout::{ConfirmPage, Flash, FlashKind, Layout, Viewer, flash};

use crate::error::AppResult;

/// Renders a template into a 200 HTML response.
pub fn render(template: &impl Template) -> AppResult<Response> {
    render_with_status(StatusCode::OK, template)
}

/// Renders a template with `status`: 422 for a form to fix, or the
/// cluster's refusal's own status.
pub fn render_with_status(status: StatusCode, template: &impl Template) -> AppResult<Response> {
    Ok((status, Html(template.render()?)).into_response())
}

/// 303 See Other to `path`: the Post/Redirect/Get answer to a done form.
pub fn see_other(path: &str) -> Response {
    Redirect::to(path).into_response()
}

/// 422 with an already rendered page: a form to fix.
pub fn unprocessable_html(html: String) -> Response {
    (StatusCode::UNPROCESSABLE_ENTITY, Html(html)).into_response()
}
