//! The registry pages' side effects and lookups: asking the registry about a
//! login or an image, rewriting a pull Secret, saving a checked image, loading
//! a row or answering 404, and the audit rows of a credential save.

use super::{
    client::{Login, RegistryError},
    forms::FieldErrors,
    reference::ImageRef,
    store::{self, CredentialRow, ImageRow, WriteError},
};
use crate::{
    app::AppState,
    audit::{self, Outcome},
    auth::CurrentUser,
    error::{AppError, AppResult},
};

/// Which field a registry's refusal belongs beside.
pub(super) fn field_for(error: &RegistryError) -> &'static str {
    match error {
        RegistryError::BadCredentials { .. } => "token",
        RegistryError::NoAccess { .. } | RegistryError::UnknownRepository { .. } => {
            "check_repository"
        }
        _ => "host",
    }
}

/// Asks the registry whether the login works (and can pull the repository).
pub(super) async fn check_credential(
    state: &AppState,
    login: &Login,
    repository: Option<&str>,
) -> Result<(), RegistryError> {
    state.registry.check_login(login).await?;
    if let Some(repository) = repository {
        state.registry.check_pull(login, repository).await?;
    }
    Ok(())
}

pub(super) fn not_allowed_message(state: &AppState) -> String {
    format!(
        "Berth may only contact these registries: {}.",
        state.registry.policy.allowed().join(", ")
    )
}

/// One credential save (create or replace), for its audit rows.
pub(super) struct Attempt<'a> {
    pub(super) state: &'a AppState,
    pub(super) user: &'a CurrentUser,
    pub(super) ns: &'a str,
    pub(super) action: &'static str,
    pub(super) target: &'a str,
}

impl Attempt<'_> {
    /// When the registry refused the login and the person did not tick "save
    /// anyway": the failure is audited and its message placed beside its field.
    pub(super) async fn refused(
        &self,
        check: &Result<(), RegistryError>,
        save_anyway: bool,
    ) -> Option<FieldErrors> {
        let Err(error) = check else {
            return None;
        };
        if save_anyway {
            return None;
        }
        let (state, user) = (self.state, self.user);
        audit::Entry::new(&user.email, self.action)
            .in_namespace(self.ns)
            .on(self.target)
            .outcome(Outcome::Failed, Some(&error.to_string()))
            .record(&state.db)
            .await;
        let mut errors = FieldErrors::default();
        errors.add(field_for(error), error.to_string());
        Some(errors)
    }

    /// Audits a saved credential, noting when it was saved unchecked.
    pub(super) async fn saved(&self, check: &Result<(), RegistryError>) {
        let detail = check
            .as_ref()
            .err()
            .map(|e| format!("saved unchecked: {e}"));
        audit::Entry::new(&self.user.email, self.action)
            .in_namespace(self.ns)
            .on(self.target)
            .outcome(Outcome::Ok, detail.as_deref())
            .record(&self.state.db)
            .await;
    }
}

pub(super) async fn load_credential(
    state: &AppState,
    ns: &str,
    id: i64,
) -> AppResult<CredentialRow> {
    store::credential(&state.db, ns, id)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("There is no such credential in {ns}.")))
}

/// Rewrites the credential's pull Secret in the namespace, as the person.
pub(super) async fn refresh_pull_secret(
    state: &AppState,
    user: &CurrentUser,
    ns: &str,
    id: i64,
    login: &Login,
    in_use: bool,
) -> Result<bool, String> {
    let client = state
        .kube
        .client_for(&user.identity())
        .map_err(|e| e.to_string())?;
    super::pull::refresh(
        &client,
        ns,
        id,
        (&login.host, &login.robot, &login.token),
        in_use,
    )
    .await
    .map_err(|e| e.to_string())
}

/// What asking the registry about an image found.
pub(super) struct Checked {
    pub(super) digest: String,
    pub(super) media_type: Option<String>,
    pub(super) tags: Vec<String>,
}

/// Resolves the image's tag (or digest) and lists the repository's tags.
pub(super) async fn check_image(
    state: &AppState,
    ns: &str,
    credential: &CredentialRow,
    repository: &str,
    lookup: &str,
) -> AppResult<Result<Checked, RegistryError>> {
    let token = store::open_token(&state.db, &state.keys, ns, credential.id)
        .await
        .map_err(|e| AppError::Internal(e.context("opening a registry token")))?
        .ok_or_else(|| AppError::NotFound("That credential no longer exists.".to_owned()))?;
    let login = Login {
        host: credential.host.clone(),
        robot: credential.robot.clone(),
        token,
    };
    let result = async {
        let resolved = state.registry.resolve(&login, repository, lookup).await?;
        let tags = state.registry.tags(&login, repository).await?;
        Ok(Checked {
            digest: resolved.digest,
            media_type: resolved.media_type,
            tags,
        })
    }
    .await;
    Ok(result)
}

pub(super) async fn insert_checked(
    state: &AppState,
    ns: &str,
    user: &CurrentUser,
    image: &ImageRef,
    credential: &CredentialRow,
    check: &Result<Checked, RegistryError>,
) -> Result<i64, WriteError> {
    let error = check.as_ref().err().map(ToString::to_string);
    let result = store::CheckResult {
        resolved: check
            .as_ref()
            .ok()
            .map(|c| (c.digest.as_str(), c.media_type.as_deref())),
        tags: check.as_ref().ok().map(|c| c.tags.as_slice()),
        error: error.as_deref(),
    };
    store::insert_image(
        &state.db,
        ns,
        &store::NewImage {
            credential_id: credential.id,
            host: &image.host,
            repository: &image.repository,
            tag: image.tag.as_deref(),
            pinned_digest: image.digest.as_deref(),
            actor: &user.email,
        },
        &result,
    )
    .await
}

pub(super) async fn load_image(state: &AppState, ns: &str, id: i64) -> AppResult<ImageRow> {
    store::image(&state.db, ns, id)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("There is no such image in {ns}.")))
}
