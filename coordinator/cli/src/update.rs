//! `patchfarm update`: patches applied to an existing image as one new layer.

use super::create::{PatchArgs, TargetArgs, WdtArgs};
use anyhow::Context as _;
use patchfarm_engine::image::{ImageRef, Platform};
use patchfarm_engine::recipe::update::{self, UpdateRequest};
use patchfarm_engine::recipe::Engine;
use patchfarm_jobs::Job;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The image to push: HOST[:PORT]/REPO:TAG, oci:DIR[:TAG], or NAME[:TAG] (no registry) for the
    /// local Docker engine's image store.
    #[arg(long, short = 't')]
    tag: String,
    /// The WebLogic image to patch (ORACLE_HOME and JAVA_HOME are read from its environment).
    #[arg(long = "fromImage", alias = "from-image")]
    from_image: String,
    #[command(flatten)]
    patches: PatchArgs,
    /// WIT's installer type (WLS, FMW, SOA, …): the product whose patches --recommendedPatches
    /// and --latestPSU pick; default: what the image's labels say, else WLS.
    #[arg(long = "type", value_parser = super::create::installer_type)]
    kind: Option<String>,
    /// Must match the Oracle Home's owner in the image when given.
    #[arg(long)]
    chown: Option<String>,
    #[command(flatten)]
    wdt: WdtArgs,
    #[command(flatten)]
    target: TargetArgs,
    /// Print what would be applied (and run) and push nothing.
    #[arg(long = "dryRun", alias = "dry-run")]
    pub dry_run: bool,
    /// The platform (os/arch) of the image to read and write.
    #[arg(long, default_value = "linux/amd64")]
    platform: String,
    #[command(flatten)]
    build_engine: super::build_engine::BuildEngineArgs,
    #[command(flatten)]
    steps: super::not_yet::StepArgs,
}

impl Args {
    pub fn wdt(&self) -> &WdtArgs {
        &self.wdt
    }

    /// What to ask Oracle's patch service for, when an account is given.
    pub fn online(&self) -> anyhow::Result<Option<super::aru::Online>> {
        self.patches.online(self.steps.proxies())
    }

    /// The typed job these flags describe.
    pub fn job(&self) -> anyhow::Result<Job> {
        self.build_engine.say();
        self.steps.check(false)?;
        Ok(Job::Update(UpdateRequest {
            tag: self.tag.parse::<ImageRef>().context("--tag")?,
            from_image: ImageRef::parse_source(&self.from_image).context("--fromImage")?,
            patches: self.patches.request()?,
            chown: self.chown.clone(),
            wdt: self
                .wdt
                .request(patchfarm_engine::recipe::domain::WdtOperation::Update)?,
            platform: self.platform.parse::<Platform>().context("--platform")?,
            target: self.target.target,
            build_commands: self.steps.build_commands()?,
            step_network: self.build_engine.step_network(),
            kind: self.kind.clone(),
        }))
    }
}

/// `update`: the job run here, or with `--dryRun` its plan printed.
pub async fn run(ctx: &super::Context, engine: &Engine, args: &Args) -> anyhow::Result<()> {
    args.wdt().check_templates()?;
    let mut job = args.job()?;
    if let Some(online) = args.online()? {
        super::aru::prepare(&mut job, &online, engine).await?;
    }
    let Job::Update(request) = &job else {
        unreachable!("update flags make an update job")
    };
    if args.dry_run {
        let step = super::progress::step("reading the image and checking the patches");
        let plan = update::plan(engine, request).await.context("update")?;
        step.finish_and_clear();
        println!("{}", serde_json::to_string_pretty(&plan.describe(request))?);
        return Ok(());
    }
    let tag = request.tag.to_string();
    super::run_job(ctx, engine, &job).await?;
    args.wdt().resolve_templates(&tag)
}
