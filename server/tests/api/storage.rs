//! Storage guard rails on the deploy form, against the test world's real
//! apiserver with Berth as its least-privilege ServiceAccount: what is
//! refused up front leaves nothing in the cluster, an existing claim is shown
//! with its size, use and who mounts it, a second volume asks first, and a
//! workload's claim goes with it only when asked.

use std::time::Duration;

use crate::helpers::{
    TestApp, TestPerson,
    cluster::{self, eventually},
    unescape, unique,
};
use k8s_openapi::api::{apps::v1::Deployment, core::v1::PersistentVolumeClaim};
use kube::{Api, Client};
use reqwest::StatusCode;

const STUDENT: &str = "student@purdue.edu";
const WAIT: Duration = Duration::from_secs(60);

/// Berth in the cluster, a namespace with a storage quota, the student in it.
struct World {
    app: TestApp,
    admin: Client,
    student: TestPerson,
    ns: String,
}

impl World {
    async fn new(storage_quota: &str) -> Self {
        let app = TestApp::spawn_in_cluster(&[]).await;
        let ns = unique("t-storage");
        let prof = TestPerson::admin(&app, "prof@purdue.edu").await;
        prof.create_namespace(
            &ns,
            &[
                ("persistentvolumeclaims", "4"),
                ("requests_storage", storage_quota),
            ],
        )
        .await;
        prof.add_member(&ns, STUDENT, "member").await;
        let admin = cluster::admin().await;
        cluster::quota_counted(&admin, &ns).await;
        let student = TestPerson::student(&app, STUDENT).await;
        Self {
            app,
            admin,
            student,
            ns,
        }
    }

    /// Submits the deploy form as the student; RBAC follows the student's new
    /// RoleBinding a moment later, so a 403 from the apiserver is retried.
    async fn deploy(&self, fields: &[(&str, &str)]) -> (StatusCode, String) {
        let path = format!("/namespaces/{}/workloads", self.ns);
        eventually(WAIT, "the deploy form to be answered", || async {
            let response = self.student.submit(&path, fields).await;
            let status = response.status();
            let body = unescape(&response.text().await.unwrap_or_default());
            (status != StatusCode::FORBIDDEN).then_some((status, body))
        })
        .await
    }

    async fn page(&self, path: &str) -> (StatusCode, String) {
        self.student.page(path).await
    }

    fn claims(&self) -> Api<PersistentVolumeClaim> {
        Api::namespaced(self.admin.clone(), &self.ns)
    }

    fn deployments(&self) -> Api<Deployment> {
        Api::namespaced(self.admin.clone(), &self.ns)
    }

    async fn claim_names(&self) -> Vec<String> {
        self.claims()
            .list(&Default::default())
            .await
            .expect("listing claims")
            .items
            .into_iter()
            .filter(|c| c.metadata.deletion_timestamp.is_none())
            .filter_map(|c| c.metadata.name)
            .collect()
    }

    async fn finish(self) {
        cluster::delete_namespace(&self.admin, &self.ns).await;
        self.app.stop().await;
    }
}

/// A workload with a volume; `volume` is `new` or `existing`.
fn form<'a>(
    name: &'a str,
    replicas: &'a str,
    volume: &'a [(&'a str, &'a str)],
) -> Vec<(&'a str, &'a str)> {
    let mut fields = vec![
        ("name", name),
        ("image_source", "public"),
        ("image", "quay.io/example/web:1.0"),
        ("replicas", replicas),
        ("container_port", "8080"),
        ("cpu_request", "100m"),
        ("memory_request", "64Mi"),
        ("memory_limit", "128Mi"),
        ("exposure", "none"),
        ("mount_path", "/data"),
    ];
    fields.extend_from_slice(volume);
    fields
}

#[tokio::test]
async fn a_read_write_once_volume_with_two_replicas_or_over_the_storage_quota_is_refused_and_nothing_is_applied()
 {
    let world = World::new("2Gi").await;
    let (status, body) = world
        .deploy(&form(
            "twins",
            "2",
            &[("volume", "new"), ("volume_size", "1Gi")],
        ))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body.contains(
            "A new volume is ReadWriteOnce: only one pod can mount it, so run 1 replica."
        ),
        "the message beside replicas: {body}"
    );
    assert!(body.contains("value=\"2\""), "the values are kept");

    let (status, body) = world
        .deploy(&form(
            "big",
            "1",
            &[("volume", "new"), ("volume_size", "5Gi")],
        ))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body.contains("id=\"volume_size-error\"")
            && body.contains(
                "5Gi is more than this namespace's storage quota allows: 2Gi of 2Gi left."
            ),
        "the message beside the size: {body}"
    );

    // Neither reached the apiserver.
    assert!(world.claim_names().await.is_empty());
    for name in ["twins", "big"] {
        assert!(
            world
                .deployments()
                .get_opt(name)
                .await
                .expect("get")
                .is_none(),
            "{name} was not created"
        );
    }
    world.finish().await;
}

