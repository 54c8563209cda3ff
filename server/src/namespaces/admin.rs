//! The admin pages: the overview of every Berth namespace, creating and
//! editing one (quota and container defaults), its members, deleting it.
//!
//! Every write goes through the client that impersonates the admin (groups
//! `berth:users` and `berth:admins`), so the apiserver checks it against
//! `berth-admin`, which admins hold only in the namespaces Berth made (the
//! `berth-admins` RoleBinding written at creation); each ends with an audit
//! row, whatever the outcome.

use std::collections::HashMap;

use askama::Template;
use axum::{
    Form,
    extract::{Path, Query, State},
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
};
use k8s_openapi::api::{
    core::v1::{LimitRange, Namespace, ResourceQuota},
    networking::v1::NetworkPolicy,
    rbac::v1::RoleBinding,
};
use kube::{
    Api, Client, ResourceExt,
    api::{DeleteParams, PostParams},
};
use serde::Deserialize;

use super::{
    membership::{self, Member, Role},
    objects,
    spec::{self, DEFAULTS, Limits, NamespaceSpec, QUOTA, Setting},
    usage::{self, NamespaceUsage, SORT_KEYS},
};
use crate::{
    app::AppState,
    audit::{self},
    auth::{AdminUser, CurrentUser},
    error::{AppError, AppResult},
    kube::{Caches, FIELD_MANAGER, KubeError, apply},
    web::{FieldErrors, FlashKind, Layout, flash},
};

/// Renders a page with a status.
fn page(status: StatusCode, template: &impl Template) -> AppResult<Response> {
    Ok((status, axum::response::Html(template.render()?)).into_response())
}

// ---------------------------------------------------------------- admin index

#[derive(Template)]
#[template(path = "admin/index.html")]
struct AdminIndexPage {
    layout: Layout,
}

/// `GET /admin`: where the admin pages are.
pub async fn admin_index(
    State(state): State<AppState>,
    AdminUser(user): AdminUser,
) -> AppResult<Response> {
    page(
        StatusCode::OK,
        &AdminIndexPage {
            layout: Layout::for_user(&state.db, &user).await?,
        },
    )
}

// ------------------------------------------------------------------- overview

#[derive(Template)]
#[template(path = "namespaces/overview.html")]
struct OverviewPage {
    layout: Layout,
    rows: Vec<NamespaceUsage>,
    cluster_error: Option<String>,
    columns: Vec<Column>,
    pager: Pager,
}

/// Where the overview's page is among all pages.
struct Pager {
    page: usize,
    pages: usize,
    total: usize,
    /// Numbers of the first and last row shown (from 1).
    first: usize,
    last: usize,
    previous: Option<String>,
    next: Option<String>,
    /// The name filter, the sort key and order, for the filter form.
    filter: String,
    sort: String,
    dir: &'static str,
}

struct Column {
    label: &'static str,
    href: String,
    aria_sort: &'static str,
}

/// Query of the overview: sort column and order, page, and a name filter.
#[derive(Debug, Default, Deserialize)]
pub struct SortQuery {
    sort: Option<String>,
    dir: Option<String>,
    page: Option<String>,
    q: Option<String>,
}

/// Rows per page of the overview.
pub const PAGE_SIZE: usize = 50;

