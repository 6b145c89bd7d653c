//! A merged, read-only view of an image's files across its layers (whiteouts and opaque
//! directories honoured), read top-down and only as deep as the questions need.

use crate::digest::Digest;
use crate::image::Descriptor;
use crate::layer::{reader, LayerError};
use crate::transport::push::{BlobOrigin, OutBlob};
use crate::transport::{BlobSource, TransportError};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum TreeError {
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error(transparent)]
    Layer(#[from] LayerError),
}

/// The type of a file in the merged tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EntryKind {
    File,
    Dir,
    Symlink(String),
    Hardlink(String),
    Other,
}

/// One file as the merged tree shows it.
#[derive(Clone, Debug)]
pub struct TreeEntry {
    pub path: String,
    pub kind: EntryKind,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub size: u64,
    /// Present for regular files whose content was asked for.
    pub content: Option<Vec<u8>>,
    /// Index of the layer (bottom = 0) the entry comes from.
    pub layer: usize,
}

/// Files larger than this are reported but their content is not loaded.
const MAX_CONTENT: u64 = 512 << 20;

/// What to find: exact paths (with or without content) and directories to list recursively.
#[derive(Clone, Debug, Default)]
pub struct TreeQuery {
    pub stat: BTreeSet<String>,
    pub read: BTreeSet<String>,
    pub list: BTreeSet<String>,
}

impl TreeQuery {
    pub fn stat(mut self, path: &str) -> Self {
        self.stat.insert(reader::normalize(path));
        self
    }
    pub fn read(mut self, path: &str) -> Self {
        self.read.insert(reader::normalize(path));
        self
    }
    pub fn list(mut self, dir: &str) -> Self {
        self.list.insert(reader::normalize(dir));
        self
    }
}

/// Answers: each asked path found or not; each listed dir's entries below it.
#[derive(Clone, Debug, Default)]
pub struct TreeAnswer {
    pub found: BTreeMap<String, TreeEntry>,
    pub listed: BTreeMap<String, Vec<TreeEntry>>,
    /// How many layers had to be read.
    pub layers_read: usize,
}

impl TreeAnswer {
    pub fn get(&self, path: &str) -> Option<&TreeEntry> {
        self.found.get(&reader::normalize(path))
    }
}

/// An image's layers, bottom first, and where to read each of them.
pub struct MergedTree {
    layers: Vec<OutBlob>,
    download_dir: PathBuf,
}

fn parent_of(path: &str) -> &str {
    path.rsplit_once('/').map(|(p, _)| p).unwrap_or("")
}

fn ancestors(path: &str) -> impl Iterator<Item = &str> {
    let mut current = path;
    std::iter::from_fn(move || {
        let (parent, _) = current.rsplit_once('/')?;
        current = parent;
        Some(parent)
    })
}

