//! A one-off patch zip (`p<bug>_<release>_<platform>.zip`): `<bug>/etc/config/{inventory,actions}.xml`
//! and the payload under `<bug>/files/`, opened from the cache and checked whole on open.

use super::xml::{self, Action, Inventory};
use super::OpatchError;
use crate::cache::{CacheKey, CachedItem};
use crate::digest::Digest;
use std::fs::File;
use std::path::PathBuf;

/// The most `inventory.xml` or `actions.xml` may hold (real ones hold a few kilobytes).
const MAX_METADATA_BYTES: u64 = 16 << 20;

/// A parsed patch whose every payload file is known to exist.
#[derive(Clone, Debug)]
pub struct Patch {
    pub key: CacheKey,
    pub digest: Digest,
    pub zip: PathBuf,
    /// The zip's top directory (the bug number).
    pub root: String,
    pub inventory: Inventory,
    /// The actions the native engine applies.
    pub actions: Vec<Action>,
    /// Actions only OPatch applies (by element name): such a patch goes through the image's own
    /// `opatch` (`--opatchMode auto|opatch`).
    pub opatch_only: Vec<String>,
    /// The zip's name as it was added (`p<bug>_<release>_<platform>.zip`): OPatch is given the
    /// file under it.
    pub file_name: String,
    pub inventory_xml: Vec<u8>,
    pub actions_xml: Vec<u8>,
}

/// The actions of the patch zip at `path` that only OPatch applies (empty when every one is
/// native, or when the zip cannot be read: opening it for a build says why). Blocking. The
/// coordinator asks when it stores a patch, to send jobs applying it to agents that run steps.
pub fn opatch_only_actions(path: &std::path::Path) -> Vec<String> {
    let read = || -> Option<Vec<String>> {
        let mut zip = zip::ZipArchive::new(File::open(path).ok()?).ok()?;
        let name = zip
            .file_names()
            .flatten()
            .find(|n| n.split('/').count() == 4 && n.ends_with("/etc/config/actions.xml"))?
            .into_owned();
        let mut entry = zip.by_name(&name).ok()?;
        if entry.size() > MAX_METADATA_BYTES {
            return None;
        }
        let mut xml = String::new();
        std::io::Read::read_to_string(&mut entry, &mut xml).ok()?;
        Some(xml::parse_actions(&xml, &name).ok()?.opatch_only)
    };
    read().unwrap_or_default()
}

impl Patch {
    /// Opens and validates a cached patch zip. Blocking.
    pub fn open(key: &CacheKey, item: &CachedItem) -> Result<Patch, OpatchError> {
        let what = key.to_string();
        let bad = |reason: String| OpatchError::BadPatch {
            patch: what.clone(),
            reason,
        };
        let file = File::open(&item.path).map_err(|e| OpatchError::Io {
            what: item.path.display().to_string(),
            source: e,
        })?;
        let mut zip = zip::ZipArchive::new(file).map_err(|e| {
            bad(format!(
                "{} is not a valid patch zip: {e}",
                item.entry.file_name
            ))
        })?;
        let limits = crate::limits::ArchiveLimits::from_env().map_err(&bad)?;
        crate::limits::check_zip(&mut zip, limits)
            .map_err(|e| bad(format!("{}: {e}", item.entry.file_name)))?;
        let root = (0..zip.len())
            .filter_map(|i| {
                zip.name_for_index(i)
                    .and_then(|n| n.ok())
                    .map(|n| n.split('/').next().unwrap_or("").to_string())
            })
            .find(|r| !r.is_empty())
            .ok_or_else(|| bad("the zip is empty".into()))?;
        if root != key.name {
            return Err(bad(format!(
                "the zip holds patch directory '{root}/', not '{}/'",
                key.name
            )));
        }
        let mut read = |name: &str| -> Result<Vec<u8>, OpatchError> {
            let mut entry = zip
                .by_name(name)
                .map_err(|_| bad(format!("the zip lacks {name}")))?;
            // OPatch's metadata is kilobytes; a huge one is an attack on memory, not a patch.
            if entry.size() > MAX_METADATA_BYTES {
                return Err(bad(format!(
                    "{name} declares {} bytes; patch metadata is at most {MAX_METADATA_BYTES}",
                    entry.size()
                )));
            }
            let mut bytes = Vec::new();
            let declared = entry.size();
            crate::limits::read_declared(&mut entry, declared, &mut bytes, name)
                .map_err(|e| bad(format!("cannot read {name} from the zip: {e}")))?;
            Ok(bytes)
        };
        let inventory_xml = read(&format!("{root}/etc/config/inventory.xml"))?;
        let actions_xml = read(&format!("{root}/etc/config/actions.xml"))?;
        let inventory = xml::parse_inventory(&String::from_utf8_lossy(&inventory_xml), &what)?;
        if inventory.patch_id != key.name {
            return Err(bad(format!(
                "inventory.xml says patch {}, but the key names {}",
                inventory.patch_id, key.name
            )));
        }
        let parsed = xml::parse_actions(&String::from_utf8_lossy(&actions_xml), &what)?;
        let patch = Patch {
            key: key.clone(),
            digest: item.entry.digest.clone(),
            zip: item.path.clone(),
            root,
            inventory,
            actions: parsed.native,
            opatch_only: parsed.opatch_only,
            file_name: item.entry.file_name.clone(),
            inventory_xml,
            actions_xml,
        };
        for action in &patch.actions {
            let payload = patch.payload_name(action);
            if zip.index_for_name(&payload).is_none() {
                return Err(bad(format!(
                    "an action needs {payload}, which the zip lacks"
                )));
            }
        }
        Ok(patch)
    }

