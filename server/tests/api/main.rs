//! Berth's integration tests, one binary: the real server on port 0 against
//! the test world's real components (`testenv/run -- cargo test -p berth
//! --test api`; one area: `… --test api registries::`). The shared set-up is
//! in `helpers`; each module below is one area of Berth.
//!
//! All tests run in this one process, side by side: what is process-wide
//! (Berth's metrics registry) is guarded in `helpers`, every name a test makes
//! in the cluster or a registry is its own (`helpers::unique`), and ports are
//! port 0.

mod helpers;

mod accessibility;
mod audit;
mod auth;
mod browser;
mod courses;
mod crypto_keys;
mod kubeconfig;
mod metrics;
mod namespaces;
mod namespaces_forms;
mod newcomer;
mod real_node;
mod registries;
mod robot_tokens;
mod scale;
mod security;
mod skeleton;
mod storage;
mod testenv;
mod workloads_deploy;
mod workloads_pages;
