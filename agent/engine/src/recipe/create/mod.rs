//! `create`: a WebLogic image from a base OS image — OS packages when asked, JDK layer at
//! JAVA_HOME, Oracle Home layer at ORACLE_HOME (installed natively or by Oracle's installers)
//! with the patches applied natively inside it or by OPatch in a layer on top, an optional WDT
//! layer, WIT's build-command sections where its stages run them — for one or several platforms
//! (an OCI index), with what went in recorded in labels.

mod finish;
mod image;
mod wdt;

pub use wdt::WdtRequest;

use super::build::{self, BuildDir};
use super::oui;
use super::owner::ResolvedOwner;
use super::packages::PackageInstall;
use super::patching::{self, DirHome, PatchRequest};
use super::sections::Stages;
use super::steps;
use super::{Engine, RecipeError, Target};
use crate::cache::{CacheKey, CachedItem};
use crate::image::{ImageConfig, ImageRef, Platform};
use crate::installer::{self, Jdk, OracleHome};
use crate::layer::writer::FileSource;
use crate::layer::{LayerBlob, LayerSpec, Owner};
use crate::opatch::{self, PatchSet};
use crate::transport::{PushReport, PushedImage, ResolvedImage};
use finish::{finish_plan, PlanParts};
use serde_json::json;
use std::collections::BTreeSet;
use std::path::PathBuf;

pub const JAVA_HOME: &str = "/u01/jdk";
pub const ORACLE_HOME: &str = "/u01/oracle";
pub const DOMAIN_HOME: &str = "/u01/domains/base_domain";
pub const WDT_HOME: &str = "/u01/wdt";
pub const WDT_MODEL_HOME: &str = "/u01/wdt/models";

/// Where WIT gives the group the owner's permissions for `--target OpenShift` (path, recursive):
/// OPatch's logs and lock and the domains' parent (and WDT's homes: [`WdtRequest::homes`]).
pub(crate) const OPENSHIFT_GROUP_WRITABLE: &[(&str, bool)] = &[
    ("/u01/oracle/cfgtoollogs", false),
    ("/u01/oracle/inventory/locks/oh.lock", false),
    ("/u01/domains", true),
];

#[derive(Clone, Debug)]
pub struct CreateRequest {
    pub tag: ImageRef,
    pub from_image: ImageRef,
    /// Installer type (`wls`, `wlsslim`, `fmw`, …) and version: cache key `<type>_<version>`.
    pub kind: String,
    pub version: String,
    /// JDK cache key `jdk_<version>`.
    pub jdk_version: String,
    pub patches: PatchRequest,
    pub chown: String,
    pub wdt: WdtRequest,
    /// WIT's `--target`.
    pub target: Target,
    /// Files placed into the image as `(host file, image path)`.
    pub additional_files: Vec<(PathBuf, String)>,
    pub platforms: Vec<Platform>,
    /// WIT's `--additionalBuildCommands` (run through the executor, on this machine only).
    pub build_commands: Option<super::steps::BuildCommands>,
    /// WIT's installer options (Oracle's installers only).
    pub installer_options: oui::InstallerOptions,
    /// `--buildNetwork`: build steps get the host's network (off by default).
    pub step_network: bool,
    /// WIT's `--packageManager`: OS packages installed on the base first (none by default).
    pub package_manager: super::packages::PackageManager,
}

