//! Registries for the tests: the test world's Basic-auth registry, a second
//! real registry (distribution) in token-auth mode with a small JWT token
//! issuer in front of it, pushing images, reading manifests directly, and
//! running Berth on a folder the test keeps.

use std::{
    net::{SocketAddr, TcpListener as StdListener},
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{
    Router,
    extract::{RawQuery, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use base64::{
    Engine,
    engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD},
};
use berth::{
    app::Application,
    config::{Cli, Command},
};
use clap::Parser;
use ring::{
    rand::SystemRandom,
    signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair},
};
use serde_json::json;
use sha2::{Digest, Sha256};
use sqlx::SqlitePool;
use tokio::sync::oneshot;

use super::{Share, TestPerson, serve, stop};

/// The test world's registry (plain HTTP, htpasswd Basic auth).
pub struct BasicRegistry {
    /// `127.0.0.1:PORT`.
    pub host: String,
    /// htpasswd user.
    pub user: String,
    /// Its password.
    pub password: String,
    /// The demo image testenv pushed, `host/demo/add-two:1.0`.
    pub image: String,
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: run these tests under testenv/run, e.g. \
             `testenv/run -- cargo test -p berth --test api registries::`"
        )
    })
}

impl BasicRegistry {
    /// From the `TESTENV_*` variables; panics with how to run the tests if absent.
    pub fn from_env() -> Self {
        Self {
            host: env("TESTENV_REGISTRY"),
            user: env("TESTENV_REGISTRY_USER"),
            password: env("TESTENV_REGISTRY_PASSWORD"),
            image: env("TESTENV_IMAGE"),
        }
    }

    /// `Authorization` value for direct requests.
    pub fn auth(&self) -> String {
        format!(
            "Basic {}",
            STANDARD.encode(format!("{}:{}", self.user, self.password))
        )
    }

    /// Berth flags that allow (over http) this registry only, with the dev
    /// sign-in.
    pub fn berth_args(&self) -> Vec<String> {
        let mut args = vec!["--dev-login".to_owned()];
        args.extend(registry_args(&self.host));
        args
    }
}

/// Berth flags that offer `host` first and allow it (only) over http.
pub fn registry_args(host: &str) -> Vec<String> {
    [
        "--default-registry",
        host,
        "--allowed-registries",
        host,
        "--insecure-registries",
        host,
    ]
    .map(str::to_owned)
    .to_vec()
}

/// Sets a robot's password in the run's registry (htpasswd is re-read when
/// it changes): a new token, which revokes the old one.
///
/// `htpasswd` rewrites the whole file, so two at once can lose each other's
/// lines (the shared robot's included): every test runs in this one process,
/// so one lock keeps them in turn.
pub fn set_registry_token(robot: &str, token: &str) {
    static HTPASSWD: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _turn = HTPASSWD
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let out = std::process::Command::new("htpasswd")
        .args([
            "-bB",
            &super::testenv_var("TESTENV_REGISTRY_HTPASSWD"),
            robot,
            token,
        ])
        .output()
        .expect("htpasswd");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A free port on 127.0.0.1 (bound then released: the registry binary needs a number).
pub fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

const ISSUER: &str = "berth-test-issuer";
const SERVICE: &str = "berth-test-registry";

/// A robot the token issuer knows: name, token, and the project it may use.
#[derive(Clone)]
pub struct Robot {
    /// Harbor-style name, `robot$project+name`.
    pub name: String,
    /// Its token.
    pub token: String,
    /// Repositories under `project/` are granted; others get no access (as Harbor does).
    pub project: String,
}

struct IssuerState {
    robots: Vec<Robot>,
    key: EcdsaKeyPair,
    cert_der: Vec<u8>,
    /// `(user, scopes)` of every token request, for tests to assert on.
    seen: Mutex<Vec<(String, Vec<String>)>>,
}

impl IssuerState {
    fn sign(&self, subject: &str, access: serde_json::Value) -> String {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock after 1970")
            .as_secs();
        let header =
            json!({"typ": "JWT", "alg": "ES256", "x5c": [STANDARD.encode(&self.cert_der)]});
        let claims = json!({
            "iss": ISSUER, "sub": subject, "aud": SERVICE,
            "exp": now + 300, "nbf": now - 10, "iat": now - 10,
            "jti": uuid::Uuid::new_v4().to_string(),
            "access": access,
        });
        let encode = |v: &serde_json::Value| {
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).expect("json encodes"))
        };
        let input = format!("{}.{}", encode(&header), encode(&claims));
        let signature = self
            .key
            .sign(&SystemRandom::new(), input.as_bytes())
            .expect("signing");
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.as_ref()))
    }
}

