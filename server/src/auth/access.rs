//! Access rules in one place: who may reach which path, and the CSRF check on
//! every state-changing request.
//!
//! - anonymous: the sign-in pages, health checks and static files; anything
//!   else redirects to sign-in;
//! - signed in: everything but `/admin`;
//! - admin: everything.
//!
//! The middleware resolves the session once and leaves a [`CurrentUser`] in the
//! request's extensions for handlers to extract.

use axum::{
    body::{Body, to_bytes},
    extract::{FromRequestParts, Request, State},
    http::{Method, StatusCode, header, request::Parts},
    middleware::Next,
    response::{IntoResponse, Redirect, Response},
};
use axum_extra::extract::CookieJar;

use super::{cookie_name, session, users};
use crate::{
    app::AppState,
    error::{AppError, ErrorPage},
};

/// Forms are small; a larger body is refused before it is buffered.
const MAX_FORM_BYTES: usize = 1024 * 1024;

/// The signed-in person making this request.
#[derive(Debug, Clone)]
pub struct CurrentUser {
    /// Row id in `users`.
    pub id: i64,
    /// Email address.
    pub email: String,
    /// Name to show.
    pub display_name: String,
    /// Admin, as decided at sign-in.
    pub is_admin: bool,
    /// The session this request belongs to.
    pub session: session::Session,
}

impl CurrentUser {
    /// The hidden-field value forms must echo back.
    pub fn csrf_token(&self) -> &str {
        &self.session.csrf_token
    }
}

impl<S: Send + Sync> FromRequestParts<S> for CurrentUser {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        // The access middleware only lets a request without a user through on
        // public paths; a handler there asking for a user is a routing bug.
        parts
            .extensions
            .get::<CurrentUser>()
            .cloned()
            .ok_or_else(|| AppError::Forbidden("Sign in to see this page.".to_owned()))
    }
}

/// A signed-in admin; anyone else gets 403.
#[derive(Debug, Clone)]
pub struct AdminUser(pub CurrentUser);

impl<S: Send + Sync> FromRequestParts<S> for AdminUser {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let user = CurrentUser::from_request_parts(parts, state).await?;
        if user.is_admin {
            Ok(Self(user))
        } else {
            Err(admin_only())
        }
    }
}

fn admin_only() -> AppError {
    AppError::Forbidden("This page is for admins only.".to_owned())
}

fn is_public(path: &str) -> bool {
    path == "/healthz"
        || path == "/readyz"
        || path.starts_with("/static/")
        || path == "/auth"
        || path.starts_with("/auth/")
}

fn is_admin_path(path: &str) -> bool {
    path == "/admin" || path.starts_with("/admin/")
}

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Loads the session for the request's cookie, if any and still live.
pub async fn resolve(state: &AppState, jar: &CookieJar) -> Result<Option<CurrentUser>, AppError> {
    let Some(cookie) = jar.get(cookie_name(state)) else {
        return Ok(None);
    };
    let Some(session) = session::load(&state.db, cookie.value(), state.auth.lifetimes).await?
    else {
        return Ok(None);
    };
    let Some(user) = users::by_id(&state.db, session.user_id).await? else {
        return Ok(None);
    };
    Ok(Some(CurrentUser {
        id: user.id,
        email: user.email,
        display_name: user.display_name,
        is_admin: user.is_admin,
        session,
    }))
}

/// The access and CSRF middleware (see the module docs).
pub async fn enforce(State(state): State<AppState>, request: Request, next: Next) -> Response {
    match check(&state, request).await {
        Ok(request) => next.run(request).await,
        Err(response) => response,
    }
}

async fn check(state: &AppState, mut request: Request) -> Result<Request, Response> {
    let jar = CookieJar::from_headers(request.headers());
    let user = resolve(state, &jar)
        .await
        .map_err(IntoResponse::into_response)?;
    let path = request.uri().path().to_owned();

    let Some(user) = user else {
        if is_public(&path) {
            return Ok(request);
        }
        if is_safe(request.method()) {
            let next = request
                .uri()
                .path_and_query()
                .map_or("/", |pq| pq.as_str())
                .to_owned();
            let target = format!(
                "/auth/login?{}",
                serde_urlencoded::to_string([("next", next)]).unwrap_or_default()
            );
            return Err(Redirect::to(&target).into_response());
        }
        return Err(ErrorPage::response(
            StatusCode::FORBIDDEN,
            "Your session has ended. Sign in again, then repeat what you were doing.".to_owned(),
        ));
    };

    tracing::Span::current().record("user", user.email.as_str());
    if is_admin_path(&path) && !user.is_admin {
        return Err(admin_only().into_response());
    }
    if !is_safe(request.method()) {
        request = check_csrf(request, user.csrf_token()).await?;
    }
    request.extensions_mut().insert(user);
    Ok(request)
}

/// Every state-changing request must carry the session's CSRF token, in the
/// `csrf_token` form field or the `X-CSRF-Token` header. The body is buffered
/// to read the field, then handed on unchanged.
async fn check_csrf(request: Request, expected: &str) -> Result<Request, Response> {
    let refused = || {
        ErrorPage::response(
            StatusCode::FORBIDDEN,
            "This form has expired or did not come from Berth. Go back, reload the page and \
             submit it again."
                .to_owned(),
        )
    };
    if let Some(header) = request.headers().get("x-csrf-token") {
        return if constant_time_eq(header.as_bytes(), expected.as_bytes()) {
            Ok(request)
        } else {
            Err(refused())
        };
    }
    let is_form = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return Err(refused());
    }
    let (parts, body) = request.into_parts();
    let bytes = to_bytes(body, MAX_FORM_BYTES).await.map_err(|_| {
        ErrorPage::response(
            StatusCode::PAYLOAD_TOO_LARGE,
            "That form is larger than Berth accepts.".to_owned(),
        )
    })?;
    let sent = form_urlencoded_field(&bytes, "csrf_token");
    match sent {
        Some(token) if constant_time_eq(token.as_bytes(), expected.as_bytes()) => {
            Ok(Request::from_parts(parts, Body::from(bytes)))
        }
        _ => Err(refused()),
    }
}

fn form_urlencoded_field(body: &[u8], name: &str) -> Option<String> {
    url::form_urlencoded::parse(body)
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
}

/// Compares without an early exit, so timing reveals nothing about the token.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_paths_are_only_sign_in_health_and_static() {
        for path in [
            "/healthz",
            "/readyz",
            "/static/berth.css",
            "/auth/login",
            "/auth/callback",
        ] {
            assert!(is_public(path), "{path} should be public");
        }
        for path in ["/", "/admin", "/authx", "/staticfile", "/namespaces/x"] {
            assert!(!is_public(path), "{path} should need sign-in");
        }
    }

    #[test]
    fn admin_paths() {
        assert!(is_admin_path("/admin"));
        assert!(is_admin_path("/admin/namespaces"));
        assert!(!is_admin_path("/administrator"));
    }

    #[test]
    fn csrf_comparison() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        assert_eq!(
            form_urlencoded_field(b"a=1&csrf_token=x%2By&b=2", "csrf_token").as_deref(),
            Some("x+y")
        );
    }
}
