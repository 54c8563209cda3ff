//! What Berth keeps grows with what it manages, not with the cluster: its
//! caches, started as its ServiceAccount against the real apiserver, hold
//! Berth's objects only (slimmed) and Events of Berth's namespaces only; and
//! the admin namespace list shows a page at a time.

use std::time::Duration;

use crate::helpers::{
    TestApp, TestPerson,
    berth_sa::berth_kube,
    cluster::{self, eventually},
    unique,
};
use k8s_openapi::api::{
    apps::v1::Deployment,
    core::v1::{Event, Namespace},
};
use kube::{
    Api, Client,
    api::{DeleteParams, ListParams, PostParams},
};
use reqwest::StatusCode;
use serde_json::json;

const WAIT: Duration = Duration::from_secs(60);

async fn namespace(admin: &Client, name: &str, berths: bool) {
    let labels = if berths {
        json!({"app.kubernetes.io/managed-by": "berth", "berth-test": "true"})
    } else {
        json!({"berth-test": "true"})
    };
    let ns: Namespace =
        serde_json::from_value(json!({"metadata": {"name": name, "labels": labels}}))
            .expect("a namespace");
    Api::<Namespace>::all(admin.clone())
        .create(&PostParams::default(), &ns)
        .await
        .expect("creating a namespace");
}

/// A one-pod Deployment; `berths` gives it (and its pods) Berth's labels.
async fn deployment(admin: &Client, ns: &str, name: &str, berths: bool) {
    let mut labels = json!({"app.kubernetes.io/name": name});
    if berths {
        labels["app.kubernetes.io/managed-by"] = json!("berth");
    }
    let d: Deployment = serde_json::from_value(json!({
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app.kubernetes.io/name": name}},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{
                    "name": "app",
                    "image": "registry.example/app:1",
                    "env": [{"name": "GREETING", "value": "hello"}],
                }]},
            },
        },
    }))
    .expect("a deployment");
    Api::<Deployment>::namespaced(admin.clone(), ns)
        .create(&PostParams::default(), &d)
        .await
        .expect("creating a deployment");
}

async fn events_in(admin: &Client, ns: &str) -> usize {
    Api::<Event>::namespaced(admin.clone(), ns)
        .list(&ListParams::default())
        .await
        .expect("listing events")
        .items
        .len()
}

#[tokio::test]
async fn the_caches_hold_berths_objects_slimmed_and_nothing_of_the_rest_of_the_cluster() {
    let admin = cluster::admin().await;
    let ours = unique("t-ours");
    let theirs = unique("t-theirs");
    namespace(&admin, &ours, true).await;
    namespace(&admin, &theirs, false).await;
    deployment(&admin, &ours, "web", true).await;
    // Unlabelled, but in Berth's namespace: made with kubectl, not by Berth.
    deployment(&admin, &ours, "by-hand", false).await;
    deployment(&admin, &theirs, "app", false).await;
    // Both namespaces have pods and Events in the apiserver.
    for ns in [&ours, &theirs] {
        eventually(WAIT, "Events in both namespaces", || async {
            (events_in(&admin, ns).await > 0).then_some(())
        })
        .await;
    }

    let kube = berth_kube().await;
    let caches = kube.caches().expect("connected");
    assert!(caches.wait_until_ready(WAIT).await, "the caches sync");
    let pod = eventually(WAIT, "the cached pod of web, scheduled", || async {
        caches
            .pods
            .in_namespace(&ours)
            .into_iter()
            .find(|p| p.spec.as_ref().is_some_and(|s| s.node_name.is_some()))
    })
    .await;
    eventually(WAIT, "Events of Berth's namespace in the cache", || async {
        (caches.events.count_in(&ours) > 0).then_some(())
    })
    .await;

    assert!(caches.namespace(&ours).is_some());
    assert!(caches.namespace(&theirs).is_none());
    assert!(caches.deployments.get(&ours, "web").is_some());
    assert!(caches.deployments.get(&ours, "by-hand").is_none());
    assert!(caches.deployments.get(&theirs, "app").is_none());
    assert_eq!(caches.deployments.count_in(&theirs), 0);
    assert_eq!(caches.pods.count_in(&theirs), 0);
    assert_eq!(caches.replica_sets.count_in(&theirs), 0);
    assert_eq!(
        caches.events.count_in(&theirs),
        0,
        "no Events of namespaces Berth does not manage"
    );
    assert_eq!(caches.pods.in_namespace(&ours).len(), 1, "web's pod only");
    for deployment in caches.deployments.all() {
        assert!(deployment.managed, "{}", deployment.metadata.name);
    }
    // Slimmed: nothing pages never read.
    assert_eq!(pod.workload.as_deref(), Some("web"));
    let spec = pod.spec.as_ref().expect("spec");
    assert!(
        spec.volumes.is_none(),
        "the pod's volumes (its ServiceAccount token at least) are not kept"
    );
    assert_eq!(
        spec.containers[0].image.as_deref(),
        Some("registry.example/app:1")
    );
    let cached = caches.deployments.get(&ours, "web").expect("web");
    assert_eq!(cached.metadata.name, "web", "{cached:?}");
    let template = cached.spec.as_ref().expect("spec").template.spec.as_ref();
    assert_eq!(
        template.expect("pod spec").containers[0].image.as_deref(),
        Some("registry.example/app:1"),
        "{cached:?}"
    );
    for event in caches.events.in_namespace(&ours) {
        assert!(
            ["Pod", "ReplicaSet", "Deployment", "Service"]
                .contains(&event.involved_object.kind.as_deref().unwrap_or_default()),
            "{event:?}"
        );
        assert_eq!(
            event.involved_object.namespace.as_deref(),
            Some(ours.as_str())
        );
    }

    // Deleting an object takes it out of the cache.
    Api::<Deployment>::namespaced(admin.clone(), &ours)
        .delete("web", &DeleteParams::foreground())
        .await
        .expect("deleting web");
    eventually(WAIT, "web gone from the cache", || async {
        caches.deployments.get(&ours, "web").is_none().then_some(())
    })
    .await;

    for ns in [&ours, &theirs] {
        cluster::delete_namespace(&admin, ns).await;
    }
}

