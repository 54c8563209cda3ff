//! What Berth deploys really runs: the test world's real node (kubelet,
//! containerd + runc, CNI, kube-proxy) pulls the image with the pull Secret
//! Berth wrote, MetalLB's controller assigns the address, and the workload
//! answers there — reached from the run's own "campus" network namespace.

use std::{process::Command, time::Duration};

use crate::helpers::{
    SMALL_NAMESPACE, TestApp, TestPerson, berth_sa,
    browser::Browser,
    client_builder,
    cluster::{self, eventually},
    csrf_from_html, location, oidc, post_form,
    registries::{registry_args, set_registry_token},
    testenv_var as env, unique,
};
use k8s_openapi::api::core::v1::{Namespace, Pod, Service};
use kube::{
    Api, Client,
    api::{DeleteParams, ListParams},
};
use reqwest::StatusCode;

const STUDENT: &str = "student@purdue.edu";
/// Pulls, container starts and address assignment on a 2-core machine.
const WAIT: Duration = Duration::from_secs(120);

/// Runs a command inside one of the run's network namespaces; its stdout.
fn in_netns(netns: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new("ip")
        .args(["netns", "exec", netns])
        .args(args)
        .output()
        .expect("running ip netns exec");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// `POST {"num": 123}` to `http://<address>:<port>/add_two` from the campus.
fn add_two_from_campus(address: &str, port: u16) -> (bool, String) {
    in_netns(
        &env("TESTENV_CAMPUS_NETNS"),
        &[
            "curl",
            "-sS",
            "--max-time",
            "5",
            "-H",
            "Content-Type: application/json",
            "-d",
            r#"{"num": 123}"#,
            &format!("http://{address}:{port}/add_two"),
        ],
    )
}

/// Does `address` lie in the IPv4 CIDR `pool`?
fn in_pool(address: &str, pool: &str) -> bool {
    let parse = |s: &str| -> Option<u32> { s.parse::<std::net::Ipv4Addr>().ok().map(u32::from) };
    let (net, bits) = pool.split_once('/').expect("a CIDR");
    let (Some(ip), Some(net), Ok(bits)) = (parse(address), parse(net), bits.parse::<u32>()) else {
        return false;
    };
    let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
    ip & mask == net & mask
}

/// Berth as its ServiceAccount with the test registry allowed; an admin made
/// a namespace whose Pods the test world steers to the real node, and added
/// the student.
struct World {
    app: TestApp,
    admin: Client,
    student: TestPerson,
    ns: String,
}

impl World {
    async fn new() -> Self {
        let args = registry_args(&env("TESTENV_REGISTRY"));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let app = TestApp::spawn_in_cluster(&args).await;
        let ns = unique("t-real");
        let prof = TestPerson::admin(&app, "prof@purdue.edu").await;
        prof.create_namespace(
            &ns,
            &[
                ("requests_cpu", "2"),
                ("default_request_cpu", "50m"),
                ("default_request_memory", "32Mi"),
                ("default_limit_memory", "128Mi"),
            ],
        )
        .await;
        let admin = cluster::admin().await;
        cluster::steer_to_real_node(&admin, &ns).await;
        prof.add_member(&ns, STUDENT, "member").await;
        let student = TestPerson::student(&app, STUDENT).await;
        Self {
            app,
            admin,
            student,
            ns,
        }
    }

    fn path(&self, rest: &str) -> String {
        format!("/namespaces/{}{rest}", self.ns)
    }

    /// Saves the robot account as the student; the credential's id.
    async fn save_robot(&self, token: &str) -> i64 {
        let saved = self
            .student
            .submit(
                &self.path("/registry"),
                &[
                    ("host", &env("TESTENV_REGISTRY")),
                    ("robot", &env("TESTENV_ROBOT_NAME")),
                    ("token", token),
                ],
            )
            .await;
        assert_eq!(saved.status(), StatusCode::SEE_OTHER, "saving the robot");
        sqlx::query_scalar("SELECT id FROM registry_credentials WHERE namespace = ?")
            .bind(&self.ns)
            .fetch_one(&self.app.db)
            .await
            .expect("credential row")
    }

    /// Replaces a saved credential's robot and token as the student.
    async fn replace_robot(&self, credential: i64, robot: &str, token: &str) {
        let replaced = self
            .student
            .submit(
                &self.path(&format!("/credentials/{credential}/replace")),
                &[("robot", robot), ("token", token)],
            )
            .await;
        assert_eq!(
            replaced.status(),
            StatusCode::SEE_OTHER,
            "replacing the token"
        );
    }

    /// Saves the run's robot and registers the image named by the testenv
    /// variable `image_var` with it: (credential id, image id).
    async fn register_with_robot(&self, image_var: &str) -> (i64, String) {
        let credential = self.save_robot(&env("TESTENV_ROBOT_TOKEN")).await;
        let image_id = self.register(&env(image_var), credential).await;
        (credential, image_id)
    }

    /// Restarts a workload as the student.
    async fn restart(&self, workload: &str) {
        let restarted = self
            .student
            .submit(&self.path(&format!("/workloads/{workload}/restart")), &[])
            .await;
        assert_eq!(
            restarted.status(),
            StatusCode::SEE_OTHER,
            "restarting {workload}"
        );
    }

    /// Waits until a pod of the namespace is ready on the real node.
    async fn ready_on_real_node(&self, what: &str) {
        eventually(WAIT, what, || async {
            first_ready_on_real_node(&self.pods().await).then_some(())
        })
        .await;
    }

    /// Registers an image as the student; its id.
    async fn register(&self, reference: &str, credential: i64) -> String {
        let registered = self
            .student
            .submit(
                &self.path("/images"),
                &[
                    ("reference", reference),
                    ("credential_id", &credential.to_string()),
                ],
            )
            .await;
        assert_eq!(registered.status(), StatusCode::SEE_OTHER, "registering");
        location(&registered)
            .rsplit('/')
            .next()
            .expect("image id")
            .to_owned()
    }

    async fn deploy(&self, form: &[(&str, &str)]) {
        let response = self.student.submit(&self.path("/workloads"), form).await;
        assert_eq!(
            response.status(),
            StatusCode::SEE_OTHER,
            "{}",
            response.text().await.unwrap_or_default()
        );
    }

    async fn page(&self, rest: &str) -> String {
        let response = self.student.get(&self.path(rest)).await;
        assert_eq!(response.status(), StatusCode::OK, "{rest}");
        response.text().await.expect("body")
    }

    /// The workload's page once it shows something `found` accepts.
    async fn page_until(&self, rest: &str, what: &str, found: impl Fn(&str) -> bool) -> String {
        self.student
            .page_when(&self.path(rest), WAIT, what, found)
            .await
    }

    /// The LoadBalancer address the apiserver holds for a Service.
    async fn assigned_address(&self, service: &str) -> String {
        let api = Api::<Service>::namespaced(self.admin.clone(), &self.ns);
        eventually(WAIT, "MetalLB assigns an address", || async {
            api.get_opt(service)
                .await
                .ok()
                .flatten()
                .and_then(|s| s.status?.load_balancer?.ingress?.into_iter().next()?.ip)
        })
        .await
    }

    async fn pods(&self) -> Vec<Pod> {
        Api::<Pod>::namespaced(self.admin.clone(), &self.ns)
            .list(&ListParams::default())
            .await
            .expect("listing pods")
            .items
    }

    async fn finish(self) {
        cluster::delete_namespace(&self.admin, &self.ns).await;
        self.app.stop().await;
    }
}

/// The add-two preset as the form posts it.
fn add_two<'a>(image_id: &'a str, exposure: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("action", "deploy"),
        ("name", "add-two"),
        ("image_source", "registered"),
        ("image_id", image_id),
        ("replicas", "1"),
        ("container_port", "5000"),
        ("cpu_request", "50m"),
        ("memory_request", "32Mi"),
        ("memory_limit", "64Mi"),
        ("volume", "none"),
        ("exposure", exposure),
        ("published_port", "80"),
        ("target_port", "5000"),
        ("protocol", "TCP"),
    ]
}

