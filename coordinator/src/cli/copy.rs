//! `patchfarm copy`: push an image to another registry or layout unchanged (same digest).

use super::Context;
use anyhow::Context as _;
use patchfarm_engine::image::{ImageRef, Platform};
use patchfarm_engine::recipe::{copy, Engine};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Image to copy: HOST[:PORT]/REPO[:TAG|@DIGEST] or oci:DIR[:TAG].
    from: String,
    /// Destination: HOST[:PORT]/REPO[:TAG] or oci:DIR[:TAG].
    to: String,
    /// Platform to take from a multi-platform source.
    #[arg(long, default_value = "linux/amd64")]
    platform: String,
}

pub async fn run(ctx: &Context, engine: &Engine, args: &Args) -> anyhow::Result<()> {
    let from: ImageRef = args.from.parse().context("source image")?;
    let to: ImageRef = args.to.parse().context("destination image")?;
    let platform: Platform = args.platform.parse().context("--platform")?;
    let step = super::progress::step(&format!("copying {from} to {to}"));
    let report = copy::copy(engine, &from, &to, &platform)
        .await
        .with_context(|| format!("copying {from} to {to}"))?;
    step.finish_and_clear();
    super::print_report(ctx, &report)
}
