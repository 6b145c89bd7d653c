//! The OCI 1.1 referrers of an image in the tag schema: an image index tagged `sha256-<hex>`
//! listing the manifests whose `subject` is that image, each with its artifact type — how
//! clients (oras, cosign, oci-client) find attachments on a registry without the referrers API
//! (distribution 2.x, Debian's docker-registry). On a registry with the API the index is kept
//! as well: it costs two requests, and the registry's own list answers API clients.

use crate::digest::Digest;
use crate::image::manifest::{index_bytes, Descriptor, ManifestKind};
use crate::image::{media, RegistryRef};
use crate::transport::registry::Registries;
use crate::transport::TransportError;
use std::collections::BTreeMap;

/// Marks the entries patchfarm keeps in a referrers index, by attachment (`sig`, `sbom`, `att`):
/// writing one again replaces that entry; entries of other tools stay.
pub const ATTACHMENT_ANNOTATION: &str = "org.patchfarm.attachment";

/// The tag the referrers of manifest `digest` are listed under.
pub fn referrers_tag(digest: &Digest) -> String {
    format!("sha256-{}", digest.hex())
}

fn index_ref(image: &RegistryRef, subject: &Digest) -> RegistryRef {
    RegistryRef {
        tag: Some(referrers_tag(subject)),
        digest: None,
        ..image.clone()
    }
}

/// What the referrers index of `subject` in `image`'s repository lists now (nothing when there
/// is none, or something other than an index is under its tag).
pub async fn listed(
    registries: &Registries,
    image: &RegistryRef,
    subject: &Digest,
) -> Result<Vec<Descriptor>, TransportError> {
    let at = index_ref(image, subject);
    let client = registries.client(&image.registry).await;
    match client.get_manifest(&at).await {
        Ok((bytes, _)) => match ManifestKind::parse(&bytes, &at.to_string()) {
            Ok(ManifestKind::Index(entries)) => Ok(entries),
            _ => Ok(Vec::new()),
        },
        Err(TransportError::NotFound { .. }) => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// Writes the referrers index of `subject` in `image`'s repository: `existing` (what
/// [`listed`] read) without patchfarm's earlier entries of the same attachments, plus
/// `attached` (attachment manifests whose subject is `subject`); returns its reference.
pub async fn record(
    registries: &Registries,
    image: &RegistryRef,
    subject: &Digest,
    existing: Vec<Descriptor>,
    attached: &[Descriptor],
) -> Result<String, TransportError> {
    let at = index_ref(image, subject);
    let replaced = |entry: &Descriptor| {
        entry
            .annotations
            .get(ATTACHMENT_ANNOTATION)
            .is_some_and(|kind| {
                attached
                    .iter()
                    .any(|new| new.annotations.get(ATTACHMENT_ANNOTATION) == Some(kind))
            })
            || attached.iter().any(|new| new.digest == entry.digest)
    };
    let mut entries: Vec<Descriptor> = existing.into_iter().filter(|e| !replaced(e)).collect();
    entries.extend(attached.iter().cloned());
    let index = index_bytes(&entries, &BTreeMap::new());
    let client = registries.client(&image.registry).await;
    client
        .put_manifest(
            &image.repository,
            at.tag.as_deref().expect("set above"),
            &index,
            media::OCI_INDEX,
        )
        .await?;
    Ok(at.to_string())
}
