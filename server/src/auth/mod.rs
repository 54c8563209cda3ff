//! Sign-in with the campus identity provider (OpenID Connect), the local dev
//! sign-in, sessions, and the access rules every request passes.

pub mod access;
pub mod oidc;
pub mod session;
pub mod users;

use std::{net::SocketAddr, sync::Arc};

use anyhow::Context;
use askama::Template;
use axum::{
    Form, Router,
    extract::{ConnectInfo, Query, State},
    http::StatusCode,
    response::{Html, IntoResponse, Redirect, Response},
    routing::{get, post},
};
use axum_extra::extract::{
    CookieJar,
    cookie::{Cookie, SameSite},
};
use serde::Deserialize;
use sqlx::SqlitePool;
use url::Url;

pub use access::{AdminUser, Audited, CurrentUser, NamespaceMember, audited};

use crate::{
    app::AppState,
    audit::{self, Outcome},
    clock::now,
    config::{AuthConfig, ServeConfig},
    error::{AppError, AppResult},
    web::{FlashKind, Layout, flash, urls},
};

/// Cookie that binds a sign-in in progress to the browser that started it:
/// `__Host-` prefixed (and so path `/`) over https, which keeps a sibling
/// host from planting one; path `/auth` otherwise.
fn login_cookie(state: &AppState) -> (&'static str, &'static str) {
    if state.auth.secure_cookies {
        ("__Host-berth_login", "/")
    } else {
        ("berth_login", "/auth")
    }
}

/// What the sign-in code needs at run time, built once from [`AuthConfig`].
pub struct AuthState {
    /// The campus provider, when one is configured.
    pub provider: Option<oidc::Provider>,
    /// Whether the dev sign-in is offered.
    pub dev_login: bool,
    /// Session deadlines.
    pub lifetimes: session::Lifetimes,
    /// Cookies get `Secure` (and the `__Host-` prefix) when Berth is served over https.
    pub secure_cookies: bool,
    /// Domains, admins, group claim.
    pub config: AuthConfig,
    /// Where Berth is reached: state-changing requests must name one of these
    /// as their Host and Origin (see [`access`]).
    pub sites: access::Sites,
    /// Sign-in starts per client address.
    pub start_limiter: access::RateLimiter,
}

impl AuthState {
    /// Checks the sign-in configuration and prepares the provider.
    ///
    /// `bound` is the address actually listened on, which names the default
    /// public URL (it differs from the configured one when that asks for port 0).
    pub fn from_config(config: &ServeConfig, bound: SocketAddr) -> anyhow::Result<Arc<Self>> {
        let auth = &config.auth;
        let public_url = match &config.public_url {
            Some(url) => url.clone(),
            None => Url::parse(&format!("http://{bound}")).context("the public URL")?,
        };
        if auth.dev_login && !config.listen.ip().is_loopback() {
            anyhow::bail!(
                "--dev-login lets anyone sign in as anyone, so it is refused unless Berth \
                 listens on a loopback address (127.0.0.1 or ::1); it was asked to listen on {}",
                config.listen
            );
        }
        let provider = match &auth.oidc_issuer {
            Some(issuer) => {
                let secret = match (&auth.oidc_client_secret, &auth.oidc_client_secret_file) {
                    (Some(secret), _) => Some(secret.clone()),
                    (None, Some(path)) => Some(
                        std::fs::read_to_string(path)
                            .with_context(|| {
                                format!("reading the OIDC client secret from {}", path.display())
                            })?
                            .trim()
                            .to_owned()
                            .into(),
                    ),
                    (None, None) => None,
                };
                let redirect = match &auth.oidc_redirect_url {
                    Some(url) => url.clone(),
                    None => public_url.join("/auth/callback")?,
                };
                Some(oidc::Provider::new(
                    issuer,
                    auth.oidc_client_id.clone(),
                    secret,
                    &redirect,
                )?)
            }
            None => None,
        };
        if provider.is_none() && !auth.dev_login {
            anyhow::bail!(
                "nobody could sign in: configure an identity provider with --oidc-issuer, \
                 or pass --dev-login to try Berth locally"
            );
        }
        if auth.session_idle_secs <= 0 || auth.session_lifetime_secs <= 0 {
            anyhow::bail!("session timeouts must be positive numbers of seconds");
        }
        Ok(Arc::new(Self {
            provider,
            dev_login: auth.dev_login,
            lifetimes: session::Lifetimes {
                idle_secs: auth.session_idle_secs,
                absolute_secs: auth.session_lifetime_secs,
            },
            secure_cookies: public_url.scheme() == "https",
            config: auth.clone(),
            sites: access::Sites::new(&public_url, config.public_url.is_some()),
            // Each start stores a pending sign-in: an unbounded loop would fill
            // the table.
            start_limiter: access::RateLimiter::new(auth.sign_in_starts_per_minute),
        }))
    }
}

