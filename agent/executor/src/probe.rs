//! The probe an agent runs before it offers to run build steps: one real step, `true` from the
//! host's own programs given read-only, on an overlay over an empty root. It proves what a job's
//! steps will need here — root, runc, overlay mounts, namespaces, cgroup limits — before the farm
//! sends this agent such a job, so a host that cannot gets no job it would fail.

use super::{Input, Sandbox, Step};
use std::path::Path;
use std::time::Duration;

/// The host's top-level program and library directories: each becomes, in the probe's root, a
/// link to its read-only mount under `/tmp` (or the same link, where the host has one, as a
/// merged-`/usr` Debian does), so `/bin/true` and its loader resolve as they do on the host.
const HOST_DIRS: &[&str] = &["usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32"];

/// Runs the probe step under `work_parent`; the reason build steps cannot run here when it fails.
pub async fn probe(work_parent: &Path) -> Result<(), String> {
    super::available()?;
    std::fs::create_dir_all(work_parent)
        .map_err(|e| format!("creating {}: {e}", work_parent.display()))?;
    let root = tempfile::Builder::new()
        .prefix(".probe-root-")
        .tempdir_in(work_parent)
        .map_err(|e| {
            format!(
                "creating the probe's root in {}: {e}",
                work_parent.display()
            )
        })?;
    let mut step = Step::shell("true");
    step.args = vec!["/bin/true".into()];
    step.time_limit = Duration::from_secs(30);
    step.memory_limit = 64 << 20;
    for name in HOST_DIRS {
        let host = Path::new("/").join(name);
        let Ok(meta) = std::fs::symlink_metadata(&host) else {
            continue;
        };
        let in_root = root.path().join(name);
        let target = if meta.file_type().is_symlink() {
            std::fs::read_link(&host).map_err(|e| format!("reading {}: {e}", host.display()))?
        } else if meta.is_dir() {
            let dest = format!("/tmp/host/{name}");
            step.inputs.push(Input {
                host: host.clone(),
                dest: dest.clone(),
            });
            dest.into()
        } else {
            continue;
        };
        std::os::unix::fs::symlink(&target, &in_root)
            .map_err(|e| format!("linking {} in the probe's root: {e}", in_root.display()))?;
    }
    for dir in ["tmp", "proc", "dev", "sys", "etc"] {
        std::fs::create_dir(root.path().join(dir))
            .map_err(|e| format!("creating /{dir} in the probe's root: {e}"))?;
    }
    let mut sandbox =
        Sandbox::new(&[root.path().to_path_buf()], work_parent).map_err(|e| e.to_string())?;
    let mut said = Vec::new();
    let ran = sandbox
        .run(&step, &mut |line| said.push(line.to_string()))
        .await;
    sandbox.finish().map_err(|e| e.to_string())?;
    ran.map_err(|e| format!("the probe step failed: {e}"))
}
