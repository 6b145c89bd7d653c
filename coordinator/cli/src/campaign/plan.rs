//! A campaign's plan: the DAG of farm jobs (bases first, then per domain what its source type
//! needs, then copies to every other registry) and, per domain, where its new image comes from.
//! Job keys are stable (`base/NAME`, `domain/NS/NAME`, `copy/…`), so resubmitting the same file
//! names the same jobs.

use super::file::{CampaignFile, SourceType};
use patchfarm_engine::image::{ImageRef, Platform};
use patchfarm_engine::opatch::CatalogChoice;
use patchfarm_engine::recipe::aux_refresh::AuxRefreshRequest;
use patchfarm_engine::recipe::create::{CreateRequest, WdtRequest};
use patchfarm_engine::recipe::domain::{DomainBuild, WdtOperation};
use patchfarm_engine::recipe::patching::PatchRequest;
use patchfarm_engine::recipe::rebase::RebaseRequest;
use patchfarm_engine::recipe::update::UpdateRequest;
use patchfarm_jobs::{defaults, CopyJob, Job, RebaseJob, RebaseTarget};
use serde::Serialize;
use std::collections::HashMap;

/// A campaign file whose jobs cannot be formed (an image name its templates produce is invalid).
#[derive(Debug, thiserror::Error)]
#[error("campaign {campaign}: job {key}: {reason}")]
pub struct PlanError {
    pub campaign: String,
    pub key: String,
    pub reason: String,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlannedJob {
    pub key: String,
    /// The verb (`create`, `rebase`, `copy`).
    pub kind: String,
    /// The typed job submitted to the farm.
    #[serde(skip)]
    pub job: Job,
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
    /// The job that builds the domain's new image: its own rebase, or the base.
    pub image_from: String,
    /// The job whose pushed reference becomes the domain's `spec.image`: `image_from`'s copy
    /// in the campaign registry the domain pulls from today (a regional mirror), else
    /// `image_from` itself.
    pub pulled_from: String,
    /// What happens to the domain's image and why.
    pub action: String,
    pub auxiliary_images: Vec<String>,
    /// The auxiliary images rebuilt with the campaign's `wdtVersion`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub auxiliary_refresh: Vec<AuxRefresh>,
    /// The Domain's own pull secrets (`domainsFrom`): they must reach the registry it pulls from.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub image_pull_secrets: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restart_version: Option<String>,
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub labels: std::collections::BTreeMap<String, String>,
    /// The Domain resource as exported (`domainsFrom`): patches are checked against it.
    #[serde(skip)]
    pub manifest: Option<serde_json::Value>,
}

/// One auxiliary image of a domain moved to the campaign's WDT release.
#[derive(Clone, Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AuxRefresh {
    /// Its place in `spec.configuration.model.auxiliaryImages`.
    pub index: usize,
    pub old_image: String,
    /// The job whose pushed reference replaces it: the refresh's copy in the registry the
    /// domain pulls it from, else the refresh itself.
    pub pulled_from: String,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    pub campaign: String,
    pub registries: Vec<String>,
    pub jobs: Vec<PlannedJob>,
    pub domains: Vec<DomainPlan>,
    /// Domain resources the campaign leaves alone, with why.
    pub skipped: Vec<super::file::SkippedDomain>,
    /// The waves the domains roll in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollout: Option<super::waves::Rollout>,
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

/// An image reference the plan composed, or an error naming the job.
fn reference(file: &CampaignFile, key: &str, value: &str) -> Result<ImageRef, PlanError> {
    value.parse().map_err(|e| PlanError {
        campaign: file.name.clone(),
        key: key.to_string(),
        reason: format!("{e}"),
    })
}

fn default_platform() -> Platform {
    defaults::PLATFORM
        .parse()
        .expect("the default platform parses")
}

fn planned(key: String, job: Job, after: Vec<String>) -> PlannedJob {
    PlannedJob {
        kind: job.verb().to_string(),
        inputs: job.inputs(),
        pushes: job.pushes().map(ToString::to_string).unwrap_or_default(),
        key,
        job,
        after,
    }
}

/// The copy jobs that put `path` (REPOSITORY:TAG) in every registry after the first.
fn copies(
    file: &CampaignFile,
    key: &str,
    path: &str,
    jobs: &mut Vec<PlannedJob>,
) -> Result<(), PlanError> {
    let primary = format!("{}/{path}", file.registries[0]);
    for (i, registry) in file.registries.iter().enumerate().skip(1) {
        let copy_key = format!("copy/{key}/{i}");
        let job = Job::Copy(CopyJob {
            from: reference(file, &copy_key, &primary)?,
            to: reference(file, &copy_key, &format!("{registry}/{path}"))?,
            platform: default_platform(),
        });
        jobs.push(planned(copy_key, job, vec![key.to_string()]));
    }
    Ok(())
}

/// A base's `REPOSITORY:TAG`, its template filled: `{campaign}`, `{base}`, `{version}`.
fn base_path(file: &CampaignFile, base: &super::file::Base) -> String {
    base.tag
        .replace("{campaign}", &file.name)
        .replace("{base}", &base.name)
        .replace("{version}", &base.version)
}

/// `image` with the campaign registry it comes from replaced by a placeholder host that
/// `campaign_tag` drops (`registry.us.example.com/mirror/domains/x:1` under
/// `registry.us.example.com/mirror` → `registry.invalid/domains/x:1`), else `image` unchanged:
/// the new image then sits at the same repository under every registry of the campaign.
fn relative_to_registry(file: &CampaignFile, image: &str) -> String {
    match pulls_from(file, image) {
        Some(i) => format!(
            "registry.invalid/{}",
            &image[file.registries[i].len() + 1..]
        ),
        None => image.to_string(),
    }
}

/// The campaign registry (its index) `image` comes from today: the longest that prefixes it.
fn pulls_from(file: &CampaignFile, image: &str) -> Option<usize> {
    super::file::registry_index(&file.registries, image)
}

fn domain_plan(
    file: &CampaignFile,
    domain: &super::file::Domain,
    source_type: SourceType,
    image_from: String,
    action: &str,
) -> DomainPlan {
    // `copies` names a job's copy into registry `i` `copy/KEY/i`; the primary holds the original.
    let pulled_from = match pulls_from(file, &domain.image) {
        Some(i) if i > 0 => format!("copy/{image_from}/{i}"),
        _ => image_from.clone(),
    };
    DomainPlan {
        pulled_from,
        name: domain.name.clone(),
        namespace: domain.namespace.clone(),
        domain_resource: domain.resource().to_string(),
        domain_home_source_type: source_type,
        old_image: domain.image.clone(),
        image_from,
        action: action.to_string(),
        auxiliary_images: domain.auxiliary_images.clone(),
        auxiliary_refresh: Vec::new(),
        image_pull_secrets: domain.image_pull_secrets.clone(),
        restart_version: domain.restart_version.clone(),
        labels: domain.labels.clone(),
        manifest: domain.manifest.clone(),
    }
}

/// The jobs that move `domain`'s auxiliary images to `version` (one per image, shared by every
/// domain that uses it), and where each domain finds its new one.
fn refresh_aux_images(
    file: &CampaignFile,
    domain: &super::file::Domain,
    version: &str,
    jobs: &mut Vec<PlannedJob>,
    refreshed: &mut HashMap<String, String>,
) -> Result<Vec<AuxRefresh>, PlanError> {
    let mut out = Vec::new();
    for (index, aux) in domain.auxiliary_images.iter().enumerate() {
        let key = match refreshed.get(aux) {
            Some(key) => key.clone(),
            None => {
                let key = format!("aux/{}/{}/{index}", domain.namespace, domain.name);
                let path = campaign_tag(&relative_to_registry(file, aux), &file.name);
                let job = Job::RefreshAuxImage(AuxRefreshRequest {
                    source: reference(file, &key, aux)?,
                    tag: reference(file, &key, &format!("{}/{path}", file.registries[0]))?,
                    wdt_version: version.to_string(),
                    platform: default_platform(),
                });
                jobs.push(planned(key.clone(), job, Vec::new()));
                copies(file, &key, &path, jobs)?;
                refreshed.insert(aux.clone(), key.clone());
                key
            }
        };
        let pulled_from = match pulls_from(file, aux) {
            Some(i) if i > 0 => format!("copy/{key}/{i}"),
            _ => key,
        };
        out.push(AuxRefresh {
            index,
            old_image: aux.clone(),
            pulled_from,
        });
    }
    Ok(out)
}

/// The plan of a valid campaign file.
pub fn plan(file: &CampaignFile) -> Result<Plan, PlanError> {
    let primary = &file.registries[0];
    let mut jobs = Vec::new();
    for base in &file.bases {
        let key = format!("base/{}", base.name);
        let path = base_path(file, base);
        let choice = if base.recommended_patches {
            Some(CatalogChoice::Recommended)
        } else if base.latest_psu {
            Some(CatalogChoice::LatestPsu)
        } else {
            None
        };
        let job = Job::Create(CreateRequest {
            tag: reference(file, &key, &format!("{primary}/{path}"))?,
            from_image: reference(file, &key, &base.from_image)?,
            kind: base.kind.clone(),
            version: base.version.clone(),
            jdk_version: base.jdk_version.clone(),
            patches: PatchRequest {
                ids: base.patches.clone(),
                catalog: choice
                    .zip(file.patch_catalog.as_ref().map(Into::into))
                    .map(|(c, p)| (p, c)),
                ..Default::default()
            },
            chown: defaults::CHOWN.into(),
            wdt: WdtRequest {
                version: defaults::WDT_VERSION.into(),
                ..Default::default()
            },
            target: Default::default(),
            additional_files: Vec::new(),
            platforms: vec![default_platform()],
            build_commands: None,
            installer_options: Default::default(),
            step_network: false,
            package_manager: Default::default(),
        });
        jobs.push(planned(key.clone(), job, Vec::new()));
        copies(file, &key, &path, &mut jobs)?;
    }

    let mut domains = Vec::new();
    // Rebase target path -> the job that pushes it and its base.
    let mut rebased: HashMap<String, (String, String)> = HashMap::new();
    // Auxiliary image -> the job that refreshes it.
    let mut refreshed: HashMap<String, String> = HashMap::new();
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
            SourceType::DomainInImage if domain.model.is_some() => {
                Some("built: WDT creates the domain from its model on the new base")
            }
            SourceType::DomainInImage => Some("rebase: the domain home moves onto the new base"),
            SourceType::ModelInImage if domain.auxiliary_images.is_empty() => {
                Some("model-only rebase: WDT and the model move onto the new base")
            }
            _ => None,
        };
        let (image_from, action) = match rebase {
            Some(action) => {
                let key = format!("domain/{}/{}", domain.namespace, domain.name);
                let path = campaign_tag(&relative_to_registry(file, &domain.image), &file.name);
                // Domains running the same image onto the same base share one rebase (its tag is
                // the same): two jobs would push one tag at once.
                match rebased.get(&path) {
                    Some((first, first_base)) if *first_base == base_key => {
                        domains.push(domain_plan(file, domain, source_type, first.clone(), action));
                        continue;
                    }
                    Some((first, _)) => {
                        return Err(PlanError {
                            campaign: file.name.clone(),
                            key,
                            reason: format!(
                                "its image {} is also {first}'s, on another base: both new images would be tagged {path}",
                                domain.image
                            ),
                        })
                    }
                    None => {
                        rebased.insert(path.clone(), (key.clone(), base_key.clone()));
                    }
                }
                let tag = reference(file, &key, &format!("{primary}/{path}"))?;
                let base_image = reference(file, &key, &base_tag)?;
                let job = match &domain.model {
                    Some(model) => built_domain(model, tag, base_image),
                    None => rebase_domain(reference(file, &key, &domain.image)?, tag, base_image),
                };
                jobs.push(planned(key.clone(), job, vec![base_key.clone()]));
                copies(file, &key, &path, &mut jobs)?;
                (key, action.to_string())
            }
            None => (
                base_key,
                match (&file.wdt_version, source_type) {
                    (_, SourceType::PersistentVolume) => {
                        "image reference only: the domain home is on a persistent volume".into()
                    }
                    (Some(version), _) => format!("image reference; auxiliary images move to WDT {version}, their models unchanged"),
                    (None, _) => "image reference only: auxiliary images are unchanged".into(),
                },
            ),
        };
        let mut planned_domain = domain_plan(file, domain, source_type, image_from, &action);
        if let (Some(version), SourceType::ModelInImage) = (&file.wdt_version, source_type) {
            planned_domain.auxiliary_refresh =
                refresh_aux_images(file, domain, version, &mut jobs, &mut refreshed)?;
        }
        domains.push(planned_domain);
    }
    Ok(Plan {
        campaign: file.name.clone(),
        registries: file.registries.clone(),
        jobs,
        domains,
        skipped: file.skipped.clone(),
        rollout: file.rollout.clone(),
    })
}

