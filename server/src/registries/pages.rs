//! The registry pages of a namespace: credentials (list, add, replace, delete)
//! and images (list, register, show with docker commands, re-check, delete).

use askama::Template;
use axum::{
    extract::State,
    response::{Html, IntoResponse, Response},
};
use time::{Date, OffsetDateTime};

use crate::web::{Form, Path};

use super::{
    client::{Login, RegistryError},
    forms::{self, CredentialForm, Expiry, ExpirySource, FieldErrors, ImageForm, Step},
    reference::ImageRef,
    store::{self, CredentialRow, CredentialWrite, DeleteOutcome, ImageRow, WriteError},
};
use crate::{
    app::AppState,
    audit::{self, Outcome},
    auth::{CurrentUser, NamespaceMember},
    clock,
    error::{AppError, AppResult},
    web::{ConfirmPage, FlashKind, Layout, flash, render, see_other, unprocessable_html},
};

fn today() -> Date {
    OffsetDateTime::now_utc().date()
}

/// A credential as the pages show it.
pub struct CredentialView {
    id: i64,
    host: String,
    robot: String,
    expires_on: String,
    expiry: Option<Expiry>,
    /// The person said it never expires.
    never: bool,
    /// The date was read from the token itself.
    from_token: bool,
    verified: Option<String>,
    updated: String,
    updated_by: String,
}

impl CredentialView {
    fn new(row: &CredentialRow, today: Date) -> Self {
        let source = row.expiry_source.as_deref().and_then(ExpirySource::parse);
        Self {
            id: row.id,
            host: row.host.clone(),
            robot: row.robot.clone(),
            never: source == Some(ExpirySource::Never),
            from_token: source == Some(ExpirySource::Token),
            expires_on: row.expires_on.clone().unwrap_or_default(),
            expiry: row
                .expires_on
                .as_deref()
                .and_then(|d| forms::expiry(d, today)),
            verified: row.verified_at.map(clock::display),
            updated: clock::display(row.updated_at),
            updated_by: row.updated_by.clone(),
        }
    }
}

/// The values a credential form shows again. There is no token here on
/// purpose: a token is never put back into a page.
#[derive(Default)]
pub struct CredentialValues {
    host: String,
    robot: String,
    expires_on: String,
    never_expires: bool,
    check_repository: String,
    save_anyway: bool,
}

impl CredentialValues {
    fn from_form(form: &CredentialForm) -> Self {
        Self {
            host: form.host.trim().to_owned(),
            robot: form.robot.trim().to_owned(),
            expires_on: form.expires_on.trim().to_owned(),
            never_expires: form.never_expires.is_some(),
            check_repository: form.check_repository.trim().to_owned(),
            save_anyway: form.save_anyway.is_some(),
        }
    }
}

#[derive(Template)]
#[template(path = "registries/credentials.html")]
struct CredentialsPage {
    layout: Layout,
    namespace: String,
    credentials: Vec<CredentialView>,
    values: CredentialValues,
    errors: FieldErrors,
    allowed: String,
    warn_days: i64,
}

async fn credentials_page_with(
    state: &AppState,
    user: &CurrentUser,
    ns: &str,
    values: CredentialValues,
    errors: FieldErrors,
) -> AppResult<String> {
    let today = today();
    let credentials = store::list_credentials(&state.db, ns)
        .await?
        .iter()
        .map(|row| CredentialView::new(row, today))
        .collect();
    Ok(CredentialsPage {
        layout: Layout::for_user(&state.db, user).await?,
        namespace: ns.to_owned(),
        credentials,
        values,
        errors,
        allowed: state.registry.policy.allowed().join(", "),
        warn_days: forms::EXPIRY_WARN_DAYS,
    }
    .render()?)
}

