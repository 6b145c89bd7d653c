//! Layers applied to a directory in order, as a container runtime unpacks an image: whiteouts
//! remove what lower layers wrote, opaque markers empty a directory, owners and modes are kept
//! (as root) with file capabilities, hard links linked. Every path is reached without following a link out of the
//! root (`beneath`); device nodes are skipped (a build step gets its own `/dev`).

use super::{reader, LayerError};
use crate::beneath;
use std::io::ErrorKind;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// One layer to apply: its blob file, digest (for errors) and media type.
pub struct LayerFile<'a> {
    pub path: &'a Path,
    pub digest: String,
    pub media_type: String,
}

fn fail(digest: &str, path: &str, e: impl std::fmt::Display) -> LayerError {
    LayerError::Corrupt {
        digest: digest.into(),
        reason: format!("{path}: {e}"),
    }
}

/// Removes `root/rel` (a file, link or whole directory) if present, never following a link.
fn remove(root: &Path, rel: &str) -> std::io::Result<()> {
    let (parent, leaf) = match rel.rsplit_once('/') {
        Some((parent, leaf)) => (beneath::mkdir(root, parent)?, leaf),
        None => (root.to_path_buf(), rel),
    };
    let path = parent.join(leaf);
    match std::fs::symlink_metadata(&path) {
        Ok(meta) if meta.is_dir() => std::fs::remove_dir_all(&path),
        Ok(_) => std::fs::remove_file(&path),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

fn lchown(path: &Path, uid: u64, gid: u64) -> std::io::Result<()> {
    match std::os::unix::fs::lchown(path, Some(uid as u32), Some(gid as u32)) {
        // Not root: the tree is still usable for reading, owners are the caller's.
        Err(e) if e.kind() == ErrorKind::PermissionDenied => Ok(()),
        other => other,
    }
}

/// The extended attributes a layer keeps (file capabilities) that `entry` carries as PAX
/// `SCHILY.xattr.*` records.
fn kept_xattrs<R: std::io::Read>(entry: &mut tar::Entry<'_, R>) -> Vec<(String, Vec<u8>)> {
    let Ok(Some(extensions)) = entry.pax_extensions() else {
        return Vec::new();
    };
    extensions
        .filter_map(Result::ok)
        .filter_map(|extension| {
            let name = extension.key().ok()?.strip_prefix("SCHILY.xattr.")?;
            super::xattr::KEPT
                .contains(&name)
                .then(|| (name.to_string(), extension.value_bytes().to_vec()))
        })
        .collect()
}

/// Applies `layers` (bottom first) to `root`. Blocking.
pub fn unpack(layers: &[LayerFile<'_>], root: &Path) -> Result<(), LayerError> {
    std::fs::create_dir_all(root).map_err(|e| LayerError::Write {
        dir: root.display().to_string(),
        source: e,
    })?;
    for layer in layers {
        let digest = layer.digest.as_str();
        let mut archive = reader::open(layer.path, digest, &layer.media_type)?;
        for entry in archive.entries().map_err(|e| fail(digest, "tar", e))? {
            let mut entry = entry.map_err(|e| fail(digest, "tar", e))?;
            let raw = entry.path().map_err(|e| fail(digest, "tar", e))?;
            let rel = reader::normalize(&raw.to_string_lossy());
            if rel.is_empty() || rel == "." {
                continue;
            }
            let rel = super::writer::image_path(&rel)?;
            let (parent, name) = rel.rsplit_once('/').unwrap_or(("", rel.as_str()));
            let at = |name: &str| {
                if parent.is_empty() {
                    name.to_string()
                } else {
                    format!("{parent}/{name}")
                }
            };
            if name == ".wh..wh..opq" {
                if let Ok(dir) = beneath::mkdir(root, parent) {
                    for child in std::fs::read_dir(&dir).map_err(|e| fail(digest, &rel, e))? {
                        let child = child.map_err(|e| fail(digest, &rel, e))?;
                        remove(root, &at(&child.file_name().to_string_lossy()))
                            .map_err(|e| fail(digest, &rel, e))?;
                    }
                }
                continue;
            }
            if let Some(hidden) = name.strip_prefix(".wh.") {
                remove(root, &at(hidden)).map_err(|e| fail(digest, &rel, e))?;
                continue;
            }
            let header = entry.header();
            let (uid, gid) = (header.uid().unwrap_or(0), header.gid().unwrap_or(0));
            let mode = header.mode().unwrap_or(0o644) & 0o7777;
            let kind = header.entry_type();
            let place = |e| fail(digest, &rel, e);
            match kind {
                tar::EntryType::Directory => {
                    let existing = root.join(&rel);
                    if std::fs::symlink_metadata(&existing).is_ok_and(|m| !m.is_dir()) {
                        remove(root, &rel).map_err(place)?;
                    }
                    let dir = beneath::mkdir(root, &rel).map_err(place)?;
                    lchown(&dir, uid, gid).map_err(place)?;
                    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(mode))
                        .map_err(place)?;
                }
                tar::EntryType::Regular | tar::EntryType::Continuous => {
                    let xattrs = kept_xattrs(&mut entry);
                    remove(root, &rel).map_err(place)?;
                    let mut file = beneath::create(root, &rel).map_err(place)?;
                    std::io::copy(&mut entry, &mut file).map_err(place)?;
                    let path = root.join(&rel);
                    lchown(&path, uid, gid).map_err(place)?;
                    file.set_permissions(std::fs::Permissions::from_mode(mode))
                        .map_err(place)?;
                    // After the owner: changing it clears a file's capabilities.
                    for (name, value) in xattrs {
                        super::xattr::set(&path, &name, &value).map_err(place)?;
                    }
                }
                tar::EntryType::Symlink => {
                    let target = entry
                        .link_name()
                        .map_err(place)?
                        .map(|t| t.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    remove(root, &rel).map_err(place)?;
                    beneath::symlink(root, &rel, &target).map_err(place)?;
                    lchown(&root.join(&rel), uid, gid).map_err(place)?;
                }
                tar::EntryType::Link => {
                    let target = entry
                        .link_name()
                        .map_err(place)?
                        .map(|t| reader::normalize(&t.to_string_lossy()))
                        .unwrap_or_default();
                    let target = super::writer::image_path(&target)?;
                    let source = match target.rsplit_once('/') {
                        Some((dir, leaf)) => beneath::mkdir(root, dir).map_err(place)?.join(leaf),
                        None => root.join(&target),
                    };
                    remove(root, &rel).map_err(place)?;
                    let dir = match rel.rsplit_once('/') {
                        Some((dir, _)) => beneath::mkdir(root, dir).map_err(place)?,
                        None => root.to_path_buf(),
                    };
                    std::fs::hard_link(&source, dir.join(name)).map_err(place)?;
                }
                // Devices, FIFOs: a step gets its own /dev; nothing else needs them.
                _ => {}
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::test_support::{as_root, CAP_NET_RAW};
    use crate::layer::{LayerSpec, Owner, WriteOptions};
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn file_capabilities_survive_the_unpack_with_their_owner() {
        if !as_root() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let mut spec = LayerSpec::new().keep_setuid(true);
        let owner = Owner { uid: 0, gid: 999 };
        spec.add_bytes("/usr/bin/ping", b"\x7fELF".to_vec(), 0o755, owner)
            .unwrap();
        spec.set_xattr("/usr/bin/ping", "security.capability", CAP_NET_RAW.to_vec())
            .unwrap();
        let blob = spec
            .write(&dir.path().join("blobs"), WriteOptions::default())
            .unwrap();
        let root = dir.path().join("root");
        let layer = LayerFile {
            path: &blob.path,
            digest: blob.digest.to_string(),
            media_type: blob.media_type.to_string(),
        };
        unpack(&[layer], &root).unwrap();
        let ping = root.join("usr/bin/ping");
        assert_eq!(std::fs::metadata(&ping).unwrap().gid(), 999);
        assert_eq!(
            crate::layer::xattr::get(&ping, "security.capability").as_deref(),
            Some(CAP_NET_RAW),
            "a step on this root runs ping with its capability"
        );
    }
}
