//! End-to-end tests, one module per area, linked into a single test binary: each test binary
//! links the whole workspace, and nineteen of them filled a CI disk.

mod agent_signals;
mod aru;
mod aux_image;
mod bad_input;
mod build_steps;
mod cache;
mod campaign;
mod cluster;
mod cluster_auth;
mod concurrent_push;
mod connections;
mod copy;
mod create;
mod deploy_files;
mod domain_campaign;
mod domain_in_image;
mod engine_store;
mod farm;
mod farm_routing;
mod farm_steps;
mod hostile;
mod inspect;
mod installer_sets;
mod layering;
mod opatch_run;
mod oui_install;
mod packages;
mod rebase;
mod registry_auth;
mod retries;
mod target;
mod typed_jobs;
mod update;
mod upgrade;
mod wit_command_lines;