/// Everything known and checked for one platform; the Oracle Home is unpacked and patched.
pub struct PlatformPlan {
    pub platform: Platform,
    pub base: ResolvedImage,
    pub owner: ResolvedOwner,
    pub jdk_item: CachedItem,
    /// The installers of the Oracle Home, in install order (one unless `--type` names a set).
    pub home_items: Vec<CachedItem>,
    pub wdt_item: Option<CachedItem>,
    pub jdk: Jdk,
    pub home: OracleHome,
    /// What the installers wrote outside the Oracle Home (a custom inventory), as (host
    /// directory, image path).
    pub extra_trees: Vec<(PathBuf, String)>,
    pub patches: PatchSet,
    /// The patches go in through the image's own OPatch (a build step), not natively.
    pub by_opatch: bool,
    /// The OPatch patch that upgrades OPatch first (`--opatchBugNumber`, WIT's default).
    pub opatch_upgrade: Option<CachedItem>,
    /// WIT's os_update stage on the base: `[initial-build-commands]` and the OS packages
    /// `--packageManager` installed, the first new layers.
    pub os_update_layers: Vec<(LayerBlob, String)>,
    /// What `--packageManager` installs (described by a dry run, which installs nothing).
    pub os_packages: Option<PackageInstall>,
    /// The Oracle Home comes from Oracle's installers (a dry run does not run them).
    pub by_installer: bool,
    pub config: ImageConfig,
    dir: BuildDir,
}

/// The `inventory_loc` an inventory pointer names.
pub(crate) fn inventory_dir(pointer: &str) -> Option<String> {
    installer::key_values(pointer)
        .get("inventory_loc")
        .filter(|v| v.starts_with('/'))
        .cloned()
}

async fn cached(engine: &Engine, key: CacheKey, arch: &str) -> Result<CachedItem, RecipeError> {
    let (cache, arch) = (engine.cache.clone(), arch.to_string());
    Ok(
        crate::spawn_blocking(move || cache.find_for_arch(&key, &arch))
            .await
            .expect("cache task")?,
    )
}

/// Validates inputs for every platform, unpacks and patches the Oracle Homes; pushes nothing.
pub async fn plan(
    engine: &Engine,
    request: &CreateRequest,
) -> Result<Vec<PlatformPlan>, RecipeError> {
    request.wdt.check_files()?;
    for (file, dest) in &request.additional_files {
        super::check_input_files("--additionalBuildFiles", [file])?;
        if !dest.starts_with('/') {
            return Err(RecipeError::input(
                format!("--additionalBuildFiles {}:{dest}", file.display()),
                "the image path must be absolute",
            ));
        }
    }
    if request.platforms.is_empty() {
        return Err(RecipeError::input(
            "--platform",
            "name at least one platform",
        ));
    }
    let mut plans = Vec::new();
    for platform in &request.platforms {
        plans.push(plan_platform(engine, request, platform, true).await?);
    }
    Ok(plans)
}

/// As [`plan`], running no build step (`--dryRun`): Oracle's installers and the OS package
/// install are described, not run; such a plan describes, it does not build.
pub async fn plan_without_steps(
    engine: &Engine,
    request: &CreateRequest,
) -> Result<Vec<PlatformPlan>, RecipeError> {
    request.wdt.check_files()?;
    let mut plans = Vec::new();
    for platform in &request.platforms {
        plans.push(plan_platform(engine, request, platform, false).await?);
    }
    Ok(plans)
}

