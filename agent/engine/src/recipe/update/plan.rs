//! The first half of `update`: the image's Oracle Home, owner and installed patches read, the
//! patches asked for opened and checked against them — nothing written — and its `--dryRun` view.

use super::*;

/// What an update will do, checked against the image before anything is written.
pub struct UpdatePlan {
    pub(super) base: crate::transport::ResolvedImage,
    pub(super) tree: crate::tree::MergedTree,
    pub(super) what: String,
    /// ORACLE_HOME as the image sets it, and relative to the root.
    pub(super) oracle_home: String,
    pub(super) home: String,
    pub(super) java_home: String,
    pub(super) owner: Owner,
    pub(super) user: String,
    pub(super) group: String,
    pub(super) version: String,
    pub(super) skipped: Vec<String>,
    pub(super) set: opatch::PatchSet,
    pub(super) by_opatch: bool,
    pub(super) upgrade: Option<crate::cache::CachedItem>,
}

impl UpdatePlan {
    /// The `--dryRun` view: what would be applied, skipped and run, and by whom.
    pub fn describe(&self, request: &UpdateRequest) -> serde_json::Value {
        let wdt = match request.wdt.domain_build() {
            Some(domain) => Some(serde_json::json!({
                "runs": domain.operation.script(),
                "domainHome": domain.domain_home,
                "domainType": domain.domain_type,
            })),
            None if !request.wdt.is_empty() => {
                Some(serde_json::json!({"modelHome": request.wdt.model_home()}))
            }
            None => None,
        };
        serde_json::json!({
            "fromImage": request.from_image.to_string(),
            "digest": self.base.manifest_digest.to_string(),
            "tag": request.tag.to_string(),
            "oracleHome": self.oracle_home,
            "version": self.version,
            "owner": format!("{}:{}", self.user, self.group),
            "patches": self.set.patches.iter().map(|p| serde_json::json!({"key": p.key.to_string(), "sha256": p.digest.to_string(), "description": p.inventory.description})).collect::<Vec<_>>(),
            "alreadyInTheImage": self.skipped,
            "patchesAppliedBy": if self.by_opatch { "opatch" } else { "native" },
            "opatchUpgrade": self.upgrade.as_ref().map(|item| item.entry.key.clone()),
            "wdt": wdt,
            "additionalBuildCommands": request.build_commands.as_ref().map(|c| c.file.display().to_string()),
        })
    }
}

/// Reads and checks everything an update needs — the image's Oracle Home, owner and installed
/// patches, the patches asked for — without writing anything.
pub async fn plan(engine: &Engine, request: &UpdateRequest) -> Result<UpdatePlan, RecipeError> {
    plan_with(engine, request, true).await
}

