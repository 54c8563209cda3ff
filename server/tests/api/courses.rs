//! Course rosters against the test world's real apiserver, with Berth as its
//! least-privilege ServiceAccount: the dry run changes nothing, apply creates
//! the namespaces and RoleBindings, a second upload is a no-op, bad rows are
//! reported by line and change nothing, an owner cannot upload for a
//! namespace they do not own, and at the end date the sweep scales
//! Deployments to zero with a notice, then deletes them after the grace.
//! Plus the upload → dry run → apply journey in Chromium.

use std::time::Duration;

use crate::helpers::{
    TestApp, TestPerson,
    browser::Browser,
    cluster::{self, eventually},
    location, unescape, unique,
};
use berth::namespaces::{membership::Role, objects};
use k8s_openapi::api::{
    apps::v1::Deployment,
    core::v1::{Namespace, ResourceQuota},
    rbac::v1::RoleBinding,
};
use kube::{Api, Client};
use reqwest::StatusCode;

const WAIT: Duration = Duration::from_secs(60);
const ADMIN: &str = "prof@purdue.edu";

struct World {
    app: TestApp,
    /// The admin who uploads rosters.
    prof: TestPerson,
    admin: Client,
    course: String,
}

impl World {
    async fn new() -> Self {
        // The sweep every second, so the end date takes effect at once.
        let app = TestApp::spawn_in_cluster(&["--course-sweep-secs", "1"]).await;
        let prof = TestPerson::admin(&app, ADMIN).await;
        Self {
            app,
            prof,
            admin: cluster::admin().await,
            course: unique("c"),
        }
    }

    fn ns(&self, team: &str) -> String {
        format!("{}-{team}", self.course)
    }

    /// A whole upload form: settings and `roster`.
    fn fields<'a>(
        &'a self,
        roster: &'a str,
        ends_at: &'a str,
        grace: &'a str,
    ) -> Vec<(&'a str, &'a str)> {
        vec![
            ("course", self.course.as_str()),
            ("ends_at", ends_at),
            ("grace_days", grace),
            ("requests_cpu", "2"),
            ("requests_memory", "2Gi"),
            ("pods", "7"),
            ("requests_storage", "5Gi"),
            ("default_request_cpu", "100m"),
            ("default_request_memory", "64Mi"),
            ("default_limit_cpu", "500m"),
            ("default_limit_memory", "256Mi"),
            ("roster", roster),
        ]
    }

    async fn post(
        &self,
        person: &TestPerson,
        path: &str,
        fields: &[(&str, &str)],
    ) -> (StatusCode, String, String) {
        let response = person.submit(path, fields).await;
        let status = response.status();
        let to = location(&response);
        (
            status,
            to,
            unescape(&response.text().await.unwrap_or_default()),
        )
    }

    async fn namespace_exists(&self, name: &str) -> bool {
        Api::<Namespace>::all(self.admin.clone())
            .get_opt(name)
            .await
            .expect("reading namespaces")
            .is_some_and(|n| n.metadata.deletion_timestamp.is_none())
    }

    async fn binding(&self, ns: &str, email: &str, role: Role) -> Option<RoleBinding> {
        Api::<RoleBinding>::namespaced(self.admin.clone(), ns)
            .get_opt(&objects::role_binding_name(email, role))
            .await
            .expect("reading RoleBindings")
    }

    async fn courses_stored(&self) -> i64 {
        sqlx::query_scalar("SELECT COUNT(*) FROM courses")
            .fetch_one(&self.app.db)
            .await
            .expect("counting courses")
    }

    async fn audit_count(&self, action: &str) -> i64 {
        sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE action = ?")
            .bind(action)
            .fetch_one(&self.app.db)
            .await
            .expect("counting audit rows")
    }

    async fn finish(self, teams: &[&str]) {
        for team in teams {
            cluster::delete_namespace(&self.admin, &self.ns(team)).await;
        }
        self.app.stop().await;
    }
}

