//! The course pages: the list, the upload form, the dry run and apply, and a
//! course's page with its namespaces and roster.
//!
//! Admins upload any course. A namespace owner may re-upload the roster of a
//! course whose every namespace they own, as long as it only changes
//! memberships: creating namespaces, quotas and the end date are an admin's.

use std::collections::HashMap;

use askama::Template;
use axum::{
    Form,
    extract::{FromRequest, Multipart, Path, Request, State},
    http::{StatusCode, header},
    response::{Html, IntoResponse, Redirect, Response},
};

use super::{
    ops::{self, Stored},
    plan::{self, Plan},
    spec::{self, LineError, Refusal},
};
use crate::{
    app::AppState,
    audit::{self, Outcome},
    auth::{AdminUser, CurrentUser},
    error::{AppError, AppResult},
    namespaces::{
        membership::{self, Role},
        spec::{self as ns_spec, Limits, QUOTA},
    },
    web::{FieldErrors, FlashKind, Layout, flash, urls},
};

/// One quota field of the form.
pub struct QuotaField {
    field: &'static str,
    label: &'static str,
    help: &'static str,
    value: String,
}

#[derive(Template)]
#[template(path = "courses/form.html")]
struct FormPage {
    layout: Layout,
    /// The course when re-uploading (its page), else a new one.
    course: Option<CourseView>,
    values: HashMap<String, String>,
    quota: Vec<QuotaField>,
    errors: FieldErrors,
    lines: Vec<LineError>,
    /// Settings are an admin's: owners see them read-only.
    settings_locked: bool,
    message: Option<String>,
}

impl FormPage {
    fn value(&self, field: &str) -> &str {
        self.values.get(field).map_or("", String::as_str)
    }
}

/// A stored course as its page shows it.
pub struct CourseView {
    name: String,
    ends: String,
    grace_days: i64,
    delete_volumes: bool,
    state: String,
    teams: Vec<TeamView>,
}

