//! `patchfarm assemble`: an image from files on a base (or from scratch) with its entrypoint —
//! the reproducible, daemonless `FROM` + `COPY` + `ENTRYPOINT` patchfarm's own images are built
//! with (`deploy/images.sh`). Runs on this machine.

use anyhow::Context as _;
use patchfarm_engine::image::ImageRef;
use patchfarm_engine::recipe::assemble::{self, AssembleRequest};
use patchfarm_engine::recipe::Engine;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Where the image goes: HOST[:PORT]/REPO:TAG, oci:DIR[:TAG], or NAME[:TAG] (the local engine).
    #[arg(long, short = 't', value_name = "IMAGE")]
    tag: String,
    /// The base image, or `scratch` for none.
    #[arg(long = "fromImage", alias = "from-image", value_name = "IMAGE")]
    from_image: String,
    /// A host file or directory and where it goes, SRC:/IMAGE/PATH (repeatable; owned by root).
    #[arg(long = "add", value_name = "SRC:DEST", required = true)]
    add: Vec<String>,
    /// The image's entrypoint, as words (`--entrypoint /usr/local/bin/patchfarm-agent`).
    #[arg(long, value_name = "WORD", num_args = 1.., allow_hyphen_values = true)]
    entrypoint: Vec<String>,
    /// The image's default arguments, as words.
    #[arg(long, value_name = "WORD", num_args = 1.., allow_hyphen_values = true)]
    cmd: Vec<String>,
    /// An environment variable, NAME=VALUE (repeatable).
    #[arg(long, value_name = "NAME=VALUE")]
    env: Vec<String>,
    /// The user the image runs as (UID[:GID] or a name).
    #[arg(long)]
    user: Option<String>,
    /// The working directory.
    #[arg(long)]
    workdir: Option<String>,
    /// A label, KEY=VALUE (repeatable).
    #[arg(long, value_name = "KEY=VALUE")]
    label: Vec<String>,
    /// The platform the image is for (and to take from a multi-platform base).
    #[arg(long, default_value = patchfarm_jobs::defaults::PLATFORM)]
    platform: String,
}

fn pair(flag: &str, text: &str) -> anyhow::Result<(String, String)> {
    text.split_once('=')
        .filter(|(k, _)| !k.is_empty())
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| anyhow::anyhow!("{flag} {text:?}: expected NAME=VALUE"))
}

impl Args {
    fn request(&self) -> anyhow::Result<AssembleRequest> {
        let files = self
            .add
            .iter()
            .map(|a| {
                a.rsplit_once(':')
                    .filter(|(s, d)| !s.is_empty() && d.starts_with('/'))
                    .map(|(s, d)| (s.into(), d.to_string()))
                    .ok_or_else(|| anyhow::anyhow!("--add {a:?}: expected SRC:/IMAGE/PATH"))
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(AssembleRequest {
            tag: Some(self.tag.parse().context("--tag")?),
            from_image: match self.from_image.as_str() {
                "scratch" => None,
                other => Some(ImageRef::parse_source(other).context("--fromImage")?),
            },
            files,
            entrypoint: (!self.entrypoint.is_empty()).then(|| self.entrypoint.clone()),
            cmd: (!self.cmd.is_empty()).then(|| self.cmd.clone()),
            env: self
                .env
                .iter()
                .map(|e| pair("--env", e))
                .collect::<anyhow::Result<_>>()?,
            user: self.user.clone(),
            working_dir: self.workdir.clone(),
            labels: self
                .label
                .iter()
                .map(|l| pair("--label", l))
                .collect::<anyhow::Result<_>>()?,
            platform: self.platform.parse().context("--platform")?,
        })
    }
}

pub async fn run(ctx: &crate::Context, engine: &Engine, args: &Args) -> anyhow::Result<()> {
    let request = args.request()?;
    let report = assemble::run(engine, &request)
        .await
        .with_context(|| format!("assembling {}", args.tag))?;
    crate::print_report(ctx, &report)
}