/// The session cookie's name: `__Host-` prefixed when it can be (https), which
/// pins it to this host and path `/`.
pub fn cookie_name(state: &AppState) -> &'static str {
    if state.auth.secure_cookies {
        "__Host-berth_session"
    } else {
        "berth_session"
    }
}

/// Routes of this feature.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/auth/login", get(login_page))
        .route("/auth/start", get(start))
        .route("/auth/callback", get(callback))
        .route("/auth/dev", post(dev_sign_in))
        .route("/auth/logout", post(logout))
        .route("/admin/sessions/end", post(end_sessions))
}

#[derive(Debug, Deserialize)]
struct EndSessionsForm {
    email: String,
}

/// `POST /admin/sessions/end`: an admin signs someone out everywhere (a lost
/// laptop, a person who should no longer be here); their next request finds
/// no session. Audited.
async fn end_sessions(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    Form(form): Form<EndSessionsForm>,
) -> AppResult<Response> {
    let email = form.email.trim().to_lowercase();
    if !looks_like_email(&email) {
        flash(
            &state.db,
            &admin,
            FlashKind::Error,
            "Enter the email address of the person to sign out.",
        )
        .await?;
        return Ok(Redirect::to(urls::admin()).into_response());
    }
    let ended = users::end_sessions(&state.db, &email).await?;
    let detail = format!("{ended} sessions ended");
    audit::record(
        &state.db,
        audit::Entry {
            actor: &admin.email,
            action: "sessions.end",
            namespace: None,
            target: Some(&email),
            outcome: Outcome::Ok,
            detail: Some(&detail),
        },
    )
    .await;
    flash(
        &state.db,
        &admin,
        FlashKind::Success,
        &format!("Ended {ended} session(s) of {email}; they must sign in again."),
    )
    .await?;
    Ok(Redirect::to(urls::admin()).into_response())
}

/// Only a same-site path may be returned to after sign-in; anything else
/// (another host, a scheme, `//evil`, backslashes, control characters) becomes `/`.
pub fn safe_return_path(next: Option<&str>) -> String {
    match next {
        Some(path)
            if path.starts_with('/')
                && !path.starts_with("//")
                && !path.contains('\\')
                && !path.chars().any(char::is_control)
                && !path.starts_with("/auth/") =>
        {
            path.to_owned()
        }
        _ => "/".to_owned(),
    }
}

#[derive(Debug, Deserialize)]
struct NextQuery {
    next: Option<String>,
}

#[derive(Template)]
#[template(path = "auth/login.html")]
struct LoginPage {
    layout: Layout,
    next: String,
    oidc: bool,
    dev_login: bool,
    dev_email: String,
    dev_error: Option<String>,
}

async fn login_page(
    State(state): State<AppState>,
    jar: CookieJar,
    Query(query): Query<NextQuery>,
) -> AppResult<Response> {
    let next = safe_return_path(query.next.as_deref());
    if access::resolve(&state, &jar).await?.is_some() {
        return Ok(Redirect::to(&next).into_response());
    }
    let page = LoginPage {
        layout: Layout::bare().with_dev_banner(state.auth.dev_login),
        next,
        oidc: state.auth.provider.is_some(),
        dev_login: state.auth.dev_login,
        dev_email: "student@purdue.edu".to_owned(),
        dev_error: None,
    };
    Ok(Html(page.render()?).into_response())
}