/// `repository:NAME:ACTIONS` → the granted access entry, if `project` covers NAME.
fn grant(scope: &str, project: &str) -> Option<serde_json::Value> {
    let mut parts = scope.splitn(3, ':');
    let (kind, name, actions) = (parts.next()?, parts.next()?, parts.next()?);
    if kind != "repository" || !name.starts_with(&format!("{project}/")) {
        return None;
    }
    let actions: Vec<&str> = actions.split(',').collect();
    Some(json!({"type": "repository", "name": name, "actions": actions}))
}

async fn token_endpoint(
    State(state): State<Arc<IssuerState>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let query = query.unwrap_or_default();
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let scopes: Vec<String> = pairs
        .iter()
        .filter(|(k, _)| k == "scope")
        .map(|(_, v)| v.clone())
        .collect();
    if !pairs.iter().any(|(k, v)| k == "service" && v == SERVICE) {
        return (StatusCode::BAD_REQUEST, "unknown service").into_response();
    }
    let credentials = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| STANDARD.decode(b).ok())
        .and_then(|b| String::from_utf8(b).ok());
    let Some((user, password)) = credentials
        .as_deref()
        .and_then(|c| c.split_once(':'))
        .map(|(u, p)| (u.to_owned(), p.to_owned()))
    else {
        return (StatusCode::UNAUTHORIZED, "login required").into_response();
    };
    if let Ok(mut seen) = state.seen.lock() {
        seen.push((user.clone(), scopes.clone()));
    }
    let Some(robot) = state
        .robots
        .iter()
        .find(|r| r.name == user && r.token == password)
    else {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"errors": [{"code": "UNAUTHORIZED"}]})),
        )
            .into_response();
    };
    let access: Vec<_> = scopes
        .iter()
        .filter_map(|s| grant(s, &robot.project))
        .collect();
    let token = state.sign(&user, json!(access));
    axum::Json(json!({"token": token, "access_token": token, "expires_in": 300})).into_response()
}