#[tokio::test]
async fn the_admin_namespace_list_pages_sorts_and_filters_on_the_server() {
    let admin = cluster::admin().await;
    let app = TestApp::spawn_in_cluster(&[]).await;
    let prof = TestPerson::admin(&app, "prof@purdue.edu").await;
    let prefix = unique("t-page");
    let names: Vec<String> = (0..53).map(|i| format!("{prefix}-{i:02}")).collect();
    futures::future::join_all(names.iter().map(|n| namespace(&admin, n, true))).await;
    eventually(WAIT, "every namespace in Berth's cache", || async {
        let page = prof
            .get(&format!("/admin/namespaces?q={prefix}&page=2"))
            .await
            .text()
            .await
            .unwrap_or_default();
        page.contains("of 53").then_some(())
    })
    .await;

    let first = prof.get(&format!("/admin/namespaces?q={prefix}")).await;
    assert_eq!(first.status(), StatusCode::OK);
    let first = first.text().await.expect("page 1");
    let rows = |page: &str| page.matches(&format!(">{prefix}-")).count();
    assert_eq!(rows(&first), 50, "fifty rows a page");
    assert!(first.contains(&format!(">{prefix}-00<")));
    assert!(!first.contains(&format!(">{prefix}-50<")));
    assert!(first.contains("Namespaces 1–50 of 53 (page 1 of 2)"));
    let next = first
        .split("rel=\"next\"")
        .next()
        .and_then(|before| before.rsplit("href=\"").next())
        .map(|href| {
            href.trim_end_matches(['"', ' '])
                .replace("&amp;", "&")
                .replace("&#38;", "&")
        });
    assert_eq!(
        next.as_deref(),
        Some(format!("/admin/namespaces?sort=name&dir=asc&q={prefix}&page=2").as_str()),
        "the next page keeps the sort and the filter"
    );
    assert!(!first.contains("rel=\"prev\""));

    let second = prof
        .get(&format!("/admin/namespaces?q={prefix}&page=2"))
        .await
        .text()
        .await
        .expect("page 2");
    assert_eq!(rows(&second), 3);
    assert!(second.contains(&format!(">{prefix}-52<")));
    assert!(second.contains("rel=\"prev\"") && !second.contains("rel=\"next\""));

    let descending = prof
        .get(&format!("/admin/namespaces?q={prefix}&sort=name&dir=desc"))
        .await
        .text()
        .await
        .expect("descending");
    let first_row = descending
        .find(&format!(">{prefix}-"))
        .map(|i| &descending[i + 1..i + 1 + prefix.len() + 3]);
    assert_eq!(first_row, Some(format!("{prefix}-52").as_str()));

    let none = prof
        .get("/admin/namespaces?q=no-such-namespace-here")
        .await
        .text()
        .await
        .expect("no match");
    assert!(none.contains("No namespace has “no-such-namespace-here” in its name."));
    let beyond = prof
        .get(&format!("/admin/namespaces?q={prefix}&page=9"))
        .await;
    assert_eq!(beyond.status(), StatusCode::OK);
    assert!(
        beyond
            .text()
            .await
            .expect("beyond")
            .contains("There is no page 9: there are 2.")
    );
    let nonsense = prof
        .get("/admin/namespaces?page=-3&sort=%3Cscript%3E")
        .await;
    assert_eq!(
        nonsense.status(),
        StatusCode::OK,
        "bad paging falls back to page 1 by name"
    );

    for name in &names {
        cluster::delete_namespace(&admin, name).await;
    }
    app.stop().await;
}