async fn start(
    State(state): State<AppState>,
    jar: CookieJar,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Query(query): Query<NextQuery>,
) -> AppResult<Response> {
    if !state.auth.start_limiter.allow(peer.ip()) {
        tracing::warn!(client = %peer.ip(), "too many sign-in starts");
        return Err(AppError::TooManyRequests(
            "Too many sign-ins were started from your address. Wait a minute, then try again."
                .to_owned(),
        ));
    }
    let Some(provider) = &state.auth.provider else {
        return Err(AppError::NotFound(
            "No identity provider is configured.".to_owned(),
        ));
    };
    let start = provider.start().await.map_err(|error| {
        tracing::warn!(%error, "starting sign-in failed");
        AppError::Internal(anyhow::anyhow!(error.to_string()))
    })?;
    let browser = session::random_token();
    sqlx::query(
        "INSERT INTO pending_logins (browser_hash, state, nonce, pkce_verifier, return_to, created_at)
         VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(session::hash_token(&browser))
    .bind(&start.state)
    .bind(&start.nonce)
    .bind(&start.pkce_verifier)
    .bind(safe_return_path(query.next.as_deref()))
    .bind(now())
    .execute(state.db.pool())
    .await?;
    let (login_name, login_path) = login_cookie(&state);
    let cookie = Cookie::build((login_name, browser))
        .path(login_path)
        .http_only(true)
        .secure(state.auth.secure_cookies)
        // Lax: the provider's redirect back is a top-level GET navigation.
        .same_site(SameSite::Lax)
        .max_age(time::Duration::seconds(oidc::PENDING_LOGIN_TTL_SECS))
        .build();
    Ok((jar.add(cookie), Redirect::to(start.authorize_url.as_str())).into_response())
}

#[derive(Debug, Deserialize)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

struct Pending {
    state: String,
    nonce: String,
    pkce_verifier: String,
    return_to: String,
    created_at: i64,
}

/// Takes the pending sign-in bound to this browser; a second call finds nothing.
async fn take_pending(db: &SqlitePool, browser: &str) -> sqlx::Result<Option<Pending>> {
    let row: Option<(String, String, String, String, i64)> = sqlx::query_as(
        "DELETE FROM pending_logins WHERE browser_hash = ?
         RETURNING state, nonce, pkce_verifier, return_to, created_at",
    )
    .bind(session::hash_token(browser))
    .fetch_optional(db)
    .await?;
    Ok(row.map(
        |(state, nonce, pkce_verifier, return_to, created_at)| Pending {
            state,
            nonce,
            pkce_verifier,
            return_to,
            created_at,
        },
    ))
}

fn sign_in_failed(message: &str) -> AppError {
    AppError::BadRequest(format!(
        "Sign-in did not complete: {message} Please try again."
    ))
}

async fn callback(
    State(state): State<AppState>,
    jar: CookieJar,
    Query(query): Query<CallbackQuery>,
) -> AppResult<Response> {
    let Some(provider) = &state.auth.provider else {
        return Err(AppError::NotFound(
            "No identity provider is configured.".to_owned(),
        ));
    };
    let (login_name, login_path) = login_cookie(&state);
    let jar_without_login = jar
        .clone()
        .remove(Cookie::build(login_name).path(login_path));
    let pending = match jar.get(login_name) {
        Some(cookie) => take_pending(&state.db, cookie.value()).await?,
        None => None,
    };
    let Some(pending) = pending else {
        return Err(sign_in_failed(
            "this browser has no sign-in in progress (it may have been used already or expired).",
        ));
    };
    if now() - pending.created_at > oidc::PENDING_LOGIN_TTL_SECS {
        return Err(sign_in_failed("it took too long."));
    }
    if let Some(error) = query.error {
        let detail = query.error_description.unwrap_or(error);
        tracing::info!(detail, "identity provider returned an error");
        return Err(sign_in_failed("the identity provider said no."));
    }
    let sent_state = query.state.unwrap_or_default();
    if !access::constant_time_eq(sent_state.as_bytes(), pending.state.as_bytes()) {
        tracing::warn!("sign-in callback with a state that does not match");
        return Err(sign_in_failed(
            "the answer did not match the sign-in this browser started.",
        ));
    }
    let Some(code) = query.code else {
        return Err(sign_in_failed("the identity provider sent no code."));
    };
    let identity = match provider
        .finish(code, pending.pkce_verifier, pending.nonce)
        .await
    {
        Ok(identity) => identity,
        Err(oidc::CallbackError::Unverified(email)) => {
            tracing::warn!(email, "sign-in refused: email not verified");
            return not_allowed(
                &state,
                &email,
                "email not verified",
                "Your identity provider has not confirmed that this email address is yours, \
                 so Berth cannot tell it is really you. Verify the address with your \
                 identity provider, then sign in again."
                    .to_owned(),
            )
            .await;
        }
        Err(error) => {
            tracing::warn!(%error, "sign-in callback refused");
            audit::record(
                &state.db,
                audit::Entry {
                    actor: "anonymous",
                    action: "sign_in",
                    namespace: None,
                    target: None,
                    outcome: Outcome::Denied,
                    detail: Some(&error.to_string()),
                },
            )
            .await;
            return Err(sign_in_failed(&format!("{error}.")));
        }
    };
    let admin_by_group = match (
        &state.auth.config.admin_group_claim,
        &state.auth.config.admin_group_value,
    ) {
        (Some(claim), Some(value)) => identity.extra.contains(claim, value),
        _ => false,
    };
    let response = complete_sign_in(
        &state,
        jar_without_login,
        SignIn {
            issuer: &identity.issuer,
            subject: &identity.subject,
            email: &identity.email,
            display_name: &identity.display_name,
            admin_by_claim: admin_by_group,
        },
        &pending.return_to,
    )
    .await?;
    Ok(response)
}

struct SignIn<'a> {
    issuer: &'a str,
    subject: &'a str,
    email: &'a str,
    display_name: &'a str,
    admin_by_claim: bool,
}

