//! `refreshAuxImage`: an auxiliary image moved to another WDT release, everything else kept. The
//! layers below the auxiliary content (the small base) stay as they are; everything the layers
//! from the first one that touches the WDT home onwards left visible — models, variables,
//! archives, account files — is copied byte for byte with its mode and owner into one new layer,
//! and the old `weblogic-deploy` is replaced by the new release's. Works on WIT's auxiliary images
//! as on patchfarm's.

use super::build::{self, fetch_base};
use super::{Engine, RecipeError};
use crate::cache::CacheKey;
use crate::image::{ImageRef, Platform};
use crate::layer::writer::Owner;
use crate::layer::LayerSpec;
use crate::transport::PushReport;
use crate::tree::{EntryKind, TreeEntry, TreeQuery};

/// Where WIT puts an auxiliary image's content when its config does not say (`--wdtHome`).
const DEFAULT_HOME: &str = "/auxiliary";

#[derive(Clone, Debug)]
pub struct AuxRefreshRequest {
    /// The auxiliary image in use today.
    pub source: ImageRef,
    pub tag: ImageRef,
    /// The WDT release to move to, cached as `wdt_<version>`.
    pub wdt_version: String,
    pub platform: Platform,
}

/// What the refresh did.
#[derive(Clone, Debug)]
pub struct AuxRefreshOutcome {
    pub report: PushReport,
    /// Files copied unchanged from the source (everything but the old WDT).
    pub files_kept: usize,
    /// The WDT release the source had, when its `VERSION.txt` says.
    pub previous_wdt: Option<String>,
    pub new_wdt: String,
}

/// `history` up to and including the entry of layer number `layers` (entries marked
/// `empty_layer` belong to no layer).
fn history_of_first_layers(history: &[serde_json::Value], layers: usize) -> Vec<serde_json::Value> {
    let mut seen = 0;
    history
        .iter()
        .take_while(|entry| {
            if seen == layers {
                return false;
            }
            if entry.get("empty_layer").and_then(|v| v.as_bool()) != Some(true) {
                seen += 1;
            }
            true
        })
        .cloned()
        .collect()
}

fn is_under(path: &str, dir: &str) -> bool {
    path == dir || path.strip_prefix(dir).is_some_and(|r| r.starts_with('/'))
}

