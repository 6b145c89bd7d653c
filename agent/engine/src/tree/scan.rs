//! One layer's part in answering a merged-tree question: read from the layer's tar, or from the
//! layer's file index (kept beside cached layers) when no file content is needed. A full scan
//! writes the index, so each layer is decompressed for listings and stats at most once.

use super::{is_under, parent_of, EntryKind, Hidden, TreeEntry, TreeError, TreeQuery, MAX_CONTENT};
use crate::digest::Digest;
use crate::layer::{reader, LayerError};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::{Path, PathBuf};

/// What the layers above have settled, carried from layer to layer.
pub(super) struct State {
    pub pending: BTreeSet<String>,
    pub query: TreeQuery,
    pub hidden: Hidden,
    pub seen: BTreeSet<String>,
}

pub(super) type Found = (
    BTreeMap<String, TreeEntry>,
    BTreeMap<String, Vec<TreeEntry>>,
);

/// One tar entry as the index records it.
#[derive(Serialize, Deserialize)]
struct IndexEntry {
    /// Path as in the tar, normalized (whiteout names kept).
    p: String,
    /// f file, d dir, l symlink, h hardlink, o other.
    k: char,
    m: u32,
    u: u64,
    g: u64,
    s: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    l: Option<String>,
    /// The content (base64) of a small file `inspect` and SBOMs read (`KEPT_NAMES`), so
    /// reading it again needs no decompression of the layer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    c: Option<String>,
}

/// Files whose content the index keeps, by name, up to `KEPT_BYTES`: the OS's and accounts'
/// identity, the JDK's `release`, Oracle's inventories, OPatch's and WDT's versions, dpkg's status.
const KEPT_NAMES: &[&str] = &[
    "os-release",
    "passwd",
    "group",
    "release",
    "registry.xml",
    "version.txt",
    "VERSION.txt",
    "inventory.xml",
    "status",
];
const KEPT_BYTES: u64 = 256 << 10;

fn kept(path: &str, kind: char, size: u64) -> bool {
    kind == 'f'
        && size <= KEPT_BYTES
        && KEPT_NAMES.contains(&path.rsplit('/').next().unwrap_or(path))
}

impl IndexEntry {
    fn kind(&self) -> EntryKind {
        match self.k {
            'f' => EntryKind::File,
            'd' => EntryKind::Dir,
            'l' => EntryKind::Symlink(self.l.clone().unwrap_or_default()),
            'h' => EntryKind::Hardlink(self.l.clone().unwrap_or_default()),
            _ => EntryKind::Other,
        }
    }
}

/// Applies one layer's entries to the question, entry by entry.
struct Visit<'a> {
    state: &'a mut State,
    layer: usize,
    layer_hidden: Hidden,
    layer_seen: BTreeSet<String>,
    found: BTreeMap<String, TreeEntry>,
    listed: BTreeMap<String, Vec<TreeEntry>>,
}

impl<'a> Visit<'a> {
    fn new(state: &'a mut State, layer: usize) -> Self {
        Visit {
            state,
            layer,
            layer_hidden: Hidden::default(),
            layer_seen: BTreeSet::new(),
            found: BTreeMap::new(),
            listed: BTreeMap::new(),
        }
    }

    /// Records `e`; returns true when its content is wanted (an asked-for regular file).
    fn entry(&mut self, e: &IndexEntry) -> bool {
        let path = &e.p;
        let name = path.rsplit('/').next().unwrap_or("");
        if let Some(whited) = name.strip_prefix(".wh.") {
            let parent = parent_of(path);
            if whited == ".wh..opq" {
                self.layer_hidden.opaque.insert(parent.to_string());
            } else {
                self.layer_hidden.removed.insert(if parent.is_empty() {
                    whited.to_string()
                } else {
                    format!("{parent}/{whited}")
                });
            }
            return false;
        }
        if path.is_empty() || self.state.hidden.hides(path) || self.state.seen.contains(path) {
            return false;
        }
        self.layer_seen.insert(path.clone());
        let kind = e.kind();
        if kind != EntryKind::Dir {
            // A non-directory replaces whatever lower layers had below this path.
            self.layer_hidden.removed.insert(path.clone());
        }
        let exact = self.state.pending.contains(path);
        let listings: Vec<String> = self
            .state
            .query
            .list
            .iter()
            .filter(|d| is_under(path, d))
            .cloned()
            .collect();
        if !exact && listings.is_empty() {
            return false;
        }
        let entry = TreeEntry {
            path: path.clone(),
            kind,
            mode: e.m,
            uid: e.u,
            gid: e.g,
            size: e.s,
            content: None,
            layer: self.layer,
        };
        for dir in listings {
            self.listed.entry(dir).or_default().push(entry.clone());
        }
        let wants_content = exact
            && self.state.query.read.contains(path)
            && entry.kind == EntryKind::File
            && entry.size <= MAX_CONTENT;
        if exact {
            self.found.insert(path.clone(), entry);
        }
        wants_content
    }

