//! `update`: patches applied to an existing WebLogic image as exactly one new layer holding only
//! the changed files and the patch inventory — no copy of the Oracle Home (WIT's `update` adds
//! gigabytes). Files to patch are read from the image's merged layers; nothing is run.

use super::build::{self, BuildDir};
use super::create::WdtRequest;
use super::domain::{WdtOperation, WdtRun};
use super::owner::{name_of, parse_chown};
use super::patching::{self, PatchRequest};
use super::{Engine, RecipeError};
use crate::cache::CacheKey;
use crate::image::{ImageRef, Platform};
use crate::layer::{LayerSpec, Owner};
use crate::opatch::xml::Action;
use crate::opatch::{self, HomeFiles, OpatchError};
use crate::transport::PushReport;
use crate::tree::{EntryKind, TreeAnswer, TreeEntry, TreeQuery};
use serde::Serialize;

mod plan;
pub use plan::{plan, UpdatePlan};
use std::collections::{BTreeMap, BTreeSet};

#[derive(Clone, Debug)]
pub struct UpdateRequest {
    pub tag: ImageRef,
    pub from_image: ImageRef,
    pub patches: PatchRequest,
    /// Must match the Oracle Home's owner when given (WIT's IMG-0087).
    pub chown: Option<String>,
    pub wdt: WdtRequest,
    pub platform: Platform,
    /// WIT's `--target`.
    pub target: super::Target,
    /// WIT's `--additionalBuildCommands` (run through the executor, on this machine only).
    pub build_commands: Option<super::steps::BuildCommands>,
    /// `--buildNetwork`: build steps get the host's network (off by default).
    pub step_network: bool,
    /// WIT's `--type`: the product whose patches `--recommendedPatches`/`--latestPSU` pick
    /// (default: what the image's labels say, else `wls`).
    pub kind: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct UpdateOutcome {
    #[serde(flatten)]
    pub report: PushReport,
    pub applied: Vec<String>,
    /// Requested patches already in the image.
    pub skipped: Vec<String>,
    /// Every patch the new image holds, as its labels record them (the source's, then these).
    pub image_patches: Vec<String>,
}

/// The patches `config`'s labels say the image holds, in apply order.
fn labelled_patches(config: &crate::image::ImageConfig) -> Vec<String> {
    config
        .labels()
        .get("org.patchfarm.patches")
        .map(|p| {
            p.split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// The image's Oracle Home as prefetched from its layers.
struct ImageHome {
    home: String,
    answer: TreeAnswer,
}

impl ImageHome {
    fn entry(&self, rel: &str) -> Option<&TreeEntry> {
        self.answer.get(&format!("{}/{rel}", self.home))
    }
}

impl HomeFiles for ImageHome {
    fn read(&mut self, rel: &str) -> Result<Option<Vec<u8>>, OpatchError> {
        Ok(self.entry(rel).and_then(|e| e.content.clone()))
    }

    fn symlink_on_path(&mut self, rel: &str) -> Result<Option<String>, OpatchError> {
        let mut current = String::new();
        for part in rel.split('/') {
            current = if current.is_empty() {
                part.to_string()
            } else {
                format!("{current}/{part}")
            };
            if let Some(TreeEntry {
                kind: EntryKind::Symlink(_),
                ..
            }) = self.entry(&current)
            {
                return Ok(Some(current));
            }
        }
        Ok(None)
    }
}

fn ancestors(path: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = path.trim_start_matches('/');
    while let Some((parent, _)) = current.rsplit_once('/') {
        out.push(parent.to_string());
        current = parent;
    }
    out
}

/// Applies the requested patches (and WDT files) to `from_image` as one layer and pushes it.
pub async fn run(engine: &Engine, request: &UpdateRequest) -> Result<UpdateOutcome, RecipeError> {
    let UpdatePlan {
        base,
        tree,
        what,
        oracle_home,
        home,
        java_home,
        owner,
        user: _,
        group: _,
        version: _,
        skipped,
        set,
        by_opatch,
        upgrade,
    } = plan::plan_with(engine, request, false).await?;

    if set.patches.is_empty() && request.wdt.is_empty() && request.build_commands.is_none() {
        // Everything asked for is already there: the tag gets the same image (idempotent reruns).
        let report =
            super::copy::copy(engine, &request.from_image, &request.tag, &request.platform).await?;
        return Ok(UpdateOutcome {
            report,
            applied: Vec::new(),
            skipped,
            image_patches: labelled_patches(&base.config),
        });
    }

    // One lookup for every jar the patches rewrite, every path component they write through, and
    // the directories above the inventory records (their metadata is kept in the new layer).
    let mut query = TreeQuery::default();
    let natively: &[crate::opatch::Patch] = if by_opatch { &[] } else { &set.patches };
    for patch in natively {
        let record = format!(
            "{home}/inventory/oneoffs/{}/etc/config/inventory.xml",
            patch.id()
        );
        for action in &patch.actions {
            let full = format!("{home}/{}", action.target());
            query = if matches!(action, Action::Jar { .. }) {
                query.read(&full)
            } else {
                query.stat(&full)
            };
            for a in ancestors(&full) {
                query = query.stat(&a);
            }
        }
        for a in ancestors(&record) {
            query = query.stat(&a);
        }
    }
    let answer = tree.lookup(&query).await?;
    let mut image_home = ImageHome {
        home: home.clone(),
        answer,
    };
    let set_for_apply = set.clone();
    let (changes, image_home) = if by_opatch {
        (Ok(opatch::Changes::default()), image_home)
    } else {
        crate::spawn_blocking(move || {
            let changes = opatch::apply(&set_for_apply, &mut image_home);
            (changes, image_home)
        })
        .await
        .expect("patch task")
    };
    let changes = changes?;

    let mut spec = LayerSpec::new();
    // Parents keep the metadata they have in the image; new ones get the home's owner, and
    // implicit ones above the home what a runtime gives them (root, 0755).
    let mut parents = BTreeSet::new();
    for rel in changes.files.keys() {
        parents.extend(ancestors(&format!("{home}/{rel}")));
    }
    for dir in &parents {
        match image_home.answer.get(dir) {
            Some(e) => spec.add_dir(
                dir,
                e.mode & 0o7777,
                Owner {
                    uid: e.uid,
                    gid: e.gid,
                },
            )?,
            None if dir == &home || dir.starts_with(&format!("{home}/")) => {
                spec.add_dir(dir, 0o750, owner)?
            }
            None => spec.add_dir(dir, 0o755, Owner::default())?,
        }
    }
    for (rel, content) in &changes.files {
        let full = format!("{home}/{rel}");
        let mode = image_home
            .answer
            .get(&full)
            .map(|e| e.mode & 0o7777)
            .unwrap_or(0o640);
        spec.add_file(&full, content.clone(), mode, owner)?;
    }
    let wdt_item = request
        .wdt
        .installer(engine, request.platform.wit_arch())
        .await?;
    let mut config = base.config.clone();
    let domain = request.wdt.domain_build();
    if let Some(domain) = domain {
        if domain.operation != WdtOperation::Create {
            let home = domain.domain_home.trim_end_matches('/');
            let config_xml = format!("{}/config/config.xml", home.trim_start_matches('/'));
            let found = tree.lookup(&TreeQuery::default().stat(&config_xml)).await?;
            if found.get(&config_xml).is_none() {
                return Err(RecipeError::input(
                    &what,
                    format!("the image holds no domain at {home} (no config/config.xml), and --wdtOperation {} changes an existing one: give its --wdtDomainHome, or use --wdtOperation CREATE (WIT's IMG-0071)", domain.operation.name()),
                ));
            }
        }
        // WIT's update: the domain's home and bin in the environment.
        let home = domain.domain_home.trim_end_matches('/');
        config.set_env("DOMAIN_HOME", home);
        config.set_env("WDT_HOME", request.wdt.home());
        let path = config.env_var("PATH").unwrap_or_default();
        let bin = format!("{home}/bin");
        if !path.split(':').any(|p| p == bin) {
            config.set_env("PATH", &format!("{path}:{bin}"));
        }
    } else if !request.wdt.is_empty() {
        request.wdt.add_to(&mut spec, wdt_item.as_ref(), owner)?;
        config.set_env("WDT_HOME", request.wdt.home());
        config.set_env("WDT_MODEL_HOME", &request.wdt.model_home());
    }

    let labels = config.labels();
    let mut all = labelled_patches(&config);
    all.extend(set.ids());
    config.set_label("org.patchfarm.patches", &all.join(","));
    config.set_label("org.patchfarm.recipe", "update");
    let mut inputs: BTreeMap<String, String> = labels
        .get("org.patchfarm.inputs")
        .and_then(|j| serde_json::from_str(j).ok())
        .unwrap_or_default();
    inputs.extend(set.digests());
    if let Some(item) = &upgrade {
        inputs.insert(item.entry.key.clone(), item.entry.digest.to_string());
    }
    config.set_label(
        "org.patchfarm.inputs",
        &serde_json::to_string(&inputs).expect("map serializes"),
    );

    let dir = BuildDir::new(engine)?;
    request
        .target
        .apply(&mut spec, super::create::OPENSHIFT_GROUP_WRITABLE)?;
    let homes = request.wdt.homes();
    let homes: Vec<(&str, bool)> = homes.iter().map(|(h, r)| (h.as_str(), *r)).collect();
    request.target.apply(&mut spec, &homes)?;
    let mut layers = Vec::new();
    if !((by_opatch || domain.is_some()) && spec.is_empty()) {
        let created_by = if by_opatch {
            format!("patchfarm update: WDT files on {oracle_home}")
        } else {
            format!(
                "patchfarm update: patches [{}] on {oracle_home}",
                set.ids().join(",")
            )
        };
        layers.push((dir.write_layer(engine, spec).await?, created_by));
    }
    let mut image = build::assemble(engine, &base, config, &layers);
    if by_opatch || upgrade.is_some() {
        let run = super::opatch_run::OpatchRun {
            set: &set,
            apply: by_opatch,
            upgrade: upgrade.as_ref(),
            java_home: java_home.trim_end_matches('/'),
            oracle_home: oracle_home.trim_end_matches('/'),
            uid: owner.uid as u32,
            gid: owner.gid as u32,
            strict_order: request.patches.strict_order,
            network: request.step_network,
        };
        (image, layers) = run.on_top(engine, &dir, &base, layers, image).await?;
    }
    if let (Some(domain), Some(installer)) = (domain, &wdt_item) {
        let run = WdtRun {
            wdt: &request.wdt,
            domain,
            installer,
            owner,
            target: request.target,
            network: request.step_network,
        };
        image = run
            .on_top(
                engine,
                &dir,
                &base,
                image,
                request.build_commands.as_ref(),
                Some(&base.config),
            )
            .await?;
    } else if let Some(commands) = request
        .build_commands
        .as_ref()
        .filter(|c| !c.final_commands.is_empty())
    {
        image = super::steps::on_top(
            engine,
            &dir,
            &base,
            layers,
            image,
            commands,
            request.step_network,
        )
        .await?;
    }
    let report = build::publish(engine, &image, &request.tag).await?;
    Ok(UpdateOutcome {
        report,
        applied: set.ids(),
        skipped,
        image_patches: all,
    })
}