const ROSTER: &str = "team,email,role\nalpha,ann@purdue.edu,owner\nalpha,al@purdue.edu,member\nbeta,bob@purdue.edu,owner\n";

#[tokio::test]
async fn the_dry_run_changes_nothing_apply_creates_namespaces_and_bindings_and_again_is_a_no_op() {
    let world = World::new().await;
    let admin = &world.prof;
    let fields = world.fields(ROSTER, "2099-06-30 17:00", "14");
    let (alpha, beta) = (world.ns("alpha"), world.ns("beta"));

    let (status, _, plan) = world.post(admin, "/courses/preview", &fields).await;
    assert_eq!(status, StatusCode::OK, "{plan}");
    assert!(
        plan.contains(&format!("create the namespace <code>{alpha}</code>")),
        "{plan}"
    );
    assert!(plan.contains(&format!("create the namespace <code>{beta}</code>")));
    assert!(plan.contains("add ann@purdue.edu as owner"), "{plan}");
    assert!(plan.contains("add al@purdue.edu as member"));
    assert!(plan.contains("pods=7"), "the quota each gets: {plan}");
    assert!(
        plan.contains("2099-06-30 17:00 UTC"),
        "the end date: {plan}"
    );
    // Nothing happened: no namespace in the apiserver, nothing stored.
    assert!(!world.namespace_exists(&alpha).await);
    assert!(!world.namespace_exists(&beta).await);
    assert_eq!(world.courses_stored().await, 0);

    let (status, to, body) = world.post(admin, "/courses/apply", &fields).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    assert_eq!(to, format!("/courses/{}", world.course));
    assert!(world.namespace_exists(&alpha).await);
    assert!(world.namespace_exists(&beta).await);
    let ann = world
        .binding(&alpha, "ann@purdue.edu", Role::Owner)
        .await
        .expect("ann's binding");
    assert_eq!(ann.role_ref.name, "berth-owner");
    assert!(
        world
            .binding(&alpha, "al@purdue.edu", Role::Member)
            .await
            .is_some()
    );
    assert!(
        world
            .binding(&beta, "bob@purdue.edu", Role::Owner)
            .await
            .is_some()
    );
    assert!(
        world
            .binding(&beta, "ann@purdue.edu", Role::Owner)
            .await
            .is_none()
    );
    let quota = Api::<ResourceQuota>::namespaced(world.admin.clone(), &alpha)
        .get("berth-quota")
        .await
        .expect("the course quota");
    let hard = quota.spec.and_then(|s| s.hard).expect("hard");
    assert_eq!(hard["pods"].0, "7");
    assert_eq!(world.audit_count("course.namespace.create").await, 2);
    assert_eq!(world.audit_count("course.member.add").await, 3);

    // The course page shows what was applied.
    let page = world.prof.get(&format!("/courses/{}", world.course)).await;
    let page = unescape(&page.text().await.unwrap_or_default());
    assert!(page.contains("applied: 5 changes made"), "{page}");
    assert!(page.contains("ann@purdue.edu (owner)"), "{page}");

    // The same upload again: the dry run says so, and apply changes nothing.
    let (status, _, plan) = world.post(admin, "/courses/preview", &fields).await;
    assert_eq!(status, StatusCode::OK);
    assert!(plan.contains("No changes."), "{plan}");
    let (status, _, _) = world.post(admin, "/courses/apply", &fields).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(world.audit_count("course.namespace.create").await, 2);
    assert_eq!(world.audit_count("course.member.add").await, 3);
    let page = world.prof.get(&format!("/courses/{}", world.course)).await;
    assert!(
        page.text()
            .await
            .unwrap_or_default()
            .contains("no changes.")
    );

    // A changed roster is a diff: al goes, cy comes, ann becomes a member.
    let next =
        "alpha,ann@purdue.edu,member\nalpha,cy@purdue.edu,member\nbeta,bob@purdue.edu,owner\n";
    let fields = world.fields(next, "2099-06-30 17:00", "14");
    let (_, _, plan) = world.post(admin, "/courses/preview", &fields).await;
    assert!(plan.contains("remove al@purdue.edu"), "{plan}");
    assert!(plan.contains("add cy@purdue.edu as member"));
    assert!(plan.contains("change ann@purdue.edu from owner to member"));
    let (status, _, body) = world.post(admin, "/courses/apply", &fields).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    assert!(
        world
            .binding(&alpha, "al@purdue.edu", Role::Member)
            .await
            .is_none()
    );
    assert!(
        world
            .binding(&alpha, "cy@purdue.edu", Role::Member)
            .await
            .is_some()
    );
    assert!(
        world
            .binding(&alpha, "ann@purdue.edu", Role::Member)
            .await
            .is_some()
    );
    assert!(
        world
            .binding(&alpha, "ann@purdue.edu", Role::Owner)
            .await
            .is_none()
    );
    world.finish(&["alpha", "beta"]).await;
}