async fn plan_platform(
    engine: &Engine,
    request: &CreateRequest,
    platform: &Platform,
    run_steps: bool,
) -> Result<PlatformPlan, RecipeError> {
    let arch = platform.wit_arch();
    let jdk_item = cached(
        engine,
        CacheKey::installer("jdk", &request.jdk_version, None)?,
        arch,
    )
    .await?;
    let set = installer::InstallerSet::parse(&request.kind)
        .map_err(|e| RecipeError::input("--type", e))?;
    let mut home_items = Vec::new();
    for installer in set.installers(&request.version) {
        let key = CacheKey::installer(installer, &request.version, None)?;
        home_items.push(cached(engine, key, arch).await?);
    }
    let wdt_item = request.wdt.installer(engine, arch).await?;
    let patch_keys = request.patches.keys(&request.kind, &request.version)?;
    let patches = patching::open_patches(engine, patch_keys, arch).await?;

    let dir = BuildDir::new(engine)?;
    build::check_signed_base(engine, "--fromImage", &request.from_image).await?;
    let mut base = build::fetch_base(engine, &request.from_image, platform).await?;
    let owner = build::resolve_owner(engine, &base, &request.chown).await?;
    // WIT's os_update stage: OS packages on the base before anything else, when asked.
    let section: &[String] = request
        .build_commands
        .as_ref()
        .map_or(&[], |c| c.packages.as_slice());
    if let Some(commands) = request
        .build_commands
        .as_ref()
        .filter(|_| request.wdt.is_empty())
    {
        for name in [steps::BEFORE_WDT, steps::AFTER_WDT] {
            if let Some((line, _)) = commands.stage(name).first() {
                return Err(RecipeError::input(
                    format!("{}:{line}", commands.file.display()),
                    format!("[{name}] runs where WDT is installed, and this build places no WDT files (--wdtModel, --wdtArchive, --wdtVariables)"),
                ));
            }
        }
    }
    if let (Some(_), Some(commands)) = (request.wdt.domain_build(), &request.build_commands) {
        refuse_wdt_sections(commands)?;
    }
    let install = PackageInstall::of(request.package_manager, &request.kind, section);
    if let (None, Some(commands)) = (&install, &request.build_commands) {
        if !commands.packages.is_empty() {
            return Err(RecipeError::input(
                format!("{}:{}", commands.file.display(), commands.packages_line),
                format!("[package-manager-packages] names OS packages for a package manager to install, and --packageManager {} installs none here: name it (APTGET, YUM, DNF, MICRODNF, APK, ZYPPER)", request.package_manager),
            ));
        }
    }
    let mut under_oracle = build::base_layers(&base);
    let mut os_update_layers = Vec::new();
    // WIT's [initial-build-commands]: first in its os_update stage, as root, and the final image
    // is built from that stage, so everything it changes lands, ENV and LABEL too.
    let initial = request
        .build_commands
        .as_ref()
        .filter(|c| run_steps && !c.stage(steps::INITIAL).is_empty());
    if let Some(commands) = initial {
        let mut config = base.config.clone();
        config.set_user("0:0");
        config.set_working_dir("/");
        let section = (steps::INITIAL, commands.stage(steps::INITIAL));
        let (layer, after) = steps::run_section(
            engine,
            &dir,
            &under_oracle,
            config,
            commands,
            section,
            request.step_network,
            None,
        )
        .await?;
        for (name, value) in after.env() {
            base.config.set_env(&name, &value);
        }
        for (key, value) in after.labels() {
            base.config.set_label(&key, &value);
        }
        if let Some(layer) = layer {
            under_oracle.push(build::local_blob(&layer));
            let by = format!(
                "patchfarm: additionalBuildCommands [{}] {}",
                steps::INITIAL,
                commands.file.display()
            );
            os_update_layers.push((layer, by));
        }
    }
    match &install {
        Some(install) if run_steps => {
            let layer = install
                .layer(
                    engine,
                    &dir,
                    &under_oracle,
                    &base.config,
                    request.step_network,
                )
                .await?;
            under_oracle.push(build::local_blob(&layer));
            os_update_layers.push((layer, install.created_by()));
        }
        _ => {}
    }
    let (home_path, jdk_path) = (dir.path().join("oracle"), dir.path().join("jdk"));
    let ji = jdk_item.clone();
    let jdk = crate::spawn_blocking(move || {
        installer::unpack_jdk(&ji.entry.key, &ji.path, &ji.entry.file_name, &jdk_path)
    })
    .await
    .expect("unpack task")?;
    // Oracle's own installers run through the executor; installed-home archives unpack natively.
    let oui_installers: Vec<Option<String>> = home_items
        .iter()
        .map(|item| oui::installer_in(&item.path, &item.entry.file_name))
        .collect();
    let mut extra_trees = Vec::new();
    let by_installer = oui_installers.iter().any(Option::is_some);
    let home = if by_installer {
        if let Some(i) = oui_installers.iter().position(Option::is_none) {
            return Err(RecipeError::input(
                format!("installer {}", home_items[i].entry.key),
                "an installed Oracle Home archive cannot be mixed with Oracle installers in one set: cache the set's installers alike",
            ));
        }
        if !run_steps {
            // Described, not run: the home the installers would write, as far as known.
            let root = home_path.join("0");
            std::fs::create_dir_all(&root).map_err(|e| {
                RecipeError::input("the build directory", format!("{}: {e}", root.display()))
            })?;
            OracleHome {
                root,
                version: request.version.clone(),
                products: Vec::new(),
            }
        } else {
            let items: Vec<(CachedItem, String)> = home_items
                .iter()
                .cloned()
                .zip(oui_installers.into_iter().flatten())
                .collect();
            let (home, extras) = oui::install(
                engine,
                &dir,
                &under_oracle,
                &jdk,
                &owner,
                &set,
                &request.version,
                &items,
                &home_path.join("0"),
                &request.installer_options,
                request.step_network,
                request
                    .build_commands
                    .as_ref()
                    .map(|commands| (commands, base.config.clone())),
            )
            .await?;
            extra_trees = extras;
            home
        }
    } else {
        if !request.installer_options.is_empty() {
            return Err(RecipeError::input(
                "--installerResponseFile/--inventoryPointerFile/--inventoryPointerInstallLoc",
                format!("they configure Oracle's installer, and {} is an installed Oracle Home archive (no installer runs)", home_items[0].entry.key),
            ));
        }
        let (hi, hp) = (home_items.clone(), home_path.clone());
        crate::spawn_blocking(move || {
            let parts: Vec<_> = hi
                .iter()
                .map(|item| installer::HomePart {
                    key: &item.entry.key,
                    archive: &item.path,
                    file_name: &item.entry.file_name,
                })
                .collect();
            installer::unpack_oracle_homes(&parts, &hp)
        })
        .await
        .expect("unpack task")?
    };
    let parts = PlanParts {
        dir,
        base,
        owner,
        jdk_item,
        home_items,
        wdt_item,
        jdk,
        patches,
        home,
        extra_trees,
        os_update_layers,
        os_packages: install,
        by_installer,
        run_steps,
    };
    finish_plan(engine, request, platform, parts).await
}

