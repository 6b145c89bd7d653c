//! A job's wire form (`patchfarm.v1.JobSpec`'s `verb`) to and from [`Job`]. Reading a spec is
//! validating it: every field is parsed as the engine will use it, and the first problem comes
//! back as a [`SpecError`] naming the field by its path in the message (`create.install.version`).

use crate::{CopyJob, Job, RebaseJob, RebaseTarget};
use install::{install, install_spec, patch_selection, patches};
use patchfarm_engine::cache::CacheKey;
use patchfarm_engine::image::{ImageRef, Platform};
use patchfarm_engine::installer::InstallerSet;
use patchfarm_engine::opatch::CatalogChoice;
use patchfarm_engine::recipe::aux::AuxRequest;
use patchfarm_engine::recipe::aux_refresh::AuxRefreshRequest;
use patchfarm_engine::recipe::create::CreateRequest;
use patchfarm_engine::recipe::oui::InstallerOptions;
use patchfarm_engine::recipe::owner::parse_chown;
use patchfarm_engine::recipe::packages::PackageManager;
use patchfarm_engine::recipe::patching::PatchRequest;
use patchfarm_engine::recipe::rebase::RebaseRequest;
use patchfarm_engine::recipe::steps::BuildCommands;
use patchfarm_engine::recipe::update::UpdateRequest;
use patchfarm_engine::recipe::Target;
use patchfarm_proto::v1 as wire;
use patchfarm_proto::v1::job_spec::Verb;
use std::path::PathBuf;
use wdt::{wdt, wdt_files};

mod install;
mod wdt;

/// The largest job spec the farm takes: specs are replicated, listed and leased whole, so one
/// oversized job must not stall the farm.
pub const MAX_SPEC_BYTES: usize = 256 * 1024;

/// A spec the farm cannot run: which field, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct SpecError {
    pub field: String,
    pub reason: String,
}

fn bad(field: impl Into<String>, reason: impl std::fmt::Display) -> SpecError {
    SpecError {
        field: field.into(),
        reason: reason.to_string(),
    }
}

fn image(field: &str, value: &str) -> Result<ImageRef, SpecError> {
    if value.is_empty() {
        return Err(bad(field, "is empty: name an image"));
    }
    value.parse().map_err(|e| bad(field, e))
}

/// An image the job pushes: it must say under which tag.
fn target(field: &str, value: &str) -> Result<ImageRef, SpecError> {
    let reference = image(field, value)?;
    let tagged = match &reference {
        ImageRef::Registry(r) => r.tag.is_some() && r.digest.is_none(),
        ImageRef::Layout(l) => l.tag.is_some(),
        ImageRef::Engine(_) => true,
    };
    if !tagged {
        return Err(bad(
            field,
            format!("{value:?} names no tag to push to: write {value}:TAG"),
        ));
    }
    Ok(reference)
}

fn platform(field: &str, value: &str) -> Result<Platform, SpecError> {
    value.parse().map_err(|e| bad(field, e))
}

fn required<'a, T>(field: &str, value: &'a Option<T>) -> Result<&'a T, SpecError> {
    value.as_ref().ok_or_else(|| bad(field, "is missing"))
}

fn not_empty<'a>(field: &str, value: &'a str) -> Result<&'a str, SpecError> {
    if value.is_empty() {
        Err(bad(field, "is empty"))
    } else {
        Ok(value)
    }
}

fn chown(field: &str, value: &str) -> Result<String, SpecError> {
    parse_chown(value).map_err(|e| bad(field, e))?;
    Ok(value.to_string())
}

fn paths(values: &[String]) -> Vec<PathBuf> {
    values.iter().map(PathBuf::from).collect()
}

fn strings(values: &[PathBuf]) -> Vec<String> {
    values.iter().map(|p| p.display().to_string()).collect()
}

fn create(spec: &wire::CreateJob) -> Result<CreateRequest, SpecError> {
    let mut request = install(
        "create.install",
        &spec.install,
        target("create.tag", &spec.tag)?,
        image("create.from_image", &spec.from_image)?,
    )?;
    for (i, file) in spec.additional_files.iter().enumerate() {
        let field = format!("create.additional_files[{i}]");
        not_empty(&format!("{field}.source"), &file.source)?;
        if !file.destination.starts_with('/') {
            return Err(bad(
                format!("{field}.destination"),
                format!(
                    "{:?} is not an absolute path in the image",
                    file.destination
                ),
            ));
        }
        request
            .additional_files
            .push((PathBuf::from(&file.source), file.destination.clone()));
    }
    if spec.platforms.is_empty() {
        return Err(bad(
            "create.platforms",
            "is empty: name at least one platform",
        ));
    }
    for (i, p) in spec.platforms.iter().enumerate() {
        request
            .platforms
            .push(platform(&format!("create.platforms[{i}]"), p)?);
    }
    request.build_commands = build_commands("create.build_commands", &spec.build_commands)?;
    request.package_manager = if spec.package_manager.is_empty() {
        Default::default()
    } else {
        spec.package_manager
            .parse()
            .map_err(|e: String| bad("create.package_manager", e))?
    };
    request.step_network = spec.step_network;
    Ok(request)
}

