//! `patchfarm createAuxImage`: WIT's options, native build, push or `--dryRun` plan.

use super::{progress, Context};
use anyhow::Context as _;
use patchfarm_engine::image::{ImageRef, Platform};
use patchfarm_engine::recipe::aux::{self, AuxRequest};
use patchfarm_engine::recipe::Engine;
use patchfarm_jobs::Job;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Image to build: HOST[:PORT]/REPO:TAG, oci:DIR:TAG, or NAME:TAG for the local Docker engine.
    #[arg(long, short = 't')]
    tag: String,
    /// Base image (small, e.g. busybox). Required: there is no default registry to take one from.
    #[arg(long = "fromImage", alias = "from-image")]
    from_image: String,
    /// WDT model files (comma-separated or repeated).
    #[arg(long = "wdtModel", alias = "wdt-model", value_delimiter = ',')]
    wdt_model: Vec<PathBuf>,
    /// WDT archive files.
    #[arg(long = "wdtArchive", alias = "wdt-archive", value_delimiter = ',')]
    wdt_archive: Vec<PathBuf>,
    /// WDT variable files.
    #[arg(long = "wdtVariables", alias = "wdt-variables", value_delimiter = ',')]
    wdt_variables: Vec<PathBuf>,
    /// WDT version to install from the cache key wdt_VERSION, or `none`.
    #[arg(long = "wdtVersion", alias = "wdt-version", default_value = "latest")]
    wdt_version: String,
    /// Where WDT and the models go in the image.
    #[arg(long = "wdtHome", alias = "wdt-home", default_value = "/auxiliary")]
    wdt_home: String,
    /// Where models, archives and variables go (default: <wdtHome>/models).
    #[arg(long = "wdtModelHome", alias = "wdt-model-home")]
    wdt_model_home: Option<String>,
    /// Owner of the added files, USER:GROUP (names are added to the base's /etc/passwd when
    /// missing); default oracle:oracle, or oracle:root with --target OpenShift.
    #[arg(long)]
    chown: Option<String>,
    #[command(flatten)]
    target: super::create::TargetArgs,
    /// Platform to take from a multi-platform base.
    #[arg(long, default_value = "linux/amd64")]
    platform: String,
    /// Print the plan (layers, files, config) and push nothing.
    #[arg(long = "dryRun", alias = "dry-run")]
    pub dry_run: bool,
    #[command(flatten)]
    build_engine: super::build_engine::BuildEngineArgs,
    #[command(flatten)]
    steps: super::not_yet::StepArgs,
}

fn image_ref(flag: &str, value: &str) -> anyhow::Result<ImageRef> {
    value.parse().with_context(|| format!("--{flag}"))
}

impl Args {
    /// The typed job these flags describe.
    pub fn job(&self) -> anyhow::Result<Job> {
        self.build_engine.say();
        self.steps.check(false)?;
        Ok(Job::CreateAuxImage(AuxRequest {
            tag: image_ref("tag", &self.tag)?,
            from_image: ImageRef::parse_source(&self.from_image).context("--fromImage")?,
            wdt_models: self.wdt_model.clone(),
            wdt_archives: self.wdt_archive.clone(),
            wdt_variables: self.wdt_variables.clone(),
            wdt_version: self.wdt_version.clone(),
            wdt_home: self.wdt_home.clone(),
            wdt_model_home: self.wdt_model_home.clone(),
            chown: self.target.chown(&self.chown),
            platform: self.platform.parse::<Platform>().context("--platform")?,
            target: self.target.target,
            build_commands: self.steps.build_commands()?,
            step_network: self.build_engine.step_network(),
        }))
    }
}

pub async fn run(ctx: &Context, engine: &Engine, args: &Args) -> anyhow::Result<()> {
    let job = args.job()?;
    if !args.dry_run {
        return super::run_job(ctx, engine, &job).await;
    }
    let Job::CreateAuxImage(request) = job else {
        unreachable!("createAuxImage flags make a createAuxImage job")
    };
    let step = progress::step("planning");
    let plan = aux::plan(engine, request).await.context("createAuxImage")?;
    step.finish_and_clear();
    println!("{}", serde_json::to_string_pretty(&plan.describe())?);
    Ok(())
}
