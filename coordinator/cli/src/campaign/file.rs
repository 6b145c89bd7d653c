//! The campaign file (YAML): what a quarter's rebuild covers — the new bases, the domains that run
//! on them, where images go. Validation reports every problem at once, each naming its place.

use patchfarm_engine::cache::CacheKey;
use patchfarm_engine::image::ImageRef;
use patchfarm_engine::layer::Compression;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CampaignFile {
    pub name: String,
    /// The fleet's patch catalog (what `recommendedPatches`/`latestPSU` resolve against); a path
    /// the agents can read.
    #[serde(default)]
    pub patch_catalog: Option<String>,
    /// Push registries with a repository prefix (`HOST[:PORT][/PREFIX]`); the first is where
    /// images are built, the others receive copies (same digest).
    pub registries: Vec<String>,
    pub bases: Vec<Base>,
    #[serde(default)]
    pub domains: Vec<Domain>,
    /// Files of the cluster's own Domain resources (`kubectl get domains -A -o yaml`), read when
    /// the campaign file is loaded: their domains join `domains`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub domains_from: Vec<super::domains_from::DomainsFrom>,
    /// Domain resources `domainsFrom` found and the campaign cannot handle, with why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<SkippedDomain>,
    #[serde(default)]
    pub limits: Limits,
    /// The order the domains roll in (see `waves`); one wave of all without it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<super::waves::Rollout>,
    /// The WDT release the quarter moves to: every Model-in-Image domain's auxiliary images are
    /// rebuilt with it (models byte for byte the same), cached as `wdt_<version>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wdt_version: Option<String>,
    /// Public key files (PEM, relative to the campaign file): every base's `fromImage` must be
    /// signed by one of them, or its build is refused.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub require_signed_bases: Vec<String>,
    /// Those keys' PEM text, read when the file is loaded (stored with the campaign).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub base_keys: Vec<String>,
    /// How the layers the campaign's jobs write are compressed: `gzip` (the default) or `zstd`.
    #[serde(default, skip_serializing_if = "Compression::is_gzip")]
    pub compression: Compression,
}

/// A Domain resource the campaign leaves alone, and why.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SkippedDomain {
    pub namespace: String,
    pub name: String,
    pub reason: String,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Base {
    pub name: String,
    #[serde(rename = "type", default = "default_type")]
    pub kind: String,
    pub version: String,
    pub jdk_version: String,
    pub from_image: String,
    #[serde(default)]
    pub recommended_patches: bool,
    #[serde(rename = "latestPSU", default)]
    pub latest_psu: bool,
    #[serde(default)]
    pub patches: Vec<String>,
    /// Repository and tag under each registry, e.g. `wls/base:12.2.1.4-2026-10`.
    pub tag: String,
}

