//! docker-archive tars (what `docker save` writes and `docker load` reads: `manifest.json` naming
//! a config file and layer tars by path) to and from OCI image layouts, so images of the local
//! container engine go through the same code as any other layout.

use super::layout;
use super::TransportError;
use crate::digest::{Digest, HashingWriter};
use crate::image::manifest::{Descriptor, Manifest};
use crate::image::media;
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{BufWriter, Read};
use std::path::{Component, Path, PathBuf};

/// One image of `manifest.json`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ArchiveEntry {
    config: String,
    #[serde(default)]
    layers: Vec<String>,
}

/// `manifest.json` is a few hundred bytes per image; anything much larger is not one.
const MANIFEST_JSON_LIMIT: u64 = 4 << 20;

fn archive_err(archive: &Path, reason: impl std::fmt::Display) -> TransportError {
    TransportError::Layout {
        dir: format!("docker archive {}", archive.display()),
        reason: reason.to_string(),
    }
}

/// Writes a docker-archive tar at `out` holding the image whose manifest is `manifest` (its
/// blobs already in the layout at `dir`), tagged `repo_tag`. Layers go in as the layout holds
/// them (gzip or not): `docker load` decompresses them itself and checks each against the
/// config's diff ids. zstd layers go in as plain tars: engines before Docker 23 cannot read
/// zstd, and every engine reads a plain tar.
pub fn write(
    dir: &Path,
    manifest: &Manifest,
    repo_tag: &str,
    out: &Path,
) -> Result<(), TransportError> {
    let path_of = |digest: &Digest| format!("blobs/sha256/{}", digest.hex());
    let entry = serde_json::json!([{
        "Config": path_of(&manifest.config.digest),
        "RepoTags": [repo_tag],
        "Layers": manifest.layers.iter().map(|l| path_of(&l.digest)).collect::<Vec<_>>(),
    }]);
    let io = |e: std::io::Error| TransportError::Io {
        what: format!("writing docker archive {}", out.display()),
        source: e,
    };
    let file = File::create(out).map_err(io)?;
    let mut tar = tar::Builder::new(BufWriter::with_capacity(1 << 20, file));
    let mut written = std::collections::BTreeSet::new();
    for blob in std::iter::once(&manifest.config).chain(&manifest.layers) {
        if !written.insert(blob.digest.clone()) {
            continue;
        }
        let source = layout::blob_path(dir, &blob.digest);
        let mut input = if blob.media_type == media::OCI_LAYER_ZSTD {
            let mut plain = tempfile::tempfile_in(dir).map_err(io)?;
            let mut decoder =
                zstd::stream::read::Decoder::new(File::open(&source).map_err(io)?).map_err(io)?;
            std::io::copy(&mut decoder, &mut plain).map_err(io)?;
            std::io::Seek::rewind(&mut plain).map_err(io)?;
            plain
        } else {
            File::open(&source).map_err(io)?
        };
        let mut header = tar::Header::new_ustar();
        header.set_size(input.metadata().map_err(io)?.len());
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        tar.append_data(&mut header, path_of(&blob.digest), &mut input)
            .map_err(io)?;
    }
    let bytes = serde_json::to_vec(&entry).expect("json");
    let mut header = tar::Header::new_ustar();
    header.set_size(bytes.len() as u64);
    header.set_mode(0o644);
    header.set_entry_type(tar::EntryType::Regular);
    tar.append_data(&mut header, "manifest.json", bytes.as_slice())
        .map_err(io)?;
    let buffered = tar.into_inner().map_err(io)?;
    buffered
        .into_inner()
        .map_err(|e| io(e.into_error()))?
        .sync_all()
        .map_err(io)?;
    Ok(())
}

/// What an archive path holds: a stored file, or a link to another path (docker saves a layer
/// shared by two images once and links the second name to it).
enum Member {
    File {
        digest: Digest,
        size: u64,
        /// By the file's magic: gzip, zstd or a plain tar.
        media_type: &'static str,
    },
    Link(PathBuf),
}

