//! Registry credentials and images against real registries: the test world's
//! Basic-auth registry and a second distribution instance in token-auth mode
//! (the Bearer challenge Harbor uses) with a small token issuer.
//!
//! Run under the test world: `testenv/run -- cargo test -p berth --test api registries::`.

use crate::helpers::registries::{BasicRegistry, Robot, TokenRegistry, push_image, served_digest};
use crate::helpers::{TestApp, TestPerson, location, unescape};
use reqwest::StatusCode;

const NS: &str = "cs101";

/// Berth with `args`, and an admin signed in to it.
async fn spawn(args: &[String]) -> (TestApp, TestPerson) {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let app = TestApp::spawn_with(&args).await;
    let admin = TestPerson::admin(&app, "admin@purdue.edu").await;
    (app, admin)
}

async fn audit_rows(app: &TestApp, action: &str) -> Vec<(String, String, Option<String>, String)> {
    sqlx::query_as(
        "SELECT actor, outcome, target, COALESCE(namespace, '') FROM audit_log WHERE action = ? ORDER BY id",
    )
    .bind(action)
    .fetch_all(&app.db)
    .await
    .expect("audit rows")
}

async fn credential_ids(app: &TestApp) -> Vec<i64> {
    sqlx::query_scalar("SELECT id FROM registry_credentials ORDER BY id")
        .fetch_all(&app.db)
        .await
        .expect("ids")
}

async fn image_id(app: &TestApp, response: &reqwest::Response) -> i64 {
    let to = location(response);
    let id = to
        .rsplit('/')
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("redirect to an image page, got {to:?}"));
    let exists: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM registry_images WHERE id = ?")
        .bind(id)
        .fetch_one(&app.db)
        .await
        .expect("count");
    assert_eq!(exists, 1);
    id
}

async fn stored_digest(app: &TestApp, id: i64) -> (Option<String>, Option<String>, Option<String>) {
    sqlx::query_as("SELECT digest, tags, check_error FROM registry_images WHERE id = ?")
        .bind(id)
        .fetch_one(&app.db)
        .await
        .expect("image row")
}

#[tokio::test]
async fn basic_auth_valid_credentials_are_saved_and_invalid_ones_refused() {
    let registry = BasicRegistry::from_env();
    let (app, admin) = spawn(&registry.berth_args()).await;
    let path = format!("/namespaces/{NS}/registry");

    let wrong = "wrong-token-8d1f0c";
    let refused = admin
        .submit(
            &path,
            &[
                ("host", &registry.host),
                ("robot", &registry.user),
                ("token", wrong),
                ("expires_on", "2099-01-31"),
            ],
        )
        .await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = refused.text().await.expect("body");
    assert!(html.contains("refused this robot name and token"), "{html}");
    assert!(html.contains("error-summary"), "a summary at the top");
    assert!(
        html.contains(&format!("value=\"{}\"", registry.user)),
        "robot kept"
    );
    assert!(html.contains("value=\"2099-01-31\""), "expiry kept");
    assert!(
        !html.contains(wrong),
        "the token is never put back into a page"
    );
    assert!(credential_ids(&app).await.is_empty(), "nothing saved");
    let failed = audit_rows(&app, "credential.create").await;
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].1, "failed");

    let saved = admin
        .submit(
            &path,
            &[
                ("host", &registry.host),
                ("robot", &registry.user),
                ("token", &registry.password),
                ("expires_on", "2099-01-31"),
                ("check_repository", "demo/add-two"),
            ],
        )
        .await;
    assert_eq!(saved.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&saved), path);
    let (robot, verified): (String, Option<i64>) =
        sqlx::query_as("SELECT robot, verified_at FROM registry_credentials")
            .fetch_one(&app.db)
            .await
            .expect("one credential");
    assert_eq!(robot, registry.user);
    assert!(verified.is_some(), "the registry accepted it");
    let page = admin.get(&path).await.text().await.expect("body");
    assert!(page.contains("expires in"), "expiry shown");
    assert!(!page.contains(&registry.password), "token never shown");
    let audit = audit_rows(&app, "credential.create").await;
    assert_eq!(audit.len(), 2);
    assert_eq!(audit[1].0, "admin@purdue.edu");
    assert_eq!(audit[1].1, "ok");
    assert_eq!(audit[1].3, NS);
    assert!(!format!("{audit:?}").contains(&registry.password));

    // "Save anyway" keeps a credential the registry refused, marked unchecked.
    let anyway = admin
        .submit(
            &path,
            &[
                ("host", &registry.host),
                ("robot", "someone-else"),
                ("token", wrong),
                ("save_anyway", "on"),
            ],
        )
        .await;
    assert_eq!(anyway.status(), StatusCode::SEE_OTHER);
    let unchecked: Option<i64> = sqlx::query_scalar(
        "SELECT verified_at FROM registry_credentials WHERE robot = 'someone-else'",
    )
    .fetch_one(&app.db)
    .await
    .expect("saved");
    assert_eq!(unchecked, None);
    app.stop().await;
}

