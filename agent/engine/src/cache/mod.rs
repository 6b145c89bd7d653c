//! The local installer and patch cache: WIT's keys over a content-addressed store.
//!
//! Layout under the root (`$PATCHFARM_CACHE`, default `~/.cache/patchfarm`):
//! `blobs/sha256/<hex>` holds content, `entries/<key>.json` maps a key to a digest,
//! `layers/` keeps downloaded image layers, `locations/` remembers where blobs were pushed.
//! Blobs appear by rename (complete or absent); entries change under an exclusive file lock.

mod built;
pub mod key;
pub mod wit;

pub use key::{CacheKey, KeyError};

use crate::digest::{Digest, HashingWriter};
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error(
        "cache key '{key}' already exists (added from {source_name}); pass --force to replace it"
    )]
    Exists { key: String, source_name: String },
    #[error("cache key '{key}' not found in {root}{hint}")]
    NotFound {
        key: String,
        root: String,
        hint: String,
    },
    #[error("cache entry '{key}' is corrupt: {path} should have sha256 {expected} but has {actual}; delete it with `patchfarm cache deleteEntry --key {key}` and add it again")]
    Corrupt {
        key: String,
        path: String,
        expected: String,
        actual: String,
    },
    #[error("cache entry '{key}' is damaged: {reason}")]
    BadEntry { key: String, reason: String },
    #[error("cannot read {path}: {source}")]
    ReadInput {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cache at {root}: {source}")]
    Store {
        root: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cache entry '{key}' ({digest}) could not be fetched: {reason}")]
    Fetch {
        key: String,
        digest: String,
        reason: String,
    },
    #[error("invalid --key pattern '{pattern}': {reason}")]
    Pattern { pattern: String, reason: String },
}

/// What the cache records about one key.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct CacheEntry {
    pub key: String,
    pub digest: Digest,
    pub size: u64,
    /// File name the item was added from (WIT-style display, and the zip/tar name when it matters).
    pub file_name: String,
}

/// A verified cache item ready to use.
#[derive(Clone, Debug)]
pub struct CachedItem {
    pub entry: CacheEntry,
    pub path: PathBuf,
}

/// Brings an entry's content into the store on first use (a farm agent's artifact fetcher).
/// Called from blocking threads, before every use of an entry, with the blob's path.
pub trait BlobFetcher: Send + Sync {
    fn ensure(&self, entry: &CacheEntry, blob: &Path) -> Result<(), String>;
}

#[derive(Clone)]
pub struct Cache {
    root: PathBuf,
    fetcher: Option<std::sync::Arc<dyn BlobFetcher>>,
    /// A WebLogic Image Tool cache to take missing keys from (the CLI's, never an agent's).
    wit: Option<PathBuf>,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache")
            .field("root", &self.root)
            .field("fetcher", &self.fetcher.is_some())
            .finish()
    }
}

