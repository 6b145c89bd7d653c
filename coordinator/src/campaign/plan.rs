//! A campaign's plan: the DAG of farm jobs (bases first, then per domain what its source type
//! needs, then copies to every other registry) and, per domain, where its new image comes from.
//! Job keys are stable (`base/NAME`, `domain/NS/NAME`, `copy/…`), so resubmitting the same file
//! names the same jobs.

use super::file::{CampaignFile, SourceType};
use patchfarm_engine::image::ImageRef;
use serde::Serialize;

#[derive(Clone, Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PlannedJob {
    pub key: String,
    pub kind: String,
    pub args: Vec<String>,
    /// Keys of the jobs that must succeed first.
    pub after: Vec<String>,
    /// Cache keys the job reads (cache affinity).
    pub inputs: Vec<String>,
    /// The image the job pushes.
    pub pushes: String,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DomainPlan {
    pub name: String,
    pub namespace: String,
    pub domain_resource: String,
    pub domain_home_source_type: SourceType,
    pub old_image: String,
    /// The job whose pushed image becomes the domain's `spec.image`: its own rebase, or the base.
    pub image_from: String,
    /// What happens to the domain's image and why.
    pub action: String,
    pub auxiliary_images: Vec<String>,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    pub campaign: String,
    pub registries: Vec<String>,
    pub jobs: Vec<PlannedJob>,
    pub domains: Vec<DomainPlan>,
}

/// `REPOSITORY:TAG` of `image` (registry dropped), re-tagged for the campaign.
fn campaign_tag(image: &str, campaign: &str) -> String {
    match image.parse::<ImageRef>() {
        Ok(ImageRef::Registry(r)) => {
            let tag = r.tag.unwrap_or_else(|| "latest".into());
            format!("{}:{tag}-{campaign}", r.repository)
        }
        _ => format!("{image}-{campaign}"),
    }
}

/// The copy jobs that put `path` (REPOSITORY:TAG) in every registry after the first.
fn copies(file: &CampaignFile, key: &str, path: &str, jobs: &mut Vec<PlannedJob>) {
    let primary = format!("{}/{path}", file.registries[0]);
    for (i, registry) in file.registries.iter().enumerate().skip(1) {
        let target = format!("{registry}/{path}");
        jobs.push(PlannedJob {
            key: format!("copy/{key}/{i}"),
            kind: "copy".into(),
            args: vec![primary.clone(), target.clone()],
            after: vec![key.to_string()],
            inputs: Vec::new(),
            pushes: target,
        });
    }
}

/// A base's `REPOSITORY:TAG`, its template filled: `{campaign}`, `{base}`, `{version}`.
fn base_path(file: &CampaignFile, base: &super::file::Base) -> String {
    base.tag
        .replace("{campaign}", &file.name)
        .replace("{base}", &base.name)
        .replace("{version}", &base.version)
}

/// The plan of a valid campaign file.
pub fn plan(file: &CampaignFile) -> Plan {
    let primary = &file.registries[0];
    let mut jobs = Vec::new();
    for base in &file.bases {
        let key = format!("base/{}", base.name);
        let path = base_path(file, base);
        let tag = format!("{primary}/{path}");
        let mut args = vec![
            "--tag".into(),
            tag.clone(),
            "--fromImage".into(),
            base.from_image.clone(),
            "--type".into(),
            base.kind.clone(),
            "--version".into(),
            base.version.clone(),
            "--jdkVersion".into(),
            base.jdk_version.clone(),
        ];
        if !base.patches.is_empty() {
            args.extend(["--patches".into(), base.patches.join(",")]);
        }
        if base.recommended_patches || base.latest_psu {
            args.push(if base.recommended_patches {
                "--recommendedPatches".into()
            } else {
                "--latestPSU".into()
            });
            if let Some(catalog) = &file.patch_catalog {
                args.extend(["--patchCatalog".into(), catalog.clone()]);
            }
        }
        let mut inputs = vec![
            format!("jdk_{}", base.jdk_version),
            format!("{}_{}", base.kind, base.version),
        ];
        inputs.extend(base.patches.iter().map(|p| {
            if p.bytes().all(|b| b.is_ascii_digit()) {
                format!("{p}_{}", base.version)
            } else {
                p.clone()
            }
        }));
        jobs.push(PlannedJob {
            key: key.clone(),
            kind: "create".into(),
            args,
            after: Vec::new(),
            inputs,
            pushes: tag,
        });
        copies(file, &key, &path, &mut jobs);
    }

    let mut domains = Vec::new();
    for domain in &file.domains {
        let source_type = domain.source_type().expect("validated");
        let base_key = format!("base/{}", domain.base);
        let base_tag = file
            .bases
            .iter()
            .find(|b| b.name == domain.base)
            .map(|b| format!("{primary}/{}", base_path(file, b)))
            .expect("validated");
        let rebase = match source_type {
            SourceType::DomainInImage => Some("rebase: the domain home moves onto the new base"),
            SourceType::ModelInImage if domain.auxiliary_images.is_empty() => {
                Some("model-only rebase: WDT and the model move onto the new base")
            }
            _ => None,
        };
        let (image_from, action) = match rebase {
            Some(action) => {
                let key = format!("domain/{}/{}", domain.namespace, domain.name);
                let path = campaign_tag(&domain.image, &file.name);
                let tag = format!("{primary}/{path}");
                jobs.push(PlannedJob {
                    key: key.clone(),
                    kind: "rebase".into(),
                    args: vec![
                        "--sourceImage".into(),
                        domain.image.clone(),
                        "--targetImage".into(),
                        base_tag.clone(),
                        "--tag".into(),
                        tag.clone(),
                    ],
                    after: vec![base_key.clone()],
                    inputs: Vec::new(),
                    pushes: tag,
                });
                copies(file, &key, &path, &mut jobs);
                (key, action.to_string())
            }
            None => (
                base_key,
                if source_type == SourceType::PersistentVolume {
                    "image reference only: the domain home is on a persistent volume".into()
                } else {
                    "image reference only: auxiliary images are unchanged".into()
                },
            ),
        };
        domains.push(DomainPlan {
            name: domain.name.clone(),
            namespace: domain.namespace.clone(),
            domain_resource: domain.resource().to_string(),
            domain_home_source_type: source_type,
            old_image: domain.image.clone(),
            image_from,
            action,
            auxiliary_images: domain.auxiliary_images.clone(),
        });
    }
    Plan {
        campaign: file.name.clone(),
        registries: file.registries.clone(),
        jobs,
        domains,
    }
}
