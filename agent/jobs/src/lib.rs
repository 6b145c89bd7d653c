//! patchfarm-jobs: a farm job is a typed value. The CLI turns flags into a [`Job`], the
//! coordinator validates its wire form ([`Job::from_spec`]) at submit time, and the CLI (locally)
//! and the agent (in the farm) run it through the same [`run`], which answers a typed
//! [`Outcome`]. Which cache keys a job reads is decided here and nowhere else ([`Job::inputs`]).

pub mod attest;
pub mod campaign;
pub mod files;
mod inputs;
mod run;
mod wire;

pub use files::ArtifactFile;
pub use inputs::registry_only;
pub use run::{run, JobError, Outcome};
pub use wire::{base_keys, compression, compression_field, verb_name, SpecError, MAX_SPEC_BYTES};

use patchfarm_engine::image::{ImageRef, Platform};
use patchfarm_engine::recipe::aux::AuxRequest;
use patchfarm_engine::recipe::aux_refresh::AuxRefreshRequest;
use patchfarm_engine::recipe::create::CreateRequest;
use patchfarm_engine::recipe::rebase::RebaseRequest;
use patchfarm_engine::recipe::update::UpdateRequest;

/// One verb with everything it needs, as the engine's request types hold it.
#[derive(Clone, Debug)]
pub enum Job {
    Create(CreateRequest),
    Update(UpdateRequest),
    Rebase(RebaseJob),
    CreateAuxImage(AuxRequest),
    Copy(CopyJob),
    /// An auxiliary image moved to another WDT release (campaigns that bump `wdtVersion`).
    RefreshAuxImage(AuxRefreshRequest),
    /// The scheduling benchmark's job: does nothing (coordinators refuse it unless told).
    Noop,
}

/// A rebase and the image it moves onto.
#[derive(Clone, Debug)]
pub struct RebaseJob {
    pub request: RebaseRequest,
    pub target: RebaseTarget,
}

#[derive(Clone, Debug)]
pub enum RebaseTarget {
    /// A pushed base image.
    Image(ImageRef),
    /// A base built for this rebase, as `create` would (its tag and platform are the rebase's).
    Build(Box<CreateRequest>),
}

/// An image copied unchanged (same digest) to another registry or layout.
#[derive(Clone, Debug)]
pub struct CopyJob {
    pub from: ImageRef,
    pub to: ImageRef,
    pub platform: Platform,
}

impl Job {
    /// The verb as the CLI and WIT spell it.
    pub fn verb(&self) -> &'static str {
        match self {
            Job::Create(_) => "create",
            Job::Update(_) => "update",
            Job::Rebase(_) => "rebase",
            Job::CreateAuxImage(_) => "createAuxImage",
            Job::Copy(_) => "copy",
            Job::RefreshAuxImage(_) => "refreshAuxImage",
            Job::Noop => "noop",
        }
    }

    /// The image a create or update pushes, as given.
    pub fn tag(&self) -> Option<String> {
        match self {
            Job::Create(request) => Some(request.tag.to_string()),
            Job::Update(request) => Some(request.tag.to_string()),
            _ => None,
        }
    }

    /// The option that gave this job a secret it must not carry off this machine: a model's
    /// passphrase for WDT.
    pub fn secret_option(&self) -> Option<&'static str> {
        let wdt = match self {
            Job::Create(request) => &request.wdt,
            Job::Update(request) => &request.wdt,
            Job::Rebase(RebaseJob {
                target: RebaseTarget::Build(target),
                ..
            }) => &target.wdt,
            _ => return None,
        };
        wdt.domain
            .as_ref()
            .and_then(|d| d.passphrase.as_ref())
            .map(|_| "--wdtEncryptionKey/--wdtEncryptionKeyEnv/--wdtEncryptionKeyFile")
    }

    /// Every image the job reads or writes, by the spec field that names it.
    pub fn images(&self) -> Vec<(&'static str, &ImageRef)> {
        match self {
            Job::Create(r) => vec![("create.tag", &r.tag), ("create.from_image", &r.from_image)],
            Job::Update(r) => vec![("update.tag", &r.tag), ("update.from_image", &r.from_image)],
            Job::Rebase(r) => {
                let mut images = vec![
                    ("rebase.source_image", &r.request.source),
                    ("rebase.tag", &r.request.tag),
                ];
                images.extend(r.request.old_base.iter().map(|b| ("rebase.old_base", b)));
                images.push(match &r.target {
                    RebaseTarget::Image(image) => ("rebase.target_image", image),
                    RebaseTarget::Build(c) => ("rebase.build_target.from_image", &c.from_image),
                });
                images
            }
            Job::CreateAuxImage(r) => vec![
                ("create_aux_image.tag", &r.tag),
                ("create_aux_image.from_image", &r.from_image),
            ],
            Job::Copy(c) => vec![("copy.from", &c.from), ("copy.to", &c.to)],
            Job::RefreshAuxImage(r) => vec![
                ("refresh_aux_image.source_image", &r.source),
                ("refresh_aux_image.tag", &r.tag),
            ],
            Job::Noop => Vec::new(),
        }
    }

    /// The image the job pushes (none for the benchmark's no-op).
    pub fn pushes(&self) -> Option<&ImageRef> {
        match self {
            Job::Create(r) => Some(&r.tag),
            Job::Update(r) => Some(&r.tag),
            Job::Rebase(r) => Some(&r.request.tag),
            Job::CreateAuxImage(r) => Some(&r.tag),
            Job::Copy(c) => Some(&c.to),
            Job::RefreshAuxImage(r) => Some(&r.tag),
            Job::Noop => None,
        }
    }
}

/// WIT's defaults where a job leaves a choice open (the CLI's flags default to the same).
pub mod defaults {
    pub const PLATFORM: &str = "linux/amd64";
    pub const CHOWN: &str = "oracle:oracle";
    pub const WDT_VERSION: &str = "latest";
}

#[cfg(test)]
mod tests;
