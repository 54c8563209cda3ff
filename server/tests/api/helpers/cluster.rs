//! The test world's Kubernetes cluster: an admin client from `KUBECONFIG`,
//! impersonating clients, and a namespace of its own for each test.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, ResourceQuota};
use kube::{
    Api, Client, Config,
    api::{DeleteParams, ObjectMeta, Patch, PatchParams, PostParams},
    config::KubeConfigOptions,
};

/// The admin kubeconfig's settings; panics with instructions outside testenv.
pub async fn admin_config() -> Config {
    if std::env::var_os("KUBECONFIG").is_none() {
        panic!("KUBECONFIG is not set: run the tests under testenv/run (see README)");
    }
    Config::from_kubeconfig(&KubeConfigOptions::default())
        .await
        .expect("reading the test world's admin kubeconfig")
}

/// A client with the cluster-admin identity of the test world.
pub async fn admin() -> Client {
    Client::try_from(admin_config().await).expect("building the admin client")
}

/// A client that impersonates `user` in `groups`, the way Berth acts for people.
pub async fn impersonating(user: &str, groups: &[&str]) -> Client {
    let mut config = admin_config().await;
    config.auth_info.impersonate = Some(user.to_owned());
    config.auth_info.impersonate_groups = Some(groups.iter().map(|g| (*g).to_owned()).collect());
    Client::try_from(config).expect("building an impersonating client")
}

/// A namespace created for one test; call [`TestNamespace::delete`] at the end.
/// If a test panics first, the name's random suffix keeps the next run clear,
/// and the whole cluster goes away when `testenv/run` ends.
pub struct TestNamespace {
    /// The namespace's name.
    pub name: String,
    client: Client,
}

impl TestNamespace {
    /// Creates `<prefix>-<random>`.
    pub async fn create(client: &Client, prefix: &str) -> Self {
        let name = super::unique(prefix);
        let api: Api<Namespace> = Api::all(client.clone());
        let namespace = Namespace {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                labels: Some([("berth-test".to_owned(), "true".to_owned())].into()),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        };
        api.create(&PostParams::default(), &namespace)
            .await
            .expect("creating the test namespace");
        Self {
            name,
            client: client.clone(),
        }
    }

    /// Deletes the namespace (the apiserver removes what is in it).
    pub async fn delete(self) {
        let api: Api<Namespace> = Api::all(self.client);
        api.delete(&self.name, &DeleteParams::background())
            .await
            .expect("deleting the test namespace");
    }
}

/// The test world's way of sending a namespace's Pods to the real node: the
/// PodNodeSelector and PodTolerationRestriction annotations testenv exports.
/// Berth itself knows nothing of it.
pub async fn steer_to_real_node(admin: &Client, ns: &str) {
    let mut annotations = serde_json::Map::new();
    for pair in super::testenv_var("TESTENV_REAL_NODE_ANNOTATIONS").split(';') {
        let (key, value) = pair.split_once('=').expect("key=value");
        annotations.insert(key.into(), value.into());
    }
    Api::<Namespace>::all(admin.clone())
        .patch(
            ns,
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"metadata": {"annotations": annotations}})),
        )
        .await
        .expect("steering the namespace to the real node");
}

/// Deletes the namespace `name` (the apiserver removes what is in it), if
/// it is there: the end of a test that made one.
pub async fn delete_namespace(client: &Client, name: &str) {
    let _ = Api::<Namespace>::all(client.clone())
        .delete(name, &DeleteParams::background())
        .await;
}

/// Polls `check` until it returns `Some`, or panics after `timeout` saying `what`.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        if tokio::time::Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits until the quota controller has counted what `namespace` uses
/// against Berth's quota: quota admission refuses everything until then.
pub async fn quota_counted(client: &Client, namespace: &str) {
    let quotas: Api<ResourceQuota> = Api::namespaced(client.clone(), namespace);
    eventually(
        Duration::from_secs(60),
        "the quota controller to count",
        || {
            let quotas = quotas.clone();
            async move {
                let q = quotas.get("berth-quota").await.ok()?;
                q.status.and_then(|s| s.used).map(|_| ())
            }
        },
    )
    .await;
}

/// Waits until the apiserver's quota admission refuses `pod` (checked with dry
/// runs, which change nothing). Admission reads quotas from the apiserver's
/// own informer, so a quota created a moment ago may not be enforced yet.
pub async fn wait_until_quota_refuses(
    pods: &Api<k8s_openapi::api::core::v1::Pod>,
    pod: &k8s_openapi::api::core::v1::Pod,
) {
    let dry_run = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    eventually(
        Duration::from_secs(30),
        "quota admission to see the quota",
        || {
            let pods = pods.clone();
            let dry_run = dry_run.clone();
            let pod = pod.clone();
            async move {
                match pods.create(&dry_run, &pod).await {
                    Err(kube::Error::Api(status)) if status.message.contains("exceeded quota") => {
                        Some(())
                    }
                    _ => None,
                }
            }
        },
    )
    .await;
}