/// A tools-image workload with a command override and optionally a volume.
fn tools<'a>(image_id: &'a str, name: &'a str, command: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("action", "deploy"),
        ("name", name),
        ("image_source", "registered"),
        ("image_id", image_id),
        ("replicas", "1"),
        ("container_port", ""),
        ("command", command),
        ("cpu_request", "50m"),
        ("memory_request", "16Mi"),
        ("memory_limit", "32Mi"),
        ("volume", "none"),
        ("exposure", "none"),
        ("published_port", ""),
        ("target_port", ""),
        ("protocol", "TCP"),
    ]
}

fn first_ready_on_real_node(pods: &[Pod]) -> bool {
    pods.iter().any(|p| {
        p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(&env("TESTENV_REAL_NODE"))
            && p.status
                .as_ref()
                .and_then(|s| s.container_statuses.as_ref())
                .is_some_and(|cs| cs.iter().all(|c| c.ready))
    })
}

#[tokio::test]
async fn the_guides_journey_in_chromium_ends_with_add_two_answering_at_its_campus_address() {
    let world = World::new().await;
    let browser = Browser::start().await;
    browser.sign_in(&world.app.base, STUDENT, false).await;

    // Save the robot account once.
    browser.goto(&world.app.url(&world.path("/registry"))).await;
    browser.fill("#robot", &env("TESTENV_ROBOT_NAME")).await;
    browser.fill("#token", &env("TESTENV_ROBOT_TOKEN")).await;
    browser
        .click("form[action$='/registry'] button[type=submit]")
        .await;
    let robot = env("TESTENV_ROBOT_NAME");
    let html = browser
        .wait_for_source("the saved credential", |html| {
            html.contains(&format!("<code>{robot}</code>"))
        })
        .await;
    assert!(
        !html.contains(&env("TESTENV_ROBOT_TOKEN")),
        "the token is never shown"
    );

    // Register the image, then deploy it with the add-two preset.
    browser.goto(&world.app.url(&world.path("/images"))).await;
    browser.fill("#reference", &env("TESTENV_REAL_IMAGE")).await;
    browser
        .click("form[action$='/images'] button[type=submit]")
        .await;
    let image_page = browser
        .wait_for_url(&world.app.url(&world.path("/images/")))
        .await;
    let image_id = image_page.rsplit('/').next().expect("image id").to_owned();
    assert!(
        image_id.chars().all(|c| c.is_ascii_digit()),
        "landed on the image page: {image_page}"
    );
    browser
        .goto(
            &world
                .app
                .url(&world.path(&format!("/workloads/new?preset=add-two&image={image_id}"))),
        )
        .await;
    browser.click("button[value=deploy]").await;
    let workload = world.app.url(&world.path("/workloads/add-two"));
    assert_eq!(browser.wait_for_url(&workload).await, workload);

    // The address the apiserver holds, from the campus pool, shown on the page.
    let address = world.assigned_address("add-two").await;
    assert!(
        in_pool(&address, &env("TESTENV_CAMPUS_POOL")),
        "{address} is from the campus pool"
    );
    let html = world
        .page_until("/workloads/add-two", "the pod is ready", |html| {
            html.contains(&address) && html.contains("1 of 1 pods")
        })
        .await;
    assert!(html.contains(&format!("<code>{address}</code>")), "{html}");
    browser.goto(&workload).await;
    if let Ok(dir) = std::env::var("BERTH_SCREENSHOT_DIR") {
        let _ = std::fs::write(
            format!("{dir}/real-workload.png"),
            browser.screenshot().await,
        );
    }
    assert!(browser.source().await.contains(&address));

    // The guide's last step, from the campus network.
    let answer = eventually(WAIT, "add-two answers on port 80", || async {
        let (ok, body) = add_two_from_campus(&address, 80);
        (ok && !body.is_empty()).then_some(body)
    })
    .await;
    let json: serde_json::Value = serde_json::from_str(&answer).expect("JSON from add-two");
    assert_eq!(json, serde_json::json!({"output": 125}));
    // Published 80 → target 5000 is what made it work: 5000 on the address is closed.
    let (ok, _) = add_two_from_campus(&address, 5000);
    assert!(!ok, "nothing listens on the address's port 5000");
    let service = Api::<Service>::namespaced(world.admin.clone(), &world.ns)
        .get("add-two")
        .await
        .expect("service");
    let port = &service.spec.expect("spec").ports.expect("ports")[0];
    assert_eq!(port.port, 80);
    assert_eq!(
        port.target_port,
        Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(5000))
    );
    assert!(first_ready_on_real_node(&world.pods().await));

    browser.quit().await;
    world.finish().await;
}

