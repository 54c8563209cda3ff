//! The image pages of a namespace: list, register, show with docker
//! commands, re-check, delete.

use askama::Template;
use axum::{
    extract::State,
    response::{Html, IntoResponse, Response},
};

use crate::web::{Form, Path};

use super::{
    client::RegistryError,
    forms::{self, FieldErrors, ImageForm},
    store::{self, WriteError},
};
use super::{
    ops::{check_image, insert_checked, load_credential, load_image},
    view::{CredentialOption, ImagePage, ImageValues, ImageView, ImagesPage},
};
use crate::{
    app::AppState,
    audit::{self, Outcome},
    auth::{CurrentUser, NamespaceMember},
    error::{AppError, AppResult},
    web::{ConfirmPage, FlashKind, Layout, flash, render, see_other, unprocessable_html, urls},
};

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
            Ok(see_other(&urls::image(&ns, id)))
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
    Ok(see_other(&urls::image(&ns, id)))
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
        action: urls::image_delete(&ns, id),
        hidden: Vec::new(),
        button: "Remove the image".to_owned(),
        cancel: urls::image(&ns, id),
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
    Ok(see_other(&urls::images(&ns)))
}
