//! Patch selection shared by `create` and `update`: `--patches` plus the catalog's choice,
//! looked up in the cache in WIT's order (arch-specific key first), every missing key reported
//! at once, each zip verified (sha256) and opened before anything is built.

use super::{Engine, RecipeError};
use crate::cache::{CacheError, CacheKey};
use crate::opatch::{Catalog, CatalogChoice, HomeFiles, OpatchError, Patch};
use std::path::{Path, PathBuf};

/// Which patches a build asked for.
#[derive(Clone, Debug, Default)]
pub struct PatchRequest {
    /// `--patches` ids (`BUG_VERSION[_ARCH]`, or a bare bug number meaning the product's version).
    pub ids: Vec<String>,
    /// `--patchCatalog` with `--recommendedPatches` / `--latestPSU`.
    pub catalog: Option<(PathBuf, CatalogChoice)>,
    /// `--opatchMode`: natively, or with the image's own OPatch.
    pub mode: crate::opatch::OpatchMode,
    /// `--strictPatchOrdering`: OPatch applies them one at a time, in order.
    pub strict_order: bool,
}

impl PatchRequest {
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty() && self.catalog.is_none()
    }

    /// The cache keys asked for, for product `kind` at `version` (catalog first, then `--patches`).
    pub fn keys(&self, kind: &str, version: &str) -> Result<Vec<CacheKey>, RecipeError> {
        let mut keys = Vec::new();
        if let Some((path, choice)) = &self.catalog {
            keys.extend(
                Catalog::load(path)
                    .and_then(|c| c.patches(kind, version, *choice, path))
                    .map_err(RecipeError::from)?,
            );
        }
        for id in &self.ids {
            let id = if id.bytes().all(|b| b.is_ascii_digit()) {
                format!("{id}_{version}")
            } else {
                id.clone()
            };
            keys.push(CacheKey::patch(&id)?);
        }
        Ok(keys)
    }
}

/// Looks every key up for `arch`, verifies it, opens the patch zips; all missing keys in one error.
pub async fn open_patches(
    engine: &Engine,
    keys: Vec<CacheKey>,
    arch: &str,
) -> Result<Vec<Patch>, RecipeError> {
    let cache = engine.cache.clone();
    let arch = arch.to_string();
    tokio::task::spawn_blocking(move || {
        let mut missing = Vec::new();
        let mut items = Vec::new();
        for key in keys {
            match cache.find_for_arch(&key, &arch) {
                Ok(item) => items.push((key, item)),
                Err(CacheError::NotFound { .. }) => missing.push(key.with_arch(&arch).to_string() + " or " + &key.without_arch().to_string()),
                Err(other) => return Err(RecipeError::from(other)),
            }
        }
        if !missing.is_empty() {
            return Err(RecipeError::input(
                "patches",
                format!("{} not in the cache ({}): {}; add each with `patchfarm cache addPatch --patchId KEY --path FILE`", if missing.len() == 1 { "this patch is" } else { "these patches are" }, cache.root().display(), missing.join(", ")),
            ));
        }
        items.iter().map(|(key, item)| Patch::open(&key.without_arch(), item).map_err(RecipeError::from)).collect()
    })
    .await
    .expect("patch open task")
}

/// An Oracle Home unpacked on disk, as the patch engine reads it.
pub struct DirHome<'a> {
    pub root: &'a Path,
}

impl HomeFiles for DirHome<'_> {
    fn read(&mut self, rel: &str) -> Result<Option<Vec<u8>>, OpatchError> {
        crate::beneath::read(self.root, rel).map_err(|source| OpatchError::Io {
            what: rel.into(),
            source,
        })
    }

    fn symlink_on_path(&mut self, rel: &str) -> Result<Option<String>, OpatchError> {
        let mut current = PathBuf::new();
        for part in rel.split('/') {
            current.push(part);
            match std::fs::symlink_metadata(self.root.join(&current)) {
                Ok(meta) if meta.file_type().is_symlink() => {
                    return Ok(Some(current.display().to_string()))
                }
                Ok(_) => {}
                Err(_) => return Ok(None),
            }
        }
        Ok(None)
    }
}

/// Writes patch results (changed files and the patches' inventory records) into an unpacked
/// Oracle Home, never through a link the home holds. Blocking.
pub fn write_changes(root: &Path, changes: &crate::opatch::Changes) -> Result<(), RecipeError> {
    for (rel, content) in &changes.files {
        crate::beneath::create(root, rel)
            .and_then(|mut file| content.copy_to(&mut file))
            .map_err(|source| {
                RecipeError::from(OpatchError::Write {
                    what: format!("{rel} in the Oracle Home"),
                    source,
                })
            })?;
    }
    Ok(())
}
