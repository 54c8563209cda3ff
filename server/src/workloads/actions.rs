//! Scale, restart and delete a workload, as the signed-in person.
//!
//! Each goes through the impersonating client, so the apiserver's RBAC has
//! the last word, and each ends with an audit row (`workload.scale`,
//! `workload.restart`, `workload.delete`) whatever the outcome.

use askama::Template;
use axum::{
    Form,
    extract::{Path, State},
    http::StatusCode,
    response::{Html, IntoResponse, Redirect, Response},
};
use k8s_openapi::api::{
    apps::v1::Deployment,
    core::v1::{PersistentVolumeClaim, Service},
};
use kube::{
    Api, Client,
    api::{DeleteParams, Patch, PatchParams},
};
use serde::Deserialize;
use serde_json::json;

use super::{
    form::MAX_REPLICAS,
    lookup::{Objects, find_workload},
    view,
};
use crate::{
    app::AppState,
    audit::{self},
    auth::{CurrentUser, NamespaceMember},
    error::AppResult,
    kube::{FIELD_MANAGER, KubeError},
    web::{FlashKind, Layout, flash, urls},
};

fn patch_params() -> PatchParams {
    PatchParams {
        field_manager: Some(FIELD_MANAGER.to_owned()),
        ..PatchParams::default()
    }
}

