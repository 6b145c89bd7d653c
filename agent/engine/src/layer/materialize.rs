//! A layer spec written out as a directory instead of a tar: the lower directory a build step
//! runs on above a layer this build wrote, so no tar is read back and unpacked. Files the build
//! made itself (its unpacked JDK, the Oracle Home its installers wrote) are hard-linked, not
//! copied; whiteouts become overlayfs whiteouts, as in a step's upper directory.

use super::source::FileSource;
use super::writer::{Body, LayerSpec, Owner};
use super::LayerError;
use crate::beneath;
use std::collections::HashMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

/// Inodes linked into a tree so far, with the mode and owner they were given: a later entry
/// wanting others gets a copy, so one tree never changes what another shows.
#[derive(Default)]
pub struct LinkClaims(HashMap<(u64, u64), (u32, Owner)>);

fn c_string(path: &Path) -> std::ffi::CString {
    std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).expect("paths hold no NUL")
}

/// An overlayfs whiteout: a 0/0 character device hiding `path` in the layers below.
fn whiteout(path: &Path) -> std::io::Result<()> {
    // SAFETY: a valid NUL-terminated path.
    let status = unsafe { libc::mknod(c_string(path).as_ptr(), libc::S_IFCHR, 0) };
    if status == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

fn owned(path: &Path, mode: u32, owner: Owner) -> std::io::Result<()> {
    std::os::unix::fs::lchown(path, Some(owner.uid as u32), Some(owner.gid as u32))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

impl LayerSpec {
    /// Writes the entries under `root` with their owners, modes and xattrs, as unpacking the
    /// written layer would. Files under `linkable` (the build's own directory) are hard-linked
    /// and given the entry's owner and mode, unless `claims` holds that inode with others;
    /// everything else is copied. Blocking; run as root.
    pub fn materialize(
        &self,
        root: &Path,
        linkable: &Path,
        claims: &mut LinkClaims,
    ) -> Result<(), LayerError> {
        let fail = |path: &str, e: std::io::Error| LayerError::Write {
            dir: format!("{}/{path}", root.display()),
            source: e,
        };
        std::fs::create_dir_all(root).map_err(|e| fail("", e))?;
        for (path, entry) in self.with_parents() {
            let (parent, leaf) = path.rsplit_once('/').unwrap_or(("", path.as_str()));
            let parent_dir = if parent.is_empty() {
                root.to_path_buf()
            } else {
                beneath::mkdir(root, parent).map_err(|e| fail(parent, e))?
            };
            if leaf == ".wh..wh..opq" {
                super::xattr::set(&parent_dir, super::xattr::OPAQUE, b"y")
                    .map_err(|e| fail(&path, e))?;
                continue;
            }
            if let Some(hidden) = leaf.strip_prefix(".wh.") {
                whiteout(&parent_dir.join(hidden)).map_err(|e| fail(&path, e))?;
                continue;
            }
            let at = parent_dir.join(leaf);
            let made = match &entry.body {
                Body::Dir => {
                    beneath::mkdir(root, &path).and_then(|dir| owned(&dir, entry.mode, entry.owner))
                }
                Body::Symlink(target) => beneath::symlink(root, &path, target).and_then(|()| {
                    std::os::unix::fs::lchown(
                        &at,
                        Some(entry.owner.uid as u32),
                        Some(entry.owner.gid as u32),
                    )
                }),
                Body::HardLink(target) => {
                    let source = match target.rsplit_once('/') {
                        Some((dir, leaf)) => beneath::mkdir(root, dir).map(|d| d.join(leaf)),
                        None => Ok(root.join(target)),
                    };
                    source.and_then(|source| std::fs::hard_link(source, &at))
                }
                Body::File(FileSource::Path(source))
                    if source.starts_with(linkable)
                        && link(source, &at, entry.mode, entry.owner, claims)? =>
                {
                    Ok(())
                }
                Body::File(source) => beneath::create(root, &path)
                    .and_then(|mut file| source.copy_to(&mut file))
                    .and_then(|_| owned(&at, entry.mode, entry.owner)),
            };
            made.map_err(|e| fail(&path, e))?;
            for (name, value) in &entry.xattrs {
                super::xattr::set(&at, name, value).map_err(|e| fail(&path, e))?;
            }
        }
        Ok(())
    }
}

/// Hard-links `source` at `at` with `mode` and `owner` when its inode is free to take them;
/// `false` when the caller should copy instead.
fn link(
    source: &Path,
    at: &Path,
    mode: u32,
    owner: Owner,
    claims: &mut LinkClaims,
) -> Result<bool, LayerError> {
    let read = |e: std::io::Error| LayerError::ReadInput {
        path: source.display().to_string(),
        source: e,
    };
    let meta = std::fs::symlink_metadata(source).map_err(read)?;
    if !meta.is_file() {
        return Ok(false);
    }
    let inode = (meta.dev(), meta.ino());
    match claims.0.get(&inode) {
        Some(&(claimed_mode, claimed_owner)) if (claimed_mode, claimed_owner) != (mode, owner) => {
            return Ok(false)
        }
        Some(_) => {}
        None => {
            owned(source, mode, owner).map_err(read)?;
            claims.0.insert(inode, (mode, owner));
        }
    }
    std::fs::hard_link(source, at).map_err(|e| LayerError::Write {
        dir: at.display().to_string(),
        source: e,
    })?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::test_support::{as_root, CAP_NET_RAW};
    use std::os::unix::fs::FileTypeExt;

    #[test]
    fn a_spec_becomes_the_directory_its_layer_unpacks_to() {
        if !as_root() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let own = dir.path().join("build");
        std::fs::create_dir_all(&own).unwrap();
        std::fs::write(own.join("tool"), b"#!/bin/sh\n").unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("cached"), b"cached bytes").unwrap();
        let oracle = Owner {
            uid: 1000,
            gid: 1001,
        };
        let mut spec = LayerSpec::new();
        spec.add_file(
            "/u01/bin/tool",
            FileSource::Path(own.join("tool")),
            0o750,
            oracle,
        )
        .unwrap();
        spec.add_file(
            "/u01/bin/again",
            FileSource::Path(own.join("tool")),
            0o750,
            oracle,
        )
        .unwrap();
        spec.add_file(
            "/u01/bin/root-owned",
            FileSource::Path(own.join("tool")),
            0o755,
            Owner::ROOT,
        )
        .unwrap();
        spec.add_file(
            "/u01/cached",
            FileSource::Path(outside.path().join("cached")),
            0o644,
            oracle,
        )
        .unwrap();
        spec.add_bytes(
            "/etc/passwd",
            b"root:x:0:0::/root:/bin/sh\n".to_vec(),
            0o644,
            Owner::ROOT,
        )
        .unwrap();
        spec.add_symlink("/u01/latest", "bin/tool", oracle).unwrap();
        spec.add_hardlink("/u01/bin/tool-link", "u01/bin/tool", oracle)
            .unwrap();
        spec.add_bytes("/etc/.wh.motd", Vec::new(), 0o644, Owner::ROOT)
            .unwrap();
        spec.add_dir("/var/empty", 0o700, Owner::ROOT).unwrap();
        spec.add_bytes("/var/empty/.wh..wh..opq", Vec::new(), 0o644, Owner::ROOT)
            .unwrap();
        spec.set_xattr("/u01/bin/tool", "security.capability", CAP_NET_RAW.to_vec())
            .unwrap();

        let root = dir.path().join("tree");
        let mut claims = LinkClaims::default();
        spec.materialize(&root, &own, &mut claims).unwrap();

        let tool = std::fs::symlink_metadata(root.join("u01/bin/tool")).unwrap();
        assert_eq!(
            (tool.uid(), tool.gid(), tool.mode() & 0o7777),
            (1000, 1001, 0o750)
        );
        let source = std::fs::metadata(own.join("tool")).unwrap();
        assert_eq!(
            tool.ino(),
            source.ino(),
            "the build's own file is linked, not copied"
        );
        let again = std::fs::metadata(root.join("u01/bin/again")).unwrap();
        assert_eq!(
            again.ino(),
            source.ino(),
            "same owner and mode: the same inode"
        );
        let rooted = std::fs::metadata(root.join("u01/bin/root-owned")).unwrap();
        assert_ne!(rooted.ino(), source.ino(), "other owner: a copy");
        assert_eq!((rooted.uid(), rooted.mode() & 0o7777), (0, 0o755));
        assert_eq!(
            std::fs::read(root.join("u01/bin/root-owned")).unwrap(),
            b"#!/bin/sh\n"
        );
        let cached = std::fs::metadata(root.join("u01/cached")).unwrap();
        assert_ne!(
            cached.ino(),
            std::fs::metadata(outside.path().join("cached"))
                .unwrap()
                .ino(),
            "files outside the build are copied"
        );
        assert_eq!(cached.uid(), 1000);
        assert_eq!(
            std::fs::read_link(root.join("u01/latest")).unwrap(),
            Path::new("bin/tool")
        );
        assert_eq!(
            std::fs::metadata(root.join("u01/bin/tool-link"))
                .unwrap()
                .ino(),
            tool.ino()
        );
        let motd = std::fs::symlink_metadata(root.join("etc/motd")).unwrap();
        assert!(
            motd.file_type().is_char_device() && motd.rdev() == 0,
            "a whiteout"
        );
        assert!(!root.join("etc/.wh.motd").exists());
        assert!(
            super::super::xattr::is_opaque(&root.join("var/empty")),
            "opaque"
        );
        assert_eq!(
            super::super::xattr::get(&root.join("u01/bin/tool"), "security.capability").as_deref(),
            Some(CAP_NET_RAW)
        );
    }
}