#[tokio::test]
async fn digests_match_what_the_registry_serves_and_rechecks_follow_the_tag() {
    let registry = BasicRegistry::from_env();
    let (app, admin) = spawn(&registry.berth_args()).await;
    let saved = admin
        .submit(
            &format!("/namespaces/{NS}/registry"),
            &[
                ("host", &registry.host),
                ("robot", &registry.user),
                ("token", &registry.password),
            ],
        )
        .await;
    assert_eq!(saved.status(), StatusCode::SEE_OTHER);
    let credential = credential_ids(&app).await[0].to_string();
    let images = format!("/namespaces/{NS}/images");

    // The demo image testenv pushed.
    let demo = admin
        .submit(
            &images,
            &[
                ("reference", &registry.image),
                ("credential_id", &credential),
            ],
        )
        .await;
    assert_eq!(
        demo.status(),
        StatusCode::SEE_OTHER,
        "registering the demo image"
    );
    let demo_id = image_id(&app, &demo).await;
    let served = served_digest(&registry.host, "demo/add-two", "1.0", &registry.auth()).await;
    let (digest, tags, error) = stored_digest(&app, demo_id).await;
    assert_eq!(digest.as_deref(), Some(served.as_str()));
    assert!(tags.unwrap_or_default().lines().any(|t| t == "1.0"));
    assert_eq!(error, None);
    if let Ok(expected) = std::env::var("TESTENV_IMAGE_DIGEST") {
        assert_eq!(served, expected, "testenv's own record agrees");
    }

    // A fresh repository: push, register, push again to the same tag, re-check.
    let repo = format!(
        "berth-test/app-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let first = push_image(&registry.host, &repo, "v1", &registry.auth()).await;
    let reference = format!("{}/{repo}:v1", registry.host);
    let registered = admin
        .submit(
            &images,
            &[("reference", &reference), ("credential_id", &credential)],
        )
        .await;
    assert_eq!(registered.status(), StatusCode::SEE_OTHER);
    let id = image_id(&app, &registered).await;
    assert_eq!(
        stored_digest(&app, id).await.0.as_deref(),
        Some(first.as_str())
    );
    assert_eq!(
        served_digest(&registry.host, &repo, "v1", &registry.auth()).await,
        first
    );
    let page = admin
        .get(&format!("{images}/{id}"))
        .await
        .text()
        .await
        .expect("body");
    assert!(page.contains(&first), "digest on the page");

    let second = push_image(&registry.host, &repo, "v1", &registry.auth()).await;
    assert_ne!(first, second);
    let recheck = admin.submit(&format!("{images}/{id}/recheck"), &[]).await;
    assert_eq!(recheck.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        stored_digest(&app, id).await.0.as_deref(),
        Some(second.as_str())
    );
    let page = admin
        .get(&format!("{images}/{id}"))
        .await
        .text()
        .await
        .expect("body");
    assert!(page.contains(&second), "the new digest on the page");

    // By digest: resolved to itself.
    let pinned = format!("{}/{repo}@{first}", registry.host);
    let by_digest = admin
        .submit(
            &images,
            &[("reference", &pinned), ("credential_id", &credential)],
        )
        .await;
    assert_eq!(by_digest.status(), StatusCode::SEE_OTHER);
    let pinned_id = image_id(&app, &by_digest).await;
    assert_eq!(
        stored_digest(&app, pinned_id).await.0.as_deref(),
        Some(first.as_str())
    );

    // Unknown tag: a clear error beside the field, nothing registered.
    let count_before = sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM registry_images")
        .fetch_one(&app.db)
        .await
        .expect("count");
    let unknown = format!("{}/{repo}:does-not-exist", registry.host);
    let refused = admin
        .submit(
            &images,
            &[("reference", &unknown), ("credential_id", &credential)],
        )
        .await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = refused.text().await.expect("body");
    assert!(
        html.contains("has no image tagged or with digest does-not-exist"),
        "{html}"
    );
    assert!(html.contains(&format!("value=\"{unknown}\"")), "value kept");
    let count_after = sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM registry_images")
        .fetch_one(&app.db)
        .await
        .expect("count");
    assert_eq!(count_before, count_after);

    // "Register anyway" (about to push): kept, with the reason recorded.
    let anyway = admin
        .submit(
            &images,
            &[
                ("reference", &unknown),
                ("credential_id", &credential),
                ("register_anyway", "on"),
            ],
        )
        .await;
    assert_eq!(anyway.status(), StatusCode::SEE_OTHER);
    let anyway_id = image_id(&app, &anyway).await;
    let (digest, _, error) = stored_digest(&app, anyway_id).await;
    assert_eq!(digest, None);
    assert!(error.unwrap_or_default().contains("does-not-exist"));

    // Images hold on to their credential; delete them first.
    let delete_credential = format!("/namespaces/{NS}/credentials/{credential}/delete");
    let delete = admin
        .submit_form(&delete_credential, &delete_credential, &[])
        .await;
    assert_eq!(delete.status(), StatusCode::SEE_OTHER);
    assert_eq!(credential_ids(&app).await.len(), 1, "still there");
    // Deleting asks first: the image page links to a confirm page whose
    // button posts the delete; showing it changes nothing.
    let page = admin
        .get(&format!("{images}/{demo_id}"))
        .await
        .text()
        .await
        .expect("image page");
    assert!(
        page.contains(&format!("href=\"{images}/{demo_id}/delete\"")),
        "{page}"
    );
    let confirm = admin.get(&format!("{images}/{demo_id}/delete")).await;
    assert_eq!(confirm.status(), StatusCode::OK);
    let confirm = confirm.text().await.expect("confirm page");
    assert!(
        confirm.contains(&format!(
            "<form method=\"post\" action=\"{images}/{demo_id}/delete\""
        )),
        "{confirm}"
    );
    assert!(confirm.contains("Remove the image"), "{confirm}");
    let credentials_page = admin
        .get(&format!("/namespaces/{NS}/registry"))
        .await
        .text()
        .await
        .expect("credentials page");
    assert!(
        credentials_page.contains(&format!(
            "href=\"/namespaces/{NS}/credentials/{credential}/delete\""
        )),
        "{credentials_page}"
    );
    let confirm = admin
        .get(&format!("/namespaces/{NS}/credentials/{credential}/delete"))
        .await;
    assert_eq!(confirm.status(), StatusCode::OK);
    assert!(
        confirm
            .text()
            .await
            .expect("confirm page")
            .contains("Delete the credential")
    );
    assert_eq!(
        audit_rows(&app, "image.delete").await.len(),
        0,
        "asking deleted nothing"
    );
    assert_eq!(credential_ids(&app).await.len(), 1);
    for id in [demo_id, id, pinned_id, anyway_id] {
        let delete_image = format!("{images}/{id}/delete");
        let gone = admin.submit_form(&delete_image, &delete_image, &[]).await;
        assert_eq!(gone.status(), StatusCode::SEE_OTHER);
    }
    let delete = admin
        .submit_form(&delete_credential, &delete_credential, &[])
        .await;
    assert_eq!(delete.status(), StatusCode::SEE_OTHER);
    assert!(credential_ids(&app).await.is_empty());
    let outcomes: Vec<String> = audit_rows(&app, "credential.delete")
        .await
        .into_iter()
        .map(|r| r.1)
        .collect();
    assert_eq!(outcomes, ["denied", "ok"]);
    assert_eq!(audit_rows(&app, "image.delete").await.len(), 4);
    app.stop().await;
}

#[tokio::test]
async fn harbor_style_bearer_flow_with_a_dollar_robot() {
    let good = Robot {
        name: "robot$demo+ci".into(),
        token: format!("tok{}", uuid::Uuid::new_v4().simple()),
        project: "demo".into(),
    };
    let other = Robot {
        name: "robot$other+ci".into(),
        token: format!("tok{}", uuid::Uuid::new_v4().simple()),
        project: "other".into(),
    };
    let registry = TokenRegistry::start(vec![good.clone(), other.clone()]).await;
    let pushed = push_image(
        &registry.host,
        "demo/app",
        "1.0",
        &registry.push_auth("demo/app"),
    )
    .await;
    let (app, admin) = spawn(&registry.berth_args()).await;
    let path = format!("/namespaces/{NS}/registry");

    // Wrong token: the issuer refuses it.
    let refused = admin
        .submit(
            &path,
            &[
                ("host", &registry.host),
                ("robot", &good.name),
                ("token", "nope"),
            ],
        )
        .await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = refused.text().await.expect("body");
    assert!(html.contains("refused this robot name and token"), "{html}");
    assert!(
        unescape(&html).contains("value=\"robot$demo+ci\""),
        "robot kept with its $"
    );

    // A valid robot without access to the repository: told so.
    let no_access = admin
        .submit(
            &path,
            &[
                ("host", &registry.host),
                ("robot", &other.name),
                ("token", &other.token),
                ("check_repository", "demo/app"),
            ],
        )
        .await;
    assert_eq!(no_access.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = no_access.text().await.expect("body");
    assert!(
        html.contains("no access to the repository demo/app"),
        "{html}"
    );
    assert!(!html.contains(&other.token));

    // The right robot: checked through the Bearer challenge, saved.
    let saved = admin
        .submit(
            &path,
            &[
                ("host", &registry.host),
                ("robot", &good.name),
                ("token", &good.token),
                ("check_repository", "demo/app"),
            ],
        )
        .await;
    assert_eq!(saved.status(), StatusCode::SEE_OTHER);
    let requests = registry.token_requests();
    assert!(
        requests.iter().any(|(user, scopes)| user == "robot$demo+ci"
            && scopes == &["repository:demo/app:pull".to_owned()]),
        "Berth asked the realm for a pull token as the robot: {requests:?}"
    );
    let credential = credential_ids(&app).await[0].to_string();

    // Register by tag: the digest is what the registry serves.
    let images = format!("/namespaces/{NS}/images");
    let reference = format!("{}/demo/app:1.0", registry.host);
    let registered = admin
        .submit(
            &images,
            &[("reference", &reference), ("credential_id", &credential)],
        )
        .await;
    assert_eq!(registered.status(), StatusCode::SEE_OTHER);
    let id = image_id(&app, &registered).await;
    let served = served_digest(
        &registry.host,
        "demo/app",
        "1.0",
        &registry.push_auth("demo/app"),
    )
    .await;
    assert_eq!(served, pushed);
    assert_eq!(
        stored_digest(&app, id).await.0.as_deref(),
        Some(pushed.as_str())
    );

    // The image page: exact docker commands, the robot quoted so `$` survives.
    let page = unescape(
        &admin
            .get(&format!("{images}/{id}"))
            .await
            .text()
            .await
            .expect("body"),
    );
    for command in [
        "docker build -t app:1.0 .".to_owned(),
        format!("docker tag app:1.0 {}/demo/app:1.0", registry.host),
        format!("docker login {} --username 'robot$demo+ci'", registry.host),
        format!("docker push {}/demo/app:1.0", registry.host),
    ] {
        assert!(page.contains(&command), "{command} in {page}");
    }
    assert!(
        !page.contains(&good.token),
        "the token is not on the image page"
    );
    // It links to the deploy form with the image chosen.
    assert!(
        page.contains(&format!(
            "href=\"/namespaces/{NS}/workloads/new?image={id}\""
        )),
        "{page}"
    );

    // Unknown tag through Bearer: clear error.
    let unknown = format!("{}/demo/app:2.0", registry.host);
    let refused = admin
        .submit(
            &images,
            &[("reference", &unknown), ("credential_id", &credential)],
        )
        .await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        refused
            .text()
            .await
            .expect("body")
            .contains("has no image tagged or with digest 2.0")
    );

    // Replace the token: re-checked and re-sealed in place; audited.
    let before: (Vec<u8>, Vec<u8>) =
        sqlx::query_as("SELECT nonce, sealed_token FROM registry_credentials")
            .fetch_one(&app.db)
            .await
            .expect("row");
    let replaced = admin
        .submit(
            &format!("/namespaces/{NS}/credentials/{credential}/replace"),
            &[("robot", &good.name), ("token", &good.token)],
        )
        .await;
    assert_eq!(replaced.status(), StatusCode::SEE_OTHER);
    let after: (Vec<u8>, Vec<u8>) =
        sqlx::query_as("SELECT nonce, sealed_token FROM registry_credentials")
            .fetch_one(&app.db)
            .await
            .expect("row");
    assert_ne!(before, after, "a fresh nonce on every write");
    let audit = audit_rows(&app, "credential.replace").await;
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].1, "ok");
    app.stop().await;
}

