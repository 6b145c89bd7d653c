//! Signatures attached the way cosign attaches them: a manifest tagged `sha256-<hex>.sig` in the
//! signed image's repository, one layer per signature (the payload as the blob, the signature in
//! an annotation). Signing again with the same key replaces that key's signature for the same
//! payload; signatures by other keys stay. Every attachment manifest also names the image as its
//! OCI 1.1 `subject`, so registries with the referrers API list it (`super::referrers` keeps
//! the tag-schema index for those without).

use super::{
    payload, read_payload, PublicKey, SignError, Signer, PAYLOAD_MEDIA_TYPE, SIGNATURE_ANNOTATION,
};
use crate::digest::Digest;
use crate::image::manifest::{Descriptor, ManifestKind};
use crate::image::{media, ImageRef, Manifest, RegistryRef};
use crate::transport::push::{self, BlobLocations, BlobOrigin, OutBlob, PushedImage};
use crate::transport::registry::Registries;
use crate::transport::TransportError;
use base64::Engine as _;
use std::collections::BTreeMap;

#[derive(Debug, thiserror::Error)]
pub enum AttachError {
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error(transparent)]
    Sign(#[from] SignError),
    #[error("{image}: {reason}")]
    Unverified { image: String, reason: String },
}

/// The tag cosign gives the signatures of manifest `digest`.
pub fn signature_tag(digest: &Digest) -> String {
    format!("sha256-{}.sig", digest.hex())
}

fn at_tag(image: &RegistryRef, tag: String) -> RegistryRef {
    RegistryRef {
        tag: Some(tag),
        digest: None,
        ..image.clone()
    }
}

