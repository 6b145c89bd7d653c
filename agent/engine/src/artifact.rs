//! The farm's artifact store: installers and patches kept as OCI artifacts addressed by digest,
//! in a registry repository (`HOST/REPO`) or an OCI layout (`oci:DIR`, for one machine). Each
//! item is one blob plus a small artifact manifest tagged `sha256-<hex>`, so registry garbage
//! collection keeps it and `skopeo`/`oras` can list it.

use crate::digest::Digest;
use crate::image::manifest::{canonical_json, Descriptor};
use crate::image::media;
use crate::transport::{layout, Registries, TransportError};
use serde_json::json;
use std::path::{Path, PathBuf};

/// The empty JSON config every artifact manifest points at (`{}`).
const EMPTY_CONFIG: &[u8] = b"{}";
const EMPTY_MEDIA_TYPE: &str = "application/vnd.oci.empty.v1+json";

#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    #[error("artifact store {0:?}: expected oci:DIR or HOST/REPO")]
    BadReference(String),
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("artifact {digest} in {store} is corrupt: its content hashes to {actual}")]
    Corrupt {
        store: String,
        digest: String,
        actual: String,
    },
    #[error("artifact {digest} is not in {store}")]
    Missing { store: String, digest: String },
}

#[derive(Clone)]
pub enum ArtifactStore {
    Layout(PathBuf),
    Registry {
        registries: std::sync::Arc<Registries>,
        registry: String,
        repository: String,
    },
}

impl std::fmt::Debug for ArtifactStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.location())
    }
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ArtifactError {
    let what = what.into();
    move |source| ArtifactError::Io { what, source }
}

impl ArtifactStore {
    /// `oci:DIR` or `HOST[:PORT]/REPO`.
    pub fn parse(
        reference: &str,
        registries: std::sync::Arc<Registries>,
    ) -> Result<Self, ArtifactError> {
        if let Some(dir) = reference.strip_prefix("oci:") {
            if dir.is_empty() {
                return Err(ArtifactError::BadReference(reference.into()));
            }
            return Ok(ArtifactStore::Layout(PathBuf::from(dir)));
        }
        match reference.split_once('/') {
            Some((registry, repository))
                if !registry.is_empty()
                    && !repository.is_empty()
                    && !reference.contains('@')
                    && repository.bytes().all(|b| {
                        b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-/".contains(&b)
                    }) =>
            {
                Ok(ArtifactStore::Registry {
                    registries,
                    registry: registry.into(),
                    repository: repository.into(),
                })
            }
            _ => Err(ArtifactError::BadReference(reference.into())),
        }
    }

    /// The store's reference, as recorded in catalog entries.
    pub fn location(&self) -> String {
        match self {
            ArtifactStore::Layout(dir) => format!("oci:{}", dir.display()),
            ArtifactStore::Registry {
                registry,
                repository,
                ..
            } => format!("{registry}/{repository}"),
        }
    }

    fn manifest(digest: &Digest, size: u64, kind: &str, file_name: &str) -> Vec<u8> {
        canonical_json(&json!({
            "schemaVersion": 2,
            "mediaType": media::OCI_MANIFEST,
            "artifactType": format!("application/vnd.patchfarm.{kind}.v1"),
            "config": {
                "mediaType": EMPTY_MEDIA_TYPE,
                "digest": Digest::of_bytes(EMPTY_CONFIG).to_string(),
                "size": EMPTY_CONFIG.len(),
            },
            "layers": [{
                "mediaType": "application/octet-stream",
                "digest": digest.to_string(),
                "size": size,
                "annotations": {"org.opencontainers.image.title": file_name},
            }],
        }))
    }

    /// Stores the file at `path` (already hashed by the caller to `digest`, `size`).
    pub async fn put_file(
        &self,
        path: &Path,
        digest: &Digest,
        size: u64,
        kind: &str,
        file_name: &str,
    ) -> Result<(), ArtifactError> {
        let manifest = Self::manifest(digest, size, kind, file_name);
        let tag = format!("sha256-{}", digest.hex());
        match self {
            ArtifactStore::Layout(dir) => {
                let (dir, path, digest) = (dir.clone(), path.to_path_buf(), digest.clone());
                crate::spawn_blocking(move || -> Result<(), ArtifactError> {
                    layout::init(&dir)?;
                    layout::put_blob_file(&dir, &digest, &path)?;
                    layout::put_blob_bytes(&dir, &Digest::of_bytes(EMPTY_CONFIG), EMPTY_CONFIG)?;
                    let manifest_digest = Digest::of_bytes(&manifest);
                    layout::put_blob_bytes(&dir, &manifest_digest, &manifest)?;
                    let descriptor = Descriptor::new(
                        media::OCI_MANIFEST,
                        manifest_digest,
                        manifest.len() as u64,
                    );
                    layout::tag(&dir, Some(&tag), &descriptor, None)?;
                    Ok(())
                })
                .await
                .expect("artifact store task")
            }
            ArtifactStore::Registry {
                registries,
                registry,
                repository,
            } => {
                let client = registries.client(registry).await;
                if !client.blob_exists(repository, digest).await? {
                    client.upload_file(repository, digest, size, path).await?;
                }
                let empty = Digest::of_bytes(EMPTY_CONFIG);
                if !client.blob_exists(repository, &empty).await? {
                    client
                        .upload_stream(repository, &empty, EMPTY_CONFIG.len() as u64, || async {
                            Ok(futures_util::stream::iter([Ok(bytes::Bytes::from_static(
                                EMPTY_CONFIG,
                            ))]))
                        })
                        .await?;
                }
                client
                    .put_manifest(repository, &tag, &manifest, media::OCI_MANIFEST)
                    .await?;
                Ok(())
            }
        }
    }

    /// Copies the blob `digest` to `dest` through a temp file and a rename; its content is
    /// verified on the way, so `dest` is complete and correct or absent.
    pub async fn fetch_to(&self, digest: &Digest, dest: &Path) -> Result<(), ArtifactError> {
        match self {
            ArtifactStore::Layout(dir) => {
                let source = layout::blob_path(dir, digest);
                let (store, digest, dest) = (self.location(), digest.clone(), dest.to_path_buf());
                crate::spawn_blocking(move || copy_verified(&store, &source, &digest, &dest))
                    .await
                    .expect("artifact fetch task")
            }
            ArtifactStore::Registry {
                registries,
                registry,
                repository,
            } => {
                let client = registries.client(registry).await;
                client
                    .download_to(repository, digest, dest)
                    .await
                    .map_err(|e| match e {
                        TransportError::DigestMismatch { actual, .. } => ArtifactError::Corrupt {
                            store: self.location(),
                            digest: digest.to_string(),
                            actual,
                        },
                        other => other.into(),
                    })
            }
        }
    }
}

fn copy_verified(
    store: &str,
    source: &Path,
    digest: &Digest,
    dest: &Path,
) -> Result<(), ArtifactError> {
    match layout::copy_verified(source, dest, digest) {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(actual)) => Err(ArtifactError::Corrupt {
            store: store.into(),
            digest: digest.to_string(),
            actual: actual.to_string(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !source.exists() => {
            Err(ArtifactError::Missing {
                store: store.into(),
                digest: digest.to_string(),
            })
        }
        Err(e) => Err(io(format!(
            "copying {} to {}",
            source.display(),
            dest.display()
        ))(e)),
    }
}