/// GET: the namespace's credentials and the form to add one.
pub async fn credentials_page(
    State(state): State<AppState>,
    NamespaceMember {
        user,
        namespace: ns,
    }: NamespaceMember,
) -> AppResult<Response> {
    // Harbor's robots live 30 days unless their maker chose otherwise.
    let values = CredentialValues {
        host: state.registry.policy.default_host.clone(),
        expires_on: forms::default_expiry(today()),
        ..CredentialValues::default()
    };
    let html = credentials_page_with(&state, &user, &ns, values, FieldErrors::default()).await?;
    Ok(Html(html).into_response())
}

/// Which field a registry's refusal belongs beside.
fn field_for(error: &RegistryError) -> &'static str {
    match error {
        RegistryError::BadCredentials { .. } => "token",
        RegistryError::NoAccess { .. } | RegistryError::UnknownRepository { .. } => {
            "check_repository"
        }
        _ => "host",
    }
}

/// Asks the registry whether the login works (and can pull the repository).
async fn check_credential(
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

fn not_allowed_message(state: &AppState) -> String {
    format!(
        "Berth may only contact these registries: {}.",
        state.registry.policy.allowed().join(", ")
    )
}

/// One credential save (create or replace), for its audit rows.
struct Attempt<'a> {
    state: &'a AppState,
    user: &'a CurrentUser,
    ns: &'a str,
    action: &'static str,
    target: &'a str,
}

impl Attempt<'_> {
    /// When the registry refused the login and the person did not tick "save
    /// anyway": the failure is audited and its message placed beside its field.
    async fn refused(
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
    async fn saved(&self, check: &Result<(), RegistryError>) {
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

/// POST: validate, check against the registry, seal and save.
pub async fn credential_create(
    State(state): State<AppState>,
    NamespaceMember {
        user,
        namespace: ns,
    }: NamespaceMember,
    Form(form): Form<CredentialForm>,
) -> AppResult<Response> {
    let values = CredentialValues::from_form(&form);
    let valid = match form.validate(today()) {
        Ok(valid) if state.registry.policy.is_allowed(&valid.host) => valid,
        Ok(_) => {
            let mut errors = FieldErrors::default();
            errors.add("host", not_allowed_message(&state));
            return Ok(unprocessable_html(
                credentials_page_with(&state, &user, &ns, values, errors).await?,
            ));
        }
        Err(errors) => {
            return Ok(unprocessable_html(
                credentials_page_with(&state, &user, &ns, values, errors).await?,
            ));
        }
    };
    let target = format!("{} on {}", valid.robot, valid.host);
    let login = Login {
        host: valid.host.clone(),
        robot: valid.robot.clone(),
        token: valid.token.clone(),
    };
    let check = check_credential(&state, &login, valid.check_repository.as_deref()).await;
    let attempt = Attempt {
        state: &state,
        user: &user,
        ns: &ns,
        action: "credential.create",
        target: &target,
    };
    if let Some(errors) = attempt.refused(&check, valid.save_anyway).await {
        return Ok(unprocessable_html(
            credentials_page_with(&state, &user, &ns, values, errors).await?,
        ));
    }
    let write = CredentialWrite {
        robot: &valid.robot,
        token: &valid.token,
        expires_on: valid.expires_on.as_deref(),
        expiry_source: valid.expiry_source.map(ExpirySource::as_str),
        verified: check.is_ok(),
        actor: &user.email,
    };
    match store::insert_credential(&state.db, &state.keys, &ns, &valid.host, &write).await {
        Ok(id) => {
            attempt.saved(&check).await;
            tracing::info!(namespace = %ns, credential = id, robot = %valid.robot, host = %valid.host, verified = check.is_ok(), "credential saved");
            let message = match &check {
                Ok(()) => format!(
                    "Saved the credential for {}: the registry accepted it.",
                    valid.robot
                ),
                Err(error) => format!(
                    "Saved the credential for {} without a successful check: {error}",
                    valid.robot
                ),
            };
            let kind = if check.is_ok() {
                FlashKind::Success
            } else {
                FlashKind::Info
            };
            flash(&state.db, &user, kind, &message).await?;
            Ok(see_other(&format!("/namespaces/{ns}/registry")))
        }
        Err(WriteError::Duplicate) => {
            let mut errors = FieldErrors::default();
            errors.add(
                "robot",
                "This namespace already has a credential for this robot on this registry: \
                 replace its token below instead.",
            );
            Ok(unprocessable_html(
                credentials_page_with(&state, &user, &ns, values, errors).await?,
            ))
        }
        Err(WriteError::Other(error)) => {
            audit::Entry::new(&user.email, "credential.create")
                .in_namespace(&ns)
                .on(&target)
                .outcome(Outcome::Failed, Some("saving failed"))
                .record(&state.db)
                .await;
            Err(AppError::Internal(error.context("saving a credential")))
        }
    }
}

#[derive(Template)]
#[template(path = "registries/replace.html")]
struct ReplacePage {
    layout: Layout,
    namespace: String,
    credential: CredentialView,
    values: CredentialValues,
    errors: FieldErrors,
    warn_days: i64,
}

async fn load_credential(state: &AppState, ns: &str, id: i64) -> AppResult<CredentialRow> {
    store::credential(&state.db, ns, id)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("There is no such credential in {ns}.")))
}