/// Reads the docker-archive tar at `archive` (its first image) into the OCI layout at `dir`:
/// every file becomes a blob by its digest, `manifest.json` becomes an OCI manifest (layers
/// keep their bytes, gzip, zstd or plain tar by their magic) tagged in `index.json`. Nothing is
/// written outside `dir`; links are resolved inside the archive, never on disk.
pub fn read(archive: &Path, dir: &Path) -> Result<Descriptor, TransportError> {
    layout::init(dir)?;
    let io = |e: std::io::Error| archive_err(archive, e);
    let mut tar = tar::Archive::new(File::open(archive).map_err(io)?);
    let mut members: HashMap<PathBuf, Member> = HashMap::new();
    let mut manifest_json = None;
    for entry in tar.entries().map_err(io)? {
        let mut entry = entry.map_err(io)?;
        let name = normal_path(&entry.path().map_err(io)?)
            .ok_or_else(|| archive_err(archive, "an entry's path leaves the archive"))?;
        match entry.header().entry_type() {
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                if name == Path::new("manifest.json") {
                    let mut text = Vec::new();
                    (&mut entry)
                        .take(MANIFEST_JSON_LIMIT)
                        .read_to_end(&mut text)
                        .map_err(io)?;
                    manifest_json = Some(text);
                    continue;
                }
                members.insert(name, store(&mut entry, dir).map_err(io)?);
            }
            tar::EntryType::Symlink | tar::EntryType::Link => {
                let target = entry
                    .link_name()
                    .map_err(io)?
                    .ok_or_else(|| archive_err(archive, "a link without a target"))?;
                let base = match entry.header().entry_type() {
                    tar::EntryType::Symlink => name.parent().unwrap_or(Path::new("")).join(&target),
                    _ => target.into_owned(),
                };
                let resolved = normal_path(&base)
                    .ok_or_else(|| archive_err(archive, "a link leaves the archive"))?;
                members.insert(name, Member::Link(resolved));
            }
            _ => {}
        }
    }
    let manifest_json = manifest_json
        .ok_or_else(|| archive_err(archive, "no manifest.json: not a docker archive"))?;
    let entries: Vec<ArchiveEntry> = serde_json::from_slice(&manifest_json)
        .map_err(|e| archive_err(archive, format!("manifest.json: {e}")))?;
    let image = entries
        .first()
        .ok_or_else(|| archive_err(archive, "manifest.json lists no image"))?;
    let find = |path: &str| -> Result<(Digest, u64, &'static str), TransportError> {
        let mut at = normal_path(Path::new(path))
            .ok_or_else(|| archive_err(archive, format!("{path}: leaves the archive")))?;
        for _ in 0..8 {
            match members.get(&at) {
                Some(Member::File {
                    digest,
                    size,
                    media_type,
                }) => return Ok((digest.clone(), *size, *media_type)),
                Some(Member::Link(next)) => at = next.clone(),
                None => break,
            }
        }
        Err(archive_err(
            archive,
            format!("{path}: named by manifest.json, not in the archive"),
        ))
    };
    let (config_digest, config_size, _) = find(&image.config)?;
    let mut layers = Vec::new();
    for path in &image.layers {
        let (digest, size, media_type) = find(path)?;
        layers.push(Descriptor::new(media_type, digest, size));
    }
    let manifest = Manifest {
        media_type: media::OCI_MANIFEST.into(),
        config: Descriptor::new(media::OCI_CONFIG, config_digest, config_size),
        layers,
        annotations: BTreeMap::new(),
    };
    let bytes = manifest.to_oci_bytes();
    let descriptor = Descriptor::new(
        media::OCI_MANIFEST,
        Digest::of_bytes(&bytes),
        bytes.len() as u64,
    );
    layout::put_blob_bytes(dir, &descriptor.digest, &bytes)?;
    layout::tag(dir, None, &descriptor, None)?;
    Ok(descriptor)
}

/// Copies one archive file into the layout's blobs under its digest.
fn store(entry: &mut impl Read, dir: &Path) -> std::io::Result<Member> {
    let blobs = dir.join("blobs").join("sha256");
    let temp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(&blobs)?;
    let mut writer = HashingWriter::new(BufWriter::with_capacity(1 << 20, temp.as_file()));
    let mut magic = [0u8; 4];
    let mut head = 0;
    while head < magic.len() {
        match entry.read(&mut magic[head..])? {
            0 => break,
            n => head += n,
        }
    }
    std::io::Write::write_all(&mut writer, &magic[..head])?;
    std::io::copy(entry, &mut writer)?;
    let (buffered, digest, size) = writer.finish();
    buffered.into_inner().map_err(|e| e.into_error())?;
    let path = blobs.join(digest.hex());
    if !path.exists() {
        temp.persist(&path).map_err(|e| e.error)?;
    }
    let media_type = if head >= 2 && magic[..2] == [0x1f, 0x8b] {
        media::OCI_LAYER_GZIP
    } else if head == 4 && magic == [0x28, 0xb5, 0x2f, 0xfd] {
        media::OCI_LAYER_ZSTD
    } else {
        media::OCI_LAYER_TAR
    };
    Ok(Member::File {
        digest,
        size,
        media_type,
    })
}

/// `path` with `.` dropped and `..` applied, or `None` if it climbs above the archive's root.
fn normal_path(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => out.push(part),
            Component::CurDir | Component::RootDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_that_climb_out_are_refused() {
        assert_eq!(
            normal_path(Path::new("./a/../b/layer.tar")),
            Some("b/layer.tar".into())
        );
        assert_eq!(normal_path(Path::new("a/../../etc/passwd")), None);
        assert_eq!(normal_path(Path::new("/abs/x")), Some("abs/x".into()));
    }

    #[test]
    fn an_archive_round_trips_through_a_layout() {
        let work = tempfile::tempdir().unwrap();
        let from = work.path().join("from");
        layout::init(&from).unwrap();
        let config =
            br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
        let layer = b"not really a tar, but bytes to carry";
        let config_digest = Digest::of_bytes(config);
        let layer_digest = Digest::of_bytes(layer);
        layout::put_blob_bytes(&from, &config_digest, config).unwrap();
        layout::put_blob_bytes(&from, &layer_digest, layer).unwrap();
        let manifest = Manifest {
            media_type: media::OCI_MANIFEST.into(),
            config: Descriptor::new(
                media::OCI_CONFIG,
                config_digest.clone(),
                config.len() as u64,
            ),
            layers: vec![Descriptor::new(
                media::OCI_LAYER_TAR,
                layer_digest.clone(),
                layer.len() as u64,
            )],
            annotations: BTreeMap::new(),
        };
        let archive = work.path().join("image.tar");
        write(&from, &manifest, "wls:test", &archive).unwrap();
        let to = work.path().join("to");
        let descriptor = read(&archive, &to).unwrap();
        assert_eq!(
            descriptor.digest,
            Digest::of_bytes(&manifest.to_oci_bytes())
        );
        assert_eq!(layout::read_blob(&to, &layer_digest).unwrap(), layer);
    }
}
