//! OCI image layout directories (`oci:DIR[:TAG]`): read manifests and blobs, write blobs and
//! tags atomically (blobs first, `index.json` last by rename, under a lock).

use super::TransportError;
use crate::digest::Digest;
use crate::image::manifest::{canonical_json, Descriptor};
use crate::image::{media, LayoutRef, Platform};
use serde_json::{json, Value};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

const REF_NAME: &str = "org.opencontainers.image.ref.name";

fn layout_err(dir: &Path, reason: impl Into<String>) -> TransportError {
    TransportError::Layout {
        dir: dir.display().to_string(),
        reason: reason.into(),
    }
}

pub fn blob_path(dir: &Path, digest: &Digest) -> PathBuf {
    dir.join("blobs").join("sha256").join(digest.hex())
}

fn read_index(dir: &Path) -> Result<Value, TransportError> {
    let path = dir.join("index.json");
    let bytes = std::fs::read(&path)
        .map_err(|e| layout_err(dir, format!("cannot read index.json: {e}")))?;
    let index: Value = serde_json::from_slice(&bytes)
        .map_err(|e| layout_err(dir, format!("index.json is not valid JSON: {e}")))?;
    if !index.get("manifests").is_some_and(Value::is_array) {
        return Err(layout_err(dir, "index.json has no manifests array"));
    }
    Ok(index)
}

/// The top-level descriptor `reference` names: by tag, or the only entry when no tag is given.
pub fn find_manifest(reference: &LayoutRef) -> Result<Descriptor, TransportError> {
    let dir = &reference.dir;
    let index = read_index(dir)?;
    let entries = index["manifests"].as_array().expect("checked");
    let matching: Vec<&Value> = match &reference.tag {
        Some(tag) => entries
            .iter()
            .filter(|e| e["annotations"][REF_NAME].as_str() == Some(tag))
            .collect(),
        None => entries.iter().collect(),
    };
    let entry = match (matching.as_slice(), &reference.tag) {
        ([one], _) => *one,
        ([], Some(tag)) => {
            return Err(TransportError::NotFound {
                what: format!("tag '{tag}' in OCI layout {}", dir.display()),
            })
        }
        ([], None) => return Err(layout_err(dir, "the layout holds no images")),
        (_, _) => {
            return Err(layout_err(
                dir,
                "the layout holds several images; name one as oci:DIR:TAG",
            ))
        }
    };
    let parse = |field: &str| {
        entry[field]
            .as_str()
            .ok_or_else(|| layout_err(dir, format!("index.json entry lacks {field}")))
    };
    let digest: Digest = parse("digest")?
        .parse()
        .map_err(|e: crate::digest::DigestParseError| layout_err(dir, e.to_string()))?;
    let size = entry["size"]
        .as_u64()
        .ok_or_else(|| layout_err(dir, "index.json entry lacks size"))?;
    Ok(Descriptor::new(parse("mediaType")?, digest, size))
}

/// Reads a blob fully, verifying its digest (manifests and configs: small).
pub fn read_blob(dir: &Path, digest: &Digest) -> Result<Vec<u8>, TransportError> {
    let path = blob_path(dir, digest);
    let bytes = std::fs::read(&path).map_err(|e| TransportError::NotFound {
        what: format!("blob {digest} in OCI layout {} ({e})", dir.display()),
    })?;
    let actual = Digest::of_bytes(&bytes);
    if &actual != digest {
        return Err(TransportError::DigestMismatch {
            what: format!("blob in OCI layout {}", dir.display()),
            expected: digest.to_string(),
            actual: actual.to_string(),
        });
    }
    Ok(bytes)
}

/// Creates the layout skeleton if missing (`oci-layout`, `blobs/sha256`, empty `index.json`).
pub fn init(dir: &Path) -> Result<(), TransportError> {
    std::fs::create_dir_all(dir.join("blobs").join("sha256"))
        .map_err(|e| layout_err(dir, format!("cannot create: {e}")))?;
    let marker = dir.join("oci-layout");
    if !marker.exists() {
        write_atomic(&marker, br#"{"imageLayoutVersion":"1.0.0"}"#)
            .map_err(|e| layout_err(dir, e.to_string()))?;
    }
    if !dir.join("index.json").exists() {
        let empty = canonical_json(
            &json!({"schemaVersion": 2, "mediaType": media::OCI_INDEX, "manifests": []}),
        );
        write_atomic(&dir.join("index.json"), &empty)
            .map_err(|e| layout_err(dir, e.to_string()))?;
    }
    Ok(())
}

/// Writes `bytes` to `path` through a temp file in the same directory and a rename; the file
/// and the directory naming it are synced, so it survives a power cut once this returns.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().expect("path has a parent");
    let mut temp = tempfile::Builder::new().prefix(".tmp-").tempfile_in(dir)?;
    temp.write_all(bytes)?;
    temp.as_file().sync_all()?;
    temp.persist(path).map_err(|e| e.error)?;
    sync_dir(dir)
}

