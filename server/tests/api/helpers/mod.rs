//! The shared set-up of the tests: start the real Berth on port 0 with a fresh
//! SQLite file, and talk to it like a browser (cookies kept, redirects not
//! followed so tests can assert on them).

pub mod berth_sa;
pub mod browser;
pub mod cluster;
pub mod oidc;
pub mod registries;

use std::net::SocketAddr;

use berth::{
    app::Application,
    config::{Cli, Command},
};
use clap::Parser;
use reqwest::{Response, StatusCode, header};
use sqlx::SqlitePool;
use tempfile::TempDir;
use tokio::sync::oneshot;

/// A running Berth and a browser-like client for it.
pub struct TestApp {
    /// Where it listens.
    pub addr: SocketAddr,
    /// `http://localhost:<port>`.
    pub base: String,
    /// The same database the server uses.
    pub db: SqlitePool,
    /// The database file, for tests that read its bytes.
    pub db_path: std::path::PathBuf,
    /// The default browser.
    pub client: reqwest::Client,
    /// Where the metrics listener is, when started with `--metrics-addr`.
    pub metrics_addr: Option<SocketAddr>,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
    _dir: TempDir,
}

/// `localhost` as the tests mean it: 127.0.0.1, where Berth listens. Left to
/// the resolver it may be `::1` first, where another test's helper process
/// (ChromeDriver listens on both) can hold the same port number.
pub fn loopback_v4() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// A name no other test uses: `<prefix>-` and eight hex digits.
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    )
}

/// A variable `testenv/run` sets; outside it, a panic that says so.
pub fn testenv_var(name: &str) -> String {
    std::env::var(name)
        .unwrap_or_else(|_| panic!("{name} is not set: run the tests under testenv/run"))
}

/// A new cookie-keeping client that does not follow redirects.
pub fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .resolve("localhost", loopback_v4())
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("building a reqwest client")
}

impl TestApp {
    /// Berth with the dev sign-in and default settings.
    pub async fn spawn() -> Self {
        Self::spawn_with(&["--dev-login"]).await
    }

    /// Berth with extra `berth serve` arguments (flags as a person would type them).
    pub async fn spawn_with(extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("creating a temp dir");
        let db_path = dir.path().join("berth.db");
        let db_arg = db_path.to_string_lossy().into_owned();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding port 0");
        let addr = listener.local_addr().expect("bound address");
        // `localhost`, not 127.0.0.1: the test OIDC provider accepts any port
        // in a redirect URI only for http://localhost (RFC 8252 loopback).
        let base = format!("http://localhost:{}", addr.port());
        let listen = addr.to_string();
        let mut args = vec!["berth", "serve", "--listen", &listen, "--database", &db_arg];
        if !extra.contains(&"--public-url") {
            args.extend(["--public-url", &base]);
        }
        args.extend_from_slice(extra);
        let cli = Cli::try_parse_from(&args).expect("test arguments parse");
        let Command::Serve(config) = cli.command else {
            panic!("not a serve command");
        };
        let app = Application::build_on(*config, listener)
            .await
            .expect("Berth builds");
        let db = app.db.clone();
        let metrics_addr = app.metrics_addr().expect("the metrics address");
        let (tx, rx) = oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            app.run_until(async {
                let _ = rx.await;
            })
            .await
            .expect("Berth serves");
        });
        Self {
            addr,
            base,
            db,
            db_path,
            client: browser(),
            metrics_addr,
            shutdown: Some(tx),
            server: Some(server),
            _dir: dir,
        }
    }

    /// Full URL for a path.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// GET with the default browser.
    pub async fn get(&self, path: &str) -> Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("GET reaches Berth")
    }

    /// POST a form with the default browser, exactly as given (no CSRF token added).
    pub async fn post_form(&self, path: &str, form: &[(&str, &str)]) -> Response {
        post_form(&self.client, &self.url(path), form).await
    }

    /// POST a form with the current page's CSRF token added, like a real browser would.
    pub async fn submit(&self, path: &str, form: &[(&str, &str)]) -> Response {
        let token = self.csrf_token().await;
        let mut fields = form.to_vec();
        fields.push(("csrf_token", &token));
        self.post_form(path, &fields).await
    }

    /// The CSRF token of the signed-in session, read from a page.
    pub async fn csrf_token(&self) -> String {
        let html = self.get("/").await.text().await.expect("home page body");
        csrf_from_html(&html).expect("a signed-in page carries a CSRF token")
    }

    /// Signs the default browser in through the dev sign-in.
    pub async fn sign_in_dev(&self, email: &str, admin: bool) {
        let mut form = vec![("email", email), ("next", "/")];
        if admin {
            form.push(("admin", "on"));
        }
        let response = self.post_form("/auth/dev", &form).await;
        assert_eq!(
            response.status(),
            StatusCode::SEE_OTHER,
            "dev sign-in redirects"
        );
    }

    /// Stops the server and waits for it to finish.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.expect("server task ends cleanly");
        }
    }
}

/// POST a form with any client.
pub async fn post_form(client: &reqwest::Client, url: &str, form: &[(&str, &str)]) -> Response {
    let body = serde_urlencoded::to_string(form).expect("form encodes");
    client
        .post(url)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .expect("POST reaches Berth")
}

/// The value of the first `csrf_token` hidden field in a page.
pub fn csrf_from_html(html: &str) -> Option<String> {
    let marker = "name=\"csrf_token\" value=\"";
    let start = html.find(marker)? + marker.len();
    let end = html[start..].find('"')? + start;
    Some(html[start..end].to_owned())
}

/// Where a redirect points.
pub fn location(response: &Response) -> String {
    response
        .headers()
        .get(header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

impl TestApp {
    /// A new browser signed in through the dev sign-in as `email`.
    pub async fn browser_for(&self, email: &str, admin: bool) -> reqwest::Client {
        let client = browser();
        let mut form = vec![("email", email), ("next", "/")];
        if admin {
            form.push(("admin", "on"));
        }
        let response = post_form(&client, &self.url("/auth/dev"), &form).await;
        assert_eq!(
            response.status(),
            StatusCode::SEE_OTHER,
            "dev sign-in redirects"
        );
        client
    }

    /// POST a form from `client`, with that browser's CSRF token added.
    pub async fn submit_as(
        &self,
        client: &reqwest::Client,
        path: &str,
        form: &[(&str, &str)],
    ) -> Response {
        let html = client
            .get(self.url("/"))
            .send()
            .await
            .expect("home page")
            .text()
            .await
            .expect("home page body");
        let token = csrf_from_html(&html).expect("a signed-in page carries a CSRF token");
        let mut fields = form.to_vec();
        fields.push(("csrf_token", &token));
        post_form(client, &self.url(path), &fields).await
    }
}
