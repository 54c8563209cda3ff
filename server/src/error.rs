//! The one error type handlers return, and how each kind is shown to a person.
//!
//! Client errors say what went wrong in plain words. Internal errors are logged
//! with their full context and the person sees a generic page with the request
//! id, so an admin can find the log line without the page leaking internals.

use askama::Template;
use axum::{
    http::StatusCode,
    response::{Html, IntoResponse, Response},
};

use crate::{app::request_id, web::Layout};

/// Everything a handler can fail with.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The request is malformed in a way a form can't explain (400).
    #[error("{0}")]
    BadRequest(String),
    /// Signed in, but not allowed to do this (403).
    #[error("{0}")]
    Forbidden(String),
    /// Nothing here, or nothing this person may see (404).
    #[error("{0}")]
    NotFound(String),
    /// The request conflicts with the current state (409).
    #[error("{0}")]
    Conflict(String),
    /// Too many requests of this kind from this client (429).
    #[error("{0}")]
    TooManyRequests(String),
    /// Something Berth depends on (the cluster) is missing or not answering
    /// (503); the message says which and whether to try again.
    #[error("{0}")]
    Unavailable(String),
    /// Something on our side broke; details go to the log only (500).
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl AppError {
    /// Wraps any error as an internal one, with a line of context for the log.
    pub fn internal(context: &'static str, error: impl Into<anyhow::Error>) -> Self {
        Self::Internal(error.into().context(context))
    }

    fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<sqlx::Error> for AppError {
    fn from(error: sqlx::Error) -> Self {
        Self::internal("database query failed", error)
    }
}

impl From<askama::Error> for AppError {
    fn from(error: askama::Error) -> Self {
        Self::internal("rendering a template failed", error)
    }
}

/// The error page (`templates/error.html`).
#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage {
    /// Header, navigation and flash for the page.
    pub layout: Layout,
    /// HTTP status code shown as the page's title.
    pub status: u16,
    /// Short reason phrase, e.g. "Not found".
    pub title: String,
    /// What happened, in plain words.
    pub message: String,
    /// The id of this request in the logs.
    pub request_id: String,
}

impl ErrorPage {
    /// Renders the error page, falling back to plain text if the template fails.
    pub fn response(status: StatusCode, message: String) -> Response {
        let page = ErrorPage {
            layout: Layout::bare(),
            status: status.as_u16(),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            message,
            request_id: request_id(),
        };
        match page.render() {
            Ok(html) => (status, Html(html)).into_response(),
            Err(error) => {
                tracing::error!(%error, "rendering the error page failed");
                (status, page.message).into_response()
            }
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = match &self {
            Self::Internal(error) => {
                tracing::error!(error = format!("{error:#}"), "internal error");
                "Something went wrong on our side. It has been logged; if it keeps \
                 happening, give an admin the request id below."
                    .to_owned()
            }
            other => other.to_string(),
        };
        ErrorPage::response(status, message)
    }
}

/// What handlers return.
pub type AppResult<T> = Result<T, AppError>;
