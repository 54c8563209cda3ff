//! The shared set-up of Berth's integration tests: start the real Berth on
//! port 0 with a fresh SQLite file, and talk to it as a person in a browser
//! would (cookies kept, redirects not followed so tests can assert on them).

pub mod berth_sa;
pub mod browser;
pub mod cluster;
pub mod oidc;
pub mod registries;

use std::{net::SocketAddr, sync::Arc};

use berth::{
    app::Application,
    config::{Cli, Command},
};
use clap::Parser;
use reqwest::{Response, StatusCode, Url, cookie::CookieStore, header};
use sqlx::SqlitePool;
use tempfile::TempDir;
use tokio::sync::{OwnedRwLockReadGuard, OwnedRwLockWriteGuard, RwLock, oneshot};

/// Every Berth a test runs shares this process's metrics registry (as every
/// Prometheus client's default registry is process-wide). A running Berth
/// holds a read guard; a test that counts what its own Berth did takes the
/// write guard, so no other Berth in the process moves the counters meanwhile.
fn metrics_lock() -> Arc<RwLock<()>> {
    static LOCK: std::sync::OnceLock<Arc<RwLock<()>>> = std::sync::OnceLock::new();
    LOCK.get_or_init(Arc::default).clone()
}

/// What a running Berth holds: a share of the process, or all of it.
struct Share {
    _shared: Option<OwnedRwLockReadGuard<()>>,
    _alone: Option<OwnedRwLockWriteGuard<()>>,
}

impl Share {
    async fn shared() -> Self {
        Self {
            _shared: Some(metrics_lock().read_owned().await),
            _alone: None,
        }
    }

    fn alone(guard: OwnedRwLockWriteGuard<()>) -> Self {
        Self {
            _shared: None,
            _alone: Some(guard),
        }
    }
}

/// Waits until no other Berth runs in this process and keeps it so while
/// the guard lives: for a test that reads the process-wide metrics, or one
/// heavy enough that it ran alone when it was a test binary of its own.
pub async fn alone() -> OwnedRwLockWriteGuard<()> {
    metrics_lock().write_owned().await
}

/// A running Berth and an anonymous browser-like client for it.
pub struct TestApp {
    /// Where it listens.
    pub addr: SocketAddr,
    /// `http://localhost:<port>`.
    pub base: String,
    /// The same database the server uses.
    pub db: SqlitePool,
    /// Berth's own handle on it, with the memos of what pages read: a test
    /// that writes rows behind Berth's back calls [`TestApp::forget_cached`].
    pub store: berth::db::Db,
    /// The database file, for tests that read its bytes.
    pub db_path: std::path::PathBuf,
    /// A browser nobody signed in with (yet).
    pub client: reqwest::Client,
    /// Where the metrics listener is, when started with `--metrics-addr`.
    pub metrics_addr: Option<SocketAddr>,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
    _share: Share,
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

/// The text a person reads: askama escapes quotes, ampersands and `$`.
pub fn unescape(html: &str) -> String {
    html.replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&quot;", "\"")
        .replace("&#34;", "\"")
        .replace("&#x24;", "$")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// A client builder as the tests' browsers start: `localhost` is 127.0.0.1,
/// redirects are not followed.
pub fn client_builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .resolve("localhost", loopback_v4())
        .redirect(reqwest::redirect::Policy::none())
}

/// A new cookie-keeping client that does not follow redirects.
pub fn browser() -> reqwest::Client {
    client_builder()
        .cookie_store(true)
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
        Self::spawn_sharing(extra, Share::shared().await).await
    }

    /// Like [`TestApp::spawn_with`], with `alone` held: no other Berth runs
    /// in the process while this one does.
    pub async fn spawn_alone(extra: &[&str], alone: OwnedRwLockWriteGuard<()>) -> Self {
        Self::spawn_sharing(extra, Share::alone(alone)).await
    }

    async fn spawn_sharing(extra: &[&str], share: Share) -> Self {
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
        let store = app.db.clone();
        let db = store.pool().clone();
        let metrics_addr = app.metrics_addr().expect("the metrics address");
        let (shutdown, server) = serve(app);
        Self {
            addr,
            base,
            db,
            store,
            db_path,
            client: browser(),
            metrics_addr,
            shutdown: Some(shutdown),
            server: Some(server),
            _share: share,
            _dir: dir,
        }
    }

    /// After a test wrote rows behind Berth's back: Berth reads them anew.
    pub fn forget_cached(&self) {
        self.store.forget_all();
    }

    /// Full URL for a path.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// GET with the anonymous browser.
    pub async fn get(&self, path: &str) -> Response {
        get(&self.client, &self.url(path)).await
    }

    /// POST a form with the anonymous browser, exactly as given (no CSRF token added).
    pub async fn post_form(&self, path: &str, form: &[(&str, &str)]) -> Response {
        post_form(&self.client, &self.url(path), form).await
    }

    /// Stops the server and waits for it to finish.
    pub async fn stop(mut self) {
        stop(self.shutdown.take(), self.server.take()).await;
    }
}

