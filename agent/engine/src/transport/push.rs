//! Pushing an image value: every blob checked with HEAD first, mounted across repositories of
//! the same registry when it is known there, otherwise streamed up with retries; the manifest
//! goes last, so a failure before it tags nothing. The same value can be written to `oci:DIR:TAG`.

use super::layout;
use super::registry::{Registries, RegistryClient};
use super::source::BlobSource;
use super::TransportError;
use crate::digest::Digest;
use crate::image::manifest::{index_bytes, Descriptor};
use crate::image::{media, ImageRef, Platform, RegistryRef};
use futures_util::{StreamExt, TryStreamExt};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where a blob of an image being pushed can be read from.
#[derive(Clone, Debug)]
pub enum BlobOrigin {
    /// A file written by this process (a new layer).
    Local(PathBuf),
    /// A blob of another image (the base's layers).
    Remote(BlobSource),
    /// Small bytes at hand (the config), uploaded without touching the disk.
    Memory(bytes::Bytes),
}

/// A layer of an image to push.
#[derive(Clone, Debug)]
pub struct OutBlob {
    pub descriptor: Descriptor,
    pub origin: BlobOrigin,
}

/// A finished image value ready to be pushed.
#[derive(Clone, Debug)]
pub struct PushedImage {
    pub manifest_bytes: Vec<u8>,
    pub manifest_media_type: String,
    pub config_bytes: Vec<u8>,
    pub layers: Vec<OutBlob>,
}

impl PushedImage {
    pub fn manifest_digest(&self) -> Digest {
        Digest::of_bytes(&self.manifest_bytes)
    }
}

/// What a push did, blob by blob.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct PushReport {
    pub reference: String,
    pub digest: String,
    /// Blobs that were already in the target repository.
    pub blobs_present: u32,
    /// Blobs mounted from another repository of the same registry (no bytes sent).
    pub blobs_mounted: u32,
    pub blobs_uploaded: u32,
    pub bytes_uploaded: u64,
    /// The signature attached to the pushed manifest (`REPO:sha256-<hex>.sig`), when signed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
    /// The SPDX SBOM attached beside it (`REPO:sha256-<hex>.sbom`), when signed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sbom: Option<String>,
    /// The signed SLSA provenance attached beside it (`REPO:sha256-<hex>.att`), when signed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provenance: Option<String>,
    /// The OCI 1.1 referrers index listing the three (`REPO:sha256-<hex>`), when signed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub referrers: Option<String>,
    /// The pushed manifest or index (what attachments name as their subject), after a push
    /// to a registry.
    #[serde(skip)]
    pub manifest: Option<Descriptor>,
    /// The attachment manifests pushed beside it (signature, SBOM, provenance), each with its
    /// artifact type: what the referrers index lists.
    #[serde(skip)]
    pub attached: Vec<Descriptor>,
}

enum BlobOutcome {
    Present,
    Mounted,
    Uploaded(u64),
}

/// Remembers which repositories hold which blobs, so later pushes can mount instead of upload.
#[derive(Clone, Debug)]
pub struct BlobLocations {
    dir: PathBuf,
}

impl BlobLocations {
    pub fn new(dir: PathBuf) -> Self {
        BlobLocations { dir }
    }

