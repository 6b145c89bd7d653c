//! What a build step changed, as a layer: the overlay's upper directory read into a layer spec —
//! files, directories and links with their owners and modes (setuid kept: a package may need
//! it), deletions as `.wh.NAME` whiteouts, replaced directories as `.wh..wh..opq`. Scratch and
//! cache paths are left out, and mtimes are the build's (the writer's), so the same step on the
//! same inputs gives the same digest.

use super::writer::{FileSource, LayerSpec, Owner};
use super::LayerError;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

/// Paths no step's layer keeps: the runtime's own mounts and package managers' download caches.
const LEFT_OUT: &[&str] = &[
    "tmp",
    "run",
    "proc",
    "sys",
    "dev",
    "var/cache/apt/archives",
    "var/lib/apt/lists",
    "var/cache/dnf",
    "var/cache/yum",
    "var/cache/zypp",
    "var/cache/apk",
];

fn left_out(rel: &str) -> bool {
    LEFT_OUT
        .iter()
        .any(|p| rel == *p || rel.strip_prefix(p).is_some_and(|r| r.starts_with('/')))
}

fn opaque(path: &Path) -> bool {
    let c_path = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).expect("no NUL");
    let mut value = [0u8; 4];
    // SAFETY: valid path and buffer; lgetxattr writes at most value.len() bytes.
    let n = unsafe {
        libc::lgetxattr(
            c_path.as_ptr(),
            c"trusted.overlay.opaque".as_ptr(),
            value.as_mut_ptr().cast(),
            value.len(),
        )
    };
    n > 0 && value[0] == b'y'
}

/// The layer for the changes in `upper`. Blocking.
pub fn capture(upper: &Path) -> Result<LayerSpec, LayerError> {
    let mut spec = LayerSpec::new().keep_setuid(true);
    walk(upper, "", &mut spec)?;
    Ok(spec)
}

fn walk(dir: &Path, prefix: &str, spec: &mut LayerSpec) -> Result<(), LayerError> {
    let read = |e: std::io::Error| LayerError::ReadInput {
        path: dir.display().to_string(),
        source: e,
    };
    let mut children: Vec<_> = std::fs::read_dir(dir)
        .map_err(read)?
        .collect::<Result<_, _>>()
        .map_err(read)?;
    children.sort_by_key(|c| c.file_name());
    for child in children {
        let name = child.file_name();
        let name = name.to_str().ok_or_else(|| LayerError::BadPath {
            path: child.path().display().to_string(),
            reason: "not valid UTF-8".into(),
        })?;
        let rel = if prefix.is_empty() {
            name.to_string()
        } else {
            format!("{prefix}/{name}")
        };
        if left_out(&rel) {
            continue;
        }
        let path = child.path();
        let meta = std::fs::symlink_metadata(&path).map_err(read)?;
        let owner = Owner {
            uid: meta.uid().into(),
            gid: meta.gid().into(),
        };
        let mode = meta.mode() & 0o7777;
        let kind = meta.file_type();
        if kind.is_char_device() && meta.rdev() == 0 {
            let whiteout = match rel.rsplit_once('/') {
                Some((parent, leaf)) => format!("{parent}/.wh.{leaf}"),
                None => format!(".wh.{rel}"),
            };
            spec.add_bytes(&whiteout, Vec::new(), 0o644, Owner::ROOT)?;
        } else if kind.is_dir() {
            spec.add_dir(&rel, mode, owner)?;
            if opaque(&path) {
                spec.add_bytes(
                    &format!("{rel}/.wh..wh..opq"),
                    Vec::new(),
                    0o644,
                    Owner::ROOT,
                )?;
            }
            walk(&path, &rel, spec)?;
        } else if kind.is_symlink() {
            let target = std::fs::read_link(&path).map_err(read)?;
            spec.add_symlink(&rel, &target.to_string_lossy(), owner)?;
        } else if kind.is_file() {
            spec.add_file(&rel, FileSource::Path(path.clone()), mode, owner)?;
        }
        // Sockets, FIFOs and devices a step made have no place in an image layer.
    }
    Ok(())
}
