//! The OpenID Connect authorization-code flow with PKCE, state and nonce.
//!
//! Discovery happens on first use and is cached, so Berth starts even while the
//! identity provider is briefly down; a failed discovery is retried at the next
//! sign-in.

use std::collections::HashMap;

use anyhow::Context;
use openidconnect::{
    AdditionalClaims, AuthorizationCode, Client, ClientId, ClientSecret, CsrfToken,
    EmptyExtraTokenFields, EndpointMaybeSet, EndpointNotSet, EndpointSet, IdTokenFields, IssuerUrl,
    Nonce, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope, StandardErrorResponse,
    StandardTokenResponse, TokenResponse,
    core::{
        CoreAuthDisplay, CoreAuthPrompt, CoreAuthenticationFlow, CoreErrorResponseType,
        CoreGenderClaim, CoreJsonWebKey, CoreJweContentEncryptionAlgorithm,
        CoreJwsSigningAlgorithm, CoreProviderMetadata, CoreRevocableToken,
        CoreRevocationErrorResponse, CoreTokenIntrospectionResponse, CoreTokenType,
    },
};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use tokio::sync::RwLock;
use url::Url;

/// How long a started sign-in may take before it is forgotten.
pub const PENDING_LOGIN_TTL_SECS: i64 = 600;

/// Claims beyond the standard ones, kept so an admin group claim of any name
/// can be read.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ExtraClaims {
    #[serde(flatten)]
    claims: HashMap<String, serde_json::Value>,
}

impl AdditionalClaims for ExtraClaims {}

impl ExtraClaims {
    /// Whether claim `name` is `value`, or a list that contains `value`.
    pub fn contains(&self, name: &str, value: &str) -> bool {
        match self.claims.get(name) {
            Some(serde_json::Value::String(s)) => s == value,
            Some(serde_json::Value::Array(items)) => {
                items.iter().any(|item| item.as_str() == Some(value))
            }
            _ => false,
        }
    }
}

type IdFields = IdTokenFields<
    ExtraClaims,
    EmptyExtraTokenFields,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
>;

type OidcClient = Client<
    ExtraClaims,
    CoreAuthDisplay,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJsonWebKey,
    CoreAuthPrompt,
    StandardErrorResponse<CoreErrorResponseType>,
    StandardTokenResponse<IdFields, CoreTokenType>,
    CoreTokenIntrospectionResponse,
    CoreRevocableToken,
    CoreRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// A configured OpenID Connect provider.
pub struct Provider {
    issuer: IssuerUrl,
    client_id: ClientId,
    client_secret: Option<SecretString>,
    redirect_url: RedirectUrl,
    http: reqwest::Client,
    client: RwLock<Option<OidcClient>>,
}

/// What the browser must be sent to, and what must be remembered until it returns.
pub struct Start {
    /// The provider's authorization URL with every parameter set.
    pub authorize_url: Url,
    /// `state`, compared when the browser comes back.
    pub state: String,
    /// `nonce`, checked inside the ID token.
    pub nonce: String,
    /// PKCE verifier, sent with the code.
    pub pkce_verifier: String,
}

/// Who the provider says signed in.
#[derive(Debug, Clone)]
pub struct Identity {
    /// The issuer, as configured.
    pub issuer: String,
    /// The provider's stable id for the person.
    pub subject: String,
    /// Their email address.
    pub email: String,
    /// A name to show.
    pub display_name: String,
    /// The claims beyond the standard ones (for the admin group).
    pub extra: ExtraClaims,
}

/// Why a callback did not produce an identity. Messages are for the person
/// signing in; none carries a token.
#[derive(Debug, thiserror::Error)]
pub enum CallbackError {
    /// The provider could not be reached or answered nonsense.
    #[error("the identity provider could not be reached: {0}")]
    Unavailable(String),
    /// The code was refused (used twice, expired, wrong PKCE verifier).
    #[error("the identity provider refused the sign-in: {0}")]
    Refused(String),
    /// The ID token failed validation (signature, issuer, audience, expiry, nonce).
    #[error("the identity provider's answer could not be verified: {0}")]
    Invalid(String),
    /// The token carries no email address.
    #[error("the identity provider did not give an email address")]
    NoEmail,
    /// The token's `email_verified` is false or missing (the address shown).
    #[error("the identity provider has not verified the email address {0:?}")]
    Unverified(String),
}

impl Provider {
    /// A provider for `issuer`; nothing is fetched yet.
    pub fn new(
        issuer: &Url,
        client_id: String,
        client_secret: Option<SecretString>,
        redirect_url: &Url,
    ) -> anyhow::Result<Self> {
        // The issuer URL must be compared exactly as the provider prints it,
        // so keep the configured text rather than Url's normalised form when it
        // has no trailing slash.
        let issuer_text = issuer.as_str().trim_end_matches('/').to_owned();
        let http = reqwest::Client::builder()
            // Following redirects from the token endpoint is an SSRF foothold.
            .redirect(reqwest::redirect::Policy::none())
            .timeout(std::time::Duration::from_secs(15))
            .build()
            .context("building the HTTP client for the identity provider")?;
        Ok(Self {
            issuer: IssuerUrl::new(issuer_text).context("the OIDC issuer URL")?,
            client_id: ClientId::new(client_id),
            client_secret,
            redirect_url: RedirectUrl::new(redirect_url.to_string())
                .context("the OIDC redirect URL")?,
            http,
            client: RwLock::new(None),
        })
    }