#[tokio::test]
async fn hosts_outside_the_allow_list_and_metadata_addresses_are_not_contacted() {
    let (app, admin) = spawn(&[
        "--dev-login".into(),
        "--allowed-registries".into(),
        "169.254.169.254".into(),
        "--insecure-registries".into(),
        "169.254.169.254".into(),
    ])
    .await;
    let path = format!("/namespaces/{NS}/registry");
    let elsewhere = admin
        .submit(
            &path,
            &[("host", "evil.example.com"), ("robot", "r"), ("token", "t")],
        )
        .await;
    assert_eq!(elsewhere.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = elsewhere.text().await.expect("body");
    assert!(
        html.contains("Berth may only contact these registries: 169.254.169.254"),
        "{html}"
    );

    let metadata = admin
        .submit(
            &path,
            &[("host", "169.254.169.254"), ("robot", "r"), ("token", "t")],
        )
        .await;
    assert_eq!(metadata.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = metadata.text().await.expect("body");
    assert!(
        html.contains("Berth refuses to contact 169.254.169.254"),
        "{html}"
    );
    assert!(html.contains("link-local"), "{html}");
    assert!(credential_ids(&app).await.is_empty());
    app.stop().await;
}

#[tokio::test]
async fn a_redirect_to_another_host_is_not_followed_with_credentials() {
    use axum::{
        Router,
        http::{HeaderMap, StatusCode as S, header},
        response::IntoResponse,
        routing::get,
    };
    use std::sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    };
    // The other host: counts every request that reaches it.
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let other = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let other_addr = other.local_addr().expect("addr");
    tokio::spawn(async move {
        let router = Router::new().fallback(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            async { "hello" }
        });
        let _ = axum::serve(other, router).await;
    });
    // A "registry" that asks for Basic, then redirects /v2/ to the other host.
    let registry = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let registry_addr = registry.local_addr().expect("addr");
    tokio::spawn(async move {
        let router = Router::new().route(
            "/v2/",
            get(move |headers: HeaderMap| async move {
                if headers.contains_key(header::AUTHORIZATION) {
                    (
                        S::TEMPORARY_REDIRECT,
                        [(header::LOCATION, format!("http://{other_addr}/v2/"))],
                    )
                        .into_response()
                } else {
                    (
                        S::UNAUTHORIZED,
                        [(header::WWW_AUTHENTICATE, "Basic realm=\"test\"".to_owned())],
                    )
                        .into_response()
                }
            }),
        );
        let _ = axum::serve(registry, router).await;
    });
    let both = format!("{registry_addr},{other_addr}");
    let (app, admin) = spawn(&[
        "--dev-login".into(),
        "--allowed-registries".into(),
        both.clone(),
        "--insecure-registries".into(),
        both,
    ])
    .await;
    let response = admin
        .submit(
            &format!("/namespaces/{NS}/registry"),
            &[
                ("host", &registry_addr.to_string()),
                ("robot", "r"),
                ("token", "t"),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = response.text().await.expect("body");
    assert!(
        html.contains("does not send credentials to another host"),
        "{html}"
    );
    assert_eq!(
        hits.load(Ordering::SeqCst),
        0,
        "the other host was never contacted"
    );
    app.stop().await;
}

#[tokio::test]
async fn only_members_reach_a_namespaces_registry_pages() {
    let app = TestApp::spawn().await;
    let student = TestPerson::student(&app, "student@purdue.edu").await;
    let page = student.get(&format!("/namespaces/{NS}/registry")).await;
    assert_eq!(page.status(), StatusCode::NOT_FOUND);
    let post = student
        .submit(
            &format!("/namespaces/{NS}/registry"),
            &[
                ("host", "geddes-registry.rcac.purdue.edu"),
                ("robot", "r"),
                ("token", "t"),
            ],
        )
        .await;
    assert_eq!(post.status(), StatusCode::NOT_FOUND);
    let denied = audit_rows(&app, "credential.create").await;
    assert_eq!(denied.len(), 1);
    assert_eq!(denied[0].1, "denied");
    assert_eq!(
        student
            .get("/namespaces/Not_A_Label/registry")
            .await
            .status(),
        StatusCode::NOT_FOUND
    );

    sqlx::query(
        "INSERT INTO memberships (namespace, email, role, added_by, added_at)
         VALUES (?, 'student@purdue.edu', 'member', 'admin@purdue.edu', 0)",
    )
    .bind(NS)
    .execute(&app.db)
    .await
    .expect("membership");
    app.forget_cached();
    let page = student.get(&format!("/namespaces/{NS}/registry")).await;
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.expect("body");
    assert!(html.contains("Add a credential"));
    assert!(
        html.contains("value=\"geddes-registry.rcac.purdue.edu\""),
        "default registry"
    );
    let images = student.get(&format!("/namespaces/{NS}/images")).await;
    assert_eq!(images.status(), StatusCode::OK);
    app.stop().await;
}
