//! Resolving a reference to an image value (manifest + config, platform chosen from an index)
//! and reading its blobs from wherever it lives.

use super::layout;
use super::registry::{Registries, RegistryClient};
use super::TransportError;
use crate::digest::Digest;
use crate::image::manifest::{select_platform, ManifestKind};
use crate::image::{ImageConfig, ImageRef, LayoutRef, Manifest, Platform};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where an image's blobs can be read from.
#[derive(Clone, Debug)]
pub enum BlobSource {
    Registry {
        client: Arc<RegistryClient>,
        repository: String,
    },
    Layout {
        dir: PathBuf,
    },
}

impl BlobSource {
    pub fn describe(&self) -> String {
        match self {
            BlobSource::Registry { client, repository } => {
                format!("{}/{repository}", client.registry())
            }
            BlobSource::Layout { dir } => format!("oci:{}", dir.display()),
        }
    }

    /// A small blob in memory, digest verified.
    pub async fn read_bytes(&self, digest: &Digest) -> Result<Vec<u8>, TransportError> {
        match self {
            BlobSource::Registry { client, repository } => {
                client.get_blob_bytes(repository, digest).await
            }
            BlobSource::Layout { dir } => {
                let (dir, digest) = (dir.clone(), digest.clone());
                crate::spawn_blocking(move || layout::read_blob(&dir, &digest))
                    .await
                    .expect("blob read task")
            }
        }
    }

    /// A local file holding the blob: the layout's own file, or a verified download kept in
    /// `download_dir` (content-addressed, so a second reader reuses it).
    pub async fn local_path(
        &self,
        digest: &Digest,
        download_dir: &Path,
    ) -> Result<PathBuf, TransportError> {
        match self {
            BlobSource::Layout { dir } => {
                let path = layout::blob_path(dir, digest);
                if !path.exists() {
                    return Err(TransportError::NotFound {
                        what: format!("blob {digest} in OCI layout {}", dir.display()),
                    });
                }
                Ok(path)
            }
            BlobSource::Registry { client, repository } => {
                let path = download_dir.join(digest.hex());
                if !path.exists() {
                    client.download_to(repository, digest, &path).await?;
                }
                Ok(path)
            }
        }
    }
}

/// An image read from a registry or layout: its manifest, config and where its blobs are.
#[derive(Clone, Debug)]
pub struct ResolvedImage {
    pub reference: ImageRef,
    pub manifest_digest: Digest,
    pub manifest_bytes: Vec<u8>,
    pub manifest: Manifest,
    pub config: ImageConfig,
    pub config_bytes: Vec<u8>,
    pub source: BlobSource,
}

impl ResolvedImage {
    /// Fetches `reference`; an index or manifest list is narrowed to `platform`.
    pub async fn fetch(
        reference: &ImageRef,
        platform: &Platform,
        registries: &Registries,
    ) -> Result<Self, TransportError> {
        let what = reference.to_string();
        // A name without a registry reads as docker reads it: the engine's image if it holds
        // one, else the same name pulled from its registry (Docker Hub for short names).
        let effective = match reference {
            ImageRef::Engine(name) => match super::engine_store::read_image(registries, name).await
            {
                Ok(Some(dir)) => ImageRef::Layout(LayoutRef { dir, tag: None }),
                Ok(None) => ImageRef::Registry(name.in_registry()),
                Err(engine) => {
                    let pulled = ImageRef::Registry(name.in_registry());
                    return Box::pin(Self::fetch(&pulled, platform, registries))
                        .await
                        .map(|image| ResolvedImage {
                            reference: reference.clone(),
                            ..image
                        })
                        .map_err(|registry| TransportError::NotFound {
                            what: format!(
                                "{what}: not read from the local container engine ({engine}), nor from {pulled} ({registry})"
                            ),
                        });
                }
            },
            other => other.clone(),
        };
        let (source, mut bytes, mut digest) = match &effective {
            ImageRef::Registry(r) => {
                let client = registries.client(&r.registry).await;
                let (bytes, digest) = client.get_manifest(r).await?;
                (
                    BlobSource::Registry {
                        client,
                        repository: r.repository.clone(),
                    },
                    bytes,
                    digest,
                )
            }
            ImageRef::Layout(l) => {
                let l = l.clone();
                let dir = l.dir.clone();
                let (bytes, digest) =
                    crate::spawn_blocking(move || -> Result<_, TransportError> {
                        let descriptor = layout::find_manifest(&l)?;
                        Ok((
                            layout::read_blob(&l.dir, &descriptor.digest)?,
                            descriptor.digest,
                        ))
                    })
                    .await
                    .expect("layout read task")?;
                (BlobSource::Layout { dir }, bytes, digest)
            }
            ImageRef::Engine(_) => unreachable!("resolved to a layout or registry above"),
        };
        // Indexes may nest (an index inside a layout's index.json): follow at most a few levels.
        let mut manifest = None;
        for _ in 0..4 {
            match ManifestKind::parse(&bytes, &what)? {
                ManifestKind::Image(m) => {
                    manifest = Some(m);
                    break;
                }
                ManifestKind::Index(entries) => {
                    let chosen = select_platform(&entries, platform, &what)?.digest.clone();
                    bytes = match &source {
                        BlobSource::Registry { client, repository } => {
                            let by_digest = match &effective {
                                ImageRef::Registry(r) => r.with_digest(chosen.clone()),
                                _ => unreachable!("registry source"),
                            };
                            debug_assert_eq!(&by_digest.repository, repository);
                            client.get_manifest(&by_digest).await?.0
                        }
                        BlobSource::Layout { .. } => source.read_bytes(&chosen).await?,
                    };
                    digest = chosen;
                }
            }
        }
        let manifest = manifest.ok_or_else(|| TransportError::Layout {
            dir: what.clone(),
            reason: "indexes nested too deeply".into(),
        })?;
        let config_bytes = source.read_bytes(&manifest.config.digest).await?;
        let config = ImageConfig::parse(&config_bytes, &format!("config of {what}"))?;
        if config.architecture() != platform.architecture || config.os() != platform.os {
            tracing::warn!(image = %what, image_platform = %format!("{}/{}", config.os(), config.architecture()), requested = %platform, "image is single-platform and not the requested platform; using it as is");
        }
        Ok(ResolvedImage {
            reference: reference.clone(),
            manifest_digest: digest,
            manifest_bytes: bytes,
            manifest,
            config,
            config_bytes,
            source,
        })
    }
}