/// One page of the overview, and how many rows match in all.
async fn overview_rows(
    state: &AppState,
    filter: &str,
    sort: &str,
    descending: bool,
    page: usize,
) -> Result<(Vec<NamespaceUsage>, usize), AppError> {
    let caches = state.kube.caches()?;
    let counts = membership::member_counts(&state.db).await?;
    let namespaces: Vec<_> = caches
        .namespaces
        .all()
        .into_iter()
        .filter(|ns| filter.is_empty() || ns.name_any().contains(filter))
        .collect();
    let total = namespaces.len();
    let usage_of = |ns: &Namespace| {
        let mut row = usage::usage_of(caches, ns);
        row.members = counts.get(&row.name).copied().unwrap_or(0);
        row
    };
    let skip = (page - 1) * PAGE_SIZE;
    let rows = if sort == "name" {
        // The cache keeps namespaces by name: only the page's rows are built.
        let ordered: Box<dyn Iterator<Item = _>> = if descending {
            Box::new(namespaces.iter().rev())
        } else {
            Box::new(namespaces.iter())
        };
        ordered
            .skip(skip)
            .take(PAGE_SIZE)
            .map(|ns| usage_of(ns))
            .collect()
    } else {
        // Every namespace's value in the column, then rows for the page only.
        let mut keyed: Vec<_> = namespaces
            .iter()
            .map(|ns| {
                let name = ns.metadata.name.as_deref().unwrap_or_default();
                let members = counts.get(name).copied().unwrap_or(0);
                (usage::sort_value(caches, ns, sort, members), ns)
            })
            .collect();
        usage::sort_by_value(&mut keyed, descending, |(value, ns)| {
            (*value, ns.metadata.name.as_deref().unwrap_or_default())
        });
        keyed
            .into_iter()
            .skip(skip)
            .take(PAGE_SIZE)
            .map(|(_, ns)| usage_of(ns))
            .collect()
    };
    Ok((rows, total))
}

