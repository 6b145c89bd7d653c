//! WIT's `[after-jdk-install]` and `[after-fmw-install]`: in WIT's Dockerfile they run in the
//! build stage that installs the JDK or the Oracle Home (as the image's user), and only the JDK
//! or the Oracle Home (with its inventory) is copied from that stage into the image. Here each
//! runs on the image as built up to that point, and its layer keeps only what it changed there:
//! the JDK's section right after the JDK layer, the Oracle Home's after the patches. Their ENV
//! and LABEL last for the section only, as a build stage's do.

use super::build::{base_layers, BuildDir};
use super::steps::{run_section, BuildCommands, AFTER_FMW, AFTER_JDK};
use super::{Engine, RecipeError};
use crate::image::manifest::Descriptor;
use crate::image::ImageConfig;
use crate::layer::LayerBlob;
use crate::transport::push::{BlobOrigin, OutBlob};
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

fn local(layer: &LayerBlob) -> OutBlob {
    OutBlob {
        descriptor: Descriptor::new(layer.media_type, layer.digest.clone(), layer.size),
        origin: BlobOrigin::Local(layer.path.clone()),
    }
}

/// `[after-jdk-install]` on `base` with the build's `written` layers (the JDK's last), keeping
/// what it changed under `java_home`. `None` when the section is empty.
#[allow(clippy::too_many_arguments)]
pub async fn after_jdk(
    engine: &Engine,
    dir: &BuildDir,
    base: &ResolvedImage,
    written: &[(LayerBlob, String)],
    config: &ImageConfig,
    commands: &BuildCommands,
    java_home: &str,
    network: bool,
) -> Result<Option<(LayerBlob, String)>, RecipeError> {
    if commands.after_jdk.is_empty() {
        return Ok(None);
    }
    let mut layers = base_layers(base);
    layers.extend(written.iter().map(|(l, _)| local(l)));
    let keep = [java_home.trim_start_matches('/')];
    let (layer, _) = run_section(
        engine,
        dir,
        &layers,
        config.clone(),
        commands,
        (AFTER_JDK, &commands.after_jdk),
        network,
        Some(&keep),
    )
    .await?;
    let by = format!(
        "patchfarm: additionalBuildCommands [{AFTER_JDK}] {} (kept under {java_home})",
        commands.file.display()
    );
    Ok(Some((layer, by)))
}

/// `[after-fmw-install]` on the image made of `layers`, keeping what it changed under the
/// Oracle Home and the inventory. `None` when the section is empty.
#[allow(clippy::too_many_arguments)]
pub async fn after_fmw(
    engine: &Engine,
    dir: &BuildDir,
    layers: &[OutBlob],
    config: &ImageConfig,
    commands: &BuildCommands,
    oracle_home: &str,
    inventory: &[String],
    network: bool,
) -> Result<Option<(LayerBlob, String)>, RecipeError> {
    if commands.after_fmw.is_empty() {
        return Ok(None);
    }
    let mut keep = vec![oracle_home.trim_start_matches('/')];
    keep.extend(inventory.iter().map(|i| i.trim_start_matches('/')));
    let (layer, _) = run_section(
        engine,
        dir,
        layers,
        config.clone(),
        commands,
        (AFTER_FMW, &commands.after_fmw),
        network,
        Some(&keep),
    )
    .await?;
    let by = format!(
        "patchfarm: additionalBuildCommands [{AFTER_FMW}] {} (kept under {oracle_home})",
        commands.file.display()
    );
    Ok(Some((layer, by)))
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
