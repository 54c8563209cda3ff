//! Every page through axe-core in a real Chromium: WCAG 2.0/2.1 A and AA and
//! axe's best practices, with no violations. axe is injected through
//! WebDriver's execute script (the CSP governs only the page's own scripts);
//! the page's JavaScript is on, so the progressive enhancements (copy
//! buttons) are checked too. A failure prints each violation with the
//! elements it found.

use crate::helpers::registries::{BasicRegistry, registry_args};
use crate::helpers::{TestApp, TestPerson, browser::Browser, cluster, location, unique};
use reqwest::StatusCode;

const ADMIN: &str = "prof@purdue.edu";

/// Opens each path and runs axe over it; fails with every violation of
/// every page at once.
async fn check_pages(browser: &Browser, app: &TestApp, paths: &[String]) {
    let mut report = Vec::new();
    for path in paths {
        browser.goto(&app.url(path)).await;
        // A starting workload's page reloads itself; stop it as a person
        // can, so the page stays put while axe reads it.
        browser
            .run_script("document.querySelector('#auto-refresh button')?.click()")
            .await;
        let title = browser.title().await;
        let violations = browser.axe().await;
        if !violations.is_empty() {
            report.push(format!(
                "{path} ({title}): {} violation(s)\n{}",
                violations.len(),
                violations.join("\n")
            ));
        }
    }
    assert!(
        report.is_empty(),
        "axe found violations on {} of {} pages:\n\n{}",
        report.len(),
        paths.len(),
        report.join("\n\n")
    );
}

#[tokio::test]
async fn pages_without_a_cluster_pass_axe_and_the_first_tab_reaches_the_skip_link() {
    let app = TestApp::spawn().await;
    let browser = Browser::start_with_javascript().await;
    check_pages(&browser, &app, &["/auth/login".to_owned()]).await;
    browser.sign_in(&app.base, ADMIN, true).await;

    // Keyboard only: the first Tab lands on the skip link, which shows, with
    // a visible focus ring, and leads to the main content.
    browser.goto(&app.url("/")).await;
    browser.press_tab().await;
    let focused = browser
        .run_script(
            "const a = document.activeElement; const style = getComputedStyle(a); \
             const box = a.getBoundingClientRect(); \
             return {text: a.textContent, href: a.getAttribute('href'), \
                     outline: style.outlineStyle, width: style.outlineWidth, top: box.top, height: box.height}",
        )
        .await;
    assert_eq!(focused["text"], "Skip to the content", "{focused}");
    assert_eq!(focused["href"], "#main", "{focused}");
    assert_ne!(focused["outline"], "none", "a focus ring: {focused}");
    assert!(
        focused["top"].as_f64().is_some_and(|t| t >= 0.0)
            && focused["height"].as_f64().is_some_and(|h| h > 0.0),
        "the skip link is on screen when focused: {focused}"
    );

    let paths: Vec<String> = ["/", "/admin", "/admin/audit", "/no/such/page"]
        .map(str::to_owned)
        .to_vec();
    check_pages(&browser, &app, &paths).await;
    browser.quit().await;
    app.stop().await;
}

