//! What a deploy submit would apply, decided before anything is sent: the
//! refusals the parsed form meets (name taken, public exposure switched off,
//! quota, storage), and a registered image resolved to its reference and the
//! image pull Secret to write. The decisions are pure; only reading the
//! registered image and opening its credential touch the store.

use k8s_openapi::api::core::v1::{ResourceQuota, Secret};

use crate::{
    app::AppState,
    error::{AppError, AppResult},
    registries::{self, OpenedCredential, store},
    workloads::{
        form::{Deploy, ImageChoice},
        quota::{self, Defaults},
        spec::{self, Exposure, FieldErrors},
        volumes::{self, ClaimView},
    },
};

/// What the refusals of a submit are judged against.
pub(super) struct Limits<'a> {
    /// A Deployment of that name exists and this is not its edit.
    pub(super) name_taken: bool,
    /// Whether this cluster offers public exposure.
    pub(super) public_exposure: bool,
    /// The namespace's LimitRange defaults.
    pub(super) defaults: &'a Defaults,
    /// The namespace's ResourceQuotas.
    pub(super) quotas: &'a [&'a ResourceQuota],
    /// The workload being edited, as far as the quota is concerned.
    pub(super) edit: Option<&'a quota::Edit>,
    /// The namespace's volume claims, when they could be read.
    pub(super) claims: Option<&'a [ClaimView]>,
    /// The person confirmed a new volume although the namespace has one.
    pub(super) reuse_confirmed: bool,
}

/// Everything that stops `deploy` before anything is applied, each message
/// beside its field; empty when it may go ahead.
pub(super) fn refusals(deploy: &Deploy, limits: &Limits<'_>) -> FieldErrors {
    let mut errors = spec::field_errors();
    if limits.name_taken {
        errors.add(
            "name",
            format!(
                "A workload named {} already exists here: edit it, or pick another name.",
                deploy.spec.name
            ),
        );
    }
    if deploy.spec.exposure == Exposure::Public && !limits.public_exposure {
        errors.add(
            "exposure",
            "Public exposure is switched off on this cluster: choose campus or cluster.",
        );
    }
    let check = quota::check(
        &deploy.spec,
        limits.defaults,
        limits.quotas.iter().copied(),
        limits.edit,
    );
    if let Some(refusal) = check.refusal() {
        errors.add("quota", refusal);
    }
    // Storage guard rails, before anything is applied.
    let storage = volumes::check(
        &deploy.spec,
        limits.claims,
        limits.quotas,
        limits.reuse_confirmed,
    );
    for (field, message) in storage.iter() {
        errors.add(field.to_owned(), message);
    }
    errors
}

/// The chosen image is not registered in this namespace (any more).
pub(super) struct Unregistered;

/// Points `deploy` at the registered image and builds the pull Secret it is
/// pulled with. Pure.
fn use_registered(
    deploy: &mut Deploy,
    ns: &str,
    image: &store::ImageRow,
    credential: &OpenedCredential,
) -> Secret {
    let name = registries::pull::secret_name(image.credential_id);
    deploy.spec.image = image.reference();
    deploy.spec.pull_secret = Some(name.clone());
    registries::pull::pull_secret(
        ns,
        &name,
        &credential.host,
        &credential.robot,
        &credential.token,
    )
}

/// The registered image: its reference written into `deploy`, and the Secret
/// to pull it with. `None` for a public image.
pub(super) async fn pull_secret(
    state: &AppState,
    ns: &str,
    deploy: &mut Deploy,
) -> AppResult<Result<Option<Secret>, Unregistered>> {
    let ImageChoice::Registered(id) = deploy.image else {
        return Ok(Ok(None));
    };
    let image = store::image(&state.db, ns, id).await?;
    let opened = registries::credential_for_image(&state.db, &state.keys, ns, id)
        .await
        .map_err(AppError::Internal)?;
    Ok(match (image, opened) {
        (Some(image), Some(credential)) => {
            Ok(Some(use_registered(deploy, ns, &image, &credential)))
        }
        _ => Err(Unregistered),
    })
}
