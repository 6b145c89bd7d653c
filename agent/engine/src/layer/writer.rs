//! Deterministic layer writer: sorted entries, parents emitted, fixed mtime, numeric owners,
//! streamed tar → gzip → file with the diffID and the blob digest computed on the way.

use super::compress::LayerCompressor;
use super::source::append_file;
pub use super::source::FileSource;
use super::LayerError;
use crate::digest::{Digest, HashingWriter};
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

/// Numeric owner of an entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Owner {
    pub uid: u64,
    pub gid: u64,
}

impl Owner {
    pub const ROOT: Owner = Owner { uid: 0, gid: 0 };
}

#[derive(Clone, Debug)]
pub(super) enum Body {
    Dir,
    File(FileSource),
    Symlink(String),
    /// A hard link to an earlier entry of the same layer (its image path).
    HardLink(String),
}

#[derive(Clone, Debug)]
pub(super) struct Entry {
    pub(super) body: Body,
    pub(super) mode: u32,
    pub(super) owner: Owner,
    /// Extended attributes written as PAX `SCHILY.xattr.*` records (file capabilities).
    pub(super) xattrs: Vec<(String, Vec<u8>)>,
}

/// What one layer will contain, keyed by path inside the image (no leading `/`).
#[derive(Clone, Debug)]
pub struct LayerSpec {
    entries: BTreeMap<String, Entry>,
    /// Permission bits an input (installer tree, zip) may carry into the layer.
    input_mode_bits: u32,
}

impl Default for LayerSpec {
    fn default() -> Self {
        LayerSpec {
            entries: BTreeMap::new(),
            input_mode_bits: if keep_setuid_from_env() {
                0o7777
            } else {
                INPUT_MODE_BITS
            },
        }
    }
}

/// `PATCHFARM_KEEP_SETUID=1` (the CLI's and the agent's `--keep-setuid`): installers' setuid and
/// setgid bits reach the image, for the rare product that needs them.
fn keep_setuid_from_env() -> bool {
    std::env::var("PATCHFARM_KEEP_SETUID").is_ok_and(|v| matches!(v.as_str(), "1" | "true"))
}

/// Settings that affect the bytes of a layer.
#[derive(Clone, Copy, Debug, Default)]
pub struct WriteOptions {
    /// mtime of every entry: `SOURCE_DATE_EPOCH` or 0.
    pub mtime: u64,
    /// gzip unless asked otherwise (`--compression zstd`).
    pub compression: super::Compression,
}

/// A layer written to disk.
#[derive(Clone, Debug)]
pub struct LayerBlob {
    pub path: PathBuf,
    pub digest: Digest,
    pub diff_id: Digest,
    pub size: u64,
    pub media_type: &'static str,
    /// Bytes of the uncompressed tar.
    pub tar_size: u64,
}

/// Permission bits an input (installer tree, zip) may carry into a layer by default: setuid and
/// setgid are dropped, so no installer can plant a privileged program in an image.
const INPUT_MODE_BITS: u32 = 0o1777;

/// Normalizes an image path (`/a/b`, `a/./b`) to `a/b`, refusing `..` and empty paths.
pub fn image_path(path: &str) -> Result<String, LayerError> {
    let mut parts = Vec::new();
    for component in Path::new(path).components() {
        match component {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(p) => parts.push(p.to_str().ok_or_else(|| LayerError::BadPath {
                path: path.into(),
                reason: "not valid UTF-8".into(),
            })?),
            Component::ParentDir | Component::Prefix(_) => {
                return Err(LayerError::BadPath {
                    path: path.into(),
                    reason: "'..' is not allowed".into(),
                })
            }
        }
    }
    if parts.is_empty() {
        return Err(LayerError::BadPath {
            path: path.into(),
            reason: "names no file below /".into(),
        });
    }
    Ok(parts.join("/"))
}

impl LayerSpec {
    pub fn new() -> Self {
        Self::default()
    }

