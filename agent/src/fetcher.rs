//! The agent's local cache: the engine's content-addressed store whose entries mirror the farm's
//! catalog and whose content is fetched from the artifact store on first use — one fetch per
//! digest at a time (single flight), verified, renamed into place — and evicted least recently
//! used first once the store outgrows `--cache-max-bytes`.

use patchfarm_engine::artifact::ArtifactStore;
use patchfarm_engine::cache::{BlobFetcher, Cache, CacheEntry};
use patchfarm_engine::digest::Digest;
use patchfarm_engine::transport::{Registries, RegistryOptions};
use patchfarm_proto::v1::CatalogEntry;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

pub struct Fetcher {
    root: PathBuf,
    /// digest → artifact store location, from the last catalog sync.
    locations: Mutex<HashMap<String, String>>,
    /// key → digest recorded in the local entries (to rewrite only what changed).
    recorded: Mutex<HashMap<String, String>>,
    registries: Arc<Registries>,
    inflight: Mutex<HashMap<String, Arc<Mutex<()>>>>,
    /// digest → last use (a logical clock), for LRU eviction.
    used: Mutex<HashMap<String, u64>>,
    clock: AtomicU64,
    /// Inputs found already here, and fetched (misses), since the agent started.
    pub hits: AtomicU64,
    pub fetches: AtomicU64,
    pub fetched_bytes: AtomicU64,
    runtime: tokio::runtime::Handle,
}

impl Fetcher {
    pub fn new(root: PathBuf, registry: RegistryOptions) -> Arc<Self> {
        Arc::new(Fetcher {
            root,
            locations: Mutex::default(),
            recorded: Mutex::default(),
            registries: Arc::new(Registries::new(registry)),
            inflight: Mutex::default(),
            used: Mutex::default(),
            clock: AtomicU64::new(1),
            hits: AtomicU64::new(0),
            fetches: AtomicU64::new(0),
            fetched_bytes: AtomicU64::new(0),
            runtime: tokio::runtime::Handle::current(),
        })
    }

    /// The engine cache over this store, fetching through `self`.
    pub fn cache(self: &Arc<Self>) -> Cache {
        Cache::new(&self.root).with_fetcher(self.clone())
    }

    fn blobs_dir(&self) -> PathBuf {
        self.root.join("blobs").join("sha256")
    }

    /// The current logical time; blobs used at or after a running job's start are kept.
    pub fn now(&self) -> u64 {
        self.clock.fetch_add(1, Ordering::Relaxed)
    }

    fn touch(&self, digest: &str) {
        let tick = self.now();
        self.used
            .lock()
            .expect("lru lock")
            .insert(digest.to_string(), tick);
    }

    /// Mirrors the farm's catalog into the local entries (blocking: call from a blocking task).
    pub fn sync(&self, catalog: &[CatalogEntry]) -> Result<(), String> {
        let cache = Cache::new(&self.root);
        let mut recorded = self.recorded.lock().expect("recorded lock");
        let mut locations = self.locations.lock().expect("locations lock");
        locations.clear();
        let mut current = HashMap::new();
        for item in catalog {
            locations.insert(item.digest.clone(), item.location.clone());
            current.insert(item.key.clone(), item.digest.clone());
            if recorded.get(&item.key) == Some(&item.digest) {
                continue;
            }
            let digest: Digest = item
                .digest
                .parse()
                .map_err(|e| format!("catalog entry {}: {e}", item.key))?;
            let entry = CacheEntry {
                key: item.key.clone(),
                digest,
                size: item.size,
                file_name: item.description.clone(),
            };
            cache
                .record(&entry)
                .map_err(|e| format!("recording {}: {e}", item.key))?;
        }
        for key in recorded.keys().filter(|k| !current.contains_key(*k)) {
            cache
                .forget(key)
                .map_err(|e| format!("dropping {key}: {e}"))?;
        }
        *recorded = current;
        Ok(())
    }

    /// Whether the content of `digest` is here already.
    pub fn holds(&self, digest: &str) -> bool {
        digest
            .strip_prefix("sha256:")
            .is_some_and(|hex| self.blobs_dir().join(hex).is_file())
    }

