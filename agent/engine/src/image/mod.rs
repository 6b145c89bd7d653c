//! Image values: references, platforms, manifests, indexes and configs, parsed eagerly.

pub mod config;
pub mod manifest;
pub mod platform;
pub mod reference;

pub use config::ImageConfig;
pub use manifest::{Descriptor, Manifest, ManifestKind};
pub use platform::Platform;
pub use reference::{EngineRef, ImageRef, LayoutRef, RegistryRef};

/// Media types patchfarm reads and writes.
pub mod media {
    pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
    pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
    pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
    pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
    pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
    pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
    pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
    pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
    pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

    /// Everything `Accept` should list when fetching a manifest by tag.
    pub const ACCEPTED_MANIFESTS: &[&str] =
        &[OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST];

    /// OCI equivalent of a layer media type, so a new OCI manifest never mixes in Docker types.
    pub fn oci_layer_type(media_type: &str) -> &str {
        match media_type {
            DOCKER_LAYER_GZIP => OCI_LAYER_GZIP,
            other => other,
        }
    }
}
