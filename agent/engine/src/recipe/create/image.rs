//! A planned `create` image written out: its layers in WIT's order (the JDK, the Oracle Home,
//! WDT's and the added files), the build steps around them (WIT's stage sections, OPatch, the
//! final section), and its dry-run description.

use super::*;

impl PlatformPlan {
    fn home_keys(&self) -> Vec<&str> {
        self.home_items
            .iter()
            .map(|i| i.entry.key.as_str())
            .collect()
    }

    /// What the Oracle Home's files are made of, when archives alone say it: the installed-home
    /// archives in order and the patches applied natively (none when OPatch applies them later).
    /// A home Oracle's installers wrote is not named so: what they write is theirs to decide.
    fn home_identity(&self) -> Option<String> {
        if self.by_installer {
            return None;
        }
        let homes: Vec<String> = self
            .home_items
            .iter()
            .map(|i| i.entry.digest.to_string())
            .collect();
        let patches: Vec<String> = if self.by_opatch {
            Vec::new()
        } else {
            self.patches
                .patches
                .iter()
                .map(|p| p.digest.to_string())
                .collect()
        };
        Some(format!(
            "oracle home [{}] patched natively with [{}]",
            homes.join(","),
            patches.join(",")
        ))
    }

    fn layer_specs(
        &self,
        request: &CreateRequest,
    ) -> Result<Vec<(LayerSpec, String)>, RecipeError> {
        let owner = self.owner.owner;
        let mut jdk = LayerSpec::new();
        build::add_account_files(&mut jdk, &self.owner)?;
        jdk.add_dir("/u01", 0o755, owner)?;
        jdk.add_host_tree(&self.jdk.root, JAVA_HOME, owner)?;
        // Every layer states /u01 itself: an implicit parent would be root's and win over the
        // JDK layer's entry in the merged image.
        let mut home = LayerSpec::new();
        home.add_dir("/u01", 0o755, owner)?;
        home.add_host_tree(&self.home.root, ORACLE_HOME, owner)?;
        home.add_dir(&format!("{ORACLE_HOME}/oraInventory"), 0o750, owner)?;
        for (tree, at) in &self.extra_trees {
            home.add_host_tree(tree, at, owner)?;
        }
        let options = &request.installer_options;
        let pointer_dir = options.pointer_dir()?;
        home.add_dir(&pointer_dir, 0o755, owner)?;
        home.add_bytes(
            &format!("{}/oraInst.loc", pointer_dir.trim_end_matches('/')),
            options.pointer_text(&self.owner.group)?.into_bytes(),
            0o644,
            owner,
        )?;
        home.add_dir("/u01/domains", 0o750, owner)?;
        let mut layers = vec![
            (
                jdk,
                format!(
                    "{}{} at {JAVA_HOME}",
                    crate::recipe::build::JDK_LAYER_HISTORY,
                    self.jdk_item.entry.key
                ),
            ),
            (
                home,
                format!(
                    "patchfarm create: {} at {ORACLE_HOME} with patches [{}]",
                    self.home_keys().join("+"),
                    self.patches.ids().join(",")
                ),
            ),
        ];
        // WDT's files stay in the image only when no domain is built from them (WIT copies
        // only the domain out of its WDT stage).
        let placed = !request.wdt.is_empty() && request.wdt.domain_build().is_none();
        if placed || !request.additional_files.is_empty() {
            let mut extra = LayerSpec::new();
            extra.add_dir("/u01", 0o755, owner)?;
            if placed {
                request
                    .wdt
                    .add_to(&mut extra, self.wdt_item.as_ref(), owner)?;
            }
            for (file, dest) in &request.additional_files {
                extra.add_file(dest, FileSource::Path(file.clone()), 0o644, owner)?;
            }
            layers.push((
                extra,
                "patchfarm create: WDT model files and additional build files".into(),
            ));
        }
        for (spec, _) in &mut layers {
            request.target.apply(spec, OPENSHIFT_GROUP_WRITABLE)?;
            let homes = request.wdt.homes();
            let homes: Vec<(&str, bool)> = homes.iter().map(|(h, r)| (h.as_str(), *r)).collect();
            request.target.apply(spec, &homes)?;
        }
        Ok(layers)
    }

    /// The dry-run view of this platform's image.
    pub fn describe(&self, request: &CreateRequest) -> Result<serde_json::Value, RecipeError> {
        let layers: Vec<_> = self
            .layer_specs(request)?
            .iter()
            .map(|(spec, by)| json!({"createdBy": by, "entries": spec.len()}))
            .collect();
        Ok(json!({
            "platform": self.platform.to_string(),
            "base": {"image": self.base.reference.to_string(), "digest": self.base.manifest_digest.to_string()},
            "oracleHome": {"keys": self.home_keys(), "version": self.home.version, "products": self.home.products, "installedBy": if self.by_installer { "Oracle's installers, run as build steps" } else { "an installed Oracle Home archive, unpacked" }},
            "osPackages": self.os_packages.as_ref().map(|p| json!({"packageManager": p.manager.to_string(), "packages": p.packages, "command": p.script()})),
            "jdk": {"key": self.jdk_item.entry.key, "version": self.jdk.version},
            "patches": self.patches.patches.iter().map(|p| json!({"key": p.key.to_string(), "sha256": p.digest.to_string(), "description": p.inventory.description})).collect::<Vec<_>>(),
            "patchesAppliedBy": if self.by_opatch { "opatch" } else { "native" },
            "opatchUpgrade": self.opatch_upgrade.as_ref().map(|item| item.entry.key.clone()),
            "layers": layers,
            "config": {"env": self.config.env().into_iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>(), "user": self.config.user(), "workingDir": self.config.working_dir(), "labels": self.config.labels()},
        }))
    }

