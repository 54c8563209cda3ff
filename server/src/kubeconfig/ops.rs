//! The cluster side: the person's ServiceAccount in `berth-people` and a
//! TokenRequest for it, both made as the person.

use std::collections::BTreeMap;

use k8s_openapi::{
    api::{
        authentication::v1::{TokenRequest, TokenRequestSpec},
        core::v1::ServiceAccount,
    },
    apimachinery::pkg::apis::meta::v1::ObjectMeta,
};
use kube::{Api, Client, api::PostParams};
use secrecy::SecretString;

use crate::kube::{KubeError, MANAGED_BY, PEOPLE_NAMESPACE};

/// A token the apiserver issued.
pub struct Issued {
    /// The bearer token.
    pub token: SecretString,
    /// When it stops working (unix seconds), as the apiserver set it.
    pub expires_at: i64,
}

/// The person's ServiceAccount object. It mounts nothing and nothing runs as
/// it: it exists only so a token can be issued for the name.
pub fn account(name: &str) -> ServiceAccount {
    ServiceAccount {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(PEOPLE_NAMESPACE.to_owned()),
            labels: Some(BTreeMap::from([(
                MANAGED_BY.0.to_owned(),
                MANAGED_BY.1.to_owned(),
            )])),
            ..ObjectMeta::default()
        },
        automount_service_account_token: Some(false),
        ..ServiceAccount::default()
    }
}

/// Makes the person's account if it is missing (an existing one is left as
/// it is: creating is all the person may do there), then asks for a token of
/// `seconds`. `client` impersonates the person.
pub async fn issue(client: &Client, name: &str, seconds: i64) -> Result<Issued, KubeError> {
    let api: Api<ServiceAccount> = Api::namespaced(client.clone(), PEOPLE_NAMESPACE);
    match api.create(&PostParams::default(), &account(name)).await {
        Ok(_) => {}
        Err(kube::Error::Api(status)) if status.code == 409 => {}
        Err(error) => return Err(error.into()),
    }
    let request = TokenRequest {
        spec: TokenRequestSpec {
            // Empty: the apiserver's own audience, which kubectl's requests need.
            audiences: Vec::new(),
            bound_object_ref: None,
            expiration_seconds: Some(seconds),
        },
        ..TokenRequest::default()
    };
    let answer = api
        .create_token_request(name, &PostParams::default(), &request)
        .await?;
    let status = answer.status.ok_or_else(|| KubeError::Api {
        code: 500,
        reason: "InternalError".to_owned(),
        message: "the apiserver issued no token".to_owned(),
    })?;
    Ok(Issued {
        token: SecretString::from(status.token),
        expires_at: status.expiration_timestamp.0.as_second(),
    })
}