    /// Digests held and their total size (heartbeats report them for cache affinity).
    pub fn inventory(&self) -> (Vec<String>, u64) {
        let mut digests = Vec::new();
        let mut bytes = 0;
        if let Ok(dir) = std::fs::read_dir(self.blobs_dir()) {
            for item in dir.flatten() {
                let name = item.file_name().to_string_lossy().into_owned();
                if name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit()) {
                    bytes += item.metadata().map(|m| m.len()).unwrap_or(0);
                    digests.push(format!("sha256:{name}"));
                }
            }
        }
        (digests, bytes)
    }

    /// Removes least recently used content until the store fits in `max_bytes`; content used
    /// since `keep_from` (the oldest running job's start) stays. Returns the bytes freed.
    pub fn evict(&self, max_bytes: u64, keep_from: u64) -> u64 {
        let Ok(dir) = std::fs::read_dir(self.blobs_dir()) else {
            return 0;
        };
        let used = self.used.lock().expect("lru lock").clone();
        let mut blobs: Vec<(u64, u64, PathBuf, String)> = dir
            .flatten()
            .filter_map(|item| {
                let name = item.file_name().to_string_lossy().into_owned();
                let size = item.metadata().ok()?.len();
                let digest = format!("sha256:{name}");
                let tick = used.get(&digest).copied().unwrap_or(0);
                (name.len() == 64).then(|| (tick, size, item.path(), digest))
            })
            .collect();
        let mut total: u64 = blobs.iter().map(|b| b.1).sum();
        blobs.sort();
        let mut freed = 0;
        for (tick, size, path, digest) in blobs {
            if total <= max_bytes {
                break;
            }
            if tick >= keep_from {
                continue;
            }
            if std::fs::remove_file(&path).is_ok() {
                tracing::info!(digest = %digest, size, "evicted from the local cache");
                total -= size;
                freed += size;
            }
        }
        freed
    }
}

impl Fetcher {
    /// Fetches a job's input files (named by content) from `store` into a directory of the job's
    /// own, each verified and under its submitted name, and points the job at them. The
    /// directory goes when the returned guard does.
    pub async fn job_files(
        &self,
        job: &mut patchfarm_jobs::Job,
        store: &str,
    ) -> Result<Option<tempfile::TempDir>, String> {
        let files = job
            .artifact_files()
            .map_err(|(field, e)| format!("{field}: {e}"))?;
        if files.is_empty() {
            return Ok(None);
        }
        let store = ArtifactStore::parse(store, self.registries.clone())
            .map_err(|e| format!("the job's artifact store: {e}"))?;
        let jobs = self.root.join("jobs");
        tokio::fs::create_dir_all(&jobs)
            .await
            .map_err(|e| format!("creating {}: {e}", jobs.display()))?;
        let dir = patchfarm_engine::spawn_blocking(move || {
            tempfile::Builder::new()
                .prefix("files-")
                .tempdir_in(&jobs)
                .map_err(|e| format!("a directory in {}: {e}", jobs.display()))
        })
        .await
        .expect("job directory task")?;
        let mut local = Vec::with_capacity(files.len());
        for (i, (field, file)) in files.iter().enumerate() {
            // One directory per file: two files may share a name.
            let parent = dir.path().join(i.to_string());
            tokio::fs::create_dir(&parent)
                .await
                .map_err(|e| format!("creating {}: {e}", parent.display()))?;
            let dest = parent.join(&file.name);
            store
                .fetch_to(&file.digest, &dest)
                .await
                .map_err(|e| format!("{field}: fetching {file}: {e}"))?;
            local.push(dest);
        }
        for ((_, path), dest) in job.input_files_mut().into_iter().zip(local) {
            *path = dest;
        }
        Ok(Some(dir))
    }
}

