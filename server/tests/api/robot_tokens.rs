//! A robot token's life: its expiry recorded (typed, Harbor's 30-day default,
//! "never", or read from a JWT), warned about on the dashboard and on every
//! workload page that pulls with it, and its replacement rewriting the pull
//! Secret every workload of the namespace uses, so new pods keep pulling on
//! the real node after the registry revoked the old token.
//!
//! Time passing is the recorded date moving: the tests set a credential's
//! `expires_on` in the database (what days going by would do) rather than
//! wait for days.

use std::time::Duration;

use crate::helpers::{
    SMALL_NAMESPACE, TestApp, TestPerson,
    cluster::{self, eventually},
    location,
    registries::{registry_args, set_registry_token},
    testenv_var as env, unique,
};
use base64::{Engine, engine::general_purpose::STANDARD};
use k8s_openapi::api::{
    apps::v1::Deployment,
    core::v1::{Pod, Secret},
};
use kube::{
    Api, Client,
    api::{DeleteParams, ListParams},
};
use reqwest::StatusCode;

const STUDENT: &str = "student@purdue.edu";
/// Pulls and container starts on a 2-core machine.
const WAIT: Duration = Duration::from_secs(120);

fn date_in(days: i64) -> String {
    let date = time::OffsetDateTime::now_utc().date() + time::Duration::days(days);
    format!(
        "{:04}-{:02}-{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    )
}

/// The namespace settings of these tests.
const SETTINGS: [(&str, &str); 8] = [
    ("requests_cpu", "2"),
    ("services_loadbalancers", "1"),
    ("persistentvolumeclaims", "1"),
    ("requests_storage", "1Gi"),
    ("default_request_cpu", "50m"),
    ("default_request_memory", "32Mi"),
    ("default_limit_cpu", "500m"),
    ("default_limit_memory", "128Mi"),
];

/// Berth as its ServiceAccount with the run's registry; a namespace whose
/// Pods go to the real node, with the student as a member.
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
        let ns = unique("t-robot");
        let prof = TestPerson::admin(&app, "prof@purdue.edu").await;
        prof.create_namespace(&ns, &SETTINGS).await;
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

    async fn submit(&self, rest: &str, form: &[(&str, &str)]) -> reqwest::Response {
        self.student.submit(&self.path(rest), form).await
    }

    /// A robot of this test's own in the registry, saved in Berth: its id.
    async fn save_robot(&self, robot: &str, token: &str, expires_on: &str) -> i64 {
        set_registry_token(robot, token);
        let saved = self
            .submit(
                "/registry",
                &[
                    ("host", &env("TESTENV_REGISTRY")),
                    ("robot", robot),
                    ("token", token),
                    ("expires_on", expires_on),
                ],
            )
            .await;
        assert_eq!(saved.status(), StatusCode::SEE_OTHER, "saving the robot");
        sqlx::query_scalar("SELECT id FROM registry_credentials WHERE namespace = ? AND robot = ?")
            .bind(&self.ns)
            .bind(robot)
            .fetch_one(&self.app.db)
            .await
            .expect("credential row")
    }

    async fn register(&self, credential: i64) -> String {
        let registered = self
            .submit(
                "/images",
                &[
                    ("reference", &env("TESTENV_REAL_IMAGE")),
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

    /// The add-two image as a workload (not exposed), pulling with the credential.
    async fn deploy(&self, image_id: &str, name: &str) {
        let response = self
            .submit(
                "/workloads",
                &[
                    ("action", "deploy"),
                    ("name", name),
                    ("image_source", "registered"),
                    ("image_id", image_id),
                    ("replicas", "1"),
                    ("container_port", "5000"),
                    ("cpu_request", "50m"),
                    ("memory_request", "32Mi"),
                    ("memory_limit", "64Mi"),
                    ("volume", "none"),
                    ("exposure", "none"),
                    ("published_port", "80"),
                    ("target_port", "5000"),
                    ("protocol", "TCP"),
                ],
            )
            .await;
        assert_eq!(
            response.status(),
            StatusCode::SEE_OTHER,
            "{}",
            response.text().await.unwrap_or_default()
        );
    }

    async fn pods_of(&self, workload: &str) -> Vec<Pod> {
        Api::<Pod>::namespaced(self.admin.clone(), &self.ns)
            .list(&ListParams::default().labels(&format!("app.kubernetes.io/name={workload}")))
            .await
            .expect("listing pods")
            .items
    }

    /// Waits until a pod of `workload` not in `old` runs ready on the real node.
    async fn new_pod_ready(&self, workload: &str, old: &[String]) {
        eventually(WAIT, &format!("a new pod of {workload} runs"), || async {
            self.pods_of(workload)
                .await
                .iter()
                .any(|p| {
                    !old.contains(&p.metadata.name.clone().unwrap_or_default())
                        && p.spec.as_ref().and_then(|s| s.node_name.as_deref())
                            == Some(&env("TESTENV_REAL_NODE"))
                        && p.status
                            .as_ref()
                            .and_then(|s| s.container_statuses.as_ref())
                            .is_some_and(|cs| cs.iter().all(|c| c.ready))
                })
                .then_some(())
        })
        .await;
    }

    async fn page(&self, rest: &str) -> String {
        let response = self.student.get(rest).await;
        assert_eq!(response.status(), StatusCode::OK, "{rest}");
        response.text().await.expect("body")
    }

    /// The workload page once it shows something `found` accepts.
    async fn page_until(&self, rest: &str, what: &str, found: impl Fn(&str) -> bool) -> String {
        self.student
            .page_when(&self.path(rest), WAIT, what, found)
            .await
    }

    async fn set_expiry(&self, credential: i64, date: &str) {
        sqlx::query(
            "UPDATE registry_credentials SET expires_on = ?, expiry_source = 'typed' WHERE id = ?",
        )
        .bind(date)
        .bind(credential)
        .execute(&self.app.db)
        .await
        .expect("moving the date");
        self.app.forget_cached();
    }

    async fn finish(self) {
        cluster::delete_namespace(&self.admin, &self.ns).await;
        self.app.stop().await;
    }
}

/// The password for `registry` in a pull Secret, as the apiserver holds it.
fn secret_password(secret: &Secret, registry: &str) -> String {
    let data = &secret.data.as_ref().expect("data")[".dockerconfigjson"].0;
    let config: serde_json::Value = serde_json::from_slice(data).expect("docker config JSON");
    let entry = &config["auths"][registry];
    let auth = String::from_utf8(
        STANDARD
            .decode(entry["auth"].as_str().expect("auth"))
            .expect("base64"),
    )
    .expect("UTF-8");
    let password = entry["password"].as_str().expect("password").to_owned();
    assert!(
        auth.ends_with(&format!(":{password}")),
        "auth and password agree"
    );
    password
}

#[tokio::test]
async fn replacing_a_revoked_token_rewrites_every_pull_secret_and_restarted_pods_pull_again() {
    let world = World::new().await;
    let registry = env("TESTENV_REGISTRY");
    let robot = format!("robot$cs101+{}", unique("rotate"));
    let first = format!("first-{}", unique("token"));
    let second = format!("second-{}", unique("token"));
    let credential = world.save_robot(&robot, &first, &date_in(30)).await;
    let image_id = world.register(credential).await;
    for name in ["web", "worker"] {
        world.deploy(&image_id, name).await;
        world.new_pod_ready(name, &[]).await;
    }

    // Harbor revokes the first token (a new secret for the robot), and the
    // student replaces it in Berth.
    set_registry_token(&robot, &second);
    let replaced = world
        .submit(
            &format!("/credentials/{credential}/replace"),
            &[
                ("robot", &robot),
                ("token", &second),
                ("expires_on", &date_in(30)),
            ],
        )
        .await;
    assert_eq!(replaced.status(), StatusCode::SEE_OTHER, "replacing");
    let flash = world.page(&world.path("/registry")).await;
    assert!(
        flash.contains("now carries the new token for web, worker"),
        "{flash}"
    );

    // Every pull Secret a workload of the namespace names, read from the
    // apiserver, carries the new token and not the old one.
    let deployments = Api::<Deployment>::namespaced(world.admin.clone(), &world.ns);
    let secrets = Api::<Secret>::namespaced(world.admin.clone(), &world.ns);
    let mut checked = 0;
    for name in ["web", "worker"] {
        let deployment = deployments.get(name).await.expect("deployment");
        let refs = deployment
            .spec
            .and_then(|s| s.template.spec)
            .and_then(|p| p.image_pull_secrets)
            .expect("the workload pulls with a Secret");
        for r in refs {
            let secret = secrets.get(&r.name).await.expect("the pull Secret exists");
            assert_eq!(
                secret_password(&secret, &registry),
                second,
                "{name}: {}",
                r.name
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 2);

    // Restarted and deleted pods pull with it on the real node and run.
    let old: Vec<String> = world
        .pods_of("web")
        .await
        .into_iter()
        .filter_map(|p| p.metadata.name)
        .collect();
    let restarted = world.submit("/workloads/web/restart", &[]).await;
    assert_eq!(restarted.status(), StatusCode::SEE_OTHER);
    world.new_pod_ready("web", &old).await;
    let old: Vec<String> = world
        .pods_of("worker")
        .await
        .into_iter()
        .filter_map(|p| p.metadata.name)
        .collect();
    let pods = Api::<Pod>::namespaced(world.admin.clone(), &world.ns);
    for name in &old {
        pods.delete(name, &DeleteParams::default())
            .await
            .expect("deleting the pod");
    }
    world.new_pod_ready("worker", &old).await;
    world.finish().await;
}

#[tokio::test]
async fn a_refused_pull_says_revoked_or_expired_and_expiry_is_warned_about_everywhere() {
    let world = World::new().await;
    let robot = format!("robot$cs101+{}", unique("revoked"));
    let token = format!("token-{}", unique("t"));
    let credential = world.save_robot(&robot, &token, &date_in(30)).await;
    let image_id = world.register(credential).await;
    // Harbor revokes it before the workload's first pull.
    set_registry_token(&robot, &format!("other-{}", unique("t")));
    world.deploy(&image_id, "web").await;

    // Not expired by its date: revoked or wrong.
    let html = world
        .page_until("/workloads/web", "the pull failure is explained", |html| {
            html.contains("the registry refused the credentials (revoked or wrong token)")
        })
        .await;
    assert!(html.contains(&format!("of the robot {robot}")), "{html}");
    assert!(
        !html.contains("id=\"credential-expiry\""),
        "no expiry warning yet"
    );

    // Five days before the date: a warning on the workload page and the dashboard.
    world.set_expiry(credential, &date_in(5)).await;
    let html = world.page(&world.path("/workloads/web")).await;
    assert!(html.contains("id=\"credential-expiry\""), "{html}");
    assert!(
        html.contains("flash-warning") && html.contains("expires in 5 days"),
        "{html}"
    );
    assert!(html.contains(&format!(
        "/namespaces/{}/credentials/{credential}/replace",
        world.ns
    )));
    let home = world.page("/").await;
    assert!(home.contains("Robot tokens to replace"), "{home}");
    assert!(
        home.contains("expires in 5 days") && home.contains(&robot),
        "{home}"
    );

    // Eight days before: no warning (the threshold is a week).
    world.set_expiry(credential, &date_in(8)).await;
    assert!(!world.page("/").await.contains("Robot tokens to replace"));

    // The date passed: the refusal is the expiry, in those words.
    let yesterday = date_in(-1);
    world.set_expiry(credential, &yesterday).await;
    let html = world
        .page_until("/workloads/web", "the expiry is named", |html| {
            html.contains(&format!("the robot token {robot} expired on {yesterday}"))
        })
        .await;
    assert!(
        html.contains("expired yesterday") && html.contains("flash-error"),
        "{html}"
    );
    let home = world.page("/").await;
    assert!(
        home.contains("expired yesterday") && home.contains(&robot),
        "{home}"
    );
    world.finish().await;
}

#[tokio::test]
async fn the_form_starts_at_harbors_30_days_and_records_never_or_the_tokens_own_date() {
    let app = TestApp::spawn_in_cluster(&[
        "--allowed-registries",
        "reg.example.edu",
        "--default-registry",
        "reg.example.edu",
    ])
    .await;
    let ns = unique("t-robot-form");
    let prof = TestPerson::admin(&app, "prof@purdue.edu").await;
    prof.create_namespace(&ns, &SMALL_NAMESPACE).await;
    let page = prof.html(&format!("/namespaces/{ns}/registry")).await;
    assert!(
        page.contains(&format!("name=\"expires_on\" value=\"{}\"", date_in(30))),
        "prefilled with Harbor's default: {page}"
    );
    assert!(page.contains("name=\"never_expires\""));

    let save = |robot: &'static str, token: String, extra: Vec<(&'static str, String)>| {
        let prof = &prof;
        let ns = ns.clone();
        async move {
            let mut form = vec![
                ("host", "reg.example.edu".to_owned()),
                ("robot", robot.to_owned()),
                ("token", token),
                ("save_anyway", "on".to_owned()),
            ];
            form.extend(extra);
            let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            prof.submit(&format!("/namespaces/{ns}/registry"), &form)
                .await
        }
    };
    let never = save(
        "robot$p+never",
        "plain-token-1".into(),
        vec![("expires_on", date_in(30)), ("never_expires", "on".into())],
    )
    .await;
    assert_eq!(never.status(), StatusCode::SEE_OTHER);
    // A JWT's own exp (90 days out) wins over the typed date.
    let exp = time::OffsetDateTime::now_utc().unix_timestamp() + 90 * 86_400;
    let b64 = |v: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
    let jwt = format!(
        "{}.{}.c2ln",
        b64(r#"{"alg":"RS256"}"#),
        b64(&format!(r#"{{"sub":"robot","exp":{exp}}}"#))
    );
    let from_token = save("robot$p+jwt", jwt, vec![("expires_on", date_in(30))]).await;
    assert_eq!(from_token.status(), StatusCode::SEE_OTHER);
    // An expired JWT is refused beside the token field, nothing saved.
    let old = format!(
        "{}.{}.c2ln",
        b64(r#"{"alg":"RS256"}"#),
        b64(r#"{"sub":"robot","exp":1000000000}"#)
    );
    let refused = save("robot$p+old", old, vec![]).await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = refused.text().await.expect("body");
    assert!(
        html.contains("This token says it expired on 2001-09-09"),
        "{html}"
    );

    let rows: Vec<(String, Option<String>, Option<String>)> = sqlx::query_as(
        "SELECT robot, expires_on, expiry_source FROM registry_credentials WHERE namespace = ? ORDER BY robot",
    )
    .bind(&ns)
    .fetch_all(&app.db)
    .await
    .expect("rows");
    assert_eq!(
        rows,
        vec![
            (
                "robot$p+jwt".into(),
                Some(date_in(90)),
                Some("token".into())
            ),
            ("robot$p+never".into(), None, Some("never".into())),
        ]
    );
    let list = prof.html(&format!("/namespaces/{ns}/registry")).await;
    assert!(
        list.contains("never expires") && list.contains("(read from the token)"),
        "{list}"
    );
    cluster::delete_namespace(&cluster::admin().await, &ns).await;
    app.stop().await;
}