impl Cache {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Cache {
            root: root.into(),
            fetcher: None,
            wit: None,
        }
    }

    /// A cache that takes keys it lacks from WIT's cache in `dir` (its `.metadata`).
    pub fn with_wit_cache(mut self, dir: Option<PathBuf>) -> Self {
        self.wit = dir;
        self
    }

    /// A cache whose entries name content that `fetcher` brings in when first used.
    pub fn with_fetcher(mut self, fetcher: std::sync::Arc<dyn BlobFetcher>) -> Self {
        self.fetcher = Some(fetcher);
        self
    }

    /// Records `entry` as is (its content arrives through the fetcher).
    pub fn record(&self, entry: &CacheEntry) -> Result<(), CacheError> {
        let key: CacheKey = entry.key.parse()?;
        let path = self.entry_path(&key);
        std::fs::create_dir_all(path.parent().expect("entries dir")).map_err(self.store_err())?;
        let json = serde_json::to_vec_pretty(entry).expect("entry serializes");
        crate::transport::layout::write_atomic(&path, &json).map_err(self.store_err())
    }

    /// Drops the entry for `key`, keeping its content (other entries may share it).
    pub fn forget(&self, key: &str) -> Result<(), CacheError> {
        let key: CacheKey = key.parse()?;
        match std::fs::remove_file(self.entry_path(&key)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err((self.store_err())(e)),
            _ => Ok(()),
        }
    }

    /// `$PATCHFARM_CACHE`, else `~/.cache/patchfarm`.
    pub fn default_root() -> PathBuf {
        if let Some(dir) = std::env::var_os("PATCHFARM_CACHE").filter(|d| !d.is_empty()) {
            return PathBuf::from(dir);
        }
        let home = std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/tmp"));
        home.join(".cache").join("patchfarm")
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where downloaded image layers are kept.
    pub fn layers_dir(&self) -> PathBuf {
        self.root.join("layers")
    }

    /// Where new layers are written before they are pushed.
    pub fn build_dir(&self) -> PathBuf {
        self.root.join("build")
    }

    pub fn locations_dir(&self) -> PathBuf {
        self.root.join("locations")
    }

    fn store_err(&self) -> impl Fn(std::io::Error) -> CacheError + '_ {
        move |source| CacheError::Store {
            root: self.root.display().to_string(),
            source,
        }
    }

    fn entry_path(&self, key: &CacheKey) -> PathBuf {
        self.root.join("entries").join(format!("{key}.json"))
    }

    fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root.join("blobs").join("sha256").join(digest.hex())
    }

    fn lock(&self) -> Result<File, CacheError> {
        std::fs::create_dir_all(&self.root).map_err(self.store_err())?;
        let lock = File::create(self.root.join(".lock")).map_err(self.store_err())?;
        lock.lock().map_err(self.store_err())?;
        Ok(lock)
    }

    /// Copies `source` into the store under `key`, hashing on the way. Blocking.
    pub fn add(
        &self,
        key: &CacheKey,
        source: &Path,
        force: bool,
    ) -> Result<CacheEntry, CacheError> {
        let read_err = |e| CacheError::ReadInput {
            path: source.display().to_string(),
            source: e,
        };
        let meta = std::fs::metadata(source).map_err(read_err)?;
        if !meta.is_file() {
            return Err(CacheError::ReadInput {
                path: source.display().to_string(),
                source: std::io::Error::other("not a regular file"),
            });
        }
        if !force {
            if let Some(existing) = self.entry(key)? {
                return Err(CacheError::Exists {
                    key: key.to_string(),
                    source_name: existing.file_name,
                });
            }
        }
        let blobs = self.root.join("blobs").join("sha256");
        std::fs::create_dir_all(&blobs).map_err(self.store_err())?;
        let temp = tempfile::Builder::new()
            .prefix(".add-")
            .tempfile_in(&blobs)
            .map_err(self.store_err())?;
        let mut writer =
            HashingWriter::new(std::io::BufWriter::with_capacity(1 << 20, temp.as_file()));
        std::io::copy(&mut File::open(source).map_err(read_err)?, &mut writer).map_err(read_err)?;
        let (mut buffered, digest, size) = writer.finish();
        buffered.flush().map_err(self.store_err())?;
        drop(buffered);
        temp.as_file().sync_all().map_err(self.store_err())?;
        let blob = self.blob_path(&digest);
        if blob.exists() {
            drop(temp); // identical content is already stored
        } else {
            temp.persist(&blob)
                .map_err(|e| (self.store_err())(e.error))?;
        }
        let entry = CacheEntry {
            key: key.to_string(),
            digest,
            size,
            file_name: source
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
        };
        let _lock = self.lock()?;
        // Checked again under the lock: another process may have added the key meanwhile.
        if !force {
            if let Some(existing) = self.entry(key)? {
                return Err(CacheError::Exists {
                    key: key.to_string(),
                    source_name: existing.file_name,
                });
            }
        }
        let path = self.entry_path(key);
        std::fs::create_dir_all(path.parent().expect("entries dir")).map_err(self.store_err())?;
        let json = serde_json::to_vec_pretty(&entry).expect("entry serializes");
        crate::transport::layout::write_atomic(&path, &json).map_err(self.store_err())?;
        Ok(entry)
    }

    /// The entry for `key`, if any (not verified).
    pub fn entry(&self, key: &CacheKey) -> Result<Option<CacheEntry>, CacheError> {
        match std::fs::read(self.entry_path(key)) {
            Ok(bytes) => {
                serde_json::from_slice(&bytes)
                    .map(Some)
                    .map_err(|e| CacheError::BadEntry {
                        key: key.to_string(),
                        reason: e.to_string(),
                    })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err((self.store_err())(e)),
        }
    }

    /// The item for `key`, its content re-hashed against the recorded sha256. Blocking.
    pub fn get_verified(&self, key: &CacheKey) -> Result<CachedItem, CacheError> {
        let entry = match (self.entry(key)?, &self.wit) {
            (Some(entry), _) => Some(entry),
            (None, Some(wit)) if self.import_from_wit(wit, key)? => self.entry(key)?,
            (None, _) => None,
        };
        let entry = entry.ok_or_else(|| CacheError::NotFound {
            key: key.to_string(),
            root: self.root.display().to_string(),
            hint: self.hint_for(key),
        })?;
        let path = self.blob_path(&entry.digest);
        if let Some(fetcher) = &self.fetcher {
            fetcher
                .ensure(&entry, &path)
                .map_err(|reason| CacheError::Fetch {
                    key: key.to_string(),
                    digest: entry.digest.to_string(),
                    reason,
                })?;
        }
        let actual = match File::open(&path) {
            Ok(f) => Digest::of_reader(std::io::BufReader::with_capacity(1 << 20, f))
                .map_err(self.store_err())?
                .0
                .to_string(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                "nothing (the file is missing)".into()
            }
            Err(e) => return Err((self.store_err())(e)),
        };
        if actual != entry.digest.to_string() {
            return Err(CacheError::Corrupt {
                key: key.to_string(),
                path: path.display().to_string(),
                expected: entry.digest.to_string(),
                actual,
            });
        }
        Ok(CachedItem { entry, path })
    }

    /// WIT's lookup order: the architecture-specific key first, then the plain one.
    pub fn find_for_arch(&self, key: &CacheKey, arch: &str) -> Result<CachedItem, CacheError> {
        // get_verified also takes the key from a WIT cache: so does the arch-specific lookup.
        let specific = key.with_arch(arch);
        let here = self.entry(&specific)?.is_some()
            || self
                .wit
                .as_ref()
                .map(|wit| self.import_from_wit(wit, &specific))
                .transpose()?
                .unwrap_or(false);
        if here {
            return self.get_verified(&specific);
        }
        self.get_verified(&key.without_arch()).map_err(|e| match e {
            CacheError::NotFound { root, hint, .. } => CacheError::NotFound {
                key: format!("{specific} (nor {})", key.without_arch()),
                root,
                hint,
            },
            other => other,
        })
    }

    fn hint_for(&self, key: &CacheKey) -> String {
        // An agent's cache mirrors the farm's catalog: items are added to the farm.
        let farm = if self.fetcher.is_some() {
            " to the farm's catalog"
        } else {
            ""
        };
        let cli = if self.fetcher.is_some() {
            "patchfarm --farm ADDR"
        } else {
            "patchfarm"
        };
        if key.name.bytes().all(|b| b.is_ascii_digit()) {
            format!("; add it{farm} with `{cli} cache addPatch --patchId {key} --path FILE`")
        } else {
            format!(
                "; add it{farm} with `{cli} cache addInstaller --type {} --version {}{} --path FILE`",
                key.name,
                key.version,
                key.arch
                    .as_ref()
                    .map(|a| format!(" --architecture {a}"))
                    .unwrap_or_default()
            )
        }
    }

    /// Every entry whose whole key matches `pattern` (a regex, as WIT's `--key`: Java's
    /// `matches`, so `jdk` alone matches no key and `jdk.*` every JDK), sorted by key.
    pub fn list(&self, pattern: Option<&str>) -> Result<Vec<CacheEntry>, CacheError> {
        let regex = pattern
            .map(|p| {
                regex::Regex::new(&format!("^(?:{p})$")).map_err(|e| CacheError::Pattern {
                    pattern: p.into(),
                    reason: e.to_string(),
                })
            })
            .transpose()?;
        let dir = self.root.join("entries");
        let mut entries = Vec::new();
        let read = match std::fs::read_dir(&dir) {
            Ok(r) => r,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(entries),
            Err(e) => return Err((self.store_err())(e)),
        };
        for item in read {
            let item = item.map_err(self.store_err())?;
            let name = item.file_name().to_string_lossy().into_owned();
            let Some(key) = name.strip_suffix(".json") else {
                continue;
            };
            if regex.as_ref().is_some_and(|r| !r.is_match(key)) {
                continue;
            }
            if let Ok(key) = key.parse::<CacheKey>() {
                if let Some(entry) = self.entry(&key)? {
                    entries.push(entry);
                }
            }
        }
        entries.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(entries)
    }

    /// Removes `key`; its content goes too unless another key shares it.
    pub fn delete(&self, key: &CacheKey) -> Result<CacheEntry, CacheError> {
        self.remove(key)?.ok_or_else(|| CacheError::NotFound {
            key: key.to_string(),
            root: self.root.display().to_string(),
            hint: String::new(),
        })
    }

    /// Removes `key` if it is here (WIT's `deleteEntry`: a missing key is not an error).
    pub fn remove(&self, key: &CacheKey) -> Result<Option<CacheEntry>, CacheError> {
        let _lock = self.lock()?;
        let Some(entry) = self.entry(key)? else {
            return Ok(None);
        };
        std::fs::remove_file(self.entry_path(key)).map_err(self.store_err())?;
        let shared = self.list(None)?.iter().any(|e| e.digest == entry.digest);
        if !shared {
            let _ = std::fs::remove_file(self.blob_path(&entry.digest));
        }
        Ok(Some(entry))
    }

    /// Removes every entry and its content (WIT's `deleteEntry --key DELETE_ALL_FOR_SURE`);
    /// answers how many entries went. Built layers and build directories are left to their own
    /// clean-up.
    pub fn clear(&self) -> Result<usize, CacheError> {
        let _lock = self.lock()?;
        let entries = self.list(None)?;
        for entry in &entries {
            let key: CacheKey = entry.key.parse()?;
            std::fs::remove_file(self.entry_path(&key)).map_err(self.store_err())?;
            let _ = std::fs::remove_file(self.blob_path(&entry.digest));
        }
        Ok(entries.len())
    }

    /// Path of the stored content for a digest (for tests and tools that inspect the store).
    pub fn content_path(&self, digest: &Digest) -> PathBuf {
        self.blob_path(digest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_get_list_delete_and_detect_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path().join("c"));
        let input = dir.path().join("jdk.tar.gz");
        std::fs::write(&input, b"jdk bytes").unwrap();
        let key = CacheKey::installer("jdk", "8u291", None).unwrap();
        let entry = cache.add(&key, &input, false).unwrap();
        assert_eq!(entry.digest, Digest::of_bytes(b"jdk bytes"));
        assert!(matches!(
            cache.add(&key, &input, false),
            Err(CacheError::Exists { .. })
        ));
        cache.add(&key, &input, true).unwrap();
        assert_eq!(cache.get_verified(&key).unwrap().entry, entry);
        assert_eq!(cache.find_for_arch(&key, "arm64").unwrap().entry, entry);
        assert_eq!(cache.list(Some("jdk.*")).unwrap().len(), 1);
        assert!(
            cache.list(Some("jdk")).unwrap().is_empty(),
            "the whole key must match, as in WIT"
        );
        assert!(cache.list(Some("wls.*")).unwrap().is_empty());

        std::fs::write(cache.content_path(&entry.digest), b"tampered").unwrap();
        let err = cache.get_verified(&key).unwrap_err().to_string();
        assert!(
            err.contains("jdk_8u291") && err.contains("corrupt"),
            "{err}"
        );

        cache.delete(&key).unwrap();
        let err = cache.get_verified(&key).unwrap_err().to_string();
        assert!(
            err.contains("not found") && err.contains("addInstaller"),
            "{err}"
        );
        assert!(!cache.content_path(&entry.digest).exists());
    }
}
