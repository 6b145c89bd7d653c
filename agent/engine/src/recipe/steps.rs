//! WIT's `--additionalBuildCommands FILE` run: a section (parsed in `commands`) goes
//! through the executor: RUN steps in a sandbox over the image's layers, COPY from
//! `--additionalBuildFiles`, ENV/LABEL/USER/WORKDIR/EXPOSE into the config; everything it
//! changed on disk becomes one layer. `[final-build-commands]` runs on top of the built image;
//! the build-stage sections where WIT's stages run them (`sections`);
//! `[package-manager-packages]` names packages (`packages`).

pub use super::commands::*;

use super::build::BuildDir;
use super::{Engine, RecipeError};
use crate::image::ImageConfig;
use crate::layer::LayerBlob;
use crate::transport::push::OutBlob;
use patchfarm_executor::Step;
use std::path::Path;

/// `NAME[:GROUP]` (names or ids) as numeric ids, read from the image's account files.
fn resolve_user(root: &Path, user: &str) -> Result<(u32, u32), RecipeError> {
    let (name, group) = user
        .split_once(':')
        .map_or((user, None), |(u, g)| (u, Some(g)));
    let lookup = |file: &str, key: &str| -> Option<(u32, u32)> {
        let text = crate::beneath::read(root, file).ok().flatten()?;
        String::from_utf8_lossy(&text).lines().find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() > 3 && f[0] == key)
                .then(|| (f[2].parse().ok(), f[3].parse().ok()))
                .and_then(|(a, b)| Some((a?, b.unwrap_or(0))))
        })
    };
    let (uid, primary) = match name.parse::<u32>() {
        Ok(uid) => (uid, lookup("etc/passwd", name).map_or(0, |(_, g)| g)),
        Err(_) => lookup("etc/passwd", name).ok_or_else(|| {
            RecipeError::input(
                "USER",
                format!("{name} is not an account in the image's /etc/passwd"),
            )
        })?,
    };
    let gid = match group {
        None => primary,
        Some(g) => match g.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => lookup("etc/group", g).map(|(gid, _)| gid).ok_or_else(|| {
                RecipeError::input(
                    "USER",
                    format!("{g} is not a group in the image's /etc/group"),
                )
            })?,
        },
    };
    Ok((uid, gid))
}

/// Runs `directives` (section `name` of `commands`) in `sandbox`, an overlay over an image whose
/// config is `config`; returns the config its ENV/LABEL/USER/WORKDIR/EXPOSE made. The sandbox's
/// upper directory holds what they changed.
pub async fn run_directives(
    sandbox: &mut patchfarm_executor::Sandbox,
    mut config: ImageConfig,
    commands: &BuildCommands,
    (name, directives): (&str, &[(usize, Directive)]),
    network: bool,
) -> Result<ImageConfig, RecipeError> {
    let shown = commands.file.display().to_string();
    let mut user = config.user().unwrap_or_default();
    let mut cwd = config.working_dir().unwrap_or_else(|| "/".into());
    for (line, directive) in directives {
        let at = format!("{shown}:{line}");
        match directive {
            Directive::Run(args) => {
                let (uid, gid) = if user.is_empty() {
                    (0, 0)
                } else {
                    resolve_user(&sandbox.merged(), &user)?
                };
                let mut step = Step::shell("");
                step.args = args.clone();
                step.env = config
                    .env()
                    .into_iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                step.cwd = cwd.clone();
                step.network = network;
                (step.uid, step.gid) = (uid, gid);
                let mut print =
                    |l: &str| tracing::info!(target: "patchfarm::step", section = name, "{l}");
                sandbox
                    .run(&step, &mut print)
                    .await
                    .map_err(|e| RecipeError::input(at, e.to_string()))?;
            }
            Directive::Env(pairs) => pairs.iter().for_each(|(k, v)| config.set_env(k, v)),
            Directive::Label(pairs) => pairs.iter().for_each(|(k, v)| config.set_label(k, v)),
            Directive::User(u) => {
                user = u.clone();
                config.set_user(u);
            }
            Directive::Workdir(w) => {
                cwd = if w.starts_with('/') {
                    w.clone()
                } else {
                    format!("{}/{w}", cwd.trim_end_matches('/'))
                };
                config.set_working_dir(&cwd);
            }
            Directive::Expose(ports) => {
                let mut exposed = config
                    .runtime_value("ExposedPorts")
                    .cloned()
                    .unwrap_or(serde_json::json!({}));
                for port in ports {
                    let port = if port.contains('/') {
                        port.clone()
                    } else {
                        format!("{port}/tcp")
                    };
                    exposed[port] = serde_json::json!({});
                }
                config.set_runtime_value("ExposedPorts", exposed);
            }
            Directive::Copy {
                chown,
                sources,
                dest,
            } => {
                let owner = match chown {
                    Some(c) => Some(resolve_user(&sandbox.merged(), c)?),
                    None => None,
                };
                copy_in(&sandbox.merged(), commands, sources, (dest, &cwd), owner)
                    .map_err(|e| RecipeError::input(at, e))?;
            }
        }
    }
    Ok(config)
}