    fn known(&self, digest: &Digest, registry: &str) -> Vec<String> {
        let prefix = format!("{registry}/");
        std::fs::read_to_string(self.dir.join(digest.hex()))
            .map(|text| {
                text.lines()
                    .filter_map(|l| l.strip_prefix(&prefix))
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    }

    fn remember(&self, digest: &Digest, registry: &str, repository: &str) {
        use std::io::Write;
        let line = format!("{registry}/{repository}");
        if self.known(digest, registry).iter().any(|r| r == repository)
            || std::fs::create_dir_all(&self.dir).is_err()
        {
            return;
        }
        // One short O_APPEND write per line: concurrent writers cannot interleave within it.
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(digest.hex()))
        {
            let _ = f.write_all(format!("{line}\n").as_bytes());
        }
    }
}

/// Pushes `image` to `target` and tags it (by the target's tag, or by digest alone).
pub async fn push(
    image: &PushedImage,
    target: &ImageRef,
    registries: &Registries,
    locations: &BlobLocations,
) -> Result<PushReport, TransportError> {
    match target {
        ImageRef::Registry(r) => push_to_registry(image, r, registries, locations).await,
        ImageRef::Engine(e) => super::engine_store::load_image(image, e, registries).await,
        ImageRef::Layout(l) => {
            let report = write_to_layout(image, &l.dir, target).await?;
            let descriptor = Descriptor::new(
                &image.manifest_media_type,
                image.manifest_digest(),
                image.manifest_bytes.len() as u64,
            );
            let (dir, tag) = (l.dir.clone(), l.tag.clone());
            crate::spawn_blocking(move || layout::tag(&dir, tag.as_deref(), &descriptor, None))
                .await
                .expect("layout tag task")?;
            Ok(report)
        }
    }
}

/// Pushes one image per platform (addressed by digest), then an OCI index of them under the
/// target's tag: the index goes last, so a failure leaves the tag untouched.
pub async fn push_index(
    images: &[(PushedImage, Platform)],
    target: &ImageRef,
    registries: &Registries,
    locations: &BlobLocations,
) -> Result<PushReport, TransportError> {
    if let ImageRef::Engine(e) = target {
        // An engine's store holds one platform per name, as `docker buildx --load` does.
        return super::engine_store::load_platform_of_engine(images, e, registries).await;
    }
    let mut report = PushReport {
        reference: target.to_string(),
        ..Default::default()
    };
    let mut entries = Vec::new();
    for (image, platform) in images {
        let part = match target {
            ImageRef::Engine(_) => unreachable!("loaded above"),
            ImageRef::Registry(r) => {
                push_to_registry(
                    image,
                    &RegistryRef {
                        tag: None,
                        digest: None,
                        ..r.clone()
                    },
                    registries,
                    locations,
                )
                .await?
            }
            ImageRef::Layout(l) => write_to_layout(image, &l.dir, target).await?,
        };
        report.blobs_present += part.blobs_present;
        report.blobs_mounted += part.blobs_mounted;
        report.blobs_uploaded += part.blobs_uploaded;
        report.bytes_uploaded += part.bytes_uploaded;
        let mut entry = Descriptor::new(
            &image.manifest_media_type,
            image.manifest_digest(),
            image.manifest_bytes.len() as u64,
        );
        entry.platform = Some(platform.clone());
        entries.push(entry);
    }
    let index = index_bytes(&entries, &BTreeMap::new());
    let digest = Digest::of_bytes(&index);
    report.digest = digest.to_string();
    match target {
        ImageRef::Registry(r) => {
            let client = registries.client(&r.registry).await;
            let reference = r.tag.clone().unwrap_or_else(|| digest.to_string());
            client
                .put_manifest(&r.repository, &reference, &index, media::OCI_INDEX)
                .await?;
            report.manifest = Some(Descriptor::new(
                media::OCI_INDEX,
                digest.clone(),
                index.len() as u64,
            ));
        }
        ImageRef::Engine(_) => unreachable!("loaded above"),
        ImageRef::Layout(l) => {
            let (dir, tag) = (l.dir.clone(), l.tag.clone());
            crate::spawn_blocking(move || -> Result<(), TransportError> {
                layout::put_blob_bytes(&dir, &digest, &index)?;
                layout::tag(
                    &dir,
                    tag.as_deref(),
                    &Descriptor::new(media::OCI_INDEX, digest, index.len() as u64),
                    None,
                )
            })
            .await
            .expect("layout index task")?;
        }
    }
    Ok(report)
}

/// Writes every blob and the manifest of `image` into the layout at `dir` (no tag).
pub(super) async fn write_to_layout(
    image: &PushedImage,
    dir: &Path,
    target: &ImageRef,
) -> Result<PushReport, TransportError> {
    let download_dir = dir.join("blobs").join("sha256");
    let owned = dir.to_path_buf();
    crate::spawn_blocking(move || layout::init(&owned))
        .await
        .expect("layout init task")?;
    let mut report = PushReport {
        reference: target.to_string(),
        digest: image.manifest_digest().to_string(),
        ..Default::default()
    };
    for blob in &image.layers {
        let digest = &blob.descriptor.digest;
        let written = match &blob.origin {
            BlobOrigin::Local(path) => copy_into_layout(dir, digest, path).await?,
            BlobOrigin::Memory(body) => {
                let (dir, digest, body) = (dir.to_path_buf(), digest.clone(), body.clone());
                let written =
                    crate::spawn_blocking(move || layout::put_blob_bytes(&dir, &digest, &body))
                        .await
                        .expect("layout write task")?;
                if written {
                    blob.descriptor.size
                } else {
                    0
                }
            }
            BlobOrigin::Remote(BlobSource::Layout { dir: from }) => {
                copy_into_layout(dir, digest, &layout::blob_path(from, digest)).await?
            }
            BlobOrigin::Remote(source) => {
                let existed = layout::blob_path(dir, digest).exists();
                source.local_path(digest, &download_dir).await?;
                if existed {
                    0
                } else {
                    blob.descriptor.size
                }
            }
        };
        if written > 0 {
            report.blobs_uploaded += 1;
            report.bytes_uploaded += written;
        } else {
            report.blobs_present += 1;
        }
    }
    let (dir, config, manifest) = (
        dir.to_path_buf(),
        image.config_bytes.clone(),
        image.manifest_bytes.clone(),
    );
    crate::spawn_blocking(move || -> Result<(), TransportError> {
        layout::put_blob_bytes(&dir, &Digest::of_bytes(&config), &config)?;
        layout::put_blob_bytes(&dir, &Digest::of_bytes(&manifest), &manifest).map(|_| ())
    })
    .await
    .expect("layout write task")?;
    Ok(report)
}

async fn copy_into_layout(
    dir: &Path,
    digest: &Digest,
    source: &Path,
) -> Result<u64, TransportError> {
    let (dir, digest, source) = (dir.to_path_buf(), digest.clone(), source.to_path_buf());
    crate::spawn_blocking(move || layout::put_blob_file(&dir, &digest, &source))
        .await
        .expect("layout copy task")
}

async fn push_to_registry(
    image: &PushedImage,
    target: &RegistryRef,
    registries: &Registries,
    locations: &BlobLocations,
) -> Result<PushReport, TransportError> {
    let client = registries.client(&target.registry).await;
    let repository = target.repository.as_str();
    let mut all = image.layers.clone();
    all.push(OutBlob {
        descriptor: Descriptor::new(
            media::OCI_CONFIG,
            Digest::of_bytes(&image.config_bytes),
            image.config_bytes.len() as u64,
        ),
        origin: BlobOrigin::Memory(bytes::Bytes::copy_from_slice(&image.config_bytes)),
    });
    let outcomes: Vec<BlobOutcome> = futures_util::stream::iter(
        all.iter()
            .map(|blob| push_blob(&client, repository, blob, registries, locations)),
    )
    .buffered(3)
    .try_collect()
    .await?;
    client.remember(&Digest::of_bytes(&image.config_bytes), &image.config_bytes);
    let mut report = PushReport {
        reference: target.to_string(),
        digest: image.manifest_digest().to_string(),
        manifest: Some(Descriptor::new(
            &image.manifest_media_type,
            image.manifest_digest(),
            image.manifest_bytes.len() as u64,
        )),
        ..Default::default()
    };
    for outcome in outcomes {
        match outcome {
            BlobOutcome::Present => report.blobs_present += 1,
            BlobOutcome::Mounted => report.blobs_mounted += 1,
            BlobOutcome::Uploaded(bytes) => {
                report.blobs_uploaded += 1;
                report.bytes_uploaded += bytes;
            }
        }
    }
    let reference = target
        .tag
        .clone()
        .unwrap_or_else(|| image.manifest_digest().to_string());
    let mut delay = std::time::Duration::from_millis(100);
    let mut attempt = 1;
    loop {
        let put = client
            .put_manifest(
                repository,
                &reference,
                &image.manifest_bytes,
                &image.manifest_media_type,
            )
            .await;
        match put {
            Err(TransportError::BlobsUnknown { digests, .. }) if attempt < MANIFEST_ATTEMPTS => {
                // Another push relinking the same blobs; make sure each is there, then again.
                tracing::warn!(
                    ?digests,
                    attempt,
                    "registry did not see pushed blobs; pushing them again"
                );
                tokio::time::sleep(delay).await;
                delay *= 2;
                for blob in all
                    .iter()
                    .filter(|b| digests.contains(&b.descriptor.digest.to_string()))
                {
                    push_blob(&client, repository, blob, registries, locations).await?;
                }
                attempt += 1;
            }
            other => return other.map(|()| report),
        }
    }
}

/// How often a manifest is pushed when the registry briefly does not see its blobs.
const MANIFEST_ATTEMPTS: u32 = 5;

async fn push_blob(
    client: &Arc<RegistryClient>,
    repository: &str,
    blob: &OutBlob,
    registries: &Registries,
    locations: &BlobLocations,
) -> Result<BlobOutcome, TransportError> {
    let digest = &blob.descriptor.digest;
    let registry = client.registry();
    // A blob of an image read from this very repository is there (the registry keeps every blob
    // a manifest in the repository references).
    if let BlobOrigin::Remote(BlobSource::Registry {
        client: from,
        repository: from_repo,
    }) = &blob.origin
    {
        if from.registry() == registry && from_repo == repository {
            return Ok(BlobOutcome::Present);
        }
    }
    if client.blob_exists(repository, digest).await? {
        locations.remember(digest, registry, repository);
        return Ok(BlobOutcome::Present);
    }
    let mut mount_from = locations.known(digest, registry);
    if let BlobOrigin::Remote(BlobSource::Registry {
        client: source_client,
        repository: source_repo,
    }) = &blob.origin
    {
        if source_client.registry() == registry {
            mount_from.insert(0, source_repo.clone());
        }
    }
    for from in mount_from.iter().filter(|r| r.as_str() != repository) {
        if client.mount(repository, from, digest).await? {
            tracing::debug!(%digest, from, to = repository, "mounted blob");
            locations.remember(digest, registry, repository);
            return Ok(BlobOutcome::Mounted);
        }
    }
    let size = blob.descriptor.size;
    match &blob.origin {
        BlobOrigin::Local(path) => client.upload_file(repository, digest, size, path).await?,
        BlobOrigin::Memory(body) => {
            client
                .upload_stream(repository, digest, size, || {
                    let chunk = body.clone();
                    async move { Ok(futures_util::stream::once(async move { Ok(chunk) })) }
                })
                .await?
        }
        BlobOrigin::Remote(BlobSource::Layout { dir }) => {
            client
                .upload_file(repository, digest, size, &layout::blob_path(dir, digest))
                .await?
        }
        BlobOrigin::Remote(BlobSource::Registry {
            client: source_client,
            repository: source_repo,
        }) => {
            let _ = registries;
            client
                .upload_stream(repository, digest, size, || async {
                    source_client.blob_stream(source_repo, digest).await
                })
                .await?
        }
    }
    locations.remember(digest, registry, repository);
    Ok(BlobOutcome::Uploaded(size))
}
