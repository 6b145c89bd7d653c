//! `copy`: an image from one place to another, byte for byte (same manifest digest) — how a
//! built image reaches every regional registry. Blobs are mounted or streamed, never re-compressed.

use super::build::fetch_base;
use super::{build, Engine, RecipeError};
use crate::image::{ImageRef, Platform};
use crate::transport::push::{BlobOrigin, OutBlob};
use crate::transport::{PushReport, PushedImage};

/// Copies the `platform` image of `from` to `to`, keeping its manifest digest.
pub async fn copy(
    engine: &Engine,
    from: &ImageRef,
    to: &ImageRef,
    platform: &Platform,
) -> Result<PushReport, RecipeError> {
    let source = fetch_base(engine, from, platform).await?;
    let image = PushedImage {
        manifest_bytes: source.manifest_bytes.clone(),
        manifest_media_type: source.manifest.media_type.clone(),
        config_bytes: source.config_bytes.clone(),
        layers: source
            .manifest
            .layers
            .iter()
            .map(|d| OutBlob {
                descriptor: d.clone(),
                origin: BlobOrigin::Remote(source.source.clone()),
            })
            .collect(),
    };
    build::publish(engine, &image, to).await
}