/// Runs `directives` (section `name` of `commands`) on the image made of `layers` with
/// `config`; returns the layer of its changes — only those under `keep`, when given — and the
/// config its ENV/LABEL/USER/WORKDIR/EXPOSE made; no layer when it changed nothing kept.
#[allow(clippy::too_many_arguments)]
pub async fn run_section(
    engine: &Engine,
    dir: &BuildDir,
    layers: &[OutBlob],
    mut config: ImageConfig,
    commands: &BuildCommands,
    (name, directives): (&str, &[(usize, Directive)]),
    network: bool,
    keep: Option<&[&str]>,
) -> Result<(Option<LayerBlob>, ImageConfig), RecipeError> {
    let lowers = dir.trees().lowers(layers).await?;
    let shown = commands.file.display().to_string();
    let mut sandbox = engine.sandbox(&lowers, dir.path()).map_err(|e| {
        RecipeError::input(format!("--additionalBuildCommands {shown}"), e.to_string())
    })?;
    config = run_directives(&mut sandbox, config, commands, (name, directives), network).await?;
    let upper = sandbox.finish().map_err(|e| {
        RecipeError::input(format!("--additionalBuildCommands {shown}"), e.to_string())
    })?;
    let keep: Option<Vec<String>> = keep.map(|k| k.iter().map(|p| p.to_string()).collect());
    let read = upper.clone();
    let spec = crate::spawn_blocking(move || {
        let upper = read;
        if let Some(keep) = &keep {
            super::sections::prune(&upper, keep).map_err(|e| crate::layer::LayerError::Write {
                dir: upper.display().to_string(),
                source: e,
            })?;
        }
        crate::layer::capture::capture(&upper)
    })
    .await
    .expect("capture task")?;
    // A section that changed nothing that is kept (ENV and LABEL only, say) adds no layer.
    if spec.is_empty() {
        return Ok((None, config));
    }
    // The spec reads its files from the upper directory, which then stands for the layer
    // under whatever runs next.
    let blob = dir.write_layer(engine, spec).await?;
    dir.trees().captured(&blob, upper).await?;
    Ok((Some(blob), config))
}

/// `image` (assembled from `base` and the build's new `layers`) with `commands`' final section
/// run on it: the section's changes are one more layer on top, its ENV/LABEL/… in the config.
pub async fn on_top(
    engine: &Engine,
    dir: &BuildDir,
    base: &crate::transport::ResolvedImage,
    mut layers: Vec<(LayerBlob, String)>,
    image: crate::transport::PushedImage,
    commands: &BuildCommands,
    network: bool,
) -> Result<crate::transport::PushedImage, RecipeError> {
    let (layer, mut config) = final_section(engine, dir, &image, commands, network).await?;
    layers.extend(layer);
    // Assembled again from the base's layers, now with the section's layer on top.
    config.set_layers(&base.config.diff_ids(), base.config.history());
    Ok(super::build::assemble(engine, base, config, &layers))
}

