//! What the apiserver said, in words a student or an admin understands.

use axum::http::StatusCode;

use crate::{audit::Outcome, error::AppError};

/// A failed call to the cluster.
#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    /// Berth has no cluster configuration.
    #[error("Berth is not connected to a cluster: {0}")]
    Unavailable(String),
    /// The apiserver answered with an error.
    #[error("{}", plain_words(.code, .reason, .message))]
    Api {
        /// HTTP status code.
        code: u16,
        /// Machine-readable reason (`Forbidden`, `AlreadyExists`, …).
        reason: String,
        /// The apiserver's message.
        message: String,
    },
    /// The cluster could not be reached, or the answer made no sense.
    #[error("The cluster did not answer properly; try again in a moment.")]
    Transport(#[source] ::kube::Error),
}

impl From<::kube::Error> for KubeError {
    fn from(error: ::kube::Error) -> Self {
        match error {
            ::kube::Error::Api(status) => Self::Api {
                code: status.code,
                reason: status.reason.clone(),
                message: status.message.clone(),
            },
            other => Self::Transport(other),
        }
    }
}

impl KubeError {
    /// The apiserver said 404.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::Api { code: 404, .. })
    }

    /// The apiserver refused on authorization or admission (403), i.e. RBAC
    /// or a quota said no: audit outcome `denied`, not `failed`.
    pub fn is_denied(&self) -> bool {
        matches!(self, Self::Api { code: 403, .. })
    }

    /// The HTTP status a page answers this with: the apiserver's own code,
    /// 503 when there is no cluster or it did not answer.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Api { code, .. } => {
                StatusCode::from_u16(*code).unwrap_or(StatusCode::BAD_GATEWAY)
            }
            Self::Unavailable(_) | Self::Transport(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// How the audit log records an action that ended with this error.
    pub fn outcome(&self) -> Outcome {
        if self.is_denied() {
            Outcome::Denied
        } else {
            Outcome::Failed
        }
    }
}

impl From<KubeError> for AppError {
    fn from(error: KubeError) -> Self {
        match error.status() {
            StatusCode::FORBIDDEN => AppError::Forbidden(error.to_string()),
            StatusCode::NOT_FOUND => AppError::NotFound(error.to_string()),
            StatusCode::CONFLICT => AppError::Conflict(error.to_string()),
            StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY => {
                AppError::BadRequest(error.to_string())
            }
            StatusCode::SERVICE_UNAVAILABLE => {
                if let KubeError::Transport(source) = &error {
                    tracing::warn!(error = %source, "the cluster did not answer");
                }
                AppError::Unavailable(error.to_string())
            }
            _ => AppError::internal("calling the cluster", error),
        }
    }
}

/// Turns an apiserver error into a sentence.
fn plain_words(code: &u16, reason: &str, message: &str) -> String {
    let message = message.trim();
    match (*code, reason) {
        (403, _) if message.contains("exceeded quota") => {
            let detail = message
                .split_once("exceeded quota:")
                .map_or(message, |(_, rest)| rest.trim());
            format!(
                "This would go over the namespace's quota ({detail}). Ask an admin for more, or make room first."
            )
        }
        (403, _) if message.contains("must specify") => format!(
            "The namespace's quota needs every container to state its requests and limits: {message}"
        ),
        (403, _) => {
            let detail = message
                .split_once(" cannot ")
                .map_or(message.to_owned(), |(_, rest)| format!("cannot {rest}"));
            format!("Kubernetes refused this: your account {detail}.")
        }
        (404, _) => "It does not exist in the cluster (any more).".to_owned(),
        (409, "AlreadyExists") => {
            format!("That name is taken in the cluster: {message}.")
        }
        (409, _) if message.contains("terminat") => {
            "A namespace of that name is still being deleted; try again in a minute.".to_owned()
        }
        (409, _) => {
            format!("Someone changed this at the same time; reload and try again ({message}).")
        }
        (400 | 422, _) => format!("Kubernetes did not accept a value: {message}"),
        (500.., _) => "The cluster had a problem; try again in a moment.".to_owned(),
        _ => format!("Kubernetes refused this: {message}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(code: u16, reason: &str, message: &str) -> KubeError {
        KubeError::Api {
            code,
            reason: reason.to_owned(),
            message: message.to_owned(),
        }
    }

    #[test]
    fn quota_refusals_say_quota() {
        let text = api(
            403,
            "Forbidden",
            "pods \"big\" is forbidden: exceeded quota: berth-quota, requested: requests.memory=2Gi, used: requests.memory=0, limited: requests.memory=1Gi",
        )
        .to_string();
        assert!(text.contains("go over the namespace's quota"), "{text}");
        assert!(text.contains("limited: requests.memory=1Gi"), "{text}");
    }

    #[test]
    fn rbac_refusals_name_what_was_refused() {
        let error = api(
            403,
            "Forbidden",
            "deployments.apps is forbidden: User \"berth:eve@purdue.edu\" cannot create resource \"deployments\" in API group \"apps\" in the namespace \"cs101\"",
        );
        assert!(error.is_denied());
        let text = error.to_string();
        assert!(
            text.starts_with(
                "Kubernetes refused this: your account cannot create resource \"deployments\""
            ),
            "{text}"
        );
    }

    #[test]
    fn terminating_namespaces_are_explained() {
        let text = api(
            409,
            "Conflict",
            "object is being deleted: namespace cs101 is terminating",
        )
        .to_string();
        assert!(text.contains("still being deleted"), "{text}");
    }
}
