//! `patchfarm create`: a WebLogic image (JDK + patched Oracle Home + optional WDT files) built
//! natively; several `--platform`s give an OCI index.

pub use super::wdt::WdtArgs;
use super::{progress, Context};
use anyhow::{bail, Context as _};
use patchfarm_engine::image::{ImageRef, Platform};
use patchfarm_engine::installer::InstallerSet;
use patchfarm_engine::opatch::CatalogChoice;
use patchfarm_engine::recipe::create::{self, CreateRequest};
use patchfarm_engine::recipe::domain::WdtOperation;
use patchfarm_engine::recipe::oui;
use patchfarm_engine::recipe::patching::PatchRequest;
use patchfarm_engine::recipe::{Engine, Target};
use patchfarm_jobs::Job;
use std::path::PathBuf;

/// Patch selection flags shared by `create` and `update`.
#[derive(clap::Args, Debug, Clone)]
pub struct PatchArgs {
    /// Patch ids, BUGNUMBER_VERSION[_ARCH] (a bare bug number means the product's version).
    #[arg(long, value_delimiter = ',')]
    pub patches: Vec<String>,
    /// Apply the PSU and recommended patches for the product and version: from Oracle's patch
    /// service with --user, else from the fleet's --patchCatalog.
    #[arg(long = "recommendedPatches", alias = "recommended-patches")]
    pub recommended_patches: bool,
    /// Apply the catalog's PSU only (with --recommendedPatches too, that one wins, as in WIT).
    #[arg(long = "latestPSU", alias = "latest-psu")]
    pub latest_psu: bool,
    /// The fleet's patch catalog (YAML, see README).
    #[arg(
        long = "patchCatalog",
        alias = "patch-catalog",
        env = "PATCHFARM_PATCH_CATALOG"
    )]
    pub patch_catalog: Option<PathBuf>,
    #[command(flatten)]
    account: super::aru::AccountArgs,
    #[command(flatten)]
    opatch: super::not_yet::OpatchArgs,
}

impl PatchArgs {
    /// The patches named here; with an Oracle Support account they are resolved online
    /// instead (`aru::prepare` fills the request before the job runs or is submitted).
    pub fn request(&self) -> anyhow::Result<PatchRequest> {
        self.opatch.check()?;
        if self.account.given() {
            if let Some(catalog) = &self.patch_catalog {
                eprintln!("note: --patchCatalog {}: with --user the patches come from Oracle's patch service", catalog.display());
            }
            return Ok(self.opatch.applied(PatchRequest::default()));
        }
        let choice = match (self.recommended_patches, self.latest_psu) {
            (true, _) => Some(CatalogChoice::Recommended),
            (_, true) => Some(CatalogChoice::LatestPsu),
            _ => None,
        };
        let catalog = match (choice, &self.patch_catalog) {
            (Some(choice), Some(path)) => Some((path.clone(), choice)),
            (Some(_), None) => bail!("--recommendedPatches and --latestPSU resolve against the fleet's patch catalog: give --patchCatalog FILE"),
            (None, _) => None,
        };
        Ok(self.opatch.applied(PatchRequest {
            ids: self.patches.clone(),
            catalog,
            ..Default::default()
        }))
    }

    /// What to ask Oracle's patch service for, when an account is given.
    pub fn online(
        &self,
        proxies: (Option<&str>, Option<&str>),
    ) -> anyhow::Result<Option<super::aru::Online>> {
        self.account.online(
            self.recommended_patches,
            self.latest_psu,
            &self.patches,
            proxies,
        )
    }
}

