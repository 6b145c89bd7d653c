//! The second half of planning a `create` image: the patches checked against the unpacked
//! Oracle Home (and applied to it, unless OPatch will), OPatch's own patch found, and the
//! image's config and labels written.

use super::*;

/// What planning gathered before the patches are checked and applied.
pub(super) struct PlanParts {
    pub(super) dir: BuildDir,
    pub(super) base: ResolvedImage,
    pub(super) owner: ResolvedOwner,
    pub(super) jdk_item: CachedItem,
    pub(super) home_items: Vec<CachedItem>,
    pub(super) wdt_item: Option<CachedItem>,
    pub(super) jdk: Jdk,
    pub(super) patches: Vec<opatch::Patch>,
    pub(super) home: OracleHome,
    pub(super) extra_trees: Vec<(PathBuf, String)>,
    pub(super) os_update_layers: Vec<(LayerBlob, String)>,
    pub(super) os_packages: Option<PackageInstall>,
    pub(super) by_installer: bool,
    /// False for a dry run: the installers and the OS package install did not run.
    pub(super) run_steps: bool,
}

/// Checks and applies the patches to the unpacked home and writes the config: the rest of a plan.
pub(super) async fn finish_plan(
    engine: &Engine,
    request: &CreateRequest,
    platform: &Platform,
    parts: PlanParts,
) -> Result<PlatformPlan, RecipeError> {
    let PlanParts {
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
        os_packages,
        by_installer,
        run_steps,
    } = parts;
    let version = request.version.clone();
    let first_key = home_items[0].entry.key.clone();
    let (mode, strict) = (request.patches.mode, request.patches.strict_order);
    // A home the installers have not written yet (a dry run) has no files to patch.
    let home_written = !by_installer || run_steps;
    let (home, patch_set, by_opatch) = crate::spawn_blocking(move || -> Result<_, RecipeError> {
        if home.version != version {
            return Err(RecipeError::input(
                format!("installer {first_key}"),
                format!(
                    "its inventory/registry.xml says version {}, not {version}",
                    home.version
                ),
            ));
        }
        let checked = opatch::check(patches, &home.version, &BTreeSet::new(), strict)?;
        let by_opatch = mode.uses_opatch(&checked)?;
        if !by_opatch && home_written {
            let changes = opatch::apply(&checked, &mut DirHome { root: &home.root })?;
            patching::write_changes(&home.root, &changes)?;
        }
        Ok((home, checked, by_opatch))
    })
    .await
    .expect("patch task")?;
    // WIT upgrades OPatch when it applies patches; patchfarm when OPatch is what applies them.
    let opatch_upgrade = if patch_set.patches.is_empty() {
        None
    } else {
        patching::opatch_upgrade(engine, &request.patches, &home.version, by_opatch).await?
    };

    let mut config = base.config.clone();
    let path = config
        .env_var("PATH")
        .unwrap_or_else(|| "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into());
    config.set_env("JAVA_HOME", JAVA_HOME);
    config.set_env("ORACLE_HOME", ORACLE_HOME);
    let domain = request.wdt.domain_build();
    let domain_home = domain.map_or(DOMAIN_HOME, |d| d.domain_home.trim_end_matches('/'));
    config.set_env("DOMAIN_HOME", domain_home);
    config.set_env(
        "LD_LIBRARY_PATH",
        &format!("{ORACLE_HOME}/oracle_common/adr"),
    );
    // WIT's final stage: the domain's bin on the PATH and its home the WORKDIR when WDT built
    // one; WDT_MODEL_HOME only where the models stay in the image.
    let domain_bin = match domain {
        Some(_) => format!(":{domain_home}/bin"),
        None => String::new(),
    };
    config.set_env("PATH", &format!("{path}:{JAVA_HOME}/bin:{ORACLE_HOME}/oracle_common/common/bin:{ORACLE_HOME}/wlserver/common/bin{domain_bin}"));
    if !request.wdt.is_empty() {
        config.set_env("WDT_HOME", request.wdt.home());
        if domain.is_none() {
            config.set_env("WDT_MODEL_HOME", &request.wdt.model_home());
        }
    }
    config.set_user(&owner.user);
    config.set_working_dir(if domain.is_some() {
        domain_home
    } else {
        ORACLE_HOME
    });
    config.set_label("com.oracle.weblogic.imagetool.buildid", "patchfarm");
    config.set_label("org.patchfarm.recipe", "create");
    config.set_label("org.patchfarm.product.type", &request.kind);
    config.set_label("org.patchfarm.product.version", &home.version);
    config.set_label("org.patchfarm.product.installed", &home.products.join(","));
    config.set_label(
        "org.patchfarm.jdk.version",
        jdk.version.as_deref().unwrap_or(&request.jdk_version),
    );
    config.set_label("org.patchfarm.patches", &patch_set.ids().join(","));
    if let Some((_, choice)) = &request.patches.catalog {
        let keys = request.patches.keys(&request.kind, &request.version)?;
        config.set_label("org.patchfarm.psu", &keys[0].to_string());
        config.set_label(
            "org.patchfarm.catalog.choice",
            if *choice == opatch::CatalogChoice::Recommended {
                "recommendedPatches"
            } else {
                "latestPSU"
            },
        );
    }
    let mut inputs: std::collections::BTreeMap<String, String> = patch_set.digests();
    for item in [&jdk_item]
        .into_iter()
        .chain(&home_items)
        .chain(wdt_item.as_ref())
        .chain(opatch_upgrade.as_ref())
    {
        inputs.insert(item.entry.key.clone(), item.entry.digest.to_string());
    }
    config.set_label(
        "org.patchfarm.inputs",
        &serde_json::to_string(&inputs).expect("map serializes"),
    );
    Ok(PlatformPlan {
        platform: platform.clone(),
        base,
        owner,
        jdk_item,
        home_items,
        wdt_item,
        jdk,
        home,
        extra_trees,
        patches: patch_set,
        by_opatch,
        opatch_upgrade,
        os_update_layers,
        os_packages,
        by_installer,
        config,
        dir,
    })
}