/// The plan; the owner's names are read from the image's account files only with `names` or a
/// `--chown` to check (those files sit in the JDK's layer of a patchfarm image, which `update`
/// otherwise never downloads).
pub(super) async fn plan_with(
    engine: &Engine,
    request: &UpdateRequest,
    names: bool,
) -> Result<UpdatePlan, RecipeError> {
    request.wdt.check_files()?;
    build::check_signed_base(engine, "--fromImage", &request.from_image).await?;
    let base = build::fetch_base(engine, &request.from_image, &request.platform).await?;
    let what = format!("--fromImage {}", request.from_image);
    let oracle_home = base.config.env_var("ORACLE_HOME").filter(|h| h.starts_with('/')).ok_or_else(|| {
        RecipeError::input(&what, "the image has no ORACLE_HOME in its environment; update patches WebLogic images (build one with `patchfarm create`)")
    })?;
    let java_home = base.config.env_var("JAVA_HOME").ok_or_else(|| {
        RecipeError::input(&what, "the image has no JAVA_HOME in its environment")
    })?;
    let home = oracle_home
        .trim_end_matches('/')
        .trim_start_matches('/')
        .to_string();
    let tree = build::tree_of(engine, &base);

    // One pass for the home's owner, version, installed patches (and the account files).
    let mut query = TreeQuery::default()
        .stat(&home)
        .read(&format!("{home}/inventory/registry.xml"))
        .list(&format!("{home}/inventory/oneoffs"));
    if names || request.chown.is_some() {
        query = query.read("etc/passwd").read("etc/group");
    }
    let facts = tree.lookup(&query).await?;
    // Layers written by some tools name only files; a runtime creates their parents. Then the
    // home's owner is its registry's.
    let home_entry = facts
        .get(&home)
        .or_else(|| facts.get(&format!("{home}/inventory/registry.xml")))
        .ok_or_else(|| {
            RecipeError::input(
                &what,
                format!("ORACLE_HOME {oracle_home} does not exist in the image"),
            )
        })?
        .clone();
    let text = |p: &str| {
        facts
            .get(p)
            .and_then(|e| e.content.as_ref())
            .map(|c| String::from_utf8_lossy(c).into_owned())
    };
    let registry = text(&format!("{home}/inventory/registry.xml")).ok_or_else(|| {
        RecipeError::input(
            &what,
            format!(
                "{oracle_home}/inventory/registry.xml is missing: not an installed Oracle Home"
            ),
        )
    })?;
    let (version, _) = crate::installer::parse_registry(&registry);
    let version = version.ok_or_else(|| {
        RecipeError::input(&what, "inventory/registry.xml names no product version")
    })?;
    let owner = Owner {
        uid: home_entry.uid,
        gid: home_entry.gid,
    };
    let (user, group) = (
        name_of(text("etc/passwd").as_deref(), owner.uid),
        name_of(text("etc/group").as_deref(), owner.gid),
    );
    if let Some(chown) = &request.chown {
        let (u, g) = parse_chown(chown)?;
        let same = |asked: &str, name: &str, id: u64| {
            asked == name || asked.parse::<u64>().ok() == Some(id)
        };
        if !same(&u, &user, owner.uid) || !same(&g, &group, owner.gid) {
            return Err(RecipeError::input(format!("--chown {chown}"), format!("the Oracle Home in the image is owned by {user}:{group}; update keeps that owner (as WIT's IMG-0087)")));
        }
    }
    let oneoffs = format!("{home}/inventory/oneoffs/");
    let installed: BTreeSet<String> = facts
        .listed
        .values()
        .flatten()
        .filter_map(|e| {
            e.path
                .strip_prefix(&oneoffs)
                .and_then(|rest| rest.split('/').next())
                .map(str::to_owned)
        })
        .collect();

    let kind = request
        .kind
        .clone()
        .or_else(|| {
            base.config
                .labels()
                .get("org.patchfarm.product.type")
                .cloned()
        })
        .unwrap_or_else(|| "wls".into());
    let keys: Vec<CacheKey> = request.patches.keys(&kind, &version)?;
    let (skipped_keys, wanted): (Vec<CacheKey>, Vec<CacheKey>) =
        keys.into_iter().partition(|k| installed.contains(&k.name));
    let skipped: Vec<String> = skipped_keys.iter().map(|k| k.to_string()).collect();
    let patches = patching::open_patches(engine, wanted, request.platform.wit_arch()).await?;
    let set = opatch::check(patches, &version, &installed, request.patches.strict_order)?;
    let by_opatch = request.patches.mode.uses_opatch(&set)?;
    let upgrade = if set.patches.is_empty() {
        None
    } else {
        patching::opatch_upgrade(engine, &request.patches, &version, by_opatch).await?
    };

    if let Some(commands) = &request.build_commands {
        // WIT's update Dockerfile runs [final-build-commands] only; refused, not ignored.
        if !commands.packages.is_empty() {
            return Err(RecipeError::input(
                commands.at(commands.packages_line),
                "[package-manager-packages]: update installs no OS packages (create does, on the base image)",
            ));
        }
        commands.only_stages(&[], |name| format!("[{name}]: update runs only [final-build-commands] (it installs neither a JDK nor an Oracle Home); create runs this section"))?;
    }
    Ok(UpdatePlan {
        base,
        tree,
        what,
        oracle_home,
        home,
        java_home,
        owner,
        user,
        group,
        version,
        skipped,
        set,
        by_opatch,
        upgrade,
    })
}
