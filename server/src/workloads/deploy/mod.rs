//! The deploy form: one page that creates (or edits) a workload's image pull
//! Secret, volume, Deployment and Service, applied with server-side apply
//! through the impersonating client, so RBAC and quota admission decide too.
//!
//! Order matters and is shown: Secret → claim → Deployment → Service. If a step
//! fails, the page says what exists and what failed, and submitting again
//! finishes the job (server-side apply makes every step idempotent).
//!
//! The handlers here parse the form and show the page; what a submit would
//! apply is decided in [`plan`], and applied and recorded in [`execute`].

mod execute;
mod plan;

use askama::Template;
use axum::{
    Form, Router,
    extract::{Path, Query, State},
    http::StatusCode,
    response::{Html, IntoResponse, Redirect, Response},
    routing::get,
};
use clap::{ArgAction, Args};
use k8s_openapi::api::apps::v1::Deployment;
use serde::{Deserialize, Serialize};

use super::{
    build::{self, ExposeSettings},
    form::{DeployForm, ImageSource, Preset, VolumeChoice},
    quota::{self, Check, Defaults},
    spec::FieldErrors,
    volumes::{self, ClaimView},
};
use crate::{
    app::AppState,
    auth::{CurrentUser, NamespaceMember},
    error::{AppError, AppResult},
    kube::cached,
    registries::store,
    web::{FlashKind, Layout, flash, urls},
};

pub use super::build::FORM_ANNOTATION;

/// How exposure is offered, from configuration.
#[derive(Debug, Clone, Args)]
pub struct ExposeConfig {
    /// Offer public exposure (a LoadBalancer on the public address pool).
    #[arg(long, env = "BERTH_PUBLIC_EXPOSURE", default_value_t = true, action = ArgAction::Set)]
    pub public_exposure: bool,

    /// Annotation, as key=value, that puts a LoadBalancer on the public pool.
    /// MetalLB 0.13 and later read `metallb.io/address-pool` (0.15 still
    /// honours the deprecated `metallb.universe.tf/address-pool`, with a
    /// warning Event on every Service); set the older key for an older MetalLB.
    #[arg(
        long,
        env = "BERTH_PUBLIC_POOL_ANNOTATION",
        default_value = "metallb.io/address-pool=geddes-public-pool",
        value_parser = parse_annotation
    )]
    pub public_pool_annotation: (String, String),
}

fn parse_annotation(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => {
            Ok((key.trim().to_owned(), value.trim().to_owned()))
        }
        _ => Err("write the annotation as key=value".to_owned()),
    }
}

/// Routes of the deploy form.
pub fn deploy_router() -> Router<AppState> {
    Router::new()
        .route("/namespaces/{ns}/workloads/new", get(deploy_form))
        .route(
            "/namespaces/{ns}/workloads",
            axum::routing::post(deploy_submit),
        )
        .route(
            "/namespaces/{ns}/workloads/{name}/edit",
            get(edit_form).post(edit_submit),
        )
}

/// A registered image as the picker shows it.
struct ImageOption {
    id: String,
    label: String,
}

/// One step of applying, as the page reports it.
struct StepView {
    what: String,
    ok: bool,
    message: String,
}

#[derive(Template)]
#[template(path = "workloads/deploy.html")]
struct DeployPage {
    layout: Layout,
    namespace: String,
    editing: bool,
    form: DeployForm,
    errors: FieldErrors,
    images: Vec<ImageOption>,
    defaults: Defaults,
    quota: Option<Check>,
    quota_refusal: Option<String>,
    parsed_command: Vec<String>,
    parsed_args: Vec<String>,
    steps: Vec<StepView>,
    cluster_error: Option<String>,
    public_allowed: bool,
    public_annotation: String,
    checked: bool,
    claims: Vec<ClaimView>,
    claims_error: Option<String>,
    reuse_confirmed: bool,
}

impl DeployPage {
    fn error(&self, field: &str) -> Option<&str> {
        self.errors.get(field)
    }

    fn resource_value(&self, field: &str) -> &str {
        match field {
            "cpu_request" => &self.form.cpu_request,
            "cpu_limit" => &self.form.cpu_limit,
            "memory_request" => &self.form.memory_request,
            _ => &self.form.memory_limit,
        }
    }

    /// The namespace's container default for a resource field.
    fn default_for(&self, bound: &Bound, resource: &str) -> String {
        let map = match bound {
            Bound::Limit => &self.defaults.limit,
            Bound::Request => &self.defaults.request,
        };
        map.get(resource).cloned().unwrap_or_default()
    }
}