#[tokio::test]
async fn public_exposure_gets_an_address_from_the_public_pool_and_answers_there() {
    let world = World::new().await;
    let (_, image_id) = world.register_with_robot("TESTENV_REAL_IMAGE").await;
    world.deploy(&add_two(&image_id, "public")).await;
    let address = world.assigned_address("add-two").await;
    assert!(
        in_pool(&address, &env("TESTENV_PUBLIC_POOL")),
        "{address} is from the public pool"
    );
    let answer = eventually(WAIT, "add-two answers publicly", || async {
        let (ok, body) = add_two_from_campus(&address, 80);
        (ok && !body.is_empty()).then_some(body)
    })
    .await;
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&answer).expect("JSON"),
        serde_json::json!({"output": 125})
    );
    world.finish().await;
}

#[tokio::test]
async fn a_revoked_robot_token_is_explained_and_a_replaced_one_makes_the_next_pod_pull() {
    let world = World::new().await;
    let (credential, image_id) = world.register_with_robot("TESTENV_REAL_IMAGE").await;

    // Harbor revokes the robot's token: the registry now wants another one.
    // (The registry is shared by the whole run, so this test revokes a robot
    // of its own: a second account whose token it then changes.)
    let robot = format!("robot$cs101+{}", unique("revoked"));
    set_registry_token(&robot, "first-token-0123456789");
    world
        .replace_robot(credential, &robot, "first-token-0123456789")
        .await;
    set_registry_token(&robot, "second-token-9876543210");

    world.deploy(&add_two(&image_id, "none")).await;
    let html = world
        .page_until(
            "/workloads/add-two",
            "the pull failure is explained",
            |html| html.contains("refused the credentials"),
        )
        .await;
    assert!(
        html.contains("Replace the credential on the Registry page"),
        "{html}"
    );

    // The student replaces the token in Berth; the next pod pulls.
    world
        .replace_robot(credential, &robot, "second-token-9876543210")
        .await;
    world.restart("add-two").await;
    world
        .ready_on_real_node("a pod pulled and runs on the real node")
        .await;
    world.finish().await;
}

