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
    extract::{FromRequestParts, RawPathParams, Request, State},
    http::{HeaderValue, Method, StatusCode, header, request::Parts},
    middleware::Next,
    response::{IntoResponse, Redirect, Response},
};
use axum_extra::extract::CookieJar;

use super::{cookie_name, session};
use crate::{
    app::AppState,
    error::{AppError, ErrorPage},
    kube::Identity,
    namespaces::membership,
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
    /// Admin: by the configured list (checked at every request) or by the
    /// identity provider's word at sign-in.
    pub is_admin: bool,
    /// The session this request belongs to.
    pub session: session::Session,
}

impl CurrentUser {
    /// The hidden-field value forms must echo back.
    pub fn csrf_token(&self) -> &str {
        &self.session.csrf_token
    }

    /// Who Berth acts as in the cluster for this person.
    pub fn identity(&self) -> Identity {
        Identity::new(&self.email, self.is_admin)
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

/// The action a route's refusals are audited as: set on a state-changing
/// route with `handler.layer(Extension(Audited("workload.scale")))`, read by
/// [`NamespaceMember`] when it says no.
#[derive(Debug, Clone, Copy)]
pub struct Audited(pub &'static str);

/// The layer that marks a route [`Audited`] as `action`.
pub fn audited(action: &'static str) -> axum::Extension<Audited> {
    axum::Extension(Audited(action))
}

/// A signed-in member (or admin) of the namespace in the path's `{ns}`:
/// the check every namespace page makes, made before the handler runs. A
/// name that cannot be a namespace is a 404; someone who is not a member
/// gets 403, recorded as `denied` in the audit log when the route is
/// [`Audited`] (with the path's `{name}` as the target, if it has one).
#[derive(Debug, Clone)]
pub struct NamespaceMember {
    /// Who is asking.
    pub user: CurrentUser,
    /// The namespace, checked to be a DNS label.
    pub namespace: String,
}

impl FromRequestParts<AppState> for NamespaceMember {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let user = CurrentUser::from_request_parts(parts, state).await?;
        let params = RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|_| AppError::NotFound("There is no such page.".to_owned()))?;
        let param = |key: &str| {
            params
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| v.to_owned())
        };
        let Some(namespace) = param("ns") else {
            return Err(AppError::internal(
                "routing",
                anyhow::anyhow!("NamespaceMember on a route without {{ns}}"),
            ));
        };
        let audited = parts.extensions.get::<Audited>().copied();
        let target = param("name");
        membership::authorize(
            state,
            &user,
            &namespace,
            audited.map(|Audited(action)| (action, target.as_deref())),
        )
        .await?;
        Ok(Self { user, namespace })
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
    let Some((session, user)) =
        session::load(&state.db, cookie.value(), state.auth.lifetimes).await?
    else {
        return Ok(None);
    };
    // Decided now, not at sign-in: someone taken off the configured list is
    // no admin from their next request on.
    let is_admin = user.admin_by_claim || state.auth.config.is_admin_email(&user.email);
    Ok(Some(CurrentUser {
        id: user.id,
        email: user.email,
        display_name: user.display_name,
        is_admin,
        session,
    }))
}

/// Where Berth is reached: the Host values and Origins a state-changing
/// request may carry. A page on another site (a cross-site form, or a DNS
/// name rebound to Berth's address) names its own host, so it is refused
/// before anything else, dev sign-in included.
#[derive(Debug, Clone)]
pub struct Sites {
    /// `host[:port]` as browsers send it; empty means Berth cannot know its
    /// own address (no public URL, listening on every interface) and only
    /// the Origin is compared with the Host.
    hosts: Vec<String>,
}

impl Sites {
    /// From the public URL. Without a configured one, the default names the
    /// bound address; on loopback `localhost` is as good as the address.
    pub fn new(public_url: &url::Url, configured: bool) -> Self {
        let port = public_url
            .port()
            .map(|p| format!(":{p}"))
            .unwrap_or_default();
        let host = public_url.host_str().unwrap_or_default().to_owned();
        let mut hosts = Vec::new();
        let unspecified = host
            .trim_matches(['[', ']'])
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_unspecified());
        if configured || !unspecified {
            hosts.push(format!("{host}{port}"));
        }
        let loopback = host
            .trim_matches(['[', ']'])
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
        if !configured && loopback {
            hosts.push(format!("localhost{port}"));
        }
        Self { hosts }
    }