/// Whether a resource field is a request or a limit (which container
/// default it falls back to).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bound {
    Request,
    Limit,
}

#[derive(Debug, Deserialize)]
struct NewQuery {
    preset: Option<String>,
    image: Option<i64>,
}

/// What the form posts: the fields, and which button was pressed.
#[derive(Debug, Deserialize, Serialize)]
struct Submitted {
    #[serde(flatten)]
    form: DeployForm,
    #[serde(default)]
    action: Action,
    /// `on`: a new volume although the namespace has one (see `volumes`).
    #[serde(default)]
    reuse_confirmed: Option<String>,
}

/// Which of the form's buttons was pressed (`name="action"`).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
enum Action {
    /// "Check quota": validate and preview, apply nothing.
    Check,
    /// "Deploy" or "Save changes"; so is a form without the field or with
    /// any other value, as before.
    #[default]
    #[serde(other)]
    Deploy,
}

enum Mode {
    New,
    Edit(String),
}

struct Context {
    images: Vec<ImageOption>,
    defaults: Defaults,
    /// The namespace's volume claims, or why they could not be read;
    /// `None` until something needs them (a form that shows them, or a
    /// submit that asks for a volume): a submit without one lists nothing.
    claims: Option<Result<Vec<ClaimView>, String>>,
}

async fn context(state: &AppState, ns: &str) -> AppResult<Context> {
    let caches = state.kube.caches()?;
    if caches.namespace(ns).is_none() {
        return Err(AppError::NotFound(format!(
            "There is no Berth namespace {ns} in the cluster."
        )));
    }
    let ranges = caches.limit_ranges.in_namespace(ns);
    let defaults = Defaults::from_limit_ranges(ranges.iter().map(AsRef::as_ref));
    let images = store::list_images(&state.db, ns)
        .await?
        .into_iter()
        .map(|image| ImageOption {
            id: image.id.to_string(),
            label: image.reference(),
        })
        .collect();
    Ok(Context {
        images,
        defaults,
        claims: None,
    })
}

/// The namespace's volume claims, listed as the person, with the workloads
/// that mount them; or why they could not be read.
async fn read_claims(
    state: &AppState,
    user: &CurrentUser,
    ns: &str,
) -> Result<Vec<ClaimView>, String> {
    let client = state
        .kube
        .client_for(&user.identity())
        .map_err(|e| e.to_string())?;
    let claims = volumes::list_claims(&client, ns)
        .await
        .map_err(|e| e.to_string())?;
    let caches = state.kube.caches().map_err(|e| e.to_string())?;
    let deployments = caches.deployments.in_namespace(ns);
    Ok(volumes::claim_views(
        &claims,
        deployments.iter().map(AsRef::as_ref),
    ))
}

/// The spec a form asks for, as far as the quota is concerned: the image does
/// not count, so a form with no image chosen yet can still be previewed.
fn quota_spec(state: &AppState, ns: &str, form: &DeployForm) -> Option<super::spec::WorkloadSpec> {
    let probe = DeployForm {
        image_source: ImageSource::Public,
        image: "preview.invalid/preview:1".into(),
        ..form.clone()
    };
    probe
        .parse(ns, "", &state.config.registry.default_registry)
        .ok()
        .map(|deploy| deploy.spec)
}

/// A quota preview from the form as it stands, whatever the image field says.
fn quota_preview(
    state: &AppState,
    ns: &str,
    form: &DeployForm,
    current: Option<&Current>,
    defaults: &Defaults,
) -> Option<Check> {
    let spec = quota_spec(state, ns, form)?;
    let caches = state.kube.caches().ok()?;
    let quotas = caches.quotas.in_namespace(ns);
    let edit = current.map(|c| c.edit(state, ns, form));
    Some(quota::check(
        &spec,
        defaults,
        quotas.iter().map(AsRef::as_ref),
        edit.as_ref(),
    ))
}

/// The workload being edited, as far as the quota is concerned: what it
/// holds now (as the caches last heard from the apiserver) and the form it
/// was made from.
struct Current {
    existing: quota::Existing,
    kept: Option<DeployForm>,
}

