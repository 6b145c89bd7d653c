//! Programs run over an image built so far, their changes one layer: the image's layers as
//! the sandbox's lower directories (the build's layer trees), the steps run in order (the first failure ends it,
//! with its last lines), the overlay's upper directory captured deterministically. Shared by the
//! OS package install, OPatch and whatever else runs as a build step between native layers.

use super::build::BuildDir;
use super::{Engine, RecipeError};
use crate::layer::LayerBlob;
use crate::transport::push::OutBlob;
use patchfarm_executor::Step;

/// Runs `steps` over `layers`; `name` tags their log lines, `what` names the work in errors. Returns the layer of what they
/// changed.
pub async fn run(
    engine: &Engine,
    dir: &BuildDir,
    layers: &[OutBlob],
    name: &str,
    steps: &[Step],
    what: &str,
) -> Result<LayerBlob, RecipeError> {
    let fail = |e: String| RecipeError::input(what, e);
    let lowers = dir.trees().lowers(layers).await?;
    let mut sandbox = engine
        .sandbox(&lowers, dir.path())
        .map_err(|e| fail(e.to_string()))?;
    for step in steps {
        let mut print = |l: &str| tracing::info!(target: "patchfarm::step", step = name, "{l}");
        sandbox
            .run(step, &mut print)
            .await
            .map_err(|e| fail(e.to_string()))?;
    }
    let upper = sandbox.finish().map_err(|e| fail(e.to_string()))?;
    let read = upper.clone();
    let spec = crate::spawn_blocking(move || crate::layer::capture::capture(&read))
        .await
        .expect("capture task")?;
    let blob = dir.write_layer(engine, spec).await?;
    // The upper directory stands for the layer under whatever runs next.
    dir.trees().captured(&blob, upper).await?;
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