/// The build commands file and its files, as the job names them; their sections are read
/// where the file is (`Job::read_build_commands`), not from the spec.
fn build_commands(
    field: &str,
    spec: &Option<wire::BuildCommandsFiles>,
) -> Result<Option<BuildCommands>, SpecError> {
    let Some(spec) = spec else {
        return Ok(None);
    };
    let file = not_empty(&format!("{field}.file"), &spec.file)?;
    for (i, f) in spec.files.iter().enumerate() {
        not_empty(&format!("{field}.files[{i}]"), f)?;
    }
    Ok(Some(BuildCommands {
        file: PathBuf::from(file),
        files: spec.files.iter().map(PathBuf::from).collect(),
        ..Default::default()
    }))
}

fn build_commands_files(commands: &Option<BuildCommands>) -> Option<wire::BuildCommandsFiles> {
    commands.as_ref().map(|c| wire::BuildCommandsFiles {
        file: c.file.display().to_string(),
        files: c.files.iter().map(|f| f.display().to_string()).collect(),
    })
}

fn kube_target(field: &str, value: &str) -> Result<Target, SpecError> {
    Target::parse(value).map_err(|e| bad(field, e))
}

/// Default travels as empty, so specs written before `--target` existed read the same.
fn kube_target_spec(target: Target) -> String {
    match target {
        Target::Default => String::new(),
        other => other.as_str().to_string(),
    }
}

fn update(spec: &wire::UpdateJob) -> Result<UpdateRequest, SpecError> {
    Ok(UpdateRequest {
        tag: target("update.tag", &spec.tag)?,
        from_image: image("update.from_image", &spec.from_image)?,
        patches: patches("update.patches", &spec.patches)?,
        chown: match spec.chown.as_str() {
            "" => None,
            given => Some(chown("update.chown", given)?),
        },
        wdt: wdt("update.wdt", &spec.wdt)?,
        platform: platform("update.platform", &spec.platform)?,
        target: kube_target("update.target", &spec.target)?,
        build_commands: build_commands("update.build_commands", &spec.build_commands)?,
        step_network: spec.step_network,
        kind: match spec.installer_type.as_str() {
            "" => None,
            given => Some(
                InstallerSet::parse(given)
                    .map_err(|e| bad("update.installer_type", e))?
                    .kind(),
            ),
        },
    })
}

fn rebase(spec: &wire::RebaseJob) -> Result<RebaseJob, SpecError> {
    let request = RebaseRequest {
        source: image("rebase.source_image", &spec.source_image)?,
        tag: target("rebase.tag", &spec.tag)?,
        old_base: match spec.old_base.as_str() {
            "" => None,
            given => Some(image("rebase.old_base", given)?),
        },
        force: spec.force,
        copy_domain: spec.copy_domain,
        platform: platform("rebase.platform", &spec.platform)?,
        build_commands: build_commands("rebase.build_commands", &spec.build_commands)?,
        step_network: spec.step_network,
    };
    use wire::rebase_job::Target;
    let target =
        match &spec.target {
            Some(Target::TargetImage(reference)) => {
                RebaseTarget::Image(image("rebase.target_image", reference)?)
            }
            Some(Target::BuildTarget(build)) => {
                let mut create = install(
                    "rebase.build_target.install",
                    &build.install,
                    request.tag.clone(),
                    image("rebase.build_target.from_image", &build.from_image)?,
                )?;
                create.platforms = vec![request.platform.clone()];
                create.step_network = spec.step_network;
                RebaseTarget::Build(Box::new(create))
            }
            None => return Err(bad(
                "rebase.target",
                "is missing: give target_image (the new base) or build_target (how to build it)",
            )),
        };
    Ok(RebaseJob { request, target })
}

