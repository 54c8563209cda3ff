//! The admin pages: the overview of every Berth namespace, creating and
//! editing one (quota and container defaults), its members, deleting it.
//!
//! Every write goes through the client that impersonates the admin (groups
//! `berth:users` and `berth:admins`), so the apiserver checks it against
//! `berth-admin`, which admins hold only in the namespaces Berth made (the
//! `berth-admins` RoleBinding written at creation); each ends with an audit
//! row, whatever the outcome.
//!
//! The handlers are thin: [`super::spec`] parses the forms, [`super::ops`]
//! acts on the cluster and the store, [`super::view`] builds the pages.

use std::collections::HashMap;

use axum::{
    Form,
    extract::{Path, Query, State},
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
};
use serde::Deserialize;

use super::{
    membership::{self, Role},
    objects, ops, spec,
    usage::SortKey,
    view::{self, AdminIndexPage},
};
use crate::{
    app::AppState,
    audit::{self},
    auth::AdminUser,
    error::{AppError, AppResult},
    kube::KubeError,
    web::{FieldErrors, FlashKind, Layout, flash, render, render_with_status, urls},
};

/// `GET /admin`: where the admin pages are.
pub async fn admin_index(
    State(state): State<AppState>,
    AdminUser(user): AdminUser,
) -> AppResult<Response> {
    render(&AdminIndexPage {
        layout: Layout::for_user(&state.db, &user).await?,
    })
}

// ------------------------------------------------------------------- overview

/// Query of the overview: sort column and order, page, and a name filter.
#[derive(Debug, Default, Deserialize)]
pub struct SortQuery {
    sort: Option<String>,
    dir: Option<String>,
    page: Option<String>,
    q: Option<String>,
}

/// `GET /admin/namespaces`: the overview, a page at a time, sortable by any
/// column and filtered by name.
pub async fn overview(
    State(state): State<AppState>,
    AdminUser(user): AdminUser,
    Query(query): Query<SortQuery>,
) -> AppResult<Response> {
    // An unknown column sorts by name.
    let sort = query
        .sort
        .as_deref()
        .and_then(SortKey::parse)
        .unwrap_or_default();
    let descending = query.dir.as_deref() == Some("desc");
    let filter = query.q.unwrap_or_default().trim().to_lowercase();
    let asked = query
        .page
        .and_then(|p| p.parse::<usize>().ok())
        .unwrap_or(1)
        .max(1);
    let (status, overview) =
        view::overview_page(&state, &user, sort, descending, filter, asked).await?;
    render_with_status(status, &overview)
}

// ------------------------------------------------------------ create and edit

/// `GET /admin/namespaces/new`: the form, filled with the default quota.
pub async fn new_form(
    State(state): State<AppState>,
    AdminUser(user): AdminUser,
) -> AppResult<Response> {
    let values = view::values_of(&state.default_limits);
    let cluster_error = state.kube.caches().err().map(|e| e.to_string());
    render_with_status(
        StatusCode::OK,
        &view::form_page(
            &state,
            &user,
            false,
            &values,
            spec::field_errors(),
            cluster_error,
        )
        .await?,
    )
}

/// `POST /admin/namespaces`: create a namespace with its quota.
pub async fn create_submit(
    State(state): State<AppState>,
    AdminUser(user): AdminUser,
    Form(values): Form<HashMap<String, String>>,
) -> AppResult<Response> {
    let spec = match spec::parse_namespace(&values, None) {
        Ok(spec) => spec,
        Err(errors) => {
            let form = view::form_page(&state, &user, false, &values, errors, None).await?;
            return render_with_status(StatusCode::UNPROCESSABLE_ENTITY, &form);
        }
    };
    let result = match state.kube.client_for(&user.identity()) {
        Ok(client) => ops::create_namespace(&client, &spec).await,
        Err(error) => Err(error),
    };
    if result.is_ok() {
        // The namespace is new, so nothing stored under its name is its.
        membership::forget_namespace(&state.db, &spec.name).await?;
    }
    let summary = ops::quota_summary(&spec.limits);
    audit::Entry::new(&user.email, "namespace.create")
        .in_namespace(&spec.name)
        .on(&spec.name)
        .record_result(&state.db, result.as_ref().map(|()| Some(summary.as_str())))
        .await;
    match result {
        Ok(()) => {
            if let Ok(caches) = state.kube.caches() {
                caches
                    .wait_for_namespace(&spec.name, std::time::Duration::from_secs(5))
                    .await;
            }
            flash(
                &state.db,
                &user,
                FlashKind::Success,
                &format!(
                    "Namespace {} created with its quota. Add its members below.",
                    spec.name
                ),
            )
            .await?;
            Ok(Redirect::to(&urls::admin_namespace(&spec.name)).into_response())
        }
        Err(error) => {
            let status = error.status();
            let mut errors = spec::field_errors();
            if matches!(&error, KubeError::Api { code: 409, .. }) {
                errors.add(
                    "name",
                    "A namespace of that name exists already (or is still being deleted); pick another.",
                );
            }
            let form = view::form_page(
                &state,
                &user,
                false,
                &values,
                errors,
                Some(error.to_string()),
            )
            .await?;
            render_with_status(status, &form)
        }
    }
}