/// `GET /admin/namespaces`: the overview, a page at a time, sortable by any
/// column and filtered by name.
pub async fn overview(
    State(state): State<AppState>,
    AdminUser(user): AdminUser,
    Query(query): Query<SortQuery>,
) -> AppResult<Response> {
    let sort = query
        .sort
        .filter(|s| SORT_KEYS.iter().any(|(k, _)| k == s))
        .unwrap_or_else(|| "name".to_owned());
    let descending = query.dir.as_deref() == Some("desc");
    let filter = query.q.unwrap_or_default().trim().to_lowercase();
    let asked = query
        .page
        .and_then(|p| p.parse::<usize>().ok())
        .unwrap_or(1)
        .max(1);
    let (rows, total, cluster_error) = match state.kube.caches() {
        Ok(_) => {
            let (rows, total) = overview_rows(&state, &filter, &sort, descending, asked).await?;
            (rows, total, None)
        }
        Err(error) => (Vec::new(), 0, Some(error.to_string())),
    };
    let pages = total.div_ceil(PAGE_SIZE).max(1);
    let link = |sort: &str, dir: &str, page: usize| {
        let mut pairs = vec![("sort", sort.to_owned()), ("dir", dir.to_owned())];
        if !filter.is_empty() {
            pairs.push(("q", filter.clone()));
        }
        if page > 1 {
            pairs.push(("page", page.to_string()));
        }
        format!(
            "/admin/namespaces?{}",
            serde_urlencoded::to_string(pairs).unwrap_or_default()
        )
    };
    let dir = if descending { "desc" } else { "asc" };
    let pager = Pager {
        page: asked,
        pages,
        total,
        first: if total == 0 {
            0
        } else {
            (asked - 1) * PAGE_SIZE + 1
        },
        last: ((asked - 1) * PAGE_SIZE + rows.len()),
        previous: (asked > 1).then(|| link(&sort, dir, (asked - 1).min(pages))),
        next: (asked < pages).then(|| link(&sort, dir, asked + 1)),
        filter: filter.clone(),
        sort: sort.clone(),
        dir,
    };
    let columns = SORT_KEYS
        .iter()
        .map(|(key, label)| {
            let active = *key == sort;
            // Clicking the active column flips the order; another starts ascending.
            let dir = if active && !descending { "desc" } else { "asc" };
            Column {
                label,
                href: link(key, dir, 1),
                aria_sort: match (active, descending) {
                    (false, _) => "none",
                    (true, false) => "ascending",
                    (true, true) => "descending",
                },
            }
        })
        .collect();
    let status = if cluster_error.is_some() {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    page(
        status,
        &OverviewPage {
            layout: Layout::for_user(&state.db, &user).await?,
            rows,
            cluster_error,
            columns,
            pager,
        },
    )
}

// ------------------------------------------------------------ create and edit

/// One quota or default field on the form.
pub struct FieldView {
    field: &'static str,
    label: &'static str,
    help: &'static str,
    value: String,
}

#[derive(Template)]
#[template(path = "namespaces/form.html")]
struct NamespaceFormPage {
    layout: Layout,
    editing: bool,
    name: String,
    description: String,
    quota: Vec<FieldView>,
    defaults: Vec<FieldView>,
    errors: FieldErrors,
    cluster_error: Option<String>,
}

fn field_views(settings: &[Setting], values: &HashMap<String, String>) -> Vec<FieldView> {
    settings
        .iter()
        .map(|s| FieldView {
            field: s.field,
            label: s.label,
            help: s.help,
            value: values.get(s.field).cloned().unwrap_or_default(),
        })
        .collect()
}

/// Form values (keyed by field) for a [`Limits`].
fn values_of(limits: &Limits) -> HashMap<String, String> {
    spec::all_settings()
        .filter_map(|s| limits.get(s).map(|v| (s.field.to_owned(), v.to_owned())))
        .collect()
}

async fn form_page(
    state: &AppState,
    user: &CurrentUser,
    editing: bool,
    values: &HashMap<String, String>,
    errors: FieldErrors,
    cluster_error: Option<String>,
) -> AppResult<NamespaceFormPage> {
    Ok(NamespaceFormPage {
        layout: Layout::for_user(&state.db, user).await?,
        editing,
        name: values.get("name").cloned().unwrap_or_default(),
        description: values.get("description").cloned().unwrap_or_default(),
        quota: field_views(&QUOTA, values),
        defaults: field_views(&DEFAULTS, values),
        errors,
        cluster_error,
    })
}

/// `GET /admin/namespaces/new`: the form, filled with the default quota.
pub async fn new_form(
    State(state): State<AppState>,
    AdminUser(user): AdminUser,
) -> AppResult<Response> {
    let values = values_of(&state.default_limits);
    let cluster_error = state.kube.caches().err().map(|e| e.to_string());
    page(
        StatusCode::OK,
        &form_page(
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

/// Creates the namespace, then applies its quota and defaults; if those fail
/// the namespace is removed again, so there is never one without its quota.
pub async fn create_namespace(client: &Client, spec: &NamespaceSpec) -> Result<(), KubeError> {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    // POST, not apply: apply would quietly adopt a namespace that exists
    // already and is not Berth's.
    namespaces
        .create(
            &PostParams {
                field_manager: Some(FIELD_MANAGER.to_owned()),
                ..PostParams::default()
            },
            &objects::namespace(&spec.name, &spec.description),
        )
        .await?;
    // The admins' rights in the new namespace come from its own RoleBinding
    // (admins hold none cluster-wide but `create`), written first; the
    // apiserver's authorizer sees it a moment later, hence the retry.
    let bound = Api::<RoleBinding>::namespaced(client.clone(), &spec.name)
        .create(
            &PostParams {
                field_manager: Some(FIELD_MANAGER.to_owned()),
                ..PostParams::default()
            },
            &objects::admins_binding(&spec.name),
        )
        .await
        .map(|_| ())
        .map_err(KubeError::from);
    let limits = match bound {
        Ok(()) => match until_authorized(|| apply_limits(client, &spec.name, &spec.limits)).await {
            Ok(()) => apply_network_policies(client, &spec.name).await,
            Err(error) => Err(error),
        },
        Err(error) => Err(error),
    };
    if let Err(error) = limits {
        if let Err(cleanup) = namespaces
            .delete(&spec.name, &DeleteParams::default())
            .await
        {
            tracing::error!(%cleanup, namespace = spec.name, "removing a half-created namespace failed");
        }
        return Err(error);
    }
    Ok(())
}

/// Runs `attempt` until it is not refused with 403, for at most a few
/// seconds: a RoleBinding just written takes a moment to be authorized.
pub async fn until_authorized<F, Fut>(mut attempt: F) -> Result<(), KubeError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), KubeError>>,
{
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match attempt().await {
            Err(error) if error.is_denied() && tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            other => return other,
        }
    }
}

/// Applies the namespace's default NetworkPolicies.
pub async fn apply_network_policies(client: &Client, namespace: &str) -> Result<(), KubeError> {
    let policies: Api<NetworkPolicy> = Api::namespaced(client.clone(), namespace);
    for policy in objects::network_policies(namespace) {
        apply(&policies, &policy).await?;
    }
    Ok(())
}

/// Applies the quota and the container defaults (removing the LimitRange
/// when no defaults are set).
pub async fn apply_limits(
    client: &Client,
    namespace: &str,
    limits: &Limits,
) -> Result<(), KubeError> {
    let quotas: Api<ResourceQuota> = Api::namespaced(client.clone(), namespace);
    apply(&quotas, &objects::resource_quota(namespace, limits)).await?;
    let ranges: Api<LimitRange> = Api::namespaced(client.clone(), namespace);
    match objects::limit_range(namespace, limits) {
        Some(range) => {
            apply(&ranges, &range).await?;
        }
        None => match ranges
            .delete(objects::LIMIT_RANGE_NAME, &DeleteParams::default())
            .await
        {
            Ok(_) => {}
            Err(error) => {
                let error = KubeError::from(error);
                if !error.is_not_found() {
                    return Err(error);
                }
            }
        },
    }
    Ok(())
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
            let form = form_page(&state, &user, false, &values, errors, None).await?;
            return page(StatusCode::UNPROCESSABLE_ENTITY, &form);
        }
    };
    let result = match state.kube.client_for(&user.identity()) {
        Ok(client) => create_namespace(&client, &spec).await,
        Err(error) => Err(error),
    };
    if result.is_ok() {
        // The namespace is new, so nothing stored under its name is its.
        membership::forget_namespace(&state.db, &spec.name).await?;
    }
    let summary = quota_summary(&spec.limits);
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
            Ok(Redirect::to(&format!("/admin/namespaces/{}", spec.name)).into_response())
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
            let form = form_page(
                &state,
                &user,
                false,
                &values,
                errors,
                Some(error.to_string()),
            )
            .await?;
            page(status, &form)
        }
    }
}

