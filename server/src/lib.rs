//! Berth: a self-hosted web portal for a campus Kubernetes cluster.
//!
//! The binary in `main.rs` is thin; everything lives here so integration tests
//! can start the real application on port 0 (see [`app::Application`]).

pub mod app;
pub mod audit;
pub mod auth;
pub mod clock;
pub mod config;
pub mod courses;
pub mod crypto;
pub mod db;
pub mod error;
pub mod home;
pub mod kube;
pub mod kubeconfig;
pub mod metrics;
pub mod namespaces;
pub mod registries;
pub mod telemetry;
pub mod web;
pub mod workloads;