/// `GET /admin/namespaces/{name}/edit`: the form with what the cluster has.
pub async fn edit_form(
    State(state): State<AppState>,
    AdminUser(user): AdminUser,
    Path(name): Path<String>,
) -> AppResult<Response> {
    let namespace = ops::managed_namespace(&state, &name)?;
    let caches = state.kube.caches()?;
    let mut values = view::values_of(&ops::current_limits(caches, &name));
    values.insert("name".to_owned(), name.clone());
    values.insert(
        "description".to_owned(),
        objects::description_of(&namespace),
    );
    render_with_status(
        StatusCode::OK,
        &view::form_page(&state, &user, true, &values, spec::field_errors(), None).await?,
    )
}

/// `POST /admin/namespaces/{name}/edit`: change description, quota, defaults.
pub async fn edit_submit(
    State(state): State<AppState>,
    AdminUser(user): AdminUser,
    Path(name): Path<String>,
    Form(mut values): Form<HashMap<String, String>>,
) -> AppResult<Response> {
    ops::managed_namespace(&state, &name)?;
    values.insert("name".to_owned(), name.clone());
    let spec = match spec::parse_namespace(&values, Some(&name)) {
        Ok(spec) => spec,
        Err(errors) => {
            let form = view::form_page(&state, &user, true, &values, errors, None).await?;
            return render_with_status(StatusCode::UNPROCESSABLE_ENTITY, &form);
        }
    };
    let result = match state.kube.client_for(&user.identity()) {
        Ok(client) => ops::update_namespace(&client, &spec).await,
        Err(error) => Err(error),
    };
    let summary = ops::quota_summary(&spec.limits);
    audit::Entry::new(&user.email, "namespace.update")
        .in_namespace(&name)
        .on(&name)
        .record_result(&state.db, result.as_ref().map(|()| Some(summary.as_str())))
        .await;
    match result {
        Ok(()) => {
            flash(
                &state.db,
                &user,
                FlashKind::Success,
                &format!("Saved the quota of {name}."),
            )
            .await?;
            Ok(Redirect::to(&urls::admin_namespace(&name)).into_response())
        }
        Err(error) => {
            let form = view::form_page(
                &state,
                &user,
                true,
                &values,
                spec::field_errors(),
                Some(error.to_string()),
            )
            .await?;
            render_with_status(error.status(), &form)
        }
    }
}

// --------------------------------------------------------- detail and members

/// `GET /admin/namespaces/{name}`: usage, quota, members.
pub async fn show(
    State(state): State<AppState>,
    AdminUser(user): AdminUser,
    Path(name): Path<String>,
) -> AppResult<Response> {
    let page_data = view::show_page(
        &state,
        &user,
        &name,
        &HashMap::new(),
        FieldErrors::default(),
        None,
    )
    .await?;
    render_with_status(StatusCode::OK, &page_data)
}

/// `POST /admin/namespaces/{name}/members`: add someone, or change their role.
pub async fn add_member(
    State(state): State<AppState>,
    AdminUser(user): AdminUser,
    Path(name): Path<String>,
    Form(values): Form<HashMap<String, String>>,
) -> AppResult<Response> {
    ops::managed_namespace(&state, &name)?;
    let member = match spec::parse_member(&values) {
        Ok(member) => member,
        Err(errors) => {
            let data = view::show_page(&state, &user, &name, &values, errors, None).await?;
            return render_with_status(StatusCode::UNPROCESSABLE_ENTITY, &data);
        }
    };
    // The cluster first: a membership Berth stores but the apiserver never
    // got would show access that does not exist.
    let result = match state.kube.client_for(&user.identity()) {
        Ok(client) => ops::bind_member(&client, &name, &member.email, member.role).await,
        Err(error) => Err(error),
    };
    if result.is_ok() {
        membership::upsert(&state.db, &name, &member.email, member.role, &user.email).await?;
    }
    audit::Entry::new(&user.email, "member.add")
        .in_namespace(&name)
        .on(&member.email)
        .record_result(
            &state.db,
            result.as_ref().map(|()| Some(member.role.as_str())),
        )
        .await;
    match result {
        Ok(()) => {
            flash(
                &state.db,
                &user,
                FlashKind::Success,
                &format!(
                    "{} is now {} of {name}.",
                    member.email,
                    article(member.role)
                ),
            )
            .await?;
            Ok(Redirect::to(&urls::admin_namespace(&name)).into_response())
        }
        Err(error) => {
            let data = view::show_page(
                &state,
                &user,
                &name,
                &values,
                FieldErrors::default(),
                Some(error.to_string()),
            )
            .await?;
            render_with_status(error.status(), &data)
        }
    }
}

