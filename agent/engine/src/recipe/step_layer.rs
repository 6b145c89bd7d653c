//! Programs run over an image built so far, their changes one layer: the image's layers
//! unpacked as the sandbox's lower directory, the steps run in order (the first failure ends it,
//! with its last lines), the overlay's upper directory captured deterministically. Shared by the
//! OS package install, OPatch and whatever else runs as a build step between native layers.

use super::build::BuildDir;
use super::steps::unpack_image;
use super::{Engine, RecipeError};
use crate::layer::LayerBlob;
use crate::transport::push::OutBlob;
use patchfarm_executor::Step;

/// Runs `steps` over `layers` (unpacked under `dir/<name>-rootfs`); `what` names the work in
/// errors. Returns the layer of what they changed.
pub async fn run(
    engine: &Engine,
    dir: &BuildDir,
    layers: &[OutBlob],
    name: &str,
    steps: &[Step],
    what: &str,
) -> Result<LayerBlob, RecipeError> {
    let fail = |e: String| RecipeError::input(what, e);
    let root = dir.path().join(format!("{name}-rootfs"));
    unpack_image(dir, layers, &root).await?;
    let mut sandbox = engine
        .sandbox(std::slice::from_ref(&root), dir.path())
        .map_err(|e| fail(e.to_string()))?;
    for step in steps {
        let mut print = |l: &str| tracing::info!(target: "patchfarm::step", "{l}");
        sandbox
            .run(step, &mut print)
            .await
            .map_err(|e| fail(e.to_string()))?;
    }
    let upper = sandbox.finish().map_err(|e| fail(e.to_string()))?;
    let spec = tokio::task::spawn_blocking(move || crate::layer::capture::capture(&upper))
        .await
        .expect("capture task")?;
    let blob = dir.write_layer(engine, spec).await?;
    drop(sandbox);
    // The unpacked root is the biggest thing a build directory holds: gone as soon as used.
    let _ = tokio::task::spawn_blocking(move || std::fs::remove_dir_all(root)).await;
    Ok(blob)
}

/// A copy of `from` at `to`, readable by every user: steps may run as the image's user, and
/// cached files are root's alone (a link would share their mode). `copy_file_range`: in-kernel.
pub fn stage_readable(from: &std::path::Path, to: &std::path::Path) -> std::io::Result<()> {
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::copy(from, to)?;
    std::fs::set_permissions(to, std::os::unix::fs::PermissionsExt::from_mode(0o644))
}