/// A second real registry in token-auth mode (Harbor's Bearer challenge) and
/// the issuer it trusts. Both stop when this is dropped.
pub struct TokenRegistry {
    /// `127.0.0.1:PORT` of the registry.
    pub host: String,
    /// `127.0.0.1:PORT` of the token issuer (the realm).
    pub issuer_host: String,
    issuer: Arc<IssuerState>,
    _child: tokio::process::Child,
    _issuer_task: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

impl TokenRegistry {
    /// Starts the issuer on port 0 and `docker-registry` configured to trust it.
    pub async fn start(robots: Vec<Robot>) -> Self {
        let bin = std::env::var("TESTENV_REGISTRY_BIN")
            .ok()
            .or_else(|| {
                Path::new("/usr/bin/docker-registry")
                    .exists()
                    .then(|| "/usr/bin/docker-registry".to_owned())
            })
            .unwrap_or_else(|| panic!("TESTENV_REGISTRY_BIN is not set: run under testenv/run"));
        let dir = tempfile::tempdir().expect("temp dir");
        let certified =
            rcgen::generate_simple_self_signed(vec![ISSUER.to_owned()]).expect("a certificate");
        let cert_path = dir.path().join("issuer.pem");
        std::fs::write(&cert_path, certified.cert.pem()).expect("writing the certificate");
        let key = EcdsaKeyPair::from_pkcs8(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            &certified.key_pair.serialize_der(),
            &SystemRandom::new(),
        )
        .expect("the issuer key");
        let issuer = Arc::new(IssuerState {
            robots,
            key,
            cert_der: certified.cert.der().to_vec(),
            seen: Mutex::new(Vec::new()),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding the issuer");
        let issuer_addr = listener.local_addr().expect("issuer address");
        let router = Router::new()
            .route("/token", get(token_endpoint))
            .with_state(issuer.clone());
        let issuer_task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });

        let port = free_port();
        let config_path = dir.path().join("config.yml");
        let config = format!(
            "version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {data}
  delete:
    enabled: true
http:
  addr: 127.0.0.1:{port}
  secret: berth-test-secret
auth:
  token:
    realm: http://{issuer_addr}/token
    service: {SERVICE}
    issuer: {ISSUER}
    rootcertbundle: {cert}
",
            data = dir.path().join("data").display(),
            cert = cert_path.display(),
        );
        std::fs::write(&config_path, config).expect("writing the registry config");
        let log = std::fs::File::create(dir.path().join("registry.log")).expect("log file");
        let mut child = tokio::process::Command::new(&bin)
            .arg("serve")
            .arg(&config_path)
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {bin}: {e}"));
        let host = format!("127.0.0.1:{port}");
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(response) = client.get(format!("http://{host}/v2/")).send().await
                && response.status() == StatusCode::UNAUTHORIZED
            {
                break;
            }
            if let Ok(Some(status)) = child.try_wait() {
                let log =
                    std::fs::read_to_string(dir.path().join("registry.log")).unwrap_or_default();
                panic!("the token registry exited ({status}):\n{log}");
            }
            assert!(
                Instant::now() < deadline,
                "the token registry did not start"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Self {
            host,
            issuer_host: issuer_addr.to_string(),
            issuer,
            _child: child,
            _issuer_task: issuer_task,
            _dir: dir,
        }
    }

    /// A Bearer `Authorization` value with push and pull on `repository`.
    pub fn push_auth(&self, repository: &str) -> String {
        let token = self.issuer.sign(
            "test-pusher",
            json!([{"type": "repository", "name": repository, "actions": ["pull", "push"]}]),
        );
        format!("Bearer {token}")
    }

    /// Users who asked the issuer for a token, in order.
    pub fn token_requests(&self) -> Vec<(String, Vec<String>)> {
        self.issuer
            .seen
            .lock()
            .map(|s| s.clone())
            .unwrap_or_default()
    }

    /// Berth flags allowing this registry and its realm over http.
    pub fn berth_args(&self) -> Vec<String> {
        let both = format!("{},{}", self.host, self.issuer_host);
        vec![
            "--dev-login".into(),
            "--default-registry".into(),
            self.host.clone(),
            "--allowed-registries".into(),
            both.clone(),
            "--insecure-registries".into(),
            both,
        ]
    }
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// Uploads a blob monolithically; returns its digest.
async fn push_blob(
    client: &reqwest::Client,
    host: &str,
    repo: &str,
    auth: &str,
    blob: &[u8],
) -> String {
    let digest = sha256(blob);
    let start = client
        .post(format!("http://{host}/v2/{repo}/blobs/uploads/"))
        .header(header::AUTHORIZATION, auth)
        .send()
        .await
        .expect("starting an upload");
    assert_eq!(start.status(), StatusCode::ACCEPTED, "upload start");
    let location = start.headers()[header::LOCATION]
        .to_str()
        .expect("ascii location")
        .to_owned();
    let mut url = url::Url::parse(&format!("http://{host}"))
        .and_then(|base| base.join(&location))
        .expect("upload URL");
    url.query_pairs_mut().append_pair("digest", &digest);
    let put = client
        .put(url)
        .header(header::AUTHORIZATION, auth)
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .body(blob.to_vec())
        .send()
        .await
        .expect("finishing an upload");
    assert_eq!(put.status(), StatusCode::CREATED, "blob upload");
    digest
}

/// Pushes a small, unique OCI image to `host/repo:tag`; returns the manifest
/// digest (the sha256 of the bytes pushed).
pub async fn push_image(host: &str, repo: &str, tag: &str, auth: &str) -> String {
    let client = reqwest::Client::new();
    let unique = uuid::Uuid::new_v4().to_string();
    let layer = format!("layer {unique}").into_bytes();
    let config = serde_json::to_vec(&json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Labels": {"berth.test": unique}},
        "rootfs": {"type": "layers", "diff_ids": [sha256(&layer)]}
    }))
    .expect("config json");
    let config_digest = push_blob(&client, host, repo, auth, &config).await;
    let layer_digest = push_blob(&client, host, repo, auth, &layer).await;
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer_digest, "size": layer.len()}]
    }))
    .expect("manifest json");
    let put = client
        .put(format!("http://{host}/v2/{repo}/manifests/{tag}"))
        .header(header::AUTHORIZATION, auth)
        .header(
            header::CONTENT_TYPE,
            "application/vnd.oci.image.manifest.v1+json",
        )
        .body(manifest.clone())
        .send()
        .await
        .expect("pushing the manifest");
    assert_eq!(put.status(), StatusCode::CREATED, "manifest push");
    sha256(&manifest)
}

