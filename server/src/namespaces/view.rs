//! What the namespace admin templates get: the page types, the overview's
//! rows and pager, the form's fields with their values, and the builders
//! that fill them from the watch caches and the store.

use std::{collections::HashMap, sync::Arc};

use askama::Template;
use axum::http::StatusCode;

use super::{
    membership::{self, Member},
    ops::{current_limits, managed_namespace},
    spec::{self, DEFAULTS, Limits, QUOTA, Setting},
    usage::{self, NamespaceUsage, SortKey},
};
use crate::{
    app::AppState,
    auth::CurrentUser,
    error::{AppError, AppResult},
    web::{FieldErrors, Layout, urls},
};

/// `/admin`: where the admin pages are.
#[derive(Template)]
#[template(path = "admin/index.html")]
pub(super) struct AdminIndexPage {
    pub(super) layout: Layout,
}

/// `/admin/namespaces`: every Berth namespace, a page at a time.
#[derive(Template)]
#[template(path = "namespaces/overview.html")]
pub(super) struct OverviewPage {
    layout: Layout,
    rows: Vec<Arc<NamespaceUsage>>,
    cluster_error: Option<String>,
    columns: Vec<Column>,
    pager: Pager,
}

/// Where the overview's page is among all pages.
pub(super) struct Pager {
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
    sort: &'static str,
    dir: &'static str,
}

/// A sortable column's heading: its link and whether it sorts now.
pub(super) struct Column {
    label: &'static str,
    href: String,
    aria_sort: &'static str,
}

/// Rows per page of the overview.
pub const PAGE_SIZE: usize = 50;

/// One page of the overview, and how many rows match in all.
async fn overview_rows(
    state: &AppState,
    filter: &str,
    sort: SortKey,
    descending: bool,
    page: usize,
) -> Result<(Vec<Arc<NamespaceUsage>>, usize), AppError> {
    let caches = state.kube.caches()?;
    let counts = membership::member_counts(&state.db).await?;
    let sorted = state.namespace_orders.sorted(caches, &counts, sort);
    let matching = |row: &&Arc<NamespaceUsage>| filter.is_empty() || row.name.contains(filter);
    let total = if filter.is_empty() {
        sorted.len()
    } else {
        sorted.iter().filter(matching).count()
    };
    let ordered: Box<dyn Iterator<Item = &Arc<NamespaceUsage>>> = if descending {
        Box::new(sorted.iter().rev())
    } else {
        Box::new(sorted.iter())
    };
    let rows = ordered
        .filter(matching)
        .skip((page - 1) * PAGE_SIZE)
        .take(PAGE_SIZE)
        .cloned()
        .collect();
    Ok((rows, total))
}

/// The overview's page `asked` (from 1), sorted by `sort`
/// and filtered by `filter`; 503 without a cluster.
pub(super) async fn overview_page(
    state: &AppState,
    user: &CurrentUser,
    sort: SortKey,
    descending: bool,
    filter: String,
    asked: usize,
) -> AppResult<(StatusCode, OverviewPage)> {
    let (rows, total, cluster_error) = match state.kube.caches() {
        Ok(_) => {
            let (rows, total) = overview_rows(state, &filter, sort, descending, asked).await?;
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
            "{}?{}",
            urls::admin_namespaces(),
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
        previous: (asked > 1).then(|| link(sort.as_str(), dir, (asked - 1).min(pages))),
        next: (asked < pages).then(|| link(sort.as_str(), dir, asked + 1)),
        filter: filter.clone(),
        sort: sort.as_str(),
        dir,
    };
    let columns = SortKey::ALL
        .into_iter()
        .map(|key| {
            let active = key == sort;
            // Clicking the active column flips the order; another starts ascending.
            let dir = if active && !descending { "desc" } else { "asc" };
            Column {
                label: key.label(),
                href: link(key.as_str(), dir, 1),
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
    Ok((
        status,
        OverviewPage {
            layout: Layout::for_user(&state.db, user).await?,
            rows,
            cluster_error,
            columns,
            pager,
        },
    ))
}

/// One quota or default field on the form.
pub(super) struct FieldView {
    field: &'static str,
    label: &'static str,
    help: &'static str,
    value: String,
}

/// The namespace form, new or editing.
#[derive(Template)]
#[template(path = "namespaces/form.html")]
pub(super) struct NamespaceFormPage {
    layout: Layout,
    editing: bool,
    name: String,
    description: String,
    quota: Vec<FieldView>,
    defaults: Vec<FieldView>,
    errors: FieldErrors,
    cluster_error: Option<String>,
}

/// The form's fields of `settings`, with their values.
pub(super) fn field_views(
    settings: &[Setting],
    values: &HashMap<String, String>,
) -> Vec<FieldView> {
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
pub(super) fn values_of(limits: &Limits) -> HashMap<String, String> {
    spec::all_settings()
        .filter_map(|s| limits.get(s).map(|v| (s.field.to_owned(), v.to_owned())))
        .collect()
}

/// The namespace form with `values`, its messages and the cluster's refusal.
pub(super) async fn form_page(
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

/// One namespace: usage, limits, members and the add-member form.
#[derive(Template)]
#[template(path = "namespaces/show.html")]
pub(super) struct ShowPage {
    layout: Layout,
    usage: NamespaceUsage,
    limits: Vec<(&'static str, String)>,
    members: Vec<Member>,
    email: String,
    role: String,
    errors: FieldErrors,
    cluster_error: Option<String>,
}

/// A managed namespace's page; `values` and `errors` are the add-member form's.
pub(super) async fn show_page(
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

/// Deleting a namespace: what goes with it, and its name to type.
#[derive(Template)]
#[template(path = "namespaces/delete.html")]
pub(super) struct DeletePage {
    layout: Layout,
    usage: NamespaceUsage,
    confirm: String,
    confirm_error: Option<String>,
    cluster_error: Option<String>,
}

/// The delete page of a managed namespace, with what was typed.
pub(super) async fn delete_page(
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