#[tokio::test]
async fn a_bad_csv_reports_each_line_and_changes_nothing() {
    let world = World::new().await;
    let admin = &world.prof;
    let roster = "team,email,role\nalpha,ann@purdue.edu,owner\nalpha,not-an-email,member\nbeta,bo@purdue.edu,boss\n,cy@purdue.edu,member\nbeta,eve@evil.example,member\nbeta,ann@purdue.edu,member\n";
    let fields = world.fields(roster, "2099-06-30 17:00", "14");
    for path in ["/courses/preview", "/courses/apply"] {
        let (status, _, page) = world.post(admin, path, &fields).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{path}: {page}");
        for (line, words) in [
            (3, "\"not-an-email\" is not an email address"),
            (4, "Unknown role \"boss\""),
            (5, "The team is empty"),
            (6, "outside the email domains"),
            (7, "ann@purdue.edu is member here but owner on line 2"),
        ] {
            assert!(
                page.contains(&format!("Line {line}: ")),
                "{path} line {line}: {page}"
            );
            assert!(page.contains(words), "{path}: {words}: {page}");
        }
        assert!(page.contains("5 lines of the roster need fixing; nothing was changed."));
        assert!(page.contains("bo@purdue.edu,boss"), "the roster is kept");
    }
    assert!(!world.namespace_exists(&world.ns("alpha")).await);
    assert!(!world.namespace_exists(&world.ns("beta")).await);
    assert_eq!(world.courses_stored().await, 0);
    let memberships: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM memberships")
        .fetch_one(&world.app.db)
        .await
        .expect("counting memberships");
    assert_eq!(memberships, 0);
    world.finish(&[]).await;
}

#[tokio::test]
async fn an_owner_changes_members_of_namespaces_they_own_and_nothing_else() {
    let world = World::new().await;
    let fields = world.fields(ROSTER, "2099-06-30 17:00", "14");
    let (status, _, body) = world.post(&world.prof, "/courses/apply", &fields).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    let (alpha, beta) = (world.ns("alpha"), world.ns("beta"));

    // Ann owns alpha, not beta: an upload touching beta is refused.
    let ann = TestPerson::student(&world.app, "ann@purdue.edu").await;
    let page = ann.get(&format!("/courses/{}", world.course)).await;
    assert_eq!(page.status(), StatusCode::OK, "ann sees her course");
    let roster = format!("{ROSTER}beta,mallory@purdue.edu,owner\n");
    let fields = world.fields(&roster, "2099-06-30 17:00", "14");
    for path in ["/courses/preview", "/courses/apply"] {
        let (status, _, page) = world.post(&ann, path, &fields).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}: {page}");
        assert!(
            page.contains(&format!("You are not an owner of {beta}")),
            "{page}"
        );
    }
    assert!(
        world
            .binding(&beta, "mallory@purdue.edu", Role::Owner)
            .await
            .is_none()
    );
    // Nor may she create a namespace or move the end date.
    let roster = format!("{ROSTER}gamma,gus@purdue.edu,member\n");
    let fields = world.fields(&roster, "2099-06-30 17:00", "14");
    let (status, _, page) = world.post(&ann, "/courses/apply", &fields).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        page.contains(&format!(
            "Only an admin can create the namespace {}",
            world.ns("gamma")
        )),
        "{page}"
    );
    assert!(!world.namespace_exists(&world.ns("gamma")).await);
    let fields = world.fields(ROSTER, "2030-01-01 00:00", "14");
    let (status, _, _) = world.post(&ann, "/courses/apply", &fields).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Someone who owns nothing of the course does not even see it.
    let al = TestPerson::student(&world.app, "al@purdue.edu").await;
    let page = al.get(&format!("/courses/{}", world.course)).await;
    assert_eq!(page.status(), StatusCode::NOT_FOUND);
    assert!(
        world
            .binding(&alpha, "al@purdue.edu", Role::Member)
            .await
            .is_some()
    );
    let denied: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM audit_log WHERE action = 'course.upload' AND outcome = 'denied' AND actor = 'ann@purdue.edu'",
    )
    .fetch_one(&world.app.db)
    .await
    .expect("audit");
    assert_eq!(denied, 4);
    world.finish(&["alpha", "beta"]).await;
}