#[tokio::test]
async fn an_existing_claim_shows_size_use_and_mounts_and_a_second_volume_asks_first() {
    let world = World::new("10Gi").await;
    let ns = world.ns.clone();
    let (status, body) = world
        .deploy(&form(
            "notes",
            "1",
            &[("volume", "new"), ("volume_size", "1Gi")],
        ))
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    let claim = world.claims().get("notes-data").await.expect("the claim");
    assert_eq!(
        claim.spec.and_then(|s| s.access_modes),
        Some(vec!["ReadWriteOnce".to_owned()])
    );

    // The form lists the claim: its size, use unknown, who mounts it.
    let page = eventually(WAIT, "the form to list notes-data as mounted", || async {
        let (_, html) = world.page(&format!("/namespaces/{ns}/workloads/new")).await;
        html.contains("<td>notes</td>").then_some(html)
    })
    .await;
    assert!(page.contains("<code>notes-data</code>"), "{page}");
    assert!(page.contains("1Gi ("), "its size: {page}");
    assert!(
        page.contains("unknown (Kubernetes does not report how full a volume is)"),
        "use is not invented: {page}"
    );

    // A second new volume: asked first, nothing created.
    let second = form("other", "1", &[("volume", "new"), ("volume_size", "1Gi")]);
    let (status, body) = world.deploy(&second).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body.contains(
            "This namespace already has the volume notes-data. Did you mean to reuse it?"
        ),
        "{body}"
    );
    assert!(
        body.contains("name=\"reuse_confirmed\""),
        "the box to confirm"
    );
    assert!(
        world
            .claims()
            .get_opt("other-data")
            .await
            .expect("get")
            .is_none()
    );
    assert!(
        world
            .deployments()
            .get_opt("other")
            .await
            .expect("get")
            .is_none()
    );

    // Reusing it with two replicas: refused, it is ReadWriteOnce.
    let (status, body) = world
        .deploy(&form(
            "reader",
            "2",
            &[("volume", "existing"), ("existing_claim", "notes-data")],
        ))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body.contains("notes-data is ReadWriteOnce"), "{body}");
    // An existing claim that is not there is named.
    let (status, body) = world
        .deploy(&form(
            "reader",
            "1",
            &[("volume", "existing"), ("existing_claim", "nope")],
        ))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body.contains("There is no volume claim nope in this namespace"),
        "{body}"
    );
    assert!(
        world
            .deployments()
            .get_opt("reader")
            .await
            .expect("get")
            .is_none()
    );

    // Confirmed: the new volume is made.
    let mut confirmed = second.clone();
    confirmed.push(("reuse_confirmed", "on"));
    let (status, body) = world.deploy(&confirmed).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    assert!(
        world
            .claims()
            .get_opt("other-data")
            .await
            .expect("get")
            .is_some()
    );
    world.finish().await;
}

#[tokio::test]
async fn deleting_a_workload_keeps_its_claim_unless_the_box_is_ticked() {
    let world = World::new("10Gi").await;
    let ns = world.ns.clone();
    let fields = form("keep", "1", &[("volume", "new"), ("volume_size", "1Gi")]);
    let (status, body) = world.deploy(&fields).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    let delete = format!("/namespaces/{ns}/workloads/keep/delete");
    let page = eventually(WAIT, "the delete page", || async {
        let (status, html) = world.page(&delete).await;
        (status == StatusCode::OK).then_some(html)
    })
    .await;
    assert!(
        page.contains("name=\"delete_volume\"")
            && !page.contains("name=\"delete_volume\" value=\"on\" checked"),
        "an unticked box: {page}"
    );

    let response = world.student.submit_form(&delete, &delete, &[]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    eventually(WAIT, "the Deployment to go", || async {
        world
            .deployments()
            .get_opt("keep")
            .await
            .ok()?
            .is_none()
            .then_some(())
    })
    .await;
    let kept = world
        .claims()
        .get("keep-data")
        .await
        .expect("the claim is kept");
    assert!(kept.metadata.deletion_timestamp.is_none());

    // Deployed again it mounts the same claim (its own, so no question asked).
    let (status, body) = world.deploy(&fields).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    eventually(WAIT, "the delete page again", || async {
        let (status, _) = world.page(&delete).await;
        (status == StatusCode::OK).then_some(())
    })
    .await;
    let response = world
        .student
        .submit_form(&delete, &delete, &[("delete_volume", "on")])
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    eventually(WAIT, "the claim to be deleted", || async {
        match world.claims().get_opt("keep-data").await {
            Ok(None) => Some(()),
            Ok(Some(c)) if c.metadata.deletion_timestamp.is_some() => Some(()),
            _ => None,
        }
    })
    .await;
    world.finish().await;
}