/// What `create` installs: shared with `rebase`, which can build its target the same way.
#[derive(clap::Args, Debug)]
pub struct InstallArgs {
    /// Installer type, one of WIT's sets (WLS, WLSSLIM, WLSDEV, FMW, OSB, SOA, SOA_OSB,
    /// SOA_OSB_B2B, MFT, IDM, IDM_WLS, OAM, OIG, OUD, OUD_WLS, OID, WCC, WCP, WCS, OHS, ODI; any
    /// case): the Oracle Home is its installers in WIT's order, each from cache key
    /// INSTALLER_VERSION (SOA: fmw_VERSION, then soa_VERSION).
    #[arg(long = "type", default_value = "wls", value_parser = installer_type)]
    kind: String,
    #[arg(long, default_value = "12.2.1.4.0")]
    version: String,
    /// The JDK comes from cache key jdk_VERSION.
    #[arg(long = "jdkVersion", alias = "jdk-version", default_value = "8u202")]
    jdk_version: String,
    #[command(flatten)]
    patches: PatchArgs,
    /// Owner of /u01 (added to the base's account files when missing); default oracle:oracle,
    /// or oracle:root with --target OpenShift.
    #[arg(long)]
    chown: Option<String>,
    #[command(flatten)]
    wdt: WdtArgs,
    #[command(flatten)]
    target: TargetArgs,
    #[command(flatten)]
    installer: InstallerArgs,
}

/// WIT's options for Oracle's installers (used when the installers are OUI zips).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct InstallerArgs {
    /// Response files for the installers, one per installer of --type, in order (default:
    /// WIT's per type).
    #[arg(
        long = "installerResponseFile",
        value_delimiter = ',',
        value_name = "FILE"
    )]
    installer_response_file: Vec<PathBuf>,
    /// The oraInst.loc to install with (default: inventory_loc=/u01/oracle/oraInventory).
    #[arg(long = "inventoryPointerFile", value_name = "FILE")]
    inventory_pointer_file: Option<PathBuf>,
    /// Where the inventory pointer goes in the image (default /u01/oracle).
    #[arg(long = "inventoryPointerInstallLoc", value_name = "DIR")]
    inventory_pointer_install_loc: Option<String>,
}

impl InstallerArgs {
    fn options(&self) -> oui::InstallerOptions {
        oui::InstallerOptions {
            response_files: self.installer_response_file.clone(),
            inventory_pointer: self.inventory_pointer_file.clone(),
            inventory_pointer_dir: self.inventory_pointer_install_loc.clone(),
        }
    }
}

/// WIT's `--target`, shared by the verbs that write files the server uses.
#[derive(clap::Args, Debug, Clone)]
pub struct TargetArgs {
    /// The environment the image is for: Default, or OpenShift (group root by default, and the
    /// group gets the owner's permissions on OPatch's logs, the domains and WDT, as WIT does).
    #[arg(long, default_value = "Default", value_parser = Target::parse)]
    pub target: Target,
}

impl TargetArgs {
    /// `--chown` as given, or the target's default.
    pub fn chown(&self, given: &Option<String>) -> String {
        given
            .clone()
            .unwrap_or_else(|| self.target.default_chown().to_string())
    }
}

/// `--type` as WIT reads it, kept lowercase as cache keys and catalogs spell it.
pub(crate) fn installer_type(text: &str) -> Result<String, String> {
    InstallerSet::parse(text).map(|set| set.kind())
}

impl InstallArgs {
    /// What to ask Oracle's patch service for, when an account is given.
    pub fn online(
        &self,
        proxies: (Option<&str>, Option<&str>),
    ) -> anyhow::Result<Option<super::aru::Online>> {
        self.patches.online(proxies)
    }

