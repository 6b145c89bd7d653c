//! Layers this machine built, kept by fingerprint (`layer::fingerprint`): a later build of the
//! same layer — the same JDK under the same owner, say, while only the patches changed — takes
//! the blob instead of writing and compressing it again. The most recently used few are kept.

use super::{Cache, CacheError};
use crate::digest::Digest;
use crate::layer::LayerBlob;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Built layers kept; the least recently used beyond this are dropped.
const KEEP: usize = 16;

#[derive(Serialize, Deserialize)]
struct Record {
    digest: Digest,
    diff_id: Digest,
    size: u64,
    tar_size: u64,
    /// Records from before zstd layers have none: gzip.
    #[serde(default = "gzip")]
    media_type: String,
}

fn gzip() -> String {
    crate::image::media::OCI_LAYER_GZIP.into()
}

impl Cache {
    fn built_dir(&self) -> PathBuf {
        self.root().join("built")
    }

    /// The layer built before with `fingerprint`, when its blob is still there whole.
    pub fn built_layer(&self, fingerprint: &Digest) -> Option<LayerBlob> {
        let dir = self.built_dir();
        let record_path = dir.join(format!("{}.json", fingerprint.hex()));
        let record: Record = serde_json::from_slice(&std::fs::read(&record_path).ok()?).ok()?;
        let path = dir.join("blobs").join(record.digest.hex());
        if std::fs::metadata(&path).ok()?.len() != record.size {
            return None;
        }
        // Used now: the last to be dropped.
        let _ = std::fs::File::options()
            .append(true)
            .open(&record_path)
            .and_then(|f| f.set_modified(std::time::SystemTime::now()));
        Some(LayerBlob {
            path,
            digest: record.digest,
            diff_id: record.diff_id,
            size: record.size,
            media_type: [
                crate::image::media::OCI_LAYER_GZIP,
                crate::image::media::OCI_LAYER_ZSTD,
            ]
            .into_iter()
            .find(|known| *known == record.media_type)?,
            tar_size: record.tar_size,
        })
    }

    /// Keeps `blob` (just written) under `fingerprint`: linked into the store, flushed to disk,
    /// then recorded; the least recently used beyond [`KEEP`] are dropped. Blocking.
    pub fn keep_built_layer(
        &self,
        fingerprint: &Digest,
        blob: &LayerBlob,
    ) -> Result<(), CacheError> {
        let dir = self.built_dir();
        let blobs = dir.join("blobs");
        std::fs::create_dir_all(&blobs).map_err(self.store_err())?;
        let kept = blobs.join(blob.digest.hex());
        if !kept.exists() {
            std::fs::File::open(&blob.path)
                .and_then(|f| f.sync_all())
                .map_err(self.store_err())?;
            match std::fs::hard_link(&blob.path, &kept) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                // Another filesystem: a streamed copy, made whole before it takes the name.
                Err(_) => {
                    let mut temp = tempfile::Builder::new()
                        .prefix(".tmp-")
                        .tempfile_in(&blobs)
                        .map_err(self.store_err())?;
                    std::fs::File::open(&blob.path)
                        .and_then(|mut from| std::io::copy(&mut from, &mut temp))
                        .and_then(|_| temp.as_file().sync_all())
                        .map_err(self.store_err())?;
                    temp.persist(&kept)
                        .map_err(|e| (self.store_err())(e.error))?;
                }
            }
            std::fs::File::open(&blobs)
                .and_then(|d| d.sync_all())
                .map_err(self.store_err())?;
        }
        let record = Record {
            digest: blob.digest.clone(),
            diff_id: blob.diff_id.clone(),
            size: blob.size,
            tar_size: blob.tar_size,
            media_type: blob.media_type.into(),
        };
        let json = serde_json::to_vec(&record).expect("record serializes");
        crate::transport::layout::write_atomic(
            &dir.join(format!("{}.json", fingerprint.hex())),
            &json,
        )
        .map_err(self.store_err())?;
        self.drop_old_built_layers()
    }

    fn drop_old_built_layers(&self) -> Result<(), CacheError> {
        let dir = self.built_dir();
        let mut records: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir(&dir)
            .map_err(self.store_err())?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .filter_map(|p| Some((std::fs::metadata(&p).ok()?.modified().ok()?, p)))
            .collect();
        records.sort_by_key(|r| std::cmp::Reverse(r.0));
        let read = |p: &PathBuf| -> Option<Record> {
            serde_json::from_slice(&std::fs::read(p).ok()?).ok()
        };
        let kept: Vec<Digest> = records
            .iter()
            .take(KEEP)
            .filter_map(|(_, p)| read(p).map(|r| r.digest))
            .collect();
        for (_, path) in records.iter().skip(KEEP) {
            if let Some(record) = read(path) {
                if !kept.contains(&record.digest) {
                    let _ = std::fs::remove_file(dir.join("blobs").join(record.digest.hex()));
                }
            }
            let _ = std::fs::remove_file(path);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::{LayerSpec, Owner, WriteOptions};

    fn layer(dir: &std::path::Path, text: &str) -> LayerBlob {
        let mut spec = LayerSpec::new();
        spec.add_bytes("/etc/motd", text.as_bytes().to_vec(), 0o644, Owner::ROOT)
            .unwrap();
        spec.write(dir, WriteOptions::default()).unwrap()
    }

    #[test]
    fn a_kept_layer_is_found_by_fingerprint_until_it_is_the_oldest_of_too_many() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path().join("cache"));
        let built = dir.path().join("build");
        let first = layer(&built, "first");
        let print = |n: usize| Digest::of_bytes(format!("fingerprint {n}").as_bytes());
        assert!(cache.built_layer(&print(0)).is_none());
        cache.keep_built_layer(&print(0), &first).unwrap();
        std::fs::remove_dir_all(&built).unwrap();
        let found = cache.built_layer(&print(0)).expect("kept");
        assert_eq!(
            (found.digest.clone(), found.size),
            (first.digest.clone(), first.size)
        );
        assert_eq!(
            Digest::of_reader(std::fs::File::open(&found.path).unwrap())
                .unwrap()
                .0,
            first.digest
        );
        // A blob cut short is not taken.
        std::fs::write(&found.path, b"short").unwrap();
        assert!(cache.built_layer(&print(0)).is_none());

        for n in 1..=KEEP + 2 {
            let blob = layer(&built, &format!("layer {n}"));
            cache.keep_built_layer(&print(n), &blob).unwrap();
            // Used in this order, whatever the clock's resolution.
            let record = cache.built_dir().join(format!("{}.json", print(n).hex()));
            std::fs::File::options()
                .append(true)
                .open(record)
                .unwrap()
                .set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(n as u64))
                .unwrap();
        }
        assert!(
            cache.built_layer(&print(1)).is_none(),
            "the oldest were dropped"
        );
        assert!(cache.built_layer(&print(KEEP + 2)).is_some());
        let blobs = std::fs::read_dir(cache.built_dir().join("blobs"))
            .unwrap()
            .count();
        assert_eq!(blobs, KEEP, "their blobs too");
    }
}
