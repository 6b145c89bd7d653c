//! A merged, read-only view of an image's files across its layers (whiteouts and opaque
//! directories honoured), read top-down and only as deep as the questions need.

use crate::image::Descriptor;
use crate::layer::{reader, LayerError};

mod scan;
use crate::transport::push::{BlobOrigin, OutBlob};
use crate::transport::{BlobSource, TransportError};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

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
    /// Per layer, the paths that hold everything in it but the directories above them, when the
    /// image's history says so (patchfarm's JDK layer): a question about no path in or above
    /// them is not asked of that layer, so it is not downloaded.
    confined: Vec<Option<Vec<String>>>,
}

/// Whether a layer confined to `held` may answer a question about `path`: `path` is one of
/// them, under one, or one of the directories above one.
fn may_hold(held: &[String], path: &str) -> bool {
    held.iter()
        .any(|dir| path == dir || is_under(path, dir) || is_under(dir, path))
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
#[derive(Default, Clone)]
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
            confined: Vec::new(),
        }
    }

    /// Marks layer `index` as holding nothing but `paths` (files, or directories with what is
    /// below them) and the directories above them.
    pub fn confine(mut self, index: usize, paths: &[&str]) -> Self {
        if self.confined.len() < self.layers.len() {
            self.confined.resize(self.layers.len(), None);
        }
        if let Some(slot) = self.confined.get_mut(index) {
            *slot = Some(paths.iter().map(|p| reader::normalize(p)).collect());
        }
        self
    }

    /// The tree of an image value whose layers come from several places (e.g. a rebase result).
    pub fn over(layers: Vec<OutBlob>, download_dir: PathBuf) -> Self {
        MergedTree {
            layers,
            download_dir,
            confined: Vec::new(),
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
            if let Some(Some(held)) = self.confined.get(index) {
                let asked = pending.iter().chain(&query.list);
                if !asked.into_iter().any(|p| may_hold(held, p)) {
                    continue;
                }
            }
            let layer = &self.layers[index].descriptor;
            let index_path = self
                .download_dir
                .join(format!("{}.index", layer.digest.hex()));
            let mut state = scan::State {
                pending: pending.clone(),
                query: query.clone(),
                hidden: std::mem::take(&mut hidden),
                seen: std::mem::take(&mut seen),
            };
            // A layer's file index answers stat and list questions without touching the blob.
            let mut result = None;
            if index_path.is_file() {
                let (path, st) = (index_path.clone(), state);
                let (r, st) = crate::spawn_blocking(move || {
                    let mut st = st;
                    let r = scan::from_index(&path, index, &mut st);
                    (r, st)
                })
                .await
                .expect("layer index task");
                state = st;
                result = r;
            }
            let (found, listed) = match result {
                Some(answer) => answer,
                None => {
                    let blob = match &self.layers[index].origin {
                        BlobOrigin::Local(path) => path.clone(),
                        BlobOrigin::Memory(bytes) => {
                            // Content-addressed: kept beside downloaded layers under its digest.
                            let path = self.download_dir.join(layer.digest.hex());
                            if !path.exists() {
                                std::fs::create_dir_all(&self.download_dir)
                                    .and_then(|_| {
                                        crate::transport::layout::write_atomic(&path, bytes)
                                    })
                                    .map_err(|e| TransportError::Io {
                                        what: format!("keeping layer {}", layer.digest),
                                        source: e,
                                    })?;
                            }
                            path
                        }
                        BlobOrigin::Remote(source) => {
                            source.local_path(&layer.digest, &self.download_dir).await?
                        }
                    };
                    let scan = scan::LayerScan {
                        index,
                        path: blob,
                        digest: layer.digest.clone(),
                        media_type: layer.media_type.clone(),
                        index_path,
                    };
                    let (r, st) = crate::spawn_blocking(move || {
                        let mut st = state;
                        let r = scan.run(&mut st);
                        (r, st)
                    })
                    .await
                    .expect("layer scan task");
                    state = st;
                    r?
                }
            };
            hidden = state.hidden;
            seen = state.seen;
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
