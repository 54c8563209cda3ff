//! The two writes every feature makes, written once: a server-side apply as
//! Berth's field manager, and a delete that is content when the object is
//! already gone (the delete twin of kube-rs's `Api::get_opt`).

use ::kube::{
    Api, Resource, ResourceExt,
    api::{DeleteParams, Patch, PatchParams},
};
use serde::{Serialize, de::DeserializeOwned};

use super::{FIELD_MANAGER, KubeError};

/// Server-side apply of `object` (named by its metadata) as Berth.
///
/// `force`: Berth owns the fields it applies; a hand edit with kubectl must
/// not leave a form unable to save with a conflict nobody can resolve.
pub async fn apply<K>(api: &Api<K>, object: &K) -> Result<K, KubeError>
where
    K: Resource + Clone + DeserializeOwned + Serialize + std::fmt::Debug,
{
    let params = PatchParams::apply(FIELD_MANAGER).force();
    Ok(api
        .patch(&object.name_any(), &params, &Patch::Apply(object))
        .await?)
}

/// Deletes `name` in the background (dependents follow through the garbage
/// collector); `Ok(false)` when there was nothing to delete.
pub async fn delete_opt<K>(api: &Api<K>, name: &str) -> Result<bool, KubeError>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    match api.delete(name, &DeleteParams::background()).await {
        Ok(_) => Ok(true),
        Err(error) => match KubeError::from(error) {
            error if error.is_not_found() => Ok(false),
            error => Err(error),
        },
    }
}
