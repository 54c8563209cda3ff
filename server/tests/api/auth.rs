//! Sign-in against the test world's real OIDC provider (Dex), sessions, CSRF
//! and the access rules, all over HTTP with a cookie-keeping client.

use crate::helpers::{
    TestApp, TestPerson, browser, client_builder, csrf_from_html, location,
    oidc::{self, Provider},
    post_form,
};
use reqwest::{StatusCode, header};

const STUDENT: &str = "student@purdue.edu";
const ADMIN: &str = "admin@purdue.edu";
const OUTSIDER: &str = "outsider@example.com";

async fn spawn_with_provider(extra: &[&str]) -> (TestApp, Provider) {
    let provider = Provider::from_env();
    let mut args: Vec<String> = provider.berth_args();
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    (TestApp::spawn_with(&args).await, provider)
}

fn session_cookie(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.contains("berth_session=") && !c.contains("berth_session=;"))
        .map(str::to_owned)
}

async fn count(app: &TestApp, sql: &'static str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(&app.db)
        .await
        .expect("count query")
}

#[tokio::test]
async fn full_sign_in_round_trip_creates_the_user_and_a_session() {
    let (app, provider) = spawn_with_provider(&[]).await;
    let login = app.get("/auth/login").await.text().await.expect("body");
    assert!(
        login.contains("Sign in with your campus account"),
        "{login}"
    );
    assert!(
        !login.contains("Dev sign-in"),
        "no dev sign-in unless asked for"
    );

    let callback = oidc::sign_in(&app, &app.client, &provider, STUDENT).await;
    assert_eq!(callback.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&callback), "/");
    let cookie = session_cookie(&callback).expect("a session cookie is set");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Lax"), "{cookie}");

    let home = app.get("/").await;
    assert_eq!(home.status(), StatusCode::OK);
    assert!(home.text().await.expect("body").contains("Sign out"));

    let (issuer, email, admin): (String, String, bool) =
        sqlx::query_as("SELECT issuer, email, is_admin FROM users")
            .fetch_one(&app.db)
            .await
            .expect("one user row");
    assert_eq!(issuer, provider.issuer.trim_end_matches('/'));
    assert_eq!(email, STUDENT);
    assert!(!admin);
    assert_eq!(
        count(&app, "SELECT COUNT(*) FROM pending_logins").await,
        0,
        "used once"
    );
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(*) FROM audit_log WHERE action = 'sign_in' AND outcome = 'ok'"
        )
        .await,
        1
    );
    app.stop().await;
}

#[tokio::test]
async fn a_tampered_state_is_refused() {
    let (app, provider) = spawn_with_provider(&[]).await;
    let mut callback = oidc::authorize(&app, &app.client, &provider, STUDENT).await;
    let pairs: Vec<(String, String)> = callback
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == "state" {
                format!("{v}x")
            } else {
                v.into_owned()
            };
            (k.into_owned(), v)
        })
        .collect();
    callback.query_pairs_mut().clear().extend_pairs(pairs);
    let response = app.client.get(callback).send().await.expect("callback");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(session_cookie(&response).is_none());
    assert!(
        response
            .text()
            .await
            .expect("body")
            .contains("did not match")
    );
    assert_eq!(
        app.get("/").await.status(),
        StatusCode::SEE_OTHER,
        "not signed in"
    );
    assert_eq!(count(&app, "SELECT COUNT(*) FROM users").await, 0);
    app.stop().await;
}

#[tokio::test]
async fn a_replayed_authorization_code_is_refused() {
    let (app, provider) = spawn_with_provider(&[]).await;
    let first = oidc::authorize(&app, &app.client, &provider, STUDENT).await;
    let ok = app
        .client
        .get(first.clone())
        .send()
        .await
        .expect("callback");
    assert_eq!(ok.status(), StatusCode::SEE_OTHER);

    // The same callback again: the pending sign-in was used up.
    let again = app
        .client
        .get(first.clone())
        .send()
        .await
        .expect("callback");
    assert_eq!(again.status(), StatusCode::BAD_REQUEST);

    // A new sign-in in the same browser, answered with the old code and the new
    // state: Berth's own check passes, so the provider must refuse the code.
    let second = oidc::authorize(&app, &app.client, &provider, STUDENT).await;
    let new_state = second
        .query_pairs()
        .find(|(k, _)| k == "state")
        .map(|(_, v)| v.into_owned())
        .expect("state");
    let old_code = first
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .expect("code");
    let mut replay = second.clone();
    replay
        .query_pairs_mut()
        .clear()
        .append_pair("code", &old_code)
        .append_pair("state", &new_state);
    let refused = app.client.get(replay).send().await.expect("callback");
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    assert!(session_cookie(&refused).is_none());
    let html = refused.text().await.expect("body");
    assert!(html.contains("refused the sign-in"), "{html}");
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(*) FROM audit_log WHERE action = 'sign_in' AND outcome = 'denied'"
        )
        .await,
        1
    );
    app.stop().await;
}

