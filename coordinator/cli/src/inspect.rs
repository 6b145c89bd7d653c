//! `patchfarm inspect`: WIT's inspect JSON, read from the image without running it.

use super::Context;
use anyhow::Context as _;
use patchfarm_engine::image::{ImageRef, Platform};
use patchfarm_engine::recipe::{inspect, Engine};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Image to inspect: HOST[:PORT]/REPO[:TAG|@DIGEST], oci:DIR[:TAG], or NAME[:TAG] (the local
    /// Docker engine's image, else Docker Hub's).
    #[arg(long, short = 'i')]
    image: String,
    /// Also list the Oracle Home's one-off patches.
    #[arg(long, short = 'p')]
    patches: bool,
    /// Output format: JSON, the only one (as WIT).
    #[arg(long, short = 'f', default_value = "JSON", ignore_case = true, value_parser = ["JSON"])]
    format: String,
    /// WIT: the engine that would run the image to inspect it. patchfarm reads the layers.
    #[arg(long, short = 'b', value_name = "EXECUTABLE")]
    builder: Option<String>,
    /// Platform to inspect in a multi-platform image.
    #[arg(long, default_value = "linux/amd64")]
    platform: String,
}

pub async fn run(_ctx: &Context, engine: &Engine, args: &Args) -> anyhow::Result<()> {
    if args.builder.is_some() {
        eprintln!("note: --builder: patchfarm reads the image's layers without running it; it has no effect");
    }
    let image = ImageRef::parse_source(&args.image).context("--image")?;
    let platform: Platform = args.platform.parse().context("--platform")?;
    let mut result = inspect::inspect(engine, &image, &platform, args.patches)
        .await
        .with_context(|| format!("inspecting {image}"))?;
    if let ImageRef::Registry(at) = &image {
        // The signatures name the manifest the reference names (an index, for several platforms).
        let client = engine.registries.client(&at.registry).await;
        let (_, digest) = client.get_manifest(at).await?;
        let found = patchfarm_engine::sign::attach::find(&engine.registries, at, &digest)
            .await
            .with_context(|| format!("looking for {image}'s signature, SBOM and provenance"))?;
        result.attachments = (!found.is_empty()).then_some(found);
    }
    // inspect's output is data in either mode, as WIT prints it.
    println!("{}", serde_json::to_string_pretty(&result)?);
    Ok(())
}