impl BlobFetcher for Fetcher {
    fn ensure(&self, entry: &CacheEntry, blob: &Path) -> Result<(), String> {
        let digest = entry.digest.to_string();
        let gate = self
            .inflight
            .lock()
            .expect("inflight lock")
            .entry(digest.clone())
            .or_default()
            .clone();
        // Single flight: whoever holds the gate fetches; the others find the file afterwards.
        let _fetching = gate.lock().expect("fetch gate");
        self.touch(&digest);
        if blob.is_file() {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        }
        let location = self
            .locations
            .lock()
            .expect("locations lock")
            .get(&digest)
            .cloned()
            .ok_or_else(|| format!("the farm's catalog names no artifact store for {digest}"))?;
        let store =
            ArtifactStore::parse(&location, self.registries.clone()).map_err(|e| e.to_string())?;
        let started = std::time::Instant::now();
        self.runtime
            .block_on(store.fetch_to(&entry.digest, blob))
            .map_err(|e| format!("fetching {} from {location}: {e}", entry.key))?;
        self.fetches.fetch_add(1, Ordering::Relaxed);
        self.fetched_bytes.fetch_add(entry.size, Ordering::Relaxed);
        tracing::info!(
            key = %entry.key,
            digest = %digest,
            size = entry.size,
            from = %location,
            ms = started.elapsed().as_millis() as u64,
            "artifact fetched"
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use patchfarm_engine::cache::CacheKey;

    async fn stored(store: &ArtifactStore, dir: &Path, name: &str, size: usize) -> (Digest, u64) {
        let path = dir.join(name);
        std::fs::write(&path, vec![name.as_bytes()[0]; size]).unwrap();
        let digest = Digest::of_bytes(&std::fs::read(&path).unwrap());
        store
            .put_file(&path, &digest, size as u64, "installer", name)
            .await
            .unwrap();
        (digest, size as u64)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn fetches_each_digest_once_verifies_and_evicts_least_recently_used() {
        let dir = tempfile::tempdir().unwrap();
        let store = ArtifactStore::Layout(dir.path().join("store"));
        let mut catalog = Vec::new();
        for (key, name, size) in [
            ("jdk_1", "a.tgz", 1000),
            ("wls_1", "b.zip", 2000),
            ("wdt_1", "c.zip", 10),
        ] {
            let (digest, size) = stored(&store, dir.path(), name, size).await;
            catalog.push(CatalogEntry {
                key: key.into(),
                kind: "installer".into(),
                digest: digest.to_string(),
                size,
                location: store.location(),
                description: name.into(),
                ..Default::default()
            });
        }
        let fetcher = Fetcher::new(dir.path().join("cache"), RegistryOptions::default());
        fetcher.sync(&catalog).unwrap();
        let get = |key: &str| {
            let (cache, key) = (fetcher.cache(), key.parse::<CacheKey>().unwrap());
            tokio::task::spawn_blocking(move || cache.get_verified(&key).map(|i| i.path))
        };

        // Eight jobs want the JDK at once: one fetch.
        let all: Vec<_> = (0..8).map(|_| get("jdk_1")).collect();
        for one in all {
            assert!(one.await.unwrap().unwrap().is_file());
        }
        assert_eq!(fetcher.fetches.load(Ordering::Relaxed), 1);
        let wls = get("wls_1").await.unwrap().unwrap();
        assert_eq!(fetcher.fetches.load(Ordering::Relaxed), 2);
        assert_eq!(fetcher.inventory().1, 3000);

        // Over budget: the least recently used (the JDK) goes, the WebLogic home stays.
        assert_eq!(fetcher.evict(2500, u64::MAX), 1000);
        assert!(wls.is_file());
        assert!(!fetcher.holds(&catalog[0].digest));
        // Used again, fetched again.
        get("jdk_1").await.unwrap().unwrap();
        assert_eq!(fetcher.fetches.load(Ordering::Relaxed), 3);
        // What a running job used since it started is kept, even over budget.
        let job_started = fetcher.now();
        get("jdk_1").await.unwrap().unwrap();
        assert_eq!(
            fetcher.evict(0, job_started),
            2000,
            "only the WebLogic home was idle"
        );
        assert!(fetcher.holds(&catalog[0].digest));

        // Damaged in the store: refused, and nothing is left in the cache.
        let blob = dir
            .path()
            .join("store/blobs/sha256")
            .join(catalog[2].digest.trim_start_matches("sha256:"));
        std::fs::write(&blob, b"damaged").unwrap();
        let err = get("wdt_1").await.unwrap().unwrap_err().to_string();
        assert!(err.contains("wdt_1") && err.contains("corrupt"), "{err}");
        assert!(!fetcher.holds(&catalog[2].digest));

        // A key dropped from the catalog is dropped locally too.
        fetcher.sync(&catalog[..1]).unwrap();
        let err = get("wls_1").await.unwrap().unwrap_err().to_string();
        assert!(err.contains("not found") && err.contains("--farm"), "{err}");
    }
}