#[tokio::test]
async fn an_id_token_with_the_wrong_nonce_is_refused() {
    let (app, provider) = spawn_with_provider(&[]).await;
    let callback = oidc::authorize(&app, &app.client, &provider, STUDENT).await;
    // The provider put the original nonce in the ID token; make Berth expect another.
    sqlx::query("UPDATE pending_logins SET nonce = 'not-the-nonce-that-was-sent'")
        .execute(&app.db)
        .await
        .expect("changing the nonce");
    let response = app.client.get(callback).send().await.expect("callback");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(session_cookie(&response).is_none());
    let html = response.text().await.expect("body");
    assert!(html.contains("could not be verified"), "{html}");
    assert_eq!(count(&app, "SELECT COUNT(*) FROM sessions").await, 0);
    app.stop().await;
}

#[tokio::test]
async fn a_disallowed_domain_sees_not_allowed_and_gets_no_session() {
    let (app, provider) = spawn_with_provider(&[]).await;
    let response = oidc::sign_in(&app, &app.client, &provider, OUTSIDER).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(session_cookie(&response).is_none());
    let html = response.text().await.expect("body");
    assert!(html.contains("not allowed to use Berth"), "{html}");
    assert!(html.contains(OUTSIDER));
    assert_eq!(count(&app, "SELECT COUNT(*) FROM sessions").await, 0);
    assert_eq!(count(&app, "SELECT COUNT(*) FROM users").await, 0);
    assert_eq!(app.get("/").await.status(), StatusCode::SEE_OTHER);
    app.stop().await;
}

#[tokio::test]
async fn admins_by_config_reach_admin_pages_and_students_get_403() {
    let (app, provider) = spawn_with_provider(&["--admin-emails", ADMIN]).await;
    let admin = browser();
    let response = oidc::sign_in(&app, &admin, &provider, ADMIN).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let page = admin
        .get(app.url("/admin"))
        .send()
        .await
        .expect("admin page");
    assert_ne!(page.status(), StatusCode::FORBIDDEN);
    assert!(
        page.status() != StatusCode::SEE_OTHER,
        "the admin is signed in"
    );
    let home = admin.get(app.url("/")).send().await.expect("home");
    assert!(home.text().await.expect("body").contains("(admin)"));

    let student = browser();
    oidc::sign_in(&app, &student, &provider, STUDENT).await;
    let refused = student
        .get(app.url("/admin"))
        .send()
        .await
        .expect("admin page");
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert!(refused.text().await.expect("body").contains("admins only"));
    app.stop().await;
}

#[tokio::test]
async fn state_changes_without_the_right_csrf_token_get_403_and_change_nothing() {
    let (app, provider) = spawn_with_provider(&[]).await;
    oidc::sign_in(&app, &app.client, &provider, STUDENT).await;
    let before = count(&app, "SELECT COUNT(*) FROM sessions").await;
    assert_eq!(before, 1);

    let missing = app.post_form("/auth/logout", &[]).await;
    assert_eq!(missing.status(), StatusCode::FORBIDDEN);
    let wrong = app
        .post_form("/auth/logout", &[("csrf_token", "forged")])
        .await;
    assert_eq!(wrong.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        count(&app, "SELECT COUNT(*) FROM sessions").await,
        1,
        "still signed in"
    );
    assert_eq!(app.get("/").await.status(), StatusCode::OK);

    // Another browser's token is no good either.
    let other = browser();
    oidc::sign_in(&app, &other, &provider, STUDENT).await;
    let other_html = other
        .get(app.url("/"))
        .send()
        .await
        .expect("home")
        .text()
        .await
        .expect("body");
    let other_token = csrf_from_html(&other_html).expect("token");
    let foreign = app
        .post_form("/auth/logout", &[("csrf_token", &other_token)])
        .await;
    assert_eq!(foreign.status(), StatusCode::FORBIDDEN);
    assert_eq!(count(&app, "SELECT COUNT(*) FROM sessions").await, 2);
    app.stop().await;
}