/// The domain's image moved onto the new base: its domain's layers over the base's.
fn rebase_domain(source: ImageRef, tag: ImageRef, base: ImageRef) -> Job {
    Job::Rebase(RebaseJob {
        request: RebaseRequest {
            source,
            tag,
            old_base: None,
            force: false,
            copy_domain: false,
            platform: default_platform(),
            build_commands: None,
            step_network: false,
        },
        target: RebaseTarget::Image(base),
    })
}

/// The domain WDT creates from `model` on the new base: an `update --wdtOperation CREATE`.
fn built_domain(model: &super::file::DomainModel, tag: ImageRef, base: ImageRef) -> Job {
    let paths = |files: &[String]| files.iter().map(Into::into).collect();
    Job::Update(UpdateRequest {
        tag,
        from_image: base,
        patches: PatchRequest::default(),
        chown: None,
        wdt: WdtRequest {
            models: paths(&model.files),
            archives: paths(&model.archives),
            variables: paths(&model.variables),
            version: defaults::WDT_VERSION.into(),
            domain: Some(DomainBuild {
                operation: WdtOperation::Create,
                domain_home: model.domain_home.clone(),
                domain_type: model.domain_type.clone(),
                java_options: None,
                run_rcu: false,
                passphrase: None,
            }),
            ..Default::default()
        },
        platform: default_platform(),
        target: Default::default(),
        build_commands: None,
        step_network: false,
        kind: None,
    })
}
