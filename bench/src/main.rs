//! Berth's benchmark. Run by `bench/run` inside the test world (`testenv/run`
//! sets KUBECONFIG to the cluster admin's; Berth gets its ServiceAccount's).
//!
//! In one run it:
//! 1. starts Berth on the empty cluster and reads its memory;
//! 2. loads the cluster through Berth's own forms (namespaces with quotas, a
//!    student, Deployments of each namespace) and, as the cluster admin,
//!    Deployments in namespaces Berth does not manage (the rest of a campus
//!    cluster), on extra KWOK nodes, and waits until every Pod runs;
//! 3. starts a fresh Berth on the loaded cluster and reads its memory;
//! 4. drives pages with wrk next to `/healthz` on the same server (the
//!    ceiling: the same stack doing no work);
//! 5. times re-applying a deploy form against `kubectl apply --server-side`
//!    of the objects Berth applied;
//! 6. has many students deploy within a short window;
//!
//! and prints one table. It is a benchmark: it fails only when something did
//! not work (a page not 200, a load step refused), never on numbers.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::Stdio,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail, ensure};
use clap::{Parser, ValueEnum};
use futures::{StreamExt, stream};
use k8s_openapi::{
    api::{
        apps::v1::Deployment,
        core::v1::{Namespace, Node, Pod},
    },
    apimachinery::pkg::api::resource::Quantity,
};
use kube::{
    Api, Client,
    api::{ListParams, PostParams},
};
use tokio::process::{Child, Command};

#[derive(Parser)]
#[command(about = "Berth's benchmark: run it with bench/run")]
struct Args {
    /// How big a cluster to build.
    #[arg(long, value_enum, default_value_t = SizeName::Geddes)]
    size: SizeName,
    /// The `berth` binary to measure.
    #[arg(long)]
    berth: PathBuf,
    /// The kubeconfig Berth uses (its ServiceAccount's).
    #[arg(long)]
    berth_kubeconfig: PathBuf,
    /// kubectl, for the comparison.
    #[arg(long, env = "TESTENV_KUBECTL")]
    kubectl: PathBuf,
    /// The registry Berth allows (the test world's).
    #[arg(long, env = "TESTENV_REGISTRY")]
    registry: String,
    /// Where to write the table too (Markdown).
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Clone, Copy, ValueEnum)]
enum SizeName {
    /// A few of everything, so CI keeps the harness working.
    Ci,
    /// The size the goals are set for.
    Geddes,
}

/// What one size builds and how hard it pushes.
struct Size {
    namespaces: usize,
    per_namespace: usize,
    /// Deployments in namespaces Berth does not manage.
    others: usize,
    students: usize,
    /// The students' deploys are spread over this window.
    window: Duration,
    wrk_seconds: u32,
    connections: u32,
    repeats: usize,
}

impl SizeName {
    fn size(self) -> Size {
        match self {
            Self::Ci => Size {
                namespaces: 6,
                per_namespace: 3,
                others: 12,
                students: 10,
                window: Duration::from_secs(5),
                wrk_seconds: 2,
                connections: 10,
                repeats: 5,
            },
            Self::Geddes => Size {
                namespaces: 500,
                per_namespace: 10,
                others: 1000,
                students: 200,
                window: Duration::from_secs(60),
                wrk_seconds: 10,
                connections: 100,
                repeats: 20,
            },
        }
    }
}

