//! The image pull Secret: the only place a registry token leaves Berth, inside
//! the Secret it writes into the person's own namespace — when a workload is
//! deployed, and again when the credential's token is replaced, so the next
//! pod pulls with the new one.

use std::collections::BTreeMap;

use base64::{Engine, engine::general_purpose::STANDARD};
use k8s_openapi::{
    ByteString, api::core::v1::Secret, apimachinery::pkg::apis::meta::v1::ObjectMeta,
};
use kube::{Api, Client};
use secrecy::{ExposeSecret, SecretString};

use crate::kube::{Caches, KubeError, MANAGED_BY};

/// The pull Secret's name for a credential: one per credential and namespace,
/// shared by every workload whose image uses it.
pub fn secret_name(credential_id: i64) -> String {
    format!("{SECRET_PREFIX}{credential_id}")
}

/// What every pull Secret's name starts with.
pub const SECRET_PREFIX: &str = "berth-registry-";

/// The credential id a pull Secret name stands for, if it is one of Berth's.
pub fn credential_of_secret(name: &str) -> Option<i64> {
    name.strip_prefix(SECRET_PREFIX)?.parse().ok()
}

/// An image pull Secret (`kubernetes.io/dockerconfigjson`) for one registry.
///
/// This is the only place a registry token leaves Berth: inside the Secret it
/// writes into the user's own namespace.
pub fn pull_secret(
    namespace: &str,
    name: &str,
    registry: &str,
    username: &str,
    token: &SecretString,
) -> Secret {
    let auth = STANDARD.encode(format!("{username}:{}", token.expose_secret()));
    let config = serde_json::json!({
        "auths": {
            registry: {
                "username": username,
                "password": token.expose_secret(),
                "auth": auth,
            }
        }
    });
    Secret {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(namespace.to_owned()),
            labels: Some(BTreeMap::from([(
                MANAGED_BY.0.to_owned(),
                MANAGED_BY.1.to_owned(),
            )])),
            ..ObjectMeta::default()
        },
        type_: Some("kubernetes.io/dockerconfigjson".to_owned()),
        data: Some(BTreeMap::from([(
            ".dockerconfigjson".to_owned(),
            ByteString(config.to_string().into_bytes()),
        )])),
        ..Secret::default()
    }
}

/// The workloads (Deployments, from the cache) of `namespace` whose pods pull
/// with credential `credential_id`'s Secret, by name.
pub fn workloads_using(caches: &Caches, namespace: &str, credential_id: i64) -> Vec<String> {
    let name = secret_name(credential_id);
    let mut names: Vec<String> = caches
        .deployments
        .in_namespace(namespace)
        .into_iter()
        .filter(|d| {
            d.spec
                .as_ref()
                .and_then(|s| s.template.spec.as_ref())
                .and_then(|p| p.image_pull_secrets.as_ref())
                .is_some_and(|refs| refs.iter().any(|r| r.name == name))
        })
        .map(|d| d.metadata.name.clone())
        .collect();
    names.sort();
    names
}

/// After a token is replaced: rewrite the credential's pull Secret (as the
/// person, so RBAC decides), so every pod that starts from now on pulls with
/// the new token. The Secret is one per credential and namespace and every
/// workload using the credential names it, so this one write reaches them
/// all. It is written where it exists, and also where it went missing while
/// `in_use` (workloads name it), so they pull again. `Ok(false)`: no
/// workload has used the credential yet, nothing to write.
pub async fn refresh(
    client: &Client,
    namespace: &str,
    credential_id: i64,
    login: (&str, &str, &SecretString),
    in_use: bool,
) -> Result<bool, KubeError> {
    let (registry, username, token) = login;
    let name = secret_name(credential_id);
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    if !in_use && api.get_metadata_opt(&name).await?.is_none() {
        return Ok(false);
    }
    let secret = pull_secret(namespace, &name, registry, username, token);
    crate::kube::apply(&api, &secret).await?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pull_secret_is_a_docker_config_for_the_registry() {
        let token = SecretString::from("s3cr3t".to_owned());
        let secret = pull_secret(
            "cs101",
            "berth-pull-1",
            "reg.example:5000",
            "robot$cs101+ci",
            &token,
        );
        assert_eq!(
            secret.type_.as_deref(),
            Some("kubernetes.io/dockerconfigjson")
        );
        let data = &secret.data.expect("data")[".dockerconfigjson"].0;
        let config: serde_json::Value = serde_json::from_slice(data).expect("JSON");
        let entry = &config["auths"]["reg.example:5000"];
        assert_eq!(entry["username"], "robot$cs101+ci");
        assert_eq!(entry["password"], "s3cr3t");
        assert_eq!(
            entry["auth"],
            STANDARD.encode("robot$cs101+ci:s3cr3t").as_str()
        );
    }
}
