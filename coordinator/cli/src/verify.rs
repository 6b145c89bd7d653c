//! `patchfarm verify`: is this image signed by this key? Reads the sigstore signature attached to
//! the manifest the reference names (`REPO:sha256-<hex>.sig`, as cosign and skopeo do).

use anyhow::Context as _;
use patchfarm_engine::image::ImageRef;
use patchfarm_engine::recipe::Engine;
use patchfarm_engine::sign::{attach, PublicKey};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The image: HOST[:PORT]/REPO[:TAG|@DIGEST].
    #[arg(long, short = 'i', value_name = "IMAGE")]
    image: String,
    /// The ECDSA P-256 public key (PEM, BEGIN PUBLIC KEY) its signature must verify with.
    #[arg(long, value_name = "FILE")]
    key: std::path::PathBuf,
}

pub async fn run(ctx: &crate::Context, engine: &Engine, args: &Args) -> anyhow::Result<()> {
    let key = PublicKey::from_pem_file(&args.key).map_err(|e| anyhow::anyhow!("--key {e}"))?;
    let image = match args.image.parse::<ImageRef>().context("--image")? {
        ImageRef::Registry(image) => image,
        other => anyhow::bail!(
            "--image {other}: signatures are attached in registries; give a registry reference"
        ),
    };
    let verified = attach::verify(&engine.registries, &image, &key)
        .await
        .map_err(|e| anyhow::anyhow!("not verified: {e}"))?;
    if ctx.json {
        println!("{}", serde_json::to_string_pretty(&verified)?);
    } else {
        println!(
            "verified: {} signature(s) by {} for {}@{} ({})",
            verified.valid,
            args.key.display(),
            verified.image,
            verified.digest,
            verified.signature
        );
    }
    Ok(())
}