#[tokio::test]
async fn at_the_end_date_workloads_scale_to_zero_with_a_notice_and_go_after_the_grace() {
    let world = World::new().await;
    let roster = "alpha,stu@purdue.edu,member\n";
    let fields = world.fields(roster, "2099-06-30 17:00", "1");
    let (status, _, body) = world.post(&world.prof, "/courses/apply", &fields).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    let ns = world.ns("alpha");

    // The student deploys a workload with two replicas.
    let student = TestPerson::student(&world.app, "stu@purdue.edu").await;
    let deploy = [
        ("name", "web"),
        ("image_source", "public"),
        ("image", "quay.io/example/web:1.0"),
        ("replicas", "2"),
        ("container_port", "8080"),
        ("cpu_request", "100m"),
        ("memory_request", "64Mi"),
        ("memory_limit", "128Mi"),
        ("volume", "none"),
        ("exposure", "none"),
    ];
    let path = format!("/namespaces/{ns}/workloads");
    eventually(WAIT, "the student's deploy to be allowed", || async {
        let (status, _, _) = world.post(&student, &path, &deploy).await;
        (status == StatusCode::SEE_OTHER).then_some(())
    })
    .await;
    let deployments: Api<Deployment> = Api::namespaced(world.admin.clone(), &ns);
    let replicas = |d: &Deployment| d.spec.as_ref().and_then(|s| s.replicas);
    assert_eq!(
        replicas(&deployments.get("web").await.expect("web")),
        Some(2)
    );
    // Berth's cache has it (the sweep reads workloads from there).
    eventually(WAIT, "the workload page", || async {
        let response = student
            .client
            .get(student.url(&format!("/namespaces/{ns}/workloads/web")))
            .send()
            .await
            .ok()?;
        (response.status() == StatusCode::OK).then_some(())
    })
    .await;

    // The admin moves the end into the past: the sweep scales it to zero.
    let ended = world.fields(roster, "2020-01-01 00:00", "1");
    let (status, _, body) = world.post(&world.prof, "/courses/apply", &ended).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    eventually(WAIT, "the sweep to scale web to zero", || async {
        let d = deployments.get("web").await.ok()?;
        (replicas(&d) == Some(0)).then_some(())
    })
    .await;
    let notice = "ended on 2020-01-01 00:00 UTC: its workloads were scaled to zero";
    let page = eventually(WAIT, "the notice on the workload page", || async {
        let response = student
            .client
            .get(student.url(&format!("/namespaces/{ns}/workloads/web")))
            .send()
            .await
            .ok()?;
        let html = unescape(&response.text().await.ok()?);
        html.contains(notice).then_some(html)
    })
    .await;
    assert!(page.contains("id=\"notice\""), "{page}");
    eventually(WAIT, "the notice on the namespace page", || async {
        let response = student
            .client
            .get(student.url(&format!("/namespaces/{ns}/workloads")))
            .send()
            .await
            .ok()?;
        unescape(&response.text().await.ok()?)
            .contains(notice)
            .then_some(())
    })
    .await;
    eventually(WAIT, "the scale-down in the audit log", || async {
        (world.audit_count("course.workload.scale-to-zero").await >= 1).then_some(())
    })
    .await;
    // Still there during the grace (one day).
    assert!(deployments.get_opt("web").await.expect("get").is_some());

    // The grace cut to zero days: the next sweep deletes it.
    let no_grace = world.fields(roster, "2020-01-01 00:00", "0");
    let (status, _, body) = world.post(&world.prof, "/courses/apply", &no_grace).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    eventually(WAIT, "the sweep to delete web", || async {
        match deployments.get_opt("web").await {
            Ok(None) => Some(()),
            Ok(Some(d)) if d.metadata.deletion_timestamp.is_some() => Some(()),
            _ => None,
        }
    })
    .await;
    // The sweep records the deletion after it has removed the Service and
    // claims too, so the Deployment can be gone a moment before the row.
    eventually(WAIT, "the deletion in the audit log", || async {
        (world.audit_count("course.workload.delete").await >= 1).then_some(())
    })
    .await;
    // The course is marked removed once every namespace is done, after
    // the rows and the namespace notice.
    eventually(
        WAIT,
        "the course page to say its workloads were deleted",
        || async {
            let page = world.prof.get(&format!("/courses/{}", world.course)).await;
            let text = page.text().await.unwrap_or_default();
            text.contains("workloads deleted").then_some(())
        },
    )
    .await;
    world.finish(&["alpha"]).await;
}