#[tokio::test]
async fn a_command_override_prints_to_the_logs_page_and_one_that_exits_is_a_crash_loop() {
    let world = World::new().await;
    let (_, image_id) = world.register_with_robot("TESTENV_TOOLS_IMAGE").await;
    world
        .deploy(&tools(
            &image_id,
            "talker",
            "sh -c 'echo hello from the real node; exec sleep 3600'",
        ))
        .await;
    world
        .page_until(
            "/workloads/talker/logs?lines=100",
            "the line is in the logs",
            |html| html.contains("hello from the real node"),
        )
        .await;

    world
        .deploy(&tools(&image_id, "quitter", "sh -c 'echo bye; exit 3'"))
        .await;
    let html = world
        .page_until(
            "/workloads/quitter",
            "the crash loop is explained",
            |html| html.contains("CrashLoopBackOff") || html.contains("keeps crashing"),
        )
        .await;
    assert!(html.contains("quitter"), "{html}");
    // The page offers the crashed container's log, and it has what that
    // container wrote before it exited (kubectl logs --previous).
    assert!(
        html.contains("/workloads/quitter/logs?previous=1"),
        "{html}"
    );
    let previous = world
        .page_until(
            "/workloads/quitter/logs?previous=1&lines=100",
            "the previous container's log",
            |text| text.contains("bye"),
        )
        .await;
    assert!(
        previous.starts_with("The previous container of each pod"),
        "{previous}"
    );
    world.finish().await;
}

#[tokio::test]
async fn a_file_written_to_the_workload_volume_survives_a_pod_restart() {
    let world = World::new().await;
    let (_, image_id) = world.register_with_robot("TESTENV_TOOLS_IMAGE").await;
    let mut form = tools(
        &image_id,
        "notes",
        "sh -c 'date >> /data/notes.txt; cat /data/notes.txt; exec sleep 3600'",
    );
    for (key, value) in &mut form {
        if *key == "volume" {
            *value = "new";
        }
    }
    form.extend([("volume_size", "1Gi"), ("mount_path", "/data")]);
    world.deploy(&form).await;
    let first = world
        .page_until(
            "/workloads/notes/logs?lines=100",
            "one line written",
            |html| html.contains(" UTC "),
        )
        .await;
    let count = |html: &str| html.matches(" UTC ").count();
    assert_eq!(count(&first), 1, "{first}");
    world.restart("notes").await;
    // The new pod appended to what the old one wrote.
    world
        .page_until(
            "/workloads/notes/logs?lines=100",
            "the new pod sees the old line",
            |html| count(html) == 2,
        )
        .await;
    world.finish().await;
}

#[tokio::test]
async fn the_jupyter_preset_shape_serves_its_volume_on_8888() {
    let world = World::new().await;
    let (_, image_id) = world.register_with_robot("TESTENV_JUPYTER_IMAGE").await;
    let page = world.page("/workloads/new?preset=jupyter").await;
    // The preset's shape, as the form fills it in; the test world's stand-in
    // image answers to the same command and arguments.
    let ns = world.ns.clone();
    let args = format!("--ServerApp.base_url=/{ns}/jupyter --ServerApp.root_dir=/workspace");
    for shown in [
        "value=\"start-notebook.py\"",
        "value=\"8888\"",
        "value=\"/workspace\"",
        &format!("value=\"{args}\""),
    ] {
        assert!(page.contains(shown), "the preset shows {shown}");
    }
    let form = [
        ("action", "deploy"),
        ("name", "jupyter"),
        ("image_source", "registered"),
        ("image_id", image_id.as_str()),
        ("replicas", "1"),
        ("container_port", "8888"),
        ("command", "start-notebook.py"),
        ("args", args.as_str()),
        ("cpu_request", "100m"),
        ("memory_request", "64Mi"),
        ("memory_limit", "128Mi"),
        ("volume", "new"),
        ("volume_size", "1Gi"),
        ("mount_path", "/workspace"),
        ("exposure", "cluster"),
        ("published_port", "80"),
        ("target_port", "8888"),
        ("protocol", "TCP"),
    ];
    world.deploy(&form).await;
    world
        .ready_on_real_node("jupyter runs on the real node")
        .await;
    // A notebook written to the volume from inside the pod's mount, then
    // served from it on 8888 through the Service (published 80 → 8888).
    let pv_dir = bound_volume_dir(&world.admin, &ns, "jupyter").await;
    std::fs::write(format!("{pv_dir}/hello.ipynb"), "{\"cells\": []}").expect("writing a notebook");
    let service = Api::<Service>::namespaced(world.admin.clone(), &ns)
        .get("jupyter")
        .await
        .expect("service");
    let cluster_ip = service.spec.and_then(|s| s.cluster_ip).expect("cluster ip");
    let body = eventually(WAIT, "the Service reaches jupyter", || async {
        let (ok, body) = in_netns(
            &env("TESTENV_NODE_NETNS"),
            &[
                "curl",
                "-sS",
                "--max-time",
                "5",
                &format!("http://{cluster_ip}:80/hello.ipynb"),
            ],
        );
        ok.then_some(body)
    })
    .await;
    assert_eq!(body, "{\"cells\": []}");
    world.finish().await;
}

