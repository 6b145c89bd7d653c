//! Build steps without a Docker daemon: one command line runs in the root filesystem of the image
//! being built, under `runc` (Debian's OCI runtime, driven by a runtime config written with
//! `oci-spec`), on an overlay whose upper directory then holds exactly what the step changed.
//!
//! runc rather than bubblewrap: it takes the whole OCI runtime config (namespaces, cgroup memory
//! and pid limits, capabilities, masked paths, read-only bind mounts) as one typed value, and it
//! is what containerd and Docker run images with, so a step sees the environment an image's
//! programs see when the image runs. Steps run as root on the build host (runc needs it; no user
//! namespace), inside a new network namespace with only loopback unless the build asks for the
//! network.

mod overlay;
mod probe;
mod runc;

pub use overlay::Sandbox;
pub use probe::probe;

use std::path::PathBuf;
use std::time::Duration;

/// A file or directory of the host given to a step, read-only, at `dest` inside the image.
#[derive(Clone, Debug)]
pub struct Input {
    pub host: PathBuf,
    pub dest: String,
}

/// One program run inside the image.
#[derive(Clone, Debug)]
pub struct Step {
    /// The command line (`["/bin/sh", "-c", "…"]` for a shell step).
    pub args: Vec<String>,
    /// `NAME=VALUE` pairs.
    pub env: Vec<String>,
    /// Working directory inside the image.
    pub cwd: String,
    pub uid: u32,
    pub gid: u32,
    pub inputs: Vec<Input>,
    /// Off: a network namespace with loopback only.
    pub network: bool,
    /// The step is killed when it runs longer.
    pub time_limit: Duration,
    /// Bytes of memory the step may use (cgroup limit).
    pub memory_limit: u64,
}

impl Step {
    /// `/bin/sh -c COMMAND` as root in `/`, with PATH set, no network, 30 minutes and 4 GiB.
    pub fn shell(command: &str) -> Step {
        Step {
            args: vec!["/bin/sh".into(), "-c".into(), command.into()],
            env: vec!["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into()],
            cwd: "/".into(),
            uid: 0,
            gid: 0,
            inputs: Vec::new(),
            network: false,
            time_limit: Duration::from_secs(30 * 60),
            memory_limit: 4 << 30,
        }
    }

    /// How the step is named in errors and logs: its command line, shortened.
    pub fn describe(&self) -> String {
        let line = self.args.join(" ");
        match line.char_indices().nth(120) {
            Some((cut, _)) => format!("{}…", &line[..cut]),
            None => line,
        }
    }
}

/// The last lines a failed step printed are part of its error.
pub const TAIL_LINES: usize = 20;

#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("build steps cannot run here: {0}")]
    Unavailable(String),
    #[error("step `{step}` exited with {status}; its last lines:\n{tail}")]
    Failed {
        step: String,
        status: String,
        tail: String,
    },
    #[error(
        "step `{step}` ran past its limit of {limit:?} and was killed; its last lines:\n{tail}"
    )]
    TimedOut {
        step: String,
        limit: Duration,
        tail: String,
    },
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

/// Whether steps can run on this machine: root, runc on PATH, overlay mounts allowed. The
/// reason when not.
pub fn available() -> Result<(), String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err("steps need root (runc and overlay mounts); run as root".into());
    }
    runc::binary().map(|_| ())
}
