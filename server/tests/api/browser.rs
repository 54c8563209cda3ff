//! Berth in a real browser (headless Chromium, JavaScript off): the pages a
//! person sees work without script, under Berth's own CSP.

use crate::helpers::{TestApp, browser::Browser};

#[tokio::test]
async fn a_student_signs_in_and_out_with_javascript_off() {
    let app = TestApp::spawn().await;
    let browser = Browser::start().await;

    browser.goto(&app.url("/")).await;
    assert_eq!(browser.url().await, app.url("/auth/login?next=%2F"));
    assert_eq!(browser.title().await, "Sign in · Berth");

    browser.fill("#email", "student@purdue.edu").await;
    browser
        .click("form[action='/auth/dev'] button[type=submit]")
        .await;
    assert_eq!(browser.url().await, app.url("/"));
    let home = browser.source().await;
    assert!(home.contains("Hello, student@purdue.edu"), "{home}");
    if let Ok(path) = std::env::var("BERTH_SCREENSHOT_DIR") {
        let _ = std::fs::write(format!("{path}/home.png"), browser.screenshot().await);
    }

    browser.click(".site-header form button").await;
    browser.wait_for_url(&app.url("/auth/login")).await;
    browser.goto(&app.url("/")).await;
    assert!(
        browser.url().await.starts_with(&app.url("/auth/login")),
        "signed out for real"
    );

    browser.quit().await;
    app.stop().await;
}

#[tokio::test]
async fn a_bad_email_is_shown_beside_the_field_in_the_browser() {
    let app = TestApp::spawn().await;
    let browser = Browser::start().await;
    browser.goto(&app.url("/auth/login")).await;
    browser.fill("#email", "not-an-email").await;
    browser
        .click("form[action='/auth/dev'] button[type=submit]")
        .await;
    let page = browser
        .wait_for_source("the message beside the field", |html| {
            html.contains("id=\"email-error\"")
        })
        .await;
    assert!(page.contains("Enter an email address"), "{page}");
    browser.quit().await;
    app.stop().await;
}