const ADMIN: &str = "bench-admin@purdue.edu";
const STUDENT: &str = "bench-student@purdue.edu";
/// Pods each extra KWOK node takes.
const PODS_PER_NODE: usize = 1000;

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let size = args.size.size();
    let admin = Client::try_default()
        .await
        .context("the cluster admin's KUBECONFIG (run inside testenv/run)")?;
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("berth.db");
    let mut rows = Vec::new();

    // 1. Empty cluster.
    let berth = Berth::start(&args, &db).await?;
    let http = berth.browser();
    berth.sign_in(&http, ADMIN, true).await?;
    for _ in 0..20 {
        berth.get_ok(&http, "/").await?;
    }
    let empty = berth.memory()?;
    eprintln!("bench: Berth on the empty cluster: {}", empty.describe());

    // 2. Load.
    let started = Instant::now();
    let total_pods = size.namespaces * size.per_namespace + size.others + size.students;
    add_nodes(&admin, total_pods.div_ceil(PODS_PER_NODE) + 1).await?;
    let namespaces = load_berth(&berth, &http, &size).await?;
    load_others(&admin, size.others).await?;
    wait_running(&admin, size.namespaces * size.per_namespace + size.others).await?;
    eprintln!("bench: loaded in {:.0?}", started.elapsed());
    berth.stop().await;

    // 3. A fresh Berth on the loaded cluster.
    let berth = Berth::start(&args, &db).await?;
    let at_start = berth.memory()?;
    eprintln!(
        "bench: Berth started on the loaded cluster: {}",
        at_start.describe()
    );
    // A new browser: cookies do not tell ports apart, and the first
    // Berth's session (same database) would otherwise ride along.
    let http = berth.browser();
    berth.sign_in(&http, ADMIN, true).await?;
    let student = berth.cookie_for(STUDENT, false).await?;
    let admin_cookie = berth.cookie_for(ADMIN, true).await?;
    let ns = &namespaces[0];
    let pages: [(&str, String, &str); 6] = [
        ("student dashboard", "/".into(), &student),
        (
            "a namespace's workload list",
            format!("/namespaces/{ns}/workloads"),
            &student,
        ),
        (
            "one workload page",
            format!("/namespaces/{ns}/workloads/w-0"),
            &student,
        ),
        (
            "an admin's workload list",
            format!("/namespaces/{ns}/workloads"),
            &admin_cookie,
        ),
        (
            "the admin namespace list",
            "/admin/namespaces".into(),
            &admin_cookie,
        ),
        (
            "the admin namespace list, by CPU, page 3",
            "/admin/namespaces?sort=requests.cpu&dir=desc&page=3".into(),
            &admin_cookie,
        ),
    ];

    // 4. Pages against the ceiling.
    let ceiling = wrk(&berth, "/healthz", "", &size).await?;
    for (what, path, cookie) in &pages {
        let probe = berth.browser();
        let answered = probe
            .get(berth.url(path))
            .header(reqwest::header::COOKIE, *cookie)
            .send()
            .await?;
        ensure!(
            answered.status() == reqwest::StatusCode::OK,
            "{what} ({path}) answered {}",
            answered.status()
        );
        let bytes = answered.bytes().await?.len();
        let result = wrk(&berth, path, cookie, &size).await?;
        rows.push(PageRow {
            what: (*what).to_owned(),
            bytes,
            result,
        });
    }
    let after_pages = berth.memory()?;

    // 5. Re-applying a deploy form against kubectl.
    let (berth_ms, kubectl_ms) = deploy_vs_kubectl(&args, &berth, &http, ns, &size).await?;

    // 6. Students deploying at once.
    let students = students_deploy(&berth, &http, &namespaces, &size).await?;
    let after_all = berth.memory()?;
    berth.stop().await;

    let table = table(&Report {
        size: &size,
        empty,
        at_start,
        after_pages,
        after_all,
        ceiling,
        rows,
        berth_ms,
        kubectl_ms,
        students,
    });
    println!("{table}");
    if let Some(out) = &args.out {
        std::fs::write(out, &table)?;
    }
    Ok(())
}

// ------------------------------------------------------------------ Berth

/// A `berth serve` process on a free loopback port.
struct Berth {
    child: Child,
    base: String,
}