    /// Why a WebSocket handshake is refused, if it is. Browsers always send
    /// an Origin with one, and cookies go along even from another site (the
    /// same-origin policy does not cover WebSockets), so a missing Origin is
    /// refused too, and a GET gets the checks a form post gets.
    pub fn refuse_websocket(&self, headers: &header::HeaderMap) -> Option<&'static str> {
        if !headers.contains_key(header::ORIGIN) {
            return Some("a WebSocket without an Origin");
        }
        self.refuse(headers)
    }

    /// Why a state-changing request is refused, if it is.
    fn refuse(&self, headers: &header::HeaderMap) -> Option<&'static str> {
        let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
        let host = host.map(str::to_ascii_lowercase);
        if !self.hosts.is_empty() && !host.as_ref().is_some_and(|h| self.hosts.contains(h)) {
            return Some("Host is not Berth's address");
        }
        match headers.get(header::ORIGIN).map(|v| v.to_str()) {
            Some(Ok(origin)) => {
                // `scheme://host[:port]`; `null` (sandboxed or privacy-redirected)
                // never matches.
                let named = origin
                    .split_once("://")
                    .map(|(_, rest)| rest.to_ascii_lowercase());
                let same = named.is_some_and(|named| match &host {
                    _ if !self.hosts.is_empty() => self.hosts.contains(&named),
                    Some(host) => *host == named,
                    None => false,
                });
                (!same).then_some("Origin is another site")
            }
            Some(Err(_)) => Some("Origin is another site"),
            // No Origin (older browsers, scripts): Sec-Fetch-Site if sent;
            // the CSRF token still has to match.
            None => match headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
                Some("same-origin" | "none") | None => None,
                Some(_) => Some("Sec-Fetch-Site is another site"),
            },
        }
    }
}

/// A small fixed-window limiter per client address (in memory: Berth runs
/// as one replica).
pub struct RateLimiter {
    per_minute: u32,
    windows: std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, (i64, u32)>>,
}

impl RateLimiter {
    /// At most `per_minute` per address and minute.
    pub fn new(per_minute: u32) -> Self {
        Self {
            per_minute,
            windows: std::sync::Mutex::default(),
        }
    }

    /// Counts one more from `ip`; whether it is within the limit.
    pub fn allow(&self, ip: std::net::IpAddr) -> bool {
        let minute = crate::clock::now() / 60;
        let mut windows = self
            .windows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Bounded memory: old windows go once the map grows.
        if windows.len() > 10_000 {
            windows.retain(|_, (at, _)| *at == minute);
        }
        let entry = windows.entry(ip).or_insert((minute, 0));
        if entry.0 != minute {
            *entry = (minute, 0);
        }
        entry.1 = entry.1.saturating_add(1);
        entry.1 <= self.per_minute
    }
}

/// The access and CSRF middleware (see the module docs), and the headers
/// every answer gets: no caching of pages (they show a person's data), HSTS
/// over https.
pub async fn enforce(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let mut response = match check(&state, request).await {
        Ok(request) => next.run(request).await,
        Err(response) => response,
    };
    let headers = response.headers_mut();
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if state.auth.secure_cookies {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
    }
    response
}

async fn check(state: &AppState, mut request: Request) -> Result<Request, Response> {
    if !is_safe(request.method())
        && let Some(reason) = state.auth.sites.refuse(request.headers())
    {
        tracing::warn!(reason, "state-changing request from another site refused");
        return Err(ErrorPage::response(
            StatusCode::FORBIDDEN,
            "This request did not come from Berth's own pages, so it was refused. Open \
             Berth at its usual address and try again."
                .to_owned(),
        ));
    }
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
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let is_form = content_type.starts_with("application/x-www-form-urlencoded");
    // File uploads (a course roster) come as multipart forms.
    let is_multipart = content_type.starts_with("multipart/form-data");
    if !is_form && !is_multipart {
        return Err(refused());
    }
    let (parts, body) = request.into_parts();
    let bytes = to_bytes(body, MAX_FORM_BYTES).await.map_err(|_| {
        ErrorPage::response(
            StatusCode::PAYLOAD_TOO_LARGE,
            "That form is larger than Berth accepts.".to_owned(),
        )
    })?;
    let sent = if is_multipart {
        multipart_field(&content_type, &bytes, "csrf_token").await
    } else {
        form_urlencoded_field(&bytes, "csrf_token")
    };
    match sent {
        Some(token) if constant_time_eq(token.as_bytes(), expected.as_bytes()) => {
            Ok(Request::from_parts(parts, Body::from(bytes)))
        }
        _ => Err(refused()),
    }
}

