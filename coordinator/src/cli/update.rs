//! `patchfarm update`: patches applied to an existing image as one new layer.

use super::create::{PatchArgs, WdtArgs};
use super::{progress, Context};
use anyhow::Context as _;
use patchfarm_engine::image::{ImageRef, Platform};
use patchfarm_engine::recipe::update::{self, UpdateRequest};
use patchfarm_engine::recipe::Engine;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[arg(long, short = 't')]
    tag: String,
    /// The WebLogic image to patch (ORACLE_HOME and JAVA_HOME are read from its environment).
    #[arg(long = "fromImage", alias = "from-image")]
    from_image: String,
    #[command(flatten)]
    patches: PatchArgs,
    /// Must match the Oracle Home's owner in the image when given.
    #[arg(long)]
    chown: Option<String>,
    #[command(flatten)]
    wdt: WdtArgs,
    #[arg(long, default_value = "linux/amd64")]
    platform: String,
}

impl Args {
    pub fn farm_inputs(&self) -> super::submit::Inputs {
        let mut keys = self.patches.farm_inputs(None);
        keys.extend(self.wdt.farm_input());
        super::submit::Inputs::new("update", keys, false)
    }
}

pub async fn run(ctx: &Context, engine: &Engine, args: &Args) -> anyhow::Result<()> {
    let request = UpdateRequest {
        tag: args.tag.parse::<ImageRef>().context("--tag")?,
        from_image: args.from_image.parse::<ImageRef>().context("--fromImage")?,
        patches: args.patches.request()?,
        chown: args.chown.clone(),
        wdt: args.wdt.request()?,
        platform: args.platform.parse::<Platform>().context("--platform")?,
    };
    let step = progress::step(&format!("updating {}", request.from_image));
    let outcome = update::run(engine, &request)
        .await
        .with_context(|| format!("update of {}", request.from_image))?;
    step.finish_and_clear();
    if !outcome.skipped.is_empty() {
        eprintln!(
            "already in the image, skipped: {}",
            outcome.skipped.join(", ")
        );
    }
    if ctx.json {
        println!("{}", serde_json::to_string_pretty(&outcome)?);
        Ok(())
    } else {
        println!(
            "applied: {}",
            if outcome.applied.is_empty() {
                "nothing new".to_string()
            } else {
                outcome.applied.join(", ")
            }
        );
        super::print_report(ctx, &outcome.report)
    }
}