/// Waits (briefly) until the cache shows what was just done, so the page
/// the redirect lands on shows it too.
async fn settle(state: &AppState, done: impl Fn(&crate::kube::Caches) -> bool) {
    let Ok(caches) = state.kube.caches() else {
        return;
    };
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    while !done(caches) && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// The detail page again, with the refusal shown, and the refusal's status.
async fn refused(
    state: &AppState,
    user: &CurrentUser,
    ns: &str,
    name: &str,
    error: &KubeError,
) -> AppResult<Response> {
    let data = view::show_page(state, user, ns, name, None, None, Some(error.to_string())).await?;
    view::show_response(error.status(), &data)
}

/// The scale form.
#[derive(Debug, Deserialize)]
pub struct ScaleForm {
    #[serde(default)]
    replicas: String,
}

/// Parses a replica count, 0 to [`MAX_REPLICAS`].
pub fn parse_replicas(text: &str) -> Result<i32, String> {
    match text.trim().parse::<i32>() {
        Ok(n) if (0..=MAX_REPLICAS).contains(&n) => Ok(n),
        _ => Err(format!(
            "Use a whole number from 0 to {MAX_REPLICAS} (0 stops every pod but keeps the workload)."
        )),
    }
}

/// Sets the Deployment's replicas. A merge patch of the Deployment itself,
/// not the `scale` subresource, which the member role does not grant.
pub async fn set_replicas(
    client: &Client,
    ns: &str,
    name: &str,
    replicas: i32,
) -> Result<(), KubeError> {
    Api::<Deployment>::namespaced(client.clone(), ns)
        .patch(
            name,
            &patch_params(),
            &Patch::Merge(json!({"spec": {"replicas": replicas}})),
        )
        .await?;
    Ok(())
}

/// `POST /namespaces/{ns}/workloads/{name}/scale`.
pub async fn scale(
    State(state): State<AppState>,
    NamespaceMember {
        user,
        namespace: ns,
    }: NamespaceMember,
    Path((_, name)): Path<(String, String)>,
    Form(form): Form<ScaleForm>,
) -> AppResult<Response> {
    let current = find_workload(state.kube.caches()?, &ns, &name)?;
    let replicas = match parse_replicas(&form.replicas) {
        Ok(n) => n,
        Err(message) => {
            let data = view::show_page(
                &state,
                &user,
                &ns,
                &name,
                Some(form.replicas),
                Some(message),
                None,
            )
            .await?;
            return view::show_response(StatusCode::UNPROCESSABLE_ENTITY, &data);
        }
    };
    let before = current.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let result = match state.kube.client_for(&user.identity()) {
        Ok(client) => set_replicas(&client, &ns, &name, replicas).await,
        Err(error) => Err(error),
    };
    let detail = format!("replicas {before} → {replicas}");
    audit::Entry::new(&user.email, "workload.scale")
        .in_namespace(&ns)
        .on(&name)
        .record_result(&state.db, result.as_ref().map(|()| detail.as_str()))
        .await;
    match result {
        Ok(()) => {
            settle(&state, |c| {
                find_workload(c, &ns, &name)
                    .is_ok_and(|d| d.spec.as_ref().and_then(|s| s.replicas) == Some(replicas))
            })
            .await;
            let message = if replicas == 0 {
                format!("{name} is scaled to 0: its pods stop, the workload stays.")
            } else {
                format!("{name} is scaled to {replicas} pods.")
            };
            flash(&state.db, &user, FlashKind::Success, &message).await?;
            Ok(Redirect::to(&urls::workload(&ns, &name)).into_response())
        }
        Err(error) => refused(&state, &user, &ns, &name, &error).await,
    }
}

/// Restarts every pod, one after another, the way `kubectl rollout restart`
/// does: a new timestamp in the pod template makes a new rollout.
pub async fn rollout_restart(client: &Client, ns: &str, name: &str) -> Result<(), KubeError> {
    let now = crate::clock::rfc3339(crate::clock::now());
    Api::<Deployment>::namespaced(client.clone(), ns)
        .patch(
            name,
            &patch_params(),
            &Patch::Merge(json!({"spec": {"template": {"metadata": {"annotations": {
                "kubectl.kubernetes.io/restartedAt": now
            }}}}})),
        )
        .await?;
    Ok(())
}

/// `POST /namespaces/{ns}/workloads/{name}/restart`.
pub async fn restart(
    State(state): State<AppState>,
    NamespaceMember {
        user,
        namespace: ns,
    }: NamespaceMember,
    Path((_, name)): Path<(String, String)>,
) -> AppResult<Response> {
    find_workload(state.kube.caches()?, &ns, &name)?;
    let result = match state.kube.client_for(&user.identity()) {
        Ok(client) => rollout_restart(&client, &ns, &name).await,
        Err(error) => Err(error),
    };
    audit::Entry::new(&user.email, "workload.restart")
        .in_namespace(&ns)
        .on(&name)
        .record_result(&state.db, result.as_ref().map(|()| "rollout restart"))
        .await;
    match result {
        Ok(()) => {
            flash(
                &state.db,
                &user,
                FlashKind::Success,
                &format!("{name} is restarting: new pods replace the old ones one by one."),
            )
            .await?;
            Ok(Redirect::to(&urls::workload(&ns, &name)).into_response())
        }
        Err(error) => refused(&state, &user, &ns, &name, &error).await,
    }
}

// --------------------------------------------------------------------- delete

#[derive(Template)]
#[template(path = "workloads/delete.html")]
struct DeletePage {
    layout: Layout,
    namespace: String,
    name: String,
    pods: usize,
    service: Option<String>,
    own_claims: Vec<String>,
    other_claims: Vec<String>,
    cluster_error: Option<String>,
}

async fn delete_page(
    state: &AppState,
    user: &CurrentUser,
    ns: &str,
    name: &str,
    cluster_error: Option<String>,
) -> AppResult<DeletePage> {
    let caches = state.kube.caches()?;
    let objects = Objects::collect(caches, find_workload(caches, ns, name)?);
    let (own, other): (Vec<_>, Vec<_>) = view::claims_of(&objects.deployment)
        .into_iter()
        .partition(|(_, own)| *own);
    Ok(DeletePage {
        layout: Layout::for_user(&state.db, user).await?,
        namespace: ns.to_owned(),
        name: name.to_owned(),
        pods: objects.pods.len(),
        service: objects.service.as_ref().map(|_| name.to_owned()),
        own_claims: own.into_iter().map(|(c, _)| c).collect(),
        other_claims: other.into_iter().map(|(c, _)| c).collect(),
        cluster_error,
    })
}

/// `GET /namespaces/{ns}/workloads/{name}/delete`: what goes, what stays.
pub async fn delete_form(
    State(state): State<AppState>,
    NamespaceMember {
        user,
        namespace: ns,
    }: NamespaceMember,
    Path((_, name)): Path<(String, String)>,
) -> AppResult<Response> {
    let data = delete_page(&state, &user, &ns, &name, None).await?;
    Ok(Html(data.render()?).into_response())
}

/// The delete form.
#[derive(Debug, Deserialize)]
pub struct DeleteForm {
    /// `on` to delete the workload's own volume claim (and its data) too.
    #[serde(default)]
    delete_volume: Option<String>,
}

/// Deletes the Deployment (its pods go with it), its Service, and the
/// claims in `claims`. The Deployment goes first: if RBAC refuses it,
/// nothing else is touched.
pub async fn delete_workload(
    client: &Client,
    ns: &str,
    name: &str,
    claims: &[String],
) -> Result<(), KubeError> {
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns);
    deployments
        .delete(name, &DeleteParams::background())
        .await
        .map_err(KubeError::from)?;
    crate::kube::delete_opt(&Api::<Service>::namespaced(client.clone(), ns), name).await?;
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), ns);
    for claim in claims {
        crate::kube::delete_opt(&pvcs, claim).await?;
    }
    Ok(())
}

