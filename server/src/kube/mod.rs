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
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use ::kube::{
    Client, Config,
    client::Body,
    config::{KubeConfigOptions, Kubeconfig},
};
use axum::http::{HeaderName, HeaderValue, Request, Response};

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
/// Annotation naming who deployed a workload.
pub const OWNER_ANNOTATION: &str = "berth.io/owner";
/// Annotation on the Deployment holding the form it was made from (no
/// secrets: a registered image is named by id), so editing shows exactly what
/// was typed and "what Berth applied" can be rebuilt.
pub const FORM_ANNOTATION: &str = "berth.io/form";
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

    /// The `Impersonate-User` and `Impersonate-Group` headers that make a
    /// request of Berth's a request of this identity.
    fn headers(&self) -> Result<Vec<(HeaderName, HeaderValue)>, KubeError> {
        // Account names are DNS labels and groups Berth's constants, so this
        // fails only for an identity built by hand with other bytes.
        let value = |text: &str| {
            HeaderValue::from_str(text)
                .map_err(|e| KubeError::Transport(::kube::Error::HttpError(e.into())))
        };
        let mut headers = vec![(
            HeaderName::from_static("impersonate-user"),
            value(&self.user())?,
        )];
        for group in &self.groups {
            headers.push((HeaderName::from_static("impersonate-group"), value(group)?));
        }
        Ok(headers)
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
    /// Berth's own client: the caches' watches, and the one connection pool
    /// every impersonating client sends through.
    client: Client,
    caches: Caches,
}

impl Kube {
    /// Finds the cluster configuration and starts the caches. Never fails:
    /// without a cluster Berth still serves sign-in and says what is missing.
    pub async fn connect(config: &KubeConfig) -> Self {
        match load_config(config).await {
            Ok(base) => match Client::try_from(base.clone()) {
                Ok(client) => {
                    tracing::info!(cluster = %base.cluster_url, "using the cluster");
                    let caches = Caches::start(client.clone());
                    Self {
                        inner: Ok(Arc::new(Connected {
                            base,
                            client,
                            caches,
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
    /// cluster. It sends through Berth's own client, adding the
    /// impersonation headers to each request, so a person costs no
    /// connection pool or TLS session of their own; building one is cheap.
    pub fn client_for(&self, identity: &Identity) -> Result<Client, KubeError> {
        let connected = match &self.inner {
            Ok(connected) => connected,
            Err(reason) => return Err(KubeError::Unavailable(reason.to_string())),
        };
        let service = Impersonating {
            client: connected.client.clone(),
            headers: identity.headers()?.into(),
        };
        Ok(Client::new(service, connected.client.default_namespace()))
    }
}

/// Berth's client with a person's impersonation headers on every request.
#[derive(Clone)]
struct Impersonating {
    client: Client,
    headers: Arc<[(HeaderName, HeaderValue)]>,
}

impl tower::Service<Request<Body>> for Impersonating {
    type Response = Response<Body>;
    type Error = ::kube::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, ::kube::Error>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // Berth's client has its own buffer and waits for room itself.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut request: Request<Body>) -> Self::Future {
        let headers = request.headers_mut();
        // Only this identity's: nothing set earlier may widen it.
        for (name, _) in self.headers.iter() {
            headers.remove(name);
        }
        for (name, value) in self.headers.iter() {
            headers.append(name.clone(), value.clone());
        }
        let client = self.client.clone();
        Box::pin(async move { client.send(request).await })
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
    fn impersonation_headers_name_the_user_and_every_group() {
        let admin = Identity::new("root@purdue.edu", true);
        let headers: Vec<(String, String)> = admin
            .headers()
            .expect("headers")
            .into_iter()
            .map(|(name, value)| (name.to_string(), value.to_str().unwrap_or("?").to_owned()))
            .collect();
        assert_eq!(
            headers,
            [
                ("impersonate-user".to_owned(), admin.user()),
                ("impersonate-group".to_owned(), "berth:users".to_owned()),
                ("impersonate-group".to_owned(), "berth:admins".to_owned()),
            ]
        );
        let odd = Identity {
            account: "p-\nx".to_owned(),
            groups: vec![],
        };
        assert!(odd.headers().is_err(), "a newline cannot go in a header");
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