/// Makes a rename or a new name in `dir` durable.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Stores a small blob (manifest, config) unless present.
pub fn put_blob_bytes(dir: &Path, digest: &Digest, bytes: &[u8]) -> Result<bool, TransportError> {
    let path = blob_path(dir, digest);
    if path.exists() {
        return Ok(false);
    }
    write_atomic(&path, bytes)
        .map_err(|e| layout_err(dir, format!("cannot write blob {digest}: {e}")))?;
    Ok(true)
}

/// Copies a local blob file in (hard link when possible) unless present; verifies the digest.
pub fn put_blob_file(dir: &Path, digest: &Digest, source: &Path) -> Result<u64, TransportError> {
    let path = blob_path(dir, digest);
    if path.exists() {
        return Ok(0);
    }
    let fail = |e: std::io::Error| {
        layout_err(
            dir,
            format!("cannot copy blob {digest} from {}: {e}", source.display()),
        )
    };
    match copy_verified(source, &path, digest).map_err(fail)? {
        Ok(size) => Ok(size),
        Err(actual) => Err(TransportError::DigestMismatch {
            what: format!("blob file {}", source.display()),
            expected: digest.to_string(),
            actual: actual.to_string(),
        }),
    }
}

/// Copies `source` to `dest` through a temp file beside `dest`, hashing on the way; `dest`
/// appears (by rename) only when the content has `digest`. `Ok(Err(actual))`: it did not.
pub fn copy_verified(
    source: &Path,
    dest: &Path,
    digest: &Digest,
) -> std::io::Result<Result<u64, Digest>> {
    let dir = dest.parent().expect("destination has a parent");
    std::fs::create_dir_all(dir)?;
    let temp = tempfile::Builder::new().prefix(".tmp-").tempfile_in(dir)?;
    let mut input = File::open(source)?;
    let mut writer = crate::digest::HashingWriter::new(std::io::BufWriter::with_capacity(
        1 << 20,
        temp.as_file(),
    ));
    std::io::copy(&mut input, &mut writer)?;
    let (buffered, actual, size) = writer.finish();
    buffered.into_inner().map_err(|e| e.into_error())?;
    if &actual != digest {
        return Ok(Err(actual));
    }
    // A blob the store acknowledged must survive a power cut: its bytes, then its name.
    temp.as_file().sync_all()?;
    temp.persist(dest).map_err(|e| e.error)?;
    sync_dir(dir)?;
    Ok(Ok(size))
}

/// Points `tag` at `manifest` in `index.json` (replacing an older entry for that tag), under a lock.
pub fn tag(
    dir: &Path,
    tag: Option<&str>,
    manifest: &Descriptor,
    platform: Option<&Platform>,
) -> Result<(), TransportError> {
    let lock = File::create(dir.join(".index.lock"))
        .map_err(|e| layout_err(dir, format!("cannot lock: {e}")))?;
    lock.lock()
        .map_err(|e| layout_err(dir, format!("cannot lock: {e}")))?;
    let mut index = read_index(dir)?;
    let entries = index["manifests"].as_array_mut().expect("checked");
    if let Some(tag) = tag {
        entries.retain(|e| e["annotations"][REF_NAME].as_str() != Some(tag));
    } else {
        entries.retain(|e| e["digest"].as_str() != Some(&manifest.digest.to_string()));
    }
    let mut entry = manifest.clone();
    entry.platform = platform.cloned();
    if let Some(tag) = tag {
        entry.annotations.insert(REF_NAME.into(), tag.into());
    }
    entries.push(entry.to_json());
    write_atomic(&dir.join("index.json"), &canonical_json(&index))
        .map_err(|e| layout_err(dir, format!("cannot write index.json: {e}")))?;
    Ok(())
}