/// `image`'s layers and config with `commands`' `[final-build-commands]` run on it: its changes
/// one more layer on top (none when it changed nothing), recorded in the config's history.
pub async fn final_layer(
    engine: &Engine,
    dir: &BuildDir,
    image: crate::transport::PushedImage,
    commands: &BuildCommands,
    network: bool,
) -> Result<(Vec<OutBlob>, ImageConfig), RecipeError> {
    let (layer, mut config) = final_section(engine, dir, &image, commands, network).await?;
    let mut layers = image.layers;
    if let Some((layer, by)) = layer {
        config.append_layer(&layer.diff_id, &engine.created(), &by, "patchfarm");
        layers.push(super::build::local_blob(&layer));
    }
    Ok((layers, config))
}

/// `commands`' `[final-build-commands]` run on `image`: the layer of its changes with how the
/// image's history names it (none when it changed nothing), and the config it made.
async fn final_section(
    engine: &Engine,
    dir: &BuildDir,
    image: &crate::transport::PushedImage,
    commands: &BuildCommands,
    network: bool,
) -> Result<(Option<(LayerBlob, String)>, ImageConfig), RecipeError> {
    let built = ImageConfig::parse(&image.config_bytes, "built config")
        .expect("a config this build wrote parses");
    let section = (FINAL, commands.final_commands.as_slice());
    let (layer, config) = run_section(
        engine,
        dir,
        &image.layers,
        built,
        commands,
        section,
        network,
        None,
    )
    .await?;
    let by = format!(
        "patchfarm: additionalBuildCommands [{FINAL}] {}",
        commands.file.display()
    );
    Ok((layer.map(|layer| (layer, by)), config))
}

/// WIT's COPY: sources are `files/NAME` (or `NAME`) of an `--additionalBuildFiles` entry.
/// A relative destination is under the WORKDIR `cwd`, as Docker's COPY takes it; it names a
/// directory to copy into when it ends in `/` (or is `.`), takes several sources or already is
/// one in the image.
fn copy_in(
    merged: &Path,
    commands: &BuildCommands,
    sources: &[String],
    (dest, cwd): (&str, &str),
    owner: Option<(u32, u32)>,
) -> Result<(), String> {
    let absolute = if dest.starts_with('/') {
        dest.to_string()
    } else {
        format!("{}/{dest}", cwd.trim_end_matches('/'))
    };
    let plain: Vec<&str> = absolute
        .split('/')
        .filter(|part| !part.is_empty() && *part != ".")
        .collect();
    let dest = if plain.is_empty() {
        String::new()
    } else {
        crate::layer::writer::image_path(&plain.join("/")).map_err(|e| e.to_string())?
    };
    let into_dir = absolute.ends_with('/')
        || absolute.ends_with("/.")
        || sources.len() > 1
        || dest.is_empty()
        || crate::beneath::is_dir(merged, &dest);
    for source in sources {
        let name = source.strip_prefix("files/").unwrap_or(source);
        let host = commands
            .files
            .iter()
            .find(|f| f.file_name().is_some_and(|n| n.to_string_lossy() == name))
            .ok_or_else(|| {
                format!("COPY {source}: no --additionalBuildFiles entry is named {name}")
            })?;
        let target = if dest.is_empty() {
            name.to_string()
        } else if into_dir {
            format!("{dest}/{name}")
        } else {
            dest.clone()
        };
        let mut file = crate::beneath::create(merged, &target)
            .map_err(|e| format!("COPY {source} {target}: {e}"))?;
        std::io::copy(
            &mut std::fs::File::open(host).map_err(|e| format!("COPY {}: {e}", host.display()))?,
            &mut file,
        )
        .map_err(|e| format!("COPY {source}: {e}"))?;
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::lchown(merged.join(&target), Some(uid), Some(gid))
                .map_err(|e| format!("COPY --chown: {e}"))?;
        }
    }
    Ok(())
}
