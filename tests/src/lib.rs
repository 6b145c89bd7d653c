//! End-to-end test harness: real `docker-registry` processes on free loopback ports (plain, or
//! htpasswd auth + TLS), a busybox base image made with umoci and pushed with skopeo, a
//! fault-injecting proxy, and a runner for the built `patchfarm` binary with its own cache.

pub mod apt;
pub mod aru;
pub mod cluster;
pub mod farm;
pub mod faults;
pub mod hostile;
pub mod opatch;
pub mod oui;
pub mod registry;
pub mod rpm;
pub mod sign;
pub mod tools;
pub mod wdt;
pub mod weblogic;
pub mod wls;

pub use registry::Registry;
pub use tools::busybox_multiarch;
pub use tools::{
    busybox_base, docker_available, in_ci, patchfarm_bin, require_tool, run, umoci_image,
    write_wdt_zip, AuxFixture, Patchfarm,
};
