//! The sandbox a build's steps run in: an overlay mount of the image's unpacked layers (read-only
//! lower directories) and a fresh upper directory, which ends up holding exactly what the steps
//! changed, deletions as overlayfs whiteouts (0/0 character devices), replaced directories
//! marked opaque (`trusted.overlay.opaque`).

use super::{runc, ExecError, Step};
use std::ffi::CString;
use std::path::{Path, PathBuf};

/// An overlay mounted for a build's steps; unmounted and removed when dropped.
pub struct Sandbox {
    dir: tempfile::TempDir,
    mounted: bool,
}

fn io(what: String) -> impl FnOnce(std::io::Error) -> ExecError {
    move |source| ExecError::Io { what, source }
}

fn c_path(path: &Path) -> CString {
    CString::new(path.as_os_str().as_encoded_bytes()).expect("paths hold no NUL")
}

impl Sandbox {
    /// Mounts `lowers` (topmost first; each an unpacked layer or root filesystem, left untouched)
    /// with a new upper directory, in a work directory under `work_parent` (same filesystem as
    /// nothing in particular: overlayfs only needs upper and work together).
    pub fn new(lowers: &[PathBuf], work_parent: &Path) -> Result<Sandbox, ExecError> {
        super::available().map_err(ExecError::Unavailable)?;
        if lowers.is_empty() {
            return Err(ExecError::Unavailable(
                "no root filesystem to run in".into(),
            ));
        }
        std::fs::create_dir_all(work_parent)
            .map_err(io(format!("creating {}", work_parent.display())))?;
        let dir = tempfile::Builder::new()
            .prefix(".steps-")
            .tempdir_in(work_parent)
            .map_err(io(format!(
                "creating a sandbox in {}",
                work_parent.display()
            )))?;
        for sub in ["upper", "work", "merged", "bundle", "state"] {
            std::fs::create_dir(dir.path().join(sub))
                .map_err(io(format!("creating {sub} in {}", dir.path().display())))?;
        }
        let lower = lowers
            .iter()
            .map(|l| l.display().to_string())
            .collect::<Vec<_>>();
        if lower.iter().any(|l| l.contains([':', ','])) {
            return Err(ExecError::Unavailable(format!(
                "overlay paths may not hold ':' or ',': {}",
                lower.join(" ")
            )));
        }
        let options = format!(
            "lowerdir={},upperdir={},workdir={}",
            lower.join(":"),
            dir.path().join("upper").display(),
            dir.path().join("work").display()
        );
        let options = CString::new(options).expect("no NUL");
        let target = c_path(&dir.path().join("merged"));
        // SAFETY: every pointer is a valid NUL-terminated string living across the call.
        let status = unsafe {
            libc::mount(
                c"overlay".as_ptr(),
                target.as_ptr(),
                c"overlay".as_ptr(),
                0,
                options.as_ptr().cast(),
            )
        };
        if status != 0 {
            return Err(ExecError::Unavailable(format!(
                "mounting an overlay failed: {}",
                std::io::Error::last_os_error()
            )));
        }
        Ok(Sandbox { dir, mounted: true })
    }

    /// The root filesystem steps see.
    pub fn merged(&self) -> PathBuf {
        self.dir.path().join("merged")
    }

    /// Runs `step` in the sandbox; each line it prints goes to `on_line`.
    pub async fn run(
        &self,
        step: &Step,
        on_line: &mut (dyn FnMut(&str) + Send),
    ) -> Result<(), ExecError> {
        if !self.mounted {
            return Err(ExecError::Unavailable(
                "the sandbox was already finished".into(),
            ));
        }
        self.open_tmp()?;
        runc::run(
            &self.merged(),
            &self.dir.path().join("bundle"),
            &self.dir.path().join("state"),
            step,
            on_line,
        )
        .await
    }

    /// `/tmp` as every program expects it, writable by all with the sticky bit: runc gives its
    /// tmpfs the mode of the directory it covers, and a base image may have made that 0755.
    /// A link is left alone (runc resolves it inside the root). Not captured: no layer keeps /tmp.
    fn open_tmp(&self) -> Result<(), ExecError> {
        use std::os::unix::fs::PermissionsExt;
        let tmp = self.merged().join("tmp");
        match std::fs::symlink_metadata(&tmp) {
            Ok(meta) if meta.file_type().is_symlink() => return Ok(()),
            Ok(meta) if meta.is_dir() && meta.permissions().mode() & 0o7777 == 0o1777 => {
                return Ok(())
            }
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => {
                std::fs::remove_file(&tmp).map_err(io(format!("replacing {}", tmp.display())))?
            }
            Err(_) => {
                std::fs::create_dir(&tmp).map_err(io(format!("creating {}", tmp.display())))?
            }
        }
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o1777))
            .map_err(io(format!("opening {} to every user", tmp.display())))
    }

    /// Unmounts the overlay; returns the upper directory (what the steps changed), which lives
    /// until the sandbox is dropped.
    pub fn finish(&mut self) -> Result<PathBuf, ExecError> {
        self.unmount()?;
        Ok(self.dir.path().join("upper"))
    }

    fn unmount(&mut self) -> Result<(), ExecError> {
        if !self.mounted {
            return Ok(());
        }
        let target = c_path(&self.merged());
        // SAFETY: a valid path; MNT_DETACH only lazily unmounts it.
        if unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) } != 0 {
            return Err(ExecError::Io {
                what: format!("unmounting {}", self.merged().display()),
                source: std::io::Error::last_os_error(),
            });
        }
        self.mounted = false;
        Ok(())
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if let Err(e) = self.unmount() {
            tracing::warn!(error = %e, "sandbox left mounted");
        }
        // overlayfs' work directory holds a root-only `work` dir; TempDir removes the rest.
    }
}