/// The sha256 of the manifest bytes the registry serves for `reference`,
/// fetched with a plain GET (independent of Berth's client).
pub async fn served_digest(host: &str, repo: &str, reference: &str, auth: &str) -> String {
    let response = reqwest::Client::new()
        .get(format!("http://{host}/v2/{repo}/manifests/{reference}"))
        .header(header::AUTHORIZATION, auth)
        .header(header::ACCEPT, berth::registries::client::MANIFEST_ACCEPT)
        .send()
        .await
        .expect("GET manifest");
    assert_eq!(response.status(), StatusCode::OK, "manifest GET");
    sha256(&response.bytes().await.expect("manifest body"))
}

/// Berth running on a database folder the test owns, so it can be stopped
/// and started again on the same files.
pub struct Berth {
    /// The server's pool.
    pub db: SqlitePool,
    /// An admin signed in to it.
    pub admin: TestPerson,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
    _share: Share,
}

/// `berth serve` arguments for a database in `dir` plus `extra`.
fn serve_args(dir: &Path, extra: &[String]) -> Vec<String> {
    let mut args: Vec<String> = vec![
        "berth".into(),
        "serve".into(),
        "--listen".into(),
        "127.0.0.1:0".into(),
        "--database".into(),
        db_path(dir).to_string_lossy().into_owned(),
        "--dev-login".into(),
    ];
    args.extend_from_slice(extra);
    args
}

/// The database file in `dir`.
pub fn db_path(dir: &Path) -> PathBuf {
    dir.join("berth.db")
}

/// Builds Berth for `dir` without running it (the start-up checks run here).
pub async fn build(dir: &Path, extra: &[String]) -> anyhow::Result<Application> {
    let cli = Cli::try_parse_from(serve_args(dir, extra))?;
    let Command::Serve(config) = cli.command else {
        anyhow::bail!("not a serve command");
    };
    Application::build(*config).await
}

impl Berth {
    /// Starts Berth on `dir` and signs an admin in; panics if it does not build.
    pub async fn start(dir: &Path, extra: &[String]) -> Self {
        let share = Share::shared().await;
        let app = build(dir, extra).await.expect("Berth builds");
        let addr: SocketAddr = app.local_addr().expect("bound address");
        let db = app.db.pool().clone();
        let (shutdown, server) = serve(app);
        let admin =
            TestPerson::dev_sign_in(&format!("http://{addr}"), "admin@purdue.edu", true).await;
        Self {
            db,
            admin,
            shutdown: Some(shutdown),
            server: Some(server),
            _share: share,
        }
    }

    /// Stops the server; the files stay.
    pub async fn stop(mut self) {
        stop(self.shutdown.take(), self.server.take()).await;
    }
}

/// A fresh `keyid:base64key` line.
pub fn key_line(id: &str) -> String {
    berth::crypto::new_key_line(id).to_string()
}
