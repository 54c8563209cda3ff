//! Extractors that answer a bad request with Berth's own error page rather
//! than axum's plain-text rejection.

use axum::extract::{
    FromRequest, FromRequestParts,
    rejection::{FormRejection, PathRejection},
};

use crate::error::AppError;

/// A posted form; one that cannot be read is a 400 page saying so.
#[derive(Debug, FromRequest)]
#[from_request(via(axum::Form), rejection(AppError))]
pub struct Form<T>(pub T);

/// Path parameters; ones that do not parse (an id that is not a number) are
/// a 404 page, since no such page exists.
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(AppError))]
pub struct Path<T>(pub T);

impl From<FormRejection> for AppError {
    fn from(rejection: FormRejection) -> Self {
        AppError::BadRequest(format!(
            "The form could not be read ({}). Reload the page and try again.",
            rejection.body_text()
        ))
    }
}

impl From<PathRejection> for AppError {
    fn from(_: PathRejection) -> Self {
        AppError::NotFound("There is no such page.".to_owned())
    }
}
