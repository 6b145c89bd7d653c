//! `patchfarm rebase`: move a Domain-in-Image domain onto a new patched base — manifest-only when
//! the old base is known, a copy of DOMAIN_HOME otherwise.

use super::create::InstallArgs;
use anyhow::{bail, Context as _};
use patchfarm_engine::image::{ImageRef, Platform};
use patchfarm_engine::recipe::rebase::RebaseRequest;
use patchfarm_jobs::{Job, RebaseJob, RebaseTarget};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The Domain-in-Image image to move.
    #[arg(long = "sourceImage", alias = "source-image")]
    source_image: String,
    /// The image to push: HOST[:PORT]/REPO:TAG, oci:DIR[:TAG], or NAME[:TAG] (no registry) for the
    /// local Docker engine's image store.
    #[arg(long, short = 't')]
    tag: String,
    /// The new base; without it, the target is built as `create` would from the flags below.
    #[arg(long = "targetImage", alias = "target-image")]
    target_image: Option<String>,
    /// The image the source was built on (else its base annotations or patchfarm labels are used).
    #[arg(long = "oldBase", alias = "old-base")]
    old_base: Option<String>,
    /// Rebase onto a different WebLogic major version.
    #[arg(long)]
    force: bool,
    /// Copy DOMAIN_HOME into a new layer even when the old base is known (WIT's way).
    #[arg(long = "copyDomain", alias = "copy-domain")]
    copy_domain: bool,
    /// The platform (os/arch) of the image to read and write.
    #[arg(long, default_value = "linux/amd64")]
    platform: String,
    /// Base OS image for building the target (no --targetImage).
    #[arg(long = "fromImage", alias = "from-image")]
    from_image: Option<String>,
    #[command(flatten)]
    install: InstallArgs,
    #[command(flatten)]
    build_engine: super::build_engine::BuildEngineArgs,
    #[command(flatten)]
    steps: super::not_yet::StepArgs,
}

impl Args {
    /// What to ask Oracle's patch service for, when an account is given (for a built target).
    pub fn online(&self) -> anyhow::Result<Option<super::aru::Online>> {
        self.install.online((None, None))
    }

    /// The typed job these flags describe: onto `--targetImage`, or onto a target built as
    /// `create` would build it from `--fromImage` and create's flags.
    pub fn job(&self) -> anyhow::Result<Job> {
        self.build_engine.say();
        self.steps.check(false)?;
        let platform: Platform = self.platform.parse().context("--platform")?;
        let request = RebaseRequest {
            source: ImageRef::parse_source(&self.source_image).context("--sourceImage")?,
            tag: self.tag.parse::<ImageRef>().context("--tag")?,
            old_base: self
                .old_base
                .as_deref()
                .map(|b| ImageRef::parse_source(b).context("--oldBase"))
                .transpose()?,
            force: self.force,
            copy_domain: self.copy_domain,
            platform: platform.clone(),
            build_commands: self.steps.build_commands()?,
            step_network: self.build_engine.step_network(),
        };
        let target = match (&self.target_image, &self.from_image) {
            (Some(reference), _) => {
                RebaseTarget::Image(ImageRef::parse_source(reference).context("--targetImage")?)
            }
            (None, Some(from_image)) => {
                let mut build = self.install.request(
                    request.tag.clone(),
                    ImageRef::parse_source(from_image).context("--fromImage")?,
                    Vec::new(),
                    vec![platform],
                )?;
                build.step_network = self.build_engine.step_network();
                RebaseTarget::Build(Box::new(build))
            }
            (None, None) => bail!(
                "rebase needs --targetImage, or --fromImage (and create's flags) to build the target"
            ),
        };
        Ok(Job::Rebase(RebaseJob { request, target }))
    }
}