/// One team of a stored course: its namespace and (email, role) members.
pub struct TeamView {
    team: String,
    namespace: String,
    members: Vec<(String, &'static str)>,
}

#[derive(Template)]
#[template(path = "courses/plan.html")]
struct PlanPage {
    layout: Layout,
    plan: Plan,
    ends: String,
    quota: String,
    values: Vec<(String, String)>,
}

#[derive(Template)]
#[template(path = "courses/index.html")]
struct IndexPage {
    layout: Layout,
    courses: Vec<(String, String, String)>,
    is_admin: bool,
}

fn html(status: StatusCode, template: &impl Template) -> AppResult<Response> {
    Ok((status, Html(template.render()?)).into_response())
}

fn quota_fields(values: &HashMap<String, String>) -> Vec<QuotaField> {
    QUOTA
        .iter()
        .chain(ns_spec::DEFAULTS.iter())
        .map(|s| QuotaField {
            field: s.field,
            label: s.label,
            help: s.help,
            value: values.get(s.field).cloned().unwrap_or_default(),
        })
        .collect()
}

/// Form values for stored (or default) settings.
fn settings_values(
    name: &str,
    limits: &Limits,
    ends_at: Option<i64>,
    grace_days: i64,
    delete_volumes: bool,
) -> HashMap<String, String> {
    let mut values: HashMap<String, String> = ns_spec::all_settings()
        .filter_map(|s| limits.get(s).map(|v| (s.field.to_owned(), v.to_owned())))
        .collect();
    values.insert("course".into(), name.to_owned());
    if let Some(at) = ends_at {
        let display = crate::clock::display(at);
        values.insert(
            "ends_at".into(),
            display.trim_end_matches(" UTC").to_owned(),
        );
    }
    values.insert("grace_days".into(), grace_days.to_string());
    if delete_volumes {
        values.insert("delete_volumes".into(), "on".into());
    }
    values
}

fn roster_text(stored: &Stored) -> String {
    let mut text = String::from("team,email,role\n");
    for (team, members) in &stored.roster {
        for (email, role) in members {
            text.push_str(&format!("{team},{email},{}\n", role.as_str()));
        }
    }
    text
}

fn course_view(stored: &Stored) -> CourseView {
    let s = &stored.settings;
    let state = match (stored.scaled_at, stored.removed_at) {
        (_, Some(at)) => format!("ended; workloads deleted {}", crate::clock::display(at)),
        (Some(at), None) => format!(
            "ended; workloads scaled to zero {}, deleted after {}",
            crate::clock::display(at),
            crate::clock::display(s.ends_at + s.grace_secs)
        ),
        (None, None) => "running".to_owned(),
    };
    CourseView {
        name: s.name.clone(),
        ends: crate::clock::display(s.ends_at),
        grace_days: s.grace_secs / 86_400,
        delete_volumes: s.delete_volumes,
        state,
        teams: stored
            .roster
            .iter()
            .map(|(team, members)| TeamView {
                team: team.clone(),
                namespace: spec::namespace_of(&s.name, team),
                members: members
                    .iter()
                    .map(|(e, r)| (e.clone(), r.as_str()))
                    .collect(),
            })
            .collect(),
    }
}

/// Whether `user` owns at least one namespace of the stored course (or is an admin).
async fn may_see(state: &AppState, user: &CurrentUser, stored: &Stored) -> AppResult<bool> {
    if user.is_admin {
        return Ok(true);
    }
    for team in stored.roster.keys() {
        let ns = spec::namespace_of(&stored.settings.name, team);
        if membership::role_of(&state.db, &user.email, &ns).await? == Some(Role::Owner) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// `GET /courses`: the courses this person may upload rosters for.
pub async fn index(State(state): State<AppState>, user: CurrentUser) -> AppResult<Response> {
    let mut courses = Vec::new();
    for name in ops::names(&state.db).await? {
        if let Some(stored) = ops::load(&state.db, &name)
            .await
            .map_err(AppError::Internal)?
            && may_see(&state, &user, &stored).await?
        {
            let view = course_view(&stored);
            courses.push((view.name, view.ends, view.state));
        }
    }
    html(
        StatusCode::OK,
        &IndexPage {
            layout: Layout::for_user(&state.db, &user).await?,
            courses,
            is_admin: user.is_admin,
        },
    )
}

/// `GET /courses/new`: an empty upload with the default quota.
pub async fn new_form(
    State(state): State<AppState>,
    AdminUser(user): AdminUser,
) -> AppResult<Response> {
    let values = settings_values("", &state.default_limits, None, 14, false);
    let page = FormPage {
        layout: Layout::for_user(&state.db, &user).await?,
        course: None,
        quota: quota_fields(&values),
        values,
        errors: FieldErrors::in_order(&spec::FORM_ORDER),
        lines: Vec::new(),
        settings_locked: false,
        message: None,
    };
    html(StatusCode::OK, &page)
}

async fn load_visible(state: &AppState, user: &CurrentUser, name: &str) -> AppResult<Stored> {
    let not_found = || AppError::NotFound(format!("There is no course {name} that you own."));
    if !membership::valid_name(name) {
        return Err(not_found());
    }
    let stored = ops::load(&state.db, name)
        .await
        .map_err(AppError::Internal)?
        .ok_or_else(not_found)?;
    if !may_see(state, user, &stored).await? {
        return Err(not_found());
    }
    Ok(stored)
}

/// `GET /courses/{name}`: the course, and the form to upload its roster again.
pub async fn show(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(name): Path<String>,
) -> AppResult<Response> {
    let stored = load_visible(&state, &user, &name).await?;
    let s = &stored.settings;
    let mut values = settings_values(
        &s.name,
        &s.limits,
        Some(s.ends_at),
        s.grace_secs / 86_400,
        s.delete_volumes,
    );
    values.insert("roster".into(), roster_text(&stored));
    let page = FormPage {
        layout: Layout::for_user(&state.db, &user).await?,
        course: Some(course_view(&stored)),
        quota: quota_fields(&values),
        values,
        errors: FieldErrors::in_order(&spec::FORM_ORDER),
        lines: Vec::new(),
        settings_locked: !user.is_admin,
        message: None,
    };
    html(StatusCode::OK, &page)
}

/// The form again with every problem, status 422 (or `status`).
async fn refused(
    state: &AppState,
    user: &CurrentUser,
    values: HashMap<String, String>,
    refusal: Refusal,
    status: StatusCode,
    message: Option<String>,
) -> AppResult<Response> {
    let name = values.get("course").cloned().unwrap_or_default();
    let stored = if membership::valid_name(&name) {
        ops::load(&state.db, &name)
            .await
            .map_err(AppError::Internal)?
    } else {
        None
    };
    let course = match &stored {
        Some(stored) => may_see(state, user, stored)
            .await?
            .then(|| course_view(stored)),
        None => None,
    };
    let page = FormPage {
        layout: Layout::for_user(&state.db, user).await?,
        course,
        quota: quota_fields(&values),
        values,
        errors: refusal.fields,
        lines: refusal.lines,
        settings_locked: !user.is_admin,
        message,
    };
    html(status, &page)
}

/// Parses and plans an upload, and checks `user` may apply it. `Err` is the
/// page to answer with (nothing was changed).
async fn prepare(
    state: &AppState,
    user: &CurrentUser,
    values: &HashMap<String, String>,
) -> AppResult<Result<Plan, Response>> {
    let allowed = |email: &str| state.config.auth.email_allowed(email);
    let course = match spec::parse(values, &allowed) {
        Ok(course) => course,
        Err(refusal) => {
            return Ok(Err(refused(
                state,
                user,
                values.clone(),
                refusal,
                StatusCode::UNPROCESSABLE_ENTITY,
                None,
            )
            .await?));
        }
    };
    let current = ops::current(state, &course)
        .await
        .map_err(AppError::Internal)?;
    let plan = plan::plan(&course, &current);
    if let Some(reason) = refusal_for(state, user, &plan).await? {
        audit::record(
            &state.db,
            audit::Entry {
                actor: &user.email,
                action: "course.upload",
                namespace: None,
                target: Some(&plan.settings.name),
                outcome: Outcome::Denied,
                detail: Some(&reason),
            },
        )
        .await;
        return Ok(Err(refused(
            state,
            user,
            values.clone(),
            Refusal::default(),
            StatusCode::FORBIDDEN,
            Some(reason),
        )
        .await?));
    }
    Ok(Ok(plan))
}

/// Why `user` may not apply `plan`, if they may not.
async fn refusal_for(
    state: &AppState,
    user: &CurrentUser,
    plan: &Plan,
) -> AppResult<Option<String>> {
    if user.is_admin {
        return Ok(None);
    }
    if plan.needs_admin() {
        let mut what = Vec::new();
        if plan.new_course {
            what.push(format!("create the course {}", plan.settings.name));
        }
        what.extend(
            plan.creates()
                .map(|n| format!("create the namespace {}", n.namespace)),
        );
        what.extend(
            plan.setting_changes
                .iter()
                .map(|c| format!("change the {c}")),
        );
        return Ok(Some(format!(
            "Only an admin can {}. Upload the roster with the course's settings unchanged, or ask an admin.",
            what.join(", ")
        )));
    }
    for ns in &plan.namespaces {
        if membership::role_of(&state.db, &user.email, &ns.namespace).await? != Some(Role::Owner) {
            return Ok(Some(format!(
                "You are not an owner of {}: you can upload the roster only for namespaces you own.",
                ns.namespace
            )));
        }
    }
    Ok(None)
}

/// Every field of the upload, to carry from the dry run to the apply.
fn carried(values: &HashMap<String, String>) -> Vec<(String, String)> {
    let mut keys: Vec<&String> = values
        .keys()
        .filter(|k| *k != "csrf_token" && *k != "edit")
        .collect();
    keys.sort();
    keys.into_iter()
        .map(|k| (k.clone(), values[k].clone()))
        .collect()
}

/// The upload's fields, from a multipart form (with the roster as a file)
/// or a plain one (pasted). A file, when one was chosen, wins over the
/// text box; `Err` says why the file cannot be read.
async fn read_upload(request: Request) -> AppResult<(HashMap<String, String>, Option<String>)> {
    let multipart = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"));
    if !multipart {
        let Form(values) = Form::<HashMap<String, String>>::from_request(request, &())
            .await
            .map_err(|e| AppError::BadRequest(e.body_text()))?;
        return Ok((values, None));
    }
    let mut form = Multipart::from_request(request, &())
        .await
        .map_err(|e| AppError::BadRequest(e.body_text()))?;
    let mut values = HashMap::new();
    let mut file_error = None;
    let mut file = None;
    while let Some(field) = form
        .next_field()
        .await
        .map_err(|e| AppError::BadRequest(e.body_text()))?
    {
        let name = field.name().unwrap_or_default().to_owned();
        let bytes = field
            .bytes()
            .await
            .map_err(|e| AppError::BadRequest(e.body_text()))?;
        if name == "roster_file" {
            if bytes.len() > spec::MAX_ROSTER_BYTES {
                file_error = Some(format!(
                    "The file is larger than {} KiB.",
                    spec::MAX_ROSTER_BYTES / 1024
                ));
            } else if !bytes.is_empty() {
                match String::from_utf8(bytes.to_vec()) {
                    Ok(text) => file = Some(text),
                    Err(_) => {
                        file_error = Some(
                            "The file is not text (UTF-8): save it from the spreadsheet as CSV."
                                .to_owned(),
                        );
                    }
                }
            }
        } else {
            values.insert(name, String::from_utf8_lossy(&bytes).into_owned());
        }
    }
    if let Some(text) = file {
        values.insert("roster".to_owned(), text);
    }
    Ok((values, file_error))
}

/// `POST /courses/preview`: the dry run; nothing is changed.
pub async fn preview(
    State(state): State<AppState>,
    user: CurrentUser,
    request: Request,
) -> AppResult<Response> {
    let (values, file_error) = read_upload(request).await?;
    if let Some(message) = file_error {
        return refused(
            &state,
            &user,
            values,
            Refusal::of_field("roster_file", message),
            StatusCode::UNPROCESSABLE_ENTITY,
            None,
        )
        .await;
    }
    if values.contains_key("edit") {
        // "Change the upload" on the dry run: the form with the values.
        return refused(
            &state,
            &user,
            values,
            Refusal::default(),
            StatusCode::OK,
            None,
        )
        .await;
    }
    let plan = match prepare(&state, &user, &values).await? {
        Ok(plan) => plan,
        Err(page) => return Ok(page),
    };
    let page = PlanPage {
        layout: Layout::for_user(&state.db, &user).await?,
        ends: crate::clock::display(plan.settings.ends_at),
        quota: plan::limits_summary(&plan.settings.limits).replace(',', ", "),
        plan,
        values: carried(&values),
    };
    html(StatusCode::OK, &page)
}

/// `POST /courses/apply`: plans again against what exists now and applies.
pub async fn apply(
    State(state): State<AppState>,
    user: CurrentUser,
    Form(values): Form<HashMap<String, String>>,
) -> AppResult<Response> {
    let plan = match prepare(&state, &user, &values).await? {
        Ok(plan) => plan,
        Err(page) => return Ok(page),
    };
    let name = plan.settings.name.clone();
    let no_op = plan.is_no_op();
    match ops::apply(&state, &user.email, &user.identity(), &plan).await {
        Ok(steps) => {
            let message = if no_op {
                format!("Course {name}: no changes.")
            } else {
                format!("Course {name} applied: {steps} changes made.")
            };
            flash(&state.db, &user, FlashKind::Success, &message).await?;
            Ok(Redirect::to(&urls::course(&name)).into_response())
        }
        Err(error) => {
            refused(
                &state,
                &user,
                values,
                Refusal::default(),
                StatusCode::BAD_GATEWAY,
                Some(format!(
                    "Not everything was applied: {error}. What is listed as done stays; apply again to finish."
                )),
            )
            .await
        }
    }
}

#[cfg(test)]
mod render_tests {
    //! The course form renders its messages with the shared field macro and
    //! summary, in form order.
    use super::*;

    #[test]
    fn the_course_form_links_its_messages_in_form_order() {
        let allowed = |_: &str| true;
        let mut values = HashMap::new();
        values.insert("course".to_owned(), "Bad Name".to_owned());
        values.insert("pods".to_owned(), "lots".to_owned());
        values.insert("grace_days".to_owned(), "-1".to_owned());
        values.insert("ends_at".to_owned(), "2026-12-18".to_owned());
        let refusal = spec::parse(&values, &allowed).expect_err("refused");
        assert_eq!(refusal.fields.fields(), ["course", "grace_days", "pods"]);
        let html = FormPage {
            layout: Layout::bare(),
            course: None,
            quota: quota_fields(&values),
            values,
            errors: refusal.fields,
            lines: refusal.lines,
            settings_locked: false,
            message: Some("Only an admin can do this.".into()),
        }
        .render()
        .expect("renders");
        assert!(html.contains("<h2>Nothing was changed</h2>"), "{html}");
        let message = html
            .find("<li>Only an admin can do this.</li>")
            .expect("message");
        let course = html.find(r##"<li><a href="#course">"##).expect("course");
        let grace = html.find(r##"<li><a href="#grace_days">"##).expect("grace");
        let pods = html.find(r##"<li><a href="#pods">"##).expect("pods");
        assert!(message < course && course < grace && grace < pods, "{html}");
        assert!(
            html.contains(r#"aria-describedby="pods-help pods-error" aria-invalid="true""#),
            "{html}"
        );
    }
}