impl Current {
    fn of(
        state: &AppState,
        ns: &str,
        deployment: &cached::Deployment,
        defaults: &Defaults,
    ) -> Self {
        let name = &deployment.metadata.name;
        let kept = deployment
            .form
            .as_deref()
            .and_then(|json| serde_json::from_str::<DeployForm>(json).ok());
        let mut objects = quota::Amounts::new();
        if let Ok(caches) = state.kube.caches()
            && let Some(service) = caches.services.get(ns, name)
        {
            objects.extend(quota::service_demand(&service));
        }
        // Berth's claim outlives a form without a volume, but its size is
        // known only from the form that made it.
        if let Some(kept_spec) = kept.as_ref().and_then(|f| quota_spec(state, ns, f)) {
            objects.extend(quota::claim_demand(&kept_spec));
        }
        Self {
            existing: quota::Existing {
                replicas: deployment
                    .spec
                    .as_ref()
                    .and_then(|s| s.replicas)
                    .unwrap_or(1),
                pod: quota::live_pod(&deployment.resources, defaults),
                objects,
            },
            kept,
        }
    }

    /// The edit `form` asks for: whether it changes the pod template (a
    /// rollout) or only the replicas.
    fn edit(&self, state: &AppState, ns: &str, form: &DeployForm) -> quota::Edit {
        quota::Edit {
            existing: self.existing.clone(),
            template_changes: self
                .kept
                .as_ref()
                .is_none_or(|kept| template_changes(state, ns, kept, form)),
        }
    }
}

/// Whether going from the `kept` form to `form` changes the pod template,
/// which starts a rollout; a change of replicas alone does not.
fn template_changes(state: &AppState, ns: &str, kept: &DeployForm, form: &DeployForm) -> bool {
    let same_image = kept.image_source == form.image_source
        && match form.image_source {
            ImageSource::Registered => kept.image_id.trim() == form.image_id.trim(),
            _ => kept.image.trim() == form.image.trim(),
        };
    let template = |f: &DeployForm| {
        quota_spec(state, ns, f).and_then(|spec| build::deployment(&spec).spec.map(|d| d.template))
    };
    match (template(kept), template(form)) {
        (Some(before), Some(after)) => !same_image || before != after,
        _ => true,
    }
}

/// The parts of the form page that stay the same through one request.
struct Screen<'a> {
    state: &'a AppState,
    user: &'a CurrentUser,
    layout: Layout,
    ns: &'a str,
    editing: bool,
    ctx: Context,
    current: Option<Current>,
}

/// What changes between renderings of the form page.
#[derive(Default)]
struct Rendering {
    errors: FieldErrors,
    steps: Vec<StepView>,
    cluster_error: Option<String>,
    checked: bool,
    reuse_confirmed: bool,
}

impl Screen<'_> {
    fn render(
        self,
        form: DeployForm,
        outcome: Rendering,
        claims: Result<Vec<ClaimView>, String>,
    ) -> AppResult<String> {
        let state = self.state;
        let quota = quota_preview(
            state,
            self.ns,
            &form,
            self.current.as_ref(),
            &self.ctx.defaults,
        );
        let quota_refusal = quota.as_ref().and_then(Check::refusal);
        let parsed_command = super::spec::split_command(&form.command).unwrap_or_default();
        let parsed_args = super::spec::split_command(&form.args).unwrap_or_default();
        let (key, value) = &state.config.expose.public_pool_annotation;
        let (claims, claims_error) = match claims {
            Ok(claims) => (claims, None),
            Err(error) => (Vec::new(), Some(error)),
        };
        Ok(DeployPage {
            layout: self.layout,
            namespace: self.ns.to_owned(),
            editing: self.editing,
            form,
            errors: outcome.errors,
            images: self.ctx.images,
            defaults: self.ctx.defaults,
            quota,
            quota_refusal,
            parsed_command,
            parsed_args,
            steps: outcome.steps,
            cluster_error: outcome.cluster_error,
            public_allowed: state.config.expose.public_exposure,
            public_annotation: format!("{key}: {value}"),
            checked: outcome.checked,
            claims,
            claims_error,
            reuse_confirmed: outcome.reuse_confirmed,
        }
        .render()?)
    }

    /// The form again, with `status` and each message beside its field.
    async fn respond(
        mut self,
        status: StatusCode,
        form: DeployForm,
        outcome: Rendering,
    ) -> AppResult<Response> {
        let claims = match self.ctx.claims.take() {
            Some(claims) => claims,
            None => read_claims(self.state, self.user, self.ns).await,
        };
        Ok((status, Html(self.render(form, outcome, claims)?)).into_response())
    }

    async fn invalid(self, form: DeployForm, errors: FieldErrors) -> AppResult<Response> {
        self.respond(
            StatusCode::UNPROCESSABLE_ENTITY,
            form,
            Rendering {
                errors,
                ..Rendering::default()
            },
        )
        .await
    }
}

