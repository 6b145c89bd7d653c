//! WIT's build-stage sections: `[before-jdk-install]`/`[after-jdk-install]`,
//! `[before-fmw-install]`/`[after-fmw-install]` and `[before-wdt-command]`/`[after-wdt-command]`
//! run in WIT's Dockerfile in the stage that installs the JDK, the Oracle Home or WDT (as the
//! image's user), and only the JDK, the Oracle Home (with its inventory) or WDT's homes are
//! copied from that stage into the image. Here each runs on the image as built up to that point,
//! and its layer keeps only what it changed there: before the JDK's layer and right after it,
//! before the Oracle Home's and after its patches, after the WDT files. Their ENV and LABEL last
//! for the section only, as a build stage's do.

use super::build::{base_layers, local_blob, BuildDir};
use super::steps::{run_section, BuildCommands};
use super::{Engine, RecipeError};
use crate::image::ImageConfig;
use crate::layer::LayerBlob;
use crate::transport::push::OutBlob;
use crate::transport::ResolvedImage;
use std::path::Path;

/// Removes from a step's upper directory everything not under one of `keep` (paths relative to
/// the root, no leading `/`), keeping the directories on the way to them. Blocking.
pub fn prune(upper: &Path, keep: &[String]) -> std::io::Result<()> {
    prune_dir(upper, upper, keep)
}

fn prune_dir(root: &Path, dir: &Path, keep: &[String]) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let rel = path
            .strip_prefix(root)
            .expect("under the root")
            .to_string_lossy()
            .into_owned();
        if keep
            .iter()
            .any(|k| rel == *k || rel.starts_with(&format!("{k}/")))
        {
            continue;
        }
        let kind = entry.file_type()?;
        if kind.is_dir() && keep.iter().any(|k| k.starts_with(&format!("{rel}/"))) {
            prune_dir(root, &path, keep)?;
        } else if kind.is_dir() {
            std::fs::remove_dir_all(&path)?;
        } else {
            std::fs::remove_file(&path)?;
        }
    }
    Ok(())
}

/// The image's layers to run a section on: `base`'s, then the build's `written` ones.
pub fn image_layers(base: &ResolvedImage, written: &[(LayerBlob, String)]) -> Vec<OutBlob> {
    let mut layers = base_layers(base);
    layers.extend(written.iter().map(|(layer, _)| local_blob(layer)));
    layers
}

/// Build-stage section `name` on the image made of `layers`, keeping what it changed under
/// `keep` (absolute image paths): its layer and how the image's history names it. `None` when
/// the file has no such section.
#[allow(clippy::too_many_arguments)]
pub async fn stage(
    engine: &Engine,
    dir: &BuildDir,
    layers: &[OutBlob],
    config: &ImageConfig,
    commands: &BuildCommands,
    name: &str,
    keep: &[&str],
    network: bool,
) -> Result<Option<(LayerBlob, String)>, RecipeError> {
    let directives = commands.stage(name);
    if directives.is_empty() {
        return Ok(None);
    }
    let relative: Vec<&str> = keep.iter().map(|k| k.trim_start_matches('/')).collect();
    let (Some(layer), _) = run_section(
        engine,
        dir,
        layers,
        config.clone(),
        commands,
        (name, directives),
        network,
        Some(&relative),
    )
    .await?
    else {
        return Ok(None);
    };
    let by = format!(
        "patchfarm: additionalBuildCommands [{name}] {} (kept under {})",
        commands.file.display(),
        keep.join(" ")
    );
    Ok(Some((layer, by)))
}

/// What every section of one build runs with.
pub struct Stages<'a> {
    pub engine: &'a Engine,
    pub dir: &'a BuildDir,
    pub base: &'a ResolvedImage,
    pub config: &'a ImageConfig,
    pub commands: &'a BuildCommands,
    pub network: bool,
    /// Who the sections run as, by id (`UID:GID`, the Oracle Home's owner): before the JDK's
    /// layer the image's account files do not name that user yet.
    pub user: String,
}

impl Stages<'_> {
    /// Section `name` on `base` with the build's `written` layers, keeping what it changed
    /// under `keep`.
    pub async fn run(
        &self,
        name: &str,
        keep: &[&str],
        written: &[(LayerBlob, String)],
    ) -> Result<Option<(LayerBlob, String)>, RecipeError> {
        let layers = image_layers(self.base, written);
        let mut config = self.config.clone();
        config.set_user(&self.user);
        // WIT's stages set no WORKDIR; the image's may not exist yet (runc would make it).
        config.set_working_dir("/");
        stage(
            self.engine,
            self.dir,
            &layers,
            &config,
            self.commands,
            name,
            keep,
            self.network,
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn pruning_keeps_only_what_is_under_the_kept_paths() {
        let dir = tempfile::tempdir().unwrap();
        let upper = dir.path();
        for file in [
            "u01/jdk/lib/security/cacerts",
            "u01/other/x",
            "etc/passwd",
            "u01/jdkfoo",
        ] {
            let path = upper.join(file);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, b"x").unwrap();
        }
        super::prune(upper, &["u01/jdk".to_string()]).unwrap();
        assert!(upper.join("u01/jdk/lib/security/cacerts").is_file());
        for gone in ["u01/other", "etc", "u01/jdkfoo"] {
            assert!(!upper.join(gone).exists(), "{gone}");
        }
    }
}