async fn replace_page_with(
    state: &AppState,
    user: &CurrentUser,
    ns: &str,
    row: &CredentialRow,
    values: CredentialValues,
    errors: FieldErrors,
) -> AppResult<String> {
    Ok(ReplacePage {
        layout: Layout::for_user(&state.db, user).await?,
        namespace: ns.to_owned(),
        credential: CredentialView::new(row, today()),
        values,
        errors,
        warn_days: forms::EXPIRY_WARN_DAYS,
    }
    .render()?)
}

/// GET: the form to replace a credential's robot, token and expiry.
pub async fn replace_form(
    State(state): State<AppState>,
    NamespaceMember {
        user,
        namespace: ns,
    }: NamespaceMember,
    Path((_, id)): Path<(String, i64)>,
) -> AppResult<Response> {
    let row = load_credential(&state, &ns, id).await?;
    // A replacement is a new token: Harbor gives it a new 30 days (unless
    // the robot was made never to expire).
    let never = row.expiry_source.as_deref() == Some(ExpirySource::Never.as_str());
    let values = CredentialValues {
        host: row.host.clone(),
        robot: row.robot.clone(),
        expires_on: forms::default_expiry(today()),
        never_expires: never,
        ..CredentialValues::default()
    };
    let html = replace_page_with(&state, &user, &ns, &row, values, FieldErrors::default()).await?;
    Ok(Html(html).into_response())
}