impl Berth {
    async fn start(args: &Args, db: &Path) -> Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let base = format!("http://127.0.0.1:{port}");
        let child = Command::new(&args.berth)
            .args(["serve", "--dev-login", "--listen"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("--database")
            .arg(db)
            .args(["--public-url", &base, "--kubeconfig"])
            .arg(&args.berth_kubeconfig)
            .args(["--admin-emails", ADMIN])
            .args(["--default-registry", &args.registry])
            .args(["--allowed-registries", &args.registry])
            // As server/Dockerfile runs it.
            .env("MALLOC_ARENA_MAX", "2")
            .env(
                "RUST_LOG",
                std::env::var("BENCH_BERTH_LOG").unwrap_or_else(|_| "warn".into()),
            )
            // Berth logs to stdout; BENCH_BERTH_LOG=info shows it.
            .stdout(if std::env::var_os("BENCH_BERTH_LOG").is_some() {
                Stdio::inherit()
            } else {
                Stdio::null()
            })
            .kill_on_drop(true)
            .spawn()
            .context("starting berth")?;
        let berth = Self { child, base };
        let http = berth.browser();
        let deadline = Instant::now() + Duration::from_secs(600);
        loop {
            if let Ok(r) = http.get(berth.url("/readyz")).send().await
                && r.status().is_success()
            {
                break;
            }
            ensure!(
                Instant::now() < deadline,
                "Berth did not become ready in 10 minutes"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        // Let the allocator settle after the first lists.
        tokio::time::sleep(Duration::from_secs(2)).await;
        Ok(berth)
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn browser(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(60))
            .build()
            .expect("a reqwest client builds")
    }

    async fn sign_in(&self, http: &reqwest::Client, email: &str, admin: bool) -> Result<String> {
        let mut form = vec![("email", email), ("next", "/")];
        if admin {
            form.push(("admin", "on"));
        }
        let response = http.post(self.url("/auth/dev")).form(&form).send().await?;
        let status = response.status();
        if status != reqwest::StatusCode::SEE_OTHER {
            let body = response.text().await.unwrap_or_default();
            bail!(
                "dev sign-in of {email} answered {status}\n{}",
                excerpt(&body)
            );
        }
        let cookies: Vec<String> = response
            .headers()
            .get_all(reqwest::header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(|v| v.split(';').next())
            .filter(|pair| pair.split_once('=').is_some_and(|(_, v)| !v.is_empty()))
            .map(str::to_owned)
            .collect();
        Ok(cookies.join("; "))
    }

    /// A `Cookie:` header value of a new session of `email`.
    async fn cookie_for(&self, email: &str, admin: bool) -> Result<String> {
        self.sign_in(&self.browser(), email, admin).await
    }

    async fn get_ok(&self, http: &reqwest::Client, path: &str) -> Result<String> {
        let response = http.get(self.url(path)).send().await?;
        let status = response.status();
        let body = response.text().await?;
        ensure!(
            status == reqwest::StatusCode::OK,
            "GET {path} answered {status}\n{}",
            excerpt(&body)
        );
        Ok(body)
    }

    /// Posts a form with the session's CSRF token; returns status and body.
    async fn submit(
        &self,
        http: &reqwest::Client,
        path: &str,
        form: &[(&str, &str)],
    ) -> Result<(reqwest::StatusCode, String)> {
        let page = self.get_ok(http, "/").await?;
        let token = csrf(&page).context("a signed-in page carries a CSRF token")?;
        let mut fields = form.to_vec();
        fields.push(("csrf_token", &token));
        let response = http
            .post(self.url(path))
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(serde_urlencoded::to_string(&fields)?)
            .send()
            .await?;
        Ok((response.status(), response.text().await?))
    }

    fn memory(&self) -> Result<Memory> {
        let pid = self.child.id().context("Berth has exited")?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        let field = |name: &str| -> Result<f64> {
            let line = status
                .lines()
                .find(|l| l.starts_with(name))
                .with_context(|| format!("{name} in /proc/{pid}/status"))?;
            let kib: f64 = line
                .split_whitespace()
                .nth(1)
                .context("a number")?
                .parse()?;
            Ok(kib / 1024.0)
        };
        Ok(Memory {
            rss: field("VmRSS:")?,
            peak: field("VmHWM:")?,
        })
    }

    async fn stop(mut self) {
        if let Some(pid) = self.child.id() {
            // SIGTERM: Berth shuts down gracefully.
            let _ = Command::new("kill").arg(pid.to_string()).status().await;
        }
        let _ = tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await;
        let _ = self.child.kill().await;
    }
}

fn csrf(html: &str) -> Option<String> {
    let marker = "name=\"csrf_token\" value=\"";
    let start = html.find(marker)? + marker.len();
    let end = html[start..].find('"')? + start;
    Some(html[start..end].to_owned())
}

#[derive(Clone, Copy)]
struct Memory {
    /// Resident now, MiB.
    rss: f64,
    /// Highest resident so far, MiB.
    peak: f64,
}

impl Memory {
    fn describe(self) -> String {
        format!("{:.1} MiB resident, {:.1} MiB peak", self.rss, self.peak)
    }
}

// ------------------------------------------------------------------ load

/// The admin form's quota for a bench namespace: room for its Deployments
/// and the students'.
fn namespace_form(name: &str) -> Vec<(&str, &str)> {
    vec![
        ("name", name),
        ("description", "benchmark"),
        ("requests_cpu", "8"),
        ("requests_memory", "8Gi"),
        ("pods", "40"),
        ("services_loadbalancers", "2"),
        ("persistentvolumeclaims", "2"),
        ("requests_storage", "20Gi"),
        ("default_request_cpu", "10m"),
        ("default_request_memory", "16Mi"),
        ("default_limit_cpu", "100m"),
        ("default_limit_memory", "64Mi"),
    ]
}

fn workload_form(name: &str) -> Vec<(&str, &str)> {
    vec![
        ("name", name),
        ("image_source", "public"),
        ("image", "quay.io/example/web:1.0"),
        ("replicas", "1"),
        ("container_port", "8080"),
        ("exposure", "none"),
        ("volume", "none"),
    ]
}

/// Namespaces, the student's memberships and Deployments, all through
/// Berth's forms as the admin; returns the namespaces' names.
async fn load_berth(berth: &Berth, http: &reqwest::Client, size: &Size) -> Result<Vec<String>> {
    let names: Vec<String> = (0..size.namespaces).map(|i| format!("bench-{i}")).collect();
    let created = stream::iter(names.iter())
        .map(|name| async move {
            let (status, body) = berth
                .submit(http, "/admin/namespaces", &namespace_form(name))
                .await?;
            ensure!(
                status == reqwest::StatusCode::SEE_OTHER,
                "creating {name}: {status}\n{}",
                excerpt(&body)
            );
            Ok(())
        })
        .buffer_unordered(4)
        .collect::<Vec<Result<()>>>()
        .await;
    created.into_iter().collect::<Result<()>>()?;
    eprintln!("bench: {} namespaces made through Berth", names.len());
    // The student belongs to three; every other student to one (step 6).
    for name in names.iter().take(3) {
        add_member(berth, http, name, STUDENT).await?;
    }
    let jobs: Vec<(String, String)> = names
        .iter()
        .flat_map(|ns| (0..size.per_namespace).map(move |i| (ns.clone(), format!("w-{i}"))))
        .collect();
    let deployed = stream::iter(jobs.iter())
        .map(|(ns, name)| async move {
            let (status, body) = berth
                .submit(
                    http,
                    &format!("/namespaces/{ns}/workloads"),
                    &workload_form(name),
                )
                .await?;
            ensure!(
                status == reqwest::StatusCode::SEE_OTHER,
                "deploying {ns}/{name}: {status}\n{}",
                excerpt(&body)
            );
            Ok(())
        })
        .buffer_unordered(4)
        .collect::<Vec<Result<()>>>()
        .await;
    deployed.into_iter().collect::<Result<()>>()?;
    eprintln!("bench: {} Deployments made through Berth", jobs.len());
    Ok(names)
}

async fn add_member(berth: &Berth, http: &reqwest::Client, ns: &str, email: &str) -> Result<()> {
    let (status, body) = berth
        .submit(
            http,
            &format!("/admin/namespaces/{ns}/members"),
            &[("email", email), ("role", "member")],
        )
        .await?;
    ensure!(
        status == reqwest::StatusCode::SEE_OTHER,
        "adding {email} to {ns}: {status}\n{}",
        excerpt(&body)
    );
    Ok(())
}

fn excerpt(body: &str) -> &str {
    let end = body.char_indices().nth(600).map_or(body.len(), |(i, _)| i);
    &body[..end]
}

/// Fake nodes with room for the load (the test world's two hold 110 pods each).
async fn add_nodes(admin: &Client, count: usize) -> Result<()> {
    let nodes: Api<Node> = Api::all(admin.clone());
    for i in 0..count {
        let capacity: BTreeMap<String, Quantity> = [
            ("cpu", "1000"),
            ("memory", "4Ti"),
            ("pods", &PODS_PER_NODE.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), Quantity(v.to_owned())))
        .collect();
        let node: Node = serde_json::from_value(serde_json::json!({
            "metadata": {
                "name": format!("bench-node-{i}"),
                "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
                "labels": {"kubernetes.io/hostname": format!("bench-node-{i}"), "type": "kwok"},
            },
            "status": {"capacity": capacity, "allocatable": capacity},
        }))?;
        match nodes.create(&PostParams::default(), &node).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 409 => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Deployments of the rest of the cluster, as its admin, in namespaces
/// Berth does not manage.
async fn load_others(admin: &Client, count: usize) -> Result<()> {
    let per_namespace = 50;
    for n in 0..count.div_ceil(per_namespace) {
        let ns = format!("other-{n}");
        let namespaces: Api<Namespace> = Api::all(admin.clone());
        let namespace: Namespace =
            serde_json::from_value(serde_json::json!({"metadata": {"name": ns}}))?;
        match namespaces.create(&PostParams::default(), &namespace).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 409 => {}
            Err(e) => return Err(e.into()),
        }
        let deployments: Api<Deployment> = Api::namespaced(admin.clone(), &ns);
        let made = stream::iter((0..per_namespace).take(count - n * per_namespace))
            .map(|i| {
                let deployments = deployments.clone();
                async move {
                    let d: Deployment = serde_json::from_value(serde_json::json!({
                        "metadata": {"name": format!("app-{i}"), "labels": {"app": format!("app-{i}")}},
                        "spec": {
                            "replicas": 1,
                            "selector": {"matchLabels": {"app": format!("app-{i}")}},
                            "template": {
                                "metadata": {"labels": {"app": format!("app-{i}")}},
                                "spec": {"containers": [{
                                    "name": "app",
                                    "image": "registry.example/app:1",
                                    "env": [{"name": "PADDING", "value": "x".repeat(512)}],
                                }]},
                            },
                        },
                    }))?;
                    deployments.create(&PostParams::default(), &d).await?;
                    anyhow::Ok(())
                }
            })
            .buffer_unordered(8)
            .collect::<Vec<_>>()
            .await;
        made.into_iter().collect::<Result<()>>()?;
    }
    eprintln!("bench: {count} Deployments made outside Berth");
    Ok(())
}

/// Waits until at least `want` Pods run.
async fn wait_running(admin: &Client, want: usize) -> Result<()> {
    let pods: Api<Pod> = Api::all(admin.clone());
    let deadline = Instant::now() + Duration::from_secs(1800);
    loop {
        let mut running = 0;
        let mut params = ListParams::default()
            .fields("status.phase=Running")
            .limit(500);
        loop {
            let page = pods.list_metadata(&params).await?;
            running += page.items.len();
            match page.metadata.continue_ {
                Some(token) if !token.is_empty() => params = params.continue_token(&token),
                _ => break,
            }
        }
        if running >= want {
            return Ok(());
        }
        ensure!(
            Instant::now() < deadline,
            "only {running} of {want} Pods run after 30 minutes"
        );
        eprintln!("bench: {running} of {want} Pods run");
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
}

// ------------------------------------------------------------------ measuring

#[derive(Clone, Copy, Default)]
struct Load {
    per_second: f64,
    p99_ms: f64,
    errors: u64,
}

struct PageRow {
    what: String,
    bytes: usize,
    result: Load,
}

/// wrk against one path with a session cookie (empty: none).
async fn wrk(berth: &Berth, path: &str, cookie: &str, size: &Size) -> Result<Load> {
    let mut command = Command::new("wrk");
    command
        .args(["--latency", "-t2"])
        .arg(format!("-c{}", size.connections))
        .arg(format!("-d{}s", size.wrk_seconds));
    if !cookie.is_empty() {
        command.arg("-H").arg(format!("Cookie: {cookie}"));
    }
    let output = command
        .arg(berth.url(path))
        .output()
        .await
        .context("running wrk (bench/run installs it)")?;
    ensure!(
        output.status.success(),
        "wrk failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    parse_wrk(&String::from_utf8_lossy(&output.stdout))
}

fn parse_wrk(text: &str) -> Result<Load> {
    let mut load = Load::default();
    for line in text.lines().map(str::trim) {
        if let Some(rate) = line.strip_prefix("Requests/sec:") {
            load.per_second = rate.trim().parse()?;
        } else if let Some(p99) = line.strip_prefix("99%") {
            load.p99_ms = milliseconds(p99.trim())?;
        } else if let Some(non) = line.strip_prefix("Non-2xx or 3xx responses:") {
            load.errors += non.trim().parse::<u64>()?;
        } else if let Some(errors) = line.strip_prefix("Socket errors:") {
            // "connect 0, read 0, write 0, timeout 12"
            for part in errors.split(',') {
                if let Some(n) = part.split_whitespace().nth(1) {
                    load.errors += n.parse::<u64>().unwrap_or(0);
                }
            }
        }
    }
    if load.per_second == 0.0 {
        bail!("wrk printed no rate:\n{text}");
    }
    Ok(load)
}

fn milliseconds(value: &str) -> Result<f64> {
    let split = value
        .find(|c: char| c.is_ascii_alphabetic())
        .context("a unit")?;
    let (number, unit) = value.split_at(split);
    let number: f64 = number.parse()?;
    Ok(match unit {
        "us" => number / 1000.0,
        "ms" => number,
        "s" => number * 1000.0,
        "m" => number * 60_000.0,
        other => bail!("unknown unit {other}"),
    })
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn percentile(mut values: Vec<f64>, p: f64) -> f64 {
    values.sort_by(f64::total_cmp);
    let rank = ((values.len() as f64) * p).ceil() as usize;
    values[rank.clamp(1, values.len()) - 1]
}

/// Median milliseconds of re-saving workload `w-0`'s form unchanged, and of
/// `kubectl apply --server-side` of what Berth applied.
async fn deploy_vs_kubectl(
    args: &Args,
    berth: &Berth,
    http: &reqwest::Client,
    ns: &str,
    size: &Size,
) -> Result<(f64, f64)> {
    let path = format!("/namespaces/{ns}/workloads/w-0/edit");
    let mut form = workload_form("w-0");
    let page = berth.get_ok(http, "/").await?;
    let token = csrf(&page).context("a CSRF token")?;
    form.push(("csrf_token", &token));
    let body = serde_urlencoded::to_string(&form)?;
    let mut berth_times = Vec::new();
    for _ in 0..size.repeats {
        let started = Instant::now();
        let response = http
            .post(berth.url(&path))
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(body.clone())
            .send()
            .await?;
        berth_times.push(started.elapsed().as_secs_f64() * 1000.0);
        ensure!(
            response.status() == reqwest::StatusCode::SEE_OTHER,
            "re-saving the form answered {}",
            response.status()
        );
    }
    let yaml = berth
        .get_ok(
            http,
            &format!("/namespaces/{ns}/workloads/w-0/applied.yaml"),
        )
        .await?;
    let file = tempfile::NamedTempFile::new()?;
    std::fs::write(file.path(), yaml)?;
    let mut kubectl_times = Vec::new();
    for _ in 0..size.repeats {
        let started = Instant::now();
        let output = Command::new(&args.kubectl)
            .args([
                "apply",
                "--server-side",
                "--force-conflicts",
                "--field-manager=berth",
                "-n",
                ns,
                "-f",
            ])
            .arg(file.path())
            .output()
            .await?;
        kubectl_times.push(started.elapsed().as_secs_f64() * 1000.0);
        ensure!(
            output.status.success(),
            "kubectl apply failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok((median(berth_times), median(kubectl_times)))
}

struct Students {
    count: usize,
    errors: usize,
    p50_ms: f64,
    p99_ms: f64,
    window: Duration,
}

/// Every student signs in, belongs to one namespace, and deploys once; the
/// deploys start evenly over the window.
async fn students_deploy(
    berth: &Berth,
    admin: &reqwest::Client,
    namespaces: &[String],
    size: &Size,
) -> Result<Students> {
    let mut students = Vec::new();
    for i in 0..size.students {
        let email = format!("bench-s{i}@purdue.edu");
        let ns = namespaces[i % namespaces.len()].clone();
        add_member(berth, admin, &ns, &email).await?;
        let http = berth.browser();
        berth.sign_in(&http, &email, false).await?;
        let page = berth.get_ok(&http, "/").await?;
        let token = csrf(&page).context("a CSRF token")?;
        students.push((http, ns, format!("s-{i}"), token));
    }
    let gap = size.window / u32::try_from(size.students.max(1))?;
    let started = Instant::now();
    let runs = students
        .into_iter()
        .enumerate()
        .map(|(i, (http, ns, name, token))| {
            let url = berth.url(&format!("/namespaces/{ns}/workloads"));
            let at = started + gap * u32::try_from(i).unwrap_or(u32::MAX);
            tokio::spawn(async move {
                tokio::time::sleep_until(at.into()).await;
                let mut form = workload_form(&name);
                form.push(("csrf_token", &token));
                let body = serde_urlencoded::to_string(&form).unwrap_or_default();
                let sent = Instant::now();
                let response = http
                    .post(url)
                    .header(
                        reqwest::header::CONTENT_TYPE,
                        "application/x-www-form-urlencoded",
                    )
                    .body(body)
                    .send()
                    .await;
                let ms = sent.elapsed().as_secs_f64() * 1000.0;
                let ok = response.is_ok_and(|r| r.status() == reqwest::StatusCode::SEE_OTHER);
                (ok, ms)
            })
        })
        .collect::<Vec<_>>();
    let mut times = Vec::new();
    let mut errors = 0;
    for run in runs {
        let (ok, ms) = run.await?;
        times.push(ms);
        if !ok {
            errors += 1;
        }
    }
    Ok(Students {
        count: size.students,
        errors,
        p50_ms: median(times.clone()),
        p99_ms: percentile(times, 0.99),
        window: size.window,
    })
}

// ------------------------------------------------------------------ the table

struct Report<'a> {
    size: &'a Size,
    empty: Memory,
    at_start: Memory,
    after_pages: Memory,
    after_all: Memory,
    ceiling: Load,
    rows: Vec<PageRow>,
    berth_ms: f64,
    kubectl_ms: f64,
    students: Students,
}

fn table(r: &Report) -> String {
    let s = r.size;
    let mut out = format!(
        "Berth benchmark: {} Berth namespaces × {} Deployments ({} Pods), {} more Deployments \
         outside Berth; wrk -c{} for {} s per row.\n\n",
        s.namespaces,
        s.per_namespace,
        s.namespaces * s.per_namespace,
        s.others,
        s.connections,
        s.wrk_seconds
    );
    out.push_str("| what | measured | ratio | goal |\n| --- | --- | --- | --- |\n");
    out.push_str(&format!(
        "| Berth's RSS, empty cluster | {:.1} MiB | — | ≤ 20 MiB |\n",
        r.empty.rss
    ));
    out.push_str(&format!(
        "| Berth's RSS, loaded: after start / after the page runs / after the deploys (peak) | \
         {:.1} / {:.1} / {:.1} MiB ({:.1}) | {:.2}× empty | ≤ 64 MiB |\n",
        r.at_start.rss,
        r.after_pages.rss,
        r.after_all.rss,
        r.after_all.peak,
        r.after_all.peak / r.empty.rss
    ));
    out.push_str(&format!(
        "| `/healthz` (the ceiling) | {:.0} req/s, p99 {:.1} ms | 100% | — |\n",
        r.ceiling.per_second, r.ceiling.p99_ms
    ));
    for row in &r.rows {
        let errors = if row.result.errors > 0 {
            format!(", {} errors", row.result.errors)
        } else {
            String::new()
        };
        out.push_str(&format!(
            "| {} ({:.1} KB) | {:.0} req/s, p99 {:.1} ms{errors} | {:.0}% | ≥ 25%, p99 ≤ 20 ms |\n",
            row.what,
            row.bytes as f64 / 1024.0,
            row.result.per_second,
            row.result.p99_ms,
            100.0 * row.result.per_second / r.ceiling.per_second,
        ));
    }
    out.push_str(&format!(
        "| re-applying a deploy form vs `kubectl apply --server-side` (median of {}) | {:.1} ms vs {:.1} ms | {:.2}× | ≤ 0.1× |\n",
        s.repeats,
        r.berth_ms,
        r.kubectl_ms,
        r.berth_ms / r.kubectl_ms
    ));
    let st = &r.students;
    out.push_str(&format!(
        "| {} students deploying within {} s | {} errors, p50 {:.0} ms, p99 {:.0} ms | — | 0 errors, p99 ≤ 1 s |\n",
        st.count,
        st.window.as_secs(),
        st.errors,
        st.p50_ms,
        st.p99_ms
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrk_output_is_read_with_units_and_errors() {
        let text = "Running 2s test @ http://127.0.0.1:1/healthz\n  Latency Distribution\n     50%  300.00us\n     75%    1.20ms\n     90%    2.50ms\n     99%   12.34ms\n  2000 requests in 2.00s, 1.00MB read\n  Socket errors: connect 0, read 1, write 0, timeout 2\n  Non-2xx or 3xx responses: 4\nRequests/sec:   1000.50\n";
        let load = parse_wrk(text).expect("parses");
        assert!((load.per_second - 1000.5).abs() < 1e-9);
        assert!((load.p99_ms - 12.34).abs() < 1e-9);
        assert_eq!(load.errors, 7);
        assert!((milliseconds("1.5s").expect("s") - 1500.0).abs() < 1e-9);
        assert!(parse_wrk("no numbers").is_err());
    }

    #[test]
    fn percentiles_pick_ranks() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        assert!((percentile(values.clone(), 0.99) - 99.0).abs() < 1e-9);
        assert!((median(values) - 51.0).abs() < 1e-9);
    }
}