    /// Keeps (or drops) installers' setuid and setgid bits, whatever the environment says.
    pub fn keep_setuid(mut self, keep: bool) -> Self {
        self.input_mode_bits = if keep { 0o7777 } else { INPUT_MODE_BITS };
        self
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Paths in the order they will be written, with a type marker (`d`, `f`, `l`) and owner.
    pub fn listing(&self) -> Vec<(String, char, u32, Owner)> {
        self.entries
            .iter()
            .map(|(p, e)| {
                let kind = match e.body {
                    Body::Dir => 'd',
                    Body::File(_) => 'f',
                    Body::Symlink(_) => 'l',
                    Body::HardLink(_) => 'h',
                };
                (format!("/{p}"), kind, e.mode, e.owner)
            })
            .collect()
    }

    /// `chmod g=u` on `path` (and on everything below it when `recursive`): OpenShift runs a
    /// container as an arbitrary user in group root, which must be able to do what the owner can.
    pub fn group_like_owner(&mut self, path: &str, recursive: bool) -> Result<(), LayerError> {
        let path = image_path(path)?;
        let below = format!("{path}/");
        for (p, e) in &mut self.entries {
            let hit = *p == path || (recursive && p.starts_with(&below));
            if hit && !matches!(e.body, Body::Symlink(_) | Body::HardLink(_)) {
                e.mode = (e.mode & !0o070) | ((e.mode & 0o700) >> 3);
            }
        }
        Ok(())
    }

    fn insert(&mut self, path: &str, entry: Entry) -> Result<(), LayerError> {
        let path = image_path(path)?;
        self.entries.insert(path, entry);
        Ok(())
    }

    pub fn add_dir(&mut self, path: &str, mode: u32, owner: Owner) -> Result<(), LayerError> {
        self.insert(
            path,
            Entry {
                body: Body::Dir,
                mode,
                owner,
                xattrs: Vec::new(),
            },
        )
    }

    /// `path` as a hard link to `target`, an entry of this layer that sorts before it (tar
    /// names a link's target by an earlier member).
    pub fn add_hardlink(
        &mut self,
        path: &str,
        target: &str,
        owner: Owner,
    ) -> Result<(), LayerError> {
        let target = image_path(target)?;
        if target.as_str() >= image_path(path)?.as_str() {
            return Err(LayerError::BadPath {
                path: path.into(),
                reason: format!("a hard link's target ({target}) must sort before it"),
            });
        }
        self.insert(
            path,
            Entry {
                body: Body::HardLink(target),
                mode: 0o644,
                owner,
                xattrs: Vec::new(),
            },
        )
    }

    /// Sets extended attribute `name` on the entry at `path` (already added).
    pub fn set_xattr(&mut self, path: &str, name: &str, value: Vec<u8>) -> Result<(), LayerError> {
        let key = image_path(path)?;
        let entry = self
            .entries
            .get_mut(&key)
            .ok_or_else(|| LayerError::BadPath {
                path: path.into(),
                reason: "no such entry to set an attribute on".into(),
            })?;
        entry.xattrs.retain(|(n, _)| n != name);
        entry.xattrs.push((name.into(), value));
        entry.xattrs.sort();
        Ok(())
    }

    pub fn add_file(
        &mut self,
        path: &str,
        source: FileSource,
        mode: u32,
        owner: Owner,
    ) -> Result<(), LayerError> {
        self.insert(
            path,
            Entry {
                body: Body::File(source),
                mode,
                owner,
                xattrs: Vec::new(),
            },
        )
    }

    pub fn add_bytes(
        &mut self,
        path: &str,
        bytes: impl Into<Arc<[u8]>>,
        mode: u32,
        owner: Owner,
    ) -> Result<(), LayerError> {
        self.add_file(path, FileSource::Bytes(bytes.into()), mode, owner)
    }

    pub fn add_symlink(
        &mut self,
        path: &str,
        target: &str,
        owner: Owner,
    ) -> Result<(), LayerError> {
        self.insert(
            path,
            Entry {
                body: Body::Symlink(target.into()),
                mode: 0o777,
                owner,
                xattrs: Vec::new(),
            },
        )
    }

    /// Adds a host directory tree below `dest`, keeping permission bits (never setuid/setgid),
    /// with `owner` on everything.
    pub fn add_host_tree(
        &mut self,
        host_dir: &Path,
        dest: &str,
        owner: Owner,
    ) -> Result<(), LayerError> {
        use std::os::unix::fs::PermissionsExt;
        let read_err = |p: &Path, e: std::io::Error| LayerError::ReadInput {
            path: p.display().to_string(),
            source: e,
        };
        let meta = std::fs::symlink_metadata(host_dir).map_err(|e| read_err(host_dir, e))?;
        let dest = image_path(dest)?;
        if meta.is_dir() {
            self.add_dir(
                &dest,
                meta.permissions().mode() & self.input_mode_bits,
                owner,
            )?;
            let mut children: Vec<_> = std::fs::read_dir(host_dir)
                .map_err(|e| read_err(host_dir, e))?
                .collect::<Result<_, _>>()
                .map_err(|e| read_err(host_dir, e))?;
            children.sort_by_key(|c| c.file_name());
            for child in children {
                let name = child.file_name();
                let name = name.to_str().ok_or_else(|| LayerError::BadPath {
                    path: child.path().display().to_string(),
                    reason: "not valid UTF-8".into(),
                })?;
                self.add_host_tree(&child.path(), &format!("{dest}/{name}"), owner)?;
            }
        } else if meta.file_type().is_symlink() {
            let target = std::fs::read_link(host_dir).map_err(|e| read_err(host_dir, e))?;
            self.add_symlink(&dest, &target.to_string_lossy(), owner)?;
        } else if meta.is_file() {
            self.add_file(
                &dest,
                FileSource::Path(host_dir.into()),
                meta.permissions().mode() & self.input_mode_bits,
                owner,
            )?;
        }
        // Sockets, fifos and devices have no place in an installer tree: skipped.
        Ok(())
    }

    /// Adds every entry of a zip archive below `dest` (zip paths that escape are refused).
    pub fn add_zip(&mut self, archive: &Path, dest: &str, owner: Owner) -> Result<(), LayerError> {
        let zip_err = |reason: String| LayerError::Zip {
            path: archive.display().to_string(),
            reason,
        };
        let file = File::open(archive).map_err(|e| LayerError::ReadInput {
            path: archive.display().to_string(),
            source: e,
        })?;
        let mut zip = zip::ZipArchive::new(file).map_err(|e| zip_err(e.to_string()))?;
        let limits = crate::limits::ArchiveLimits::from_env().map_err(&zip_err)?;
        crate::limits::check_zip(&mut zip, limits).map_err(zip_err)?;
        let dest = image_path(dest)?;
        for index in 0..zip.len() {
            let member = zip.by_index(index).map_err(|e| zip_err(e.to_string()))?;
            let name = member.enclosed_name().ok_or_else(|| {
                zip_err(format!(
                    "entry '{}' would land outside its directory",
                    String::from_utf8_lossy(member.name_raw())
                ))
            })?;
            let name = name
                .to_str()
                .ok_or_else(|| {
                    zip_err(format!(
                        "entry '{}' is not UTF-8",
                        String::from_utf8_lossy(member.name_raw())
                    ))
                })?
                .to_owned();
            if name.is_empty() {
                continue;
            }
            let path = format!("{dest}/{name}");
            let unix_mode = member.unix_mode().map(|m| m & self.input_mode_bits);
            if member.is_dir() {
                self.add_dir(&path, unix_mode.unwrap_or(0o755), owner)?;
            } else {
                let mode = unix_mode.filter(|m| *m != 0).unwrap_or(0o644);
                let size = member.size();
                self.add_file(
                    &path,
                    FileSource::ZipMember {
                        archive: archive.into(),
                        index,
                        size,
                    },
                    mode,
                    owner,
                )?;
            }
        }
        Ok(())
    }

    /// Every ancestor of every entry, so the tar never relies on a runtime's implicit dirs.
    /// An implicit directory takes the owner of its nearest explicit ancestor (root if none),
    /// so a tree added below `/auxiliary` stays wholly owned by `--chown`.
    pub(super) fn with_parents(&self) -> BTreeMap<String, Entry> {
        let mut all = self.entries.clone();
        for path in self.entries.keys() {
            let ancestors: Vec<&str> = Path::new(path)
                .ancestors()
                .skip(1)
                .filter_map(|p| p.to_str())
                .filter(|p| !p.is_empty())
                .collect();
            for (i, dir) in ancestors.iter().enumerate() {
                if all.contains_key(*dir) {
                    continue;
                }
                let owner = ancestors[i + 1..]
                    .iter()
                    .find_map(|a| self.entries.get(*a).map(|e| e.owner))
                    .unwrap_or(Owner::ROOT);
                all.insert(
                    dir.to_string(),
                    Entry {
                        body: Body::Dir,
                        mode: 0o755,
                        owner,
                        xattrs: Vec::new(),
                    },
                );
            }
        }
        all
    }

    /// Writes the layer into `dir` (blob named by its digest) and returns what was written.
    /// Blocking: call from `spawn_blocking`.
    pub fn write(&self, dir: &Path, options: WriteOptions) -> Result<LayerBlob, LayerError> {
        let write_err = |e: std::io::Error| LayerError::Write {
            dir: dir.display().to_string(),
            source: e,
        };
        std::fs::create_dir_all(dir).map_err(write_err)?;
        let temp = tempfile::Builder::new()
            .prefix(".layer-")
            .tempfile_in(dir)
            .map_err(write_err)?;
        let file = temp.as_file().try_clone().map_err(write_err)?;
        let blob_hashing = HashingWriter::new(BufWriter::with_capacity(1 << 20, file));
        let tar_hashing =
            HashingWriter::new(LayerCompressor::new(blob_hashing, options.compression));
        let mut tar = tar::Builder::new(tar_hashing);
        tar.mode(tar::HeaderMode::Deterministic);
        let mut zips: HashMap<PathBuf, zip::ZipArchive<File>> = HashMap::new();

        for (path, entry) in self.with_parents() {
            let mut header = tar::Header::new_gnu();
            header.set_mtime(options.mtime);
            header.set_uid(entry.owner.uid);
            header.set_gid(entry.owner.gid);
            header.set_mode(entry.mode);
            if !entry.xattrs.is_empty() {
                let records: Vec<(String, &[u8])> = entry
                    .xattrs
                    .iter()
                    .map(|(name, value)| (format!("SCHILY.xattr.{name}"), value.as_slice()))
                    .collect();
                tar.append_pax_extensions(records.iter().map(|(k, v)| (k.as_str(), *v)))
                    .map_err(write_err)?;
            }
            match &entry.body {
                Body::Dir => {
                    header.set_entry_type(tar::EntryType::Directory);
                    header.set_size(0);
                    tar.append_data(&mut header, format!("{path}/"), std::io::empty())
                        .map_err(write_err)?;
                }
                Body::Symlink(target) => {
                    header.set_entry_type(tar::EntryType::Symlink);
                    header.set_size(0);
                    tar.append_link(&mut header, &path, target)
                        .map_err(write_err)?;
                }
                Body::HardLink(target) => {
                    header.set_entry_type(tar::EntryType::Link);
                    header.set_size(0);
                    tar.append_link(&mut header, &path, target)
                        .map_err(write_err)?;
                }
                Body::File(source) => {
                    header.set_entry_type(tar::EntryType::Regular);
                    append_file(&mut tar, &mut header, &path, source, &mut zips)?;
                }
            }
        }

        let tar_hashing = tar.into_inner().map_err(write_err)?;
        let (compressor, diff_id, tar_size) = tar_hashing.finish();
        let blob_hashing = compressor.finish().map_err(write_err)?;
        let (mut buffered, digest, size) = blob_hashing.finish();
        buffered.flush().map_err(write_err)?;
        drop(buffered);
        let final_path = dir.join(digest.hex());
        temp.persist(&final_path).map_err(|e| write_err(e.error))?;
        Ok(LayerBlob {
            path: final_path,
            digest,
            diff_id,
            size,
            media_type: options.compression.media_type(),
            tar_size,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec_with(files: &[(&str, &str)]) -> LayerSpec {
        let mut spec = LayerSpec::new();
        for (p, c) in files {
            spec.add_bytes(
                p,
                c.as_bytes().to_vec(),
                0o644,
                Owner {
                    uid: 1000,
                    gid: 1000,
                },
            )
            .unwrap();
        }
        spec
    }

    #[test]
    fn same_inputs_same_digest_in_any_insertion_order() {
        let dir = tempfile::tempdir().unwrap();
        let opts = WriteOptions::default();
        let a = spec_with(&[("/a/x", "1"), ("/b/y", "2")])
            .write(&dir.path().join("1"), opts)
            .unwrap();
        let b = spec_with(&[("/b/y", "2"), ("/a/x", "1")])
            .write(&dir.path().join("2"), opts)
            .unwrap();
        assert_eq!(a.digest, b.digest);
        assert_eq!(a.diff_id, b.diff_id);
        let c = spec_with(&[("/a/x", "1")])
            .write(
                &dir.path().join("3"),
                WriteOptions {
                    mtime: 5,
                    ..Default::default()
                },
            )
            .unwrap();
        assert_ne!(a.digest, c.digest);
        assert_eq!(
            Digest::of_reader(File::open(&a.path).unwrap()).unwrap().0,
            a.digest
        );
    }

    #[test]
    fn emits_parents_sorted_with_numeric_owners() {
        let dir = tempfile::tempdir().unwrap();
        let blob = spec_with(&[("/auxiliary/models/m.yaml", "x")])
            .write(dir.path(), WriteOptions::default())
            .unwrap();
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(
            File::open(&blob.path).unwrap(),
        ));
        let entries: Vec<(String, u64, u64)> = archive
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.path().unwrap().display().to_string(),
                    e.header().uid().unwrap(),
                    e.header().mtime().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            entries,
            vec![
                ("auxiliary/".into(), 0, 0),
                ("auxiliary/models/".into(), 0, 0),
                ("auxiliary/models/m.yaml".into(), 1000, 0)
            ]
        );
    }

    #[test]
    fn implicit_dirs_inherit_the_nearest_explicit_owner() {
        let mut spec = LayerSpec::new();
        let oracle = Owner {
            uid: 1000,
            gid: 1000,
        };
        spec.add_dir("/aux", 0o755, oracle).unwrap();
        spec.add_bytes("/aux/wdt/bin/x.sh", b"x".to_vec(), 0o755, oracle)
            .unwrap();
        let parents = spec.with_parents();
        assert_eq!(parents["aux/wdt"].owner, oracle);
        assert_eq!(parents["aux/wdt/bin"].owner, oracle);
    }

    #[test]
    fn setuid_and_setgid_bits_never_come_from_an_input() {
        use std::os::unix::fs::PermissionsExt;
        let work = tempfile::tempdir().unwrap();
        let tree = work.path().join("home");
        std::fs::create_dir_all(tree.join("bin")).unwrap();
        std::fs::write(tree.join("bin/tool"), b"#!/bin/sh\n").unwrap();
        let set =
            |p: &Path, mode| std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode));
        set(&tree.join("bin/tool"), 0o4755).unwrap();
        set(&tree.join("bin"), 0o2775).unwrap();
        let modes = |spec: LayerSpec| -> Vec<(String, u32)> {
            let mut spec = spec;
            spec.add_host_tree(&tree, "/u01/oracle", Owner::default())
                .unwrap();
            spec.listing()
                .into_iter()
                .map(|(path, _, mode, _)| (path, mode))
                .collect()
        };
        let dropped = modes(LayerSpec::new().keep_setuid(false));
        assert!(
            dropped.contains(&("/u01/oracle/bin".into(), 0o775)),
            "{dropped:?}"
        );
        assert!(
            dropped.contains(&("/u01/oracle/bin/tool".into(), 0o755)),
            "{dropped:?}"
        );
        // Kept only when asked (--keep-setuid).
        let kept = modes(LayerSpec::new().keep_setuid(true));
        assert!(
            kept.contains(&("/u01/oracle/bin/tool".into(), 0o4755)),
            "{kept:?}"
        );
        assert!(
            kept.contains(&("/u01/oracle/bin".into(), 0o2775)),
            "{kept:?}"
        );
    }

    #[test]
    fn refuses_escaping_paths() {
        assert!(image_path("/a/../../etc").is_err());
        assert!(image_path("/").is_err());
        assert_eq!(image_path("/a/./b/").unwrap(), "a/b");
    }
}
