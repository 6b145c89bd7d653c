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
    /// `--opatchBugNumber`: the OPatch patch (`BUG` or `BUG_VERSION`) that upgrades OPatch
    /// before it applies patches; `None` = WIT's default for the product.
    pub opatch_bug: Option<String>,
    /// `--skipOpatchUpdate`: OPatch applies patches as the image has it.
    pub skip_opatch_update: bool,
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

/// WIT's OPatch bug number for a product version: 28186730 (OPatch 13.9.4, Java EE) before
/// 14.1.2.25, 38256237 (OPatch 13.9.6, Jakarta EE) from then on.
pub fn default_opatch_bug(product_version: &str) -> &'static str {
    let parts = |v: &str| -> Vec<u64> { v.split('.').map(|p| p.parse().unwrap_or(0)).collect() };
    if parts(product_version) < parts("14.1.2.25") {
        "28186730"
    } else {
        "38256237"
    }
}

/// The OPatch patch that upgrades OPatch before OPatch runs, as WIT picks it offline: the
/// version asked for (`--opatchBugNumber BUG_VERSION`), or the newest cached `BUG_*`. Only when
/// OPatch runs (`by_opatch`) or an upgrade is asked for by number, never with
/// `--skipOpatchUpdate`. Not asked for by number and none cached: `None` (the image's OPatch
/// applies the patches as it is) — asked for and missing is an error naming the key.
pub async fn opatch_upgrade(
    engine: &Engine,
    request: &PatchRequest,
    product_version: &str,
    by_opatch: bool,
) -> Result<Option<crate::cache::CachedItem>, RecipeError> {
    if request.skip_opatch_update || !(by_opatch || request.opatch_bug.is_some()) {
        return Ok(None);
    }
    let asked = request.opatch_bug.clone();
    let (bug, version) = match asked.as_deref().map(|b| b.split_once('_')) {
        Some(Some((bug, version))) => (bug.to_string(), Some(version.to_string())),
        Some(None) => (asked.clone().unwrap_or_default(), None),
        None => (default_opatch_bug(product_version).to_string(), None),
    };
    let flag = format!("--opatchBugNumber {}", asked.as_deref().unwrap_or(&bug));
    if bug.is_empty() || !bug.bytes().all(|b| b.is_ascii_digit()) {
        return Err(RecipeError::input(
            flag,
            "expected a bug number, optionally with _VERSION (28186730_13.9.4.2.17)",
        ));
    }
    let cache = engine.cache.clone();
    crate::spawn_blocking(move || {
        let key = match version {
            Some(version) => CacheKey::patch(&format!("{bug}_{version}"))?,
            None => {
                let newest = cache
                    .list(Some(&format!("{bug}_.*")))?
                    .into_iter()
                    .filter_map(|e| e.key.parse::<CacheKey>().ok())
                    .max_by(|a, b| compare_versions(&a.version, &b.version));
                match newest {
                    Some(key) => key,
                    None if asked.is_none() => {
                        tracing::info!(bug = %bug, "no OPatch patch cached: OPatch applies the patches as the image has it");
                        return Ok(None);
                    }
                    None => return Err(RecipeError::input(flag, format!("no {bug}_VERSION is in the cache ({}); add OPatch with `patchfarm cache addPatch --patchId {bug}_13.9.4.2.17 --path p{bug}_139400_Generic.zip`, or leave the upgrade out with --skipOpatchUpdate", cache.root().display()))),
                }
            }
        };
        match cache.get_verified(&key) {
            Ok(item) => Ok(Some(item)),
            Err(CacheError::NotFound { .. }) => Err(RecipeError::input(flag, format!("{key} is not in the cache ({}); add it with `patchfarm cache addPatch --patchId {key} --path FILE`", cache.root().display()))),
            Err(other) => Err(other.into()),
        }
    })
    .await
    .expect("cache task")
}

/// Oracle versions compared part by part, numerically where both parts are numbers.
pub(crate) fn compare_versions(a: &str, b: &str) -> std::cmp::Ordering {
    let (mut a, mut b) = (a.split('.'), b.split('.'));
    loop {
        match (a.next(), b.next()) {
            (None, None) => return std::cmp::Ordering::Equal,
            (None, Some(_)) => return std::cmp::Ordering::Less,
            (Some(_), None) => return std::cmp::Ordering::Greater,
            (Some(x), Some(y)) => {
                let order = match (x.parse::<u64>(), y.parse::<u64>()) {
                    (Ok(x), Ok(y)) => x.cmp(&y),
                    _ => x.cmp(y),
                };
                if order.is_ne() {
                    return order;
                }
            }
        }
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
    crate::spawn_blocking(move || {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opatch_versions_and_bug_numbers_follow_wit() {
        assert_eq!(default_opatch_bug("12.2.1.4.0"), "28186730");
        assert_eq!(default_opatch_bug("14.1.2.0.0"), "28186730");
        assert_eq!(default_opatch_bug("14.1.2.25.0"), "38256237");
        assert_eq!(default_opatch_bug("15.1.1.0.0"), "38256237");
        assert!(compare_versions("13.9.4.2.17", "13.9.4.2.5").is_gt());
        assert!(compare_versions("13.9.4.2", "13.9.4.2.1").is_lt());
        assert!(compare_versions("13.9.4.2.17", "13.9.4.2.17").is_eq());
    }
}