/// The text of field `name` in a buffered multipart body (the form's
/// fields come before its file in document order, so this reads little).
async fn multipart_field(
    content_type: &str,
    body: &axum::body::Bytes,
    name: &str,
) -> Option<String> {
    use axum::extract::{FromRequest, Multipart};
    let request = axum::http::Request::builder()
        .header(header::CONTENT_TYPE, content_type)
        .body(Body::from(body.clone()))
        .ok()?;
    let mut multipart = Multipart::from_request(request, &()).await.ok()?;
    while let Ok(Some(field)) = multipart.next_field().await {
        if field.name() == Some(name) {
            return field.text().await.ok();
        }
    }
    None
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

    fn headers(pairs: &[(&'static str, &str)]) -> header::HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| {
                (
                    header::HeaderName::from_static(k),
                    HeaderValue::from_str(v).unwrap_or_else(|_| HeaderValue::from_static("")),
                )
            })
            .collect()
    }

    #[test]
    fn a_websocket_needs_berths_own_origin() {
        let url = url::Url::parse("https://berth.example.edu").unwrap_or_else(|_| unreachable!());
        let sites = Sites::new(&url, true);
        let ok = |pairs: &[(&'static str, &str)]| sites.refuse_websocket(&headers(pairs)).is_none();
        assert!(ok(&[
            ("host", "berth.example.edu"),
            ("origin", "https://berth.example.edu")
        ]));
        // A form post may omit Origin; a WebSocket from a browser never does.
        assert!(!ok(&[("host", "berth.example.edu")]));
        assert!(!ok(&[
            ("host", "berth.example.edu"),
            ("origin", "https://evil.example")
        ]));
        assert!(!ok(&[
            ("host", "evil.example"),
            ("origin", "https://evil.example")
        ]));
    }

    #[test]
    fn state_changing_requests_must_come_from_berths_own_site() {
        let url = url::Url::parse("https://berth.example.edu").unwrap_or_else(|_| unreachable!());
        let sites = Sites::new(&url, true);
        let ok = |pairs: &[(&'static str, &str)]| sites.refuse(&headers(pairs)).is_none();
        assert!(ok(&[("host", "berth.example.edu")]));
        assert!(ok(&[
            ("host", "berth.example.edu"),
            ("origin", "https://berth.example.edu")
        ]));
        assert!(ok(&[
            ("host", "berth.example.edu"),
            ("sec-fetch-site", "same-origin")
        ]));
        assert!(!ok(&[("host", "evil.example")]));
        assert!(!ok(&[]));
        assert!(!ok(&[
            ("host", "berth.example.edu"),
            ("origin", "https://evil.example")
        ]));
        assert!(!ok(&[("host", "berth.example.edu"), ("origin", "null")]));
        assert!(!ok(&[
            ("host", "berth.example.edu"),
            ("sec-fetch-site", "cross-site")
        ]));
        let local = url::Url::parse("http://127.0.0.1:8080").unwrap_or_else(|_| unreachable!());
        let sites = Sites::new(&local, false);
        assert!(
            sites
                .refuse(&headers(&[
                    ("host", "localhost:8080"),
                    ("origin", "http://localhost:8080")
                ]))
                .is_none()
        );
        assert!(
            sites
                .refuse(&headers(&[("host", "rebound.example:8080")]))
                .is_some()
        );
    }

    #[test]
    fn the_limiter_counts_per_address() {
        let limiter = RateLimiter::new(2);
        let a = std::net::IpAddr::from([10, 0, 0, 1]);
        let b = std::net::IpAddr::from([10, 0, 0, 2]);
        assert!(limiter.allow(a) && limiter.allow(a));
        assert!(!limiter.allow(a));
        assert!(limiter.allow(b));
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