fn quota_summary(limits: &Limits) -> String {
    spec::all_settings()
        .filter_map(|s| limits.get(s).map(|v| format!("{}={v}", s.key)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The managed namespace, or 404.
fn managed_namespace(state: &AppState, name: &str) -> AppResult<std::sync::Arc<Namespace>> {
    let caches = state.kube.caches()?;
    caches
        .namespace(name)
        .ok_or_else(|| AppError::NotFound(format!("There is no Berth namespace called {name}.")))
}

fn current_limits(caches: &Caches, name: &str) -> Limits {
    let quota = caches.quotas.get(name, objects::QUOTA_NAME);
    let range = caches.limit_ranges.get(name, objects::LIMIT_RANGE_NAME);
    objects::limits_from_cluster(quota.as_deref(), range.as_deref())
}

/// `GET /admin/namespaces/{name}/edit`: the form with what the cluster has.
pub async fn edit_form(
    State(state): State<AppState>,
    AdminUser(user): AdminUser,
    Path(name): Path<String>,
) -> AppResult<Response> {
    let namespace = managed_namespace(&state, &name)?;
    let caches = state.kube.caches()?;
    let mut values = values_of(&current_limits(caches, &name));
    values.insert("name".to_owned(), name.clone());
    values.insert(
        "description".to_owned(),
        objects::description_of(&namespace),
    );
    page(
        StatusCode::OK,
        &form_page(&state, &user, true, &values, spec::field_errors(), None).await?,
    )
}

/// `POST /admin/namespaces/{name}/edit`: change description, quota, defaults.
pub async fn edit_submit(
    State(state): State<AppState>,
    AdminUser(user): AdminUser,
    Path(name): Path<String>,
    Form(mut values): Form<HashMap<String, String>>,
) -> AppResult<Response> {
    managed_namespace(&state, &name)?;
    values.insert("name".to_owned(), name.clone());
    let spec = match spec::parse_namespace(&values, Some(&name)) {
        Ok(spec) => spec,
        Err(errors) => {
            let form = form_page(&state, &user, true, &values, errors, None).await?;
            return page(StatusCode::UNPROCESSABLE_ENTITY, &form);
        }
    };
    let result = async {
        let client = state.kube.client_for(&user.identity())?;
        let namespaces: Api<Namespace> = Api::all(client.clone());
        apply(&namespaces, &objects::namespace(&name, &spec.description)).await?;
        apply_limits(&client, &name, &spec.limits).await
    }
    .await;
    let summary = quota_summary(&spec.limits);
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
            Ok(Redirect::to(&format!("/admin/namespaces/{name}")).into_response())
        }
        Err(error) => {
            let form = form_page(
                &state,
                &user,
                true,
                &values,
                spec::field_errors(),
                Some(error.to_string()),
            )
            .await?;
            page(error.status(), &form)
        }
    }
}

// --------------------------------------------------------- detail and members

#[derive(Template)]
#[template(path = "namespaces/show.html")]
struct ShowPage {
    layout: Layout,
    usage: NamespaceUsage,
    limits: Vec<(&'static str, String)>,
    members: Vec<Member>,
    email: String,
    role: String,
    errors: FieldErrors,
    cluster_error: Option<String>,
}

async fn show_page(
    state: &AppState,
    user: &CurrentUser,
    name: &str,
    values: &HashMap<String, String>,
    errors: FieldErrors,
    cluster_error: Option<String>,
) -> AppResult<ShowPage> {
    let namespace = managed_namespace(state, name)?;
    let caches = state.kube.caches()?;
    let mut usage = usage::usage_of(caches, &namespace);
    let members = membership::members_of(&state.db, name).await?;
    usage.members = i64::try_from(members.len()).unwrap_or(i64::MAX);
    let current = current_limits(caches, name);
    let limits = spec::all_settings()
        .map(|s| (s.label, current.get(s).unwrap_or("no limit").to_owned()))
        .collect();
    Ok(ShowPage {
        layout: Layout::for_user(&state.db, user).await?,
        usage,
        limits,
        members,
        email: values.get("email").cloned().unwrap_or_default(),
        role: values
            .get("role")
            .cloned()
            .unwrap_or_else(|| "member".to_owned()),
        errors,
        cluster_error,
    })
}

/// `GET /admin/namespaces/{name}`: usage, quota, members.
pub async fn show(
    State(state): State<AppState>,
    AdminUser(user): AdminUser,
    Path(name): Path<String>,
) -> AppResult<Response> {
    let page_data = show_page(
        &state,
        &user,
        &name,
        &HashMap::new(),
        FieldErrors::default(),
        None,
    )
    .await?;
    page(StatusCode::OK, &page_data)
}

/// Binds `email` as `role` in `namespace`, then removes a binding for the
/// other role (roleRef cannot change, so a new role is a new binding; the
/// new one comes first so access never lapses).
pub async fn bind_member(
    client: &Client,
    namespace: &str,
    email: &str,
    role: Role,
) -> Result<(), KubeError> {
    let bindings: Api<RoleBinding> = Api::namespaced(client.clone(), namespace);
    apply(&bindings, &objects::role_binding(namespace, email, role)).await?;
    let other = match role {
        Role::Member => Role::Owner,
        Role::Owner => Role::Member,
    };
    delete_binding(&bindings, &objects::role_binding_name(email, other)).await
}

/// Removes every binding Berth made for `email` in `namespace`.
pub async fn unbind_member(client: &Client, namespace: &str, email: &str) -> Result<(), KubeError> {
    let bindings: Api<RoleBinding> = Api::namespaced(client.clone(), namespace);
    for role in [Role::Member, Role::Owner] {
        delete_binding(&bindings, &objects::role_binding_name(email, role)).await?;
    }
    Ok(())
}

async fn delete_binding(bindings: &Api<RoleBinding>, name: &str) -> Result<(), KubeError> {
    crate::kube::delete_opt(bindings, name).await.map(drop)
}

/// `POST /admin/namespaces/{name}/members`: add someone, or change their role.
pub async fn add_member(
    State(state): State<AppState>,
    AdminUser(user): AdminUser,
    Path(name): Path<String>,
    Form(values): Form<HashMap<String, String>>,
) -> AppResult<Response> {
    managed_namespace(&state, &name)?;
    let member = match spec::parse_member(&values) {
        Ok(member) => member,
        Err(errors) => {
            let data = show_page(&state, &user, &name, &values, errors, None).await?;
            return page(StatusCode::UNPROCESSABLE_ENTITY, &data);
        }
    };
    // The cluster first: a membership Berth stores but the apiserver never
    // got would show access that does not exist.
    let result = match state.kube.client_for(&user.identity()) {
        Ok(client) => bind_member(&client, &name, &member.email, member.role).await,
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
            Ok(Redirect::to(&format!("/admin/namespaces/{name}")).into_response())
        }
        Err(error) => {
            let data = show_page(
                &state,
                &user,
                &name,
                &values,
                FieldErrors::default(),
                Some(error.to_string()),
            )
            .await?;
            page(error.status(), &data)
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
        action: format!("/admin/namespaces/{name}/members/remove"),
        hidden: vec![("email".to_owned(), email)],
        button: "Remove access".to_owned(),
        cancel: format!("/admin/namespaces/{name}"),
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
        Ok(client) => unbind_member(&client, &name, &email).await,
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
    Ok(Redirect::to(&format!("/admin/namespaces/{name}")).into_response())
}

// --------------------------------------------------------------------- delete

#[derive(Template)]
#[template(path = "namespaces/delete.html")]
struct DeletePage {
    layout: Layout,
    usage: NamespaceUsage,
    confirm: String,
    confirm_error: Option<String>,
    cluster_error: Option<String>,
}

async fn delete_page(
    state: &AppState,
    user: &CurrentUser,
    name: &str,
    confirm: String,
    confirm_error: Option<String>,
    cluster_error: Option<String>,
) -> AppResult<DeletePage> {
    let namespace = managed_namespace(state, name)?;
    let caches = state.kube.caches()?;
    let mut usage = usage::usage_of(caches, &namespace);
    usage.members =
        i64::try_from(membership::members_of(&state.db, name).await?.len()).unwrap_or(i64::MAX);
    Ok(DeletePage {
        layout: Layout::for_user(&state.db, user).await?,
        usage,
        confirm,
        confirm_error,
        cluster_error,
    })
}

/// `GET /admin/namespaces/{name}/delete`: what goes with it, and the name to type.
pub async fn delete_form(
    State(state): State<AppState>,
    AdminUser(user): AdminUser,
    Path(name): Path<String>,
) -> AppResult<Response> {
    let data = delete_page(&state, &user, &name, String::new(), None, None).await?;
    page(StatusCode::OK, &data)
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
        let data = delete_page(
            &state,
            &user,
            &name,
            form.confirm,
            Some(format!("Type {name} exactly to confirm.")),
            None,
        )
        .await?;
        return page(StatusCode::UNPROCESSABLE_ENTITY, &data);
    }
    managed_namespace(&state, &name)?;
    let result = async {
        let client = state.kube.client_for(&user.identity())?;
        Api::<Namespace>::all(client)
            .delete(&name, &DeleteParams::default())
            .await?;
        Ok::<(), KubeError>(())
    }
    .await;
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
            Ok(Redirect::to("/admin/namespaces").into_response())
        }
        Err(error) => {
            let data = delete_page(
                &state,
                &user,
                &name,
                form.confirm,
                None,
                Some(error.to_string()),
            )
            .await?;
            page(error.status(), &data)
        }
    }
}