fn aux(spec: &wire::CreateAuxImageJob) -> Result<AuxRequest, SpecError> {
    let files = wdt("create_aux_image.wdt", &spec.wdt)?;
    let home = not_empty("create_aux_image.wdt_home", &spec.wdt_home)?;
    if !home.starts_with('/') {
        return Err(bad(
            "create_aux_image.wdt_home",
            format!("{home:?} is not an absolute path in the image"),
        ));
    }
    Ok(AuxRequest {
        tag: target("create_aux_image.tag", &spec.tag)?,
        from_image: image("create_aux_image.from_image", &spec.from_image)?,
        wdt_models: files.models,
        wdt_archives: files.archives,
        wdt_variables: files.variables,
        wdt_version: files.version,
        wdt_home: home.to_string(),
        wdt_model_home: (!spec.wdt_model_home.is_empty()).then(|| spec.wdt_model_home.clone()),
        chown: chown("create_aux_image.chown", &spec.chown)?,
        platform: platform("create_aux_image.platform", &spec.platform)?,
        target: kube_target("create_aux_image.target", &spec.target)?,
        build_commands: build_commands("create_aux_image.build_commands", &spec.build_commands)?,
        step_network: spec.step_network,
    })
}

impl Job {
    /// Reads and validates a spec's verb; the error names the first bad field.
    pub fn from_spec(spec: &wire::JobSpec) -> Result<Job, SpecError> {
        let size = prost::Message::encoded_len(spec);
        if size > MAX_SPEC_BYTES {
            return Err(bad(
                "spec",
                format!("is {size} bytes; a job spec is at most {MAX_SPEC_BYTES} bytes"),
            ));
        }
        let verb = spec.verb.as_ref().ok_or_else(|| {
            bad(
                "verb",
                "is missing: a job is one of create, update, rebase, create_aux_image, copy, refresh_aux_image",
            )
        })?;
        Ok(match verb {
            Verb::Create(c) => Job::Create(create(c)?),
            Verb::Update(u) => Job::Update(update(u)?),
            Verb::Rebase(r) => Job::Rebase(rebase(r)?),
            Verb::CreateAuxImage(a) => Job::CreateAuxImage(aux(a)?),
            Verb::Copy(c) => Job::Copy(CopyJob {
                from: image("copy.from", &c.from)?,
                to: target("copy.to", &c.to)?,
                platform: platform("copy.platform", &c.platform)?,
            }),
            Verb::RefreshAuxImage(r) => Job::RefreshAuxImage(AuxRefreshRequest {
                source: image("refresh_aux_image.source_image", &r.source_image)?,
                tag: target("refresh_aux_image.tag", &r.tag)?,
                wdt_version: not_empty("refresh_aux_image.wdt_version", &r.wdt_version)?
                    .to_string(),
                platform: platform("refresh_aux_image.platform", &r.platform)?,
            }),
            Verb::Noop(_) => Job::Noop,
        })
    }

