//! End-to-end test harness: real `docker-registry` processes on free loopback ports (plain, or
//! htpasswd auth + TLS), a busybox base image made with umoci and pushed with skopeo, and a
//! runner for the built `patchfarm` binary with its own cache and docker config.

pub mod faults;
pub mod registry;
pub mod tools;

pub use registry::Registry;
pub use tools::{
    busybox_base, docker_available, in_ci, patchfarm_bin, require_tool, run, write_wdt_zip,
    Patchfarm,
};