#[tokio::test]
async fn sign_out_ends_the_session_on_the_server() {
    let (app, provider) = spawn_with_provider(&[]).await;
    let student = TestPerson::new(&app.base);
    let callback = oidc::sign_in(&app, &student.client, &provider, STUDENT).await;
    let cookie = session_cookie(&callback).expect("cookie");
    let pair = cookie.split(';').next().expect("name=value").to_owned();

    let out = student.submit("/auth/logout", &[]).await;
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&out), "/auth/login");
    assert_eq!(count(&app, "SELECT COUNT(*) FROM sessions").await, 0);

    // Replaying the old cookie by hand gets nowhere.
    let replay = client_builder()
        .build()
        .expect("client")
        .get(app.url("/"))
        .header(header::COOKIE, pair)
        .send()
        .await
        .expect("home");
    assert_eq!(replay.status(), StatusCode::SEE_OTHER);
    assert!(location(&replay).starts_with("/auth/login"));
    app.stop().await;
}

#[tokio::test]
async fn idle_and_absolute_session_limits_are_honoured() {
    let (app, provider) = spawn_with_provider(&[
        "--session-idle-secs",
        "600",
        "--session-lifetime-secs",
        "3600",
    ])
    .await;
    oidc::sign_in(&app, &app.client, &provider, STUDENT).await;
    assert_eq!(app.get("/").await.status(), StatusCode::OK);

    // Eleven minutes without a request: past the idle limit.
    sqlx::query("UPDATE sessions SET last_seen_at = last_seen_at - 660")
        .execute(&app.db)
        .await
        .expect("ageing the session");
    app.forget_cached();
    assert_eq!(app.get("/").await.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        count(&app, "SELECT COUNT(*) FROM sessions").await,
        0,
        "deleted"
    );

    // Active all along, but past the absolute lifetime.
    oidc::sign_in(&app, &app.client, &provider, STUDENT).await;
    assert_eq!(app.get("/").await.status(), StatusCode::OK);
    sqlx::query("UPDATE sessions SET expires_at = strftime('%s', 'now') - 1")
        .execute(&app.db)
        .await
        .expect("ending the lifetime");
    app.forget_cached();
    assert_eq!(app.get("/").await.status(), StatusCode::SEE_OTHER);
    app.stop().await;
}

#[tokio::test]
async fn the_session_id_changes_at_every_sign_in() {
    let (app, provider) = spawn_with_provider(&[]).await;
    let first = session_cookie(&oidc::sign_in(&app, &app.client, &provider, STUDENT).await)
        .expect("cookie");
    let second = session_cookie(&oidc::sign_in(&app, &app.client, &provider, STUDENT).await)
        .expect("cookie");
    assert_ne!(first.split(';').next(), second.split(';').next());
    assert_eq!(
        count(&app, "SELECT COUNT(*) FROM sessions").await,
        1,
        "the old one is gone"
    );
    app.stop().await;
}

#[tokio::test]
async fn https_public_urls_get_host_prefixed_secure_cookies() {
    let app =
        TestApp::spawn_with(&["--dev-login", "--public-url", "https://berth.example.edu"]).await;
    // Behind its TLS proxy, Berth is reached by its public name.
    let response = app
        .client
        .post(app.url("/auth/dev"))
        .header(header::HOST, "berth.example.edu")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body("email=student%40purdue.edu&next=%2F")
        .send()
        .await
        .expect("POST");
    let cookie = session_cookie(&response).expect("cookie");
    assert!(cookie.starts_with("__Host-berth_session="), "{cookie}");
    assert!(cookie.contains("Secure"), "{cookie}");
    assert!(cookie.contains("Path=/"), "{cookie}");
    app.stop().await;
}

#[tokio::test]
async fn dev_sign_in_is_refused_on_a_non_loopback_address() {
    let cli = <berth::config::Cli as clap::Parser>::try_parse_from([
        "berth",
        "serve",
        "--listen",
        "0.0.0.0:0",
        "--dev-login",
        "--database",
        "/nonexistent/never-created.db",
    ])
    .expect("arguments parse");
    let berth::config::Command::Serve(config) = cli.command else {
        panic!("serve")
    };
    let error = match berth::app::Application::build(*config).await {
        Ok(_) => panic!("Berth must refuse --dev-login on 0.0.0.0"),
        Err(error) => format!("{error:#}"),
    };
    assert!(error.contains("loopback"), "{error}");
    assert!(!std::path::Path::new("/nonexistent/never-created.db").exists());
}