/// The signature layers already at `tag`, each with its payload bytes (none when the tag is new).
async fn existing(
    registries: &Registries,
    at: &RegistryRef,
) -> Result<Vec<(Descriptor, Vec<u8>)>, TransportError> {
    let client = registries.client(&at.registry).await;
    let bytes = match client.get_manifest(at).await {
        Ok((bytes, _)) => bytes,
        Err(TransportError::NotFound { .. }) => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let ManifestKind::Image(manifest) =
        ManifestKind::parse(&bytes, &at.to_string()).map_err(|e| TransportError::Protocol {
            registry: at.registry.clone(),
            what: format!("reading {at}"),
            reason: e.to_string(),
        })?
    else {
        return Ok(Vec::new());
    };
    let mut layers = Vec::new();
    for layer in manifest
        .layers
        .into_iter()
        .filter(|l| l.media_type == PAYLOAD_MEDIA_TYPE)
    {
        let body = client.get_blob_bytes(&at.repository, &layer.digest).await?;
        layers.push((layer, body));
    }
    Ok(layers)
}

fn decoded_signature(layer: &Descriptor) -> Option<Vec<u8>> {
    layer
        .annotations
        .get(SIGNATURE_ANNOTATION)
        .and_then(|s| base64::engine::general_purpose::STANDARD.decode(s).ok())
}

/// cosign's artifact type for signature manifests.
pub const SIGNATURE_ARTIFACT: &str = "application/vnd.dev.cosign.artifact.sig.v1+json";

/// An attachment manifest as pushed: where it is tagged, and its descriptor (with its artifact
/// type and which attachment it is) for the referrers index.
#[derive(Clone, Debug)]
pub struct Attached {
    pub reference: String,
    pub descriptor: Descriptor,
}

/// Signs manifest `subject` as pushed to `image`'s repository and attaches the signature.
pub async fn sign(
    registries: &Registries,
    locations: &BlobLocations,
    image: &RegistryRef,
    subject: &Descriptor,
    signer: &Signer,
) -> Result<Attached, AttachError> {
    let digest = &subject.digest;
    let identity = format!("{}/{}", image.registry, image.repository);
    let body = payload(&identity, digest);
    let signature = signer.sign(&body)?;
    let ours = signer.public_key();
    let at = at_tag(image, signature_tag(digest));
    let mut layers: Vec<OutBlob> = existing(registries, &at)
        .await?
        .into_iter()
        // Our own earlier signature of this payload is replaced, not piled up.
        .filter(|(layer, old)| {
            !(old == &body && decoded_signature(layer).is_some_and(|s| ours.verifies(old, &s)))
        })
        .map(|(descriptor, old)| OutBlob {
            descriptor,
            origin: BlobOrigin::Memory(old.into()),
        })
        .collect();
    let mut descriptor = Descriptor::new(
        PAYLOAD_MEDIA_TYPE,
        Digest::of_bytes(&body),
        body.len() as u64,
    );
    descriptor.annotations = BTreeMap::from([(
        SIGNATURE_ANNOTATION.to_string(),
        base64::engine::general_purpose::STANDARD.encode(&signature),
    )]);
    layers.push(OutBlob {
        descriptor,
        origin: BlobOrigin::Memory(body.into()),
    });
    let kind = ("sig", SIGNATURE_ARTIFACT);
    push_attachment(registries, locations, &at, layers, kind, subject).await
}

/// A document attached beside an image: the tag suffix (`sbom`, `att`), its media type (also
/// the manifest's artifact type), bytes and layer annotations.
pub struct Attachment {
    pub suffix: &'static str,
    pub media_type: &'static str,
    pub body: Vec<u8>,
    pub annotations: BTreeMap<String, String>,
}

/// Attaches `body` (of `media_type`) to manifest `subject` in `image`'s repository as the one
/// layer of the manifest tagged `sha256-<hex>.<suffix>` (cosign's `sbom` and `att` tags),
/// replacing what was there.
pub async fn attach_one(
    registries: &Registries,
    locations: &BlobLocations,
    image: &RegistryRef,
    subject: &Descriptor,
    attachment: Attachment,
) -> Result<Attached, AttachError> {
    let at = at_tag(
        image,
        format!("sha256-{}.{}", subject.digest.hex(), attachment.suffix),
    );
    let body = attachment.body;
    let mut descriptor = Descriptor::new(
        attachment.media_type,
        Digest::of_bytes(&body),
        body.len() as u64,
    );
    descriptor.annotations = attachment.annotations;
    let layers = vec![OutBlob {
        descriptor,
        origin: BlobOrigin::Memory(body.into()),
    }];
    let kind = (attachment.suffix, attachment.media_type);
    push_attachment(registries, locations, &at, layers, kind, subject).await
}

/// Pushes `layers` as a cosign-style attachment manifest at `at` that refers to `subject` (OCI
/// 1.1); `kind` is the attachment's tag suffix and artifact type.
async fn push_attachment(
    registries: &Registries,
    locations: &BlobLocations,
    at: &RegistryRef,
    layers: Vec<OutBlob>,
    (suffix, artifact_type): (&str, &str),
    subject: &Descriptor,
) -> Result<Attached, AttachError> {
    // cosign's config: one diffID per layer, nothing else.
    let config_bytes = serde_json::to_vec(&serde_json::json!({
        "architecture": "",
        "os": "",
        "config": {},
        "created": "0001-01-01T00:00:00Z",
        "history": [{"created": "0001-01-01T00:00:00Z"}],
        "rootfs": {"type": "layers", "diff_ids": layers.iter().map(|l| l.descriptor.digest.to_string()).collect::<Vec<_>>()},
    }))
    .expect("a JSON value serializes");
    let manifest = Manifest {
        media_type: media::OCI_MANIFEST.into(),
        config: Descriptor::new(
            media::OCI_CONFIG,
            Digest::of_bytes(&config_bytes),
            config_bytes.len() as u64,
        ),
        layers: layers.iter().map(|l| l.descriptor.clone()).collect(),
        annotations: BTreeMap::new(),
    };
    let value = PushedImage {
        manifest_bytes: manifest.to_referrer_bytes(artifact_type, subject),
        manifest_media_type: media::OCI_MANIFEST.into(),
        config_bytes,
        layers,
    };
    push::push(
        &value,
        &ImageRef::Registry(at.clone()),
        registries,
        locations,
    )
    .await?;
    let mut descriptor = Descriptor::new(
        media::OCI_MANIFEST,
        value.manifest_digest(),
        value.manifest_bytes.len() as u64,
    );
    descriptor.artifact_type = Some(artifact_type.into());
    descriptor.annotations = BTreeMap::from([(
        super::referrers::ATTACHMENT_ANNOTATION.to_string(),
        suffix.to_string(),
    )]);
    Ok(Attached {
        reference: at.to_string(),
        descriptor,
    })
}

/// Where an image's sigstore attachments are, those that exist.
#[derive(Clone, Debug, Default, serde::Serialize, PartialEq, Eq)]
pub struct Attachments {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sbom: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provenance: Option<String>,
    /// The OCI 1.1 referrers index in the tag schema (`sha256-<hex>`) listing them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub referrers: Option<String>,
}

impl Attachments {
    pub fn is_empty(&self) -> bool {
        self == &Attachments::default()
    }
}

/// Looks for the signature, SBOM and provenance of manifest `digest` in `image`'s repository.
pub async fn find(
    registries: &Registries,
    image: &RegistryRef,
    digest: &Digest,
) -> Result<Attachments, TransportError> {
    let client = registries.client(&image.registry).await;
    let mut found = Attachments::default();
    for (suffix, slot) in [
        (".sig", &mut found.signature),
        (".sbom", &mut found.sbom),
        (".att", &mut found.provenance),
        ("", &mut found.referrers),
    ] {
        let at = at_tag(image, format!("sha256-{}{suffix}", digest.hex()));
        match client.get_manifest(&at).await {
            Ok(_) => *slot = Some(at.to_string()),
            Err(TransportError::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(found)
}

/// What `verify` found.
#[derive(Clone, Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Verified {
    pub image: String,
    pub digest: String,
    pub signature: String,
    /// Signatures by `key` for this digest and repository.
    pub valid: usize,
    /// Signatures at the tag that are not (another key, another image).
    pub others: usize,
}

/// Checks that `image` (its manifest as the reference names it) carries a signature by `key`
/// naming its digest and repository.
pub async fn verify(
    registries: &Registries,
    image: &RegistryRef,
    key: &PublicKey,
) -> Result<Verified, AttachError> {
    let client = registries.client(&image.registry).await;
    let (_, digest) = client.get_manifest(image).await?;
    let at = at_tag(image, signature_tag(&digest));
    let layers = existing(registries, &at).await?;
    let unverified = |reason: String| AttachError::Unverified {
        image: image.to_string(),
        reason,
    };
    if layers.is_empty() {
        return Err(unverified(format!("no signature ({at} does not exist)")));
    }
    let identity = format!("{}/{}", image.registry, image.repository);
    let mut valid = 0;
    for (layer, body) in &layers {
        let by_key = decoded_signature(layer).is_some_and(|s| key.verifies(body, &s));
        if by_key && read_payload(body)? == (identity.clone(), digest.to_string()) {
            valid += 1;
        }
    }
    if valid == 0 {
        return Err(unverified(format!(
            "{} signature(s) at {at}, none by this key for {identity}@{digest}",
            layers.len()
        )));
    }
    Ok(Verified {
        image: image.to_string(),
        digest: digest.to_string(),
        signature: at.to_string(),
        valid,
        others: layers.len() - valid,
    })
}
