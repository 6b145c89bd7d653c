//! Applying a checked patch set to an Oracle Home's files: `copy` replaces a file, `jar`
//! replaces one entry in a jar (rewritten deterministically, untouched entries copied raw), and
//! each patch is recorded under `inventory/oneoffs/<bug>/etc/config/` as OPatch does.

use super::xml::Action;
use super::{OpatchError, PatchSet};
use crate::layer::source::FileSource;
use std::collections::BTreeMap;
use std::io::{Cursor, Read, Write};

/// Read access to the Oracle Home being patched (an extracted installer or an image's layers).
pub trait HomeFiles {
    /// A file's bytes by ORACLE_HOME-relative path, or None when absent.
    fn read(&mut self, rel: &str) -> Result<Option<Vec<u8>>, OpatchError>;
    /// The first component of `rel` (itself included) that is a symlink, if any: writing
    /// through it could land outside ORACLE_HOME.
    fn symlink_on_path(&mut self, rel: &str) -> Result<Option<String>, OpatchError>;
}

/// Files to write into the Oracle Home (ORACLE_HOME-relative path → new content). A copied
/// payload stays in its patch zip until it is written: a gigabyte payload is streamed, never
/// held in memory.
#[derive(Clone, Debug, Default)]
pub struct Changes {
    pub files: BTreeMap<String, FileSource>,
}

/// Applies `set` in order. Blocking (reads patch zips and jars).
pub fn apply(set: &PatchSet, home: &mut dyn HomeFiles) -> Result<Changes, OpatchError> {
    let mut changes = Changes::default();
    for patch in &set.patches {
        if let Some(action) = patch.opatch_only.first() {
            return Err(OpatchError::UnsupportedAction {
                patch: patch.key.to_string(),
                action: action.clone(),
            });
        }
        let mut jar_edits: BTreeMap<String, Vec<(String, Vec<u8>)>> = BTreeMap::new();
        for action in &patch.actions {
            let target = action.target();
            if let Some(link) = home.symlink_on_path(&target)? {
                return Err(OpatchError::Escapes { patch: patch.key.to_string(), path: target, reason: format!("it passes through the symlink {link}, which could lead outside ORACLE_HOME") });
            }
            match action {
                Action::Copy { .. } => {
                    changes.files.insert(target, patch.payload_source(action)?);
                }
                Action::Jar { class_name, .. } => jar_edits
                    .entry(target)
                    .or_default()
                    .push((class_name.clone(), patch.payload(action)?)),
            }
        }
        for (jar, edits) in jar_edits {
            let original = match changes.files.remove(&jar) {
                Some(earlier) => earlier.read_all().map_err(|e| OpatchError::BadPatch {
                    patch: patch.key.to_string(),
                    reason: format!("cannot read {jar} as an earlier patch left it: {e}"),
                })?,
                None => home.read(&jar)?.ok_or_else(|| OpatchError::MissingTarget {
                    patch: patch.key.to_string(),
                    target: jar.clone(),
                })?,
            };
            let rewritten =
                rewrite_jar(&original, &edits).map_err(|reason| OpatchError::BadPatch {
                    patch: patch.key.to_string(),
                    reason: format!("cannot rewrite {jar}: {reason}"),
                })?;
            changes
                .files
                .insert(jar, FileSource::Bytes(rewritten.into()));
        }
        let record = format!("inventory/oneoffs/{}/etc/config", patch.id());
        changes.files.insert(
            format!("{record}/inventory.xml"),
            FileSource::Bytes(patch.inventory_xml.clone().into()),
        );
        changes.files.insert(
            format!("{record}/actions.xml"),
            FileSource::Bytes(patch.actions_xml.clone().into()),
        );
    }
    Ok(changes)
}

/// A copy of `jar` with `edits` (entry name → bytes) applied: entries keep their order and
/// untouched ones are copied raw (same compressed bytes); replaced or new entries are deflated
/// with a fixed timestamp, so the result depends only on the inputs.
pub fn rewrite_jar(jar: &[u8], edits: &[(String, Vec<u8>)]) -> Result<Vec<u8>, String> {
    let mut source = zip::ZipArchive::new(Cursor::new(jar)).map_err(|e| e.to_string())?;
    let mut out = zip::ZipWriter::new(Cursor::new(Vec::with_capacity(jar.len() + 4096)));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .last_modified_time(zip::DateTime::default())
        .unix_permissions(0o644);
    let replacement = |name: &str| edits.iter().rev().find(|(n, _)| n == name).map(|(_, b)| b);
    let mut written = std::collections::BTreeSet::new();
    for i in 0..source.len() {
        let entry = source.by_index_raw(i).map_err(|e| e.to_string())?;
        let name = String::from_utf8_lossy(entry.name_raw()).into_owned();
        match replacement(&name) {
            Some(bytes) => {
                drop(entry);
                out.start_file(name.as_str(), options)
                    .map_err(|e| e.to_string())?;
                out.write_all(bytes).map_err(|e| e.to_string())?;
            }
            None => out.raw_copy_file(entry).map_err(|e| e.to_string())?,
        }
        written.insert(name);
    }
    for (name, bytes) in edits {
        if written.insert(name.clone()) {
            out.start_file(name.as_str(), options)
                .map_err(|e| e.to_string())?;
            out.write_all(replacement(name).unwrap_or(bytes))
                .map_err(|e| e.to_string())?;
        }
    }
    Ok(out.finish().map_err(|e| e.to_string())?.into_inner())
}

/// Reads one entry of a jar (tests and inspection).
pub fn jar_entry(jar: &[u8], name: &str) -> Option<Vec<u8>> {
    let mut zip = zip::ZipArchive::new(Cursor::new(jar)).ok()?;
    let mut entry = zip.by_name(name).ok()?;
    let mut bytes = Vec::new();
    entry.read_to_end(&mut bytes).ok()?;
    Some(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jar(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        for (n, b) in entries {
            w.start_file(*n, zip::write::SimpleFileOptions::default())
                .unwrap();
            w.write_all(b).unwrap();
        }
        w.finish().unwrap().into_inner()
    }

    #[test]
    fn rewrites_one_entry_keeps_the_rest_and_is_deterministic() {
        let original = jar(&[
            ("META-INF/MANIFEST.MF", b"Manifest-Version: 1.0\n"),
            ("a/A.class", b"old A"),
            ("a/B.class", b"B"),
        ]);
        let edits = vec![
            ("a/A.class".to_string(), b"new A".to_vec()),
            ("a/C.class".to_string(), b"C".to_vec()),
        ];
        let once = rewrite_jar(&original, &edits).unwrap();
        assert_eq!(once, rewrite_jar(&original, &edits).unwrap());
        assert_eq!(jar_entry(&once, "a/A.class").unwrap(), b"new A");
        assert_eq!(jar_entry(&once, "a/B.class").unwrap(), b"B");
        assert_eq!(jar_entry(&once, "a/C.class").unwrap(), b"C");
        assert_eq!(
            jar_entry(&once, "META-INF/MANIFEST.MF").unwrap(),
            b"Manifest-Version: 1.0\n"
        );
    }
}