#[derive(Template)]
#[template(path = "auth/not_allowed.html")]
struct NotAllowedPage {
    layout: Layout,
    email: String,
    reason: String,
}

/// Refuses a sign-in with the "not allowed" page (403), audited as denied.
async fn not_allowed(
    state: &AppState,
    email: &str,
    detail: &str,
    reason: String,
) -> AppResult<Response> {
    audit::record(
        &state.db,
        audit::Entry {
            actor: if email.is_empty() { "anonymous" } else { email },
            action: "sign_in",
            namespace: None,
            target: None,
            outcome: Outcome::Denied,
            detail: Some(detail),
        },
    )
    .await;
    let page = NotAllowedPage {
        layout: Layout::bare(),
        email: email.to_owned(),
        reason,
    };
    Ok((StatusCode::FORBIDDEN, Html(page.render()?)).into_response())
}

/// Checks the domain, records the user, and starts a fresh session (any
/// session the browser had is ended first, so the id always changes at sign-in).
async fn complete_sign_in(
    state: &AppState,
    jar: CookieJar,
    who: SignIn<'_>,
    return_to: &str,
) -> AppResult<Response> {
    let config = &state.auth.config;
    if !config.email_allowed(who.email) {
        return not_allowed(
            state,
            who.email,
            "email domain not allowed",
            format!(
                "Berth only admits accounts from: {}.",
                config.allowed_email_domains.join(", ")
            ),
        )
        .await;
    }
    if !users::claim_email(&state.db, who.issuer, who.subject, who.email).await? {
        tracing::warn!(
            email = who.email,
            "sign-in refused: the address belongs to another account"
        );
        return not_allowed(
            state,
            who.email,
            "email belongs to another account",
            "This email address already belongs to another account at the identity \
             provider, which signed in to Berth with it first. Berth keeps each address \
             with its first account, so nobody can take over someone else's by changing \
             their email. Ask the cluster's admins if this is wrong."
                .to_owned(),
        )
        .await;
    }
    let is_admin = who.admin_by_claim || config.is_admin_email(who.email);
    let user_id = users::upsert_on_sign_in(
        &state.db,
        who.issuer,
        who.subject,
        who.email,
        who.display_name,
        is_admin,
        who.admin_by_claim,
    )
    .await?;
    if let Some(old) = jar.get(cookie_name(state)) {
        session::delete(&state.db, &session::hash_token(old.value())).await?;
    }
    let token = session::create(&state.db, user_id, state.auth.lifetimes).await?;
    audit::record(
        &state.db,
        audit::Entry {
            actor: who.email,
            action: "sign_in",
            namespace: None,
            target: None,
            outcome: Outcome::Ok,
            detail: is_admin.then_some("admin"),
        },
    )
    .await;
    tracing::info!(email = who.email, is_admin, "signed in");
    // A first-time person gets their personal namespace now, not on a page
    // view: pages stay reads.
    crate::namespaces::self_service::ensure_personal_namespace(state, who.email).await?;
    let cookie = Cookie::build((cookie_name(state), token))
        .path("/")
        .http_only(true)
        .secure(state.auth.secure_cookies)
        .same_site(SameSite::Lax)
        .build();
    Ok((jar.add(cookie), Redirect::to(return_to)).into_response())
}