/// Plans, builds and pushes the refreshed image.
pub async fn run(
    engine: &Engine,
    request: &AuxRefreshRequest,
) -> Result<AuxRefreshOutcome, RecipeError> {
    let key = CacheKey::installer("wdt", &request.wdt_version, None)?;
    let wdt = {
        let cache = engine.cache.clone();
        let arch = request.platform.wit_arch().to_string();
        crate::spawn_blocking(move || cache.find_for_arch(&key, &arch))
            .await
            .expect("cache task")?
    };
    let source = fetch_base(engine, &request.source, &request.platform).await?;
    let env = |name: &str| source.config.env_var(name).filter(|v| !v.is_empty());
    let home = env("AUXILIARY_IMAGE_PATH")
        .or_else(|| env("WDT_HOME"))
        .unwrap_or_else(|| DEFAULT_HOME.to_string());
    let home = crate::layer::writer::image_path(&home).map_err(|e| {
        RecipeError::input(
            format!("{}: WDT home {home}", request.source),
            e.to_string(),
        )
    })?;
    let deploy = format!("{home}/weblogic-deploy");

    let tree = build::tree_of(engine, &source);
    let listing = tree
        .lookup(&TreeQuery::default().stat(&home).list("/"))
        .await?;
    let everything: Vec<&TreeEntry> = listing.listed.values().flatten().collect();
    let not_aux = || {
        RecipeError::input(
            format!("refreshAuxImage {}", request.source),
            format!("holds no /{home}: not an auxiliary image (its config names no AUXILIARY_IMAGE_PATH or WDT_HOME, and WIT's default /auxiliary is absent)"),
        )
    };
    let home_entry = listing.get(&home).ok_or_else(not_aux)?;
    let first_aux_layer = everything
        .iter()
        .filter(|e| is_under(&e.path, &home))
        .map(|e| e.layer)
        .chain([home_entry.layer])
        .min()
        .ok_or_else(not_aux)?;

    let mut spec = LayerSpec::new().keep_setuid(true);
    let mut files = Vec::new();
    let owner_of = |e: &TreeEntry| Owner {
        uid: e.uid,
        gid: e.gid,
    };
    for entry in everything
        .iter()
        .filter(|e| e.layer >= first_aux_layer && !is_under(&e.path, &deploy))
        // The root itself (a layer's `./`) is not a path a layer can hold.
        .filter(|e| !matches!(e.path.as_str(), "" | "."))
    {
        let mode = entry.mode & 0o7777;
        match &entry.kind {
            EntryKind::Dir => spec.add_dir(&entry.path, mode, owner_of(entry))?,
            EntryKind::Symlink(target) => spec.add_symlink(&entry.path, target, owner_of(entry))?,
            EntryKind::File | EntryKind::Hardlink(_) => files.push(*entry),
            EntryKind::Other => {
                return Err(RecipeError::input(
                    format!("refreshAuxImage {}: /{}", request.source, entry.path),
                    "a device, fifo or socket: an auxiliary image holds files, links and directories only",
                ))
            }
        }
    }
    if home_entry.layer < first_aux_layer {
        spec.add_dir(&home, home_entry.mode & 0o7777, owner_of(home_entry))?;
    }
    let paths: Vec<&str> = files.iter().map(|e| e.path.as_str()).collect();
    let contents = tree.read_files(&paths).await?;
    for entry in &files {
        let content = contents
            .get(&entry.path)
            .and_then(|e| e.content.clone())
            .ok_or_else(|| {
                RecipeError::input(
                    format!("refreshAuxImage {}: /{}", request.source, entry.path),
                    "could not be read from the source image",
                )
            })?;
        spec.add_bytes(&entry.path, content, entry.mode & 0o7777, owner_of(entry))?;
    }
    let previous_wdt = tree
        .read_files(&[&format!("{deploy}/VERSION.txt")])
        .await?
        .into_values()
        .next()
        .and_then(|e| e.content)
        .and_then(|c| {
            String::from_utf8_lossy(&c)
                .split_whitespace()
                .last()
                .map(str::to_owned)
        });
    let wdt_owner = listing
        .get(&deploy)
        .map(owner_of)
        .unwrap_or_else(|| owner_of(home_entry));
    spec.add_zip(&wdt.path, &format!("/{home}"), wdt_owner)?;

    let dir = build::BuildDir::new(engine)?;
    let layer = dir.write_layer(engine, spec).await?;
    let mut config = source.config.clone();
    let diff_ids = config.diff_ids();
    let history = history_of_first_layers(&config.history(), first_aux_layer);
    config.set_layers(&diff_ids[..first_aux_layer], history);
    config.append_layer(
        &layer.diff_id,
        &engine.created(),
        &format!(
            "patchfarm refreshAuxImage --wdtVersion {} (from {})",
            request.wdt_version, request.source
        ),
        "patchfarm",
    );
    config.set_created(&engine.created());
    config.set_label("org.patchfarm.wdt.version", &request.wdt_version);
    config.set_label("org.patchfarm.wdt.digest", &wdt.entry.digest.to_string());
    let mut layers = build::base_layers(&source);
    layers.truncate(first_aux_layer);
    layers.push(build::local_blob(&layer));
    let annotation = |key| {
        source
            .manifest
            .annotations
            .get(key)
            .cloned()
            .unwrap_or_default()
    };
    let image = build::image_value(
        engine,
        layers,
        config,
        &annotation(build::ANNOTATION_BASE_NAME),
        &annotation(build::ANNOTATION_BASE_DIGEST),
    );
    let report = build::publish(engine, &image, &request.tag).await?;
    Ok(AuxRefreshOutcome {
        report,
        files_kept: files.len(),
        previous_wdt,
        new_wdt: request.wdt_version.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn history_is_cut_after_the_last_kept_layer() {
        let history = vec![
            json!({"created_by": "ADD rootfs"}),
            json!({"created_by": "ENV A=1", "empty_layer": true}),
            json!({"created_by": "COPY wdt"}),
            json!({"created_by": "COPY models"}),
        ];
        assert_eq!(history_of_first_layers(&history, 1).len(), 1);
        assert_eq!(history_of_first_layers(&history, 2).len(), 3);
        assert!(history_of_first_layers(&history, 0).is_empty());
        assert!(is_under("auxiliary/models/a", "auxiliary"));
        assert!(!is_under("auxiliary-old/a", "auxiliary"));
    }
}
