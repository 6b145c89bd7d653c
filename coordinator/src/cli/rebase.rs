//! `patchfarm rebase`: move a Domain-in-Image domain onto a new patched base — manifest-only when
//! the old base is known, a copy of DOMAIN_HOME otherwise.

use super::create::InstallArgs;
use super::{progress, Context};
use anyhow::{bail, Context as _};
use patchfarm_engine::image::{ImageRef, Platform};
use patchfarm_engine::recipe::create;
use patchfarm_engine::recipe::rebase::{self, RebaseRequest, Target};
use patchfarm_engine::recipe::{build, Engine};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The Domain-in-Image image to move.
    #[arg(long = "sourceImage", alias = "source-image")]
    source_image: String,
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
    #[arg(long, default_value = "linux/amd64")]
    platform: String,
    /// Base OS image for building the target (no --targetImage).
    #[arg(long = "fromImage", alias = "from-image")]
    from_image: Option<String>,
    #[command(flatten)]
    install: InstallArgs,
}

impl Args {
    pub fn farm_inputs(&self) -> super::submit::Inputs {
        let keys = if self.target_image.is_none() {
            self.install.farm_inputs()
        } else {
            Vec::new()
        };
        super::submit::Inputs::new("rebase", keys, false)
    }
}

pub async fn run(ctx: &Context, engine: &Engine, args: &Args) -> anyhow::Result<()> {
    let platform: Platform = args.platform.parse().context("--platform")?;
    let request = RebaseRequest {
        source: args
            .source_image
            .parse::<ImageRef>()
            .context("--sourceImage")?,
        tag: args.tag.parse::<ImageRef>().context("--tag")?,
        old_base: args
            .old_base
            .as_deref()
            .map(|b| b.parse::<ImageRef>().context("--oldBase"))
            .transpose()?,
        force: args.force,
        copy_domain: args.copy_domain,
        platform: platform.clone(),
    };
    let step = progress::step("preparing the target");
    // A target built here lives in `plans` (its layers on disk) until the push is done.
    let mut plans = Vec::new();
    let target = match &args.target_image {
        Some(reference) => {
            let reference: ImageRef = reference.parse().context("--targetImage")?;
            Target::pushed(
                &build::fetch_base(engine, &reference, &platform)
                    .await
                    .with_context(|| format!("rebase: fetching the target {reference}"))?,
            )
        }
        None => {
            let Some(from_image) = &args.from_image else {
                bail!("rebase needs --targetImage, or --fromImage (and create's flags) to build the target");
            };
            let create_request = args.install.request(
                request.tag.clone(),
                from_image.parse().context("--fromImage")?,
                Vec::new(),
                vec![platform.clone()],
            )?;
            plans = create::plan(engine, &create_request)
                .await
                .context("rebase: building the target")?;
            let built = plans[0]
                .build(engine, &create_request)
                .await
                .context("rebase: building the target")?;
            Target::built(
                format!("patchfarm create --fromImage {from_image} (built for this rebase)"),
                &built,
            )?
        }
    };
    step.set_message(format!("rebasing {}", request.source));
    let outcome = rebase::run(engine, &request, target)
        .await
        .with_context(|| format!("rebase of {}", request.source))?;
    step.finish_and_clear();
    drop(plans);
    if ctx.json {
        println!("{}", serde_json::to_string_pretty(&outcome)?);
        Ok(())
    } else {
        println!(
            "{} path: {} ({} source layers reused)",
            outcome.path, outcome.detail, outcome.reused_layers
        );
        super::print_report(ctx, &outcome.report)
    }
}