    /// Where an action's payload sits in the zip.
    pub fn payload_name(&self, action: &Action) -> String {
        match action {
            Action::Copy { file_name, .. } => format!("{}/files/{file_name}", self.root),
            Action::Jar {
                jar,
                dir,
                class_name,
            } => {
                let dir = if dir.is_empty() {
                    String::new()
                } else {
                    format!("{dir}/")
                };
                format!("{}/files/{dir}{jar}/{class_name}", self.root)
            }
        }
    }

    /// Where an action's payload is: its entry in the patch zip, streamed when written. Blocking.
    pub fn payload_source(
        &self,
        action: &Action,
    ) -> Result<crate::layer::source::FileSource, OpatchError> {
        let name = self.payload_name(action);
        let io = |e: std::io::Error| OpatchError::Io {
            what: format!("{name} in patch {}", self.key),
            source: e,
        };
        let file = File::open(&self.zip).map_err(io)?;
        let mut zip =
            zip::ZipArchive::new(file).map_err(|e| io(std::io::Error::other(e.to_string())))?;
        let index = zip
            .index_for_name(&name)
            .ok_or_else(|| io(std::io::Error::other("missing from the zip")))?;
        let size = zip
            .by_index_raw(index)
            .map_err(|e| io(std::io::Error::other(e.to_string())))?
            .size();
        Ok(crate::layer::source::FileSource::ZipMember {
            archive: self.zip.clone(),
            index,
            size,
        })
    }

    /// Reads an action's payload bytes (a class put into a jar). Blocking.
    pub fn payload(&self, action: &Action) -> Result<Vec<u8>, OpatchError> {
        let name = self.payload_name(action);
        let io = |e: std::io::Error| OpatchError::Io {
            what: format!("{name} in patch {}", self.key),
            source: e,
        };
        let file = File::open(&self.zip).map_err(io)?;
        let mut zip =
            zip::ZipArchive::new(file).map_err(|e| io(std::io::Error::other(e.to_string())))?;
        let mut entry = zip
            .by_name(&name)
            .map_err(|e| io(std::io::Error::other(e.to_string())))?;
        let mut bytes = Vec::new();
        let declared = entry.size();
        crate::limits::read_declared(&mut entry, declared, &mut bytes, &name).map_err(io)?;
        Ok(bytes)
    }

    pub fn id(&self) -> &str {
        &self.key.name
    }

    pub fn is_overlay_on(&self, other: &Patch) -> bool {
        self.inventory.overlays.iter().any(|o| o == other.id())
    }
}