/// The directory on the node behind a workload's claim (the test world's
/// pre-made hostPath volumes).
async fn bound_volume_dir(admin: &Client, ns: &str, workload: &str) -> String {
    use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
    let claims = Api::<PersistentVolumeClaim>::namespaced(admin.clone(), ns)
        .list(&ListParams::default())
        .await
        .expect("claims");
    let volume = claims
        .items
        .into_iter()
        .find(|c| {
            c.metadata
                .name
                .as_deref()
                .is_some_and(|n| n.starts_with(workload))
        })
        .and_then(|c| c.spec?.volume_name)
        .expect("a bound claim");
    Api::<PersistentVolume>::all(admin.clone())
        .get(&volume)
        .await
        .expect("volume")
        .spec
        .and_then(|s| s.host_path)
        .map(|h| h.path)
        .expect("a hostPath volume")
}

/// A free port on the host's loopback (bound, then released).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn kubectl(args: &[&str]) -> String {
    let out = Command::new(env("TESTENV_KUBECTL"))
        .args(args)
        .output()
        .expect("kubectl");
    assert!(
        out.status.success(),
        "kubectl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A background process the test started; killed when dropped.
struct Background(std::process::Child);

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn berth_itself_runs_in_the_cluster_from_deploy_and_acts_as_its_people() {
    let admin = cluster::admin().await;
    // Berth's image, built from the binary these tests run, pushed to the
    // test registry; the namespace's Pods go to the real node.
    let image = format!("{}/berth/berth", env("TESTENV_REGISTRY"));
    let tag = unique("test");
    let built = Command::new(berth_sa::repo_root().join("testenv/berth-image"))
        .args([env!("CARGO_BIN_EXE_berth"), &format!("{image}:{tag}")])
        .output()
        .expect("testenv/berth-image");
    assert!(
        built.status.success(),
        "{}",
        String::from_utf8_lossy(&built.stderr)
    );
    let namespaces = Api::<Namespace>::all(admin.clone());
    if namespaces
        .get_opt("berth-system")
        .await
        .expect("reading")
        .is_none()
    {
        let ns: Namespace = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "berth-system"}
        }))
        .expect("namespace");
        namespaces
            .create(&Default::default(), &ns)
            .await
            .expect("creating berth-system");
    }
    cluster::steer_to_real_node(&admin, "berth-system").await;

    // What deploy/README asks an admin to make, and the site's settings.
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("temp dir");
    let port = free_port();
    std::fs::write(
        dir.path().join("client-secret"),
        env("TESTENV_OIDC_CLIENT_SECRET"),
    )
    .expect("secret");
    std::fs::write(
        dir.path().join("master-keys"),
        "k1:MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDE=\n",
    )
    .expect("keys");
    for (name, key, file) in [
        ("berth-oidc", "oidc-client-secret", "client-secret"),
        ("berth-master-keys", "master-keys", "master-keys"),
    ] {
        let _ = Command::new(env("TESTENV_KUBECTL"))
            .args([
                "-n",
                "berth-system",
                "delete",
                "secret",
                name,
                "--ignore-not-found",
            ])
            .output();
        kubectl(&[
            "-n",
            "berth-system",
            "create",
            "secret",
            "generic",
            name,
            &format!("--from-file={key}={}", dir.path().join(file).display()),
        ]);
    }
    // Kustomize takes a base only by a relative path.
    let deploy = relative(dir.path(), &berth_sa::repo_root().join("deploy"));
    let kustomization = format!(
        "apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - {deploy}
images:
  - name: geddes-registry.rcac.purdue.edu/berth/berth
    newName: {image}
    newTag: {tag}
configMapGenerator:
  - name: berth
    namespace: berth-system
    behavior: merge
    literals:
      - BERTH_PUBLIC_URL=http://localhost:{port}
      - BERTH_OIDC_ISSUER={issuer}
      - BERTH_OIDC_CLIENT_ID=berth
      - BERTH_ADMIN_EMAILS=admin@purdue.edu
      - BERTH_DEFAULT_REGISTRY={registry}
      - BERTH_ALLOWED_REGISTRIES={registry}
      - BERTH_INSECURE_REGISTRIES={registry}
",
        deploy = deploy.display(),
        issuer = env("TESTENV_INCLUSTER_OIDC_ISSUER"),
        registry = env("TESTENV_REGISTRY"),
    );
    std::fs::write(dir.path().join("kustomization.yaml"), kustomization).expect("overlay");
    // The image's pull: the Pod pulls Berth from the test registry, which
    // wants credentials; the ServiceAccount carries them, as a site would.
    let _ = Command::new(env("TESTENV_KUBECTL"))
        .args([
            "-n",
            "berth-system",
            "delete",
            "secret",
            "berth-image-pull",
            "--ignore-not-found",
        ])
        .output();
    kubectl(&[
        "-n",
        "berth-system",
        "create",
        "secret",
        "docker-registry",
        "berth-image-pull",
        &format!("--docker-server={}", env("TESTENV_REGISTRY")),
        &format!("--docker-username={}", env("TESTENV_REGISTRY_USER")),
        &format!("--docker-password={}", env("TESTENV_REGISTRY_PASSWORD")),
    ]);
    kubectl(&[
        "apply",
        "--server-side",
        "--force-conflicts",
        "-k",
        &dir.path().display().to_string(),
    ]);
    kubectl(&[
        "-n",
        "berth-system",
        "patch",
        "serviceaccount",
        "berth",
        "-p",
        r#"{"imagePullSecrets":[{"name":"berth-image-pull"}]}"#,
    ]);
    kubectl(&[
        "-n",
        "berth-system",
        "rollout",
        "restart",
        "deployment/berth",
    ]);
    let rollout = Command::new(env("TESTENV_KUBECTL"))
        .args([
            "-n",
            "berth-system",
            "rollout",
            "status",
            "deployment/berth",
            "--timeout=90s",
        ])
        .output()
        .expect("rollout status");
    let pods = kubectl(&["-n", "berth-system", "get", "pods", "-o", "wide"]);
    assert!(
        rollout.status.success(),
        "Berth's Deployment became ready: {}\n{pods}\nits last words: {}",
        String::from_utf8_lossy(&rollout.stderr),
        String::from_utf8_lossy(
            &Command::new(env("TESTENV_KUBECTL"))
                .args([
                    "-n",
                    "berth-system",
                    "logs",
                    "deployment/berth",
                    "--previous",
                    "--tail=30"
                ])
                .output()
                .expect("logs")
                .stdout
        )
    );
    assert!(pods.contains(&env("TESTENV_REAL_NODE")), "{pods}");

    // Through its Service: localhost:<port> → the node → the Service's
    // ClusterIP (kube-proxy) → Berth's Pod.
    let cluster_ip = kubectl(&[
        "-n",
        "berth-system",
        "get",
        "service",
        "berth",
        "-o",
        "jsonpath={.spec.clusterIP}",
    ]);
    let sock = dir.path().join("berth.sock");
    let _inside = Background(
        Command::new("ip")
            .args(["netns", "exec", &env("TESTENV_NODE_NETNS"), "socat"])
            .arg(format!("UNIX-LISTEN:{},fork", sock.display()))
            .arg(format!("TCP:{cluster_ip}:80"))
            .spawn()
            .expect("socat in the node"),
    );
    let _outside = Background(
        Command::new("socat")
            .arg(format!("TCP-LISTEN:{port},bind=127.0.0.1,fork,reuseaddr"))
            .arg(format!("UNIX-CONNECT:{}", sock.display()))
            .spawn()
            .expect("socat on the host"),
    );
    let base = format!("http://localhost:{port}");
    let client = client_builder()
        .cookie_store(true)
        .timeout(Duration::from_secs(20))
        // One connection per request: the socat bridge is the test's, not
        // Berth's, and an idle kept-alive connection through it can stall.
        .pool_max_idle_per_host(0)
        .build()
        .expect("a client");
    eventually(
        Duration::from_secs(30),
        "Berth answers through its Service",
        || async {
            let ready = client.get(format!("{base}/readyz")).send().await.ok()?;
            (ready.status() == StatusCode::OK).then_some(())
        },
    )
    .await;

    // An admin signs in at the OIDC provider and creates a namespace: the
    // in-cluster Berth acts through its ServiceAccount, as the admin.
    let provider = oidc::Provider::in_cluster_from_env();
    let start = client
        .get(format!("{base}/auth/start?next=%2F"))
        .send()
        .await
        .expect("starting sign-in");
    assert_eq!(start.status(), StatusCode::SEE_OTHER);
    let authorize = reqwest::Url::parse(&location(&start)).expect("authorize URL");
    assert!(
        authorize.as_str().starts_with(&provider.issuer),
        "{authorize}"
    );
    let callback = provider
        .log_in(&client, authorize, "admin@purdue.edu", &base)
        .await;
    let signed_in = client.get(callback).send().await.expect("callback");
    assert_eq!(
        signed_in.status(),
        StatusCode::SEE_OTHER,
        "{}",
        signed_in.text().await.unwrap_or_default()
    );
    let home = client.get(format!("{base}/")).send().await.expect("home");
    let html = home.text().await.expect("home page");
    assert!(html.contains("admin@purdue.edu"), "{html}");
    let csrf = csrf_from_html(&html).expect("a CSRF token");
    let ns = unique("t-incluster");
    let mut form = vec![
        ("csrf_token", csrf.as_str()),
        ("name", ns.as_str()),
        ("description", "made by Berth in the cluster"),
    ];
    form.extend(SMALL_NAMESPACE);
    let created = post_form(&client, &format!("{base}/admin/namespaces"), &form).await;
    assert_eq!(
        created.status(),
        StatusCode::SEE_OTHER,
        "{}",
        created.text().await.unwrap_or_default()
    );
    let made = namespaces.get(&ns).await.expect("the namespace exists");
    assert_eq!(
        made.metadata
            .labels
            .unwrap_or_default()
            .get("app.kubernetes.io/managed-by")
            .map(String::as_str),
        Some("berth")
    );

    let _ = namespaces.delete(&ns, &DeleteParams::background()).await;
    for kind in [
        "deployment/berth",
        "service/berth",
        "configmap",
        "pvc/berth-data",
    ] {
        let _ = Command::new(env("TESTENV_KUBECTL"))
            .args(["-n", "berth-system", "delete", kind, "--wait=false"])
            .args(if kind == "configmap" {
                vec!["-l", "app.kubernetes.io/name=berth"]
            } else {
                vec![]
            })
            .output();
    }
}

