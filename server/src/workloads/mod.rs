//! Workloads: deploy and expose an image with one form, applied as the user.
//!
//! So far: the validated domain type ([`spec`]) and the pure builders that turn
//! it into Kubernetes objects ([`build`]).

pub mod build;
pub mod deploy;
pub mod form;
pub mod quota;
pub mod spec;

pub use deploy::{ExposeConfig, deploy_router};