    /// Writes the layers and assembles this platform's image.
    pub async fn build(
        &self,
        engine: &Engine,
        request: &CreateRequest,
    ) -> Result<PushedImage, RecipeError> {
        let mut layers: Vec<(LayerBlob, String)> = self.os_update_layers.clone();
        let stages = request.build_commands.as_ref().map(|commands| Stages {
            engine,
            dir: &self.dir,
            base: &self.base,
            config: &self.config,
            commands,
            network: request.step_network,
            user: format!("{}:{}", self.owner.owner.uid, self.owner.owner.gid),
        });
        let pointer = request.installer_options.pointer_text(&self.owner.group)?;
        let mut home_keep = vec![ORACLE_HOME];
        let inventory = inventory_dir(&pointer);
        home_keep.extend(inventory.as_deref());
        // The JDK's layer comes first, the Oracle Home's second: WIT's stage sections go
        // around them.
        for (index, (spec, created_by)) in self.layer_specs(request)?.into_iter().enumerate() {
            let (before, after) = match index {
                0 => (Some(steps::BEFORE_JDK), Some(steps::AFTER_JDK)),
                // With Oracle's installers it ran in their sandbox, just before them.
                1 if self.by_installer => (None, None),
                1 => (Some(steps::BEFORE_FMW), None),
                _ => (None, None),
            };
            let keep: &[&str] = if index == 0 { &[JAVA_HOME] } else { &home_keep };
            if let (Some(stages), Some(name)) = (&stages, before) {
                layers.extend(stages.run(name, keep, &layers).await?);
            }
            let blob = match (index, self.home_identity()) {
                // The JDK's layer depends on the JDK archive and its owner alone: often built
                // before, when only the patches changed.
                (0, _) => {
                    let jdk = self.jdk_item.entry.digest.to_string();
                    let trees = [(self.jdk.root.as_path(), jdk.as_str())];
                    self.dir
                        .write_layer_cached(engine, spec, &trees, "the JDK")
                        .await?
                }
                (1, Some(home)) => {
                    let trees = [(self.home.root.as_path(), home.as_str())];
                    self.dir
                        .write_layer_cached(engine, spec, &trees, "the Oracle Home")
                        .await?
                }
                _ => self.dir.write_layer(engine, spec).await?,
            };
            layers.push((blob, created_by));
            if let (Some(stages), Some(name)) = (&stages, after) {
                layers.extend(stages.run(name, keep, &layers).await?);
            }
        }
        let mut built = build::assemble(engine, &self.base, self.config.clone(), &layers);
        if self.by_opatch || self.opatch_upgrade.is_some() {
            let run = crate::recipe::opatch_run::OpatchRun {
                set: &self.patches,
                apply: self.by_opatch,
                upgrade: self.opatch_upgrade.as_ref(),
                java_home: JAVA_HOME,
                oracle_home: ORACLE_HOME,
                uid: self.owner.owner.uid as u32,
                gid: self.owner.owner.gid as u32,
                strict_order: request.patches.strict_order,
                network: request.step_network,
            };
            (built, layers) = run
                .on_top(engine, &self.dir, &self.base, layers, built)
                .await?;
        }
        if let Some(stages) = &stages {
            let written = layers.len();
            let model_home = request.wdt.model_home();
            let wdt_keep = [request.wdt.home(), model_home.as_str()];
            for (name, keep) in [
                (steps::AFTER_FMW, home_keep.as_slice()),
                (steps::BEFORE_WDT, &wdt_keep),
                (steps::AFTER_WDT, &wdt_keep),
            ] {
                layers.extend(stages.run(name, keep, &layers).await?);
            }
            if layers.len() > written {
                built = build::assemble(engine, &self.base, self.config.clone(), &layers);
            }
        }
        if let (Some(domain), Some(installer)) = (request.wdt.domain_build(), &self.wdt_item) {
            let run = crate::recipe::domain::WdtRun {
                wdt: &request.wdt,
                domain,
                installer,
                owner: self.owner.owner,
                target: request.target,
                network: request.step_network,
            };
            return run
                .on_top(
                    engine,
                    &self.dir,
                    &self.base,
                    built,
                    request.build_commands.as_ref(),
                    None,
                )
                .await;
        }
        match &request.build_commands {
            Some(commands) if !commands.final_commands.is_empty() => {
                crate::recipe::steps::on_top(
                    engine,
                    &self.dir,
                    &self.base,
                    layers,
                    built,
                    commands,
                    request.step_network,
                )
                .await
            }
            _ => Ok(built),
        }
    }
}