/// `to` as a path relative to the directory `from`.
fn relative(from: &std::path::Path, to: &std::path::Path) -> std::path::PathBuf {
    let from = from.canonicalize().expect("canonical path");
    let to = to.canonicalize().expect("canonical path");
    let common = from
        .components()
        .zip(to.components())
        .take_while(|(a, b)| a == b)
        .count();
    let mut path = std::path::PathBuf::new();
    for _ in from.components().skip(common) {
        path.push("..");
    }
    for part in to.components().skip(common) {
        path.push(part);
    }
    path
}

// ------------------------------------------------------------------ the shell

/// The session cookies of a fresh dev sign-in as `email`, as a `Cookie` header.
async fn session_cookie(app: &TestApp, email: &str) -> String {
    TestPerson::student(app, email).await.cookie_header()
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens the shell WebSocket of `workload` like a browser on `origin` with
/// `cookie`; the socket, or the HTTP status the handshake was refused with.
async fn open_shell(
    world: &World,
    workload: &str,
    origin: Option<&str>,
    cookie: Option<&str>,
) -> Result<Socket, u16> {
    use tokio_tungstenite::tungstenite::{client::IntoClientRequest, http::HeaderValue};
    let port = world.app.addr.port();
    let url = format!(
        "ws://127.0.0.1:{port}/namespaces/{}/workloads/{workload}/shell",
        world.ns
    );
    let mut request = url.into_client_request().expect("a request");
    let headers = request.headers_mut();
    headers.insert(
        "host",
        HeaderValue::from_str(&format!("localhost:{port}")).expect("host"),
    );
    if let Some(origin) = origin {
        headers.insert("origin", HeaderValue::from_str(origin).expect("origin"));
    }
    if let Some(cookie) = cookie {
        headers.insert("cookie", HeaderValue::from_str(cookie).expect("cookie"));
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok((socket, _)) => Ok(socket),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            Err(response.status().as_u16())
        }
        Err(other) => panic!("the handshake failed without an HTTP answer: {other}"),
    }
}

