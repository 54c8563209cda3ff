//! `POST /namespaces/{ns}/kubeconfig`: the download. A POST (with the CSRF
//! token) rather than a link, because every download mints a token: a link
//! could be fetched by a prefetcher or another site's `<img>`.

use axum::{
    extract::State,
    http::{HeaderValue, header},
    response::{IntoResponse, Response},
};

use super::{build, ops};
use crate::{
    app::AppState,
    audit::{self, Outcome},
    auth::NamespaceMember,
    clock,
    error::{AppError, AppResult},
    namespaces::membership,
};

/// The apiserver address and CA written into the file.
async fn cluster_address(state: &AppState) -> AppResult<(String, Option<String>)> {
    let access = &state.config.access;
    let (url, certificates) = state.kube.cluster_address()?;
    let server = access
        .kubeconfig_server
        .as_ref()
        .map_or(url, |u| u.as_str().trim_end_matches('/').to_owned());
    let ca = match &access.kubeconfig_ca {
        Some(path) => Some(
            tokio::fs::read_to_string(path)
                .await
                .map_err(|e| AppError::internal("reading BERTH_KUBECONFIG_CA", e))?,
        ),
        None => certificates.map(|c| build::pem_of(&c)),
    };
    Ok((server, ca))
}

/// Mints a token of the person's own account and answers with the file.
pub async fn download(
    State(state): State<AppState>,
    NamespaceMember {
        user,
        namespace: ns,
    }: NamespaceMember,
) -> AppResult<Response> {
    // The token carries the person's memberships, not Berth's admin group:
    // an admin who is not a member would get a file that can do nothing here.
    if membership::role_of(&state.db, &user.email, &ns)
        .await?
        .is_none()
    {
        let message = format!(
            "A kubeconfig carries the rights of your memberships, and you are not a member of {ns}. Add yourself as a member first."
        );
        audit::Entry::new(&user.email, "kubeconfig.download")
            .in_namespace(&ns)
            .on(&user.identity().account)
            .outcome(Outcome::Denied, Some(&message))
            .record(&state.db)
            .await;
        return Err(AppError::Forbidden(message));
    }
    let identity = user.identity();
    let (server, ca) = cluster_address(&state).await?;
    let client = state.kube.client_for(&identity)?;
    let seconds = i64::from(state.config.access.kubeconfig_hours) * 3600;
    let issued = match ops::issue(&client, &identity.account, seconds).await {
        Ok(issued) => issued,
        Err(error) => {
            let outcome = error.outcome();
            audit::Entry::new(&user.email, "kubeconfig.download")
                .in_namespace(&ns)
                .on(&user.identity().account)
                .outcome(outcome, Some(&error.to_string()))
                .record(&state.db)
                .await;
            return Err(error.into());
        }
    };
    let expires = clock::display(issued.expires_at);
    let text = build::render(&build::KubeconfigFile {
        server: &server,
        ca_pem: ca.as_deref(),
        namespace: &ns,
        email: &user.email,
        account: &identity.account,
        token: &issued.token,
        expires: &expires,
        expires_rfc3339: &clock::rfc3339(issued.expires_at),
    })
    .map_err(|e| AppError::internal("writing the kubeconfig", e))?;
    audit::Entry::new(&user.email, "kubeconfig.download")
        .in_namespace(&ns)
        .on(&user.identity().account)
        .outcome(Outcome::Ok, Some(&format!("token expires {expires}")))
        .record(&state.db)
        .await;
    let disposition = format!("attachment; filename=\"{}\"", build::file_name(&ns));
    let mut response = text.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/yaml; charset=utf-8"),
    );
    headers.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_str(&disposition)
            .map_err(|e| AppError::internal("the file name header", e))?,
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-store, private"),
    );
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    headers.insert(
        "x-berth-token-expires",
        HeaderValue::from_str(&clock::rfc3339(issued.expires_at))
            .map_err(|e| AppError::internal("the expiry header", e))?,
    );
    Ok(response)
}
