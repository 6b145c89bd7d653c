//! Manifests and indexes (OCI and Docker schema 2), parsed with oci-spec into small owned values.

use super::media;
use super::platform::Platform;
use crate::digest::Digest;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("{what} is not a valid image manifest or index: {reason}")]
    Invalid { what: String, reason: String },
    #[error("{what} has no manifest for platform {platform} (it offers: {available})")]
    NoPlatform {
        what: String,
        platform: String,
        available: String,
    },
}

/// A content descriptor: what a manifest says about one blob.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Descriptor {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    pub platform: Option<Platform>,
    pub annotations: BTreeMap<String, String>,
    /// What an artifact manifest holds (OCI 1.1), as a referrers index lists it.
    pub artifact_type: Option<String>,
}

impl Descriptor {
    pub fn new(media_type: &str, digest: Digest, size: u64) -> Self {
        Descriptor {
            media_type: media_type.into(),
            digest,
            size,
            platform: None,
            annotations: BTreeMap::new(),
            artifact_type: None,
        }
    }

    pub fn to_json(&self) -> Value {
        let mut v = json!({
            "mediaType": self.media_type,
            "digest": self.digest.to_string(),
            "size": self.size,
        });
        if let Some(p) = &self.platform {
            let mut platform = json!({"os": p.os, "architecture": p.architecture});
            if let Some(variant) = &p.variant {
                platform["variant"] = json!(variant);
            }
            v["platform"] = platform;
        }
        if !self.annotations.is_empty() {
            v["annotations"] = json!(self.annotations);
        }
        if let Some(artifact_type) = &self.artifact_type {
            v["artifactType"] = json!(artifact_type);
        }
        v
    }
}

/// Whether the bytes held an image manifest or an index of them.
#[derive(Clone, Debug)]
// One value per fetched manifest, matched in many places: not worth a box.
#[allow(clippy::large_enum_variant)]
pub enum ManifestKind {
    Image(Manifest),
    Index(Vec<Descriptor>),
}

/// An image manifest: one config and its layers, bottom first.
#[derive(Clone, Debug)]
pub struct Manifest {
    pub media_type: String,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
    pub annotations: BTreeMap<String, String>,
}

fn convert(d: &oci_spec::image::Descriptor, what: &str) -> Result<Descriptor, ManifestError> {
    let digest = d
        .digest()
        .to_string()
        .parse::<Digest>()
        .map_err(|e| ManifestError::Invalid {
            what: what.into(),
            reason: e.to_string(),
        })?;
    Ok(Descriptor {
        media_type: d.media_type().to_string(),
        digest,
        size: d.size(),
        platform: d.platform().as_ref().map(|p| Platform {
            os: p.os().to_string(),
            architecture: p.architecture().to_string(),
            variant: p.variant().clone(),
        }),
        annotations: d
            .annotations()
            .as_ref()
            .map(|a| a.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default(),
        artifact_type: d.artifact_type().as_ref().map(|t| t.to_string()),
    })
}

impl ManifestKind {
    /// Parses manifest bytes; `what` names the source in errors.
    pub fn parse(bytes: &[u8], what: &str) -> Result<Self, ManifestError> {
        let invalid = |reason: String| ManifestError::Invalid {
            what: what.into(),
            reason,
        };
        let probe: Value = serde_json::from_slice(bytes).map_err(|e| invalid(e.to_string()))?;
        let media_type = probe
            .get("mediaType")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let is_index = media_type == media::OCI_INDEX
            || media_type == media::DOCKER_LIST
            || (media_type.is_empty() && probe.get("manifests").is_some());
        if is_index {
            let index = oci_spec::image::ImageIndex::from_reader(bytes)
                .map_err(|e| invalid(e.to_string()))?;
            let entries = index
                .manifests()
                .iter()
                .map(|d| convert(d, what))
                .collect::<Result<_, _>>()?;
            return Ok(ManifestKind::Index(entries));
        }
        if probe.get("schemaVersion").and_then(Value::as_u64) == Some(1) {
            return Err(invalid(
                "Docker schema 1 manifests are not supported; re-push the image with a current client".into(),
            ));
        }
        let manifest = oci_spec::image::ImageManifest::from_reader(bytes)
            .map_err(|e| invalid(e.to_string()))?;
        Ok(ManifestKind::Image(Manifest {
            media_type: if media_type.is_empty() {
                media::OCI_MANIFEST.into()
            } else {
                media_type.into()
            },
            config: convert(manifest.config(), what)?,
            layers: manifest
                .layers()
                .iter()
                .map(|d| convert(d, what))
                .collect::<Result<_, _>>()?,
            annotations: manifest
                .annotations()
                .as_ref()
                .map(|a| a.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                .unwrap_or_default(),
        }))
    }
}

/// Picks the index entry for `platform`, or says which platforms exist.
pub fn select_platform<'a>(
    entries: &'a [Descriptor],
    platform: &Platform,
    what: &str,
) -> Result<&'a Descriptor, ManifestError> {
    entries
        .iter()
        .find(|d| {
            d.platform
                .as_ref()
                .is_some_and(|p| platform.matches(&p.os, &p.architecture, p.variant.as_deref()))
        })
        .ok_or_else(|| ManifestError::NoPlatform {
            what: what.into(),
            platform: platform.to_string(),
            available: entries
                .iter()
                .filter_map(|d| d.platform.as_ref().map(|p| p.to_string()))
                .collect::<Vec<_>>()
                .join(", "),
        })
}

