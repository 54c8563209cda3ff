//! What every page's layout needs: who is signed in, the CSRF token, a flash.

use askama::Template;
use axum::response::{Html, IntoResponse, Response};

use crate::error::AppResult;

/// The parts of `base.html` that change per request.
#[derive(Debug, Clone, Default)]
pub struct Layout {
    /// Version shown in the footer.
    pub version: &'static str,
    /// A one-off message from the previous request (Post/Redirect/Get).
    pub flash: Option<Flash>,
}

impl Layout {
    /// A layout with nobody signed in and no flash (error pages, sign-in).
    pub fn bare() -> Self {
        Self {
            version: env!("CARGO_PKG_VERSION"),
            flash: None,
        }
    }
}

/// A message shown once at the top of the next page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flash {
    /// `success`, `info` or `error`: picks the colour.
    pub kind: FlashKind,
    /// Plain text; askama escapes it.
    pub message: String,
}

/// The tone of a flash message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlashKind {
    /// Something was done.
    Success,
    /// Something to know.
    Info,
    /// Something failed.
    Error,
}

impl FlashKind {
    /// CSS class suffix for the flash box.
    pub fn class(&self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Info => "info",
            Self::Error => "error",
        }
    }
}

/// Renders a template into an HTML response.
pub fn render(template: &impl Template) -> AppResult<Response> {
    Ok(Html(template.render()?).into_response())
}