#[derive(Debug, Deserialize)]
struct DevSignInForm {
    email: String,
    #[serde(default)]
    admin: Option<String>,
    #[serde(default)]
    next: Option<String>,
}

/// The local dev sign-in: trusts the typed email. Only offered with
/// `--dev-login`, which Berth refuses unless it listens on loopback.
async fn dev_sign_in(
    State(state): State<AppState>,
    jar: CookieJar,
    Form(form): Form<DevSignInForm>,
) -> AppResult<Response> {
    if !state.auth.dev_login {
        return Err(AppError::NotFound(
            "The dev sign-in is not enabled.".to_owned(),
        ));
    }
    let email = form.email.trim().to_lowercase();
    let next = safe_return_path(form.next.as_deref());
    if !looks_like_email(&email) {
        let page = LoginPage {
            layout: Layout::bare().with_dev_banner(true),
            next,
            oidc: state.auth.provider.is_some(),
            dev_login: true,
            dev_email: form.email,
            dev_error: Some("Enter an email address, like student@purdue.edu.".to_owned()),
        };
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, Html(page.render()?)).into_response());
    }
    complete_sign_in(
        &state,
        jar,
        SignIn {
            issuer: "dev",
            subject: &email,
            email: &email,
            display_name: &email,
            admin_by_claim: form.admin.is_some(),
        },
        &next,
    )
    .await
}

fn looks_like_email(email: &str) -> bool {
    match email.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !email.chars().any(|c| c.is_whitespace() || c.is_control())
                && email.len() <= 254
        }
        None => false,
    }
}

async fn logout(
    State(state): State<AppState>,
    user: CurrentUser,
    jar: CookieJar,
) -> AppResult<Response> {
    session::delete(&state.db, &user.session.id_hash).await?;
    audit::record(
        &state.db,
        audit::Entry {
            actor: &user.email,
            action: "sign_out",
            namespace: None,
            target: None,
            outcome: Outcome::Ok,
            detail: None,
        },
    )
    .await;
    let jar = jar.remove(Cookie::build(cookie_name(&state)).path("/"));
    Ok((jar, Redirect::to("/auth/login")).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn return_paths_stay_on_site() {
        assert_eq!(
            safe_return_path(Some("/namespaces/cs101?x=1")),
            "/namespaces/cs101?x=1"
        );
        for bad in [
            "https://evil.example/",
            "//evil.example/",
            "/\\evil.example",
            "evil",
            "",
            "/auth/callback",
            "/a\nb",
        ] {
            assert_eq!(safe_return_path(Some(bad)), "/", "{bad:?}");
        }
        assert_eq!(safe_return_path(None), "/");
    }

    #[test]
    fn email_shapes() {
        assert!(looks_like_email("student@purdue.edu"));
        for bad in [
            "student",
            "@purdue.edu",
            "a@b",
            "a@.b",
            "a b@purdue.edu",
            "a@b.",
        ] {
            assert!(!looks_like_email(bad), "{bad}");
        }
    }
}