#[tokio::test]
async fn an_admin_uploads_a_roster_file_sees_the_dry_run_and_applies_it_in_chromium() {
    let world = World::new().await;
    let dir = tempfile::tempdir().expect("a temp dir");
    let file = dir.path().join("roster.csv");
    std::fs::write(&file, "team,email,role\nalpha,ann@purdue.edu,owner\n")
        .expect("writing the CSV");
    // JavaScript on only so axe can run; the pages have none of their own.
    let browser = Browser::start_with_javascript().await;
    browser.sign_in(&world.app.base, ADMIN, true).await;

    browser.goto(&world.app.url("/courses/new")).await;
    let violations = browser.axe().await;
    assert!(
        violations.is_empty(),
        "axe on the upload form: {violations:?}"
    );
    browser.fill("#course", &world.course).await;
    browser.fill("#ends_at", "2099-06-30 17:00").await;
    browser.choose_file("#roster_file", &file).await;
    browser
        .click("form[action='/courses/preview'] button[type=submit]")
        .await;
    let plan = browser
        .wait_for_source("the dry run", |html| html.contains("Dry run: course"))
        .await;
    let alpha = world.ns("alpha");
    assert!(
        plan.contains(&format!("create the namespace <code>{alpha}</code>")),
        "{plan}"
    );
    assert!(plan.contains("add ann@purdue.edu as owner"), "{plan}");
    assert!(!world.namespace_exists(&alpha).await, "a dry run");
    let violations = browser.axe().await;
    assert!(violations.is_empty(), "axe on the dry run: {violations:?}");

    browser
        .click("form[action='/courses/apply'] button:not([formaction])")
        .await;
    let page = browser
        .wait_for_source("the course page", |html| html.contains("changes made"))
        .await;
    assert!(page.contains("ann@purdue.edu (owner)"), "{page}");
    assert!(world.namespace_exists(&alpha).await);
    assert!(
        world
            .binding(&alpha, "ann@purdue.edu", Role::Owner)
            .await
            .is_some()
    );
    browser.quit().await;
    world.finish(&["alpha"]).await;
}