async fn deploy_form(
    State(state): State<AppState>,
    NamespaceMember {
        user,
        namespace: ns,
    }: NamespaceMember,
    Query(query): Query<NewQuery>,
) -> AppResult<Response> {
    let ctx = context(&state, &ns).await?;
    let mut form = match query.preset.as_deref().and_then(Preset::parse) {
        Some(preset) => DeployForm::preset(preset, &ns),
        None => DeployForm::blank(),
    };
    if let Some(id) = query.image {
        form.image_source = ImageSource::Registered;
        form.image_id = id.to_string();
    } else if form.image_source == ImageSource::Registered && ctx.images.len() == 1 {
        form.image_id = ctx.images[0].id.clone();
    }
    if form.image_source == ImageSource::Registered
        && ctx.images.is_empty()
        && query.image.is_none()
    {
        form.image_source = ImageSource::Public;
    }
    let layout = Layout::for_user(&state.db, &user).await?;
    let screen = Screen {
        state: &state,
        user: &user,
        layout,
        ns: &ns,
        editing: false,
        ctx,
        current: None,
    };
    screen
        .respond(StatusCode::OK, form, Rendering::default())
        .await
}

async fn edit_form(
    State(state): State<AppState>,
    NamespaceMember {
        user,
        namespace: ns,
    }: NamespaceMember,
    Path((_, name)): Path<(String, String)>,
) -> AppResult<Response> {
    let ctx = context(&state, &ns).await?;
    // Only Berth's own workloads can be edited, as on the workload pages.
    let deployment = super::lookup::live_workload(&state, &user, &ns, &name).await?;
    let form = form_of(&state, &ns, &deployment, &name);
    let cached = super::lookup::find_workload(state.kube.caches()?, &ns, &name)?;
    let current = Current::of(&state, &ns, &cached, &ctx.defaults);
    let layout = Layout::for_user(&state.db, &user).await?;
    let screen = Screen {
        state: &state,
        user: &user,
        layout,
        ns: &ns,
        editing: true,
        ctx,
        current: Some(current),
    };
    screen
        .respond(StatusCode::OK, form, Rendering::default())
        .await
}

async fn deploy_submit(
    State(state): State<AppState>,
    NamespaceMember {
        user,
        namespace: ns,
    }: NamespaceMember,
    Form(submitted): Form<Submitted>,
) -> AppResult<Response> {
    submit(state, user, ns, Mode::New, submitted).await
}

async fn edit_submit(
    State(state): State<AppState>,
    NamespaceMember {
        user,
        namespace: ns,
    }: NamespaceMember,
    Path((_, name)): Path<(String, String)>,
    Form(submitted): Form<Submitted>,
) -> AppResult<Response> {
    submit(state, user, ns, Mode::Edit(name), submitted).await
}

/// The form kept on a Deployment Berth made (annotation [`FORM_ANNOTATION`]).
fn kept_form(deployment: &Deployment) -> Option<DeployForm> {
    deployment
        .metadata
        .annotations
        .as_ref()?
        .get(FORM_ANNOTATION)
        .and_then(|json| serde_json::from_str::<DeployForm>(json).ok())
}

/// The form an existing Deployment was made from; its replicas follow the
/// cluster (they may have been scaled since). Without a kept form, the live
/// Deployment and Service say what to show.
fn form_of(state: &AppState, ns: &str, deployment: &Deployment, name: &str) -> DeployForm {
    let mut form = kept_form(deployment).unwrap_or_else(|| {
        let service = state
            .kube
            .caches()
            .ok()
            .and_then(|c| c.services.get(ns, name));
        DeployForm::from_live(
            deployment,
            service.as_deref(),
            &state.config.expose.public_pool_annotation,
        )
    });
    form.name = name.to_owned();
    if let Some(replicas) = deployment.spec.as_ref().and_then(|s| s.replicas) {
        form.replicas = replicas.to_string();
    }
    form
}

