//! The credential pages of a namespace: list, add, replace, delete.

use askama::Template;
use axum::{
    extract::State,
    response::{Html, IntoResponse, Response},
};

use crate::web::{Form, Path};

use super::{
    client::Login,
    forms::{self, CredentialForm, ExpirySource, FieldErrors},
    store::{self, CredentialRow, CredentialWrite, DeleteOutcome, WriteError},
};
use super::{
    ops::{Attempt, check_credential, load_credential, not_allowed_message, refresh_pull_secret},
    view::{CredentialValues, CredentialView, CredentialsPage, ReplacePage, today},
};
use crate::{
    app::AppState,
    audit::{self, Outcome},
    auth::{CurrentUser, NamespaceMember},
    error::{AppError, AppResult},
    web::{ConfirmPage, FlashKind, Layout, flash, render, see_other, unprocessable_html, urls},
};

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
            Ok(see_other(&urls::registry(&ns)))
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
            Ok(see_other(&urls::registry(&ns)))
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
        action: urls::credential_delete(&ns, id),
        hidden: Vec::new(),
        button: "Delete the credential".to_owned(),
        cancel: urls::registry(&ns),
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
    Ok(see_other(&urls::registry(&ns)))
}