#[tokio::test]
async fn dev_sign_in_rejects_a_malformed_email_beside_the_field() {
    let app = TestApp::spawn().await;
    let response = app
        .post_form("/auth/dev", &[("email", "not an email"), ("next", "/")])
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = response.text().await.expect("body");
    assert!(html.contains("id=\"email-error\""), "{html}");
    assert!(html.contains("value=\"not an email\""), "the value is kept");
    assert_eq!(count(&app, "SELECT COUNT(*) FROM users").await, 0);
    app.stop().await;
}

#[tokio::test]
async fn sign_in_returns_only_to_same_site_paths() {
    let app = TestApp::spawn().await;
    let response = app
        .post_form(
            "/auth/dev",
            &[("email", STUDENT), ("next", "https://evil.example/")],
        )
        .await;
    assert_eq!(location(&response), "/");
    // A fresh browser: the first one is signed in now, so its form would need a CSRF token.
    let response = post_form(
        &browser(),
        &app.url("/auth/dev"),
        &[("email", STUDENT), ("next", "/some/page?x=1")],
    )
    .await;
    assert_eq!(location(&response), "/some/page?x=1");
    app.stop().await;
}

#[tokio::test]
async fn an_email_taken_by_another_account_cannot_sign_in() {
    let (app, provider) = spawn_with_provider(&[]).await;
    // Someone else (another subject at the same provider) signed in with this
    // address first; the provider now hands it to a second account.
    sqlx::query(
        "INSERT INTO email_owners (email, issuer, subject, bound_at) VALUES (?, ?, 'the-first-owner', 0)",
    )
    .bind(STUDENT)
    .bind(provider.issuer.trim_end_matches('/'))
    .execute(&app.db)
    .await
    .expect("binding the address to another account");
    let response = oidc::sign_in(&app, &app.client, &provider, STUDENT).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(session_cookie(&response).is_none());
    let html = response.text().await.expect("body");
    assert!(html.contains("not allowed to use Berth"), "{html}");
    assert!(html.contains("belongs to another account"), "{html}");
    assert_eq!(count(&app, "SELECT COUNT(*) FROM sessions").await, 0);
    app.stop().await;
}

#[tokio::test]
async fn the_first_account_keeps_its_email() {
    let (app, provider) = spawn_with_provider(&[]).await;
    let first = oidc::sign_in(&app, &app.client, &provider, STUDENT).await;
    assert_eq!(first.status(), StatusCode::SEE_OTHER);
    let (issuer, subject): (String, String) =
        sqlx::query_as("SELECT issuer, subject FROM email_owners WHERE email = ?")
            .bind(STUDENT)
            .fetch_one(&app.db)
            .await
            .expect("the address is bound");
    let (user_issuer, user_subject): (String, String) =
        sqlx::query_as("SELECT issuer, subject FROM users WHERE email = ?")
            .bind(STUDENT)
            .fetch_one(&app.db)
            .await
            .expect("the user");
    assert_eq!((issuer, subject), (user_issuer, user_subject));
    // Signing in again with the same account still works.
    let again = oidc::sign_in(&app, &browser(), &provider, STUDENT).await;
    assert_eq!(again.status(), StatusCode::SEE_OTHER);
    app.stop().await;
}

#[tokio::test]
async fn a_loop_of_sign_in_starts_is_cut_off() {
    let (app, _provider) = spawn_with_provider(&[]).await;
    let mut statuses = Vec::new();
    for _ in 0..25 {
        statuses.push(app.get("/auth/start").await.status());
    }
    assert!(
        statuses[..20].iter().all(|s| *s == StatusCode::SEE_OTHER),
        "{statuses:?}"
    );
    assert_eq!(statuses[24], StatusCode::TOO_MANY_REQUESTS, "{statuses:?}");
    assert!(count(&app, "SELECT COUNT(*) FROM pending_logins").await <= 20);
    app.stop().await;
}

#[tokio::test]
async fn a_second_tab_from_another_origin_cannot_post() {
    let app = TestApp::spawn().await;
    let student = TestPerson::student(&app, STUDENT).await;
    let token = student.csrf_token().await;
    // The right CSRF token, but a page on another site sent the form.
    for (name, value) in [
        ("origin", "http://evil.example"),
        ("origin", "null"),
        ("sec-fetch-site", "cross-site"),
    ] {
        let response = student
            .client
            .post(student.url("/auth/logout"))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(name, value)
            .body(format!("csrf_token={token}"))
            .send()
            .await
            .expect("POST");
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{name}: {value}");
    }
    assert_eq!(
        student.get("/").await.status(),
        StatusCode::OK,
        "still signed in"
    );
    // From Berth's own page it goes through.
    let own = student
        .client
        .post(student.url("/auth/logout"))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header("origin", &app.base)
        .body(format!("csrf_token={token}"))
        .send()
        .await
        .expect("POST");
    assert_eq!(own.status(), StatusCode::SEE_OTHER);
    app.stop().await;
}

