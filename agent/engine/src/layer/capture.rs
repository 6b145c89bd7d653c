//! What a build step changed, as a layer: the overlay's upper directory read into a layer spec —
//! files, directories and links with their owners and modes (setuid kept: a package may need
//! it), hard links as hard links, file capabilities (`security.capability`) as PAX xattr
//! records, deletions as `.wh.NAME` whiteouts, replaced directories as `.wh..wh..opq`. Scratch
//! and cache paths are left out, and mtimes are the build's (the writer's), so the same step on
//! the same inputs gives the same digest.

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

/// Removes from a step's upper directory what its layer leaves out, so the directory can stand
/// for that layer under the next step. Blocking.
pub fn drop_left_out(upper: &Path) -> std::io::Result<()> {
    for rel in LEFT_OUT {
        // A step may have made `var` a link (even to an absolute host path): nothing is removed
        // through one.
        if let Some((parent, _)) = rel.rsplit_once('/') {
            if !crate::beneath::is_dir(upper, parent) {
                continue;
            }
        }
        let path = upper.join(rel);
        match std::fs::symlink_metadata(&path) {
            Ok(meta) if meta.is_dir() => std::fs::remove_dir_all(&path)?,
            Ok(_) => std::fs::remove_file(&path)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Regular files seen so far by inode, for hard links: (device, inode) → image paths.
type Inodes = std::collections::BTreeMap<(u64, u64), Vec<(String, Owner)>>;

/// The layer for the changes in `upper`. Blocking.
pub fn capture(upper: &Path) -> Result<LayerSpec, LayerError> {
    let mut spec = LayerSpec::new().keep_setuid(true);
    let mut inodes = Inodes::new();
    walk(upper, "", &mut spec, &mut inodes)?;
    // Each set of hard links: the path that sorts first holds the content, the others link to
    // it (tar names a link's target by an earlier member; the writer sorts by path).
    for (_, mut paths) in inodes {
        if paths.len() < 2 {
            continue;
        }
        paths.sort_by(|a, b| a.0.cmp(&b.0));
        let (first, _) = paths[0].clone();
        for (path, owner) in &paths[1..] {
            spec.add_hardlink(path, &first, *owner)?;
        }
    }
    Ok(spec)
}

fn walk(
    dir: &Path,
    prefix: &str,
    spec: &mut LayerSpec,
    inodes: &mut Inodes,
) -> Result<(), LayerError> {
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
            if super::xattr::is_opaque(&path) {
                spec.add_bytes(
                    &format!("{rel}/.wh..wh..opq"),
                    Vec::new(),
                    0o644,
                    Owner::ROOT,
                )?;
            }
            walk(&path, &rel, spec, inodes)?;
        } else if kind.is_symlink() {
            let target = std::fs::read_link(&path).map_err(read)?;
            spec.add_symlink(&rel, &target.to_string_lossy(), owner)?;
        } else if kind.is_file() {
            spec.add_file(&rel, FileSource::Path(path.clone()), mode, owner)?;
            for name in super::xattr::KEPT {
                if let Some(value) = super::xattr::get(&path, name) {
                    spec.set_xattr(&rel, name, value)?;
                }
            }
            if meta.nlink() > 1 {
                inodes
                    .entry((meta.dev(), meta.ino()))
                    .or_default()
                    .push((rel.clone(), owner));
            }
        }
        // Sockets, FIFOs and devices a step made have no place in an image layer.
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_a_layer_leaves_out_is_never_removed_through_a_link() {
        let dir = tempfile::tempdir().unwrap();
        let (upper, host) = (dir.path().join("upper"), dir.path().join("host"));
        std::fs::create_dir_all(host.join("cache/apt/archives")).unwrap();
        std::fs::write(host.join("cache/apt/archives/keep.deb"), b"x").unwrap();
        std::fs::create_dir_all(upper.join("tmp/scratch")).unwrap();
        std::fs::create_dir_all(&upper).unwrap();
        // The step made /var a link to an absolute path, which on the host is `host`.
        std::os::unix::fs::symlink(&host, upper.join("var")).unwrap();
        drop_left_out(&upper).unwrap();
        assert!(
            host.join("cache/apt/archives/keep.deb").is_file(),
            "nothing removed through the link"
        );
        assert!(!upper.join("tmp").exists(), "what is left out goes");
        assert!(std::fs::symlink_metadata(upper.join("var"))
            .unwrap()
            .file_type()
            .is_symlink());
    }

    fn set_capability(path: &Path) -> bool {
        // cap_net_raw+ep, as `setcap cap_net_raw+ep` writes it (VFS_CAP_REVISION_2).
        let value: [u8; 20] = [
            0x01, 0x00, 0x00, 0x02, 0x00, 0x20, 0x00, 0x00, 0x00, 0x20, 0x00, 0x00, 0, 0, 0, 0, 0,
            0, 0, 0,
        ];
        let c_path = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: valid path, name and value buffer.
        unsafe {
            libc::lsetxattr(
                c_path.as_ptr(),
                c"security.capability".as_ptr(),
                value.as_ptr().cast(),
                value.len(),
                0,
            ) == 0
        }
    }

    #[test]
    fn hard_links_stay_links_and_file_capabilities_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let upper = dir.path().join("upper");
        std::fs::create_dir_all(upper.join("usr/bin")).unwrap();
        std::fs::write(upper.join("usr/bin/perl5.36"), b"perl").unwrap();
        std::fs::hard_link(upper.join("usr/bin/perl5.36"), upper.join("usr/bin/perl")).unwrap();
        std::fs::write(upper.join("usr/bin/ping"), b"ping").unwrap();
        // Setting security.* needs CAP_SETFCAP (root, as CI and the agents run).
        let capable = set_capability(&upper.join("usr/bin/ping"));

        let spec = capture(&upper).unwrap();
        let blob = spec
            .write(
                &dir.path().join("out"),
                super::super::WriteOptions::default(),
            )
            .unwrap();
        let file = std::fs::File::open(&blob.path).unwrap();
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
        let mut link = None;
        let mut capability = None;
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let path = entry.path().unwrap().to_string_lossy().into_owned();
            if entry.header().entry_type() == tar::EntryType::Link {
                let target = entry.link_name().unwrap().unwrap();
                link = Some((path.clone(), target.to_string_lossy().into_owned()));
            }
            if path == "usr/bin/ping" {
                if let Some(pax) = entry.pax_extensions().unwrap() {
                    for ext in pax {
                        let ext = ext.unwrap();
                        if ext.key().unwrap() == "SCHILY.xattr.security.capability" {
                            capability = Some(ext.value_bytes().len());
                        }
                    }
                }
            }
        }
        assert_eq!(
            link,
            Some(("usr/bin/perl5.36".into(), "usr/bin/perl".into())),
            "the path sorting first holds the content"
        );
        if capable {
            assert_eq!(capability, Some(20), "ping keeps cap_net_raw");
        } else {
            eprintln!("not root: the capability half is not checked here");
        }
    }
}