    /// The wire form of this job's verb.
    pub fn to_verb(&self) -> Verb {
        match self {
            Job::Create(r) => Verb::Create(wire::CreateJob {
                tag: r.tag.to_string(),
                from_image: r.from_image.to_string(),
                install: Some(install_spec(r)),
                additional_files: r
                    .additional_files
                    .iter()
                    .map(|(source, destination)| wire::AdditionalFile {
                        source: source.display().to_string(),
                        destination: destination.clone(),
                    })
                    .collect(),
                platforms: r.platforms.iter().map(ToString::to_string).collect(),
                build_commands: build_commands_files(&r.build_commands),
                package_manager: match r.package_manager {
                    PackageManager::OsDefault => String::new(),
                    other => other.to_string(),
                },
                step_network: r.step_network,
            }),
            Job::Update(r) => Verb::Update(wire::UpdateJob {
                tag: r.tag.to_string(),
                from_image: r.from_image.to_string(),
                patches: Some(patch_selection(&r.patches)),
                chown: r.chown.clone().unwrap_or_default(),
                wdt: Some(wdt_files(&r.wdt)),
                platform: r.platform.to_string(),
                target: kube_target_spec(r.target),
                build_commands: build_commands_files(&r.build_commands),
                step_network: r.step_network,
                installer_type: r.kind.clone().unwrap_or_default(),
            }),
            Job::Rebase(r) => Verb::Rebase(wire::RebaseJob {
                source_image: r.request.source.to_string(),
                tag: r.request.tag.to_string(),
                target: Some(match &r.target {
                    RebaseTarget::Image(image) => {
                        wire::rebase_job::Target::TargetImage(image.to_string())
                    }
                    RebaseTarget::Build(create) => {
                        wire::rebase_job::Target::BuildTarget(wire::TargetBuild {
                            from_image: create.from_image.to_string(),
                            install: Some(install_spec(create)),
                        })
                    }
                }),
                old_base: r
                    .request
                    .old_base
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default(),
                force: r.request.force,
                copy_domain: r.request.copy_domain,
                platform: r.request.platform.to_string(),
                build_commands: build_commands_files(&r.request.build_commands),
                step_network: r.request.step_network,
            }),
            Job::CreateAuxImage(r) => Verb::CreateAuxImage(wire::CreateAuxImageJob {
                tag: r.tag.to_string(),
                from_image: r.from_image.to_string(),
                wdt: Some(wire::WdtFiles {
                    models: strings(&r.wdt_models),
                    archives: strings(&r.wdt_archives),
                    variables: strings(&r.wdt_variables),
                    version: r.wdt_version.clone(),
                    domain: None,
                    home: String::new(),
                    model_home: String::new(),
                }),
                wdt_home: r.wdt_home.clone(),
                wdt_model_home: r.wdt_model_home.clone().unwrap_or_default(),
                chown: r.chown.clone(),
                platform: r.platform.to_string(),
                target: kube_target_spec(r.target),
                build_commands: build_commands_files(&r.build_commands),
                step_network: r.step_network,
            }),
            Job::Copy(c) => Verb::Copy(wire::CopyJob {
                from: c.from.to_string(),
                to: c.to.to_string(),
                platform: c.platform.to_string(),
            }),
            Job::RefreshAuxImage(r) => Verb::RefreshAuxImage(wire::RefreshAuxImageJob {
                source_image: r.source.to_string(),
                tag: r.tag.to_string(),
                wdt_version: r.wdt_version.clone(),
                platform: r.platform.to_string(),
            }),
            Job::Noop => Verb::Noop(wire::NoopJob {}),
        }
    }

    /// A spec carrying this job, with its inputs filled in; scheduling fields are the caller's.
    pub fn to_spec(&self) -> wire::JobSpec {
        wire::JobSpec {
            verb: Some(self.to_verb()),
            inputs: self.inputs(),
            ..Default::default()
        }
    }
}

/// The public keys a spec requires its base image to be signed by (`base_signed_by`).
pub fn base_keys(
    spec: &wire::JobSpec,
) -> Result<Vec<patchfarm_engine::sign::PublicKey>, SpecError> {
    spec.base_signed_by
        .iter()
        .enumerate()
        .map(|(i, pem)| {
            patchfarm_engine::sign::PublicKey::from_pem(pem.as_bytes(), "the key")
                .map_err(|e| bad(format!("base_signed_by[{i}]"), e.to_string()))
        })
        .collect()
}

/// How the layers of a spec's job are compressed; a value this release does not know is refused
/// (it would otherwise build gzip layers where zstd ones were asked for, or the reverse).
pub fn compression(
    spec: &wire::JobSpec,
) -> Result<patchfarm_engine::layer::Compression, SpecError> {
    use patchfarm_engine::layer::Compression;
    match wire::LayerCompression::try_from(spec.compression) {
        Ok(wire::LayerCompression::Gzip) => Ok(Compression::Gzip),
        Ok(wire::LayerCompression::Zstd) => Ok(Compression::Zstd),
        Err(_) => Err(bad(
            "compression",
            format!(
                "{} is not a layer compression this release knows (gzip, zstd)",
                spec.compression
            ),
        )),
    }
}

/// A spec's compression field for `compression`.
pub fn compression_field(compression: patchfarm_engine::layer::Compression) -> i32 {
    use patchfarm_engine::layer::Compression;
    match compression {
        Compression::Gzip => wire::LayerCompression::Gzip,
        Compression::Zstd => wire::LayerCompression::Zstd,
    }
    .into()
}

/// The verb's name as `patchfarm jobs` lists it, for a spec of any release.
pub fn verb_name(spec: &wire::JobSpec) -> &'static str {
    match &spec.verb {
        Some(Verb::Create(_)) => "create",
        Some(Verb::Update(_)) => "update",
        Some(Verb::Rebase(_)) => "rebase",
        Some(Verb::CreateAuxImage(_)) => "createAuxImage",
        Some(Verb::Copy(_)) => "copy",
        Some(Verb::RefreshAuxImage(_)) => "refreshAuxImage",
        Some(Verb::Noop(_)) => "noop",
        None => "argv (older release)",
    }
}