fn default_type() -> String {
    "wls".into()
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub enum SourceType {
    /// Reports use the operator's names (`spec.domainHomeSourceType`); patchfarm's older ones
    /// are still read.
    #[serde(rename = "Image", alias = "DomainInImage")]
    DomainInImage,
    #[serde(rename = "FromModel", alias = "ModelInImage")]
    ModelInImage,
    #[serde(rename = "PersistentVolume", alias = "DomainInPV")]
    PersistentVolume,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Domain {
    pub name: String,
    #[serde(default = "default_namespace")]
    pub namespace: String,
    /// The Domain resource's name, if not `name`.
    #[serde(default)]
    pub domain_resource: Option<String>,
    /// Kept as text so a bad value is reported with the others, not as a parse failure.
    pub domain_home_source_type: String,
    /// The image the domain runs today.
    pub image: String,
    pub base: String,
    #[serde(default)]
    pub auxiliary_images: Vec<String>,
    /// A Domain-in-Image domain WDT builds from this model on the new base (its image need
    /// not exist yet: `image` names where it goes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<DomainModel>,
    /// The Domain resource as the cluster exported it (`domainsFrom`): `--gitops-out` writes it
    /// back with only its image changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest: Option<serde_json::Value>,
    /// `spec.imagePullSecrets` names: the report says which secret each domain pulls its new
    /// image with (a mirror's too).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub image_pull_secrets: Vec<String>,
    /// `spec.restartVersion` as the campaign found it: left alone, since a new image by digest
    /// already rolls the servers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_version: Option<String>,
    /// `metadata.labels` (waves and reports group by them).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub labels: std::collections::BTreeMap<String, String>,
}

/// The campaign registry (its index in `registries`) `image` comes from: the longest
/// `HOST[:PORT][/PREFIX]` that prefixes it.
pub fn registry_index(registries: &[String], image: &str) -> Option<usize> {
    registries
        .iter()
        .enumerate()
        .filter(|(_, registry)| image.starts_with(&format!("{registry}/")))
        .max_by_key(|(_, registry)| registry.len())
        .map(|(i, _)| i)
}

/// The WDT inputs a domain is built from, files relative to the campaign file.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DomainModel {
    pub files: Vec<String>,
    #[serde(default)]
    pub archives: Vec<String>,
    #[serde(default)]
    pub variables: Vec<String>,
    #[serde(default = "default_domain_home")]
    pub domain_home: String,
    #[serde(default = "default_domain_type")]
    pub domain_type: String,
}

fn default_domain_home() -> String {
    patchfarm_engine::recipe::create::DOMAIN_HOME.into()
}

fn default_domain_type() -> String {
    "WLS".into()
}

impl DomainModel {
    /// Relative files made relative to the campaign file's directory, so the value read needs
    /// no working directory.
    fn anchor(&mut self, dir: &std::path::Path) {
        for file in self
            .files
            .iter_mut()
            .chain(&mut self.archives)
            .chain(&mut self.variables)
        {
            if !file.starts_with('/') {
                *file = dir.join(&*file).display().to_string();
            }
        }
    }
}

fn default_namespace() -> String {
    "default".into()
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Limits {
    #[serde(default = "default_parallel")]
    pub max_parallel_jobs: u32,
    #[serde(default = "default_retries")]
    pub retries: u32,
}

fn default_parallel() -> u32 {
    8
}
fn default_retries() -> u32 {
    3
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_parallel_jobs: default_parallel(),
            retries: default_retries(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CampaignFileError {
    #[error("{file}: not a campaign file: {reason}")]
    Syntax { file: String, reason: String },
    #[error("{file}: {} problem(s):\n  - {}", .problems.len(), .problems.join("\n  - "))]
    Invalid { file: String, problems: Vec<String> },
}

impl Domain {
    pub fn source_type(&self) -> Option<SourceType> {
        match self.domain_home_source_type.as_str() {
            // The operator's own names (`spec.domainHomeSourceType`) and patchfarm's older ones.
            "Image" | "DomainInImage" => Some(SourceType::DomainInImage),
            "FromModel" | "ModelInImage" => Some(SourceType::ModelInImage),
            "PersistentVolume" | "DomainInPV" => Some(SourceType::PersistentVolume),
            _ => None,
        }
    }

    pub fn resource(&self) -> &str {
        self.domain_resource.as_deref().unwrap_or(&self.name)
    }
}

/// DNS-1123 label, as Kubernetes names and campaign names are.
fn is_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

impl CampaignFile {
    /// Reads the campaign file at `path` (its `text`), its `domainsFrom` files (relative to it)
    /// too, and validates the whole; says whether it read any. The value holds every domain:
    /// written out as it is, it needs no other file.
    pub fn load(
        path: &std::path::Path,
        text: &str,
    ) -> Result<(CampaignFile, bool), CampaignFileError> {
        let file = path.display().to_string();
        let mut campaign: CampaignFile =
            serde_norway::from_str(text).map_err(|e| CampaignFileError::Syntax {
                file: file.clone(),
                reason: e.to_string(),
            })?;
        let mut problems = Vec::new();
        let dir = path.parent().unwrap_or_else(|| std::path::Path::new("."));
        for model in campaign.domains.iter_mut().filter_map(|d| d.model.as_mut()) {
            model.anchor(dir);
        }
        for key in &campaign.require_signed_bases {
            let at = dir.join(key);
            match std::fs::read_to_string(&at) {
                Ok(pem) => campaign.base_keys.push(pem),
                Err(e) => problems.push(format!("requireSignedBases: {}: {e}", at.display())),
            }
        }
        let sources = std::mem::take(&mut campaign.domains_from);
        for (i, from) in sources.iter().enumerate() {
            let at = super::domains_from::path(path, from);
            let read = std::fs::read_to_string(&at)
                .map_err(|e| format!("domainsFrom[{i}]: {}: {e}", at.display()))
                .and_then(|text| {
                    super::domains_from::read(from, &at.display().to_string(), &text)
                        .map_err(|e| format!("domainsFrom[{i}]: {e}"))
                });
            match read {
                Ok((domains, skipped)) => {
                    campaign.skipped.extend(skipped);
                    for domain in domains {
                        match registry_index(&campaign.registries, &domain.image) {
                            Some(_) => campaign.domains.push(domain),
                            // Its new image could go to none of the registries it is allowed
                            // to pull from: someone else builds it.
                            None => campaign.skipped.push(SkippedDomain {
                                reason: format!(
                                    "its image {} is in none of the campaign's registries ({})",
                                    domain.image,
                                    campaign.registries.join(", ")
                                ),
                                namespace: domain.namespace,
                                name: domain.name,
                            }),
                        }
                    }
                }
                Err(problem) => problems.push(problem),
            }
        }
        problems.extend(campaign.problems());
        if problems.is_empty() {
            let read_more = !sources.is_empty() || !campaign.base_keys.is_empty();
            Ok((campaign, read_more))
        } else {
            Err(CampaignFileError::Invalid { file, problems })
        }
    }

    /// Parses and validates `text` (read from `file`).
    pub fn parse(file: &str, text: &str) -> Result<CampaignFile, CampaignFileError> {
        let campaign: CampaignFile =
            serde_norway::from_str(text).map_err(|e| CampaignFileError::Syntax {
                file: file.into(),
                reason: e.to_string(),
            })?;
        let problems = campaign.problems();
        if problems.is_empty() {
            Ok(campaign)
        } else {
            Err(CampaignFileError::Invalid {
                file: file.into(),
                problems,
            })
        }
    }

    /// Everything wrong with the campaign, each naming where.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if !is_label(&self.name) {
            problems.push(format!(
                "name {:?}: use lowercase letters, digits, '-' and '.' (it becomes part of tags)",
                self.name
            ));
        }
        if self.registries.is_empty() {
            problems.push("registries: at least one push registry is needed".into());
        }
        for (i, registry) in self.registries.iter().enumerate() {
            if registry.starts_with("oci:") {
                problems.push(format!(
                    "registries[{i}] {registry:?}: a campaign pushes to registries, never to a path on the agents"
                ));
            } else if registry.contains("://")
                || registry.contains('@')
                || registry.ends_with('/')
                || registry.split('/').any(|part| part == "..")
            {
                problems.push(format!(
                    "registries[{i}] {registry:?}: expected HOST[:PORT][/PREFIX]"
                ));
            }
        }
        if self.limits.max_parallel_jobs == 0 {
            problems.push("limits.maxParallelJobs: must be 1 or more".into());
        }
        if self.limits.retries == 0 {
            problems.push("limits.retries: must be 1 or more (it counts attempts)".into());
        }
        let mut base_names = BTreeSet::new();
        for (i, base) in self.bases.iter().enumerate() {
            let at = format!("bases[{i}] ({})", base.name);
            if !base_names.insert(base.name.as_str()) {
                problems.push(format!("{at}: duplicate base name {:?}", base.name));
            }
            if base.from_image.parse::<ImageRef>().is_err() {
                problems.push(format!(
                    "{at}: fromImage {:?} is not an image reference",
                    base.from_image
                ));
            }
            for (k, patch) in base.patches.iter().enumerate() {
                let bare = !patch.is_empty() && patch.bytes().all(|b| b.is_ascii_digit());
                if let (false, Err(e)) = (bare, CacheKey::patch(patch)) {
                    problems.push(format!("{at}: patches[{k}]: {e}"));
                }
            }
            if !base.tag.contains(':')
                || base.tag.starts_with('/')
                || base.tag.split(['/', ':']).any(|part| part == "..")
            {
                problems.push(format!("{at}: tag {:?}: expected REPOSITORY:TAG", base.tag));
            }
            if (base.recommended_patches || base.latest_psu) && self.patch_catalog.is_none() {
                problems.push(format!(
                    "{at}: recommendedPatches/latestPSU need the campaign's patchCatalog"
                ));
            }
        }
        if !self.domains_from.is_empty() {
            problems.push(
                "domainsFrom: its files are read when the campaign file is loaded from disk (campaign plan|submit FILE)".into(),
            );
        } else if self.domains.is_empty() {
            problems.push("domains: the campaign covers no domain".into());
        }
        let mut domain_names = BTreeSet::new();
        for (i, domain) in self.domains.iter().enumerate() {
            let at = format!("domains[{i}] ({})", domain.name);
            if !is_label(&domain.name) || !is_label(&domain.namespace) {
                problems.push(format!(
                    "{at}: name and namespace must be Kubernetes names (lowercase, digits, '-')"
                ));
            }
            if let Some(resource) = domain.domain_resource.as_deref().filter(|r| !is_label(r)) {
                problems.push(format!(
                    "{at}: domainResource {resource:?} must be a Kubernetes name (lowercase, digits, '-', '.')"
                ));
            }
            if !domain_names.insert((domain.namespace.as_str(), domain.name.as_str())) {
                problems.push(format!(
                    "{at}: duplicate domain name {:?} in namespace {:?}",
                    domain.name, domain.namespace
                ));
            }
            if domain.source_type().is_none() {
                problems.push(format!(
                    "{at}: domainHomeSourceType {:?}: expected the operator's Image, FromModel or PersistentVolume (or DomainInImage, ModelInImage, DomainInPV)",
                    domain.domain_home_source_type
                ));
            }
            if !base_names.contains(domain.base.as_str()) {
                problems.push(format!(
                    "{at}: unknown base {:?} (bases: {})",
                    domain.base,
                    base_names.iter().copied().collect::<Vec<_>>().join(", ")
                ));
            }
            match domain.image.parse::<ImageRef>() {
                Ok(ImageRef::Registry(_)) => {}
                _ => problems.push(format!(
                    "{at}: image {:?} is not a registry image reference",
                    domain.image
                )),
            }
            for (k, aux) in domain.auxiliary_images.iter().enumerate() {
                if aux.parse::<ImageRef>().is_err() {
                    problems.push(format!(
                        "{at}: auxiliaryImages[{k}] {aux:?} is not an image reference"
                    ));
                }
            }
            if let Some(model) = &domain.model {
                if domain.source_type() != Some(SourceType::DomainInImage) {
                    problems.push(format!("{at}: model: WDT builds a domain into the image for domainHomeSourceType Image (DomainInImage) only"));
                }
                if model.files.is_empty() {
                    problems.push(format!("{at}: model.files: name at least one WDT model"));
                }
                if !model.domain_home.starts_with('/') {
                    problems.push(format!(
                        "{at}: model.domainHome {:?}: must be an absolute path",
                        model.domain_home
                    ));
                }
            }
            if !domain.auxiliary_images.is_empty()
                && domain.source_type() != Some(SourceType::ModelInImage)
            {
                problems.push(format!(
                    "{at}: auxiliaryImages only go with domainHomeSourceType ModelInImage"
                ));
            }
        }
        if let Some(rollout) = &self.rollout {
            problems.extend(rollout.problems());
        }
        for (i, pem) in self.base_keys.iter().enumerate() {
            if let Err(e) = patchfarm_engine::sign::PublicKey::from_pem(pem.as_bytes(), "key") {
                problems.push(format!("requireSignedBases[{i}]: {e}"));
            }
        }
        if let Some(version) = &self.wdt_version {
            if let Err(e) = CacheKey::installer("wdt", version, None) {
                problems.push(format!("wdtVersion {version:?}: {e}"));
            }
        }
        problems
    }
}