impl Manifest {
    /// The canonical OCI manifest JSON for this value (sorted keys, no whitespace).
    pub fn to_oci_bytes(&self) -> Vec<u8> {
        canonical_json(&Value::Object(self.to_oci_map()))
    }

    /// The manifest of an artifact that refers to `subject` (OCI 1.1): as
    /// [`Manifest::to_oci_bytes`] with `artifactType` and `subject` set.
    pub fn to_referrer_bytes(&self, artifact_type: &str, subject: &Descriptor) -> Vec<u8> {
        let mut v = self.to_oci_map();
        v.insert("artifactType".into(), json!(artifact_type));
        v.insert("subject".into(), subject.to_json());
        canonical_json(&Value::Object(v))
    }

    fn to_oci_map(&self) -> Map<String, Value> {
        let mut v = Map::new();
        v.insert("schemaVersion".into(), json!(2));
        v.insert("mediaType".into(), json!(media::OCI_MANIFEST));
        v.insert("config".into(), self.config.to_json());
        v.insert(
            "layers".into(),
            Value::Array(self.layers.iter().map(Descriptor::to_json).collect()),
        );
        if !self.annotations.is_empty() {
            v.insert("annotations".into(), json!(self.annotations));
        }
        v
    }
}

/// An OCI image index over per-platform manifests.
pub fn index_bytes(entries: &[Descriptor], annotations: &BTreeMap<String, String>) -> Vec<u8> {
    let mut v = json!({
        "schemaVersion": 2,
        "mediaType": media::OCI_INDEX,
        "manifests": entries.iter().map(Descriptor::to_json).collect::<Vec<_>>(),
    });
    if !annotations.is_empty() {
        v["annotations"] = json!(annotations);
    }
    canonical_json(&v)
}

/// JSON with sorted object keys and no insignificant whitespace, so equal values hash equal.
pub fn canonical_json(value: &Value) -> Vec<u8> {
    // serde_json's Map is a BTreeMap (no preserve_order feature): keys serialize sorted.
    serde_json::to_vec(value).expect("a serde_json::Value always serializes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_docker_schema2_and_lists() {
        let d = "sha256:".to_string() + &"a".repeat(64);
        let docker = json!({
            "schemaVersion": 2,
            "mediaType": media::DOCKER_MANIFEST,
            "config": {"mediaType": media::DOCKER_CONFIG, "size": 7, "digest": d},
            "layers": [{"mediaType": media::DOCKER_LAYER_GZIP, "size": 9, "digest": d}]
        });
        match ManifestKind::parse(docker.to_string().as_bytes(), "t").unwrap() {
            ManifestKind::Image(m) => {
                assert_eq!(m.layers.len(), 1);
                assert_eq!(m.media_type, media::DOCKER_MANIFEST);
            }
            _ => panic!("expected image"),
        }
        let list = json!({
            "schemaVersion": 2,
            "mediaType": media::DOCKER_LIST,
            "manifests": [
                {"mediaType": media::DOCKER_MANIFEST, "size": 1, "digest": d, "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
            ]
        });
        let ManifestKind::Index(entries) =
            ManifestKind::parse(list.to_string().as_bytes(), "t").unwrap()
        else {
            panic!("expected index");
        };
        assert!(select_platform(&entries, &"linux/arm64".parse().unwrap(), "t").is_ok());
        let err = select_platform(&entries, &Platform::default(), "img").unwrap_err();
        assert!(err.to_string().contains("linux/arm64/v8"), "{err}");
    }

    #[test]
    fn rejects_garbage_naming_the_source() {
        let err = ManifestKind::parse(b"{nope", "reg/x:1").unwrap_err();
        assert!(err.to_string().contains("reg/x:1"));
    }
}