fn is_under(path: &str, dir: &str) -> bool {
    dir.is_empty()
        || path
            .strip_prefix(dir)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// What upper layers hide from the layers below them.
#[derive(Default)]
struct Hidden {
    /// Whited-out paths (and everything below them).
    removed: BTreeSet<String>,
    /// Opaque directories: everything strictly below is hidden.
    opaque: BTreeSet<String>,
}

impl Hidden {
    fn hides(&self, path: &str) -> bool {
        self.removed.contains(path)
            || ancestors(path).any(|a| self.removed.contains(a) || self.opaque.contains(a))
    }
}

impl MergedTree {
    /// The tree of an image whose layers all come from `source`.
    pub fn new(layers: Vec<Descriptor>, source: BlobSource, download_dir: PathBuf) -> Self {
        let layers = layers
            .into_iter()
            .map(|descriptor| OutBlob {
                descriptor,
                origin: BlobOrigin::Remote(source.clone()),
            })
            .collect();
        MergedTree {
            layers,
            download_dir,
        }
    }

    /// The tree of an image value whose layers come from several places (e.g. a rebase result).
    pub fn over(layers: Vec<OutBlob>, download_dir: PathBuf) -> Self {
        MergedTree {
            layers,
            download_dir,
        }
    }

    /// Answers `query`, reading layers from the top and stopping once every exact path is settled.
    pub async fn lookup(&self, query: &TreeQuery) -> Result<TreeAnswer, TreeError> {
        let mut answer = TreeAnswer::default();
        let mut pending: BTreeSet<String> = query.stat.union(&query.read).cloned().collect();
        let mut hidden = Hidden::default();
        let mut seen: BTreeSet<String> = BTreeSet::new();
        for index in (0..self.layers.len()).rev() {
            if pending.is_empty() && query.list.is_empty() {
                break;
            }
            let layer = &self.layers[index].descriptor;
            let path = match &self.layers[index].origin {
                BlobOrigin::Local(path) => path.clone(),
                BlobOrigin::Remote(source) => {
                    source.local_path(&layer.digest, &self.download_dir).await?
                }
            };
            let scan = LayerScan {
                index,
                path,
                digest: layer.digest.clone(),
                media_type: layer.media_type.clone(),
            };
            let (p, h, s, q) = (
                pending.clone(),
                std::mem::take(&mut hidden),
                std::mem::take(&mut seen),
                query.clone(),
            );
            let (result, h, s) = tokio::task::spawn_blocking(move || {
                let mut h = h;
                let mut s = s;
                let r = scan.run(&p, &q, &mut h, &mut s);
                (r, h, s)
            })
            .await
            .expect("layer scan task");
            hidden = h;
            seen = s;
            let (found, listed) = result?;
            answer.layers_read += 1;
            for (path, entry) in found {
                pending.remove(&path);
                answer.found.insert(path, entry);
            }
            for (dir, entries) in listed {
                answer.listed.entry(dir).or_default().extend(entries);
            }
            pending.retain(|p| !hidden.hides(p));
        }
        for entries in answer.listed.values_mut() {
            entries.sort_by(|a, b| a.path.cmp(&b.path));
        }
        Ok(answer)
    }

    /// Reads files, following symlinks and hardlinks (up to 8 hops), keyed by the asked path.
    pub async fn read_files(
        &self,
        paths: &[&str],
    ) -> Result<BTreeMap<String, TreeEntry>, TreeError> {
        let mut result = BTreeMap::new();
        let mut wanted: Vec<(String, String)> = paths
            .iter()
            .map(|p| (reader::normalize(p), reader::normalize(p)))
            .collect();
        for _ in 0..8 {
            if wanted.is_empty() {
                break;
            }
            let query = wanted
                .iter()
                .fold(TreeQuery::default(), |q, (_, p)| q.read(p));
            let answer = self.lookup(&query).await?;
            let mut next = Vec::new();
            for (asked, path) in wanted {
                match answer.found.get(&path) {
                    Some(TreeEntry {
                        kind: EntryKind::Symlink(target),
                        ..
                    }) => {
                        let resolved = if target.starts_with('/') {
                            target.clone()
                        } else {
                            format!("{}/{}", parent_of(&path), target)
                        };
                        next.push((asked, normalize_dots(&resolved)));
                    }
                    Some(TreeEntry {
                        kind: EntryKind::Hardlink(target),
                        ..
                    }) => next.push((asked, reader::normalize(target))),
                    Some(entry) => {
                        result.insert(asked, entry.clone());
                    }
                    None => {}
                }
            }
            wanted = next;
        }
        Ok(result)
    }
}

/// Resolves `.` and `..` in an image path (never above `/`).
fn normalize_dots(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    parts.join("/")
}

struct LayerScan {
    index: usize,
    path: PathBuf,
    digest: Digest,
    media_type: String,
}

type ScanResult = Result<
    (
        BTreeMap<String, TreeEntry>,
        BTreeMap<String, Vec<TreeEntry>>,
    ),
    TreeError,
>;

impl LayerScan {
    fn run(
        &self,
        pending: &BTreeSet<String>,
        query: &TreeQuery,
        hidden: &mut Hidden,
        seen: &mut BTreeSet<String>,
    ) -> ScanResult {
        let corrupt = |e: std::io::Error| LayerError::Corrupt {
            digest: self.digest.to_string(),
            reason: e.to_string(),
        };
        let mut archive = reader::open(
            Path::new(&self.path),
            &self.digest.to_string(),
            &self.media_type,
        )?;
        let mut found = BTreeMap::new();
        let mut listed: BTreeMap<String, Vec<TreeEntry>> = BTreeMap::new();
        let mut layer_hidden = Hidden::default();
        let mut layer_seen = BTreeSet::new();
        for entry in archive.entries().map_err(corrupt)? {
            let mut entry = entry.map_err(corrupt)?;
            let raw = entry
                .path()
                .map_err(corrupt)?
                .to_string_lossy()
                .into_owned();
            let path = reader::normalize(&raw);
            let name = path.rsplit('/').next().unwrap_or("");
            if let Some(whited) = name.strip_prefix(".wh.") {
                let parent = parent_of(&path);
                if whited == ".wh..opq" {
                    layer_hidden.opaque.insert(parent.to_string());
                } else {
                    layer_hidden.removed.insert(if parent.is_empty() {
                        whited.to_string()
                    } else {
                        format!("{parent}/{whited}")
                    });
                }
                continue;
            }
            if path.is_empty() || hidden.hides(&path) || seen.contains(&path) {
                continue;
            }
            layer_seen.insert(path.clone());
            let header = entry.header();
            let kind = match header.entry_type() {
                tar::EntryType::Regular | tar::EntryType::Continuous => EntryKind::File,
                tar::EntryType::Directory => EntryKind::Dir,
                tar::EntryType::Symlink => EntryKind::Symlink(link_name(&entry)),
                tar::EntryType::Link => EntryKind::Hardlink(link_name(&entry)),
                _ => EntryKind::Other,
            };
            if kind != EntryKind::Dir {
                // A non-directory replaces whatever lower layers had below this path.
                layer_hidden.removed.insert(path.clone());
            }
            let wanted_exact = pending.contains(&path);
            let wanted_listing: Vec<&String> =
                query.list.iter().filter(|d| is_under(&path, d)).collect();
            if !wanted_exact && wanted_listing.is_empty() {
                continue;
            }
            let mut tree_entry = TreeEntry {
                path: path.clone(),
                kind,
                mode: header.mode().unwrap_or(0),
                uid: header.uid().unwrap_or(0),
                gid: header.gid().unwrap_or(0),
                size: header.size().unwrap_or(0),
                content: None,
                layer: self.index,
            };
            if wanted_exact
                && query.read.contains(&path)
                && tree_entry.kind == EntryKind::File
                && tree_entry.size <= MAX_CONTENT
            {
                let mut content = Vec::with_capacity(tree_entry.size as usize);
                entry.read_to_end(&mut content).map_err(corrupt)?;
                tree_entry.content = Some(content);
            }
            for dir in wanted_listing {
                listed.entry(dir.clone()).or_default().push(TreeEntry {
                    content: None,
                    ..tree_entry.clone()
                });
            }
            if wanted_exact {
                found.insert(path, tree_entry);
            }
        }
        // This layer's whiteouts and replacements apply to the layers below it only.
        hidden.removed.extend(layer_hidden.removed);
        hidden.opaque.extend(layer_hidden.opaque);
        seen.extend(layer_seen);
        Ok((found, listed))
    }
}

fn link_name<R: Read>(entry: &tar::Entry<R>) -> String {
    entry
        .link_name()
        .ok()
        .flatten()
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_helpers() {
        assert_eq!(
            normalize_dots("etc/../usr/lib/os-release"),
            "usr/lib/os-release"
        );
        assert!(is_under("a/b/c", "a/b"));
        assert!(!is_under("a/bc", "a/b"));
        let mut h = Hidden::default();
        h.opaque.insert("u01".into());
        assert!(h.hides("u01/x"));
        assert!(!h.hides("u01"));
        h.removed.insert("etc/x".into());
        assert!(h.hides("etc/x/y"));
    }
}