/// POST: check and re-seal the new token in the same row.
pub async fn replace_submit(
    State(state): State<AppState>,
    NamespaceMember {
        user,
        namespace: ns,
    }: NamespaceMember,
    Path((_, id)): Path<(String, i64)>,
    Form(mut form): Form<CredentialForm>,
) -> AppResult<Response> {
    let row = load_credential(&state, &ns, id).await?;
    // The host of a saved credential stays; a new registry is a new credential.
    form.host = row.host.clone();
    let values = CredentialValues::from_form(&form);
    let valid = match form.validate(today()) {
        Ok(valid) => valid,
        Err(errors) => {
            return Ok(unprocessable_html(
                replace_page_with(&state, &user, &ns, &row, values, errors).await?,
            ));
        }
    };
    let target = format!("{} on {}", valid.robot, row.host);
    let login = Login {
        host: row.host.clone(),
        robot: valid.robot.clone(),
        token: valid.token.clone(),
    };
    let check = check_credential(&state, &login, valid.check_repository.as_deref()).await;
    let attempt = Attempt {
        state: &state,
        user: &user,
        ns: &ns,
        action: "credential.replace",
        target: &target,
    };
    if let Some(errors) = attempt.refused(&check, valid.save_anyway).await {
        return Ok(unprocessable_html(
            replace_page_with(&state, &user, &ns, &row, values, errors).await?,
        ));
    }
    let write = CredentialWrite {
        robot: &valid.robot,
        token: &valid.token,
        expires_on: valid.expires_on.as_deref(),
        expiry_source: valid.expiry_source.map(ExpirySource::as_str),
        verified: check.is_ok(),
        actor: &user.email,
    };
    match store::replace_credential(&state.db, &state.keys, &ns, id, &write).await {
        Ok(true) => {
            attempt.saved(&check).await;
            let mut message = match &check {
                Ok(()) => format!("Replaced the credential for {}.", valid.robot),
                Err(error) => format!(
                    "Replaced the credential for {} without a successful check: {error}",
                    valid.robot
                ),
            };
            let mut kind = FlashKind::Success;
            let users = state
                .kube
                .caches()
                .map(|c| super::pull::workloads_using(c, &ns, id))
                .unwrap_or_default();
            let secret = super::pull::secret_name(id);
            match refresh_pull_secret(&state, &user, &ns, id, &login, !users.is_empty()).await {
                Ok(true) if users.is_empty() => message.push_str(&format!(
                    " Its image pull Secret {secret} now carries the new token: new pods pull with it."
                )),
                Ok(true) => message.push_str(&format!(
                    " Its image pull Secret {secret} now carries the new token for {}: pods that start from now on pull with it (restart a workload whose pull failed).",
                    users.join(", ")
                )),
                Ok(false) => {}
                Err(error) => {
                    kind = FlashKind::Error;
                    message.push_str(&format!(
                        " But the image pull Secret {secret} in {ns} still has the old token: {error}. Deploy the workload again to rewrite it."
                    ));
                }
            }
            flash(&state.db, &user, kind, &message).await?;
            Ok(see_other(&format!("/namespaces/{ns}/registry")))
        }
        Ok(false) => Err(AppError::NotFound(format!(
            "There is no such credential in {ns}."
        ))),
        Err(WriteError::Duplicate) => {
            let mut errors = FieldErrors::default();
            errors.add(
                "robot",
                "Another credential of this namespace already uses this robot name.",
            );
            Ok(unprocessable_html(
                replace_page_with(&state, &user, &ns, &row, values, errors).await?,
            ))
        }
        Err(WriteError::Other(error)) => {
            Err(AppError::Internal(error.context("replacing a credential")))
        }
    }
}

