//! `assemble`: an image from files on a base (or on nothing), with its entrypoint and settings —
//! what a Dockerfile of `FROM` + `COPY` + `ENTRYPOINT` does, without a daemon and reproducibly:
//! the files become one deterministic layer (owned by root, mtimes at the engine's epoch), so the
//! same inputs give the same digest. patchfarm's own images are built this way
//! (`deploy/images.sh`).

use super::{build, Engine, RecipeError};
use crate::image::{ImageConfig, ImageRef, Platform};
use crate::layer::writer::Owner;
use crate::layer::LayerSpec;
use crate::transport::PushReport;
use std::path::PathBuf;

#[derive(Clone, Debug, Default)]
pub struct AssembleRequest {
    pub tag: Option<ImageRef>,
    /// None: from scratch (no base layers).
    pub from_image: Option<ImageRef>,
    /// Host file or directory, and where it goes in the image.
    pub files: Vec<(PathBuf, String)>,
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub env: Vec<(String, String)>,
    pub user: Option<String>,
    pub working_dir: Option<String>,
    pub labels: Vec<(String, String)>,
    pub platform: Platform,
}

/// Builds the image and pushes it under the request's tag.
pub async fn run(engine: &Engine, request: &AssembleRequest) -> Result<PushReport, RecipeError> {
    let tag = request
        .tag
        .clone()
        .ok_or_else(|| RecipeError::input("assemble", "--tag names no image"))?;
    for (source, dest) in &request.files {
        let what = || format!("--add {}:{dest}", source.display());
        match std::fs::metadata(source) {
            Ok(m) if m.is_file() || m.is_dir() => {}
            Ok(_) => {
                return Err(RecipeError::input(
                    what(),
                    "is neither a file nor a directory",
                ))
            }
            Err(e) => return Err(RecipeError::input(what(), e.to_string())),
        }
        if !dest.starts_with('/') {
            return Err(RecipeError::input(
                format!("--add {}:{dest}", source.display()),
                "the place in the image must be an absolute path",
            ));
        }
    }
    let (mut config, mut layers, base_name, base_digest) = match &request.from_image {
        Some(image) => {
            let base = build::fetch_base(engine, image, &request.platform).await?;
            (
                base.config.clone(),
                build::base_layers(&base),
                base.reference.to_string(),
                base.manifest_digest.to_string(),
            )
        }
        None => (
            ImageConfig::empty(&request.platform.os, &request.platform.architecture),
            Vec::new(),
            String::new(),
            String::new(),
        ),
    };
    let files = request.files.clone();
    let spec = crate::spawn_blocking(move || {
        let mut spec = LayerSpec::new();
        for (source, dest) in &files {
            if dest.trim_end_matches('/').is_empty() && source.is_dir() {
                // A whole root filesystem: its entries, the root itself is the image's.
                let mut children: Vec<_> = std::fs::read_dir(source)
                    .and_then(|entries| entries.collect::<Result<Vec<_>, _>>())
                    .map_err(|e| {
                        RecipeError::input(format!("--add {}:/", source.display()), e.to_string())
                    })?;
                children.sort_by_key(|c| c.file_name());
                for child in children {
                    let name = child.file_name().to_string_lossy().into_owned();
                    spec.add_host_tree(&child.path(), &format!("/{name}"), Owner::default())?;
                }
            } else {
                spec.add_host_tree(source, dest, Owner::default())?;
            }
        }
        Ok::<_, RecipeError>(spec)
    })
    .await
    .expect("layer spec task")?;
    let dir = build::BuildDir::new(engine)?;
    let layer = dir.write_layer(engine, spec).await?;
    let created = engine.created();
    let added: Vec<String> = request
        .files
        .iter()
        .map(|(s, d)| {
            format!(
                "{}:{d}",
                s.file_name().unwrap_or_default().to_string_lossy()
            )
        })
        .collect();
    config.append_layer(
        &layer.diff_id,
        &created,
        &format!("patchfarm assemble --add {}", added.join(",")),
        "patchfarm",
    );
    if let Some(entrypoint) = &request.entrypoint {
        config.set_runtime_value("Entrypoint", serde_json::json!(entrypoint));
    }
    if let Some(cmd) = &request.cmd {
        config.set_runtime_value("Cmd", serde_json::json!(cmd));
    }
    for (name, value) in &request.env {
        config.set_env(name, value);
    }
    if let Some(user) = &request.user {
        config.set_user(user);
    }
    if let Some(dir) = &request.working_dir {
        config.set_working_dir(dir);
    }
    for (key, value) in &request.labels {
        config.set_label(key, value);
    }
    config.set_created(&created);
    layers.push(build::local_blob(&layer));
    let image = build::image_value(engine, layers, config, &base_name, &base_digest);
    let report = build::publish(engine, &image, &tag).await?;
    build::signed(engine, &tag, report).await
}