#[tokio::test]
async fn a_rebound_dns_name_cannot_use_the_dev_sign_in() {
    let app = TestApp::spawn().await;
    // DNS rebinding: evil.example now resolves to Berth's address, so the
    // browser sends evil.example's Host and Origin.
    let rebound = format!("evil.example:{}", app.addr.port());
    let response = app
        .client
        .post(app.url("/auth/dev"))
        .header(header::HOST, &rebound)
        .header("origin", format!("http://{rebound}"))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body("email=student%40purdue.edu&admin=on&next=%2F")
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(session_cookie(&response).is_none());
    assert_eq!(count(&app, "SELECT COUNT(*) FROM sessions").await, 0);
    app.stop().await;
}

#[tokio::test]
async fn signed_in_pages_are_not_stored_and_https_gets_hsts() {
    let app = TestApp::spawn().await;
    let student = TestPerson::student(&app, STUDENT).await;
    let home = student.get("/").await;
    assert_eq!(
        home.headers()
            .get(header::CACHE_CONTROL)
            .and_then(|v| v.to_str().ok()),
        Some("no-store")
    );
    assert!(
        home.headers()
            .get(header::STRICT_TRANSPORT_SECURITY)
            .is_none()
    );
    app.stop().await;

    let https =
        TestApp::spawn_with(&["--dev-login", "--public-url", "https://berth.example.edu"]).await;
    let login = https.get("/auth/login").await;
    assert!(
        login
            .headers()
            .get(header::STRICT_TRANSPORT_SECURITY)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("max-age=")),
        "{:?}",
        login.headers()
    );
    https.stop().await;
}

#[tokio::test]
async fn an_admin_ends_someones_sessions_at_once() {
    let app = TestApp::spawn().await;
    let student = TestPerson::student(&app, STUDENT).await;
    let other_tab = TestPerson::student(&app, STUDENT).await;
    let admin = TestPerson::admin(&app, ADMIN).await;
    let response = admin
        .submit("/admin/sessions/end", &[("email", STUDENT)])
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    for person in [&student, &other_tab] {
        let page = person.get("/").await;
        assert_eq!(page.status(), StatusCode::SEE_OTHER, "signed out");
        assert!(location(&page).starts_with("/auth/login"));
    }
    let audited: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM audit_log WHERE action = 'sessions.end' AND target = ? AND actor = ?",
    )
    .bind(STUDENT)
    .bind(ADMIN)
    .fetch_one(&app.db)
    .await
    .expect("audit");
    assert_eq!(audited, 1);
    // A student cannot do it.
    let student_again = TestPerson::student(&app, STUDENT).await;
    let refused = student_again
        .submit("/admin/sessions/end", &[("email", ADMIN)])
        .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    app.stop().await;
}

#[tokio::test]
async fn a_removed_admin_is_refused_at_the_next_request() {
    let app = TestApp::spawn().await;
    let admin = TestPerson::admin(&app, ADMIN).await;
    assert_eq!(admin.get("/admin").await.status(), StatusCode::OK);
    // An admin by configuration whose line was taken out of the list (Berth
    // restarted with the new list): the flag stored at sign-in still says
    // admin, and the session they hold stays open. Only the claim is cleared
    // here, standing in for "not on the list, not by the provider's word".
    sqlx::query("UPDATE users SET admin_by_claim = 0 WHERE email = ?")
        .bind(ADMIN)
        .execute(&app.db)
        .await
        .expect("taking the admin claim away");
    app.forget_cached();
    assert_eq!(admin.get("/admin").await.status(), StatusCode::FORBIDDEN);
    app.stop().await;
}

#[tokio::test]
async fn over_https_the_sign_in_state_cookie_is_host_prefixed() {
    let (app, _provider) =
        spawn_with_provider(&["--public-url", "https://berth.example.edu"]).await;
    let response = app.get("/auth/start").await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let cookie = response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.contains("berth_login="))
        .map(str::to_owned)
        .expect("the sign-in state cookie");
    assert!(cookie.starts_with("__Host-berth_login="), "{cookie}");
    assert!(
        cookie.contains("Secure") && cookie.contains("Path=/;"),
        "{cookie}"
    );
    app.stop().await;
}