    async fn client(&self) -> Result<OidcClient, CallbackError> {
        if let Some(client) = self.client.read().await.as_ref() {
            return Ok(client.clone());
        }
        let metadata = CoreProviderMetadata::discover_async(self.issuer.clone(), &self.http)
            .await
            .map_err(|e| CallbackError::Unavailable(error_chain(&e)))?;
        let client = OidcClient::from_provider_metadata(
            metadata,
            self.client_id.clone(),
            self.client_secret
                .as_ref()
                .map(|s| ClientSecret::new(s.expose_secret().to_owned())),
        )
        .set_redirect_uri(self.redirect_url.clone());
        *self.client.write().await = Some(client.clone());
        Ok(client)
    }

    /// Forgets the discovered metadata and keys, so the next sign-in fetches
    /// them again (the provider may have rotated its signing keys).
    pub async fn forget(&self) {
        *self.client.write().await = None;
    }

    /// Prepares the redirect to the provider.
    pub async fn start(&self) -> Result<Start, CallbackError> {
        let client = self.client().await?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (url, state, nonce) = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .add_scope(Scope::new("email".to_owned()))
            .add_scope(Scope::new("profile".to_owned()))
            .add_scope(Scope::new("groups".to_owned()))
            .set_pkce_challenge(challenge)
            .url();
        Ok(Start {
            authorize_url: url,
            state: state.secret().clone(),
            nonce: nonce.secret().clone(),
            pkce_verifier: verifier.secret().clone(),
        })
    }

    /// Exchanges the code and validates the ID token against `nonce`.
    pub async fn finish(
        &self,
        code: String,
        pkce_verifier: String,
        nonce: String,
    ) -> Result<Identity, CallbackError> {
        let client = self.client().await?;
        let request = client
            .exchange_code(AuthorizationCode::new(code))
            .map_err(|e| CallbackError::Unavailable(e.to_string()))?
            .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier));
        let response = request
            .request_async(&self.http)
            .await
            .map_err(|e| match e {
                openidconnect::RequestTokenError::ServerResponse(r) => {
                    CallbackError::Refused(r.error().to_string())
                }
                other => CallbackError::Unavailable(error_chain(&other)),
            })?;
        let id_token = response
            .id_token()
            .ok_or_else(|| CallbackError::Invalid("no ID token in the answer".to_owned()))?;
        let verifier = client.id_token_verifier();
        let claims = match id_token.claims(&verifier, &Nonce::new(nonce.clone())) {
            Ok(claims) => claims,
            Err(first) => {
                // An unknown key id may mean the provider rotated its keys:
                // fetch them again once before refusing.
                self.forget().await;
                let client = self.client().await?;
                id_token
                    .claims(&client.id_token_verifier(), &Nonce::new(nonce))
                    .map_err(|_| CallbackError::Invalid(first.to_string()))?
            }
        };
        let email = verified_email(claims.email().map(|e| e.as_str()), claims.email_verified())?;
        let display_name = claims
            .name()
            .and_then(|n| n.get(None))
            .map(|n| n.as_str().to_owned())
            .or_else(|| claims.preferred_username().map(|u| u.as_str().to_owned()))
            .unwrap_or_else(|| email.clone());
        Ok(Identity {
            issuer: self.issuer.as_str().to_owned(),
            subject: claims.subject().as_str().to_owned(),
            email,
            display_name,
            extra: claims.additional_claims().clone(),
        })
    }
}

/// The token's email, if the provider vouches that it is the person's.
/// A missing `email_verified` counts as not verified: an address nobody
/// confirmed could be anyone's, and Berth's identity is keyed by it.
fn verified_email(email: Option<&str>, verified: Option<bool>) -> Result<String, CallbackError> {
    match (email, verified) {
        (None, _) => Err(CallbackError::NoEmail),
        (Some(email), Some(true)) => Ok(email.to_owned()),
        (Some(email), _) => Err(CallbackError::Unverified(email.to_owned())),
    }
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_verified_email_is_taken() {
        assert_eq!(
            verified_email(Some("a@purdue.edu"), Some(true))
                .ok()
                .as_deref(),
            Some("a@purdue.edu")
        );
        for verified in [Some(false), None] {
            assert!(matches!(
                verified_email(Some("a@purdue.edu"), verified),
                Err(CallbackError::Unverified(email)) if email == "a@purdue.edu"
            ));
        }
        assert!(matches!(
            verified_email(None, Some(true)),
            Err(CallbackError::NoEmail)
        ));
    }
}