    /// A `create` request for these installation flags.
    pub fn request(
        &self,
        tag: ImageRef,
        from_image: ImageRef,
        additional_files: Vec<(PathBuf, String)>,
        platforms: Vec<Platform>,
    ) -> anyhow::Result<CreateRequest> {
        Ok(CreateRequest {
            tag,
            from_image,
            kind: self.kind.clone(),
            version: self.version.clone(),
            jdk_version: self.jdk_version.clone(),
            patches: self.patches.request()?,
            chown: self.target.chown(&self.chown),
            wdt: self.wdt.request(WdtOperation::Create)?,
            target: self.target.target,
            additional_files,
            platforms,
            build_commands: None,
            installer_options: self.installer.options(),
            step_network: false,
            package_manager: Default::default(),
        })
    }
}

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The image to push: HOST[:PORT]/REPO:TAG, oci:DIR[:TAG], or NAME[:TAG] (no registry) for the
    /// local Docker engine's image store.
    #[arg(long, short = 't')]
    tag: String,
    /// Base OS image (needs glibc for the JDK to run). Required: no default registry is reachable.
    #[arg(long = "fromImage", alias = "from-image")]
    from_image: String,
    #[command(flatten)]
    install: InstallArgs,
    /// Files to place in the image, FILE:/IMAGE/PATH (or FILE, placed under /u01/files/).
    #[arg(long = "addFile", alias = "add-file", value_delimiter = ',')]
    add_files: Vec<String>,
    /// One or more platforms; several give an OCI image index.
    #[arg(long, default_value = "linux/amd64", value_delimiter = ',')]
    platform: Vec<String>,
    /// Print the plan and push nothing.
    #[arg(long = "dryRun", alias = "dry-run")]
    pub dry_run: bool,
    #[command(flatten)]
    build_engine: super::build_engine::BuildEngineArgs,
    #[command(flatten)]
    steps: super::not_yet::StepArgs,
}

impl Args {
    /// The typed job these flags describe.
    pub fn job(&self) -> anyhow::Result<Job> {
        self.build_engine.say();
        self.steps.check(true)?;
        let platforms = self
            .platform
            .iter()
            .map(|p| p.parse::<Platform>().context("--platform"))
            .collect::<anyhow::Result<_>>()?;
        let mut request = self.install.request(
            self.tag.parse::<ImageRef>().context("--tag")?,
            ImageRef::parse_source(&self.from_image).context("--fromImage")?,
            additional_files(&self.add_files),
            platforms,
        )?;
        request.step_network = self.build_engine.step_network();
        request.build_commands = self.steps.build_commands()?;
        request.package_manager = self.steps.package_manager()?;
        Ok(Job::Create(request))
    }
}

impl Args {
    /// What to ask Oracle's patch service for, when an account is given.
    pub fn online(&self) -> anyhow::Result<Option<super::aru::Online>> {
        self.install.online(self.steps.proxies())
    }

    pub fn wdt(&self) -> &WdtArgs {
        &self.install.wdt
    }
}

fn additional_files(specs: &[String]) -> Vec<(PathBuf, String)> {
    specs
        .iter()
        .map(|spec| match spec.split_once(':') {
            Some((file, dest)) => (PathBuf::from(file), dest.to_string()),
            None => {
                let name = std::path::Path::new(spec)
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                (PathBuf::from(spec), format!("/u01/files/{name}"))
            }
        })
        .collect()
}

pub async fn run(ctx: &Context, engine: &Engine, args: &Args) -> anyhow::Result<()> {
    let mut job = args.job()?;
    if let Some(online) = args.online()? {
        super::aru::prepare(&mut job, &online, engine).await?;
    }
    if !args.dry_run {
        args.wdt().check_templates()?;
        super::run_job(ctx, engine, &job).await?;
        return args.wdt().resolve_templates(&args.tag);
    }
    let Job::Create(request) = &job else {
        unreachable!("create flags make a create job")
    };
    let step = progress::step("checking installers and patches");
    let plans = create::plan_without_steps(engine, request)
        .await
        .context("create")?;
    step.finish_and_clear();
    let described = plans
        .iter()
        .map(|p| p.describe(request))
        .collect::<Result<Vec<_>, _>>()?;
    println!(
        "{}",
        serde_json::to_string_pretty(
            &serde_json::json!({"tag": request.tag.to_string(), "images": described})
        )?
    );
    Ok(())
}