/// Rewrites the credential's pull Secret in the namespace, as the person.
async fn refresh_pull_secret(
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

/// `GET /namespaces/{ns}/credentials/{id}/delete`: asks first.
pub async fn credential_delete_form(
    State(state): State<AppState>,
    NamespaceMember {
        user,
        namespace: ns,
    }: NamespaceMember,
    Path((_, id)): Path<(String, i64)>,
) -> AppResult<Response> {
    let row = load_credential(&state, &ns, id).await?;
    render(&ConfirmPage {
        layout: Layout::for_user(&state.db, &user).await?,
        title: format!("Delete the credential for {}?", row.robot),
        question: format!(
            "Berth forgets the robot account {} on {} and its token. The registry keeps the robot account.",
            row.robot, row.host
        ),
        details: vec![
            "Images registered with it must be removed first; workloads already running keep their pull Secret.".to_owned(),
        ],
        action: format!("/namespaces/{ns}/credentials/{id}/delete"),
        hidden: Vec::new(),
        button: "Delete the credential".to_owned(),
        cancel: format!("/namespaces/{ns}/registry"),
    })
}

/// `POST /namespaces/{ns}/credentials/{id}/delete`: delete a credential no
/// image uses.
pub async fn credential_delete(
    State(state): State<AppState>,
    NamespaceMember {
        user,
        namespace: ns,
    }: NamespaceMember,
    Path((_, id)): Path<(String, i64)>,
) -> AppResult<Response> {
    let row = load_credential(&state, &ns, id).await?;
    let target = format!("{} on {}", row.robot, row.host);
    match store::delete_credential(&state.db, &ns, id).await? {
        DeleteOutcome::Deleted => {
            audit::Entry::new(&user.email, "credential.delete")
                .in_namespace(&ns)
                .on(&target)
                .outcome(Outcome::Ok, None)
                .record(&state.db)
                .await;
            flash(
                &state.db,
                &user,
                FlashKind::Success,
                &format!("Deleted the credential for {}.", row.robot),
            )
            .await?;
        }
        DeleteOutcome::InUse(count) => {
            let message = format!(
                "The credential for {} is used by {count} registered image(s): delete those \
                 first, or replace its token instead.",
                row.robot
            );
            audit::Entry::new(&user.email, "credential.delete")
                .in_namespace(&ns)
                .on(&target)
                .outcome(Outcome::Denied, Some(&message))
                .record(&state.db)
                .await;
            flash(&state.db, &user, FlashKind::Error, &message).await?;
        }
        DeleteOutcome::NotFound => {
            return Err(AppError::NotFound(format!(
                "There is no such credential in {ns}."
            )));
        }
    }
    Ok(see_other(&format!("/namespaces/{ns}/registry")))
}

/// An image as the pages show it.
pub struct ImageView {
    id: i64,
    reference: String,
    robot: String,
    digest: Option<String>,
    checked: Option<String>,
    check_error: Option<String>,
}

impl ImageView {
    fn new(row: &ImageRow) -> Self {
        Self {
            id: row.id,
            reference: row.reference(),
            robot: row.robot.clone(),
            digest: row.digest.clone(),
            checked: row.checked_at.map(clock::display),
            check_error: row.check_error.clone(),
        }
    }
}

/// A credential in the image form's drop-down.
pub struct CredentialOption {
    id: i64,
    label: String,
    selected: bool,
}

/// The values the image form shows again.
#[derive(Default)]
pub struct ImageValues {
    reference: String,
    credential_id: String,
    register_anyway: bool,
}

#[derive(Template)]
#[template(path = "registries/images.html")]
struct ImagesPage {
    layout: Layout,
    namespace: String,
    images: Vec<ImageView>,
    credentials: Vec<CredentialOption>,
    values: ImageValues,
    errors: FieldErrors,
    example: String,
}

async fn images_page_with(
    state: &AppState,
    user: &CurrentUser,
    ns: &str,
    values: ImageValues,
    errors: FieldErrors,
) -> AppResult<String> {
    let images = store::list_images(&state.db, ns)
        .await?
        .iter()
        .map(ImageView::new)
        .collect();
    let rows = store::list_credentials(&state.db, ns).await?;
    let only_one = rows.len() == 1;
    let credentials = rows
        .iter()
        .map(|row| CredentialOption {
            id: row.id,
            label: format!("{} on {}", row.robot, row.host),
            selected: only_one || values.credential_id == row.id.to_string(),
        })
        .collect();
    Ok(ImagesPage {
        layout: Layout::for_user(&state.db, user).await?,
        namespace: ns.to_owned(),
        images,
        credentials,
        values,
        errors,
        example: format!("{}/{ns}/app:1.0", state.registry.policy.default_host),
    }
    .render()?)
}

/// GET: the namespace's images and the form to register one.
pub async fn images_page(
    State(state): State<AppState>,
    NamespaceMember {
        user,
        namespace: ns,
    }: NamespaceMember,
) -> AppResult<Response> {
    let html = images_page_with(
        &state,
        &user,
        &ns,
        ImageValues::default(),
        FieldErrors::default(),
    )
    .await?;
    Ok(Html(html).into_response())
}

/// What asking the registry about an image found.
struct Checked {
    digest: String,
    media_type: Option<String>,
    tags: Vec<String>,
}

/// Resolves the image's tag (or digest) and lists the repository's tags.
async fn check_image(
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

/// POST: parse the reference, resolve it through the credential, register it.
pub async fn image_register(
    State(state): State<AppState>,
    NamespaceMember {
        user,
        namespace: ns,
    }: NamespaceMember,
    Form(form): Form<ImageForm>,
) -> AppResult<Response> {
    let values = ImageValues {
        reference: form.reference.trim().to_owned(),
        credential_id: form.credential_id.trim().to_owned(),
        register_anyway: form.register_anyway.is_some(),
    };
    let invalid = |errors: FieldErrors, values: ImageValues| {
        let state = state.clone();
        let user = user.clone();
        let ns = ns.clone();
        async move {
            Ok::<_, AppError>(unprocessable_html(
                images_page_with(&state, &user, &ns, values, errors).await?,
            ))
        }
    };
    let (image, credential_id) = match form.validate(&state.registry.policy.default_host) {
        Ok(valid) => valid,
        Err(errors) => return invalid(errors, values).await,
    };
    let Some(credential) = store::credential(&state.db, &ns, credential_id).await? else {
        let mut errors = FieldErrors::default();
        errors.add("credential_id", "Pick one of this namespace's credentials.");
        return invalid(errors, values).await;
    };
    if image.host != credential.host {
        let mut errors = FieldErrors::default();
        errors.add(
            "reference",
            format!(
                "This image is on {} but the credential is for {}: pick a credential for {} \
                 or save one first.",
                image.host, credential.host, image.host
            ),
        );
        return invalid(errors, values).await;
    }
    let target = image.to_string();
    let check = check_image(
        &state,
        &ns,
        &credential,
        &image.repository,
        image.reference(),
    )
    .await?;
    if let Err(error) = &check
        && !values.register_anyway
    {
        audit::Entry::new(&user.email, "image.register")
            .in_namespace(&ns)
            .on(&target)
            .outcome(Outcome::Failed, Some(&error.to_string()))
            .record(&state.db)
            .await;
        let field = match error {
            RegistryError::BadCredentials { .. } | RegistryError::NoAccess { .. } => {
                "credential_id"
            }
            _ => "reference",
        };
        let mut errors = FieldErrors::default();
        errors.add(field, error.to_string());
        return invalid(errors, values).await;
    }
    let id = insert_checked(&state, &ns, &user, &image, &credential, &check).await;
    match id {
        Ok(id) => {
            let detail = check.as_ref().err().map(ToString::to_string);
            audit::Entry::new(&user.email, "image.register")
                .in_namespace(&ns)
                .on(&target)
                .outcome(Outcome::Ok, detail.as_deref())
                .record(&state.db)
                .await;
            let message = match &check {
                Ok(checked) => format!("Registered {target}: it resolves to {}.", checked.digest),
                Err(error) => format!("Registered {target} without a successful check: {error}"),
            };
            flash(&state.db, &user, FlashKind::Success, &message).await?;
            Ok(see_other(&format!("/namespaces/{ns}/images/{id}")))
        }
        Err(WriteError::Duplicate) => {
            let mut errors = FieldErrors::default();
            errors.add(
                "reference",
                "This image is already registered in this namespace.",
            );
            invalid(errors, values).await
        }
        Err(WriteError::Other(error)) => {
            Err(AppError::Internal(error.context("registering an image")))
        }
    }
}

async fn insert_checked(
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

#[derive(Template)]
#[template(path = "registries/image.html")]
struct ImagePage {
    layout: Layout,
    namespace: String,
    image: ImageView,
    media_type: String,
    tags: Vec<String>,
    current_tag: String,
    steps: Vec<Step>,
    pull: Option<String>,
}

async fn load_image(state: &AppState, ns: &str, id: i64) -> AppResult<ImageRow> {
    store::image(&state.db, ns, id)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("There is no such image in {ns}.")))
}

/// GET: one image: digest, tags, and the docker commands to push it.
pub async fn image_page(
    State(state): State<AppState>,
    NamespaceMember {
        user,
        namespace: ns,
    }: NamespaceMember,
    Path((_, id)): Path<(String, i64)>,
) -> AppResult<Response> {
    let row = load_image(&state, &ns, id).await?;
    let steps = forms::docker_steps(&row.host, &row.repository, row.tag.as_deref(), &row.robot);
    let pull = row.digest.as_ref().map(|digest| {
        format!(
            "docker pull {}",
            forms::shell_quote(&format!("{}/{}@{digest}", row.host, row.repository))
        )
    });
    render(&ImagePage {
        layout: Layout::for_user(&state.db, &user).await?,
        namespace: ns.clone(),
        image: ImageView::new(&row),
        media_type: row.media_type.clone().unwrap_or_default(),
        tags: row.tag_list().into_iter().map(str::to_owned).collect(),
        current_tag: row.tag.clone().unwrap_or_default(),
        steps,
        pull,
    })
}

/// POST: ask the registry again; record the digest (or why it failed).
pub async fn image_recheck(
    State(state): State<AppState>,
    NamespaceMember {
        user,
        namespace: ns,
    }: NamespaceMember,
    Path((_, id)): Path<(String, i64)>,
) -> AppResult<Response> {
    let row = load_image(&state, &ns, id).await?;
    let credential = load_credential(&state, &ns, row.credential_id).await?;
    let check = check_image(&state, &ns, &credential, &row.repository, row.lookup()).await?;
    let error = check.as_ref().err().map(ToString::to_string);
    store::update_check(
        &state.db,
        id,
        &store::CheckResult {
            resolved: check
                .as_ref()
                .ok()
                .map(|c| (c.digest.as_str(), c.media_type.as_deref())),
            tags: check.as_ref().ok().map(|c| c.tags.as_slice()),
            error: error.as_deref(),
        },
    )
    .await?;
    let (kind, message) = match &check {
        Ok(checked) if row.digest.as_deref() == Some(checked.digest.as_str()) => (
            FlashKind::Success,
            format!("Checked: {} is still {}.", row.lookup(), checked.digest),
        ),
        Ok(checked) => (
            FlashKind::Info,
            format!(
                "Checked: {} now resolves to {}.",
                row.lookup(),
                checked.digest
            ),
        ),
        Err(error) => (FlashKind::Error, format!("The check failed: {error}")),
    };
    flash(&state.db, &user, kind, &message).await?;
    Ok(see_other(&format!("/namespaces/{ns}/images/{id}")))
}

/// POST: forget an image registration (nothing in the registry changes).
/// `GET /namespaces/{ns}/images/{id}/delete`: asks first.
pub async fn image_delete_form(
    State(state): State<AppState>,
    NamespaceMember {
        user,
        namespace: ns,
    }: NamespaceMember,
    Path((_, id)): Path<(String, i64)>,
) -> AppResult<Response> {
    let row = load_image(&state, &ns, id).await?;
    let reference = row.reference();
    render(&ConfirmPage {
        layout: Layout::for_user(&state.db, &user).await?,
        title: format!("Remove {reference} from Berth?"),
        question: format!(
            "{reference} is no longer offered on the deploy form of {ns}. The registry still has the image."
        ),
        details: vec!["Workloads already running it keep running.".to_owned()],
        action: format!("/namespaces/{ns}/images/{id}/delete"),
        hidden: Vec::new(),
        button: "Remove the image".to_owned(),
        cancel: format!("/namespaces/{ns}/images/{id}"),
    })
}

/// `POST /namespaces/{ns}/images/{id}/delete`.
pub async fn image_delete(
    State(state): State<AppState>,
    NamespaceMember {
        user,
        namespace: ns,
    }: NamespaceMember,
    Path((_, id)): Path<(String, i64)>,
) -> AppResult<Response> {
    let row = load_image(&state, &ns, id).await?;
    let target = row.reference();
    if !store::delete_image(&state.db, &ns, id).await? {
        return Err(AppError::NotFound(format!(
            "There is no such image in {ns}."
        )));
    }
    audit::Entry::new(&user.email, "image.delete")
        .in_namespace(&ns)
        .on(&target)
        .outcome(Outcome::Ok, None)
        .record(&state.db)
        .await;
    flash(
        &state.db,
        &user,
        FlashKind::Success,
        &format!("Removed {target} from this namespace (the registry still has it)."),
    )
    .await?;
    Ok(see_other(&format!("/namespaces/{ns}/images")))
}

#[cfg(test)]
mod render_tests {
    //! Every registries template renders with sample data (a broken page fails CI).
    use super::*;

    fn failed_form() -> FieldErrors {
        let mut errors = FieldErrors::default();
        errors.add("robot", "Bad robot.");
        errors.add("reference", "Bad reference.");
        errors
    }

    fn credential() -> CredentialView {
        CredentialView {
            id: 3,
            host: "reg.example.edu".into(),
            robot: "robot$cs101+ci".into(),
            expires_on: "2026-12-01".into(),
            expiry: Some(Expiry {
                text: "expires in 5 days".into(),
                level: "warn",
            }),
            never: false,
            from_token: false,
            verified: None,
            updated: "2026-11-30 10:00 UTC".into(),
            updated_by: "a@purdue.edu".into(),
        }
    }

    #[test]
    fn every_page_renders_and_keeps_values_but_never_a_token() {
        let values = || CredentialValues {
            host: "reg.example.edu".into(),
            robot: "robot$cs101+ci".into(),
            ..CredentialValues::default()
        };
        let list = CredentialsPage {
            layout: Layout::bare(),
            namespace: "cs101".into(),
            credentials: vec![credential()],
            values: values(),
            errors: failed_form(),
            allowed: "reg.example.edu".into(),
            warn_days: 14,
        }
        .render()
        .expect("credentials page");
        assert!(list.contains("expires in 5 days") && list.contains("badge-warn"));
        assert!(list.contains("error-summary") && list.contains("Bad robot."));
        assert!(
            list.contains("name=\"token\" value=\"\""),
            "token field always empty"
        );

        let replace = ReplacePage {
            layout: Layout::bare(),
            namespace: "cs101".into(),
            credential: credential(),
            values: values(),
            errors: FieldErrors::default(),
            warn_days: 14,
        }
        .render()
        .expect("replace page");
        assert!(replace.contains("/namespaces/cs101/credentials/3/replace"));
        assert!(!replace.contains("error-summary"));

        let image = ImageView {
            id: 9,
            reference: "reg.example.edu/cs101/app:1.0".into(),
            robot: "robot$cs101+ci".into(),
            digest: Some(format!("sha256:{}", "a".repeat(64))),
            checked: Some("2026-11-30 10:00 UTC".into()),
            check_error: Some("The registry could not be reached.".into()),
        };
        let images = ImagesPage {
            layout: Layout::bare(),
            namespace: "cs101".into(),
            images: vec![ImageView { ..image }],
            credentials: vec![CredentialOption {
                id: 3,
                label: "robot$cs101+ci on reg.example.edu".into(),
                selected: true,
            }],
            values: ImageValues::default(),
            errors: failed_form(),
            example: "reg.example.edu/cs101/app:1.0".into(),
        }
        .render()
        .expect("images page");
        assert!(images.contains("<option value=\"3\" selected>"));
        assert!(images.contains("Bad reference."));

        let page = ImagePage {
            layout: Layout::bare(),
            namespace: "cs101".into(),
            image: ImageView {
                id: 9,
                reference: "reg.example.edu/cs101/app:1.0".into(),
                robot: "robot$cs101+ci".into(),
                digest: None,
                checked: None,
                check_error: None,
            },
            media_type: String::new(),
            tags: vec!["1.0".into(), "2.0".into()],
            current_tag: "1.0".into(),
            steps: forms::docker_steps(
                "reg.example.edu",
                "cs101/app",
                Some("1.0"),
                "robot$cs101+ci",
            ),
            pull: None,
        }
        .render()
        .expect("image page");
        assert!(
            page.contains("--username &#x27;robot$cs101+ci&#x27;")
                || page.contains("--username &#39;robot$cs101+ci&#39;"),
            "{page}"
        );
        assert!(page.contains("not resolved yet"));
    }
}
