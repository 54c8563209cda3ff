//! A real browser for tests: Debian's Chromium, headless, with JavaScript
//! switched off (every Berth page must work without it), driven through
//! ChromeDriver's W3C WebDriver protocol over plain HTTP.

use std::{process::Stdio, time::Duration};

use serde_json::{Value, json};
use tokio::process::{Child, Command};

const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A ChromeDriver process and one browser session in it.
pub struct Browser {
    driver: Child,
    base: String,
    session: String,
    http: reqwest::Client,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts ChromeDriver on a free port and opens a headless Chromium session
    /// with JavaScript off.
    pub async fn start() -> Self {
        Self::start_with(false).await
    }

    /// Like [`Browser::start`], with the page's JavaScript on: what a person
    /// with JavaScript sees (the progressive enhancements run too).
    pub async fn start_with_javascript() -> Self {
        Self::start_with(true).await
    }

    async fn start_with(javascript: bool) -> Self {
        let chromedriver = std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".into());
        let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
        let port = {
            let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
            probe.local_addr().expect("address").port()
        };
        let driver = Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "starting {chromedriver} ({e}): testenv/test installs Debian's chromium-driver"
                )
            });
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let ready = http.get(format!("{base}/status")).send().await;
            if let Ok(response) = ready {
                let status: Value = response.json().await.unwrap_or_default();
                if status["value"]["ready"] == true {
                    break;
                }
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "ChromeDriver did not become ready"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let profile = tempfile::tempdir().expect("a profile folder");
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    "--window-size=1200,900",
                    // Berth listens on 127.0.0.1 only; see `helpers::loopback_v4`.
                    "--host-resolver-rules=MAP localhost 127.0.0.1",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
                "prefs": {"profile.managed_default_content_settings.javascript":
                    if javascript { 1 } else { 2 }},
            },
        }}});
        let created: Value = http
            .post(format!("{base}/session"))
            .json(&capabilities)
            .send()
            .await
            .expect("ChromeDriver answers")
            .json()
            .await
            .expect("session JSON");
        let session = created["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no browser session: {created}"))
            .to_owned();
        Self {
            driver,
            base,
            session,
            http,
            _profile: profile,
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        let mut request = self.http.request(method, url);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let answer: Value = request
            .send()
            .await
            .expect("ChromeDriver answers")
            .json()
            .await
            .expect("WebDriver JSON");
        if answer["value"].get("error").is_some() {
            panic!("WebDriver {path}: {}", answer["value"]);
        }
        answer["value"].clone()
    }

    /// Opens a URL.
    pub async fn goto(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", Some(json!({"url": url})))
            .await;
    }

    /// Signs in through the dev sign-in form of the Berth at `base` (its
    /// `http://…` root, no trailing slash), as an admin if `admin`, and waits
    /// for the dashboard.
    pub async fn sign_in(&self, base: &str, email: &str, admin: bool) {
        self.goto(&format!("{base}/auth/login")).await;
        self.fill("#email", email).await;
        if admin {
            self.click("input[name=admin]").await;
        }
        self.click("form[action='/auth/dev'] button[type=submit]")
            .await;
        // Exactly the dashboard: the login page's own URL starts with `{base}/`
        // too, and a goto sent while the sign-in is still under way lands on it.
        let dashboard = format!("{base}/");
        self.wait_for_url_where(&dashboard, |url| url == dashboard)
            .await;
    }

    /// The URL the browser is on.
    pub async fn url(&self) -> String {
        self.call(reqwest::Method::GET, "/url", None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Waits (up to twenty seconds) until the page's source satisfies `done`
    /// and returns it: a click's navigation may still be under way when the
    /// click answers, and a form that redirects to the same URL gives no other
    /// sign that it is done.
    pub async fn wait_for_source(&self, what: &str, done: impl Fn(&str) -> bool) -> String {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let html = self.source().await;
            if done(&html) {
                return html;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the page never showed {what}:\n{html}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Waits (up to twenty seconds: a submit may wait on the registry or the
    /// apiserver) until the browser is on a URL that starts with `prefix`, and
    /// returns that URL; a click's navigation may still be under way when the
    /// click answers.
    pub async fn wait_for_url(&self, prefix: &str) -> String {
        self.wait_for_url_where(&format!("{prefix}…"), |url| url.starts_with(prefix))
            .await
    }

    async fn wait_for_url_where(&self, expected: &str, done: impl Fn(&str) -> bool) -> String {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let url = self.url().await;
            if done(&url) {
                return url;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the browser stayed on {url}, expected {expected}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The page's title.
    pub async fn title(&self) -> String {
        self.call(reqwest::Method::GET, "/title", None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// The current DOM as HTML.
    pub async fn source(&self) -> String {
        self.call(reqwest::Method::GET, "/source", None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    async fn find(&self, css: &str) -> String {
        let found = self
            .call(
                reqwest::Method::POST,
                "/element",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        found[ELEMENT_KEY]
            .as_str()
            .unwrap_or_else(|| panic!("no element matches {css}"))
            .to_owned()
    }

    /// Replaces the text in the field matching `css`.
    pub async fn fill(&self, css: &str, text: &str) {
        let id = self.find(css).await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{id}/clear"),
            Some(json!({})),
        )
        .await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{id}/value"),
            Some(json!({"text": text})),
        )
        .await;
    }

    /// Chooses the file at `path` in the file input matching `css`.
    pub async fn choose_file(&self, css: &str, path: &std::path::Path) {
        let id = self.find(css).await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{id}/value"),
            Some(json!({"text": path.to_string_lossy()})),
        )
        .await;
    }

    /// Clicks the element matching `css`.
    pub async fn click(&self, css: &str) {
        let id = self.find(css).await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{id}/click"),
            Some(json!({})),
        )
        .await;
    }

    /// A PNG screenshot of the viewport.
    pub async fn screenshot(&self) -> Vec<u8> {
        use base64::Engine;
        let data = self.call(reqwest::Method::GET, "/screenshot", None).await;
        base64::engine::general_purpose::STANDARD
            .decode(data.as_str().unwrap_or_default())
            .expect("screenshot is base64")
    }

    /// Presses Tab once, as a keyboard user moves focus.
    pub async fn press_tab(&self) {
        let tab = "\u{E004}";
        self.call(
            reqwest::Method::POST,
            "/actions",
            Some(
                json!({"actions": [{"type": "key", "id": "keyboard", "actions": [
                {"type": "keyDown", "value": tab}, {"type": "keyUp", "value": tab}]}]}),
            ),
        )
        .await;
    }

    /// Types `text` into whatever has focus, key by key (a newline is Enter),
    /// as a person at the keyboard does: for widgets such as a terminal that
    /// read key events rather than a field's value.
    pub async fn type_keys(&self, text: &str) {
        let mut keys = Vec::new();
        for c in text.chars() {
            let key = if c == '\n' {
                "\u{E007}".to_owned()
            } else {
                c.to_string()
            };
            keys.push(json!({"type": "keyDown", "value": key}));
            keys.push(json!({"type": "keyUp", "value": key}));
        }
        self.call(
            reqwest::Method::POST,
            "/actions",
            Some(json!({"actions": [{"type": "key", "id": "keyboard", "actions": keys}]})),
        )
        .await;
    }

    /// Runs `script` in the page (WebDriver execute script) and returns what it returns.
    pub async fn run_script(&self, script: &str) -> Value {
        self.call(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({"script": script, "args": []})),
        )
        .await
    }

    /// Runs axe-core over the page the browser is on (WCAG 2.0/2.1 A and AA,
    /// and axe's best practices) and returns its violations, each as one
    /// readable paragraph. axe.min.js is injected through WebDriver's execute
    /// script, which the page's CSP does not govern.
    pub async fn axe(&self) -> Vec<String> {
        let source = axe_source();
        self.call(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({"script": source, "args": []})),
        )
        .await;
        let script = r#"
            const done = arguments[arguments.length - 1];
            axe.run(document, {runOnly: {type: "tag", values:
                ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]}})
              .then(result => done(result.violations.map(v => ({
                  id: v.id, impact: v.impact, help: v.help,
                  nodes: v.nodes.map(n => ({target: n.target.join(" "), summary: n.failureSummary}))}))))
              .catch(error => done([{id: "axe-error", impact: "error", help: String(error), nodes: []}]));
        "#;
        let _ = self
            .http
            .post(format!("{}/session/{}/timeouts", self.base, self.session))
            .json(&json!({"script": 120_000}))
            .send()
            .await;
        let violations = self
            .call(
                reqwest::Method::POST,
                "/execute/async",
                Some(json!({"script": script, "args": []})),
            )
            .await;
        violations
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|v| {
                let nodes: Vec<String> = v["nodes"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .iter()
                    .map(|n| {
                        format!(
                            "    at {}: {}",
                            n["target"].as_str().unwrap_or_default(),
                            n["summary"].as_str().unwrap_or_default().replace('\n', " ")
                        )
                    })
                    .collect();
                format!(
                    "{} ({}): {}\n{}",
                    v["id"].as_str().unwrap_or_default(),
                    v["impact"].as_str().unwrap_or_default(),
                    v["help"].as_str().unwrap_or_default(),
                    nodes.join("\n")
                )
            })
            .collect()
    }

    /// Ends the session and the driver.
    pub async fn quit(mut self) {
        let _ = self
            .http
            .delete(format!("{}/session/{}", self.base, self.session))
            .send()
            .await;
        let _ = self.driver.kill().await;
    }
}

/// axe.min.js, installed (once, pinned) by `install-axe.sh` into a cache
/// folder outside the repository.
fn axe_source() -> String {
    static SOURCE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SOURCE
        .get_or_init(|| {
            let script = concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/api/helpers/install-axe.sh"
            );
            let output = std::process::Command::new("bash")
                .arg(script)
                .output()
                .expect("running install-axe.sh");
            assert!(
                output.status.success(),
                "installing axe-core failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
            let path = String::from_utf8_lossy(&output.stdout).trim().to_owned();
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"))
        })
        .clone()
}