/// Reads frames until the terminal output or a notice contains `needle`;
/// everything read.
async fn read_until(socket: &mut Socket, needle: &str) -> String {
    use futures::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    let mut seen = String::new();
    let read = async {
        while let Some(message) = socket.next().await {
            match message {
                Ok(Message::Binary(bytes)) => seen.push_str(&String::from_utf8_lossy(&bytes)),
                Ok(Message::Text(text)) => seen.push_str(&text),
                Ok(Message::Close(_)) | Err(_) => break,
                Ok(_) => {}
            }
            if seen.contains(needle) {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(30), read).await;
    seen
}

async fn audit_count(world: &World, action: &str, outcome: &str, actor: &str) -> i64 {
    sqlx::query_scalar(
        "SELECT COUNT(*) FROM audit_log WHERE action = ? AND outcome = ? AND actor = ? AND namespace = ?",
    )
    .bind(action)
    .bind(outcome)
    .bind(actor)
    .bind(&world.ns)
    .fetch_one(&world.app.db)
    .await
    .expect("audit")
}

#[tokio::test]
async fn a_shell_in_the_container_runs_as_the_person_over_a_checked_websocket() {
    use futures::SinkExt;
    use tokio_tungstenite::tungstenite::Message;
    let world = World::new().await;
    let (_, image_id) = world.register_with_robot("TESTENV_TOOLS_IMAGE").await;
    world
        .deploy(&tools(&image_id, "box", "sh -c 'exec sleep 3600'"))
        .await;
    world
        .ready_on_real_node("box running on the real node")
        .await;
    let page = world
        .page_until("/workloads/box", "the shell panel", |html| {
            html.contains("data-shell-socket")
        })
        .await;
    assert!(page.contains("kubectl exec -it -n"), "{page}");
    let origin = world.app.base.clone();
    let cookie = session_cookie(&world.app, STUDENT).await;

    // The person's shell runs what they type, in the container.
    let mut shell = open_shell(&world, "box", Some(&origin), Some(&cookie))
        .await
        .expect("the shell opens");
    shell
        .send(Message::Text(r#"{"cols":100,"rows":30}"#.into()))
        .await
        .expect("resize");
    shell
        .send(Message::Binary(
            "echo shell-$((40+2)); stty size\n"
                .as_bytes()
                .to_vec()
                .into(),
        ))
        .await
        .expect("typing");
    let output = read_until(&mut shell, "shell-42").await;
    assert!(output.contains("shell-42"), "{output}");
    let size = read_until(&mut shell, "30 100").await;
    assert!(
        size.contains("30 100") || output.contains("30 100"),
        "the terminal has the browser's size: {output}{size}"
    );

    // Another site's page, or no session: refused before any exec.
    assert_eq!(
        open_shell(&world, "box", Some("http://evil.example"), Some(&cookie))
            .await
            .err(),
        Some(403)
    );
    assert_eq!(
        open_shell(&world, "box", None, Some(&cookie)).await.err(),
        Some(403),
        "no Origin"
    );
    let anonymous = open_shell(&world, "box", Some(&origin), None).await.err();
    assert!(
        anonymous.is_some_and(|status| status != 101),
        "no session: {anonymous:?}"
    );

    // At most three at once per person (the default).
    let mut more = Vec::new();
    for _ in 0..2 {
        more.push(
            open_shell(&world, "box", Some(&origin), Some(&cookie))
                .await
                .expect("within the cap"),
        );
    }
    assert_eq!(
        open_shell(&world, "box", Some(&origin), Some(&cookie))
            .await
            .err(),
        Some(429),
        "a fourth shell"
    );
    let _ = shell.close(None).await;
    for mut socket in more {
        let _ = socket.close(None).await;
    }
    eventually(WAIT, "the shells are closed and audited", || async {
        (audit_count(&world, "shell.close", "ok", STUDENT).await >= 3).then_some(())
    })
    .await;
    assert!(audit_count(&world, "shell.open", "ok", STUDENT).await >= 3);
    assert_eq!(
        audit_count(&world, "shell.open", "denied", STUDENT).await,
        1
    );

    // A membership row without its RoleBinding (a bug in Berth's own check):
    // the apiserver refuses the exec.
    sqlx::query("INSERT INTO memberships (namespace, email, role, added_by, added_at) VALUES (?, 'eve@purdue.edu', 'member', 'test', 0)")
        .bind(&world.ns)
        .execute(&world.app.db)
        .await
        .expect("membership row");
    world.app.forget_cached();
    let eve = session_cookie(&world.app, "eve@purdue.edu").await;
    let mut refused = open_shell(&world, "box", Some(&origin), Some(&eve))
        .await
        .expect("Berth's own check lets eve through");
    let said = read_until(&mut refused, "did not open a shell").await;
    assert!(said.contains("Kubernetes did not open a shell"), "{said}");
    assert_eq!(
        audit_count(&world, "shell.open", "denied", "eve@purdue.edu").await,
        1,
        "a 403 from the apiserver"
    );

    // In Chromium: type a command in the page's terminal, see its output.
    let browser = Browser::start_with_javascript().await;
    browser.sign_in(&world.app.base, STUDENT, false).await;
    browser
        .goto(&world.app.url(&world.path("/workloads/box")))
        .await;
    browser.click("[data-shell-open]").await;
    browser
        .wait_for_source("the terminal connects", |html| html.contains("Connected."))
        .await;
    // The terminal has focus once connected (static/shell.js focuses it).
    browser.type_keys("echo typed-$((6*7))\n").await;
    let html = browser
        .wait_for_source("the output on the page", |html| html.contains("typed-42"))
        .await;
    assert!(html.contains("typed-42"));
    browser.quit().await;
    world.finish().await;
}