/// Runs a built Berth until the returned sender is used (or dropped).
pub fn serve(app: Application) -> (oneshot::Sender<()>, tokio::task::JoinHandle<()>) {
    let (tx, rx) = oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        app.run_until(async {
            let _ = rx.await;
        })
        .await
        .expect("Berth serves");
    });
    (tx, server)
}

/// Stops what [`serve`] started and waits for it to finish.
pub async fn stop(
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
) {
    if let Some(tx) = shutdown {
        let _ = tx.send(());
    }
    if let Some(server) = server {
        server.await.expect("server task ends cleanly");
    }
}

/// GET with any client.
pub async fn get(client: &reqwest::Client, url: &str) -> Response {
    client.get(url).send().await.expect("GET reaches Berth")
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

/// The `csrf_token` of the form in a page whose action is `action`.
pub fn csrf_in_form(html: &str, action: &str) -> Option<String> {
    let start = html.find(&format!("action=\"{action}\""))?;
    let form = &html[start..];
    let form = &form[..form.find("</form>")?];
    csrf_from_html(form)
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

/// The admin form's namespace settings most tests start from.
const NAMESPACE_SETTINGS: [(&str, &str); 11] = [
    ("description", "made by a test"),
    ("requests_cpu", "4"),
    ("requests_memory", "2Gi"),
    ("pods", "10"),
    ("services_loadbalancers", "2"),
    ("persistentvolumeclaims", "2"),
    ("requests_storage", "10Gi"),
    ("default_request_cpu", "100m"),
    ("default_request_memory", "64Mi"),
    ("default_limit_cpu", "500m"),
    ("default_limit_memory", "256Mi"),
];

/// A small namespace's settings (room for a workload or two).
pub const SMALL_NAMESPACE: [(&str, &str); 10] = [
    ("requests_cpu", "1"),
    ("requests_memory", "1Gi"),
    ("pods", "5"),
    ("services_loadbalancers", "1"),
    ("persistentvolumeclaims", "1"),
    ("requests_storage", "1Gi"),
    ("default_request_cpu", "50m"),
    ("default_request_memory", "32Mi"),
    ("default_limit_cpu", "500m"),
    ("default_limit_memory", "128Mi"),
];

/// A person signed in to a Berth in a browser of their own.
pub struct TestPerson {
    /// Their browser.
    pub client: reqwest::Client,
    base: String,
    cookies: Arc<reqwest::cookie::Jar>,
}

impl TestPerson {
    /// A student (not an admin) signed in through the dev sign-in.
    pub async fn student(app: &TestApp, email: &str) -> Self {
        Self::dev_sign_in(&app.base, email, false).await
    }

    /// An admin signed in through the dev sign-in.
    pub async fn admin(app: &TestApp, email: &str) -> Self {
        Self::dev_sign_in(&app.base, email, true).await
    }

    /// Signs a new browser in through the dev sign-in of the Berth at `base`.
    pub async fn dev_sign_in(base: &str, email: &str, admin: bool) -> Self {
        let person = Self::new(base);
        let mut form = vec![("email", email), ("next", "/")];
        if admin {
            form.push(("admin", "on"));
        }
        let response = person.post_form("/auth/dev", &form).await;
        assert_eq!(
            response.status(),
            StatusCode::SEE_OTHER,
            "dev sign-in of {email} redirects"
        );
        person
    }

    /// A browser for the Berth at `base` that a person is about to sign in
    /// with some other way (the OIDC provider's pages).
    pub fn new(base: &str) -> Self {
        let cookies = Arc::new(reqwest::cookie::Jar::default());
        let client = client_builder()
            .cookie_provider(cookies.clone())
            .build()
            .expect("building a reqwest client");
        Self {
            client,
            base: base.to_owned(),
            cookies,
        }
    }

    /// Full URL for a path.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The browser's cookies for Berth, as a `Cookie` header.
    pub fn cookie_header(&self) -> String {
        let url = Url::parse(&self.base).expect("Berth's URL");
        self.cookies
            .cookies(&url)
            .and_then(|v| v.to_str().ok().map(str::to_owned))
            .unwrap_or_default()
    }

    /// GET a path.
    pub async fn get(&self, path: &str) -> Response {
        get(&self.client, &self.url(path)).await
    }

    /// GET a page: its status and its text as the person reads it.
    pub async fn page(&self, path: &str) -> (StatusCode, String) {
        let response = self.get(path).await;
        let status = response.status();
        (status, unescape(&response.text().await.unwrap_or_default()))
    }

    /// Waits up to `timeout` until `path` answers 200 with a page `found`
    /// accepts, and returns it as Berth sent it. Right after a change a page
    /// may be a 404, or show the old state, until Berth's caches have seen
    /// it: that is "not yet", not a failure.
    pub async fn page_when(
        &self,
        path: &str,
        timeout: std::time::Duration,
        what: &str,
        found: impl Fn(&str) -> bool,
    ) -> String {
        cluster::eventually(timeout, what, || async {
            let response = self.client.get(self.url(path)).send().await.ok()?;
            if response.status() != StatusCode::OK {
                return None;
            }
            let html = response.text().await.ok()?;
            found(&html).then_some(html)
        })
        .await
    }

    /// The body of a page, as Berth sent it.
    pub async fn html(&self, path: &str) -> String {
        self.get(path).await.text().await.expect("a page body")
    }

    /// POST a form exactly as given (no CSRF token added).
    pub async fn post_form(&self, path: &str, form: &[(&str, &str)]) -> Response {
        post_form(&self.client, &self.url(path), form).await
    }

    /// The CSRF token of the session, read from the page every signed-in
    /// page carries it on (the sign-out form of the dashboard).
    pub async fn csrf_token(&self) -> String {
        let html = self.html("/").await;
        csrf_from_html(&html).expect("a signed-in page carries a CSRF token")
    }

    /// POST a form with the session's CSRF token added, as the sign-out
    /// button of any page would carry it (also for a form the person cannot
    /// open, to see what Berth answers).
    pub async fn submit(&self, path: &str, form: &[(&str, &str)]) -> Response {
        let token = self.csrf_token().await;
        self.post_with_token(path, form, &token).await
    }

    /// Opens `page`, and submits its form whose action is `path` with
    /// `form`, with the CSRF token that form carries.
    pub async fn submit_form(&self, page: &str, path: &str, form: &[(&str, &str)]) -> Response {
        let html = self.html(page).await;
        let token = csrf_in_form(&html, path)
            .unwrap_or_else(|| panic!("{page} has no form to {path} with a CSRF token:\n{html}"));
        self.post_with_token(path, form, &token).await
    }

    /// Creates the namespace `name` through the admin form (the person is
    /// an admin): the usual room for a few workloads, with `settings` (form
    /// fields) in place of those defaults or beside them.
    pub async fn create_namespace(&self, name: &str, settings: &[(&str, &str)]) {
        let mut form: Vec<(&str, &str)> = vec![("name", name)];
        form.extend(
            NAMESPACE_SETTINGS
                .iter()
                .filter(|(key, _)| !settings.iter().any(|(k, _)| k == key)),
        );
        form.extend_from_slice(settings);
        let response = self.submit("/admin/namespaces", &form).await;
        let status = response.status();
        let to = location(&response);
        assert_eq!(
            status,
            StatusCode::SEE_OTHER,
            "creating {name}: {}",
            response.text().await.unwrap_or_default()
        );
        assert_eq!(to, format!("/admin/namespaces/{name}"));
    }

    /// Adds `email` to `namespace` as `role` (`member` or `owner`) through
    /// the admin page.
    pub async fn add_member(&self, namespace: &str, email: &str, role: &str) {
        let response = self
            .submit(
                &format!("/admin/namespaces/{namespace}/members"),
                &[("email", email), ("role", role)],
            )
            .await;
        let status = response.status();
        assert_eq!(
            status,
            StatusCode::SEE_OTHER,
            "adding {email} to {namespace}: {}",
            response.text().await.unwrap_or_default()
        );
    }

    async fn post_with_token(&self, path: &str, form: &[(&str, &str)], token: &str) -> Response {
        let mut fields = form.to_vec();
        fields.push(("csrf_token", token));
        self.post_form(path, &fields).await
    }
}
