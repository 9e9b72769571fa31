//! The end-to-end tests, as one test binary: they all link the CLI's heavy dependencies (kube,
//! axum, goose), so one binary links them once instead of once per file.
//!
//! Each module is one area: the `cli_*` modules run the real `simctl` binary on real files,
//! `controller_kube` drives the controller against [`fake_kube`], and `deploy_manifests` checks
//! deploy/ offline. [`common`] holds the helpers they share.

mod common;
mod fake_kube;

mod autoscaling_core;
mod cli_async;
mod cli_async_real;
mod cli_autoscale;
mod cli_autoscaling;
mod cli_cluster;
mod cli_conventions;
mod cli_foreign;
mod cli_karpenter;
mod cli_karpenter_tune;
mod cli_llm;
mod cli_loadgen;
mod cli_loadgen_llm;
mod cli_predictive;
mod cli_prometheus_llm;
mod cli_report;
mod cli_routing;
mod cli_routing_tune;
mod cli_run;
mod cli_serve_llm;
mod cli_tenancy;
mod cli_tenants;
mod cli_tui;
mod cli_tune;
mod cli_tune_risk;
mod cli_validate;
mod cli_vpa;
mod cli_why;
mod cli_why_not;
mod controller_kube;
mod deploy_manifests;
mod fuzz;
