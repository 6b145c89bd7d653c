//! Patches applied by the image's own OPatch, as WIT's Dockerfile applies them: OPatch first
//! upgraded from its own patch (`jar -xf`, then `java -jar 6880880/opatch_generic.jar -silent
//! … oracle_home=…`), the patch zips given read-only under `/tmp/imagetool/patches`, `opatch
//! napply -silent -oh … -nonrollbackable -phBaseDir …` (or `opatch apply` one patch at a time,
//! with `--strictPatchOrdering`) and `opatch util cleanup`, all run as the Oracle Home's owner
//! in build steps, and what they changed captured as one layer on top of the image built so far.

use super::build::BuildDir;
use super::{step_layer, Engine, RecipeError};
use crate::image::ImageConfig;
use crate::layer::LayerBlob;
use crate::opatch::PatchSet;
use crate::transport::{PushedImage, ResolvedImage};
use patchfarm_executor::{Input, Step};

/// Where WIT's Dockerfile puts the patches, inside the image being built.
const PATCHES_DIR: &str = "/tmp/imagetool/patches";
/// Where the OPatch patch is given (read-only), and where it is unpacked to run its installer.
const OPATCH_ZIP_DIR: &str = "/tmp/imagetool/opatch-patch";
const OPATCH_WORK_DIR: &str = "/tmp/imagetool-opatch";

/// One OPatch run: which patches, on which Oracle Home, as whom.
pub struct OpatchRun<'a> {
    pub set: &'a PatchSet,
    /// OPatch applies `set` (false: it was applied natively, only the upgrade runs).
    pub apply: bool,
    /// The OPatch patch that upgrades OPatch first (`--opatchBugNumber`).
    pub upgrade: Option<&'a crate::cache::CachedItem>,
    /// The image's JDK (WIT runs OPatch's installer with it).
    pub java_home: &'a str,
    pub oracle_home: &'a str,
    pub uid: u32,
    pub gid: u32,
    /// `--strictPatchOrdering`: `opatch apply` per patch, in order, instead of one `napply`.
    pub strict_order: bool,
    /// `--buildNetwork`.
    pub network: bool,
}

impl OpatchRun<'_> {
    /// The file each patch is given to OPatch as (its name as added, when that is a plain one).
    fn staged_name(patch: &crate::opatch::Patch) -> String {
        let plain = !patch.file_name.is_empty()
            && !patch.file_name.contains('/')
            && !patch.file_name.starts_with('.');
        if plain {
            patch.file_name.clone()
        } else {
            format!("p{}.zip", patch.key)
        }
    }

    /// The OPatch patch as given to the step: its name as added, when that is a plain one.
    fn upgrade_name(item: &crate::cache::CachedItem) -> String {
        let name = &item.entry.file_name;
        if !name.is_empty() && !name.contains('/') && !name.starts_with('.') {
            name.clone()
        } else {
            format!("p{}.zip", item.entry.key)
        }
    }

    /// WIT's command lines, as `/bin/sh -c` scripts (WIT prints OPatch's logs when it fails).
    fn commands(&self) -> Vec<String> {
        let oh = self.oracle_home;
        let mut lines = Vec::new();
        if let Some(item) = self.upgrade {
            let (java, zip) = (self.java_home, Self::upgrade_name(item));
            lines.push(format!(
                "mkdir -p {OPATCH_WORK_DIR} && cd {OPATCH_WORK_DIR} && {java}/bin/jar -xf {OPATCH_ZIP_DIR}/{zip} && {java}/bin/java -jar {OPATCH_WORK_DIR}/6880880/opatch_generic.jar -silent -ignoreSysPrereqs -force -novalidation oracle_home={oh}"
            ));
        }
        if !self.apply || self.set.patches.is_empty() {
            return lines;
        }
        let opatch = format!("{oh}/OPatch/opatch");
        let cleanup = format!("{opatch} util cleanup -silent -oh {oh}");
        let show_logs = format!("(cat {oh}/cfgtoollogs/opatch/opatch*.log; exit 1)");
        if self.strict_order {
            lines.extend(self.set.patches.iter().map(|p| {
                format!(
                    "{opatch} apply -silent -oh {oh} -nonrollbackable {PATCHES_DIR}/{} || {show_logs}",
                    Self::staged_name(p)
                )
            }));
            lines.push(cleanup);
        } else {
            lines.push(format!(
                "{opatch} napply -silent -oh {oh} -nonrollbackable -phBaseDir {PATCHES_DIR} && {cleanup} || {show_logs}"
            ));
        }
        lines
    }

    /// `image` (assembled from `base` and the build's `layers`) with the patches applied by
    /// OPatch: one more layer on top. Returns the new image and its layers.
    pub async fn on_top(
        &self,
        engine: &Engine,
        dir: &BuildDir,
        base: &ResolvedImage,
        mut layers: Vec<(LayerBlob, String)>,
        image: PushedImage,
    ) -> Result<(PushedImage, Vec<(LayerBlob, String)>), RecipeError> {
        let ids = if self.apply {
            self.set.ids().join(",")
        } else {
            String::new()
        };
        let what = match self.upgrade {
            Some(item) => format!("OPatch upgraded from {}, patches [{ids}]", item.entry.key),
            None => format!("patches [{ids}] with the image's OPatch"),
        };
        let fail = |e: String| RecipeError::input(what.clone(), e);
        let mut config = ImageConfig::parse(&image.config_bytes, "built config")
            .expect("a config this build wrote parses");
        let staged = dir.path().join("opatch-patches");
        std::fs::create_dir_all(&staged).map_err(|e| fail(e.to_string()))?;
        let natively: &[crate::opatch::Patch] = if self.apply { &self.set.patches } else { &[] };
        for patch in natively {
            step_layer::stage_readable(&patch.zip, &staged.join(Self::staged_name(patch)))
                .map_err(|e| fail(format!("staging {}: {e}", patch.key)))?;
        }
        let upgrade_dir = dir.path().join("opatch-upgrade");
        if let Some(item) = self.upgrade {
            step_layer::stage_readable(&item.path, &upgrade_dir.join(Self::upgrade_name(item)))
                .map_err(|e| fail(format!("staging {}: {e}", item.entry.key)))?;
        }
        let mut env: Vec<String> = config
            .env()
            .into_iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        env.push("OPATCH_NO_FUSER=true".into());
        let steps: Vec<Step> = self
            .commands()
            .iter()
            .map(|command| {
                let mut step = Step::shell(command);
                step.env = env.clone();
                step.cwd = self.oracle_home.into();
                (step.uid, step.gid) = (self.uid, self.gid);
                step.network = self.network;
                step.inputs.push(Input {
                    host: staged.clone(),
                    dest: PATCHES_DIR.into(),
                });
                if self.upgrade.is_some() {
                    step.inputs.push(Input {
                        host: upgrade_dir.clone(),
                        dest: OPATCH_ZIP_DIR.into(),
                    });
                }
                step
            })
            .collect();
        let blob = step_layer::run(engine, dir, &image.layers, "opatch", &steps, &what).await?;
        layers.push((
            blob,
            match self.upgrade {
                Some(item) => format!(
                    "patchfarm: OPatch upgraded from {}, opatch napply [{ids}] on {}",
                    item.entry.key, self.oracle_home
                ),
                None => format!("patchfarm: opatch napply [{ids}] on {}", self.oracle_home),
            },
        ));
        // Assembled again from the base's layers, now with OPatch's layer on top.
        config.set_layers(&base.config.diff_ids(), base.config.history());
        let image = super::build::assemble(engine, base, config, &layers);
        Ok((image, layers))
    }
}