/// `POST /namespaces/{ns}/workloads/{name}/delete`: delete it; its own volume
/// claim only when asked.
pub async fn delete_submit(
    State(state): State<AppState>,
    NamespaceMember {
        user,
        namespace: ns,
    }: NamespaceMember,
    Path((_, name)): Path<(String, String)>,
    Form(form): Form<DeleteForm>,
) -> AppResult<Response> {
    let deployment = find_workload(state.kube.caches()?, &ns, &name)?;
    let with_volume = form.delete_volume.as_deref() == Some("on");
    // Only the claim Berth made for this workload; a claim it mounted but
    // did not make may be shared, so it always stays.
    let own_claims: Vec<String> = view::claims_of(&deployment)
        .into_iter()
        .filter(|(_, own)| *own)
        .map(|(c, _)| c)
        .collect();
    let claims = if with_volume {
        own_claims.clone()
    } else {
        Vec::new()
    };
    let result = match state.kube.client_for(&user.identity()) {
        Ok(client) => delete_workload(&client, &ns, &name, &claims).await,
        Err(error) => Err(error),
    };
    let detail = match (claims.is_empty(), own_claims.is_empty()) {
        (false, _) => format!("volume claim {} deleted", claims.join(", ")),
        (true, false) => format!("volume claim {} kept", own_claims.join(", ")),
        (true, true) => "no volume claim".to_owned(),
    };
    audit::Entry::new(&user.email, "workload.delete")
        .in_namespace(&ns)
        .on(&name)
        .record_result(&state.db, result.as_ref().map(|()| detail.as_str()))
        .await;
    match result {
        Ok(()) => {
            settle(&state, |c| find_workload(c, &ns, &name).is_err()).await;
            let kept = if own_claims.is_empty() || with_volume {
                String::new()
            } else {
                format!(
                    " Its volume claim {} and the data on it were kept.",
                    own_claims.join(", ")
                )
            };
            flash(
                &state.db,
                &user,
                FlashKind::Success,
                &format!("{name} is being deleted.{kept}"),
            )
            .await?;
            Ok(Redirect::to(&urls::workloads(&ns)).into_response())
        }
        Err(error) => {
            let data = delete_page(&state, &user, &ns, &name, Some(error.to_string())).await?;
            Ok((error.status(), Html(data.render()?)).into_response())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replicas_are_0_to_the_maximum() {
        assert_eq!(parse_replicas("0"), Ok(0));
        assert_eq!(parse_replicas(" 3 "), Ok(3));
        assert_eq!(parse_replicas("20"), Ok(20));
        for bad in ["-1", "21", "two", "", "1.5"] {
            assert!(parse_replicas(bad).is_err(), "{bad}");
        }
    }
}