/// WIT runs `[before-wdt-command]`/`[after-wdt-command]` around WDT in its own stage; with a
/// domain WDT builds, patchfarm does not run them there yet, and says so rather than skip them.
pub(crate) fn refuse_wdt_sections(commands: &steps::BuildCommands) -> Result<(), RecipeError> {
    for name in [steps::BEFORE_WDT, steps::AFTER_WDT] {
        if let Some((line, _)) = commands.stage(name).first() {
            return Err(RecipeError::input(
                format!("{}:{line}", commands.file.display()),
                format!("[{name}] runs beside WDT in its stage, and patchfarm does not run sections there when WDT builds the domain: move the commands to [final-build-commands] (they run on the domain), or use --wdtModelOnly"),
            ));
        }
    }
    Ok(())
}

/// Plans, builds and pushes: one image, or an index when several platforms are asked for.
pub async fn run(engine: &Engine, request: &CreateRequest) -> Result<PushReport, RecipeError> {
    let plans = plan(engine, request).await?;
    push(engine, request, &plans).await
}

/// Builds every planned platform and pushes: one image, or an OCI index over several. The plans
/// hold the unpacked installers and built layers, so they must outlive this call.
pub async fn push(
    engine: &Engine,
    request: &CreateRequest,
    plans: &[PlatformPlan],
) -> Result<PushReport, RecipeError> {
    let mut images = Vec::new();
    for plan in plans {
        images.push((plan.build(engine, request).await?, plan.platform.clone()));
    }
    match images.as_slice() {
        [(image, _)] => build::publish(engine, image, &request.tag).await,
        _ => build::publish_index(engine, &images, &request.tag).await,
    }
}