fn article(role: Role) -> &'static str {
    match role {
        Role::Member => "a member",
        Role::Owner => "an owner",
    }
}

/// Form of the remove-member button.
#[derive(Debug, Deserialize)]
pub struct RemoveForm {
    email: String,
}

/// `GET /admin/namespaces/{name}/members/remove?email=…`: asks first.
pub async fn remove_member_form(
    State(state): State<AppState>,
    AdminUser(user): AdminUser,
    Path(name): Path<String>,
    Query(form): Query<RemoveForm>,
) -> AppResult<Response> {
    let email = form.email.trim().to_lowercase();
    if !spec::valid_email(&email) {
        return Err(AppError::BadRequest(
            "That is not an email address.".to_owned(),
        ));
    }
    crate::web::render(&crate::web::ConfirmPage {
        layout: Layout::for_user(&state.db, &user).await?,
        title: format!("Remove {email} from {name}?"),
        question: format!(
            "{email} loses access to {name} at their next request: Berth removes their role binding."
        ),
        details: vec![
            "What they deployed keeps running; other members can still manage it.".to_owned(),
        ],
        action: urls::admin_namespace_member_remove(&name),
        hidden: vec![("email".to_owned(), email)],
        button: "Remove access".to_owned(),
        cancel: urls::admin_namespace(&name),
    })
}

/// `POST /admin/namespaces/{name}/members/remove`: remove someone's access.
pub async fn remove_member(
    State(state): State<AppState>,
    AdminUser(user): AdminUser,
    Path(name): Path<String>,
    Form(form): Form<RemoveForm>,
) -> AppResult<Response> {
    let email = form.email.trim().to_lowercase();
    if !spec::valid_email(&email) {
        return Err(AppError::BadRequest(
            "That is not an email address.".to_owned(),
        ));
    }
    let result = match state.kube.client_for(&user.identity()) {
        Ok(client) => ops::unbind_member(&client, &name, &email).await,
        Err(error) => Err(error),
    };
    if result.is_ok() {
        membership::remove(&state.db, &name, &email).await?;
    }
    audit::Entry::new(&user.email, "member.remove")
        .in_namespace(&name)
        .on(&email)
        .record_result(&state.db, result.as_ref().map(|()| None))
        .await;
    let (kind, message) = match &result {
        Ok(()) => (
            FlashKind::Success,
            format!("{email} no longer has access to {name}."),
        ),
        Err(error) => (
            FlashKind::Error,
            format!("{email} still has access: {error}"),
        ),
    };
    flash(&state.db, &user, kind, &message).await?;
    Ok(Redirect::to(&urls::admin_namespace(&name)).into_response())
}

// --------------------------------------------------------------------- delete

/// `GET /admin/namespaces/{name}/delete`: what goes with it, and the name to type.
pub async fn delete_form(
    State(state): State<AppState>,
    AdminUser(user): AdminUser,
    Path(name): Path<String>,
) -> AppResult<Response> {
    let data = view::delete_page(&state, &user, &name, String::new(), None, None).await?;
    render_with_status(StatusCode::OK, &data)
}

/// Form of the delete page.
#[derive(Debug, Deserialize)]
pub struct DeleteForm {
    #[serde(default)]
    confirm: String,
}

/// `POST /admin/namespaces/{name}/delete`: delete it, once its name is typed.
pub async fn delete_submit(
    State(state): State<AppState>,
    AdminUser(user): AdminUser,
    Path(name): Path<String>,
    Form(form): Form<DeleteForm>,
) -> AppResult<Response> {
    if form.confirm.trim() != name {
        let data = view::delete_page(
            &state,
            &user,
            &name,
            form.confirm,
            Some(format!("Type {name} exactly to confirm.")),
            None,
        )
        .await?;
        return render_with_status(StatusCode::UNPROCESSABLE_ENTITY, &data);
    }
    ops::managed_namespace(&state, &name)?;
    let result = match state.kube.client_for(&user.identity()) {
        Ok(client) => ops::delete_namespace(&client, &name).await,
        Err(error) => Err(error),
    };
    if result.is_ok() {
        membership::forget_namespace(&state.db, &name).await?;
    }
    audit::Entry::new(&user.email, "namespace.delete")
        .in_namespace(&name)
        .on(&name)
        .record_result(&state.db, result.as_ref().map(|()| None))
        .await;
    match result {
        Ok(()) => {
            flash(
                &state.db,
                &user,
                FlashKind::Success,
                &format!("Namespace {name} is being deleted with everything in it."),
            )
            .await?;
            Ok(Redirect::to(urls::admin_namespaces()).into_response())
        }
        Err(error) => {
            let data = view::delete_page(
                &state,
                &user,
                &name,
                form.confirm,
                None,
                Some(error.to_string()),
            )
            .await?;
            render_with_status(error.status(), &data)
        }
    }
}