async fn submit(
    state: AppState,
    user: CurrentUser,
    ns: String,
    mode: Mode,
    submitted: Submitted,
) -> AppResult<Response> {
    let mut ctx = context(&state, &ns).await?;
    let mut form = submitted.form;
    // The storage checks need the claims; a workload without a volume does
    // not (the form reads them if it is shown again).
    if form.volume != VolumeChoice::None {
        ctx.claims = Some(read_claims(&state, &user, &ns).await);
    }
    let editing = matches!(mode, Mode::Edit(_));
    if let Mode::Edit(name) = &mode {
        form.name = name.clone();
    }
    let editing_now = match &mode {
        Mode::Edit(name) => {
            let deployment = super::lookup::find_workload(state.kube.caches()?, &ns, name)?;
            Some(Current::of(&state, &ns, &deployment, &ctx.defaults))
        }
        Mode::New => None,
    };
    // Any Deployment of that name, Berth's or not, makes the name taken.
    let name_taken = matches!(mode, Mode::New)
        && state
            .kube
            .caches()?
            .deployments
            .get(&ns, form.name.trim())
            .is_some();
    let screen = Screen {
        state: &state,
        user: &user,
        layout: Layout::for_user(&state.db, &user).await?,
        ns: &ns,
        editing,
        ctx,
        current: editing_now,
    };

    let mut deploy = match form.parse(&ns, &user.email, &state.config.registry.default_registry) {
        Ok(deploy) => deploy,
        Err(errors) => return screen.invalid(form, errors).await,
    };
    let caches = state.kube.caches()?;
    let quotas = caches.quotas.in_namespace(&ns);
    let quota_refs: Vec<&k8s_openapi::api::core::v1::ResourceQuota> =
        quotas.iter().map(AsRef::as_ref).collect();
    let edit = screen.current.as_ref().map(|c| c.edit(&state, &ns, &form));
    let reuse_confirmed = submitted.reuse_confirmed.as_deref() == Some("on");
    let errors = plan::refusals(
        &deploy,
        &plan::Limits {
            name_taken,
            public_exposure: state.config.expose.public_exposure,
            defaults: &screen.ctx.defaults,
            quotas: &quota_refs,
            edit: edit.as_ref(),
            claims: screen.ctx.claims.as_ref().and_then(|c| c.as_deref().ok()),
            reuse_confirmed,
        },
    );
    if !errors.is_empty() {
        let rendering = Rendering {
            errors,
            checked: true,
            reuse_confirmed,
            ..Rendering::default()
        };
        return screen
            .respond(StatusCode::UNPROCESSABLE_ENTITY, form, rendering)
            .await;
    }
    if submitted.action == Action::Check {
        let rendering = Rendering {
            checked: true,
            reuse_confirmed,
            ..Rendering::default()
        };
        return screen.respond(StatusCode::OK, form, rendering).await;
    }

    let Ok(secret) = plan::pull_secret(&state, &ns, &mut deploy).await? else {
        let mut errors = super::spec::field_errors();
        errors.add(
            "image_id",
            "That image is not registered in this namespace (any more).",
        );
        return screen.invalid(form, errors).await;
    };

    let client = state.kube.client_for(&user.identity())?;
    let settings = ExposeSettings {
        public_annotation: state.config.expose.public_pool_annotation.clone(),
    };
    let form_json =
        serde_json::to_string(&form).map_err(|e| AppError::internal("encoding the form", e))?;
    let (steps, failure) =
        execute::apply(&client, &deploy, secret, &settings, &form_json, editing).await;
    execute::record(&state, &user, &ns, &deploy, editing, failure.as_ref()).await;
    match failure {
        None => {
            let message = execute::done_message(&deploy.spec.name, editing);
            flash(&state.db, &user, FlashKind::Success, &message).await?;
            Ok(Redirect::to(&urls::workload(&ns, &deploy.spec.name)).into_response())
        }
        Some(error) => {
            let status = if error.is_denied() {
                StatusCode::FORBIDDEN
            } else {
                StatusCode::UNPROCESSABLE_ENTITY
            };
            let mut errors = super::spec::field_errors();
            let message = error.to_string();
            if let Some(field) = execute::field_of(&error) {
                errors.add(field, message.clone());
            }
            let rendering = Rendering {
                errors,
                steps,
                cluster_error: Some(message),
                checked: false,
                reuse_confirmed,
            };
            screen.respond(status, form, rendering).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pressed_button_is_read_and_anything_else_deploys() {
        let action = |body: &str| {
            serde_urlencoded::from_str::<Submitted>(body)
                .map(|s| s.action)
                .ok()
        };
        assert_eq!(action("name=web&action=check"), Some(Action::Check));
        assert_eq!(action("name=web&action=deploy"), Some(Action::Deploy));
        assert_eq!(action("name=web"), Some(Action::Deploy));
        assert_eq!(action("name=web&action=other"), Some(Action::Deploy));
    }

    #[test]
    fn the_form_inside_a_submit_reads_its_choices() {
        let form = |body: &str| {
            serde_urlencoded::from_str::<Submitted>(body)
                .map(|s| s.form)
                .expect("reads")
        };
        let read = form("name=web&image_source=public&volume=new&action=check");
        assert_eq!(
            (read.image_source, read.volume),
            (ImageSource::Public, VolumeChoice::New)
        );
        let read = form("name=web&image_source=ftp&volume=tape");
        assert_eq!(
            (read.image_source, read.volume),
            (ImageSource::Unchosen, VolumeChoice::Unknown)
        );
    }
}
