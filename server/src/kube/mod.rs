//! The cluster: how Berth reaches it, the identity it acts as, and the
//! watch-backed caches pages read from.
//!
//! Berth's own ServiceAccount may only watch, impersonate and bind its roles.
//! Every write is made through [`Kube::client_for`], which impersonates the
//! person behind the request (a ServiceAccount name in `berth-people` derived
//! from their email, groups `berth:users` and, for admins, `berth:admins`), so
//! the apiserver's RBAC has the last word even if a check in Berth had a bug.
//! Berth's ServiceAccount may impersonate only names in `berth-people` (a Role
//! there, see deploy/rbac), never a user of the cluster. Reads for pages come from [`Caches`], never a
//! request to the apiserver per page view.

pub mod api;
pub mod cache;
pub mod cached;
pub mod errors;
pub mod quantity;

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use ::kube::{
    Client, Config,
    config::{KubeConfigOptions, Kubeconfig},
};

pub use api::{apply, delete_opt};
pub use cache::{Cache, Caches, event_seconds};
pub use errors::KubeError;

use crate::config::KubeConfig;

/// The label every object Berth creates carries, and its value.
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "berth");
/// Label that ties a workload's objects together (and selects its pods).
pub const NAME_LABEL: &str = "app.kubernetes.io/name";
/// The label selector for objects Berth manages.
pub const MANAGED_BY_SELECTOR: &str = "app.kubernetes.io/managed-by=berth";
/// Label on the pods of an exposed workload: the namespace's NetworkPolicy
/// `berth-exposed` lets traffic from outside the namespace reach only these.
pub const EXPOSURE_LABEL: &str = "berth.io/exposure";
/// Annotation on a Deployment or Namespace whose text its page shows as a
/// notice (the end-of-course sweep writes it).
pub const NOTICE_ANNOTATION: &str = "berth.io/notice";
/// Field manager for server-side apply.
pub const FIELD_MANAGER: &str = "berth";
/// Group every person Berth acts for is impersonated with.
pub const USERS_GROUP: &str = "berth:users";
/// Group admins are impersonated with; bound in each namespace Berth manages
/// (RoleBinding `berth-admins`), never cluster-wide.
pub const ADMINS_GROUP: &str = "berth:admins";
/// The namespace whose ServiceAccount names Berth impersonates: the only
/// names its ServiceAccount may act as.
pub const PEOPLE_NAMESPACE: &str = "berth-people";
/// The account name Berth acts as on its own (self-service namespaces), with
/// the admin group. Person accounts start with `p-`, so it cannot collide.
pub const SYSTEM_ACCOUNT: &str = "berth-system";

/// How long an impersonating client is reused. A client holds a connection
/// pool, so building one per request would mean a TLS handshake per request.
const CLIENT_TTL: Duration = Duration::from_secs(300);

/// Who Berth acts as in the cluster for one request.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Identity {
    /// The ServiceAccount name in [`PEOPLE_NAMESPACE`] (impersonated as the
    /// user `system:serviceaccount:berth-people:<account>`).
    pub account: String,
    /// Kubernetes groups.
    pub groups: Vec<String>,
}

impl Identity {
    /// The identity for a person; emails are lower-cased so the RoleBinding
    /// subject and the impersonated name always match.
    pub fn new(email: &str, is_admin: bool) -> Self {
        let mut groups = vec![USERS_GROUP.to_owned()];
        if is_admin {
            groups.push(ADMINS_GROUP.to_owned());
        }
        Self {
            account: account_name(email),
            groups,
        }
    }

    /// Berth acting on its own behalf (e.g. a personal namespace at first
    /// sign-in): still through impersonation, so the ServiceAccount needs no
    /// write rights of its own.
    pub fn system() -> Self {
        Self {
            account: SYSTEM_ACCOUNT.to_owned(),
            groups: vec![USERS_GROUP.to_owned(), ADMINS_GROUP.to_owned()],
        }
    }

    /// The Kubernetes user name the apiserver sees.
    pub fn user(&self) -> String {
        service_account_user(&self.account)
    }
}

/// The ServiceAccount name (in [`PEOPLE_NAMESPACE`]) Berth acts as for
/// `email`: `p-`, the readable part of the address, and 16 hex digits of its
/// SHA-256. A DNS-1123 label (at most 59 characters); the hash keeps two
/// addresses that clean up to the same text (`a.b@x`, `a-b@x`) apart, and 64
/// bits cannot be hit by choosing an address.
pub fn account_name(email: &str) -> String {
    use sha2::{Digest, Sha256};
    let email = email.trim().to_lowercase();
    let mut readable = String::new();
    for c in email.chars() {
        let c = if c.is_ascii_alphanumeric() { c } else { '-' };
        if !(c == '-' && (readable.is_empty() || readable.ends_with('-'))) {
            readable.push(c);
        }
        if readable.len() >= 40 {
            break;
        }
    }
    let readable = readable.trim_end_matches('-');
    let hash = hex::encode(&Sha256::digest(email.as_bytes())[..8]);
    if readable.is_empty() {
        format!("p-{hash}")
    } else {
        format!("p-{readable}-{hash}")
    }
}

/// The user name the apiserver gives a ServiceAccount of `berth-people`.
pub fn service_account_user(account: &str) -> String {
    format!("system:serviceaccount:{PEOPLE_NAMESPACE}:{account}")
}

/// An apiserver URL and the CA certificates (DER) to trust it with, if any.
pub type ClusterAddress = (String, Option<Vec<Vec<u8>>>);

/// Berth's handle on the cluster; cheap to clone. Either connected, or not
/// (no configuration found), in which case every use says so plainly.
#[derive(Clone)]
pub struct Kube {
    inner: Result<Arc<Connected>, Arc<str>>,
}

