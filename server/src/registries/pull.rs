//! The image pull Secret: the only place a registry token leaves Berth, inside
//! the Secret it writes into the person's own namespace — when a workload is
//! deployed, and again when the credential's token is replaced, so the next
//! pod pulls with the new one.

use std::collections::BTreeMap;

use base64::{Engine, engine::general_purpose::STANDARD};
use k8s_openapi::{
    ByteString, api::core::v1::Secret, apimachinery::pkg::apis::meta::v1::ObjectMeta,
};
use kube::{
    Api, Client,
    api::{Patch, PatchParams},
};
use secrecy::{ExposeSecret, SecretString};

use crate::kube::{FIELD_MANAGER, KubeError, MANAGED_BY};

/// The pull Secret's name for a credential: one per credential and namespace,
/// shared by every workload whose image uses it.
pub fn secret_name(credential_id: i64) -> String {
    format!("berth-registry-{credential_id}")
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

/// After a token is replaced: rewrite the credential's pull Secret where one
/// exists (as the person, so RBAC decides), so the next pod pulls with the
/// new token. `Ok(false)` when no workload has used the credential yet.
pub async fn refresh(
    client: &Client,
    namespace: &str,
    credential_id: i64,
    registry: &str,
    username: &str,
    token: &SecretString,
) -> Result<bool, KubeError> {
    let name = secret_name(credential_id);
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    if api.get_metadata_opt(&name).await?.is_none() {
        return Ok(false);
    }
    let secret = pull_secret(namespace, &name, registry, username, token);
    api.patch(
        &name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&secret),
    )
    .await?;
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