#[cfg(test)]
mod render_tests {
    //! The namespace form and page render their messages with the shared
    //! field macro and summary.
    use super::*;

    fn usage() -> NamespaceUsage {
        NamespaceUsage {
            name: "cs101".into(),
            description: String::new(),
            terminating: false,
            bars: Vec::new(),
            deployments: 0,
            pods: 0,
            members: 0,
        }
    }

    #[test]
    fn the_namespace_form_links_its_messages() {
        let mut values = HashMap::new();
        values.insert("pods".to_owned(), "lots".to_owned());
        let mut errors = spec::field_errors();
        errors.add("pods", "Enter a whole number.");
        errors.add("name", "Use only lower-case letters.");
        let html = NamespaceFormPage {
            layout: Layout::bare(),
            editing: false,
            name: "CS_101".into(),
            description: String::new(),
            quota: field_views(&QUOTA, &values),
            defaults: field_views(&DEFAULTS, &values),
            errors,
            cluster_error: Some("Berth is not connected to a cluster.".into()),
        }
        .render()
        .expect("renders");
        assert!(html.contains("<h2>This could not be saved</h2>"), "{html}");
        let cluster = html.find("<li>Berth is not connected").expect("cluster");
        let name = html
            .find(r##"<li><a href="#name">Use only lower-case letters.</a></li>"##)
            .expect("name in the summary");
        let pods = html
            .find(r##"<li><a href="#pods">Enter a whole number.</a></li>"##)
            .expect("pods in the summary");
        assert!(cluster < name && name < pods, "{html}");
        assert!(
            html.contains(r#"value="lots" spellcheck="false" aria-describedby="pods-help pods-error" aria-invalid="true">"#),
            "{html}"
        );
        assert!(
            html.contains(r#"<span class="error" id="pods-error">Enter a whole number.</span>"#)
        );
    }

    #[test]
    fn the_add_member_form_links_its_messages() {
        let mut errors = FieldErrors::in_order(&spec::MEMBER_FORM_ORDER);
        errors.add("role", "Choose owner or member.");
        errors.add("email", "Enter an email address, like student@purdue.edu.");
        let html = ShowPage {
            layout: Layout::bare(),
            usage: usage(),
            limits: Vec::new(),
            members: Vec::new(),
            email: "bob".into(),
            role: "owner".into(),
            errors,
            cluster_error: None,
        }
        .render()
        .expect("renders");
        let email = html.find(r##"<a href="#email">"##).expect("email");
        let role = html.find(r##"<a href="#role">"##).expect("role");
        assert!(email < role, "{html}");
        assert!(
            html.contains(r#"<input type="email" id="email" name="email" value="bob" required autocomplete="off" aria-describedby="email-error" aria-invalid="true">"#),
            "{html}"
        );
        assert!(
            html.contains(r#"<select id="role" name="role" aria-describedby="role-error" aria-invalid="true">"#),
            "{html}"
        );
        assert!(
            html.contains(r#"<option value="owner" selected>"#),
            "{html}"
        );
        assert!(
            html.contains(r#"<span class="error" id="role-error">Choose owner or member.</span>"#)
        );

        let clean = ShowPage {
            layout: Layout::bare(),
            usage: usage(),
            limits: Vec::new(),
            members: Vec::new(),
            email: String::new(),
            role: "member".into(),
            errors: FieldErrors::default(),
            cluster_error: None,
        }
        .render()
        .expect("renders");
        assert!(!clean.contains("error-summary") && !clean.contains("aria-invalid"));
    }
}