#[tokio::test]
async fn every_page_of_a_namespace_has_no_axe_violations() {
    let registry = BasicRegistry::from_env();
    let args = registry_args(&registry.host);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let app = TestApp::spawn_in_cluster(&args).await;
    let ns = unique("t-a11y");
    let admin = TestPerson::admin(&app, ADMIN).await;
    admin.create_namespace(&ns, &[]).await;
    admin.add_member(&ns, ADMIN, "owner").await;
    admin.add_member(&ns, "student@purdue.edu", "member").await;
    let saved = admin
        .submit(
            &format!("/namespaces/{ns}/registry"),
            &[
                ("host", &registry.host),
                ("robot", &registry.user),
                ("token", &registry.password),
            ],
        )
        .await;
    assert_eq!(saved.status(), StatusCode::SEE_OTHER);
    let credential: i64 =
        sqlx::query_scalar("SELECT id FROM registry_credentials WHERE namespace = ?")
            .bind(&ns)
            .fetch_one(&app.db)
            .await
            .expect("credential row");
    // Expiring in three days: the dashboard's "Robot tokens to replace" and
    // the kubeconfig download are on the pages checked below.
    sqlx::query("UPDATE registry_credentials SET expires_on = date('now', '+3 days') WHERE id = ?")
        .bind(credential)
        .execute(&app.db)
        .await
        .expect("an expiry within the warning days");
    app.forget_cached();
    let registered = admin
        .submit(
            &format!("/namespaces/{ns}/images"),
            &[
                ("reference", &registry.image),
                ("credential_id", &credential.to_string()),
            ],
        )
        .await;
    assert_eq!(registered.status(), StatusCode::SEE_OTHER);
    let image = location(&registered);
    let deployed = admin
        .submit(
            &format!("/namespaces/{ns}/workloads"),
            &[
                ("action", "deploy"),
                ("name", "web"),
                ("image_source", "public"),
                ("image", "quay.io/example/web:1.0"),
                ("replicas", "1"),
                ("container_port", "8080"),
                ("exposure", "campus"),
                ("published_port", "80"),
                ("target_port", "8080"),
                ("protocol", "TCP"),
                ("volume", "none"),
            ],
        )
        .await;
    assert_eq!(
        deployed.status(),
        StatusCode::SEE_OTHER,
        "{}",
        deployed.text().await.unwrap_or_default()
    );

    let browser = Browser::start_with_javascript().await;
    browser.sign_in(&app.base, ADMIN, true).await;
    let paths: Vec<String> = [
        "/".to_owned(),
        "/admin/namespaces".to_owned(),
        "/admin/namespaces/new".to_owned(),
        "/courses".to_owned(),
        "/courses/new".to_owned(),
        format!("/admin/namespaces/{ns}"),
        format!("/admin/namespaces/{ns}/edit"),
        format!("/admin/namespaces/{ns}/delete"),
        format!("/admin/namespaces/{ns}/members/remove?email=student%40purdue.edu"),
        format!("/namespaces/{ns}/registry"),
        format!("/namespaces/{ns}/credentials/{credential}/replace"),
        format!("/namespaces/{ns}/credentials/{credential}/delete"),
        format!("/namespaces/{ns}/images"),
        image.clone(),
        format!("{image}/delete"),
        format!("/namespaces/{ns}/workloads"),
        format!("/namespaces/{ns}/workloads/new"),
        format!("/namespaces/{ns}/workloads/new?preset=jupyter"),
        format!("/namespaces/{ns}/workloads/web"),
        format!("/namespaces/{ns}/workloads/web/edit"),
        format!("/namespaces/{ns}/workloads/web/delete"),
        "/admin/audit".to_owned(),
    ]
    .to_vec();
    check_pages(&browser, &app, &paths).await;

    // With JavaScript, every command gets a copy button (copy.js); the text
    // itself stays a plain <pre> either way.
    browser
        .goto(&app.url(&format!("/namespaces/{ns}/workloads/web")))
        .await;
    let counts = browser
        .run_script(
            "return [document.querySelectorAll('pre.command').length, \
             document.querySelectorAll('pre.command + .copy-bar > button.copy-button').length]",
        )
        .await;
    assert!(
        counts[0].as_u64().is_some_and(|n| n >= 1) && counts[0] == counts[1],
        "one copy button per command: {counts}"
    );

    // A deploy form with its errors shown.
    browser
        .goto(&app.url(&format!("/namespaces/{ns}/workloads/new")))
        .await;
    browser.fill("#name", "Bad_Name").await;
    browser.fill("#replicas", "-1").await;
    browser.click("button[value=deploy]").await;
    browser
        .wait_for_source("the error summary", |html| html.contains("error-summary"))
        .await;
    let violations = browser.axe().await;
    assert!(
        violations.is_empty(),
        "the deploy form with errors: {}",
        violations.join("\n")
    );

    browser.quit().await;
    cluster::delete_namespace(&cluster::admin().await, &ns).await;
    app.stop().await;
}
