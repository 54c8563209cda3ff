//! Berth's own ServiceAccount in the test world: `deploy/rbac` applied as is,
//! a token from the TokenRequest API, and a kubeconfig with only that token,
//! so the Berth under test holds exactly the rights it holds in production
//! and every write it makes must go through impersonation.

use std::{
    path::{Path, PathBuf},
    process::Command,
    sync::OnceLock,
    time::Duration,
};

use berth::{config::KubeConfig, kube::Kube};
use reqwest::StatusCode;
use tempfile::TempDir;

use super::TestApp;

/// The repository's root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn kubectl(args: &[&str]) -> String {
    let output = Command::new("kubectl")
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("running kubectl {args:?}: {e} (run the tests under testenv/run)")
        });
    assert!(
        output.status.success(),
        "kubectl {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// Applies `deploy/rbac` (once per run of the tests) and writes a kubeconfig with
/// a fresh token for ServiceAccount `berth-system/berth`; returns its path.
pub fn kubeconfig() -> &'static Path {
    static CONFIG: OnceLock<(TempDir, PathBuf)> = OnceLock::new();
    let (_, path) = CONFIG.get_or_init(|| {
        assert!(
            std::env::var_os("KUBECONFIG").is_some(),
            "KUBECONFIG is not set: run the cluster tests under testenv/run (see README)"
        );
        let rbac = repo_root().join("deploy/rbac");
        // Server-side apply with force: idempotent when the in-cluster test
        // (or a previous run on a kept cluster) applied it before.
        kubectl(&[
            "apply",
            "--server-side",
            "--force-conflicts",
            "--field-manager=berth-tests",
            "-k",
            &rbac.to_string_lossy(),
        ]);
        wait_for_the_fence();
        let token = kubectl(&[
            "create",
            "token",
            "berth",
            "--namespace=berth-system",
            "--duration=2h",
        ]);
        let server = kubectl(&[
            "config",
            "view",
            "--minify",
            "-o",
            "jsonpath={.clusters[0].cluster.server}",
        ]);
        let ca = kubectl(&[
            "config",
            "view",
            "--minify",
            "--raw",
            "-o",
            "jsonpath={.clusters[0].cluster.certificate-authority-data}",
        ]);
        let ca_line = if ca.is_empty() {
            let file = kubectl(&[
                "config",
                "view",
                "--minify",
                "-o",
                "jsonpath={.clusters[0].cluster.certificate-authority}",
            ]);
            format!("certificate-authority: {file}")
        } else {
            format!("certificate-authority-data: {ca}")
        };
        let dir = tempfile::tempdir().expect("a temp dir for the kubeconfig");
        let path = dir.path().join("berth-sa.kubeconfig");
        let text = format!(
            "apiVersion: v1
kind: Config
clusters:
- name: test
  cluster:
    server: {server}
    {ca_line}
users:
- name: berth
  user:
    token: {token}
contexts:
- name: berth
  context:
    cluster: test
    user: berth
current-context: berth
"
        );
        std::fs::write(&path, text).expect("writing the kubeconfig");
        (dir, path)
    });
    path
}

/// Waits until the apiserver enforces deploy/rbac's admission fence (a new
/// ValidatingAdmissionPolicy takes a moment to load): until then an admin's
/// cluster-wide `create rolebindings` is not yet confined to Berth's
/// namespaces. Probes with a server-side dry run, which changes nothing.
fn wait_for_the_fence() {
    // The RoleBinding fence, and the one around people's own accounts
    // (another person's account name is refused).
    let probes: [&[&str]; 2] = [
        &[
            "create",
            "rolebinding",
            "berth-fence-probe",
            "--namespace=kube-system",
            "--clusterrole=berth-admin",
            "--group=berth:admins",
            "--dry-run=server",
            "--as=system:serviceaccount:berth-people:berth-fence-probe",
            "--as-group=berth:admins",
        ],
        &[
            "create",
            "serviceaccount",
            "p-fence-probe-other",
            "--namespace=berth-people",
            "--dry-run=server",
            "--as=system:serviceaccount:berth-people:p-fence-probe",
            "--as-group=berth:users",
        ],
    ];
    for (probe, policy) in probes.iter().zip(["berth-fence", "berth-fence-accounts"]) {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let output = Command::new("kubectl")
                .args(*probe)
                .output()
                .expect("running kubectl");
            let stderr = String::from_utf8_lossy(&output.stderr);
            if !output.status.success() && stderr.contains(policy) {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the admission fence {policy} is not enforced: {stderr}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// The kube settings for the test's Berth.
pub fn kube_config() -> KubeConfig {
    KubeConfig {
        kubeconfig: Some(kubeconfig().to_owned()),
        self_service_namespaces: false,
        default_quota: String::new(),
        audit_retention_days: 365,
    }
}

/// Berth's cluster handle, as the running Berth builds it, for tests that
/// call the impersonating client directly (bypassing Berth's own checks).
pub async fn berth_kube() -> Kube {
    let kube = Kube::connect(&kube_config()).await;
    assert!(kube.is_connected(), "Berth reaches the test cluster");
    kube
}

impl TestApp {
    /// Berth with the dev sign-in, running as its ServiceAccount in the test
    /// cluster; returns once `/readyz` says its caches are synced.
    pub async fn spawn_in_cluster(extra: &[&str]) -> Self {
        Self::spawn_with(&in_cluster_args(extra))
            .await
            .until_ready()
            .await
    }

    /// Like [`TestApp::spawn_in_cluster`], with no other Berth running in
    /// the process while this one does (see [`super::alone`]).
    pub async fn spawn_in_cluster_alone(
        extra: &[&str],
        alone: tokio::sync::OwnedRwLockWriteGuard<()>,
    ) -> Self {
        Self::spawn_alone(&in_cluster_args(extra), alone)
            .await
            .until_ready()
            .await
    }

    async fn until_ready(self) -> Self {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let response = self.get("/readyz").await;
            if response.status() == StatusCode::OK {
                return self;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "Berth did not become ready: {}",
                response.text().await.unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// `berth serve` arguments for Berth as its ServiceAccount, plus `extra`.
fn in_cluster_args<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["--dev-login", "--kubeconfig", kubeconfig_arg()];
    args.extend_from_slice(extra);
    args
}

/// [`kubeconfig`] as an argument.
fn kubeconfig_arg() -> &'static str {
    static ARG: OnceLock<String> = OnceLock::new();
    ARG.get_or_init(|| kubeconfig().to_string_lossy().into_owned())
}