    /// This layer's whiteouts and replacements apply to the layers below it only.
    fn finish(self) -> Found {
        self.state.hidden.removed.extend(self.layer_hidden.removed);
        self.state.hidden.opaque.extend(self.layer_hidden.opaque);
        self.state.seen.extend(self.layer_seen);
        (self.found, self.listed)
    }
}

/// Answers from the layer's index; None when the index is unreadable or content is needed
/// (the caller then scans the blob). `state` is untouched unless Some is returned.
pub(super) fn from_index(path: &Path, layer: usize, state: &mut State) -> Option<Found> {
    let entries: Vec<IndexEntry> = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    let mut trial = State {
        pending: state.pending.clone(),
        query: state.query.clone(),
        hidden: state.hidden.clone(),
        seen: state.seen.clone(),
    };
    let mut visit = Visit::new(&mut trial, layer);
    for e in &entries {
        if visit.entry(e) {
            // Content is needed: the index answers only if it kept it.
            let content = e.c.as_deref().and_then(|c| {
                base64::Engine::decode(&base64::engine::general_purpose::STANDARD, c).ok()
            })?;
            if let Some(found) = visit.found.get_mut(&e.p) {
                found.content = Some(content);
            }
        }
    }
    let found = visit.finish();
    *state = trial;
    Some(found)
}

pub(super) struct LayerScan {
    pub index: usize,
    pub path: PathBuf,
    pub digest: Digest,
    pub media_type: String,
    /// Where to write the layer's index when the scan read the whole layer.
    pub index_path: PathBuf,
}

impl LayerScan {
    pub fn run(&self, state: &mut State) -> Result<Found, TreeError> {
        let corrupt = |e: std::io::Error| LayerError::Corrupt {
            digest: self.digest.to_string(),
            reason: e.to_string(),
        };
        let mut archive = reader::open(&self.path, &self.digest.to_string(), &self.media_type)?;
        let mut visit = Visit::new(state, self.index);
        let mut index = Vec::new();
        for entry in archive.entries().map_err(corrupt)? {
            let mut entry = entry.map_err(corrupt)?;
            let raw = entry
                .path()
                .map_err(corrupt)?
                .to_string_lossy()
                .into_owned();
            let header = entry.header();
            let (k, l) = match header.entry_type() {
                tar::EntryType::Regular | tar::EntryType::Continuous => ('f', None),
                tar::EntryType::Directory => ('d', None),
                tar::EntryType::Symlink => ('l', Some(link_name(&entry))),
                tar::EntryType::Link => ('h', Some(link_name(&entry))),
                _ => ('o', None),
            };
            let mut indexed = IndexEntry {
                p: reader::normalize(&raw),
                k,
                m: header.mode().unwrap_or(0),
                u: header.uid().unwrap_or(0),
                g: header.gid().unwrap_or(0),
                s: header.size().unwrap_or(0),
                l,
                c: None,
            };
            let wanted = visit.entry(&indexed);
            if wanted || kept(&indexed.p, indexed.k, indexed.s) {
                let mut content = Vec::with_capacity(indexed.s as usize);
                entry.read_to_end(&mut content).map_err(corrupt)?;
                if kept(&indexed.p, indexed.k, indexed.s) {
                    indexed.c = Some(base64::Engine::encode(
                        &base64::engine::general_purpose::STANDARD,
                        &content,
                    ));
                }
                if let Some(found) = visit.found.get_mut(&indexed.p).filter(|_| wanted) {
                    found.content = Some(content);
                }
            }
            index.push(indexed);
        }
        // Rewritten even when one exists: an index of an older release lacks the kept contents.
        write_index(&self.index_path, &index);
        Ok(visit.finish())
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

/// Writes an index by rename, without fsync: it is a cache, and a torn or lost one only means
/// the next question scans the layer again (an unparsable index is ignored).
fn write_index(path: &Path, index: &[IndexEntry]) {
    let Some(dir) = path.parent() else { return };
    let write = || -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        let mut temp = tempfile::Builder::new()
            .prefix(".index-")
            .tempfile_in(dir)?;
        serde_json::to_writer(std::io::BufWriter::new(temp.as_file_mut()), index)
            .map_err(std::io::Error::other)?;
        temp.persist(path).map_err(|e| e.error)?;
        Ok(())
    };
    if let Err(e) = write() {
        tracing::debug!(index = %path.display(), error = %e, "could not keep a layer index");
    }
}