struct Connected {
    base: Config,
    caches: Caches,
    clients: Mutex<HashMap<Identity, (Instant, Client)>>,
}

impl Kube {
    /// Finds the cluster configuration and starts the caches. Never fails:
    /// without a cluster Berth still serves sign-in and says what is missing.
    pub async fn connect(config: &KubeConfig) -> Self {
        match load_config(config).await {
            Ok(base) => match Client::try_from(base.clone()) {
                Ok(client) => {
                    tracing::info!(cluster = %base.cluster_url, "using the cluster");
                    let caches = Caches::start(client);
                    Self {
                        inner: Ok(Arc::new(Connected {
                            base,
                            caches,
                            clients: Mutex::new(HashMap::new()),
                        })),
                    }
                }
                Err(error) => Self::unavailable(&format!("the cluster client: {error}")),
            },
            Err(reason) => Self::unavailable(&reason),
        }
    }

    /// A handle that is not connected, with the reason shown to admins.
    pub fn unavailable(reason: &str) -> Self {
        tracing::warn!(reason, "no cluster: pages that need it will say so");
        Self {
            inner: Err(Arc::from(reason)),
        }
    }

    /// Whether a cluster configuration was found.
    pub fn is_connected(&self) -> bool {
        self.inner.is_ok()
    }

    /// Connected and every cache has its first full list.
    pub fn is_ready(&self) -> bool {
        self.inner.as_ref().is_ok_and(|c| c.caches.is_ready())
    }

    /// The caches, or why there are none.
    pub fn caches(&self) -> Result<&Caches, KubeError> {
        match &self.inner {
            Ok(connected) => Ok(&connected.caches),
            Err(reason) => Err(KubeError::Unavailable(reason.to_string())),
        }
    }

    /// The apiserver URL Berth talks to and the CA certificates (DER) it
    /// trusts for it: the default address of a downloaded kubeconfig.
    pub fn cluster_address(&self) -> Result<ClusterAddress, KubeError> {
        match &self.inner {
            Ok(connected) => Ok((
                connected
                    .base
                    .cluster_url
                    .to_string()
                    .trim_end_matches('/')
                    .to_owned(),
                connected.base.root_cert.clone(),
            )),
            Err(reason) => Err(KubeError::Unavailable(reason.to_string())),
        }
    }

    /// A client that impersonates `identity`: the one way Berth writes to the
    /// cluster.
    pub fn client_for(&self, identity: &Identity) -> Result<Client, KubeError> {
        let connected = match &self.inner {
            Ok(connected) => connected,
            Err(reason) => return Err(KubeError::Unavailable(reason.to_string())),
        };
        let mut clients = connected
            .clients
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        clients.retain(|_, (made, _)| now.duration_since(*made) < CLIENT_TTL);
        if let Some((_, client)) = clients.get(identity) {
            return Ok(client.clone());
        }
        let mut config = connected.base.clone();
        config.auth_info.impersonate = Some(identity.user());
        config.auth_info.impersonate_groups = Some(identity.groups.clone());
        config.auth_info.impersonate_uid = None;
        config.auth_info.impersonate_user_extra = None;
        let client = Client::try_from(config).map_err(KubeError::from)?;
        clients.insert(identity.clone(), (now, client.clone()));
        Ok(client)
    }
}

/// The explicit kubeconfig if given, else the usual search (KUBECONFIG,
/// ~/.kube/config, in-cluster).
async fn load_config(config: &KubeConfig) -> Result<Config, String> {
    match &config.kubeconfig {
        Some(path) => {
            let file = Kubeconfig::read_from(path)
                .map_err(|e| format!("reading the kubeconfig {}: {e}", path.display()))?;
            Config::from_custom_kubeconfig(file, &KubeConfigOptions::default())
                .await
                .map_err(|e| format!("the kubeconfig {}: {e}", path.display()))
        }
        None => Config::infer()
            .await
            .map_err(|e| format!("no cluster configuration found ({e})")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_are_prefixed_lowercase_and_carry_the_right_groups() {
        let student = Identity::new(" Alice@Purdue.edu", false);
        assert_eq!(student.account, account_name("alice@purdue.edu"));
        assert!(
            student
                .user()
                .starts_with("system:serviceaccount:berth-people:p-alice-purdue-edu-"),
            "{}",
            student.user()
        );
        assert_eq!(student.groups, vec!["berth:users"]);
        let admin = Identity::new("root@purdue.edu", true);
        assert_eq!(admin.groups, vec!["berth:users", "berth:admins"]);
    }

    #[test]
    fn account_names_are_dns_labels_and_distinct() {
        let names = [
            account_name("a.b@x.edu"),
            account_name("a-b@x.edu"),
            account_name(&format!("{}@x.edu", "z".repeat(200))),
            account_name("--@x"),
            account_name("\u{e9}@x.edu"),
        ];
        for name in &names {
            assert!(name.len() <= 63, "{name}");
            assert!(name.starts_with("p-"), "{name}");
            assert!(
                name.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
                "{name}"
            );
            assert!(!name.ends_with('-') && !name.contains("--"), "{name}");
        }
        assert_ne!(names[0], names[1]);
        assert_eq!(account_name(" A.B@X.edu"), names[0]);
        assert_ne!(account_name("x@x.edu"), SYSTEM_ACCOUNT);
    }

    #[test]
    fn an_unavailable_cluster_says_why() {
        let kube = Kube::unavailable("no cluster configuration found");
        assert!(!kube.is_connected());
        assert!(!kube.is_ready());
        let error = kube
            .client_for(&Identity::system())
            .err()
            .map(|e| e.to_string());
        assert!(error.is_some_and(|e| e.contains("no cluster configuration found")));
    }
}
